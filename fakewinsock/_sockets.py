"""Sockets of the fake kernel: socket state and the per-socket queues of operations.

Owns: :class:`Socket` (state, local address, endpoint, listener, the queues of
pending receives, sends and accepts, shutdown flags, options) and
:class:`Sockets`, the logic that moves a socket's queued operations along:
re-examining the queues when something changed (:meth:`Sockets.changed`),
moving a send's bytes into the network as the window allows, computing the
result of a receive or an accept, completing the head of a queue, aborting
operations, and closing a socket.

Only the head of each queue can complete.  When the head's condition holds
(data or EOF or a reset has arrived; a send's bytes have all entered the
network; a connection is waiting in the backlog; the operation was given an
abort status) the operation is armed (:meth:`Operations.arm`).

The life of a socket: ``fresh`` (WSASocket) -> ``bound`` (bind) ->
``listening`` (listen); or ``fresh``/``bound`` -> ``connected`` (connect, or
AcceptEx into it); any -> ``closed`` (closesocket).

May call: the kernel, the operations part (arm, finish, snapshot), and the
network (transmit, FIN, RST, window, listeners).  Installs its completion in
:attr:`Operations.complete` and is an :class:`EndpointOwner` for its endpoints.
"""

from __future__ import annotations

import ctypes
from collections import deque
from enum import Enum
from typing import TYPE_CHECKING, TypeAlias

from . import _constants as C
from ._errors import InternalError
from ._kernel import Kernel
from ._net import ANY, Endpoint, Listener, Network
from ._ops import ARMED, PENDING, Operation, Operations
from ._types import SOCKADDR_IN, sockaddr_in

if TYPE_CHECKING:
    from ._iocp import Binding

__all__ = ["Socket", "Sockets", "SocketOp", "SocketState", "ended_send"]

SOCKADDR_IN_SIZE = ctypes.sizeof(SOCKADDR_IN)  # 16
MIN_ADDR_SLOT = SOCKADDR_IN_SIZE + 16  # what AcceptEx requires per address slot
_NO_QUEUE: tuple[()] = ()  # stands for the accept queue only a listener has



class SocketState(str, Enum):
    """Where a socket is in its life (see the module docstring)."""

    FRESH = "fresh"  # made by WSASocket (an AcceptEx may be using it as its accept socket)
    BOUND = "bound"  # bind() gave it a local address
    LISTENING = "listening"  # listen(): it has a Listener and an accept queue
    CONNECTED = "connected"  # connect() or AcceptEx: it owns an endpoint
    CLOSED = "closed"  # closesocket() (or the final WSACleanup): its handle is gone

    # Filled in below from the table (compared by identity: cheaper than hashing a member).
    successors: tuple[SocketState, ...]

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(self, spec)


FRESH, BOUND, LISTENING, CONNECTED, CLOSED = (SocketState.FRESH, SocketState.BOUND, SocketState.LISTENING,
                                              SocketState.CONNECTED, SocketState.CLOSED)
#: Every change of state a socket may make.
SOCKET_TRANSITIONS = (
    (FRESH, BOUND),  # bind
    (FRESH, CONNECTED),  # connect (binding implicitly), or accepted into by AcceptEx
    (BOUND, LISTENING),  # listen
    (BOUND, CONNECTED),  # connect
    (FRESH, CLOSED), (BOUND, CLOSED), (LISTENING, CLOSED), (CONNECTED, CLOSED),  # closesocket
)
for _state in SocketState:
    _state.successors = tuple(new for old, new in SOCKET_TRANSITIONS if old is _state)


class Socket:
    """A socket in the fake kernel."""

    __slots__ = (
        "layer", "handle", "overlapped", "state", "local", "ep", "listener",
        "recv_ops", "send_ops", "accept_ops", "accepted", "ctx_updated", "linger",
        "wr_shut", "rd_shut", "options", "accept_pending_on", "aborting", "close_deferred",
        "iocp", "connected_ns", "handle_signaled", "end_op", "send_done_ns",
        "send_handled_ns", "send_handled_log",
    )

    def __init__(self, layer: Sockets, handle: int, overlapped: bool) -> None:
        self.layer = layer
        self.handle = handle
        self.overlapped = overlapped
        self.state = FRESH
        self.local: tuple[str, int] | None = None
        self.ep: Endpoint | None = None
        self.listener: Listener | None = None  # made by listen()
        self.recv_ops: list[SocketOp] = []
        self.send_ops: list[SocketOp] = []
        # Made by listen(); the others share an empty tuple (an idle
        # connection should cost little: see benchmarks/).
        self.accept_ops: deque[SocketOp] = _NO_QUEUE  # type: ignore[assignment]
        self.accepted = False  # connected through AcceptEx
        self.ctx_updated = False  # SO_UPDATE_ACCEPT_CONTEXT done
        self.linger = (0, 0)
        self.wr_shut = False
        self.rd_shut = False
        self.options: dict[tuple[int, int], int] = {}
        self.accept_pending_on: SocketOp | None = None  # AcceptEx using this as accept socket
        self.aborting = False  # an op of this socket was given an abort status
        self.close_deferred = False  # closed with sends kept pending (FakeConfig.close_keeps_sends)
        self.iocp: Binding | None = None  # its completion port, key and notification modes (_iocp)
        self.connected_ns = -1  # the virtual time it became connected (SO_CONNECT_TIME); -1: never
        # Its handle's signalled state (_ops.HasHandle).  Divergence from real
        # Windows (unverified): a new socket's handle is taken as unsignalled;
        # only a wait on it with no operation started since could tell.  A new
        # pipe handle is signalled (Wine's ntdll read_pipe_test, on Windows),
        # but a socket's provider sends the driver requests with events of its
        # own from WSASocket on (ReactOS's msafd), which unsignal it; and the
        # fake's synchronous calls (bind, listen, setsockopt...) leave the state
        # alone where such requests may unsignal it (_api_waits._socket_wait).
        self.handle_signaled = False
        # The receive that returned the connection's end (0 bytes of a non-empty buffer: the peer's FIN),
        # once one has: FakeWinsock.end_taken looks at whether the program has reaped it.
        self.end_op: SocketOp | None = None
        # When one of its sends last completed with bytes (virtual time; 0: never):
        # FakeWinsock.send_completed_ns.  Set by Operations.complete; nothing reads it to decide.
        self.send_done_ns = 0
        # When the last of its sends that completed with bytes, of those the program has handled, completed
        # (virtual time; 0: none): FakeWinsock.send_handled_ns.  Set when the thread the completion was
        # delivered to waits again, or its routine returned (_ops.Operation.handled); nothing reads it to decide.
        self.send_handled_ns = 0
        # The last few times send_handled_ns moved on: (when the program got that completion, the value before),
        # oldest first (None: never).  FakeWinsock.send_handled_steps; nothing reads it to decide.
        self.send_handled_log: list[tuple[int, int]] | None = None

    def endpoint_changed(self, ep: Endpoint) -> None:
        self.layer.changed(self)

    def accept_waits_on(self, ep: Endpoint) -> bool:
        """Whether a pending AcceptEx of this listener with a receive length
        has taken ``ep`` (:meth:`Sockets.waiting_connection`'s converse)."""
        lst = self.listener
        if lst is None:
            return False
        k = 0
        for op in self.accept_ops:
            if op.abort_status:
                continue
            if k >= len(lst.backlog):
                return False
            if lst.backlog[k] is ep:
                return op.recv_data_len > 0
            k += 1
        return False

    def to(self, state: SocketState) -> None:
        """Change state, as the transition table allows (InternalError otherwise)."""
        if state in self.state.successors:
            self.state = state
        else:
            raise InternalError(f"{self.describe()}: state {self.state} cannot become {state} "
                                "(not in the socket transition table)")

    def describe(self) -> str:
        return f"socket {self.handle:#x} ({self.state})"


#: An operation on a socket.
SocketOp: TypeAlias = Operation[Socket]


class Sockets:
    """The socket logic of one fake: see the module docstring."""

    def __init__(self, kernel: Kernel, ops: Operations[Socket], net: Network) -> None:
        self.kernel = kernel
        self.ops = ops
        self.net = net
        self.config = kernel.config
        self.chooser = kernel.chooser
        self.trace = kernel.trace
        self.stats = kernel.stats
        config = kernel.config
        self._immediate = {kind: config.immediate_for(kind) for kind in ("AcceptEx", "WSARecv", "WSASend")}
        ops.complete = self.complete

    # ------------------------------------------------------------ state changes

    def bind(self, sock: Socket, local: tuple[str, int]) -> None:
        """bind(): the socket takes ``local`` (the first socket bound to an address keeps it)."""
        sock.local = local
        sock.to(BOUND)
        self.net.bound.setdefault(local, sock)
        self.net.on_port.setdefault(local[1], []).append(sock)

    def bind_implicitly(self, sock: Socket, port: int) -> None:
        """connect() on an unbound socket: it takes a loopback port, staying ``fresh``."""
        local = ("127.0.0.1", port)
        sock.local = local
        self.net.bound[local] = sock
        self.net.on_port.setdefault(port, []).append(sock)

    def listen(self, sock: Socket, backlog_max: int) -> Listener:
        """listen() on a bound socket."""
        assert sock.local is not None
        sock.to(LISTENING)
        sock.accept_ops = deque()
        # The first listener of an address gets the connections.
        lst = sock.listener = self.net.listen(sock.local, sock.handle, sock, backlog_max)
        return lst

    def open_connection(self, sock: Socket, host: str, port: int) -> Endpoint:
        """connect(): start the handshake from the socket's address."""
        assert sock.local is not None
        local_host = sock.local[0] if sock.local[0] != ANY else "127.0.0.1"
        return self.net.open_connection((local_host, sock.local[1]), (host, port), _ignore)

    @staticmethod
    def connected(sock: Socket, ep: Endpoint) -> None:
        """connect() succeeded: the socket owns the client end."""
        sock.ep = ep
        ep.owner = sock
        sock.to(CONNECTED)
        sock.connected_ns = sock.layer.kernel.now_ns
        sock.ctx_updated = True

    def shutdown(self, sock: Socket, sending: bool, receiving: bool) -> None:
        assert sock.ep is not None
        if sending:
            # The FIN goes behind the sends still pending (Microsoft's shutdown
            # page: after all data is sent; Wine keeps its SHUT_WR pending until
            # its write queue is empty): when the last of them completes.
            sock.wr_shut = True
            if not sock.send_ops:
                self.net.send_fin(sock.ep)
        if receiving:
            # Windows sends nothing to the peer, and a receive posted before
            # keeps working (Wine's test_shutdown); only new receives fail.
            # Divergence from Microsoft's docs, which say later data resets.
            sock.rd_shut = True

    # ------------------------------------------------------------ posting

    def accept_at_once(self, lst: Socket, op: SocketOp) -> bool:
        """Complete a new AcceptEx inside its call, if a connection is there and
        the chooser (under FakeConfig.immediate) says so.

        Only a success completes inside the call (TRUE): an accept that takes a
        connection reset in the backlog (``Endpoint.fail_accept``) pends and
        fails with the reset, as IOCP servers see it (section 3).  Divergence
        from real Windows (unverified): Microsoft's AcceptEx page also lets the
        call itself fail with WSAECONNRESET; whether that notifies anything is
        untested, and the fake never does it (section 55)."""
        small = 0 < op.local_addr_len < MIN_ADDR_SLOT or op.remote_addr_len < MIN_ADDR_SLOT
        if (not small and not lst.accept_ops and self.accept_satisfiable(lst, op)
                and not (lst.listener is not None and lst.listener.backlog[0].fail_accept)
                and self.chooser.boolean(self._immediate["AcceptEx"], "immediate:AcceptEx")):
            status, n = self.accept_result(op)
            self.ops.finish(op, status, n, "immediate")
            self.stats["immediate"] += 1
            return True
        return False

    def recv_at_once(self, sock: Socket, op: SocketOp) -> int:
        """Complete a new WSARecv inside its call if its data (or EOF) is there
        and the chooser says so: 0 if it did, -1 if it must pend.  (Never a
        reset: WSARecv fails before it when a reset has come and no receive is
        queued, and nothing arrives between the two.)"""
        ep = sock.ep  # a receive can complete: data, EOF or a reset
        if (not sock.recv_ops and ep is not None and (ep.rbuf or ep.eof or ep.reset)
                and self.chooser.boolean(self._immediate["WSARecv"], "immediate:WSARecv")):
            status, n, data = self.receive_result(op)
            self.ops.finish(op, status, n, "immediate", data)
            self.stats["immediate"] += 1
            self.changed(sock)
            return 0
        return -1

    def send_at_once(self, sock: Socket, op: SocketOp) -> bool:
        """Complete a new WSASend inside its call if the window takes all its
        bytes now and the chooser says so."""
        ep = sock.ep
        assert ep is not None
        if (not sock.send_ops and ep.room(self.config.window) >= op.total
                and self.chooser.boolean(self._immediate["WSASend"], "immediate:WSASend")):
            self.net.transmit(ep, gather(op, 0, op.total))
            op.moved = op.total
            self.ops.finish(op, 0, op.total, "immediate")
            self.stats["immediate"] += 1
            return True
        return False

    def pend(self, op: SocketOp, queue: list[SocketOp] | deque[SocketOp]) -> None:
        """The new operation pends at the end of its socket's queue."""
        if self.ops.checked:
            op.check_to(PENDING)
        op.state = PENDING
        queue.append(op)
        if self.config.check_buffers:
            self.ops.snapshot(op)
        self.stats["pending"] += 1
        if self.trace.enabled:
            self.kernel.record("pending", op.kind, op.sock.handle, op.id)
        self.changed(op.sock)

    def cancel(self, sock: Socket, ov: object | None, thread: object | None = None) -> int:
        """CancelIoEx: give the operations using ``ov`` (all when None) the
        status STATUS_CANCELLED; how many.  With ``thread`` (CancelIo), only
        those that thread posted.  The caller calls :meth:`changed`."""
        found = 0
        for q in (sock.recv_ops, sock.send_ops, sock.accept_ops):
            for op in q:
                if ((ov is None or op.ov is ov) and not op.abort_status and (thread is None or op.thread is thread)
                        and not ended_send(op)):
                    self.abort(op, C.STATUS_CANCELLED)
                    found += 1
        return found

    def changed(self, sock: Socket) -> None:
        """Re-examine a socket's queues after its state or endpoint changed."""
        if sock.recv_ops:
            op = sock.recv_ops[0]
            if op.state is PENDING:
                ep = sock.ep  # a receive can complete (data, EOF or a reset): the hottest test
                if op.abort_status or (ep is not None and (ep.rbuf or ep.eof or ep.reset)):
                    self.ops.arm(op)
        if sock.send_ops:
            self._pump_sends(sock)
        if sock.accept_ops:
            self._arm_accept(sock)
        if sock.aborting:
            sock.aborting = False
            for q in (sock.recv_ops, sock.send_ops, sock.accept_ops):
                for op in q:
                    if op.abort_status and op.state is PENDING:
                        self.ops.arm(op)

    def complete(self, op: SocketOp) -> None:
        """Finish an armed op now: compute its result, take it off its queue, notify."""
        if op.state is not ARMED:
            return
        sock = op.sock
        data = b""
        q: list[SocketOp] | deque[SocketOp]
        if op.kind == "WSARecv":
            status, n, data = self.receive_result(op)
            q = sock.recv_ops
        elif op.kind == "WSASend":
            status = op.abort_status
            n = op.total if not status else (self.cut_send_count(op) if op.moved else 0)
            q = sock.send_ops
        else:
            if not op.abort_status and not self.accept_satisfiable(sock, op):
                # The connection it was armed for went away (reset before it
                # was accepted, and dropped): wait for the next one.
                op.state = PENDING  # (ARMED -> PENDING: allowed)
                return
            status, n = self.accept_result(op)
            q = sock.accept_ops
        if q and q[0] is op:
            del q[0]
        elif op in q:
            q.remove(op)  # an aborted op behind the head
        else:
            raise InternalError(f"{op.describe()} completes but is not in its socket's {op.kind} queue")
        self.ops.finish(op, status, n, "completed", data)
        if (sock.close_deferred or sock.wr_shut) and not sock.send_ops and op.kind == "WSASend":
            if sock.close_deferred:
                sock.close_deferred = False
                self.close_endpoint(sock)  # the last kept send is done: close now
            elif sock.ep is not None:
                self.net.send_fin(sock.ep)  # shutdown(SD_SEND) waited for the sends pending then
        if sock.recv_ops or sock.send_ops or sock.accept_ops or sock.aborting:  # (else changed does nothing)
            self.changed(sock)

    @staticmethod
    def abort(op: SocketOp, status: int) -> None:
        """Make ``op`` complete with ``status`` (armed by the next :meth:`changed`).
        An op already ended keeps its first status: on Windows the operation
        ends when that happens (CancelIoEx, or the peer's reset, which fails a
        pending send at once); the completion delay only postpones the
        notification, so a closesocket meanwhile does not change the result.
        A send whose every byte has gone into the network has ended too, with
        success: on Windows its request completes once the transport took its
        data (so CancelIoEx no longer finds it), and the peer gets those bytes;
        a cancel, a close or a reset afterwards leaves it a success with every
        byte (see :func:`ended_send`)."""
        if ended_send(op):
            return
        if not op.abort_status:
            op.abort_status = status
        op.sock.aborting = True

    # ------------------------------------------------------------ receive

    def receive_result(self, op: SocketOp) -> tuple[int, int, bytes]:
        """A receive's result now: (NTSTATUS, bytes, the data taken from the endpoint)."""
        if op.abort_status:
            return op.abort_status, 0, b""
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
            if op.peek:
                return 0, n, data  # MSG_PEEK: a copy; the bytes stay queued (and keep the window full)
            del rbuf[:n]
            other = ep.other
            if other is not None and other.blocked:  # (what window_freed looks at first: most reads wake nobody)
                self.net.window_freed(ep)
            return 0, n, data
        if ep.reset:
            return ep.reset_status, 0, b""
        if op.total:
            op.sock.end_op = op  # (a zero-length receive's 0 bytes tell nothing)
        return 0, 0, b""  # EOF: the peer closed gracefully

    # ------------------------------------------------------------ send

    def _pump_sends(self, sock: Socket) -> None:
        """Move bytes of the queued sends into the network as the window allows."""
        ep = sock.ep
        for op in sock.send_ops:
            if op.abort_status:
                continue
            if ep is None or ep.reset:
                self.abort(op, ep.reset_status if ep is not None else C.STATUS_CONNECTION_RESET)
                continue
            if op.moved < op.total:
                room = ep.room(self.config.window)
                k = min(room, op.total - op.moved)
                if k <= 0 or k < min(self.config.window // 2, op.total - op.moved):
                    ep.blocked = True  # woken by Network.window_freed
                    return  # silly-window avoidance: wait for a worthwhile window
                self.net.transmit(ep, gather(op, op.moved, k))
                op.moved += k
            if op.moved >= op.total and op.state is PENDING:
                self.ops.arm(op)
            if op.moved < op.total:
                ep.blocked = True
                return

    def cut_send_count(self, op: SocketOp) -> int:
        """The byte count a send cut off half-way reports with its failure (a
        cancel, a close, a reset, its thread's exit), when ``op.moved`` of its
        bytes had gone into the network: the peer gets those bytes (unless the
        connection was reset), whatever the count says.

        Divergence from real Windows (unverified): no Windows-run test or page
        says what count such a send reports.  Wine 8.0 reports the bytes that
        went out (InternalHigh, WSAGetOverlappedResult's count, the packet's and
        the routine's count: seen for CancelIoEx and for the peer's reset, in
        tests/conformance/test_cut_send.py); the I/O manager's convention for a
        cancelled request is 0.  The chooser picks one of the two, so a
        program is tested against both; neither lets it assume that nothing
        reached the peer.

        Divergence from real Windows (unverified): the connection stays open
        and usable after such a cut (the peer reads the bytes that went out,
        then whatever is sent next), as under Wine 8.0 (measured by fidelity7: after a
        CancelIoEx of a 32 MiB send with 3.9 MB out, the peer read exactly
        that prefix and the connection went on).  Whether Windows' AFD aborts
        a connection whose send it cancelled half-way is in no Windows-run
        test (sock.c, afd.c) nor on Microsoft's CancelIoEx, WSASend or
        closesocket pages (searched again by fidelity8); a program must not
        rely on the connection after cutting a send off: close it.  (libuv's
        close relies on a cancel not aborting it: it cancels its writes and
        waits for their completions before closesocket precisely to avoid the
        reset a send still outstanding causes: docs/semantics-findings.md
        section 33.)  Once the socket is shut down for sending, a Windows-run
        test shows the cut does not abort it: dotnet/runtime's
        TcpPeerReceivesFinOnShutdownWithPendingData, in its synchronous
        variants, cancels a blocking send half-way (CancelIoEx) after
        Shutdown(Both), closes, and the peer reads data, then EOF (section
        35); without a shutdown first it stays unverified."""
        return self.chooser.pick_one((op.moved, 0), "cut-send-count")

    # ------------------------------------------------------------ accept

    def _arm_accept(self, sock: Socket) -> None:
        """Arm the first pending AcceptEx of the listener ``sock`` that can
        complete now, looking past those that wait for the first data of the
        connection they have taken: the k-th accept (not counting aborted ones)
        pairs with the backlog's k-th connection (:meth:`waiting_connection`),
        so a silent client holds up only its own AcceptEx (Wine 8.0 agrees;
        docs/semantics-findings.md section 56).  One at a time, as before: the
        next is armed when this one completes."""
        lst = sock.listener
        waiting = len(lst.backlog) if lst is not None else 0
        k = 0
        for op in sock.accept_ops:
            if op.state is PENDING and (op.abort_status or self.accept_satisfiable(sock, op, k)):
                self.ops.arm(op)
                return
            if op.state is not PENDING or op.abort_status or not op.recv_data_len or k + 1 >= waiting:
                return  # armed already, or nothing behind it can have a connection of its own
            k += 1

    @staticmethod
    def accept_slot(sock: Socket, op: SocketOp) -> int:
        """Which of the backlog's connections the AcceptEx ``op`` of ``sock``
        pairs with: the accepts before it in its queue, not counting aborted
        ones (for an op not queued yet: all of them)."""
        k = 0
        for other in sock.accept_ops:
            if other is op:
                break
            if not other.abort_status:
                k += 1
        return k

    @classmethod
    def accept_satisfiable(cls, sock: Socket, op: SocketOp, slot: int | None = None) -> bool:
        lst = sock.listener
        k = cls.accept_slot(sock, op) if slot is None else slot
        if lst is None or k >= len(lst.backlog):
            return False
        if op.recv_data_len == 0:
            return True
        ep = lst.backlog[k]
        return bool(ep.rbuf) or ep.eof or ep.reset

    @staticmethod
    def waiting_connection(acc: Socket) -> Endpoint | None:
        """The connection a pending AcceptEx with a receive length has taken into
        the accept socket ``acc`` and waits on for its first data, or None.

        Windows accepts the connection into the accept socket when the client
        connects and then waits for data; SO_CONNECT_TIME on the accept socket
        then counts from the connect (Microsoft's AcceptEx page: it is how a
        server finds a client that connected and sends nothing, to close it).
        The fake keeps such a connection in the listener's backlog until the
        accept completes: the pending accepts take the backlog's connections
        in the order they were posted (ReactOS's AFD: the head of the
        pre-accept list), so the k-th of them waits on the k-th connection."""
        op = acc.accept_pending_on
        if op is None or op.abort_status or not op.recv_data_len:
            return None
        lst = op.sock
        backlog = lst.listener.backlog if lst.listener is not None else None
        if not backlog:
            return None
        k = 0
        for other in lst.accept_ops:
            if other is op:
                return backlog[k] if k < len(backlog) else None
            if not other.abort_status:
                k += 1
        return None

    def accept_result(self, op: SocketOp) -> tuple[int, int]:
        """An accept's result now (NTSTATUS, bytes received): on success the
        first queued connection is the accept socket's."""
        if op.abort_status:
            acc = op.accept_sock
            if acc is not None and acc.accept_pending_on is op:
                acc.accept_pending_on = None
            return op.abort_status, 0
        listener = op.sock.listener
        acc = op.accept_sock
        assert acc is not None and op.out_buf is not None and listener is not None
        acc.accept_pending_on = None
        if 0 < op.local_addr_len < MIN_ADDR_SLOT or op.remote_addr_len < MIN_ADDR_SLOT:
            # The connection stays queued for a later accept.
            return C.STATUS_BUFFER_TOO_SMALL, 0
        k = self.accept_slot(op.sock, op)
        ep = listener.backlog[k]
        del listener.backlog[k]
        if ep.fail_accept:
            if self.trace.enabled:
                self.kernel.record("net", "accept-reset", listener.handle, op.id,
                                   f"conn=c{ep.conn_id} reset before accept")
            return C.STATUS_CONNECTION_RESET, 0  # the connection is consumed; the accept socket stays fresh
        n = 0
        if op.recv_data_len and ep.rbuf:
            n = min(op.recv_data_len, len(ep.rbuf))
            op.out_buf[:n] = ep.rbuf[:n]
            del ep.rbuf[:n]
            self.net.window_freed(ep)
        acc.ep = ep
        if not op.recv_data_len:
            ep.accepted_ns = self.kernel.now_ns  # (for tests: how long it waited in the backlog)
        acc.to(CONNECTED)
        acc.connected_ns = ep.established_ns  # SO_CONNECT_TIME counts from the handshake
        acc.accepted = True
        acc.local = ep.local
        ep.owner = acc
        local = bytes(sockaddr_in(*ep.local))
        remote = bytes(sockaddr_in(*ep.remote))
        buf = op.out_buf
        if op.local_addr_len:
            buf[op.recv_data_len:op.recv_data_len + SOCKADDR_IN_SIZE] = local
        r0 = op.recv_data_len + op.local_addr_len
        buf[r0:r0 + SOCKADDR_IN_SIZE] = remote
        if op.snapshot is not None:
            self.ops.drop_snapshot(op)  # written by us: nothing to compare after this
        if self.trace.enabled:
            self.kernel.record("net", "accept", acc.handle, op.id,
                               f"conn=c{ep.conn_id} remote={ep.remote[0]}:{ep.remote[1]}")
        if ep.rbuf or ep.eof or ep.reset:
            self.changed(acc)
        return 0, n

    # ------------------------------------------------------------ close

    def close(self, sock: Socket) -> None:
        """Close a socket: its pending operations are aborted, its connection
        closed (RST or FIN), its addresses freed.  The caller removes its handle.
        With ``FakeConfig.close_keeps_sends`` (Wine), pending sends stay and
        the connection is closed when the last of them completes."""
        state = sock.state
        sock.to(CLOSED)
        net = self.net
        if sock.local is not None:
            if net.bound.get(sock.local) is sock:
                del net.bound[sock.local]
            sharing = net.on_port.get(sock.local[1])
            if sharing is not None and sock in sharing:
                sharing.remove(sock)
        if state is LISTENING:
            assert sock.local is not None and sock.listener is not None
            net.close_listener(sock.local, sock.listener)
        for op in sock.accept_ops:
            # AcceptEx pending on a closed listener: STATUS_CANCELLED (995).
            self.abort(op, C.STATUS_CANCELLED)
        acc_op = sock.accept_pending_on
        if acc_op is not None:
            # The accept socket of a pending AcceptEx was closed: 995; when a
            # client is already connected and the accept waits for its first
            # data, Windows gives either 995 or connection aborted (1236/10053),
            # and the connection, which Windows had accepted into this socket
            # (Microsoft's AcceptEx page: close it to be rid of a client that
            # sends nothing), is closed with it: the next AcceptEx takes the
            # next client (Wine 8.0 agrees).  Divergence from real Windows
            # (unverified): what the client then reads is in no Windows-run
            # test; the fake sends a FIN with 995 (as Wine 8.0 does: the client
            # reads EOF) and a reset with connection aborted.
            status = C.STATUS_CANCELLED
            lst = acc_op.sock
            waiting = self.waiting_connection(sock)
            if waiting is not None:
                status = self.chooser.pick_one(
                    (C.STATUS_CANCELLED, C.STATUS_CONNECTION_ABORTED), "close-accept-socket")
                assert lst.listener is not None
                lst.listener.backlog.remove(waiting)
                waiting.owner = sock
                waiting.closed = True
                if status == C.STATUS_CANCELLED:
                    self.net.send_fin(waiting)
                else:
                    self.net.send_rst(waiting)
            self.abort(acc_op, status)
            self.changed(lst)
        # A receive or a send still outstanding (not completed, not cancelled;
        # a send whose every byte went out has completed) makes the close
        # abortive, a send only before shutdown for sending: see close_endpoint.
        outstanding = not sock.wr_shut and any(not op.abort_status and not ended_send(op) for op in sock.send_ops)
        for op in sock.recv_ops:
            if not op.abort_status:
                outstanding = True
            # A receive ended by a local close: STATUS_CONNECTION_ABORTED
            # (10053), not 995 (Wine's iocp_async_read_closesocket on Windows).
            self.abort(op, C.STATUS_CONNECTION_ABORTED)
        if sock.send_ops and self.config.close_keeps_sends:
            # Wine 8.0: the pending sends keep the connection open; the close
            # happens when the last of them completes (see complete).
            sock.close_deferred = True
        else:
            for op in sock.send_ops:
                # Windows completes every pending operation when the last handle
                # is closed (closesocket's remarks; IRP_MJ_CLEANUP), a send
                # still pending after shutdown(SD_SEND) too: the close does
                # not wait for it.  Its status is a receive's, connection
                # aborted: libuv 431b535a5 (2014) saw writes pending at
                # closesocket fail so on Windows, never as cancelled
                # (docs/semantics-findings.md section 31).  The count is
                # cut_send_count's.  Wine 8.0 keeps such a send pending
                # (close_keeps_sends), so no backend here shows Windows' status.
                self.abort(op, C.STATUS_CONNECTION_ABORTED)
            self.close_endpoint(sock, outstanding and not self.config.close_keeps_sends)  # Wine: FIN
        self.changed(sock)

    def close_endpoint(self, sock: Socket, outstanding: bool = False) -> None:
        """The connection side of closesocket: FIN, or RST when lingering {1,0},
        when received data was left unread, or when a receive or a send was
        still outstanding (``outstanding``).

        A close with a receive still pending resets the connection on Windows,
        even with nothing received and nothing unread: Go's CL 6604072 (2012,
        its issues 3710/3746: "that sequence results in connection being
        reset", fixed by CancelIo before closesocket) and libuv #3034/#3036
        (Windows 10: "sends an RST packet if there is an outstanding overlapped
        WSARecv call, even if no data is received", fixed by CancelIoEx
        first).  A receive that has ended before the close (completed, or
        cancelled by CancelIoEx/CancelIo, its completion not yet reaped: the
        event unwaited, the packet still queued, the routine not yet run) is
        not outstanding: the close is graceful.  That is libuv's Windows CI
        test tcp_close_after_read_timeout (libuv PR #3584; Windows Server
        2019 to 2025): CancelIoEx of the pending read, closesocket at once,
        and the peer reads EOF (docs/semantics-findings.md section 28;
        tests/conformance/test_close_after_cancel.py).  Wine 8.0 sends a FIN
        with a receive outstanding too (measured by fidelity8; a strict xfail
        in the conformance suite), and so does the fake under
        ``FakeConfig.close_keeps_sends`` (Wine's close).

        A close that ends a send still outstanding (its bytes not all gone
        out, not cancelled) resets the connection too: Microsoft's own
        account of closesocket (MSDN, June 1998, the Windows Sockets 2
        conference paper on closing: "under several circumstances, such as
        pending unreceived, outstanding send() calls, and more, a closesocket()
        will result in an abortive close") and libuv's maintainers, who
        changed libuv's close for it on Windows 10 (commit 99eb736b4, 2021:
        "Win32 sockets have an issue where it sends an RST packet if there is
        an outstanding overlapped calls ... we need to cancel writes
        explicitly ... so it doesn't also generate an RST packet on the
        wire"; uv__tcp_close: "If any overlapped req failed to cancel, calling
        `closesocket` now would cause Win32 to send an RST packet.  Try to
        avoid that for writes").  A send cancelled before the close, or whose
        every byte went out (completed, its notification not yet reaped), is
        not outstanding: the close is graceful, as libuv relies on.  (Until
        fidelity13 the fake closed gracefully here.)  Wine 8.0 keeps the send
        pending and closes when it completes (``close_keeps_sends``); a strict
        xfail in the conformance suite.

        Both resets are also what .NET's tests see on Windows, whose Dispose of
        a socket with an overlapped operation pending is a plain closesocket
        (dotnet/runtime @ 0b566aa670c0: SafeSocketHandle.CloseAsIs cancels and
        lingers {1, 0} only while a synchronous call holds the handle; an
        overlapped one holds no reference): SendReceive.cs,
        TcpReceiveSendGetsCanceledByDispose, a receive or a send pending at
        Dispose, the peer's receive fails with ConnectionReset (run on Windows
        in CI); and dotnet/corefx PR #37486 (2019, before .NET cancelled
        anything on Windows): "From CI results, on Windows: Dispose/Close with
        on-going operations causes an abortive close ('Connection reset by
        peer')".

        After shutdown for sending, a send still outstanding does not make the
        close abortive: the same file's TcpPeerReceivesFinOnShutdownWithPendingData
        (100 MB pending, Shutdown(Both), Dispose: the peer reads data, then
        EOF, on Windows too).  The send is still ended by the close (connection
        aborted, ``cut_send_count``'s count) and the peer reads the bytes that
        went out, then the FIN.  Divergence from real Windows (unverified):
        whether Windows sends the rest of such a send before its FIN (the test
        reads to EOF and counts nothing), and shutdown(SD_SEND) alone, which
        the fake treats as SD_BOTH here (the test shuts both; the receive half
        has no part in a send).

        Divergence from real Windows: SO_LINGER {1, N} with N > 0 closes
        gracefully at once, as {0, x} does.  On Windows (closesocket's page) a
        blocking-mode socket's closesocket then blocks until the data still
        buffered has been sent, and resets the connection if N seconds pass
        first; the fake neither blocks nor resets.
        """
        ep = sock.ep
        if ep is not None and not ep.closed:
            ep.closed = True
            if (sock.linger[0] and sock.linger[1] == 0) or ep.rbuf or outstanding:
                self.net.send_rst(ep)  # abortive close, unread data, or an operation outstanding: RST
            elif not ep.reset:
                self.net.send_fin(ep)


def _ignore(ep: Endpoint) -> None:
    pass


def ended_send(op: SocketOp) -> bool:
    """Whether ``op`` is a send that has ended with success though its
    notification is still due: armed, every byte moved into the network, not
    aborted before that.

    A send cancelled (or closed, or reset) with only part of its bytes moved
    has not ended: it completes with its failure status, and the count of
    :meth:`Sockets.cut_send_count`; the peer still gets the bytes that were
    moved."""
    return op.kind == "WSASend" and op.state is ARMED and op.moved >= op.total and not op.abort_status


def gather(op: SocketOp, start: int, k: int) -> bytes:
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
