"""Batched training-time augmentation on tensors, with per-sample random parameters.

Augmentation is for the training split only: the data pipeline applies it to training batches
and never to validation or test faces.

Every geometric op (random resized crop, horizontal flip, rotation, shear, scale, translation)
folds into ONE affine matrix per sample, applied with a single `F.affine_grid` + `F.grid_sample`;
brightness/contrast jitter and random erasing follow as broadcast tensor ops. The photometric
robustness ops (gamma, Gaussian blur, unsharp-mask sharpening, Gaussian noise: what phone photos and
webcams do to a face) draw from a second uniform block, taken only when one of them is on, and the
JPEG round trip from a third, so configs without them keep their random stream. All random numbers come from the caller's
`torch.Generator`, so the same generator seed gives the same batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..config import AugmentConfig
from ..errors import DataError

# Columns of the (B, _NUM_PARAMS) uniform draw; all are drawn every call so the stream layout
# does not depend on which ops are on.
(_FLIP, _ROT, _TX, _TY, _SCALE, _SHEAR, _CROP, _CROP_AREA, _CROP_RATIO, _CROP_X, _CROP_Y,
 _BRIGHT, _CONTRAST, _ERASE, _ERASE_AREA, _ERASE_RATIO, _ERASE_TOP, _ERASE_LEFT) = range(18)
_NUM_PARAMS = 18
# Columns of the second draw, for the photometric robustness ops.
_GAMMA, _BLUR, _BLUR_SIGMA, _SHARPEN, _SHARPEN_AMOUNT, _NOISE, _NOISE_STD = range(7)
_NUM_PHOTO_PARAMS = 7
# Columns of the third draw, for the JPEG round trip.
_JPEG, _JPEG_QUALITY = range(2)
_NUM_JPEG_PARAMS = 2
_CROP_RATIOS = (3 / 4, 4 / 3)
# The IJG (libjpeg) luminance quantisation table at quality 50, row-major over (v, u) frequencies.
_JPEG_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)
_ERASE_RATIOS = (0.3, 3.3)  # torchvision's RandomErasing default


def _affine(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor,
            tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) homogeneous matrices [[a, b, tx], [c, d, ty], [0, 0, 1]] from (B,) entries."""
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([a, b, tx, c, d, ty, zero, zero, one], dim=1).view(-1, 3, 3)


def _uniform(u: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * u


def _log_uniform(u: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    return torch.exp(_uniform(u, math.log(lo), math.log(hi)))


def _has_geometry(cfg: AugmentConfig) -> bool:
    return (cfg.hflip > 0 or cfg.rotate > 0 or cfg.translate > 0 or cfg.shear > 0 or cfg.crop_p > 0
            or cfg.scale != (1.0, 1.0))


def _sampling_theta(u: torch.Tensor, cfg: AugmentConfig, height: int, width: int) -> torch.Tensor:
    """(B, 2, 3) `affine_grid` thetas mapping output to input normalised coordinates.

    The forward transform on the (cropped) image is T @ R @ Shear @ Scale @ Flip in pixel units
    about the centre; grid_sample needs its inverse, built factor by factor. The crop then maps
    the augmented frame into the original image.
    """
    one = torch.ones_like(u[:, 0])
    zero = torch.zeros_like(one)
    flip = torch.where(u[:, _FLIP] < cfg.hflip, -one, one)
    angle = torch.deg2rad(_uniform(u[:, _ROT], -cfg.rotate, cfg.rotate))
    shear = torch.tan(torch.deg2rad(_uniform(u[:, _SHEAR], -cfg.shear, cfg.shear)))
    scale = _uniform(u[:, _SCALE], *cfg.scale)
    tx = _uniform(u[:, _TX], -cfg.translate, cfg.translate) * width
    ty = _uniform(u[:, _TY], -cfg.translate, cfg.translate) * height
    cos, sin = torch.cos(angle), torch.sin(angle)
    inverse = (_affine(flip, zero, zero, one, zero, zero)          # Flip^-1 = Flip
               @ _affine(1 / scale, zero, zero, 1 / scale, zero, zero)
               @ _affine(one, -shear, zero, one, zero, zero)     # x-shear, like torchvision's single value
               @ _affine(cos, sin, -sin, cos, zero, zero)        # R(-angle)
               @ _affine(one, zero, zero, one, -tx, -ty))
    # Pixel units about the centre <-> normalised [-1, 1] coordinates, so rotations stay
    # rotations on non-square images.
    to_pixels = _affine(one * width / 2, zero, zero, one * height / 2, zero, zero)
    to_norm = _affine(one * 2 / width, zero, zero, one * 2 / height, zero, zero)
    # Random resized crop: a window of area fraction `area` and aspect ratio `ratio` (clamped
    # to the image), stretched to the full frame.
    crop = u[:, _CROP] < cfg.crop_p
    area = _uniform(u[:, _CROP_AREA], *cfg.crop_scale)
    ratio = _log_uniform(u[:, _CROP_RATIO], *_CROP_RATIOS)
    crop_w = torch.where(crop, torch.sqrt(area * ratio).clamp(max=1), one)
    crop_h = torch.where(crop, torch.sqrt(area / ratio).clamp(max=1), one)
    crop_x = (2 * u[:, _CROP_X] - 1) * (1 - crop_w)
    crop_y = (2 * u[:, _CROP_Y] - 1) * (1 - crop_h)
    window = _affine(crop_w, zero, zero, crop_h, crop_x, crop_y)
    return (window @ to_norm @ inverse @ to_pixels)[:, :2]


def _erase_mask(u: torch.Tensor, cfg: AugmentConfig, height: int, width: int) -> torch.Tensor:
    """(B, 1, H, W) bool mask of one random rectangle per erased sample."""
    area = _uniform(u[:, _ERASE_AREA], *cfg.erase_scale) * height * width
    ratio = _log_uniform(u[:, _ERASE_RATIO], *_ERASE_RATIOS)
    h = torch.sqrt(area * ratio).round().clamp(1, height)
    w = torch.sqrt(area / ratio).round().clamp(1, width)
    top = torch.floor(u[:, _ERASE_TOP] * (height - h + 1)).clamp(max=height - h)
    left = torch.floor(u[:, _ERASE_LEFT] * (width - w + 1)).clamp(max=width - w)
    rows = torch.arange(height, device=u.device, dtype=u.dtype).view(1, 1, height, 1)
    cols = torch.arange(width, device=u.device, dtype=u.dtype).view(1, 1, 1, width)

    def per_sample(t: torch.Tensor) -> torch.Tensor:
        return t.view(-1, 1, 1, 1)

    inside = ((rows >= per_sample(top)) & (rows < per_sample(top + h))
              & (cols >= per_sample(left)) & (cols < per_sample(left + w)))
    return inside & per_sample(u[:, _ERASE] < cfg.erase_p)


def _has_photometric(cfg: AugmentConfig) -> bool:
    return cfg.gamma > 0 or cfg.blur_p > 0 or cfg.sharpen_p > 0 or cfg.noise_p > 0


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each (C, H, W) sample of `x` with its own Gaussian of std `sigma` (B,) pixels (7 taps).

    Separable depthwise convolution with reflect padding; a sigma near 0 gives a delta kernel.
    """
    batch, channels, height, width = x.shape
    taps = torch.arange(-3, 4, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-taps.view(1, -1) ** 2 / (2 * sigma.clamp_min(1e-3).view(-1, 1).to(x.dtype) ** 2))
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(channels, dim=0)  # (B*C, 7)
    flat = x.reshape(1, batch * channels, height, width)
    flat = F.conv2d(F.pad(flat, (3, 3, 0, 0), mode="reflect"), kernel.view(-1, 1, 1, 7), groups=batch * channels)
    flat = F.conv2d(F.pad(flat, (0, 0, 3, 3), mode="reflect"), kernel.view(-1, 1, 7, 1), groups=batch * channels)
    return flat.view(batch, channels, height, width)


def _photometric(out: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Gamma, blur, sharpening and noise, each on its own random subset of the batch; values in [0, 1]."""
    batch = out.shape[0]
    v = torch.rand((batch, _NUM_PHOTO_PARAMS), generator=generator, device=generator.device).to(out.device)

    def per_sample(t: torch.Tensor) -> torch.Tensor:
        return t.view(-1, 1, 1, 1).to(out.dtype)

    work = out.float() if out.dtype in (torch.float16, torch.bfloat16) else out
    if cfg.gamma > 0:
        work = work.clamp_min(0) ** per_sample(_log_uniform(v[:, _GAMMA], 1 / (1 + cfg.gamma), 1 + cfg.gamma))
    if cfg.blur_p > 0:
        sigma = torch.where(v[:, _BLUR] < cfg.blur_p, v[:, _BLUR_SIGMA] * cfg.blur_sigma, torch.zeros_like(v[:, 0]))
        work = _gaussian_blur(work, sigma)
    if cfg.sharpen_p > 0:
        amount = torch.where(v[:, _SHARPEN] < cfg.sharpen_p, v[:, _SHARPEN_AMOUNT] * cfg.sharpen,
                             torch.zeros_like(v[:, 0]))
        work = work + per_sample(amount) * (work - _gaussian_blur(work, torch.ones_like(amount)))
    if cfg.noise_p > 0:
        std = torch.where(v[:, _NOISE] < cfg.noise_p, v[:, _NOISE_STD] * cfg.noise_std, torch.zeros_like(v[:, 0]))
        noise = torch.randn(work.shape, generator=generator, device=generator.device).to(work.device, work.dtype)
        work = work + per_sample(std) * noise
    return work.clamp(0, 1).to(out.dtype)


def _dct_matrix(device: torch.device) -> torch.Tensor:
    """(8, 8) orthonormal DCT-II basis: row k is frequency k."""
    n = torch.arange(8, device=device, dtype=torch.float32)
    basis = torch.cos((2 * n.view(1, 8) + 1) * n.view(8, 1) * math.pi / 16)
    scale = torch.full((8, 1), math.sqrt(2 / 8), device=device)
    scale[0] = math.sqrt(1 / 8)
    return basis * scale


def jpeg_roundtrip(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Baseline-JPEG compression and decoding of grey faces, each at its own quality, as tensor ops.

    What libjpeg does to one channel: level shift, 8x8 block DCT, quantisation by the IJG luminance
    table scaled for `quality` (libjpeg's formula), rounding, and the inverse; the edge is padded by
    replication to whole blocks, like libjpeg, and decoded pixels are rounded to 8 bits. Colour
    channels are coded alike (no chroma subsampling).

    Args:
        x: (B, C, H, W) float images in [0, 1].
        quality: (B,) JPEG qualities in [1, 100].

    Returns:
        (B, C, H, W) float32 images in [0, 1], multiples of 1/255.
    """
    batch, channels, height, width = x.shape
    q = quality.to(device=x.device, dtype=torch.float32).round().clamp(1, 100)
    percent = torch.where(q < 50, 5000 / q, 200 - 2 * q).view(-1, 1, 1)
    base = torch.tensor(_JPEG_LUMA, device=x.device, dtype=torch.float32).view(1, 8, 8)
    table = torch.floor((base * percent + 50) / 100).clamp(1, 255).view(batch, 1, 1, 1, 8, 8)
    pad_h, pad_w = -height % 8, -width % 8
    pixels = F.pad(x.float() * 255, (0, pad_w, 0, pad_h), mode="replicate") - 128
    rows, cols = (height + pad_h) // 8, (width + pad_w) // 8
    # (B, C, rows, cols, 8, 8) blocks.
    blocks = pixels.view(batch, channels, rows, 8, cols, 8).permute(0, 1, 2, 4, 3, 5)
    dct = _dct_matrix(x.device)
    coef = torch.round(dct @ blocks @ dct.T / table) * table
    decoded = (dct.T @ coef @ dct).permute(0, 1, 2, 4, 3, 5).reshape(batch, channels, rows * 8, cols * 8)
    return (torch.round(decoded + 128).clamp(0, 255) / 255)[:, :, :height, :width]


def _jpeg(out: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """The JPEG round trip on a random subset of the batch, at qualities uniform in cfg.jpeg_quality."""
    w = torch.rand((out.shape[0], _NUM_JPEG_PARAMS), generator=generator, device=generator.device).to(out.device)
    chosen = (w[:, _JPEG] < cfg.jpeg_p).view(-1, 1, 1, 1)
    # The whole batch is coded and then masked: static shapes, and no host sync on CUDA that
    # indexing the chosen faces would cost (4 ms per 128 faces on one CPU core).
    coded = jpeg_roundtrip(out, _uniform(w[:, _JPEG_QUALITY], *cfg.jpeg_quality))
    return torch.where(chosen, coded.to(out.dtype), out)


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, *, generator: torch.Generator) -> torch.Tensor:
    """Randomly augment a batch of faces, each with its own parameters.

    Args:
        x: (B, C, H, W) float images in [0, 1], on CPU or CUDA.
        cfg: which ops to apply and their ranges; `cfg.enabled=False` returns `x` itself.
        generator: source of every random number; it may live on CPU or on `x`'s device.

    Returns:
        (B, C, H, W) tensor of `x`'s dtype and device, values in [0, 1].
    """
    if x.ndim != 4 or not x.is_floating_point():
        raise DataError(f"augment_batch needs a float (B, C, H, W) tensor, got {tuple(x.shape)} {x.dtype}")
    if not cfg.enabled or x.shape[0] == 0:
        return x
    batch, channels, height, width = x.shape
    u = torch.rand((batch, _NUM_PARAMS), generator=generator, device=generator.device).to(x.device)
    out = x
    if _has_geometry(cfg):
        theta = _sampling_theta(u, cfg, height, width)
        # Sample in float32 at least: bf16 grid coordinates near +-1 are 1/128 apart, a fifth of a
        # pixel on 48x48 faces.
        work = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        grid = F.affine_grid(theta.to(work.dtype), [batch, channels, height, width], align_corners=False)
        out = F.grid_sample(work, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if cfg.brightness > 0 or cfg.contrast > 0:
        bright = _uniform(u[:, _BRIGHT], 1 - cfg.brightness, 1 + cfg.brightness).view(-1, 1, 1, 1)
        contrast = _uniform(u[:, _CONTRAST], 1 - cfg.contrast, 1 + cfg.contrast).view(-1, 1, 1, 1)
        out = out * bright.to(out.dtype)
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        out = ((out - mean) * contrast.to(out.dtype) + mean).clamp(0, 1)
    if _has_photometric(cfg):
        out = _photometric(out, cfg, generator)
    if cfg.jpeg_p > 0:
        out = _jpeg(out, cfg, generator)
    if cfg.erase_p > 0:
        fill = torch.rand((batch, channels, height, width), generator=generator, device=generator.device)
        out = torch.where(_erase_mask(u, cfg, height, width), fill.to(device=out.device, dtype=out.dtype), out)
    return out.to(x.dtype)


def mixup_batch(x: torch.Tensor, y: torch.Tensor, *, alpha: float,
                rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Mixup (Zhang et al., 2018): blend (B, C, H, W) `x` with a shuffled copy of itself.

    Returns (lam * x + (1 - lam) * x[perm], y, y[perm], lam) with lam ~ Beta(alpha, alpha) and perm
    drawn from `rng`; the loss is lam * loss(y) + (1 - lam) * loss(y[perm]).
    """
    if alpha <= 0:
        raise DataError(f"mixup alpha must be > 0, got {alpha}")
    if len(x) != len(y):
        raise DataError(f"mixup needs one label per image, got {len(x)} images and {len(y)} labels")
    lam = float(rng.beta(alpha, alpha))
    perm = torch.from_numpy(rng.permutation(len(x))).to(x.device)
    return lam * x + (1 - lam) * x[perm], y, y[perm], lam
