"""The one in-memory form of a FER dataset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from ..labels import USAGES


@dataclass(frozen=True)
class FaceArrays:
    """Faces with labels and their FER2013 usage.

    Attributes:
        images: (N, 48, 48) uint8 grayscale faces.
        labels: (N,) int64 indices into `names`.
        usage: (N,) int8 codes into `labels.USAGES` (0 Training, 1 PublicTest, 2 PrivateTest).
        names: class names, in label order.
    """

    images: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 3 or self.images.dtype != np.uint8:
            raise DataError(f"images must be (N, H, W) uint8, got {self.images.shape} {self.images.dtype}")
        if self.labels.shape != (n,) or self.usage.shape != (n,):
            raise DataError(
                f"labels {self.labels.shape} and usage {self.usage.shape} must both be ({n},) like the images"
            )
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.names)):
            raise DataError(f"labels must lie in [0, {len(self.names)}), got [{self.labels.min()}, {self.labels.max()}]")
        if n and (self.usage.min() < 0 or self.usage.max() >= len(USAGES)):
            raise DataError(f"usage codes must lie in [0, {len(USAGES)}), got [{self.usage.min()}, {self.usage.max()}]")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: np.ndarray) -> FaceArrays:
        """The faces at `index` (an int array or boolean mask), names unchanged."""
        return FaceArrays(self.images[index], self.labels[index], self.usage[index], self.names)

    def class_counts(self) -> np.ndarray:
        """(C,) number of faces per class."""
        return np.bincount(self.labels, minlength=len(self.names))
