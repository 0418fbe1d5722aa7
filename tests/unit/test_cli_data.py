"""`mien data convert|info|preview` on small synthetic sources."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from PIL import Image

from mien.cli import data as cli_data
from mien.data.sources import load_source, save_npz
from mien.errors import ConfigError, DataError
from mien.labels import USAGES


def run_data(argv: list[str]) -> int:
    """Parse with a parser holding only `mien data`, so exceptions reach the test unformatted."""
    parser = argparse.ArgumentParser(prog="mien")
    cli_data.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.handler(args)


@pytest.fixture
def csv_source(tmp_path, faces):
    path = tmp_path / "fer2013.csv"
    rows = [f"{l},{' '.join(map(str, im.ravel()))},{USAGES[u]}" for im, l, u in zip(faces.images, faces.labels, faces.usage)]
    rows.insert(3, "9,1 2 3,Training")  # one malformed row: line 5
    path.write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    return path


def test_convert_writes_an_identical_npz(tmp_path, faces, csv_source, capsys):
    out = tmp_path / "cache" / "fer.npz"
    from mien.cli import main

    assert main(["data", "convert", str(csv_source), str(out), "--skip-bad"]) == 0  # warnings as mien prints them
    captured = capsys.readouterr()
    per = np.bincount(faces.usage, minlength=3)
    assert f"{len(faces)} faces (Training {per[0]}, PublicTest {per[1]}, PrivateTest {per[2]})" in captured.out
    assert "mien: warning: skipped 1 of" in captured.err and "line 5" in captured.err
    loaded = load_source(out)
    assert np.array_equal(loaded.images, faces.images) and np.array_equal(loaded.labels, faces.labels)
    assert np.array_equal(loaded.usage, faces.usage)


def test_convert_without_skip_bad_fails_naming_the_line(tmp_path, csv_source):
    with pytest.raises(DataError, match="line 5"):
        run_data(["data", "convert", str(csv_source), str(tmp_path / "fer.npz")])
    assert not (tmp_path / "fer.npz").exists()


def test_info_prints_counts_per_split_and_class(tmp_path, faces, capsys, monkeypatch):
    monkeypatch.setenv("MIEN_DATA", str(save_npz(faces, tmp_path / "fer.npz")))
    assert run_data(["data", "info"]) == 0  # SRC defaults to $MIEN_DATA
    out = capsys.readouterr().out
    assert str(tmp_path / "fer.npz") in out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("class"))
    assert header.split() == ["class", "Training", "PublicTest", "PrivateTest", "total"]
    counts = np.zeros((7, 3), dtype=int)
    np.add.at(counts, (faces.labels, faces.usage), 1)
    for name, row in zip(faces.names, counts):
        line = next(line for line in lines if line.split() and line.split()[0] == name)
        assert [int(v) for v in line.split()[1:]] == [*row, row.sum()]
    total = next(line for line in lines if line.startswith("total")).split()
    assert [int(v) for v in total[1:]] == [*counts.sum(axis=0), len(faces)]


def test_info_on_missing_source_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        run_data(["data", "info", str(tmp_path / "nope.npz")])


def test_preview_writes_raw_and_augmented_grids(tmp_path, faces, capsys):
    src = save_npz(faces, tmp_path / "fer.npz")
    out = tmp_path / "grids" / "grid.png"
    assert run_data(["data", "preview", str(src), "--out", str(out), "--per-class", "3", "--augmented",
                     "--seed", "1"]) == 0
    augmented = tmp_path / "grids" / "grid_augmented.png"
    printed = capsys.readouterr().out
    assert str(out) in printed and str(augmented) in printed
    for path in (out, augmented):
        with Image.open(path) as img:
            assert img.format == "PNG" and img.width > 100 and img.height > 100
    assert out.read_bytes() != augmented.read_bytes()


def test_preview_raw_only_and_config_needs_augmented(tmp_path, faces):
    src = save_npz(faces, tmp_path / "fer.npz")
    out = tmp_path / "grid.png"
    assert run_data(["data", "preview", str(src), "--out", str(out)]) == 0
    assert out.is_file() and not (tmp_path / "grid_augmented.png").exists()
    with pytest.raises(ConfigError, match="--augmented"):
        run_data(["data", "preview", str(src), "--out", str(out), "--config", "x.yaml"])


def test_data_needs_a_subcommand():
    with pytest.raises(SystemExit):
        run_data(["data"])


def test_registered_in_mien_main(tmp_path, faces, capsys):
    """Through the real `mien` entry point: an error is one line and exit code 1."""
    from mien.cli import main

    src = save_npz(faces, tmp_path / "fer.npz")
    assert main(["data", "info", str(src)]) == 0
    assert main(["data", "info", str(tmp_path / "missing.csv")]) == 1
    assert "mien: error: data source" in capsys.readouterr().err
