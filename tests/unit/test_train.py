"""The training engine on tiny synthetic faces: files written, learning, resume, checkpoints."""

from __future__ import annotations

import json
import platform

import numpy as np
import pytest
import torch

from conftest import make_faces
from mien.config import apply_overrides, RunConfig
from mien.data.pipeline import DataSplits
from mien.errors import CheckpointError, ConfigError
from mien.train import fit
from mien.train.checkpoint import load_model, read_checkpoint

TINY = ["model.name=resnet_small", "model.kwargs.widths=[8,8,16,16]", "model.kwargs.blocks=[1,1,1,1]",
        "train.batch_size=32", "train.eval_batch_size=64", "augment.rotate=5"]


def tiny_splits(n: int = 280, seed: int = 0) -> DataSplits:
    faces = make_faces(n, seed=seed)
    return DataSplits(faces.subset(faces.usage == 0), faces.subset(faces.usage == 1), faces.subset(faces.usage == 2))


def cfg_for(*overrides: str) -> RunConfig:
    return apply_overrides(RunConfig(), [*TINY, *overrides])


def run(tmp_path, name, *overrides, **kw):
    return fit(cfg_for(*overrides), tmp_path / name, splits=kw.pop("splits", tiny_splits()), progress=False,
               log=kw.pop("log", lambda *_: None), **kw)


def test_fit_writes_a_complete_run_dir(tmp_path):
    result = run(tmp_path, "r", "train.epochs=2")
    d = result.run_dir
    for name in ("config.yaml", "run.json", "metrics.csv", "best.safetensors", "best.json", "last.safetensors",
                 "last.json"):
        assert (d / name).is_file(), name
    rows = (d / "metrics.csv").read_text().strip().splitlines()
    assert rows[0].startswith("epoch,lr,train_loss") and len(rows) == 3
    meta = json.loads((d / "best.json").read_text())
    assert meta["model"]["name"] == "resnet_small" and meta["model"]["kwargs"]["widths"] == [8, 8, 16, 16]
    assert meta["class_names"] == list(make_faces().names)
    assert set(meta["normalization"]) == {"mean", "std"} and 0 < meta["normalization"]["std"] < 1
    assert meta["config"]["train"]["epochs"] == 2 and "val_acc" in meta["metrics"]
    session = json.loads((d / "run.json").read_text())["sessions"][0]
    assert session["precision"] in ("fp32", "bf16")
    assert session["retain_memory"] is (platform.libc_ver()[0] == "glibc")  # on by default, where glibc offers it
    assert not list(d.glob("*.pt")) and not list(d.glob("*.pkl"))


def test_fit_learns_the_synthetic_task(tmp_path):
    result = run(tmp_path, "r", "train.epochs=8", "optim.lr=3e-3", "augment.enabled=false",
                 splits=tiny_splits(560))
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert max(h["val_acc"] for h in result.history) > 0.5  # chance is 1/7


def test_best_checkpoint_reloads_to_identical_predictions(tmp_path):
    result = run(tmp_path, "r", "train.epochs=1", "train.channels_last=false")
    model, meta = load_model(result.run_dir)
    tensors, _ = read_checkpoint(result.run_dir / "best.safetensors")
    x = torch.randn(4, 1, 48, 48)
    result.model.eval()
    torch.testing.assert_close(model(x), result.model(x))
    assert meta["epoch"] == 0 and all(k.startswith("model.") for k in tensors)


class Interrupt(Exception):
    pass


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path):
    full = run(tmp_path, "full", "train.epochs=4", "schedule.name=onecycle", "optim.name=sgd", "optim.lr=0.05")

    def die_after_two(line: str) -> None:
        if line.startswith("epoch 2/"):
            raise Interrupt

    with pytest.raises(Interrupt):
        run(tmp_path, "cut", "train.epochs=4", "schedule.name=onecycle", "optim.name=sgd", "optim.lr=0.05",
            log=die_after_two)
    assert len((tmp_path / "cut" / "metrics.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs
    resumed = run(tmp_path, "cut", "train.epochs=4", "schedule.name=onecycle", "optim.name=sgd",
                  "optim.lr=0.05", resume=True)
    keys = ("lr", "train_loss", "train_acc", "val_loss", "val_acc", "val_f1")
    for a, b in zip(full.history, resumed.history, strict=True):
        assert [a[k] for k in keys] == pytest.approx([b[k] for k in keys], rel=1e-5, abs=1e-6)
    for k, v in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, rtol=1e-4, atol=1e-5)


def test_resume_restores_a_metrics_csv_that_lags_the_checkpoint(tmp_path):
    # a kill between the `last` checkpoint and the metrics.csv write leaves the csv an epoch short
    run(tmp_path, "r", "train.epochs=2")
    path = tmp_path / "r" / "metrics.csv"
    rows = path.read_text().strip().splitlines()
    path.write_text("\n".join(rows[:-1]) + "\n")
    run(tmp_path, "r", "train.epochs=2", resume=True)  # already finished: nothing to train
    assert path.read_text().strip().splitlines() == rows


def test_early_stopping_and_plateau(tmp_path):
    # lr so small nothing improves after the first epoch -> stop after `early_stop` bad epochs.
    result = run(tmp_path, "r", "train.epochs=20", "train.early_stop=2", "optim.lr=1e-9", "schedule.name=plateau",
                 "train.monitor=val_loss", "augment.enabled=false")
    assert result.stopped_early and len(result.history) < 20


@pytest.mark.parametrize("extra", [
    ["optim.name=adam", "schedule.name=cosine", "train.label_smoothing=0.1", "train.grad_clip=1.0"],
    ["optim.name=adamw", "schedule.name=none", "data.balance=weights"],
    ["optim.name=sgd", "schedule.name=plateau", "data.balance=sampler", "train.monitor=val_f1"],
])
def test_optimizer_schedule_and_balance_variants_train(tmp_path, extra):
    result = run(tmp_path, "r", "train.epochs=2", *extra)
    assert all(np.isfinite(h["train_loss"]) for h in result.history)


def test_subset_of_classes_remaps_labels_everywhere(tmp_path):
    from mien.data.balance import select_classes
    from mien.labels import EMOTIONS

    six = [c for c in EMOTIONS if c != "disgust"]
    s = tiny_splits()
    splits = DataSplits(*(select_classes(f, six) for f in (s.train, s.val, s.test)))
    result = run(tmp_path, "r", "train.epochs=1", f"data.classes=[{','.join(six)}]", splits=splits)
    model, meta = load_model(result.run_dir)
    assert meta["class_names"] == six and meta["model"]["num_classes"] == 6
    assert model(torch.zeros(1, 1, 48, 48)).shape == (1, 6)


def test_refuses_to_overwrite_or_to_resume_nothing(tmp_path):
    run(tmp_path, "r", "train.epochs=1")
    with pytest.raises(ConfigError, match="already holds a run"):
        run(tmp_path, "r", "train.epochs=1")
    with pytest.raises(CheckpointError, match="no last.safetensors"):
        run(tmp_path, "empty", "train.epochs=1", resume=True)
    with pytest.raises(ConfigError, match="different config"):
        run(tmp_path, "r", "train.epochs=2", resume=True)


def test_resume_accepts_another_thread_count(tmp_path):
    def die_after_one(line: str) -> None:
        if line.startswith("epoch 1/"):
            raise Interrupt

    with pytest.raises(Interrupt):
        run(tmp_path, "r", "train.epochs=2", log=die_after_one)
    # config.yaml says threads 0 (torch's default); naming today's count keeps this test process as it was
    resumed = run(tmp_path, "r", "train.epochs=2", f"train.threads={torch.get_num_threads()}", resume=True)
    assert len(resumed.history) == 2


def test_augmentation_only_ever_sees_training_faces(tmp_path, monkeypatch):
    import hashlib

    import mien.data.augment as augment_module

    seen: list[torch.Tensor] = []
    real = augment_module.augment_batch

    def spy(x, cfg, *, generator):
        seen.append(x.clone())
        return real(x, cfg, generator=generator)

    monkeypatch.setattr(augment_module, "augment_batch", spy)
    splits = tiny_splits()
    run(tmp_path, "r", "train.epochs=2", splits=splits)

    def digest(img) -> str:
        return hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest()

    train = {digest(im) for im in splits.train.images}
    held_out = {digest(im) for im in np.concatenate([splits.val.images, splits.test.images])}
    batches = torch.cat(seen)  # (M, 1, 48, 48) in [0, 1], exactly k/255
    assert len(batches) > 0
    for x in batches:
        h = digest((x[0] * 255).round().to(torch.uint8).numpy())
        assert h in train and h not in held_out
