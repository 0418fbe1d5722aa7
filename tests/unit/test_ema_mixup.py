"""Weight averaging (train.ema_decay) and mixup (train.mixup_alpha): pure mixup, EMA checkpoints, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mien.config import RunConfig, apply_overrides
from mien.data.augment import mixup_batch
from mien.errors import ConfigError, DataError
from mien.train.checkpoint import ema_state, load_model, model_state, read_checkpoint
from test_train import Interrupt, run

EMA = ["train.ema_decay=0.9", "schedule.name=onecycle", "optim.name=sgd", "optim.lr=0.05"]


def test_mixup_blends_images_and_pairs_labels_reproducibly():
    x = torch.rand(8, 1, 6, 6)
    y = torch.arange(8)
    mixed, y_a, y_b, lam = mixup_batch(x, y, alpha=0.4, rng=np.random.default_rng(3))
    again = mixup_batch(x, y, alpha=0.4, rng=np.random.default_rng(3))
    torch.testing.assert_close(mixed, again[0])
    assert 0 <= lam <= 1 and torch.equal(y_a, y) and sorted(y_b.tolist()) == list(range(8))
    # each mixed image is lam * its own + (1 - lam) * the image whose label it was paired with
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[y_b])
    with pytest.raises(DataError, match="alpha must be > 0"):
        mixup_batch(x, y, alpha=0, rng=np.random.default_rng(0))
    with pytest.raises(DataError, match="one label per image"):
        mixup_batch(x, y[:3], alpha=0.2, rng=np.random.default_rng(0))


@pytest.mark.parametrize("override", ["train.ema_decay=1.0", "train.ema_decay=-0.1", "train.mixup_alpha=-1"])
def test_bad_ema_and_mixup_values_are_rejected(override):
    with pytest.raises(ConfigError, match=override.split("=")[0]):
        apply_overrides(RunConfig(), [override])


def test_mixup_run_trains(tmp_path):
    result = run(tmp_path, "mix", "train.epochs=2", "train.mixup_alpha=0.3")
    assert all(np.isfinite(h["train_loss"]) for h in result.history)


def test_ema_best_checkpoint_holds_the_average_not_the_raw_weights(tmp_path):
    result = run(tmp_path, "ema", "train.epochs=1", *EMA)  # one epoch: best and last are the same epoch
    best, _ = read_checkpoint(result.run_dir / "best.safetensors")
    last, _ = read_checkpoint(result.run_dir / "last.safetensors")
    averaged = ema_state(last)
    assert averaged and not ema_state(best) and int(averaged["n_averaged"]) > 1
    conv = next(k for k in model_state(best) if k.endswith("weight") and model_state(best)[k].dim() == 4)
    # best holds the EMA module, which differs from the raw model saved in last for resuming
    torch.testing.assert_close(model_state(best)[conv], averaged[f"module.{conv}"])
    assert not torch.allclose(model_state(last)[conv], averaged[f"module.{conv}"])
    model, _ = load_model(result.run_dir)  # a shipped/best EMA checkpoint loads like any other
    assert model(torch.zeros(2, 1, 48, 48)).shape == (2, 7)


def test_ema_resume_matches_uninterrupted_run(tmp_path):
    full = run(tmp_path, "full", "train.epochs=3", *EMA)

    def die_after_one(line: str) -> None:
        if line.startswith("epoch 1/"):
            raise Interrupt

    with pytest.raises(Interrupt):
        run(tmp_path, "cut", "train.epochs=3", *EMA, log=die_after_one)
    resumed = run(tmp_path, "cut", "train.epochs=3", *EMA, resume=True)
    assert [h["val_acc"] for h in full.history] == pytest.approx([h["val_acc"] for h in resumed.history])
    for k, v in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k].float(), v.float(), rtol=1e-4, atol=1e-5)

