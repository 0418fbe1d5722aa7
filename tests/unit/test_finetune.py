"""Transfer learning: pretrained weights from a local safetensors file, frozen backbone, top-N
unfreezing, learning-rate groups, and training runs that resume across the stage switch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from conftest import make_faces
from mien.config import FinetuneConfig, OptimConfig, RunConfig, apply_overrides
from mien.data.pipeline import DataSplits
from mien.errors import CheckpointError, ConfigError, ModelError
from mien.models import create_model
from mien.train import fit
from mien.train.checkpoint import read_checkpoint, model_state, save_checkpoint
from mien.train.finetune import (apply_stage, backbone_layers, freeze_backbone, head_name, load_pretrained,
                                 param_groups, unfreeze_top)
from mien.train.optim import build_optimizer

TINY_BN = ["model.name=bn_cnn", "model.kwargs.widths=[4,8,8]", "train.batch_size=32", "train.eval_batch_size=64",
           "augment.rotate=5"]


def _imagenet_like(arch: str, **kwargs) -> dict[str, torch.Tensor]:
    """A 3-channel, 1000-class timm state dict, as ImageNet weights are saved (random values here)."""
    import timm

    torch.manual_seed(123)
    return timm.create_model(arch, pretrained=False, num_classes=1000, in_chans=3, **kwargs).state_dict()


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, *, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    model.train()
    x = torch.randn(4, model.in_chans, *model.input_size, generator=g)
    loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3]))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


# ---- load_pretrained ----

def test_imagenet_resnet18_weights_load_with_a_grayscale_first_conv_and_a_new_head(tmp_path: Path) -> None:
    state = _imagenet_like("resnet18")
    path = tmp_path / "resnet18_imagenet.safetensors"
    save_file(state, str(path))
    torch.manual_seed(0)
    model = create_model("resnet18", in_chans=1, num_classes=7)
    head_before = model.backbone.fc.weight.detach().clone()
    report = load_pretrained(model, path)
    own = model.backbone.state_dict()
    for key in ("layer3.1.conv2.weight", "layer4.0.bn1.running_var", "bn1.bias"):
        assert torch.equal(own[key], state[key]), key
    # Grayscale: timm's adapt_input_conv sums the RGB filters (a gray image gives the same response).
    torch.testing.assert_close(own["conv1.weight"], state["conv1.weight"].sum(dim=1, keepdim=True))
    assert report.adapted == ("conv1.weight",)
    assert set(report.skipped_head) == {"fc.weight", "fc.bias"}
    assert torch.equal(model.backbone.fc.weight, head_before)
    assert len(report.loaded) == len(state) - 2


def test_vit_p16_224_weights_resample_into_the_48x48_patch4_variant(tmp_path: Path) -> None:
    state = _imagenet_like("vit_tiny_patch16_224")
    path = tmp_path / "vit.safetensors"
    save_file(state, str(path))
    model = create_model("vit_tiny_p4_48")
    report = load_pretrained(model, path)
    own = model.backbone.state_dict()
    assert torch.equal(own["blocks.5.attn.qkv.weight"], state["blocks.5.attn.qkv.weight"])
    assert own["patch_embed.proj.weight"].shape == (192, 1, 4, 4)
    assert own["pos_embed"].shape == (1, 1 + 12 * 12, 192)
    assert torch.equal(own["pos_embed"][:, 0], state["pos_embed"][:, 0])  # class token position kept
    assert "patch_embed.proj.weight" in report.loaded and set(report.skipped_head) == {"head.weight", "head.bias"}
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(2, 1, 48, 48))).all()


def test_a_mien_checkpoint_is_pretrained_weights_too(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = create_model("bn_cnn", widths=[4, 8, 8], num_classes=7)
    save_checkpoint(tmp_path / "best", model=source, meta={"model": source.spec, "epoch": 3})
    target = create_model("bn_cnn", widths=[4, 8, 8], num_classes=6)  # six classes: a new head
    report = load_pretrained(target, tmp_path / "best.safetensors")
    assert torch.equal(target.features.block2.conv.weight, source.features.block2.conv.weight)
    assert torch.equal(target.classifier.fc1.weight, source.classifier.fc1.weight)  # same shape: loaded
    assert set(report.skipped_head) == {"classifier.fc2.weight", "classifier.fc2.bias"}


def test_a_shipped_model_name_starts_a_warm_restart_from_its_dequantized_weights() -> None:
    from mien.train.checkpoint import load_model
    from mien.weights import list_shipped, shipped_path

    int8 = next((n for n in list_shipped() if read_checkpoint(shipped_path(n))[1]["shipped"].get("weights_dtype") == "int8"), None)
    if int8 is None:
        pytest.skip("no int8-stored model is shipped in this checkout")
    shipped, meta = load_model(shipped_path(int8))
    target = create_model(meta["model"]["name"], **meta["model"].get("kwargs", {}))
    report = load_pretrained(target, int8)
    assert not report.skipped_head and not report.adapted
    for key, value in shipped.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_a_run_directory_names_its_best_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = create_model("bn_cnn", widths=[4, 8, 8], num_classes=7)
    save_checkpoint(tmp_path / "best", model=source, meta={"model": source.spec, "epoch": 3})
    target = create_model("bn_cnn", widths=[4, 8, 8], num_classes=7)
    load_pretrained(target, tmp_path)
    assert all(torch.equal(target.state_dict()[k], v) for k, v in source.state_dict().items())


def test_weights_that_do_not_fit_fail_loudly(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_pretrained(create_model("bn_cnn"), tmp_path / "nowhere.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="not a safetensors state dict"):
        load_pretrained(create_model("bn_cnn"), tmp_path / "junk.safetensors")
    torch.manual_seed(0)
    small = create_model("bn_cnn", widths=[4, 8, 8]).state_dict()
    with pytest.raises(CheckpointError, match=r"features.block1.conv.weight .* has shape \(4, 1, 3, 3\), "
                                              r"the model needs \(32, 1, 3, 3\)"):
        load_pretrained(create_model("bn_cnn"), state=small)
    with pytest.raises(CheckpointError, match="missing .*unexpected"):
        load_pretrained(create_model("edge_cnn"), state=small)


# ---- freezing and learning-rate groups ----

def test_frozen_backbone_is_unchanged_after_a_step_and_the_head_trains() -> None:
    torch.manual_seed(0)
    model = create_model("resnet18", input_size=48)
    frozen = freeze_backbone(model)
    assert frozen == sum(1 for n, _ in model.named_parameters() if not n.startswith("backbone.fc."))
    before = _snapshot(model)
    optimizer = build_optimizer(OptimConfig(name="adamw", lr=1e-2, weight_decay=0.1),
                                param_groups(model, lr=1e-2, backbone_lr_scale=0.1))
    _step(model, optimizer)
    after = model.state_dict()
    for key, value in before.items():
        if key.startswith("backbone.fc."):
            assert not torch.equal(after[key], value), f"head tensor {key} did not train"
        else:  # weights, weight decay and BN running statistics all held
            assert torch.equal(after[key], value), f"frozen tensor {key} changed"


def test_unfreezing_the_top_layers_trains_exactly_those() -> None:
    torch.manual_seed(0)
    model = create_model("bn_cnn", widths=[4, 8, 8])
    layers = [name for name, _ in backbone_layers(model)]
    assert layers == ["features.block1.conv", "features.block1.bn", "features.block2.conv", "features.block2.bn",
                      "features.block3.conv", "features.block3.bn"]
    freeze_backbone(model)
    assert unfreeze_top(model, 2) == ["features.block3.conv", "features.block3.bn"]
    before = _snapshot(model)
    optimizer = build_optimizer(OptimConfig(name="sgd", lr=0.1), param_groups(model, lr=0.1, backbone_lr_scale=0.5))
    _step(model, optimizer)
    after = model.state_dict()
    trains = ("features.block3.", "classifier.")
    for key, value in before.items():
        changed = not torch.equal(after[key], value)
        if key.endswith("num_batches_tracked"):
            continue
        assert changed == key.startswith(trains), key
    assert unfreeze_top(model, 0) == layers
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(ModelError, match="n >= 0"):
        unfreeze_top(model, -1)


def test_param_groups_give_the_backbone_the_lower_rate() -> None:
    model = create_model("mobilenetv2")
    groups = param_groups(model, lr=1e-3, backbone_lr_scale=0.1)
    assert [g["name"] for g in groups] == ["head", "backbone"]
    assert head_name(model) == "backbone.classifier"
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.backbone.classifier.parameters()}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    optimizer = build_optimizer(OptimConfig(name="adam", lr=1e-3), groups)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([1e-3, 1e-4])
    one = param_groups(model, lr=1e-3, backbone_lr_scale=1.0)
    assert len(one) == 1 and len(one[0]["params"]) == len(list(model.parameters()))


def test_head_defaults_to_the_last_linear_layer() -> None:
    assert head_name(create_model("baseline_cnn")) == "classifier.fc2"
    assert head_name(create_model("cbam_cnn")) == "classifier"


def test_apply_stage_follows_the_epoch() -> None:
    model = create_model("bn_cnn", widths=[4, 8, 8])
    cfg = FinetuneConfig(weights="w.safetensors", freeze_epochs=2, unfreeze_top=2)

    def trainable() -> set[str]:
        return {n.rsplit(".", 1)[0] for n, p in model.named_parameters() if p.requires_grad}

    head = {"classifier.fc1", "classifier.fc2"}
    assert apply_stage(model, cfg, 0) == "head only" and trainable() == head
    assert apply_stage(model, cfg, 2).startswith("head + top 2 layers")
    assert trainable() == head | {"features.block3.conv", "features.block3.bn"}
    assert apply_stage(model, FinetuneConfig(weights="w", freeze_epochs=1), 1) == "all layers"
    assert all(p.requires_grad for p in model.parameters())


# ---- config ----

@pytest.mark.parametrize(("overrides", "match"), [
    (["finetune.freeze_epochs=2"], "would freeze randomly initialised layers"),
    (["finetune.unfreeze_top=3"], "would freeze randomly initialised layers"),
    (["finetune.weights=a.safetensors", "finetune.hub=true"], "choose one"),
    (["finetune.weights=a.safetensors", "finetune.freeze_epochs=-1"], "freeze_epochs must be >= 0"),
    (["finetune.backbone_lr_scale=0"], "backbone_lr_scale must be > 0"),
    (["finetune.unfreeze_top=many"], "must be an integer"),
    (["finetune.layers=2"], "unknown config key finetune.layers"),
    (["model.name= "], "model.name must name a registered model"),
])
def test_finetune_config_is_validated(overrides: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        apply_overrides(RunConfig(), overrides)


# ---- training runs ----

def _splits() -> DataSplits:
    faces = make_faces(210, seed=0)
    return DataSplits(faces.subset(faces.usage == 0), faces.subset(faces.usage == 1), faces.subset(faces.usage == 2))


class Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(7)
    path = tmp_path_factory.mktemp("weights") / "bn_cnn.safetensors"
    save_file(create_model("bn_cnn", widths=[4, 8, 8], num_classes=7).state_dict(), str(path))
    return path


def _fit(tmp_path: Path, name: str, pretrained: Path, *overrides: str, **kw):  # noqa: ANN202
    cfg = apply_overrides(RunConfig(), [*TINY_BN, f"finetune.weights={pretrained}", *overrides])
    return fit(cfg, tmp_path / name, splits=_splits(), progress=False, log=kw.pop("log", lambda _line: None), **kw)


def test_fit_keeps_the_pretrained_backbone_while_frozen(tmp_path: Path, pretrained: Path) -> None:
    from safetensors.torch import load_file

    result = _fit(tmp_path, "frozen", pretrained, "train.epochs=2", "finetune.freeze_epochs=2")
    weights = load_file(str(pretrained))
    trained = model_state(read_checkpoint(result.run_dir / "last.safetensors")[0])
    for key, value in weights.items():
        same = torch.equal(trained[key], value)
        assert same == (not key.startswith("classifier.")) or key.endswith("num_batches_tracked"), key


def test_resume_across_the_stage_switch_matches_an_uninterrupted_run(tmp_path: Path, pretrained: Path) -> None:
    args = ("train.epochs=3", "finetune.freeze_epochs=1", "finetune.unfreeze_top=2",
            "finetune.backbone_lr_scale=0.1", "optim.name=adam", "optim.lr=0.003", "schedule.name=cosine")
    lines: list[str] = []
    full = _fit(tmp_path, "full", pretrained, *args, log=lines.append)
    assert any("finetune: epoch 1 trains head only" in line for line in lines)
    assert any("finetune: epoch 2 trains head + top 2 layers" in line for line in lines)
    assert any("pretrained weights from" in line for line in lines)

    def die_after_one(line: str) -> None:
        if line.startswith("epoch 1/"):
            raise Interrupt

    with pytest.raises(Interrupt):
        _fit(tmp_path, "cut", pretrained, *args, log=die_after_one)
    resumed = _fit(tmp_path, "cut", pretrained, *args, resume=True)
    keys = ("lr", "train_loss", "train_acc", "val_loss", "val_acc")
    for a, b in zip(full.history, resumed.history, strict=True):
        assert [a[k] for k in keys] == pytest.approx([b[k] for k in keys], rel=1e-5, abs=1e-6)
    for k, v in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, rtol=1e-4, atol=1e-5)
    _, meta = read_checkpoint(resumed.run_dir / "last.safetensors")
    lrs = [g["initial_lr"] for g in meta["optimizer"]["param_groups"]]  # the schedule's peak per group
    assert lrs == pytest.approx([0.003, 0.0003])
    # The blocks below the top two layers never trained; the top ones did.
    start = model_state(read_checkpoint(full.run_dir / "last.safetensors")[0])
    from safetensors.torch import load_file

    weights = load_file(str(pretrained))
    assert torch.equal(start["features.block1.conv.weight"], weights["features.block1.conv.weight"])
    assert not torch.equal(start["features.block3.conv.weight"], weights["features.block3.conv.weight"])
    assert np.isfinite([h["train_loss"] for h in full.history]).all()
