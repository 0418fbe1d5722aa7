"""Class imbalance: loss weights, a class-balanced sampler, and class selection with remapping.

FER2013 is skewed (happy ~25 % of faces, disgust ~1.5 %); these are the pure-array tools the
pipeline uses for `data.balance` and `data.classes`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ConfigError, DataError
from ..labels import canonical_emotion
from .arrays import FaceArrays


def _counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"labels must be a non-empty 1-D integer array, got {labels.dtype} {labels.shape}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise DataError(f"labels must lie in [0, {num_classes}), got [{labels.min()}, {labels.max()}]")
    return np.bincount(labels, minlength=num_classes)


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(C,) float32 loss weights w_c = 1/n_c, scaled so they sum to `num_classes`.

    Raises:
        DataError: if a class has no faces (its weight would be infinite).
    """
    if num_classes < 1:
        raise ConfigError(f"num_classes must be >= 1, got {num_classes}")
    counts = _counts(labels, num_classes)
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        raise DataError(f"class label {missing[0]} has no faces, so it has no class weight; "
                        f"drop it with data.classes or check the split")
    inverse = 1.0 / counts.astype(np.float64)
    return (inverse * num_classes / inverse.sum()).astype(np.float32)


def balanced_indices(labels: np.ndarray, n: int, *, rng: np.random.Generator) -> np.ndarray:
    """(n,) int64 indices drawn with replacement so that every present class is equally likely.

    One epoch of a class-balanced sampler: face i is drawn with probability proportional to
    1/n_{label_i}, so rare classes repeat and common ones are under-sampled.
    """
    if n < 1:
        raise ConfigError(f"a balanced sample needs n >= 1 indices, got {n}")
    labels = np.asarray(labels)
    counts = _counts(labels, int(labels.max()) + 1 if labels.size else 1)
    p = 1.0 / counts[labels]
    return rng.choice(labels.size, size=n, replace=True, p=p / p.sum()).astype(np.int64)


def select_classes(faces: FaceArrays, classes: Sequence[str]) -> FaceArrays:
    """Keep only faces of `classes` (any spelling `canonical_emotion` knows), labelled in that order.

    E.g. six classes without disgust: `select_classes(faces, [c for c in EMOTIONS if c != "disgust"])`
    keeps angry as 0 and makes fear 1, happy 2, and so on.

    Raises:
        DataError: on a class the faces do not have, or a class given twice.
    """
    wanted = tuple(canonical_emotion(c) for c in classes)
    if not wanted:
        raise DataError("select_classes needs at least one class")
    if len(set(wanted)) != len(wanted):
        raise DataError(f"classes {tuple(classes)} name a class twice")
    have = {name: i for i, name in enumerate(faces.names)}
    unknown = [c for c in wanted if c not in have]
    if unknown:
        raise DataError(f"class {unknown[0]!r} is not in these faces; they have {', '.join(faces.names)}")
    old = np.array([have[c] for c in wanted], dtype=np.int64)
    # new label of each old label; -1 for dropped classes (never read: those faces are masked out)
    remap = np.full(len(faces.names), -1, dtype=np.int64)
    remap[old] = np.arange(len(old))
    keep = np.isin(faces.labels, old)
    return FaceArrays(faces.images[keep], remap[faces.labels[keep]], faces.usage[keep], wanted)
