"""Face tracks across video frames (IoU matching) and per-track moving-average smoothing.

The tracker is deliberately simple: one face per box, Hungarian matching on box overlap between
consecutive processed frames. Faces in expression videos move little between frames, so overlap
alone keeps identities; a face missing for more than `max_missed` processed frames ends its track.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in `a` (N, 4) with every box in `b` (M, 4) -> (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


@dataclass
class _Track:
    box: np.ndarray  # (4,) last matched box
    missed: int = 0


@dataclass
class IouTracker:
    """Assigns stable integer track IDs (0, 1, 2, ...) to face boxes, frame after frame.

    Args:
        iou_threshold: least overlap between a track's last box and a new box to continue the track.
        max_missed: processed frames a track may go unmatched before it ends (its ID is never reused).
    """

    iou_threshold: float = 0.3
    max_missed: int = 10
    _tracks: dict[int, _Track] = field(default_factory=dict, init=False, repr=False)
    _next_id: int = field(default=0, init=False, repr=False)
    ended: list[int] = field(default_factory=list, init=False, repr=False)

    def update(self, boxes: Sequence[Box]) -> list[int]:
        """Match this frame's boxes to tracks; returns one track ID per box, in order.

        IDs of tracks that ended during this call are in `self.ended` afterwards.
        """
        from scipy.optimize import linear_sum_assignment

        new = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        ids = list(self._tracks)
        assigned: list[int | None] = [None] * len(new)
        if ids and len(new):
            overlap = iou_matrix(np.stack([self._tracks[i].box for i in ids]), new)  # (tracks, boxes)
            rows, cols = linear_sum_assignment(-overlap)
            for r, c in zip(rows, cols):
                if overlap[r, c] >= self.iou_threshold:
                    assigned[c] = ids[r]
        matched = {i for i in assigned if i is not None}
        self.ended = []
        for track_id in ids:
            if track_id not in matched:
                self._tracks[track_id].missed += 1
                if self._tracks[track_id].missed > self.max_missed:
                    del self._tracks[track_id]
                    self.ended.append(track_id)
        for c, box in enumerate(new):
            if assigned[c] is None:
                assigned[c] = self._next_id
                self._next_id += 1
                self._tracks[assigned[c]] = _Track(box)
            else:
                track = self._tracks[assigned[c]]
                track.box, track.missed = box, 0
        return [int(i) for i in assigned]  # type: ignore[arg-type]

    @property
    def active(self) -> list[int]:
        return sorted(self._tracks)


class ProbabilitySmoother:
    """Per-track moving average of class probabilities over the last `window` observations.

    `window <= 1` turns smoothing off (each update returns its input).
    """

    def __init__(self, window: int) -> None:
        self.window = max(1, int(window))
        self._history: dict[int, deque[np.ndarray]] = {}

    def update(self, track_id: int, probs: np.ndarray) -> np.ndarray:
        """Add one (C,) probability vector to a track; returns the track's smoothed (C,) vector."""
        history = self._history.setdefault(track_id, deque(maxlen=self.window))
        history.append(np.asarray(probs, dtype=np.float32))
        return np.mean(history, axis=0, dtype=np.float64).astype(np.float32)

    def forget(self, track_ids: Iterable[int]) -> None:
        for track_id in track_ids:
            self._history.pop(track_id, None)
