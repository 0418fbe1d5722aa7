"""Test-time augmentation modes, named here so that the CLI can list them without importing torch.

The views themselves are made by `mien.train.loop.tta_views`, which evaluation and inference share.
"""

from __future__ import annotations

TTA_MODES = ("none", "flip", "tencrop")
"""none: the face alone; flip: and its mirror (2 views); tencrop: four corner crops and the centre
crop, each scaled back to the face's size, and their mirrors (10 views, so 10x the inference cost)."""

TENCROP_FRACTION = 0.9
"""About the side of each ten-crop view as a fraction of the face's side; the margins are rounded to
whole pixels, equal on both sides (44 of 48 pixels)."""
