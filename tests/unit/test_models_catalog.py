"""`mien models`: the shipped catalog (from sidecars and manifests) and the registered architectures."""

import json
import shutil

import pytest

from mien.cli import main
from mien.errors import CheckpointError, ModelError
from mien.models import create_model, describe_model, list_models
from mien.weights import list_shipped, shipped_path
from mien.weights.catalog import shipped_catalog
from mien.weights.ensemble import SUFFIX, list_ensembles, write_manifest


def _sidecar(name: str) -> dict:
    return json.loads(shipped_path(name).with_suffix(".json").read_text())


def test_shipped_weights_fit_the_packages_25_mb_budget():
    # Issue 9: every shipped model and ensemble member inside the package, 25 MB in all at most.
    folder = shipped_path("default").parent
    total = sum(p.stat().st_size for p in folder.iterdir() if p.suffix in (".safetensors", ".json", ".md"))
    assert total <= 25_000_000, f"shipped weights take {total / 1e6:.1f} MB"
    for name in list_ensembles():
        assert set(json.loads((folder / f"{name}{SUFFIX}").read_text())["members"]) <= set(list_shipped())


def test_catalog_lists_every_shipped_model_and_ensemble_with_its_card_figures():
    catalog = {m.name: m for m in shipped_catalog()}
    assert list(catalog) == list_shipped() + list_ensembles()
    for name in list_shipped():
        entry, meta = catalog[name], _sidecar(name)
        model = create_model(meta["model"]["name"], num_classes=meta["model"]["num_classes"],
                             in_chans=meta["model"]["in_chans"], **meta["model"]["kwargs"])
        assert entry.kind == "model" and entry.members == (name,)
        assert entry.architecture.startswith(meta["model"]["name"] + "(")
        assert entry.params == sum(p.numel() for p in model.parameters())
        assert entry.test_accuracy == meta["shipped"]["test_accuracy"] and entry.tta == meta["shipped"]["tta"]
        assert entry.card is not None and entry.card.read_text().startswith("#")
        assert entry.size_mb * 1e6 > shipped_path(name).stat().st_size
    for name in list_ensembles():
        entry = catalog[name]
        assert entry.kind == "ensemble" and len(entry.members) >= 1
        assert entry.params == sum(catalog[m].params for m in entry.members)
        assert entry.size_mb > sum(catalog[m].size_mb for m in entry.members)


def _copy_shipped(tmp_path, *names):
    for name in names:
        src = shipped_path(name)
        for suffix in (".safetensors", ".json"):
            shutil.copy(src.with_suffix(suffix), tmp_path / f"{name}{suffix}")


def test_catalog_of_a_folder_reads_its_own_manifests_and_fails_on_broken_ones(tmp_path):
    _copy_shipped(tmp_path, "default", "deep_cnn")
    write_manifest(tmp_path / f"pair{SUFFIX}", members=["deep_cnn", "default"],
                   class_names=_sidecar("default")["class_names"], shipped={"tta": "flip", "test_accuracy": 0.5})
    catalog = shipped_catalog(tmp_path)
    assert [m.name for m in catalog] == ["deep_cnn", "default", "pair"]
    pair = catalog[-1]
    assert pair.members == ("deep_cnn", "default") and pair.tta == "flip" and pair.test_accuracy == 0.5
    assert pair.val_accuracy is None and pair.card is None and pair.architecture == "mean of deep_cnn + default"

    write_manifest(tmp_path / f"pair{SUFFIX}", members=["deep_cnn", "missing"],
                   class_names=_sidecar("default")["class_names"], shipped={})
    with pytest.raises(CheckpointError, match="missing"):
        shipped_catalog(tmp_path)
    (tmp_path / f"pair{SUFFIX}").unlink()
    meta = _sidecar("default")
    del meta["model"]
    (tmp_path / "default.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="default.json.*no model description"):
        shipped_catalog(tmp_path)


def test_describe_model_covers_every_registered_architecture():
    for name in list_models():
        info = describe_model(name)
        model = create_model(name)
        assert info.name == name and info.params == sum(p.numel() for p in model.parameters())
        assert info.input_size == tuple(model.input_size) and info.in_chans == 1
        assert model.get_submodule(info.gradcam_layer) is not None
        assert info.summary and "\n" not in info.summary
    with pytest.raises(ModelError, match="nope"):
        describe_model("nope")


def test_models_cli_prints_the_catalog_as_a_table_and_as_json(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["name", "kind", "architecture"]
    catalog = shipped_catalog()
    assert len(lines) == 1 + len(catalog)
    for line, entry in zip(lines[1:], catalog):
        assert line.split()[0] == entry.name
        assert f"{100 * entry.test_accuracy:.2f} %" in line

    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [json.loads(json.dumps(m.to_dict())) for m in catalog]


def test_models_cli_lists_architectures(capsys, monkeypatch):
    import mien.models

    monkeypatch.setattr(mien.models, "list_models", lambda: ["baseline_cnn", "deep_cnn"])
    assert main(["models", "--architectures", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["baseline_cnn", "deep_cnn"]
    assert rows[1]["params"] == describe_model("deep_cnn").params and rows[1]["input_size"] == [48, 48]
    assert main(["models", "--architectures"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["name", "baseline_cnn", "deep_cnn"]
    assert "1x48x48" in lines[2] and "features.block4.relu2" in lines[2]
