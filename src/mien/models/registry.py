"""One model registry: `@register_model` builders, `create_model` by name, `list_models`.

Every model honours one contract: float (B, in_chans, *input_size) in, raw logits (B, num_classes)
out, no softmax inside; and it names its Grad-CAM target layer (`gradcam_layer`, a dotted
submodule path) and its native `input_size` and `in_chans`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from ..errors import ModelError

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a builder under its function name; a duplicate name raises."""
    name = fn.__name__
    if name in _BUILDERS:
        raise ModelError(f"model {name!r} is already registered")
    _BUILDERS[name] = fn
    return fn


def list_models() -> list[str]:
    return sorted(_BUILDERS)


def create_model(name: str, *, num_classes: int = 7, in_chans: int = 1, **kwargs: Any) -> nn.Module:
    """Build a registered model; the result records how it was built in `model.spec`."""
    if name not in _BUILDERS:
        raise ModelError(f"unknown model {name!r}; registered models: {', '.join(list_models())}")
    builder = _BUILDERS[name]
    params = inspect.signature(builder).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            raise ModelError(f"model {name!r} has no argument {unknown[0]!r}; it takes {', '.join(params)}")
    if num_classes < 2:
        raise ModelError(f"num_classes must be >= 2, got {num_classes}")
    if in_chans < 1:
        raise ModelError(f"in_chans must be >= 1, got {in_chans}")
    model = builder(num_classes=num_classes, in_chans=in_chans, **kwargs)
    for attr in ("gradcam_layer", "input_size", "in_chans"):
        if not hasattr(model, attr):
            raise ModelError(f"model {name!r} does not declare {attr!r}")
    model.spec = {"name": name, "num_classes": num_classes, "in_chans": in_chans, "kwargs": dict(kwargs)}
    return model


def model_from_spec(spec: dict[str, Any]) -> nn.Module:
    """Rebuild a model from the `model.spec` that `create_model` recorded (e.g. in a checkpoint)."""
    return create_model(spec["name"], num_classes=spec["num_classes"], in_chans=spec["in_chans"], **spec["kwargs"])


def gradcam_target(model: nn.Module) -> nn.Module:
    """The submodule named by the model's `gradcam_layer`."""
    return model.get_submodule(model.gradcam_layer)


@dataclass(frozen=True)
class ModelInfo:
    """A registered architecture at its default arguments: what `mien models --architectures` lists."""

    name: str
    summary: str  # the first paragraph of its builder's docstring, on one line
    in_chans: int
    input_size: tuple[int, int]
    params: int
    gradcam_layer: str


def count_params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with requires_grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def describe_model(name: str) -> ModelInfo:
    """Build registered model `name` with its defaults (7 classes, 1 channel) and describe it.

    Raises:
        ModelError: no model is registered under `name`.
    """
    model = create_model(name)
    doc = inspect.getdoc(_BUILDERS[name]) or ""
    summary = " ".join(doc.split("\n\n")[0].split())
    return ModelInfo(name=name, summary=summary, in_chans=int(model.in_chans),
                     input_size=tuple(model.input_size), params=count_params(model),
                     gradcam_layer=str(model.gradcam_layer))
