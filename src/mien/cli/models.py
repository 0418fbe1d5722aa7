"""`mien models`: a thin adapter over `mien.weights.catalog.shipped_catalog` and `mien.models.describe_model`."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from . import example_epilog


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "models",
        help="list the shipped models (accuracy, size) or the trainable architectures",
        description=(
            "List the models shipped inside the package, which --model takes by name: architecture,\n"
            "parameters, size, test-time augmentation and the accuracies their cards state (chosen on\n"
            "PublicTest, PrivateTest evaluated once). With --architectures, list every registered\n"
            "architecture that `mien train model.name=...` takes instead."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=example_epilog(
            "mien models",
            "mien models --json",
            "mien models --architectures",
        ),
    )
    p.add_argument("--architectures", action="store_true",
                   help="list the registered architectures (built at their defaults: a few seconds)")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.architectures:
        from ..models import describe_model, list_models

        rows = [asdict(describe_model(name)) for name in list_models()]
        columns = [("name", "name"), ("input", "input"), ("params", "params"), ("Grad-CAM layer", "gradcam_layer"),
                   ("summary", "summary")]
        table = [{**r, "input": f"{r['in_chans']}x{r['input_size'][0]}x{r['input_size'][1]}",
                  "params": _millions(r["params"])} for r in rows]
    else:
        from ..weights.catalog import shipped_catalog

        rows = [m.to_dict() for m in shipped_catalog()]
        columns = [("name", "name"), ("kind", "kind"), ("architecture", "architecture"), ("params", "params"),
                   ("MB", "size_mb"), ("TTA", "tta"), ("PublicTest", "val_accuracy"),
                   ("PrivateTest", "test_accuracy"), ("macro F1", "test_macro_f1")]
        table = [{**r, "params": _millions(r["params"]), "size_mb": f"{r['size_mb']:.1f}",
                  **{k: _pct(r[k]) for k in ("val_accuracy", "test_accuracy", "test_macro_f1")}} for r in rows]
    if args.json:
        print(json.dumps(rows, indent=2, default=list))
    else:
        print(_format_table(columns, table))
    return 0


def _millions(n: int) -> str:
    return f"{n / 1e6:.2f} M"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f} %"


def _format_table(columns: list[tuple[str, str]], rows: list[dict]) -> str:
    """Plain aligned columns; the last column is left unpadded so long summaries just run on."""
    cells = [[title for title, _ in columns]] + [[str(r[key]) for _, key in columns] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line[:-1], widths)) + "  " + line[-1] for line in cells)
