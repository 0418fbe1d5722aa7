"""Writing dataset caches so that an interrupted write never leaves a truncated file under the real name."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def write_atomically(path: str | Path, suffix: str, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it to `path`; returns `path`.

    `path` gets `suffix` appended unless it already ends in it (any case). The temporary name keeps
    the suffix too, since writers such as `np.savez_compressed` add theirs when it is missing.
    """
    path = Path(path).expanduser()
    if path.suffix.lower() != suffix:
        path = path.with_name(path.name + suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
