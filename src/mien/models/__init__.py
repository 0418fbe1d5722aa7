"""Model registry; importing this package registers every built-in model."""

from . import baseline_cnn, resnet_small  # noqa: F401  (registration)
from . import bn_cnn, cbam_cnn, deep_cnn, edge_cnn, simple_resnet, timm_models  # noqa: F401  (registration)
from .registry import ModelInfo, count_params, create_model, describe_model, gradcam_target, list_models, model_from_spec, register_model

__all__ = ["ModelInfo", "count_params", "create_model", "describe_model", "gradcam_target", "list_models", "model_from_spec",
           "register_model"]
