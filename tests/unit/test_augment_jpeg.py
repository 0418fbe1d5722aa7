"""The JPEG round-trip augmentation: it must do to a face what the robustness benchmark's JPEG does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import augment_only, torch_gen
from mien.config import AugmentConfig
from mien.data.augment import augment_batch, jpeg_roundtrip
from mien.errors import ConfigError
from mien.evaluate.robustness import CORRUPTIONS

def smooth_faces(batch: int, height: int = 48, width: int = 48, seed: int = 0) -> torch.Tensor:
    """(B, 1, H, W) face-like images in [0, 1]: smooth blobs plus some fine texture, whole grey levels."""
    coarse = torch.rand((batch, 1, 6, 6), generator=torch_gen(seed))
    x = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    x = x + 0.05 * torch.rand((batch, 1, height, width), generator=torch_gen(seed + 1))
    return (x.clamp(0, 1) * 255).round() / 255


def test_matches_libjpeg_as_the_robustness_benchmark_applies_it() -> None:
    x = smooth_faces(24)
    images = (x[:, 0] * 255).round().to(torch.uint8).numpy()
    for quality in (10, 30, 75):
        reference = CORRUPTIONS["jpeg"].fn(images, quality, np.random.default_rng(0))
        ours = jpeg_roundtrip(x, torch.full((len(x),), float(quality)))[:, 0].numpy() * 255
        error = np.abs(ours - reference).mean()
        damage = np.abs(images.astype(np.float32) - reference).mean()
        # libjpeg's integer DCT rounds differently now and then; the mean gap stays a small
        # fraction of what the compression itself changes.
        assert error < 0.5 and error < damage / 4, (quality, error, damage)


def test_lower_quality_loses_more_and_outputs_are_8_bit_in_range() -> None:
    x = smooth_faces(8)
    errors = []
    for quality in (95, 50, 10):
        out = jpeg_roundtrip(x, torch.full((8,), float(quality)))
        assert out.shape == x.shape and out.dtype == torch.float32
        assert out.min() >= 0 and out.max() <= 1
        assert torch.allclose(out * 255, (out * 255).round(), atol=1e-4)
        errors.append((out - x).abs().mean().item())
    assert errors[0] < errors[1] < errors[2]


def test_odd_sizes_and_channels_keep_their_shape_and_each_face_its_quality() -> None:
    x = smooth_faces(2, height=45, width=50).repeat(1, 3, 1, 1)
    out = jpeg_roundtrip(x, torch.tensor([95.0, 5.0]))
    assert out.shape == (2, 3, 45, 50)
    assert (out[0] - x[0]).abs().mean() < (out[1] - x[1]).abs().mean()
    # colour channels are coded alike
    assert torch.equal(out[:, 0], out[:, 2])


def test_augment_batch_codes_a_seeded_subset_and_draws_only_when_on() -> None:
    x = smooth_faces(32)
    cfg = augment_only(jpeg_p=0.5, jpeg_quality=(10.0, 30.0))
    out = augment_batch(x, cfg, generator=torch_gen(1))
    changed = (out - x).abs().flatten(1).amax(1) > 1e-6
    assert 0 < changed.sum() < len(x)
    assert torch.equal(out[~changed], x[~changed])
    assert torch.equal(out, augment_batch(x, cfg, generator=torch_gen(1)))
    assert not torch.equal(out, augment_batch(x, cfg, generator=torch_gen(2)))
    g_off, g_fresh = torch_gen(3), torch_gen(3)
    augment_batch(x, augment_only(rotate=5.0), generator=g_off)
    augment_batch(x, augment_only(rotate=5.0), generator=g_fresh)
    assert torch.equal(torch.rand(4, generator=g_off), torch.rand(4, generator=g_fresh))
    g_on = torch_gen(3)
    augment_batch(x, augment_only(rotate=5.0, jpeg_p=0.1), generator=g_on)
    assert not torch.equal(torch.rand(4, generator=torch_gen(3)), torch.rand(4, generator=g_on))


def test_bf16_batches_come_back_in_bf16() -> None:
    x = smooth_faces(4).to(torch.bfloat16)
    out = augment_batch(x, augment_only(jpeg_p=1.0), generator=torch_gen())
    assert out.dtype == torch.bfloat16 and out.shape == x.shape


@pytest.mark.parametrize("changes, fragment", [
    ({"jpeg_p": 1.5}, "augment.jpeg_p is a probability"),
    ({"jpeg_quality": (0.0, 50.0)}, "augment.jpeg_quality must be"),
    ({"jpeg_quality": (60.0, 50.0)}, "augment.jpeg_quality must be"),
])
def test_bad_values_are_named(changes: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        AugmentConfig(**changes)
