"""`mien data`: convert, inspect and preview FER2013 sources (thin adapters over `mien.data`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from . import example_epilog

if TYPE_CHECKING:
    from ..data.arrays import FaceArrays

_SOURCE_HELP = "FER2013 csv, npz, .mpk or image folder (default: $MIEN_DATA, then ../shared/data/fer2013.npz)"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "data",
        help="convert, inspect and preview FER2013 sources",
        description="Read FER2013 from its csv, an image folder (train/<class>/*.jpg) or an npz cache.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=example_epilog(
            "mien data convert fer2013.csv ../shared/data/fer2013.npz",
            "mien data info",
            "mien data preview --out preview.png --augmented",
        ),
    )
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    convert = sub.add_parser(
        "convert",
        help="cache any source as an npz (fast to load) or an .mpk (small)",
        description="Read a source and write it as a compressed npz that every mien command reads, or, when "
        "OUT ends in .mpk, in mien's compact lossless form (about 70 %% of the npz's size; slower to load).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=example_epilog(
            "mien data convert fer2013.csv fer2013.npz",
            "mien data convert archive/ fer2013.npz --skip-bad   # Kaggle train/ and test/ folders",
            "mien data convert fer2013.npz trainval.mpk --usage Training,PublicTest",
        ),
    )
    convert.add_argument("source", type=Path, metavar="SRC", help="FER2013 csv, npz, .mpk or image folder")
    convert.add_argument("out", type=Path, metavar="OUT", help="file to write: OUT.npz, or OUT.mpk for the compact form")
    convert.add_argument("--usage", metavar="SPLITS",
                         help="keep only these splits, comma-separated (Training, PublicTest, PrivateTest)")
    _add_skip_bad(convert)
    convert.set_defaults(handler=run_convert)

    info = sub.add_parser(
        "info",
        help="faces per split and class",
        description="Print the number of faces per class and split (Training/PublicTest/PrivateTest).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=example_epilog("mien data info", "mien data info fer2013.csv --skip-bad"),
    )
    info.add_argument("source", type=Path, nargs="?", metavar="SRC", help=_SOURCE_HELP)
    _add_skip_bad(info)
    info.set_defaults(handler=run_info)

    preview = sub.add_parser(
        "preview",
        help="PNG grid of sample faces per class, raw and augmented",
        description="Write a PNG grid of Training faces per class; with --augmented also a second grid "
        "(OUT_augmented.png) of the same kind of faces after training-time augmentation.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=example_epilog(
            "mien data preview --out preview.png",
            "mien data preview fer2013.npz --out preview.png --per-class 12 --augmented --seed 1",
            "mien data preview --out preview.png --augmented --config configs/baseline.yaml",
        ),
    )
    preview.add_argument("source", type=Path, nargs="?", metavar="SRC", help=_SOURCE_HELP)
    preview.add_argument("--out", "-o", type=Path, required=True, help="PNG file to write")
    preview.add_argument("--per-class", type=int, default=8, help="faces per class (default 8)")
    preview.add_argument("--augmented", action="store_true", help="also write a grid of augmented faces")
    preview.add_argument("--config", "-c", type=Path,
                         help="YAML run config whose augment section --augmented uses (default: mien's defaults)")
    preview.add_argument("--seed", type=int, default=0, help="picks the faces and the augmentation (default 0)")
    _add_skip_bad(preview)
    preview.set_defaults(handler=run_preview)


def _add_skip_bad(p: argparse.ArgumentParser) -> None:
    p.add_argument("--skip-bad", action="store_true",
                   help="skip malformed csv rows and unreadable images instead of failing")


def _load(source: Path | None, skip_bad: bool) -> tuple[Path, FaceArrays]:
    from ..data.sources import default_source, load_source

    path = source if source is not None else default_source()
    return path, load_source(path, skip_bad=skip_bad)


def run_convert(args: argparse.Namespace) -> int:
    from ..data.packed import SUFFIX, save_packed
    from ..data.sources import save_npz, select_usage, split_summary

    _, faces = _load(args.source, args.skip_bad)
    if args.usage is not None:
        faces = select_usage(faces, [u.strip() for u in args.usage.split(",")])
    save = save_packed if args.out.suffix.lower() == SUFFIX else save_npz
    written = save(faces, args.out)
    print(f"wrote {written}: {split_summary(faces)}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from ..data.sources import count_table, split_summary

    path, faces = _load(args.source, args.skip_bad)
    print(f"{path}: {split_summary(faces)}\n")
    print(count_table(faces))
    return 0


def run_preview(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..data.preview import write_preview_grid
    from ..errors import ConfigError

    if args.config is not None and not args.augmented:
        raise ConfigError("--config only sets the augmentation of --augmented; add --augmented or drop --config")
    augment = load_config(args.config).augment if args.augmented else None
    _, faces = _load(args.source, args.skip_bad)
    written = [write_preview_grid(faces, args.out, per_class=args.per_class, seed=args.seed)]
    if augment is not None:
        out = args.out.with_name(f"{args.out.stem}_augmented{args.out.suffix or '.png'}")
        written.append(write_preview_grid(faces, out, per_class=args.per_class, augment=augment, seed=args.seed))
    for path in written:
        print(f"wrote {path}")
    return 0
