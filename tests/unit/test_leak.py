"""Report 003's split leak: copies made before the split leak siblings into test; the honest split does not."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, make_faces, run_script
from mien.config import AugmentConfig
from mien.data.leak import copies_split, expand_copies, sibling_rate
from mien.data.sources import save_npz
from mien.errors import DataError


def test_expand_copies_keeps_order_and_is_reproducible():
    images = make_faces(10).images
    plain = expand_copies(images, 3, cfg=AugmentConfig(enabled=False), generator=torch.Generator().manual_seed(0))
    assert plain.shape == (30, 48, 48) and plain.dtype == np.uint8
    np.testing.assert_array_equal(plain[3 * 4 + 2], images[4])  # copy 2 of face 4
    a = expand_copies(images, 3, generator=torch.Generator().manual_seed(1))
    b = expand_copies(images, 3, generator=torch.Generator().manual_seed(1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[0], a[1])  # the copies of one face differ from each other
    with pytest.raises(DataError, match="copies must be >= 1"):
        expand_copies(images, 0, generator=torch.Generator())


@pytest.mark.parametrize("leaky", [True, False])
def test_copies_split_covers_every_copy_once(leaky):
    labels = make_faces(140).labels
    split = copies_split(labels, 5, rng=np.random.default_rng(0), leaky=leaky)
    everything = np.concatenate([split.train, split.val, split.test])
    assert sorted(everything.tolist()) == list(range(140 * 5))
    assert len(split.train) == pytest.approx(0.6 * 700, abs=10)
    expanded = np.repeat(labels, 5)
    assert set(expanded[split.test].tolist()) == set(labels.tolist())  # stratified: every class in test


def test_leaky_split_puts_siblings_of_almost_every_test_copy_in_train():
    labels = make_faces(140).labels
    leaky = copies_split(labels, 5, rng=np.random.default_rng(0), leaky=True)
    honest = copies_split(labels, 5, rng=np.random.default_rng(0), leaky=False)
    # P(one of 4 siblings in a 60 % train split) = 1 - 0.4 ** 4 = 0.97
    assert sibling_rate(leaky.train, leaky.test, 5) > 0.9
    assert sibling_rate(honest.train, honest.test, 5) == 0.0
    assert sibling_rate(honest.train, honest.val, 5) == 0.0
    with pytest.raises(DataError, match="non-empty"):
        sibling_rate(honest.train, np.array([], dtype=np.int64), 5)


def test_split_leak_benchmark_runs_both_splits(tmp_path, monkeypatch, capsys):
    npz = save_npz(make_faces(280), tmp_path / "faces.npz")
    out = tmp_path / "leak"
    args = ["--data", str(npz), "--originals", "140", "--copies", "2", "--epochs", "1", "--model", "resnet_small",
            "--out", str(out), "model.kwargs.widths=[8,8,16,16]", "model.kwargs.blocks=[1,1,1,1]", "train.batch_size=32"]
    assert run_script(REPO / "benchmarks" / "split_leak.py", *args, monkeypatch=monkeypatch) == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["split"] for r in results["rows"]] == ["leaky", "honest"]
    assert results["rows"][0]["sibling_rate"] > 0.5 and results["rows"][1]["sibling_rate"] == 0.0
    stdout = capsys.readouterr().out
    assert "the leak adds" in stdout and "| leaky |" in stdout
    assert (out / "leaky" / "best.safetensors").is_file() and Path(out / "honest" / "metrics.csv").is_file()
