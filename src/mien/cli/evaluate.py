"""`mien evaluate`: a thin adapter over `mien.evaluate.run.evaluate_run`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..tta import TTA_MODES
from . import add_retain_memory_flag, apply_retain_memory, example_epilog


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a trained run: metrics, confusion matrix, curves, prediction grid, report",
        description="Evaluate a run's best checkpoint on one split of the run's own data and write "
        "report.md, metrics.json, confusion_matrix.png/.csv, per_class.csv, curves.png and "
        "predictions.png. With the official split, --split test is PrivateTest, never used for selection.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=example_epilog(
            "mien evaluate runs/baseline --split test",
            "mien evaluate runs/baseline --split test --tta flip --out reports/baseline",
        ),
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a training run directory (or a checkpoint file)")
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--tta", choices=TTA_MODES, default="none",
                   help="test-time augmentation: flip averages 2 views, tencrop 10 (default: none)")
    p.add_argument("--out", type=Path, help="output directory (default: RUN_DIR/eval-SPLIT[-TTA])")
    p.add_argument("--data", type=Path, help="data source, if it moved since training")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                   help="auto: bf16 on CUDA and CPUs with bf16 units (AMX), else fp32; model cards use fp32")
    add_retain_memory_flag(p)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluate.run import evaluate_run

    apply_retain_memory(args)
    metrics = evaluate_run(args.run_dir, split=args.split, tta=args.tta, out_dir=args.out, source=args.data,
                           which=args.checkpoint, device=args.device, precision=args.precision,
                           progress=not args.no_progress)
    print(f"accuracy {metrics['accuracy']:.4f}  macro F1 {metrics['f1']['macro']:.4f}  "
          f"weighted F1 {metrics['f1']['weighted']:.4f}  on {metrics['n']} faces")
    print(f"report: {metrics['run']['report']}")
    return 0
