"""Transfer learning as free functions: pretrained weights, a frozen backbone, top-N unfreezing, LR groups.

Terms. The *head* is the submodule a model names in `head_layer` (else its last Linear layer); the
*backbone* is everything else. A backbone *layer* is a module with parameters of its own (a conv, a
BN, a Linear, a ViT's token embeddings), in registration order, which for every model here is forward
order, so "the top N layers" are the last N of that list (as Keras counts them in report 001).

A frozen layer keeps its weights (`requires_grad=False`) and, for batch norm, its running statistics:
frozen BN layers normalise with their stored statistics even in train mode, as Keras does for a
frozen base. The stage for an epoch is a pure function of the epoch (`apply_stage`), so a run resumed
on either side of the switch trains exactly as an uninterrupted one.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import FinetuneConfig
from ..errors import CheckpointError, ModelError

_MIEN_PREFIX = "model."  # tensors of a mien checkpoint (mien.train.checkpoint)


@dataclass(frozen=True)
class LoadReport:
    """What `load_pretrained` did: tensors copied, input conv adapted, head tensors left as built."""

    loaded: tuple[str, ...]
    adapted: tuple[str, ...]
    skipped_head: tuple[str, ...]

    def summary(self) -> str:
        return (f"{len(self.loaded)} tensors loaded" + (f", input conv adapted ({', '.join(self.adapted)})"
                                                         if self.adapted else "")
                + (f", new head ({len(self.skipped_head)} tensors)" if self.skipped_head else ""))


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def head_name(model: nn.Module) -> str:
    """Dotted path of the model's head: its `head_layer`, else its last Linear layer."""
    model = _unwrap(model)
    name = getattr(model, "head_layer", None)
    if name is None:
        linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ModelError(f"{type(model).__name__} declares no head_layer and has no Linear layer to train as head")
        name = linears[-1]
    model.get_submodule(name)  # a wrong name fails here, naming the path
    return name


def _in_head(name: str, head: str) -> bool:
    """Whether the module or tensor `name` lies in the head module `head`."""
    return name == head or name.startswith(head + ".")


def backbone_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every backbone module with parameters of its own, bottom to top."""
    model = _unwrap(model)
    head = head_name(model)
    return [(n, m) for n, m in model.named_modules()
            if not _in_head(n, head) and next(m.parameters(recurse=False), None) is not None]


def _hold_frozen_bn(module: nn.Module, _args: Any) -> None:
    # Forward pre-hook: a BN whose parameters are all frozen runs in eval mode, so its running
    # statistics neither drift nor are replaced by batch statistics (model.train() each epoch resets it).
    params = list(module.parameters(recurse=False))
    if module.training and params and not any(p.requires_grad for p in params):
        module.train(False)


def _install_bn_hooks(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not getattr(m, "_mien_holds_frozen", False):
            m.register_forward_pre_hook(_hold_frozen_bn)
            m._mien_holds_frozen = True


def freeze_backbone(model: nn.Module) -> int:
    """Freeze every backbone parameter and unfreeze the head; returns the number of frozen tensors."""
    model = _unwrap(model)
    head = head_name(model)
    frozen = 0
    for name, p in model.named_parameters():
        p.requires_grad_(_in_head(name, head))
        frozen += not p.requires_grad
    _install_bn_hooks(model)
    return frozen


def unfreeze_top(model: nn.Module, n: int) -> list[str]:
    """Unfreeze the top `n` backbone layers (0: all of them); returns their names, bottom to top."""
    if n < 0:
        raise ModelError(f"unfreeze_top needs n >= 0 (0 unfreezes every layer), got {n}")
    layers = backbone_layers(model)
    chosen = layers if n == 0 else layers[-n:]
    for _, m in chosen:
        for p in m.parameters(recurse=False):
            p.requires_grad_(True)
    return [name for name, _ in chosen]


def param_groups(model: nn.Module, *, lr: float, backbone_lr_scale: float) -> list[dict[str, Any]]:
    """Optimizer groups: [head at `lr`, backbone at `lr * backbone_lr_scale`], frozen ones included.

    With a scale of 1 it is one group of all parameters (what `model.parameters()` gives). Frozen
    parameters get no gradient, so optimizers skip them (weight decay included) until unfrozen;
    the groups never change, so optimizer and scheduler state resume across stages.
    """
    model = _unwrap(model)
    if backbone_lr_scale == 1.0:
        return [{"params": list(model.parameters())}]
    head = head_name(model)
    groups: dict[bool, list[nn.Parameter]] = {True: [], False: []}
    for name, p in model.named_parameters():
        groups[_in_head(name, head)].append(p)
    return [{"params": groups[True], "lr": lr, "name": "head"},
            {"params": groups[False], "lr": lr * backbone_lr_scale, "name": "backbone"}]


def apply_stage(model: nn.Module, cfg: FinetuneConfig, epoch: int) -> str:
    """Set which parameters train in (0-based) `epoch`; returns the stage, e.g. 'head only'."""
    if cfg.freeze_epochs == 0 and cfg.unfreeze_top == 0:
        for p in _unwrap(model).parameters():
            p.requires_grad_(True)
        return "all layers"
    freeze_backbone(model)
    if epoch < cfg.freeze_epochs:
        return "head only"
    names = unfreeze_top(model, cfg.unfreeze_top)
    return "all layers" if cfg.unfreeze_top == 0 else f"head + top {len(names)} layers (from {names[0]})"


def _read_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors `finetune.weights` names: a mien checkpoint (a shipped model name, a run directory
    or a file with its JSON sidecar; int8 storage comes back as float32), else a plain state dict."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ..weights import names_mien_checkpoint

    path = Path(path)
    # A shipped name or a checkpoint with its sidecar: warm restarts from a trained mien model.
    if names_mien_checkpoint(str(path)):
        from ..weights import resolve_model_source
        from .checkpoint import model_state, read_checkpoint

        tensors, _ = read_checkpoint(resolve_model_source(str(path)))
        return model_state(tensors)
    if not path.is_file():
        raise CheckpointError(f"pretrained weights file {path} does not exist (finetune.weights)")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"pretrained weights {path} are not a safetensors state dict: {exc}") from None
    if state and all(k.startswith(_MIEN_PREFIX) for k in state):
        state = {k[len(_MIEN_PREFIX):]: v for k, v in state.items()}  # a mien checkpoint's model tensors
    return state


def hub_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """ImageNet weights of a timm-backed model from the Hugging Face hub (needs network)."""
    import timm

    name = getattr(_unwrap(model), "timm_name", None)
    if name is None:
        raise ModelError(f"{type(_unwrap(model)).__name__} is not a timm model; finetune.hub needs one "
                         "(resnet18, mobilenetv2, inception_v3, vit_tiny, vit_tiny_p4_48)")
    try:
        return timm.create_model(name, pretrained=True).state_dict()
    except Exception as exc:  # network and hub errors come in many types; all mean "no weights"
        raise CheckpointError(f"cannot download ImageNet weights for {name} ({type(exc).__name__}: {exc}); "
                              "offline, save them as safetensors elsewhere and set finetune.weights") from None


def load_pretrained(model: nn.Module, path: str | Path | None = None, *,
                    state: dict[str, torch.Tensor] | None = None) -> LoadReport:
    """Copy pretrained weights (a safetensors file at `path`, or `state`) into `model`, in place.

    Keys are matched against `model.pretrained_module` (timm key names for the timm models) or the
    whole model. The input conv of a 3-channel state dict is adapted to the model's channels (timm's
    `adapt_input_conv`: summed for grayscale); ViT patch and position embeddings are resampled to
    the model's patch and grid size; head tensors of another shape (e.g. 1000 ImageNet classes) keep
    their fresh initialisation. Anything else missing, unexpected or misshapen raises CheckpointError.
    """
    from timm.models import adapt_input_conv

    if (path is None) == (state is None):
        raise CheckpointError("load_pretrained needs exactly one of a weights path or a state dict")
    if state is None:
        state = _read_state(path)
    where = str(path) if path is not None else "the given state dict"
    model = _unwrap(model)
    prefix = getattr(model, "pretrained_module", "")
    target = model.get_submodule(prefix) if prefix else model
    filter_fn = getattr(sys.modules.get(type(target).__module__), "checkpoint_filter_fn", None)
    if filter_fn is not None and hasattr(target, "pretrained_cfg"):
        state = filter_fn(dict(state), target)  # timm's own resampling of ViT patch / position embeddings
    head = head_name(model)
    head = head[len(prefix) + 1:] if prefix else head
    own = target.state_dict()
    first_conv = next((k for k, v in own.items() if v.ndim == 4), None)
    if hasattr(target, "pretrained_cfg") and target.pretrained_cfg.get("first_conv"):
        first_conv = f"{target.pretrained_cfg['first_conv']}.weight"

    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")
               and not _in_head(k, head)]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise CheckpointError(f"pretrained weights {where} do not fit {type(target).__name__}: "
                              f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected "
                              f"{unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
    new, loaded, adapted, skipped = {}, [], [], []
    for key, value in state.items():
        want = own[key].shape
        if value.shape != want and key == first_conv and value.shape[:1] + value.shape[2:] == want[:1] + want[2:]:
            value = adapt_input_conv(want[1], value, base_chans=value.shape[1])
            adapted.append(key)
        if value.shape != want:
            if _in_head(key, head):
                skipped.append(key)
                continue
            raise CheckpointError(f"pretrained tensor {key} in {where} has shape {tuple(value.shape)}, "
                                  f"the model needs {tuple(want)}")
        new[key] = value.to(own[key].dtype)
        loaded.append(key)
    skipped += [k for k in own if k not in state and _in_head(k, head)]
    target.load_state_dict(new, strict=False)
    return LoadReport(tuple(loaded), tuple(adapted), tuple(skipped))
