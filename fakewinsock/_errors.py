"""Exceptions of the fake.

Winsock-level failures are never exceptions: they are return codes plus
WSAGetLastError, exactly as on Windows.  These exceptions are for what is not a
Winsock failure: misuse that would be undefined behaviour in C, waits that can
never end, and behaviour the fake does not emulate.
"""

from __future__ import annotations

__all__ = ["WinsockUsageError", "LeakError", "DeadlockError", "BusyLoopError", "NotEmulatedError"]


class WinsockUsageError(Exception):
    """Misuse that is undefined behaviour in C (memory corruption on Windows).

    The message names the call and the handle, e.g. reusing an OVERLAPPED whose
    operation is still pending, or touching a buffer while it is in flight.
    """


class LeakError(WinsockUsageError):
    """The final WSACleanup found sockets, events or operations still alive.

    ``leaks`` lists each one, e.g. ``"socket 0x108 (connected)"``.
    """

    def __init__(self, message: str, leaks: list[str]) -> None:
        super().__init__(message)
        self.leaks = leaks


class DeadlockError(RuntimeError):
    """A wait that can never be satisfied: nothing in flight, nothing scheduled,
    and no timeout.  On Windows the thread would hang forever."""


class BusyLoopError(DeadlockError):
    """The program made more Winsock calls than ``FakeConfig.max_calls``: it is
    spinning (for example on an event it never resets) instead of waiting."""


class NotEmulatedError(NotImplementedError):
    """A call, flag or option the fake does not emulate.

    Raised instead of approximating silently; the message says what is missing.
    """


class InternalError(AssertionError):
    """A bug in the fake itself: one of its parts broke the rules of another
    (a state change the transition table does not allow, a broken invariant).
    Never the program's fault; please report it with the trace."""


# Tracebacks and pytest print ``module.Class``: name the public module users import them from.
for _cls in (WinsockUsageError, LeakError, DeadlockError, BusyLoopError, NotEmulatedError, InternalError):
    _cls.__module__ = "fakewinsock"
del _cls
