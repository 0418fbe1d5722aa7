"""ONNX export: parity with PyTorch, dynamic batch, metadata, the `mien export` CLI, weights registry."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mien.errors import CheckpointError, ModelError
from mien.export import export_onnx, read_onnx_metadata
from mien.labels import EMOTIONS
from mien.train.checkpoint import load_model, save_checkpoint
from mien.weights import list_shipped, resolve_model_source, shipped_path


def make_checkpoint(folder: Path, *, seed: int = 0) -> Path:
    """A randomly initialised baseline_cnn saved as a run directory's `best` checkpoint."""
    from mien.models import create_model

    torch.manual_seed(seed)
    model = create_model("baseline_cnn", num_classes=7, in_chans=1)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"model": model.spec, "class_names": list(EMOTIONS), "normalization": {"mean": 0.5, "std": 0.25},
            "input_size": [48, 48], "epoch": 0}
    return save_checkpoint(folder / "best", model=model, meta=meta)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("run")
    make_checkpoint(folder)
    return folder


@pytest.fixture(scope="module")
def exported(run_dir: Path) -> Path:
    return export_onnx(run_dir, run_dir / "model.onnx")


def _session(path: Path):  # noqa: ANN202
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("batch", [1, 5])
def test_onnx_logits_match_torch_on_random_batches(run_dir: Path, exported: Path, batch: int) -> None:
    model, _ = load_model(run_dir)
    x = torch.randn(batch, 1, 48, 48, generator=torch.Generator().manual_seed(batch))
    (got,) = _session(exported).run(["logits"], {"input": x.numpy()})
    with torch.no_grad():
        want = model(x).numpy()
    assert got.shape == (batch, 7)
    assert np.abs(got - want).max() < 1e-4


def test_export_has_a_dynamic_batch_axis_and_names(exported: Path) -> None:
    import onnx

    proto = onnx.load(str(exported))
    onnx.checker.check_model(proto)
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert (inp.name, out.name) == ("input", "logits")
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and not dims[0].dim_value
    assert [d.dim_value for d in dims[1:]] == [1, 48, 48]
    assert out.type.tensor_type.shape.dim[0].dim_param == "batch"


def test_metadata_is_in_the_model_and_the_sidecar(run_dir: Path, exported: Path) -> None:
    meta = read_onnx_metadata(exported)
    assert meta["class_names"] == list(EMOTIONS)
    assert meta["normalization"] == {"mean": 0.5, "std": 0.25}
    assert meta["model"]["name"] == "baseline_cnn"
    assert meta["input"]["shape"] == ["batch", 1, 48, 48]
    sidecar = json.loads((run_dir / "model.onnx.json").read_text())
    assert sidecar == meta


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter's notice
def test_a_foreign_onnx_file_is_refused_with_the_reason(tmp_path: Path) -> None:
    from mien.models import create_model

    path = tmp_path / "plain.onnx"
    model = create_model("baseline_cnn").eval()
    torch.onnx.export(model, (torch.zeros(1, 1, 48, 48),), str(path), dynamo=False)
    with pytest.raises(CheckpointError, match="not exported by `mien export`"):
        read_onnx_metadata(path)
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(CheckpointError, match="junk.onnx"):
        read_onnx_metadata(tmp_path / "junk.onnx")


def _cli(argv: list[str]) -> argparse.Namespace:
    from mien.cli import export as export_cli

    parser = argparse.ArgumentParser(prog="mien")
    export_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_exports_a_run_dir_beside_its_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import onnx

    run = tmp_path / "run"
    make_checkpoint(run, seed=1)
    args = _cli(["export", str(run), "--format", "onnx"])
    assert args.handler(args) == 0
    out = run / "best.onnx"
    assert str(out) in capsys.readouterr().out
    proto = onnx.load(str(out))
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    x = np.random.default_rng(0).standard_normal((3, 1, 48, 48)).astype(np.float32)
    assert _session(out).run(None, {"input": x})[0].shape == (3, 7)


def test_cli_out_option_and_shipped_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mien.cli.export import default_output

    args = _cli(["export", "default", "--out", str(tmp_path / "x" / "d.onnx")])
    assert args.handler(args) == 0
    shipped = json.loads(shipped_path("default").with_suffix(".json").read_text())
    exported = read_onnx_metadata(tmp_path / "x" / "d.onnx")
    assert exported["model"] == shipped["model"] and exported["tta"] == shipped["shipped"]["tta"]
    monkeypatch.chdir(tmp_path)
    assert default_output("default", resolve_model_source("default")) == Path("default.onnx")


def test_weights_registry_resolves_names_run_dirs_and_files(run_dir: Path, tmp_path: Path) -> None:
    assert "default" in list_shipped()
    default = shipped_path("default")
    assert default.suffix == ".safetensors" and default.with_suffix(".json").is_file()
    assert resolve_model_source("default") == default
    best = run_dir / "best.safetensors"
    assert resolve_model_source(run_dir) == best
    for spelling in (best, run_dir / "best.json", run_dir / "best", str(best)):
        assert resolve_model_source(spelling) == best
    with pytest.raises(ModelError, match="default"):
        shipped_path("nope")
    with pytest.raises(ModelError, match="not a shipped model"):
        resolve_model_source("nope")
    with pytest.raises(CheckpointError, match="no best checkpoint"):
        resolve_model_source(tmp_path)
