import json

import pytest
import torch

from mien.errors import CheckpointError, ModelError
from mien.models import create_model
from mien.train.checkpoint import load_model, optimizer_state, read_checkpoint, save_checkpoint

SPEC = {"widths": [8, 8, 16, 16], "blocks": [1, 1, 1, 1]}


def _meta(model, epoch=0):
    return {"model": model.spec, "class_names": ["a", "b", "c"], "normalization": {"mean": 0.5, "std": 0.25},
            "epoch": epoch, "metrics": {}}


def test_round_trip_with_optimizer_state(tmp_path):
    model = create_model("resnet_small", num_classes=3, **SPEC)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(2, 1, 48, 48)).sum().backward()
    opt.step()
    save_checkpoint(tmp_path / "last", model=model, optimizer=opt, meta=_meta(model, epoch=3))
    tensors, meta = read_checkpoint(tmp_path / "last.safetensors")
    assert meta["epoch"] == 3 and meta["format"].startswith("mien-checkpoint")
    params = list(create_model("resnet_small", num_classes=3, **SPEC).parameters())
    fresh = torch.optim.AdamW(params, lr=1e-3)
    fresh.load_state_dict(optimizer_state(tensors, meta))
    for old, new in zip(model.parameters(), params, strict=True):
        for key in ("step", "exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(fresh.state[new][key], opt.state[old][key])
    loaded, _ = load_model(tmp_path / "last.json")
    model.eval()
    x = torch.randn(2, 1, 48, 48)
    torch.testing.assert_close(loaded(x), model(x))


def test_mismatched_pair_is_detected(tmp_path):
    model = create_model("resnet_small", num_classes=3, **SPEC)
    save_checkpoint(tmp_path / "ck", model=model, meta=_meta(model, epoch=1))
    sidecar = json.loads((tmp_path / "ck.json").read_text())
    sidecar["epoch"] = 2  # as if killed between the two renames of a later save
    (tmp_path / "ck.json").write_text(json.dumps(sidecar))
    with pytest.raises(CheckpointError, match="do not match"):
        read_checkpoint(tmp_path / "ck")


def test_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "missing.safetensors")
    with pytest.raises(CheckpointError, match="no best checkpoint"):
        load_model(tmp_path)
    model = create_model("resnet_small", num_classes=3, **SPEC)
    save_checkpoint(tmp_path / "ck", model=model, meta=_meta(model))
    (tmp_path / "ck.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CheckpointError, match="not a mien checkpoint"):
        read_checkpoint(tmp_path / "ck")
    save_checkpoint(tmp_path / "bad", model=model, meta=_meta(model) | {"model": {**model.spec, "name": "nope"}})
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        load_model(tmp_path / "bad")


def test_files_are_not_pickles(tmp_path):
    model = create_model("resnet_small", num_classes=3, **SPEC)
    path = save_checkpoint(tmp_path / "ck", model=model, meta=_meta(model))
    head = path.read_bytes()[:2]
    assert head != b"\x80\x02" and not path.read_bytes().startswith(b"PK")  # neither pickle nor torch zip


def test_weights_files_are_readable_by_every_user(tmp_path):
    # safetensors writes 0600; a wheel built from shipped weights so written would lock other users out
    model = create_model("resnet_small", num_classes=3, **SPEC)
    path = save_checkpoint(tmp_path / "best", model=model, meta=_meta(model))
    assert path.stat().st_mode & 0o777 == 0o644
