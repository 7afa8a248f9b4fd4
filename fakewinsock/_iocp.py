"""Completion ports of the fake kernel.

Owns: :class:`Port` (a handle in the kernel's table: its FIFO queue of
completion packets and its concurrency value), :class:`Binding` (what a
socket was given by CreateIoCompletionPort and
SetFileCompletionNotificationModes: its port, its completion key, its
notification modes), :class:`Packet`, and :class:`Ports`, the logic: create a
port, associate a socket, queue the packet of a completed operation
(:meth:`Ports.completed`, which :meth:`Operations.finish` calls), post a
packet, take one, close a port.

May call: the kernel (handle table, trace, counters) and the operations part
(reaping an operation whose packet was taken).  It knows operations through
:class:`fakewinsock._ops.Operation` and a socket only as the object in
``op.sock`` with a ``handle`` and a ``iocp`` slot (its :class:`Binding`).
The waits (GetQueuedCompletionStatus(Ex)) are the API's: they block through
:meth:`Kernel.block` like every other wait.

What Windows does, and where it is shown:

* A completed operation of an associated socket queues a packet (key,
  OVERLAPPED, byte count, status), also when it completed inside its call
  (Wine's sock.c ``test_completion_port``: an immediate WSARecv, data or EOF,
  still yields a packet), also after the socket was closed (AcceptEx on a
  closed listener: a failed packet, ERROR_OPERATION_ABORTED), also when the
  socket was associated after the operation was posted (same test: the port
  is looked up when the operation completes).  An operation that fails inside
  its call queues nothing (same test: WSAECONNRESET, WSAENOTCONN).  AcceptEx's
  packet carries the listening socket's key, not the accept socket's.
* The packet of a failed operation is dequeued as FALSE with the OVERLAPPED,
  the key and the byte count set and ``RtlNtStatusToDosError(Internal)`` in
  the last error (ERROR_NETNAME_DELETED for a reset, 995 for a cancellation,
  1236 for a receive ended by a local close); a successful one as TRUE,
  leaving the last error untouched; a timeout as FALSE, WAIT_TIMEOUT, with
  ``lpOverlapped`` NULL (``test_completion_port``, ``iocp_async_read``).
* An OVERLAPPED whose ``hEvent`` has its low bit set queues no packet; its
  event (the handle without that bit) is still signalled (sock.c
  ``test_connect_completion_port``, ``test_shutdown_completion_port``).
  The OVERLAPPED's event is signalled for every completion, port or not (the
  same tests wait on it).
* FILE_SKIP_COMPLETION_PORT_ON_SUCCESS: an operation that succeeds inside its
  call queues no packet; one that pends still does (Microsoft's
  SetFileCompletionNotificationModes; ``test_connect_completion_port``).
  It skips only the port's packet: on a socket without a port (one that uses
  completion routines) a routine is still queued for an immediate success
  (the page's first condition, a port associated; docs/semantics-findings.md
  section 30).
  FILE_SKIP_SET_EVENT_ON_HANDLE leaves the socket handle itself unsignalled;
  an explicit hEvent is still signalled (Microsoft's documentation).  A mode
  once set cannot be removed (ntdll tests/file.c
  ``test_file_completion_information``; docs/semantics-findings.md section 40).
* A completion routine on an associated socket: WSARecv/WSASend fail at once
  with WSAEINVAL and the routine is never called (sock.c ``test_WSARecv``).
* An operation posted with a completion routine on a socket that is
  associated only afterwards completes through its routine (at the next
  alertable wait) and queues no packet (ntdll tests/file.c
  ``test_file_io_completion``: NtReadFile with an APC, then the handle
  associated; docs/semantics-findings.md section 38).
* A second association of a socket fails with ERROR_INVALID_PARAMETER (kernel32
  sync.c ``test_iocp_callback``, BindIoCompletionCallback on a bound file).
* Packets are dequeued in FIFO order (Microsoft, "I/O Completion Ports"); the
  order in which operations complete is the scheduler's (the chooser's).
* A port closed while GetQueuedCompletionStatus waits on it: FALSE,
  ``lpOverlapped`` NULL, ERROR_ABANDONED_WAIT_0 (Microsoft's
  GetQueuedCompletionStatus remarks).

Divergence from real Windows:

* A port closed with packets in it drops them at once (on Windows the port
  object lives on while associated sockets reference it, but nothing can
  dequeue from it any more): their operations are reaped, their OVERLAPPEDs
  free again.  A later completion of a socket associated with a closed port
  is dropped likewise.
* Reusing an OVERLAPPED whose packet is still queued raises
  WinsockUsageError: in C the packet would hand the new operation's
  OVERLAPPED to the code that handles the old one (handling an immediate
  success inline *and* from the port, the classic IOCP bug).
* ``NumberOfConcurrentThreads`` 0 means the number of processors: the fake's
  machine has :data:`PROCESSORS`.
* Packets are dequeued strictly in FIFO order.  Microsoft's "I/O Completion
  Ports" says that packets queued in FIFO order "may be dequeued in a
  different order" without saying when; no source we read shows a
  reordering of one port's queue, so the fake draws none (the order in which
  threads then handle their packets is the scheduler's, drawn).
* The completion key and the byte count are the C types' (ULONG_PTR of a
  64-bit machine, DWORD): a Python int beyond them wraps as the C cast does
  (the real backend passes them through ctypes); so does a wait's
  ``dwMilliseconds`` (-1 is INFINITE).

With program threads (fakewinsock._threads): threads waiting on a port are
released most recent first (LIFO), only while fewer than the concurrency value
of the threads it released are running.  A released thread counts until it
calls GetQueuedCompletionStatus(Ex) again (on any port) or exits; while it is
blocked in another wait (a critical section, Sleep, WaitFor*, a blocking
Winsock call; not a wait with a zero timeout, which Windows never blocks in)
or suspended it does not count, so a waiter may be released
meanwhile, and when it runs again the port may briefly have more running
threads than its value (Microsoft, "I/O Completion Ports": "if another running
thread associated with the same I/O completion port enters a wait state for
other reasons, for example the SuspendThread function ... there may be a brief
period when the number of active threads exceeds the concurrency value").  A
packet is granted to a waiter at
the scheduling point where the scheduler finds it (``Ports.try_grant``, the
waiter's latched condition); which thread runs when is the chooser's choice.
A port closed while threads wait on it releases them all with
ERROR_ABANDONED_WAIT_0.  An operation on a socket with a port and an
OVERLAPPED without an event survives the exit of the thread that posted it
(afd.c test_async_thread_termination); other I/O is cancelled at thread exit.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from . import _constants as C
from ._kernel import Kernel, ThreadState
from ._threads import SUSPENDED
from ._types import WSAOVERLAPPED

if TYPE_CHECKING:
    from ._ops import Operation, Operations
    from ._sockets import Socket
    from ._threads import ProgramThread

__all__ = ["Port", "Packet", "Binding", "Ports", "Waiter", "PROCESSORS", "win32_error_of_ntstatus"]

#: The fake machine's processor count (CreateIoCompletionPort's NumberOfConcurrentThreads 0).
PROCESSORS = 4
_ERROR_MR_MID_NOT_FOUND = 317  # what RtlNtStatusToDosError gives for a status it has no entry for


def win32_error_of_ntstatus(status: int) -> int:
    """RtlNtStatusToDosError for the statuses the fake's operations end with."""
    return C.NTSTATUS_TO_WIN32.get(status & 0xFFFFFFFF, _ERROR_MR_MID_NOT_FOUND)


def _running(ts: ThreadState, granted_in: dict[int, object]) -> bool:
    """Whether a thread a port released counts against its concurrency value:
    not while it is in a wait other than the port wait that released it
    (``prog.wait`` is set for a whole wait, also while the thread itself moves
    the world on; a thread just granted packets is still in its port wait until
    it runs) nor while it is suspended.  A wait with a zero timeout (a poll:
    WaitForSingleObject(h, 0), Sleep(0)) is no wait state on Windows: the
    thread goes on counting."""
    pt = ts.prog
    if pt is None:
        return True
    wait = pt.wait
    return (wait is None or wait.polls or wait is granted_in.get(ts.index)) and pt.state is not SUSPENDED


class Packet:
    """One completion packet: what GetQueuedCompletionStatus hands out."""

    __slots__ = ("key", "ov", "nbytes", "status", "op")

    def __init__(self, key: int, ov: WSAOVERLAPPED | None, nbytes: int, status: int,
                 op: Operation[Socket] | None) -> None:
        self.key = key
        self.ov = ov
        self.nbytes = nbytes
        self.status = status
        self.op = op  # the operation it completes; None for a posted packet

    def describe(self) -> str:
        what = self.op.describe() if self.op is not None else "posted packet"
        return f"{what} (key={self.key:#x} bytes={self.nbytes} status={self.status:#x})"


class Waiter:
    """A thread in GetQueuedCompletionStatus(Ex) on a port: what it was granted."""

    __slots__ = ("ts", "count", "got", "abandoned")

    def __init__(self, ts: ThreadState, count: int) -> None:
        self.ts = ts
        self.count = count  # at most this many packets (GetQueuedCompletionStatusEx's ulCount)
        self.got: list[Packet] = []
        self.abandoned = False  # the port was closed while it waited


class Port:
    """An I/O completion port: a handle in the kernel's table, its packets,
    the threads waiting on it (the most recent last) and the threads it
    released that count against its concurrency value.

    The handle is also waitable (WaitForSingleObject(Ex), WaitForMultipleObjects(Ex),
    WSAWaitForMultipleEvents): signalled while packets are queued, and such a
    wait takes none (``signaled``; ``waiters`` are the program threads blocked
    in such a wait, as an event's)."""

    __slots__ = ("handle", "concurrency", "packets", "closed", "waiting", "active", "waiters")

    def __init__(self, handle: int, concurrency: int) -> None:
        self.handle = handle
        self.concurrency = concurrency
        self.packets: deque[Packet] = deque()
        self.closed = False
        self.waiting: list[Waiter] = []  # not "waiters": that name is the threads scheduler's wake-up list
        self.active: list[ThreadState] = []
        #: Program threads blocked in a wait on the port's handle (see _threads.waiting_on).
        self.waiters: ProgramThread | list[ProgramThread] | None = None

    @property
    def signaled(self) -> bool:
        """What a wait on the port's handle sees: packets are queued, or the
        port was closed while the wait went on (Wine's ntdll tests/sync.c
        test_completion_port_scheduling: such a wait returns WAIT_OBJECT_0).

        Divergence from real Windows: a packet queued while a thread waits in
        GetQueuedCompletionStatus goes to that thread (Windows hands it over
        inside PostQueuedCompletionStatus, the port never signalled: ReactOS's
        IoCompletion API test, which runs on Windows); the fake grants packets at
        the next scheduling point, so a thread waiting on the handle may see the
        port signalled in between."""
        return bool(self.packets) or self.closed

    def describe(self) -> str:
        return f"completion port {self.handle:#x}" + (" (closed)" if self.closed else "")


class Binding:
    """A socket's completion port, key and notification modes."""

    __slots__ = ("port", "key", "modes")

    def __init__(self) -> None:
        self.port: Port | None = None
        self.key = 0
        self.modes = 0


class Ports:
    """The completion-port logic of one fake: see the module docstring."""

    def __init__(self, kernel: Kernel, ops: Operations[Socket]) -> None:
        self.kernel = kernel
        self.ops = ops
        self.trace = kernel.trace
        #: The port each thread was last released by (thread number -> port).
        self.thread_port: dict[int, Port] = {}
        #: The wait (GetQueuedCompletionStatus(Ex)'s) in which each thread was last granted packets.
        self.granted_in: dict[int, object] = {}

    # ------------------------------------------------------------ ports and sockets

    def create(self, concurrency: int) -> Port:
        kernel = self.kernel
        port = Port(kernel.new_handle(), concurrency or PROCESSORS)
        kernel.objects[port.handle] = port
        # From now on a completion may queue a packet (programs with no port
        # never pay for the check).
        self.ops.port_hook = self.completed
        return port

    @staticmethod
    def binding(sock: Socket) -> Binding:
        b = sock.iocp
        if b is None:
            b = sock.iocp = Binding()
        return b

    def associate(self, sock: Socket, port: Port, key: int) -> bool:
        """Associate; False if the socket already has a port."""
        b = self.binding(sock)
        if b.port is not None:
            return False
        b.port = port
        b.key = key
        return True

    def close(self, port: Port) -> None:
        """CloseHandle on a port: its handle goes, its packets are dropped."""
        port.closed = True
        del self.kernel.objects[port.handle]
        for w in port.waiting:
            w.abandoned = True  # GetQueuedCompletionStatus returns ERROR_ABANDONED_WAIT_0
        port.waiting = []
        port.active = []
        dropped = port.packets
        port.packets = deque()
        for pkt in dropped:
            if pkt.op is not None:
                pkt.op.in_port = False
                self.ops.reap(pkt.op)
            if self.trace.enabled:
                self.kernel.record("dropped", "packet", port.handle, pkt.op.id if pkt.op else 0,
                                   "port closed: " + pkt.describe())

    # ------------------------------------------------------------ packets

    def completed(self, op: Operation[Socket], immediate: bool) -> None:
        """An operation completed (its result is written, its event signalled):
        queue its packet if its socket has a port and nothing suppresses it."""
        b = op.sock.iocp
        if b is None or b.port is None or op.routine is not None:
            return
        if op.ev_handle & 1:
            why = "hEvent low bit"
        elif immediate and b.modes & C.FILE_SKIP_COMPLETION_PORT_ON_SUCCESS and op.status < 0x80000000:
            why = "FILE_SKIP_COMPLETION_PORT_ON_SUCCESS"
        elif b.port.closed:
            why = "port closed"
        else:
            op.in_port = True
            b.port.packets.append(Packet(b.key, op.ov, op.nbytes, op.status, op))
            self.kernel.wake(b.port)  # its handle is signalled (threads waiting on it look again)
            if self.trace.enabled:
                self.kernel.record("queued", op.kind, b.port.handle, op.id, f"key={b.key:#x}",
                                   thread=op.thread.index)
            return
        if self.trace.enabled:
            self.kernel.record("no packet", op.kind, b.port.handle, op.id, why, thread=op.thread.index)

    def post(self, port: Port, nbytes: int, key: int, ov: WSAOVERLAPPED | None) -> None:
        port.packets.append(Packet(key, ov, nbytes, 0, None))
        self.kernel.wake(port)

    def take(self, port: Port) -> Packet:
        """Dequeue the oldest packet; its operation is reaped (the program has its result)."""
        pkt = port.packets.popleft()
        op = pkt.op
        if op is not None:
            op.in_port = False
            self.ops.reap(op)
        return pkt

    # ------------------------------------------------------------ waiting threads

    def begin_wait(self, port: Port, ts: ThreadState, count: int) -> Waiter:
        """A thread enters GetQueuedCompletionStatus(Ex): it no longer counts
        as running for the port that released it last, and joins the waiters
        (the most recent last)."""
        prev = self.thread_port.pop(ts.index, None)
        if prev is not None and ts in prev.active:
            prev.active.remove(ts)
        w = Waiter(ts, count)
        port.waiting.append(w)
        return w

    def try_grant(self, port: Port, w: Waiter) -> bool:
        """Whether the waiter is done: released by the port's closing, or given
        packets.  Packets go to the most recent waiter, and only while fewer
        released threads than the concurrency value run (Microsoft, "I/O
        Completion Ports": LIFO release, the concurrency value)."""
        if w.got or w.abandoned:
            return True
        if not port.packets or not port.waiting or port.waiting[-1] is not w:
            return False
        active = port.active
        if len(active) >= port.concurrency:
            active[:] = [t for t in active if not t.exited]  # an exited thread no longer counts
            # Nor one blocked in another wait, or suspended (see the module docstring).
            granted_in = self.granted_in
            if sum(1 for t in active if _running(t, granted_in)) >= port.concurrency:
                return False
        while port.packets and len(w.got) < w.count:
            w.got.append(self.take(port))
        port.waiting.pop()
        active.append(w.ts)
        prog = w.ts.prog
        self.granted_in[w.ts.index] = prog.wait if prog is not None else None
        self.thread_port[w.ts.index] = port
        return True

    def end_wait(self, port: Port, w: Waiter) -> None:
        """The wait ended without packets (timeout, completion routines): the
        thread runs again and, still associated with the port, counts against
        its concurrency value (unless the port was closed)."""
        if w in port.waiting:
            port.waiting.remove(w)
        if not port.closed and w.ts not in port.active:
            port.active.append(w.ts)
            self.thread_port[w.ts.index] = port

