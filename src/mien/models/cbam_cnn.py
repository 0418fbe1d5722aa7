"""Report 002's best model, "CustomFERCNN with CBAM and kernels"."""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from .layers import CBAM, FixedKernels, check_positive, check_rate, check_widths, conv_bn_relu, flatten_head
from .registry import register_model


class CBAMCNN(nn.Module):
    """FixedKernels (B, 5, 48, 48), then per width: Conv 3x3 - BN - ReLU - MaxPool 2x2 - CBAM
    (channel, then spatial attention), 48 -> 24 -> 12 -> 6; head: Flatten 9216 -> Linear 512 - ReLU -
    Dropout -> Linear num_classes (raw logits).
    """

    input_size: tuple[int, int] = (48, 48)
    # The last block's attention-weighted (B, 256, 6, 6) maps, which the head flattens.
    gradcam_layer: str = "features.block3.cbam"
    head_layer: str = "classifier"

    def __init__(self, *, num_classes: int, in_chans: int, widths: tuple[int, int, int], hidden: int,
                 dropout: float, reduction: int) -> None:
        super().__init__()
        self.in_chans = in_chans
        self.kernels = FixedKernels(in_chans)
        blocks: list[tuple[str, nn.Module]] = []
        prev = self.kernels.out_chans
        for i, width in enumerate(widths, start=1):
            layers = conv_bn_relu(prev, width) + [("pool", nn.MaxPool2d(2)), ("cbam", CBAM(width, reduction=reduction))]
            blocks.append((f"block{i}", nn.Sequential(OrderedDict(layers))))
            prev = width
        self.features = nn.Sequential(OrderedDict(blocks))
        side = self.input_size[0] // 2 ** len(widths)
        self.classifier = flatten_head(prev * side * side, hidden, num_classes, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(self.kernels(x)))  # (B, num_classes) logits


@register_model
def cbam_cnn(*, num_classes: int = 7, in_chans: int = 1, widths: tuple[int, int, int] = (64, 128, 256),
             hidden: int = 512, dropout: float = 0.5, reduction: int = 16) -> CBAMCNN:
    """Report 002's CBAM CNN behind the fixed edge-kernel layer (about 5.1M parameters).

    Args:
        num_classes: Number of output logits.
        in_chans: Input channels; with more than one, the fixed filters see the channel mean.
        widths: Filters of the three conv blocks (report: 64, 128, 256).
        hidden: Units of the hidden Linear layer (report: 512).
        dropout: Dropout before the last Linear layer.
        reduction: Channel-attention MLP reduction ratio (CBAM paper: 16).
    """
    return CBAMCNN(num_classes=num_classes, in_chans=in_chans,
                   widths=check_widths("cbam_cnn", widths, 3),  # type: ignore[arg-type]
                   hidden=check_positive("cbam_cnn", "hidden", hidden),
                   dropout=check_rate("cbam_cnn", "dropout", dropout),
                   reduction=check_positive("cbam_cnn", "reduction", reduction))
