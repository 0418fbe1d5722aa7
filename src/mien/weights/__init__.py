"""Model weights shipped inside the package (safetensors + JSON sidecar + model card per name).

A shipped model NAME is the pair `NAME.safetensors` + `NAME.json` in this folder, a normal mien
checkpoint (see `mien.train.checkpoint`); a shipped ensemble NAME is a manifest `NAME.ensemble.json`
naming shipped models whose probabilities are averaged (see `mien.weights.ensemble`). Everything that
takes a model (`Recognizer`, `mien predict --model`, `mien export`) accepts a shipped name, a training
run directory or a checkpoint file, and resolves it with `resolve_model_source`; inference also takes
an ensemble.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import CheckpointError, ModelError

_DIR = Path(__file__).resolve().parent


def list_shipped(folder: str | Path | None = None) -> list[str]:
    """Names of the shipped models: every stem with both a .safetensors and a .json file in `folder`
    (default: the package's weights folder)."""
    base = Path(folder) if folder is not None else _DIR
    return sorted(p.stem for p in base.glob("*.safetensors") if p.with_suffix(".json").is_file())


def shipped_path(name: str) -> Path:
    """The `.safetensors` file of shipped model `name`.

    Raises:
        ModelError: no shipped model has that name (the message lists the available ones).
    """
    names = list_shipped()
    if name not in names:
        from .ensemble import list_ensembles

        available = ", ".join(names + list_ensembles()) or "none (the package was installed without its weights)"
        raise ModelError(f"no shipped model named {name!r}; shipped models: {available}")
    return _DIR / f"{name}.safetensors"


def resolve_model_source(spec: str | Path, *, allow_ensemble: bool = False) -> Path:
    """The checkpoint file (`.safetensors`) that `spec` names, or with `allow_ensemble` a manifest.

    Args:
        spec: a shipped model name ("default"), a training run directory (its `best` checkpoint is
            used), or a checkpoint file given as `X.safetensors`, `X.json` or `X`. A bare name (a
            `str` without a path separator or suffix) that is a shipped model wins over a folder of
            the same name in the working directory; write `./default` to mean the folder.
        allow_ensemble: also accept a shipped ensemble name or an `X.ensemble.json` manifest and
            return the manifest's path (inference averages its members; export and Grad-CAM need
            one network, so they leave this off).

    Raises:
        ModelError: `spec` is neither a shipped name nor an existing run directory or checkpoint,
            or it is an ensemble and `allow_ensemble` is off.
        CheckpointError: a run directory without a `best` checkpoint.
    """
    from ..train.checkpoint import resolve_checkpoint
    from .ensemble import SUFFIX, is_ensemble_manifest, list_ensembles, require_single_model

    if isinstance(spec, str) and _is_bare_name(spec) and spec in list_shipped():
        return shipped_path(spec)
    manifest = None
    if isinstance(spec, str) and _is_bare_name(spec) and spec in list_ensembles():
        manifest = _DIR / f"{spec}{SUFFIX}"
    elif is_ensemble_manifest(spec) and Path(spec).expanduser().is_file():
        manifest = Path(spec).expanduser()
    if manifest is not None:
        if not allow_ensemble:
            require_single_model(manifest, "this command")
        return manifest
    path = Path(spec).expanduser()
    if path.is_dir():
        return resolve_checkpoint(path)
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    weights = stem.with_name(stem.name + ".safetensors")
    if weights.is_file():
        if not weights.with_suffix(".json").is_file():
            raise CheckpointError(f"checkpoint {weights} has no JSON sidecar {weights.with_suffix('.json').name}")
        return weights
    shipped = ", ".join(list_shipped() + list_ensembles()) or "none"
    raise ModelError(
        f"model {str(spec)!r} is not a shipped model ({shipped}), a run directory or a checkpoint file "
        "(X.safetensors beside X.json)"
    )


def names_mien_checkpoint(spec: str) -> bool:
    """Whether `spec` names a mien checkpoint that `resolve_model_source` finds: a shipped single
    model's bare name, a run directory, or a file with its JSON sidecar."""
    path = Path(spec).expanduser()
    return (_is_bare_name(spec) and spec in list_shipped()) or path.is_dir() or path.with_suffix(".json").is_file()


def _is_bare_name(spec: str) -> bool:
    return "/" not in spec and "\\" not in spec and not Path(spec).suffix


def shipped_tta(meta: dict) -> str:
    """The test-time augmentation a checkpoint's model card was measured with ("none" if unshipped)."""
    return str(meta.get("shipped", {}).get("tta", "none"))


def checkpoint_tta(source: str | Path) -> str:
    """`shipped_tta` of a checkpoint file (X.safetensors beside X.json) or of an exported .onnx file
    (recorded at export); "none" for anything else."""
    import json

    from .ensemble import is_ensemble_manifest, read_ensemble

    if is_ensemble_manifest(source):
        return read_ensemble(source).tta
    if Path(source).suffix == ".onnx":
        from ..export.onnx import read_onnx_metadata

        return str(read_onnx_metadata(source).get("tta", "none"))
    sidecar = Path(source).with_suffix(".json")
    if Path(source).suffix != ".safetensors" or not sidecar.is_file():
        return "none"
    return shipped_tta(json.loads(sidecar.read_text()))
