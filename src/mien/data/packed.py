"""A compact lossless form of FER faces (`.mpk`), small enough to travel where the npz cannot.

The npz barely compresses (zlib gives 96 % of the raw 83 MB: the faces are noisy JPEG decodes),
and a lent GPU machine takes at most 64 MiB of files in all. Here each face is replaced by its
residual from the median edge detector predictor of LOCO-I / JPEG-LS (the pixel predicted from its
left, upper and upper-left neighbours), which leaves mostly small values that LZMA codes well:
about 69 % of the raw size on FER2013, so Training + PublicTest fit in 52 MB. Decoding is exact.

File layout: LZMA (xz) stream of MAGIC, a little-endian uint32 header length, a JSON header
(count, height, width, class names, usage names), then labels and usage (one uint8 each per face)
and the residuals (count * height * width uint8).
"""

from __future__ import annotations

import json
import lzma
import struct
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..labels import USAGES
from .arrays import FaceArrays
from ..files import write_atomically

MAGIC = b"MIENPK1\n"
SUFFIX = ".mpk"


def _med_prediction(left: np.ndarray, up: np.ndarray, up_left: np.ndarray) -> np.ndarray:
    """LOCO-I's median edge detector on int16 arrays: min/max of left and up at an edge, else the plane."""
    hi, lo = np.maximum(left, up), np.minimum(left, up)
    return np.where(up_left >= hi, lo, np.where(up_left <= lo, hi, left + up - up_left))


def med_residuals(images: np.ndarray) -> np.ndarray:
    """(N, H, W) uint8 faces -> (N, H, W) uint8 residuals (pixel - prediction, mod 256)."""
    x = images.astype(np.int16)
    left, up, up_left = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x)
    left[:, :, 1:] = x[:, :, :-1]
    up[:, 1:, :] = x[:, :-1, :]
    up_left[:, 1:, 1:] = x[:, :-1, :-1]
    return ((x - _med_prediction(left, up, up_left)) % 256).astype(np.uint8)


def med_reconstruct(residuals: np.ndarray) -> np.ndarray:
    """Inverse of `med_residuals`, one anti-diagonal at a time.

    A pixel depends on its left, upper and upper-left neighbours only, all on earlier anti-diagonals
    (i + j smaller), so each anti-diagonal is decoded at once for every face: h + w - 1 steps
    instead of h * w.
    """
    n, h, w = residuals.shape
    # Faces on the last axis, so every gather below reads contiguous runs of n values.
    out = np.zeros((h + 1, w + 1, n), dtype=np.int16)  # row 0 and column 0 are the zero border
    res = residuals.transpose(1, 2, 0).astype(np.int16)  # (h, w, n)
    for d in range(h + w - 1):
        i = np.arange(max(0, d - w + 1), min(h, d + 1))
        j = d - i
        pred = _med_prediction(out[i + 1, j], out[i, j + 1], out[i, j])  # (len(i), n)
        out[i + 1, j + 1] = (pred + res[i, j]) % 256
    return np.ascontiguousarray(out[1:, 1:].transpose(2, 0, 1)).astype(np.uint8)


def save_packed(faces: FaceArrays, path: str | Path) -> Path:
    """Write `faces` as an `.mpk` that `load_packed` reads back exactly; returns the file written."""
    n, h, w = faces.images.shape
    header = json.dumps({"count": n, "height": h, "width": w, "classes": list(faces.names),
                         "usages": list(USAGES)}).encode()
    payload = b"".join([MAGIC, struct.pack("<I", len(header)), header,
                        faces.labels.astype(np.uint8).tobytes(), faces.usage.astype(np.uint8).tobytes(),
                        med_residuals(faces.images).tobytes()])
    return write_atomically(path, suffix=SUFFIX, write=lambda tmp: tmp.write_bytes(lzma.compress(payload, preset=6)))


def load_packed(path: str | Path) -> FaceArrays:
    """Read an `.mpk` written by `save_packed`.

    Raises:
        DataError: the file is unreadable, not an `.mpk`, or truncated.
    """
    path = Path(path)
    try:
        payload = lzma.decompress(path.read_bytes())
    except (OSError, lzma.LZMAError) as exc:
        raise DataError(f"cannot read packed faces {path}: {exc}") from None
    if not payload.startswith(MAGIC):
        raise DataError(f"{path} is not a mien .mpk file (it lacks the {MAGIC!r} header)")
    start = len(MAGIC) + 4
    try:
        (length,) = struct.unpack("<I", payload[len(MAGIC):start])
        header = json.loads(payload[start:start + length])
        n, h, w = int(header["count"]), int(header["height"]), int(header["width"])
        names, usages = tuple(header["classes"]), list(header["usages"])
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: bad .mpk header: {exc}") from None
    body = np.frombuffer(payload, dtype=np.uint8, offset=start + length)
    if body.size != n * (2 + h * w):
        raise DataError(f"{path}: expected {n} faces of {h}x{w} ({n * (2 + h * w)} bytes), found {body.size} bytes; "
                        "the file is truncated or corrupt")
    if usages != list(USAGES):
        raise DataError(f"{path}: usage names {usages} differ from {list(USAGES)}")
    labels, usage = body[:n].astype(np.int64), body[n:2 * n].astype(np.int8)
    images = med_reconstruct(body[2 * n:].reshape(n, h, w))
    return FaceArrays(images, labels, usage, names)
