"""Splits: sizes, stratification, disjointness by index and by image content, determinism."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from conftest import make_faces
from mien.data.splits import (SplitIndices, kfold_split, official_split, stratified_split,
                              stratified_subset)
from mien.errors import ConfigError, DataError


def imbalanced_labels(n: int = 1000, seed: int = 0) -> np.ndarray:
    """Class frequencies 40/25/15/10/5/3/2 %, like FER2013's skew."""
    rng = np.random.default_rng(seed)
    return rng.choice(7, size=n, p=[0.40, 0.25, 0.15, 0.10, 0.05, 0.03, 0.02]).astype(np.int64)


def parts(split: SplitIndices) -> list[np.ndarray]:
    return [split.train, split.val, split.test]


def assert_partition(split: SplitIndices, n: int) -> None:
    """Disjoint, int64, sorted, and together every index exactly once."""
    for part in parts(split):
        assert part.dtype == np.int64
        assert np.all(np.diff(part) > 0)
    joined = np.concatenate(parts(split))
    assert np.array_equal(np.sort(joined), np.arange(n))


def proportions(labels: np.ndarray) -> np.ndarray:
    return np.bincount(labels, minlength=7) / labels.size


def test_official_split_follows_usage() -> None:
    usage = np.array([0, 1, 2, 0, 0, 2, 1, 0], dtype=np.int8)
    split = official_split(usage)
    assert split.train.tolist() == [0, 3, 4, 7]
    assert split.val.tolist() == [1, 6]
    assert split.test.tolist() == [2, 5]
    assert_partition(split, usage.size)


def test_official_split_allows_no_test_but_needs_train_and_val() -> None:
    assert official_split(np.array([0, 1, 0])).test.size == 0
    with pytest.raises(DataError, match="PublicTest"):
        official_split(np.array([0, 0, 2]))
    with pytest.raises(DataError, match="usage code 5"):
        official_split(np.array([0, 1, 5]))


@pytest.mark.parametrize("ratios", [(0.8, 0.1, 0.1), (0.8, 0.2), (0.6, 0.2, 0.2)])
def test_stratified_split_sizes_and_class_proportions(ratios: tuple[float, ...]) -> None:
    labels = imbalanced_labels()
    split = stratified_split(labels, ratios, rng=np.random.default_rng(0))
    assert_partition(split, labels.size)
    sizes = [p.size for p in parts(split)]
    expected = [round(r * labels.size) for r in ratios] + [0] * (3 - len(ratios))
    assert sizes[1:] == expected[1:]
    assert sizes[0] == labels.size - sum(expected[1:])
    whole = proportions(labels)
    for part in parts(split):
        if part.size:
            # stratification keeps every class share within one face of the whole's share
            assert np.abs(proportions(labels[part]) - whole).max() <= 1.0 / part.size + 1e-9


def test_stratified_split_is_deterministic_per_seed_and_differs_across_seeds() -> None:
    labels = imbalanced_labels()
    a = stratified_split(labels, (0.8, 0.1, 0.1), rng=np.random.default_rng(7))
    b = stratified_split(labels, (0.8, 0.1, 0.1), rng=np.random.default_rng(7))
    c = stratified_split(labels, (0.8, 0.1, 0.1), rng=np.random.default_rng(8))
    assert all(np.array_equal(x, y) for x, y in zip(parts(a), parts(b)))
    assert not np.array_equal(a.val, c.val)


@pytest.mark.parametrize("ratios", [(0.8, 0.3), (0.5, 0.2, 0.2), (0.5, 0.5, 0.0, 0.0), (1.0,), (0.0, 1.0),
                                    (1.2, -0.2)])
def test_stratified_split_rejects_bad_ratios(ratios: tuple[float, ...]) -> None:
    with pytest.raises(ConfigError, match="ratios"):
        stratified_split(imbalanced_labels(), ratios, rng=np.random.default_rng(0))


def test_stratified_split_names_a_class_too_small_to_stratify() -> None:
    labels = np.array([0] * 20 + [1] * 20 + [2] * 2)
    with pytest.raises(DataError, match="class label 2 has only 2"):
        stratified_split(labels, (0.6, 0.2, 0.2), rng=np.random.default_rng(0))


def test_kfold_folds_cover_every_index_exactly_once() -> None:
    labels = imbalanced_labels(500)
    folds = 5
    vals = []
    for fold in range(folds):
        split = kfold_split(labels, folds=folds, fold=fold, rng=np.random.default_rng(3))
        assert split.test.size == 0
        assert_partition(split, labels.size)
        assert abs(split.val.size - labels.size / folds) <= 7  # at most one face per class off
        assert np.abs(proportions(labels[split.val]) - proportions(labels)).max() < 0.02
        vals.append(split.val)
    counts = np.bincount(np.concatenate(vals), minlength=labels.size)
    assert np.all(counts == 1)


def test_kfold_depends_on_seed() -> None:
    labels = imbalanced_labels(500)
    a = kfold_split(labels, folds=5, fold=0, rng=np.random.default_rng(0))
    b = kfold_split(labels, folds=5, fold=0, rng=np.random.default_rng(0))
    c = kfold_split(labels, folds=5, fold=0, rng=np.random.default_rng(1))
    assert np.array_equal(a.val, b.val)
    assert not np.array_equal(a.val, c.val)


def test_kfold_validates_fold_and_class_sizes() -> None:
    labels = imbalanced_labels(500)
    with pytest.raises(ConfigError, match="fold must lie in \\[0, 5\\), got 5"):
        kfold_split(labels, folds=5, fold=5, rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match="folds >= 2, got 1"):
        kfold_split(labels, folds=1, fold=0, rng=np.random.default_rng(0))
    small = np.array([0] * 10 + [1] * 3)
    with pytest.raises(DataError, match="class label 1 has only 3"):
        kfold_split(small, folds=5, fold=0, rng=np.random.default_rng(0))


def test_stratified_subset_keeps_proportions_and_is_deterministic() -> None:
    labels = imbalanced_labels(5000)
    sub = stratified_subset(labels, 2000, rng=np.random.default_rng(0))
    assert sub.size == 2000 and np.unique(sub).size == 2000 and sub.dtype == np.int64
    assert np.abs(proportions(labels[sub]) - proportions(labels)).max() <= 1 / 2000 + 1e-9
    assert np.array_equal(sub, stratified_subset(labels, 2000, rng=np.random.default_rng(0)))
    assert not np.array_equal(sub, stratified_subset(labels, 2000, rng=np.random.default_rng(1)))
    assert np.array_equal(stratified_subset(labels, 10**6, rng=np.random.default_rng(0)), np.arange(5000))
    with pytest.raises(ConfigError, match="n >= 1"):
        stratified_subset(labels, 0, rng=np.random.default_rng(0))


def test_labels_must_be_integer_classes() -> None:
    with pytest.raises(DataError, match="integer"):
        stratified_split(np.array([0.5, 1.0, 2.0]), (0.8, 0.2), rng=np.random.default_rng(0))
    with pytest.raises(DataError, match="non-empty"):
        kfold_split(np.array([], dtype=np.int64), folds=2, fold=0, rng=np.random.default_rng(0))


def content_hashes(images: np.ndarray) -> list[str]:
    return [hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest() for img in images]


@pytest.mark.parametrize("kind", ["official", "stratified-80/10/10", "stratified-80/20", "stratified-60/20/20",
                                  "kfold-0", "kfold-4"])
def test_no_image_lands_in_two_splits_by_content(kind: str) -> None:
    faces = make_faces(700, seed=5)
    hashes = content_hashes(faces.images)
    assert len(set(hashes)) == len(faces), "synthetic faces must be duplicate-free for this test to mean anything"
    rng = np.random.default_rng(11)
    if kind == "official":
        split = official_split(faces.usage)
    elif kind.startswith("stratified"):
        ratios = tuple(int(p) / 100 for p in kind.split("-")[1].split("/"))
        split = stratified_split(faces.labels, ratios, rng=rng)
    else:
        split = kfold_split(faces.labels, folds=5, fold=int(kind.split("-")[1]), rng=rng)
    sets = [{hashes[i] for i in part} for part in parts(split)]
    assert sets[0].isdisjoint(sets[1]) and sets[0].isdisjoint(sets[2]) and sets[1].isdisjoint(sets[2])
    assert len(sets[0] | sets[1] | sets[2]) == len(faces)
    # each image is where its index says: the split carries the images, not copies of other faces
    for part, hashed in zip(parts(split), sets):
        assert len(hashed) == part.size
