"""mien: facial expression recognition on FER2013.

Nothing heavy is imported here: `import mien` stays cheap, and torch, matplotlib or
onnxruntime are imported by the submodules that need them. `mien.Recognizer` is loaded on
first access, as is `mien.retain_freed_memory` (`mien.memory`), which CPU inference in a
long-lived process of your own may want: batched classification ran ~1.5x faster with it.
"""

from typing import Any

__version__ = "0.1.0"

__all__ = ["Recognizer", "__version__", "retain_freed_memory"]


def __getattr__(name: str) -> Any:
    # PEP 562: `from mien import Recognizer` imports mien.infer only when someone asks for it.
    if name == "Recognizer":
        from .infer import Recognizer

        return Recognizer
    if name == "retain_freed_memory":
        from .memory import retain_freed_memory

        return retain_freed_memory
    raise AttributeError(f"module 'mien' has no attribute {name!r}")
