"""Typed inference results: one face, one image (or its error), one video frame."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels of the original image


@dataclass(frozen=True)
class FacePrediction:
    """The expression of one face.

    Attributes:
        face_index: position of the face in its image or frame (detector order: highest score first
            when the detector sorts, else left to right as the detector returns them).
        box: (x0, y0, x1, y1) pixels of the original image.
        score: detector confidence (1.0 without detection).
        landmarks: ((x, y), ...) pixels, rows 0 and 1 = image-left and image-right eye; None when the
            detector gives none.
        probs: class name -> probability, summing to 1 (smoothed over the track in videos).
        emotion: the most probable class; confidence: its probability.
        track_id: stable ID of the face across video frames; None for still images.
    """

    face_index: int
    box: Box
    score: float
    landmarks: tuple[tuple[float, float], ...] | None
    probs: dict[str, float]
    emotion: str
    confidence: float
    track_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (box and landmarks as lists)."""
        return {
            "face_index": self.face_index,
            "track_id": self.track_id,
            "box": [round(v, 2) for v in self.box],
            "score": round(self.score, 4),
            "landmarks": None if self.landmarks is None else [[round(x, 2), round(y, 2)] for x, y in self.landmarks],
            "probs": {k: round(v, 6) for k, v in self.probs.items()},
            "emotion": self.emotion,
            "confidence": round(self.confidence, 6),
        }


@dataclass(frozen=True)
class ImageResult:
    """The faces of one image of a batch, or why it could not be read.

    Iterating, `len()` and indexing act on `faces`, so an ImageResult reads like a list of faces.
    """

    source: str
    faces: tuple[FacePrediction, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __len__(self) -> int:
        return len(self.faces)

    def __iter__(self) -> Iterator[FacePrediction]:
        return iter(self.faces)

    def __getitem__(self, i: int) -> FacePrediction:
        return self.faces[i]


@dataclass(frozen=True)
class FrameResult:
    """The faces of one processed video frame.

    Attributes:
        frame_index: 0-based index of the frame in the video (every processed frame, not only faces).
        time_s: its timestamp in seconds (frame_index / fps).
        faces: the frame's faces, each with its `track_id` and smoothed `probs`.
        image: the (H, W, 3) uint8 RGB frame when `predict_video(..., keep_frames=True)`, else None.
    """

    frame_index: int
    time_s: float
    faces: tuple[FacePrediction, ...]
    image: np.ndarray | None = field(default=None, compare=False, repr=False)


def make_prediction(face_index: int, face: Any, probs: np.ndarray, class_names: Sequence[str], *,
                    track_id: int | None = None) -> FacePrediction:
    """A FacePrediction from a detector `Face` and its (C,) probability row."""
    best = int(np.argmax(probs))
    landmarks = None
    if getattr(face, "landmarks", None) is not None:
        landmarks = tuple((float(x), float(y)) for x, y in np.asarray(face.landmarks).reshape(-1, 2))
    return FacePrediction(
        face_index=face_index,
        box=tuple(float(v) for v in face.box),  # type: ignore[arg-type]
        score=float(face.score),
        landmarks=landmarks,
        probs={name: float(p) for name, p in zip(class_names, probs)},
        emotion=class_names[best],
        confidence=float(probs[best]),
        track_id=track_id,
    )
