"""baseline_cnn pools before each ReLU for speed; its outputs must still be report 000's Table 1."""

import torch
from torch import nn

from mien.models import create_model


def test_pool_then_relu_equals_table_1_conv_relu_pool_order():
    torch.manual_seed(0)
    model = create_model("baseline_cnn").eval()
    f = model.features
    table1 = nn.Sequential(f.conv1, nn.ReLU(), nn.MaxPool2d(2), f.conv2, nn.ReLU(), nn.MaxPool2d(2),
                           f.conv3, nn.ReLU(), nn.MaxPool2d(2), model.classifier).eval()
    x = torch.randn(8, 1, 48, 48)
    torch.testing.assert_close(model(x), table1(x))


def test_layer_sizes_match_table_1():
    model = create_model("baseline_cnn")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [(1, 32, (3, 3)), (32, 64, (3, 3)),
                                                                              (64, 128, (3, 3))]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(4608, 256), (256, 7)]
    assert model.classifier.dropout.p == 0.5
