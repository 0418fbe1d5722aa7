"""Inference speed of the shipped default model on this machine, with the torch and onnx backends.

(a) classifier only: faces/s on batches of 256 aligned 48x48 faces, and single-face latency (ms);
(b) end to end: photos/s for a 640x480 JPEG (decode, BlazeFace detection, alignment, model);
(c) video: processed frames/s for a synthetic 640x480 single-face mp4 (decode, detection,
    alignment, model, tracking, smoothing), against the >= 25 frames/s target.

Run from the repository root, on an otherwise idle CPU:
    .venv/bin/python benchmarks/predict_speed.py
    .venv/bin/python benchmarks/predict_speed.py --frames 300 --json predict_speed.json
    .venv/bin/python benchmarks/predict_speed.py --model ensemble --classifier-only
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "examples" / "astronaut_canvas.jpg"
TARGET_FPS = 25.0


def _timed(fn: Callable[[], object], *, repeats: int, warmup: int = 3) -> list[float]:
    """Seconds per call of `fn`, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def synthetic_video(path: Path, *, frames: int, fps: float = 30.0) -> Path:
    """A 640x480 mp4: the astronaut's head drifting back and forth across a gray canvas, 3 px per frame."""
    import cv2

    face = cv2.imread(str(REPO / "examples" / "astronaut.jpg"))[10:230, 140:340]  # BGR head, 200x220
    face = cv2.resize(face, (160, 176), interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    for i in range(frames):
        canvas = np.full((480, 640, 3), 110, dtype=np.uint8)
        x = 60 + abs((3 * i) % 800 - 400)  # a triangle wave: no jump, so one track throughout
        y = 150 + int(20 * np.sin(i / 15))
        canvas[y:y + 176, x:x + 160] = face
        writer.write(canvas)
    writer.release()
    return path


def classifier_speed(backend: str, *, repeats: int, threads: int | None, model: str = "default",
                     precision: str = "fp32") -> dict[str, float]:
    from mien.infer import Recognizer

    rec = Recognizer(model, detector="none", backend=backend, threads=threads, precision=precision)
    crops = np.random.default_rng(0).integers(0, 256, (256, 48, 48), dtype=np.uint8)
    # 25 batches by default (~3 s on AMX): five gave a 1,888-2,642 faces/s spread between runs
    batch = _timed(lambda: rec.predict_faces(crops), repeats=max(5, repeats // 2))
    single = _timed(lambda: rec.predict_faces(crops[:1]), repeats=repeats * 5)
    return {"faces_per_s_batch256": 256 / statistics.median(batch),
            "single_face_ms": 1000 * statistics.median(single)}


def photo_speed(backend: str, *, repeats: int, threads: int | None, model: str = "default",
                precision: str = "fp32") -> dict[str, float]:
    from mien.infer import Recognizer

    with Recognizer(model, backend=backend, threads=threads, precision=precision) as rec:
        faces = len(rec.predict(PHOTO))
        one = _timed(lambda: rec.predict(PHOTO), repeats=repeats)
        batch = _timed(lambda: rec.predict_batch([PHOTO] * 32), repeats=max(2, repeats // 10), warmup=1)
    return {"faces_in_photo": faces, "photos_per_s": 1 / statistics.median(one), "photo_ms": 1000 * statistics.median(one),
            "photos_per_s_batch32": 32 / statistics.median(batch)}


def video_speed(backend: str, video: Path, *, frames: int, threads: int | None,
                model: str = "default", precision: str = "fp32") -> dict[str, float]:
    from mien.infer import Recognizer

    with Recognizer(model, backend=backend, threads=threads, precision=precision) as rec:
        list(rec.predict_video(video, every=max(1, frames // 10)))  # warm-up: models loaded, caches hot
        start = time.perf_counter()
        results = list(rec.predict_video(video))
        seconds = time.perf_counter() - start
    found = sum(len(r.faces) == 1 for r in results)
    tracks = {f.track_id for r in results for f in r.faces}
    return {"frames": len(results), "frames_per_s": len(results) / seconds,
            "frames_with_one_face": found, "tracks": len(tracks)}


def main() -> None:
    import torch

    from mien.cli import add_retain_memory_flag, apply_retain_memory
    from mien.train.hardware import cpu_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", nargs="+", default=["torch", "onnx"],
                        choices=["torch", "torch-bf16", "onnx"],
                        help="torch-bf16: the torch backend in bf16 (for CPUs with AMX / AVX512-BF16)")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls for latencies (default: 50)")
    parser.add_argument("--frames", type=int, default=300, help="frames in the synthetic video (default: 300)")
    parser.add_argument("--threads", type=int, help="model threads: torch.set_num_threads and onnxruntime "
                        "intra-op threads (default: torch's default and every core)")
    parser.add_argument("--model", default="default", help="shipped name, run directory or checkpoint "
                        "(default: the shipped default; its card's TTA applies)")
    parser.add_argument("--classifier-only", action="store_true", help="skip the photo and video figures")
    add_retain_memory_flag(parser)  # as `mien predict` and `mien serve` have it
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    retained = apply_retain_memory(args)

    info = {"model": args.model, "cpu": cpu_model(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "retain_memory": retained,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    print(f"CPU: {info['cpu']} ({info['cores']} cores, torch {torch.get_num_threads()} threads, "
          f"onnxruntime {args.threads or info['cores']} threads); load average before: {os.getloadavg()[0]:.2f}")
    print(f"malloc: {'freed memory retained for reuse' if retained else 'C library default'}")
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("MIEN_CACHE_DIR", str(Path(tmp) / "cache"))
        video = synthetic_video(Path(tmp) / "face.mp4", frames=args.frames)
        for backend in args.backends:
            engine, _, precision = backend.partition("-")
            kw = {"threads": args.threads, "model": args.model, "precision": precision or "fp32"}
            row = classifier_speed(engine, repeats=args.repeats, **kw)
            rows[backend] = row
            print(f"\n[{backend}] {args.model}")
            print(f"  (a) classifier: {row['faces_per_s_batch256']:8.0f} faces/s at batch 256, "
                  f"{row['single_face_ms']:.2f} ms for one face")
            if args.classifier_only:
                continue
            row.update(**photo_speed(engine, repeats=args.repeats, **kw),
                       **video_speed(engine, video, frames=args.frames, **kw))
            print(f"  (b) 640x480 photo, end to end: {row['photos_per_s']:6.1f} photos/s "
                  f"({row['photo_ms']:.1f} ms each, {row['faces_in_photo']} face(s) found), "
                  f"{row['photos_per_s_batch32']:.1f} photos/s via predict_batch(32)")
            verdict = "meets" if row["frames_per_s"] >= TARGET_FPS else "MISSES"
            print(f"  (c) 640x480 video: {row['frames_per_s']:6.1f} frames/s over {row['frames']} frames "
                  f"({verdict} the {TARGET_FPS:g} frames/s target); one face in {row['frames_with_one_face']} "
                  f"frames, {row['tracks']} track(s)")
    print(f"\nload average after: {os.getloadavg()[0]:.2f} (other processes on this CPU slow every figure)")
    if args.json:
        args.json.write_text(json.dumps({**info, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
