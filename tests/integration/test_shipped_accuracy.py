"""Every shipped model and ensemble scores on the full PrivateTest what its model card states, within 0.2 points."""

import json
from pathlib import Path

import numpy as np
import pytest

from mien.data.sources import load_source
from mien.evaluate.run import checkpoint_probs
from mien.labels import USAGES
from mien.train.checkpoint import load_model
from mien.weights import list_shipped, shipped_path
from mien.weights.ensemble import SUFFIX, ensemble_probs, list_ensembles, read_ensemble
from mien.weights.ship import SHIPPED_PRECISION

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def private_test(fer_npz: Path) -> tuple[np.ndarray, np.ndarray]:
    faces = load_source(fer_npz)
    keep = faces.usage == USAGES.index("PrivateTest")
    return faces.images[keep], faces.labels[keep]


def test_default_is_shipped_with_a_measured_card():
    assert "default" in list_shipped()
    shipped = json.loads(shipped_path("default").with_suffix(".json").read_text())["shipped"]
    card = shipped_path("default").with_suffix(".md").read_text()
    assert f"Accuracy **{100 * shipped['test_accuracy']:.2f} %**" in card


@pytest.mark.parametrize("name", list_shipped())
def test_shipped_model_matches_its_card_on_private_test(name: str, private_test):
    images, labels = private_test
    model, meta = load_model(shipped_path(name))
    shipped = meta["shipped"]
    assert shipped["test_n"] == len(labels) == 3588
    probs = checkpoint_probs(model, meta, images, tta=shipped["tta"], precision=SHIPPED_PRECISION)
    accuracy = float((probs.argmax(1) == labels).mean())
    assert abs(100 * (accuracy - shipped["test_accuracy"])) <= 0.2, (name, accuracy, shipped["test_accuracy"])


@pytest.mark.parametrize("name", list_ensembles())
def test_shipped_ensemble_matches_its_card_on_private_test(name: str, private_test):
    images, labels = private_test
    ensemble = read_ensemble(shipped_path("default").with_name(f"{name}{SUFFIX}"))
    assert ensemble.shipped["test_n"] == len(labels) == 3588
    accuracy = float((ensemble_probs(ensemble, images).argmax(1) == labels).mean())
    assert abs(100 * (accuracy - ensemble.shipped["test_accuracy"])) <= 0.2, (name, accuracy)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_default_as_recognizer_runs_it_matches_its_card(precision: str, private_test):
    """What users run (the backend's batch-norm-folded net; bf16 with `--precision`) scores the card's figure."""
    from mien.infer import Recognizer
    from mien.train.hardware import cpu_has_native_bf16

    if precision == "bf16" and not cpu_has_native_bf16():
        # Emulated bf16 takes ~2 minutes for PrivateTest on an AVX2 EPYC (fp32: 11 s), and nobody
        # picks it there: `--precision auto` is fp32. CI on AMX / AVX512-BF16 machines runs it.
        pytest.skip("bf16 is emulated on this CPU; runs on CPUs with AMX / AVX512-BF16")
    images, labels = private_test
    shipped = json.loads(shipped_path("default").with_suffix(".json").read_text())["shipped"]
    rec = Recognizer("default", detector="none", precision=precision)
    accuracy = float((rec.predict_faces(images).argmax(1) == labels).mean())
    # fp32 folding moves logits by ~1e-6 (the card's 0.2 points); bf16 keeps ~3 digits, so 0.5 points
    tolerance = 0.2 if precision == "fp32" else 0.5
    assert abs(100 * (accuracy - shipped["test_accuracy"])) <= tolerance, (precision, accuracy, shipped["test_accuracy"])
