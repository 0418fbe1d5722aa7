"""Package an ensemble of shipped models: members and TTA chosen on PublicTest, PrivateTest once.

For each TTA mode, greedy forward selection (`mien.evaluate.selection.greedy_ensemble`) picks
members from the candidates by PublicTest accuracy; the (TTA, members) pair with the best PublicTest
accuracy wins (ties: no TTA, then fewer members). Only then is PrivateTest evaluated, once, and the
robustness table measured, and `NAME.ensemble.json` + `NAME.md` are written beside the members.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, DataError
from .ensemble import SUFFIX, mean_probs, read_ensemble, write_manifest
from .ship import SHIPPED_PRECISION, TTA_CHOICES, official_splits

_DIR = Path(__file__).resolve().parent


def _member_meta(folder: Path, name: str) -> dict[str, Any]:
    sidecar = folder / f"{name}.json"
    if not sidecar.is_file() or not sidecar.with_suffix(".safetensors").is_file():
        raise CheckpointError(f"candidate {name!r} is not a shipped model in {folder} "
                              f"(no {name}.safetensors + {name}.json); ship it first with scripts/ship_model.py")
    meta = json.loads(sidecar.read_text())
    if "shipped" not in meta:
        raise CheckpointError(f"candidate {name!r} in {folder} has no `shipped` block: ship it with scripts/ship_model.py")
    return meta


def ship_ensemble(candidates: list[str], *, name: str, folder: str | Path | None = None, max_members: int = 5,
                  source: str | Path | None = None, title: str | None = None, limits: str = "",
                  seed: int = 0) -> Path:
    """Select, evaluate and write the ensemble NAME from shipped candidates in `folder`.

    Args:
        candidates: names of shipped models in `folder` (at least one).
        name: the ensemble's name (`Recognizer(model=name)`).
        folder: where the candidates are and the manifest and card go (default: the package's weights).
        max_members: most members.
        source: FER2013 source overriding the first candidate's training config.
        title: the card's heading (default: the name).
        limits: extra Markdown bullets for the card's limits section.
        seed: seed of the robustness benchmark's noise.

    Returns:
        The manifest path.
    """
    import numpy as np

    from ..evaluate.metrics import classification_metrics
    from ..evaluate.robustness import robustness_table
    from ..evaluate.run import checkpoint_probs
    from ..evaluate.selection import greedy_ensemble
    from ..train.checkpoint import load_model
    from .card import render_ensemble_card

    folder = Path(folder) if folder is not None else _DIR
    if not candidates:
        raise DataError("ship_ensemble needs at least one candidate")
    if name in candidates or (folder / f"{name}.safetensors").exists():
        raise DataError(f"{name!r} already names a shipped model in {folder}; pick another ensemble name")
    metas = {c: _member_meta(folder, c) for c in candidates}
    classes = {c: tuple(m["class_names"]) for c, m in metas.items()}
    if len(set(classes.values())) != 1:
        raise CheckpointError(f"candidates predict different classes: {classes}")
    splits = official_splits(metas[candidates[0]]["config"], source)

    models = {c: load_model(folder / f"{c}.safetensors") for c in candidates}

    def probs(members: list[str], images: np.ndarray, tta: str) -> np.ndarray:
        return mean_probs(checkpoint_probs(*models[m], images, tta=tta, precision=SHIPPED_PRECISION)
                          for m in members)

    # Selection on PublicTest only.
    val = {tta: {c: probs([c], splits.val.images, tta) for c in candidates} for tta in TTA_CHOICES}
    traces = {tta: greedy_ensemble(val[tta], splits.val.labels, max_members=max_members) for tta in TTA_CHOICES}
    tta = max(TTA_CHOICES, key=lambda t: (traces[t][-1]["val_accuracy"], t == "none", -len(traces[t])))
    members = list(traces[tta][-1]["members"])
    # The members' PublicTest probabilities are already in `val`; average them rather than rerun the nets.
    val_by_tta = {t: float((mean_probs(val[t][m] for m in members).argmax(1) == splits.val.labels).mean())
                  for t in TTA_CHOICES}
    test_probs = probs(members, splits.test.images, tta)
    test = classification_metrics(splits.test.labels, test_probs, splits.test.names)
    robustness = robustness_table(lambda x: probs(members, x, tta), splits.test.images, splits.test.labels,
                                  generator=np.random.default_rng(seed), clean_probs=test_probs)
    shipped = {
        "name": name, "tta": tta, "val_accuracy": val_by_tta[tta], "val_accuracy_by_tta": val_by_tta,
        "selection": traces[tta], "candidates": list(candidates), "test_accuracy": test["accuracy"],
        "test_macro_f1": test["f1"]["macro"], "test_n": test["n"], "robustness": robustness,
    }
    member_rows = [{"name": m, "model": metas[m]["model"]["name"],
                    "val_accuracy": float((val[tta][m].argmax(1) == splits.val.labels).mean()),
                    **{k: metas[m]["shipped"][k] for k in ("test_accuracy", "command", "hardware", "training_minutes",
                                                           "starts_from") if k in metas[m]["shipped"]}}
                   for m in members]
    manifest = write_manifest(folder / f"{name}{SUFFIX}", members=members,
                              class_names=list(classes[candidates[0]]), shipped=shipped)
    (folder / f"{name}.md").write_text(render_ensemble_card(shipped=shipped, test=test, members=member_rows,
                                                            title=title or name, limits=limits))
    read_ensemble(manifest)  # what was written must load
    return manifest
