"""write_atomically: the real name holds either the old file or the whole new one, never a part."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mien.files import write_atomically


class Broken(Exception):
    pass


def test_writes_through_a_hidden_per_process_temporary(tmp_path):
    seen: list[Path] = []

    def write(tmp: Path) -> None:
        seen.append(tmp)
        tmp.write_text("new")

    out = write_atomically(tmp_path / "sub" / "a.json", write)
    assert out == tmp_path / "sub" / "a.json" and out.read_text() == "new"
    assert seen[0].parent == out.parent and seen[0].name.startswith(".a.json.") and str(os.getpid()) in seen[0].name
    assert seen[0].suffix == ".json" and not seen[0].exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["a.json"]


@pytest.mark.parametrize("name, expected", [("cache", "cache.npz"), ("cache.npz", "cache.npz"),
                                            ("CACHE.NPZ", "CACHE.NPZ"), ("cache.v2", "cache.v2.npz")])
def test_suffix_is_appended_once_and_the_temporary_keeps_it_as_given(tmp_path, name, expected):
    temps: list[str] = []
    out = write_atomically(tmp_path / name, lambda tmp: (temps.append(tmp.name), tmp.write_bytes(b"x")),
                           suffix=".npz")
    assert out.name == expected and out.read_bytes() == b"x"
    assert temps[0].endswith(".npz")


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "metrics.csv"
    target.write_text("old")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_text("ha")
        raise Broken

    with pytest.raises(Broken):
        write_atomically(target, half_then_fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]
    with pytest.raises(Broken):
        write_atomically(tmp_path / "fresh.csv", half_then_fail)
    assert not (tmp_path / "fresh.csv").exists()
