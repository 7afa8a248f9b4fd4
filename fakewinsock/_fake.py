"""The fake backend: the Winsock API surface over a simulated Windows kernel
and loopback network.

``FakeWinsock`` implements every call of the Winsock interface
(:class:`fakewinsock.Winsock`): it checks the arguments, then calls into the
parts of the fake, each in its own module (see ``docs/fake-map.md``):

* :mod:`fakewinsock._kernel`: virtual clock, timers, ready queue, threads and
  their APC queues, the handle table, blocking and deadlock detection;
* :mod:`fakewinsock._ops`: the life of one overlapped operation (post,
  pend, arm, complete, notify, reap) and the table of OVERLAPPEDs in flight;
* :mod:`fakewinsock._sockets`: socket state and the per-socket queues of
  operations, results of receives and accepts, closing;
* :mod:`fakewinsock._net`: endpoints, transmit and deliver, FIN and RST,
  the handshake, listeners, address allocation;
* :mod:`fakewinsock._peer`: simulated remote ends, which talk to the network;
* :mod:`fakewinsock._iocp`: I/O completion ports (packets, waiting threads);
* :mod:`fakewinsock._threads`: program threads (the baton, scheduling points,
  deadlocks across threads) and critical sections;
* :mod:`fakewinsock._sim`: the configuration and the one source of choices.

The API surface itself is one class made of one mixin per group of calls,
each in its own module (:mod:`fakewinsock._api_base` says what they share):
sockets (:mod:`fakewinsock._api_sockets`), overlapped receives and sends
(:mod:`fakewinsock._api_io`), events and waits (:mod:`fakewinsock._api_waits`),
completion ports (:mod:`fakewinsock._api_ports`), threads and critical
sections (:mod:`fakewinsock._api_threads`).  This module owns only what
belongs to the whole: the constructor, the WSAStartup count, the last error,
errors injected by :meth:`FakeWinsock.inject_error`, the invariant checks
after every call, and the helpers tests use (:meth:`FakeWinsock.peer`,
:meth:`FakeWinsock.leaks`...).  The API surface may call every part; no part
calls it.

Everything is recorded in :attr:`FakeWinsock.trace`.  Nothing depends on wall
time, ids or hash order: the same seed and calls give the same trace.

Divergence from real Windows, in one place (details at each site):

* One program thread calls the fake at a time (program threads take turns at
  interface calls and waits: see :mod:`fakewinsock._threads`); completions
  happen only inside calls (``background``) and waits, never truly
  concurrently.  A program that spins without ever waiting sees due timers
  only through ``background`` (``FakeConfig.max_calls`` turns such a loop into
  BusyLoopError).
* Program threads (CreateThread) take turns: one runs at a time and is
  preempted only at interface calls and waits (the rest of
  :mod:`fakewinsock._threads`' divergences are listed there).  A thread's exit
  cancels the I/O it posted and drops its queued routines, as afd.c shows
  Windows does for sockets without a completion port.  Waits take events,
  thread handles and completion ports (a socket handle, waitable on Windows,
  is NotEmulatedError in every wait, WSAWaitForMultipleEvents too); CloseHandle
  on a socket, and WSACloseEvent on a socket, thread or port, are
  NotEmulatedError (use closesocket, CloseHandle).
* Handle values are never reused; peers' addresses are never reused (no
  TIME_WAIT).
* Only IPv4 TCP over loopback; blocking (non-overlapped) I/O, MSG_* flags
  other than WSARecv's MSG_PEEK, GetOverlappedResult (kernel32), WSAIoctl and most socket options are not
  emulated and fail loudly with NotEmulatedError.  The options
  that are accepted (SO_REUSEADDR, SO_KEEPALIVE, SO_RCVBUF, SO_SNDBUF,
  TCP_NODELAY, the timeouts, SO_ERROR...) are stored and read back with
  Windows' sizes and length rules but change nothing; SO_ERROR reads what was
  set (0 otherwise, also after a reset, as on Windows).
* Where Windows' outcome is untested in Wine's suite the fake assumes one or
  lets the seed choose: a WSASend pending at closesocket ends like a receive
  (connection aborted); a connection reset before it is accepted is dropped,
  or accepted with its first receive failing, or fails its AcceptEx
  (WSAECONNRESET); WSAGetOverlappedResult on a closed socket handle gives
  WSAENOTSOCK.
* A refused connect takes 2 s of virtual time (Windows retries its SYN on
  loopback); the network has no IP layer, no retransmission, one fixed window
  per direction (see :mod:`fakewinsock._net`); AcceptEx's address slots use the
  fake's own layout (decode them with GetAcceptExSockaddrs).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from . import _constants as C
from ._api_base import _get_ident
from ._api_io import IoCalls
from ._api_ports import PortCalls
from ._api_sockets import SocketCalls
from ._api_threads import ThreadCalls
from ._api_waits import WaitCalls
from ._errors import InternalError, LeakError
from ._invariants import broken
from ._iocp import Port, Ports
from ._kernel import Event, Kernel
from ._net import Endpoint, Network
from ._ops import REAPED, Operation, Operations
from ._peer import FakePeer
from ._sim import Chooser, FakeConfig, RandomChooser
from ._sockets import CONNECTED, Socket, SocketOp, Sockets
from ._threads import ProgramThread
from ._trace import Trace
from ._types import WSADATA, StartupResult, as_c_int

__all__ = ["FakeWinsock", "ServerEnd", "check_invariants_by_default"]


class ServerEnd(NamedTuple):
    """The program's end of a peer's connection (:meth:`FakeWinsock.server_end`)."""

    #: Its endpoint: ``in_flight`` (its bytes on the wire), ``reset`` (it sent or got a reset).
    endpoint: Endpoint
    #: The sends posted on the program's socket that holds it and not completed yet
    #: (``total`` bytes each, ``moved`` of them into the network so far).
    sends: Sequence[SocketOp]
    #: The receives posted on that socket and not completed yet (a program that
    #: reads the connection keeps one posted, save while it handles one that
    #: completed).
    recvs: Sequence[SocketOp] = ()

#: The Winsock calls after which FakeConfig.check_invariants checks (those of fakewinsock.Winsock).
_CHECKED_CALLS = (
    "WSAStartup", "WSACleanup", "WSAGetLastError", "WSASetLastError", "WSASocket", "closesocket", "bind",
    "listen", "connect", "shutdown", "setsockopt", "getsockopt", "getsockname", "getpeername", "AcceptEx",
    "GetAcceptExSockaddrs", "WSARecv", "WSASend", "WSAGetOverlappedResult", "CancelIoEx", "WSACreateEvent",
    "WSACloseEvent", "WSASetEvent", "WSAResetEvent", "WSAWaitForMultipleEvents", "SleepEx",
    # --- completion ports
    "CreateIoCompletionPort", "GetQueuedCompletionStatus", "GetQueuedCompletionStatusEx",
    "PostQueuedCompletionStatus", "SetFileCompletionNotificationModes", "CancelIo",
    # --- threads
    "CreateThread", "ResumeThread", "WaitForSingleObject", "WaitForSingleObjectEx", "WaitForMultipleObjects",
    "WaitForMultipleObjectsEx", "GetExitCodeThread", "CloseHandle", "Sleep", "InitializeCriticalSection",
    "EnterCriticalSection", "TryEnterCriticalSection", "LeaveCriticalSection", "DeleteCriticalSection",
)
_invariants_by_default = False


def check_invariants_by_default(on: bool) -> None:
    """Make every FakeWinsock made from now on check its invariants after every
    call, whatever its config says (what the pytest option does)."""
    global _invariants_by_default
    _invariants_by_default = on


class _NoticingChooser(Chooser):
    """The chooser as the parts see it while invariants are checked: the same
    answers, and an exception from it (Hypothesis stopping a test) marks the
    kernel interrupted."""

    def __init__(self, inner: Chooser) -> None:
        self.inner = inner
        self.kernel: Kernel | None = None

    def _interrupted(self) -> None:
        if self.kernel is not None:
            self.kernel.interrupted = True

    def integer(self, lo: int, hi: int, label: str) -> int:
        try:
            return self.inner.integer(lo, hi, label)
        except BaseException:
            self._interrupted()
            raise

    def boolean(self, p: float, label: str) -> bool:
        try:
            return self.inner.boolean(p, label)
        except BaseException:
            self._interrupted()
            raise

    def index(self, n: int, label: str) -> int:
        try:
            return self.inner.index(n, label)
        except BaseException:
            self._interrupted()
            raise

    def thread(self, n: int, after: str, call: str, running: int) -> int:
        try:
            return self.inner.thread(n, after, call, running)
        except BaseException:
            self._interrupted()
            raise

    def pick_one(self, options: tuple[int, ...], label: str) -> int:
        try:
            return self.inner.pick_one(options, label)
        except BaseException:
            self._interrupted()
            raise

    def span(self, lo_hi: tuple[int, int], label: str) -> int:
        try:
            return self.inner.span(lo_hi, label)
        except BaseException:
            self._interrupted()
            raise


class FakeWinsock(SocketCalls, IoCalls, WaitCalls, PortCalls, ThreadCalls):
    """The fake Winsock backend: a simulated kernel and loopback network.

    ``FakeWinsock(seed=1)`` draws every choice from ``random.Random(1)``;
    pass ``chooser=`` to drive the choices otherwise (Hypothesis, a script)
    and ``config=`` to set the policy (:class:`FakeConfig`).

    Besides the Winsock calls it offers what tests need: :meth:`peer` (a
    simulated remote endpoint), :attr:`trace`, :attr:`now_ns` (virtual time),
    :meth:`run_for` (let virtual time pass), :meth:`call_at` (a timer for a
    simulated actor), :meth:`inject_error` (force the next calls of a kind to
    fail) and :meth:`leaks`.
    """

    name = "fake"

    def __init__(self, seed: int = 0, config: FakeConfig | None = None,
                 chooser: Chooser | None = None) -> None:
        self.seed = seed
        self.config = config if config is not None else FakeConfig()
        self.chooser = chooser if chooser is not None else RandomChooser(seed)
        self.trace = Trace(limit=self.config.trace_limit)
        checking = self.config.check_invariants or _invariants_by_default
        chooser = _NoticingChooser(self.chooser) if checking else self.chooser
        kernel = self._kernel = Kernel(self.config, chooser, self.trace)
        self._ops: Operations[Socket] = Operations(kernel, checked=checking)
        self._net = Network(kernel)
        self._sockets = Sockets(kernel, self._ops, self._net)
        self._ports = Ports(kernel, self._ops)
        kernel.describe_world = self._describe_world
        self._enter = kernel.enter  # every Winsock call starts here (bound once: it is the hottest call)
        self._stats = kernel.stats
        self._startups = 0
        self._forced_errors: dict[str, deque[int]] = {}
        self._forced_on: list[Endpoint] = []
        self._critsecs = kernel.critsecs  # --- threads: address of a CRITICAL_SECTION -> its record
        self._critsecs_deleted: set[int] = set()
        self._critsec_count = 0
        if isinstance(chooser, _NoticingChooser):
            chooser.kernel = kernel
            self._check_after_every_call()

    @property
    def stats(self) -> dict[str, int]:
        """Counters: Winsock calls, operations completed at once / pending /
        failed at once / completed, completion routines run, resets sent."""
        return {"calls": self._kernel.calls, **self._stats}

    @property
    def thread_switches(self) -> int:
        """Thread switches: times a program thread got to run after another
        (0 until the first CreateThread).  Kept out of :attr:`stats`, whose
        keys are part of every recorded schedule."""
        sched = self._kernel.sched
        return sched.switches if sched is not None else 0

    @property
    def now_ns(self) -> int:
        """Virtual time, in nanoseconds since the fake was made."""
        return self._kernel.now_ns

    def invariants(self) -> None:
        """Check the fake's own consistency (see :mod:`fakewinsock._invariants`):
        raise InternalError listing what is broken.  Reads only; a bug in the
        fake, never in the program, breaks one."""
        problems = broken(self._kernel, self._ops, self._net)
        if problems:
            raise InternalError("the fake's invariants are broken: " + "; ".join(problems))

    def _check_after_every_call(self) -> None:
        """Wrap this fake's Winsock calls so that each one that returns checks the
        invariants, unless an exception has torn through the fake before (from a
        call, a scheduled callback such as a scripted client, or the chooser,
        as when Hypothesis stops a test): its state is then no longer checked,
        since an operation may have been left half done.  The kernel's step
        marks a callback's exception itself, and the chooser is wrapped (see
        ``_NoticingChooser``): the kernel is not patched, so this works on the
        compiled build too, whose Kernel's methods cannot be replaced."""
        for name in _CHECKED_CALLS:
            setattr(self, name, self._checked(getattr(self, name)))

    def _checked(self, call: Callable[..., Any]) -> Callable[..., Any]:
        kernel = self._kernel

        # (Its code's name starts with "_": the flaky hint names the outermost public function of the
        # fake's code around a draw as the Winsock call it was made in, and this wrapper is not one.)
        def _checked_call(*args: Any, **kwargs: Any) -> Any:
            try:
                result = call(*args, **kwargs)
            except BaseException:
                kernel.interrupted = True
                raise
            if not kernel.interrupted:
                self.invariants()
            return result

        _checked_call.__name__ = _checked_call.__qualname__ = call.__name__
        _checked_call.__doc__ = call.__doc__
        return _checked_call

    def _describe_world(self) -> str:
        pend = self.pending_operations()
        return "pending operations: " + (", ".join(pend) if pend else "none")

    # ------------------------------------------------------------ for simulated actors

    def call_at(self, time_ns: int, fn: Callable[[Any], None], arg: Any = None) -> None:
        """Run ``fn(arg)`` when virtual time reaches ``time_ns`` (inside some
        wait).  For simulated actors such as scripted clients."""
        self._kernel.call_at(time_ns, fn, arg)

    def run_for(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass (completions happen, timers fire;
        no completion routine runs)."""
        self._kernel.block(lambda: False, self._kernel.now_ns + int(seconds * 1e9), "run_for")

    def inject_error(self, call: str, error: int, count: int = 1) -> None:
        """Make the next ``count`` calls of ``call`` (``"WSARecv"``, ``"WSASend"``,
        ``"AcceptEx"``) fail at once with ``error`` (e.g. WSAENOBUFS)."""
        if call not in ("WSARecv", "WSASend", "AcceptEx"):
            raise ValueError(f"inject_error: cannot inject into {call!r}")
        self._forced_errors.setdefault(call, deque()).extend([error] * count)

    # ============================================================ Winsock calls

    def WSAStartup(self, wVersionRequired: int) -> StartupResult:
        """Start Winsock; returns the error code itself (0 on success) and WSADATA."""
        ts = self._enter("WSAStartup")
        if not isinstance(wVersionRequired, int):
            raise TypeError(f"WSAStartup: wVersionRequired must be an int, not {type(wVersionRequired).__name__}")
        major, minor = C.LOBYTE(wVersionRequired), C.HIBYTE(wVersionRequired)
        # The version table of ReactOS's WSAStartup apitest (run on Windows):
        # 1.x answers 1.0 or 1.1, 2.x up to 2.2, anything higher 2.2; a 1.x
        # version has the old limits in iMaxSockets/iMaxUdpDg.  Major 0 fails,
        # and fills in lpWSAData all the same (as version 2.2).
        if major == 1:
            version = C.MAKEWORD(1, min(minor, 1))
        elif major == 2:
            version = C.MAKEWORD(2, min(minor, 2))
        else:
            version = C.MAKEWORD(2, 2)
        limits = (32767, 65467) if major == 1 else (0, 0)
        data = WSADATA(version, C.MAKEWORD(2, 2), *limits, "WinSock 2.0", "Running")
        if major == 0:
            if self.trace.enabled:
                self._kernel.record("failed", "WSAStartup", 0, 0, f"error={C.WSAVERNOTSUPPORTED}")
            return StartupResult(C.WSAVERNOTSUPPORTED, data)
        self._startups += 1
        ts.last_error = 0
        if self.trace.enabled:
            self._kernel.record("call", "WSAStartup", 0, 0, f"version={major}.{minor} -> "
                    f"{C.LOBYTE(version)}.{C.HIBYTE(version)} count={self._startups}")
        return StartupResult(0, data)

    def WSACleanup(self) -> int:
        """Balance one WSAStartup; the last one checks for leaks."""
        ts = self._enter("WSACleanup")
        if self._startups == 0:
            return self._fail(ts, "WSACleanup", C.WSANOTINITIALISED)
        if self._startups == 1:
            leaks = self.leaks()
            if leaks and self.config.strict_cleanup:
                raise LeakError(
                    "WSACleanup with resources still alive: " + "; ".join(leaks), leaks
                )
            for obj in list(self._kernel.objects.values()):
                if isinstance(obj, Socket):
                    self._close_socket(obj)
        self._startups -= 1
        if self.trace.enabled:
            self._kernel.record("call", "WSACleanup", 0, 0, f"count={self._startups}")
        return 0

    def leaks(self) -> list[str]:
        """What a final WSACleanup would report: open sockets and events,
        operations still in flight, completion routines never run."""
        out: list[str] = []
        for h in sorted(self._kernel.objects):
            obj = self._kernel.objects[h]
            if isinstance(obj, Socket):
                out.append(f"socket {h:#x} ({obj.state}) not closed")
            elif isinstance(obj, Port):
                out.append(f"{obj.describe()} not closed (CloseHandle)")
                out += [f"completion packet of {pkt.describe()} never dequeued from {obj.describe()}"
                        for pkt in obj.packets]
            elif isinstance(obj, ProgramThread):
                out.append(f"thread handle {h:#x} not closed (CloseHandle)")
            else:
                out.append(f"event {h:#x} not closed")
        out += [f"{what} still in flight" for what in self.pending_operations()]
        for ts in self._kernel.threads.values():
            for apc in ts.apcs:
                what = apc.describe() if not isinstance(apc, Operation) else f"completion routine of {apc.describe()}"
                out.append(f"{what} never ran (thread T{ts.index} made no alertable wait)")
        sched = self._kernel.sched
        if sched is not None:
            for t in sched.alive():
                doing = f"waits in {t.wait.describe()}" if t.wait is not None else t.state
                out.append(f"{t.describe()} still running ({doing})")
        for rec in self._critsecs.values():
            out.append(f"{rec.describe()} never deleted (DeleteCriticalSection)")
        return out

    def WSAGetLastError(self) -> int:
        """The calling thread's last error, as a C ``int`` (the slot holds a
        DWORD, GetLastError's view: a value of 2**31 or more reads negative
        here, as through the real backend; see WSASetLastError)."""
        kernel = self._kernel
        if _get_ident() == kernel._last_tid:  # kernel.thread(), inline: the program asks after most calls
            v = kernel._last_thread.last_error
        else:
            v = kernel.thread().last_error
        return as_c_int(v)

    def WSASetLastError(self, iError: int) -> None:
        """Set the calling thread's last error.  ``iError`` is a C ``int`` and the
        thread's slot a DWORD (SetLastError's and GetLastError's type): a value
        beyond 32 bits keeps its low 32, as the C conversion does on Windows, and
        WSAGetLastError reads the slot as an int, so 0xDEADBEEF reads back as
        -559038737 there and as 0xDEADBEEF through GetLastError, as through
        the real backend's ctypes prototypes (docs/semantics-findings.md
        section 39)."""
        if not isinstance(iError, int):
            raise TypeError(f"WSASetLastError: iError must be an int, not {type(iError).__name__}")
        self._kernel.thread().last_error = iError & 0xFFFFFFFF

    # ============================================================ test helpers

    def peer(self) -> FakePeer:
        """A new simulated remote endpoint (not yet connected)."""
        return FakePeer(self._net)

    @property
    def last_call_ns(self) -> int:
        """Virtual time of the program's last Winsock call (0 before the
        first).  For tests: how long the program has been quiet."""
        return self._kernel.last_call_ns

    def held_socket(self, peer: FakePeer) -> int | None:
        """The handle of the program's socket at the other end of ``peer``'s
        connection while the program holds it connected (accepted, not closed);
        None if it has closed it or never accepted it (still in a listener's
        backlog, or refused).  For tests: a client that is gone must not be held."""
        sock = self._held(peer)
        return sock.handle if sock is not None else None

    def injected_failure_on(self, peer: FakePeer) -> bool:
        """Whether an error injected by :meth:`inject_error` failed a WSARecv or
        WSASend on the program's socket at the other end of ``peer``'s connection.
        For tests: a query, no call, no draw."""
        other = peer.other_end()
        return other is not None and any(ep is other for ep in self._forced_on)

    def held_with_io(self, peer: FakePeer) -> bool:
        """Whether the program holds the socket at the other end of ``peer``'s
        connection connected with a receive or a send pending: that operation
        fails with ``peer``'s reset, so the program learns of it.  Not a socket
        merely held (an AcceptEx completed but not yet handled), which a stop
        may close with nothing pending.  For tests: a query, no call, no draw."""
        sock = self._held(peer)
        return sock is not None and bool(sock.recv_ops or sock.send_ops)

    def server_end(self, peer: FakePeer) -> ServerEnd | None:
        """The program's end of ``peer``'s connection and the sends in flight
        (and receives) on the socket that holds it, whatever that socket's
        state: the accepted socket's posted sends (also once it is shut down or closed,
        sends that a close keeps), or the listening socket's, none, while the
        connection waits in its backlog.  None before the handshake.  For
        tests: a query of the fake's state (no call, no draw); unlike
        :meth:`held_socket`, not only while the program holds it connected."""
        end, sock = peer.other_end(), self._socket_at(peer)
        return ServerEnd(end, sock.send_ops, sock.recv_ops) if end is not None and sock is not None else None

    @staticmethod
    def _socket_at(peer: FakePeer) -> Socket | None:
        """The program's socket that owns the other end of ``peer``'s connection (any state)."""
        other = peer.other_end()
        owner = other.owner if other is not None else None
        return owner if isinstance(owner, Socket) else None

    @staticmethod
    def _held(peer: FakePeer) -> Socket | None:
        sock = FakeWinsock._socket_at(peer)
        return sock if sock is not None and sock.state is CONNECTED else None

    def end_taken(self, peer: FakePeer) -> bool:
        """Whether the program has taken the end of ``peer``'s connection: a
        receive on its socket at the other end returned 0 bytes (``peer``'s
        FIN) and the program has reaped it (WSAGetOverlappedResult,
        GetQueuedCompletionStatus(Ex), or its completion routine ran).  Not
        when the FIN merely arrived (:attr:`FakePeer.fin_read`): the program
        learns of the end only from a receive it reaps, which a busy program
        posts or reaps late.  A query of the fake's state (no call, no draw).
        For tests: a chat client that has left gets no line sent after this."""
        return self.end_taken_ns(peer) is not None

    def end_taken_ns(self, peer: FakePeer) -> int | None:
        """When the program took the end of ``peer``'s connection (see
        :meth:`end_taken`: it reaped the receive of 0 bytes that is ``peer``'s
        FIN), in virtual time; None if it has not.  A query of the fake's state
        (no call, no draw).  For tests: a server acts on an end it has taken
        (a back-pressure server no longer counts the client over its mark)."""
        sock = self._socket_at(peer)
        op = sock.end_op if sock is not None else None
        return op.reaped_ns if op is not None and op.state is REAPED else None

    def send_completed_ns(self, peer: FakePeer) -> int:
        """When a send that moved bytes last completed on the socket that holds
        the other end of ``peer``'s connection, in virtual time; 0 if none has
        (or no socket holds it yet).  A query of the fake's state (no call, no
        draw).  For tests: a server that counts a completed send as its
        client's activity (an idle time-out) learns of it no earlier than
        this."""
        sock = self._socket_at(peer)
        return sock.send_done_ns if sock is not None else 0

    def send_handled_ns(self, peer: FakePeer) -> int:
        """:meth:`send_completed_ns` of the sends whose completion the program
        has handled: when the last of those completed, in virtual time; 0 if
        none (or no socket holds the other end of ``peer``'s connection yet).
        A completion counts as handled once its routine has returned, or once
        the thread it was delivered to (GetQueuedCompletionStatus(Ex) dequeued
        its packet, WSAGetOverlappedResult reaped it) makes its next waiting
        call (WSAWaitForMultipleEvents, WaitFor*Object(s)(Ex), Sleep(Ex),
        GetQueuedCompletionStatus(Ex), WSAGetOverlappedResult with fWait) or
        ends; not while its packet waits in a port, nor between its delivery
        and that call (a critical section is no wait here: a thread takes one
        to handle what it got).  A query of the fake's state (no call, no
        draw).  For tests: a server whose idle clock restarts at a completed
        send may have learned of one that is not handled yet, or not: a
        completion handled by now is one it has certainly learned of (if it
        handles a completion in the thread it was delivered to, before that
        thread waits again)."""
        sock = self._socket_at(peer)
        return sock.send_handled_ns if sock is not None else 0

    def send_handled_steps(self, peer: FakePeer) -> tuple[tuple[int, int], ...]:
        """The last few (up to four) times :meth:`send_handled_ns` of ``peer``
        moved on, oldest first: (when the program got the completion that
        moved it, in virtual time: GetQueuedCompletionStatus(Ex) dequeued its
        packet, WSAGetOverlappedResult reaped it or its routine began; the
        value before).  A query of the fake's state (no call, no draw).  For
        tests: a server that learns of a completed send no earlier than it
        gets it may have found the client idle just before, by the account
        it had then, and closes it once it gets round to it."""
        sock = self._socket_at(peer)
        log = sock.send_handled_log if sock is not None else None
        return tuple(log) if log is not None else ()

    def signal_event(self, hEvent: int) -> None:
        """Signal an event from outside the program (a simulated actor, a test
        standing in for another thread or a console control handler).  Unlike
        WSASetEvent it is no Winsock call: it costs no time and is not a
        preemption point, so actors may call it from inside the scheduler."""
        ev = self._kernel.objects.get(hEvent)
        if not isinstance(ev, Event):
            raise ValueError(f"signal_event: {hEvent:#x} is not an open event")
        self._kernel.signal(ev)
        if self.trace.enabled:
            self._kernel.record("signalled", "external", hEvent, 0, thread=0)

    def open_handles(self) -> list[int]:
        """Handles of the sockets and events still open, in order."""
        return sorted(self._kernel.objects)

    def pending_operations(self) -> list[str]:
        """The operations still in flight."""
        return self._ops.pending()

    def end_threads(self) -> list[str]:
        """End every program thread still alive (each is unwound where it is
        parked, by an exception it cannot see; none runs program code
        afterwards) and say which they were and what each was doing (waiting in
        what, runnable, suspended).  For test teardown, from the main thread;
        the threads stay counted by :meth:`leaks`.  The pytest plugin does this
        for every fake after each test, and fails a test that left threads
        alive (see :mod:`fakewinsock.pytest_plugin`)."""
        sched = self._kernel.sched
        if sched is None:
            return []
        alive = [t.describe_state() for t in sched.alive()]
        sched.unwind_all()
        return alive

    def GetCurrentThreadId(self) -> int:
        """The calling thread's id (deterministic: 0x1000 + 4 * its number)."""
        return self._kernel.thread().tid

    def GetCurrentThread(self) -> int:
        """GetCurrentThread's pseudo-handle, CURRENT_THREAD_PSEUDO_HANDLE (not a
        kernel call: no scheduling point): the calling thread, in QueueUserAPC,
        the waits (never signalled while its thread waits), GetExitCodeThread
        (STILL_ACTIVE) and ResumeThread (0).  Divergence from real Windows:
        CloseHandle on it raises NotEmulatedError (Microsoft: closing it "has
        no effect"; what it returns no source shows)."""
        return C.CURRENT_THREAD_PSEUDO_HANDLE

    def GetLastError(self) -> int:
        """The calling thread's last error (the slot WSAGetLastError reads), as
        the DWORD it is: 0 to 2**32 - 1."""
        return self._kernel.thread().last_error

    def SetLastError(self, dwErrCode: int) -> None:
        """Set the calling thread's last error."""
        if not isinstance(dwErrCode, int):
            raise TypeError(f"SetLastError: dwErrCode must be an int, not {type(dwErrCode).__name__}")
        self._kernel.thread().last_error = dwErrCode & 0xFFFFFFFF  # a DWORD, as the real backend passes it

