"""Ship a packaged model under a new name (maintainers), e.g. to free `default` for a better model.

Copies the weights, rewrites the sidecar's name and regenerates the card from one PrivateTest pass
with the TTA already chosen (it must reproduce the card's accuracy within 0.2 points), then removes
the old name. Re-ship or remove any ensemble naming the old model first. See
`mien.weights.ship.rename_shipped`.

    .venv/bin/python scripts/rename_shipped.py default resnet_small_robust
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> int:
    from mien.weights.ship import rename_shipped

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="the shipped name now")
    parser.add_argument("new", help="the name to ship it under")
    parser.add_argument("--data", default=None, help="FER2013 source overriding the model's own")
    parser.add_argument("--folder", type=Path, default=None, help="shipped-models folder (default: the package's)")
    args = parser.parse_args()
    target = rename_shipped(args.old, args.new, folder=args.folder, source=args.data)
    print(f"shipped {target} (card: {target.with_suffix('.md')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
