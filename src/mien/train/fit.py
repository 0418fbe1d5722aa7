"""`fit`: the epoch loop around `train_one_epoch` and `evaluate`.

It owns seeding, scheduling, early stopping, metrics.csv and checkpoints. Every epoch writes
`last` (weights + optimizer + scheduler + history) atomically, so `fit(..., resume=True)` after a
`kill -9` loses at most the epoch in flight and, because each epoch's randomness is seeded from
(seed, epoch), ends with the same metrics as an uninterrupted run.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..config import RunConfig, config_to_dict, load_config, same_experiment, save_config
from ..data.pipeline import DataSplits, as_batch, load_splits, normalization_from
from ..errors import CheckpointError, ConfigError
from ..files import write_atomically
from ..memory import retain_freed_memory
from . import distributed as ddp
from .checkpoint import ema_state, model_state, optimizer_state, read_checkpoint, save_checkpoint
from .finetune import apply_stage, hub_state, load_pretrained, param_groups
from .hardware import describe_hardware, resolve_device, resolve_precision
from .loop import InputSpec, evaluate, train_one_epoch
from .optim import build_optimizer, build_scheduler

METRICS_COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "val_f1", "images_per_s",
                   "seconds")


@dataclass(frozen=True)
class FitResult:
    run_dir: Path
    best_epoch: int
    best_value: float
    history: list[dict[str, float]]
    stopped_early: bool
    model: nn.Module
    """The trained model as it ended (the best weights are in run_dir/best.safetensors)."""


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 1_000_003 + epoch


def _better(value: float, best: float | None, monitor: str) -> bool:
    if best is None:
        return True
    return value < best if monitor == "val_loss" else value > best


def _write_metrics(path: Path, history: list[dict[str, float]]) -> None:
    # Rewritten whole each epoch so a resumed run never keeps rows of the lost epoch.
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=METRICS_COLUMNS)
            writer.writeheader()
            writer.writerows(history)

    write_atomically(path, write)


def _check_run_dir(cfg: RunConfig, run_dir: Path, *, resume: bool) -> None:
    """Fail before any work if the run directory cannot take (or resume) this run."""
    if resume:
        if not (run_dir / "last.safetensors").is_file():
            raise CheckpointError(f"cannot resume: {run_dir} has no last.safetensors (was an epoch finished?)")
        if not same_experiment(load_config(run_dir / "config.yaml"), cfg):
            raise ConfigError(f"cannot resume {run_dir} with a different config (only train.threads may "
                              "differ); resume with its own config.yaml")
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(f"run directory {run_dir} already holds a run; resume it (--resume) or choose another")


def _record_session(run_dir: Path, hardware: dict[str, Any], *, resumed_at: int) -> None:
    """Append where and when this (possibly resumed) session ran to run.json."""
    path = run_dir / "run.json"
    record = json.loads(path.read_text()) if path.exists() else {"sessions": []}
    record["sessions"].append({"started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                               "start_epoch": resumed_at, **hardware})
    path.write_text(json.dumps(record, indent=2))


def fit(
    cfg: RunConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    splits: DataSplits | None = None,
    progress: bool = True,
    log: Any = print,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> FitResult:
    """Train `cfg.model` on `cfg.data` (or on given `splits`), writing everything into `run_dir`.

    Writes config.yaml, run.json (hardware per session), metrics.csv, best.{safetensors,json}
    (chosen on the validation split by `cfg.train.monitor`) and last.{safetensors,json}.
    `on_epoch`, if given, gets each epoch's metrics row on the main process after that epoch's
    checkpoints are written; an exception it raises ends training (e.g. a tuner pruning a trial).
    """
    from ..data.augment import augment_batch, mixup_batch
    from ..data.balance import balanced_indices, class_weights
    from ..models import create_model

    run_dir = Path(run_dir)
    tc = cfg.train
    device = resolve_device(tc.device)
    dist_info = ddp.init_distributed(device)
    if device.type == "cuda" and dist_info.enabled:
        device = torch.device("cuda", dist_info.local_rank)
    precision = resolve_precision(tc.precision, device)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    retained = device.type == "cpu" and tc.retain_memory and retain_freed_memory()
    _check_run_dir(cfg, run_dir, resume=resume)
    ddp.barrier(dist_info)  # every rank checks before rank 0 creates the directory

    # The model is built before the data loads so a bad model name or kwarg fails at once.
    torch.manual_seed(tc.seed)
    model = create_model(cfg.model.name, num_classes=len(cfg.data.classes), **cfg.model.kwargs).to(device)
    ft = cfg.finetune
    freezing = ft.freeze_epochs > 0 or ft.unfreeze_top > 0
    if freezing and dist_info.enabled:
        raise ConfigError("finetune.freeze_epochs / unfreeze_top do not work with DDP (its reducer fixes the "
                          "trainable parameters at wrap time); train on one process")
    if not resume and (ft.weights or ft.hub):  # a resumed run's own weights come from `last`
        report = load_pretrained(model, ft.weights or None, state=hub_state(model) if ft.hub else None)
        if dist_info.main:
            log(f"mien: pretrained weights from {ft.weights or 'the hub'}: {report.summary()}")
    distill = None
    if cfg.distill.teacher:  # loaded before the data, so a bad teacher fails at once
        from .distill import distill_loss, load_teacher

        teacher = load_teacher(cfg.distill.teacher, class_names=cfg.data.classes, device=device, precision=precision,
                               channels_last=tc.channels_last)
        temperature = cfg.distill.temperature
        distill = lambda x, logits: distill_loss(logits, teacher.log_probs(x), temperature=temperature)  # noqa: E731
        if dist_info.main:
            log(f"mien: distilling from {teacher.source} ({len(teacher.members)} network(s)), "
                f"alpha {cfg.distill.alpha:g}, temperature {temperature:g}")
    splits = splits if splits is not None else load_splits(cfg.data, seed=tc.seed)
    names = splits.names
    if tuple(names) != tuple(cfg.data.classes):
        raise ConfigError(f"the data's classes {list(names)} differ from data.classes {list(cfg.data.classes)}")
    if dist_info.main and not resume:
        run_dir.mkdir(parents=True, exist_ok=True)  # only now: a failed start leaves no empty run dir
        save_config(cfg, run_dir / "config.yaml")
    ddp.barrier(dist_info)
    norm = normalization_from(splits.train.images)
    train_x, val_x = as_batch(splits.train.images, device), as_batch(splits.val.images, device)
    train_y = torch.from_numpy(splits.train.labels.astype(np.int64)).to(device)
    val_y = torch.from_numpy(splits.val.labels.astype(np.int64)).to(device)

    spec = dict(model.spec)
    if tc.channels_last:
        model = model.to(memory_format=torch.channels_last)
    inputs = InputSpec.for_model(model, norm, channels_last=tc.channels_last)
    optimizer = build_optimizer(cfg.optim, param_groups(model, lr=cfg.optim.lr, backbone_lr_scale=ft.backbone_lr_scale))
    steps = max(1, (len(train_x) // dist_info.world) // tc.batch_size)
    mode = "min" if tc.monitor == "val_loss" else "max"
    scheduler, per_step = build_scheduler(cfg.schedule, optimizer, epochs=tc.epochs, steps_per_epoch=steps, mode=mode)
    weights = None
    if cfg.data.balance == "weights":
        weights = torch.from_numpy(class_weights(splits.train.labels, len(names))).to(device)
    criterion = nn.CrossEntropyLoss(weight=weights, label_smoothing=tc.label_smoothing)

    history: list[dict[str, float]] = []
    start_epoch, best_value, best_epoch, bad_epochs = 0, None, -1, 0
    if resume:
        tensors, meta = read_checkpoint(run_dir / "last.safetensors")
        model.load_state_dict(model_state(tensors))
        optimizer.load_state_dict(optimizer_state(tensors, meta))
        if scheduler is not None:
            scheduler.load_state_dict(meta["scheduler"])
        history, start_epoch = meta["history"], meta["epoch"] + 1
        best_value, best_epoch, bad_epochs = meta["best_value"], meta["best_epoch"], meta["bad_epochs"]
        if meta["stopped_early"]:
            start_epoch = tc.epochs  # the run had already stopped early: nothing left to train
    ema = _weight_average(model, tc.ema_decay)
    if ema is not None and resume:
        saved = ema_state(tensors)
        if not saved:
            raise CheckpointError(f"{run_dir / 'last.safetensors'} holds no weight average, but train.ema_decay is "
                                  f"{tc.ema_decay}; resume with the run's own config")
        ema.load_state_dict(saved)
    raw_model = model
    if dist_info.enabled:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    hardware = describe_hardware(device, precision) | {"world_size": dist_info.world, "retain_memory": retained}
    if dist_info.main:
        _record_session(run_dir, hardware, resumed_at=start_epoch)
        if resume:
            # metrics.csv is written just after `last`, so a kill between the two leaves it an epoch
            # short; the checkpoint's history is the record
            _write_metrics(run_dir / "metrics.csv", history)
        log(f"mien: training {spec['name']} on {len(train_x)} faces ({len(names)} classes), validating on "
            f"{len(val_x)}; {hardware['device']} {precision} ({hardware['cpu_model']}), run dir {run_dir}")
    base_meta = {"model": spec, "class_names": list(names), "normalization": norm.to_dict(),
                 "input_size": list(inputs.input_size), "config": config_to_dict(cfg),
                 "versions": {"mien": __version__, "torch": torch.__version__}, "hardware": hardware}

    stopped_early = False
    for epoch in range(start_epoch, tc.epochs):
        seed = _epoch_seed(tc.seed, epoch)
        if freezing:
            stage = apply_stage(model, ft, epoch)
            if dist_info.main and (epoch == start_epoch or epoch == ft.freeze_epochs):
                log(f"finetune: epoch {epoch + 1} trains {stage}")
        torch.manual_seed(seed)  # dropout and any other global-RNG use in this epoch
        if cfg.data.balance == "sampler":
            order_np = balanced_indices(splits.train.labels, len(train_x), rng=np.random.default_rng(seed))
            order = torch.from_numpy(order_np.astype(np.int64))
        else:
            order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(seed))
        order = ddp.shard(order, dist_info).to(device)
        aug_gen = torch.Generator(device=device).manual_seed(seed + dist_info.rank)
        augment = (lambda x: augment_batch(x, cfg.augment, generator=aug_gen)) if cfg.augment.enabled else None
        mix = None
        if tc.mixup_alpha > 0:
            mix_rng = np.random.default_rng([seed, dist_info.rank, 1])  # its own stream: augmentation stays put
            mix = lambda x, y: mixup_batch(x, y, alpha=tc.mixup_alpha, rng=mix_rng)  # noqa: E731
        lr = optimizer.param_groups[0]["lr"]
        stats = train_one_epoch(model, train_x, train_y, order, batch_size=tc.batch_size, optimizer=optimizer,
                                criterion=criterion, inputs=inputs, precision=precision,
                                scheduler=scheduler if per_step else None, augment=augment, mix=mix,
                                after_step=(lambda: ema.update_parameters(raw_model)) if ema is not None else None,
                                distill=distill, distill_alpha=cfg.distill.alpha,
                                grad_clip=tc.grad_clip, progress=progress and dist_info.main,
                                desc=f"epoch {epoch + 1}/{tc.epochs}")
        sums = ddp.all_reduce_sum(torch.tensor([stats.loss * stats.images, stats.acc * stats.images,
                                                stats.images], dtype=torch.float64, device=device), dist_info)
        val = evaluate(ema.module if ema is not None else model, val_x, val_y, inputs=inputs, precision=precision, batch_size=tc.eval_batch_size)
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": (sums[0] / sums[2]).item(),
               "train_acc": (sums[1] / sums[2]).item(), "val_loss": val.loss, "val_acc": val.acc,
               "val_f1": val.macro_f1, "images_per_s": sums[2].item() / stats.seconds, "seconds": stats.seconds}
        history.append(row)
        value = row[tc.monitor]
        if scheduler is not None and not per_step:
            scheduler.step(value)
        improved = _better(value, best_value, tc.monitor)
        if improved:
            best_value, best_epoch, bad_epochs = value, epoch, 0
        else:
            bad_epochs += 1
        over_budget = False
        if tc.time_budget_s > 0:
            # Any rank past the budget stops them all, so DDP ranks never disagree on the last epoch.
            spent = torch.tensor([float(sum(h["seconds"] for h in history) >= tc.time_budget_s)], device=device)
            over_budget = ddp.all_reduce_sum(spent, dist_info).item() > 0
        stopped_early = (tc.early_stop > 0 and bad_epochs >= tc.early_stop) or over_budget
        if dist_info.main:
            metrics = {k: row[k] for k in ("val_loss", "val_acc", "val_f1", "train_loss", "train_acc")}
            if improved:
                save_checkpoint(run_dir / "best", model=ema.module if ema is not None else model,
                                meta=base_meta | {"epoch": epoch, "metrics": metrics})
            save_checkpoint(run_dir / "last", model=model, optimizer=optimizer, ema=ema,
                            meta=base_meta | {"epoch": epoch, "metrics": metrics, "history": history,
                                              "scheduler": scheduler.state_dict() if scheduler is not None else None,
                                              "best_value": best_value, "best_epoch": best_epoch,
                                              "bad_epochs": bad_epochs, "stopped_early": stopped_early})
            _write_metrics(run_dir / "metrics.csv", history)
            log(f"epoch {epoch + 1}/{tc.epochs}  loss {row['train_loss']:.4f}  acc {row['train_acc']:.4f}  "
                f"val_loss {val.loss:.4f}  val_acc {val.acc:.4f}  val_f1 {val.macro_f1:.4f}  "
                f"{row['images_per_s']:.0f} img/s  {stats.seconds:.0f}s" + ("  *" if improved else ""))
        ddp.barrier(dist_info)
        if on_epoch is not None and dist_info.main:
            on_epoch(dict(row))
        if stopped_early:
            if dist_info.main:
                log(f"time budget: {tc.time_budget_s:g} s of training spent after epoch {epoch + 1}" if over_budget
                    else f"early stop: {tc.monitor} has not improved for {bad_epochs} epochs")
            break
    if resume and start_epoch >= tc.epochs and dist_info.main:
        log(f"run {run_dir} had already finished; nothing to resume")
    ddp.shutdown(dist_info)
    best = math.nan if best_value is None else float(best_value)
    return FitResult(run_dir=run_dir, best_epoch=best_epoch + 1, best_value=best, history=history,
                     stopped_early=stopped_early,
                     model=ema.module if ema is not None else model.module if dist_info.enabled else model)


def _weight_average(model: nn.Module, decay: float) -> nn.Module | None:
    """An EMA of `model`'s parameters and buffers (torch's AveragedModel), or None when decay is 0."""
    if decay <= 0:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
