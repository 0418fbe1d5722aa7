"""`mien explain`: a thin adapter over `mien.explain.run` (Grad-CAM for image files or a FER2013 split)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import example_epilog


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "explain",
        help="Grad-CAM overlays per face of images, or per-class summary grids of a FER2013 split",
        description="Images: for every face, write OUT/STEM_face{i}_{emotion}.png with the 48x48 crop the model "
        "saw beside the Grad-CAM overlay of the predicted class (every class with --all-classes), titled "
        "with the probabilities. Dataset: write OUT/class_mean_gradcam.png (per true class, the mean "
        "Grad-CAM of its correctly classified faces over their mean face) and OUT/confident_examples.png "
        "(per true class, the most confident right and wrong predictions with overlays).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=example_epilog(
            "mien explain examples/astronaut.jpg --out explanations",
            "mien explain photos/ --all-classes --detector haar",
            "mien explain faces/*.png --no-detect",
            "mien explain --dataset --split test --out reports/gradcam",
            "mien explain --dataset data/fer2013.csv --split test --model runs/baseline --per-class 6",
        ),
    )
    p.add_argument("inputs", nargs="*", metavar="IMAGE|FOLDER", help="image files, folders (recursive) or globs")
    p.add_argument("--dataset", nargs="?", const="", default=None, metavar="SRC",
                   help="explain a split of a FER2013 source (npz, csv or image folder); "
                   "without SRC the default source ($MIEN_DATA or ../shared/data/fer2013.npz)")
    p.add_argument("--split", choices=("train", "val", "test"), default="test",
                   help="with --dataset: official split (test = PrivateTest)")
    p.add_argument("--per-class", type=int, default=4, metavar="N",
                   help="with --dataset: right and wrong examples per class (default 4)")
    p.add_argument("--limit", type=int, default=0, metavar="N",
                   help="with --dataset: a stratified random subset of N faces (default all)")
    p.add_argument("--model", default="default", metavar="NAME|PATH",
                   help="shipped model name, training run directory or checkpoint file (default: default)")
    p.add_argument("--out", type=Path, default=Path("explanations"), metavar="DIR",
                   help="output directory (default: ./explanations)")
    p.add_argument("--all-classes", action="store_true", help="images: one overlay per class, not just the predicted")
    p.add_argument("--detector", choices=("mediapipe", "haar"), default="mediapipe", help="face detector")
    p.add_argument("--no-detect", action="store_true",
                   help="each image is one already-aligned face (like FER2013 crops)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.set_defaults(handler=run, parser=p)


def run(args: argparse.Namespace) -> int:
    from ..explain.run import explain_dataset, explain_images

    if args.dataset is not None:
        if args.inputs:
            args.parser.error("give either IMAGE|FOLDER arguments or --dataset, not both")
        result = explain_dataset(args.dataset or None, out_dir=args.out, split=args.split, model=args.model,
                                 per_class=args.per_class, limit=args.limit, device=args.device)
        print(f"{result['faces']} {result['split']} faces, accuracy {100 * result['accuracy']:.2f}% (no TTA)")
        print(f"wrote {result['class_means']}\nwrote {result['confident']}")
        return 0
    if not args.inputs:
        args.parser.error("give IMAGE|FOLDER arguments, or --dataset")
    results = explain_images(args.inputs, out_dir=args.out, model=args.model, all_classes=args.all_classes,
                             detector="none" if args.no_detect else args.detector, device=args.device)
    failed = 0
    for r in results:
        if r.error is not None:
            failed += 1
            print(f"mien: error: {r.error}", file=sys.stderr)
    faces = sum(len(r.outputs) for r in results)
    print(f"{faces} face(s) explained in {len(results) - failed} image(s); PNGs in {args.out}"
          + (f"; {failed} image(s) could not be read" if failed else ""))
    return 1 if failed else 0
