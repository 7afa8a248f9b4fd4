"""Overlapped operations: the life of one OVERLAPPED operation, from post to reaping.

Owns: :class:`Operation` (one AcceptEx, WSARecv or WSASend), the table of
OVERLAPPEDs in flight (:attr:`Operations.by_ov`, keyed by the address of the
caller's WSAOVERLAPPED), operation numbers, and the snapshots of buffers in
flight (and their memory budget).

The life of an operation: it is *posted* (checked: its OVERLAPPED is not
already in use; its event is bound and reset; ``Internal`` is set to
STATUS_PENDING and it is registered), then either *completes at once* or
*pends* in its socket's queue (a snapshot of its buffers is taken, to catch a
program that touches them in flight).  When its socket finds its condition
holds it is *armed*: after a completion delay drawn by the chooser it is ready,
and the kernel's scheduler completes it (the socket part computes the result).
Completing writes NTSTATUS and byte count into ``Internal``/``InternalHigh``,
copies received bytes into the buffers, then *notifies*: the completion
routine is queued on the posting thread's APC queue, or the OVERLAPPED's event
is signalled.  The program *reaps* it by reading the result
(WSAGetOverlappedResult) or when its completion routine runs; only then may the
OVERLAPPED be reused.

May call: the kernel (clock, timers, ready queue, APC queues, handle table for
events, chooser, trace, counters).  It does not know sockets or the network:
an operation's ``sock`` is any object with a ``handle``; how an armed
operation completes is the ``complete`` callable the socket part installs.
"""

from __future__ import annotations

import ctypes
import zlib
from collections.abc import Callable
from enum import Enum
from typing import Generic, Protocol, TypeVar

from . import _constants as C
from ._errors import InternalError, NotEmulatedError, WinsockUsageError
from ._kernel import Event, Kernel, ThreadState
from ._types import WSAOVERLAPPED, CompletionRoutine

__all__ = ["Operation", "Operations", "OpState"]

_addressof = ctypes.addressof
_crc32 = zlib.crc32
_COPY_BUDGET = 32 << 20  # bytes of buffer copies held for snapshots (see Operations.snapshot)
_NO_VIEWS: list[memoryview] = []  # shared, never appended to


class OpState(str, Enum):
    """Where an operation is in its life (see the module docstring)."""

    POSTED = "posted"  # made and registered inside its call, neither completed nor queued yet
    PENDING = "pending"  # queued on its socket, its condition not (yet) met
    ARMED = "armed"  # its condition met: waiting for its completion delay, or in the ready queue
    COMPLETED = "completed"  # result written and notified, not yet read by the program
    REAPED = "reaped"  # result read (or it failed inside its call): its OVERLAPPED is free again

    # Filled in below from the table (compared by identity: cheaper than hashing a member).
    successors: tuple[OpState, ...]
    in_flight: bool

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(self, spec)


POSTED, PENDING, ARMED, COMPLETED, REAPED = (OpState.POSTED, OpState.PENDING, OpState.ARMED, OpState.COMPLETED,
                                            OpState.REAPED)
#: In flight: the OVERLAPPED belongs to the kernel.
IN_FLIGHT = (POSTED, PENDING, ARMED)
#: Every change of state an operation may make.
OP_TRANSITIONS = (
    (POSTED, COMPLETED),  # completed inside its call
    (POSTED, PENDING),  # queued on its socket
    (PENDING, ARMED),  # its condition holds
    (ARMED, PENDING),  # an accept whose connection went away before it completed
    (ARMED, COMPLETED),  # the scheduler completed it
    (COMPLETED, REAPED),  # the program read its result, or its completion routine ran
)
for _state in OpState:
    _state.successors = tuple(new for old, new in OP_TRANSITIONS if old is _state)
    _state.in_flight = _state in IN_FLIGHT


class HasHandle(Protocol):
    @property
    def handle(self) -> int: ...

    # The handle's own signalled state (the I/O manager's file object event):
    # cleared when an operation starts on it, set when one with no event
    # completes.  A wait on the handle (WSAGetOverlappedResult's fWait with no
    # hEvent) waits for it.
    handle_signaled: bool
    # When a send of this socket last completed with bytes while the program
    # held the socket (virtual time; 0: never): a record for observers
    # (FakeWinsock.send_completed_ns); not a send that outlived closesocket
    # (FakeConfig.close_keeps_sends: close_deferred).
    send_done_ns: int
    # When the last of its sends with bytes that the program has handled completed (0: none): a record
    # for observers (FakeWinsock.send_handled_ns), set as send_done_ns is, but only once the program has
    # handled the completion (Operation.handled).
    send_handled_ns: int
    # The last HANDLED_LOG times send_handled_ns moved on: (the completion's reaped_ns, the value before).
    send_handled_log: list[tuple[int, int]] | None
    close_deferred: bool


S = TypeVar("S", bound=HasHandle)


class Operation(Generic[S]):
    """One overlapped operation, from post to reaping.

    No ``__slots__``: most fields keep their class-level default for the whole
    life of an op, and an instance that stores only what differs is both
    smaller and quicker to make (one is made per post).  The defaults are
    literals (what mypyc accepts, ``tools/build_compiled.py``); the rest is set
    in ``__init__``."""

    event: Event | None = None
    ev_handle = 0
    total = 0
    moved = 0
    snapshot: list[bytes | int | None] | None = None
    status = C.STATUS_PENDING
    nbytes = 0
    flags = 0
    peek = False  # WSARecv with MSG_PEEK: copies what is there and leaves it queued
    abort_status = 0  # NTSTATUS to complete with instead of the normal result (0: none)
    accept_sock: S | None = None
    out_buf: memoryview | None = None
    # AcceptEx: dwReceiveDataLength, dwLocalAddressLength, dwRemoteAddressLength
    recv_data_len = 0
    local_addr_len = 0
    remote_addr_len = 0
    key = 0  # the address of ``ov``: what identifies an OVERLAPPED in flight
    in_port = False  # its completion packet waits in a completion port (see _iocp)
    reaped_ns = 0  # when the program reaped it (virtual time; see FakeWinsock.end_taken_ns)
    # A send that completed with bytes while the program held its socket: when (virtual time; 0: not
    # such a send).  A record for observers (FakeWinsock.send_handled_ns): nothing reads it to decide.
    done_ns = 0

    def __init__(self, table: Operations[S], op_id: int, kind: str, sock: S, ov: WSAOVERLAPPED,
                 routine: CompletionRoutine | None, thread: ThreadState) -> None:
        self.table = table
        self.id = op_id
        self.kind = kind
        self.sock = sock
        self.ov = ov
        self.routine = routine
        self.thread = thread
        self.bufs: list[memoryview] = _NO_VIEWS
        self.exports: list[memoryview] = _NO_VIEWS
        #: Assigned directly by the parts, each change one that OP_TRANSITIONS
        #: allows; while invariants are checked (``Operations.checked``) each
        #: part checks its change first (:meth:`check_to`).
        self.state = POSTED

    def describe(self) -> str:
        return f"{self.kind} op{self.id} on socket {self.sock.handle:#x}"

    def check_to(self, state: OpState) -> None:
        """InternalError unless the transition table allows this op to become ``state``."""
        if state not in self.state.successors:
            raise _bad_transition(self, state)

    # The op as an APC (see _kernel.Apc).
    def begin_routine(self) -> None:
        status = self.status
        err = 0 if status == 0 else C.wsa_error_of_ntstatus(status)  # (0, the usual status: no lookup)
        table = self.table
        table.reap(self)  # the routine is the program's one notification
        if table.trace.enabled:
            table.kernel.record("routine", self.kind, self.sock.handle, self.id, f"dwError={err} cb={self.nbytes}")
        self._err = err

    def call_routine(self) -> None:
        self.routine(self._err, self.nbytes, self.ov, 0)  # type: ignore[misc]
        if self.done_ns:  # its routine has returned: the program has handled the send's completion
            self.handled()

    def handled(self) -> None:
        """The program has handled this op's completion, a send that completed with bytes (``done_ns``):
        its socket's ``send_handled_ns`` counts it (a record for observers: FakeWinsock.send_handled_ns).
        When: its completion routine has returned; or the thread it was delivered to
        (``ThreadState.delivered``) waits again (``ThreadState.handled_delivered``)."""
        sock = self.sock
        before = sock.send_handled_ns
        if self.done_ns > before:
            log = sock.send_handled_log
            if log is None:
                log = sock.send_handled_log = []
            elif len(log) >= HANDLED_LOG:
                del log[0]
            log.append((self.reaped_ns, before))
            sock.send_handled_ns = self.done_ns


def _bad_transition(op: Operation[S], state: OpState) -> InternalError:
    return InternalError(f"{op.describe()}: state {op.state} cannot become {state} "
                         "(not in the operation transition table)")


class Operations(Generic[S]):
    """The operations of one fake: see the module docstring."""

    def __init__(self, kernel: Kernel, checked: bool = False) -> None:
        self.kernel = kernel
        #: With ``checked`` (the project's tests: invariants on), every change of
        #: state the parts make is checked against OP_TRANSITIONS (:meth:`Operation.check_to`);
        #: otherwise they assign ``op.state``, which costs nothing.
        self.checked = checked
        self.trace = kernel.trace
        self.stats = kernel.stats
        self.by_ov: dict[int, Operation[S]] = {}  # address of a WSAOVERLAPPED -> its last op, until reaped
        self._next_op = 0
        self._copied = 0  # bytes held by buffer snapshots that are copies
        #: Completes an armed op (computes its result and finishes it); the socket part installs it.
        self.complete: Callable[[Operation[S]], None] = _no_completion
        #: Queues a completed op's packet (the completion-port part installs it
        #: with the first port): ``port_hook(op, completed_inside_its_call)``.
        self.port_hook: Callable[[Operation[S], bool], None] | None = None

    def new(self, kind: str, sock: S, ov: WSAOVERLAPPED, routine: CompletionRoutine | None,
            ts: ThreadState) -> Operation[S]:
        self._next_op += 1
        return Operation(self, self._next_op, kind, sock, ov, routine, ts)

    def post(self, kind: str, sock: S, ov: WSAOVERLAPPED, routine: CompletionRoutine | None, ts: ThreadState,
             key: int, bufs: list[memoryview], total: int) -> Operation[S] | int:
        """:meth:`new`, :meth:`bind_event` and :meth:`register` in one call (a
        WSARecv or WSASend: once per post): the new op, registered, with its
        buffers; or the error binding its event gave (it is then not registered)."""
        self._next_op += 1
        op = Operation(self, self._next_op, kind, sock, ov, routine, ts)
        h = ov.hEvent
        if routine is None and h & ~1:
            err = self.bind_event(op, kind)
            if err:
                return err
        else:
            op.ev_handle = h  # what bind_event does for a routine or no event
        sock.handle_signaled = False  # a request starts on the handle (see HasHandle)
        op.bufs = op.exports = bufs
        op.total = total
        ov.Internal = C.STATUS_PENDING  # register, inline
        op.key = key
        self.by_ov[key] = op
        return op

    def check_ov(self, call: str, s: int, ov: object) -> int:
        """Refuse an OVERLAPPED still in use; its address (the key of ``by_ov``)."""
        if not isinstance(ov, WSAOVERLAPPED):
            if ov is None:
                raise NotEmulatedError(
                    f"{call} on socket {s:#x} without an OVERLAPPED (blocking I/O) is not emulated"
                )
            raise TypeError(f"{call}: lpOverlapped must be a WSAOVERLAPPED, not {type(ov).__name__}")
        key = _addressof(ov)
        prev = self.by_ov.get(key)
        if prev is not None:
            if prev.state.in_flight:
                raise WinsockUsageError(
                    f"{call} on socket {s:#x}: the WSAOVERLAPPED is still in use by the pending "
                    f"{prev.describe()}; reusing it corrupts memory on Windows"
                )
            if prev.in_port:
                raise WinsockUsageError(
                    f"{call} on socket {s:#x}: the WSAOVERLAPPED's last operation, {prev.describe()}, "
                    "has its completion packet still queued on a completion port; on Windows "
                    "GetQueuedCompletionStatus would hand this OVERLAPPED to the code that handles the "
                    "old operation (was an immediate success handled inline and left to the port too?)"
                )
        return key

    def bind_event(self, op: Operation[S], call: str) -> int:
        """Attach the OVERLAPPED's event (event notification). 0 or an error."""
        h = op.ov.hEvent
        op.ev_handle = h
        if op.routine is not None or not h:
            return 0
        # The low bit only keeps a completion port from being told (see _iocp):
        # the event is the handle without it.
        h &= ~1
        if not h:
            return 0
        ev = self.kernel.objects.get(h)
        if not isinstance(ev, Event):
            if h in self.kernel.closed_events:
                raise WinsockUsageError(
                    f"{call} on socket {op.sock.handle:#x}: the OVERLAPPED's hEvent {h:#x} "
                    "was closed with WSACloseEvent"
                )
            # The I/O manager references hEvent as an event before the request
            # starts: STATUS_INVALID_HANDLE (names nothing) or
            # STATUS_OBJECT_TYPE_MISMATCH (another kind of object), which
            # ws2_32's status map makes WSAENOTSOCK (Wine's sock.c
            # test_WSAGetOverlappedResult, run on Windows, for the map; Wine 8.0
            # measured: WSAENOTSOCK for WSARecv, WSASend and AcceptEx;
            # docs/semantics-findings.md section 57).
            #
            # Divergence from real Windows (unverified): no Windows-run test posts
            # an operation with such an hEvent; that the provider maps this
            # failure as WSAGetOverlappedResult maps a status is inferred.
            return C.WSAENOTSOCK
        op.event = ev
        ev.signaled = False  # starting an overlapped operation resets its event
        return 0

    def register(self, op: Operation[S], key: int) -> None:
        ov = op.ov
        # InternalHigh is left as it was until completion writes the byte
        # count (Wine's test_nonblocking_async_recv, on Windows).
        ov.Internal = C.STATUS_PENDING
        op.key = key
        self.by_ov[key] = op
        op.sock.handle_signaled = False  # a request starts on the handle (see HasHandle)

    def arm(self, op: Operation[S]) -> None:
        """The op's condition holds: it becomes ready after a completion delay."""
        if op.state is ARMED:
            return
        if self.checked:
            op.check_to(ARMED)
        op.state = ARMED
        kernel = self.kernel
        delay = kernel.chooser.span(kernel.config.completion_delay, "delay")
        if delay <= 0:  # ready at once, else ready once the delay is over: once per operation that pends
            kernel.ready.append((self.complete, op))
        else:
            kernel.call_at(kernel.now_ns + delay, kernel._delay_over, (self.complete, op))

    def finish(self, op: Operation[S], status: int, n: int, what: str, data: bytes = b"") -> None:
        """Write the result into the OVERLAPPED (and received bytes into the
        buffers), then notify: queue the completion routine, or signal the event."""
        ov = op.ov
        if ov.Internal != C.STATUS_PENDING or ov.hEvent != op.ev_handle:
            raise WinsockUsageError(
                f"{op.describe()}: its WSAOVERLAPPED was modified while the operation was in "
                f"flight (Internal={ov.Internal:#x}, hEvent={ov.hEvent:#x}); Windows would "
                "write into it later"
            )
        if self.checked:  # before anything is written
            op.check_to(COMPLETED)
        if op.snapshot is not None:
            self._check_snapshot(op)
        if data:
            bufs = op.bufs
            if len(bufs) == 1 and len(data) <= len(bufs[0]):  # one buffer, the usual case
                bufs[0][:len(data)] = data
                bufs = _NO_VIEWS
            pos = 0
            for b in bufs:
                if pos >= len(data):
                    break
                k = min(len(b), len(data) - pos)  # 0 for an empty WSABUF: the next one is filled
                b[:k] = data[pos:pos + k]
                pos += k
        for m in op.exports:
            m.release()
        op.exports = _NO_VIEWS
        op.status = status
        op.nbytes = n
        op.state = COMPLETED
        ov.Internal = status
        ov.InternalHigh = n
        if n and not status and op.kind == "WSASend" and not op.sock.close_deferred:
            op.sock.send_done_ns = op.done_ns = self.kernel.now_ns  # (records for observers: nothing reads
            # them to decide)
        if op.event is None:  # no event: the I/O manager signals the handle itself (see HasHandle)
            op.sock.handle_signaled = True
        self.stats["completed"] += 1
        tracing = self.trace.enabled
        record = self.kernel.record
        if tracing:
            record(what, op.kind, op.sock.handle, op.id, f"status={status:#x} bytes={n}", thread=op.thread.index)
        if op.routine is not None:
            if op.thread.exited:  # --- threads: its thread has exited, the routine never runs (afd.c)
                self.reap(op)
                if tracing:
                    record("dropped", op.kind, op.sock.handle, op.id, "completion routine: thread exited",
                           thread=op.thread.index)
                return
            op.thread.apcs.append(op)
            if op.thread.prog is not None:  # --- threads: its thread may be blocked in an alertable wait
                self.kernel.sched.poke_thread(op.thread)  # type: ignore[union-attr]
            if tracing:
                record("queued", op.kind, op.sock.handle, op.id, "completion routine", thread=op.thread.index)
        elif op.event is not None:
            self.kernel.signal(op.event)
            if tracing:
                record("signalled", "event", op.event.handle, op.id, thread=op.thread.index)
        port_hook = self.port_hook
        if port_hook is not None:
            port_hook(op, what == "immediate")

    def snapshot(self, op: Operation[S]) -> None:
        """Remember each buffer the program could still change while the
        operation pends: a copy (the fastest to compare), or, once the copies
        held for operations in flight reach ``_COPY_BUDGET`` bytes, a CRC-32
        (a few bytes whatever the size, ten times the time); nothing for
        ``bytes``, which nothing can change.  Only operations that pend are
        snapshot: one that completes inside its call leaves the program no
        moment to touch its buffers.

        A whole bytearray (up to 1 MiB) whose end is zeros (a receive buffer of
        short lines, a new buffer) is copied only up to its zero tail: a copy shorter than
        its buffer means "and zeros after it" (see :func:`_zero_tail_from`).
        The check at completion then reads the buffer once against a shared
        block of zeros, hot in the cache, instead of against a cold copy as
        big as the buffer; and the copies held stay small, so thousands of
        pending receives need no CRC-32."""
        snap: list[bytes | int | None] = []
        for b in op.bufs:
            whole = b.obj
            if type(whole) is bytes:
                snap.append(None)
                continue
            n = len(b)
            if type(whole) is bytearray and len(whole) == n and n <= _ZERO_TAIL_MAX:
                n = _zero_tail_from(whole)
                if self._copied + n <= _COPY_BUDGET:
                    snap.append(b[:n].tobytes() if n else b"")
                    self._copied += n
                    continue
            elif self._copied + n <= _COPY_BUDGET:
                snap.append(b.tobytes())
                self._copied += n
                continue
            snap.append(_crc32(b))
        op.snapshot = snap

    def _check_snapshot(self, op: Operation[S]) -> None:
        snap = op.snapshot
        assert snap is not None
        for before in snap:  # drop_snapshot, inline: once per pending op
            if type(before) is bytes:
                self._copied -= len(before)
        op.snapshot = None
        for i, b in enumerate(op.bufs):
            before = snap[i]
            if before is None:
                continue
            if type(before) is bytes:
                whole = b.obj
                # A view of a whole bytearray (the usual receive buffer) is compared in place, its
                # copy (maybe only up to a zero tail) with its start, the rest with zeros: one pass
                # over the buffer, no copy of it (16 KiB per receive).
                if type(whole) is bytearray and len(whole) == len(b):
                    k = len(before)
                    same = whole.startswith(before) and (k == len(whole) or whole.endswith(_ZEROS[:len(whole) - k]))
                else:
                    same = before == b.tobytes()
            else:
                same = before == _crc32(b)
            if not same:
                what = "lpOutputBuffer" if op.kind == "AcceptEx" else f"lpBuffers[{i}]"
                raise WinsockUsageError(
                    f"{op.describe()}: {what} was modified while the operation was in flight; "
                    "on Windows the kernel reads or writes it until completion"
                )

    def drop_snapshot(self, op: Operation[S]) -> None:
        for before in op.snapshot or ():
            if type(before) is bytes:
                self._copied -= len(before)
        op.snapshot = None

    def reap(self, op: Operation[S]) -> None:
        """The program has read the result: the OVERLAPPED is free again."""
        if op.state is COMPLETED and not op.in_port:  # a queued packet keeps its OVERLAPPED
            op.state = REAPED  # (COMPLETED -> REAPED: allowed)
            op.reaped_ns = self.kernel.now_ns  # (a record for observers: nothing reads it to decide)
            if self.by_ov.get(op.key) is op:
                del self.by_ov[op.key]

    def pending(self) -> list[str]:
        """The operations still in flight, oldest first."""
        return [op.describe() for op in sorted(self.by_ov.values(), key=lambda o: o.id)
                if op.state.in_flight]


#: How many of the times a socket's ``send_handled_ns`` moved on it keeps (``send_handled_log``).
HANDLED_LOG = 4
#: Buffers up to this size may be snapshot up to their zero tail (larger ones are copied whole).
_ZERO_TAIL_MAX = 1 << 20
#: Shared zeros to compare buffers' tails with, sliced to length (``bytes`` of this size is
#: ``calloc``'d: its untouched pages cost no memory, and read as the one zero page).
_ZEROS = memoryview(bytes(_ZERO_TAIL_MAX))
#: Where :func:`_zero_tail_from` looks for the start of a buffer's zero tail (then: the whole buffer).
_TAIL_STARTS = (64, 512, 4096)


def _zero_tail_from(buf: bytearray) -> int:
    """A length ``k`` such that ``buf[k:]`` is all zeros: the first of
    ``_TAIL_STARTS`` that is (no shorter one is looked for: a try costs more
    than copying 64 bytes), else ``len(buf)``.  Each try is a ``memcmp``
    against shared zeros that stops at the tail's first non-zero byte."""
    n = len(buf)
    for k in _TAIL_STARTS:
        if k >= n:
            break
        if buf.endswith(_ZEROS[:n - k]):  # (a slice, not a helper's call: up to three tries per pending receive)
            return k
    return n


def _no_completion(op: Operation[S]) -> None:
    raise AssertionError(f"{op.describe()} armed before a socket part installed Operations.complete")
