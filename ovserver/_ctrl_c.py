"""Ctrl+C from the very start of the ``ovserver`` program.

Before ``serve``'s console control handler is in place (:mod:`ovserver._console`),
Ctrl+C is Python's: a KeyboardInterrupt wherever the program is.  Under Wine
the imports alone take the first second or two of a start, and a Ctrl+C then
printed a traceback and ended the process with STATUS_CONTROL_C_EXIT (status
58 under Wine).  So when this process *is* the ``ovserver`` program (``python
-m ovserver``, or the ``ovserver`` command), importing this module (the
package's first import, kept small) replaces Python's SIGINT handler with one
that only records the press; ``serve``'s ``console_stop`` asks the server to
stop as soon as it takes over, so an early Ctrl+C ends as a late one does (the
listening line, then the "stopped" line, status 0), and ``simulate``
(:func:`end_deferral`) reports it as its own Ctrl+C (status 130).  A second
press before the handler exits at once (status 130).  What remains is
Python's own start-up until this module has run (site, runpy, finding the
package and this module: 15-130 ms of a 0.5-2.5 s start under Wine), where a
Ctrl+C is still Python's (STATUS_CONTROL_C_EXIT, perhaps a traceback of the
start-up).  A program that imports the package keeps Python's Ctrl+C.
"""

from __future__ import annotations

# _signal: the builtin behind the signal module, which would first import enum,
# functools, collections... from disk, under Wine the very time this module is
# meant to cover.  (And no typing: TYPE_CHECKING below is mypy's.)
import _signal  # type: ignore[import-not-found,unused-ignore]
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

__all__ = ["Pressed", "end_deferral", "exit_at_once", "press"]


class Pressed:
    """Ctrl+C (or Ctrl+Break) presses, whoever saw them (the console handler's
    thread or Python's SIGINT handler on the main thread), and what they do."""

    count = 0
    stop: Callable[[], None] | None = None  # a first press (console_stop's)
    on_second: Callable[[], None] | None = None  # a later press (console_stop's, else exit at once)
    deferring = False  # Python's SIGINT handler is _record


def _is_program() -> bool:
    """Whether this process runs the ``ovserver`` program: ``python -m ovserver``
    (or ``ovserver.__main__``), or the ``ovserver`` command (a script or a
    Windows launcher named so).  Not when a program imports the package."""
    words = iter(sys.orig_argv[1:])
    for word in words:
        if word in ("-X", "-W"):  # an option with its value
            next(words, None)
        elif word.startswith("-m"):
            return (word[2:] or next(words, "")) in ("ovserver", "ovserver.__main__")
        elif word == "-c" or not word.startswith("-") or word == "-":  # -c CODE, a SCRIPT, stdin
            break
    path = sys.argv[0] if sys.argv else ""
    name = os.path.splitext(path.replace("\\", "/").rsplit("/", 1)[-1])[0]  # either system's separator
    return name in ("ovserver", "ovserver-script")


def exit_at_once() -> None:
    """A second Ctrl+C: leave now (status 130), without waiting for a stop to finish."""
    sys.stderr.write("ovserver: second Ctrl+C: exiting at once\n")
    sys.stderr.flush()
    os._exit(130)


def press() -> None:
    """A Ctrl+C or Ctrl+Break (not a close event: the console handler's own)."""
    Pressed.count += 1
    if Pressed.stop is None:  # no server to stop (yet, or any more): a second press exits
        if Pressed.count > 1:
            exit_at_once()
    elif Pressed.count > 1 and Pressed.on_second is not None:
        Pressed.on_second()
    else:
        Pressed.stop()


def _record(signum: int, frame: FrameType | None) -> None:
    """Python's SIGINT handler while deferring: a press, never an exception."""
    press()


def defer_ctrl_c() -> None:
    """From now on Ctrl+C is a press (:func:`press`), not a KeyboardInterrupt,
    until :func:`end_deferral`.  Only from the main thread (else ValueError)."""
    _signal.signal(_signal.SIGINT, _record)
    Pressed.deferring = True


def end_deferral() -> bool:
    """Python's own Ctrl+C handling again (KeyboardInterrupt); True if Ctrl+C
    was pressed while deferred."""
    if Pressed.deferring:
        _signal.signal(_signal.SIGINT, _signal.default_int_handler)
        Pressed.deferring = False
    return Pressed.count > 0


if _is_program():
    try:
        defer_ctrl_c()
    except ValueError:  # not the main thread (signal() refuses): Python's handling stays
        pass
