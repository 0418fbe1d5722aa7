"""The comparison table as CSV (full precision, one column per number) and Markdown (for reading)."""

from __future__ import annotations

import csv
import math
import statistics
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from ..labels import EMOTIONS
from .run import ModelResult


def _batch_sizes(results: Sequence[ModelResult]) -> list[int]:
    return sorted({b for r in results for b in r.infer_ms})


def _class_names(results: Sequence[ModelResult]) -> list[str]:
    present = {c for r in results for c in r.classes}
    return [c for c in EMOTIONS if c in present] + sorted(present - set(EMOTIONS))


def table_rows(results: Sequence[ModelResult]) -> list[dict[str, Any]]:
    """One flat dict per result; missing values (no test split, a class not trained) are None."""
    batches, classes = _batch_sizes(results), _class_names(results)
    rows = []
    for r in results:
        row: dict[str, Any] = {
            "label": r.label, "model": r.model, "params": r.params, "macs": r.macs, "input": r.input,
            "classes": len(r.classes), "data": r.data, "epochs": r.epochs, "best_epoch": r.best_epoch,
            "train_s_per_epoch": r.train_s_per_epoch,
            **{f"infer_ms_b{b}": r.infer_ms.get(b) for b in batches},
            "val_acc": r.val_acc, "val_f1_macro": r.val_f1_macro, "test_acc": r.test_acc,
            "scored_on": r.scored_on, "f1_macro": r.f1_macro, "f1_weighted": r.f1_weighted,
            **{f"recall_{c}": r.recall.get(c) for c in classes},
            "load_avg": r.load_avg, "run_dir": r.run_dir,
        }
        rows.append(row)
    return rows


def _summary_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sample standard deviation of every numeric column (e.g. over k folds)."""
    mean: dict[str, Any] = {"label": "mean"}
    std: dict[str, Any] = {"label": "std"}
    for key in rows[0]:
        values = [row[key] for row in rows]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            mean[key] = statistics.fmean(values)
            std[key] = statistics.stdev(values) if len(values) > 1 else 0.0
    return [mean, std]


def _fmt(key: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if key in ("params", "macs"):
        return f"{value / 1e9:.2f} G" if value >= 1e9 else f"{value / 1e6:.2f} M"
    if key.startswith(("val_", "test_", "f1_", "recall_")):
        return f"{100 * value:.2f}"
    if key.startswith("infer_ms"):
        return f"{value:.3f}" if value < 1 else f"{value:.2f}"
    if key in ("train_s_per_epoch", "load_avg"):
        return f"{value:.1f}"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


_HEADINGS = {"label": "Model", "params": "Params", "macs": "MACs", "input": "Input", "classes": "Classes",
             "data": "Split", "epochs": "Epochs", "best_epoch": "Best", "train_s_per_epoch": "Train s/epoch",
             "val_acc": "Val acc %", "val_f1_macro": "Val macro F1 %", "test_acc": "Test acc %",
             "f1_macro": "Macro F1 %", "f1_weighted": "Weighted F1 %", "load_avg": "Load"}
# The Markdown leaves out what the CSV has for machines: the registry name and the run directory.
_MD_SKIP = ("model", "run_dir", "scored_on")


def _heading(key: str) -> str:
    if key.startswith("infer_ms_b"):
        return f"ms/img b{key[len('infer_ms_b'):]}"
    if key.startswith("recall_"):
        return f"R {key[len('recall_'):][:3]}"
    return _HEADINGS.get(key, key)


def write_table(
    results: Sequence[ModelResult],
    out_dir: str | Path,
    *,
    summary: bool = False,
    notes: Sequence[str] = (),
) -> tuple[Path, Path]:
    """Write `compare.csv` and `compare.md` into `out_dir`; returns both paths.

    Args:
        results: one per model, in table order.
        summary: append mean and std rows of the numeric columns.
        notes: extra lines for the Markdown header (e.g. the command that made the table).
    """
    import torch

    from ..train.hardware import cpu_model

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = table_rows(results)
    if summary and rows:
        rows += _summary_rows(rows)
    columns = list(rows[0]) if rows else ["label"]
    csv_path = out_dir / "compare.csv"
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows([{k: ("" if row.get(k) is None else row.get(k)) for k in columns} for row in rows])

    scored = sorted({r.scored_on for r in results})
    md_cols = [c for c in columns if c not in _MD_SKIP]
    lines = [
        "# mien compare",
        "",
        f"- CPU: {cpu_model()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}; "
        f"written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "- Protocol: every model's checkpoint is chosen on the validation split (PublicTest for the "
        "official split); the test split (PrivateTest) is only reported, never used for a choice.",
        f"- Macro/weighted F1 and per-class recall (R ...) are on the {' / '.join(scored) or 'test'} split; "
        "accuracies and F1 in %; inference is fp32 on the CPU at the model's native input, model only.",
        *[f"- {note}" for note in notes],
        "",
        "| " + " | ".join(_heading(c) for c in md_cols) + " |",
        "|" + "|".join("---" if c in ("label", "input", "data") else "---:" for c in md_cols) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(c, row.get(c)) for c in md_cols) + " |")
    md_path = out_dir / "compare.md"
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path
