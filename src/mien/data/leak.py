"""Report 003's split leak, reproducible: augmented copies made before the split.

Report 003 made 5 augmented copies of every face (rotation 10 degrees, shifts and zoom 10 %,
horizontal flips) and then split all copies 60/20/20 at random, so almost every test copy has a
sibling -- the same photo, slightly moved -- in the training split, and test accuracy measures
recall of seen photos as much as recognition. `copies_split` makes that leaky split and the honest
one (all copies of an original on one side) over the same expanded set, so the same model trained
on each shows the gap; `benchmarks/split_leak.py` runs it on FER2013.

Pure: arrays in, arrays out; randomness only from the caller's generators.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..config import AugmentConfig
from ..errors import DataError
from .augment import augment_batch
from .splits import SplitIndices, stratified_split

# Report 003's ImageDataGenerator settings.
REPORT_003_AUGMENT = AugmentConfig(hflip=0.5, rotate=10.0, translate=0.1, scale=(0.9, 1.1))


def expand_copies(images: np.ndarray, copies: int, *, cfg: AugmentConfig = REPORT_003_AUGMENT,
                  generator: torch.Generator, batch_size: int = 1024) -> np.ndarray:
    """(N, H, W) uint8 -> (N * copies, H, W) uint8 augmented copies; copy k of face i is row i * copies + k."""
    if copies < 1:
        raise DataError(f"copies must be >= 1, got {copies}")
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"images must be (N, H, W) uint8, got {images.shape} {images.dtype}")
    repeated = np.repeat(images, copies, axis=0)
    out = np.empty_like(repeated)
    for start in range(0, len(repeated), batch_size):
        x = torch.from_numpy(repeated[start:start + batch_size]).unsqueeze(1).float().div_(255.0)
        y = augment_batch(x, cfg, generator=generator)
        out[start:start + len(x)] = y.mul_(255.0).round_().clamp_(0, 255).to(torch.uint8).squeeze(1).numpy()
    return out


def copies_split(labels: np.ndarray, copies: int, *, ratios: Sequence[float] = (0.6, 0.2, 0.2),
                 rng: np.random.Generator, leaky: bool) -> SplitIndices:
    """Stratified train/val/test indices into the expanded set of `expand_copies`.

    Args:
        labels: (N,) labels of the originals.
        copies: copies per original.
        ratios: train/val/test fractions.
        rng: the split's randomness.
        leaky: True splits the copies themselves (report 003's procedure); False splits the
            originals and gives each split all copies of its originals (no sibling crosses a split).
    """
    labels = np.asarray(labels)
    if copies < 1:
        raise DataError(f"copies must be >= 1, got {copies}")
    if leaky:
        return stratified_split(np.repeat(labels, copies), ratios, rng=rng)
    by_original = stratified_split(labels, ratios, rng=rng)

    def expand(index: np.ndarray) -> np.ndarray:
        return (index[:, None] * copies + np.arange(copies)[None, :]).reshape(-1)

    return SplitIndices(expand(by_original.train), expand(by_original.val), expand(by_original.test))


def sibling_rate(train: np.ndarray, test: np.ndarray, copies: int) -> float:
    """Fraction of test copies whose original also has a copy in `train` (0 for an honest split)."""
    if len(test) == 0:
        raise DataError("sibling_rate needs a non-empty test split")
    seen = np.isin(np.asarray(test) // copies, np.asarray(train) // copies)
    return float(seen.mean())
