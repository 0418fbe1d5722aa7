"""`mien` command line: thin adapters over the Python API.

Each subcommand module exposes `add_parser(subparsers)`, which registers its parser and sets
`handler` (a function of the parsed args returning an exit code). Errors print as one line
(`mien: error: ...`) with a non-zero exit; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Sequence

from ..errors import MienError

# Subcommand modules, in the order `mien --help` lists them.
_COMMANDS = ("predict", "explain", "export", "models", "data", "train", "evaluate", "compare", "tune", "serve")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="mien",
        description="Facial expression recognition: predict on photos and videos, explain, export, and "
        "train and evaluate models on FER2013.",
        epilog="Run `mien COMMAND --help` for a command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"mien {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f".{name}", __name__).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            if not args.debug:
                warnings.showwarning = _show_warning
            code = int(args.handler(args) or 0)
            sys.stdout.flush()  # here, so a closed pipe surfaces below rather than at interpreter exit
            return code
    except KeyboardInterrupt:
        print("mien: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader closed the pipe (`mien predict ... | head`): stop quietly
        # Point stdout at /dev/null so the interpreter's final flush cannot raise it again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a writer the pipe stopped
    except Exception as exc:  # the CLI boundary: one clear line instead of a traceback
        if args.debug:
            raise
        kind = "error" if isinstance(exc, (MienError, OSError)) else f"internal error ({type(exc).__name__})"
        hint = "" if isinstance(exc, MienError) else " (rerun with --debug for the traceback)"
        print(f"mien: {kind}: {exc}{hint}", file=sys.stderr)
        return 1


def _show_warning(message: Warning | str, *_: object, **__: object) -> None:
    """Warnings (e.g. images converted while loading) as one `mien: warning: ...` line each."""
    print(f"mien: warning: {message}", file=sys.stderr)


def add_retain_memory_flag(parser: argparse.ArgumentParser) -> None:
    """`--retain-memory/--no-retain-memory` for a command that computes on the CPU (see `apply_retain_memory`)."""
    parser.add_argument("--retain-memory", action=argparse.BooleanOptionalAction, default=True,
                        help="keep freed memory for reuse (glibc; process-wide): on a 2-core AMD EPYC, batched "
                        "classification ran ~1.5x faster and PrivateTest through a 2.8M net took 38 s, not 64 s")


def apply_retain_memory(args: argparse.Namespace) -> bool:
    """`mien.memory.retain_freed_memory` unless `--no-retain-memory`: process-wide, which the CLI owns.

    True when freed memory is now kept (False with the flag off, or where glibc is not the C library).
    """
    if not args.retain_memory:
        return False
    from ..memory import retain_freed_memory

    return retain_freed_memory()


def example_epilog(*lines: str) -> str:
    """An argparse epilog listing examples, one per line."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)
