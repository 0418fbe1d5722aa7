"""`mien predict`: JSON lines and CSV records, failures that do not stop the rest, annotations, timelines."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from mien.infer.records import KEYS
from mien.labels import EMOTIONS
from test_video import write_video


def _parse(argv: list[str]) -> argparse.Namespace:
    from mien.cli import predict

    parser = argparse.ArgumentParser(prog="mien")
    predict.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["predict", *argv, "--no-progress"])


def _run(argv: list[str]) -> int:
    args = _parse(argv)
    return args.handler(args)


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """in/a.png, in/sub/b.jpg, in/sub/broken.png (corrupt), in/clip.mp4 (10 frames)."""
    from PIL import Image

    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 256, (60, 50, 3), dtype=np.uint8)).save(folder / "sub" / "b.jpg")
    (folder / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    write_video(folder / "clip.mp4", frames=10)
    return folder


def test_jsonl_records_for_images_and_video_and_a_failing_file(inputs: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out.jsonl"
    code = _run([str(inputs), "--no-detect", "--every", "2", "--output", str(out),
                 "--timeline-dir", str(tmp_path / "tl")])
    assert code == 1
    err = capsys.readouterr().err
    assert "broken.png" in err and len([l for l in err.splitlines() if l.startswith("mien: error")]) == 1
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(tuple(r) == KEYS for r in records)
    images = [r for r in records if r["frame"] is None]
    assert sorted(Path(r["file"]).name for r in images) == ["a.png", "b.jpg"]
    frames = [r for r in records if r["frame"] is not None]
    assert [r["frame"] for r in frames] == [0, 2, 4, 6, 8]
    assert [r["time_s"] for r in frames] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    for r in records:
        assert r["faces"] == 1 and r["face_index"] == 0 and len(r["box"]) == 4
        assert list(r["probs"]) == list(EMOTIONS) and sum(r["probs"].values()) == pytest.approx(1, abs=1e-4)
        assert r["emotion"] == max(r["probs"], key=r["probs"].get) and r["confidence"] == r["probs"][r["emotion"]]
    assert {r["track_id"] for r in frames} == {0} and {r["track_id"] for r in images} == {None}
    assert next(r for r in images if r["file"].endswith("b.jpg"))["box"] == [0, 0, 50, 60]
    timeline = tmp_path / "tl" / "clip_track0.csv"
    with open(timeline) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5 and list(rows[0]) == ["time_s", *EMOTIONS]
    assert (tmp_path / "tl" / "clip_track0.png").is_file()


def test_csv_output_has_every_field(inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    assert _run([str(inputs / "a.png"), str(inputs / "sub" / "b.jpg"), "--no-detect", "--format", "csv",
                 "--output", str(out)]) == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    assert list(rows[0]) == ["file", "frame", "time_s", "faces", "face_index", "track_id", "x0", "y0", "x1", "y1",
                             "score", "landmarks", *EMOTIONS, "emotion", "confidence"]
    for row in rows:
        assert sum(float(row[c]) for c in EMOTIONS) == pytest.approx(1, abs=1e-4)
        assert row["emotion"] in EMOTIONS and float(row["confidence"]) == float(row[row["emotion"]])
        assert row["frame"] == "" and row["faces"] == "1" and float(row["x1"]) > 0


def test_precision_flag_reaches_the_torch_backend(inputs: Path, tmp_path: Path) -> None:
    from mien.errors import ConfigError

    rows = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / f"{precision}.csv"
        assert _run([str(inputs / "a.png"), "--no-detect", "--format", "csv", "--precision", precision,
                     "--output", str(out)]) == 0
        with open(out, newline="") as f:
            rows[precision] = next(csv.DictReader(f))
    assert all(abs(float(rows["fp32"][c]) - float(rows["bf16"][c])) < 0.05 for c in EMOTIONS)
    with pytest.raises(ConfigError, match="onnx backend runs fp32 only"):
        _run([str(inputs / "a.png"), "--no-detect", "--backend", "onnx", "--precision", "bf16"])


def test_freed_memory_is_kept_unless_no_retain_memory(inputs: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr("mien.memory.retain_freed_memory", lambda: calls.append(True))
    assert _run([str(inputs / "a.png"), "--no-detect", "--output", str(tmp_path / "kept.jsonl")]) == 0
    assert calls == [True]
    assert _run([str(inputs / "a.png"), "--no-detect", "--no-retain-memory", "--output", str(tmp_path / "d.jsonl")]) == 0
    assert calls == [True]  # glibc's default left alone
    assert (tmp_path / "d.jsonl").read_text().count("\n") == 1


def test_annotate_writes_images_videos_and_timelines(inputs: Path, tmp_path: Path) -> None:
    import cv2

    ann = tmp_path / "ann"
    assert _run([str(inputs / "a.png"), str(inputs / "sub" / "b.jpg"), str(inputs / "clip.mp4"), "--no-detect",
                 "--every", "3", "--annotate", str(ann), "--output", str(tmp_path / "o.jsonl")]) == 0
    image = cv2.imread(str(ann / "sub" / "b.jpg"))
    assert image is not None and image.shape == (60, 50, 3)
    original = cv2.imread(str(inputs / "sub" / "b.jpg"))
    assert np.abs(image.astype(int) - original.astype(int)).max() > 100  # a box and label were drawn
    assert cv2.imread(str(ann / "a.png")).shape == (48, 48, 3)
    video = cv2.VideoCapture(str(ann / "clip.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 4  # frames 0, 3, 6, 9
    video.release()
    assert (ann / "clip_track0.csv").is_file() and (ann / "clip_track0.png").is_file()


def test_an_image_without_faces_prints_a_faces_zero_record(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from PIL import Image

    Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(tmp_path / "blank.png")
    assert _run([str(tmp_path / "blank.png")]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["faces"] == 0 and record["file"].endswith("blank.png")
    assert all(record[k] is None for k in KEYS[4:])


def test_a_missing_path_is_reported_and_the_rest_still_run(inputs: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    code = _run([str(tmp_path / "nope.jpg"), str(inputs / "a.png"), "--no-detect"])
    captured = capsys.readouterr()
    assert code == 1 and "nope.jpg" in captured.err
    assert [json.loads(line)["file"] for line in captured.out.splitlines()] == [str(inputs / "a.png")]


def test_invalid_options_are_rejected(inputs: Path) -> None:
    from mien.errors import ConfigError

    with pytest.raises(ConfigError, match="--every"):
        _run([str(inputs / "a.png"), "--every", "0"])
    with pytest.raises(SystemExit):
        _parse([str(inputs / "a.png"), "--format", "xml"])
