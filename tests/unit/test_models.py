"""The model contract, checked for every registered model, and the registry itself.

Backward, the Grad-CAM layer, the checkpoint round trip and the ONNX export of every registered
model are in test_model_ladder.py, through the project's own input pipeline and exporter."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from mien.errors import ModelError
from mien.models import create_model, gradcam_target, list_models, model_from_spec, register_model
from mien.models import registry

MODELS = list_models()


def _inputs(model: nn.Module, batch: int, *, seed: int = 0) -> torch.Tensor:
    """(batch, in_chans, *input_size) standard-normal input, like normalised faces."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, model.in_chans, *model.input_size, generator=g)


def _rebuild(spec: dict[str, Any]) -> nn.Module:
    """A fresh model from `model.spec` (as a checkpoint would rebuild it)."""
    return model_from_spec(spec)


def _create(name: str, **kwargs: Any) -> nn.Module:
    torch.manual_seed(0)
    return create_model(name, **kwargs)


# ---- the model contract, for every registered model ----

@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(("num_classes", "in_chans"), [(7, 1), (6, 1), (7, 3)])
def test_forward_gives_raw_logits_of_shape_batch_by_classes(name: str, num_classes: int, in_chans: int) -> None:
    try:
        model = _create(name, num_classes=num_classes, in_chans=in_chans).eval()
    except ModelError as exc:
        if in_chans == 1:
            raise
        pytest.skip(f"{name} does not take in_chans={in_chans}: {exc}")
    assert model.in_chans == in_chans
    with torch.no_grad():
        logits = model(_inputs(model, 3))
    assert logits.shape == (3, num_classes)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    # Raw logits, no softmax inside: rows are not probability distributions.
    assert not torch.allclose(logits.sum(dim=1), torch.ones(3), atol=1e-3)


@pytest.mark.parametrize("name", MODELS)
def test_a_fresh_model_starts_near_chance_loss(name: str) -> None:
    # A head initialised for 1,000 classes gives 7-class logits of std ~4 and a loss of ~6: training
    # then stalls on the majority class (seen with timm's mobilenetv2 and inception_v3).
    model = _create(name).train()
    x = _inputs(model, 16)
    with torch.no_grad():
        logits = model(x)
    loss = nn.functional.cross_entropy(logits, torch.arange(16) % 7).item()
    assert logits.std().item() < 1.5, f"{name} starts with logit std {logits.std().item():.2f}"
    assert abs(loss - math.log(7)) < 0.6, f"{name} starts at loss {loss:.2f}, chance is {math.log(7):.2f}"


@pytest.mark.parametrize("name", MODELS)
def test_channels_last_gives_the_same_logits_as_contiguous(name: str) -> None:
    model = _create(name).eval()
    x = _inputs(model, 3)
    with torch.no_grad():
        want = model(x)
        model = model.to(memory_format=torch.channels_last)
        got = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", MODELS)
def test_bf16_autocast_trains_with_finite_values(name: str) -> None:
    from mien.train.hardware import cpu_has_native_bf16

    model = _create(name).train().to(memory_format=torch.channels_last)
    if not cpu_has_native_bf16() and max(model.input_size) > 64:
        # Emulated bf16 runs these 224-299 px nets ~100x slower than fp32 (10 s for inception_v3 on
        # an AVX2 EPYC), and `precision: auto` never trains them in bf16 there.
        pytest.skip(f"bf16 is emulated on this CPU and {name} takes {model.input_size} input; "
                    "runs on CPUs with AMX / AVX512-BF16")
    x = _inputs(model, 2).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, torch.tensor([0, 3]))
    assert logits.dtype == torch.bfloat16 and logits.shape == (2, 7) and torch.isfinite(logits.float()).all()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


# ---- the two built-in architectures ----

def test_baseline_cnn_is_report_000_table_1() -> None:
    model = _create("baseline_cnn")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (1, 32, (3, 3), (1, 1)), (32, 64, (3, 3), (1, 1)), (64, 128, (3, 3), (1, 1))]
    assert [(m.in_features, m.out_features) for m in linears] == [(4608, 256), (256, 7)]
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.5]
    with torch.no_grad():
        assert model.features(_inputs(model, 1)).shape == (1, 128, 6, 6)
    assert sum(p.numel() for p in model.parameters()) == 1_274_375
    # Grad-CAM looks at the last conv's 128 maps (raw, or rectified and pooled).
    maps = []
    handle = gradcam_target(model).register_forward_hook(lambda _m, _i, out: maps.append(out.shape))
    with torch.no_grad():
        model(_inputs(model, 1))
    handle.remove()
    assert maps[0][:2] == (1, 128)


def test_resnet_small_sizes_and_resolutions() -> None:
    model = _create("resnet_small")
    assert sum(p.numel() for p in model.parameters()) == 2_796_263
    small = _create("resnet_small", widths=[16, 32, 64, 128], blocks=[2, 2, 2, 2])  # lists, as YAML gives them
    assert sum(p.numel() for p in small.parameters()) == 700_791
    sizes = []
    hooks = [stage.register_forward_hook(lambda _m, _i, out: sizes.append(tuple(out.shape[1:])))
             for stage in small.stages]
    with torch.no_grad():
        small(_inputs(small, 1))
    for h in hooks:
        h.remove()
    # Full resolution stem (no 7x7/stride-2, no maxpool), then 48 -> 24 -> 12 -> 6.
    assert sizes == [(16, 48, 48), (32, 24, 24), (64, 12, 12), (128, 6, 6)]
    assert gradcam_target(small) is small.stages[-1][-1]


def test_resnet_small_starts_every_residual_branch_active() -> None:
    # A zero-initialised last BN per block stalled FER2013 training (see ResNetSmall._init_weights).
    model = _create("resnet_small", widths=(8, 16), blocks=(1, 2)).eval()
    assert len(model.stages) == 2 and [len(s) for s in model.stages] == [1, 2]
    x = torch.randn(2, 8, 12, 12)
    block = model.stages[0][0]
    assert torch.all(block.bn2.weight == 1) and torch.all(block.bn1.weight == 1)
    assert not torch.allclose(block(x), block.shortcut(x).relu())


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"widths": (32, 64), "blocks": (2, 2, 2)}, "one block count per width"),
    ({"widths": (32, 0)}, r"positive integers, got \[32, 0\]"),
    ({"blocks": "2222"}, "non-empty list"),
    ({"dropout": 1.0}, "dropout must lie in"),
])
def test_resnet_small_rejects_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ModelError, match=match):
        create_model("resnet_small", **kwargs)


def test_baseline_cnn_rejects_bad_dropout() -> None:
    with pytest.raises(ModelError, match="dropout must lie in"):
        create_model("baseline_cnn", dropout=-0.1)


# ---- the registry ----

def test_duplicate_registration_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_BUILDERS", dict(registry._BUILDERS))

    def tiny_test_model(*, num_classes: int = 7, in_chans: int = 1) -> nn.Module:
        model = nn.Sequential(nn.Flatten(), nn.Linear(in_chans * 4, num_classes))
        model.gradcam_layer, model.input_size, model.in_chans = "0", (2, 2), in_chans
        return model

    register_model(tiny_test_model)
    assert "tiny_test_model" in list_models()
    with pytest.raises(ModelError, match="'tiny_test_model' is already registered"):
        register_model(tiny_test_model)
    for name in MODELS:
        builder = registry._BUILDERS[name]
        with pytest.raises(ModelError, match=f"'{name}' is already registered"):
            register_model(builder)


def test_unknown_model_name_lists_the_registered_ones() -> None:
    with pytest.raises(ModelError, match="unknown model 'resnet_tiny'") as info:
        create_model("resnet_tiny")
    assert all(name in str(info.value) for name in MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_unknown_model_argument_raises(name: str) -> None:
    with pytest.raises(ModelError, match=f"model '{name}' has no argument 'depth_multiplier'"):
        create_model(name, depth_multiplier=2)


@pytest.mark.parametrize(("num_classes", "in_chans"), [(1, 1), (7, 0)])
def test_bad_class_or_channel_count_raises(num_classes: int, in_chans: int) -> None:
    with pytest.raises(ModelError, match="must be >= "):
        create_model("baseline_cnn", num_classes=num_classes, in_chans=in_chans)


def test_spec_records_how_the_model_was_built() -> None:
    model = create_model("resnet_small", num_classes=6, widths=[16, 32, 64, 128], dropout=0.1)
    assert model.spec == {"name": "resnet_small", "num_classes": 6, "in_chans": 1,
                          "kwargs": {"widths": [16, 32, 64, 128], "dropout": 0.1}}
    rebuilt = _rebuild(model.spec)
    assert rebuilt.spec == model.spec
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in model.parameters()]
