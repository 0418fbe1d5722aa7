"""The photometric robustness augmentations: gamma, blur, sharpening, noise (and the stream they draw)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from conftest import augment_only, torch_gen
from mien.config import AugmentConfig
from mien.data.augment import _gaussian_blur, augment_batch
from mien.errors import ConfigError

def faces(batch: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand((batch, 1, 48, 48), generator=torch_gen(seed)) * 0.6 + 0.2


def roughness(x: torch.Tensor) -> torch.Tensor:
    """(B,) mean absolute difference of horizontal neighbours."""
    return (x[..., 1:] - x[..., :-1]).abs().mean(dim=(1, 2, 3))


def test_off_by_default_and_configs_without_them_keep_their_random_stream() -> None:
    default = AugmentConfig()
    assert default.gamma == default.blur_p == default.sharpen_p == default.noise_p == 0
    x = faces()
    with_geometry = augment_only(rotate=10.0, brightness=0.2)
    g1, g2 = torch_gen(3), torch_gen(3)
    augment_batch(x, with_geometry, generator=g1)
    augment_batch(x, with_geometry, generator=g2)
    assert torch.equal(torch.rand(4, generator=g1), torch.rand(4, generator=g2))
    # the photometric block draws more numbers only when it is on
    g3 = torch_gen(3)
    augment_batch(x, dataclasses.replace(with_geometry, noise_p=1.0), generator=g3)
    assert not torch.equal(torch.rand(4, generator=torch_gen(3)), torch.rand(4, generator=g3))


def test_gamma_moves_each_face_one_way_within_the_range() -> None:
    x = faces()
    out = augment_batch(x, augment_only(gamma=0.5), generator=torch_gen())
    # x ** g with g in [1/1.5, 1.5]: log(out)/log(x) is one exponent per face
    exponent = (out.clamp_min(1e-6).log() / x.log())
    per_face = exponent.flatten(1)
    assert torch.allclose(per_face.max(1).values, per_face.min(1).values, atol=1e-3)
    assert (per_face[:, 0] >= 1 / 1.5 - 1e-3).all() and (per_face[:, 0] <= 1.5 + 1e-3).all()
    assert (per_face[:, 0] < 1).any() and (per_face[:, 0] > 1).any()


def test_blur_smooths_only_the_chosen_faces_and_keeps_the_mean() -> None:
    x = faces(32)
    out = augment_batch(x, augment_only(blur_p=0.5, blur_sigma=1.5), generator=torch_gen())
    changed = (out - x).abs().flatten(1).amax(1) > 1e-5
    assert 0 < changed.sum() < len(x)
    assert (roughness(out)[changed] < roughness(x)[changed]).all()
    assert torch.allclose(out.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=0.01)
    assert torch.equal(out[~changed], x[~changed])


def test_gaussian_blur_matches_a_known_kernel_and_is_a_delta_at_zero_sigma() -> None:
    x = torch.zeros(2, 1, 9, 9)
    x[:, :, 4, 4] = 1.0
    out = _gaussian_blur(x, torch.tensor([0.0, 1.0]))
    assert torch.allclose(out[0], x[0])
    row = out[1, 0, 4]
    taps = torch.exp(-torch.arange(-3, 4.0) ** 2 / 2)
    assert torch.allclose(row[1:8] / row[4], taps / taps[3], atol=1e-5)
    assert out[1].sum().item() == pytest.approx(1.0, abs=1e-5)


def test_sharpening_and_noise_roughen_the_chosen_faces_and_stay_in_range() -> None:
    x = faces(32)
    for cfg in (augment_only(sharpen_p=1.0, sharpen=2.0), augment_only(noise_p=1.0, noise_std=0.1)):
        out = augment_batch(x, cfg, generator=torch_gen())
        assert out.min() >= 0 and out.max() <= 1 and out.dtype == x.dtype
        assert (roughness(out) > roughness(x)).float().mean() > 0.9
    a = augment_batch(x, augment_only(noise_p=1.0), generator=torch_gen(1))
    assert torch.equal(a, augment_batch(x, augment_only(noise_p=1.0), generator=torch_gen(1)))
    assert not torch.equal(a, augment_batch(x, augment_only(noise_p=1.0), generator=torch_gen(2)))


@pytest.mark.parametrize("field, value, fragment", [
    ("blur_p", 1.5, "augment.blur_p is a probability"),
    ("noise_std", -0.1, "augment.noise_std must be >= 0"),
    ("blur_sigma", 5.0, "augment.blur_sigma must lie in (0, 3]"),
])
def test_bad_values_are_named(field: str, value: float, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace("]", r"\]")):
        AugmentConfig(**{field: value})
