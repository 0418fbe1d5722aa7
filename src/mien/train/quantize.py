"""Smaller stored weights for shipping: float16 everywhere, or int8 for convolution/linear weights.

int8 is weight-only, symmetric and per output channel: a (C_out, ...) weight `w` is stored as
`q = round(w / s)` in [-127, 127] with `s = max|w[c]| / 127` for each channel c, under its own key,
and `s` (float32, shape (C_out,)) under `key + SCALE_SUFFIX`. Other floating tensors (biases, batch
norm statistics) are stored as float16. `dequantize` turns the int8 tensors back into float32 ones;
loading a state dict casts the float16 ones, so every model still runs in its usual precision and
only the stored values are rounded.
"""

from __future__ import annotations

import torch

from ..errors import CheckpointError

STORAGE = ("float32", "float16", "int8")
# "#" never occurs in a state-dict key, so a scale cannot collide with a real tensor.
SCALE_SUFFIX = "#int8_scale"


def quantize(tensors: dict[str, torch.Tensor], storage: str) -> dict[str, torch.Tensor]:
    """`tensors` as stored in `storage` (one of `STORAGE`); non-floating tensors stay as they are."""
    if storage not in STORAGE:
        raise CheckpointError(f"weight storage must be one of {STORAGE}, got {storage!r}")
    out: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        if SCALE_SUFFIX in key:
            raise CheckpointError(f"tensor {key!r} is already quantized")
        if not value.is_floating_point() or storage == "float32":
            out[key] = value
        elif storage == "int8" and value.ndim >= 2:
            # (C_out, ...) -> one scale per output channel; an all-zero channel keeps scale 1.
            amax = value.detach().float().abs().flatten(1).amax(dim=1)
            scale = torch.where(amax > 0, amax / 127, torch.ones_like(amax))
            shape = (-1,) + (1,) * (value.ndim - 1)
            out[key] = torch.round(value.float() / scale.view(shape)).clamp_(-127, 127).to(torch.int8).contiguous()
            out[key + SCALE_SUFFIX] = scale.contiguous()
        else:
            out[key] = value.half().contiguous()
    return out


def dequantize(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Undo `quantize(..., "int8")`: each int8 tensor with a scale becomes float32; others pass through.

    Raises:
        CheckpointError: a scale without its tensor, or one whose tensor is not int8 or whose length
            is not the tensor's number of output channels.
    """
    out = {k: v for k, v in tensors.items() if SCALE_SUFFIX not in k}
    for key, scale in tensors.items():
        if SCALE_SUFFIX not in key:
            continue
        name = key[: -len(SCALE_SUFFIX)]
        q = tensors.get(name)
        if q is None or q.dtype != torch.int8 or q.ndim < 2 or scale.shape != (q.shape[0],):
            raise CheckpointError(f"int8 scale {key!r} (shape {tuple(scale.shape)}) has no int8 (C_out, ...) "
                                  f"tensor {name!r} with {scale.numel()} output channels to apply to")
        out[name] = q.float() * scale.float().view((-1,) + (1,) * (q.ndim - 1))
    return out
