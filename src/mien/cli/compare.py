"""`mien compare`: a thin adapter over `mien.compare.model_entries` and `compare_models`."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import example_epilog


def parse_duration(text: str) -> float:
    """Seconds from '90', '90s', '10m' or '1.5h'."""
    from ..errors import ConfigError

    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    raw = text.strip().lower()
    factor = units.get(raw[-1:], None)
    number = raw[:-1] if factor is not None else raw
    try:
        seconds = float(number) * (factor or 1.0)
    except ValueError:
        raise ConfigError(f"--time-budget {text!r} is not a duration; use e.g. 600, 600s, 10m or 1.5h") from None
    if not seconds >= 0:
        raise ConfigError(f"--time-budget must be >= 0, got {text!r}")
    return seconds


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare",
        help="train several models on identical splits and seeds; one table and figures",
        description="Train each model (a registered name, or a YAML run config labelled by its file name) "
        "on the same split with the same seed under an epoch and/or time budget, choose each checkpoint "
        "on the validation split (PublicTest), and report parameters, MACs, training s/epoch, CPU "
        "inference ms/image, val and test accuracy, macro/weighted F1 and per-class recall in "
        "OUT/compare.csv and compare.md, with scores.png, confusion.png and curves.png. Each model's run "
        "directory is kept under OUT/runs/; rerunning skips finished models and resumes an interrupted one.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=example_epilog(
            "mien compare --models baseline_cnn,resnet_small --epochs 5 --time-budget 10m --out runs/cmp",
            "mien compare --models baseline_cnn,configs/resnet_small_fast.yaml --epochs 3 --out runs/cmp "
            "data.train_limit=2000",
            "mien compare --grid configs/experiments/lr_batch --out runs/lr_batch",
            "mien compare --grid configs/experiments/cv3 --summary --out runs/cv3   # mean and std over folds",
        ),
    )
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides applied to every model, e.g. data.train_limit=2000")
    p.add_argument("--models", "-m", default="",
                   help="comma-separated registered model names and/or YAML run configs")
    p.add_argument("--grid", type=Path, action="append", default=[], metavar="DIR",
                   help="add every *.yaml run config in DIR (sorted by name; _*.yaml files are shared "
                   "bases, not cells); repeatable")
    p.add_argument("--config", "-c", type=Path, help="YAML config for the models given by name")
    p.add_argument("--out", "-o", type=Path, required=True, help="output directory (reuse it to resume)")
    p.add_argument("--epochs", type=int, help="epochs per model (replaces train.epochs)")
    p.add_argument("--time-budget", type=parse_duration, metavar="DURATION",
                   help="training time per model, e.g. 600, 10m, 1h (replaces train.time_budget_s)")
    p.add_argument("--speed-batches", default="1,256", help="batch sizes for CPU inference timing (default 1,256)")
    p.add_argument("--summary", action="store_true", help="add mean and std rows (e.g. for k-fold configs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..compare import compare_models, grid_configs, model_entries
    from ..errors import ConfigError

    specs = [s.strip() for s in args.models.split(",") if s.strip()]
    for folder in args.grid:
        specs += [str(f) for f in grid_configs(folder)]
    if not specs:
        raise ConfigError("name the models to compare with --models and/or --grid")
    try:
        batches = [int(b) for b in args.speed_batches.split(",") if b.strip()]
    except ValueError:
        raise ConfigError(f"--speed-batches must be comma-separated integers, got {args.speed_batches!r}") from None
    entries = model_entries(specs, config=args.config, overrides=args.overrides, epochs=args.epochs,
                            time_budget_s=args.time_budget)
    results = compare_models(entries, args.out, speed_batches=batches, summary=args.summary,
                             progress=not args.no_progress)
    print((args.out / "compare.md").read_text(), end="")
    print(f"best on val: {max(results, key=lambda r: r.val_acc).label}")
    return 0
