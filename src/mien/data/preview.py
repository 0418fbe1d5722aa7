"""PNG grids of sample faces per class, raw or augmented, to eyeball a dataset and its augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import AugmentConfig
from ..errors import ConfigError, DataError
from ..labels import TRAINING
from .arrays import FaceArrays


def _augmented(images: np.ndarray, augment: AugmentConfig, seed: int) -> np.ndarray:
    """(M, H, W) uint8 faces through `augment_batch`, seeded."""
    import torch

    from .augment import augment_batch

    x = torch.from_numpy(images).float().div(255).unsqueeze(1)  # (M, 1, H, W) in [0, 1]
    out = augment_batch(x, augment, generator=torch.Generator().manual_seed(seed))
    return out.squeeze(1).mul(255).round().to(torch.uint8).numpy()


def write_preview_grid(faces: FaceArrays, path: str | Path, *, per_class: int = 8,
                       augment: AugmentConfig | None = None, seed: int = 0) -> Path:
    """Write a PNG with one row per class of `per_class` random faces.

    Samples come from the Training usage (all faces if there is none), chosen with
    `np.random.default_rng(seed)`; each row is labelled with its class name and face count.

    Args:
        faces: the dataset.
        path: the PNG to write; missing parent folders are created.
        per_class: faces per row.
        augment: if given, the samples go through `augment_batch` first (seeded with `seed`).
        seed: picks the samples and the augmentation parameters.

    Returns:
        The written path.
    """
    if per_class < 1:
        raise ConfigError(f"per_class must be >= 1, got {per_class}")
    if len(faces) == 0:
        raise DataError("cannot preview an empty dataset")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    training = faces.usage == TRAINING
    pool = faces.subset(training) if training.any() else faces
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(len(faces.names)):
        members = np.flatnonzero(pool.labels == c)
        rows.append(rng.choice(members, size=min(per_class, members.size), replace=False))
    chosen = np.concatenate(rows).astype(np.int64)
    images = pool.images[chosen]
    if augment is not None and chosen.size:
        images = _augmented(images, augment, seed)

    counts = pool.class_counts()
    side_h, side_w = faces.images.shape[1:]
    gap = max(2, side_h // 16)
    # One mosaic, drawn with a single imshow: far faster than an axes per face.
    mosaic = np.full((len(faces.names) * (side_h + gap) - gap, per_class * (side_w + gap) - gap), 255, np.uint8)
    start = 0
    for c, row in enumerate(rows):
        for j in range(row.size):
            top, left = c * (side_h + gap), j * (side_w + gap)
            mosaic[top:top + side_h, left:left + side_w] = images[start + j]
        start += row.size

    scale = 1.1 / side_h  # inches per face pixel: 48-pixel faces at ~1.1 inch
    label_w, title_h = 1.3, 0.45
    width, height = mosaic.shape[1] * scale + label_w + 0.1, mosaic.shape[0] * scale + title_h + 0.1
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)  # renders off-screen; no display or pyplot state needed
    ax = fig.add_axes((label_w / width, 0.1 / height, 1 - (label_w + 0.1) / width, 1 - (title_h + 0.2) / height))
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_axis_off()
    for c, name in enumerate(faces.names):
        ax.text(-gap * 2, c * (side_h + gap) + side_h / 2, f"{name}\n({counts[c]:,})", ha="right", va="center",
                fontsize=9)
    source = "Training" if training.any() else "all"
    kind = "augmented" if augment is not None else "raw"
    fig.suptitle(f"{kind} {source} faces, {per_class} per class (seed {seed})", fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
