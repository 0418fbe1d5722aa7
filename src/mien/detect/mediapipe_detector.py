"""MediaPipe BlazeFace, from the .tflite models bundled in the mediapipe wheel (CPU, no downloads).

Two models: short-range (128x128 input, faces filling much of the frame, ~2 m from a webcam) and
full-range (192x192 sparse model, smaller faces, ~5 m). Both return a box and 6 keypoints: right eye,
left eye, nose tip, mouth centre, right ear tragion, left ear tragion (the subject's right = image left).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .faces import Face, check_rgb, downscale, finish

# "auto": short-range, then full-range only where short-range found nothing (see docs/detection.md).
MEDIAPIPE_MODES = ("auto", "short", "full", "both")
_MODEL_NAMES = {0: "mediapipe-short", 1: "mediapipe-full"}


class MediaPipeDetector:
    """BlazeFace face detection; the MediaPipe graphs are built once and reused for every image."""

    def __init__(self, *, mode: str = "auto", min_score: float = 0.5, max_side: int = 1280) -> None:
        from ..errors import ConfigError

        if mode not in MEDIAPIPE_MODES:
            raise ConfigError(f"unknown MediaPipe mode {mode!r}; choose one of: {', '.join(MEDIAPIPE_MODES)}")
        self.name = "mediapipe" if mode == "auto" else f"mediapipe-{mode}"
        self.mode, self.min_score, self.max_side = mode, min_score, max_side
        self._graphs: dict[int, Any] = {}
        for selection in ((1,) if mode == "full" else (0, 1) if mode in ("both", "auto") else (0,)):
            self._graph(selection)

    def _graph(self, selection: int) -> Any:
        """The FaceDetection solution for model 0 (short) or 1 (full), built on first use."""
        if selection not in self._graphs:
            from mediapipe.python.solutions.face_detection import FaceDetection

            self._graphs[selection] = FaceDetection(model_selection=selection, min_detection_confidence=self.min_score)
        return self._graphs[selection]

    def detect(self, rgb: np.ndarray) -> list[Face]:
        check_rgb(rgb)
        small, scale = downscale(rgb, self.max_side)
        small = np.ascontiguousarray(small)
        if self.mode == "full":
            faces = self._run(1, small)
        else:
            faces = self._run(0, small)
            if self.mode == "both" or (self.mode == "auto" and not faces):
                faces += self._run(1, small)
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

    def close(self) -> None:
        """Release the MediaPipe graphs (they are also released when the detector is garbage-collected)."""
        for graph in self._graphs.values():
            graph.close()
        self._graphs.clear()

    def __enter__(self) -> MediaPipeDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
