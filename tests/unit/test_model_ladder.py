"""The reports' model ladder: every registered model end to end through the project's own functions
(forward at its declared input, backward, Grad-CAM layer, checkpoint round trip, ONNX export, the
input pipeline), plus what each ladder architecture promises. Inputs are batches of 1-2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mien.data.pipeline import Normalization, model_input
from mien.errors import DataError, ModelError
from mien.labels import EMOTIONS
from mien.models import create_model, gradcam_target, list_models
from mien.models.layers import EDGE_KERNELS
from mien.train.checkpoint import load_model, save_checkpoint
from mien.train.loop import InputSpec

LADDER = ["baseline_cnn", "bn_cnn", "edge_cnn", "simple_resnet", "cbam_cnn", "resnet18", "mobilenetv2",
          "inception_v3", "vit_tiny", "vit_tiny_p4_48", "deep_cnn"]
SLOW = {"inception_v3"}  # 224x224 input, 22M parameters: several seconds per test here
MODELS = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in list_models()]
NORM = Normalization(mean=0.5, std=0.25)


def _create(name: str, *, seed: int = 0, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    return create_model(name, **kwargs)


def _faces(n: int, *, seed: int = 0) -> torch.Tensor:
    """(n, 1, 48, 48) float faces in [0, 1], as the training loop hands them to InputSpec."""
    return torch.rand(n, 1, 48, 48, generator=torch.Generator().manual_seed(seed))


def test_every_ladder_model_is_registered() -> None:
    assert set(LADDER) <= set(list_models())


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_and_gradcam_at_the_declared_input(name: str) -> None:
    model = _create(name).train()
    assert isinstance(model.input_size, tuple) and len(model.input_size) == 2 and model.in_chans == 1
    x = InputSpec.for_model(model, NORM, channels_last=False)(_faces(2))
    assert x.shape == (2, model.in_chans, *model.input_size)
    maps: list[tuple[torch.Tensor, int]] = []
    handle = gradcam_target(model).register_forward_hook(lambda _m, _i, out: maps.append((out, out._version)))
    try:
        logits = model(x)
    finally:
        handle.remove()
    assert logits.shape == (2, 7) and torch.isfinite(logits).all()
    (act, version), = maps
    # Grad-CAM reads the activation after the pass: nothing later (an in-place ReLU) may overwrite it.
    assert act._version == version
    act.retain_grad()
    nn.functional.cross_entropy(logits, torch.tensor([1, 4])).backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable
    for pname, p in trainable:
        assert p.grad is not None, f"{name}.{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}.{pname} has a non-finite gradient"
    assert act.ndim == 4 and act.shape[0] == 2 and min(act.shape[2:]) > 1 and act.grad.abs().sum() > 0


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("name", MODELS)
def test_checkpoint_round_trip_onnx_export_and_inference(name: str, tmp_path: Path) -> None:
    """save_checkpoint -> load_model, export_onnx and the torch backend give the model's own logits."""
    import onnxruntime as ort

    from mien.export import export_onnx
    from mien.infer.backends import TorchBackend

    model = _create(name).train()
    model(InputSpec.for_model(model, NORM, channels_last=False)(_faces(2, seed=3)))  # move BN statistics
    model.eval()
    meta = {"model": model.spec, "class_names": list(EMOTIONS), "normalization": NORM.to_dict(),
            "input_size": list(model.input_size), "epoch": 0}
    path = save_checkpoint(tmp_path / "best", model=model, meta=meta)
    loaded, loaded_meta = load_model(path)
    assert (loaded.input_size, loaded.in_chans) == (model.input_size, model.in_chans)
    x = InputSpec.for_model(loaded, NORM, channels_last=False)(_faces(3, seed=5))
    with torch.no_grad():
        want = model(x)
        # The equality below proves the stored weights were loaded: a rebuild without them differs.
        assert not torch.equal(_create(name, seed=1).eval()(x), want)
        assert torch.equal(loaded(x), want)

    onnx_path = export_onnx(path, tmp_path / "model.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x.numpy()})  # batch 3: the export traced batch 2, its batch axis is dynamic
    assert got.shape == (3, 7)
    np.testing.assert_allclose(got, want.numpy(), atol=1e-4, rtol=0)

    # Inference resizes 48x48 crops to the checkpoint's declared input and matches the model.
    crops = (_faces(2, seed=5)[:, 0] * 255).round().to(torch.uint8).numpy()
    probs = TorchBackend(path).probs(crops)
    x_crops = InputSpec.for_model(model, NORM, channels_last=False)(torch.from_numpy(crops)[:, None].float() / 255)
    with torch.no_grad():
        np.testing.assert_allclose(probs, model(x_crops).softmax(1).numpy(), atol=1e-4)


@pytest.mark.parametrize("name", ["resnet18", "vit_tiny", "edge_cnn"])
def test_channel_mismatch_is_an_error_and_gray_repeats_for_rgb_models(name: str) -> None:
    gray = _create(name)
    with pytest.raises(DataError, match="cannot map 3-channel input to a 1-channel model"):
        model_input(torch.rand(1, 3, 48, 48), normalization=NORM, input_size=gray.input_size, in_chans=1)
    rgb = _create(name, in_chans=3).eval()
    x = InputSpec.for_model(rgb, NORM, channels_last=False)(_faces(1))
    assert x.shape == (1, 3, *rgb.input_size) and torch.equal(x[:, 0], x[:, 2])
    with torch.no_grad():
        assert rgb(x).shape == (1, 7)


def test_fixed_size_heads_reject_a_wrong_input_size() -> None:
    # Flatten + Linear heads and ViT position embeddings cannot take other sizes: they raise, never guess.
    for name in ("bn_cnn", "cbam_cnn", "vit_tiny"):
        model = _create(name).eval()
        with pytest.raises((RuntimeError, AssertionError)), torch.no_grad():
            model(torch.zeros(1, 1, 40, 40))


def test_checkpoint_whose_recorded_input_size_disagrees_with_the_model_is_refused(tmp_path: Path) -> None:
    from mien.errors import CheckpointError

    model = _create("resnet18")
    meta = {"model": model.spec, "class_names": list(EMOTIONS), "normalization": NORM.to_dict(),
            "input_size": [224, 224], "epoch": 0}
    with pytest.raises(CheckpointError, match="input_size"):
        load_model(save_checkpoint(tmp_path / "best", model=model, meta=meta))


# ---- the architectures ----

def _convs(model: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_channels, m.out_channels) for m in model.modules() if isinstance(m, nn.Conv2d)]


def _linears(model: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]


def test_bn_cnn_is_report_003() -> None:
    model = _create("bn_cnn")
    assert _convs(model) == [(1, 32), (32, 64), (64, 128)]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 3
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 3
    assert _linears(model) == [(128 * 6 * 6, 512), (512, 7)]


def test_fixed_kernel_layer_is_not_trainable_and_computes_the_named_filters() -> None:
    model = _create("edge_cnn")
    assert list(EDGE_KERNELS) == ["sobel_x", "sobel_y", "laplacian", "sobel_diag", "gaussian"]
    assert not any("kernels" in n for n, _ in model.named_parameters())
    # A horizontal ramp: Sobel x sees slope 1 * (1 + 2 + 1) * 2 = 8 inside, Sobel y and Laplacian 0.
    ramp = torch.arange(8.0).repeat(8, 1)[None, None]
    out = model.kernels(ramp)[0, :, 2:-2, 2:-2]
    assert torch.allclose(out[0], torch.full_like(out[0], 8.0))
    assert torch.allclose(out[1], torch.zeros_like(out[1])) and torch.allclose(out[2], torch.zeros_like(out[2]))
    torch.testing.assert_close(out[4], ramp[0, 0, 2:-2, 2:-2])  # the Gaussian keeps a linear ramp
    rgb = _create("edge_cnn", in_chans=3)  # three equal channels give the grayscale responses
    torch.testing.assert_close(rgb.kernels(ramp.expand(-1, 3, -1, -1)), model.kernels(ramp))
    before = model.kernels.weight.clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    nn.functional.cross_entropy(model(torch.randn(2, 1, 48, 48)), torch.tensor([0, 1])).backward()
    optimizer.step()
    assert torch.equal(model.kernels.weight, before) and "kernels.weight" in model.state_dict()
    assert _convs(model) == [(5, 32), (32, 64), (64, 128)]


def test_simple_resnet_and_cbam_cnn_are_report_002() -> None:
    resnet = _create("simple_resnet")
    assert isinstance(resnet.kernels, nn.Module) and resnet.stem.conv.out_channels == 32
    assert [b.conv2.out_channels for b in resnet.blocks] == [64, 128, 256]
    assert isinstance(resnet.pool, nn.AdaptiveAvgPool2d) and _linears(resnet) == [(256, 7)]
    cbam = _create("cbam_cnn")
    assert [b.conv.out_channels for b in cbam.features] == [64, 128, 256]
    assert all(hasattr(b, "cbam") for b in cbam.features)
    assert _linears(cbam) == [(256 * 6 * 6, 512), (512, 7)]
    assert cbam.classifier.dropout.p == 0.5
    # Attention only rescales: channel and spatial gates lie in (0, 1).
    x = torch.rand(2, 64, 12, 12) + 0.1
    with torch.no_grad():
        y = cbam.features.block1.cbam(x)
    assert y.shape == x.shape and (y > 0).all() and (y < x).all()


def test_deep_cnn_uses_bn_dropout_and_global_average_pooling() -> None:
    model = _create("deep_cnn")
    assert len(_convs(model)) == 8 and sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 8
    assert isinstance(model.pool, nn.AdaptiveAvgPool2d) and _linears(model) == [(256, 256), (256, 7)]
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 4


def test_timm_models_are_the_reports_architectures() -> None:
    resnet = _create("resnet18")
    assert resnet.timm_name == "resnet18" and resnet.backbone.conv1.in_channels == 1
    assert resnet.backbone.drop_rate == 0.5 and resnet.input_size == (48, 48)
    assert _create("resnet18", input_size=224).input_size == (224, 224)
    assert _create("mobilenetv2").timm_name == "mobilenetv2_100"
    vit = _create("vit_tiny")
    assert vit.input_size == (224, 224) and vit.backbone.patch_embed.grid_size == (14, 14)
    assert len(vit.backbone.blocks) == 12 and vit.backbone.embed_dim == 192
    small = _create("vit_tiny_p4_48").eval()
    assert small.input_size == (48, 48) and small.backbone.patch_embed.grid_size == (12, 12)
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():  # the Grad-CAM detour through token_grid changes nothing
        torch.testing.assert_close(small(x), small.backbone(x), rtol=0, atol=1e-5)


def test_inception_v3_declares_its_large_input_and_refuses_too_small_ones() -> None:
    assert _create("inception_v3").input_size == (224, 224)  # report 001's input
    assert _create("inception_v3", input_size=299).input_size == (299, 299)
    with pytest.raises(ModelError, match="inception_v3 input_size must be >= 75"):
        create_model("inception_v3", input_size=48)


@pytest.mark.parametrize(("name", "kwargs", "match"), [
    ("bn_cnn", {"widths": [32, 64]}, r"widths needs exactly 3 values"),
    ("edge_cnn", {"hidden": 0}, "hidden must be a positive integer"),
    ("cbam_cnn", {"dropout": 1.0}, r"dropout must lie in \[0, 1\)"),
    ("deep_cnn", {"widths": "wide"}, "non-empty list"),
    ("simple_resnet", {"stem": -1}, "stem must be a positive integer"),
    ("resnet18", {"dropout": -0.5}, "dropout must lie in"),
    ("mobilenetv2", {"input_size": 16}, "input_size must be >= 33"),
])
def test_bad_arguments_name_the_model_and_the_value(name: str, kwargs: dict, match: str) -> None:
    with pytest.raises(ModelError, match=f"{name} .*{match}"):
        create_model(name, **kwargs)


def test_importing_the_registry_does_not_import_timm() -> None:
    import subprocess
    import sys

    code = "import sys, mien.models; print('timm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
