"""Stored-weight rounding for shipping: int8 per output channel, float16 elsewhere, back to float32."""

import pytest
import torch

from mien.errors import CheckpointError
from mien.models import create_model
from mien.train.checkpoint import read_checkpoint, save_checkpoint, write_weights
from mien.train.quantize import SCALE_SUFFIX, dequantize, quantize


def _state(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"model.conv.weight": torch.randn(16, 3, 3, 3, generator=g) * torch.linspace(0.01, 2, 16).view(-1, 1, 1, 1),
            "model.fc.weight": torch.randn(7, 32, generator=g), "model.fc.bias": torch.randn(7, generator=g),
            "model.bn.num_batches_tracked": torch.tensor(5)}


def test_int8_keeps_every_weight_within_half_a_step_of_its_channel_scale():
    state = _state()
    stored = quantize(state, "int8")
    assert stored["model.conv.weight"].dtype == torch.int8 and stored["model.fc.weight"].dtype == torch.int8
    assert stored["model.conv.weight" + SCALE_SUFFIX].shape == (16,)
    assert stored["model.fc.bias"].dtype == torch.float16  # 1-D tensors are only halved
    assert stored["model.bn.num_batches_tracked"].dtype == torch.int64
    back = dequantize(stored)
    assert set(back) == set(state) and all(back[k].dtype == v.dtype for k, v in state.items() if k.endswith("weight"))
    for key in ("model.conv.weight", "model.fc.weight"):
        w = state[key]
        step = w.abs().flatten(1).amax(1) / 127  # per channel: small channels keep a small step
        err = (back[key] - w).abs().flatten(1).amax(1)
        assert torch.all(err <= step / 2 + 1e-7)
        # each channel's largest weight is exactly representable
        assert torch.allclose(back[key].abs().flatten(1).amax(1), w.abs().flatten(1).amax(1), rtol=1e-6)


def test_an_all_zero_channel_survives_and_float32_storage_changes_nothing():
    state = {"model.w": torch.zeros(3, 4)}
    state["model.w"][1] = torch.tensor([0.5, -1.0, 0.25, 0.0])
    back = dequantize(quantize(state, "int8"))["model.w"]
    assert torch.equal(back[0], torch.zeros(4)) and torch.allclose(back[1], state["model.w"][1], atol=1 / 254)
    plain = _state()
    assert all(torch.equal(quantize(plain, "float32")[k], v) for k, v in plain.items())


def test_bad_storage_and_broken_scales_are_named():
    with pytest.raises(CheckpointError, match="'int4'"):
        quantize(_state(), "int4")
    stored = quantize(_state(), "int8")
    with pytest.raises(CheckpointError, match="already quantized"):
        quantize(stored, "int8")
    orphan = {k: v for k, v in stored.items() if k != "model.fc.weight"}
    with pytest.raises(CheckpointError, match="model.fc.weight"):
        dequantize(orphan)
    wrong = {**stored, "model.fc.weight" + SCALE_SUFFIX: torch.ones(3)}
    with pytest.raises(CheckpointError, match="7 output channels|3 output channels"):
        dequantize(wrong)


def test_an_int8_checkpoint_reads_back_as_float32_and_predicts_like_the_original(tmp_path):
    def net():
        return create_model("resnet_small", num_classes=7, in_chans=1, widths=[8, 8, 16, 16], blocks=[1, 1, 1, 1])

    original = net().eval()
    path = save_checkpoint(tmp_path / "m", model=original, meta={"epoch": 0})
    tensors, _ = read_checkpoint(path)
    write_weights(path, quantize(tensors, "int8"), epoch=0)
    back, _ = read_checkpoint(path)
    assert set(back) == set(tensors)
    assert all(back[k].dtype == torch.float32 for k, v in tensors.items() if v.is_floating_point() and v.ndim >= 2)
    rounded = net().eval()
    rounded.load_state_dict({k[len("model."):]: v for k, v in back.items()})
    x = torch.randn(4, 1, 48, 48, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(rounded(x).softmax(1), original(x).softmax(1), atol=0.02)
