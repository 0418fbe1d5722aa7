"""mien: facial expression recognition on FER2013.

Nothing heavy is imported here: `import mien` stays cheap, and torch, matplotlib or
onnxruntime are imported by the submodules that need them. `mien.Recognizer` is loaded on
first access.
"""

from typing import Any

__version__ = "0.1.0"

__all__ = ["Recognizer", "__version__"]


def __getattr__(name: str) -> Any:
    # PEP 562: `from mien import Recognizer` imports mien.infer only when someone asks for it.
    if name == "Recognizer":
        from .infer import Recognizer

        return Recognizer
    raise AttributeError(f"module 'mien' has no attribute {name!r}")
