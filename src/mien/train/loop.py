"""`train_one_epoch`, `evaluate` and `predict_probs`: free functions over in-memory uint8 faces.

The whole dataset stays on the training device as (N, 1, 48, 48) uint8 (80 MB for FER2013);
batches are gathered by index, converted, augmented and normalised there, so a lent GPU is never
starved by two CPU cores feeding it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.pipeline import Normalization, model_input
from ..tta import TENCROP_FRACTION, TTA_MODES
from .hardware import autocast


@dataclass(frozen=True)
class InputSpec:
    """How uint8 faces become this model's input."""

    normalization: Normalization
    input_size: tuple[int, int]
    in_chans: int
    channels_last: bool = True

    @classmethod
    def for_model(cls, model: nn.Module, normalization: Normalization, *, channels_last: bool = True) -> InputSpec:
        model = model.module if hasattr(model, "module") else model
        return cls(normalization, tuple(model.input_size), int(model.in_chans), channels_last)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return model_input(x, normalization=self.normalization, input_size=self.input_size,
                           in_chans=self.in_chans, channels_last=self.channels_last)


@dataclass(frozen=True)
class EpochStats:
    loss: float
    acc: float
    images: int
    seconds: float

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class EvalResult:
    loss: float
    acc: float
    macro_f1: float
    probs: np.ndarray  # (N, C) class probabilities


# (augmented batch, labels) -> (mixed batch, labels a, labels b, lam)
Mixer = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]]


def _progress(total: int, desc: str, enabled: bool):  # noqa: ANN202 (tqdm type is optional)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not enabled, leave=False, dynamic_ncols=True)


def train_one_epoch(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    order: torch.Tensor,
    *,
    batch_size: int,
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    inputs: InputSpec,
    precision: str = "fp32",
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    mix: Mixer | None = None,
    after_step: Callable[[], None] | None = None,
    distill: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    distill_alpha: float = 0.0,
    grad_clip: float = 0.0,
    progress: bool = False,
    desc: str = "train",
) -> EpochStats:
    """One pass over `images[order]` in batches; `scheduler` (if given) steps after every batch.

    `mix` (e.g. mixup) maps an augmented batch and its labels to (mixed batch, labels a, labels b,
    lam); the loss is then lam * loss(a) + (1 - lam) * loss(b), and accuracy counts the dominant
    label. `after_step` runs after every optimizer step (e.g. a weight-average update).
    `distill` maps (the batch as the model sees it before `inputs`, float in [0, 1]; the model's
    logits) to a soft loss (e.g. `mien.train.distill`); the loss is then
    (1 - distill_alpha) * hard loss + distill_alpha * soft loss.

    Args:
        images: (N, 1, H, W) uint8 on the training device.
        labels: (N,) int64 on the same device.
        order: indices to visit, in order; a trailing partial batch is dropped when there is more
            than one batch (keeps batch-norm statistics sane and DDP ranks in step).
    """
    model.train()
    device = images.device
    n_batches = max(1, len(order) // batch_size)
    total_loss = torch.zeros((), device=device)
    total_correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    start = time.perf_counter()
    with _progress(n_batches * min(batch_size, len(order)), desc, progress) as bar:
        for b in range(n_batches):
            idx = order[b * batch_size:(b + 1) * batch_size]
            x = images[idx].float().div_(255.0)  # (B, 1, H, W) in [0, 1]
            if augment is not None:
                x = augment(x)
            y = labels[idx]
            y_b, lam = y, 1.0
            if mix is not None:
                x, y, y_b, lam = mix(x, y)
            with autocast(device, precision):
                logits = model(inputs(x))
                loss = criterion(logits.float(), y)
                if lam < 1.0:
                    loss = lam * loss + (1 - lam) * criterion(logits.float(), y_b)
                if distill is not None:
                    loss = (1 - distill_alpha) * loss + distill_alpha * distill(x, logits)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            if after_step is not None:
                after_step()
            total_loss += loss.detach() * len(idx)
            total_correct += (logits.argmax(1) == (y if lam >= 0.5 else y_b)).sum()
            seen += len(idx)
            bar.update(len(idx))
            if b % 10 == 0 or b == n_batches - 1:
                elapsed = time.perf_counter() - start
                bar.set_postfix(loss=f"{total_loss.item() / seen:.3f}", acc=f"{total_correct.item() / seen:.3f}",
                                img_s=f"{seen / max(elapsed, 1e-9):.0f}")
    seconds = time.perf_counter() - start
    return EpochStats(loss=total_loss.item() / seen, acc=total_correct.item() / seen, images=seen, seconds=seconds)


def tta_views(x: torch.Tensor, tta: str) -> list[torch.Tensor]:
    """The test-time views of float (B, C, H, W) faces, each (B, C, H, W).

    none: the face; flip: and its mirror; tencrop: the four corner crops and the centre crop of side
    `TENCROP_FRACTION` (a zoom and shift inside the training augmentation's range), each scaled back to
    (H, W), and their mirrors.
    """
    if tta == "none":
        return [x]
    if tta == "flip":
        return [x, torch.flip(x, dims=(3,))]
    if tta != "tencrop":
        raise ValueError(f"tta must be one of {', '.join(TTA_MODES)}, got {tta!r}")
    h, w = x.shape[-2:]
    # equal margins on both sides, so the centre crop is exactly centred (48 -> 44: 2 pixels a side)
    mh, mw = (min(round(n * (1 - TENCROP_FRACTION) / 2), (n - 1) // 2) for n in (h, w))
    ch, cw = h - 2 * mh, w - 2 * mw
    tops, lefts = (0, mh, h - ch), (0, mw, w - cw)
    corners = [(tops[0], lefts[0]), (tops[0], lefts[2]), (tops[2], lefts[0]), (tops[2], lefts[2]), (tops[1], lefts[1])]
    views = []
    for top, left in corners:
        crop = F.interpolate(x[..., top:top + ch, left:left + cw], size=(h, w), mode="bilinear", align_corners=False)
        views += [crop, torch.flip(crop, dims=(3,))]
    return views


def tta_probs(x: torch.Tensor, logits: Callable[[torch.Tensor], torch.Tensor], tta: str) -> torch.Tensor:
    """(B, C) float32 probabilities of float (B, 1, H, W) faces in [0, 1], averaged over the TTA views.

    `logits` maps one view (still unnormalised) to raw logits; `tta_views` says what each mode adds.
    Evaluation and inference both call this, so a model card's TTA accuracy is what users get.
    """
    views = tta_views(x, tta)
    return sum(F.softmax(logits(view).float(), dim=1) for view in views) / len(views)


@torch.no_grad()
def predict_probs(
    model: nn.Module,
    images: torch.Tensor,
    *,
    inputs: InputSpec,
    precision: str = "fp32",
    batch_size: int = 512,
    tta: str = "none",
    progress: bool = False,
) -> torch.Tensor:
    """(N, C) float32 class probabilities for (N, 1, H, W) uint8 faces, averaged over the `tta` views."""
    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {', '.join(TTA_MODES)}, got {tta!r}")
    model.eval()
    device = next(model.parameters()).device

    def logits(view: torch.Tensor) -> torch.Tensor:
        with autocast(device, precision):
            return model(inputs(view))

    out = []
    with _progress(len(images), "predict", progress) as bar:
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size].to(device).float().div_(255.0)
            out.append(tta_probs(x, logits, tta))
            bar.update(len(x))
    return torch.cat(out)


def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    inputs: InputSpec,
    precision: str = "fp32",
    batch_size: int = 512,
    tta: str = "none",
    progress: bool = False,
) -> EvalResult:
    """Loss (plain cross-entropy), accuracy and macro F1 of `model` on uint8 faces."""
    from sklearn.metrics import f1_score

    probs = predict_probs(model, images, inputs=inputs, precision=precision, batch_size=batch_size,
                          tta=tta, progress=progress)
    y = labels.to(probs.device)
    loss = F.nll_loss(torch.log(probs.clamp_min(1e-12)), y).item()
    pred = probs.argmax(1)
    acc = (pred == y).float().mean().item()
    num_classes = probs.shape[1]
    f1 = f1_score(y.cpu().numpy(), pred.cpu().numpy(), labels=list(range(num_classes)), average="macro",
                  zero_division=0)
    return EvalResult(loss=loss, acc=acc, macro_f1=float(f1), probs=probs.cpu().numpy())
