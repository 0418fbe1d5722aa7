"""Train/val/test splits as index arrays: official usage, stratified random, stratified k-fold.

Pure functions of label/usage arrays and an explicit `np.random.Generator`; no I/O, no global
random state. scikit-learn does the stratification, seeded from the generator, so the same
generator state always gives the same split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import ConfigError, DataError
from ..labels import PRIVATE_TEST, PUBLIC_TEST, TRAINING, USAGES


@dataclass(frozen=True)
class SplitIndices:
    """Sorted int64 indices into one FaceArrays; `test` may be empty."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _index(values: np.ndarray) -> np.ndarray:
    return np.sort(np.asarray(values, dtype=np.int64))


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise DataError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"labels must be integer class indices, got dtype {labels.dtype}")
    if labels.min() < 0:
        raise DataError(f"labels must be >= 0, got {labels.min()}")
    return labels


def _check_min_count(labels: np.ndarray, need: int, what: str) -> None:
    """Every present class needs `need` faces, else stratification cannot put it in each part."""
    classes, counts = np.unique(labels, return_counts=True)
    small = counts < need
    if small.any():
        c, n = classes[small][0], counts[small][0]
        raise DataError(f"class label {c} has only {n} face(s); {what} needs at least {need} per class "
                        f"(drop the class with data.classes or use fewer parts)")


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**32 - 1))


def official_split(usage: np.ndarray) -> SplitIndices:
    """FER2013's own split: Training -> train, PublicTest -> val, PrivateTest -> test.

    Args:
        usage: (N,) usage codes (0 Training, 1 PublicTest, 2 PrivateTest).

    Raises:
        DataError: on unknown codes, or when there are no Training or no PublicTest faces.
    """
    usage = np.asarray(usage)
    if usage.ndim != 1 or usage.size == 0:
        raise DataError(f"usage must be a non-empty 1-D array, got shape {usage.shape}")
    bad = ~np.isin(usage, (TRAINING, PUBLIC_TEST, PRIVATE_TEST))
    if bad.any():
        raise DataError(f"unknown usage code {usage[bad][0]} at index {np.flatnonzero(bad)[0]}; "
                        f"codes are 0..{len(USAGES) - 1} for {', '.join(USAGES)}")
    split = SplitIndices(_index(np.flatnonzero(usage == TRAINING)), _index(np.flatnonzero(usage == PUBLIC_TEST)),
                         _index(np.flatnonzero(usage == PRIVATE_TEST)))
    for name, part, code in (("train", split.train, TRAINING), ("val", split.val, PUBLIC_TEST)):
        if part.size == 0:
            raise DataError(f"the official split needs {USAGES[code]} faces for {name}, found none; "
                            f"use data.split=stratified for a source without usage")
    return split


def _check_ratios(ratios: Sequence[float]) -> tuple[float, ...]:
    ratios = tuple(float(r) for r in ratios)
    if len(ratios) not in (2, 3):
        raise ConfigError(f"split ratios need 2 (train/val) or 3 (train/val/test) fractions, got {ratios}")
    if any(r < 0 for r in ratios) or abs(sum(ratios) - 1) > 1e-6:
        raise ConfigError(f"split ratios must be non-negative and sum to 1, got {ratios} (sum {sum(ratios):g})")
    if ratios[0] == 0 or ratios[1] == 0:
        raise ConfigError(f"split ratios need a non-zero train and val fraction, got {ratios}")
    return ratios


def _split_off(index: np.ndarray, labels: np.ndarray, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (rest, part) of `index` with `size` faces in `part`."""
    from sklearn.model_selection import train_test_split

    try:
        rest, part = train_test_split(index, test_size=size, stratify=labels[index], random_state=seed)
    except ValueError as exc:  # sklearn's message says which constraint failed
        raise DataError(f"cannot stratify {len(index)} faces into parts of {len(index) - size} and {size}: {exc}") \
            from None
    return rest, part


def stratified_split(labels: np.ndarray, ratios: Sequence[float], *, rng: np.random.Generator) -> SplitIndices:
    """A random split keeping class proportions in every part.

    Args:
        labels: (N,) class indices.
        ratios: train/val or train/val/test fractions summing to 1, e.g. (0.8, 0.1, 0.1) or (0.8, 0.2).
        rng: source of the scikit-learn seed.

    Returns:
        Parts of sizes round(N * ratio) for val and test, the rest in train.
    """
    labels = _check_labels(labels)
    ratios = _check_ratios(ratios)
    parts = sum(r > 0 for r in ratios)
    _check_min_count(labels, parts, f"a stratified split into {parts} parts")
    n = labels.size
    n_val = round(n * ratios[1])
    n_test = round(n * ratios[2]) if len(ratios) == 3 else 0
    if n_val == 0 or (len(ratios) == 3 and ratios[2] > 0 and n_test == 0):
        raise DataError(f"{n} faces are too few for ratios {ratios}: a non-zero part would be empty")
    seed = _seed(rng)
    rest = np.arange(n, dtype=np.int64)
    test = np.empty(0, dtype=np.int64)
    if n_test:
        rest, test = _split_off(rest, labels, n_test, seed)
    train, val = _split_off(rest, labels, n_val, seed + 1)
    return SplitIndices(_index(train), _index(val), _index(test))


def kfold_split(labels: np.ndarray, *, folds: int, fold: int, rng: np.random.Generator) -> SplitIndices:
    """Fold `fold` of a stratified `folds`-fold split: val is the held-out fold, test is empty.

    The partition depends only on the generator's state, so pass a generator in the same state
    (e.g. `np.random.default_rng(seed)`) for every fold to get disjoint folds covering all faces.
    """
    labels = _check_labels(labels)
    if folds < 2:
        raise ConfigError(f"k-fold needs folds >= 2, got {folds}")
    if not 0 <= fold < folds:
        raise ConfigError(f"fold must lie in [0, {folds}), got {fold}")
    _check_min_count(labels, folds, f"a stratified {folds}-fold split")
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=_seed(rng))
    for i, (train, val) in enumerate(splitter.split(np.zeros(labels.size), labels)):
        if i == fold:
            return SplitIndices(_index(train), _index(val), np.empty(0, dtype=np.int64))
    raise AssertionError("unreachable: StratifiedKFold yields exactly `folds` splits")


def stratified_subset(labels: np.ndarray, n: int, *, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of `n` faces drawn without replacement, keeping class proportions.

    For quick runs on a few thousand training faces; `n` >= len(labels) returns every index.
    """
    labels = _check_labels(labels)
    if n < 1:
        raise ConfigError(f"a subset needs n >= 1 faces, got {n}")
    if n >= labels.size:
        return np.arange(labels.size, dtype=np.int64)
    keep, _ = _split_off(np.arange(labels.size, dtype=np.int64), labels, labels.size - n, _seed(rng))
    return _index(keep)
