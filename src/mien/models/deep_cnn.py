"""Report 004's deeper CNN: conv blocks with batch norm and dropout, global average pooling, FC head."""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from .layers import check_positive, check_rate, check_widths, conv_bn_relu
from .registry import register_model


class DeepCNN(nn.Module):
    """Per width: 2 x (Conv 3x3 - BN - ReLU), then MaxPool 2x2 and Dropout except after the last
    block (48 -> 24 -> 12 -> 6 with four widths); global average pool (B, widths[-1]); head:
    Linear hidden - BN - ReLU - Dropout -> Linear num_classes (raw logits).
    """

    input_size: tuple[int, int] = (48, 48)
    head_layer: str = "classifier"

    def __init__(self, *, num_classes: int, in_chans: int, widths: tuple[int, ...], hidden: int,
                 dropout: float, block_dropout: float) -> None:
        super().__init__()
        self.in_chans = in_chans
        blocks: list[tuple[str, nn.Module]] = []
        prev = in_chans
        for i, width in enumerate(widths, start=1):
            layers = [(f"{k}1", m) for k, m in conv_bn_relu(prev, width)]
            layers += [(f"{k}2", m) for k, m in conv_bn_relu(width, width)]
            if i < len(widths):
                layers += [("pool", nn.MaxPool2d(2)), ("drop", nn.Dropout(block_dropout))]
            blocks.append((f"block{i}", nn.Sequential(OrderedDict(layers))))
            prev = width
        self.features = nn.Sequential(OrderedDict(blocks))
        # The last block's rectified maps (B, widths[-1], 6, 6), which the average pool reads.
        self.gradcam_layer = f"features.block{len(widths)}.relu2"
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(OrderedDict([
            ("flatten", nn.Flatten()), ("fc1", nn.Linear(prev, hidden, bias=False)), ("bn", nn.BatchNorm1d(hidden)),
            ("relu", nn.ReLU(inplace=True)), ("dropout", nn.Dropout(dropout)), ("fc2", nn.Linear(hidden, num_classes)),
        ]))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.pool(self.features(x)))  # (B, num_classes) logits


@register_model
def deep_cnn(*, num_classes: int = 7, in_chans: int = 1, widths: tuple[int, ...] = (32, 64, 128, 256),
             hidden: int = 256, dropout: float = 0.5, block_dropout: float = 0.2) -> DeepCNN:
    """Report 004's deeper CNN (about 1.24M parameters at the default widths).

    The report gives no layer table; this is its description made concrete: double 3x3 conv blocks
    with batch norm, max-pool and dropout, global average pooling, then a small FC head.

    Args:
        num_classes: Number of output logits.
        in_chans: Input channels (1 for grayscale FER2013).
        widths: Channels per block; each block but the last halves the resolution.
        hidden: Units of the hidden Linear layer.
        dropout: Dropout before the last Linear layer.
        block_dropout: Dropout after each pooled block.
    """
    return DeepCNN(num_classes=num_classes, in_chans=in_chans, widths=check_widths("deep_cnn", widths),
                   hidden=check_positive("deep_cnn", "hidden", hidden),
                   dropout=check_rate("deep_cnn", "dropout", dropout),
                   block_dropout=check_rate("deep_cnn", "block_dropout", block_dropout))
