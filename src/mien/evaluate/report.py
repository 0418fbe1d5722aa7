"""An evaluation report on disk: metrics.json, CSV tables, PNG figures and report.md linking them."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import CheckpointError, DataError
from .metrics import classification_metrics, predict


def read_metrics_csv(path: str | Path) -> list[dict[str, float]]:
    """A run's metrics.csv (header row, one row per epoch) as a list of {column: float}.

    An empty cell (or a row cut short) reads as NaN; a header-only or empty file gives [].

    Raises:
        CheckpointError: the file is missing or a cell is not a number.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist; training writes metrics.csv into its run directory")
    rows: list[dict[str, float]] = []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            parsed: dict[str, float] = {}
            for key, value in row.items():
                if key is None:
                    raise CheckpointError(f"{path}, line {reader.line_num}: more values than header columns")
                if value is None or not value.strip():
                    parsed[key.strip()] = math.nan
                    continue
                try:
                    parsed[key.strip()] = float(value)
                except ValueError:
                    raise CheckpointError(f"{path}, line {reader.line_num}: column {key.strip()!r} holds "
                                          f"{value!r}, not a number") from None
            rows.append(parsed)
    return rows


def sample_grid(y_true: np.ndarray, y_pred: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of up to `size` samples, half misclassified and half right where both exist, shuffled.

    When one group is short, the other fills the remaining places.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    right, wrong = np.flatnonzero(y_true == y_pred), np.flatnonzero(y_true != y_pred)
    size = max(0, size)
    n_wrong = min(len(wrong), max(size - len(right), size // 2))
    n_right = min(len(right), size - n_wrong)
    picked = np.concatenate([rng.choice(wrong, n_wrong, replace=False),
                             rng.choice(right, n_right, replace=False)]).astype(np.int64)
    return rng.permutation(picked)


def _plain(value: Any, where: str) -> Any:
    """`value` as plain JSON types (NaN/inf become null); raise TypeError naming `where` otherwise."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{where} = {value!r} ({type(value).__name__}) cannot be stored in metrics.json")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(", ", ": "))
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines + [""]


def _write_csvs(out_dir: Path, metrics: Mapping[str, Any]) -> None:
    names = metrics["classes"]
    with (out_dir / "confusion_matrix.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["true\\predicted", *names])
        writer.writerows([name, *row] for name, row in zip(names, metrics["confusion"]))
    with (out_dir / "per_class.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["class", "precision", "recall", "f1", "support"])
        writer.writerows([r["name"], f"{r['precision']:.6f}", f"{r['recall']:.6f}", f"{r['f1']:.6f}", r["support"]]
                         for r in metrics["per_class"])


def _markdown(metrics: Mapping[str, Any], title: str, figures: Sequence[tuple[str, str]]) -> str:
    lines = [f"# {title}", ""]
    if metrics["run"]:
        lines += ["## Run", ""] + _table(["key", "value"], list(metrics["run"].items()))
    lines += ["## Overall", ""] + _table(["metric", "value"], [
        ["accuracy", f"{100 * metrics['accuracy']:.2f}%"],
        ["top-2 accuracy", f"{100 * metrics['top2_accuracy']:.2f}%"],
        ["samples", metrics["n"]],
    ])
    lines += _table(["average", "precision", "recall", "F1"], [
        [avg, *(f"{metrics[m][avg]:.4f}" for m in ("precision", "recall", "f1"))] for avg in ("macro", "weighted")
    ])
    lines += ["## Per class", ""] + _table(["class", "precision", "recall", "F1", "support"], [
        [r["name"], f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", r["support"]]
        for r in metrics["per_class"]
    ])
    confusion = np.asarray(metrics["confusion"])
    off_diagonal = [(int(confusion[i, j]), i, j) for i in range(len(confusion)) for j in range(len(confusion))
                    if i != j and confusion[i, j] > 0]
    if off_diagonal:
        names, norm = metrics["classes"], metrics["confusion_normalized"]
        top = sorted(off_diagonal, key=lambda t: -t[0])[:5]
        lines += ["## Most common confusions", ""] + _table(["true", "predicted", "count", "% of true class"], [
            [names[i], names[j], count, f"{100 * norm[i][j]:.1f}%"] for count, i, j in top
        ])
    for heading, file in figures:
        lines += [f"## {heading}", "", f"![{heading}]({file})", ""]
    lines += ["Files: [metrics.json](metrics.json), [per_class.csv](per_class.csv), "
              "[confusion_matrix.csv](confusion_matrix.csv)", ""]
    return "\n".join(lines)


def write_report(
    out_dir: str | Path,
    *,
    y_true: np.ndarray,
    probs: np.ndarray,
    names: Sequence[str],
    images: np.ndarray,
    history: Sequence[Mapping[str, float]] | None = None,
    title: str = "mien evaluation",
    extra: Mapping[str, Any] | None = None,
    grid_size: int = 32,
    seed: int = 0,
    grid_cols: int = 8,
) -> dict[str, Any]:
    """Compute the metrics and write the full evaluation report into `out_dir`.

    Writes metrics.json (all metrics, with `extra` under "run"), confusion_matrix.png/.csv,
    per_class.csv, curves.png (only with a non-empty `history`), predictions.png (`grid_size`
    faces drawn with `np.random.default_rng(seed)`, mixing right and wrong; none if 0) and report.md
    linking them.

    Args:
        y_true: (N,) integer labels; probs: (N, C) probabilities or logits (logits are softmaxed for
            the confidences shown); names: the C class names; images: (N, 48, 48) uint8 faces.
        history: per-epoch rows of metrics.csv (see `read_metrics_csv`) for the training curves.
        extra: run information (split, tta, checkpoint, hardware...), stored and tabulated as given.

    Returns:
        The dict written to metrics.json: `classification_metrics(...)` plus "run".
    """
    from . import plots

    out_dir = Path(out_dir)
    metrics = classification_metrics(y_true, probs, names)
    images = np.asarray(images)
    if len(images) != metrics["n"]:
        raise DataError(f"images has {len(images)} faces but y_true has {metrics['n']} labels")
    metrics["run"] = _plain(dict(extra or {}), "extra")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    _write_csvs(out_dir, metrics)

    figures = [("Confusion matrix", "confusion_matrix.png")]
    plots.plot_confusion(metrics["confusion_normalized"], names, out_dir / "confusion_matrix.png",
                         counts=metrics["confusion"], title=f"{title} (accuracy {100 * metrics['accuracy']:.2f}%)")
    if history:
        plots.plot_curves(history, out_dir / "curves.png")
        figures.append(("Training curves", "curves.png"))
    y_pred, confidence = predict(probs)
    pick = sample_grid(np.asarray(y_true), y_pred, grid_size, np.random.default_rng(seed))
    if len(pick):
        plots.plot_prediction_grid(images[pick], np.asarray(y_true)[pick], y_pred[pick], confidence[pick],
                                   names, out_dir / "predictions.png", cols=grid_cols)
        figures.append(("Sample predictions (green right, red wrong)", "predictions.png"))
    (out_dir / "report.md").write_text(_markdown(metrics, title, figures))
    return metrics
