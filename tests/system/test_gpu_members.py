"""scripts/gpu_members.py on the CPU: members train side by side, the deadline stops them, runs come back packed."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import load_script, run_script
from mien.data.packed import save_packed
from mien.data.sources import load_source, select_usage

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu_members.py"

MEMBER = """model:
  name: baseline_cnn
train:
  epochs: {epochs}
  batch_size: 32
  device: cpu
  threads: 1
"""


@pytest.fixture
def trainval(tmp_path, faces):
    from mien.data.sources import save_npz

    # Training + PublicTest only, as a GPU session gets them.
    return save_packed(select_usage(load_source(save_npz(faces, tmp_path / "all.npz")), ["Training", "PublicTest"]),
                       tmp_path / "trainval.mpk")


def run_members(tmp_path: Path, configs: list[Path], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, configs), "--out", str(tmp_path / "out"),
                           "--work", str(tmp_path / "work"), *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_members_train_in_parallel_and_come_back_as_tars(tmp_path, trainval):
    configs = []
    for name, epochs in (("a", 2), ("b", 1)):
        configs.append(tmp_path / f"{name}.yaml")
        configs[-1].write_text(MEMBER.format(epochs=epochs))
    proc = run_members(tmp_path, configs, "--data", str(trainval), "--deadline", "240", "--parallel", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = {row["name"]: row for row in json.loads((tmp_path / "out" / "summary.json").read_text())}
    assert summary["a"]["status"] == "finished" and summary["a"]["epochs_done"] == 2
    assert summary["b"]["status"] == "finished" and summary["b"]["epochs_done"] == 1
    with tarfile.open(tmp_path / "out" / "a.tar") as tar:
        names = set(tar.getnames())
    assert {"a/best.safetensors", "a/best.json", "a/metrics.csv", "a/config.yaml", "a/train.log"} <= names
    assert "a/last.safetensors" not in names  # optimizer state stays behind: the tars must stay small
    # The member trained on the packed faces, whose official split has no PrivateTest.
    with tarfile.open(tmp_path / "out" / "b.tar") as tar:
        log = tar.extractfile("b/train.log").read().decode()
    assert "training baseline_cnn on" in log


def test_the_deadline_stops_a_member_and_reports_it(tmp_path, trainval):
    config = tmp_path / "long.yaml"
    config.write_text(MEMBER.format(epochs=10_000))
    proc = run_members(tmp_path, [config], "--data", str(trainval), "--deadline", "5")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (row,) = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert row["status"] == "stopped at the deadline" and row["epochs_done"] < 10_000


def test_a_bad_member_config_fails_before_anything_trains(tmp_path, trainval, monkeypatch):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  name: no_such_model\n")
    good = tmp_path / "good.yaml"
    good.write_text(MEMBER.format(epochs=1))
    args = [str(good), str(bad), "--data", str(trainval), "--deadline", "60", "--out", str(tmp_path / "out"),
            "--work", str(tmp_path / "work")]
    with pytest.raises(SystemExit, match="no_such_model"):  # the script's exit, with its message
        run_script(SCRIPT, *args, monkeypatch=monkeypatch)
    assert not (tmp_path / "work" / "good").exists()


def test_a_run_bigger_than_one_returned_file_is_split_into_parts(tmp_path, monkeypatch):
    import io

    module = load_script(SCRIPT)
    monkeypatch.setattr(module, "MAX_FILE_BYTES", 10_000)
    run_dir = tmp_path / "big"
    run_dir.mkdir()
    payload = bytes(range(256)) * 100  # 25,600 bytes
    (run_dir / "best.safetensors").write_bytes(payload)
    (run_dir / "last.safetensors").write_bytes(b"optimizer state")
    parts = module._pack(run_dir, tmp_path / "big.tar")
    assert len(parts) >= 3 and [p.name for p in parts] == [f"big.tar.part{k}" for k in range(len(parts))]
    assert all(p.stat().st_size <= 10_000 for p in parts) and not (tmp_path / "big.tar").exists()
    # `cat big.tar.part* > big.tar` restores the tar.
    with tarfile.open(fileobj=io.BytesIO(b"".join(p.read_bytes() for p in parts))) as tar:
        assert tar.getnames() == ["big/best.safetensors"]
        assert tar.extractfile("big/best.safetensors").read() == payload
