"""Report 002's "CNN with fixed custom kernels": a frozen edge-filter layer, then conv 32/64/128 and FC."""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from .layers import FixedKernels, check_positive, check_rate, check_widths, flatten_head
from .registry import register_model


class EdgeCNN(nn.Module):
    """FixedKernels (5 maps: Sobel x, Sobel y, Laplacian, diagonal Sobel, Gaussian; see
    `layers.EDGE_KERNELS`), then 3 x (Conv 3x3 - ReLU - MaxPool 2x2 - Dropout) with 32, 64, 128
    filters, (B, 5, 48, 48) -> (B, 128, 6, 6); head: Flatten 4608 -> Linear 256 - ReLU - Dropout
    -> Linear num_classes (raw logits).
    """

    input_size: tuple[int, int] = (48, 48)
    gradcam_layer: str = "features.block3.pool"
    head_layer: str = "classifier"

    def __init__(self, *, num_classes: int, in_chans: int, widths: tuple[int, int, int], hidden: int,
                 dropout: float, block_dropout: float) -> None:
        super().__init__()
        self.in_chans = in_chans
        self.kernels = FixedKernels(in_chans)
        blocks: list[tuple[str, nn.Module]] = []
        prev = self.kernels.out_chans
        for i, width in enumerate(widths, start=1):
            blocks.append((f"block{i}", nn.Sequential(OrderedDict([
                ("conv", nn.Conv2d(prev, width, 3, padding=1)), ("relu", nn.ReLU(inplace=True)),
                ("pool", nn.MaxPool2d(2)), ("drop", nn.Dropout(block_dropout))]))))
            prev = width
        self.features = nn.Sequential(OrderedDict(blocks))
        side = self.input_size[0] // 2 ** len(widths)
        self.classifier = flatten_head(prev * side * side, hidden, num_classes, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(self.kernels(x)))  # (B, num_classes) logits


@register_model
def edge_cnn(*, num_classes: int = 7, in_chans: int = 1, widths: tuple[int, int, int] = (32, 64, 128),
             hidden: int = 256, dropout: float = 0.5, block_dropout: float = 0.25) -> EdgeCNN:
    """Report 002's CNN behind a fixed, non-trainable 5-filter edge layer (about 1.27M parameters).

    The five fixed 3x3 filters are Sobel x, Sobel y, the 4-neighbour Laplacian, a 45-degree Sobel
    and a Gaussian blur (the report names Sobel and Laplacian; the last two are this project's choice:
    slanted edges, and the smoothed intensity itself so no information is lost to edge filtering).

    Args:
        num_classes: Number of output logits.
        in_chans: Input channels; with more than one, the filters see the channel mean.
        widths: Filters of the three conv blocks.
        hidden: Units of the hidden Linear layer.
        dropout: Dropout before the last Linear layer.
        block_dropout: Dropout after each conv block's max-pool.
    """
    widths = check_widths("edge_cnn", widths, 3)
    return EdgeCNN(num_classes=num_classes, in_chans=in_chans, widths=widths,  # type: ignore[arg-type]
                   hidden=check_positive("edge_cnn", "hidden", hidden), dropout=check_rate("edge_cnn", "dropout", dropout),
                   block_dropout=check_rate("edge_cnn", "block_dropout", block_dropout))
