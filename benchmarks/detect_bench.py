"""Face detectors on this machine: recall, false positives and speed; and FER2013 crop framing.

Test sets (all 640x480 RGB):
  (a) examples/astronaut_canvas.jpg: one face, hand-labelled box;
  (b) synthetic scenes: 1-4 FER2013 PrivateTest faces upscaled to 96-200 px (bicubic) and pasted,
      non-overlapping, on varied backgrounds (flat, gradient, blurred noise, rectangle clutter,
      colour stripes); the pasted frames are the true boxes;
  (c) the same scenes with every face turned by 8-25 degrees either way (only the turned square
      is pasted; the true box stays the unturned frame).
"NAME:raw" rows are NAME without the second look at each face (create_detector(..., refine=False)).
A detection is a hit when its IoU with a not-yet-matched true box is >= 0.3 (best score first),
else a false positive. Speed is the median ms per 640x480 scene with the process pinned to 1 or
2 cores (os.sched_setaffinity before the detector is built, so its threads inherit the pinning;
cv2.setNumThreads to match).

--angles measures the eye-line angle error on turned faces with and without the second look.

--framing detects faces on PrivateTest images upscaled to 192x192 on a grey canvas and prints,
per model, the (margin, shift) that turn its box into the original 48x48 frame (mien.detect.FRAMING).

FER2013 comes from $MIEN_DATA or ../shared/data/fer2013.npz; no faces are written to disk.

Run from the repository root:
    .venv/bin/python benchmarks/detect_bench.py
    .venv/bin/python benchmarks/detect_bench.py --scenes 60 --speed-images 20 --detectors mediapipe haar
    .venv/bin/python benchmarks/detect_bench.py --framing --framing-faces 1000
    .venv/bin/python benchmarks/detect_bench.py --angles
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from mien.detect import FRAMING, Face, box_iou, create_detector, eye_angle
from mien.io import read_image
from mien.train.hardware import cpu_model

REPO = Path(__file__).resolve().parents[1]
CANVAS_W, CANVAS_H = 640, 480
# The astronaut's face on examples/astronaut_canvas.jpg (hand-labelled on the 512x512 photo as
# x 178-272, y 75-180, then scaled by 480/512 and moved right by 80 px).
ASTRONAUT_BOX = (80 + 178 * 0.9375, 75 * 0.9375, 80 + 272 * 0.9375, 180 * 0.9375)
# "NAME:raw" is NAME with refine=False (no second look at each face).
DEFAULT_DETECTORS = ("mediapipe-short:raw", "mediapipe-short", "mediapipe-full:raw", "mediapipe-full",
                     "mediapipe-both", "mediapipe-tiles", "mediapipe:raw", "mediapipe", "haar")
IOU_HIT = 0.3


@dataclass(frozen=True)
class Scene:
    rgb: np.ndarray
    boxes: list[tuple[float, float, float, float]]


@dataclass(frozen=True)
class Row:
    detector: str
    astronaut_hits: int
    astronaut_false: int
    recall: float
    false_per_image: float
    recall_rotated: float
    false_per_image_rotated: float
    ms_1_thread: float
    ms_1_thread_mean: float
    ms_2_threads: float


def build(spec: str, min_score: float) -> object:
    name, _, variant = spec.partition(":")
    return create_detector(name, min_score=min_score, refine=variant != "raw")


def fer_npz() -> Path:
    env = os.environ.get("MIEN_DATA")
    for path in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data" / "fer2013.npz"]:
        if path.is_file():
            return path
    raise SystemExit("FER2013 npz not found: set MIEN_DATA or put it at ../shared/data/fer2013.npz")


def private_test_faces(path: Path) -> np.ndarray:
    with np.load(path) as data:
        return data["images"][data["usage"] == 2]


def background(rng: np.random.Generator) -> np.ndarray:
    kind = rng.integers(5)
    h, w = CANVAS_H, CANVAS_W
    if kind == 0:  # flat colour
        return np.broadcast_to(rng.integers(0, 256, 3, dtype=np.uint8), (h, w, 3)).copy()
    if kind == 1:  # two-colour gradient
        a, b = rng.integers(0, 256, (2, 3)).astype(np.float32)
        t = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
        return np.broadcast_to(a * (1 - t) + b * t, (h, w, 3)).astype(np.uint8)
    if kind == 2:  # blurred colour noise
        noise = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
        return cv2.GaussianBlur(cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC), (0, 0), 3)
    if kind == 3:  # rectangle clutter
        img = np.full((h, w, 3), rng.integers(0, 256, 3), dtype=np.uint8)
        for _ in range(30):
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            x1, y1 = x0 + int(rng.integers(10, 200)), y0 + int(rng.integers(10, 200))
            cv2.rectangle(img, (x0, y0), (x1, y1), tuple(int(v) for v in rng.integers(0, 256, 3)), -1)
        return img
    stripes = np.repeat(rng.integers(0, 256, (w // 16 + 1, 3), dtype=np.uint8), 16, axis=0)[:w]  # colour stripes
    return np.broadcast_to(stripes[None], (h, w, 3)).copy()


def make_scene(faces: np.ndarray, rng: np.random.Generator, *, rotate: bool) -> Scene:
    """1-4 faces of 96-200 px at random non-overlapping places; optionally turned by 8-25 degrees."""
    rgb = background(rng)
    boxes: list[tuple[float, float, float, float]] = []
    for _ in range(int(rng.integers(1, 5))):
        side = int(rng.integers(96, 201))
        for _attempt in range(50):
            x, y = int(rng.integers(0, CANVAS_W - side)), int(rng.integers(0, CANVAS_H - side))
            box = (float(x), float(y), float(x + side), float(y + side))
            if all(box_iou(box, b) == 0.0 for b in boxes):
                break
        else:
            continue  # no room left on this canvas
        face = cv2.resize(faces[int(rng.integers(len(faces)))], (side, side), interpolation=cv2.INTER_CUBIC)
        patch, mask = face, np.ones_like(face)
        if rotate:
            angle = float(rng.uniform(8, 25)) * (1 if rng.random() < 0.5 else -1)
            turn = cv2.getRotationMatrix2D((side / 2 - 0.5, side / 2 - 0.5), angle, 1.0)
            patch = cv2.warpAffine(face, turn, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            mask = cv2.warpAffine(mask, turn, (side, side), flags=cv2.INTER_NEAREST)
        region = rgb[y:y + side, x:x + side]
        region[mask > 0] = patch[mask > 0][:, None]
        boxes.append(box)
    return Scene(rgb=rgb, boxes=boxes)


def match(found: list[Face], truth: list[tuple[float, float, float, float]]) -> tuple[int, int]:
    """(hits, false positives), greedily by score."""
    free = list(truth)
    hits = false = 0
    for face in sorted(found, key=lambda f: -f.score):
        ious = [box_iou(face.box, t) for t in free]
        best = int(np.argmax(ious)) if ious else -1
        if best >= 0 and ious[best] >= IOU_HIT:
            free.pop(best)
            hits += 1
        else:
            false += 1
    return hits, false


def accuracy(detector: object, scenes: list[Scene]) -> tuple[float, float]:
    hits = false = total = 0
    for scene in scenes:
        h, f = match(detector.detect(scene.rgb), scene.boxes)  # type: ignore[attr-defined]
        hits, false, total = hits + h, false + f, total + len(scene.boxes)
    return hits / max(total, 1), false / max(len(scenes), 1)


def speed_ms(name: str, images: list[np.ndarray], threads: int, min_score: float) -> tuple[float, float]:
    """(median, mean) ms per image with the process pinned to `threads` cores."""
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, cores[:threads])
    cv2.setNumThreads(threads)
    try:
        detector = build(name, min_score)
        for img in images[:3]:
            detector.detect(img)  # type: ignore[attr-defined]
        times = []
        for img in images:
            start = time.perf_counter()
            detector.detect(img)  # type: ignore[attr-defined]
            times.append((time.perf_counter() - start) * 1000.0)
        detector.close()  # type: ignore[attr-defined]
    finally:
        os.sched_setaffinity(0, cores)
    return statistics.median(times), statistics.fmean(times)


def run_detectors(args: argparse.Namespace) -> list[Row]:
    faces = private_test_faces(args.data)
    rng = np.random.default_rng(args.seed)
    plain = [make_scene(faces, rng, rotate=False) for _ in range(args.scenes)]
    turned = [make_scene(faces, rng, rotate=True) for _ in range(args.scenes)]
    astronaut = read_image(REPO / "examples" / "astronaut_canvas.jpg")
    speed_images = [s.rgb for s in plain[: args.speed_images]]
    cores = len(os.sched_getaffinity(0))
    rows = []
    for name in args.detectors:
        nan = float("nan")
        a_hits, a_false, recall, fpi, recall_r, fpi_r = -1, -1, nan, nan, nan, nan
        if not args.speed_only:
            detector = build(name, args.min_score)
            a_hits, a_false = match(detector.detect(astronaut), [ASTRONAUT_BOX])  # type: ignore[attr-defined]
            recall, fpi = accuracy(detector, plain)
            recall_r, fpi_r = accuracy(detector, turned)
            detector.close()  # type: ignore[attr-defined]
        ms1, mean1 = speed_ms(name, speed_images, 1, args.min_score)
        ms2 = speed_ms(name, speed_images, 2, args.min_score)[0] if cores >= 2 else float("nan")
        rows.append(Row(name, a_hits, a_false, recall, fpi, recall_r, fpi_r, ms1, mean1, ms2))
        print(f"  {name}: done", flush=True)
    return rows


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    import mediapipe

    print(f"\nCPU: {cpu_model()} ({len(os.sched_getaffinity(0))} cores usable); mediapipe {mediapipe.__version__}, "
          f"OpenCV {cv2.__version__}; min_score {args.min_score}; {args.scenes} scenes per set, seed {args.seed}; "
          f"speed over {args.speed_images} scenes of set (b)\n")
    print("| detector | astronaut canvas (1 face): hits / false | recall (b) | false/img (b) "
          "| recall (c, turned) | false/img (c) | ms/img 1 thread: median (mean) | ms/img 2 threads: median |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.detector} | {r.astronaut_hits} / {r.astronaut_false} | {r.recall:.3f} | {r.false_per_image:.3f} "
              f"| {r.recall_rotated:.3f} | {r.false_per_image_rotated:.3f} | {r.ms_1_thread:.1f} ({r.ms_1_thread_mean:.1f}) "
              f"| {r.ms_2_threads:.1f} |")


def measure_framing(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Per model: detection rate on FER faces and the median frame-from-box geometry."""
    faces = private_test_faces(args.data)[: args.framing_faces]
    side, x0, y0 = 192, (CANVAS_W - 192) // 2, (CANVAS_H - 192) // 2
    frame_cx, frame_cy = x0 + side / 2, y0 + side / 2
    out = {}
    # (row, detector, refine): FRAMING is keyed by the model that drew the box; refined boxes are
    # drawn by the short-range model whichever model found the face.
    setups = [("mediapipe-short (refined, the default)", "mediapipe-short", True),
              ("mediapipe-short, refine=False", "mediapipe-short", False),
              ("mediapipe-full, refine=False", "mediapipe-full", False), ("haar", "haar", True)]
    for row, name, refine in setups:
        detector = create_detector(name, min_score=args.min_score, refine=refine)
        label = ""
        ratio, dx, dy = [], [], []
        for face in faces:
            canvas = np.full((CANVAS_H, CANVAS_W, 3), 128, dtype=np.uint8)
            canvas[y0:y0 + side, x0:x0 + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)[:, :, None]
            found = [f for f in detector.detect(canvas) if box_iou(f.box, (x0, y0, x0 + side, y0 + side)) >= IOU_HIT]
            if found:
                f = found[0]
                label = f.detector
                ratio.append(side / max(f.width, f.height))
                dx.append((frame_cx - f.center[0]) / f.width)
                dy.append((frame_cy - f.center[1]) / f.height)
        detector.close()  # type: ignore[attr-defined]
        q = np.percentile(ratio, [25, 50, 75])
        out[row] = {
            "found": len(ratio) / len(faces), "frame_over_box_q25": q[0], "frame_over_box": q[1],
            "frame_over_box_q75": q[2], "margin": (q[1] - 1) / 2, "shift": float(np.median(dy)),
            "dx": float(np.median(dx)), "in_use": FRAMING[label],
        }
    print(f"\nFraming on {len(faces)} PrivateTest faces (192 px on a 640x480 grey canvas); CPU {cpu_model()}\n")
    print("| model | found | frame side / box side (q25, median, q75) | margin = (median-1)/2 | shift (box h) "
          "| dx (box w) | FRAMING in use |")
    print("|---|---|---|---|---|---|---|")
    for name, m in out.items():
        print(f"| {name} | {m['found']:.3f} | {m['frame_over_box_q25']:.3f}, {m['frame_over_box']:.3f}, "
              f"{m['frame_over_box_q75']:.3f} | {m['margin']:.3f} | {m['shift']:.3f} | {m['dx']:.3f} "
              f"| {m['in_use']} |")
    return out


def measure_angles(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Eye-line angle error on single FER faces turned by up to 25 degrees, with and without the second look.

    Each face is detected twice: upright and turned (both at 96-200 px on a 640x480 canvas); the
    error is (angle turned - angle upright) - (the turn), which cancels the face's own tilt.
    """
    faces = private_test_faces(args.data)
    out = {}
    for refine in (False, True):
        detector = create_detector("mediapipe-short", min_score=args.min_score, refine=refine)
        rng = np.random.default_rng(args.seed)
        errors = []
        for _ in range(args.angle_faces):
            side, turn = int(rng.integers(96, 201)), float(rng.uniform(-25, 25))
            x, y = int(rng.integers(0, CANVAS_W - side)), int(rng.integers(0, CANVAS_H - side))
            face = cv2.resize(faces[int(rng.integers(len(faces)))], (side, side), interpolation=cv2.INTER_CUBIC)
            upright = np.full((CANVAS_H, CANVAS_W, 3), 128, np.uint8)
            upright[y:y + side, x:x + side] = face[:, :, None]
            matrix = cv2.getRotationMatrix2D((x + side / 2, y + side / 2), turn, 1.0)
            turned = cv2.warpAffine(upright, matrix, (CANVAS_W, CANVAS_H), borderMode=cv2.BORDER_REPLICATE)
            a, b = detector.detect(upright), detector.detect(turned)
            if a and b and a[0].landmarks is not None and b[0].landmarks is not None:
                errors.append(eye_angle(b[0]) - eye_angle(a[0]) + turn)
        detector.close()  # type: ignore[attr-defined]
        err = np.abs(np.array(errors))
        out["refined" if refine else "raw"] = {"faces": len(err), "mae": float(err.mean()),
                                                "p90": float(np.percentile(err, 90))}
    print(f"\nEye-line angle error, mediapipe-short, {args.angle_faces} turned PrivateTest faces; CPU {cpu_model()}\n")
    print("| boxes and landmarks | faces found twice | mean abs error (deg) | 90th percentile (deg) |")
    print("|---|---|---|---|")
    for name, m in out.items():
        print(f"| {name} | {m['faces']} | {m['mae']:.2f} | {m['p90']:.2f} |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="FER2013 npz (default $MIEN_DATA or ../shared)")
    parser.add_argument("--detectors", nargs="+", default=list(DEFAULT_DETECTORS))
    parser.add_argument("--scenes", type=int, default=200, help="scenes in each of sets (b) and (c)")
    parser.add_argument("--speed-images", type=int, default=60)
    parser.add_argument("--min-score", type=float, default=0.5)
    parser.add_argument("--speed-only", action="store_true", help="skip the recall measurements")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--framing", action="store_true", help="measure FER2013 framing instead")
    parser.add_argument("--framing-faces", type=int, default=1000)
    parser.add_argument("--angles", action="store_true", help="measure eye-line angle errors instead")
    parser.add_argument("--angle-faces", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    args.data = args.data or fer_npz()
    if args.framing:
        result: object = measure_framing(args)
    elif args.angles:
        result = measure_angles(args)
    else:
        rows = run_detectors(args)
        print_table(rows, args)
        result = [asdict(r) for r in rows]
    if args.json:
        args.json.write_text(json.dumps({
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpu": cpu_model(), "args": {k: str(v) for k, v in vars(args).items()}, "results": result,
        }, indent=2, default=float))


if __name__ == "__main__":
    main()
