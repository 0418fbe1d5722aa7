"""Optimizers and learning-rate schedules from config, using torch's own implementations."""

from __future__ import annotations

from typing import Iterable

import torch
from torch.optim import lr_scheduler

from ..config import OptimConfig, ScheduleConfig
from ..errors import ConfigError


def build_optimizer(cfg: OptimConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                           nesterov=cfg.nesterov and cfg.momentum > 0)


def build_scheduler(
    cfg: ScheduleConfig,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    mode: str,
) -> tuple[lr_scheduler.LRScheduler | lr_scheduler.ReduceLROnPlateau | None, bool]:
    """(scheduler, steps_per_batch). Plateau steps once per epoch on the monitored metric (`mode` min|max)."""
    total = max(1, epochs * steps_per_epoch)
    warmup = min(int(round(cfg.warmup_epochs * steps_per_epoch)), total - 1)
    if cfg.name == "none":
        return None, False
    if cfg.name == "plateau":
        return lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=cfg.plateau_factor,
                                              patience=cfg.plateau_patience, min_lr=cfg.min_lr), False
    if cfg.name == "onecycle":
        if total < 3:
            raise ConfigError(f"schedule.name=onecycle needs at least 3 optimizer steps (one to warm up, one to "
                              f"anneal, one to end on), but {epochs} epoch(s) of {steps_per_epoch} step(s) give "
                              f"{total}; use more data or epochs, a smaller batch, or another schedule")
        max_lr = [g["lr"] for g in optimizer.param_groups]
        pct = warmup / total if warmup > 0 else 0.25
        # torch divides by each phase's length in steps (pct * total - 1, then the rest): keep both >= 1,
        # which only matters for tiny runs (a long warm-up over a few steps would divide by zero).
        pct = min(max(pct, 2 / total), (total - 1) / total)
        return lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total, pct_start=pct), True
    cosine = lr_scheduler.CosineAnnealingLR(optimizer, T_max=total - warmup, eta_min=cfg.min_lr)
    if warmup == 0:
        return cosine, True
    ramp = lr_scheduler.LinearLR(optimizer, start_factor=0.01, end_factor=1.0, total_iters=warmup)
    return lr_scheduler.SequentialLR(optimizer, [ramp, cosine], milestones=[warmup]), True
