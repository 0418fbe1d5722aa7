"""Report 003's split leak on FER2013: the same model, trained on a leaky and on an honest split.

Both splits cover the same expanded set: `--copies` augmented copies (report 003's rotation,
shift, zoom and flip) of `--originals` faces drawn, stratified, from FER2013 Training only (the
official PublicTest/PrivateTest stay untouched). Leaky: the copies are split 60/20/20 at random,
as report 003 did. Honest: the originals are split and each split gets all copies of its own
originals. One model per split, trained identically (checkpoint chosen on its val split), is then
scored on its own test split; the gap is what the leak adds. `mien.data.leak` has the procedure.

    .venv/bin/python benchmarks/split_leak.py --out /tmp/leak                      # ~10 min on 2 AVX2 cores
    .venv/bin/python benchmarks/split_leak.py --originals 1000 --epochs 2 --out /tmp/leak-quick
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> int:
    import torch

    from mien.config import RunConfig, apply_overrides
    from mien.data.arrays import FaceArrays
    from mien.data.leak import copies_split, expand_copies, sibling_rate
    from mien.data.pipeline import DataSplits
    from mien.data.sources import default_source, load_source
    from mien.data.splits import stratified_subset
    from mien.evaluate.run import checkpoint_probs
    from mien.labels import TRAINING
    from mien.train import fit
    from mien.train.checkpoint import load_model
    from mien.train.hardware import cpu_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="FER2013 source (default: $MIEN_DATA or ../shared/data)")
    parser.add_argument("--originals", type=int, default=5000, help="faces drawn from Training (default: 5000)")
    parser.add_argument("--copies", type=int, default=5, help="augmented copies per face (report 003: 5)")
    parser.add_argument("--model", default="bn_cnn", help="registered model (report 003's CNN: bn_cnn)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="folder for the two runs and results.json")
    parser.add_argument("overrides", nargs="*", help="extra config overrides for both runs, e.g. optim.lr=1e-3")
    args = parser.parse_args()

    faces = load_source(args.data or default_source())
    pool = np.flatnonzero(faces.usage == TRAINING)
    rng = np.random.default_rng(args.seed)
    pick = pool[stratified_subset(faces.labels[pool], args.originals, rng=rng)]
    images = expand_copies(faces.images[pick], args.copies, generator=torch.Generator().manual_seed(args.seed))
    labels = np.repeat(faces.labels[pick], args.copies)

    def arrays(index: np.ndarray) -> FaceArrays:
        return FaceArrays(images[index], labels[index], np.zeros(len(index), dtype=np.int8), faces.names)

    cfg = apply_overrides(RunConfig(), [f"model.name={args.model}", f"train.epochs={args.epochs}",
                                        "augment.enabled=false", f"train.seed={args.seed}", *args.overrides])
    rows = []
    for leaky in (True, False):
        split = copies_split(faces.labels[pick], args.copies, rng=np.random.default_rng(args.seed + 1), leaky=leaky)
        splits = DataSplits(arrays(split.train), arrays(split.val), arrays(split.test))
        name = "leaky" if leaky else "honest"
        start = time.perf_counter()
        result = fit(cfg, args.out / name, splits=splits, progress=False)
        model, meta = load_model(result.run_dir)
        probs = checkpoint_probs(model, meta, splits.test.images)
        rows.append({"split": name, "sibling_rate": sibling_rate(split.train, split.test, args.copies),
                     "train": len(split.train), "val": len(split.val), "test": len(split.test),
                     "best_epoch": result.best_epoch, "val_acc": result.best_value,
                     "test_acc": float((probs.argmax(1) == splits.test.labels).mean()),
                     "minutes": (time.perf_counter() - start) / 60})
    print(f"# split leak: {args.originals} Training faces x {args.copies} copies, {args.model}, {args.epochs} epochs; "
          f"CPU: {cpu_model()}")
    print("| split | test copies with a sibling in train | train / val / test | best epoch | val acc | test acc "
          "| minutes |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['split']} | {100 * r['sibling_rate']:.1f} % | {r['train']} / {r['val']} / {r['test']} | "
              f"{r['best_epoch']} | {100 * r['val_acc']:.2f} % | {100 * r['test_acc']:.2f} % | {r['minutes']:.1f} |")
    gap = 100 * (rows[0]["test_acc"] - rows[1]["test_acc"])
    print(f"the leak adds {gap:+.2f} points of test accuracy")
    (args.out / "results.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                       "cpu": cpu_model(), "rows": rows, "gap_points": gap},
                                                      indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
