"""Report 002's "Simple ResNet": fixed edge kernels, a 32-channel BN stem, residual blocks 64/128/256, GAP, FC."""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from .layers import FixedKernels, check_positive, check_rate, check_widths, conv_bn_relu
from .registry import register_model
from .resnet_small import BasicBlock


class SimpleResNet(nn.Module):
    """FixedKernels (B, 5, 48, 48) -> stem Conv 3x3 - BN - ReLU (32) -> one BasicBlock per width,
    each halving the resolution (48 -> 24 -> 12 -> 6) -> global average pool -> Dropout -> Linear.
    """

    input_size: tuple[int, int] = (48, 48)
    # The last block's (B, 256, 6, 6) output feeds the pool directly; its ReLU is not in place.
    gradcam_layer: str = "blocks.2"
    head_layer: str = "fc"

    def __init__(self, *, num_classes: int, in_chans: int, stem: int, widths: tuple[int, int, int],
                 dropout: float) -> None:
        super().__init__()
        self.in_chans = in_chans
        self.kernels = FixedKernels(in_chans)
        self.stem = nn.Sequential(OrderedDict(conv_bn_relu(self.kernels.out_chans, stem)))
        blocks, prev = [], stem
        for width in widths:
            blocks.append(BasicBlock(prev, width, stride=2))
            prev = width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(prev, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(self.stem(self.kernels(x)))  # (B, widths[-1], 6, 6)
        return self.fc(self.dropout(self.pool(x).flatten(1)))  # (B, num_classes) logits


@register_model
def simple_resnet(*, num_classes: int = 7, in_chans: int = 1, stem: int = 32,
                  widths: tuple[int, int, int] = (64, 128, 256), dropout: float = 0.0) -> SimpleResNet:
    """Report 002's residual net behind the fixed edge-kernel layer (about 1.2M parameters).

    Args:
        num_classes: Number of output logits.
        in_chans: Input channels; with more than one, the fixed filters see the channel mean.
        stem: Channels of the stem convolution (report: 32).
        widths: Channels of the three residual blocks (report: 64, 128, 256).
        dropout: Dropout before the final Linear layer (the report names none).
    """
    return SimpleResNet(num_classes=num_classes, in_chans=in_chans, stem=check_positive("simple_resnet", "stem", stem),
                        widths=check_widths("simple_resnet", widths, 3),  # type: ignore[arg-type]
                        dropout=check_rate("simple_resnet", "dropout", dropout))
