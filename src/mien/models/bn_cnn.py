"""Report 003's CNN: three conv blocks (32/64/128) with batch norm, max-pool and dropout; dense 512."""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from .layers import check_rate, check_widths, conv_bn_relu
from .registry import register_model


class BNCNN(nn.Module):
    """Per block: Conv 3x3 - BN - ReLU - MaxPool 2x2 - Dropout; (B, C, 48, 48) -> (B, 128, 6, 6).

    Head: Flatten 4608 -> Linear 512 - ReLU - Dropout -> Linear num_classes (raw logits).
    """

    input_size: tuple[int, int] = (48, 48)
    # The last block's pooled maps (B, 128, 6, 6); the dropout after them is not in place.
    gradcam_layer: str = "features.block3.pool"
    head_layer: str = "classifier"

    def __init__(self, *, num_classes: int, in_chans: int, widths: tuple[int, int, int], dropout: float,
                 block_dropout: float) -> None:
        super().__init__()
        self.in_chans = in_chans
        blocks: list[tuple[str, nn.Module]] = []
        prev = in_chans
        for i, width in enumerate(widths, start=1):
            layers = conv_bn_relu(prev, width) + [("pool", nn.MaxPool2d(2)), ("drop", nn.Dropout(block_dropout))]
            blocks.append((f"block{i}", nn.Sequential(OrderedDict(layers))))
            prev = width
        self.features = nn.Sequential(OrderedDict(blocks))
        side = self.input_size[0] // 2 ** len(widths)
        self.classifier = nn.Sequential(OrderedDict([
            ("flatten", nn.Flatten()), ("fc1", nn.Linear(prev * side * side, 512)), ("relu", nn.ReLU(inplace=True)),
            ("dropout", nn.Dropout(dropout)), ("fc2", nn.Linear(512, num_classes)),
        ]))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))  # (B, num_classes) logits


@register_model
def bn_cnn(*, num_classes: int = 7, in_chans: int = 1, widths: tuple[int, int, int] = (32, 64, 128),
           dropout: float = 0.5, block_dropout: float = 0.25) -> BNCNN:
    """Report 003's CNN for 48x48 faces (about 2.45M parameters at the default widths).

    Args:
        num_classes: Number of output logits.
        in_chans: Input channels (1 for grayscale FER2013).
        widths: Filters of the three conv blocks.
        dropout: Dropout before the last Linear layer.
        block_dropout: Dropout after each conv block's max-pool.
    """
    widths = check_widths("bn_cnn", widths, 3)
    return BNCNN(num_classes=num_classes, in_chans=in_chans, widths=widths,  # type: ignore[arg-type]
                 dropout=check_rate("bn_cnn", "dropout", dropout),
                 block_dropout=check_rate("bn_cnn", "block_dropout", block_dropout))
