"""Draw face boxes and "emotion 87%" labels on images and video frames (OpenCV)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .results import FacePrediction

# One RGB colour per FER2013 class, readable on photos; other class names cycle through them.
_COLOURS = {
    "angry": (230, 57, 70), "disgust": (106, 153, 78), "fear": (155, 93, 229), "happy": (255, 190, 11),
    "sad": (58, 134, 255), "surprise": (251, 86, 7), "neutral": (200, 200, 200),
}


def _colour(name: str) -> tuple[int, int, int]:
    palette = list(_COLOURS.values())
    return _COLOURS.get(name, palette[sum(map(ord, name)) % len(palette)])


def draw_faces(rgb: np.ndarray, faces: Sequence[FacePrediction]) -> np.ndarray:
    """A copy of (H, W, 3) uint8 RGB `rgb` with each face's box and label ("#track emotion 87%")."""
    import cv2

    out = np.ascontiguousarray(rgb).copy()
    h, w = out.shape[:2]
    # Line width and font grow with the image so labels stay legible on phone photos.
    thick = max(1, round(max(h, w) / 400))
    scale = max(0.4, max(h, w) / 1200)
    for face in faces:
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        colour = _colour(face.emotion)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, thick, cv2.LINE_AA)
        label = f"{face.emotion} {face.confidence:.0%}"
        if face.track_id is not None:
            label = f"#{face.track_id} {label}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        top = y0 - th - base - 2 if y0 - th - base - 2 >= 0 else min(y1, h - th - base - 2)
        cv2.rectangle(out, (x0, top), (x0 + tw + 4, top + th + base + 2), colour, -1)
        cv2.putText(out, label, (x0 + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick,
                    cv2.LINE_AA)
    return out
