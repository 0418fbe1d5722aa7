"""MediaPipe BlazeFace, from the .tflite models bundled in the mediapipe wheel (CPU, no downloads).

Two models: short-range (128x128 input, faces filling much of the frame, ~2 m from a webcam) and
full-range (192x192 sparse model, smaller faces, ~5 m). Both return a box and 6 keypoints: right eye,
left eye, nose tip, mouth centre, right ear tragion, left ear tragion (the subject's right = image left).
The models letterbox the whole image into their input, so a 100 px face in a 640x480 frame is
~20 px to them: boxes and, worse, keypoints are coarse. Hence the second look (see `_second_look`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Iterator

import numpy as np

from .faces import Face, box_iou, check_rgb, downscale, finish, suppress_overlaps

# short: model 0 on the whole image; full: model 1; both: models 0 and 1, merged; tiles: model 0 on
# the whole image and on 2x2 overlapping tiles of 2/3 the size (faces 1.5x larger to the model);
# auto: short, and the tiles only where the whole image gave no face, so a frame with a face costs
# one detection run (video must reach 25 frames/s with the expression model on 2 cores).
MEDIAPIPE_MODES = ("auto", "short", "full", "both", "tiles")
TILE_FRACTION = 2.0 / 3.0
# The second look crops a square LOOK_SIDE times the face's side around it: the face then spans
# 40 % of the model input, as in the FER2013 framing measurement (192 px faces on 480 px canvases).
# It cuts the eye-line angle error on turned faces from 5.3 to 3.0 degrees (mean absolute,
# benchmarks/detect_bench.py --angles; 2x and 3x crops did about as well, 1.5x worse).
LOOK_SIDE = 2.5
# A face only a tile found is kept when the second look finds it again with at least this score:
# zoomed-in tiles also fire on face-like texture and on parts of faces (docs/detection.md).
CONFIRM_SCORE = 0.6
_MODEL_NAMES = {0: "mediapipe-short", 1: "mediapipe-full"}


@contextlib.contextmanager
def _native_stderr_muted() -> Iterator[None]:
    """Mute file descriptor 2 while a MediaPipe graph starts.

    Its C++ side (absl, TFLite) writes one-time INFO/W lines ("Created TensorFlow Lite XNNPACK
    delegate", "Feedback manager requires...") straight to fd 2 when a graph is built and first run;
    GLOG_minloglevel and TF_CPP_MIN_LOG_LEVEL do not reach them. Python exceptions still propagate.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class MediaPipeDetector:
    """BlazeFace face detection; the MediaPipe graphs are built once and reused for every image.

    With `refine` (the default) every face is detected again in a crop around it (one more
    short-range run per face), which gives the box and landmarks at a resolution the model handles well.
    """

    def __init__(self, *, mode: str = "auto", min_score: float = 0.5, max_side: int = 1280,
                 refine: bool = True) -> None:
        from ..errors import ConfigError

        if mode not in MEDIAPIPE_MODES:
            raise ConfigError(f"unknown MediaPipe mode {mode!r}; choose one of: {', '.join(MEDIAPIPE_MODES)}")
        self.name = "mediapipe" if mode == "auto" else f"mediapipe-{mode}"
        self.mode, self.min_score, self.max_side, self.refine = mode, min_score, max_side, refine
        self._graphs: dict[int, Any] = {}
        for selection in ((1,) if mode == "full" and not refine else (0, 1) if mode in ("both", "full") else (0,)):
            self._graph(selection)

    def _graph(self, selection: int) -> Any:
        """The FaceDetection solution for model 0 (short) or 1 (full), built and warmed up on first use."""
        if selection not in self._graphs:
            from mediapipe.python.solutions.face_detection import FaceDetection

            with _native_stderr_muted():
                graph = FaceDetection(model_selection=selection, min_detection_confidence=self.min_score)
                graph.process(np.zeros((64, 64, 3), dtype=np.uint8))  # the first run prints the logs too
            self._graphs[selection] = graph
        return self._graphs[selection]

    def detect(self, rgb: np.ndarray) -> list[Face]:
        check_rgb(rgb)
        small, scale = downscale(rgb, self.max_side)
        small = np.ascontiguousarray(small)
        whole = self._run(1 if self.mode == "full" else 0, small)
        if self.mode == "both":
            whole += self._run(1, small)
        tiled: list[Face] = []
        if self.mode == "tiles" or (self.mode == "auto" and not whole):
            tiled = self._run_tiles(small)
        from_whole = {id(f) for f in whole}
        longest = max(small.shape[:2])
        faces = []
        for face in suppress_overlaps(whole + tiled):
            # A face already spanning 1 / LOOK_SIDE of the image would get no closer look.
            if id(face) in from_whole and (not self.refine or LOOK_SIDE * max(face.width, face.height) >= longest):
                faces.append(face)
                continue
            again = self._second_look(small, face)
            if id(face) in from_whole:
                faces.append(face if again is None else Face(again.box, face.score, again.landmarks, again.detector))
            elif again is not None and again.score >= max(self.min_score, CONFIRM_SCORE):
                faces.append(again)
        return finish(faces, scale=scale, shape=rgb.shape)

    def _run(self, selection: int, rgb: np.ndarray) -> list[Face]:
        result = self._graph(selection).process(rgb)
        h, w = rgb.shape[:2]
        faces = []
        for det in result.detections or []:
            score = float(det.score[0]) if det.score else 0.0
            if score < self.min_score:
                continue
            rel = det.location_data.relative_bounding_box
            box = (rel.xmin * w, rel.ymin * h, (rel.xmin + rel.width) * w, (rel.ymin + rel.height) * h)
            points = det.location_data.relative_keypoints
            marks = np.array([(p.x * w, p.y * h) for p in points], dtype=np.float64) if len(points) else None
            faces.append(Face(box=box, score=score, landmarks=marks, detector=_MODEL_NAMES[selection]))
        return faces

    def _run_tiles(self, rgb: np.ndarray) -> list[Face]:
        """Model 0 on a 2x2 grid of overlapping tiles; faces in whole-image pixels."""
        h, w = rgb.shape[:2]
        th, tw = round(h * TILE_FRACTION), round(w * TILE_FRACTION)
        faces = []
        for y in (0, h - th):
            for x in (0, w - tw):
                faces.extend(_moved(f, x, y) for f in self._run(0, np.ascontiguousarray(rgb[y:y + th, x:x + tw])))
        return faces

    def _second_look(self, rgb: np.ndarray, face: Face) -> Face | None:
        """The short-range model's best match (IoU >= 0.4) for `face` in a grey-padded square crop
        LOOK_SIDE times its side around it, in whole-image pixels; None where it finds nothing there."""
        import cv2

        side = max(8, round(LOOK_SIDE * max(face.width, face.height)))
        cx, cy = face.center
        x0, y0 = round(cx - side / 2), round(cy - side / 2)
        h, w = rgb.shape[:2]
        pads = (max(0, -y0), max(0, y0 + side - h), max(0, -x0), max(0, x0 + side - w))
        crop = rgb[max(0, y0):max(0, y0 + side), max(0, x0):max(0, x0 + side)]
        if crop.size == 0:
            return None
        crop = cv2.copyMakeBorder(crop, *pads, cv2.BORDER_CONSTANT, value=(128, 128, 128))
        found = [_moved(f, x0, y0) for f in self._run(0, np.ascontiguousarray(crop))]
        best = max(found, key=lambda f: box_iou(f.box, face.box), default=None)
        return best if best is not None and box_iou(best.box, face.box) >= 0.4 else None

    def close(self) -> None:
        """Release the MediaPipe graphs (they are also released when the detector is garbage-collected)."""
        for graph in self._graphs.values():
            graph.close()
        self._graphs.clear()

    def __enter__(self) -> MediaPipeDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _moved(face: Face, dx: float, dy: float) -> Face:
    """`face` found in a crop whose top-left corner is (dx, dy), in the full image's pixels."""
    box = (face.box[0] + dx, face.box[1] + dy, face.box[2] + dx, face.box[3] + dy)
    marks = None if face.landmarks is None else face.landmarks + (dx, dy)
    return Face(box=box, score=face.score, landmarks=marks, detector=face.detector)
