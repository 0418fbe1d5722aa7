"""Explanation figures as PNG files: one face with its overlays, per-class mean maps, confident examples.

Built on `matplotlib.figure.Figure` (Agg canvas, no pyplot) like `mien.evaluate.plots`; matplotlib
is imported inside each function. Faces are upscaled before blending so overlays are not blocky.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError
from ..evaluate.plots import RIGHT_COLOR, WRONG_COLOR
from .gradcam import _resize, overlay

DISPLAY = 144
"""Side in pixels at which faces and maps are blended for display (3x a 48x48 crop)."""


def _upscale(face: np.ndarray, side: int = DISPLAY) -> np.ndarray:
    """(H, W) gray face -> (side, side) float in [0, 255], bilinear."""
    return np.clip(_resize(np.asarray(face, dtype=np.float32)[None], (side, side))[0], 0, 255)


def face_overlay(face: np.ndarray, cam: np.ndarray, *, alpha: float = 0.45, side: int = DISPLAY) -> np.ndarray:
    """(side, side, 3) uint8: `cam` blended over the upscaled grayscale `face`."""
    return overlay(_upscale(face, side).astype(np.uint8), cam, alpha=alpha)


def _save(fig: object, path: str | Path, dpi: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)  # type: ignore[attr-defined]
    return path


def _blank(ax: object) -> None:
    ax.set_xticks([])  # type: ignore[attr-defined]
    ax.set_yticks([])  # type: ignore[attr-defined]


def _frame(ax: object, color: str) -> None:
    for spine in ax.spines.values():  # type: ignore[attr-defined]
        spine.set_edgecolor(color)
        spine.set_linewidth(3)


def plot_face_explanation(
    face: np.ndarray,
    cams: np.ndarray,
    probs: np.ndarray,
    names: Sequence[str],
    path: str | Path,
    *,
    classes: Sequence[int],
    title: str = "",
    dpi: int = 110,
) -> Path:
    """The face crop beside one Grad-CAM overlay per explained class, in a strip.

    Args:
        face: (H, W) uint8 grayscale crop, as the model saw it.
        cams: (K, H, W) maps in [0, 1], one per entry of `classes`.
        probs: (C,) class probabilities of this face.
        names: C class names.
        classes: K class indices that `cams` explain (the predicted one, or all).
        title: figure title; the top three probabilities are appended.

    Returns:
        The path written.
    """
    from matplotlib.figure import Figure

    cams, probs = np.asarray(cams), np.asarray(probs)
    if cams.ndim != 3 or len(cams) != len(classes):
        raise DataError(f"cams must be ({len(classes)}, H, W), one per class in {list(classes)}, got {cams.shape}")
    if probs.shape != (len(names),):
        raise DataError(f"probs must be ({len(names)},) like names, got shape {probs.shape}")
    top = np.argsort(probs)[::-1][:3]
    summary = "  ".join(f"{names[c]} {100 * probs[c]:.1f}%" for c in top)
    panels = len(classes) + 1
    fig = Figure(figsize=(1.9 * panels, 2.45))
    fig.suptitle(f"{title}\n{summary}" if title else summary, fontsize=9)
    axes = fig.subplots(1, panels, squeeze=False)[0]
    axes[0].imshow(_upscale(face), cmap="gray", vmin=0, vmax=255)
    axes[0].set_title("face (48x48 input)", fontsize=8)
    predicted = int(np.argmax(probs))
    for ax, c, cam in zip(axes[1:], classes, cams):
        ax.imshow(face_overlay(face, cam))
        ax.set_title(f"{names[c]} {100 * probs[c]:.1f}%", fontsize=8,
                     fontweight="bold" if c == predicted else "normal")
    for ax in axes:
        _blank(ax)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.03, top=0.72, wspace=0.08)
    return _save(fig, path, dpi)


def plot_class_mean_cams(
    mean_faces: np.ndarray,
    mean_cams: np.ndarray,
    counts: Sequence[int],
    names: Sequence[str],
    path: str | Path,
    *,
    title: str = "",
    dpi: int = 110,
) -> Path:
    """Per class: the mean face (top row) and the mean Grad-CAM map over it (bottom row).

    Maps share one 0..1 colour scale, so a class whose maps disagree from face to face shows up
    as a flat, low mean rather than being stretched to look focused.

    Args:
        mean_faces: (C, H, W) mean faces on the 0..255 scale.
        mean_cams: (C, H, W) mean maps in [0, 1].
        counts: faces averaged per class; 0 leaves the panel empty.
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    c = len(names)
    mean_faces, mean_cams = np.asarray(mean_faces), np.asarray(mean_cams)
    if mean_faces.shape[0] != c or mean_cams.shape[0] != c or len(counts) != c:
        raise DataError(f"need one mean face, map and count per class ({c}), got {mean_faces.shape[0]}, "
                        f"{mean_cams.shape[0]} and {len(counts)}")
    fig = Figure(figsize=(1.75 * c + 0.9, 4.3))
    if title:
        fig.suptitle(title, fontsize=9)
    axes = fig.subplots(2, c, squeeze=False)
    for k in range(c):
        top, bottom = axes[0, k], axes[1, k]
        top.set_title(f"{names[k]} (n={counts[k]})", fontsize=8)
        if counts[k]:
            top.imshow(_upscale(mean_faces[k]), cmap="gray", vmin=0, vmax=255)
            bottom.imshow(overlay(_upscale(mean_faces[k]).astype(np.uint8), mean_cams[k]))
        else:
            bottom.text(0.5, 0.5, "no correct\nfaces", ha="center", va="center", fontsize=7,
                        transform=bottom.transAxes)
        _blank(top)
        _blank(bottom)
    axes[0, 0].set_ylabel("mean face", fontsize=8)
    axes[1, 0].set_ylabel("mean Grad-CAM", fontsize=8)
    fig.subplots_adjust(left=0.04, right=0.9, bottom=0.03, top=0.86 if title else 0.92, wspace=0.06, hspace=0.12)
    bar = fig.add_axes((0.92, 0.08, 0.015, 0.36))
    fig.colorbar(ScalarMappable(Normalize(0, 1), colormaps["jet"]), cax=bar)
    bar.tick_params(labelsize=7)
    return _save(fig, path, dpi)


def plot_confident_examples(
    images: np.ndarray,
    cams: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    confidence: np.ndarray,
    right: Sequence[np.ndarray],
    wrong: Sequence[np.ndarray],
    names: Sequence[str],
    path: str | Path,
    *,
    title: str = "",
    dpi: int = 110,
) -> Path:
    """One row per true class: its most confident right predictions, then its most confident wrong ones.

    Each tile is the face beside its Grad-CAM overlay for the predicted class, captioned
    "true / predicted (confidence)" and framed green (right) or red (wrong).

    Args:
        images: (N, H, W) uint8 faces; cams: (N, H, W) maps for each face's predicted class.
        y_true, y_pred: (N,) class indices; confidence: (N,) probability of the prediction.
        right, wrong: per class, indices into the arrays (at most `per_class` each), best first.
    """
    from matplotlib.figure import Figure

    c = len(names)
    if len(right) != c or len(wrong) != c:
        raise DataError(f"right and wrong need one index array per class ({c}), got {len(right)} and {len(wrong)}")
    per = max([len(r) for r in right] + [len(w) for w in wrong] + [1])
    cols = 2 * per
    fig = Figure(figsize=(2.3 * cols, 1.45 * c + 0.7))
    fig.suptitle((title + "\n" if title else "") + f"most confident right (left {per}) and wrong (right {per}) "
                 "per true class: face | Grad-CAM of the predicted class", fontsize=9)
    axes = fig.subplots(c, cols, squeeze=False)
    for k in range(c):
        cells = [(i, RIGHT_COLOR) for i in right[k]] + [None] * (per - len(right[k]))
        cells += [(i, WRONG_COLOR) for i in wrong[k]] + [None] * (per - len(wrong[k]))
        for ax, cell in zip(axes[k], cells):
            _blank(ax)
            if cell is None:  # spines hidden, not the axis: the row label must stay visible
                for spine in ax.spines.values():
                    spine.set_visible(False)
                continue
            i, color = cell
            tile = np.concatenate([np.repeat(_upscale(images[i])[..., None], 3, axis=2).astype(np.uint8),
                                   face_overlay(images[i], cams[i])], axis=1)
            ax.imshow(tile)
            _frame(ax, color)
            ax.set_title(f"{names[y_true[i]]} / {names[y_pred[i]]} ({100 * float(confidence[i]):.0f}%)",
                         color=color, fontsize=7, pad=2)
        axes[k, 0].set_ylabel(names[k], fontsize=8)
    fig.subplots_adjust(left=0.03, right=0.99, bottom=0.02, top=1 - 0.75 / fig.get_figheight(),
                        wspace=0.08, hspace=0.35)
    return _save(fig, path, dpi)
