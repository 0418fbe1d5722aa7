"""Photometric corruptions of uint8 faces, for measuring how a model holds up on real-world photos.

Each corruption is a pure function of (N, H, W) uint8 grayscale faces (plus an explicit numpy
Generator where it is random) that returns new uint8 faces of the same shape. `CORRUPTIONS` maps a
name to its mild and strong parameter; `corrupt` applies one of them.

The levels are chosen to be what a phone photo or a webcam frame plausibly does to a face crop
(mild) and what a bad one does (strong), at the 48x48 scale of FER2013:
- contrast up / down: scale deviations from each face's mean by 1.3 / 1.8 (up), 0.7 / 0.4 (down);
- gamma bright / dark: x ** gamma on [0, 1] with gamma 0.8 / 0.5 (bright), 1.25 / 2.0 (dark);
- sharpen: unsharp mask (radius 1 px, amount 100 % / 300 %);
- blur: Gaussian, sigma 0.8 / 1.6 px;
- jpeg: re-encoded at quality 30 (mild, as the issue names it) / 10;
- noise: additive Gaussian, sigma 8 / 20 grey levels.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import ConfigError

LEVELS = ("mild", "strong")


@dataclass(frozen=True)
class Corruption:
    name: str
    mild: float
    strong: float
    unit: str
    fn: Callable[[np.ndarray, float, np.random.Generator], np.ndarray]

    def param(self, level: str) -> float:
        if level not in LEVELS:
            raise ConfigError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
        return self.mild if level == "mild" else self.strong


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _contrast(images: np.ndarray, factor: float, _: np.random.Generator) -> np.ndarray:
    x = images.astype(np.float32)
    mean = x.mean(axis=(1, 2), keepdims=True)
    return _to_uint8(mean + factor * (x - mean))


def _gamma(images: np.ndarray, gamma: float, _: np.random.Generator) -> np.ndarray:
    return _to_uint8(255.0 * (images.astype(np.float32) / 255.0) ** gamma)


def _per_image(images: np.ndarray, op: Callable) -> np.ndarray:  # noqa: ANN001 (PIL image -> PIL image)
    from PIL import Image

    return np.stack([np.asarray(op(Image.fromarray(img, mode="L")), dtype=np.uint8) for img in images])


def _sharpen(images: np.ndarray, amount: float, _: np.random.Generator) -> np.ndarray:
    from PIL import ImageFilter

    f = ImageFilter.UnsharpMask(radius=1, percent=int(round(amount * 100)), threshold=0)
    return _per_image(images, lambda im: im.filter(f))


def _blur(images: np.ndarray, sigma: float, _: np.random.Generator) -> np.ndarray:
    from PIL import ImageFilter

    f = ImageFilter.GaussianBlur(radius=sigma)
    return _per_image(images, lambda im: im.filter(f))


def _jpeg(images: np.ndarray, quality: float, _: np.random.Generator) -> np.ndarray:
    from PIL import Image

    def recode(im):  # noqa: ANN001, ANN202
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=int(quality))
        buf.seek(0)
        return Image.open(buf).convert("L")

    return _per_image(images, recode)


def _noise(images: np.ndarray, sigma: float, generator: np.random.Generator) -> np.ndarray:
    return _to_uint8(images.astype(np.float32) + generator.normal(0.0, sigma, size=images.shape))


CORRUPTIONS: dict[str, Corruption] = {c.name: c for c in (
    Corruption("contrast_up", 1.3, 1.8, "x", _contrast),
    Corruption("contrast_down", 0.7, 0.4, "x", _contrast),
    Corruption("gamma_bright", 0.8, 0.5, "gamma", _gamma),
    Corruption("gamma_dark", 1.25, 2.0, "gamma", _gamma),
    Corruption("sharpen", 1.0, 3.0, "amount", _sharpen),
    Corruption("blur", 0.8, 1.6, "sigma px", _blur),
    Corruption("jpeg", 30, 10, "quality", _jpeg),
    Corruption("noise", 8.0, 20.0, "sigma", _noise),
)}


def corrupt(images: np.ndarray, name: str, level: str, *, generator: np.random.Generator) -> np.ndarray:
    """Apply corruption `name` at `level` ("mild" or "strong") to (N, H, W) uint8 faces.

    Raises:
        ConfigError: unknown corruption or level, or images that are not (N, H, W) uint8.
    """
    if name not in CORRUPTIONS:
        raise ConfigError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ConfigError(f"corrupt expects (N, H, W) uint8 faces, got {images.dtype} {images.shape}")
    c = CORRUPTIONS[name]
    return c.fn(images, c.param(level), generator)


def robustness_table(
    predict: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    labels: np.ndarray,
    *,
    generator: np.random.Generator,
    names: tuple[str, ...] | None = None,
    clean_probs: np.ndarray | None = None,
) -> list[dict[str, float | str]]:
    """Accuracy of `predict` (uint8 faces -> (N, C) probabilities) on clean and corrupted faces.

    `clean_probs`, when the caller already has `predict(images)`, spares one pass over the clean faces.

    Returns one row per corruption and level (the first row is "clean"), each with the parameter,
    the accuracy and its change from clean in points (negative: a loss).
    """
    labels = np.asarray(labels)
    if clean_probs is None:
        clean_probs = predict(images)
    elif len(clean_probs) != len(labels):
        raise ConfigError(f"clean_probs has {len(clean_probs)} rows for {len(labels)} faces")
    clean = float((np.asarray(clean_probs).argmax(1) == labels).mean())
    rows: list[dict[str, float | str]] = [
        {"corruption": "clean", "level": "-", "param": "-", "accuracy": clean, "delta_points": 0.0}]
    for name in names or tuple(CORRUPTIONS):
        for level in LEVELS:
            acc = float((predict(corrupt(images, name, level, generator=generator)).argmax(1) == labels).mean())
            c = CORRUPTIONS[name]
            rows.append({"corruption": name, "level": level, "param": f"{c.param(level):g} {c.unit}",
                         "accuracy": acc, "delta_points": 100.0 * (acc - clean)})
    return rows


def table_markdown(rows: list[dict[str, float | str]]) -> str:
    """The rows of `robustness_table` as a Markdown table (accuracy in %, change in points)."""
    lines = ["| corruption | level | parameter | accuracy | change (points) |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['corruption']} | {r['level']} | {r['param']} | {100 * float(r['accuracy']):.2f} % "
                     f"| {float(r['delta_points']):+.2f} |")
    return "\n".join(lines)
