"""read_image on every format and mode (written here with PIL), EXIF orientation, bad files, arrays; expand_inputs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mien.errors import MienError
from mien.io import IMAGE_SUFFIXES, VIDEO_SUFFIXES, ImageError, expand_inputs, is_video, read_image

H, W = 32, 48  # not square, so a transposed result cannot pass


def smooth_rgb() -> np.ndarray:
    """Gradients plus a dark block: survives JPEG/WebP with small errors and shows any flip or rotation."""
    y, x = np.mgrid[0:H, 0:W]
    rgb = np.stack([x * 255 // (W - 1), y * 255 // (H - 1), np.full_like(x, 128)], axis=2)
    rgb[2:10, 3:15] = (20, 200, 30)
    return rgb.astype(np.uint8)


def alpha_mask() -> np.ndarray:
    y, x = np.mgrid[0:H, 0:W]
    return np.where(x < W // 2, 255, (y * 255) // (H - 1)).astype(np.uint8)


def on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha[:, :, None].astype(np.float64) / 255.0
    return np.rint(rgb * a + 255.0 * (1.0 - a)).astype(np.uint8)


def gray3(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[:, :, None], 3, axis=2)


def build(mode: str) -> tuple[Image.Image, np.ndarray]:
    """A PIL image in `mode` and the RGB array read_image must return for it."""
    rgb = smooth_rgb()
    base = Image.fromarray(rgb)
    if mode == "RGB":
        return base, rgb
    if mode == "RGBA":
        img = Image.fromarray(np.dstack([rgb, alpha_mask()]))
        return img, on_white(rgb, alpha_mask())
    if mode == "P":
        img = base.quantize(colors=64)
        return img, np.asarray(img.convert("RGB"))
    if mode == "L":
        img = base.convert("L")
        return img, gray3(np.asarray(img))
    if mode == "LA":
        gray = np.asarray(base.convert("L"))
        img = Image.fromarray(np.dstack([gray, alpha_mask()]), mode="LA")
        return img, on_white(gray3(gray), alpha_mask())
    if mode == "I;16":
        y, x = np.mgrid[0:H, 0:W]
        wide = ((x * 65535) // (W - 1)).astype(np.uint16)
        img = Image.fromarray(wide)
        assert img.mode == "I;16"
        return img, gray3(np.rint(wide / 257.0).astype(np.uint8))
    raise AssertionError(mode)


LOSSY = {"JPEG": 6.0, "WEBP": 6.0}
CASES = [
    ("JPEG", "RGB"), ("JPEG", "L"),
    ("PNG", "RGB"), ("PNG", "RGBA"), ("PNG", "P"), ("PNG", "L"), ("PNG", "LA"), ("PNG", "I;16"),
    ("WEBP", "RGB"), ("WEBP", "RGBA"),
    ("BMP", "RGB"), ("BMP", "P"), ("BMP", "L"),
    ("TIFF", "RGB"), ("TIFF", "RGBA"), ("TIFF", "P"), ("TIFF", "L"), ("TIFF", "LA"), ("TIFF", "I;16"),
]
SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}


@pytest.mark.parametrize(("fmt", "mode"), CASES, ids=[f"{f}-{m}" for f, m in CASES])
def test_every_format_and_mode_reads_as_rgb_uint8(tmp_path: Path, fmt: str, mode: str) -> None:
    img, expected = build(mode)
    path = tmp_path / f"img{SUFFIX[fmt]}"
    img.save(path, fmt)
    with Image.open(path) as check:  # the file really holds the mode under test
        assert check.mode == mode or fmt in LOSSY
    out = read_image(path)
    assert out.shape == (H, W, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    err = np.abs(out.astype(np.int16) - expected.astype(np.int16))
    if fmt in LOSSY:
        assert err.mean() < LOSSY[fmt]
    else:
        assert err.max() <= 1  # exact up to rounding
    assert np.array_equal(read_image(str(path)), out)
    assert np.array_equal(read_image(path.read_bytes()), out)


def test_sixteen_bit_keeps_the_full_range(tmp_path: Path) -> None:
    wide = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    Image.fromarray(wide).save(tmp_path / "w.png")
    assert read_image(tmp_path / "w.png")[0, :, 0].tolist() == [0, 1, 128, 255]
    assert read_image(wide)[0, :, 0].tolist() == [0, 1, 128, 255]


def test_mode_i_and_f_pil_images() -> None:
    wide = np.array([[0, 65535]], dtype=np.int32)
    assert read_image(Image.fromarray(wide, mode="I"))[0, :, 1].tolist() == [0, 255]
    flt = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    assert read_image(Image.fromarray(flt, mode="F"))[0, :, 2].tolist() == [0, 128, 255]


def save_with_orientation(path: Path, rgb: np.ndarray, orientation: int) -> None:
    img = Image.fromarray(rgb)
    exif = img.getexif()
    exif[0x0112] = orientation
    img.save(path, "JPEG", quality=95, exif=exif)


@pytest.mark.parametrize(("orientation", "k"), [(6, -1), (8, 1), (1, 0)])
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int, k: int) -> None:
    # Orientation 6: the stored image must be turned 90 degrees clockwise to display; 8: anticlockwise.
    rgb = smooth_rgb()
    path = tmp_path / f"o{orientation}.jpg"
    save_with_orientation(path, rgb, orientation)
    out = read_image(path)
    expected = np.rot90(rgb, k=k)
    assert out.shape == expected.shape
    assert np.abs(out.astype(np.int16) - expected.astype(np.int16)).mean() < 4.0
    # The green block sits where the rotation puts it (top-right for 6, bottom-left for 8).
    green = (out[:, :, 1] > 150) & (out[:, :, 0] < 90)
    ys, xs = np.nonzero(green)
    exp_ys, exp_xs = np.nonzero(np.rot90((rgb[:, :, 1] > 150) & (rgb[:, :, 0] < 90), k=k))
    assert abs(ys.mean() - exp_ys.mean()) < 1.5 and abs(xs.mean() - exp_xs.mean()) < 1.5


def test_exif_orientation_on_a_pil_image_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "o6.jpg"
    save_with_orientation(path, smooth_rgb(), 6)
    with Image.open(path) as img:
        assert read_image(img).shape == (W, H, 3)
    assert read_image(path.read_bytes()).shape == (W, H, 3)


def test_truncated_file_is_an_image_error_naming_the_path(tmp_path: Path) -> None:
    good = tmp_path / "good.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good)
    bad = tmp_path / "truncated.jpg"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ImageError, match="truncated.jpg"):
        read_image(bad)
    garbage = tmp_path / "corrupt.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(ImageError, match="corrupt.png"):
        read_image(garbage)


def test_non_image_missing_file_and_folder_are_image_errors(tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(ImageError, match="notes.jpg.*not an image"):
        read_image(text)
    with pytest.raises(ImageError, match="missing.png does not exist"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="is a folder"):
        read_image(tmp_path)
    with pytest.raises(ImageError, match="<bytes>"):
        read_image(b"hello")
    with pytest.raises(ImageError, match="upload.jpg"):
        read_image(b"hello", name="upload.jpg")
    assert issubclass(ImageError, MienError)


def test_numpy_inputs() -> None:
    rgb = smooth_rgb()
    out = read_image(rgb)
    assert np.array_equal(out, rgb) and out is not rgb
    gray = rgb[:, :, 0]
    assert np.array_equal(read_image(gray), gray3(gray))
    assert np.array_equal(read_image(gray[:, :, None]), gray3(gray))
    as_float = rgb.astype(np.float32) / 255.0
    assert np.array_equal(read_image(as_float), rgb)
    assert np.array_equal(read_image(as_float.astype(np.float64)), rgb)
    rgba = np.dstack([rgb, alpha_mask()])
    assert np.array_equal(read_image(rgba), on_white(rgb, alpha_mask()))
    assert read_image(np.ones((2, 3), dtype=bool)).max() == 255
    sliced = read_image(rgb[:, ::2])  # a non-contiguous view
    assert sliced.flags.c_contiguous and np.array_equal(sliced, rgb[:, ::2])


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((3, 32, 32), np.uint8), "channels first"),
        (np.zeros((32, 32, 2), np.uint8), r"shape \(32, 32, 2\)"),
        (np.zeros((4, 4, 4, 3), np.uint8), "shape"),
        (np.zeros((0, 5), np.uint8), "no pixels"),
        (np.full((4, 4), 2.0, np.float32), r"\[2, 2\], expected \[0, 1\]"),
        (np.full((4, 4), np.nan, np.float32), "NaN"),
        (np.zeros((4, 4), np.int64), "dtype int64"),
    ],
)
def test_bad_arrays_are_image_errors(array: np.ndarray, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        read_image(array)


def test_pil_input_and_unsupported_type() -> None:
    rgb = smooth_rgb()
    assert np.array_equal(read_image(Image.fromarray(rgb)), rgb)
    cmyk = Image.fromarray(rgb).convert("CMYK")
    assert read_image(cmyk).shape == (H, W, 3)
    with pytest.raises(ImageError, match="list"):
        read_image([1, 2, 3])  # type: ignore[arg-type]


def test_expand_inputs_files_folders_globs(tmp_path: Path) -> None:
    img = io.BytesIO()
    Image.fromarray(smooth_rgb()).save(img, "PNG")
    for rel in ["b.png", "a.JPG", "sub/deep/c.webp", "sub/clip.mp4", "sub/notes.txt", "other/d.png"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(img.getvalue())
    root = tmp_path
    got = expand_inputs([root / "sub", str(root / "*.png"), root / "sub/notes.txt", root / "b.png"])
    assert got == [
        root / "sub/clip.mp4", root / "sub/deep/c.webp",  # folder: recursive, sorted, suffix-filtered
        root / "b.png",                                    # glob
        root / "sub/notes.txt",                            # a named file is kept whatever its suffix
    ]
    assert expand_inputs([str(root / "**" / "*.png")]) == [root / "b.png", root / "other/d.png"]
    assert expand_inputs([root], suffixes=IMAGE_SUFFIXES) == [
        root / "a.JPG", root / "b.png", root / "other/d.png", root / "sub/deep/c.webp"
    ]
    with pytest.raises(ImageError, match="nothing.png does not exist"):
        expand_inputs([root / "nothing.png"])
    with pytest.raises(ImageError, match=r"\*.gif matches no image"):
        expand_inputs([str(root / "*.gif")])
    (root / "empty").mkdir()
    with pytest.raises(ImageError, match="empty matches no image"):
        expand_inputs([root / "empty"])


def test_suffix_sets() -> None:
    assert {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"} <= IMAGE_SUFFIXES
    assert {".mp4", ".avi", ".mov", ".webm"} <= VIDEO_SUFFIXES
    assert not IMAGE_SUFFIXES & VIDEO_SUFFIXES
    assert is_video("x/Clip.MP4") and not is_video("x/a.png")
