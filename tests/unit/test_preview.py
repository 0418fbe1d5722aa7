"""Preview grids: valid PNGs of a size that follows rows and columns, raw and augmented."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_faces
from mien.config import AugmentConfig
from mien.data import FaceArrays
from mien.data.preview import write_preview_grid
from mien.errors import ConfigError


def load(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.format == "PNG"
        return np.asarray(img.convert("L"))


def test_raw_and_augmented_grids_are_valid_pngs(tmp_path: Path) -> None:
    faces = make_faces(140)
    raw = write_preview_grid(faces, tmp_path / "nested" / "raw.png", per_class=6)
    aug = write_preview_grid(faces, tmp_path / "aug.png", per_class=6, augment=AugmentConfig(erase_p=0.5))
    assert raw == tmp_path / "nested" / "raw.png" and raw.is_file() and aug.is_file()
    a, b = load(raw), load(aug)
    assert a.shape == b.shape
    height, width = a.shape
    assert 300 <= height <= 1500 and 300 <= width <= 1500
    assert a.std() > 10  # faces drawn, not a blank canvas
    below_title = slice(height // 8, None)
    assert np.abs(a[below_title].astype(int) - b[below_title]).mean() > 1  # the faces changed, not just the title


def test_grid_is_deterministic_per_seed_and_grows_with_classes_and_columns(tmp_path: Path) -> None:
    faces = make_faces(140)
    first = load(write_preview_grid(faces, tmp_path / "a.png", seed=3))
    again = load(write_preview_grid(faces, tmp_path / "b.png", seed=3))
    other = load(write_preview_grid(faces, tmp_path / "c.png", seed=4))
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    wide = load(write_preview_grid(faces, tmp_path / "wide.png", per_class=12))
    few = load(write_preview_grid(make_faces(60, classes=3), tmp_path / "few.png"))
    assert wide.shape[1] > first.shape[1]
    assert few.shape[0] < first.shape[0]


def test_grid_without_training_usage_and_with_tiny_classes(tmp_path: Path) -> None:
    faces = make_faces(28)  # 4 faces per class overall, fewer than per_class in Training
    test_only = FaceArrays(faces.images, faces.labels, np.full(len(faces), 2, dtype=np.int8), faces.names)
    for name, data in (("tiny.png", faces), ("test_only.png", test_only)):
        path = write_preview_grid(data, tmp_path / name, per_class=8, augment=AugmentConfig())
        assert load(path).shape[0] > 100


def test_rejects_bad_per_class(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="per_class must be >= 1, got 0"):
        write_preview_grid(make_faces(28), tmp_path / "x.png", per_class=0)
