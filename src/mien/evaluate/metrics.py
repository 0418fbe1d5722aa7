"""Classification metrics from labels and class scores: pure functions, no I/O.

Every number comes from scikit-learn (imported inside the functions so `import mien.evaluate`
stays cheap) and is returned as plain Python ints, floats and lists, ready for `json.dump`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import DataError


def _check_inputs(y_true: np.ndarray, scores: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Validate shapes and label range; return (y_true int64 (N,), scores float64 (N, C))."""
    y_true = np.asarray(y_true)
    scores = np.asarray(scores, dtype=np.float64)
    n_classes = len(names)
    if scores.ndim != 2 or scores.shape[1] != n_classes:
        raise DataError(f"probs must be (N, {n_classes}) for classes {list(names)}, got shape {scores.shape}")
    if y_true.shape != (scores.shape[0],):
        raise DataError(f"y_true must be ({scores.shape[0]},) like probs, got shape {y_true.shape}")
    if len(y_true) == 0:
        raise DataError("cannot compute metrics on zero samples: y_true and probs are empty")
    if not np.issubdtype(y_true.dtype, np.integer):
        raise DataError(f"y_true must hold integer class indices, got dtype {y_true.dtype}")
    if y_true.min() < 0 or y_true.max() >= n_classes:
        raise DataError(f"y_true must lie in [0, {n_classes}), got values in [{y_true.min()}, {y_true.max()}]")
    if not np.isfinite(scores).all():
        bad = int(np.argwhere(~np.isfinite(scores))[0, 0])
        raise DataError(f"probs has a non-finite value in row {bad}: {scores[bad].tolist()}")
    return y_true.astype(np.int64), scores


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of predictions equal to the true label (0.0 for empty input)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise DataError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must have the same shape")
    return float(np.mean(y_true == y_pred)) if y_true.size else 0.0


def to_probabilities(scores: np.ndarray) -> np.ndarray:
    """(N, C) rows as probabilities: returned as-is if they already are, else softmaxed as logits.

    Rows count as probabilities when all entries lie in [0, 1] and every row sums to 1, both up to
    float32 rounding (a softmax computed in float32 or bf16 must not be softmaxed twice).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise DataError(f"scores must be (N, C), got shape {scores.shape}")
    tol = 1e-3
    if (scores.size and scores.min() >= -tol and scores.max() <= 1 + tol
            and np.allclose(scores.sum(1), 1, rtol=0, atol=tol)):
        return scores
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def predict(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predicted class (argmax) and its confidence (max probability) for (N, C) probabilities or logits.

    Returns:
        y_pred (N,) int64 and confidence (N,) float64 in [0, 1]; logits are softmaxed first.
    """
    probs = to_probabilities(scores)
    y_pred = probs.argmax(axis=1).astype(np.int64)
    return y_pred, probs[np.arange(len(probs)), y_pred]


def top_k_accuracy(y_true: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Fraction of samples whose true class is among the k highest scores (ties: lower index first)."""
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean((top == y_true[:, None]).any(axis=1))) if len(y_true) else 0.0


def normalize_rows(confusion: np.ndarray) -> np.ndarray:
    """Each row divided by its sum, so rows sum to 1; a row with zero support stays all zeros."""
    confusion = np.asarray(confusion, dtype=np.float64)
    totals = confusion.sum(axis=1, keepdims=True)
    return np.divide(confusion, totals, out=np.zeros_like(confusion), where=totals > 0)


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, top-2 accuracy, P/R/F1 (macro, weighted, per class) and the confusion matrix.

    The prediction is the argmax of each row, so `probs` may be class probabilities or raw logits:
    every number here depends only on the ranking of the scores.
    Classes that never occur or are never predicted still get a row (labels = range(C)), with 0
    where a ratio is undefined; they count in the macro average.

    Args:
        y_true: (N,) integer labels in [0, C).
        probs: (N, C) class probabilities or logits.
        names: the C class names, in label order.

    Returns:
        A JSON-serialisable dict: classes, n, accuracy, top2_accuracy, precision / recall / f1
        (each {"macro", "weighted"}), per_class (list of {name, precision, recall, f1, support}),
        confusion (C x C counts, rows true, columns predicted) and confusion_normalized (rows sum to 1).
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y_true, scores = _check_inputs(y_true, probs, names)
    labels = list(range(len(names)))
    y_pred = scores.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0)
    averages = {
        avg: precision_recall_fscore_support(y_true, y_pred, labels=labels, average=avg, zero_division=0)[:3]
        for avg in ("macro", "weighted")
    }
    confusion = confusion_matrix(y_true, y_pred, labels=labels)
    return {
        "classes": [str(name) for name in names],
        "n": int(len(y_true)),
        "accuracy": accuracy(y_true, y_pred),
        "top2_accuracy": top_k_accuracy(y_true, scores, 2),
        **{metric: {avg: float(values[i]) for avg, values in averages.items()}
           for i, metric in enumerate(("precision", "recall", "f1"))},
        "per_class": [
            {"name": str(name), "precision": float(precision[c]), "recall": float(recall[c]),
             "f1": float(f1[c]), "support": int(support[c])}
            for c, name in enumerate(names)
        ],
        "confusion": confusion.astype(int).tolist(),
        "confusion_normalized": normalize_rows(confusion).tolist(),
    }
