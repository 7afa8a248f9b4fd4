"""Ctrl+C for ``ovserver serve``: the console control event the lecture notes mention.

On Windows, :func:`console_stop` installs a handler with ``SetConsoleCtrlHandler``
(kernel32, through ctypes).  Windows calls it on a thread of its own; it asks
the server to stop (which signals the server's wake event) and reports the
event handled, so Python's own Ctrl+C handling (KeyboardInterrupt) does not
run.  For a console close, log-off or shutdown, after which Windows ends the
process when the handler returns, it first waits a few seconds for the server
to finish closing.  A second Ctrl+C or Ctrl+Break calls ``on_second`` (which
``ovserver serve`` uses to exit at once).  Elsewhere it installs no handler
(``serve`` needs Windows).  Under Wine, SIGINT to the Wine process arrives as
CTRL_C_EVENT.

Before the handler is in place, a Ctrl+C is recorded (when this process is the
``ovserver`` program: :mod:`ovserver._ctrl_c`), and ``console_stop`` asks the
server to stop as soon as it takes over, so an early Ctrl+C ends as a late one.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ._ctrl_c import Pressed, press

__all__ = ["console_stop"]

_CTRL_CLOSE_EVENT = 2
_CLOSE_WAIT_S = 4.5  # Windows allows a handler about 5 s for a close event


@contextmanager
def console_stop(stop: Callable[[], None], on_second: Callable[[], None] | None = None) -> Iterator[None]:
    """While the block runs, a console control event (Ctrl+C, Ctrl+Break, close)
    calls ``stop()`` instead of interrupting the program; a second Ctrl+C or
    Ctrl+Break calls ``on_second()`` (when given).  A Ctrl+C recorded before
    (the program's start, see the module's docstring) calls ``stop()`` at once."""
    Pressed.stop, Pressed.on_second = stop, on_second
    try:
        with _console_handler():
            if Pressed.count:  # checked once the handler is in place: a press from now on is its
                stop()
            yield
    finally:
        Pressed.stop = Pressed.on_second = None


@contextmanager
def _console_handler() -> Iterator[None]:
    """Windows: a console control handler for the block (none elsewhere)."""
    if sys.platform != "win32":
        yield
        return
    import ctypes
    from ctypes import wintypes

    finished = threading.Event()
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    handler_type = ctypes.WINFUNCTYPE(wintypes.BOOL, wintypes.DWORD)

    def handler(ctrl_type: int) -> int:
        if ctrl_type >= _CTRL_CLOSE_EVENT:
            Pressed.count += 1
            if Pressed.stop is not None:
                Pressed.stop()
            finished.wait(_CLOSE_WAIT_S)
        else:
            press()
        return 1  # handled: no other handler runs

    callback = handler_type(handler)  # kept alive until it is removed
    if not kernel32.SetConsoleCtrlHandler(callback, True):
        raise OSError(ctypes.get_last_error(), "SetConsoleCtrlHandler failed")
    try:
        yield
    finally:
        finished.set()
        kernel32.SetConsoleCtrlHandler(callback, False)


