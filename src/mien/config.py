"""The one typed run configuration: frozen dataclasses, YAML files and `a.b=c` overrides.

Defaults live here; a YAML file and command-line overrides only change them. Every value is
coerced to its declared type and validated, so a typo fails before any training starts.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import yaml

from .errors import ConfigError, DataError
from .labels import EMOTIONS, canonical_emotion


def require(ok: bool, message: str) -> None:
    """Raise ConfigError(message) unless `ok`: the validation step of every config dataclass."""
    if not ok:
        raise ConfigError(message)


@dataclass(frozen=True)
class DataConfig:
    """Where the faces come from and how they are split."""

    source: str = ""
    """Path to a FER2013 npz, csv or image folder; empty means $MIEN_DATA, then ../shared/data/fer2013.npz."""
    split: Literal["official", "stratified", "kfold"] = "official"
    """official: Training/PublicTest/PrivateTest as train/val/test; stratified: random `ratios`; kfold: fold `fold` of `folds`."""
    ratios: tuple[float, ...] = (0.8, 0.1, 0.1)
    """train/val[/test] fractions for the stratified split (reports use 80/10/10, 80/20 and 60/20/20)."""
    folds: int = 5
    fold: int = 0
    classes: tuple[str, ...] = EMOTIONS
    """Classes to train on; others are dropped and labels remapped (e.g. six without disgust)."""
    train_limit: int = 0
    """If > 0, a stratified random subset of this many training faces (for quick runs)."""
    balance: Literal["none", "weights", "sampler"] = "none"
    """Class imbalance: loss weights 1/n_c normalised to sum to |C|, or a class-balanced sampler."""
    skip_bad: bool = False
    """Skip malformed CSV rows instead of failing."""

    def __post_init__(self) -> None:
        require(len(self.ratios) in (2, 3), f"data.ratios needs 2 or 3 fractions, got {self.ratios}")
        require(all(r >= 0 for r in self.ratios) and abs(sum(self.ratios) - 1) < 1e-6,
                f"data.ratios must be non-negative and sum to 1, got {self.ratios}")
        require(self.folds >= 2, f"data.folds must be >= 2, got {self.folds}")
        require(0 <= self.fold < self.folds, f"data.fold must lie in [0, {self.folds}), got {self.fold}")
        require(len(self.classes) >= 2, f"data.classes needs at least 2 classes, got {self.classes}")
        try:
            canonical = tuple(canonical_emotion(c) for c in self.classes)
        except DataError as exc:
            raise ConfigError(f"data.classes: {exc}") from None
        require(len(set(canonical)) == len(canonical), f"data.classes has duplicates: {self.classes}")
        object.__setattr__(self, "classes", canonical)
        require(self.train_limit >= 0, f"data.train_limit must be >= 0, got {self.train_limit}")


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation; probabilities are per sample, ranges are symmetric."""

    enabled: bool = True
    hflip: float = 0.5
    rotate: float = 10.0
    """Maximum rotation in degrees."""
    translate: float = 0.1
    """Maximum shift as a fraction of the image side."""
    scale: tuple[float, float] = (0.9, 1.1)
    shear: float = 0.0
    """Maximum shear in degrees."""
    crop_p: float = 0.0
    """Probability of a random resized crop."""
    crop_scale: tuple[float, float] = (0.75, 1.0)
    """Area fraction range of the random resized crop."""
    brightness: float = 0.2
    contrast: float = 0.2
    gamma: float = 0.0
    """Gamma exponent drawn log-uniformly from [1/(1+gamma), 1+gamma]; 0 turns it off."""
    blur_p: float = 0.0
    """Probability of a Gaussian blur with sigma uniform in (0, blur_sigma] pixels."""
    blur_sigma: float = 1.2
    sharpen_p: float = 0.0
    """Probability of an unsharp mask (radius-1 blur) with amount uniform in (0, sharpen]."""
    sharpen: float = 2.0
    noise_p: float = 0.0
    """Probability of additive Gaussian noise with std uniform in (0, noise_std] (images in [0, 1])."""
    noise_std: float = 0.06
    jpeg_p: float = 0.0
    """Probability of a JPEG round trip (8x8 DCT quantisation) at a quality uniform in jpeg_quality."""
    jpeg_quality: tuple[float, float] = (20.0, 90.0)
    erase_p: float = 0.0
    """Probability of random erasing."""
    erase_scale: tuple[float, float] = (0.02, 0.2)

    def __post_init__(self) -> None:
        for name in ("hflip", "crop_p", "erase_p", "blur_p", "sharpen_p", "noise_p", "jpeg_p"):
            value = getattr(self, name)
            require(0 <= value <= 1, f"augment.{name} is a probability in [0, 1], got {value}")
        for name in ("rotate", "translate", "shear", "brightness", "contrast", "gamma", "sharpen", "noise_std"):
            require(getattr(self, name) >= 0, f"augment.{name} must be >= 0, got {getattr(self, name)}")
        lo, hi = self.jpeg_quality
        require(1 <= lo <= hi <= 100,
                f"augment.jpeg_quality must be (low, high) with 1 <= low <= high <= 100, got {self.jpeg_quality}")
        require(0 < self.blur_sigma <= 3, f"augment.blur_sigma must lie in (0, 3] pixels, got {self.blur_sigma}")
        for name in ("scale", "crop_scale", "erase_scale"):
            lo, hi = getattr(self, name)
            require(0 < lo <= hi, f"augment.{name} must be (low, high) with 0 < low <= high, got {(lo, hi)}")
        require(self.crop_scale[1] <= 1 and self.erase_scale[1] < 1,
                f"augment.crop_scale and erase_scale are area fractions <= 1, got {self.crop_scale}, {self.erase_scale}")


@dataclass(frozen=True)
class ModelConfig:
    name: str = "resnet_small"
    """A name from `mien.models.list_models()`."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for the model's constructor (e.g. widths, dropout)."""

    def __post_init__(self) -> None:
        require(bool(self.name.strip()), "model.name must name a registered model, e.g. resnet_small")


@dataclass(frozen=True)
class FinetuneConfig:
    """Transfer learning (reports 001, 003): start from pretrained weights, train the head with the
    backbone frozen, then unfreeze the backbone's top layers at a lower learning rate."""

    weights: str = ""
    """Pretrained weights: a safetensors state dict (timm key names for the timm models, e.g. ImageNet
    weights saved with safetensors from a timm model) or a mien checkpoint: a file, a run directory (its
    `best`) or a shipped model's name, which warm-restarts training from it; empty: start from scratch."""
    hub: bool = False
    """Download ImageNet weights through timm instead (needs network; timm models only)."""
    freeze_epochs: int = 0
    """Epochs at the start during which only the head trains (backbone weights and BN statistics fixed)."""
    unfreeze_top: int = 0
    """After `freeze_epochs`, train only the top N parameterised layers of the backbone; 0: all of it."""
    backbone_lr_scale: float = 1.0
    """The backbone trains at optim.lr times this (the head at optim.lr); report 001: 1e-5 / 1e-4 = 0.1."""

    def __post_init__(self) -> None:
        require(not (self.weights and self.hub),
                f"finetune.weights ({self.weights}) and finetune.hub=true both name the weights; choose one")
        require(self.freeze_epochs >= 0, f"finetune.freeze_epochs must be >= 0, got {self.freeze_epochs}")
        require(self.unfreeze_top >= 0, f"finetune.unfreeze_top must be >= 0 (0 unfreezes all), got {self.unfreeze_top}")
        require(bool(self.weights or self.hub) or (self.freeze_epochs == 0 and self.unfreeze_top == 0),
                f"finetune.freeze_epochs={self.freeze_epochs} / unfreeze_top={self.unfreeze_top} would freeze "
               "randomly initialised layers; set finetune.weights=PATH (or finetune.hub=true when online)")
        require(self.backbone_lr_scale > 0,
                f"finetune.backbone_lr_scale must be > 0, got {self.backbone_lr_scale}")


def teacher_parts(teacher: str) -> tuple[str, ...]:
    """The model sources a `distill.teacher` string names: "a + b" -> ("a", "b").

    Raises:
        ConfigError: a part between "+" signs is empty.
    """
    parts = tuple(part.strip() for part in teacher.split("+"))
    require(all(parts), f"distill.teacher {teacher!r} has an empty part between '+' signs")
    return parts


@dataclass(frozen=True)
class DistillConfig:
    """Knowledge distillation: loss = (1 - alpha) * hard-label loss + alpha * T^2 * KL(teacher || student)."""

    teacher: str = ""
    """A shipped model or ensemble name ("ensemble"), a run directory or a checkpoint; several joined
    by "+" ("resnet_small_ema_seed4+deep_cnn") average their members' probabilities, which names an
    ensemble's members for good (the shipped `ensemble` is re-chosen as models ship); empty: off.
    It must predict the same classes as the student."""
    alpha: float = 0.5
    """Weight of the soft (teacher) term."""
    temperature: float = 2.0
    """Softening of both distributions in the soft term."""

    def __post_init__(self) -> None:
        require(0 < self.alpha <= 1, f"distill.alpha must lie in (0, 1], got {self.alpha}")
        require(self.temperature > 0, f"distill.temperature must be > 0, got {self.temperature}")
        if self.teacher:
            teacher_parts(self.teacher)


@dataclass(frozen=True)
class OptimConfig:
    name: Literal["adam", "adamw", "sgd"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 5e-4
    momentum: float = 0.9
    """SGD momentum (SGD always uses Nesterov when momentum > 0 and `nesterov`)."""
    nesterov: bool = True

    def __post_init__(self) -> None:
        require(self.lr > 0, f"optim.lr must be > 0, got {self.lr}")
        require(self.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {self.weight_decay}")
        require(0 <= self.momentum < 1, f"optim.momentum must lie in [0, 1), got {self.momentum}")


@dataclass(frozen=True)
class ScheduleConfig:
    name: Literal["none", "plateau", "cosine", "onecycle"] = "cosine"
    warmup_epochs: float = 1.0
    """Linear warm-up length for cosine (one-cycle uses it as its rising phase)."""
    min_lr: float = 1e-6
    plateau_factor: float = 0.5
    plateau_patience: int = 3

    def __post_init__(self) -> None:
        require(self.warmup_epochs >= 0, f"schedule.warmup_epochs must be >= 0, got {self.warmup_epochs}")
        require(self.min_lr >= 0, f"schedule.min_lr must be >= 0, got {self.min_lr}")
        require(0 < self.plateau_factor < 1, f"schedule.plateau_factor must lie in (0, 1), got {self.plateau_factor}")
        require(self.plateau_patience >= 0, f"schedule.plateau_patience must be >= 0, got {self.plateau_patience}")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 128
    eval_batch_size: int = 512
    label_smoothing: float = 0.0
    grad_clip: float = 0.0
    """Clip the gradient norm to this value; 0 turns clipping off."""
    monitor: Literal["val_acc", "val_loss", "val_f1"] = "val_acc"
    """Validation metric that picks the best checkpoint and drives early stopping and plateau schedules."""
    early_stop: int = 0
    """Stop after this many epochs without improvement of `monitor`; 0 turns it off."""
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """auto: bf16 autocast on CUDA and on CPUs with native bf16 matrix units (AMX, AVX512-BF16), else fp32."""
    channels_last: bool = True
    threads: int = 0
    """torch intra-op threads on CPU; 0 keeps torch's default (one per core)."""
    retain_memory: bool = True
    """On CPU under glibc, keep freed memory for reuse instead of returning it to the kernel
    (`mien.memory.retain_freed_memory`): the large per-step buffers then cost no fresh page
    faults, ~25 % of a small CNN's step on a 2-core AVX2 CPU. Process-wide; the process keeps its
    peak heap."""
    time_budget_s: float = 0.0
    """Stop after the first epoch at which the summed training seconds (metrics.csv `seconds`, resumed
    sessions included) reach this; 0 turns it off. The schedule still spans `epochs`."""
    ema_decay: float = 0.0
    """Keep an exponential moving average of the weights and batch-norm statistics, updated after
    every optimizer step with this decay; validation, `best` checkpoints and shipping use the
    average. 0 turns it off; 0.999 averages over roughly the last thousand steps."""
    mixup_alpha: float = 0.0
    """Mixup: blend each training batch with a shuffled copy of itself by lam ~ Beta(alpha, alpha)
    and blend the two labels' losses alike; 0 turns it off (0.2-0.4 is usual)."""

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size"):
            require(getattr(self, name) >= 1, f"train.{name} must be >= 1, got {getattr(self, name)}")
        require(0 <= self.label_smoothing < 1, f"train.label_smoothing must lie in [0, 1), got {self.label_smoothing}")
        require(self.grad_clip >= 0, f"train.grad_clip must be >= 0, got {self.grad_clip}")
        require(self.early_stop >= 0, f"train.early_stop must be >= 0, got {self.early_stop}")
        require(self.threads >= 0, f"train.threads must be >= 0, got {self.threads}")
        require(0 <= self.ema_decay < 1, f"train.ema_decay must lie in [0, 1) (0 turns it off), got {self.ema_decay}")
        require(self.mixup_alpha >= 0, f"train.mixup_alpha must be >= 0 (0 turns it off), got {self.mixup_alpha}")
        require(math.isfinite(self.time_budget_s) and self.time_budget_s >= 0,
                f"train.time_budget_s must be a number of seconds >= 0 (0 turns it off), got {self.time_budget_s}")


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Convert a YAML/CLI value to the declared type `hint`, or raise ConfigError naming `where`."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return build_dataclass(hint, value, where)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{where} must be one of {', '.join(map(str, allowed))}; got {value!r}")
        return value
    if origin is tuple:
        args = typing.get_args(hint)
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where} needs {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return dict(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{where} must be an integer, got {value!r}") from None
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a number, got {value!r}") from None
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return str(value)
    if isinstance(hint, types.UnionType) or origin is typing.Union:
        raise ConfigError(f"{where}: union types are not supported in configs")
    return value


def build_dataclass(cls: type, values: dict[str, Any], where: str = "") -> Any:
    """An instance of config dataclass `cls` from plain values, coerced to its field types (nested
    dataclasses too); unknown keys are a ConfigError naming the key path under `where`."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"unknown config key {prefix}{unknown[0]}; known keys: {', '.join(sorted(names))}")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in values.items()}
    return cls(**kwargs)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A plain dict (lists for tuples) that YAML and JSON can store and `config_from_dict` reads back."""

    def plain(v: Any) -> Any:
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {f.name: (config_to_dict(getattr(cfg, f.name)) if dataclasses.is_dataclass(getattr(cfg, f.name))
                     else plain(getattr(cfg, f.name))) for f in dataclasses.fields(cfg)}


# Fields that say where a run executes, not what it computes: a run may resume, and a finished
# comparison entry is recognised, under another value (e.g. a different core count).
EXECUTION_ONLY: tuple[tuple[str, str], ...] = (("train", "threads"), ("train", "retain_memory"))


def experiment_dict(cfg: RunConfig | dict[str, Any]) -> dict[str, Any]:
    """`config_to_dict(cfg)` without the `EXECUTION_ONLY` fields.

    A dict (e.g. one stored by an older version) is read with `config_from_dict` first, so fields
    added since then compare at their defaults.
    """
    values = config_to_dict(cfg if dataclasses.is_dataclass(cfg) else config_from_dict(cfg))
    for section, name in EXECUTION_ONLY:
        if isinstance(values.get(section), dict):
            values[section] = {k: v for k, v in values[section].items() if k != name}
    return values


def same_experiment(a: RunConfig | dict[str, Any], b: RunConfig | dict[str, Any]) -> bool:
    """True when two configs (dataclasses or `config_to_dict` dicts) differ at most in `EXECUTION_ONLY` fields."""
    return experiment_dict(a) == experiment_dict(b)


def config_from_dict(values: dict[str, Any]) -> RunConfig:
    """Build and validate a RunConfig from nested dicts; missing keys keep their defaults."""
    if not isinstance(values, dict):
        raise ConfigError(f"a config must be a mapping at the top level, got {type(values).__name__}")
    return build_dataclass(RunConfig, values, "")


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted}: {key} is not a section")
        node = child
    node[keys[-1]] = value


def apply_overrides(cfg: RunConfig, overrides: Sequence[str]) -> RunConfig:
    """Apply `section.key=value` overrides (values parsed as YAML, then coerced to the field's type)."""
    tree = config_to_dict(cfg)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} must look like section.key=value, e.g. optim.lr=5e-4")
        key = key.strip()
        if "." not in key:
            raise ConfigError(f"override {item!r} must name a section, e.g. train.{key}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: cannot parse value: {exc}") from None
        _set_path(tree, key, value)
    return config_from_dict(tree)


BASE_KEY = "base"


def _merge(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """`parent` with `child` laid over it: sections (dicts) merge key by key, anything else replaces."""
    out = dict(parent)
    for key, value in child.items():
        out[key] = _merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return out


def read_yaml_mapping(path: Path, what: str = "config file", note: str = "",
                      shape: str = "a mapping at the top level") -> dict[str, Any]:
    """The mapping stored in the YAML file at `path` ({} when empty); a missing file, bad YAML or a
    top level that is not a mapping is a ConfigError naming the `what` at `path` (and `note`, or
    the `shape` expected)."""
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist{note}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{what} {path} must be {shape}, got {type(values).__name__}")
    return values


def _read_tree(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The plain values of the YAML file at `path` laid over those of its `base:` file (a path
    relative to `path`'s folder), recursively; `chain` holds the files already being read."""
    values = read_yaml_mapping(path, note=f" (the base of {chain[-1]})" if chain else "")
    resolved = path.resolve()
    if resolved in chain:
        raise ConfigError("config bases form a cycle: " + " -> ".join(str(p) for p in (*chain, resolved)))
    if BASE_KEY not in values:
        return values
    base = values.pop(BASE_KEY)
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"{path}: {BASE_KEY} must name another config file, got {base!r}")
    return _merge(_read_tree(path.parent / base, (*chain, resolved)), values)


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """Defaults, then the YAML file at `path` (if any; laid over the file its `base:` key names,
    so an experiment file holds only what it changes), then `overrides`."""
    cfg = RunConfig()
    if path is not None:
        path = Path(path)
        values = _read_tree(path)
        try:
            cfg = config_from_dict(values)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    return apply_overrides(cfg, overrides)


def save_config(cfg: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
