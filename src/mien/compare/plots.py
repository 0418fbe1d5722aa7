"""Comparison figures: score bars, confusion matrices side by side, validation curves.

Built on `matplotlib.figure.Figure` (Agg canvas, no pyplot), imported inside each function.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError
from .run import ModelResult


def _save(fig: object, path: str | Path, dpi: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)  # type: ignore[attr-defined]
    return path


def _need(results: Sequence[ModelResult]) -> None:
    if not results:
        raise DataError("a comparison figure needs at least one model result")


def plot_scores(results: Sequence[ModelResult], path: str | Path, *, dpi: int = 120) -> Path:
    """Grouped bars per model: val accuracy, test accuracy (when there is a test split), macro F1."""
    from matplotlib.figure import Figure

    _need(results)
    series = [("val acc", [r.val_acc for r in results])]
    if any(r.test_acc is not None for r in results):
        series.append(("test acc", [math.nan if r.test_acc is None else r.test_acc for r in results]))
    series.append((f"macro F1 ({'/'.join(sorted({r.scored_on for r in results}))})", [r.f1_macro for r in results]))
    x = np.arange(len(results))
    width = 0.8 / len(series)
    fig = Figure(figsize=(max(5.0, 1.1 * len(results) + 2), 4.2), layout="constrained")
    ax = fig.add_subplot()
    for i, (name, values) in enumerate(series):
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, [100 * v for v in values], width, label=name)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
    ax.set_xticks(x, [r.label for r in results], rotation=30 if len(results) > 4 else 0, ha="right"
                  if len(results) > 4 else "center")
    ax.set_ylabel("%")
    ax.set_ylim(0, 108)  # room for the value labels above 100 % bars
    fig.legend(loc="outside lower center", fontsize=8, ncols=len(series))
    ax.set_title("Model comparison (checkpoint chosen on val)")
    return _save(fig, path, dpi)


def plot_confusions(results: Sequence[ModelResult], path: str | Path, *, dpi: int = 110) -> Path:
    """Row-normalised confusion matrices (on each result's scored split), one panel per model."""
    from matplotlib.figure import Figure

    _need(results)
    cols = min(len(results), 5)
    rows = math.ceil(len(results) / cols)
    fig = Figure(figsize=(3.4 * cols + 0.8, 3.4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    for ax, r in zip(axes.flat, results):
        counts = np.asarray(r.confusion, dtype=np.float64)
        totals = counts.sum(axis=1, keepdims=True)
        norm = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        image = ax.imshow(100 * norm, cmap="Blues", vmin=0, vmax=100)
        short = [c[:3] for c in r.classes]
        ax.set_xticks(range(len(short)), short, fontsize=7, rotation=45)
        ax.set_yticks(range(len(short)), short, fontsize=7)
        for (i, j), value in np.ndenumerate(norm):
            ax.text(j, i, f"{100 * value:.0f}", ha="center", va="center", fontsize=6,
                    color="white" if value > 0.5 else "black")
        ax.set_title(f"{r.label} ({r.scored_on})", fontsize=9)
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_ylabel("true", fontsize=7)
    for ax in list(axes.flat)[len(results):]:
        ax.set_axis_off()
    fig.colorbar(image, ax=axes, label="% of true class", shrink=0.8)
    return _save(fig, path, dpi)


def plot_curves(results: Sequence[ModelResult], path: str | Path, *, dpi: int = 120) -> Path:
    """Validation accuracy and training loss per epoch of every model, from each run's metrics.csv."""
    from matplotlib.figure import Figure

    from ..evaluate.report import read_metrics_csv

    _need(results)
    fig = Figure(figsize=(10, 4), layout="constrained")
    acc_ax, loss_ax = fig.subplots(1, 2)
    for r in results:
        history = read_metrics_csv(Path(r.run_dir) / "metrics.csv")
        epochs = [row["epoch"] for row in history]
        acc_ax.plot(epochs, [100 * row["val_acc"] for row in history], marker=".", label=r.label)
        loss_ax.plot(epochs, [row["train_loss"] for row in history], marker=".", label=r.label)
    from matplotlib.ticker import MaxNLocator

    for ax in (acc_ax, loss_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    acc_ax.set(xlabel="epoch", ylabel="val accuracy %", title="Validation accuracy")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="Training loss")
    acc_ax.legend(fontsize=7)
    return _save(fig, path, dpi)
