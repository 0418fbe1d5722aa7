"""`compare_models`: train several models on identical splits and seeds, then measure them alike.

Each entry trains with the engine's `fit` into `OUT/runs/LABEL`; its best checkpoint (chosen on
the validation split, PublicTest for the official split) is scored on val and test, and its cost
(parameters, MACs, CPU inference time) is measured. A finished entry leaves `compare.json` in its
run directory, so a rerun skips it; an interrupted one resumes from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..config import ModelConfig, RunConfig, apply_overrides, config_to_dict, load_config, same_experiment
from ..errors import ConfigError, ModelError
from ..files import write_atomically

if TYPE_CHECKING:
    from ..data.arrays import FaceArrays
    from ..data.pipeline import DataSplits

RESULT_FILE = "compare.json"
# Files `fit` writes before its first epoch ends; without last.safetensors nothing was trained.
_UNSTARTED_FILES = ("config.yaml", "run.json", "metrics.csv")


@dataclass(frozen=True)
class CompareEntry:
    """One model of a comparison: its table label and its full run config."""

    label: str
    cfg: RunConfig


@dataclass(frozen=True)
class ModelResult:
    """One row of the comparison table (see docs/compare.md for each column)."""

    label: str
    model: str
    params: int
    macs: int
    input: str
    """Native input as CxHxW, e.g. 1x48x48."""
    classes: tuple[str, ...]
    epochs: int
    best_epoch: int
    train_s_per_epoch: float
    infer_ms: dict[int, float]
    """Batch size -> CPU inference milliseconds per image."""
    val_acc: float
    val_f1_macro: float
    test_acc: float | None
    """None when the data has no test split (k-fold, two-way stratified)."""
    scored_on: str
    """Split of the F1, recall and confusion columns: test when there is one, else val."""
    f1_macro: float
    f1_weighted: float
    recall: dict[str, float]
    confusion: list[list[int]]
    load_avg: float
    """1-minute load average while inference was timed (other work on the CPU slows it)."""
    data: str
    """The split, e.g. official or kfold 1/3."""
    run_dir: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> ModelResult:
        values = dict(values)
        values["infer_ms"] = {int(k): float(v) for k, v in values["infer_ms"].items()}
        values["classes"] = tuple(values["classes"])
        return cls(**values)


def _is_config_path(spec: str) -> bool:
    return spec.lower().endswith((".yaml", ".yml"))


def grid_configs(folder: str | Path) -> list[Path]:
    """The cells of an experiment grid: every *.yaml run config in `folder`, sorted by name.

    Files whose names start with an underscore (e.g. `_base.yaml`) are the grid's shared settings,
    named by the cells' `base:` key, and are not cells themselves.

    Raises:
        ConfigError: `folder` is not a folder, or holds no cell.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"grid {folder} is not a folder of *.yaml run configs")
    cells = sorted(f for f in folder.glob("*.yaml") if not f.name.startswith("_"))
    if not cells:
        raise ConfigError(f"grid {folder} holds no *.yaml run config (files named _*.yaml are shared bases)")
    return cells


def model_entries(
    specs: Sequence[str],
    *,
    config: str | Path | None = None,
    overrides: Sequence[str] = (),
    epochs: int | None = None,
    time_budget_s: float | None = None,
) -> list[CompareEntry]:
    """Build comparison entries from model names and YAML run configs.

    A name trains that registered model with the `config` file's settings (its `model.kwargs`
    are kept only when the file names the same model); a YAML path trains its own config and is
    labelled by the file's stem. `overrides` (section.key=value) then apply to every entry, and
    `epochs` / `time_budget_s`, when given, replace each entry's train.epochs / train.time_budget_s.

    Raises:
        ModelError: a name that is not registered.
        ConfigError: a bad config, duplicate labels, or entries with different train.seed.
    """
    from ..models import list_models

    if not specs:
        raise ConfigError("compare needs at least one model name or YAML config")
    entries: list[CompareEntry] = []
    for spec in specs:
        spec = spec.strip()
        if _is_config_path(spec):
            label, cfg = Path(spec).stem, load_config(spec)
        elif spec in list_models():
            label, cfg = spec, load_config(config)
            if cfg.model.name != spec:
                cfg = dataclasses.replace(cfg, model=ModelConfig(name=spec))
        else:
            raise ModelError(f"compare entry {spec!r} is neither a registered model ({', '.join(list_models())}) "
                             "nor a .yaml config file")
        cfg = apply_overrides(cfg, overrides)
        train = cfg.train
        if epochs is not None:
            train = dataclasses.replace(train, epochs=epochs)
        if time_budget_s is not None:
            train = dataclasses.replace(train, time_budget_s=time_budget_s)
        entries.append(CompareEntry(label, dataclasses.replace(cfg, train=train)))
    labels = [e.label for e in entries]
    duplicates = sorted({x for x in labels if labels.count(x) > 1})
    if duplicates:
        raise ConfigError(f"compare entries need distinct labels; {duplicates[0]!r} appears twice "
                          "(rename one YAML file)")
    seeds = {e.cfg.train.seed for e in entries}
    if len(seeds) > 1:
        raise ConfigError("compare trains every model with one seed, but the entries set train.seed to "
                          + ", ".join(f"{e.label}={e.cfg.train.seed}" for e in entries))
    return entries


def _split_key(cfg: RunConfig) -> str:
    # Loss weighting and sampling do not change which faces land in which split.
    data = {k: v for k, v in config_to_dict(cfg.data).items() if k != "balance"}
    return json.dumps([data, cfg.train.seed], sort_keys=True)


def _describe_split(cfg: RunConfig) -> str:
    d = cfg.data
    if d.split == "kfold":
        return f"kfold {d.fold + 1}/{d.folds}"
    if d.split == "stratified":
        return "stratified " + "/".join(f"{r:g}" for r in d.ratios)
    return d.split


def _prepare_run_dir(run_dir: Path) -> bool:
    """True if the run can resume; else clear the files of a run killed before its first epoch ended."""
    if (run_dir / "last.safetensors").is_file():
        return True
    for name in _UNSTARTED_FILES:
        (run_dir / name).unlink(missing_ok=True)
    return False


def _finished(run_dir: Path, cfg: RunConfig) -> ModelResult | None:
    path = run_dir / RESULT_FILE
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    if not same_experiment(record["config"], cfg):
        raise ConfigError(f"{run_dir} holds a finished comparison run with a different config; "
                          "choose another --out or delete that run directory")
    return ModelResult.from_json(record["result"])


def score_run(
    run_dir: str | Path,
    splits: DataSplits,
    *,
    label: str,
    cfg: RunConfig,
    speed_batches: Sequence[int] = (1, 256),
    speed_repeats: int = 5,
) -> ModelResult:
    """Score a trained run's best checkpoint on `splits` and measure its cost."""
    import numpy as np

    from ..data.pipeline import Normalization, as_batch
    from ..evaluate.metrics import classification_metrics
    from ..evaluate.report import read_metrics_csv
    from ..models import count_params
    from ..train.checkpoint import load_model
    from ..train.hardware import resolve_device, resolve_precision
    from ..train.loop import InputSpec, predict_probs
    from .speed import count_macs, measure_speed

    run_dir = Path(run_dir)
    device = resolve_device(cfg.train.device)
    precision = resolve_precision(cfg.train.precision, device)
    model, meta = load_model(run_dir, device=device)
    inputs = InputSpec.for_model(model, Normalization(**meta["normalization"]), channels_last=cfg.train.channels_last)

    def metrics(faces: FaceArrays) -> dict[str, Any]:
        probs = predict_probs(model, as_batch(faces.images, device), inputs=inputs, precision=precision,
                              batch_size=cfg.train.eval_batch_size).cpu().numpy()
        return classification_metrics(faces.labels.astype(np.int64), probs, faces.names)

    val = metrics(splits.val)
    test = metrics(splits.test) if len(splits.test) else None
    scored = test if test is not None else val
    history = read_metrics_csv(run_dir / "metrics.csv")
    params, macs = count_params(model), count_macs(model)
    speed = measure_speed(model, batch_sizes=speed_batches, repeats=speed_repeats,
                          channels_last=cfg.train.channels_last)
    return ModelResult(
        label=label, model=meta["model"]["name"], params=params, macs=macs,
        input="x".join(str(v) for v in (model.in_chans, *model.input_size)), classes=tuple(meta["class_names"]),
        epochs=len(history), best_epoch=int(meta["epoch"]) + 1,
        train_s_per_epoch=float(np.mean([row["seconds"] for row in history])), infer_ms=speed,
        val_acc=val["accuracy"], val_f1_macro=val["f1"]["macro"],
        test_acc=None if test is None else test["accuracy"], scored_on="test" if test is not None else "val",
        f1_macro=scored["f1"]["macro"], f1_weighted=scored["f1"]["weighted"],
        recall={row["name"]: row["recall"] for row in scored["per_class"]}, confusion=scored["confusion"],
        load_avg=os.getloadavg()[0], data=_describe_split(cfg), run_dir=str(run_dir))


def compare_models(
    entries: Sequence[CompareEntry],
    out_dir: str | Path,
    *,
    splits: DataSplits | None = None,
    speed_batches: Sequence[int] = (1, 256),
    speed_repeats: int = 5,
    summary: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> list[ModelResult]:
    """Train, score and measure every entry, then write the table and figures into `out_dir`.

    Entries with the same data config and seed share one loaded split (pass `splits` to use given
    faces for all). Writes `OUT/runs/LABEL/` per entry, `compare.csv`, `compare.md`,
    `scores.png`, `confusion.png` and `curves.png`; `summary` adds mean and std rows (e.g. k-fold).
    """
    import torch

    from ..data.pipeline import load_splits
    from ..train.fit import fit
    from ..train.hardware import cpu_model
    from .plots import plot_confusions, plot_curves, plot_scores
    from .table import write_table

    if not entries:
        raise ConfigError("compare_models needs at least one entry (see model_entries)")
    out_dir = Path(out_dir)
    models = f"{len(entries)} model" + ("s" if len(entries) != 1 else "")
    log(f"mien compare: {models} on CPU {cpu_model()} ({torch.get_num_threads()} threads), output {out_dir}")
    loaded: dict[str, DataSplits] = {}
    results: list[ModelResult] = []
    for i, entry in enumerate(entries, 1):
        run_dir = out_dir / "runs" / entry.label
        done = _finished(run_dir, entry.cfg)
        if done is not None:
            log(f"[{i}/{len(entries)}] {entry.label}: finished earlier, skipped ({run_dir})")
            results.append(done)
            continue
        if splits is not None:
            entry_splits = splits
        else:
            key = _split_key(entry.cfg)
            if key not in loaded:
                loaded[key] = load_splits(entry.cfg.data, seed=entry.cfg.train.seed)
            entry_splits = loaded[key]
        resume = _prepare_run_dir(run_dir)
        log(f"[{i}/{len(entries)}] {entry.label}: " + ("resuming" if resume else "training") +
            f" {entry.cfg.model.name} for up to {entry.cfg.train.epochs} epochs"
            + (f" or {entry.cfg.train.time_budget_s:g} s" if entry.cfg.train.time_budget_s else ""))
        fit(entry.cfg, run_dir, resume=resume, splits=entry_splits, progress=progress, log=log)
        result = score_run(run_dir, entry_splits, label=entry.label, cfg=entry.cfg, speed_batches=speed_batches,
                           speed_repeats=speed_repeats)
        record = {"config": config_to_dict(entry.cfg), "result": result.to_json()}
        write_atomically(run_dir / RESULT_FILE, lambda tmp: tmp.write_text(json.dumps(record, indent=2)))
        log(f"[{i}/{len(entries)}] {entry.label}: val acc {result.val_acc:.4f}"
            + (f", test acc {result.test_acc:.4f}" if result.test_acc is not None else "")
            + f", {result.infer_ms.get(1, float('nan')):.2f} ms/image at batch 1")
        results.append(result)
    csv_path, md_path = write_table(results, out_dir, summary=summary)
    plot_scores(results, out_dir / "scores.png")
    plot_confusions(results, out_dir / "confusion.png")
    plot_curves(results, out_dir / "curves.png")
    log(f"table: {md_path} and {csv_path}; figures: scores.png, confusion.png, curves.png")
    return results
