"""Evaluation figures as PNG files: confusion matrix, training curves, true-vs-predicted faces.

Figures are built on `matplotlib.figure.Figure` directly (Agg canvas, no pyplot), so nothing
touches a global backend or figure registry; matplotlib is imported inside each function.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import DataError

RIGHT_COLOR = "#1a9641"
"""Green: frame and caption of a correctly classified face."""
WRONG_COLOR = "#d7191c"
"""Red: frame and caption of a misclassified face."""


def _save(fig: object, path: str | Path, dpi: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)  # type: ignore[attr-defined]
    return path


def plot_confusion(
    confusion_normalized: np.ndarray | Sequence[Sequence[float]],
    names: Sequence[str],
    path: str | Path,
    *,
    counts: np.ndarray | Sequence[Sequence[int]] | None = None,
    title: str = "",
    dpi: int = 120,
) -> Path:
    """Heatmap of a row-normalised confusion matrix (rows true, columns predicted).

    Each cell shows its percentage of the true class and, if `counts` is given, the raw count.

    Returns:
        The path written.
    """
    from matplotlib.figure import Figure

    norm = np.asarray(confusion_normalized, dtype=np.float64)
    n = len(names)
    if norm.shape != (n, n):
        raise DataError(f"confusion_normalized must be ({n}, {n}) for classes {list(names)}, got {norm.shape}")
    count_arr = None if counts is None else np.asarray(counts)
    if count_arr is not None and count_arr.shape != (n, n):
        raise DataError(f"counts must be ({n}, {n}) like confusion_normalized, got {count_arr.shape}")

    side = max(4.5, 0.85 * n + 2.0)
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(norm * 100, cmap="Blues", vmin=0, vmax=100)
    fig.colorbar(image, ax=ax, label="% of true class", fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), [str(x) for x in names], rotation=40, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n), [str(x) for x in names])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    fontsize = 9 if n <= 8 else 7
    for i in range(n):
        for j in range(n):
            text = f"{norm[i, j] * 100:.1f}%"
            if count_arr is not None:
                text += f"\n({int(count_arr[i, j])})"
            # White text on dark cells keeps every label readable.
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                    color="white" if norm[i, j] > 0.5 else "black")
    return _save(fig, path, dpi)


def _series(history: Sequence[Mapping[str, float]], key: str) -> tuple[list[float], list[float]]:
    """(epochs, values) of `key` over the rows that have a finite value for it."""
    xs, ys = [], []
    for i, row in enumerate(history):
        if key not in row:
            continue
        try:
            value = float(row[key])
            epoch = float(row.get("epoch", i + 1))
        except (TypeError, ValueError):
            raise DataError(f"history row {i}: {key}={row.get(key)!r}, epoch={row.get('epoch')!r} "
                            "must be numbers") from None
        if math.isfinite(value):
            xs.append(epoch if math.isfinite(epoch) else float(i + 1))
            ys.append(value)
    return xs, ys


def plot_curves(history: Sequence[Mapping[str, float]], path: str | Path, *, dpi: int = 120) -> Path:
    """Loss and accuracy per epoch, train vs val, from metrics.csv rows.

    Rows use the keys epoch, train_loss, train_acc, val_loss, val_acc; a missing key or a NaN value
    is skipped (a missing epoch counts rows from 1). The best val_acc epoch is marked.

    Returns:
        The path written.
    """
    from matplotlib.figure import Figure

    rows = list(history)
    fig = Figure(figsize=(10, 4), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, metric, label in ((axes[0], "loss", "loss"), (axes[1], "acc", "accuracy")):
        drawn = False
        for split in ("train", "val"):
            xs, ys = _series(rows, f"{split}_{metric}")
            if xs:
                ax.plot(xs, ys, marker="o" if len(xs) <= 30 else None, markersize=3, label=split)
                drawn = True
        if drawn:
            ax.legend()
        else:
            ax.text(0.5, 0.5, f"no {label} recorded", transform=ax.transAxes, ha="center", va="center")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(label)
        ax.grid(alpha=0.3)
    xs, ys = _series(rows, "val_acc")
    if xs:
        best = int(np.argmax(ys))
        axes[1].axvline(xs[best], color="gray", linestyle=":", linewidth=1)
        # Label on the inner side of the marker so it stays inside the panel.
        right_half = xs[best] > (min(xs) + max(xs)) / 2
        axes[1].annotate(f"best {ys[best]:.4f} @ {xs[best]:g}", (xs[best], ys[best]),
                         textcoords="offset points", xytext=(-4 if right_half else 4, -12),
                         ha="right" if right_half else "left", fontsize=8)
    return _save(fig, path, dpi)


def plot_prediction_grid(
    images: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    confidence: np.ndarray,
    names: Sequence[str],
    path: str | Path,
    *,
    cols: int = 8,
    dpi: int = 120,
) -> Path:
    """A grid of faces captioned "true / pred (conf%)", framed green when right and red when wrong.

    Args:
        images: (N, H, W) or (N, 1, H, W) faces; uint8 is shown on a fixed 0..255 scale.
        y_true, y_pred: (N,) class indices into `names`.
        confidence: (N,) probability of the predicted class, in [0, 1].
        cols: tiles per row (fewer if N is smaller).

    Returns:
        The path written.
    """
    from matplotlib.figure import Figure

    images = np.asarray(images)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    n = len(images)
    if images.ndim != 3 or n == 0:
        raise DataError(f"images must be a non-empty (N, H, W) array, got shape {images.shape}")
    y_true, y_pred, confidence = (np.asarray(a) for a in (y_true, y_pred, confidence))
    for label, arr in (("y_true", y_true), ("y_pred", y_pred), ("confidence", confidence)):
        if arr.shape != (n,):
            raise DataError(f"{label} must be ({n},) like images, got shape {arr.shape}")
    for label, arr in (("y_true", y_true), ("y_pred", y_pred)):
        if arr.min() < 0 or arr.max() >= len(names):
            raise DataError(f"{label} must lie in [0, {len(names)}), got [{arr.min()}, {arr.max()}]")
    if cols < 1:
        raise DataError(f"cols must be >= 1, got {cols}")

    cols = min(cols, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(1.75 * cols, 1.85 * rows + 0.4))
    fig.suptitle("true / predicted (confidence)", fontsize=9)
    axes = fig.subplots(rows, cols, squeeze=False)
    scale = {"vmin": 0, "vmax": 255} if images.dtype == np.uint8 else {}
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.set_axis_off()
            continue
        color = RIGHT_COLOR if y_true[k] == y_pred[k] else WRONG_COLOR
        ax.imshow(images[k], cmap="gray", interpolation="nearest", **scale)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_edgecolor(color)
            spine.set_linewidth(3)
        ax.set_title(f"{names[y_true[k]]} / {names[y_pred[k]]} ({100 * float(confidence[k]):.0f}%)",
                     color=color, fontsize=7, pad=3)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 0.45 / fig.get_figheight(),
                        wspace=0.12, hspace=0.35)
    return _save(fig, path, dpi)
