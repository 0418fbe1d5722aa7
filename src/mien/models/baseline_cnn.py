"""The baseline CNN of report 000, Table 1: three conv-ReLU-maxpool stages and a 256-unit head."""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from ..errors import ModelError
from .registry import register_model


class BaselineCNN(nn.Module):
    """Report 000, Table 1, layer for layer, for 48x48 input.

    features: 3 x (Conv2d 3x3 pad 1 + ReLU + MaxPool 2x2/2) with 32, 64, 128 filters,
    (B, C, 48, 48) -> (B, 128, 6, 6); classifier: Flatten 4608 -> Linear 256 + ReLU ->
    Dropout -> Linear num_classes (raw logits).
    """

    # The head's Linear(4608, 256) fixes the input size: 128 x 6 x 6 after three halvings of 48.
    input_size: tuple[int, int] = (48, 48)
    # Grad-CAM on the rectified, pooled 6x6 maps that feed the head. Hooking conv3's raw 12x12
    # output instead gave needle-thin spots (1.6 % of pixels above 0.5 on PrivateTest vs 9.8 % here)
    # and per-class mean maps that showed nothing.
    gradcam_layer: str = "features.relu3"

    def __init__(self, *, num_classes: int, in_chans: int, dropout: float) -> None:
        super().__init__()
        self.in_chans = in_chans
        # Max-pooling runs before each ReLU: the two commute (relu(max(x)) == max(relu(x))), so the
        # outputs are Table 1's exactly, while the ReLU and its backward touch 4x fewer values
        # (training measured ~10 % faster on a 2-core AVX2 CPU). The ReLUs act in place on the
        # pooled maps; nothing after relu3 modifies its output, which Grad-CAM hooks capture.
        self.features = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(in_chans, 32, 3, padding=1)), ("pool1", nn.MaxPool2d(2, 2)), ("relu1", nn.ReLU(inplace=True)),
            ("conv2", nn.Conv2d(32, 64, 3, padding=1)), ("pool2", nn.MaxPool2d(2, 2)), ("relu2", nn.ReLU(inplace=True)),
            ("conv3", nn.Conv2d(64, 128, 3, padding=1)), ("pool3", nn.MaxPool2d(2, 2)), ("relu3", nn.ReLU(inplace=True)),
        ]))
        self.classifier = nn.Sequential(OrderedDict([
            ("flatten", nn.Flatten()),
            ("fc1", nn.Linear(128 * 6 * 6, 256)), ("relu", nn.ReLU()),
            ("dropout", nn.Dropout(dropout)),
            ("fc2", nn.Linear(256, num_classes)),
        ]))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))  # (B, num_classes) logits


@register_model
def baseline_cnn(*, num_classes: int = 7, in_chans: int = 1, dropout: float = 0.5) -> BaselineCNN:
    """The report 000 Table 1 baseline CNN (about 1.27M parameters at 7 classes).

    Args:
        num_classes: Number of output logits.
        in_chans: Input channels (1 for grayscale FER2013).
        dropout: Dropout rate before the last Linear layer (Table 1: 0.5).
    """
    if not 0 <= dropout < 1:
        raise ModelError(f"baseline_cnn dropout must lie in [0, 1), got {dropout}")
    return BaselineCNN(num_classes=num_classes, in_chans=in_chans, dropout=dropout)
