"""Class weights, the class-balanced sampler, and class selection with label remapping."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_faces
from mien.data.balance import balanced_indices, class_weights, select_classes
from mien.errors import ConfigError, DataError
from mien.labels import EMOTIONS


def test_class_weights_match_a_hand_computed_example() -> None:
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
    # 1/n = 1/6, 1/3, 1 -> sum 1.5 -> scaled by 3/1.5 = 2
    weights = class_weights(labels, 3)
    assert weights.dtype == np.float32
    np.testing.assert_allclose(weights, [1 / 3, 2 / 3, 2.0], rtol=1e-6)
    assert weights.sum() == pytest.approx(3.0)


def test_class_weights_sum_to_num_classes_and_rank_inversely_to_counts() -> None:
    labels = np.random.default_rng(0).choice(7, size=5000, p=[0.4, 0.25, 0.15, 0.1, 0.05, 0.03, 0.02])
    weights = class_weights(labels, 7)
    counts = np.bincount(labels, minlength=7)
    assert weights.sum() == pytest.approx(7.0, rel=1e-6)
    np.testing.assert_allclose(weights * counts, (weights * counts)[0], rtol=1e-5)  # w_c * n_c constant


def test_class_weights_name_a_missing_class() -> None:
    with pytest.raises(DataError, match="class label 1 has no faces"):
        class_weights(np.array([0, 0, 2, 2]), 3)
    with pytest.raises(DataError, match="\\[0, 3\\)"):
        class_weights(np.array([0, 1, 3]), 3)


def test_balanced_indices_make_classes_equally_frequent() -> None:
    labels = np.array([0] * 900 + [1] * 90 + [2] * 10)
    rng = np.random.default_rng(0)
    drawn = balanced_indices(labels, 30000, rng=rng)
    assert drawn.dtype == np.int64 and drawn.shape == (30000,)
    assert drawn.min() >= 0 and drawn.max() < labels.size
    freq = np.bincount(labels[drawn], minlength=3) / drawn.size
    np.testing.assert_allclose(freq, [1 / 3] * 3, atol=0.02)
    assert np.unique(drawn[labels[drawn] == 2]).size == 10  # the rare class repeats all its faces
    assert np.array_equal(drawn, balanced_indices(labels, 30000, rng=np.random.default_rng(0)))
    with pytest.raises(ConfigError, match="n >= 1"):
        balanced_indices(labels, 0, rng=rng)


def test_balanced_indices_ignore_absent_label_values() -> None:
    labels = np.array([0] * 50 + [3] * 5)  # labels 1 and 2 absent: two classes, half each
    freq = np.bincount(labels[balanced_indices(labels, 20000, rng=np.random.default_rng(1))], minlength=4)
    np.testing.assert_allclose(freq / 20000, [0.5, 0, 0, 0.5], atol=0.02)


def test_select_classes_drops_disgust_and_remaps_labels() -> None:
    faces = make_faces(140)
    six = [c for c in EMOTIONS if c != "disgust"]
    out = select_classes(faces, six)
    assert out.names == tuple(six)
    keep = faces.labels != EMOTIONS.index("disgust")
    assert len(out) == keep.sum()
    assert out.names[1] == "fear" and np.array_equal(out.images[out.labels == 1],
                                                     faces.images[faces.labels == EMOTIONS.index("fear")])
    # every kept face keeps its image, usage and class name, in the original order
    assert np.array_equal(out.images, faces.images[keep])
    assert np.array_equal(out.usage, faces.usage[keep])
    old_names = [faces.names[i] for i in faces.labels[keep]]
    assert [out.names[i] for i in out.labels] == old_names


def test_select_classes_uses_the_given_order_and_synonyms() -> None:
    faces = make_faces(140)
    out = select_classes(faces, ["Happiness", "angry", "sad"])
    assert out.names == ("happy", "angry", "sad")
    for new, name in enumerate(out.names):
        old = EMOTIONS.index(name)
        np.testing.assert_array_equal(out.images[out.labels == new], faces.images[faces.labels == old])
    assert set(out.labels.tolist()) == {0, 1, 2}


def test_select_classes_rejects_unknown_missing_and_duplicate_classes() -> None:
    faces = make_faces(60, classes=3)  # angry, disgust, fear
    with pytest.raises(DataError, match="unknown emotion class 'contempt'"):
        select_classes(faces, ["angry", "contempt"])
    with pytest.raises(DataError, match="'happy' is not in these faces"):
        select_classes(faces, ["angry", "happy"])
    with pytest.raises(DataError, match="twice"):
        select_classes(faces, ["angry", "anger"])
