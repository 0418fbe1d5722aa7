"""Read any common still image into one layout: (H, W, 3) uint8 RGB; expand path arguments.

Accepted by `read_image`:
  * a path (str or Path) or the file's bytes: JPEG, PNG, WebP, BMP, TIFF, GIF (first frame), PGM;
    the EXIF orientation tag is honoured;
  * a PIL image in any mode: RGB, RGBA / LA / PA / palette with transparency (composited on white),
    palette, L, 1, CMYK, YCbCr, I;16 (16-bit, scaled by 1/257), I (assumed 16-bit), F (float);
  * a numpy array laid out (H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA (alpha composited on
    white), of dtype uint8, uint16 (scaled by 1/257), bool, or float in [0, 1]. Arrays are taken
    as RGB, not OpenCV's BGR: convert with `cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)` first.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from ..errors import MienError

if TYPE_CHECKING:
    from PIL import Image as PILImage

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".pgm"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".webm", ".mkv", ".m4v"})

_GLOB_CHARS = frozenset("*?[")


class ImageError(MienError):
    """An image (or an input path) cannot be read: missing, corrupt, not an image, or an unusable array."""


def read_image(src: str | Path | bytes | PILImage.Image | np.ndarray, *, name: str | None = None) -> np.ndarray:
    """Decode `src` into a (H, W, 3) uint8 RGB array (see the module docstring for what is accepted).

    Args:
        src: a file path, the bytes of an image file, a PIL image or a numpy array.
        name: what error messages call the image (defaults to the path, or "<bytes>"/"<array>").

    Returns:
        A new C-contiguous (H, W, 3) uint8 array.

    Raises:
        ImageError: the file is missing, truncated, corrupt or not an image, or the array has an
            unsupported shape, dtype or value range. The message names the image.
    """
    if isinstance(src, np.ndarray):
        return _from_array(src, name or "<array>")
    if isinstance(src, (str, Path)):
        path = Path(src).expanduser()
        label = name or str(path)
        if not path.is_file():
            what = "is a folder, not an image file" if path.is_dir() else "does not exist"
            raise ImageError(f"{label} {what}")
        return _decode(path, label)
    if isinstance(src, (bytes, bytearray, memoryview)):
        import io

        return _decode(io.BytesIO(bytes(src)), name or "<bytes>")
    from PIL import Image

    if isinstance(src, Image.Image):
        return _from_pil(src, name or "<PIL image>")
    raise ImageError(
        f"{name or 'image'}: cannot read a {type(src).__name__}; pass a path, bytes, a PIL image or a numpy array"
    )


def _decode(fp: object, label: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(fp) as img:  # type: ignore[arg-type]
            img.load()  # decode now, so truncated or corrupt data fails here and names the file
            return _from_pil(img, label)
    except UnidentifiedImageError as exc:
        raise ImageError(f"{label} is not an image file PIL can read ({_brief(exc)})") from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{label} is too large to decode safely ({_brief(exc)})") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{label} is truncated or corrupt: {_brief(exc)}") from exc


def _brief(exc: BaseException) -> str:
    return str(exc).split("\n")[0] or type(exc).__name__


def _from_pil(img: PILImage.Image, label: str) -> np.ndarray:
    from PIL import ImageOps

    img = ImageOps.exif_transpose(img) or img
    mode = img.mode
    if mode == "RGB":
        return np.array(img, dtype=np.uint8)
    if mode.startswith("I;16") or mode == "I":
        # 16-bit grayscale (PNG/TIFF); PIL also opens 16-bit PNGs as "I". 65535 / 257 = 255.
        wide = np.asarray(img, dtype=np.float64)
        return _gray_to_rgb(_round_u8(np.clip(wide, 0, 65535) / 257.0))
    if mode == "F":
        return _from_array(np.asarray(img, dtype=np.float32), label)
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in img.info):
        return _composite_on_white(np.asarray(img.convert("RGBA"), dtype=np.uint8))
    return np.array(img.convert("RGB"), dtype=np.uint8)


def _from_array(arr: np.ndarray, label: str) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        hint = " (channels first? use arr.transpose(1, 2, 0))" if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) else ""
        raise ImageError(f"{label}: array shape {arr.shape} is not (H, W), (H, W, 3) or (H, W, 4){hint}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"{label}: array shape {arr.shape} has no pixels")
    arr = _to_uint8(arr, label)
    if arr.ndim == 2:
        return _gray_to_rgb(arr)
    if arr.shape[2] == 4:
        return _composite_on_white(arr)
    return np.array(arr, order="C")  # a copy: the caller's array is never shared or changed


def _to_uint8(arr: np.ndarray, label: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype == np.uint16:
        return _round_u8(arr / 257.0)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ImageError(f"{label}: float image has NaN or infinite values")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 1.0:
            raise ImageError(
                f"{label}: float image values span [{lo:g}, {hi:g}], expected [0, 1]; "
                "divide by 255 or pass uint8"
            )
        return _round_u8(arr * 255.0)
    raise ImageError(f"{label}: unsupported array dtype {arr.dtype}; use uint8, uint16 or float in [0, 1]")


def _round_u8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 -> (H, W, 3): transparent pixels become white, as viewers usually show them."""
    alpha = rgba[:, :, 3:4].astype(np.float32) / 255.0
    rgb = rgba[:, :, :3].astype(np.float32)
    return _round_u8(rgb * alpha + 255.0 * (1.0 - alpha))


def is_video(path: str | Path) -> bool:
    """True when `path`'s suffix is a video container `mien` reads through OpenCV."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def expand_inputs(
    paths: Sequence[str | Path], *, suffixes: Iterable[str] = IMAGE_SUFFIXES | VIDEO_SUFFIXES
) -> list[Path]:
    """Turn command-line arguments into the files to process.

    A file is kept whatever its suffix (reading it reports a clear error if it is not an image);
    a folder contributes every file below it (recursively) whose suffix is in `suffixes`; a pattern
    with `*`, `?` or `[` is globbed (`**` recurses), matched folders are expanded and matched files
    are filtered by suffix. Each argument's matches are sorted; arguments keep their order and a file
    named twice is listed once.

    Raises:
        ImageError: an argument names nothing that exists, or matches no image or video file.
    """
    wanted = frozenset(s.lower() for s in suffixes)
    found: dict[Path, None] = {}
    for arg in paths:
        path = Path(arg).expanduser()
        if path.is_file():
            matches = [path]
        elif path.is_dir():
            matches = _files_below(path, wanted)
        elif _GLOB_CHARS & set(str(arg)):
            matches = []
            for hit in sorted(glob.glob(str(path), recursive=True)):
                hit_path = Path(hit)
                if hit_path.is_dir():
                    matches.extend(_files_below(hit_path, wanted))
                elif hit_path.is_file() and hit_path.suffix.lower() in wanted:
                    matches.append(hit_path)
        else:
            raise ImageError(f"input {arg} does not exist")
        if not matches:
            kinds = ", ".join(sorted(wanted))
            raise ImageError(f"input {arg} matches no image or video file (looked for {kinds})")
        found.update(dict.fromkeys(sorted(matches)))
    return list(found)


def _files_below(folder: Path, wanted: frozenset[str]) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in wanted)
