"""`mien serve`: the HTTP service (FastAPI) and its web page.

Importing this package is cheap; FastAPI and the model load when `create_app` is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .settings import ServeSettings

if TYPE_CHECKING:
    from .app import create_app

__all__ = ["ServeSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
