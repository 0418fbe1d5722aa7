"""Evaluate a training run's checkpoint on one split and write the full report."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, DataError

SPLITS = ("train", "val", "test")


def evaluate_run(
    run_dir: str | Path,
    *,
    split: str = "test",
    tta: str = "none",
    out_dir: str | Path | None = None,
    source: str | Path | None = None,
    which: str = "best",
    device: str = "auto",
    precision: str = "auto",
    progress: bool = True,
) -> dict[str, Any]:
    """Rebuild the run's data split and model, predict, and write report.md, metrics.json and plots.

    The split is rebuilt from the run's own saved config (same source, classes and seed), so
    `split="test"` is exactly the faces the run never selected on. `precision="fp32"` gives the
    figures a model card states (cards are measured in fp32). Returns the metrics dict.
    """
    from ..config import config_from_dict
    from ..data.pipeline import load_splits
    from ..train.checkpoint import load_model, resolve_checkpoint
    from ..train.hardware import describe_hardware, resolve_device, resolve_precision
    from .report import read_metrics_csv, write_report

    if split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    run_dir = Path(run_dir)
    ckpt = resolve_checkpoint(run_dir, which=which)
    dev = resolve_device(device)
    model, meta = load_model(ckpt, device=dev)
    cfg = config_from_dict(meta["config"])
    if source is not None:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, source=str(source)))
    faces = getattr(load_splits(cfg.data, seed=cfg.train.seed), split)
    if tuple(faces.names) != tuple(meta["class_names"]):
        raise CheckpointError(f"checkpoint classes {meta['class_names']} differ from the data's {list(faces.names)}")
    if len(faces) == 0:
        raise DataError(f"the {split} split of this run's data is empty (data.split={cfg.data.split})")
    probs = checkpoint_probs(model, meta, faces.images, tta=tta, device=dev, batch_size=cfg.train.eval_batch_size,
                             channels_last=cfg.train.channels_last, progress=progress, precision=precision)
    precision = resolve_precision(precision, dev)
    metrics_csv = run_dir / "metrics.csv" if run_dir.is_dir() else ckpt.parent / "metrics.csv"
    history = read_metrics_csv(metrics_csv) if metrics_csv.is_file() else None
    suffix = "" if tta == "none" else f"-{tta}"
    out = Path(out_dir) if out_dir is not None else ckpt.parent / f"eval-{split}{suffix}"
    out.mkdir(parents=True, exist_ok=True)
    usage = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}[split] if cfg.data.split == "official" else split
    extra = {"checkpoint": str(ckpt), "epoch": meta["epoch"] + 1, "model": meta["model"]["name"],
             "split": split, "faces": usage, "tta": tta, "data_split": cfg.data.split,
             "hardware": describe_hardware(dev, precision),
             "report": str(out / "report.md")}
    return write_report(out, y_true=faces.labels, probs=probs, names=faces.names, images=faces.images,
                        history=history, title=f"mien evaluation: {meta['model']['name']} on {usage}", extra=extra)


def checkpoint_probs(model: Any, meta: dict[str, Any], images: Any, *, tta: str = "none", device: Any = "cpu",
                     batch_size: int = 512, channels_last: bool = True, progress: bool = False,
                     precision: str = "auto") -> Any:
    """(N, C) float32 numpy probabilities of a loaded checkpoint (`load_model`) on (N, H, W) uint8 faces.

    Uses the checkpoint's own normalisation and, by default, the machine's precision
    (`resolve_precision("auto")`), exactly as `evaluate_run` does, so a figure computed here matches
    the evaluation report. Shipping passes `precision="fp32"`: what the inference backends run, on
    every CPU alike (bf16 on an AMX machine flips a few predictions against fp32 elsewhere).
    """
    import torch

    from ..data.pipeline import Normalization, as_batch
    from ..train.hardware import resolve_precision
    from ..train.loop import InputSpec, predict_probs

    dev = torch.device(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    inputs = InputSpec.for_model(model, Normalization(**meta["normalization"]), channels_last=channels_last)
    return predict_probs(model, as_batch(images, dev), inputs=inputs, precision=resolve_precision(precision, dev),
                         batch_size=batch_size, tta=tta, progress=progress).cpu().numpy()
