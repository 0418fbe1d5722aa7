"""`EnsembleBackend`: a shipped ensemble behind the same interface as one model's backend."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .backends import BACKENDS, OnnxBackend, TorchBackend, check_crops, create_backend


class EnsembleBackend:
    """Averages the class probabilities of an ensemble's members, each through its own backend.

    Every member keeps its own normalisation and input size; faces are aligned at the largest
    member input (`info.input_size`) and each member resizes from there.

    Args:
        manifest: an `X.ensemble.json` manifest (see `mien.weights.ensemble`).
        backend: "torch" or "onnx", for every member.
        device, batch_size, tta, threads, precision: as for `create_backend`, passed to every member.
    """

    def __init__(self, manifest: str | Path, *, backend: str = "torch", device: str = "cpu", batch_size: int = 256,
                 tta: str = "none", threads: int | None = None, precision: str = "fp32") -> None:
        from ..weights.ensemble import read_ensemble

        if backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self.ensemble = read_ensemble(manifest)
        self.members: list[TorchBackend | OnnxBackend] = [
            create_backend(backend, m, device=device, batch_size=batch_size, tta=tta, threads=threads,
                           precision=precision) for m in self.ensemble.members]
        largest = max(self.members, key=lambda m: m.info.input_size[0] * m.info.input_size[1])
        self.info = dataclasses.replace(largest.info, source=Path(manifest))
        self.name, self.tta, self.batch_size = backend, tta, batch_size

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.ensemble.class_names

    def probs(self, crops: np.ndarray) -> np.ndarray:
        """(N, H, W) uint8 aligned grayscale faces -> (N, C) float32 mean member probabilities."""
        crops = check_crops(crops)
        total = np.zeros((len(crops), len(self.class_names)), dtype=np.float32)
        for member in self.members:
            total += member.probs(crops)
        return total / len(self.members)
