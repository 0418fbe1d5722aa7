"""What the package ships, described from its sidecars and manifests: the data behind `mien models`.

Accuracies are the ones each card states (chosen on PublicTest, PrivateTest evaluated once); nothing
is re-measured here, so listing is instant and needs no dataset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from . import _DIR, list_shipped
from .ensemble import SUFFIX, list_ensembles, read_ensemble


@dataclass(frozen=True)
class ShippedModel:
    """One shipped model or ensemble, as its card describes it."""

    name: str
    kind: str  # "model" or "ensemble"
    architecture: str  # e.g. "resnet_small(widths=[16, 32, 64, 128])"; for an ensemble, "mean of a + b"
    members: tuple[str, ...]  # the ensemble's members; (name,) for a single model
    params: int  # trainable and frozen parameters, summed over an ensemble's members
    size_mb: float  # bytes on disk (weights + sidecar or manifest), in MB of 10**6 bytes
    tta: str
    val_accuracy: float | None  # PublicTest, with `tta`
    test_accuracy: float | None  # PrivateTest, with `tta`
    test_macro_f1: float | None
    card: Path | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "members": list(self.members), "card": str(self.card) if self.card else None}


def shipped_catalog(folder: str | Path | None = None) -> list[ShippedModel]:
    """Every shipped model, then every shipped ensemble, in name order.

    Raises:
        CheckpointError: a sidecar or manifest is unreadable or lacks its model description.
    """
    base = Path(folder) if folder is not None else _DIR
    singles = {name: _single(base, name) for name in list_shipped(base)}
    ensembles = [_ensemble(base, name, singles) for name in list_ensembles(base)]
    return list(singles.values()) + ensembles


def _single(base: Path, name: str) -> ShippedModel:
    weights, sidecar = base / f"{name}.safetensors", base / f"{name}.json"
    meta = _read_json(sidecar)
    spec, shipped = meta.get("model"), meta.get("shipped", {})
    if not isinstance(spec, dict) or "name" not in spec:
        raise CheckpointError(f"{sidecar}: no model description (a 'model' entry with a 'name')")
    kwargs = ", ".join(f"{k}={v}" for k, v in sorted(spec.get("kwargs", {}).items()))
    return ShippedModel(
        name=name, kind="model", architecture=f"{spec['name']}({kwargs})", members=(name,),
        params=_count_params(spec), size_mb=(weights.stat().st_size + sidecar.stat().st_size) / 1e6,
        tta=str(shipped.get("tta", "none")), val_accuracy=shipped.get("val_accuracy"),
        test_accuracy=shipped.get("test_accuracy"), test_macro_f1=shipped.get("test_macro_f1"),
        card=_card(base, name))


def _ensemble(base: Path, name: str, singles: dict[str, ShippedModel]) -> ShippedModel:
    manifest = base / f"{name}{SUFFIX}"
    ensemble = read_ensemble(manifest)  # validates that every member is shipped beside it
    members = tuple(p.stem for p in ensemble.members)
    return ShippedModel(
        name=name, kind="ensemble", architecture="mean of " + " + ".join(members), members=members,
        params=sum(singles[m].params for m in members),
        size_mb=manifest.stat().st_size / 1e6 + sum(singles[m].size_mb for m in members),
        tta=ensemble.tta, val_accuracy=ensemble.shipped.get("val_accuracy"),
        test_accuracy=ensemble.shipped.get("test_accuracy"), test_macro_f1=ensemble.shipped.get("test_macro_f1"),
        card=_card(base, name))


def _count_params(spec: dict[str, Any]) -> int:
    """Parameters of the network the sidecar describes (built, not loaded: the weights are not read)."""
    from ..models import count_params, model_from_spec

    return count_params(model_from_spec(spec))


def _card(base: Path, name: str) -> Path | None:
    card = base / f"{name}.md"
    return card if card.is_file() else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
