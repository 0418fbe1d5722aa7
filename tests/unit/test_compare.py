"""`mien compare` on tiny synthetic faces: entries, the time budget and epoch hook of `fit`, cost
measurements, the table, figures, resumability, the CLI, and that every experiment config loads."""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import make_faces
from mien.compare import (ModelResult, compare_models, count_macs, count_params, measure_speed, model_entries,
                          write_table)
from mien.compare import plots as compare_plots
from mien.compare import run as compare_run
from mien.cli import main
from mien.cli.compare import parse_duration
from mien.config import RunConfig, apply_overrides, load_config
from mien.data.pipeline import DataSplits
from mien.data.sources import save_npz
from mien.errors import ConfigError, ModelError
from mien.evaluate.report import read_metrics_csv
from mien.models import create_model
from mien.train import fit

REPO = Path(__file__).resolve().parents[2]
TINY_RESNET = {"model": {"name": "resnet_small", "kwargs": {"widths": [8, 8, 16, 16], "blocks": [1, 1, 1, 1]}},
               "train": {"batch_size": 32, "eval_batch_size": 64}}
FAST = ["train.batch_size=32", "train.eval_batch_size=64", "augment.rotate=5"]
TINY_OVERRIDES = ["model.name=resnet_small", "model.kwargs.widths=[8,8,16,16]", "model.kwargs.blocks=[1,1,1,1]"]


N = 70  # 49 training faces: one batch of 32 per epoch


def tiny_splits(n: int = N) -> DataSplits:
    faces = make_faces(n)
    return DataSplits(faces.subset(faces.usage == 0), faces.subset(faces.usage == 1), faces.subset(faces.usage == 2))


def write_yaml(path: Path, values: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(values))
    return path


def quiet(*_: object) -> None:
    pass


# --- the time budget and epoch hook in fit -------------------------------------------------------

def test_time_budget_must_be_a_non_negative_number():
    with pytest.raises(ConfigError, match="time_budget_s"):
        apply_overrides(RunConfig(), ["train.time_budget_s=-1"])
    with pytest.raises(ConfigError, match="time_budget_s"):
        apply_overrides(RunConfig(), ["train.time_budget_s=.inf"])
    assert apply_overrides(RunConfig(), ["train.time_budget_s=90"]).train.time_budget_s == 90.0


def test_time_budget_stops_training_and_a_resume_does_not_continue(tmp_path):
    cfg = apply_overrides(RunConfig(), [*FAST, "train.epochs=4", "train.time_budget_s=1e-9", *TINY_OVERRIDES])
    lines: list[str] = []
    result = fit(cfg, tmp_path / "r", splits=tiny_splits(), progress=False, log=lines.append)
    assert len(result.history) == 1 and result.stopped_early
    assert any(line.startswith("time budget:") for line in lines)
    again = fit(cfg, tmp_path / "r", resume=True, splits=tiny_splits(), progress=False, log=quiet)
    assert len(again.history) == 1


def test_on_epoch_gets_every_row_and_its_exception_stops_training(tmp_path):
    cfg = apply_overrides(RunConfig(), [*FAST, "train.epochs=2", *TINY_OVERRIDES])
    rows: list[dict] = []
    fit(cfg, tmp_path / "all", splits=tiny_splits(), progress=False, log=quiet, on_epoch=rows.append)
    assert [r["epoch"] for r in rows] == [1, 2] and all(0 <= r["val_acc"] <= 1 for r in rows)

    class Stop(Exception):
        pass

    def stop(row: dict) -> None:
        raise Stop

    with pytest.raises(Stop):
        fit(cfg, tmp_path / "stopped", splits=tiny_splits(), progress=False, log=quiet, on_epoch=stop)
    assert len(read_metrics_csv(tmp_path / "stopped" / "metrics.csv")) == 1  # epoch 1 was saved first


# --- cost measurements ----------------------------------------------------------------------------

def tiny_net() -> nn.Module:
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3))
    net.input_size, net.in_chans = (4, 4), 1
    return net


def test_params_and_macs_of_a_known_net():
    net = tiny_net()
    assert count_params(net) == (2 * 9 + 2) + (32 * 3 + 3)
    # conv: 2 output maps x 16 pixels x 9 taps; linear: 32 x 3 (biases and ReLU are not MACs)
    assert count_macs(net) == 2 * 16 * 9 + 32 * 3


def test_macs_grow_with_the_native_input():
    small = create_model("resnet_small", widths=(8, 8), blocks=(1, 1))
    assert count_macs(small) > 0
    small.input_size = (96, 96)  # four times the pixels, four times the convolution work
    assert count_macs(small) == pytest.approx(4 * count_macs(create_model("resnet_small", widths=(8, 8),
                                                                          blocks=(1, 1))), rel=0.01)


def test_measure_speed_reports_each_batch_size():
    speed = measure_speed(tiny_net(), batch_sizes=(1, 8), repeats=2, channels_last=False)
    assert sorted(speed) == [1, 8] and all(v > 0 for v in speed.values())
    with pytest.raises(ConfigError, match="batch sizes"):
        measure_speed(tiny_net(), batch_sizes=(0,))


# --- entries ----------------------------------------------------------------------------------------

def test_model_entries_from_names_and_yaml(tmp_path):
    base = write_yaml(tmp_path / "base.yaml", {"model": {"name": "resnet_small", "kwargs": {"widths": [8, 8]}},
                                               "optim": {"lr": 0.002}})
    own = write_yaml(tmp_path / "tiny_res.yaml", TINY_RESNET)
    entries = model_entries(["baseline_cnn", "resnet_small", str(own)], config=base,
                            overrides=["data.train_limit=50"], epochs=3, time_budget_s=60)
    assert [e.label for e in entries] == ["baseline_cnn", "resnet_small", "tiny_res"]
    by = {e.label: e.cfg for e in entries}
    assert by["baseline_cnn"].model.kwargs == {} and by["baseline_cnn"].optim.lr == 0.002
    assert by["resnet_small"].model.kwargs == {"widths": [8, 8]}  # the config names this model: kwargs kept
    assert by["tiny_res"].model.kwargs["blocks"] == [1, 1, 1, 1] and by["tiny_res"].optim.lr == 1e-3
    assert all(c.data.train_limit == 50 and c.train.epochs == 3 and c.train.time_budget_s == 60 for c in by.values())


def test_model_entries_fail_loudly(tmp_path):
    with pytest.raises(ModelError, match="nonet"):
        model_entries(["nonet"])
    with pytest.raises(ConfigError, match="distinct labels"):
        model_entries(["baseline_cnn", "baseline_cnn"])
    with pytest.raises(ConfigError, match="does not exist"):
        model_entries([str(tmp_path / "missing.yaml")])
    seeded = write_yaml(tmp_path / "seeded.yaml", {"model": {"name": "baseline_cnn"}, "train": {"seed": 3}})
    with pytest.raises(ConfigError, match="one seed"):
        model_entries(["resnet_small", str(seeded)])


def test_grid_configs_are_the_sorted_cells_without_shared_bases(tmp_path):
    write_yaml(tmp_path / "_base.yaml", {"model": {"name": "baseline_cnn"}, "optim": {"lr": 0.002}})
    for name, lr in (("b.yaml", 0.01), ("a.yaml", 0.02)):
        (tmp_path / name).write_text(f"base: _base.yaml\noptim:\n  lr: {lr}\n")
    (tmp_path / "notes.txt").write_text("not a config")
    cells = compare_run.grid_configs(tmp_path)
    assert [c.name for c in cells] == ["a.yaml", "b.yaml"]
    entries = model_entries([str(c) for c in cells])
    assert [(e.label, e.cfg.model.name, e.cfg.optim.lr) for e in entries] == [
        ("a", "baseline_cnn", 0.02), ("b", "baseline_cnn", 0.01)]


def test_grid_configs_fail_loudly(tmp_path):
    with pytest.raises(ConfigError, match="missing is not a folder"):
        compare_run.grid_configs(tmp_path / "missing")
    write_yaml(tmp_path / "_base.yaml", {"model": {"name": "baseline_cnn"}})
    with pytest.raises(ConfigError, match="holds no .* shared bases"):
        compare_run.grid_configs(tmp_path)


def test_cv3_folds_differ_only_in_the_held_out_fold():
    folds = [load_config(p) for p in compare_run.grid_configs(REPO / "configs" / "experiments" / "cv3")]
    assert [c.data.fold for c in folds] == [0, 1, 2]
    same = [dataclasses.replace(c, data=dataclasses.replace(c.data, fold=0)) for c in folds]
    assert same[1:] == same[:1] * 2


# --- the comparison end to end -------------------------------------------------------------------------

def skip_figures(monkeypatch) -> None:
    for name in ("plot_scores", "plot_confusions", "plot_curves"):
        monkeypatch.setattr(compare_plots, name, lambda *_, **__: None)


def test_compare_trains_scores_and_resumes(tmp_path, monkeypatch):
    own = write_yaml(tmp_path / "tiny_res.yaml", TINY_RESNET)
    entries = model_entries(["baseline_cnn", str(own)], overrides=FAST, epochs=2)
    out = tmp_path / "cmp"
    lines: list[str] = []
    results = compare_models(entries, out, splits=tiny_splits(), speed_batches=(1, 4), speed_repeats=1,
                             progress=False, log=lines.append)
    assert [r.label for r in results] == ["baseline_cnn", "tiny_res"]
    for r in results:
        history = read_metrics_csv(Path(r.run_dir) / "metrics.csv")
        # protocol: the checkpoint is the epoch with the best validation accuracy, whatever test says
        assert r.best_epoch == 1 + max(range(len(history)), key=lambda i: (history[i]["val_acc"], -i))
        assert r.val_acc == pytest.approx(history[r.best_epoch - 1]["val_acc"], abs=1e-6)
        assert r.scored_on == "test" and 0 <= r.test_acc <= 1 and r.epochs == 2
        assert sum(map(sum, r.confusion)) == int((make_faces(N).usage == 2).sum())
        assert set(r.recall) == set(make_faces().names) and sorted(r.infer_ms) == [1, 4]
        assert r.params == count_params(create_model(r.model, **({} if r.model == "baseline_cnn" else
                                                                  TINY_RESNET["model"]["kwargs"])))
    assert results[0].macs > results[1].macs > 0  # baseline's 4608x256 head outweighs the tiny ResNet
    with (out / "compare.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [row["label"] for row in rows] == ["baseline_cnn", "tiny_res"]
    assert {"params", "macs", "train_s_per_epoch", "infer_ms_b1", "infer_ms_b4", "val_acc", "test_acc",
            "f1_macro", "f1_weighted", "recall_disgust"} <= set(rows[0])
    md = (out / "compare.md").read_text()
    assert "| Model |" in md and "tiny_res" in md and "CPU:" in md
    for name in ("scores.png", "confusion.png", "curves.png"):
        assert (out / name).stat().st_size > 1000, name

    # a rerun skips finished models: training them again would fail here
    def no_training(*_, **__):
        raise AssertionError("a finished model was trained again")

    skip_figures(monkeypatch)  # drawn and checked above; each costs seconds on a busy CPU
    monkeypatch.setattr(sys.modules["mien.train.fit"], "fit", no_training)
    lines.clear()
    again = compare_models(entries, out, splits=tiny_splits(), speed_batches=(1, 4), progress=False,
                           log=lines.append)
    assert [r.val_acc for r in again] == [r.val_acc for r in results]
    assert sum("skipped" in line for line in lines) == 2
    # the thread count says where a run executes, not what it computes: on other cores it is skipped too
    lines.clear()
    threaded = model_entries(["baseline_cnn", str(own)], overrides=[*FAST, "train.threads=3"], epochs=2)
    compare_models(threaded, out, splits=tiny_splits(), speed_batches=(1, 4), progress=False, log=lines.append)
    assert sum("skipped" in line for line in lines) == 2
    monkeypatch.setattr(sys.modules["mien.train.fit"], "fit", fit)

    # a model killed after training but before scoring resumes its finished run and is scored alike
    (out / "runs" / "tiny_res" / compare_run.RESULT_FILE).unlink()
    resumed = compare_models(entries, out, splits=tiny_splits(), speed_batches=(1, 4), progress=False, log=quiet)
    assert resumed[1].val_acc == results[1].val_acc and resumed[1].best_epoch == results[1].best_epoch

    # a finished run with another config is refused rather than silently mixed in
    longer = model_entries(["baseline_cnn"], overrides=FAST, epochs=3)
    with pytest.raises(ConfigError, match="different config"):
        compare_models(longer, out, splits=tiny_splits(), progress=False, log=quiet)


def result(label: str, val: float, test: float | None) -> ModelResult:
    return ModelResult(label=label, model="baseline_cnn", params=10, macs=20, input="1x48x48",
                       classes=("angry", "happy"), epochs=2, best_epoch=1, train_s_per_epoch=1.0,
                       infer_ms={1: 0.5}, val_acc=val, val_f1_macro=val, test_acc=test,
                       scored_on="val" if test is None else "test", f1_macro=0.5, f1_weighted=0.5,
                       recall={"angry": 0.25, "happy": 0.75}, confusion=[[1, 3], [1, 3]], load_avg=0.0,
                       data="kfold 1/3", run_dir="r")


def test_summary_rows_give_mean_and_sample_std(tmp_path):
    write_table([result("f0", 0.5, None), result("f1", 0.7, None)], tmp_path, summary=True)
    with (tmp_path / "compare.csv").open() as fh:
        rows = {row["label"]: row for row in csv.DictReader(fh)}
    assert float(rows["mean"]["val_acc"]) == pytest.approx(0.6)
    assert float(rows["std"]["val_acc"]) == pytest.approx(0.1414213, rel=1e-5)
    assert rows["f0"]["test_acc"] == "" and rows["mean"]["test_acc"] == ""
    assert "| mean |" in (tmp_path / "compare.md").read_text()


# --- the command line ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [("90", 90.0), ("90s", 90.0), ("10m", 600.0), ("1.5h", 5400.0)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


def test_parse_duration_rejects_nonsense():
    with pytest.raises(ConfigError, match="not a duration"):
        parse_duration("ten minutes")


def test_cli_compare(tmp_path, capsys, monkeypatch):
    skip_figures(monkeypatch)
    npz = save_npz(make_faces(N), tmp_path / "faces.npz")
    out = tmp_path / "cmp"
    argv = ["compare", "--models", "baseline_cnn", "--epochs", "1", "--time-budget", "5m", "--out", str(out),
            "--speed-batches", "1,2", "--no-progress", f"data.source={npz}", *FAST]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| baseline_cnn |" in printed and "best on val: baseline_cnn" in printed
    saved = json.loads((out / "runs" / "baseline_cnn" / "compare.json").read_text())
    assert saved["config"]["train"]["time_budget_s"] == 300.0
    assert main(["compare", "--out", str(out)]) == 1
    assert "--models" in capsys.readouterr().err
    assert main(["compare", "--grid", str(tmp_path / "nogrid"), "--out", str(out)]) == 1
    assert "nogrid is not a folder" in capsys.readouterr().err


# --- the experiment configs -----------------------------------------------------------------------------

EXPERIMENTS = sorted(p for p in (REPO / "configs" / "experiments").rglob("*.yaml") if "tune" not in p.parts)


def test_there_are_experiment_configs():
    assert len(EXPERIMENTS) >= 10


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_experiment_config_loads_and_builds_its_model(path):
    cfg = load_config(path)
    model = create_model(cfg.model.name, num_classes=len(cfg.data.classes), **cfg.model.kwargs)
    assert isinstance(model(torch.zeros(1, model.in_chans, *model.input_size)), torch.Tensor)
