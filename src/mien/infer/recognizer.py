"""`Recognizer`: faces in images and videos -> typed expression predictions.

    from mien import Recognizer
    rec = Recognizer()                      # shipped default model, BlazeFace detector, PyTorch on the CPU
    for face in rec.predict("photo.jpg"):   # a path, bytes, a PIL image or a numpy array
        print(face.box, face.emotion, face.confidence)

Images are read by `mien.io.read_image` (a path or bytes in any common format, a PIL image in any
mode, or a numpy array (H, W) / (H, W, 1) gray, (H, W, 3) RGB -- not BGR -- or (H, W, 4) RGBA, of
dtype uint8, uint16 or float in [0, 1]). Each detected face is aligned to the model's 48x48
grayscale input by `mien.detect.align_face`; all faces of a call go through the model in one batch.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np

from ..weights.ensemble import is_ensemble_manifest
from .backends import TorchBackend, OnnxBackend, create_backend
from .ensemble import EnsembleBackend
from .results import FacePrediction, FrameResult, ImageResult, make_prediction

if TYPE_CHECKING:
    from ..detect import Face

# Frames detected before one model call in `predict_video`: batching amortises the per-call
# overhead while a result still follows its frame by at most this many frames.
_VIDEO_CHUNK = 8


class Recognizer:
    """Detects faces and recognises their expression.

    Args:
        model: a shipped model name ("default"), a shipped ensemble name or `X.ensemble.json`
            manifest (members' probabilities averaged), a training run directory, a checkpoint
            file, or (with backend="onnx") a `.onnx` file written by `mien export`.
        backend: "torch" or "onnx" (onnxruntime; the checkpoint is exported once into a local cache).
        detector: "mediapipe" (BlazeFace), "haar" (OpenCV cascade) or "none": each image is one
            already-aligned face (converted to gray and resized to the model input with INTER_AREA).
        device: "cpu" or "cuda" (torch backend only).
        tta: "none", "flip" (average with the mirrored face), "tencrop" (ten crops and mirrors,
            10x the model cost; see `mien.tta`) or "auto": the TTA a shipped model's
            card was measured with (its sidecar's `shipped.tta`, kept by `mien export`), "none" for
            other checkpoints.
        batch_size: faces per model call.
        min_score: least detector confidence for a face.
        margin: context around the detected box when aligning (None: `align_face`'s default).
        threads: onnxruntime intra-op threads (default: every CPU core). The torch backend uses
            torch's process-wide setting (`torch.set_num_threads`); on a busy machine 1 is fastest.
        precision: the torch backend's arithmetic: "fp32" (default; what the model cards state),
            "bf16", or "auto" (bf16 on CUDA and on CPUs with AMX / AVX512-BF16, ~3x faster there for
            small CNNs, else fp32). The onnx backend runs fp32.
    """

    def __init__(self, model: str | Path = "default", *, backend: str = "torch", detector: str = "mediapipe",
                 device: str = "cpu", tta: str = "auto", batch_size: int = 256, min_score: float = 0.5,
                 margin: float | None = None, threads: int | None = None, precision: str = "fp32") -> None:
        source = Path(model) if Path(model).suffix == ".onnx" else _resolve(model)
        if tta == "auto":
            from ..weights import checkpoint_tta

            tta = checkpoint_tta(source)
        self.backend: TorchBackend | OnnxBackend | EnsembleBackend
        if is_ensemble_manifest(source):
            self.backend = EnsembleBackend(source, backend=backend, device=device, batch_size=batch_size,
                                           tta=tta, threads=threads, precision=precision)
        else:
            self.backend = create_backend(backend, source, device=device, batch_size=batch_size, tta=tta,
                                          threads=threads, precision=precision)
        self.detector_name = detector
        self._align_kwargs: dict[str, Any] = {} if margin is None else {"margin": margin}
        self._detector = None
        if detector != "none":
            from ..detect import create_detector

            self._detector = create_detector(detector, min_score=min_score)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.backend.class_names

    @property
    def input_size(self) -> tuple[int, int]:
        return self.backend.info.input_size

    def __repr__(self) -> str:
        return (f"Recognizer(model={str(self.backend.info.source)!r}, backend={self.backend.name!r}, "
                f"detector={self.detector_name!r}, tta={self.backend.tta!r})")

    def close(self) -> None:
        """Release the detector's native resources (MediaPipe graphs); the Recognizer is unusable after."""
        close = getattr(self._detector, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Recognizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def predict(self, image: Any) -> list[FacePrediction]:
        """The faces in one image (an empty list when there is none).

        Raises:
            ImageError: the image cannot be read (the message names it).
        """
        from ..io.images import read_image

        faces, crops = self.detect_and_align(read_image(image))
        probs = self.backend.probs(crops)
        return [make_prediction(i, face, probs[i], self.class_names) for i, face in enumerate(faces)]

    def predict_batch(self, images: Iterable[Any]) -> list[ImageResult]:
        """The faces of many images, all classified in one batched model pass.

        An image that cannot be read does not stop the batch: its ImageResult has `error` set
        (the reason, naming the file) and no faces. Each result reads like a list of its faces.
        """
        from ..io.images import ImageError, read_image

        entries: list[tuple[str, list[Face] | None, str | None]] = []
        crops: list[np.ndarray] = []
        for i, image in enumerate(images):
            name = _source_name(image, i)
            try:
                rgb = read_image(image, name=name)
            except ImageError as exc:
                entries.append((name, None, str(exc)))
                continue
            faces, face_crops = self.detect_and_align(rgb)
            entries.append((name, faces, None))
            crops.append(face_crops)
        probs = self.backend.probs(_stack(crops, self.input_size))
        results, k = [], 0
        for name, faces, error in entries:
            if faces is None:
                results.append(ImageResult(name, (), error))
                continue
            preds = tuple(make_prediction(i, f, probs[k + i], self.class_names) for i, f in enumerate(faces))
            results.append(ImageResult(name, preds))
            k += len(faces)
        return results

    def predict_faces(self, crops: np.ndarray) -> np.ndarray:
        """(N, H, W) uint8 aligned grayscale faces -> (N, C) float32 probabilities, columns in `class_names` order."""
        return self.backend.probs(crops)

    def predict_video(self, path: str | Path, *, every: int = 1, smooth: int = 5,
                      keep_frames: bool = False) -> Iterator[FrameResult]:
        """Yield one FrameResult per processed frame (frames 0, every, 2*every, ...).

        Faces are tracked across processed frames (stable `track_id`); each track's probabilities
        are averaged over its last `smooth` processed frames (1 = no smoothing). With `keep_frames`
        each result carries its RGB frame in `image` (for drawing).

        Raises:
            ImageError: the video cannot be opened or decoded.
        """
        from .tracking import IouTracker, ProbabilitySmoother
        from .video import iter_frames

        tracker, smoother = IouTracker(), ProbabilitySmoother(smooth)
        frames = iter_frames(path, every=every)
        while chunk := list(islice(frames, _VIDEO_CHUNK)):
            detected = [self.detect_and_align(rgb) for _, _, rgb in chunk]
            probs = self.backend.probs(_stack([c for _, c in detected], self.input_size))
            k = 0
            for (index, time_s, rgb), (faces, _) in zip(chunk, detected):
                ids = tracker.update([f.box for f in faces])
                smoother.forget(tracker.ended)
                preds = tuple(make_prediction(i, f, smoother.update(ids[i], probs[k + i]), self.class_names,
                                              track_id=ids[i]) for i, f in enumerate(faces))
                k += len(faces)
                yield FrameResult(index, time_s, preds, rgb if keep_frames else None)

    def detect_and_align(self, rgb: np.ndarray) -> tuple[list[Face], np.ndarray]:
        """Faces of an (H, W, 3) uint8 RGB image and their (N, H, W) uint8 aligned model-input crops."""
        import cv2

        from ..detect import Face, align_face

        height, width = self.input_size
        if self._detector is None:
            gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            crop = cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA)
            return [Face(box=(0.0, 0.0, float(rgb.shape[1]), float(rgb.shape[0])), score=1.0, landmarks=None)], crop[None]
        faces = self._detector.detect(rgb)
        crops = [align_face(rgb, face, size=height, **self._align_kwargs) for face in faces]
        if height != width:  # align_face makes square crops; the model input may not be square
            crops = [cv2.resize(c, (width, height), interpolation=cv2.INTER_AREA) for c in crops]
        return faces, _stack([np.asarray(c)[None] for c in crops], self.input_size)


def _resolve(model: str | Path) -> Path:
    from ..weights import resolve_model_source

    return resolve_model_source(model, allow_ensemble=True)


def _source_name(image: Any, index: int) -> str:
    if isinstance(image, (str, Path)):
        return str(image)
    return f"<{type(image).__name__} #{index}>"


def _stack(crops: Sequence[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Concatenate (n_i, H, W) crop arrays into one (N, H, W) uint8 array (N may be 0)."""
    crops = [c for c in crops if len(c)]
    if not crops:
        return np.zeros((0, *size), dtype=np.uint8)
    return np.ascontiguousarray(np.concatenate(crops).astype(np.uint8, copy=False))
