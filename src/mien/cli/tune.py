"""`mien tune`: a thin adapter over `mien.tune.tune`."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import example_epilog


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tune",
        help="search hyperparameters with Optuna (pruned, resumable, objective on PublicTest only)",
        description="Run an Optuna study over a declared search space (learning rate, weight decay, dropout, "
        "batch size, label smoothing, augmentation strength). Each trial trains the base config with its "
        "sampled values and reports validation accuracy every epoch; a MedianPruner stops trials that trail. "
        "Test faces never reach a trial. The study lives in OUT/study.db: rerun the same command after an "
        "interruption to continue. The best trial's full config is saved as OUT/best.yaml for `mien train`.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=example_epilog(
            "mien tune --config configs/resnet_small_fast.yaml --space configs/experiments/tune/space.yaml "
            "--out runs/tune",
            "mien tune --config configs/baseline.yaml --trials 30 --epochs 5 --out runs/tune-base "
            "data.train_limit=5000",
            "mien tune --config configs/baseline.yaml --out runs/tune-base --set space.search=[lr,batch_size]",
            "mien train --config runs/tune/best.yaml --out runs/tuned   # train the best trial's config",
        ),
    )
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="base run config overrides, e.g. optim.name=adam")
    p.add_argument("--config", "-c", type=Path, help="base run config YAML that every trial starts from")
    p.add_argument("--space", type=Path, help="tune YAML with `space` and `study` sections (default: built-in)")
    p.add_argument("--set", dest="tune_overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="tune file override, e.g. --set study.warmup_epochs=2 (repeatable)")
    p.add_argument("--out", "-o", type=Path, required=True, help="study directory (reuse it to resume)")
    p.add_argument("--trials", type=int, help="finished trials the study should hold (same as --set study.trials=N)")
    p.add_argument("--epochs", type=int, help="epochs per trial (same as --set study.epochs=N)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..tune import load_tune_config, tune

    flags = [f"study.{k}={v}" for k, v in (("trials", args.trials), ("epochs", args.epochs)) if v is not None]
    tcfg = load_tune_config(args.space, [*args.tune_overrides, *flags])
    base = load_config(args.config, args.overrides)
    result = tune(base, tcfg, args.out, progress=not args.no_progress)
    print(f"best trial {result.best_number}: val accuracy {result.best_value:.4f} "
          f"({result.complete} complete, {result.pruned} pruned, {result.failed} failed)")
    print(f"best config: {result.best_config}")
    print(f"next: mien train --config {result.best_config} --out runs/tuned")
    return 0
