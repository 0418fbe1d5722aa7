"""Shared fixtures and helpers: synthetic faces (unit and system tests), the real FER2013 npz
(integration tests), and scripts run in-process."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from mien.config import AugmentConfig
from mien.data import FaceArrays
from mien.labels import EMOTIONS
from mien.memory import retain_freed_memory

REPO = Path(__file__).resolve().parents[1]

# Test batches are tiny: one intra-op thread is several times faster than two here, and far faster
# when the other core is busy (OpenMP threads spin-wait on each other).
torch.set_num_threads(1)
# As `mien train` and `mien evaluate` do: the integration tests' PrivateTest passes over 2.8M nets
# took 38 s instead of 64 s with freed memory reused (2-core AMD EPYC). No figure changes with it.
retain_freed_memory()


def real_npz_path() -> Path | None:
    """$MIEN_DATA, else ../shared/data/fer2013.npz beside the repository (where CI has it)."""
    env = os.environ.get("MIEN_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data" / "fer2013.npz")
    return next((p for p in candidates if p.is_file()), None)


@pytest.fixture(scope="session")
def fer_npz() -> Path:
    path = real_npz_path()
    if path is None:
        pytest.skip("FER2013 npz not found: set MIEN_DATA or put it at ../shared/data/fer2013.npz")
    return path


def make_faces(n: int = 140, *, seed: int = 0, size: int = 48, classes: int = 7) -> FaceArrays:
    """Learnable synthetic faces: each class brightens its own horizontal band of a noisy image.

    Usage is 70 % Training, 15 % PublicTest, 15 % PrivateTest, every class in every split.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    rng.shuffle(labels)
    images = rng.integers(0, 90, size=(n, size, size), dtype=np.int64)
    band = size // classes
    for i, c in enumerate(labels):
        images[i, c * band:(c + 1) * band, :] += 140
    usage = np.zeros(n, dtype=np.int8)
    order = rng.permutation(n)
    usage[order[int(0.7 * n):int(0.85 * n)]] = 1
    usage[order[int(0.85 * n):]] = 2
    return FaceArrays(np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int64), usage,
                      EMOTIONS[:classes])


AUGMENT_OFF = AugmentConfig(hflip=0.0, rotate=0.0, translate=0.0, scale=(1.0, 1.0), shear=0.0, crop_p=0.0,
                            brightness=0.0, contrast=0.0, erase_p=0.0)
"""Every augmentation off, so a test turns on only the op it checks (`augment_only`)."""


def augment_only(**changes: object) -> AugmentConfig:
    return dataclasses.replace(AUGMENT_OFF, **changes)


def torch_gen(seed: int = 0, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


@pytest.fixture
def faces() -> FaceArrays:
    return make_faces()


def load_script(path: Path) -> ModuleType:
    """A script in scripts/ or benchmarks/ as a module, without running its `__main__` block."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(path: Path, *argv: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """`python path argv...` in this process: the script's `main()`, which reads `sys.argv`.

    A fresh interpreter would import torch and its optimizer machinery again, several seconds a
    run on the slower CPUs here; tests that need a real process (a kill, native logs) spawn one.
    """
    module = load_script(path)
    monkeypatch.setattr("sys.argv", [str(path), *argv])
    return module.main()
