"""Cut a detected face out as a FER2013-like crop: square, margin around the box, eyes level, grayscale.

The crop framing (`margin`, `shift`) was measured per detector model by detecting faces on FER2013
test images and comparing each box with the 48x48 frame it came from (benchmarks/detect_bench.py
--framing, docs/detection.md).
"""

from __future__ import annotations

import math

import numpy as np

from .faces import Face, check_rgb

# (margin, shift) per detector model that make a crop framed like FER2013's 48x48 faces: the median
# of (frame side / box side - 1) / 2 and (frame centre - box centre) / box height over the first
# 1000 PrivateTest faces, each at 192 px on a grey canvas (benchmarks/detect_bench.py --framing;
# docs/detection.md): MediaPipe's box is ~0.87 of the frame and sits low (it ends below the chin),
# Haar's is the frame. "mediapipe-short" is for refined boxes (the default; unrefined ones measured
# 0.107, -0.118); hand-made faces ("") get it too.
FRAMING: dict[str, tuple[float, float]] = {
    "mediapipe-short": (0.075, -0.105),
    "mediapipe-full": (0.07, -0.06),
    "haar": (0.016, 0.0),
    "none": (0.0, 0.0),
}
FRAMING[""] = FRAMING["mediapipe-short"]


def framing(face: Face, margin: float | None = None, shift: float | None = None) -> tuple[float, float]:
    """(margin, shift) for `face`: the given values, else the measured ones for the model that found it."""
    default_margin, default_shift = FRAMING.get(face.detector, FRAMING[""])
    return (default_margin if margin is None else margin), (default_shift if shift is None else shift)


def eye_angle(face: Face) -> float:
    """Angle in degrees of the line from the image-left eye to the image-right eye (0 = level,
    positive = the image-right eye is lower); 0 without landmarks."""
    if face.landmarks is None or len(face.landmarks) < 2:
        return 0.0
    (x0, y0), (x1, y1) = np.asarray(face.landmarks[:2], dtype=np.float64)
    if math.hypot(x1 - x0, y1 - y0) < 1e-6:
        return 0.0
    return math.degrees(math.atan2(y1 - y0, x1 - x0))


def face_transform(face: Face, *, size: int = 48, margin: float | None = None,
                   shift: float | None = None, rotate: bool = True) -> np.ndarray:
    """The (2, 3) affine map from original-image coordinates to aligned-crop coordinates.

    Coordinates are continuous (a pixel (i, j) spans [j, j+1) x [i, i+1)), as boxes are. The crop is a
    square of side max(box w, h) * (1 + 2 * margin) centred on the box centre moved down by
    `shift` box heights, turned so the eyes are level when `rotate` and landmarks exist, scaled to `size`.
    `margin`/`shift` default to `FRAMING[face.detector]`. Apply the map to landmarks with `transform_points`.
    """
    margin, shift = framing(face, margin, shift)
    side = max(face.width, face.height) * (1.0 + 2.0 * margin)
    cx, cy = face.center
    cy += shift * face.height
    theta = math.radians(eye_angle(face)) if rotate else 0.0
    scale = size / max(side, 1e-6)
    cos, sin = math.cos(theta) * scale, math.sin(theta) * scale
    # Rotating by -theta about (cx, cy) levels the eye line; then scale and move the centre to size/2.
    return np.array([
        [cos, sin, size / 2.0 - cos * cx - sin * cy],
        [-sin, cos, size / 2.0 + sin * cx - cos * cy],
    ])


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine map to (K, 2) points."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def align_face(rgb: np.ndarray, face: Face, *, size: int = 48, margin: float | None = None,
               shift: float | None = None, rotate: bool = True) -> np.ndarray:
    """Crop `face` from `rgb` the way FER2013 frames faces.

    Args:
        rgb: (H, W, 3) uint8 RGB image the face was detected in.
        face: a detection on `rgb` (box and, optionally, eye landmarks).
        size: output side in pixels.
        margin: added on each side of the box's longer side, as a fraction of it; None = the value
            measured for `face.detector` (FRAMING), so crops resemble FER2013's tight framing.
        shift: moves the crop centre down by this many box heights (negative = up); None = measured.
        rotate: level the eyes when the face has landmarks.

    Returns:
        (size, size) uint8 grayscale crop; parts outside the image repeat its border pixels.
    """
    import cv2

    check_rgb(rgb)
    margin, shift = framing(face, margin, shift)
    forward = face_transform(face, size=size, margin=margin, shift=shift, rotate=rotate)
    side = max(face.width, face.height) * (1.0 + 2.0 * margin)
    # Only the part of the image the rotated square can touch is converted and resampled.
    cx, cy = face.center
    cy += shift * face.height
    reach = side * 0.7072 + 2.0
    h, w = rgb.shape[:2]
    x0, y0 = max(0, math.floor(cx - reach)), max(0, math.floor(cy - reach))
    x1, y1 = min(w, math.ceil(cx + reach)), min(h, math.ceil(cy + reach))
    if x1 <= x0 or y1 <= y0:  # the square lies outside the image: take the nearest edge pixels
        x0, y0 = min(max(0, x0), w - 1), min(max(0, y0), h - 1)
        x1, y1 = x0 + 1, y0 + 1
    roi = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    # Resample in two steps so big faces are averaged (INTER_AREA) rather than aliased by the warp:
    # shrink the region until the crop is at most 2 * size, warp to that, then INTER_AREA to size.
    work = max(size, min(round(side), 2 * size))
    pre = min(1.0, 2.0 * size / max(side, 1e-6))
    if pre < 1.0:
        roi = cv2.resize(roi, (max(1, round(roi.shape[1] * pre)), max(1, round(roi.shape[0] * pre))),
                         interpolation=cv2.INTER_AREA)
    sx, sy = roi.shape[1] / (x1 - x0), roi.shape[0] / (y1 - y0)
    # roi pixel index -> original continuous coordinates -> crop continuous -> work pixel index.
    to_orig = np.array([[1.0 / sx, 0.0, x0 + 0.5 / sx], [0.0, 1.0 / sy, y0 + 0.5 / sy], [0.0, 0.0, 1.0]])
    out_scale = work / size
    to_work = np.array([[out_scale, 0.0, -0.5], [0.0, out_scale, -0.5], [0.0, 0.0, 1.0]])
    matrix = (to_work @ np.vstack([forward, [0.0, 0.0, 1.0]]) @ to_orig)[:2]
    crop = cv2.warpAffine(roi, matrix, (work, work), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if work != size:
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return crop
