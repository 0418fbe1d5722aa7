"""Batch-norm folding for inference: same outputs for every registered model, the original untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mien.errors import ModelError
from mien.infer.fold import fold_batchnorm, inference_network
from mien.models import create_model, list_models

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def _trained_like(name: str) -> nn.Module:
    """A registered model in eval mode whose batch norms hold non-trivial statistics and affines,
    as after training (fresh ones are identities, which any folding would reproduce)."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, in_chans=1)
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, NORMS):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return model.eval()


def _faces(model: nn.Module, batch: int = 3) -> torch.Tensor:
    return torch.randn(batch, model.in_chans, *model.input_size, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("name", list_models())
def test_folding_keeps_every_models_outputs_and_leaves_the_original_alone(name: str) -> None:
    model = _trained_like(name)
    norms_before = sum(isinstance(m, NORMS) for m in model.modules())
    x = _faces(model)
    with torch.inference_mode():
        want = model(x)
        folded = fold_batchnorm(model)
        got = folded(x)
    assert not any(isinstance(m, NORMS) for m in folded.modules())
    assert sum(isinstance(m, NORMS) for m in model.modules()) == norms_before  # Grad-CAM still sees it
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["resnet_small", "deep_cnn", "cbam_cnn"])
def test_bf16_inference_network_runs_in_bf16_close_to_fp32(name: str) -> None:
    model = _trained_like(name)
    net = inference_network(model, "bf16")
    assert {p.dtype for p in net.parameters()} == {torch.bfloat16}
    assert next(model.parameters()).dtype == torch.float32
    x = _faces(model, batch=8)
    with torch.inference_mode():
        got = net(x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last))
        want = model(x)
    assert got.dtype == torch.bfloat16
    # bf16 keeps ~3 significant digits: probabilities agree to a few hundredths, not exactly
    assert 0 < (got.float().softmax(1) - want.softmax(1)).abs().max() < 0.05


def test_an_untraceable_model_with_batch_norms_fails_by_name() -> None:
    class DataDependent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.bn(self.conv(x))
            return y if y.sum() > 0 else -y  # control flow on values: fx cannot trace it

    with pytest.raises(ModelError, match="cannot fold the batch norms of DataDependent"):
        fold_batchnorm(DataDependent().eval())


def test_precision_must_be_resolved_first() -> None:
    with pytest.raises(ModelError, match="got 'auto'"):
        inference_network(_trained_like("baseline_cnn"), "auto")
