"""The one place that picks a backend.

``get_backend("fake", seed=...)`` or ``get_backend("real")``; with no name, the
``FAKEWINSOCK_BACKEND`` environment variable decides, else the real backend on
Windows and the fake elsewhere.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from ._interface import Winsock

__all__ = ["get_backend", "available_backends", "real_backend_available"]


def real_backend_available() -> bool:
    """True where ws2_32.dll can be loaded (Windows, or Windows Python under Wine)."""
    return sys.platform == "win32"


def available_backends() -> list[str]:
    """The backends this machine can run: always "fake", and "real" on Windows."""
    return ["fake", "real"] if real_backend_available() else ["fake"]


def get_backend(name: str | None = None, **kwargs: Any) -> Winsock:
    """A new backend instance.  Keyword arguments go to its constructor
    (``seed=``, ``config=``, ``chooser=`` for the fake)."""
    if name is None:
        name = os.environ.get("FAKEWINSOCK_BACKEND") or ("real" if real_backend_available() else "fake")
    if name == "fake":
        from ._fake import FakeWinsock

        return FakeWinsock(**kwargs)
    if name == "real":
        if not real_backend_available():
            raise RuntimeError(
                "the real Winsock backend needs Windows (ws2_32.dll); on this machine use the "
                "fake backend (get_backend('fake'))"
            )
        from ._real import RealWinsock  # type: ignore[import-not-found, unused-ignore]

        backend: Winsock = RealWinsock(**kwargs)
        return backend
    raise ValueError(f"unknown backend {name!r}: expected 'fake' or 'real'")
