"""Ensemble member selection on validation probabilities (greedy forward selection, no replacement).

Pure: arrays in, a selection trace out. Start from the best single model; at each step add the
candidate whose averaged probabilities raise validation accuracy the most; stop when no candidate
raises it or `max_members` is reached. Ties prefer the lower validation log-loss, then the name
listed first, so the result is deterministic.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..errors import ConfigError


def _score(probs: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(accuracy, negative mean log-likelihood): larger is better for both."""
    accuracy = float((probs.argmax(1) == labels).mean())
    nll = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())
    return accuracy, -nll


def greedy_ensemble(val_probs: Mapping[str, np.ndarray], labels: np.ndarray, *,
                    max_members: int) -> list[dict[str, object]]:
    """The selection trace: one row per step, {"members": [...], "val_accuracy": float, "val_nll": float}.

    The last row is the chosen ensemble.

    Args:
        val_probs: candidate name -> (N, C) validation probabilities (rows sum to 1).
        labels: (N,) validation labels.
        max_members: most members in the ensemble (>= 1).

    Raises:
        ConfigError: no candidates, `max_members` < 1, or probability arrays of different shapes.
    """
    if not val_probs:
        raise ConfigError("greedy_ensemble needs at least one candidate")
    if max_members < 1:
        raise ConfigError(f"max_members must be >= 1, got {max_members}")
    shapes = {name: p.shape for name, p in val_probs.items()}
    if len(set(shapes.values())) != 1 or next(iter(shapes.values()))[0] != len(labels):
        raise ConfigError(f"candidate probabilities must all be ({len(labels)}, C); got {shapes}")
    order = list(val_probs)
    chosen: list[str] = []
    total = np.zeros_like(next(iter(val_probs.values())), dtype=np.float64)
    trace: list[dict[str, object]] = []
    best = (-1.0, -np.inf)
    while len(chosen) < min(max_members, len(order)):
        scored = [(_score((total + val_probs[n]) / (len(chosen) + 1), labels), -order.index(n), n)
                  for n in order if n not in chosen]
        score, _, name = max(scored)
        if chosen and score[0] <= best[0]:
            break
        chosen.append(name)
        total += val_probs[name]
        best = score
        trace.append({"members": list(chosen), "val_accuracy": score[0], "val_nll": -score[1]})
    return trace
