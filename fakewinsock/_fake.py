"""The fake backend: a deterministic simulated Windows kernel and loopback network.

How the machinery fits together
===============================

``FakeWinsock`` implements every call of the Winsock interface
(:class:`fakewinsock.Winsock`) over three pieces of state:

* **Objects.** Sockets (:class:`_Socket`) and events (:class:`_Event`) live in
  one handle table, with handle values that grow by 4 from 0x100 like Windows
  handles (but are never reused).  A socket that is connected owns an
  :class:`~fakewinsock._net.Endpoint` of a simulated TCP connection.

* **Operations.** Each overlapped call that pends becomes an :class:`_Op`,
  queued on its socket (receives, sends and accepts each in their own FIFO).
  Only the head of each queue can complete.  When the head's condition holds
  (data or EOF or a reset has arrived; a send's bytes have all entered the
  network; a connection is waiting in the backlog; the operation was
  cancelled) the op is *armed*: after a completion delay drawn by the chooser
  it joins the **ready list**.  Completing an op writes its NTSTATUS and byte
  count into the caller's WSAOVERLAPPED (``Internal``/``InternalHigh``), then
  notifies: a completion routine is queued to the posting thread's APC queue,
  otherwise the OVERLAPPED's event is signalled.  An op whose condition
  already holds when it is posted may instead complete at once (the chooser
  decides, under :attr:`FakeConfig.immediate`); it notifies all the same.

* **Time.** A virtual clock (nanoseconds) and a heap of timers (segment
  arrivals, handshakes, completion delays, peer scripts).  Time only moves
  forward by the cost of each call and inside waits.

Every blocking wait (WSAWaitForMultipleEvents, SleepEx, WSAGetOverlappedResult
with fWait, connect, a peer waiting for data) goes through one scheduler,
:meth:`FakeWinsock._block`: until its condition holds it completes one ready
op (the chooser picks which, so completions come out of order), else fires
the next timer, moving the clock to it, else times out by moving the clock to
the deadline.  With no timeout and nothing left that could ever happen it
raises :class:`DeadlockError` instead of hanging.  Last error and the queue of
completion routines belong to the calling thread (keyed by
``threading.get_ident()``), so a later step can run several server threads
through the same scheduler.

Everything is recorded in :attr:`FakeWinsock.trace`.  Nothing depends on wall
time, ids or hash order: the same seed and calls give the same trace.

Divergence from real Windows, in one place (details at each site):

* One program thread calls the fake at a time; completions happen only inside
  calls (``background``) and waits, never truly concurrently.  A program that
  spins without ever waiting sees due timers only through ``background``
  (``FakeConfig.max_calls`` turns such a loop into BusyLoopError).  Thread exit
  does not cancel the thread's pending I/O (afd.c shows Windows does when the
  socket has no completion port).
* Handle values are never reused; peers' addresses are never reused (no
  TIME_WAIT).
* Only IPv4 TCP over loopback; blocking (non-overlapped) I/O, MSG_* flags,
  completion ports, GetOverlappedResult (kernel32), WSAIoctl and most socket
  options are not emulated and fail loudly with NotEmulatedError.  The options
  that are accepted (SO_REUSEADDR, SO_KEEPALIVE, SO_RCVBUF, SO_SNDBUF,
  TCP_NODELAY...) are stored and read back but change nothing; SO_ERROR reads 0.
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

import ctypes
import heapq
import threading
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from . import _constants as C
from ._errors import BusyLoopError, DeadlockError, LeakError, NotEmulatedError, WinsockUsageError
from ._net import Endpoint
from ._peer import FakePeer
from ._sim import Chooser, FakeConfig, RandomChooser
from ._trace import Trace
from ._types import (
    LINGER,
    SOCKADDR_IN,
    WSABUF,
    WSADATA,
    WSAOVERLAPPED,
    AcceptExResult,
    AcceptExSockaddrs,
    CompletionRoutine,
    IoResult,
    OverlappedResult,
    SockaddrResult,
    SockoptResult,
    StartupResult,
    sockaddr_in,
)

__all__ = ["FakeWinsock"]

_get_ident = threading.get_ident
_addressof = ctypes.addressof
_crc32 = zlib.crc32
_COPY_BUDGET = 32 << 20  # bytes of buffer copies held for snapshots (see FakeWinsock._snapshot)

_SOCKADDR_IN_SIZE = ctypes.sizeof(SOCKADDR_IN)  # 16
_MIN_ADDR_SLOT = _SOCKADDR_IN_SIZE + 16  # what AcceptEx requires per address slot
_EPHEMERAL_FIRST = 49152
_NS_PER_MS = 1_000_000
_ANY = "0.0.0.0"
_NO_QUEUE: tuple[()] = ()  # stands for the queues only a listener has
_NO_VIEWS: list[memoryview] = []  # shared, never appended to
_LOOPBACK_HOSTS = [f"127.0.0.{i}" for i in range(256)]
# Results returned often, made once (named tuples are slow to make).
_PENDING = IoResult(C.SOCKET_ERROR, 0, 0)
_INCOMPLETE = OverlappedResult(C.FALSE, 0, 0)

# Socket states.
_FRESH, _BOUND, _LISTENING, _CONNECTED, _CLOSED = "fresh", "bound", "listening", "connected", "closed"


def _signalled(evs: list[_Event], wait_all: int) -> int:
    """What a wait on ``evs`` returns now: the index of the first signalled event
    (0 when ``wait_all`` and all are), or -1."""
    if wait_all:
        return 0 if all(e.signaled for e in evs) else -1
    for i, e in enumerate(evs):
        if e.signaled:
            return i
    return -1


class _ThreadState:
    __slots__ = ("index", "last_error", "apcs")

    def __init__(self, index: int) -> None:
        self.index = index
        self.last_error = 0
        self.apcs: deque[_Op] = deque()


class _Event:
    """A manual-reset event from WSACreateEvent."""

    __slots__ = ("handle", "signaled", "closed")

    def __init__(self, handle: int) -> None:
        self.handle = handle
        self.signaled = False
        self.closed = False


class _Op:
    """One overlapped operation, from post to reaping.

    No ``__slots__``: most fields keep their class-level default for the whole
    life of an op, and an instance that stores only what differs is both
    smaller and quicker to make (one is made per post)."""

    event: _Event | None = None
    ev_handle = 0
    bufs: list[memoryview] = _NO_VIEWS
    total = 0
    moved = 0
    snapshot: list[bytes | int | None] | None = None
    exports: list[memoryview] = _NO_VIEWS
    status = C.STATUS_PENDING
    nbytes = 0
    flags = 0
    armed = False
    abort = 0  # NTSTATUS to complete with instead of the normal result
    state = "pending"  # pending -> completed -> reaped
    accept_sock: _Socket | None = None
    out_buf: memoryview | None = None
    rdl = lal = ral = 0  # AcceptEx: receive data and address lengths
    key = 0  # the address of ``ov``: what identifies an OVERLAPPED in flight

    def __init__(self, op_id: int, kind: str, sock: _Socket, ov: WSAOVERLAPPED,
                 routine: CompletionRoutine | None, thread: _ThreadState) -> None:
        self.id = op_id
        self.kind = kind
        self.sock = sock
        self.ov = ov
        self.routine = routine
        self.thread = thread

    def describe(self) -> str:
        return f"{self.kind} op{self.id} on socket {self.sock.handle:#x}"


class _Socket:
    """A socket in the fake kernel."""

    __slots__ = (
        "kernel", "handle", "overlapped", "state", "local", "ep", "backlog", "backlog_max",
        "recv_ops", "send_ops", "accept_ops", "accepted", "ctx_updated", "linger",
        "wr_shut", "rd_shut", "options", "accept_pending_on", "aborting",
    )

    def __init__(self, kernel: FakeWinsock, handle: int, overlapped: bool) -> None:
        self.kernel = kernel
        self.handle = handle
        self.overlapped = overlapped
        self.state = _FRESH
        self.local: tuple[str, int] | None = None
        self.ep: Endpoint | None = None
        # Listener queues are made by listen(); the others share an empty
        # tuple (an idle connection should cost little: see benchmarks/).
        self.backlog: deque[Endpoint] = _NO_QUEUE  # type: ignore[assignment]
        self.backlog_max = 0
        self.recv_ops: list[_Op] = []
        self.send_ops: list[_Op] = []
        self.accept_ops: deque[_Op] = _NO_QUEUE  # type: ignore[assignment]
        self.accepted = False  # connected through AcceptEx
        self.ctx_updated = False  # SO_UPDATE_ACCEPT_CONTEXT done
        self.linger = (0, 0)
        self.wr_shut = False
        self.rd_shut = False
        self.options: dict[tuple[int, int], bytes] = {}
        self.accept_pending_on: _Op | None = None  # AcceptEx using this as accept socket
        self.aborting = False  # an op of this socket was given an abort status

    def _endpoint_changed(self, ep: Endpoint) -> None:
        self.kernel._socket_changed(self)

    def describe(self) -> str:
        return f"socket {self.handle:#x} ({self.state})"


class FakeWinsock:
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
        self._immediate = {kind: self.config.immediate_for(kind) for kind in ("AcceptEx", "WSARecv", "WSASend")}
        self.trace = Trace(limit=self.config.trace_limit)
        self.now_ns = 0
        self._startups = 0
        self._next_handle = 0x100
        self._objects: dict[int, _Socket | _Event] = {}
        self._closed_events: set[int] = set()
        self._threads: dict[int, _ThreadState] = {}
        self._last_tid = -1
        self._last_ts = _ThreadState(0)
        self._next_op = 0
        self._next_conn = 0
        self._by_ov: dict[int, _Op] = {}  # address of a WSAOVERLAPPED -> its last op, until reaped
        self._ready: list[_Op] = []
        self._timers: list[tuple[int, int, Callable[..., None], Any]] = []
        self._timer_seq = 0
        self._bound: dict[tuple[str, int], _Socket] = {}
        self._listeners: dict[tuple[str, int], _Socket] = {}
        self._next_port = _EPHEMERAL_FIRST
        self._peer_addrs: set[tuple[str, int]] = set()
        self._peer_host = 1  # simulated peers come from 127.0.0.1, then 127.0.0.2, ...
        self._peer_next_port = _EPHEMERAL_FIRST
        self._forced_errors: dict[str, deque[int]] = {}
        self._stats: dict[str, int] = {
            "immediate": 0, "pending": 0, "failed": 0, "completed": 0, "routines": 0, "resets": 0,
        }
        self._ncalls = 0  # Winsock calls (stats["calls"])
        self._copied = 0  # bytes held by buffer snapshots that are copies

    @property
    def stats(self) -> dict[str, int]:
        """Counters: Winsock calls, operations completed at once / pending /
        failed at once / completed, completion routines run, resets sent."""
        return {"calls": self._ncalls, **self._stats}

    # ------------------------------------------------------------------ infra

    def _thread(self) -> _ThreadState:
        tid = _get_ident()
        if tid == self._last_tid:
            return self._last_ts
        ts = self._threads.get(tid)
        if ts is None:
            ts = self._threads[tid] = _ThreadState(len(self._threads) + 1)
        self._last_tid, self._last_ts = tid, ts
        return ts

    def _t(self, what: str, call: str, handle: int = 0, op: int = 0, detail: str = "",
           thread: int | None = None) -> None:
        trace = self.trace
        if trace.enabled:
            trace.add(self.now_ns, self._thread().index if thread is None else thread,
                      what, call, handle, op, detail)

    def _enter(self, call: str) -> _ThreadState:
        """Every Winsock call starts here: it costs virtual time, and the kernel
        may make progress behind the program's back."""
        calls = self._ncalls = self._ncalls + 1
        config = self.config
        if config.max_calls is not None and calls > config.max_calls:
            raise BusyLoopError(
                f"{call}: more than {config.max_calls} Winsock calls (FakeConfig.max_calls); the program "
                "seems to spin instead of waiting (an event never reset? a receive re-posted after EOF?)"
            )
        now = self.now_ns = self.now_ns + config.syscall_cost
        bg = config.background
        if bg and (self._ready or (self._timers and self._timers[0][0] <= now)):
            if self.chooser.boolean(bg, "background"):
                self._step(now)
        return self._thread()

    def _fail(self, ts: _ThreadState, call: str, error: int, handle: int = 0, rc: int = C.SOCKET_ERROR,
              ) -> int:
        ts.last_error = error
        self._stats["failed"] += 1
        if self.trace.enabled:
            self._t("failed", call, handle, 0, f"error={error}")
        return rc

    def _new_handle(self) -> int:
        h = self._next_handle
        self._next_handle += 4
        return h

    def _socket(self, s: object, call: str) -> _Socket | None:
        if not isinstance(s, int):
            raise TypeError(f"{call}: SOCKET must be an int handle, not {type(s).__name__}")
        obj = self._objects.get(s)
        return obj if isinstance(obj, _Socket) else None

    def _forced(self, call: str) -> int:
        q = self._forced_errors.get(call)
        if q:
            return q.popleft()
        return 0

    def _initialised(self, ts: _ThreadState, call: str) -> bool:
        if self._startups > 0:
            return True
        ts.last_error = C.WSANOTINITIALISED
        self._stats["failed"] += 1
        if self.trace.enabled:
            self._t("failed", call, 0, 0, f"error={C.WSANOTINITIALISED}")
        return False

    # -------------------------------------------------------------- scheduler

    def call_at(self, time_ns: int, fn: Callable[[Any], None], arg: Any = None) -> None:
        """Run ``fn(arg)`` when virtual time reaches ``time_ns`` (inside some
        wait).  For simulated actors such as scripted clients."""
        self._timer_seq += 1
        now = self.now_ns
        heapq.heappush(self._timers, (time_ns if time_ns > now else now, self._timer_seq, fn, arg))

    def _step(self, deadline: int | None) -> bool:
        """Make one thing happen: complete a ready op, or fire the next timer
        (moving the clock to it if it is not past ``deadline``).  False if
        nothing could happen before the deadline (the clock is then moved to
        it).  Raises DeadlockError if nothing can ever happen and there is no
        deadline."""
        ready = self._ready
        if ready:
            op = ready.pop(self.chooser.index(len(ready), "order")) if len(ready) > 1 else ready.pop()
            self._complete(op)
            return True
        timers = self._timers
        if timers:
            t = timers[0][0]
            if deadline is None or t <= deadline:
                if t > self.now_ns:
                    self.now_ns = t
                _, _, fn, arg = heapq.heappop(timers)
                fn(arg)
                return True
        if deadline is None:
            return False
        if deadline > self.now_ns:
            self.now_ns = deadline
        return False

    def _block(self, done: Callable[[], bool], deadline: int | None, what: str | Callable[[], str],
               ts: _ThreadState | None = None) -> bool:
        """The scheduler: make progress until ``done()`` or the deadline (or,
        with ``ts``, until ts has a queued completion routine)."""
        step = self._step
        apcs = ts.apcs if ts is not None else None
        while True:
            if apcs:
                return True
            if done():
                return True
            if not step(deadline):
                if deadline is None:
                    name = what if isinstance(what, str) else what()
                    raise DeadlockError(
                        f"{name} can never return: no operation is in flight, nothing is "
                        f"scheduled and the timeout is infinite.\n{self._describe_world()}"
                    )
                return done()

    def _describe_world(self) -> str:
        pend = self.pending_operations()
        return "pending operations: " + (", ".join(pend) if pend else "none")

    def run_for(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass (completions happen, timers fire;
        no completion routine runs)."""
        self._block(lambda: False, self.now_ns + int(seconds * 1e9), "run_for")

    def inject_error(self, call: str, error: int, count: int = 1) -> None:
        """Make the next ``count`` calls of ``call`` (``"WSARecv"``, ``"WSASend"``,
        ``"AcceptEx"``) fail at once with ``error`` (e.g. WSAENOBUFS)."""
        if call not in ("WSARecv", "WSASend", "AcceptEx"):
            raise ValueError(f"inject_error: cannot inject into {call!r}")
        self._forced_errors.setdefault(call, deque()).extend([error] * count)

    # ---------------------------------------------------------------- ops core

    def _new_op(self, kind: str, sock: _Socket, ov: WSAOVERLAPPED,
                routine: CompletionRoutine | None, ts: _ThreadState) -> _Op:
        self._next_op += 1
        return _Op(self._next_op, kind, sock, ov, routine, ts)

    def _check_ov(self, call: str, s: int, ov: object) -> int:
        """Refuse an OVERLAPPED still in use; its address (the key of ``_by_ov``)."""
        if not isinstance(ov, WSAOVERLAPPED):
            if ov is None:
                raise NotEmulatedError(
                    f"{call} on socket {s:#x} without an OVERLAPPED (blocking I/O) is not emulated"
                )
            raise TypeError(f"{call}: lpOverlapped must be a WSAOVERLAPPED, not {type(ov).__name__}")
        key = _addressof(ov)
        prev = self._by_ov.get(key)
        if prev is not None and prev.state == "pending":
            raise WinsockUsageError(
                f"{call} on socket {s:#x}: the WSAOVERLAPPED is still in use by the pending "
                f"{prev.describe()}; reusing it corrupts memory on Windows"
            )
        return key

    def _bind_event(self, op: _Op, call: str) -> int:
        """Attach the OVERLAPPED's event (event notification). 0 or an error."""
        h = op.ov.hEvent
        op.ev_handle = h
        if op.routine is not None or not h:
            return 0
        ev = self._objects.get(h)
        if not isinstance(ev, _Event):
            if h in self._closed_events:
                raise WinsockUsageError(
                    f"{call} on socket {op.sock.handle:#x}: the OVERLAPPED's hEvent {h:#x} "
                    "was closed with WSACloseEvent"
                )
            return C.WSA_INVALID_HANDLE
        op.event = ev
        ev.signaled = False  # starting an overlapped operation resets its event
        return 0

    def _register(self, op: _Op, key: int) -> None:
        ov = op.ov
        ov.Internal = C.STATUS_PENDING
        ov.InternalHigh = 0
        op.key = key
        self._by_ov[key] = op

    def _arm(self, op: _Op) -> None:
        """The op's condition holds: it becomes ready after a completion delay."""
        if op.armed:
            return
        op.armed = True
        delay = self.chooser.span(self.config.completion_delay, "delay")
        if delay <= 0:
            self._ready.append(op)
        else:
            self.call_at(self.now_ns + delay, self._delay_over, op)

    def _delay_over(self, op: _Op) -> None:
        """An op's completion delay is over: it is ready.  Alone, it completes
        now (inside a wait, the very next step would complete it anyway); with
        others ready, the chooser picks the order at the next step."""
        if self._ready:
            self._ready.append(op)
        else:
            self._complete(op)

    def _complete(self, op: _Op) -> None:
        """Finish an armed op now: compute its result and notify."""
        if op.state != "pending":
            return
        sock = op.sock
        data = b""
        q: list[_Op] | deque[_Op]
        if op.kind == "WSARecv":
            status, n, data = self._finish_recv(op)
            q = sock.recv_ops
        elif op.kind == "WSASend":
            status = op.abort
            n = 0 if status else op.total
            q = sock.send_ops
        else:
            if not op.abort and not self._accept_satisfiable(sock, op):
                # The connection it was armed for went away (reset before it
                # was accepted, and dropped): wait for the next one.
                op.armed = False
                return
            status, n = self._finish_accept(op)
            q = sock.accept_ops
        if q and q[0] is op:
            del q[0]
        else:
            try:
                q.remove(op)
            except ValueError:
                pass
        self._finish(op, status, n, "completed", data)
        self._socket_changed(sock)

    def _finish(self, op: _Op, status: int, n: int, what: str, data: bytes = b"") -> None:
        """Write the result into the OVERLAPPED (and received bytes into the
        buffers), then notify: queue the completion routine, or signal the event."""
        ov = op.ov
        if ov.Internal != C.STATUS_PENDING or ov.hEvent != op.ev_handle:
            raise WinsockUsageError(
                f"{op.describe()}: its WSAOVERLAPPED was modified while the operation was in "
                f"flight (Internal={ov.Internal:#x}, hEvent={ov.hEvent:#x}); Windows would "
                "write into it later"
            )
        if op.snapshot is not None:
            self._check_snapshot(op)
        if data:
            pos = 0
            for b in op.bufs:
                k = min(len(b), len(data) - pos)
                if k <= 0:
                    break
                b[:k] = data[pos:pos + k]
                pos += k
        for m in op.exports:
            m.release()
        op.exports = _NO_VIEWS
        op.status = status
        op.nbytes = n
        op.state = "completed"
        ov.Internal = status
        ov.InternalHigh = n
        self._stats["completed"] += 1
        tracing = self.trace.enabled
        if tracing:
            self._t(what, op.kind, op.sock.handle, op.id, f"status={status:#x} bytes={n}",
                    thread=op.thread.index)
        if op.routine is not None:
            op.thread.apcs.append(op)
            if tracing:
                self._t("queued", op.kind, op.sock.handle, op.id, "completion routine",
                        thread=op.thread.index)
        elif op.event is not None:
            op.event.signaled = True
            if tracing:
                self._t("signalled", "event", op.event.handle, op.id, thread=op.thread.index)

    def _snapshot(self, op: _Op) -> None:
        """Remember each buffer the program could still change while the
        operation pends: a copy (the fastest to compare), or, once the copies
        held for operations in flight reach ``_COPY_BUDGET`` bytes, a CRC-32
        (a few bytes whatever the size, twice the time); nothing for
        ``bytes``, which nothing can change.  Only operations that pend are
        snapshot: one that completes inside its call leaves the program no
        moment to touch its buffers."""
        snap: list[bytes | int | None] = []
        for b in op.bufs:
            if type(b.obj) is bytes:
                snap.append(None)
            elif self._copied + len(b) <= _COPY_BUDGET:
                snap.append(b.tobytes())
                self._copied += len(b)
            else:
                snap.append(_crc32(b))
        op.snapshot = snap

    def _check_snapshot(self, op: _Op) -> None:
        snap = op.snapshot
        assert snap is not None
        self._drop_snapshot(op)
        for i, b in enumerate(op.bufs):
            before = snap[i]
            if before is None:
                continue
            if before != (b.tobytes() if type(before) is bytes else _crc32(b)):
                what = "lpOutputBuffer" if op.kind == "AcceptEx" else f"lpBuffers[{i}]"
                raise WinsockUsageError(
                    f"{op.describe()}: {what} was modified while the operation was in flight; "
                    "on Windows the kernel reads or writes it until completion"
                )

    def _drop_snapshot(self, op: _Op) -> None:
        for before in op.snapshot or ():
            if type(before) is bytes:
                self._copied -= len(before)
        op.snapshot = None

    def _reap(self, op: _Op) -> None:
        if op.state == "completed":
            op.state = "reaped"
            if self._by_ov.get(op.key) is op:
                del self._by_ov[op.key]

    # ------------------------------------------------------------- socket logic

    def _socket_changed(self, sock: _Socket) -> None:
        """Re-examine a socket's queues after its state or endpoint changed."""
        if sock.recv_ops:
            op = sock.recv_ops[0]
            if not op.armed and (op.abort or self._recv_satisfiable(sock, op)):
                self._arm(op)
        if sock.send_ops:
            self._pump_sends(sock)
        if sock.accept_ops:
            op = sock.accept_ops[0]
            if not op.armed and (op.abort or self._accept_satisfiable(sock, op)):
                self._arm(op)
        if sock.aborting:
            sock.aborting = False
            for q in (sock.recv_ops, sock.send_ops, sock.accept_ops):
                for op in q:
                    if op.abort and not op.armed:
                        self._arm(op)

    @staticmethod
    def _abort(op: _Op, status: int) -> None:
        """Make ``op`` complete with ``status`` (armed by the next _socket_changed)."""
        op.abort = status
        op.sock.aborting = True

    def _recv_satisfiable(self, sock: _Socket, op: _Op) -> bool:
        ep = sock.ep
        return ep is not None and (bool(ep.rbuf) or ep.eof or ep.reset)

    def _finish_recv(self, op: _Op) -> tuple[int, int, bytes]:
        """A receive's result now: (NTSTATUS, bytes, the data)."""
        if op.abort:
            return op.abort, 0, b""
        ep = op.sock.ep
        assert ep is not None
        rbuf = ep.rbuf
        if rbuf:
            if op.total == 0:
                return 0, 0, b""  # a zero-length receive completes, leaving the data
            n = min(len(rbuf), op.total)
            if n > 1 and self.chooser.boolean(self.config.partial_recv, "partial"):
                n = self.chooser.integer(1, n - 1, "take")
            data = bytes(rbuf[:n])
            del rbuf[:n]
            self._window_freed(ep)
            return 0, n, data
        if ep.reset:
            return ep.reset_status, 0, b""
        return 0, 0, b""  # EOF: the peer closed gracefully

    def _window_freed(self, ep: Endpoint) -> None:
        """``ep``'s reader made room: wake the other end if its sender waits for it
        (even a closed end may still have queued bytes to send)."""
        other = ep.other
        if other is not None and other.blocked:
            other.blocked = False
            other.notify()

    def _pump_sends(self, sock: _Socket) -> None:
        """Move bytes of the queued sends into the network as the window allows."""
        ep = sock.ep
        for op in sock.send_ops:
            if op.abort:
                continue
            if ep is None or ep.reset:
                self._abort(op, ep.reset_status if ep is not None else C.STATUS_CONNECTION_RESET)
                continue
            if op.moved < op.total:
                room = ep.room(self.config.window)
                k = min(room, op.total - op.moved)
                if k <= 0 or k < min(self.config.window // 2, op.total - op.moved):
                    ep.blocked = True  # woken by _window_freed
                    return  # silly-window avoidance: wait for a worthwhile window
                self._transmit(ep, self._gather(op, op.moved, k))
                op.moved += k
            if op.moved >= op.total and not op.armed:
                self._arm(op)
            if op.moved < op.total:
                ep.blocked = True
                return

    def _gather(self, op: _Op, start: int, k: int) -> bytes:
        """Bytes ``start`` to ``start + k`` of the op's buffers, as one bytes."""
        bufs = op.bufs
        if len(bufs) == 1:
            b = bufs[0]
            if start == 0 and k == len(b):
                obj = b.obj
                # Whole bytes need no copy: nothing can change them.
                return obj if type(obj) is bytes and len(obj) == k else b.tobytes()
            return b[start:start + k].tobytes()
        out = bytearray()
        pos = 0
        for b in op.bufs:
            blen = len(b)
            if pos + blen > start and len(out) < k:
                lo = max(0, start - pos)
                out += b[lo:lo + (k - len(out))]
            pos += blen
        return bytes(out)

    def _accept_satisfiable(self, sock: _Socket, op: _Op) -> bool:
        if not sock.backlog:
            return False
        if op.rdl == 0:
            return True
        ep = sock.backlog[0]
        return bool(ep.rbuf) or ep.eof or ep.reset

    def _finish_accept(self, op: _Op) -> tuple[int, int]:
        if op.abort:
            acc = op.accept_sock
            if acc is not None and acc.accept_pending_on is op:
                acc.accept_pending_on = None
            return op.abort, 0
        listener = op.sock
        acc = op.accept_sock
        assert acc is not None and op.out_buf is not None
        acc.accept_pending_on = None
        if 0 < op.lal < _MIN_ADDR_SLOT or op.ral < _MIN_ADDR_SLOT:
            # The connection stays queued for a later accept.
            return C.STATUS_BUFFER_TOO_SMALL, 0
        ep = listener.backlog.popleft()
        if ep.fail_accept:
            if self.trace.enabled:
                self._t("net", "accept-reset", listener.handle, op.id, f"conn=c{ep.conn_id} reset before accept")
            return C.STATUS_CONNECTION_RESET, 0  # the connection is consumed; the accept socket stays fresh
        n = 0
        if op.rdl and ep.rbuf:
            n = min(op.rdl, len(ep.rbuf))
            op.out_buf[:n] = ep.rbuf[:n]
            del ep.rbuf[:n]
            self._window_freed(ep)
        acc.ep = ep
        acc.state = _CONNECTED
        acc.accepted = True
        acc.local = ep.local
        ep.owner = acc
        local = bytes(sockaddr_in(*ep.local))
        remote = bytes(sockaddr_in(*ep.remote))
        buf = op.out_buf
        if op.lal:
            buf[op.rdl:op.rdl + _SOCKADDR_IN_SIZE] = local
        r0 = op.rdl + op.lal
        buf[r0:r0 + _SOCKADDR_IN_SIZE] = remote
        if op.snapshot is not None:
            self._drop_snapshot(op)  # written by us: nothing to compare after this
        if self.trace.enabled:
            self._t("net", "accept", acc.handle, op.id, f"conn=c{ep.conn_id} remote={ep.remote[0]}:{ep.remote[1]}")
        if ep.rbuf or ep.eof or ep.reset:
            self._socket_changed(acc)
        return 0, n

    # ------------------------------------------------------------- network

    def _latency(self) -> int:
        return self.chooser.span(self.config.latency, "latency")

    def _arrival(self, src: Endpoint) -> int:
        t = self.now_ns + self._latency()
        if t < src.last_arrival:
            t = src.last_arrival
        src.last_arrival = t
        return t

    def _transmit(self, src: Endpoint, data: bytes) -> None:
        """Put ``data`` on the wire from ``src``; it may be split in two."""
        n = len(data)
        if n == 0:
            return
        src.in_flight += n
        sent = self.now_ns  # for the trace: when the segment left
        if n > 1 and self.chooser.boolean(self.config.split, "split"):
            k = self.chooser.integer(1, n - 1, "split_at")
            self.call_at(self._arrival(src), self._deliver, (src, data[:k], sent))
            data = data[k:]
        self.call_at(self._arrival(src), self._deliver, (src, data, sent))

    def _deliver(self, arg: tuple[Endpoint, bytes, int]) -> None:
        src, data, sent = arg
        src.in_flight -= len(data)
        dst = src.other
        if dst is None or dst.reset or src.reset:
            return
        if dst.closed:
            # Data arriving at a closed socket resets the connection.
            if self.trace.enabled:
                self._t("net", "data-after-close", 0, 0, f"conn=c{dst.conn_id} -> RST")
            self._send_rst(dst)
            return
        dst.rbuf += data
        if self.trace.enabled:
            self._t("net", "arrive", 0, 0, f"conn=c{dst.conn_id} to={dst.local[1]} bytes={len(data)} sent={sent}",
                    thread=0)
        dst.notify()

    def _send_fin(self, src: Endpoint) -> None:
        if src.fin_sent or src.reset:
            return
        src.fin_sent = True
        self.call_at(self._arrival(src), self._deliver_fin, src)

    def _deliver_fin(self, src: Endpoint) -> None:
        dst = src.other
        if dst is None or dst.reset or src.reset:
            return
        dst.eof = True
        if self.trace.enabled:
            self._t("net", "fin", 0, 0, f"conn=c{dst.conn_id} to={dst.local[1]}", thread=0)
        dst.notify()

    def _send_rst(self, src: Endpoint) -> None:
        """Abort the connection from ``src``: the other end gets a reset."""
        if src.reset:
            return
        src.reset = True  # this end is finished too
        src.rbuf.clear()
        self._stats["resets"] += 1
        self.call_at(self._arrival(src), self._deliver_rst, src)

    def _deliver_rst(self, src: Endpoint) -> None:
        dst = src.other
        if dst is None or dst.reset:
            return
        dst.reset = True
        if dst.eof:
            dst.reset_status = C.STATUS_CONNECTION_ABORTED
        dst.rbuf.clear()  # Windows discards unread data on a reset
        if self.trace.enabled:
            self._t("net", "rst", 0, 0, f"conn=c{dst.conn_id} to={dst.local[1]}", thread=0)
        owner = dst.owner
        if isinstance(owner, _Socket) and owner.state == _LISTENING and dst in owner.backlog:
            # Reset before it was accepted.  Untested in Wine's suite; the seed
            # picks one of the outcomes Windows servers meet: the connection is
            # dropped (AcceptEx keeps waiting); it is accepted and its first
            # receive fails with WSAECONNRESET; or the AcceptEx that takes it
            # fails with WSAECONNRESET (ERROR_NETNAME_DELETED through
            # GetOverlappedResult, as IOCP servers report).
            outcome = self.chooser.index(3, "reset-before-accept")
            if outcome == 0:
                owner.backlog.remove(dst)
                if self.trace.enabled:
                    self._t("net", "dropped", owner.handle, 0, f"conn=c{dst.conn_id} reset before accept",
                            thread=0)
                return
            dst.fail_accept = outcome == 2
        dst.notify()

    def _ephemeral(self) -> int:
        """A free port in the dynamic range (49152-65535) for this machine's
        sockets, or 0 when every one is taken."""
        for _ in range(65536 - _EPHEMERAL_FIRST):
            p = self._next_port
            self._next_port = p + 1 if p < 65535 else _EPHEMERAL_FIRST
            if ("127.0.0.1", p) not in self._peer_addrs and self._addr_holder("127.0.0.1", p) is None:
                return p
        return 0

    def _peer_address(self) -> tuple[str, int]:
        """A source address for a simulated peer.  Peers stand for other hosts:
        when one loopback address has used up its dynamic ports they move on to
        the next (127.0.0.2, ...), so that 20000 simulated clients can connect
        at once as they would from many machines.

        A peer's address is never given to another peer (as if TIME_WAIT never
        ended), so no two connections ever share a name.  Divergence from real
        Windows: only the 254 x 16384 addresses exist; past them, OSError."""
        span = 65536 - _EPHEMERAL_FIRST
        for _ in range(254 * span):
            host = _LOOPBACK_HOSTS[self._peer_host]
            p = self._peer_next_port
            if p < 65535:
                self._peer_next_port = p + 1
            else:
                self._peer_next_port = _EPHEMERAL_FIRST
                self._peer_host = self._peer_host % 254 + 1
            addr = (host, p)
            if addr not in self._peer_addrs and (host != "127.0.0.1" or self._addr_holder(host, p) is None):
                self._peer_addrs.add(addr)
                return addr
        raise OSError("the simulated network has no source address left for another peer")

    def _open_connection(self, local: tuple[str, int], remote: tuple[str, int],
                         on_done: Callable[[Endpoint], None]) -> Endpoint:
        """Start a handshake from ``local`` to ``remote``; return the client end.
        ``on_done`` runs when it is established or refused."""
        self._next_conn += 1
        cli = Endpoint(self._next_conn, local, remote)
        self.call_at(self.now_ns + self._latency(), self._syn_arrives, (cli, on_done))
        return cli

    def _find_listener(self, addr: tuple[str, int]) -> _Socket | None:
        return self._listeners.get(addr) or self._listeners.get((_ANY, addr[1]))

    def _syn_arrives(self, arg: tuple[Endpoint, Callable[[Endpoint], None]]) -> None:
        cli, on_done = arg
        lst = self._find_listener(cli.remote)
        if lst is None or len(lst.backlog) >= lst.backlog_max:
            why = "no listener" if lst is None else "backlog full"
            if self.trace.enabled:
                self._t("net", "refused", lst.handle if lst else 0, 0,
                        f"conn=c{cli.conn_id} {cli.remote[0]}:{cli.remote[1]} ({why})", thread=0)
            cli.refused = True
            on_done(cli)
            return
        srv_local = (cli.remote[0] if cli.remote[0] != _ANY else "127.0.0.1", cli.remote[1])
        srv = Endpoint(cli.conn_id, srv_local, cli.local)
        srv.other, cli.other = cli, srv
        srv.established = True
        srv.owner = lst
        lst.backlog.append(srv)
        if self.trace.enabled:
            self._t("net", "backlog", lst.handle, 0, f"conn=c{cli.conn_id} from={cli.local[1]} "
                    f"queued={len(lst.backlog)}", thread=0)
        self.call_at(self.now_ns + self._latency(), self._synack_arrives, (cli, on_done))
        self._socket_changed(lst)

    def _synack_arrives(self, arg: tuple[Endpoint, Callable[[Endpoint], None]]) -> None:
        cli, on_done = arg
        cli.established = True
        on_done(cli)

    # ============================================================ Winsock calls

    def WSAStartup(self, wVersionRequired: int) -> StartupResult:
        """Start Winsock; returns the error code itself (0 on success) and WSADATA."""
        ts = self._enter("WSAStartup")
        if not isinstance(wVersionRequired, int):
            raise TypeError(f"WSAStartup: wVersionRequired must be an int, not {type(wVersionRequired).__name__}")
        major, minor = C.LOBYTE(wVersionRequired), C.HIBYTE(wVersionRequired)
        if major == 0:
            if self.trace.enabled:
                self._t("failed", "WSAStartup", 0, 0, f"error={C.WSAVERNOTSUPPORTED}")
            return StartupResult(C.WSAVERNOTSUPPORTED, None)
        if major == 1:
            version = C.MAKEWORD(1, min(minor, 1))
        elif major == 2:
            version = C.MAKEWORD(2, min(minor, 2))
        else:
            version = C.MAKEWORD(2, 2)
        self._startups += 1
        data = WSADATA(version, C.MAKEWORD(2, 2), 0, 0, "WinSock 2.0", "Running")
        if self.trace.enabled:
            self._t("call", "WSAStartup", 0, 0, f"version={major}.{minor} -> "
                    f"{C.LOBYTE(version)}.{C.HIBYTE(version)} count={self._startups}")
        del ts
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
            for obj in list(self._objects.values()):
                if isinstance(obj, _Socket):
                    self._close_socket(obj)
        self._startups -= 1
        if self.trace.enabled:
            self._t("call", "WSACleanup", 0, 0, f"count={self._startups}")
        return 0

    def leaks(self) -> list[str]:
        """What a final WSACleanup would report: open sockets and events,
        operations still in flight, completion routines never run."""
        out: list[str] = []
        for h in sorted(self._objects):
            obj = self._objects[h]
            if isinstance(obj, _Socket):
                out.append(f"socket {h:#x} ({obj.state}) not closed")
            else:
                out.append(f"event {h:#x} not closed")
        out += [f"{what} still in flight" for what in self.pending_operations()]
        for ts in self._threads.values():
            for op in ts.apcs:
                out.append(f"completion routine of {op.describe()} never ran "
                           f"(thread T{ts.index} made no alertable wait)")
        return out

    def WSAGetLastError(self) -> int:
        """The calling thread's last error."""
        return self._thread().last_error

    def WSASetLastError(self, iError: int) -> None:
        """Set the calling thread's last error."""
        if not isinstance(iError, int):
            raise TypeError(f"WSASetLastError: iError must be an int, not {type(iError).__name__}")
        self._thread().last_error = iError

    def WSASocket(self, af: int, type: int, protocol: int, lpProtocolInfo: None, g: int,  # noqa: A002
                  dwFlags: int) -> int:
        """Create a socket; WSA_FLAG_OVERLAPPED for overlapped I/O."""
        ts = self._enter("WSASocket")
        for name, v in (("af", af), ("type", type), ("protocol", protocol), ("g", g), ("dwFlags", dwFlags)):
            if not isinstance(v, int):
                raise TypeError(f"WSASocket: {name} must be an int, not {v.__class__.__name__}")
        if not self._initialised(ts, "WSASocket"):
            return C.INVALID_SOCKET
        if lpProtocolInfo is not None:
            raise NotEmulatedError("WSASocket: lpProtocolInfo is not emulated (pass None)")
        if af == C.AF_INET6:
            raise NotEmulatedError("WSASocket: AF_INET6 is not emulated by the fake")
        if af != C.AF_INET:
            return self._fail(ts, "WSASocket", C.WSAEAFNOSUPPORT, rc=C.INVALID_SOCKET)
        if type == C.SOCK_DGRAM:
            raise NotEmulatedError("WSASocket: SOCK_DGRAM is not emulated by the fake")
        if type != C.SOCK_STREAM:
            return self._fail(ts, "WSASocket", C.WSAESOCKTNOSUPPORT, rc=C.INVALID_SOCKET)
        if protocol not in (0, C.IPPROTO_TCP):
            return self._fail(ts, "WSASocket", C.WSAEPROTONOSUPPORT, rc=C.INVALID_SOCKET)
        if g != 0:
            return self._fail(ts, "WSASocket", C.WSAEINVAL, rc=C.INVALID_SOCKET)
        h = self._new_handle()
        self._objects[h] = _Socket(self, h, bool(dwFlags & C.WSA_FLAG_OVERLAPPED))
        if self.trace.enabled:
            self._t("call", "WSASocket", h, 0, f"flags={dwFlags:#x}")
        return h

    def closesocket(self, s: int) -> int:
        """Close a socket.  Pending operations complete later with an error."""
        ts = self._enter("closesocket")
        if not self._initialised(ts, "closesocket"):
            return C.SOCKET_ERROR
        sock = self._socket(s, "closesocket")
        if sock is None:
            return self._fail(ts, "closesocket", C.WSAENOTSOCK, s)
        self._close_socket(sock)
        if self.trace.enabled:
            self._t("call", "closesocket", s)
        return 0

    def _close_socket(self, sock: _Socket) -> None:
        del self._objects[sock.handle]
        state = sock.state
        sock.state = _CLOSED
        if sock.local is not None and self._bound.get(sock.local) is sock:
            del self._bound[sock.local]
        if state == _LISTENING:
            assert sock.local is not None
            self._listeners.pop(sock.local, None)
            for queued in sock.backlog:  # connections never accepted are reset
                queued.closed = True
                self._send_rst(queued)
            sock.backlog.clear()
        for op in sock.accept_ops:
            # AcceptEx pending on a closed listener: STATUS_CANCELLED (995).
            self._abort(op, C.STATUS_CANCELLED)
        acc_op = sock.accept_pending_on
        if acc_op is not None:
            # The accept socket of a pending AcceptEx was closed: 995; when a
            # client is already connected and the accept waits for its first
            # data, Windows gives either 995 or connection aborted (1236/10053).
            status = C.STATUS_CANCELLED
            lst = acc_op.sock
            if acc_op.rdl and lst.backlog and lst.accept_ops and lst.accept_ops[0] is acc_op:
                status = self.chooser.pick_one(
                    (C.STATUS_CANCELLED, C.STATUS_CONNECTION_ABORTED), "close-accept-socket")
            self._abort(acc_op, status)
            self._socket_changed(lst)
        for op in sock.recv_ops:
            # A receive ended by a local close: STATUS_CONNECTION_ABORTED
            # (10053), not 995 (Wine's iocp_async_read_closesocket on Windows).
            self._abort(op, C.STATUS_CONNECTION_ABORTED)
        for op in sock.send_ops:
            # Divergence from real Windows: untested there; assumed to end like
            # a receive (STATUS_CONNECTION_ABORTED).
            self._abort(op, C.STATUS_CONNECTION_ABORTED)
        ep = sock.ep
        if ep is not None and not ep.closed:
            ep.closed = True
            if sock.linger == (1, 0) or ep.rbuf:
                self._send_rst(ep)  # abortive close, or unread data: RST
            elif not ep.reset:
                self._send_fin(ep)
        self._socket_changed(sock)

    def bind(self, s: int, name: SOCKADDR_IN, namelen: int) -> int:
        """Bind a socket to a local address (port 0 picks one)."""
        ts = self._enter("bind")
        if not isinstance(name, SOCKADDR_IN):
            raise TypeError(f"bind: name must be a SOCKADDR_IN, not {type(name).__name__}")
        if not isinstance(namelen, int):
            raise TypeError(f"bind: namelen must be an int, not {type(namelen).__name__}")
        if not self._initialised(ts, "bind"):
            return C.SOCKET_ERROR
        sock = self._socket(s, "bind")
        if sock is None:
            return self._fail(ts, "bind", C.WSAENOTSOCK, s)
        if namelen < _SOCKADDR_IN_SIZE:
            return self._fail(ts, "bind", C.WSAEFAULT, s)
        if name.sin_family != C.AF_INET:
            return self._fail(ts, "bind", C.WSAEAFNOSUPPORT, s)
        if sock.state != _FRESH:
            return self._fail(ts, "bind", C.WSAEINVAL, s)
        host, port = name.host, name.port
        if host != _ANY and not host.startswith("127."):
            return self._fail(ts, "bind", C.WSAEADDRNOTAVAIL, s)
        if port == 0:
            port = self._ephemeral()
            if port == 0:
                return self._fail(ts, "bind", C.WSAENOBUFS, s)
        else:
            holder = self._addr_holder(host, port)
            if holder is not None:
                reuse = (C.SOL_SOCKET, C.SO_REUSEADDR)
                mine = int.from_bytes(sock.options.get(reuse, b"\0"), "little")
                theirs = int.from_bytes(holder.options.get(reuse, b"\0"), "little")
                if not mine:
                    return self._fail(ts, "bind", C.WSAEADDRINUSE, s)
                if not theirs:
                    # SO_REUSEADDR over a socket without it (Wine's test_reuseaddr).
                    return self._fail(ts, "bind", C.WSAEACCES, s)
        sock.local = (host, port)
        sock.state = _BOUND
        self._bound.setdefault((host, port), sock)
        if self.trace.enabled:
            self._t("call", "bind", s, 0, f"{host}:{port}")
        return 0

    def _addr_holder(self, host: str, port: int) -> _Socket | None:
        """The socket already bound to (host, port), or to a wildcard overlapping it."""
        hit = self._bound.get((host, port)) or self._bound.get((_ANY, port))
        if hit is None and host == _ANY:
            for (_, p), other in sorted(self._bound.items()):
                if p == port:
                    return other
        return hit

    def listen(self, s: int, backlog: int) -> int:
        """Put a bound socket into listening state."""
        ts = self._enter("listen")
        if not isinstance(backlog, int):
            raise TypeError(f"listen: backlog must be an int, not {type(backlog).__name__}")
        if not self._initialised(ts, "listen"):
            return C.SOCKET_ERROR
        sock = self._socket(s, "listen")
        if sock is None:
            return self._fail(ts, "listen", C.WSAENOTSOCK, s)
        if sock.state == _LISTENING:
            sock.backlog_max = self._backlog(backlog)
            return 0
        if sock.state != _BOUND:
            return self._fail(ts, "listen", C.WSAEISCONN if sock.state == _CONNECTED else C.WSAEINVAL, s)
        assert sock.local is not None
        sock.state = _LISTENING
        sock.backlog = deque()
        sock.accept_ops = deque()
        sock.backlog_max = self._backlog(backlog)
        self._listeners.setdefault(sock.local, sock)  # the first listener gets the connections
        if self.trace.enabled:
            self._t("call", "listen", s, 0, f"backlog={sock.backlog_max}")
        return 0

    def _backlog(self, backlog: int) -> int:
        if backlog >= C.SOMAXCONN or backlog > self.config.backlog:
            return self.config.backlog
        return max(1, backlog)

    def connect(self, s: int, name: SOCKADDR_IN, namelen: int) -> int:
        """Connect a socket (blocking, in virtual time)."""
        ts = self._enter("connect")
        if not isinstance(name, SOCKADDR_IN):
            raise TypeError(f"connect: name must be a SOCKADDR_IN, not {type(name).__name__}")
        if not self._initialised(ts, "connect"):
            return C.SOCKET_ERROR
        sock = self._socket(s, "connect")
        if sock is None:
            return self._fail(ts, "connect", C.WSAENOTSOCK, s)
        if namelen < _SOCKADDR_IN_SIZE:
            return self._fail(ts, "connect", C.WSAEFAULT, s)
        if sock.state == _CONNECTED:
            return self._fail(ts, "connect", C.WSAEISCONN, s)
        if sock.state == _LISTENING or sock.accept_pending_on is not None:
            # (test_AcceptEx: connect on an accept socket with AcceptEx pending)
            return self._fail(ts, "connect", C.WSAEINVAL, s)
        if name.sin_addr == 0 or name.port == 0:
            return self._fail(ts, "connect", C.WSAEADDRNOTAVAIL, s)
        if sock.local is None:
            port = self._ephemeral()
            if port == 0:
                return self._fail(ts, "connect", C.WSAENOBUFS, s)
            local = ("127.0.0.1", port)
            sock.local = local
            self._bound[local] = sock
        assert sock.local is not None
        local_host = sock.local[0] if sock.local[0] != _ANY else "127.0.0.1"
        ep = self._open_connection((local_host, sock.local[1]), (name.host, name.port), lambda e: None)
        if self.trace.enabled:
            self._t("call", "connect", s, 0, f"{name.host}:{name.port} conn=c{ep.conn_id}")
        self._block(lambda: ep.established or ep.refused, None, f"connect on socket {s:#x}")
        if ep.refused:
            # Windows retries the SYN before giving up: about 2 s on loopback
            # (Wine's test_select notes on w10pro64), where Linux fails at once.
            self.run_for(2.0)
            return self._fail(ts, "connect", C.WSAECONNREFUSED, s)
        sock.ep = ep
        ep.owner = sock
        sock.state = _CONNECTED
        sock.ctx_updated = True
        return 0

    def shutdown(self, s: int, how: int) -> int:
        """Disable sends (SD_SEND: FIN after pending data), receives, or both."""
        ts = self._enter("shutdown")
        if not self._initialised(ts, "shutdown"):
            return C.SOCKET_ERROR
        sock = self._socket(s, "shutdown")
        if sock is None:
            return self._fail(ts, "shutdown", C.WSAENOTSOCK, s)
        if how not in (C.SD_RECEIVE, C.SD_SEND, C.SD_BOTH):
            return self._fail(ts, "shutdown", C.WSAEINVAL, s)
        if sock.state != _CONNECTED or sock.ep is None or (sock.accepted and not sock.ctx_updated):
            return self._fail(ts, "shutdown", C.WSAENOTCONN, s)
        ep = sock.ep
        if how in (C.SD_SEND, C.SD_BOTH):
            sock.wr_shut = True
            if not sock.send_ops:
                self._send_fin(ep)
        if how in (C.SD_RECEIVE, C.SD_BOTH):
            # Windows sends nothing to the peer, and a receive posted before
            # keeps working (Wine's test_shutdown); only new receives fail.
            # Divergence from Microsoft's docs, which say later data resets.
            sock.rd_shut = True
        if self.trace.enabled:
            self._t("call", "shutdown", s, 0, f"how={how}")
        return 0

    # -- options

    def setsockopt(self, s: int, level: int, optname: int, optval: object, optlen: int) -> int:
        """Set a socket option.  ``optval`` is bytes, a ctypes structure (LINGER)
        or an int (encoded little-endian in ``optlen`` bytes; for
        SO_UPDATE_ACCEPT_CONTEXT, the listening SOCKET)."""
        ts = self._enter("setsockopt")
        raw = _optbytes("setsockopt", optval, optlen)
        if not self._initialised(ts, "setsockopt"):
            return C.SOCKET_ERROR
        sock = self._socket(s, "setsockopt")
        if sock is None:
            return self._fail(ts, "setsockopt", C.WSAENOTSOCK, s)
        key = (level, optname)
        if key == (C.SOL_SOCKET, C.SO_UPDATE_ACCEPT_CONTEXT):
            if optlen < 8:
                return self._fail(ts, "setsockopt", C.WSAEFAULT, s)
            lst = self._objects.get(int.from_bytes(raw[:8], "little"))
            if not isinstance(lst, _Socket):
                return self._fail(ts, "setsockopt", C.WSAENOTSOCK, s)
            if not sock.accepted:
                return self._fail(ts, "setsockopt", C.WSAENOTCONN, s)
            sock.ctx_updated = True
            if self.trace.enabled:
                self._t("call", "setsockopt", s, 0, f"SO_UPDATE_ACCEPT_CONTEXT listener={lst.handle:#x}")
            return 0
        if key == (C.SOL_SOCKET, C.SO_LINGER):
            if optlen < ctypes.sizeof(LINGER):
                return self._fail(ts, "setsockopt", C.WSAEFAULT, s)
            lg = LINGER.from_buffer_copy(raw[:4])
            sock.linger = (1 if lg.l_onoff else 0, lg.l_linger)
            if self.trace.enabled:
                self._t("call", "setsockopt", s, 0, f"SO_LINGER {sock.linger}")
            return 0
        if key == (C.SOL_SOCKET, C.SO_DONTLINGER):
            if optlen < 4:
                return self._fail(ts, "setsockopt", C.WSAEFAULT, s)
            sock.linger = (0, sock.linger[1]) if int.from_bytes(raw[:4], "little") else (1, sock.linger[1])
            return 0
        if key in _STORED_OPTIONS:
            if optlen < 4:
                return self._fail(ts, "setsockopt", C.WSAEFAULT, s)
            sock.options[key] = raw[:4]
            if self.trace.enabled:
                self._t("call", "setsockopt", s, 0, f"level={level:#x} opt={optname:#x}")
            return 0
        raise NotEmulatedError(f"setsockopt: option level={level:#x} optname={optname:#x} is not emulated")

    def getsockopt(self, s: int, level: int, optname: int, optlen: int) -> SockoptResult:
        """Get a socket option: ``optlen`` is the size of the caller's buffer; the
        result holds the option's bytes."""
        ts = self._enter("getsockopt")
        if not isinstance(optlen, int):
            raise TypeError(f"getsockopt: optlen must be an int, not {type(optlen).__name__}")
        if not self._initialised(ts, "getsockopt"):
            return SockoptResult(C.SOCKET_ERROR, b"")
        sock = self._socket(s, "getsockopt")
        if sock is None:
            return SockoptResult(self._fail(ts, "getsockopt", C.WSAENOTSOCK, s), b"")
        key = (level, optname)
        if key == (C.SOL_SOCKET, C.SO_LINGER):
            val = bytes(LINGER(*sock.linger))
        elif key == (C.SOL_SOCKET, C.SO_DONTLINGER):
            val = (0 if sock.linger[0] else 1).to_bytes(4, "little")
        elif key == (C.SOL_SOCKET, C.SO_ERROR):
            val = (0).to_bytes(4, "little")
        elif key == (C.SOL_SOCKET, C.SO_TYPE):
            val = C.SOCK_STREAM.to_bytes(4, "little")
        elif key == (C.SOL_SOCKET, C.SO_ACCEPTCONN):
            val = (1 if sock.state == _LISTENING else 0).to_bytes(4, "little")
        elif key in _STORED_OPTIONS:
            val = sock.options.get(key, _OPTION_DEFAULTS.get(key, b"\0\0\0\0"))
        else:
            raise NotEmulatedError(f"getsockopt: option level={level:#x} optname={optname:#x} is not emulated")
        if optlen < len(val):
            return SockoptResult(self._fail(ts, "getsockopt", C.WSAEFAULT, s), b"")
        return SockoptResult(0, val)

    def getsockname(self, s: int) -> SockaddrResult:
        """The local address of a bound socket."""
        ts = self._enter("getsockname")
        if not self._initialised(ts, "getsockname"):
            return SockaddrResult(C.SOCKET_ERROR, None)
        sock = self._socket(s, "getsockname")
        if sock is None:
            return SockaddrResult(self._fail(ts, "getsockname", C.WSAENOTSOCK, s), None)
        if sock.local is None:
            return SockaddrResult(self._fail(ts, "getsockname", C.WSAEINVAL, s), None)
        return SockaddrResult(0, sockaddr_in(*sock.local))

    def getpeername(self, s: int) -> SockaddrResult:
        """The remote address of a connected socket (after SO_UPDATE_ACCEPT_CONTEXT
        for an AcceptEx socket)."""
        ts = self._enter("getpeername")
        if not self._initialised(ts, "getpeername"):
            return SockaddrResult(C.SOCKET_ERROR, None)
        sock = self._socket(s, "getpeername")
        if sock is None:
            return SockaddrResult(self._fail(ts, "getpeername", C.WSAENOTSOCK, s), None)
        if sock.ep is None or (sock.accepted and not sock.ctx_updated):
            return SockaddrResult(self._fail(ts, "getpeername", C.WSAENOTCONN, s), None)
        return SockaddrResult(0, sockaddr_in(*sock.ep.remote))

    # -- AcceptEx

    def AcceptEx(self, sListenSocket: int, sAcceptSocket: int, lpOutputBuffer: bytearray | None,
                 dwReceiveDataLength: int, dwLocalAddressLength: int, dwRemoteAddressLength: int,
                 lpOverlapped: WSAOVERLAPPED | None) -> AcceptExResult:
        """Post an asynchronous accept into the fresh socket ``sAcceptSocket``.

        As on Windows (Wine's test_AcceptEx): Internal is set to STATUS_PENDING
        before anything is validated, so even an immediate failure leaves it
        so; NULL lpOverlapped fails with 87; a remote address length of 0 with
        WSAEFAULT; a local length of 0 is legal; a non-zero address length
        below ``sizeof(sockaddr_in) + 16`` pends and then fails when a client
        arrives (STATUS_BUFFER_TOO_SMALL, WSAEFAULT), leaving the connection
        queued; with ``dwReceiveDataLength > 0`` it completes on the first byte
        (or with 0 bytes if the client closes without sending).
        """
        call = "AcceptEx"
        ts = self._enter(call)
        for nm, v in (("dwReceiveDataLength", dwReceiveDataLength), ("dwLocalAddressLength", dwLocalAddressLength),
                      ("dwRemoteAddressLength", dwRemoteAddressLength)):
            if not isinstance(v, int) or v < 0:
                raise TypeError(f"AcceptEx: {nm} must be a non-negative int, not {v!r}")
        if lpOutputBuffer is not None and not isinstance(lpOutputBuffer, (bytearray, memoryview)):
            raise TypeError(f"AcceptEx: lpOutputBuffer must be a bytearray, not {type(lpOutputBuffer).__name__}")
        fail = AcceptExResult(C.FALSE, 0)
        if lpOverlapped is None:
            self._fail(ts, call, C.ERROR_INVALID_PARAMETER, sListenSocket)
            return fail
        key = self._check_ov(call, sListenSocket if isinstance(sListenSocket, int) else 0, lpOverlapped)
        lpOverlapped.Internal = C.STATUS_PENDING
        if not self._initialised(ts, call):
            return fail
        lst = self._socket(sListenSocket, call)
        if lst is None:
            self._fail(ts, call, C.WSAENOTSOCK, sListenSocket)
            return fail
        acc = self._socket(sAcceptSocket, call)
        if acc is None:
            self._fail(ts, call, C.WSAENOTSOCK, sAcceptSocket)
            return fail
        if lpOutputBuffer is None:
            self._fail(ts, call, C.WSAEFAULT, sListenSocket)
            return fail
        need = dwReceiveDataLength + dwLocalAddressLength + dwRemoteAddressLength
        out = memoryview(lpOutputBuffer).cast("B")
        if len(out) < need:
            raise WinsockUsageError(
                f"AcceptEx on socket {sListenSocket:#x}: lpOutputBuffer has {len(out)} bytes but "
                f"dwReceiveDataLength + both address lengths is {need}; Windows would write past its end"
            )
        if lst.state != _LISTENING:
            self._fail(ts, call, C.WSAEINVAL, sListenSocket)
            return fail
        if acc.state != _FRESH or acc.accept_pending_on is not None:
            self._fail(ts, call, C.WSAEINVAL, sAcceptSocket)
            return fail
        if dwRemoteAddressLength == 0:
            self._fail(ts, call, C.WSAEFAULT, sListenSocket)
            return fail
        forced = self._forced(call) or (C.WSAENOBUFS if self.chooser.boolean(self.config.enobufs, "enobufs") else 0)
        if forced:
            self._fail(ts, call, forced, sListenSocket)
            return fail
        op = self._new_op(call, lst, lpOverlapped, None, ts)
        err = self._bind_event(op, call)
        if err:
            self._fail(ts, call, err, sListenSocket)
            return fail
        op.accept_sock = acc
        op.out_buf = out
        op.rdl, op.lal, op.ral = dwReceiveDataLength, dwLocalAddressLength, dwRemoteAddressLength
        op.bufs = op.exports = [out]
        self._register(op, key)
        acc.accept_pending_on = op
        if self.trace.enabled:
            self._t("posted", call, sListenSocket, op.id, f"accept={sAcceptSocket:#x} rdl={dwReceiveDataLength}")
        small = 0 < dwLocalAddressLength < _MIN_ADDR_SLOT or dwRemoteAddressLength < _MIN_ADDR_SLOT
        if (not small and not lst.accept_ops and self._accept_satisfiable(lst, op)
                and self.chooser.boolean(self._immediate[call], "immediate:AcceptEx")):
            status, n = self._finish_accept(op)
            self._finish(op, status, n, "immediate")
            self._stats["immediate"] += 1
            return AcceptExResult(C.TRUE, n)
        lst.accept_ops.append(op)
        if self.config.check_buffers:
            self._snapshot(op)
        self._stats["pending"] += 1
        if self.trace.enabled:
            self._t("pending", call, sListenSocket, op.id)
        self._socket_changed(lst)
        ts.last_error = C.WSA_IO_PENDING
        return fail

    def GetAcceptExSockaddrs(self, lpOutputBuffer: bytearray | memoryview, dwReceiveDataLength: int,
                             dwLocalAddressLength: int, dwRemoteAddressLength: int) -> AcceptExSockaddrs:
        """Decode the two addresses AcceptEx wrote into its output buffer.

        With a local address length of 0 the local address is left empty
        (length 0), as on Windows.

        Divergence from real Windows: the layout inside each address slot is
        the fake's own (Windows' is undocumented); decode it only with this
        call, with the same three lengths AcceptEx got."""
        buf = memoryview(lpOutputBuffer).cast("B")
        rdl, lal, ral = dwReceiveDataLength, dwLocalAddressLength, dwRemoteAddressLength
        r0 = rdl + lal
        if len(buf) < r0 + ral or ral < _SOCKADDR_IN_SIZE or 0 < lal < _SOCKADDR_IN_SIZE:
            raise WinsockUsageError(
                "GetAcceptExSockaddrs: the three lengths must be those given to AcceptEx and fit the buffer"
            )
        local = SOCKADDR_IN()
        local_len = 0
        if lal:
            local = SOCKADDR_IN.from_buffer_copy(bytes(buf[rdl:rdl + _SOCKADDR_IN_SIZE]))
            local_len = _SOCKADDR_IN_SIZE
        remote = SOCKADDR_IN.from_buffer_copy(bytes(buf[r0:r0 + _SOCKADDR_IN_SIZE]))
        return AcceptExSockaddrs(local, local_len, remote, _SOCKADDR_IN_SIZE)

    # -- WSARecv / WSASend

    def _prepare_bufs(self, call: str, s: int, lpBuffers: Sequence[WSABUF], dwBufferCount: int,
                      writable: bool) -> list[memoryview]:
        """A view of each buffer, ``len`` bytes long, held until the operation
        completes (so the program cannot resize it meanwhile)."""
        if not isinstance(dwBufferCount, int):
            raise TypeError(f"{call}: dwBufferCount must be an int, not {type(dwBufferCount).__name__}")
        if isinstance(lpBuffers, WSABUF):
            lpBuffers = [lpBuffers]
        if dwBufferCount > len(lpBuffers):
            raise WinsockUsageError(
                f"{call} on socket {s:#x}: dwBufferCount is {dwBufferCount} but lpBuffers has "
                f"{len(lpBuffers)} entries; Windows would read past the array"
            )
        views: list[memoryview] = []
        for i in range(dwBufferCount):
            wb = lpBuffers[i]
            if not isinstance(wb, WSABUF):
                raise TypeError(f"{call}: lpBuffers[{i}] must be a WSABUF, not {type(wb).__name__}")
            buf = wb.buf
            # bytes and bytearray views are bytes already; cast the others.
            mv = memoryview(buf) if type(buf) is bytearray or type(buf) is bytes else memoryview(buf).cast("B")
            size = len(mv)
            n = wb.len
            if n == size and (not writable or not mv.readonly):
                views.append(mv)
                continue
            if not isinstance(n, int) or n < 0 or n > size:
                mv.release()
                raise WinsockUsageError(
                    f"{call} on socket {s:#x}: lpBuffers[{i}].len is {n} but its buffer has "
                    f"{size} bytes; Windows would {'write' if writable else 'read'} past its end"
                )
            if writable and mv.readonly:
                mv.release()
                raise TypeError(f"{call}: lpBuffers[{i}].buf must be writable (a bytearray)")
            views.append(mv[:n])
            mv.release()
        return views

    def _begin_io(self, call: str, s: int, lpBuffers: Sequence[WSABUF], dwBufferCount: int, flags: int,
                  lpOverlapped: WSAOVERLAPPED, routine: CompletionRoutine | None,
                  ) -> IoResult | tuple[_ThreadState, _Socket, _Op]:
        """What WSARecv and WSASend share: checks, immediate failures, and the
        new operation (registered, not yet queued).  An IoResult is a failure
        to return as it is."""
        ts = self._enter(call)
        receiving = call == "WSARecv"
        if not isinstance(flags, int):
            name = "lpFlags" if receiving else "dwFlags"
            raise TypeError(f"{call}: {name} must be an int, not {type(flags).__name__}")
        handle = s if isinstance(s, int) else 0
        key = self._check_ov(call, handle, lpOverlapped)
        if routine is not None and not callable(routine):
            raise TypeError(f"{call}: lpCompletionRoutine must be callable or None")
        bufs = self._prepare_bufs(call, handle, lpBuffers, dwBufferCount, receiving)
        if not self._initialised(ts, call):
            return IoResult(C.SOCKET_ERROR, 0, flags)
        sock = self._socket(s, call)
        if sock is None:
            return IoResult(self._fail(ts, call, C.WSAENOTSOCK, s), 0, flags)
        if flags:
            raise NotEmulatedError(f"{call}: flags {flags:#x} are not emulated (only 0)")
        err = C.WSAEINVAL if not bufs else self._io_precheck(sock, call)
        ep = sock.ep
        if not err and (sock.rd_shut if receiving else sock.wr_shut):
            err = C.WSAESHUTDOWN
        if not err and ep is not None and ep.reset and not (receiving and sock.recv_ops):
            # After a reset, new calls fail at once (test_tcp_reset).
            err = C.NTSTATUS_TO_WSA[ep.reset_status]
        if err:
            return IoResult(self._fail(ts, call, err, s), 0, flags)
        op = self._new_op(call, sock, lpOverlapped, routine, ts)
        err = self._bind_event(op, call)
        if err:
            return IoResult(self._fail(ts, call, err, s), 0, flags)
        op.bufs = op.exports = bufs
        op.total = sum(len(b) for b in bufs)
        self._register(op, key)
        if self.trace.enabled:
            self._t("posted", call, s, op.id, f"len={op.total}" + (" routine" if routine else ""))
        return ts, sock, op

    def _queue_io(self, ts: _ThreadState, sock: _Socket, op: _Op, queue: list[_Op], flags: int) -> IoResult:
        """The operation pends: SOCKET_ERROR with WSA_IO_PENDING."""
        queue.append(op)
        if self.config.check_buffers:
            self._snapshot(op)
        self._stats["pending"] += 1
        if self.trace.enabled:
            self._t("pending", op.kind, sock.handle, op.id)
        self._socket_changed(sock)
        ts.last_error = C.WSA_IO_PENDING
        return _PENDING if flags == 0 else IoResult(C.SOCKET_ERROR, 0, flags)

    def WSARecv(self, s: int, lpBuffers: Sequence[WSABUF], dwBufferCount: int, lpFlags: int,
                lpOverlapped: WSAOVERLAPPED, lpCompletionRoutine: CompletionRoutine | None) -> IoResult:
        """Post an overlapped receive.  0 = completed at once (still notifies),
        SOCKET_ERROR with WSA_IO_PENDING = pending, any other error = failed."""
        begun = self._begin_io("WSARecv", s, lpBuffers, dwBufferCount, lpFlags, lpOverlapped, lpCompletionRoutine)
        if isinstance(begun, IoResult):
            return begun
        ts, sock, op = begun
        if (not sock.recv_ops and self._recv_satisfiable(sock, op)
                and self.chooser.boolean(self._immediate["WSARecv"], "immediate:WSARecv")):
            status, n, data = self._finish_recv(op)
            if status:
                # A reset that just arrived (a fresh op has no abort status):
                # the call fails at once, notifying nothing.
                op.state = "reaped"
                for m in op.exports:
                    m.release()
                self._by_ov.pop(op.key, None)
                return IoResult(self._fail(ts, "WSARecv", C.NTSTATUS_TO_WSA[status], s), 0, lpFlags)
            self._finish(op, status, n, "immediate", data)
            self._stats["immediate"] += 1
            self._socket_changed(sock)
            return IoResult(0, n, 0)
        return self._queue_io(ts, sock, op, sock.recv_ops, lpFlags)

    def _io_precheck(self, sock: _Socket, call: str) -> int:
        if not sock.overlapped:
            raise NotEmulatedError(
                f"{call} on socket {sock.handle:#x}: the socket was created without "
                "WSA_FLAG_OVERLAPPED; blocking I/O is not emulated"
            )
        if sock.state != _CONNECTED or sock.ep is None:
            return C.WSAENOTCONN
        forced = self._forced(call)
        if forced:
            return forced
        if self.chooser.boolean(self.config.enobufs, "enobufs"):
            return C.WSAENOBUFS
        return 0

    def WSASend(self, s: int, lpBuffers: Sequence[WSABUF], dwBufferCount: int, dwFlags: int,
                lpOverlapped: WSAOVERLAPPED, lpCompletionRoutine: CompletionRoutine | None) -> IoResult:
        """Post an overlapped send.  It completes with the full length or fails."""
        begun = self._begin_io("WSASend", s, lpBuffers, dwBufferCount, dwFlags, lpOverlapped, lpCompletionRoutine)
        if isinstance(begun, IoResult):
            return begun
        ts, sock, op = begun
        ep = sock.ep
        assert ep is not None
        if (not sock.send_ops and ep.room(self.config.window) >= op.total
                and self.chooser.boolean(self._immediate["WSASend"], "immediate:WSASend")):
            self._transmit(ep, self._gather(op, 0, op.total))
            op.moved = op.total
            self._finish(op, 0, op.total, "immediate")
            self._stats["immediate"] += 1
            return IoResult(0, op.total, dwFlags)
        return self._queue_io(ts, sock, op, sock.send_ops, dwFlags)

    # -- results

    def WSAGetOverlappedResult(self, s: int, lpOverlapped: WSAOVERLAPPED, fWait: int) -> OverlappedResult:
        """The result of an overlapped operation, read from its WSAOVERLAPPED."""
        call = "WSAGetOverlappedResult"
        ts = self._enter(call)
        if not isinstance(lpOverlapped, WSAOVERLAPPED):
            raise TypeError(f"{call}: lpOverlapped must be a WSAOVERLAPPED, not {type(lpOverlapped).__name__}")
        if not self._initialised(ts, call):
            return OverlappedResult(C.FALSE, 0, 0)
        sock = self._socket(s, call)
        if sock is None:
            self._fail(ts, call, C.WSAENOTSOCK, s)
            return OverlappedResult(C.FALSE, 0, 0)
        op = self._by_ov.get(_addressof(lpOverlapped))
        status = lpOverlapped.Internal
        waited = ""  # for the trace: how long fWait=TRUE blocked
        if status == C.STATUS_PENDING:
            if not fWait:
                ts.last_error = C.WSA_IO_INCOMPLETE
                if self.trace.enabled:
                    self._t("fetched", call, s, op.id if op else 0, "incomplete")
                return _INCOMPLETE
            if op is not None and op.routine is not None:
                raise WinsockUsageError(
                    f"{call}(fWait=TRUE) on {op.describe()}: it notifies through a completion "
                    "routine, not an event; fWait=TRUE is only meaningful with event notification"
                )
            # Windows waits (non-alertably) on hEvent, or on the socket when
            # there is none, then reads Internal again.
            ev = self._objects.get(lpOverlapped.hEvent) if lpOverlapped.hEvent else None
            what = f"{call}(fWait=TRUE) on " + (op.describe() if op else f"socket {s:#x}")
            start = self.now_ns
            if isinstance(ev, _Event):
                self._block(lambda: ev.signaled, None, what)
            elif op is not None:
                pending = op
                self._block(lambda: pending.state != "pending", None, what)
            else:
                raise DeadlockError(f"{what}: the WSAOVERLAPPED says STATUS_PENDING, no operation "
                                    "uses it and it has no event; Windows would wait forever")
            waited = f" waited={self.now_ns - start}"
            if lpOverlapped.Internal == C.STATUS_PENDING:
                # The event was signalled by something else (a shared event, a
                # WSASetEvent) while the operation is still in flight: Windows
                # returns TRUE anyway (Wine's test_WSAGetOverlappedResult).
                ts.last_error = self.chooser.pick_one((C.WSA_IO_PENDING, 0), "getoverlapped-lasterror")
                if self.trace.enabled:
                    self._t("fetched", call, s, op.id if op else 0, "event signalled, still pending: TRUE" + waited)
                return OverlappedResult(C.TRUE, lpOverlapped.InternalHigh, 0)
            status = lpOverlapped.Internal
        n = lpOverlapped.InternalHigh
        flags = op.flags if op is not None else 0
        if op is not None:
            self._reap(op)
        if self.trace.enabled:
            self._t("fetched", call, s, op.id if op else 0, f"status={status:#x} bytes={n}{waited}")
        if status == C.STATUS_SUCCESS:
            ts.last_error = 0
            return OverlappedResult(C.TRUE, n, flags)
        err = C.NTSTATUS_TO_WSA.get(status)
        if err is None:
            raise NotEmulatedError(f"{call}: NTSTATUS {status:#x} has no Winsock mapping in the fake")
        ts.last_error = err
        return OverlappedResult(C.FALSE, n, flags)

    # -- events

    def WSACreateEvent(self) -> int:
        """A new manual-reset event, not signalled."""
        self._enter("WSACreateEvent")
        h = self._new_handle()
        self._objects[h] = _Event(h)
        if self.trace.enabled:
            self._t("call", "WSACreateEvent", h)
        return h

    def _event(self, call: str, h: object) -> _Event | None:
        if not isinstance(h, int):
            raise TypeError(f"{call}: hEvent must be an int handle, not {type(h).__name__}")
        ev = self._objects.get(h)
        return ev if isinstance(ev, _Event) else None

    def WSACloseEvent(self, hEvent: int) -> int:
        """Close an event handle."""
        ts = self._enter("WSACloseEvent")
        ev = self._event("WSACloseEvent", hEvent)
        if ev is None:
            return self._fail(ts, "WSACloseEvent", C.WSA_INVALID_HANDLE, hEvent, rc=C.FALSE)
        del self._objects[hEvent]
        ev.closed = True
        self._closed_events.add(hEvent)
        if self.trace.enabled:
            self._t("call", "WSACloseEvent", hEvent)
        return C.TRUE

    def WSASetEvent(self, hEvent: int) -> int:
        """Signal an event."""
        ts = self._enter("WSASetEvent")
        ev = self._event("WSASetEvent", hEvent)
        if ev is None:
            return self._fail(ts, "WSASetEvent", C.WSA_INVALID_HANDLE, hEvent, rc=C.FALSE)
        ev.signaled = True
        if self.trace.enabled:
            self._t("call", "WSASetEvent", hEvent)
        return C.TRUE

    def WSAResetEvent(self, hEvent: int) -> int:
        """Return an event to non-signalled."""
        ts = self._enter("WSAResetEvent")
        ev = self._event("WSAResetEvent", hEvent)
        if ev is None:
            return self._fail(ts, "WSAResetEvent", C.WSA_INVALID_HANDLE, hEvent, rc=C.FALSE)
        ev.signaled = False
        if self.trace.enabled:
            self._t("call", "WSAResetEvent", hEvent)
        return C.TRUE

    # -- waits

    def _run_apcs(self, ts: _ThreadState) -> None:
        """Deliver every queued completion routine of this thread (including any
        queued while they run)."""
        apcs = ts.apcs
        tracing = self.trace.enabled
        failure: BaseException | None = None
        ran = 0
        while apcs:
            op = apcs.popleft()
            status = op.status
            err = 0 if status == 0 else C.NTSTATUS_TO_WSA.get(status)
            if err is None:
                raise NotEmulatedError(f"NTSTATUS {status:#x} has no Winsock mapping in the fake")
            self._reap(op)  # the routine is the program's one notification
            ran += 1
            if tracing:
                self._t("routine", op.kind, op.sock.handle, op.id, f"dwError={err} cb={op.nbytes}")
            try:
                op.routine(err, op.nbytes, op.ov, 0)  # type: ignore[misc]
            except BaseException as e:  # noqa: BLE001 - re-raised below
                # Windows runs every queued routine in this one wait; the
                # exception surfaces when the wait returns (as the real
                # backend, which cannot unwind through C, does too).
                if failure is None:
                    failure = e
        self._stats["routines"] += ran
        if failure is not None:
            raise failure

    def WSAWaitForMultipleEvents(self, cEvents: int, lphEvents: Sequence[int], fWaitAll: int,
                                 dwTimeout: int, fAlertable: int) -> int:
        """Wait (in virtual time) for one or all of up to 64 events, or, when
        alertable, for completion routines (WSA_WAIT_IO_COMPLETION)."""
        call = "WSAWaitForMultipleEvents"
        ts = self._enter(call)
        start = self.now_ns  # for the trace's waited=
        if not isinstance(cEvents, int) or not isinstance(dwTimeout, int):
            raise TypeError(f"{call}: cEvents and dwTimeout must be ints")
        if cEvents == 0 or cEvents > C.WSA_MAXIMUM_WAIT_EVENTS:
            return self._fail(ts, call, C.WSA_INVALID_PARAMETER, rc=C.WSA_WAIT_FAILED)
        if cEvents > len(lphEvents):
            raise WinsockUsageError(
                f"{call}: cEvents is {cEvents} but lphEvents has {len(lphEvents)} handles; "
                "Windows would read past the array"
            )
        evs: list[_Event] = []
        for i in range(cEvents):
            h = lphEvents[i]
            ev = self._event(call, h)
            if ev is None:
                if h in self._closed_events:
                    raise WinsockUsageError(
                        f"{call}: lphEvents[{i}] = {h:#x} is an event that was closed with "
                        "WSACloseEvent; its handle value may already name another object"
                    )
                return self._fail(ts, call, C.WSA_INVALID_HANDLE, h, rc=C.WSA_WAIT_FAILED)
            evs.append(ev)
        if fWaitAll and len({e.handle for e in evs}) != len(evs):
            return self._fail(ts, call, C.WSA_INVALID_PARAMETER, rc=C.WSA_WAIT_FAILED)
        deadline = None if dwTimeout == C.WSA_INFINITE else self.now_ns + dwTimeout * _NS_PER_MS

        if fAlertable and ts.apcs:  # Windows runs queued routines first
            return self._wait_io_completion(ts, call, start)
        idx = _signalled(evs, fWaitAll)
        if idx < 0:
            self._block(lambda: _signalled(evs, fWaitAll) >= 0, deadline, lambda: f"{call}({cEvents} events, INFINITE)",
                        ts if fAlertable else None)
            if fAlertable and ts.apcs:
                return self._wait_io_completion(ts, call, start)
            idx = _signalled(evs, fWaitAll)
        if idx >= 0:
            if self.trace.enabled:
                self._t("return", call, evs[idx].handle, 0, f"WSA_WAIT_EVENT_0+{idx} waited={self.now_ns - start}")
            return C.WSA_WAIT_EVENT_0 + idx
        if self.trace.enabled:
            self._t("return", call, 0, 0, f"WSA_WAIT_TIMEOUT waited={self.now_ns - start}")
        return C.WSA_WAIT_TIMEOUT

    def _wait_io_completion(self, ts: _ThreadState, call: str, start: int) -> int:
        self._run_apcs(ts)
        if self.trace.enabled:
            self._t("return", call, 0, 0, f"WSA_WAIT_IO_COMPLETION waited={self.now_ns - start}")
        return C.WSA_WAIT_IO_COMPLETION

    def SleepEx(self, dwMilliseconds: int, bAlertable: int) -> int:
        """Sleep in virtual time; alertable, it returns WAIT_IO_COMPLETION as soon
        as completion routines have run."""
        call = "SleepEx"
        ts = self._enter(call)
        start = self.now_ns  # for the trace's waited=
        if not isinstance(dwMilliseconds, int):
            raise TypeError(f"SleepEx: dwMilliseconds must be an int, not {type(dwMilliseconds).__name__}")
        deadline = None if dwMilliseconds == C.INFINITE else self.now_ns + dwMilliseconds * _NS_PER_MS
        if not bAlertable:
            if deadline is None:
                raise DeadlockError("SleepEx(INFINITE, FALSE) never returns")
            self._block(lambda: False, deadline, call)
        else:
            self._block(lambda: False, deadline, f"{call}(INFINITE, TRUE)", ts)
            if ts.apcs:
                self._run_apcs(ts)
                if self.trace.enabled:
                    self._t("return", call, 0, 0, f"WAIT_IO_COMPLETION waited={self.now_ns - start}")
                return C.WAIT_IO_COMPLETION
        if self.trace.enabled:
            self._t("return", call, 0, 0, f"0 waited={self.now_ns - start}")
        return 0

    def CancelIoEx(self, hFile: int, lpOverlapped: WSAOVERLAPPED | None) -> int:
        """Cancel the operation using ``lpOverlapped`` on ``hFile`` (all of them
        when None); they complete with STATUS_CANCELLED (995)."""
        call = "CancelIoEx"
        ts = self._enter(call)
        if lpOverlapped is not None and not isinstance(lpOverlapped, WSAOVERLAPPED):
            raise TypeError(f"{call}: lpOverlapped must be a WSAOVERLAPPED or None")
        sock = self._socket(hFile, call)
        if sock is None:
            return self._fail(ts, call, C.ERROR_INVALID_HANDLE, hFile, rc=C.FALSE)
        found = 0
        for q in (sock.recv_ops, sock.send_ops, sock.accept_ops):
            for op in q:
                if (lpOverlapped is None or op.ov is lpOverlapped) and not op.abort:
                    self._abort(op, C.STATUS_CANCELLED)
                    found += 1
        if not found:
            return self._fail(ts, call, C.ERROR_NOT_FOUND, hFile, rc=C.FALSE)
        if self.trace.enabled:
            self._t("call", call, hFile, 0, f"cancelled={found}")
        self._socket_changed(sock)
        return C.TRUE

    # ============================================================ test helpers

    def peer(self) -> FakePeer:
        """A new simulated remote endpoint (not yet connected)."""
        return FakePeer(self)

    def signal_event(self, hEvent: int) -> None:
        """Signal an event from outside the program (a simulated actor, a test
        standing in for another thread or a console control handler).  Unlike
        WSASetEvent it is no Winsock call: it costs no time and is not a
        preemption point, so actors may call it from inside the scheduler."""
        ev = self._objects.get(hEvent)
        if not isinstance(ev, _Event):
            raise ValueError(f"signal_event: {hEvent:#x} is not an open event")
        ev.signaled = True
        if self.trace.enabled:
            self._t("signalled", "external", hEvent, 0, thread=0)

    def open_handles(self) -> list[int]:
        """Handles of the sockets and events still open, in order."""
        return sorted(self._objects)

    def pending_operations(self) -> list[str]:
        """The operations still in flight."""
        return [op.describe() for op in sorted(self._by_ov.values(), key=lambda o: o.id)
                if op.state == "pending"]


_STORED_OPTIONS = {
    (C.SOL_SOCKET, C.SO_REUSEADDR),
    (C.SOL_SOCKET, C.SO_EXCLUSIVEADDRUSE),
    (C.SOL_SOCKET, C.SO_KEEPALIVE),
    (C.SOL_SOCKET, C.SO_RCVBUF),
    (C.SOL_SOCKET, C.SO_SNDBUF),
    (C.IPPROTO_TCP, C.TCP_NODELAY),
}
_OPTION_DEFAULTS = {
    (C.SOL_SOCKET, C.SO_RCVBUF): (65536).to_bytes(4, "little"),
    (C.SOL_SOCKET, C.SO_SNDBUF): (65536).to_bytes(4, "little"),
}


def _optbytes(call: str, optval: object, optlen: int) -> bytes:
    if not isinstance(optlen, int):
        raise TypeError(f"{call}: optlen must be an int, not {type(optlen).__name__}")
    if isinstance(optval, bool) or isinstance(optval, int):
        size = max(optlen, 0)
        try:
            return int(optval).to_bytes(size, "little", signed=int(optval) < 0)
        except OverflowError:
            raise WinsockUsageError(f"{call}: value {optval} does not fit in optlen={optlen} bytes") from None
    if isinstance(optval, ctypes.Structure):
        raw = bytes(optval)
    elif isinstance(optval, (bytes, bytearray, memoryview)):
        raw = bytes(optval)
    else:
        raise TypeError(f"{call}: optval must be bytes, an int or a ctypes structure, not {type(optval).__name__}")
    if len(raw) < optlen:
        raise WinsockUsageError(f"{call}: optlen is {optlen} but optval has {len(raw)} bytes")
    return raw
