"""Building blocks shared by the report-002/003/004 CNNs: the fixed edge-kernel layer, CBAM, conv blocks."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ModelError

# Report 002's "custom kernel layer" names Sobel and Laplacian filters plus unnamed "edge and shape"
# filters. The two extra ones here: a diagonal (45 degree) Sobel, for the slanted edges of brows and
# mouth corners, and a 3x3 Gaussian, a shape filter that passes the smoothed intensity on, so the
# convolutions after it still see the face and not only its edges.
EDGE_KERNELS: OrderedDict[str, tuple[tuple[float, ...], ...]] = OrderedDict([
    ("sobel_x", ((-1, 0, 1), (-2, 0, 2), (-1, 0, 1))),
    ("sobel_y", ((-1, -2, -1), (0, 0, 0), (1, 2, 1))),
    ("laplacian", ((0, 1, 0), (1, -4, 1), (0, 1, 0))),
    ("sobel_diag", ((0, 1, 2), (-1, 0, 1), (-2, -1, 0))),
    ("gaussian", ((1 / 16, 2 / 16, 1 / 16), (2 / 16, 4 / 16, 2 / 16), (1 / 16, 2 / 16, 1 / 16))),
])


def check_rate(model: str, what: str, value: float) -> float:
    """`value` if it lies in [0, 1), else a ModelError naming the model and argument."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ModelError(f"{model} {what} must lie in [0, 1), got {value!r}")
    return float(value)


def check_widths(model: str, value: object, count: int | None = None, *, what: str = "widths") -> tuple[int, ...]:
    """A tuple of positive ints (a YAML list is fine), optionally of length `count`, else ModelError."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not value:
        raise ModelError(f"{model} {what} must be a non-empty list of positive integers, got {value!r}")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise ModelError(f"{model} {what} must be positive integers, got {list(value)}")
    if count is not None and len(value) != count:
        raise ModelError(f"{model} {what} needs exactly {count} values, got {list(value)}")
    return tuple(value)


def check_positive(model: str, what: str, value: object) -> int:
    """`value` if it is a positive integer, else a ModelError naming the model and argument."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelError(f"{model} {what} must be a positive integer, got {value!r}")
    return value


class FixedKernels(nn.Module):
    """A non-trainable 3x3 convolution with the five `EDGE_KERNELS`: (B, C, H, W) -> (B, 5, H, W).

    With C > 1 channels each kernel sees the channel mean (the kernel split evenly over channels).
    The kernels are a buffer, not parameters: no optimizer can change them, and checkpoints carry them.
    """

    def __init__(self, in_chans: int) -> None:
        super().__init__()
        bank = torch.tensor(list(EDGE_KERNELS.values()), dtype=torch.float32)  # (5, 3, 3)
        weight = bank[:, None].expand(-1, in_chans, -1, -1) / in_chans  # (5, C, 3, 3)
        self.register_buffer("weight", weight.contiguous())
        self.out_chans = len(EDGE_KERNELS)

    def forward(self, x: Tensor) -> Tensor:
        # Replicate padding: zero padding would put strong false edges on every border.
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.weight)


class ChannelAttention(nn.Module):
    """CBAM channel attention: a shared MLP on the average- and max-pooled channels, sigmoid gate."""

    def __init__(self, channels: int, *, reduction: int) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.ReLU(inplace=True),
                                 nn.Conv2d(hidden, channels, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        avg = x.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        peak = x.amax(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.mlp(avg) + self.mlp(peak))


class SpatialAttention(nn.Module):
    """CBAM spatial attention: a 7x7 conv over the channel mean and max maps, sigmoid gate."""

    def __init__(self, *, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        maps = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)  # (B, 2, H, W)
        return x * torch.sigmoid(self.conv(maps))


class CBAM(nn.Module):
    """Convolutional Block Attention Module (Woo et al. 2018): channel, then spatial attention."""

    def __init__(self, channels: int, *, reduction: int = 16) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, reduction=reduction)
        self.spatial = SpatialAttention()

    def forward(self, x: Tensor) -> Tensor:
        return self.spatial(self.channel(x))


def conv_bn_relu(in_ch: int, out_ch: int) -> list[tuple[str, nn.Module]]:
    """Named 3x3 conv (no bias: BN follows) + BN + ReLU layers, for an OrderedDict Sequential."""
    return [("conv", nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)), ("bn", nn.BatchNorm2d(out_ch)),
            ("relu", nn.ReLU(inplace=True))]


def flatten_head(in_features: int, hidden: int, num_classes: int, dropout: float) -> nn.Sequential:
    """flatten -> fc1 -> ReLU -> dropout -> fc2: report 002's classifier, (B, C, h, w) -> (B, num_classes)."""
    return nn.Sequential(OrderedDict([
        ("flatten", nn.Flatten()), ("fc1", nn.Linear(in_features, hidden)), ("relu", nn.ReLU(inplace=True)),
        ("dropout", nn.Dropout(dropout)), ("fc2", nn.Linear(hidden, num_classes)),
    ]))
