"""What every group of FakeWinsock's calls shares: the state its constructor
makes, the helpers that fail a call as Windows does, and the constants and
tables of the API surface.

:class:`fakewinsock.FakeWinsock` is the API surface of the fake, one class
made of one mixin per group of calls (each in its own module, each a subclass
of :class:`FakeBase`):

* :mod:`fakewinsock._api_sockets`: sockets (create, bind, listen, connect,
  shutdown, close, options, names, AcceptEx);
* :mod:`fakewinsock._api_io`: overlapped receives and sends, their results,
  cancelling;
* :mod:`fakewinsock._api_waits`: events and waits (WSA events,
  WSAWaitForMultipleEvents, SleepEx, the kernel32 waits);
* :mod:`fakewinsock._api_ports`: I/O completion ports;
* :mod:`fakewinsock._api_threads`: program threads and critical sections;
* :mod:`fakewinsock._fake`: the class itself, its constructor, WSAStartup and
  WSACleanup, the last error, and the helpers tests use.

Each call checks its arguments and the state of the handles it is given, then
calls into the parts of the kernel (see ``docs/fake-map.md``); no part calls
the API surface.
"""

from __future__ import annotations

import ctypes
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from . import _constants as C
from ._iocp import Ports
from ._kernel import Kernel, ThreadState
from ._net import Endpoint, Network
from ._ops import Operations
from ._sim import Chooser, FakeConfig
from ._sockets import Socket, Sockets
from ._threads import CritSec
from ._trace import Trace

_addressof = ctypes.addressof
_get_ident = threading.get_ident
_NS_PER_MS = 1_000_000
_K = TypeVar("_K")  # the kind of kernel object a handle lookup wants


def _as_handle(h: int) -> int:
    """A HANDLE argument given as a negative Python int, as C (and the real
    backend's ctypes HANDLE) converts it: -1 is INVALID_HANDLE_VALUE,
    GetCurrentProcess's pseudo-handle, -2 GetCurrentThread's.  Only the calls
    that treat those two values specially use it; any other negative int
    names nothing either way (docs/semantics-findings.md section 58).  A value
    that is not an int is returned as it is, for the caller's own type check."""
    return h & C.MAXULONG_PTR if type(h) is int and h < 0 else h


class FakeBase:
    """The state and helpers every group of FakeWinsock's calls uses (made by
    :meth:`fakewinsock.FakeWinsock.__init__`)."""

    seed: int
    config: FakeConfig
    chooser: Chooser
    trace: Trace
    _kernel: Kernel
    _ops: Operations[Socket]
    _net: Network
    _sockets: Sockets
    _ports: Ports
    _enter: Callable[[str], ThreadState]  # Kernel.enter, bound once: every call starts here
    _stats: dict[str, int]
    _startups: int
    _forced_errors: dict[str, deque[int]]
    _forced_on: list[Endpoint]  # the connections whose WSARecv or WSASend an injected error failed
    _critsecs: dict[int, CritSec]  # --- threads: address of a CRITICAL_SECTION -> its record
    _critsecs_deleted: set[int]
    _critsec_count: int

    if TYPE_CHECKING:  # defined by another group of calls; declared here for the type checker
        def _check_not_waited(self, call: str, h: int) -> None: ...
        def _close_socket(self, sock: Socket) -> None: ...
        def run_for(self, seconds: float) -> None: ...


    # ------------------------------------------------------------------ infra

    def _enter_wait(self, call: str) -> ThreadState:
        """:attr:`_enter` for a call that waits (WSAWaitForMultipleEvents,
        WaitFor*Object(s)(Ex), Sleep(Ex), GetQueuedCompletionStatus(Ex)): the
        calling thread has handled the completions delivered to it since its
        last wait (ThreadState.handled_delivered: a record for observers)."""
        ts = self._enter(call)
        if ts.delivered:
            ts.handled_delivered()
        return ts

    def _fail(self, ts: ThreadState, call: str, error: int, handle: int = 0, rc: int = C.SOCKET_ERROR,
              ) -> int:
        ts.last_error = error
        self._stats["failed"] += 1
        if self.trace.enabled:
            self._kernel.record("failed", call, handle, 0, f"error={error}")
        return rc

    def _lookup(self, h: object, kind: type[_K], call: str, name: str) -> _K | None:
        """The kernel object behind handle ``h`` if it is a ``kind``; None when
        ``h`` names nothing or an object of another kind (the caller then fails
        the call with the error Windows gives for that call).  ``h`` not an int
        is a TypeError naming the parameter: C could not have passed it."""
        if not isinstance(h, int):
            raise TypeError(f"{call}: {name} must be an int handle, not {type(h).__name__}")
        obj = self._kernel.objects.get(h)
        return obj if isinstance(obj, kind) else None

    def _socket(self, s: object, call: str) -> Socket | None:
        return self._lookup(s, Socket, call, "SOCKET")

    def _forced(self, call: str) -> int:
        q = self._forced_errors.get(call)
        if q:
            return q.popleft()
        return 0

    def _initialised(self, ts: ThreadState, call: str) -> bool:
        if self._startups > 0:
            return True
        ts.last_error = C.WSANOTINITIALISED
        self._stats["failed"] += 1
        if self.trace.enabled:
            self._kernel.record("failed", call, 0, 0, f"error={C.WSANOTINITIALISED}")
        return False
