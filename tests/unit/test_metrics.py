"""mien.evaluate.metrics against hand-computed numbers and scikit-learn."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn.metrics import f1_score

from mien.errors import DataError
from mien.evaluate.metrics import accuracy, classification_metrics, normalize_rows, predict, to_probabilities

NAMES = ("a", "b", "c")
# Hand-made case: predictions 0 0 1 | 1 2 | 2 for true labels 0 0 0 | 1 1 | 2.
Y_TRUE = np.array([0, 0, 0, 1, 1, 2])
PROBS = np.array([
    [0.7, 0.2, 0.1],
    [0.6, 0.1, 0.3],
    [0.3, 0.6, 0.1],   # wrong, but the true class is second: a top-2 hit
    [0.2, 0.5, 0.3],
    [0.35, 0.05, 0.6],  # wrong, the true class is last: a top-2 miss
    [0.1, 0.2, 0.7],
])


def test_hand_computed_case() -> None:
    m = classification_metrics(Y_TRUE, PROBS, NAMES)
    assert m["n"] == 6 and m["classes"] == list(NAMES)
    assert m["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    np.testing.assert_allclose(m["confusion_normalized"], [[2 / 3, 1 / 3, 0], [0, 0.5, 0.5], [0, 0, 1]])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["top2_accuracy"] == pytest.approx(5 / 6)
    # Per class: P = 1, 1/2, 1/2; R = 2/3, 1/2, 1; F1 = 0.8, 0.5, 2/3; support 3, 2, 1.
    per = {row["name"]: row for row in m["per_class"]}
    for name, (p, r, f, s) in zip(NAMES, [(1, 2 / 3, 0.8, 3), (0.5, 0.5, 0.5, 2), (0.5, 1, 2 / 3, 1)]):
        assert (per[name]["precision"], per[name]["recall"], per[name]["f1"]) == pytest.approx((p, r, f))
        assert per[name]["support"] == s
    assert m["precision"] == pytest.approx({"macro": 2 / 3, "weighted": 0.75})
    assert m["recall"] == pytest.approx({"macro": 13 / 18, "weighted": 4 / 6})
    assert m["f1"] == pytest.approx({"macro": 59 / 90, "weighted": 61 / 90})
    y_pred = PROBS.argmax(1)
    assert m["f1"]["macro"] == pytest.approx(f1_score(Y_TRUE, y_pred, average="macro"))
    assert m["f1"]["weighted"] == pytest.approx(f1_score(Y_TRUE, y_pred, average="weighted"))


def test_logits_give_the_same_metrics_as_probabilities() -> None:
    logits = np.log(PROBS) + 3.0
    assert classification_metrics(Y_TRUE, logits, NAMES) == classification_metrics(Y_TRUE, PROBS, NAMES)


def test_zero_support_and_never_predicted_classes_are_zero_not_nan() -> None:
    # Class 3 never occurs and is never predicted; class 2 occurs but is never predicted.
    y_true = np.array([0, 1, 2, 2])
    probs = np.eye(4)[[0, 1, 0, 1]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(y_true, probs, ("w", "x", "y", "z"))
    assert m["confusion"][3] == [0, 0, 0, 0]
    assert m["confusion_normalized"][3] == [0.0, 0.0, 0.0, 0.0]
    assert m["per_class"][3] == {"name": "z", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["per_class"][2]["precision"] == 0.0 and m["per_class"][2]["support"] == 2
    assert not np.isnan(np.array(m["confusion_normalized"])).any()
    # Macro averages over all four classes, including the empty one: F1 = (2/3 + 2/3 + 0 + 0) / 4.
    assert m["f1"]["macro"] == pytest.approx((2 / 3 + 2 / 3) / 4)
    json.dumps(m, allow_nan=False)


def test_perfect_predictions() -> None:
    y_true = np.array([0, 1, 2, 2, 1, 0, 2])
    m = classification_metrics(y_true, np.eye(3)[y_true] * 5.0, NAMES)
    assert m["accuracy"] == m["top2_accuracy"] == 1.0
    for metric in ("precision", "recall", "f1"):
        assert m[metric] == {"macro": 1.0, "weighted": 1.0}
    assert m["confusion"] == [[2, 0, 0], [0, 2, 0], [0, 0, 3]]
    assert m["confusion_normalized"] == np.eye(3).tolist()


def test_result_is_plain_json() -> None:
    m = classification_metrics(Y_TRUE.astype(np.uint8), PROBS.astype(np.float32), NAMES)
    assert json.loads(json.dumps(m, allow_nan=False)) == m
    assert type(m["per_class"][0]["support"]) is int and type(m["accuracy"]) is float


@pytest.mark.parametrize("y_true, probs, match", [
    (Y_TRUE, PROBS[:, :2], r"\(N, 3\)"),
    (Y_TRUE[:5], PROBS, r"y_true must be \(6,\)"),
    (np.array([0, 0, 0, 1, 1, 3]), PROBS, r"\[0, 3\).*\[0, 3\]"),
    (Y_TRUE.astype(float), PROBS, "integer"),
    (Y_TRUE[:0], PROBS[:0], "zero samples"),
])
def test_bad_inputs_raise_data_error(y_true: np.ndarray, probs: np.ndarray, match: str) -> None:
    with pytest.raises(DataError, match=match):
        classification_metrics(y_true, probs, NAMES)


def test_nan_scores_name_the_row() -> None:
    probs = PROBS.copy()
    probs[4, 1] = np.nan
    with pytest.raises(DataError, match="row 4"):
        classification_metrics(Y_TRUE, probs, NAMES)


def test_predict_softmaxes_logits_and_keeps_probabilities() -> None:
    y_pred, conf = predict(PROBS)
    assert y_pred.tolist() == [0, 0, 1, 1, 2, 2]
    np.testing.assert_allclose(conf, [0.7, 0.6, 0.6, 0.5, 0.6, 0.7])
    np.testing.assert_allclose(to_probabilities(np.log(PROBS) + 7.0), PROBS)
    rounded = np.array([[1.0000001, -1e-8, 0.0]], dtype=np.float32)  # a float32 softmax, not logits
    np.testing.assert_array_equal(to_probabilities(rounded), rounded.astype(np.float64))
    y_pred, conf = predict(np.array([[0.0, 0.0], [3.0, -1.0]]))
    assert y_pred.tolist() == [0, 0]
    np.testing.assert_allclose(conf, [0.5, 1 / (1 + np.exp(-4.0))])


def test_accuracy_and_normalize_rows() -> None:
    assert accuracy(np.array([1, 2, 3]), np.array([1, 0, 3])) == pytest.approx(2 / 3)
    with pytest.raises(DataError, match="same shape"):
        accuracy(np.array([1, 2]), np.array([1]))
    np.testing.assert_allclose(normalize_rows(np.array([[1, 3], [0, 0]])), [[0.25, 0.75], [0, 0]])
