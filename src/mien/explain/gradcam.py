"""Grad-CAM maps for 48x48 faces (pytorch-grad-cam on each model's named layer) and heat-map overlays.

The model is used as is: its own `gradcam_layer` (via `mien.models.gradcam_target`), its own input
size and channel count, and the checkpoint's normalisation through `mien.data.pipeline.model_input`.
Nothing is left behind on the model: the hooks are removed, the train/eval mode, each parameter's
`requires_grad` and any existing `.grad` are restored, even when a call fails.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.pipeline import Normalization, model_input
from ..errors import DataError, ModelError


def _normalization(value: Normalization | Mapping[str, float]) -> Normalization:
    if isinstance(value, Normalization):
        return value
    try:
        return Normalization(mean=float(value["mean"]), std=float(value["std"]))
    except (KeyError, TypeError, ValueError):
        raise DataError(f"normalization must be a Normalization or a mapping with 'mean' and 'std', got {value!r}") \
            from None


def _check_crops(crops: np.ndarray) -> np.ndarray:
    crops = np.asarray(crops)
    if crops.ndim == 2:
        crops = crops[None]
    if crops.ndim != 3 or crops.dtype != np.uint8:
        raise DataError(f"crops must be a (N, H, W) uint8 array of grayscale faces, got {crops.dtype} "
                        f"array of shape {crops.shape}")
    return crops


def _check_targets(targets: Sequence[int] | np.ndarray | None, n: int, num_classes: int) -> np.ndarray | None:
    if targets is None:
        return None
    arr = np.asarray(targets)
    if arr.ndim == 0:  # one class for every face
        arr = np.full(n, int(arr))
    if arr.shape != (n,) or not np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"targets must be {n} integer class indices (one per crop), got {arr.dtype} shape {arr.shape}")
    if n and (arr.min() < 0 or arr.max() >= num_classes):
        raise DataError(f"targets must lie in [0, {num_classes}), got [{arr.min()}, {arr.max()}]")
    return arr.astype(np.int64)


def _num_classes(model: nn.Module) -> int:
    """Output classes: from `model.spec` (set by create_model), else the last Linear layer."""
    spec = getattr(model, "spec", None)
    if isinstance(spec, Mapping) and "num_classes" in spec:
        return int(spec["num_classes"])
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ModelError(f"cannot tell how many classes {type(model).__name__} predicts (no spec, no Linear layer)")
    return int(linears[-1].out_features)


@contextmanager
def _grad_through(model: nn.Module, layer: nn.Module) -> Iterator[bool]:
    """Enable autograd for the CAM while computing as little as possible; restore the model after.

    Only the target layer's own parameters keep `requires_grad`, so backward stops at that layer
    instead of computing weight gradients for the whole net. Yields True when the layer has no
    parameters, in which case the caller must make the input require grad instead.
    """
    params = list(model.parameters())
    saved = [(p, p.requires_grad, p.grad) for p in params]
    own = {id(p) for p in layer.parameters()}
    was_training = model.training
    try:
        for p in params:
            p.requires_grad_(id(p) in own)
        model.eval()
        with torch.inference_mode(False), torch.enable_grad():
            yield not own
    finally:
        for p, flag, grad in saved:
            p.requires_grad_(flag)
            p.grad = grad
        model.train(was_training)


def cam_and_probs(
    model: nn.Module,
    crops: np.ndarray,
    *,
    normalization: Normalization | Mapping[str, float],
    targets: Sequence[int] | np.ndarray | None = None,
    batch_size: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM maps and class probabilities of grayscale face crops.

    Args:
        model: a mien model (float (B, C, H, W) in, logits out) naming its `gradcam_layer`.
        crops: (N, H, W) uint8 faces, usually 48x48; resized to the model's input size if needed.
        normalization: the checkpoint's input normalisation (`meta["normalization"]` works as is).
        targets: (N,) class index per crop to explain, or one int for all; None explains each
            crop's predicted class.
        batch_size: faces per forward/backward pass.

    Returns:
        (maps, probs): maps (N, H, W) float32 in [0, 1], each scaled so its maximum is 1 (all
        zeros where no region raises the target score); probs (N, num_classes) float32 softmax.
    """
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from ..models import gradcam_target

    crops = _check_crops(crops)
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    norm = _normalization(normalization)
    try:
        layer = gradcam_target(model)
    except AttributeError as exc:
        raise ModelError(f"{type(model).__name__} names no usable Grad-CAM layer: {exc}") from None
    device = next(model.parameters()).device
    num_classes = _num_classes(model)
    n, height, width = crops.shape
    wanted = _check_targets(targets, n, num_classes)
    maps = np.zeros((n, height, width), dtype=np.float32)
    probs: list[np.ndarray] = []
    with _grad_through(model, layer) as input_grad:
        cam = GradCAM(model=model, target_layers=[layer])
        # Released in `finally`, not via `with cam`: GradCAM.__exit__ swallows IndexError.
        try:
            for start in range(0, n, batch_size):
                x = torch.from_numpy(crops[start:start + batch_size]).to(device).float().div_(255.0).unsqueeze(1)
                x = model_input(x, normalization=norm, input_size=tuple(model.input_size),
                                in_chans=int(model.in_chans), channels_last=False)
                if input_grad:
                    x.requires_grad_(True)
                batch_targets = None if wanted is None else \
                    [ClassifierOutputTarget(int(c)) for c in wanted[start:start + len(x)]]
                grayscale = cam(input_tensor=x, targets=batch_targets)  # (B, h, w), each max-scaled
                probs.append(F.softmax(cam.outputs.detach().float(), dim=1).cpu().numpy())
                maps[start:start + len(x)] = _resize(grayscale, (height, width))
                cam.activations_and_grads.clear()
        finally:
            cam.activations_and_grads.release()
            cam.outputs = None
    out_probs = np.concatenate(probs) if probs else np.zeros((0, num_classes), dtype=np.float32)
    return np.clip(maps, 0.0, 1.0), out_probs.astype(np.float32)


def _resize(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(B, h, w) float maps -> (B, *size), bilinear (only when the model input size differs)."""
    if maps.shape[-2:] == size:
        return maps.astype(np.float32, copy=False)
    t = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32)).unsqueeze(1)
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False)[:, 0].numpy()


def gradcam_maps(
    model: nn.Module,
    crops: np.ndarray,
    *,
    normalization: Normalization | Mapping[str, float],
    targets: Sequence[int] | np.ndarray | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """(N, H, W) float32 Grad-CAM maps in [0, 1] for (N, H, W) uint8 crops; see `cam_and_probs`."""
    return cam_and_probs(model, crops, normalization=normalization, targets=targets, batch_size=batch_size)[0]


def overlay(gray_or_rgb: np.ndarray, cam: np.ndarray, *, alpha: float = 0.45) -> np.ndarray:
    """Blend a jet-coloured map over an image: (1 - alpha) * image + alpha * jet(cam).

    Args:
        gray_or_rgb: (H, W) or (H, W, 3) uint8 image, or float in [0, 1].
        cam: (h, w) map in [0, 1]; resized bilinearly to (H, W) when the sizes differ.
        alpha: weight of the heat map, in [0, 1].

    Returns:
        (H, W, 3) uint8 RGB.
    """
    from matplotlib import colormaps

    if not 0.0 <= alpha <= 1.0:
        raise DataError(f"alpha must lie in [0, 1], got {alpha}")
    image = np.asarray(gray_or_rgb)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f"image must be (H, W) or (H, W, 3), got shape {image.shape}")
    base = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    cam = np.asarray(cam, dtype=np.float32)
    if cam.ndim != 2:
        raise DataError(f"cam must be a 2-D map, got shape {cam.shape}")
    cam = np.clip(_resize(cam[None], image.shape[:2])[0], 0.0, 1.0)
    heat = colormaps["jet"](cam)[..., :3].astype(np.float32)
    blended = (1.0 - alpha) * np.clip(base, 0.0, 1.0) + alpha * heat
    return np.round(blended * 255.0).astype(np.uint8)
