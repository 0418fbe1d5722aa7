"""`mien train`: a thin adapter over `mien.train.fit`."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from . import example_epilog


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model on FER2013",
        description="Train a model. Defaults come from mien's typed config; a YAML file and "
        "section.key=value overrides change them. The resolved config, metrics.csv and best/last "
        "checkpoints (safetensors + JSON) go into the run directory.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=example_epilog(
            "mien train --config configs/baseline.yaml --out runs/baseline",
            "mien train model.name=resnet_small train.epochs=30 optim.lr=1e-3 --out runs/res",
            "mien train data.train_limit=2000 train.epochs=1 --out runs/quick",
            "mien train --resume runs/baseline        # continue after an interruption",
            "mien train --resume runs/baseline train.threads=1   # ... on one core",
            "torchrun --nproc-per-node 2 -m mien train --config configs/baseline.yaml --out runs/ddp",
        ),
    )
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. optim.lr=5e-4")
    p.add_argument("--config", "-c", type=Path, help="YAML config file (see configs/)")
    p.add_argument("--out", "-o", type=Path, help="run directory (default: runs/MODEL-TIMESTAMP)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="same as train.device=...")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"),
                   help="same as train.precision=... (auto: bf16 only on CUDA or CPUs with AMX/AVX512-BF16)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (epoch lines are still printed)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..config import EXECUTION_ONLY, load_config
    from ..errors import ConfigError
    from ..train.fit import fit

    if args.resume is not None:
        allowed = tuple(f"{section}.{name}=" for section, name in EXECUTION_ONLY)
        if (args.config or args.out or args.device or args.precision
                or any(not o.startswith(allowed) for o in args.overrides)):
            raise ConfigError("--resume takes the run's own config.yaml; drop --config, --out, --device, "
                              f"--precision and overrides other than {', '.join(a + 'N' for a in allowed)}")
        cfg = load_config(args.resume / "config.yaml", args.overrides)
        run_dir = args.resume
    else:
        flags = [f"train.{k}={v}" for k, v in (("device", args.device), ("precision", args.precision)) if v]
        cfg = load_config(args.config, [*args.overrides, *flags])
        run_dir = args.out or Path("runs") / f"{cfg.model.name}-{datetime.now():%Y%m%d-%H%M%S}"
    result = fit(cfg, run_dir, resume=args.resume is not None, progress=not args.no_progress)
    print(f"best {cfg.train.monitor} {result.best_value:.4f} at epoch {result.best_epoch}; run dir {result.run_dir}")
    print(f"next: mien evaluate {result.run_dir} --split test")
    return 0
