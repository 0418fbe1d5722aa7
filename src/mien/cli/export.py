"""`mien export`: a thin adapter over `mien.export.onnx.export_onnx`."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import example_epilog


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a shipped model or a trained run to ONNX (dynamic batch axis)",
        description=(
            "Export a model to ONNX: input 'input' (batch, channels, 48, 48) float32, normalised as the\n"
            "checkpoint says (x / 255, then (x - mean) / std); output 'logits' (batch, classes).\n"
            "Class names, normalisation and the model spec go into the ONNX metadata and into OUT.json\n"
            "(e.g. model.onnx.json). Run it with `mien predict --model OUT.onnx --backend onnx`."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=example_epilog(
            "mien export default --format onnx --out default.onnx",
            "mien export runs/baseline --format onnx      # writes runs/baseline/best.onnx",
        ),
    )
    p.add_argument("model", metavar="NAME|RUN_DIR", help="a shipped model name, a run directory or a checkpoint file")
    p.add_argument("--format", choices=("onnx",), default="onnx", help="export format (default: onnx)")
    p.add_argument("--out", type=Path, help="output file (default: RUN_DIR/best.onnx, CHECKPOINT.onnx, or ./NAME.onnx)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version (default: 17)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..export.onnx import export_onnx, sidecar_path
    from ..weights import resolve_model_source

    source = resolve_model_source(args.model)
    out = args.out or default_output(args.model, source)
    path = export_onnx(source, out, opset=args.opset)
    print(f"wrote {path} and {sidecar_path(path)}")
    return 0


def default_output(spec: str, source: Path) -> Path:
    """A run directory or checkpoint exports beside its weights; a shipped name into the working directory."""
    from .. import weights

    if source.parent == Path(weights.__file__).resolve().parent:  # never write into the installed package
        return Path(f"{source.stem}.onnx")
    return source.with_suffix(".onnx")
