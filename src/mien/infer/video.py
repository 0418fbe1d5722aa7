"""Video frames in (OpenCV), annotated videos out, and per-track emotion timelines (CSV + PNG)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

# Containers without a usable frame rate in their header are timed as if recorded at this rate.
FALLBACK_FPS = 25.0


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    frame_count: int  # as the container reports it; 0 when unknown
    width: int
    height: int


def _open(path: str | Path):  # noqa: ANN202 (cv2.VideoCapture)
    import cv2

    from ..io.images import ImageError

    path = Path(path)
    if not path.is_file():
        raise ImageError(f"video {path} does not exist")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise ImageError(f"{path} is not a video OpenCV can open (corrupt, or an unsupported codec)")
    return cap


def video_info(path: str | Path) -> VideoInfo:
    """Frame rate, frame count and size of a video.

    Raises:
        ImageError: the file is missing or OpenCV cannot open it.
    """
    import cv2

    cap = _open(path)
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
        return VideoInfo(fps=fps if fps and math.isfinite(fps) and fps > 0 else FALLBACK_FPS,
                         frame_count=max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT))),
                         width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        cap.release()


def iter_frames(path: str | Path, *, every: int = 1) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield (frame_index, time_s, rgb) for frames 0, every, 2*every, ... of a video.

    Skipped frames are only grabbed, not converted. `rgb` is a new (H, W, 3) uint8 RGB array.

    Raises:
        ImageError: the video cannot be opened, or not even its first frame decodes.
    """
    import cv2

    from ..errors import ConfigError
    from ..io.images import ImageError

    if every < 1:
        raise ConfigError(f"every must be >= 1 (process every Nth frame), got {every}")
    fps = video_info(path).fps
    cap = _open(path)
    try:
        index = 0
        while True:
            if index % every:
                if not cap.grab():
                    break
            else:
                ok, bgr = cap.read()
                if not ok:
                    break
                yield index, index / fps, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
        if index == 0:
            raise ImageError(f"{path}: no frame could be decoded (empty or corrupt video)")
    finally:
        cap.release()


class VideoWriter:
    """Writes RGB frames to an .mp4 (mp4v codec) as they come; use as a context manager."""

    def __init__(self, path: str | Path, *, fps: float, size: tuple[int, int]) -> None:
        import cv2

        from ..io.images import ImageError

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self._writer.isOpened():
            raise ImageError(f"cannot write video {self.path} (mp4v codec unavailable in this OpenCV build?)")

    def write(self, rgb: np.ndarray) -> None:
        import cv2

        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        self._writer.release()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Timeline:
    """Smoothed probabilities of every track of one video, collected frame by frame."""

    class_names: tuple[str, ...]
    rows: dict[int, list[tuple[float, np.ndarray]]] = field(default_factory=dict)

    def add(self, track_id: int, time_s: float, probs: Sequence[float]) -> None:
        self.rows.setdefault(track_id, []).append((time_s, np.asarray(probs, dtype=np.float64)))

    def write(self, out_dir: str | Path, stem: str) -> list[Path]:
        """One `STEM_trackN.csv` (time_s + one column per class) and `STEM_trackN.png` per track."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for track_id, rows in sorted(self.rows.items()):
            base = out_dir / f"{stem}_track{track_id}"
            with open(base.with_suffix(".csv"), "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["time_s", *self.class_names])
                for t, p in rows:
                    writer.writerow([f"{t:.3f}", *(f"{v:.6f}" for v in p)])
            self._plot(rows, base.with_suffix(".png"), title=f"{stem}: track {track_id}")
            written += [base.with_suffix(".csv"), base.with_suffix(".png")]
        return written

    def _plot(self, rows: list[tuple[float, np.ndarray]], path: Path, *, title: str) -> None:
        from matplotlib.figure import Figure  # no pyplot: no global backend or figure registry

        times = np.array([t for t, _ in rows])
        probs = np.stack([p for _, p in rows])  # (T, C)
        fig = Figure(figsize=(8, 3.2), dpi=100, layout="constrained")
        ax = fig.add_subplot()
        for c, name in enumerate(self.class_names):
            ax.plot(times, probs[:, c], label=name, linewidth=1.4)
        ax.set(xlabel="time (s)", ylabel="probability (smoothed)", ylim=(0, 1), title=title)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
        fig.savefig(path)
