"""Standard ImageNet architectures of reports 000, 001 and 003, built by timm (never hand copies).

Each builder wraps `timm.create_model(arch, pretrained=False, in_chans=..., num_classes=...)` in a
`TimmClassifier`, whose `backbone` is the timm model itself: its state-dict keys (under `backbone.`)
are timm's, so ImageNet weights saved from timm load into it (`mien.train.finetune.load_pretrained`).
timm is imported inside the builders; importing this module costs nothing.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ModelError
from .layers import check_positive, check_rate
from .registry import register_model


class TimmClassifier(nn.Module):
    """A timm classifier as a mien model: (B, in_chans, *input_size) -> (B, num_classes) logits.

    Attributes beyond the registry contract, read by `mien.train.finetune`: `pretrained_module`
    (the submodule ImageNet state dicts fit), `head_layer` (the classifier trained while the backbone
    is frozen) and `timm_name` (the timm architecture, for hub downloads).
    """

    pretrained_module: str = "backbone"

    def __init__(self, backbone: nn.Module, *, timm_name: str, input_size: int, in_chans: int,
                 gradcam_layer: str) -> None:
        super().__init__()
        self.backbone = backbone
        self.timm_name = timm_name
        self.input_size = (input_size, input_size)
        self.in_chans = in_chans
        self.gradcam_layer = gradcam_layer
        self.head_layer = f"backbone.{backbone.pretrained_cfg['classifier']}"

    def forward(self, x: Tensor) -> Tensor:
        return self.backbone(x)  # (B, num_classes) logits


class TokenGrid(nn.Module):
    """Patch tokens (B, N, D) as a feature map (B, D, h, w), the 4-D activation Grad-CAM needs."""

    def __init__(self, grid: tuple[int, int]) -> None:
        super().__init__()
        self.grid = grid

    def forward(self, tokens: Tensor) -> Tensor:
        return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *self.grid)


class ViTClassifier(TimmClassifier):
    """timm's VisionTransformer, run block by block so the last block's input passes `token_grid`.

    The output equals `backbone(x)` exactly; the detour only exposes the patch tokens that feed the
    last block as (B, D, h, w), where the class token's attention makes their gradient non-zero.
    """

    def __init__(self, backbone: nn.Module, **kwargs: Any) -> None:
        super().__init__(backbone, gradcam_layer="token_grid", **kwargs)
        self.token_grid = TokenGrid(tuple(backbone.patch_embed.grid_size))

    def forward(self, x: Tensor) -> Tensor:
        vit = self.backbone
        x = vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(x))))  # (B, P + N, D)
        for block in vit.blocks[:-1]:
            x = block(x)
        prefix = vit.num_prefix_tokens
        grid = self.token_grid(x[:, prefix:])  # (B, D, h, w)
        x = torch.cat([x[:, :prefix], grid.flatten(2).transpose(1, 2)], dim=1)
        return vit.forward_head(vit.norm(vit.blocks[-1](x)))  # (B, num_classes) logits


def _timm(arch: str, *, num_classes: int, in_chans: int, **kwargs: Any) -> nn.Module:
    import timm

    model = timm.create_model(arch, pretrained=False, num_classes=num_classes, in_chans=in_chans, **kwargs)
    # timm sizes some heads for ImageNet's 1,000 classes (mobilenetv2: uniform +-1/sqrt(num_classes);
    # inception_v3: normal, std 0.1): at 7 classes that starts training with logits of std ~4 and a
    # loss of ~6 against ln 7 = 1.95, and such a net stayed at the majority class for two epochs here.
    # torch's fan-in default starts every architecture near ln(num_classes).
    head = model.get_classifier()
    if isinstance(head, nn.Linear):
        head.reset_parameters()
    return model


def _size(model: str, value: object, minimum: int) -> int:
    value = check_positive(model, "input_size", value)
    if value < minimum:
        raise ModelError(f"{model} input_size must be >= {minimum} (its strides leave no feature map below), "
                         f"got {value}")
    return value


@register_model
def resnet18(*, num_classes: int = 7, in_chans: int = 1, dropout: float = 0.5, input_size: int = 48) -> TimmClassifier:
    """Report 000's ResNet-18 (timm `resnet18`): a 1-channel first conv, dropout before the classifier.

    Args:
        num_classes: Number of output logits.
        in_chans: Input channels (report: 1).
        dropout: Dropout before the final Linear layer (report: 0.5).
        input_size: Square input side; faces are resized to it (48: native, 2x2 final maps; 224 as ImageNet).
    """
    size = _size("resnet18", input_size, 33)
    backbone = _timm("resnet18", num_classes=num_classes, in_chans=in_chans,
                     drop_rate=check_rate("resnet18", "dropout", dropout))
    return TimmClassifier(backbone, timm_name="resnet18", input_size=size, in_chans=in_chans,
                          gradcam_layer="backbone.layer4")


@register_model
def mobilenetv2(*, num_classes: int = 7, in_chans: int = 1, dropout: float = 0.2,
                input_size: int = 48) -> TimmClassifier:
    """Report 003's MobileNetV2 (timm `mobilenetv2_100`, width 1.0), for transfer learning.

    Args:
        num_classes: Number of output logits.
        in_chans: Input channels.
        dropout: Dropout before the classifier.
        input_size: Square input side (48: native; the report resized nothing).
    """
    size = _size("mobilenetv2", input_size, 33)
    backbone = _timm("mobilenetv2_100", num_classes=num_classes, in_chans=in_chans,
                     drop_rate=check_rate("mobilenetv2", "dropout", dropout))
    # bn2 is the last conv's BN + ReLU6: (B, 1280, 2, 2) at 48x48, read by the global pool.
    return TimmClassifier(backbone, timm_name="mobilenetv2_100", input_size=size, in_chans=in_chans,
                          gradcam_layer="backbone.bn2")


@register_model
def inception_v3(*, num_classes: int = 7, in_chans: int = 1, dropout: float = 0.5,
                 input_size: int = 224) -> TimmClassifier:
    """Report 001's InceptionV3 (timm `inception_v3`) with a GAP - dropout - dense head.

    Inception's stem and grid reductions need large inputs. The default is report 001's 224 (5x5
    final maps, 56 % of the compute at 299); 299 is its native ImageNet size (8x8 maps); 75 is the
    smallest timm accepts (1x1 maps: no Grad-CAM), 139 the smallest with 3x3 maps.

    Args:
        num_classes: Number of output logits.
        in_chans: Input channels.
        dropout: Dropout before the classifier (report: 0.5, 0.6 while fine-tuning).
        input_size: Square input side, >= 75; 48x48 faces are upsampled to it.
    """
    size = _size("inception_v3", input_size, 75)
    backbone = _timm("inception_v3", num_classes=num_classes, in_chans=in_chans,
                     drop_rate=check_rate("inception_v3", "dropout", dropout))
    # timm initialises Inception's convs with a truncated normal of std 0.1 whatever their fan-in:
    # before training (BN statistics still 0 / 1) eval-mode logits reach ~1e11, past float32's
    # precision for any comparison (ONNX parity, a first evaluation). He init keeps them O(1).
    for m in backbone.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
    return TimmClassifier(backbone, timm_name="inception_v3", input_size=size, in_chans=in_chans,
                          gradcam_layer="backbone.Mixed_7c")


@register_model
def vit_tiny(*, num_classes: int = 7, in_chans: int = 1, dropout: float = 0.0) -> ViTClassifier:
    """Report 003's ViT-tiny (timm `vit_tiny_patch16_224`): 16x16 patches of a 224x224 input, 12
    blocks of width 192 with 3 heads; 48x48 faces are upsampled to 224.

    Args:
        num_classes: Number of output logits.
        in_chans: Input channels.
        dropout: Dropout before the classifier head.
    """
    backbone = _timm("vit_tiny_patch16_224", num_classes=num_classes, in_chans=in_chans,
                     drop_rate=check_rate("vit_tiny", "dropout", dropout))
    return ViTClassifier(backbone, timm_name="vit_tiny_patch16_224", input_size=224, in_chans=in_chans)


@register_model
def vit_tiny_p4_48(*, num_classes: int = 7, in_chans: int = 1, dropout: float = 0.0) -> ViTClassifier:
    """ViT-tiny at native 48x48 with 4x4 patches (12x12 = 144 tokens, about the cost of 224/16's 196).

    Same encoder as `vit_tiny`; ImageNet weights for `vit_tiny_patch16_224` load into it with the
    patch embedding and position embeddings resampled (`mien.train.finetune.load_pretrained`).

    Args:
        num_classes: Number of output logits.
        in_chans: Input channels.
        dropout: Dropout before the classifier head.
    """
    backbone = _timm("vit_tiny_patch16_224", num_classes=num_classes, in_chans=in_chans, img_size=48,
                     patch_size=4, drop_rate=check_rate("vit_tiny_p4_48", "dropout", dropout))
    return ViTClassifier(backbone, timm_name="vit_tiny_patch16_224", input_size=48, in_chans=in_chans)
