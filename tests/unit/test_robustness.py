"""Photometric corruptions: shape and dtype kept, each does what it says, mild < strong, seeded noise."""

import numpy as np
import pytest

from conftest import make_faces
from mien.errors import ConfigError
from mien.evaluate.robustness import CORRUPTIONS, LEVELS, corrupt, robustness_table, table_markdown


@pytest.fixture
def images() -> np.ndarray:
    return make_faces(21).images


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_every_corruption_keeps_shape_and_changes_more_when_strong(images, name):
    mild = corrupt(images, name, "mild", generator=_rng())
    strong = corrupt(images, name, "strong", generator=_rng())
    assert mild.shape == strong.shape == images.shape and mild.dtype == strong.dtype == np.uint8
    change = [np.abs(x.astype(int) - images).mean() for x in (mild, strong)]
    assert 0 < change[0] < change[1]


def test_contrast_gamma_blur_and_noise_move_the_statistics_they_name(images):
    std = images.astype(float).std(axis=(1, 2)).mean()
    assert corrupt(images, "contrast_up", "mild", generator=_rng()).astype(float).std(axis=(1, 2)).mean() > std
    assert corrupt(images, "contrast_down", "mild", generator=_rng()).astype(float).std(axis=(1, 2)).mean() < std
    assert corrupt(images, "gamma_bright", "mild", generator=_rng()).mean() > images.mean()
    assert corrupt(images, "gamma_dark", "mild", generator=_rng()).mean() < images.mean()

    def roughness(x: np.ndarray) -> float:  # mean absolute difference of horizontal neighbours
        return float(np.abs(np.diff(x.astype(float), axis=2)).mean())

    assert roughness(corrupt(images, "blur", "mild", generator=_rng())) < roughness(images)
    assert roughness(corrupt(images, "sharpen", "mild", generator=_rng())) > roughness(images)
    a = corrupt(images, "noise", "mild", generator=np.random.default_rng(1))
    b = corrupt(images, "noise", "mild", generator=np.random.default_rng(1))
    c = corrupt(images, "noise", "mild", generator=np.random.default_rng(2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_bad_names_levels_and_inputs_are_errors(images):
    with pytest.raises(ConfigError, match="unknown corruption 'fog'"):
        corrupt(images, "fog", "mild", generator=_rng())
    with pytest.raises(ConfigError, match="level must be one of"):
        corrupt(images, "blur", "medium", generator=_rng())
    with pytest.raises(ConfigError, match="uint8"):
        corrupt(images.astype(np.float32), "blur", "mild", generator=_rng())


def test_table_has_clean_and_every_level_with_changes_against_clean():
    faces = make_faces(70)
    band = faces.images.shape[1] // 7

    def predict(x: np.ndarray) -> np.ndarray:
        # the brightest band names the class: exact on clean synthetic faces
        means = np.stack([x[:, c * band:(c + 1) * band].mean(axis=(1, 2)) for c in range(7)], axis=1)
        return means / means.sum(axis=1, keepdims=True)

    rows = robustness_table(predict, faces.images, faces.labels, generator=_rng())
    assert rows[0]["corruption"] == "clean" and rows[0]["accuracy"] == 1.0
    assert len(rows) == 1 + len(CORRUPTIONS) * len(LEVELS)
    for row in rows[1:]:
        assert row["delta_points"] == pytest.approx(100 * (row["accuracy"] - 1.0))
    text = table_markdown(rows)
    assert "| clean | - | - | 100.00 % | +0.00 |" in text and "| jpeg | mild | 30 quality |" in text


def test_table_reuses_the_callers_clean_probabilities_and_checks_their_length():
    faces = make_faces(35)
    calls = []

    def predict(x: np.ndarray) -> np.ndarray:
        calls.append(x)
        return np.eye(7)[np.zeros(len(x), dtype=int)]

    clean = np.eye(7)[faces.labels]  # perfect on clean faces, unlike `predict`
    rows = robustness_table(predict, faces.images, faces.labels, generator=_rng(), clean_probs=clean)
    assert rows[0]["accuracy"] == 1.0
    assert not any(c is faces.images for c in calls) and len(calls) == len(CORRUPTIONS) * len(LEVELS)
    with pytest.raises(ConfigError, match="34 rows for 35 faces"):
        robustness_table(predict, faces.images, faces.labels, generator=_rng(), clean_probs=clean[:-1])


def test_robustness_benchmark_script_runs_on_a_run_directory(tmp_path, monkeypatch, capsys):
    import json

    from conftest import REPO, run_script
    from mien.cli import main
    from mien.data.sources import save_npz

    npz = save_npz(make_faces(280), tmp_path / "faces.npz")
    run = tmp_path / "run"
    assert main(["train", "model.name=resnet_small", "model.kwargs.widths=[8,8,16,16]", "model.kwargs.blocks=[1,1,1,1]",
                 "train.batch_size=32", "train.epochs=1", f"data.source={npz}", "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    out = tmp_path / "rows.json"
    args = ["--model", str(run), "--data", str(npz), "--json", str(out)]
    assert run_script(REPO / "benchmarks" / "robustness.py", *args, monkeypatch=monkeypatch) == 0
    stdout = capsys.readouterr().out
    assert "worst mild change" in stdout and "| jpeg | strong |" in stdout
    assert len(json.loads(out.read_text())["rows"]) == 1 + 2 * len(CORRUPTIONS)
