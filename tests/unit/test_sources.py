"""load_source / save_npz / default_source on small synthetic csv files, npz files and image folders."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mien.data import FaceArrays
from mien.data import sources
from mien.data.sources import DataWarning, default_source, load_source, save_npz
from mien.errors import DataError
from mien.labels import EMOTIONS, USAGES

from conftest import make_faces


def write_csv(faces: FaceArrays, path: Path, *, extra_rows: dict[int, str] | None = None) -> Path:
    """The FER2013 csv layout; `extra_rows` inserts raw lines before data row i (0-based)."""
    lines = ["emotion,pixels,Usage"]
    for i, (img, label, use) in enumerate(zip(faces.images, faces.labels, faces.usage)):
        if extra_rows and i in extra_rows:
            lines.append(extra_rows[i])
        lines.append(f"{label},{' '.join(map(str, img.ravel()))},{USAGES[use]}")
    path.write_text("\n".join(lines) + "\n")
    return path


def assert_same(a: FaceArrays, b: FaceArrays) -> None:
    assert np.array_equal(a.images, b.images)
    assert np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.usage, b.usage)
    assert a.names == b.names
    assert a.labels.dtype == np.int64 and a.usage.dtype == np.int8 and a.images.dtype == np.uint8


PIX = " ".join(["7"] * 2304)


def test_csv_round_trip(tmp_path, faces):
    loaded = load_source(write_csv(faces, tmp_path / "fer2013.csv"))
    assert_same(loaded, faces)


def test_csv_accepts_class_names_and_any_case_header(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text(f"Emotion,Pixels,usage\nfearful,{PIX},PublicTest\n3,{PIX},privatetest\n")
    loaded = load_source(path)
    assert loaded.labels.tolist() == [2, 3]
    assert loaded.usage.tolist() == [1, 2]


BAD_ROWS = {
    "short": (f"0,{' '.join(['1'] * 2000)},Training", "2000 pixel values, expected 2304"),
    "text": (f"0,{PIX}x,Training", "non-numeric pixel value '7x'"),
    "float": (f"0,2.5 {PIX[2:]},Training", "non-numeric pixel value '2.5'"),
    "range": (f"0,{PIX[:-1]}300,Training", "pixel value 300 outside 0-255"),
    "label": (f"9,{PIX},Training", "unknown emotion label '9'"),
    "name": (f"bored,{PIX},Training", "unknown emotion class 'bored'"),
    "usage": (f"0,{PIX},Holdout", "unknown Usage 'Holdout'"),
    "fields": ("0", "1 fields, expected 3"),
}


@pytest.mark.parametrize("kind", sorted(BAD_ROWS))
def test_malformed_row_reported_with_line_number(tmp_path, faces, kind):
    row, message = BAD_ROWS[kind]
    path = write_csv(faces.subset(np.arange(5)), tmp_path / "bad.csv", extra_rows={3: row})
    with pytest.raises(DataError) as info:
        load_source(path)
    text = str(info.value)
    assert f"line 5: {message}" in text  # header is line 1, data rows 0-2 are lines 2-4
    assert "1 of 6 rows" in text and "--skip-bad" in text


def test_malformed_rows_listed_up_to_ten_with_total(tmp_path, faces):
    bad = {i: f"8,{PIX},Training" for i in range(12)}
    path = write_csv(faces.subset(np.arange(12)), tmp_path / "bad.csv", extra_rows=bad)
    with pytest.raises(DataError) as info:
        load_source(path)
    text = str(info.value)
    assert "12 of 24 rows" in text
    assert text.count("unknown emotion label") == 10
    assert "and 2 more" in text
    assert "line 2:" in text and "line 20:" in text and "line 22:" not in text


def test_skip_bad_skips_and_counts_rows(tmp_path, faces):
    good = faces.subset(np.arange(6))
    path = write_csv(good, tmp_path / "bad.csv",
                     extra_rows={1: BAD_ROWS["short"][0], 4: BAD_ROWS["usage"][0], 5: BAD_ROWS["text"][0]})
    with pytest.warns(DataWarning, match=r"skipped 3 of 9 rows") as record:
        loaded = load_source(path, skip_bad=True)
    assert "line 3:" in str(record[0].message) and "line 7:" in str(record[0].message)
    assert_same(loaded, good)


def test_csv_missing_column_is_clear(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text(f"emotion,pixels\n0,{PIX}\n")
    with pytest.raises(DataError, match=r"no column 'Usage'.*expected 'emotion,pixels,Usage'"):
        load_source(path)


@pytest.mark.parametrize("content", ["", "emotion,pixels,Usage\n"])
def test_empty_csv_is_an_error(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(DataError, match="empty|no faces"):
        load_source(path)


def test_all_rows_bad_with_skip_bad_is_an_error(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text(f"emotion,pixels,Usage\n9,{PIX},Training\n")
    with pytest.warns(DataWarning), pytest.raises(DataError, match="no faces after skipping"):
        load_source(path, skip_bad=True)


def test_npz_round_trip(tmp_path, faces):
    written = save_npz(faces, tmp_path / "sub" / "cache")
    assert written == tmp_path / "sub" / "cache.npz" and written.is_file()
    assert_same(load_source(written), faces)
    assert not list(written.parent.glob("*.tmp*"))


def test_npz_in_the_shared_layout(tmp_path, faces):
    """The shared fer2013.npz stores uint8 labels/usage plus per-image file names."""
    path = tmp_path / "fer.npz"
    np.savez(path, images=faces.images, labels=faces.labels.astype(np.uint8), usage=faces.usage.astype(np.uint8),
             names=np.array([f"img_{i}.jpg" for i in range(len(faces))]), classes=np.array(EMOTIONS),
             usages=np.array(USAGES))
    assert_same(load_source(path), faces)


def test_npz_usages_order_is_honoured(tmp_path, faces):
    path = tmp_path / "fer.npz"
    order = ("PrivateTest", "Training", "PublicTest")
    stored = np.array([order.index(USAGES[u]) for u in faces.usage])
    np.savez(path, images=faces.images, labels=faces.labels, usage=stored, classes=np.array(faces.names),
             usages=np.array(order))
    assert np.array_equal(load_source(path).usage, faces.usage)


def test_npz_missing_key_is_clear(tmp_path, faces):
    path = tmp_path / "fer.npz"
    np.savez(path, images=faces.images, labels=faces.labels)
    with pytest.raises(DataError, match="lacks usage, classes"):
        load_source(path)


def test_missing_path_and_unknown_type(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_source(tmp_path / "nope.csv")
    other = tmp_path / "faces.h5"
    other.write_bytes(b"\0")
    with pytest.raises(DataError, match="unknown data source type 'faces.h5'"):
        load_source(other)


def save_image(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def make_folder(root: Path, faces: FaceArrays) -> None:
    """Kaggle layout with mixed-case split folders and synonym class folders (lossless png)."""
    split_dirs = {0: "Train", 1: "validation", 2: "TEST"}
    class_dirs = {0: "Angry", 1: "disgusted", 2: "fearful", 3: "HAPPY", 4: "sadness", 5: "Surprised", 6: "neutral"}
    for i, (img, label, use) in enumerate(zip(faces.images, faces.labels, faces.usage)):
        save_image(root / split_dirs[use] / class_dirs[label] / f"{i:04d}.png", img)


def test_folder_layout_with_synonyms_and_mixed_case(tmp_path, faces):
    make_folder(tmp_path, faces)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # clean 48x48 grayscale images: no warning at all
        loaded = load_source(tmp_path)
    # Images are sorted by path: split folder, then class folder, then file name.
    paths = sorted(tmp_path.rglob("*.png"))
    order = [int(p.stem) for p in paths]
    assert_same(loaded, faces.subset(np.array(order)))


def test_folder_converts_colour_and_large_images_with_one_warning(tmp_path, faces):
    rng = np.random.default_rng(0)
    save_image(tmp_path / "train" / "happy" / "a.png", faces.images[0])
    save_image(tmp_path / "train" / "happy" / "b.png", rng.integers(0, 255, (48, 48, 3), dtype=np.uint8))
    save_image(tmp_path / "test" / "sad" / "c.jpg", rng.integers(0, 255, (64, 64), dtype=np.uint8))
    save_image(tmp_path / "test" / "sad" / "d.png", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    with pytest.warns(DataWarning) as record:
        loaded = load_source(tmp_path)
    assert len(record) == 1
    assert "converted 3 images" in str(record[0].message)
    assert "2 colour" in str(record[0].message) and "2 not 48x48" in str(record[0].message)
    assert loaded.images.shape == (4, 48, 48)
    # Sorted by path: test/sad/c.jpg, test/sad/d.png, train/happy/a.png, train/happy/b.png.
    assert loaded.labels.tolist() == [4, 4, 3, 3] and loaded.usage.tolist() == [2, 2, 0, 0]
    assert np.array_equal(loaded.images[2], faces.images[0])


def test_corrupt_image_reported_by_path(tmp_path, faces):
    save_image(tmp_path / "train" / "happy" / "a.png", faces.images[0])
    bad = tmp_path / "train" / "happy" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError, match=rf"cannot read image {bad}"):
        load_source(tmp_path)
    with pytest.warns(DataWarning, match=r"skipped 1 of 2 images"):
        loaded = load_source(tmp_path, skip_bad=True)
    assert len(loaded) == 1 and np.array_equal(loaded.images[0], faces.images[0])


def test_unknown_class_folder_is_an_error(tmp_path, faces):
    save_image(tmp_path / "train" / "contempt" / "a.png", faces.images[0])
    with pytest.raises(DataError, match=r"unknown class folder .*contempt"):
        load_source(tmp_path)


def test_unknown_split_folder_is_an_error(tmp_path, faces):
    save_image(tmp_path / "happy" / "a.png", faces.images[0])
    with pytest.raises(DataError, match=r"unknown split folder .*happy"):
        load_source(tmp_path)


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "train" / "happy").mkdir(parents=True)
    with pytest.raises(DataError, match="no images found"):
        load_source(tmp_path)


def test_default_source_uses_mien_data(tmp_path, monkeypatch, faces):
    path = save_npz(faces, tmp_path / "mine.npz")
    monkeypatch.setenv("MIEN_DATA", str(path))
    assert default_source() == path
    monkeypatch.setenv("MIEN_DATA", str(tmp_path / "gone.npz"))
    with pytest.raises(DataError, match="MIEN_DATA=.*gone.npz does not exist"):
        default_source()


def test_default_source_looks_beside_the_working_directory(tmp_path, monkeypatch, faces):
    monkeypatch.delenv("MIEN_DATA", raising=False)
    expected = save_npz(faces, tmp_path / "shared" / "data" / "fer2013.npz")
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    assert default_source() == expected


def test_default_source_lists_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.delenv("MIEN_DATA", raising=False)
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    # Pretend the package lives somewhere without a shared/ folder above it.
    monkeypatch.setattr(sources, "__file__", str(tmp_path / "pkg" / "mien" / "data" / "sources.py"))
    with pytest.raises(DataError) as info:
        default_source()
    text = str(info.value)
    assert str(tmp_path / "shared" / "data" / "fer2013.npz") in text
    assert str(tmp_path / "pkg" / "shared" / "data" / "fer2013.npz") in text
    assert "MIEN_DATA" in text


def test_count_table_has_totals():
    faces = make_faces(70)
    table = sources.count_table(faces)
    lines = table.splitlines()
    assert lines[0].split() == ["class", *USAGES, "total"]
    assert lines[-1].split()[0] == "total" and lines[-1].split()[-1] == "70"
    happy = next(line for line in lines if line.startswith("happy")).split()
    assert int(happy[-1]) == int(faces.class_counts()[3]) == sum(map(int, happy[1:4]))
