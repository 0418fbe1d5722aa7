"""Inference copies of trained networks: batch norms folded into the convolutions before them.

In eval mode a batch norm is a fixed per-channel affine map, so `torch.fx` merges it into the
preceding convolution's weights and bias. That saves one pass over every activation map, which at
48x48 costs about as much as the convolutions on a CPU: on an AMX machine the shipped default
classifies 1.4-1.6x more faces a second in fp32, 1.05-1.2x in bf16, and one face in two thirds of
the time in bf16 (docs/results/flagship.md, "Speed").
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ModelError


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of `model` with every conv -> batch-norm pair merged into one convolution.

    `model` itself is left untouched (Grad-CAM still needs its named layers). A model without
    batch norms is copied as it is.

    Raises:
        ModelError: the model has batch norms but `torch.fx` cannot trace it.
    """
    import copy

    from torch.fx.experimental.optimization import fuse

    norms = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
    if not any(isinstance(m, norms) for m in model.modules()):
        return copy.deepcopy(model).eval()
    try:
        return fuse(copy.deepcopy(model).eval(), inplace=True)
    except Exception as exc:  # fx raises TraceError, TypeError or others from the model's own code
        raise ModelError(f"cannot fold the batch norms of {type(model).__name__}: torch.fx fails to trace it "
                         f"({type(exc).__name__}: {exc}); make its forward traceable") from exc


def inference_network(model: nn.Module, precision: str) -> nn.Module:
    """`model` ready for inference at `precision` ("fp32" or "bf16"): batch norms folded, channels_last,
    and for bf16 the weights themselves in bf16 (the inputs must then be bf16 too).

    Casting the folded weights once beats autocast, which re-casts them on every call (on one AMX
    core, folding under autocast gained 1.07x at batch 256; folded bf16 weights 1.29x).
    """
    if precision not in ("fp32", "bf16"):
        raise ModelError(f"precision must be fp32 or bf16 here (resolve 'auto' first), got {precision!r}")
    net = fold_batchnorm(model).to(memory_format=torch.channels_last)
    return net.to(torch.bfloat16) if precision == "bf16" else net
