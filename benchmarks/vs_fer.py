"""mien against the peer tool `fer` (justinshenk, 25.10.3) on this machine: accuracy, faces found, speed.

`fer` is NOT a mien dependency. It lives in its own venv (TensorFlow, opencv<5, setuptools<81);
this script talks to it through benchmarks/_fer_worker.py, started with that venv's python, with
JSON request/result files. Set the venv up once (see /work/shared/notes/peers.md):

    python3 -m venv /work/fer-venv
    /work/fer-venv/bin/pip install tensorflow-cpu "setuptools<81" pandas requests matplotlib tqdm \\
        "moviepy<2" ffmpeg-python Pillow "opencv-contrib-python-headless<5" scikit-image
    /work/fer-venv/bin/pip install --no-deps fer==25.10.3

Measured, both tools with ONE thread (OMP/MKL/OpenBLAS/TF env vars, torch, TensorFlow, the TFLite
interpreter, onnxruntime and OpenCV all set to 1):
  (a) FER2013 PrivateTest accuracy: fer through its API (int8 TFLite, each 48x48 crop with
      face_rectangles=[(10, 10, 28, 28)]) and its Keras model called directly; mien's model without
      and with flip TTA.
  (b) faces found on examples/astronaut_canvas.jpg (one face) by each default pipeline.
  (c) end-to-end photos/s on a 640x480 photo including detection: fer's default (Haar + int8 TFLite)
      vs mien's Recognizer (MediaPipe BlazeFace; torch and onnx backends; also Haar + torch).
      The photo is decoded once; the timed loop is detection + alignment + classification.
  (d) classifier-only faces/s: fer TFLite one face per call, fer Keras batch 64, mien batch 256.
Timings exclude imports and model loading and follow a warm-up; "per CPU-s" divides by the
process CPU time, which is less sensitive to other load than wall time (the load average is printed).

Run from the repository root:
    .venv/bin/python benchmarks/vs_fer.py --limit 300           # quick look
    .venv/bin/python benchmarks/vs_fer.py --markdown bench.md   # full PrivateTest
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().parent / "_fer_worker.py"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
               "TF_NUM_INTEROP_THREADS", "NUMEXPR_NUM_THREADS")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fer-python", type=Path, default=Path("/work/fer-venv/bin/python"),
                   help="python of the venv where fer 25.10.3 is installed")
    p.add_argument("--data", type=Path, help="FER2013 npz/csv (default: $MIEN_DATA or ../shared/data/fer2013.npz)")
    p.add_argument("--model", default="default", help="mien model: shipped name, run dir or checkpoint")
    p.add_argument("--limit", type=int, default=0, help="stratified subset of N PrivateTest faces (seed 0)")
    p.add_argument("--photo", type=Path, default=REPO / "examples" / "astronaut_canvas.jpg",
                   help="the 640x480 photo for (b) and (c)")
    p.add_argument("--repeats", type=int, default=100, help="timed end-to-end calls per pipeline")
    p.add_argument("--markdown", type=Path, help="also write the report as Markdown here")
    p.add_argument("--json", type=Path, help="also write every raw figure as JSON here")
    return p.parse_args()


def run_fer(fer_python: Path, request: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """One task in fer's venv; its stderr (TensorFlow logs) is kept only if it fails."""
    req, res = workdir / f"{request['task']}.request.json", workdir / f"{request['task']}.result.json"
    req.write_text(json.dumps(request))
    proc = subprocess.run([str(fer_python), str(WORKER), str(req), str(res)], capture_output=True, text=True,
                          env=os.environ.copy())
    if proc.returncode != 0:
        raise RuntimeError(f"fer worker task {request['task']!r} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(res.read_text())


def timed(fn: Callable[[], Any], *, repeats: int = 1) -> tuple[Any, float, float]:
    """(last result, wall seconds, process CPU seconds) of `repeats` calls."""
    out = None
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        out = fn()
    return out, time.perf_counter() - start, time.process_time() - cpu


def mien_figures(args: argparse.Namespace, crops: Any, labels: Any) -> dict[str, Any]:
    import cv2
    import numpy as np
    import torch

    from mien.infer import Recognizer
    from mien.io import read_image

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    cv2.setNumThreads(1)
    out: dict[str, Any] = {}
    for backend in ("torch", "onnx"):
        for tta in ("none", "flip"):
            rec = Recognizer(args.model, backend=backend, detector="none", tta=tta, batch_size=256, threads=1)
            rec.predict_faces(crops[:256])  # warm-up
            probs, wall, cpu = timed(lambda: rec.predict_faces(crops))
            out[f"crops_{backend}_{tta}"] = {"acc": float((probs.argmax(1) == labels).mean()), "seconds": wall,
                                             "cpu_seconds": cpu, "faces": len(crops)}
    rgb = read_image(args.photo)
    for backend, detector in (("torch", "mediapipe"), ("onnx", "mediapipe"), ("torch", "haar")):
        rec = Recognizer(args.model, backend=backend, detector=detector, threads=1)
        found = rec.predict(rgb)
        for _ in range(3):
            rec.predict(rgb)
        _, wall, cpu = timed(lambda: rec.predict(rgb), repeats=args.repeats)
        out[f"photo_{backend}_{detector}"] = {
            "faces": [{"box": [round(v) for v in f.box], "top": f.emotion, "score": f.confidence} for f in found],
            "seconds": wall, "cpu_seconds": cpu, "frames": args.repeats, "shape": list(rgb.shape)}
    out["model"] = str(rec.backend.info.source)
    out["versions"] = {"torch": torch.__version__, "numpy": np.__version__, "opencv": cv2.__version__}
    try:
        import onnxruntime

        out["versions"]["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return out


def _num(x: float) -> str:
    return f"{x:,.1f}" if x < 100 else f"{x:,.0f}"


def report(figs: dict[str, Any]) -> str:
    """The figures as Markdown: header, accuracy, faces found, speed."""
    m, f = figs["mien"], figs["fer"]
    n = figs["faces"]

    def rate(d: dict[str, Any]) -> str:
        """'wall rate | CPU rate' of a timing with `faces` or `frames` items."""
        count = d["frames"] if "frames" in d else d["faces"]
        cpu = _num(count / d["cpu_seconds"]) if d["cpu_seconds"] > 0 else "n/a"
        return f"{_num(count / d['seconds'])} | {cpu}"

    def ms(d: dict[str, Any]) -> str:
        return f"{1000 * d['seconds'] / d['frames']:.1f}"

    lines = [
        f"Measured {figs['date']} on {figs['cpu']} ({figs['cores']} logical cores), one thread per tool. "
        f"Load average before/after: {figs['load_before']} / {figs['load_after']}.",
        f"fer {f['info']['fer']} (TensorFlow {f['info']['tensorflow']}, OpenCV {f['info']['opencv']}) in its own venv; "
        f"mien model `{Path(m['model']).name}`, torch {m['versions']['torch']}, "
        f"onnxruntime {m['versions'].get('onnxruntime', 'n/a')}, OpenCV {m['versions']['opencv']}.",
        "",
        f"**(a) FER2013 PrivateTest accuracy** ({n} faces{'' if figs['limit'] == 0 else ', stratified subset'})",
        "",
        "| tool | model / path | accuracy |",
        "|---|---|---|",
        f"| fer | API, int8 TFLite, box (10,10,28,28) | {100 * f['crops_api']['acc']:.2f} % |",
        f"| fer | Keras hdf5 called directly, 64x64 | {100 * f['crops_keras']['acc']:.2f} % |",
        f"| mien | torch, no TTA | {100 * m['crops_torch_none']['acc']:.2f} % |",
        f"| mien | torch, flip TTA | {100 * m['crops_torch_flip']['acc']:.2f} % |",
        f"| mien | onnx, no TTA | {100 * m['crops_onnx_none']['acc']:.2f} % |",
        "",
        f"**(b) faces found on `{figs['photo']}`** (the photo shows one face)",
        "",
        "| pipeline | faces | boxes (x0, y0, x1, y1) and top emotion |",
        "|---|---|---|",
        f"| fer default (Haar + TFLite) | {len(f['photo']['faces'])} | "
        + "; ".join(f"({x}, {y}, {x + w}, {y + h}) {d['top']}" for d in f["photo"]["faces"]
                    for x, y, w, h in [d["box"]]) + " |",
    ]
    for key, label in (("photo_torch_mediapipe", "mien default (MediaPipe + torch)"),
                       ("photo_torch_haar", "mien, Haar + torch")):
        faces = m[key]["faces"]
        lines.append(f"| {label} | {len(faces)} | " + "; ".join(f"({', '.join(map(str, d['box']))}) {d['top']}"
                                                              for d in faces) + " |")
    lines += [
        "",
        f"**(c) end to end on the {m['photo_torch_mediapipe']['shape'][1]}x{m['photo_torch_mediapipe']['shape'][0]} "
        f"photo** (detection + crop + classification; decoded once; {f['photo']['frames']} calls)",
        "",
        "| pipeline | ms / photo | photos/s | photos per CPU-s |",
        "|---|---|---|---|",
        f"| fer default: Haar + int8 TFLite | {ms(f['photo'])} | {rate(f['photo'])} |",
        f"| mien: MediaPipe + torch | {ms(m['photo_torch_mediapipe'])} | {rate(m['photo_torch_mediapipe'])} |",
        f"| mien: MediaPipe + onnx | {ms(m['photo_onnx_mediapipe'])} | {rate(m['photo_onnx_mediapipe'])} |",
        f"| mien: Haar + torch | {ms(m['photo_torch_haar'])} | {rate(m['photo_torch_haar'])} |",
        "",
        f"**(d) classifier only** ({n} aligned 48x48 crops, no detection)",
        "",
        "| classifier | batch | faces/s | faces per CPU-s |",
        "|---|---|---|---|",
        f"| fer int8 TFLite via API (one face per call, as fer runs it) | 1 | {rate(f['crops_api'])} |",
        f"| fer Keras mini-Xception | 64 | {rate(f['crops_keras'])} |",
        f"| mien torch fp32 | 256 | {rate(m['crops_torch_none'])} |",
        f"| mien onnxruntime | 256 | {rate(m['crops_onnx_none'])} |",
        f"| mien torch fp32, flip TTA (2 passes) | 256 | {rate(m['crops_torch_flip'])} |",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    args = parse_args()
    for var in THREAD_VARS:  # before numpy/torch/TensorFlow load their thread pools (the worker inherits them)
        os.environ[var] = "1"
    import numpy as np

    from mien.data.sources import default_source, load_source
    from mien.data.splits import stratified_subset
    from mien.labels import PRIVATE_TEST
    from mien.train.hardware import cpu_model

    if not args.fer_python.is_file():
        print(f"vs_fer: no python at {args.fer_python}; install fer in its own venv (see --help)", file=sys.stderr)
        return 2
    load_before = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    faces = load_source(args.data or default_source())
    index = np.flatnonzero(faces.usage == PRIVATE_TEST)
    if args.limit and args.limit < len(index):
        index = index[stratified_subset(faces.labels[index], args.limit, rng=np.random.default_rng(0))]
    crops, labels = faces.images[index], faces.labels[index]
    figs: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
        "faces": int(len(index)), "limit": args.limit, "photo": str(args.photo.relative_to(REPO))
        if args.photo.is_relative_to(REPO) else str(args.photo), "load_before": load_before,
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        npz = work / "crops.npz"
        np.savez(npz, images=crops)
        fer: dict[str, Any] = {"info": run_fer(args.fer_python, {"task": "info"}, work)}
        print(f"fer {fer['info']['fer']} / TensorFlow {fer['info']['tensorflow']}: classifying {len(crops)} crops",
              file=sys.stderr)
        for task in ("crops_api", "crops_keras"):
            res = run_fer(args.fer_python, {"task": task, "npz": str(npz), "batch": 64}, work)
            preds = np.asarray(res.pop("preds"))
            res["acc"] = float((preds == labels).mean())
            res["no_face"] = int((preds < 0).sum())
            fer[task] = res
        fer["photo"] = run_fer(args.fer_python, {"task": "photo", "image": str(args.photo.resolve()),
                                                 "repeats": args.repeats}, work)
    print("mien: classifying and timing", file=sys.stderr)
    figs["fer"], figs["mien"] = fer, mien_figures(args, crops, labels)
    figs["load_after"] = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    text = report(figs)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(figs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
