"""Store a packaged model again in a smaller form (maintainers), to fit more models in the budget.

Rounds the shipped weights to float16 or int8 (`mien.train.quantize`) and re-measures the whole
card on them: TTA chosen again on PublicTest from the same choices, PrivateTest once, robustness.
The checkpoint, training command and heading stay. Remove any ensemble naming the model first and
re-ship it afterwards (`scripts/ship_ensemble.py`). See `mien.weights.ship.restore_shipped`.

    .venv/bin/python scripts/restore_shipped.py resnet_small_ema --weights int8 --data ../shared/data/fer2013.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> int:
    from mien.memory import retain_freed_memory
    from mien.weights.ship import restore_shipped

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the shipped model")
    parser.add_argument("--weights", choices=("float16", "int8"), required=True, help="the smaller storage")
    parser.add_argument("--data", default=None, help="FER2013 source overriding the model's own")
    parser.add_argument("--folder", type=Path, default=None, help="shipped-models folder (default: the package's)")
    args = parser.parse_args()
    retain_freed_memory()  # whole-split passes over 2.8M nets run ~40 % faster with freed memory reused
    target = restore_shipped(args.name, storage=args.weights, folder=args.folder, source=args.data)
    print(f"shipped {target} (card: {target.with_suffix('.md')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
