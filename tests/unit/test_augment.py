"""augment_batch: shapes, determinism, per-sample parameters, and each op doing what it claims."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from conftest import AUGMENT_OFF, augment_only, torch_gen
from mien.config import AugmentConfig
from mien.data.augment import augment_batch
from mien.errors import DataError

ALL = AugmentConfig(hflip=0.5, rotate=15.0, translate=0.1, scale=(0.9, 1.1), shear=10.0, crop_p=0.5,
                    brightness=0.3, contrast=0.3, erase_p=0.5)
SIDE = 48


def noise(batch: int = 8, channels: int = 1, height: int = SIDE, width: int = SIDE, seed: int = 0) -> torch.Tensor:
    return torch.rand((batch, channels, height, width), generator=torch_gen(seed))


def grid(height: int = SIDE, width: int = SIDE) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates about the image centre, (H, 1) and (1, W)."""
    ys = torch.arange(height, dtype=torch.float32).view(-1, 1) - (height - 1) / 2
    xs = torch.arange(width, dtype=torch.float32).view(1, -1) - (width - 1) / 2
    return ys, xs


def disc(radius: float, height: int = SIDE, width: int = SIDE) -> torch.Tensor:
    """(1, 1, H, W) centred disc with a one-pixel soft edge (less aliasing under resampling)."""
    ys, xs = grid(height, width)
    return (radius - torch.sqrt(ys**2 + xs**2)).clamp(0, 1).view(1, 1, height, width)


def bar(length: float, thickness: float) -> torch.Tensor:
    """(1, 1, H, W) centred horizontal bar."""
    ys, xs = grid()
    return ((xs.abs() <= length / 2) & (ys.abs() <= thickness / 2)).float().view(1, 1, SIDE, SIDE)


def centroid(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,) y and x centres of mass about the image centre."""
    ys, xs = grid()
    mass = images.sum(dim=(1, 2, 3))
    return (images * ys).sum(dim=(1, 2, 3)) / mass, (images * xs).sum(dim=(1, 2, 3)) / mass


def orientation_deg(images: torch.Tensor) -> torch.Tensor:
    """(B,) angle of each image's principal axis, from its second moments."""
    ys, xs = grid()
    w = images[:, 0] / images[:, 0].sum(dim=(1, 2), keepdim=True)
    cy, cx = (w * ys).sum(dim=(1, 2), keepdim=True), (w * xs).sum(dim=(1, 2), keepdim=True)
    cxx = (w * (xs - cx) ** 2).sum(dim=(1, 2))
    cyy = (w * (ys - cy) ** 2).sum(dim=(1, 2))
    cxy = (w * (xs - cx) * (ys - cy)).sum(dim=(1, 2))
    return torch.rad2deg(0.5 * torch.atan2(2 * cxy, cxx - cyy))


def test_shape_dtype_and_range_are_preserved() -> None:
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        x = noise(6).to(dtype)
        out = augment_batch(x, ALL, generator=torch_gen())
        assert out.shape == x.shape and out.dtype == dtype and out.device == x.device
        assert out.min() >= 0 and out.max() <= 1
        assert not torch.equal(out, x)


def test_same_seed_same_output_different_seed_different_output() -> None:
    x = noise(8)
    a = augment_batch(x, ALL, generator=torch_gen(3))
    b = augment_batch(x, ALL, generator=torch_gen(3))
    c = augment_batch(x, ALL, generator=torch_gen(4))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_parameters_differ_per_sample_within_a_batch() -> None:
    x = noise(1).expand(16, 1, SIDE, SIDE).contiguous()
    out = augment_batch(x, dataclasses.replace(ALL, erase_p=0.0), generator=torch_gen())
    flat = out.flatten(1)
    distances = torch.cdist(flat, flat)
    off_diagonal = distances[~torch.eye(16, dtype=torch.bool)]
    assert off_diagonal.min() > 1e-3


def test_disabled_returns_input_and_all_ops_off_is_identity() -> None:
    x = noise(4)
    assert augment_batch(x, dataclasses.replace(ALL, enabled=False), generator=torch_gen()) is x
    assert torch.equal(augment_batch(x, AUGMENT_OFF, generator=torch_gen()), x)


def test_hflip_one_equals_torch_flip_and_half_flips_some() -> None:
    x = noise(8, height=32, width=SIDE)
    assert torch.allclose(augment_batch(x, augment_only(hflip=1.0), generator=torch_gen()), torch.flip(x, dims=[-1]), atol=1e-5)
    x = noise(32)
    out = augment_batch(x, augment_only(hflip=0.5), generator=torch_gen())
    same = (out - x).abs().flatten(1).max(dim=1).values < 1e-5
    flipped = (out - torch.flip(x, dims=[-1])).abs().flatten(1).max(dim=1).values < 1e-5
    assert torch.all(same ^ flipped)
    assert 0 < same.sum() < 32


def test_rotation_turns_a_bar_within_the_range_and_keeps_a_disc() -> None:
    out = augment_batch(bar(30, 3).expand(32, 1, SIDE, SIDE), augment_only(rotate=30.0), generator=torch_gen())
    angles = orientation_deg(out)
    assert angles.abs().max() <= 30.5
    assert angles.abs().max() > 15 and angles.std() > 5
    cy, cx = centroid(out)
    assert cy.abs().max() < 0.2 and cx.abs().max() < 0.2  # rotation about the centre
    for height in (SIDE, 32):  # also on a non-square image: a disc stays a disc
        d = disc(10, height=height)
        rotated = augment_batch(d.expand(8, 1, height, SIDE), augment_only(rotate=45.0), generator=torch_gen())
        ys, xs = grid(height, SIDE)
        inscribed = ys**2 + xs**2 < (height / 2 - 0.5) ** 2  # outside it, corners sample the padding
        error = (rotated - d)[..., inscribed].abs()
        assert error.max() < 0.35 and error.mean() < 0.02


def test_translation_shifts_within_the_range() -> None:
    out = augment_batch(disc(5).expand(32, 1, SIDE, SIDE), augment_only(translate=0.1), generator=torch_gen())
    cy, cx = centroid(out)
    limit = 0.1 * SIDE + 0.1
    assert cy.abs().max() <= limit and cx.abs().max() <= limit
    assert cy.abs().max() > limit / 2 and cx.abs().max() > limit / 2
    mass = out.sum(dim=(1, 2, 3))
    assert torch.allclose(mass, disc(5).sum().expand(32), rtol=0.02)  # shifted, not resized


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_scale_resizes_about_the_centre(factor: float) -> None:
    d = disc(8)
    out = augment_batch(d.expand(4, 1, SIDE, SIDE), augment_only(scale=(factor, factor)), generator=torch_gen())
    # a shrunk image fills only the middle; the reflection padding fills the rest
    lo, hi = int(SIDE / 2 * (1 - min(factor, 1))), int(SIDE / 2 * (1 + min(factor, 1)))
    middle = out[..., lo:hi, lo:hi]
    expected = disc(8 * factor)
    assert torch.allclose(middle.sum(dim=(1, 2, 3)), d.sum() * factor**2 * torch.ones(4), rtol=0.02)
    assert torch.allclose(middle, expected[..., lo:hi, lo:hi].expand(4, 1, hi - lo, hi - lo), atol=0.6)


def test_shear_slants_vertical_lines_and_keeps_rows() -> None:
    ys, _ = grid()
    rows = ((ys + SIDE / 2) / SIDE).expand(SIDE, SIDE).reshape(1, 1, SIDE, SIDE).expand(8, 1, SIDE, SIDE)
    assert torch.allclose(augment_batch(rows, augment_only(shear=20.0), generator=torch_gen()), rows, atol=1e-5)
    vertical = bar(30, 3).transpose(-1, -2).expand(16, 1, SIDE, SIDE)
    tilt = 90 - orientation_deg(augment_batch(vertical, augment_only(shear=20.0), generator=torch_gen())).abs()
    assert tilt.max() <= 20.5 and tilt.max() > 8


def test_random_resized_crop_zooms_into_a_window_of_the_given_area() -> None:
    ys, xs = grid()
    # channel 0 ramps left to right, channel 1 top to bottom, both in (0, 1)
    ramps = torch.stack([(xs + SIDE / 2).expand(SIDE, SIDE), (ys + SIDE / 2).expand(SIDE, SIDE)]) / SIDE
    x = ramps.unsqueeze(0).expand(16, 2, SIDE, SIDE)
    out = augment_batch(x, augment_only(crop_p=1.0, crop_scale=(0.25, 0.25)), generator=torch_gen())
    full_span = (SIDE - 1) / SIDE
    span_x = (out[:, 0, :, -1] - out[:, 0, :, 0]).mean(dim=1) / full_span
    span_y = (out[:, 1, -1, :] - out[:, 1, 0, :]).mean(dim=1) / full_span
    assert torch.all(out[:, 0].diff(dim=-1) > 0) and torch.all(out[:, 1].diff(dim=-2) > 0)  # zoom, no flip
    assert torch.allclose(span_x * span_y, torch.full((16,), 0.25), atol=1e-3)
    lo, hi = (0.25 * 3 / 4) ** 0.5, (0.25 * 4 / 3) ** 0.5
    assert span_x.min() >= lo - 1e-3 and span_x.max() <= hi + 1e-3
    assert span_x.std() > 0.01  # aspect ratios vary
    centres = out[:, 0].mean(dim=(1, 2))
    assert centres.std() > 0.05  # windows sit in different places
    half = augment_batch(x, augment_only(crop_p=0.5), generator=torch_gen())
    unchanged = (half - x).abs().flatten(1).max(dim=1).values < 1e-5
    assert 0 < unchanged.sum() < 16


def test_brightness_scales_each_image_by_one_factor_in_range() -> None:
    x = 0.1 + 0.4 * noise(16)
    out = augment_batch(x, augment_only(brightness=0.5), generator=torch_gen())
    ratio = (out / x).flatten(1)
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-5)
    assert ratio.min() >= 0.5 - 1e-5 and ratio.max() <= 1.5 + 1e-5 and ratio[:, 0].std() > 0.1


def test_contrast_stretches_about_the_image_mean() -> None:
    x = 0.3 + 0.4 * noise(16)
    out = augment_batch(x, augment_only(contrast=0.5), generator=torch_gen())
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    assert torch.allclose(out.mean(dim=(1, 2, 3), keepdim=True), mean, atol=1e-5)
    factor = ((out - mean) / (x - mean)).flatten(1)
    assert torch.allclose(factor.median(dim=1).values, factor.mean(dim=1), atol=1e-3)
    assert factor.min() >= 0.5 - 1e-3 and factor.max() <= 1.5 + 1e-3
    assert torch.equal(augment_batch(torch.ones(2, 1, 8, 8), augment_only(brightness=1.0), generator=torch_gen()).clamp(0, 1),
                       augment_batch(torch.ones(2, 1, 8, 8), augment_only(brightness=1.0), generator=torch_gen()))


def test_erasing_changes_one_rectangle_only() -> None:
    x = noise(16)
    out = augment_batch(x, augment_only(erase_p=1.0, erase_scale=(0.05, 0.2)), generator=torch_gen())
    assert out.min() >= 0 and out.max() <= 1
    for changed in (out != x)[:, 0]:
        rows = changed.any(dim=1).nonzero().flatten()
        cols = changed.any(dim=0).nonzero().flatten()
        box = torch.zeros_like(changed)
        box[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = True
        assert torch.equal(changed, box)
        area = changed.sum().item() / SIDE**2
        assert 0.05 * 0.8 <= area <= 0.2 * 1.2  # rounding the sides to whole pixels
    some = augment_batch(x, augment_only(erase_p=0.5), generator=torch_gen())
    untouched = (some == x).flatten(1).all(dim=1)
    assert 0 < untouched.sum() < 16


def test_three_channels_get_one_transform_per_sample() -> None:
    x = noise(8).expand(8, 3, SIDE, SIDE)
    out = augment_batch(x, dataclasses.replace(ALL, erase_p=0.0), generator=torch_gen())
    assert out.shape == (8, 3, SIDE, SIDE)
    assert torch.allclose(out[:, 0], out[:, 1]) and torch.allclose(out[:, 0], out[:, 2])
    assert out.min() >= 0 and out.max() <= 1
    erased = augment_batch(x, augment_only(erase_p=1.0), generator=torch_gen())
    assert erased.shape == (8, 3, SIDE, SIDE)


def test_rejects_non_float_or_non_batched_input() -> None:
    with pytest.raises(DataError, match="float \\(B, C, H, W\\)"):
        augment_batch(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), ALL, generator=torch_gen())
    with pytest.raises(DataError, match="\\(1, 8, 8\\)"):
        augment_batch(torch.zeros(1, 8, 8), ALL, generator=torch_gen())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda_with_a_cuda_or_cpu_generator() -> None:
    x = noise(8).cuda()
    a = augment_batch(x, ALL, generator=torch_gen(1, "cuda"))
    b = augment_batch(x, ALL, generator=torch_gen(1, "cuda"))
    assert a.device.type == "cuda" and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1 and not torch.equal(a, x)
    on_cpu = augment_batch(x.cpu(), ALL, generator=torch_gen(1))
    from_cpu_gen = augment_batch(x, ALL, generator=torch_gen(1))
    assert from_cpu_gen.device.type == "cuda"
    assert torch.allclose(from_cpu_gen.cpu(), on_cpu, atol=1e-4)
    assert torch.allclose(augment_batch(x, augment_only(hflip=1.0), generator=torch_gen(0, "cuda")), torch.flip(x, dims=[-1]),
                          atol=1e-6)
