"""`mien predict`: a thin adapter over `mien.infer.Recognizer` for files, folders, globs and videos."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Iterator, Sequence

from ..tta import TTA_MODES
from . import add_retain_memory_flag, apply_retain_memory, example_epilog

if TYPE_CHECKING:
    from ..infer import FacePrediction, Recognizer
    from ..infer.records import RecordWriter


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="recognise facial expressions in images, folders and videos",
        description=(
            "Detect faces, align them and write one record per face (JSON lines or CSV):\n"
            "  file, frame, time_s, faces, face_index, track_id, box [x0,y0,x1,y1], score, landmarks,\n"
            "  probs {class: p}, emotion, confidence.\n"
            "An image or video frame without a face gives one record with \"faces\": 0 and empty face fields.\n"
            "A file that cannot be read prints an error line on stderr; the rest are still processed and\n"
            "the exit code is 1. Videos (mp4, avi, mov, webm, mkv): faces keep a track_id across frames and\n"
            "their probabilities are averaged over --smooth processed frames; a timeline CSV and PNG per\n"
            "track go to --timeline-dir."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=example_epilog(
            "mien predict photo.jpg",
            "mien predict photos/ 'more/**/*.png' --format csv --output faces.csv --annotate annotated/",
            "mien predict clip.mp4 --every 2 --smooth 5 --annotate out/   # out/clip.mp4 + timelines in out/",
            "mien predict crops/ --no-detect --model runs/resnet --backend onnx",
        ),
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="image or video files, folders (recursive) or globs")
    p.add_argument("--model", default="default",
                   help="shipped model name, run directory, checkpoint or exported .onnx file (default: default)")
    p.add_argument("--backend", choices=("torch", "onnx"), default="torch")
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="output format (default: jsonl)")
    p.add_argument("--output", type=Path, help="write records to this file (default: stdout)")
    p.add_argument("--no-detect", action="store_true", help="each image is one already-aligned face")
    p.add_argument("--detector", choices=("mediapipe", "haar"), default="mediapipe")
    p.add_argument("--min-score", type=float, default=0.5, help="least detector confidence (default: 0.5)")
    p.add_argument("--tta", choices=("auto", *TTA_MODES), default="auto",
                   help="test-time augmentation (flip: 2 views, tencrop: 10); auto: the one the model card "
                        "was measured with")
    p.add_argument("--annotate", type=Path, metavar="OUT_DIR", help="write images/videos with boxes and labels here")
    p.add_argument("--every", type=int, default=1, metavar="N", help="video: process every Nth frame (default: 1)")
    p.add_argument("--smooth", type=int, default=5, metavar="K",
                   help="video: average each track over K processed frames; 1 = off (default: 5)")
    p.add_argument("--timeline-dir", type=Path, metavar="DIR",
                   help="video timelines (default: the --annotate folder, else ./mien-timelines)")
    p.add_argument("--batch-size", type=int, default=32, metavar="N",
                   help="images read and detected before one batched model call (default: 32)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="torch backend device")
    p.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32",
                   help="torch backend arithmetic: fp32 (what model cards state), bf16, or auto (bf16 where "
                   "the CPU has AMX/AVX512-BF16, ~3x faster there); onnx runs fp32")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for the model (default: every core); 1 is faster on a busy machine")
    add_retain_memory_flag(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..infer import Recognizer
    from ..infer.records import RecordWriter
    from ..io.images import is_video

    if args.batch_size < 1 or args.every < 1 or args.smooth < 1 or (args.threads is not None and args.threads < 1):
        raise ConfigError("--batch-size, --every, --smooth and --threads must be >= 1")
    if args.threads and args.backend == "torch":
        import torch

        torch.set_num_threads(args.threads)  # process-wide, which the CLI owns
    apply_retain_memory(args)
    files, failed = _expand(args.paths)
    rec = Recognizer(args.model, backend=args.backend, detector="none" if args.no_detect else args.detector,
                     device=args.device, tta=args.tta, min_score=args.min_score, threads=args.threads,
                     precision=args.precision)
    root = _common_root(files)
    with _open_output(args.output) as stream:
        writer = RecordWriter(stream, fmt=args.format, class_names=rec.class_names)
        images = [f for f in files if not is_video(f)]
        failed |= _predict_images(rec, images, writer, root=root, args=args)
        for video in (f for f in files if is_video(f)):
            failed |= _predict_video(rec, video, writer, root=root, args=args)
    return 1 if failed else 0


def _expand(paths: Sequence[str]) -> tuple[list[Path], bool]:
    """Each argument expanded on its own, so one that matches nothing is reported and the rest run."""
    from ..io.images import ImageError, expand_inputs

    files: dict[Path, None] = {}
    failed = False
    for arg in paths:
        try:
            files.update(dict.fromkeys(expand_inputs([arg])))
        except ImageError as exc:
            _error(exc)
            failed = True
    return list(files), failed


def _predict_images(rec: Recognizer, images: list[Path], writer: RecordWriter, *, root: Path,
                    args: argparse.Namespace) -> bool:
    from ..infer.records import face_records

    failed = False
    with _bar(len(images), "images", "img", args.no_progress) as bar:
        for start in range(0, len(images), args.batch_size):
            chunk = images[start:start + args.batch_size]
            for path, result in zip(chunk, rec.predict_batch(chunk)):
                if not result.ok:
                    bar.clear()
                    _error(result.error)
                    failed = True
                    continue
                writer.write(face_records(str(path), result.faces))
                if args.annotate:
                    _annotate_image(path, result.faces, _mirror(path, root, args.annotate))
            bar.update(len(chunk))
    return failed


def _predict_video(rec: Recognizer, path: Path, writer: RecordWriter, *, root: Path,
                   args: argparse.Namespace) -> bool:
    from ..infer.records import face_records
    from ..infer.video import Timeline, VideoWriter, video_info
    from ..io.images import ImageError

    timeline = Timeline(rec.class_names)
    try:
        info = video_info(path)
        with contextlib.ExitStack() as stack:
            out = None
            if args.annotate:
                target = _mirror(path, root, args.annotate).with_suffix(".mp4")
                # Written at the processed-frame rate, so the annotated clip plays at real speed.
                out = stack.enter_context(VideoWriter(target, fps=info.fps / args.every, size=(info.width, info.height)))
            total = -(-info.frame_count // args.every) if info.frame_count else None
            bar = stack.enter_context(_bar(total, path.name, "frame", args.no_progress))
            for frame in rec.predict_video(path, every=args.every, smooth=args.smooth, keep_frames=out is not None):
                writer.write(face_records(str(path), frame.faces, frame=frame.frame_index, time_s=frame.time_s))
                for face in frame.faces:
                    timeline.add(face.track_id, frame.time_s, list(face.probs.values()))
                if out is not None:
                    from ..infer.annotate import draw_faces

                    out.write(draw_faces(frame.image, frame.faces))
                bar.update(1)
    except ImageError as exc:
        _error(exc)
        return True
    if timeline.rows:  # no faces, no tracks: nothing to plot
        timeline_dir = args.timeline_dir or args.annotate or Path("mien-timelines")
        rel = _relative(path, root)
        timeline.write(timeline_dir / rel.parent, rel.stem)
    return False


def _annotate_image(path: Path, faces: Sequence[FacePrediction], target: Path) -> None:
    import cv2

    from ..infer.annotate import draw_faces
    from ..io.images import read_image

    drawn = draw_faces(read_image(path), faces)
    if target.suffix.lower() not in (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm"):
        target = target.with_suffix(".png")  # e.g. GIF, which OpenCV cannot write
    target.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(target), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write annotated image {target}")


def _common_root(files: Sequence[Path]) -> Path:
    """The deepest folder holding every input, so outputs mirror the inputs' layout below it."""
    if not files:
        return Path.cwd()
    return Path(os.path.commonpath([str(f.resolve().parent) for f in files]))


def _relative(path: Path, root: Path) -> Path:
    return path.resolve().relative_to(root)


def _mirror(path: Path, root: Path, out_dir: Path) -> Path:
    return out_dir / _relative(path, root)


@contextlib.contextmanager
def _open_output(path: Path | None) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdout
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        yield f


def _bar(total: int | None, desc: str, unit: str, disabled: bool):  # noqa: ANN202 (tqdm)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=disabled or not total, leave=False,
                dynamic_ncols=True, file=sys.stderr)


def _error(message: object) -> None:
    print(f"mien: error: {message}", file=sys.stderr)
