"""load_source on the real FER2013 npz, and a csv written from a slice of it."""

from __future__ import annotations

import numpy as np
import pytest

from mien.data.sources import load_source, save_npz
from mien.labels import EMOTIONS, USAGES

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def real(fer_npz):
    return load_source(fer_npz)


def test_official_counts(real):
    assert real.names == EMOTIONS
    assert real.images.shape == (35884, 48, 48)
    assert np.bincount(real.usage, minlength=3).tolist() == [28707, 3589, 3588]
    training = real.labels[real.usage == 0]
    assert np.bincount(training, minlength=7).tolist() == [3995, 436, 4097, 7214, 4830, 3170, 4965]


def test_csv_from_a_real_slice_loads_back_identical(real, tmp_path):
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(real), size=300, replace=False))
    part = real.subset(idx)
    assert set(part.usage.tolist()) == {0, 1, 2}
    lines = ["emotion,pixels,Usage"] + [
        f"{label},{' '.join(map(str, img.ravel()))},{USAGES[use]}"
        for img, label, use in zip(part.images, part.labels, part.usage)
    ]
    path = tmp_path / "fer2013_slice.csv"
    path.write_text("\n".join(lines) + "\n")
    loaded = load_source(path)
    assert np.array_equal(loaded.images, part.images)
    assert np.array_equal(loaded.labels, part.labels)
    assert np.array_equal(loaded.usage, part.usage)
    again = load_source(save_npz(loaded, tmp_path / "slice.npz"))
    assert np.array_equal(again.images, part.images) and np.array_equal(again.labels, part.labels)
