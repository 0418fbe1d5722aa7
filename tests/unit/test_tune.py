"""`mien tune` on tiny synthetic faces: the typed space, pruning, the SQLite study surviving a kill,
the best config, and the CLI."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import optuna
import pytest

from conftest import make_faces
from mien.cli import main
from mien.config import AugmentConfig, RunConfig, apply_overrides, config_to_dict, load_config
from mien.data.pipeline import DataSplits
from mien.data.sources import save_npz
from mien.errors import ConfigError
from mien.train import fit
from mien.tune import (TrialParams, apply_params, load_tune_config, open_study, report_epoch, scale_augment,
                       tune)

REPO = Path(__file__).resolve().parents[2]
TINY = ["model.name=resnet_small", "model.kwargs.widths=[8,8,16,16]", "model.kwargs.blocks=[1,1,1,1]",
        "train.eval_batch_size=64"]
N = 70  # 49 training faces


def tiny_splits() -> DataSplits:
    faces = make_faces(N)
    return DataSplits(faces.subset(faces.usage == 0), faces.subset(faces.usage == 1), faces.subset(faces.usage == 2))


def quiet(*_: object) -> None:
    pass


# --- the declared space ------------------------------------------------------------------------------

def test_the_shipped_tune_file_loads():
    cfg = load_tune_config(REPO / "configs" / "experiments" / "tune" / "space.yaml")
    assert set(cfg.space.search) == {"lr", "weight_decay", "dropout", "batch_size", "label_smoothing", "augment"}
    assert cfg.space.lr.log and cfg.space.batch_size == (64, 128, 256) and cfg.study.warmup_epochs == 2


@pytest.mark.parametrize("overrides, fragment", [
    (["space.learning_rate={low: 1, high: 2}"], "unknown config key space.learning_rate"),
    (["space.lr={low: 0.1, high: 0.01}"], "low <= high"),
    (["space.weight_decay={low: 0, high: 0.1, log: true}"], "log-scale search range needs low > 0"),
    (["space.search=[lr, momentum]"], "space.search[1] must be one of"),
    (["study.trials=0"], "study.trials must be >= 1"),
    (["trials=3"], "must look like study.trials=10"),
])
def test_bad_tune_settings_fail_with_the_key_named(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        load_tune_config(None, overrides)


def test_a_tune_file_that_is_not_a_mapping_says_what_it_must_hold(tmp_path):
    listed = tmp_path / "listed.yaml"
    listed.write_text("- lr\n- dropout\n")
    with pytest.raises(ConfigError, match="listed.yaml must be a mapping with `space` and `study` sections, got list"):
        load_tune_config(listed)


def test_augment_strength_scales_magnitudes_and_probabilities():
    base = AugmentConfig(rotate=10, translate=0.1, scale=(0.9, 1.1), erase_p=0.6, hflip=0.5)
    assert scale_augment(base, 1.0) == base
    assert not scale_augment(base, 0.0).enabled
    double = scale_augment(base, 2.0)
    assert double.rotate == 20 and double.translate == pytest.approx(0.2) and double.hflip == 0.5
    assert double.scale == pytest.approx((0.8, 1.2)) and double.erase_p == 1.0  # probabilities cap at 1


def test_apply_params_sets_only_sampled_values():
    base = apply_overrides(RunConfig(), TINY)
    cfg = apply_params(base, TrialParams(lr=0.02, batch_size=16, dropout=0.3, label_smoothing=0.05), epochs=3)
    assert cfg.optim.lr == 0.02 and cfg.train.batch_size == 16 and cfg.train.label_smoothing == 0.05
    assert cfg.model.kwargs["dropout"] == 0.3 and cfg.model.kwargs["widths"] == [8, 8, 16, 16]
    assert cfg.optim.weight_decay == base.optim.weight_decay and cfg.augment == base.augment
    assert cfg.train.epochs == 3 and apply_params(base, TrialParams()) == base


# --- pruning -------------------------------------------------------------------------------------------

def test_report_epoch_prunes_a_trial_below_the_median():
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=1))
    good = study.ask()
    for epoch, value in ((1, 0.5), (2, 0.9)):
        report_epoch(good, epoch=epoch, value=value)
    study.tell(good, 0.9)
    bad = study.ask()
    report_epoch(bad, epoch=1, value=0.1)  # the first epoch is warm-up: never pruned
    with pytest.raises(optuna.TrialPruned, match="after epoch 2"):
        report_epoch(bad, epoch=2, value=0.2)
    better = study.ask()
    report_epoch(better, epoch=1, value=0.6)
    report_epoch(better, epoch=2, value=0.95)


# --- the study end to end ---------------------------------------------------------------------------------

def test_study_runs_survives_a_kill_and_saves_the_best_config(tmp_path, monkeypatch):
    base = apply_overrides(RunConfig(), TINY)
    space = ["space.search=[lr, weight_decay, dropout, batch_size, label_smoothing, augment]",
             "space.batch_size=[16, 32]", "study.epochs=2", "study.startup_trials=1"]
    out = tmp_path / "study"
    seen_test_sizes: list[int] = []

    def spy_fit(cfg, run_dir, **kw):
        seen_test_sizes.append(len(kw["splits"].test))
        return fit(cfg, run_dir, **kw)

    monkeypatch.setattr(sys.modules["mien.train.fit"], "fit", spy_fit)
    first = tune(base, load_tune_config(None, [*space, "study.trials=2"]), out, splits=tiny_splits(),
                 progress=False, log=quiet)
    assert first.complete + first.pruned == 2 and first.complete >= 1
    assert seen_test_sizes == [0, 0]  # the objective never sees a test face

    # a kill in the middle of trial 2 leaves it marked running in the SQLite file
    study = open_study(out, load_tune_config(None, space))
    study.ask()
    del study
    lines: list[str] = []
    second = tune(base, load_tune_config(None, [*space, "study.trials=3"]), out, splits=tiny_splits(),
                  progress=False, log=lines.append)
    assert "trial 2 was interrupted; marked failed" in lines
    assert second.complete + second.pruned == 3 and second.failed == 1 and len(seen_test_sizes) == 3

    reopened = optuna.load_study(study_name="mien-tune", storage=f"sqlite:///{out / 'study.db'}")
    finished = [t for t in reopened.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 3
    assert all(len(t.intermediate_values) == 2 for t in finished if t.state.name == "COMPLETE")
    assert len({t.params["lr"] for t in finished}) == 3  # the resumed sampler did not replay trial 0

    best = reopened.best_trial
    assert second.best_number == best.number and second.best_value == pytest.approx(best.value)
    cfg = load_config(second.best_config)  # loadable by `mien train --config`
    trial_cfg = load_config(out / "trials" / f"{best.number:04d}" / "config.yaml")
    assert config_to_dict(cfg) == config_to_dict(trial_cfg)
    assert cfg.optim.lr == pytest.approx(best.params["lr"]) and cfg.train.epochs == 2
    with (out / "trials.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["state"] for r in rows].count("FAIL") == 1 and len(rows) == 4

    # the same directory with a different space is refused, not mixed into the study
    with pytest.raises(ConfigError, match="another base config, space"):
        tune(base, load_tune_config(None, [*space, "space.batch_size=[8]"]), out, splits=tiny_splits(), log=quiet)


def test_tune_refuses_a_base_that_selects_on_another_metric(tmp_path):
    base = apply_overrides(RunConfig(), [*TINY, "train.monitor=val_loss"])
    with pytest.raises(ConfigError, match="train.monitor=val_acc"):
        tune(base, load_tune_config(), tmp_path, splits=tiny_splits(), log=quiet)


def test_cli_tune(tmp_path, capsys):
    npz = save_npz(make_faces(N), tmp_path / "faces.npz")
    out = tmp_path / "study"
    argv = ["tune", "--out", str(out), "--trials", "1", "--epochs", "1", "--set", "space.search=[lr]",
            "--no-progress", f"data.source={npz}", *TINY, "train.batch_size=16"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "best trial 0" in printed and f"mien train --config {out / 'best.yaml'}" in printed
    assert load_config(out / "best.yaml").train.epochs == 1
