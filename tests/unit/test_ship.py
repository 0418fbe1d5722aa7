"""Shipping a run: TTA chosen on val, test measured once, sidecar `shipped` block, generated card."""

import json
import shutil

import numpy as np
import pytest
import torch

from conftest import make_faces
from mien.cli import main
from mien.data.sources import save_npz
from mien.errors import CheckpointError, DataError
from mien.evaluate.robustness import CORRUPTIONS
from mien.evaluate.run import checkpoint_probs, evaluate_run
from mien.export import export_onnx
from mien.infer import Recognizer
from mien.train.checkpoint import load_model
from mien.weights import checkpoint_tta, resolve_model_source
from mien.weights.ensemble import SUFFIX, write_manifest
from mien.weights.ship import SHIPPED_PRECISION, TTA_CHOICES, rename_shipped, restore_shipped, ship_run

TINY = ["model.name=resnet_small", "model.kwargs.widths=[8,8,16,16]", "model.kwargs.blocks=[1,1,1,1]",
        "train.batch_size=32", "train.epochs=2"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ship")
    npz = save_npz(make_faces(280), tmp / "faces.npz")
    out = tmp / "run"
    assert main(["train", *TINY, f"data.source={npz}", "--out", str(out), "--no-progress"]) == 0
    return out


def test_ship_writes_weights_sidecar_and_card_from_measured_numbers(run, tmp_path):
    target = ship_run(run, name="tiny", command="mien train tiny.yaml", out_dir=tmp_path)
    assert target == tmp_path / "tiny.safetensors" and target.is_file()
    meta = json.loads((tmp_path / "tiny.json").read_text())
    shipped = meta["shipped"]
    assert "optimizer" not in meta and shipped["name"] == "tiny" and shipped["tta"] in TTA_CHOICES
    # the TTA is the val-best one, and the test figure is what a plain evaluation with it reports
    assert shipped["val_accuracy"] == max(shipped["val_accuracy_by_tta"].values())
    report = evaluate_run(run, split="test", tta=shipped["tta"], out_dir=tmp_path / "eval", progress=False,
                          precision=SHIPPED_PRECISION)
    assert shipped["test_accuracy"] == pytest.approx(report["accuracy"])
    assert shipped["test_n"] == int((make_faces(280).usage == 2).sum())
    assert len(shipped["robustness"]) == 1 + 2 * len(CORRUPTIONS)
    assert shipped["training_minutes"] > 0 and shipped["hardware"][0]["device"] == "cpu"
    card = (tmp_path / "tiny.md").read_text()
    assert f"Accuracy **{100 * shipped['test_accuracy']:.2f} %**" in card
    assert "mien train tiny.yaml" in card and "| disgust |" in card and "| jpeg | strong |" in card
    assert "Known limits and biases" in card and "Distilled from" not in card


def test_a_distilled_students_card_names_its_teacher(run, tmp_path):
    npz = save_npz(make_faces(280), tmp_path / "faces.npz")
    student = tmp_path / "student"
    assert main(["train", *TINY, f"data.source={npz}", f"distill.teacher={run}", "distill.alpha=0.7",
                 "--out", str(student), "--no-progress"]) == 0
    ship_run(student, name="pupil", command="mien train pupil.yaml", out_dir=tmp_path)
    card = (tmp_path / "pupil.md").read_text()
    assert f"**Distilled from**: `{run}` (soft-target weight 0.7, temperature 2)" in card


def test_recognizer_uses_the_cards_tta_unless_told_otherwise(run, tmp_path):
    target = ship_run(run, name="tiny", command="x", out_dir=tmp_path)
    tta = json.loads((tmp_path / "tiny.json").read_text())["shipped"]["tta"]
    assert checkpoint_tta(target) == tta
    assert Recognizer(target, detector="none").backend.tta == tta
    assert Recognizer(target, detector="none", tta="none").backend.tta == "none"
    # an ONNX export keeps the card's TTA
    onnx = export_onnx(target, tmp_path / "tiny.onnx")
    assert checkpoint_tta(onnx) == tta and Recognizer(onnx, backend="onnx", detector="none").backend.tta == tta
    # an unshipped checkpoint has no card: auto means no TTA
    assert Recognizer(run, detector="none").backend.tta == "none"
    assert checkpoint_tta(resolve_model_source(run)) == "none"


def test_ship_refuses_runs_it_cannot_describe(run, tmp_path):
    with pytest.raises(CheckpointError, match="no metrics.csv"):
        ship_run(resolve_model_source(run), name="x", command="x", out_dir=tmp_path)
    npz = save_npz(make_faces(280), tmp_path / "faces.npz")
    strat = tmp_path / "strat"
    assert main(["train", *TINY, "train.epochs=1", "data.split=stratified", f"data.source={npz}",
                 "--out", str(strat), "--no-progress"]) == 0
    with pytest.raises(DataError, match="official FER2013 split"):
        ship_run(strat, name="x", command="x", out_dir=tmp_path)


def test_rename_hands_the_name_over_and_regenerates_the_card(run, tmp_path):
    ship_run(run, name="tiny", command="mien train tiny.yaml", out_dir=tmp_path, title="a tiny net")
    before = json.loads((tmp_path / "tiny.json").read_text())["shipped"]
    target = rename_shipped("tiny", "small", folder=tmp_path)
    assert target == tmp_path / "small.safetensors"
    assert not any((tmp_path / f"tiny{ext}").exists() for ext in (".safetensors", ".json", ".md"))
    after = json.loads((tmp_path / "small.json").read_text())["shipped"]
    assert after["name"] == "small" and after["tta"] == before["tta"]
    assert after["test_accuracy"] == pytest.approx(before["test_accuracy"], abs=0.002)
    assert after["robustness"] == before["robustness"] and after["command"] == before["command"]
    card = (tmp_path / "small.md").read_text()
    assert card.startswith("# Model card: `small` (a tiny net)")
    assert f"Accuracy **{100 * after['test_accuracy']:.2f} %**" in card and "--model small`" in card
    assert Recognizer(target, detector="none").backend.tta == before["tta"]


def test_rename_refuses_to_break_an_ensemble_or_overwrite(run, tmp_path):
    ship_run(run, name="tiny", command="x", out_dir=tmp_path)
    ship_run(run, name="other", command="x", out_dir=tmp_path)
    with pytest.raises(CheckpointError, match="already names"):
        rename_shipped("tiny", "other", folder=tmp_path)
    with pytest.raises(CheckpointError, match="no shipped model named 'nope'"):
        rename_shipped("nope", "x", folder=tmp_path)
    names = json.loads((tmp_path / "tiny.json").read_text())["class_names"]
    write_manifest(tmp_path / f"duo{SUFFIX}", members=["tiny", "other"], class_names=names,
                   shipped={"name": "duo", "tta": "none"})
    with pytest.raises(CheckpointError, match=f"member of duo{SUFFIX}"):
        rename_shipped("tiny", "renamed", folder=tmp_path)
    assert (tmp_path / "tiny.safetensors").is_file() and not (tmp_path / "renamed.json").exists()
    for ext in (".safetensors", ".json"):  # a run's checkpoint copied in by hand was never shipped
        shutil.copyfile(run / f"best{ext}", tmp_path / f"raw{ext}")
    with pytest.raises(CheckpointError, match="no `shipped` block"):
        rename_shipped("raw", "renamed", folder=tmp_path)


def test_restore_stores_a_shipped_model_smaller_and_measures_its_card_again(run, tmp_path):
    from safetensors.torch import load_file

    ship_run(run, name="tiny", command="mien train tiny.yaml", out_dir=tmp_path, title="a tiny net",
             limits="- Trained on 280 synthetic faces.", storage="float16")
    before = json.loads((tmp_path / "tiny.json").read_text())["shipped"]
    target = restore_shipped("tiny", storage="int8", folder=tmp_path)
    assert target == tmp_path / "tiny.safetensors"
    assert load_file(str(target))["model.fc.weight"].dtype == torch.int8
    after = json.loads((tmp_path / "tiny.json").read_text())["shipped"]
    assert after["weights_dtype"] == "int8" and set(after["val_accuracy_by_tta"]) == set(before["val_accuracy_by_tta"])
    for key in ("epoch", "command", "training_minutes", "hardware", "test_n"):
        assert after[key] == before[key]
    card = (tmp_path / "tiny.md").read_text()
    assert card.startswith("# Model card: `tiny` (a tiny net)") and "- Trained on 280 synthetic faces." in card
    assert "stored as int8" in card and f"Accuracy **{100 * after['test_accuracy']:.2f} %**" in card
    # the card's figures are the int8 model's own
    model, meta = load_model(target)
    assert private_test_accuracy(model, meta, after["tta"]) == pytest.approx(after["test_accuracy"])
    assert meta["shipped"] == after and "optimizer" not in meta


def test_restore_refuses_a_storage_no_smaller_an_ensemble_member_and_unshipped_models(run, tmp_path):
    ship_run(run, name="tiny", command="x", out_dir=tmp_path, storage="float16")
    for storage in ("float16", "float32", "int4"):
        with pytest.raises(CheckpointError, match=f"stored as float16.*not '{storage}'"):
            restore_shipped("tiny", storage=storage, folder=tmp_path)
    with pytest.raises(CheckpointError, match="no shipped model named 'nope'"):
        restore_shipped("nope", storage="int8", folder=tmp_path)
    names = json.loads((tmp_path / "tiny.json").read_text())["class_names"]
    write_manifest(tmp_path / f"solo{SUFFIX}", members=["tiny"], class_names=names, shipped={"name": "solo", "tta": "none"})
    with pytest.raises(CheckpointError, match=f"member of solo{SUFFIX}"):
        restore_shipped("tiny", storage="int8", folder=tmp_path)
    for ext in (".safetensors", ".json"):
        shutil.copyfile(run / f"best{ext}", tmp_path / f"raw{ext}")
    with pytest.raises(CheckpointError, match="no `shipped` block"):
        restore_shipped("raw", storage="int8", folder=tmp_path)


def test_shipping_measures_in_fp32_whatever_the_cpu(run):
    assert SHIPPED_PRECISION == "fp32"
    model, meta = load_model(resolve_model_source(run))
    faces = make_faces(20, seed=5).images
    mean, std = meta["normalization"]["mean"], meta["normalization"]["std"]
    with torch.inference_mode():
        plain = model((torch.from_numpy(faces).unsqueeze(1).float() / 255 - mean) / std).softmax(1).numpy()
    np.testing.assert_allclose(checkpoint_probs(model, meta, faces, precision="fp32"), plain, atol=1e-5)


def private_test_accuracy(model, meta, tta: str) -> float:
    """Accuracy on the run fixture's PrivateTest faces, measured as shipping measures it."""
    faces = make_faces(280)
    test = faces.usage == 2
    probs = checkpoint_probs(model, meta, faces.images[test], tta=tta, precision=SHIPPED_PRECISION)
    return float((probs.argmax(1) == faces.labels[test]).mean())


@pytest.mark.parametrize("storage, dtype, ratio, text", [
    ("float16", torch.float16, 0.6, "stored as float16"),
    ("int8", torch.int8, 0.4, "stored as int8 with a float32 scale per output channel"),
])
def test_smaller_storage_ships_rounded_weights_and_measures_them(run, tmp_path, storage, dtype, ratio, text):
    from safetensors.torch import load_file

    from mien.train.quantize import SCALE_SUFFIX

    full = ship_run(run, name="full", command="x", out_dir=tmp_path)
    small = ship_run(run, name="small", command="x", out_dir=tmp_path, storage=storage)
    stored = load_file(str(small))
    weights = {k: v for k, v in stored.items() if k.endswith(".weight") and v.ndim >= 2}
    assert weights and all(v.dtype == dtype for v in weights.values())
    assert all(v.dtype in (torch.float16, torch.int64) for k, v in stored.items()
               if k not in weights and SCALE_SUFFIX not in k)
    assert small.stat().st_size < ratio * full.stat().st_size
    model, meta = load_model(small)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    shipped = meta["shipped"]
    assert shipped["weights_dtype"] == storage and text in (tmp_path / "small.md").read_text()
    assert "stored as" not in (tmp_path / "full.md").read_text()
    # the card's figure is the rounded model's own
    assert private_test_accuracy(model, meta, shipped["tta"]) == pytest.approx(shipped["test_accuracy"])
    assert Recognizer(small, detector="none").predict_faces(make_faces(280).images[:3]).shape == (3, 7)


def test_tta_choices_restrict_what_public_test_chooses_from(run, tmp_path):
    ship_run(run, name="plain", command="x", out_dir=tmp_path, tta_choices=("none",))
    shipped = json.loads((tmp_path / "plain.json").read_text())["shipped"]
    assert shipped["tta"] == "none" and list(shipped["val_accuracy_by_tta"]) == ["none"]
    for bad in ((), ("none", "mirror"), ("10crop",)):
        with pytest.raises(DataError, match="tta_choices"):
            ship_run(run, name="bad", command="x", out_dir=tmp_path, tta_choices=bad)


def test_ten_crop_is_an_opt_in_choice_measured_as_it_ships(run, tmp_path):
    # Not among the default choices (10x the cost); a crop-trained model may opt in.
    assert "tencrop" not in TTA_CHOICES
    target = ship_run(run, name="crops", command="x", out_dir=tmp_path, tta_choices=("tencrop",))
    shipped = json.loads((tmp_path / "crops.json").read_text())["shipped"]
    assert shipped["tta"] == "tencrop" and list(shipped["val_accuracy_by_tta"]) == ["tencrop"]
    model, meta = load_model(target)
    assert private_test_accuracy(model, meta, "tencrop") == pytest.approx(shipped["test_accuracy"])
    assert checkpoint_tta(target) == "tencrop"


def test_a_warm_restart_counts_the_minutes_of_the_weights_it_starts_from(run, tmp_path):
    from mien.evaluate.report import read_metrics_csv
    from mien.weights.card import total_minutes
    from mien.weights.ship_ensemble import ship_ensemble

    def minutes(run_dir):
        return sum(row["seconds"] for row in read_metrics_csv(run_dir / "metrics.csv")) / 60.0

    npz = save_npz(make_faces(280), tmp_path / "faces.npz")
    ship_run(run, name="parent", command="mien train parent.yaml", out_dir=tmp_path)
    parent = json.loads((tmp_path / "parent.json").read_text())["shipped"]
    assert "starts_from" not in parent
    # Restarted from the shipped parent, then restarted again from that run's directory: the chain adds up.
    first, second = tmp_path / "first", tmp_path / "second"
    for out, weights in ((first, tmp_path / "parent.safetensors"), (second, first)):
        assert main(["train", *TINY, f"data.source={npz}", f"finetune.weights={weights}", "--out", str(out),
                     "--no-progress"]) == 0
    ship_run(second, name="child", command="mien train child.yaml", out_dir=tmp_path)
    child = json.loads((tmp_path / "child.json").read_text())["shipped"]
    assert child["starts_from"]["weights"] == str(first)
    assert child["starts_from"]["training_minutes"] == pytest.approx(minutes(first) + parent["training_minutes"])
    assert total_minutes(child) == pytest.approx(child["training_minutes"] + minutes(first) + parent["training_minutes"])
    card = (tmp_path / "child.md").read_text()
    assert (f"{child['training_minutes']:.1f} minutes of training, after the "
            f"{child['starts_from']['training_minutes']:.1f} minutes that trained `{first}`") in card
    assert f"({total_minutes(child):.1f} in all)" in card
    # An ensemble's card counts a warm-restarted member's whole cost.
    ship_ensemble(["child"], name="ens", folder=tmp_path, max_members=1)
    text = (tmp_path / "ens.md").read_text()
    assert f"{total_minutes(child):.1f} minutes for all members, the weights warm-restarted" in text
    assert f"{child['training_minutes']:.1f} (+{child['starts_from']['training_minutes']:.1f} before it) |" in text
