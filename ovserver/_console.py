"""Ctrl+C for ``ovserver serve``: the console control event the lecture notes mention.

On Windows, :func:`console_stop` installs a handler with ``SetConsoleCtrlHandler``
(kernel32, through ctypes).  Windows calls it on a thread of its own; it asks
the server to stop (which signals the server's wake event) and reports the
event handled, so Python's own Ctrl+C handling (KeyboardInterrupt) does not
run.  For a console close, log-off or shutdown, after which Windows ends the
process when the handler returns, it first waits a few seconds for the server
to finish closing.  A second Ctrl+C or Ctrl+Break calls ``on_second`` (which
``ovserver serve`` uses to exit at once).  Elsewhere it does nothing (``serve``
needs Windows).  Under Wine, SIGINT to the Wine process arrives as CTRL_C_EVENT.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["console_stop"]

_CTRL_CLOSE_EVENT = 2
_CLOSE_WAIT_S = 4.5  # Windows allows a handler about 5 s for a close event


@contextmanager
def console_stop(stop: Callable[[], None], on_second: Callable[[], None] | None = None) -> Iterator[None]:
    """While the block runs, a console control event (Ctrl+C, Ctrl+Break, close)
    calls ``stop()`` instead of interrupting the program; a second Ctrl+C or
    Ctrl+Break calls ``on_second()`` (when given)."""
    if sys.platform != "win32":
        yield
        return
    import ctypes
    from ctypes import wintypes

    finished = threading.Event()
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    handler_type = ctypes.WINFUNCTYPE(wintypes.BOOL, wintypes.DWORD)

    seen = [0]

    def handler(ctrl_type: int) -> int:
        seen[0] += 1
        if seen[0] > 1 and on_second is not None and ctrl_type < _CTRL_CLOSE_EVENT:
            on_second()
            return 1
        stop()
        if ctrl_type >= _CTRL_CLOSE_EVENT:
            finished.wait(_CLOSE_WAIT_S)
        return 1  # handled: no other handler runs

    callback = handler_type(handler)  # kept alive until it is removed
    if not kernel32.SetConsoleCtrlHandler(callback, True):
        raise OSError(ctypes.get_last_error(), "SetConsoleCtrlHandler failed")
    try:
        yield
    finally:
        finished.set()
        kernel32.SetConsoleCtrlHandler(callback, False)
