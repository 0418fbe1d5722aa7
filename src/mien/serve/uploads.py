"""Turning uploaded bytes into images the Recognizer takes, with the service's limits.

Everything here runs in a worker thread (decoding is CPU work); nothing here touches a path that a
client chose: saved uploads get names made from the time and a random UUID.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import MienError
from ..files import write_atomically
from ..infer.results import FacePrediction

# Only formats whose decoders are plain Pillow code. Pillow can open more (EPS runs Ghostscript,
# for one) and a service must not hand untrusted bytes to those.
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "PPM")
_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif", "GIF": ".gif",
           "PPM": ".pgm"}
READABLE = "JPEG, PNG, WebP, BMP, TIFF, GIF or PGM/PPM"


class UploadError(MienError):
    """An upload the service refuses; `status` is the HTTP status code to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class DecodedImage:
    """An upload decoded to (H, W, 3) uint8 RGB, possibly downscaled.

    Attributes:
        rgb: the pixels the detector sees (downscaled when the original had more than max_pixels).
        width, height: the original image's size (after EXIF rotation).
        format: the Pillow format name ("JPEG", "PNG", ...).
    """

    rgb: np.ndarray
    width: int
    height: int
    format: str

    @property
    def downscaled(self) -> bool:
        return self.rgb.shape[:2] != (self.height, self.width)


def decode_upload(data: bytes, *, name: str, max_pixels: int, max_decode_pixels: int) -> DecodedImage:
    """Decode an uploaded image file, refusing what the service should not decode.

    Args:
        data: the file's bytes.
        name: what error messages call the image (e.g. "the upload", "image 3 (cat.png)").
        max_pixels: downscale (INTER_AREA, aspect kept) above this many pixels.
        max_decode_pixels: refuse (413) an image whose header declares more pixels than this.

    Raises:
        UploadError: 400 empty or corrupt, 413 too many pixels, 415 not an image in a readable format.
    """
    from PIL import Image, UnidentifiedImageError

    from ..io.images import ImageError, read_image

    if not data:
        raise UploadError(400, f"{name} is empty (0 bytes); send the image file's contents")
    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)  # reads the header only
    except UnidentifiedImageError:
        raise UploadError(415, f"{name} is not an image file mien reads; send {READABLE}") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise UploadError(400, f"{name} is truncated or corrupt ({_brief(exc)})") from None
    with img:
        width, height = img.size
        if width * height > max_decode_pixels:
            raise UploadError(413, f"{name} is {width}x{height} = {width * height:,} pixels; the service decodes "
                                   f"at most {max_decode_pixels:,}; send a smaller image")
        try:
            img.load()
            rgb = read_image(img, name=name)
        except ImageError as exc:
            raise UploadError(400, str(exc)) from None
        except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
            raise UploadError(400, f"{name} is truncated or corrupt ({_brief(exc)})") from None
        fmt = str(img.format)
    height, width = rgb.shape[:2]  # after EXIF rotation
    return DecodedImage(_downscale(rgb, max_pixels), width, height, fmt)


def _downscale(rgb: np.ndarray, max_pixels: int) -> np.ndarray:
    height, width = rgb.shape[:2]
    if width * height <= max_pixels:
        return rgb
    import cv2

    scale = (max_pixels / (width * height)) ** 0.5
    size = (max(1, int(width * scale)), max(1, int(height * scale)))  # (W, H) for cv2
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def to_original(faces: Sequence[FacePrediction], image: DecodedImage) -> list[FacePrediction]:
    """Faces found on the (maybe downscaled) `image.rgb` with boxes and landmarks in original pixels."""
    if not image.downscaled:
        return list(faces)
    sx, sy = image.width / image.rgb.shape[1], image.height / image.rgb.shape[0]
    out = []
    for face in faces:
        x0, y0, x1, y1 = face.box
        marks = None if face.landmarks is None else tuple((x * sx, y * sy) for x, y in face.landmarks)
        out.append(replace(face, box=(x0 * sx, y0 * sy, x1 * sx, y1 * sy), landmarks=marks))
    return out


def save_upload(data: bytes, image: DecodedImage, folder: Path) -> Path:
    """Write an accepted upload's bytes to `folder` under a name made here (UTC time + random UUID)."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    path = folder / f"{stamp}-{uuid.uuid4().hex}{_SUFFIX.get(image.format, '.img')}"
    return write_atomically(path, lambda tmp: tmp.write_bytes(data))  # readers never see half a file


def _brief(exc: BaseException) -> str:
    return str(exc).split("\n")[0] or type(exc).__name__
