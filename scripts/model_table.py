"""Print docs/models.md's table: every registered model's parameters, MACs at its native input,
input size, source report and Grad-CAM layer.

Usage: python scripts/model_table.py > /tmp/table.md   (about a minute on a 2-core CPU)
"""

from __future__ import annotations

import torch

from mien.compare.speed import count_macs
from mien.models import count_params, create_model, list_models

# Where each architecture comes from (reports in ../shared/reports/).
SOURCES = {
    "baseline_cnn": "000, Table 1", "bn_cnn": "003 (CNN)", "edge_cnn": "002 (custom kernels)",
    "simple_resnet": "002 (Simple ResNet)", "cbam_cnn": "002 (best, CBAM + kernels)", "resnet18": "000 (ResNet-18)",
    "mobilenetv2": "003 (MobileNetV2)", "inception_v3": "001 (InceptionV3)", "vit_tiny": "003 (ViT)",
    "vit_tiny_p4_48": "003's ViT, 48x48 variant (mien)", "deep_cnn": "004", "resnet_small": "mien default",
}


def main() -> None:
    torch.set_num_threads(1)
    print("| model | params | MACs | input (C x H x W) | source report | Grad-CAM layer | built by |")
    print("|---|---:|---:|---|---|---|---|")
    for name in list_models():
        torch.manual_seed(0)
        model = create_model(name).eval()
        params, macs = count_params(model), count_macs(model)
        h, w = model.input_size
        built = f"timm `{model.timm_name}`" if hasattr(model, "timm_name") else "mien"
        print(f"| `{name}` | {params / 1e6:.2f} M | {macs / 1e6:,.0f} M | {model.in_chans} x {h} x {w} | "
              f"{SOURCES.get(name, '?')} | `{model.gradcam_layer}` | {built} |")


if __name__ == "__main__":
    main()
