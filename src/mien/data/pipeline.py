"""From a DataConfig to train/val/test faces, and from uint8 faces to model input tensors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..config import DataConfig
from ..errors import DataError
from .arrays import FaceArrays


@dataclass(frozen=True)
class DataSplits:
    train: FaceArrays
    val: FaceArrays
    test: FaceArrays

    @property
    def names(self) -> tuple[str, ...]:
        return self.train.names


@dataclass(frozen=True)
class Normalization:
    """Input scaling applied after dividing by 255; stored in every checkpoint."""

    mean: float
    std: float

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std}


def load_faces(cfg: DataConfig) -> FaceArrays:
    """Read the configured source and keep only `cfg.classes`, labels remapped to that order."""
    from .balance import select_classes
    from .sources import default_source, load_source

    faces = load_source(cfg.source or default_source(), skip_bad=cfg.skip_bad)
    if tuple(cfg.classes) != tuple(faces.names):
        faces = select_classes(faces, cfg.classes)
    return faces


def split_faces(faces: FaceArrays, cfg: DataConfig, *, seed: int) -> DataSplits:
    """Split by `cfg.split`; the split happens before any augmentation, which only ever sees train."""
    from .splits import kfold_split, official_split, stratified_split, stratified_subset

    rng = np.random.default_rng(seed)
    if cfg.split == "official":
        idx = official_split(faces.usage)
    elif cfg.split == "stratified":
        idx = stratified_split(faces.labels, cfg.ratios, rng=rng)
    else:
        idx = kfold_split(faces.labels, folds=cfg.folds, fold=cfg.fold, rng=rng)
    train = idx.train
    if cfg.train_limit and cfg.train_limit < len(train):
        train = train[stratified_subset(faces.labels[train], cfg.train_limit, rng=rng)]
    if len(train) == 0 or len(idx.val) == 0:
        raise DataError(
            f"split {cfg.split!r} left {len(train)} training and {len(idx.val)} validation faces; "
            "a source without PublicTest faces needs data.split=stratified"
        )
    return DataSplits(faces.subset(train), faces.subset(idx.val), faces.subset(idx.test))


def load_splits(cfg: DataConfig, *, seed: int) -> DataSplits:
    return split_faces(load_faces(cfg), cfg, seed=seed)


def normalization_from(images: np.ndarray) -> Normalization:
    """Mean and std of uint8 training images, on the [0, 1] scale."""
    x = images.astype(np.float64) / 255.0
    return Normalization(mean=float(x.mean()), std=float(x.std()))


def as_batch(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(N, H, W) uint8 array -> (N, 1, H, W) uint8 tensor on `device` (the whole set fits: 80 MB)."""
    return torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1).to(device)


def model_input(
    x: torch.Tensor,
    *,
    normalization: Normalization,
    input_size: tuple[int, int],
    in_chans: int,
    channels_last: bool = True,
) -> torch.Tensor:
    """Float (B, 1, H, W) in [0, 1] -> normalised input at the model's size and channel count."""
    if x.shape[-2:] != tuple(input_size):
        x = F.interpolate(x, size=tuple(input_size), mode="bilinear", align_corners=False)
    x = (x - normalization.mean) / normalization.std
    if x.shape[1] != in_chans:
        if x.shape[1] != 1:
            raise DataError(f"cannot map {x.shape[1]}-channel input to a {in_chans}-channel model")
        x = x.expand(-1, in_chans, -1, -1)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()
