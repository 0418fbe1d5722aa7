"""Export a mien checkpoint to ONNX with a dynamic batch axis and self-describing metadata.

The graph maps `input` (B, in_chans, H, W) float32, already normalised (uint8 / 255, then
(x - mean) / std with the checkpoint's mean and std), to `logits` (B, num_classes), exactly like the
PyTorch model. Normalisation stays outside the graph so the exported model is the trained model
verbatim; the metadata says how to prepare the input. The metadata is stored twice: in the ONNX
file's `metadata_props` (one JSON value per key) and in a sidecar `OUT.json` (OUT = the .onnx path,
e.g. `model.onnx.json`), so it never clobbers a checkpoint sidecar named `model.json`.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ..files import write_atomically

FORMAT = "mien-onnx/1"
INPUT_NAME, OUTPUT_NAME = "input", "logits"


def weights_sha256(path: str | Path) -> str:
    """Hex sha256 of a file (the key of exported-model caches)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sidecar_path(onnx_path: str | Path) -> Path:
    """Where `export_onnx` writes the JSON metadata of `onnx_path`: the same name plus `.json`."""
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(onnx_path.name + ".json")


def export_onnx(model_source: str | Path, out_path: str | Path, *, opset: int = 17) -> Path:
    """Export a shipped model, run directory or checkpoint file to ONNX.

    Args:
        model_source: anything `mien.weights.resolve_model_source` accepts ("default", a run dir, a file).
        out_path: the .onnx file to write (its folder is created); `out_path + ".json"` gets the metadata.
        opset: ONNX opset version.

    Returns:
        `out_path` as a Path.
    """
    import onnx
    import torch

    from ..train.checkpoint import load_model
    from ..weights import resolve_model_source

    source = resolve_model_source(model_source)
    model, meta = load_model(source)
    out_path = Path(out_path)
    size = tuple(meta.get("input_size") or model.input_size)
    example = torch.zeros(2, int(model.in_chans), *size)
    metadata = onnx_metadata(meta, source=source, opset=opset, in_chans=int(model.in_chans), input_size=size)

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            # torch warns that the TorchScript exporter is deprecated; the dynamo one needs onnxscript.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            with torch.no_grad():
                torch.onnx.export(model, (example,), str(tmp), dynamo=False, opset_version=opset,
                                  input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                  dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
        proto = onnx.load(str(tmp))
        del proto.metadata_props[:]
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, json.dumps(value)
        proto.producer_name = "mien"
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))

    # a per-process temporary name: parallel exports of one cache entry never share it
    write_atomically(out_path, write)
    write_atomically(sidecar_path(out_path), lambda tmp: tmp.write_text(json.dumps(metadata, indent=2)))
    return out_path


def onnx_metadata(meta: dict[str, Any], *, source: Path, opset: int, in_chans: int,
                  input_size: tuple[int, ...]) -> dict[str, Any]:
    """What an ONNX export records about its checkpoint and how to feed it."""
    return {
        "format": FORMAT,
        "class_names": list(meta["class_names"]),
        "normalization": dict(meta["normalization"]),
        "model": dict(meta["model"]),
        "input_size": list(input_size),
        "input": {"name": INPUT_NAME, "shape": ["batch", in_chans, *input_size], "dtype": "float32",
                  "scaling": "uint8 / 255, then (x - mean) / std"},
        "output": {"name": OUTPUT_NAME, "shape": ["batch", len(meta["class_names"])], "kind": "raw logits"},
        "source": source.name,
        "weights_sha256": weights_sha256(source),
        "opset": opset,
        # the TTA the model card was measured with, so Recognizer(tta="auto") matches it on .onnx files too
        "tta": str(meta.get("shipped", {}).get("tta", "none")),
    }


def read_onnx_metadata(path: str | Path) -> dict[str, Any]:
    """The mien metadata of an exported .onnx file (from its metadata_props).

    Raises:
        CheckpointError: the file is missing, not ONNX, or not exported by mien.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ONNX file {path} does not exist")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends from protobuf
        raise CheckpointError(f"{path} is not a readable ONNX model: {exc}") from None
    try:
        metadata = {p.key: json.loads(p.value) for p in proto.metadata_props}
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} has metadata that is not mien's JSON: {exc}") from None
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path} was not exported by `mien export` (format {metadata.get('format')!r}, "
                              f"expected {FORMAT}); it lacks the class names and normalisation")
    return metadata
