"""Test-time views: what each mode adds, and that evaluation and inference average the same views."""

from __future__ import annotations

import pytest
import torch

from mien.train.loop import tta_probs, tta_views
from mien.tta import TENCROP_FRACTION, TTA_MODES


@pytest.mark.parametrize("tta, count", [("none", 1), ("flip", 2), ("tencrop", 10)])
def test_each_mode_gives_its_views_at_the_input_size(tta, count):
    x = torch.rand(3, 1, 48, 48, generator=torch.Generator().manual_seed(0))
    views = tta_views(x, tta)
    assert tta in TTA_MODES and len(views) == count
    assert all(v.shape == x.shape for v in views)
    torch.testing.assert_close(views[0] if tta != "tencrop" else views[0][:, :, :1, :1], x if tta != "tencrop"
                               else x[:, :, :1, :1])
    for plain, mirror in zip(views[::2], views[1::2]):
        torch.testing.assert_close(mirror, torch.flip(plain, dims=(3,)))


def test_tencrop_takes_the_four_corners_and_the_centre():
    side = 44
    assert abs(side / 48 - TENCROP_FRACTION) < 0.05
    x = torch.zeros(1, 1, 48, 48)
    x[..., :side, :side] = 1.0  # exactly the top-left crop
    views = tta_views(x, "tencrop")[::2]  # unmirrored: top-left, top-right, bottom-left, bottom-right, centre
    assert torch.equal(views[0], torch.ones_like(x))
    assert all(v.mean() < 1.0 for v in views[1:])
    # a face bright only in its bottom-right corner shows up in the bottom-right crop alone
    y = torch.zeros(1, 1, 48, 48)
    y[..., -2:, -2:] = 1.0  # outside the centre crop (rows and columns 2-45)
    lit = [bool(v.max() > 0.1) for v in tta_views(y, "tencrop")[::2]]
    assert lit == [False, False, False, True, False]
    # the centre crop is centred: a left-right symmetric face gives a symmetric centre view
    sym = torch.rand(1, 1, 48, 24, generator=torch.Generator().manual_seed(1))
    sym = torch.cat([sym, torch.flip(sym, dims=(3,))], dim=3)
    centre = tta_views(sym, "tencrop")[8]
    torch.testing.assert_close(centre, torch.flip(centre, dims=(3,)))


def test_tta_probs_average_the_views_softmax():
    x = torch.rand(2, 1, 48, 48, generator=torch.Generator().manual_seed(2))
    weight = torch.randn(48 * 48, 7, generator=torch.Generator().manual_seed(3))

    def logits(view: torch.Tensor) -> torch.Tensor:
        return view.flatten(1) @ weight

    expected = torch.stack([torch.softmax(logits(v), 1) for v in tta_views(x, "tencrop")]).mean(0)
    torch.testing.assert_close(tta_probs(x, logits, "tencrop"), expected)
    assert torch.allclose(tta_probs(x, logits, "tencrop").sum(1), torch.ones(2))


def test_unknown_mode_is_named():
    with pytest.raises(ValueError, match="'tenfold'"):
        tta_views(torch.zeros(1, 1, 48, 48), "tenfold")
