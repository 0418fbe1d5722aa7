"""`tune`: an Optuna study over the declared search space, kept in a local SQLite file.

Each trial trains with the engine's `fit` into `OUT/trials/NNNN`, reporting validation accuracy
after every epoch so a MedianPruner can stop a trial that trails the earlier ones. The objective
is the best validation (PublicTest) accuracy; test faces are removed before any trial runs. The
study lives in `OUT/study.db`: after a kill, rerunning the same command marks the interrupted
trial failed and runs only the trials still missing.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import yaml

from ..config import RunConfig, config_to_dict
from ..errors import ConfigError, MienError, ModelError
from .space import PARAMS, SearchSpace, TrialParams, TuneConfig, apply_params

if TYPE_CHECKING:
    import optuna

    from ..data.pipeline import DataSplits

STUDY_NAME = "mien-tune"
SETUP_FILE = "tune.json"


@dataclass(frozen=True)
class TuneResult:
    out_dir: Path
    best_number: int
    best_value: float
    """Best validation accuracy of the best trial."""
    best_params: TrialParams
    best_config: Path
    """best.yaml: the best trial's full run config, ready for `mien train --config`."""
    complete: int
    pruned: int
    failed: int


def sample_params(trial: optuna.Trial, space: SearchSpace) -> TrialParams:
    """Ask an Optuna trial for a value of every parameter in `space.search`."""
    values: dict[str, Any] = {}
    for name in space.search:
        if name == "batch_size":
            values[name] = trial.suggest_categorical(name, list(space.batch_size))
        else:
            bounds = getattr(space, name)
            values[name] = trial.suggest_float(name, bounds.low, bounds.high, log=bounds.log)
    return TrialParams(**values)


def report_epoch(trial: optuna.Trial, *, epoch: int, value: float) -> None:
    """Report one epoch's validation accuracy (1-based `epoch`); raise TrialPruned if the pruner says so."""
    import optuna

    trial.report(value, step=epoch - 1)  # 0-based steps: `warmup_epochs` epochs are never pruned
    if trial.should_prune():
        raise optuna.TrialPruned(f"val accuracy {value:.4f} after epoch {epoch} trails the earlier trials' median")


def open_study(out_dir: str | Path, tcfg: TuneConfig) -> optuna.Study:
    """Create or reopen the study in OUT/study.db with a seeded TPE sampler and a MedianPruner."""
    import optuna

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sc = tcfg.study
    study = optuna.create_study(
        storage=f"sqlite:///{(out_dir / 'study.db').resolve()}", study_name=STUDY_NAME, direction="maximize",
        load_if_exists=True,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=sc.startup_trials, n_warmup_steps=sc.warmup_epochs))
    # A resumed study must not replay the first session's random start-up proposals.
    study.sampler = optuna.samplers.TPESampler(seed=sc.sampler_seed + len(study.trials))
    return study


def _check_setup(out_dir: Path, base: RunConfig, tcfg: TuneConfig) -> None:
    """Save the base config and space on the first run; refuse to mix in a different one later."""
    setup = {"base": config_to_dict(base), "space": config_to_dict(tcfg.space),
             "study": {k: v for k, v in config_to_dict(tcfg.study).items() if k not in ("trials", "timeout_s")}}
    path = out_dir / SETUP_FILE
    if path.is_file():
        if json.loads(path.read_text()) != setup:
            raise ConfigError(f"{out_dir} holds a study with another base config, space or pruning setup "
                              f"(see {path}); resume it with the same ones or choose another --out")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(setup, indent=2))


def _check_base(base: RunConfig, tcfg: TuneConfig) -> None:
    from ..models import create_model

    if base.train.monitor != "val_acc":
        raise ConfigError(f"tune maximises validation accuracy, so trials must pick checkpoints by it too; "
                          f"set train.monitor=val_acc (got {base.train.monitor})")
    if "dropout" in tcfg.space.search:
        try:
            create_model(base.model.name, num_classes=len(base.data.classes),
                         **{**base.model.kwargs, "dropout": tcfg.space.dropout.low})
        except ModelError as exc:
            raise ConfigError(f"space.search has dropout, but {exc}; remove dropout from space.search") from None


def _states() -> tuple[Any, Any, Any, Any]:
    from optuna.trial import TrialState

    return TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING


def _write_results(study: optuna.Study, base: RunConfig, tcfg: TuneConfig, out_dir: Path) -> TuneResult:
    complete_s, pruned_s, fail_s, _ = _states()
    counts = {s: len(study.get_trials(deepcopy=False, states=(s,))) for s in (complete_s, pruned_s, fail_s)}
    with (out_dir / "trials.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["number", "state", "val_acc", "epochs", *PARAMS, "run_dir"])
        for t in study.trials:
            writer.writerow([t.number, t.state.name, "" if t.value is None else t.value, len(t.intermediate_values),
                             *[t.params.get(p, "") for p in PARAMS], t.user_attrs.get("run_dir", "")])
    if not counts[complete_s]:
        raise MienError(f"no trial of the study in {out_dir} has completed yet ({counts[pruned_s]} pruned, "
                        f"{counts[fail_s]} failed); see {out_dir / 'trials.csv'}")
    best = study.best_trial
    params = TrialParams(**best.params)
    cfg = apply_params(base, params, epochs=tcfg.study.epochs)
    header = [f"mien tune: best of {counts[complete_s]} complete trials ({counts[pruned_s]} pruned) in {out_dir}",
              f"trial {best.number}: val (PublicTest) accuracy {best.value:.4f} with "
              + ", ".join(f"{k}={v:.4g}" for k, v in best.params.items()),
              f"train it: mien train --config {out_dir / 'best.yaml'} --out runs/tuned"]
    best_yaml = out_dir / "best.yaml"
    best_yaml.write_text("".join(f"# {line}\n" for line in header)
                         + yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    (out_dir / "best.json").write_text(json.dumps({
        "number": best.number, "val_acc": best.value, "params": asdict(params),
        "run_dir": best.user_attrs.get("run_dir", ""), "complete": counts[complete_s],
        "pruned": counts[pruned_s], "failed": counts[fail_s]}, indent=2))
    return TuneResult(out_dir=out_dir, best_number=best.number, best_value=float(best.value), best_params=params,
                      best_config=best_yaml, complete=counts[complete_s], pruned=counts[pruned_s],
                      failed=counts[fail_s])


def tune(
    base: RunConfig,
    tcfg: TuneConfig,
    out_dir: str | Path,
    *,
    splits: DataSplits | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TuneResult:
    """Run (or resume) the study until it holds `tcfg.study.trials` finished trials.

    Args:
        base: the run config every trial starts from (data, model, schedule, ...).
        tcfg: the search space and study settings.
        out_dir: study.db, tune.json, trials/NNNN run dirs, trials.csv, best.yaml and best.json.
        splits: faces to use instead of loading `base.data` (their test part is never used).

    Returns:
        The best trial and where its config was saved.
    """
    import optuna

    from ..data.pipeline import DataSplits, load_splits
    from ..train.fit import fit

    out_dir = Path(out_dir)
    _check_base(base, tcfg)
    _check_setup(out_dir, base, tcfg)
    study = open_study(out_dir, tcfg)
    complete_s, pruned_s, _, running_s = _states()
    for stale in study.get_trials(deepcopy=False, states=(running_s,)):
        # One process drives a study, so a trial still marked running was cut off by a kill.
        study.tell(stale.number, state=optuna.trial.TrialState.FAIL)
        log(f"trial {stale.number} was interrupted; marked failed")
    finished = len(study.get_trials(deepcopy=False, states=(complete_s, pruned_s)))
    remaining = tcfg.study.trials - finished
    log(f"mien tune: {finished} finished trials in {out_dir / 'study.db'}; running {max(remaining, 0)} more")
    if remaining > 0:
        data = splits if splits is not None else load_splits(base.data, seed=base.train.seed)
        # The objective is validation accuracy only: no trial ever holds a test face.
        data = DataSplits(data.train, data.val, data.test.subset(np.zeros(0, dtype=np.int64)))

        def objective(trial: optuna.Trial) -> float:
            params = sample_params(trial, tcfg.space)
            cfg = apply_params(base, params, epochs=tcfg.study.epochs)
            run_dir = out_dir / "trials" / f"{trial.number:04d}"
            trial.set_user_attr("run_dir", str(run_dir))
            log(f"trial {trial.number}: " + ", ".join(f"{k}={v:.4g}" for k, v in trial.params.items()))
            result = fit(cfg, run_dir, splits=data, progress=progress, log=log,
                         on_epoch=lambda row: report_epoch(trial, epoch=int(row["epoch"]), value=row["val_acc"]))
            return max(row["val_acc"] for row in result.history)

        def after(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            value = "" if trial.value is None else f" val acc {trial.value:.4f}"
            log(f"trial {trial.number} {trial.state.name.lower()}{value}")

        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own one line per trial instead
        try:
            study.optimize(objective, n_trials=remaining, timeout=tcfg.study.timeout_s or None, callbacks=[after])
        finally:
            optuna.logging.set_verbosity(verbosity)
    result = _write_results(study, base, tcfg, out_dir)
    log(f"best: trial {result.best_number}, val acc {result.best_value:.4f}; config {result.best_config}")
    return result
