"""Self-describing checkpoints: `NAME.safetensors` (tensors) beside `NAME.json` (everything else).

The JSON sidecar names the model and its kwargs, the class names, the input normalisation, the
resolved config and the metrics, so inference, export and evaluation rebuild the model without
guessing. Loading never unpickles. Training-state checkpoints (`last`) also carry the optimizer
tensors and, in the sidecar, the optimizer's hyperparameters, the scheduler state and the history.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from ..files import write_atomically

FORMAT = "mien-checkpoint/1"
_MODEL, _OPTIM, _EMA = "model.", "optimizer.", "ema."


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def save_checkpoint(
    stem: str | Path,
    *,
    model: nn.Module,
    meta: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    ema: nn.Module | None = None,
) -> Path:
    """Write `stem.safetensors` and `stem.json` atomically; returns the safetensors path.

    `ema` (training-state checkpoints only): the weight average's whole state, for resuming it.
    """
    stem = Path(stem)
    tensors = {_MODEL + k: v.detach().contiguous().cpu() for k, v in _unwrap(model).state_dict().items()}
    meta = {"format": FORMAT, **meta}
    if ema is not None:
        tensors.update({_EMA + k: v.detach().contiguous().cpu() for k, v in ema.state_dict().items()})
    if optimizer is not None:
        state = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for pid, pstate in state["state"].items():
            for key, value in pstate.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"{_OPTIM}{pid}.{key}"] = value.detach().contiguous().cpu()
                else:
                    scalars.setdefault(str(pid), {})[key] = value
        meta["optimizer"] = {"param_groups": state["param_groups"], "scalars": scalars}
    path = write_weights(stem.with_suffix(".safetensors"), tensors, epoch=meta.get("epoch", ""))
    write_atomically(stem.with_suffix(".json"), lambda p: p.write_text(json.dumps(meta, indent=2)))
    return path


def write_weights(path: str | Path, tensors: dict[str, torch.Tensor], *, epoch: object) -> Path:
    """Write a checkpoint's safetensors atomically, tagged with the `epoch` its JSON sidecar records.

    The epoch is stored in both files so a kill between the two renames is detected on load.
    """
    from safetensors.torch import save_file

    def write(tmp: Path) -> None:
        save_file(tensors, str(tmp), metadata={"epoch": str(epoch)})
        # safetensors creates its files 0600; shipped weights must stay readable by every user of the package.
        tmp.chmod(0o644)

    path = Path(path)
    write_atomically(path, write)
    return path


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, meta) of a checkpoint given as `X.safetensors`, `X.json` or `X`; int8-stored weights
    (`mien.train.quantize`) come back as float32."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    stem = Path(path)
    if stem.suffix in (".safetensors", ".json"):
        stem = stem.with_suffix("")
    weights, sidecar = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    for p in (weights, sidecar):
        if not p.is_file():
            raise CheckpointError(f"checkpoint file {p} does not exist")
    try:
        meta = json.loads(sidecar.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"checkpoint sidecar {sidecar} is not valid JSON: {exc}") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{sidecar} is not a mien checkpoint (format {meta.get('format')!r}, expected {FORMAT})")
    with safe_open(str(weights), framework="pt") as f:
        tag = (f.metadata() or {}).get("epoch", "")
    if tag != str(meta.get("epoch", "")):
        raise CheckpointError(f"{weights} (epoch {tag}) and {sidecar} (epoch {meta.get('epoch')}) do not match")
    from .quantize import dequantize

    return dequantize(load_file(str(weights))), meta


def model_state(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len(_MODEL):]: v for k, v in tensors.items() if k.startswith(_MODEL)}


def ema_state(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weight average's state saved by `save_checkpoint(ema=...)`; empty when there is none."""
    return {k[len(_EMA):]: v for k, v in tensors.items() if k.startswith(_EMA)}


def optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Rebuild `optimizer.state_dict()` from a training-state checkpoint."""
    if "optimizer" not in meta:
        raise CheckpointError("this checkpoint holds no optimizer state (only `last` checkpoints do)")
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith(_OPTIM):
            pid, name = key[len(_OPTIM):].split(".", 1)
            state.setdefault(int(pid), {})[name] = value
    for pid, scalars in meta["optimizer"]["scalars"].items():
        state.setdefault(int(pid), {}).update(scalars)
    return {"state": state, "param_groups": meta["optimizer"]["param_groups"]}


def resolve_checkpoint(path: str | Path, *, which: str = "best") -> Path:
    """A run directory maps to its `which` checkpoint; a file path is returned as is."""
    path = Path(path)
    if path.is_dir():
        path = path / f"{which}.safetensors"
        if not path.is_file():
            raise CheckpointError(f"run directory {path.parent} has no {which} checkpoint ({path.name}); "
                                  "did training finish its first epoch?")
    return path


def load_model(path: str | Path, *, which: str = "best", device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model from a checkpoint file or run directory; returns (model in eval mode, meta)."""
    tensors, meta = read_checkpoint(resolve_checkpoint(path, which=which))
    return model_from_checkpoint(tensors, meta, where=path).to(device), meta


def model_from_checkpoint(tensors: dict[str, torch.Tensor], meta: dict[str, Any], *, where: object) -> nn.Module:
    """The model (eval mode, on CPU) that `read_checkpoint`'s (tensors, meta) describe; `where` names them in errors."""
    from ..models import model_from_spec

    spec = meta["model"]
    model = model_from_spec(spec)
    try:
        model.load_state_dict(model_state(tensors))
    except RuntimeError as exc:
        raise CheckpointError(f"weights in {where} do not fit model {spec['name']!r}: {exc}") from None
    # Pooling heads accept any size, so a wrong recorded size would otherwise go unnoticed.
    recorded = meta.get("input_size")
    if recorded is not None and tuple(recorded) != tuple(model.input_size):
        raise CheckpointError(f"checkpoint {where} records input_size {tuple(recorded)} but model {spec['name']!r} "
                              f"takes {tuple(model.input_size)}; the checkpoint's metadata is inconsistent")
    return model.eval()
