"""Writing files so that an interrupted or failed write never leaves a truncated file under the real name."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def write_atomically(path: str | Path, write: Callable[[Path], object], *, suffix: str | None = None) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it to `path`; returns `path`.

    With `suffix`, `path` gets it appended unless it already ends in it (any case). The temporary
    name is hidden (leading dot), unique per process (parallel writers of one path never share it)
    and keeps the suffix, since writers such as `np.savez_compressed` add theirs when it is missing.
    If `write` raises, the temporary file is removed and an existing `path` is left as it was.
    """
    path = Path(path).expanduser()
    if suffix is not None and path.suffix.lower() != suffix.lower():
        path = path.with_name(path.name + suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The given suffix as spelled (numpy appends ".npz" to a name ending in ".NPZ"), else the path's own.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix if suffix is None else suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
