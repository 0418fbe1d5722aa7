"""Video input, face tracking, probability smoothing, timelines and annotated videos."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mien.infer.tracking import IouTracker, ProbabilitySmoother, iou_matrix
from mien.infer.video import Timeline, VideoWriter, iter_frames, video_info
from mien.io import ImageError


def write_video(path: Path, *, frames: int = 10, size: tuple[int, int] = (64, 48), fps: float = 10.0) -> Path:
    """A tiny mp4 whose frame i is filled with gray level 20 * i (so frames are identifiable)."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 20 * i, dtype=np.uint8))
    writer.release()
    return path


def test_iou_matrix_known_values() -> None:
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 50 / 150, 0.0]])
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_tracker_keeps_an_id_for_a_moving_face_and_gives_new_faces_new_ids() -> None:
    tracker = IouTracker()
    ids = [tracker.update([(100 + 4 * t, 80 + 2 * t, 180 + 4 * t, 160 + 2 * t)])[0] for t in range(30)]
    assert set(ids) == {0}
    # A second face far away appears; the first keeps its ID whatever the detection order.
    assert tracker.update([(500, 300, 560, 360), (220, 140, 300, 220)]) == [1, 0]
    assert tracker.update([(222, 141, 302, 221), (501, 301, 561, 361)]) == [0, 1]


def test_a_track_ends_after_max_missed_frames_and_its_id_is_not_reused() -> None:
    tracker = IouTracker(max_missed=2)
    box = (10, 10, 50, 50)
    assert tracker.update([box]) == [0]
    assert tracker.update([]) == [] and tracker.ended == []
    assert tracker.update([box]) == [0]  # back within max_missed: same track
    for _ in range(3):
        tracker.update([])
    assert tracker.ended == [0] and tracker.active == []
    assert tracker.update([box]) == [1]


def test_smoothing_reduces_variance_and_window_one_is_identity() -> None:
    rng = np.random.default_rng(0)
    raw = rng.dirichlet(np.ones(7), size=200).astype(np.float32)  # (T, 7) noisy per-frame probabilities
    smoother, plain = ProbabilitySmoother(5), ProbabilitySmoother(1)
    smoothed = np.stack([smoother.update(0, p) for p in raw])
    np.testing.assert_allclose(smoothed.sum(1), 1.0, atol=1e-5)
    assert smoothed.var(axis=0).mean() < 0.35 * raw.var(axis=0).mean()
    np.testing.assert_array_equal(np.stack([plain.update(0, p) for p in raw]), raw)
    np.testing.assert_allclose(smoothed[10], raw[6:11].mean(0), atol=1e-6)
    # Tracks are smoothed independently and forgetting one restarts its history.
    np.testing.assert_allclose(smoother.update(1, raw[0]), raw[0])
    smoother.forget([0])
    np.testing.assert_allclose(smoother.update(0, raw[3]), raw[3])


def test_iter_frames_every_nth_with_times(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.mp4")
    info = video_info(path)
    assert (info.width, info.height, info.frame_count) == (64, 48, 10) and info.fps == pytest.approx(10)
    frames = list(iter_frames(path, every=2))
    assert [i for i, _, _ in frames] == [0, 2, 4, 6, 8]
    assert [t for _, t, _ in frames] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    levels = [int(rgb.mean()) for _, _, rgb in frames]
    assert all(abs(level - 20 * i) <= 6 for (i, _, _), level in zip(frames, levels))  # lossy codec
    assert frames[0][2].shape == (48, 64, 3) and frames[0][2].dtype == np.uint8


def test_unreadable_videos_raise_image_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(ImageError, match="bad.mp4"):
        list(iter_frames(bad))
    with pytest.raises(ImageError, match="does not exist"):
        video_info(tmp_path / "missing.mp4")


def test_timeline_writes_a_csv_and_png_per_track(tmp_path: Path) -> None:
    names = ("a", "b", "c")
    timeline = Timeline(names)
    for t in range(4):
        timeline.add(0, t * 0.5, [0.2, 0.3, 0.5])
    timeline.add(3, 1.0, [1.0, 0.0, 0.0])
    written = timeline.write(tmp_path / "tl", "clip")
    assert sorted(p.name for p in written) == ["clip_track0.csv", "clip_track0.png", "clip_track3.csv",
                                               "clip_track3.png"]
    with open(tmp_path / "tl" / "clip_track0.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["time_s", "a", "b", "c"] and len(rows) == 4
    assert float(rows[2]["time_s"]) == 1.0 and float(rows[2]["c"]) == 0.5
    assert (tmp_path / "tl" / "clip_track0.png").read_bytes()[:4] == b"\x89PNG"


def test_video_writer_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "out.mp4"
    with VideoWriter(out, fps=5, size=(32, 24)) as writer:
        for i in range(3):
            writer.write(np.full((24, 32, 3), 60 * i, dtype=np.uint8))
    assert [i for i, _, _ in iter_frames(out)] == [0, 1, 2]


def moving_face_video(path: Path, *, frames: int = 6, step: int = 6) -> Path:
    """A 320x240 mp4 with the astronaut's face pasted a few pixels further right in every frame."""
    import cv2

    from conftest import REPO

    face = cv2.imread(str(REPO / "examples" / "astronaut.jpg"))[20:220, 150:330]  # BGR, head and shoulders
    face = cv2.resize(face, (90, 100), interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 240))
    for i in range(frames):
        canvas = np.full((240, 320, 3), 90, dtype=np.uint8)
        canvas[60:160, 40 + step * i:130 + step * i] = face
        writer.write(canvas)
    writer.release()
    return path


def test_predict_video_every_other_frame_without_detection(tmp_path: Path) -> None:
    from mien.infer import FrameResult, Recognizer

    path = write_video(tmp_path / "v.mp4", frames=10)
    results = list(Recognizer(detector="none").predict_video(path, every=2, smooth=3))
    assert [r.frame_index for r in results] == [0, 2, 4, 6, 8]
    assert all(isinstance(r, FrameResult) and r.image is None for r in results)
    assert [r.time_s for r in results] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    assert all(len(r.faces) == 1 and r.faces[0].track_id == 0 for r in results)
    assert all(sum(r.faces[0].probs.values()) == pytest.approx(1.0, abs=1e-5) for r in results)
    kept = next(Recognizer(detector="none").predict_video(path, keep_frames=True))
    assert kept.image.shape == (48, 64, 3)


def test_predict_video_smooths_each_track_over_its_window(tmp_path: Path) -> None:
    from mien.infer import Recognizer

    path = write_video(tmp_path / "v.mp4", frames=6)
    rec = Recognizer(detector="none")
    raw = np.stack([[*r.faces[0].probs.values()] for r in rec.predict_video(path, smooth=1)])
    smooth = np.stack([[*r.faces[0].probs.values()] for r in rec.predict_video(path, smooth=3)])
    np.testing.assert_allclose(smooth[0], raw[0], atol=1e-6)
    np.testing.assert_allclose(smooth[4], raw[2:5].mean(0), atol=1e-5)


def test_predict_video_tracks_a_detected_moving_face(tmp_path: Path) -> None:
    from mien.infer import Recognizer

    path = moving_face_video(tmp_path / "face.mp4")
    with Recognizer() as rec:
        results = list(rec.predict_video(path))
    assert len(results) == 6
    assert [len(r.faces) for r in results] == [1] * 6
    assert {r.faces[0].track_id for r in results} == {0}
    xs = [r.faces[0].box[0] for r in results]
    assert xs[-1] - xs[0] == pytest.approx(30, abs=8)  # the face moved 5 x 6 pixels right
