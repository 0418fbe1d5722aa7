"""Shipped ensembles: greedy member selection on val, manifest, card, inference through every entry point."""

import json

import numpy as np
import pytest

from conftest import make_faces
from mien.cli import main
from mien.data.sources import save_npz
from mien.errors import CheckpointError, ConfigError, DataError, ModelError
from mien.evaluate.selection import greedy_ensemble
from mien.export import export_onnx
from mien.infer import Recognizer
from mien.weights import checkpoint_tta, resolve_model_source
from mien.weights.ensemble import SUFFIX, ensemble_probs, list_ensembles, mean_probs, read_ensemble
from mien.weights.ship import ship_run
from mien.weights.ship_ensemble import ship_ensemble

TINY = ["model.name=resnet_small", "model.kwargs.widths=[8,8,16,16]", "model.kwargs.blocks=[1,1,1,1]",
        "train.batch_size=32", "train.epochs=2"]


def _model(labels: np.ndarray, right: list[int], p_right: float, classes: int = 3) -> np.ndarray:
    """Probabilities that give the true class p_right on `right` faces and 0.3 elsewhere (0.4 to a wrong one)."""
    out = np.empty((len(labels), classes))
    for i, y in enumerate(labels):
        if i in right:
            out[i] = (1 - p_right) / (classes - 1)
            out[i, y] = p_right
        else:
            out[i] = 0.3
            out[i, (y + 1) % classes] = 0.4
    return out


def test_greedy_adds_members_only_while_val_accuracy_rises():
    labels = np.array([0, 1, 2, 0, 1, 2])
    # a and b are each right on 4 of 6 faces, confidently, and unsure where wrong; c is always wrong
    a = _model(labels, [0, 1, 2, 3], 0.8)
    b = _model(labels, [2, 3, 4, 5], 0.9)
    c = _model(labels, [], 0.9)
    trace = greedy_ensemble({"a": a, "b": b, "c": c}, labels, max_members=3)
    assert trace[0]["members"] == ["b"]  # a ties on accuracy; b has the lower log-loss
    assert trace[-1]["members"] == ["b", "a"] and trace[-1]["val_accuracy"] == 1.0
    assert len(trace) == 2  # c cannot raise accuracy: never added
    assert greedy_ensemble({"a": a, "b": b}, labels, max_members=1)[-1]["members"] == ["b"]
    assert greedy_ensemble({"a": a, "a2": a.copy()}, labels, max_members=2)[-1]["members"] == ["a"]


def _onehot(pred: list[int], classes: int = 3, p: float = 0.6) -> np.ndarray:
    out = np.full((len(pred), classes), (1 - p) / (classes - 1))
    out[np.arange(len(pred)), pred] = p
    return out


def test_greedy_rejects_bad_inputs():
    labels = np.array([0, 1])
    with pytest.raises(ConfigError, match="at least one"):
        greedy_ensemble({}, labels, max_members=2)
    with pytest.raises(ConfigError, match="max_members"):
        greedy_ensemble({"a": _onehot([0, 1])}, labels, max_members=0)
    with pytest.raises(ConfigError, match="must all be"):
        greedy_ensemble({"a": _onehot([0, 1]), "b": _onehot([0, 1, 2])}, labels, max_members=2)


def test_mean_probs_is_the_plain_mean_of_any_number_of_members():
    rng = np.random.default_rng(0)
    members = [rng.dirichlet(np.ones(7), size=5) for _ in range(3)]
    np.testing.assert_allclose(mean_probs(iter(members)), np.mean(members, axis=0))
    np.testing.assert_array_equal(mean_probs([members[0]]), members[0])
    with pytest.raises(CheckpointError, match="at least one member"):
        mean_probs([])


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A folder with three tiny shipped models (different seeds) and an ensemble chosen from them."""
    tmp = tmp_path_factory.mktemp("ensemble")
    npz = save_npz(make_faces(280), tmp / "faces.npz")
    folder = tmp / "weights"
    for seed in (0, 1, 2):
        run = tmp / f"run{seed}"
        assert main(["train", *TINY, f"train.seed={seed}", f"data.source={npz}", "--out", str(run),
                     "--no-progress"]) == 0
        ship_run(run, name=f"m{seed}", command=f"mien train seed={seed}", out_dir=folder)
    manifest = ship_ensemble(["m0", "m1", "m2"], name="ens", folder=folder, max_members=3)
    return folder, manifest, npz


def test_ship_ensemble_writes_a_manifest_chosen_on_val_and_a_card(shipped):
    folder, manifest, _ = shipped
    assert manifest == folder / f"ens{SUFFIX}" and list_ensembles(folder) == ["ens"]
    ens = read_ensemble(manifest)
    data = ens.shipped
    assert [p.stem for p in ens.members] == data["selection"][-1]["members"]
    assert set(p.stem for p in ens.members) <= {"m0", "m1", "m2"}
    assert data["val_accuracy"] == pytest.approx(data["selection"][-1]["val_accuracy"])
    assert data["val_accuracy"] == max(data["val_accuracy_by_tta"].values())
    accuracies = [row["val_accuracy"] for row in data["selection"]]
    assert accuracies == sorted(set(accuracies))  # each step strictly raised PublicTest accuracy
    card = (folder / "ens.md").read_text()
    assert f"Accuracy **{100 * data['test_accuracy']:.2f} %**" in card
    assert all(f"`mien train seed={p.stem[1]}`" in card for p in ens.members)
    assert "| jpeg | strong |" in card and "Known limits and biases" in card


def test_ensemble_probs_reproduce_the_card_and_average_the_members(shipped):
    from mien.data.sources import load_source
    from mien.evaluate.run import checkpoint_probs
    from mien.train.checkpoint import load_model
    from mien.weights.ship import SHIPPED_PRECISION

    folder, manifest, npz = shipped
    ens = read_ensemble(manifest)
    faces = load_source(npz)
    test = faces.usage == 2
    probs = ensemble_probs(ens, faces.images[test])
    assert float((probs.argmax(1) == faces.labels[test]).mean()) == pytest.approx(ens.shipped["test_accuracy"])
    members = [checkpoint_probs(*load_model(p), faces.images[test], tta=ens.tta, precision=SHIPPED_PRECISION)
               for p in ens.members]
    np.testing.assert_allclose(probs, np.mean(members, axis=0), atol=1e-6)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_recognizer_runs_an_ensemble_as_the_mean_of_its_members(shipped, backend, tmp_path, monkeypatch):
    monkeypatch.setenv("MIEN_CACHE_DIR", str(tmp_path))
    folder, manifest, _ = shipped
    ens = read_ensemble(manifest)
    crops = make_faces(14, seed=5).images
    rec = Recognizer(manifest, backend=backend, detector="none")
    assert rec.backend.tta == checkpoint_tta(manifest) == ens.tta
    assert rec.class_names == ens.class_names and str(manifest) in repr(rec)
    members = [Recognizer(p, backend=backend, detector="none", tta=ens.tta).predict_faces(crops) for p in ens.members]
    np.testing.assert_allclose(rec.predict_faces(crops), np.mean(members, axis=0), atol=1e-5)
    faces = rec.predict(crops[0])
    assert len(faces) == 1 and faces[0].emotion in ens.class_names


def test_predict_cli_takes_an_ensemble(shipped, tmp_path, capsys):
    from PIL import Image

    folder, manifest, _ = shipped
    image = tmp_path / "face.png"
    Image.fromarray(make_faces(7, seed=3).images[0]).save(image)
    assert main(["predict", str(image), "--model", str(manifest), "--no-detect"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["emotion"] in read_ensemble(manifest).class_names


def test_single_model_commands_refuse_an_ensemble_naming_its_members(shipped, tmp_path):
    folder, manifest, _ = shipped
    members = [p.stem for p in read_ensemble(manifest).members]
    with pytest.raises(ModelError, match=f"'ens' is an ensemble.*{members[0]}"):
        resolve_model_source(manifest)
    with pytest.raises(ModelError, match="is an ensemble"):
        export_onnx(manifest, tmp_path / "x.onnx")
    assert resolve_model_source(manifest, allow_ensemble=True) == manifest


def test_ship_ensemble_refuses_what_it_cannot_describe(shipped, tmp_path):
    folder, _, _ = shipped
    with pytest.raises(CheckpointError, match="'nope' is not a shipped model"):
        ship_ensemble(["m0", "nope"], name="e2", folder=folder)
    with pytest.raises(DataError, match="already names a shipped model"):
        ship_ensemble(["m0", "m1"], name="m2", folder=folder)
    with pytest.raises(DataError, match="at least one"):
        ship_ensemble([], name="e2", folder=folder)


def test_read_ensemble_validates_the_manifest(shipped, tmp_path):
    folder, manifest, _ = shipped
    data = json.loads(manifest.read_text())
    bad = folder / f"bad{SUFFIX}"
    bad.write_text(json.dumps({**data, "members": ["m0", "gone"]}))
    with pytest.raises(CheckpointError, match="member 'gone'"):
        read_ensemble(bad)
    bad.write_text(json.dumps({**data, "format": "other"}))
    with pytest.raises(CheckpointError, match="format"):
        read_ensemble(bad)
    bad.write_text(json.dumps({**data, "members": []}))
    with pytest.raises(CheckpointError, match="non-empty list"):
        read_ensemble(bad)
    bad.write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot read"):
        read_ensemble(bad)
    bad.unlink()
    with pytest.raises(CheckpointError, match="not an ensemble manifest"):
        read_ensemble(folder / "m0.json")
