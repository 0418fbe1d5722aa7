"""The declared search space and study settings of `mien tune`: typed, frozen, loaded from YAML.

A tune file has two sections, `space` (what to sample) and `study` (how many trials, pruning):

    space:
      search: [lr, weight_decay, batch_size]   # the rest keep the base run config's values
      lr: {low: 1.0e-4, high: 3.0e-3, log: true}
      batch_size: [64, 128]
    study:
      trials: 20
      epochs: 10
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import yaml

from ..config import AugmentConfig, RunConfig, apply_overrides, build_dataclass, read_yaml_mapping, require
from ..errors import ConfigError

Param = Literal["lr", "weight_decay", "dropout", "batch_size", "label_smoothing", "augment"]
PARAMS: tuple[str, ...] = ("lr", "weight_decay", "dropout", "batch_size", "label_smoothing", "augment")


@dataclass(frozen=True)
class Range:
    """A continuous interval; `log` samples uniformly in log space (needs low > 0)."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        require(self.low <= self.high, f"a search range needs low <= high, got low={self.low}, high={self.high}")
        require(not self.log or self.low > 0, f"a log-scale search range needs low > 0, got low={self.low}")


@dataclass(frozen=True)
class SearchSpace:
    """What each trial samples. Parameters not named in `search` keep the base config's value."""

    search: tuple[Param, ...] = PARAMS  # type: ignore[assignment]
    lr: Range = Range(1e-4, 1e-2, log=True)
    """optim.lr."""
    weight_decay: Range = Range(1e-6, 1e-2, log=True)
    """optim.weight_decay."""
    dropout: Range = Range(0.0, 0.5)
    """model.kwargs.dropout (the model must take a `dropout` argument)."""
    batch_size: tuple[int, ...] = (32, 64, 128)
    """train.batch_size, one of these."""
    label_smoothing: Range = Range(0.0, 0.2)
    """train.label_smoothing."""
    augment: Range = Range(0.0, 1.5)
    """Augmentation strength: multiplies the base config's augmentation magnitudes and probabilities
    (1 keeps them, 0 turns augmentation off); see `scale_augment`."""

    def __post_init__(self) -> None:
        require(len(self.search) > 0, f"space.search must name at least one of {', '.join(PARAMS)}")
        require(len(set(self.search)) == len(self.search), f"space.search names a parameter twice: {self.search}")
        require(len(self.batch_size) > 0 and all(b >= 1 for b in self.batch_size),
                f"space.batch_size must list positive batch sizes, got {self.batch_size}")
        require(self.dropout.high < 1, f"space.dropout must stay below 1, got high={self.dropout.high}")
        require(self.label_smoothing.high < 1,
                f"space.label_smoothing must stay below 1, got {self.label_smoothing.high}")
        require(self.lr.low > 0, f"space.lr needs low > 0, got {self.lr.low}")
        require(self.weight_decay.low >= 0 and self.augment.low >= 0,
                "space.weight_decay and space.augment must be >= 0")


@dataclass(frozen=True)
class StudyConfig:
    """How the study runs: its size, per-trial epochs and pruning."""

    trials: int = 20
    """Finished (complete or pruned) trials the study should hold; a rerun runs only the missing ones."""
    epochs: int = 0
    """Epochs per trial; 0 keeps the base config's train.epochs."""
    timeout_s: float = 0.0
    """Start no new trial after this many seconds of this session; 0: no limit."""
    sampler_seed: int = 0
    """Seed of the TPE sampler (offset by the number of earlier trials when a study resumes)."""
    startup_trials: int = 3
    """MedianPruner: trials that run to the end before any pruning."""
    warmup_epochs: int = 1
    """MedianPruner: epochs of each trial that are never pruned."""

    def __post_init__(self) -> None:
        require(self.trials >= 1, f"study.trials must be >= 1, got {self.trials}")
        require(self.epochs >= 0, f"study.epochs must be >= 0 (0 keeps train.epochs), got {self.epochs}")
        require(self.timeout_s >= 0, f"study.timeout_s must be >= 0, got {self.timeout_s}")
        require(self.startup_trials >= 0 and self.warmup_epochs >= 0,
                "study.startup_trials and study.warmup_epochs must be >= 0")


@dataclass(frozen=True)
class TuneConfig:
    space: SearchSpace = field(default_factory=SearchSpace)
    study: StudyConfig = field(default_factory=StudyConfig)


@dataclass(frozen=True)
class TrialParams:
    """One trial's sampled values; None means the base config's value is kept."""

    lr: float | None = None
    weight_decay: float | None = None
    dropout: float | None = None
    batch_size: int | None = None
    label_smoothing: float | None = None
    augment: float | None = None


def load_tune_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> TuneConfig:
    """Defaults, then the tune YAML at `path` (if any), then `space.x=...` / `study.x=...` overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        values = read_yaml_mapping(path, "tune file", shape="a mapping with `space` and `study` sections")
    for item in overrides:
        key, sep, raw = item.partition("=")
        section, _, name = key.strip().partition(".")
        if not sep or not name:
            raise ConfigError(f"tune override {item!r} must look like study.trials=10 or space.search=[lr]")
        values.setdefault(section, {})[name] = yaml.safe_load(raw)
    try:
        return build_dataclass(TuneConfig, values, "")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path is not None else str(exc)) from None


def scale_augment(cfg: AugmentConfig, strength: float) -> AugmentConfig:
    """`cfg` with every magnitude and probability (except the horizontal flip) scaled by `strength`.

    Rotation, shift, shear, brightness and contrast are multiplied; the scale range's distance
    from 1 is multiplied; crop and erase probabilities are multiplied and capped at 1. Strength 0
    turns augmentation off.
    """
    if strength < 0:
        raise ConfigError(f"augmentation strength must be >= 0, got {strength}")
    if strength == 0:
        return dataclasses.replace(cfg, enabled=False)
    lo, hi = cfg.scale
    return dataclasses.replace(
        cfg,
        rotate=cfg.rotate * strength, translate=min(cfg.translate * strength, 0.5), shear=cfg.shear * strength,
        scale=(max(1 - (1 - lo) * strength, 0.05), 1 + (hi - 1) * strength),
        brightness=cfg.brightness * strength, contrast=cfg.contrast * strength,
        crop_p=min(cfg.crop_p * strength, 1.0), erase_p=min(cfg.erase_p * strength, 1.0),
    )


def apply_params(base: RunConfig, params: TrialParams, *, epochs: int = 0) -> RunConfig:
    """The run config of one trial: `base` with the sampled values (and `epochs` if > 0) set."""
    cfg = base
    if params.lr is not None or params.weight_decay is not None:
        cfg = dataclasses.replace(cfg, optim=dataclasses.replace(
            cfg.optim, lr=cfg.optim.lr if params.lr is None else params.lr,
            weight_decay=cfg.optim.weight_decay if params.weight_decay is None else params.weight_decay))
    if params.dropout is not None:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(
            cfg.model, kwargs={**cfg.model.kwargs, "dropout": params.dropout}))
    if params.augment is not None:
        cfg = dataclasses.replace(cfg, augment=scale_augment(cfg.augment, params.augment))
    train = cfg.train
    if params.batch_size is not None:
        train = dataclasses.replace(train, batch_size=params.batch_size)
    if params.label_smoothing is not None:
        train = dataclasses.replace(train, label_smoothing=params.label_smoothing)
    if epochs > 0:
        train = dataclasses.replace(train, epochs=epochs)
    # Round-tripping through the validating loader catches values the dataclasses alone would accept.
    return apply_overrides(dataclasses.replace(cfg, train=train), [])
