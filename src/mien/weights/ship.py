"""Package a training run as a shipped model: weights, self-describing sidecar and model card.

`ship_run` follows the project's protocol: the test-time augmentation is chosen on the validation
split (PublicTest), the test split (PrivateTest) is evaluated once with that choice, and the
robustness table is measured on the same test faces. The sidecar gains a `shipped` block (tta, val
and test accuracy, robustness rows, training minutes and hardware) that `Recognizer` and the CI
accuracy test read; the card (`NAME.md`) is written from the same numbers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, DataError
from ..tta import TTA_MODES

_DIR = Path(__file__).resolve().parent
# What shipping chooses from on PublicTest by default. Not "tencrop": ten views cost 10x, which would
# take the default below issue 9's speed floor, and on models trained without crops it did not beat
# these on PublicTest (docs/results/flagship.md, "Ten-crop TTA"). A model trained on random crops may
# opt in (`tta_choices=TTA_MODES`); `mien predict --tta tencrop` offers it for any model.
TTA_CHOICES = ("none", "flip")
# Cards are measured as the inference backends run (fp32), so a card's figure holds on every CPU;
# `auto` would measure in bf16 on an AMX machine and flip a few faces against fp32 elsewhere.
SHIPPED_PRECISION = "fp32"


def _training_minutes(run_dir: Path) -> float:
    from ..evaluate.report import read_metrics_csv

    path = run_dir / "metrics.csv"
    if not path.is_file():
        raise CheckpointError(f"{run_dir} has no metrics.csv: ship a training run directory, not a lone checkpoint")
    return sum(row["seconds"] for row in read_metrics_csv(path)) / 60.0


def _starts_from(config: dict[str, Any]) -> dict[str, Any] | None:
    """{"weights", "training_minutes"} of the mien model a warm-restarted run started from (its own
    prior minutes included), so a card counts the whole cost; None for a run from scratch or from
    weights whose training mien did not time (e.g. ImageNet's)."""
    from ..train.checkpoint import read_checkpoint
    from . import names_mien_checkpoint, resolve_model_source

    weights = config.get("finetune", {}).get("weights", "")
    if not weights or not names_mien_checkpoint(weights):
        return None
    meta = read_checkpoint(resolve_model_source(weights))[1]
    run_dir = Path(weights).expanduser()
    if run_dir.is_dir():  # a run directory (possibly itself a warm restart)
        prior, minutes = _starts_from(meta.get("config", {})), _training_minutes(run_dir)
    elif "shipped" in meta:
        prior, minutes = meta["shipped"].get("starts_from"), meta["shipped"]["training_minutes"]
    else:  # a lone checkpoint: its training time is not recorded
        return None
    return {"weights": weights, "training_minutes": minutes + (prior["training_minutes"] if prior else 0.0)}


def _hardware(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "run.json"
    return json.loads(path.read_text())["sessions"] if path.is_file() else []


def official_splits(config: dict[str, Any], source: str | Path | None = None):  # noqa: ANN201 (a data.Splits)
    """The official FER2013 splits a shipped model's sidecar `config` was trained on, read from `source`
    (another copy of the data) when given, else from the run's own source."""
    import dataclasses

    from ..config import config_from_dict
    from ..data.pipeline import load_splits

    cfg = config_from_dict(config)
    data = dataclasses.replace(cfg.data, split="official", **({"source": str(source)} if source is not None else {}))
    return load_splits(data, seed=cfg.train.seed)


def ship_run(
    run_dir: str | Path,
    *,
    name: str,
    command: str,
    out_dir: str | Path | None = None,
    source: str | Path | None = None,
    title: str | None = None,
    limits: str = "",
    seed: int = 0,
    storage: str = "float32",
    tta_choices: tuple[str, ...] = TTA_CHOICES,
) -> Path:
    """Evaluate the run's best checkpoint per protocol and write NAME.safetensors/.json/.md.

    Args:
        run_dir: a training run directory (best checkpoint, metrics.csv, run.json).
        name: the shipped name (`Recognizer(model=name)`).
        command: the one command that trains this model, for the card.
        out_dir: where to write (default: this package's weights folder).
        source: FER2013 source overriding the run's own.
        title: the card's heading (default: the model name).
        limits: extra Markdown bullets for the card's "known limits" section.
        seed: seed of the robustness benchmark's noise.
        tta_choices: the TTA modes PublicTest chooses from (a subset of `mien.tta.TTA_MODES`), e.g.
            ("none",) where flip's doubled cost would break a speed floor, or all three for a model
            trained on random crops, whose card then may state a ten-crop accuracy.
        storage: how the weights are stored (`mien.train.quantize.STORAGE`): "float32" as trained,
            "float16" (half the bytes) or "int8" (convolution and linear weights per output channel,
            about a quarter), for the package's 25 MB budget. Everything is then measured on the
            rounded weights, which load back into the fp32 model (`load_model`), so the card
            describes exactly what ships.

    Returns:
        The written `.safetensors` path.
    """
    from ..train.checkpoint import read_checkpoint, resolve_checkpoint
    from ..train.quantize import quantize

    if not tta_choices or not set(tta_choices) <= set(TTA_MODES):
        raise DataError(f"tta_choices must be a non-empty subset of {TTA_MODES}, got {tta_choices!r}")
    run_dir = Path(run_dir)
    ckpt = resolve_checkpoint(run_dir, which="best")
    tensors, meta = read_checkpoint(ckpt)
    if any(not k.startswith("model.") for k in tensors):
        raise CheckpointError(f"{ckpt} carries optimizer state; ship a best checkpoint, which has none")
    record = {"epoch": meta["epoch"] + 1, "training_minutes": _training_minutes(run_dir),
              "hardware": _hardware(run_dir), "command": command}
    starts_from = _starts_from(meta.get("config", {}))
    if starts_from is not None:
        record["starts_from"] = starts_from
    return _measure_and_write(quantize(tensors, storage), meta, storage=storage, where=ckpt, name=name,
                              out=Path(out_dir) if out_dir is not None else _DIR, tta_choices=tta_choices,
                              source=source, seed=seed, title=title or name, limits=limits, record=record)


def restore_shipped(name: str, *, storage: str, folder: str | Path | None = None, source: str | Path | None = None,
                    seed: int = 0) -> Path:
    """Store the shipped model `name` again in `storage` ("float16" or "int8", smaller than now), to
    fit more models in the package's budget, and re-measure its whole card on the rounded weights.

    The checkpoint stays as chosen; the TTA is chosen again on PublicTest from the same choices as
    when it shipped, PrivateTest is evaluated once with it, and the robustness table is measured
    again. The card keeps its heading, limits, training command, hardware and minutes.

    Raises:
        CheckpointError: `name` is not shipped with a `shipped` block, `storage` is not smaller than
            the model's storage now, or an ensemble manifest in the folder names it as a member (its
            card would no longer hold: remove the manifest, restore, then re-ship the ensemble).
    """
    from ..train.checkpoint import read_checkpoint
    from ..train.quantize import STORAGE, quantize

    base = Path(folder) if folder is not None else _DIR
    weights = base / f"{name}.safetensors"
    if not (weights.is_file() and (base / f"{name}.json").is_file()):
        raise CheckpointError(f"no shipped model named {name!r} in {base}")
    _refuse_ensemble_members(base, weights, name)
    tensors, meta = read_checkpoint(weights)
    if "shipped" not in meta:
        raise CheckpointError(f"{base / f'{name}.json'} has no `shipped` block: ship the run with ship_run instead")
    shipped = meta.pop("shipped")
    now = shipped.get("weights_dtype", "float32")
    if storage not in STORAGE or STORAGE.index(storage) <= STORAGE.index(now):
        raise CheckpointError(f"{name!r} is stored as {now}; restore it in a smaller storage than that "
                              f"(one of {STORAGE[STORAGE.index(now) + 1:]}), not {storage!r}")
    title, limits = _card_title_and_limits(base / f"{name}.md", name)
    record = {k: shipped[k] for k in ("epoch", "training_minutes", "hardware", "command", "starts_from") if k in shipped}
    return _measure_and_write(quantize(tensors, storage), meta, storage=storage, where=weights, name=name, out=base,
                              tta_choices=tuple(shipped["val_accuracy_by_tta"]), source=source, seed=seed,
                              title=title, limits=limits, record=record)


def _measure_and_write(stored: dict[str, Any], meta: dict[str, Any], *, storage: str, where: Path, name: str,
                       out: Path, tta_choices: tuple[str, ...], source: str | Path | None, seed: int, title: str,
                       limits: str, record: dict[str, Any]) -> Path:
    """Measure the `stored` weights per protocol and write NAME.safetensors/.json/.md into `out`.

    `record`: the card's training facts (epoch, minutes, hardware, command).
    """
    import numpy as np

    from ..evaluate.metrics import classification_metrics
    from ..evaluate.robustness import robustness_table
    from ..evaluate.run import checkpoint_probs
    from ..train.checkpoint import model_from_checkpoint, write_weights
    from ..train.quantize import dequantize
    from .card import render_card

    # The rounded values in the fp32 model: what ships.
    model = model_from_checkpoint(dequantize(stored), meta, where=where)
    split = meta["config"]["data"]["split"]
    if split != "official":
        raise DataError(f"only runs on the official FER2013 split can be shipped (this run used {split!r})")
    splits = official_splits(meta["config"], source)

    def probs(images: np.ndarray, tta: str) -> np.ndarray:
        return checkpoint_probs(model, meta, images, tta=tta, precision=SHIPPED_PRECISION)

    # Selection on PublicTest only; ties go to the cheaper "none".
    val_acc = {tta: float((probs(splits.val.images, tta).argmax(1) == splits.val.labels).mean()) for tta in tta_choices}
    tta = max(tta_choices, key=lambda t: (val_acc[t], t == "none"))
    test_probs = probs(splits.test.images, tta)
    test = classification_metrics(splits.test.labels, test_probs, splits.test.names)
    robustness = robustness_table(lambda x: probs(x, tta), splits.test.images, splits.test.labels,
                                  generator=np.random.default_rng(seed), clean_probs=test_probs)
    shipped = {
        "name": name, "tta": tta, "val_accuracy": val_acc[tta], "val_accuracy_by_tta": val_acc,
        "test_accuracy": test["accuracy"], "test_macro_f1": test["f1"]["macro"], "test_n": test["n"],
        **record, "robustness": robustness, "weights_dtype": storage,
    }
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{name}.safetensors"
    write_weights(target, stored, epoch=meta.get("epoch", ""))
    meta = {k: v for k, v in meta.items() if k != "optimizer"}  # a shipped sidecar never describes training state
    (out / f"{name}.json").write_text(json.dumps({**meta, "shipped": shipped}, indent=2))
    (out / f"{name}.md").write_text(render_card(meta=meta, shipped=shipped, test=test, title=title, limits=limits))
    return target


def _refuse_ensemble_members(base: Path, weights: Path, name: str) -> None:
    from .ensemble import SUFFIX, read_ensemble

    users = [p.name for p in sorted(base.glob(f"*{SUFFIX}")) if weights.resolve() in
             (m.resolve() for m in read_ensemble(p).members)]
    if users:
        raise CheckpointError(f"{name!r} is a member of {', '.join(users)}; re-ship or remove those ensembles first")


def _card_title_and_limits(card: Path, name: str) -> tuple[str, str]:
    """A generated card's heading (inside the parentheses) and its own limits bullets, to regenerate it."""
    import re

    from .card import FER_LIMITS

    text = card.read_text() if card.is_file() else ""
    heading = re.match(r"# Model card: `[^`]*` \((.*)\)", text)
    # The card's own limits bullets sit between the section heading and the FER2013 boilerplate.
    limits = text.partition("## Known limits and biases\n\n")[2].partition(FER_LIMITS)[0].strip()
    return (heading.group(1) if heading else name), limits


def rename_shipped(old: str, new: str, *, folder: str | Path | None = None, source: str | Path | None = None) -> Path:
    """Ship the model `old` under the name `new` (weights, sidecar, regenerated card) and remove `old`.

    Used to hand the name `default` to a better model while keeping the old default selectable.
    Nothing is selected here: the card is regenerated from a PrivateTest pass with the TTA already
    chosen, which must reproduce the accuracy the old card states within 0.2 points (else
    CheckpointError); the card then shows that pass.

    Raises:
        CheckpointError: `old` is not shipped with a `shipped` block, `new` exists, an ensemble
            manifest in the folder names `old` as a member, or the re-measured accuracy differs.
    """
    from ..evaluate.metrics import classification_metrics
    from ..evaluate.run import checkpoint_probs
    from ..train.checkpoint import load_model
    from .card import render_card
    from .ensemble import SUFFIX

    base = Path(folder) if folder is not None else _DIR
    weights, sidecar, card = (base / f"{old}{ext}" for ext in (".safetensors", ".json", ".md"))
    if not (weights.is_file() and sidecar.is_file()):
        raise CheckpointError(f"no shipped model named {old!r} in {base}")
    if (base / f"{new}.safetensors").exists() or (base / f"{new}{SUFFIX}").exists():
        raise CheckpointError(f"{new!r} already names a shipped model or ensemble in {base}")
    _refuse_ensemble_members(base, weights, old)
    model, meta = load_model(weights)  # validates the pair and reads the sidecar, once
    if "shipped" not in meta:
        raise CheckpointError(f"{sidecar} has no `shipped` block: ship the run with ship_run instead")
    shipped = {**meta["shipped"], "name": new}
    test_split = official_splits(meta["config"], source).test
    probs = checkpoint_probs(model, meta, test_split.images, tta=shipped["tta"], precision=SHIPPED_PRECISION)
    test = classification_metrics(test_split.labels, probs, test_split.names)
    # The CI accuracy test's tolerance: another CPU's fp32 kernels may flip a face or two.
    if abs(test["accuracy"] - shipped["test_accuracy"]) > 0.002:
        raise CheckpointError(f"{old!r} now scores {test['accuracy']:.4%} on the test split, its card says "
                              f"{shipped['test_accuracy']:.4%}: wrong data source? (source=...)")
    shipped.update(test_accuracy=test["accuracy"], test_macro_f1=test["f1"]["macro"])
    title, limits = _card_title_and_limits(card, new)
    shutil.copyfile(weights, base / f"{new}.safetensors")
    (base / f"{new}.json").write_text(json.dumps({**meta, "shipped": shipped}, indent=2))
    (base / f"{new}.md").write_text(render_card(meta=meta, shipped=shipped, test=test, title=title, limits=limits))
    for path in (weights, sidecar, card):
        path.unlink(missing_ok=True)
    return base / f"{new}.safetensors"
