"""Model cost: parameters, MACs at the native input, and CPU inference time per image.

MACs come from `torch.utils.flop_counter.FlopCounterMode`, which counts the matrix-multiply and
convolution FLOPs of one forward pass (2 FLOPs per multiply-accumulate); pooling, activations and
normalisation are not counted, as in the usual MAC tables.
"""

from __future__ import annotations

import statistics
import time
from typing import Sequence

import torch
from torch import nn

from ..errors import ConfigError


def native_input(model: nn.Module, batch: int = 1) -> torch.Tensor:
    """A zero (batch, in_chans, H, W) float tensor at the model's declared input size."""
    h, w = model.input_size
    return torch.zeros(batch, int(model.in_chans), int(h), int(w))


@torch.no_grad()
def count_macs(model: nn.Module) -> int:
    """Multiply-accumulates of one forward pass of one image at the model's native input size."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    counter = FlopCounterMode(display=False)
    with counter:
        model(native_input(model).to(device))
    model.train(was_training)
    return counter.get_total_flops() // 2


@torch.no_grad()
def measure_speed(
    model: nn.Module,
    *,
    batch_sizes: Sequence[int] = (1, 256),
    repeats: int = 5,
    max_seconds: float = 20.0,
    channels_last: bool = True,
) -> dict[int, float]:
    """Median CPU inference milliseconds per image for each batch size, in fp32 eval mode.

    Each batch size gets one untimed warm-up pass, then up to `repeats` timed passes, stopping
    early once `max_seconds` of timed passes have run (at least one always runs), so large models
    at batch 256 finish in bounded time. Only the model is timed, on zeros at its native input.

    Returns:
        {batch_size: ms per image}.
    """
    if not batch_sizes or any(b < 1 for b in batch_sizes):
        raise ConfigError(f"speed batch sizes must be positive integers, got {list(batch_sizes)}")
    if repeats < 1:
        raise ConfigError(f"speed repeats must be >= 1, got {repeats}")
    was_training = model.training
    model = model.cpu().eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    out: dict[int, float] = {}
    for batch in batch_sizes:
        x = native_input(model, batch)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        model(x)  # warm-up: one-time allocations and kernel selection
        times: list[float] = []
        while len(times) < repeats and (not times or sum(times) < max_seconds):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
        out[int(batch)] = 1000.0 * statistics.median(times) / batch
    model.train(was_training)
    return out
