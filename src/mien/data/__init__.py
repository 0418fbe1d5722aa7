"""FER2013 data: sources (csv, image folders, npz), splits, augmentation, class balance."""

from .arrays import FaceArrays

__all__ = ["FaceArrays"]
