"""Face boxes from RGB images: the `Face` result, the detector protocol, `create_detector`, and the
OpenCV Haar and whole-image detectors. MediaPipe's BlazeFace lives in `mediapipe_detector.py`.

Every detector takes a (H, W, 3) uint8 RGB array (what `mien.io.read_image` returns), downscales it
so its longer side is at most `max_side` pixels, detects, maps boxes and landmarks back to the
original pixels, clips boxes to the image, drops heavily overlapping duplicates and returns faces
sorted by score (best first). No face is an empty list, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import ConfigError
from ..io.images import ImageError

DETECTORS = ("mediapipe", "mediapipe-short", "mediapipe-full", "mediapipe-both", "mediapipe-tiles", "haar", "none")


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face, in pixels of the original image.

    Attributes:
        box: (x0, y0, x1, y1), clipped to the image; x1/y1 are exclusive edges.
        score: detector confidence in [0, 1] (see each detector for what it means).
        landmarks: (K, 2) float (x, y) points or None. Rows 0 and 1 are the subject's right eye and
            left eye (the image-left eye first); MediaPipe adds nose tip, mouth centre, right ear,
            left ear (K = 6).
        detector: the model that found it ("mediapipe-short", "mediapipe-full", "haar", "none", or ""
            when made by hand); `align_face` frames the crop by it, as each model boxes faces differently.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None
    detector: str = ""

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def center(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2.0, (self.box[1] + self.box[3]) / 2.0


@runtime_checkable
class FaceDetector(Protocol):
    """Anything with a `name` and `detect(rgb) -> list[Face]`. Detectors are not thread-safe:
    use one per thread."""

    name: str

    def detect(self, rgb: np.ndarray) -> list[Face]:
        ...


def create_detector(name: str = "mediapipe", *, min_score: float = 0.5, max_side: int = 1280,
                    refine: bool = True) -> FaceDetector:
    """Build a face detector by name.

    Args:
        name: "mediapipe" (BlazeFace short-range on the whole image, and on 2x2 overlapping tiles
            where that finds no face), "mediapipe-short",
            "mediapipe-full", "mediapipe-both" (both models, merged), "mediapipe-tiles" (always
            tiles), "haar" (OpenCV frontal-face cascade) or "none" (the whole image is one face).
            All models ship inside the installed wheels; nothing is downloaded.
        min_score: drop faces scoring below this.
        max_side: images whose longer side exceeds this are downscaled for detection.
        refine: MediaPipe only: detect each face again in a crop around it, for a steadier box and
            eye landmarks 3x more accurate (one more model run per face; docs/detection.md).

    Raises:
        ConfigError: unknown name or out-of-range setting.
    """
    if not 0.0 <= min_score <= 1.0:
        raise ConfigError(f"min_score must be in [0, 1], got {min_score}")
    if max_side < 64:
        raise ConfigError(f"max_side must be at least 64 pixels, got {max_side}")
    if name.startswith("mediapipe"):
        from .mediapipe_detector import MEDIAPIPE_MODES, MediaPipeDetector

        mode = name.partition("-")[2] or "auto"
        if mode in MEDIAPIPE_MODES:
            return MediaPipeDetector(mode=mode, min_score=min_score, max_side=max_side, refine=refine)
    if name == "haar":
        return HaarDetector(min_score=min_score, max_side=max_side)
    if name == "none":
        return WholeImageDetector()
    raise ConfigError(f"unknown face detector {name!r}; choose one of: {', '.join(DETECTORS)}")


def check_rgb(rgb: np.ndarray) -> None:
    """Detectors take what `read_image` returns; anything else is a caller bug worth naming."""
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3):
        shape = getattr(rgb, "shape", None)
        dtype = getattr(rgb, "dtype", type(rgb).__name__)
        raise ImageError(f"detectors take (H, W, 3) uint8 RGB arrays (use mien.io.read_image), got {shape} {dtype}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ImageError(f"cannot detect faces in an empty image of shape {rgb.shape}")


def downscale(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """(image no longer than max_side, factor to multiply its coordinates by to get the original's)."""
    import cv2

    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb, 1.0
    scale = max_side / max(h, w)
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return small, w / small.shape[1]


def finish(faces: list[Face], *, scale: float, shape: tuple[int, ...], overlap: float = 0.5) -> list[Face]:
    """Map faces found on a downscaled image back to the original, clip, suppress duplicates, sort."""
    h, w = shape[:2]
    out: list[Face] = []
    for face in faces:
        x0, y0, x1, y1 = (v * scale for v in face.box)
        box = (min(max(x0, 0.0), w), min(max(y0, 0.0), h), min(max(x1, 0.0), w), min(max(y1, 0.0), h))
        if box[2] - box[0] < 1.0 or box[3] - box[1] < 1.0:
            continue  # a box (almost) entirely outside the image
        marks = None if face.landmarks is None else np.asarray(face.landmarks, dtype=np.float64) * scale
        out.append(Face(box=box, score=float(face.score), landmarks=marks, detector=face.detector))
    return suppress_overlaps(out, overlap=overlap)


def suppress_overlaps(faces: list[Face], *, overlap: float = 0.5) -> list[Face]:
    """Greedy non-maximum suppression, best score first.

    A face is dropped when its IoU with a kept face exceeds `overlap`, or when most of it (80 %)
    lies inside a kept face: cascades and multi-model merges both produce nested boxes whose IoU
    is low although they are the same face.
    """
    order = sorted(faces, key=lambda f: -f.score)
    kept: list[Face] = []
    for face in order:
        if all(_iou(face.box, k.box) <= overlap and _inside(face.box, k.box) < 0.8 for k in kept):
            kept.append(face)
    return kept


def _intersection(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _area(a: tuple[float, ...]) -> float:
    return max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    inter = _intersection(a, b)
    union = _area(a) + _area(b) - inter
    return inter / union if union > 0 else 0.0


def _inside(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Fraction of the smaller box covered by the other."""
    smaller = min(_area(a), _area(b))
    return _intersection(a, b) / smaller if smaller > 0 else 0.0


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    return _iou(a, b)


class WholeImageDetector:
    """`--no-detect`: every image is one already-cropped face (score 1, no landmarks)."""

    name = "none"

    def detect(self, rgb: np.ndarray) -> list[Face]:
        check_rgb(rgb)
        h, w = rgb.shape[:2]
        return [Face(box=(0.0, 0.0, float(w), float(h)), score=1.0, landmarks=None, detector="none")]

    def close(self) -> None:
        """Nothing to release (present so every detector can be closed alike)."""


class HaarDetector:
    """OpenCV's frontal-face Haar cascade (shipped in cv2.data). No landmarks.

    The score is n / (n + min_neighbors) for a box supported by n neighbouring raw detections, so every
    box the cascade accepts scores at least 0.5 and a higher `min_score` demands more support.
    """

    name = "haar"

    def __init__(self, *, min_score: float = 0.5, max_side: int = 1280, min_neighbors: int = 5,
                 scale_factor: float = 1.1, min_face: float = 0.08) -> None:
        import cv2

        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise ConfigError(f"OpenCV could not load its Haar cascade {path}; reinstall opencv-python-headless")
        self.min_score, self.max_side = min_score, max_side
        self.min_neighbors, self.scale_factor, self.min_face = min_neighbors, scale_factor, min_face

    def detect(self, rgb: np.ndarray) -> list[Face]:
        import cv2

        check_rgb(rgb)
        small, scale = downscale(rgb, self.max_side)
        gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        # Faces under min_face of the shorter side (38 px at 480) are skipped: too small to read an
        # expression from, and the cascade's smallest scales are its slowest. 24 px is its window.
        side = max(24, round(self.min_face * min(gray.shape)))
        boxes, neighbours = self._cascade.detectMultiScale2(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(side, side)
        )
        faces = []
        for (x, y, w, h), n in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(neighbours).ravel()):
            score = float(n) / (float(n) + self.min_neighbors)
            if score >= self.min_score:
                faces.append(Face(box=(float(x), float(y), float(x + w), float(y + h)), score=score, detector="haar"))
        return finish(faces, scale=scale, shape=rgb.shape)

    def close(self) -> None:
        """Nothing to release."""
