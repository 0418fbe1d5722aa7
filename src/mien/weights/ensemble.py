"""Shipped ensembles: several shipped models whose class probabilities are averaged.

An ensemble NAME is a manifest `NAME.ensemble.json` in the same folder as its members, which are
ordinary shipped checkpoints (`MEMBER.safetensors` + `MEMBER.json` with a `shipped` block and a card
of their own). The manifest names the members, the test-time augmentation every member runs with,
and the numbers `ship_ensemble` measured (selection trace on PublicTest, PrivateTest once,
robustness). Members are referenced by name, so an ensemble folder can be moved as a whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, ModelError

SUFFIX = ".ensemble.json"
FORMAT = "mien-ensemble/1"


@dataclass(frozen=True)
class Ensemble:
    """A read and validated ensemble manifest."""

    name: str
    path: Path
    members: tuple[Path, ...]  # the members' .safetensors files, in manifest order
    class_names: tuple[str, ...]
    tta: str
    shipped: dict[str, Any]


def is_ensemble_manifest(path: str | Path) -> bool:
    return str(path).endswith(SUFFIX)


def ensemble_name(path: str | Path) -> str:
    return Path(path).name[: -len(SUFFIX)]


def list_ensembles(folder: str | Path | None = None) -> list[str]:
    """Names of the ensembles in `folder` (default: the package's weights folder)."""
    base = Path(folder) if folder is not None else Path(__file__).resolve().parent
    return sorted(ensemble_name(p) for p in base.glob(f"*{SUFFIX}"))


def read_ensemble(path: str | Path) -> Ensemble:
    """Read and validate a manifest: every member must be a shipped checkpoint beside it.

    Raises:
        CheckpointError: the file is not a mien ensemble manifest, or a member is missing or unshipped.
    """
    path = Path(path)
    if not is_ensemble_manifest(path):
        raise CheckpointError(f"{path} is not an ensemble manifest (NAME{SUFFIX})")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read ensemble manifest {path}: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise CheckpointError(f"{path}: format must be {FORMAT!r}, got {manifest.get('format')!r}")
    names = manifest.get("members")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise CheckpointError(f"{path}: members must be a non-empty list of shipped model names, got {names!r}")
    members = []
    for member in names:
        weights = path.parent / f"{member}.safetensors"
        sidecar = weights.with_suffix(".json")
        if not weights.is_file() or not sidecar.is_file():
            raise CheckpointError(f"{path}: member {member!r} has no {weights.name} + {sidecar.name} beside the manifest")
        meta = json.loads(sidecar.read_text())
        if tuple(meta["class_names"]) != tuple(manifest["class_names"]):
            raise CheckpointError(f"{path}: member {member!r} predicts {meta['class_names']}, "
                                  f"the ensemble {manifest['class_names']}")
        members.append(weights)
    shipped = manifest.get("shipped", {})
    return Ensemble(ensemble_name(path), path, tuple(members), tuple(manifest["class_names"]),
                    str(shipped.get("tta", "none")), shipped)


def write_manifest(path: Path, *, members: list[str], class_names: list[str], shipped: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"format": FORMAT, "members": members, "class_names": class_names,
                                "shipped": shipped}, indent=2))
    return path


def ensemble_probs(ensemble: Ensemble, images: Any, *, tta: str | None = None) -> Any:
    """(N, C) mean member probabilities on (N, H, W) uint8 faces, exactly as `ship_ensemble` measures.

    Each member runs with its own normalisation and input size, in fp32, and with the ensemble's TTA
    (or `tta`, when given).
    """
    from ..evaluate.run import checkpoint_probs
    from ..train.checkpoint import load_model
    from .ship import SHIPPED_PRECISION

    return mean_probs(checkpoint_probs(*load_model(member), images, tta=tta or ensemble.tta,
                                       precision=SHIPPED_PRECISION) for member in ensemble.members)


def mean_probs(member_probs: Iterable[Any]) -> Any:
    """The plain mean of the members' (N, C) probabilities: the one way every ensemble averages.

    Raises:
        CheckpointError: no members.
    """
    total, count = None, 0
    for p in member_probs:
        total, count = (p if total is None else total + p), count + 1
    if total is None:
        raise CheckpointError("an ensemble needs at least one member's probabilities")
    return total / count


def require_single_model(path: Path, what: str) -> None:
    """Raise a ModelError naming the members when `path` is an ensemble and `what` needs one network."""
    if is_ensemble_manifest(path):
        ens = read_ensemble(path)
        members = ", ".join(p.stem for p in ens.members)
        raise ModelError(f"{ens.name!r} is an ensemble; {what} takes one model: use one of its members ({members})")
