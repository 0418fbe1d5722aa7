"""The compact lossless `.mpk` form: exact round trips, the CLI's --usage filter, loud failures."""

from __future__ import annotations

import lzma

import numpy as np
import pytest

from mien.data.arrays import FaceArrays
from mien.data.packed import MAGIC, load_packed, med_reconstruct, med_residuals, save_packed
from mien.data.sources import load_source, select_usage
from mien.errors import DataError


def test_med_residuals_invert_exactly_on_extreme_pixels():
    rng = np.random.default_rng(0)
    # Noise, flat 0/255 fields and hard edges exercise the predictor's branches and the mod-256 wrap.
    images = np.concatenate([
        rng.integers(0, 256, size=(5, 9, 7), dtype=np.uint8),
        np.zeros((1, 9, 7), np.uint8), np.full((1, 9, 7), 255, np.uint8),
        np.kron(rng.integers(0, 2, size=(3, 3, 7)), np.ones((1, 3, 1))).astype(np.uint8) * 255,
    ])
    residuals = med_residuals(images)
    assert residuals.dtype == np.uint8 and residuals.shape == images.shape
    assert np.array_equal(med_reconstruct(residuals), images)


def test_residuals_of_smooth_faces_are_small():
    # A smooth gradient is predicted almost exactly, which is what makes the residuals compress.
    ramp = np.add.outer(np.arange(48), np.arange(48)).astype(np.uint8)[None]
    residuals = med_residuals(ramp).astype(np.int16)
    signed = np.where(residuals > 127, residuals - 256, residuals)
    assert np.abs(signed[:, 1:, 1:]).max() <= 1


def test_save_and_load_round_trip(tmp_path, faces):
    path = save_packed(faces, tmp_path / "faces")
    assert path.name == "faces.mpk"
    loaded = load_source(path)
    assert np.array_equal(loaded.images, faces.images)
    assert np.array_equal(loaded.labels, faces.labels) and np.array_equal(loaded.usage, faces.usage)
    assert loaded.names == faces.names


def test_a_corrupt_or_foreign_file_is_a_data_error(tmp_path, faces):
    path = save_packed(faces, tmp_path / "faces.mpk")
    truncated = tmp_path / "truncated.mpk"
    payload = lzma.decompress(path.read_bytes())
    truncated.write_bytes(lzma.compress(payload[:-100]))
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_packed(truncated)
    foreign = tmp_path / "foreign.mpk"
    foreign.write_bytes(lzma.compress(b"not a pack" + payload[len(MAGIC):]))
    with pytest.raises(DataError, match="not a mien .mpk"):
        load_packed(foreign)
    cut_header = tmp_path / "cut_header.mpk"
    cut_header.write_bytes(lzma.compress(MAGIC + b"\x01\x00"))
    with pytest.raises(DataError, match="bad .mpk header"):
        load_packed(cut_header)
    garbage = tmp_path / "garbage.mpk"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(DataError, match="cannot read packed faces"):
        load_packed(garbage)


def test_select_usage_keeps_only_the_named_splits(faces):
    kept = select_usage(faces, ["Training", "val"])
    assert set(np.unique(kept.usage)) == {0, 1}
    assert len(kept) == int(np.isin(faces.usage, [0, 1]).sum())
    with pytest.raises(DataError, match="unknown Usage 'Tarining'"):
        select_usage(faces, ["Tarining"])
    only_train = faces.subset(faces.usage == 0)
    with pytest.raises(DataError, match="no faces in split"):
        select_usage(only_train, ["PrivateTest"])


def test_convert_writes_a_packed_subset_that_trains_without_private_test(tmp_path, faces):
    from mien.config import DataConfig
    from mien.data.pipeline import split_faces
    from mien.data.sources import save_npz

    src = save_npz(faces, tmp_path / "fer.npz")
    out = tmp_path / "trainval.mpk"
    from mien.cli import main

    assert main(["data", "convert", str(src), str(out), "--usage", "Training,PublicTest"]) == 0
    loaded = load_source(out)
    assert not (loaded.usage == 2).any()
    assert out.stat().st_size < src.stat().st_size
    # The official split of such a file has an empty test split: a GPU run can select on PublicTest
    # without PrivateTest ever leaving this machine.
    splits = split_faces(loaded, DataConfig(), seed=0)
    assert len(splits.test) == 0 and len(splits.train) == int((faces.usage == 0).sum())
    assert isinstance(splits.val, FaceArrays) and len(splits.val) == int((faces.usage == 1).sum())
