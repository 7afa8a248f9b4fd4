"""Single-bug variants of ovserver planted by an eighth red team (issue 10):
bugs a developer of a Winsock overlapped-IO server ships, written from the
iocp model's code and the lecture notes (not from what the swarm draws): an
immediate WSASend taken as done at once (the port's
FILE_SKIP_COMPLETION_PORT_ON_SUCCESS mode assumed), GetQueuedCompletionStatus'
FALSE with an OVERLAPPED taken for the port failing (the worker ends), a
worker's finite wait whose time-out (FALSE without an OVERLAPPED) falls into
the failure branch, one stop packet for a pool of workers, a closing
connection released at the first of its two cancelled completions, one
receive buffer shared by every connection, a receive buffer pooled at the
close with its receive still pending, a connection id (the completion key)
reused while a closed connection's packets are still to come, a graceful
close that calls closesocket with its cancelled receive not yet reaped, and
coalesced output taken newest first.

Conventions as in :mod:`tests.mutants.fresh_mutants`: each class is one of
ovserver's server classes with one thing changed, the changed lines marked
``BUG``, each copied method named in ``COPIED`` (a protocol bug: a copy of a
:class:`Hub` method in a Hub subclass named by ``HUB``).
:data:`tests.mutants.MUTANTS` lists them with the traffic each one needs and
what catches them.

These are test code: they are not shipped with ovserver.
"""

from __future__ import annotations

from fakewinsock import WSABUF, Winsock
from fakewinsock.constants import ERROR_NOT_FOUND, INFINITE, WSA_IO_PENDING
from ovserver._core import ServerConfig, ServerError, _Conn, _Io
from ovserver._iocp import STOP_KEY, IocpServer
from ovserver._protocol import Hub

__all__ = [
    "IocpSkipOnSuccessAssumed",
    "IocpFailedPacketEndsWorker",
    "IocpWorkerTimeoutIsFailure",
    "IocpOneStopPacket",
    "IocpReleaseOnFirstReap",
    "IocpSharedReceiveBuffer",
    "CoalesceNewestFirst",
    "IocpCloseWithReceivePending",
    "IocpReceiveBufferPooledAtClose",
    "IocpKeyReusedWhileClosing",
]


def _use_hub(server: IocpServer, hub: type[Hub]) -> None:
    server.hub = hub(server.config.mode, server.config.limits)
    server.stats.hub = server.hub.stats


# ====================================================================== iocp: completions and packets


class IocpSkipOnSuccessAssumed(IocpServer):
    """IOCP, an immediate success handled inline: a WSASend that returns 0
    is taken as done at once ("it completed synchronously: no packet"), as
    it would be with the socket in FILE_SKIP_COMPLETION_PORT_ON_SUCCESS
    mode, which the server never sets (SetFileCompletionNotificationModes).
    The send's completion is handled in the posting thread, the next piece
    posted on the same OVERLAPPED, and the packet the port still queues
    comes later for a slot that is free or busy with another send: taken for
    that send's completion, or rejected.  Needs a send that completes at once
    (room in the window) followed by more output or by its packet."""

    COPIED = ("_after_post",)

    def _after_post(self, conn: _Conn, io: _Io, rc: int) -> None:
        error = 0 if rc == 0 else self.ws.WSAGetLastError()  # read only when rc says to
        ok = rc == 0 or error == WSA_IO_PENDING
        io.busy = ok
        self._posted(conn, io)
        if ok:
            self._count_post(rc == 0)
            if rc == 0 and io.kind == "send":  # BUG: no packet expected for an immediate success
                self._completed(io, 0, len(io.buf))  # BUG: handled here; its packet comes all the same
            return
        # Failed at once: nothing will notify.
        self.stats.posted_failed += 1
        self._count_close(conn, error)
        self._close(conn)


class IocpFailedPacketEndsWorker(IocpServer):
    """IOCP, GetQueuedCompletionStatus returning FALSE: the worker takes any
    FALSE for the port failing (``if (!GetQueuedCompletionStatus(...))
    break;``), where FALSE with an OVERLAPPED is a dequeued packet of a
    failed operation (a reset, a cancel) and only FALSE without one is the
    port's own failure.  The worker ends, the failed operation's packet
    unhandled: the connection stays open for good, its slot busy, and each
    such packet takes one more worker away.  Needs an operation that fails: a
    client that resets, or a close (cut-off, hang-up, stop) that cancels a
    pending operation."""

    COPIED = ("_work",)

    def _work(self, index: int) -> None:
        ws = self.ws
        while True:
            ok, nbytes, key, ov = ws.GetQueuedCompletionStatus(self._port, INFINITE)
            if not ok:  # BUG: FALSE with an OVERLAPPED (a failed operation) taken for the port failing
                return  # BUG: the worker ends, the packet unhandled
            if ov is None:
                if ok and key == STOP_KEY:
                    return
                raise ServerError(f"GetQueuedCompletionStatus failed (error {ws.GetLastError()}, key {key:#x})")
            self._enter(index)
            try:
                self._dispatch(bool(ok), nbytes, key, ov)
            finally:
                self._leave_if_held(index)


#: IocpWorkerTimeoutIsFailure's worker wait ("so that a worker notices a stop flag").
WORKER_POLL_MS = 1000


class IocpWorkerTimeoutIsFailure(IocpServer):
    """IOCP, GetQueuedCompletionStatus' FALSE without an OVERLAPPED: a
    worker waits with a time-out ("so that it can look at a stop flag"),
    and the time-out's return (FALSE, no OVERLAPPED, GetLastError
    WAIT_TIMEOUT) falls into the branch written for the port failing: the
    worker raises, and the server stops with an error.  Needs a worker that
    dequeues nothing for a second: a server quiet for a second with a client
    connected (or before its stop)."""

    COPIED = ("_work",)

    def _work(self, index: int) -> None:
        ws = self.ws
        while True:
            ok, nbytes, key, ov = ws.GetQueuedCompletionStatus(self._port, WORKER_POLL_MS)  # BUG: time-out: fatal
            if ov is None:
                if ok and key == STOP_KEY:
                    return
                raise ServerError(f"GetQueuedCompletionStatus failed (error {ws.GetLastError()}, key {key:#x})")
            self._enter(index)
            try:
                self._dispatch(bool(ok), nbytes, key, ov)
            finally:
                self._leave_if_held(index)


class IocpOneStopPacket(IocpServer):
    """IOCP, the pool's shutdown: the controller posts one stop packet
    (``PostQueuedCompletionStatus(port, 0, STOP_KEY, NULL)``) for the whole
    pool, as if every waiting worker saw it, then waits for each worker.  A
    packet is dequeued by one thread: the other workers wait on the port
    for good, and so does the controller's WaitForSingleObject.  Needs a
    stop with two workers or more (the default pool has four)."""

    COPIED = ("_stop_workers",)

    def _stop_workers(self) -> None:
        """One stop packet per worker, behind every packet already queued; then
        wait for each worker and close its handle."""
        ws = self.ws
        if self._workers:  # BUG: one packet for the pool: it wakes one worker, not all
            if not ws.PostQueuedCompletionStatus(self._port, 0, STOP_KEY, None):
                raise ServerError(f"PostQueuedCompletionStatus failed (error {ws.GetLastError()})")
        for h in list(self._workers):
            ws.WaitForSingleObject(h, INFINITE)
            ws.CloseHandle(h)
            self._workers.remove(h)


# ====================================================================== iocp: contexts and buffers


class IocpReleaseOnFirstReap(IocpServer):
    """IOCP, closesocket racing the completions it causes: a closed
    connection's context is released (its socket closed, its OVERLAPPEDs
    forgotten) when the first of its cancelled operations is reaped, as if
    a connection had one operation in flight ("the cancelled one came back:
    free it").  A connection closed with a receive and a send in flight (a
    cut-off, a stop with a slow reader) gets its second packet after its
    context was released.  Needs a close with both operations in flight."""

    COPIED = ("_release_if_idle",)

    def _release_if_idle(self, conn: _Conn) -> None:
        """Once every operation of the closing ``conn`` is reaped: close its
        socket (gracefully: nothing is outstanding) if not yet, and release it."""
        if self._closing.get(conn.cid) is conn:  # BUG: the other operation may still be in flight
            del self._closing[conn.cid]
            self._close_socket(conn)
            self._release(conn)


class IocpSharedReceiveBuffer(IocpServer):
    """IOCP, a buffer in use by two pending operations: every connection's
    WSARecv is posted into one receive buffer of the server (the lecture
    notes' global ``char buf[...]``, kept when the server moved from one
    client to many).  A receive that completes while another connection's
    is pending overwrites what that one will be handed, or what the worker
    that handles it is still reading.  Needs two clients with receives
    posted at once."""

    COPIED = ("_conn_opened",)

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        self._shared_buf = bytearray(self.config.recv_size)  # BUG: one receive buffer for the server

    def _conn_opened(self, conn: _Conn) -> bool:
        """Associate the accepted socket with the port, the connection's id its key."""
        conn.recv.buf = self._shared_buf  # BUG: every connection's receive posted into the same buffer
        conn.recv.wsabufs = [WSABUF(len(self._shared_buf), self._shared_buf)]  # BUG: (the same)
        return bool(self.ws.CreateIoCompletionPort(conn.sock, self._port, conn.cid, 0) == self._port)


class IocpReceiveBufferPooledAtClose(IocpServer):
    """IOCP, a buffer freed while its operation is pending: receive buffers
    come from a pool (a per-I/O-data free list, as production IOCP servers
    keep), and a connection's buffer goes back to the pool when the
    connection is closed ("closesocket: its I/O is over"), not when its
    cancelled receive's packet has been reaped.  The next connection
    accepted takes that buffer for its first WSARecv while the closed
    connection's receive may still be pending on it: two receives in flight
    on one buffer.  Needs a close with a receive in flight (a cut-off, a
    hang-up's end, a reset noticed by a send) and a client accepted before
    that receive's packet is handled."""

    COPIED = ("_close", "_conn_opened")

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        self._pool: list[bytearray | bytes] = []  # BUG: receive buffers of closed connections, reused

    def _close(self, conn: _Conn, abort: bool = False) -> None:
        """Remove ``conn``: its place is free at once; its socket is closed once
        nothing of it is outstanding, and its OVERLAPPEDs and buffers are
        released when their operations are reaped.

        A send in flight is cancelled first (CancelIoEx: Wine would otherwise
        keep it pending after the close, see the module docstring); if the
        cancel found it, the close is abortive, since that data is lost (a
        send that has completed, not yet reaped, went out whole).  A close
        that drops output still queued is abortive too: the client must not
        read a FIN after part of its replies.  Otherwise
        a receive in flight is cancelled, and the socket is closed only when
        its completion has been reaped (:meth:`_release_if_idle`): Windows
        resets a connection closed with a receive outstanding, and maybe one
        whose cancelled receive has not completed yet."""
        if conn.closed:
            return
        conn.closed = True
        self._pool.append(conn.recv.buf)  # BUG: back to the pool, its cancelled receive maybe pending
        if self._leave_hub(conn):
            abort = True  # output is dropped: a reset, not a FIN that says nothing more was owed
        ws = self.ws
        if conn.send.busy:
            if ws.CancelIoEx(conn.sock, conn.send):
                self.stats.cancelled += 1
                abort = True
            elif ws.GetLastError() != ERROR_NOT_FOUND:
                abort = True  # the cancel failed: nothing says the send has ended
            # (ERROR_NOT_FOUND: it has completed, every byte went out; it is reaped as usual,
            # and the close stays graceful unless output waited behind it.)
        close_now = abort
        if abort:
            self._set_abortive(conn.sock)
        elif conn.recv.busy:
            # ERROR_NOT_FOUND if it has just completed: reaped as usual, then closed.  Another
            # failure: the cancel did not take, and waiting for the receive might never end.
            close_now = not ws.CancelIoEx(conn.sock, conn.recv) and ws.GetLastError() != ERROR_NOT_FOUND
        if close_now or conn.idle():
            self._close_socket(conn)
        self._forget(conn)

    def _conn_opened(self, conn: _Conn) -> bool:
        """Associate the accepted socket with the port, the connection's id its key."""
        if self._pool:  # BUG: a pooled buffer, perhaps still under a closed connection's pending receive
            conn.recv.buf = buf = self._pool.pop()  # BUG: (the same)
            conn.recv.wsabufs = [WSABUF(len(buf), buf)]  # BUG: (the same)
        return bool(self.ws.CreateIoCompletionPort(conn.sock, self._port, conn.cid, 0) == self._port)


class IocpKeyReusedWhileClosing(IocpServer):
    """IOCP, the completion key: a connection's id (its key, and its index
    in the server's tables) is the lowest one free among the live
    connections ("a slot of the per-handle data array"), not one never used
    before.  A connection closed with an operation in flight is still
    *closing*, its packets to come with that key, when a new connection
    takes the same id: the closing table's entry is overwritten, so the
    first connection is never released (its socket, kept open for a graceful
    close, stays open), and packets of the two carry one key.  Needs a
    graceful close waiting for its cancelled receive (a stop, an idle
    time-out), and another client given the same id closed with an
    operation in flight before that receive's packet is handled."""

    COPIED = ("_open",)

    def _open(self, s: int, name: bytes) -> None:
        cid = min(set(range(1, len(self._conns) + 2)) - self._conns.keys())  # BUG: a live slot's index, reused
        conn = _Conn(cid, s, name, self.config.recv_size)
        if not self._conn_opened(conn):
            self.stats.accept_failures += 1
            self.stats.refused += 1
            self.ws.closesocket(s)
            return
        self._conns[cid] = conn
        limit = self.config.idle_timeout_ms
        if limit:
            conn.active_ms = self.ws.GetTickCount64()
            self._deadline(conn, conn.active_ms + limit)
        self.stats.accepted += 1
        self.stats.peak_connections = max(self.stats.peak_connections, len(self._conns))
        self._begin(conn)


# ====================================================================== protocol: output order


class _NewestFirstHub(Hub):
    COPIED = ("take_output",)

    def take_output(self, cid: int, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of ``cid``'s queued output, removed from the queue
        (b"" when nothing is queued).  The caller sends them before taking more."""
        c = self._clients.get(cid)
        if c is None or not c.out:
            return b""
        out = c.out
        first = out[0]
        if len(out) == 1 and len(first) <= max_bytes:  # the common case: all of it, as it is
            out.clear()
            c.queued = 0
            return first
        if len(first) >= max_bytes:
            chunk = first[:max_bytes]
            if len(first) > max_bytes:
                out[0] = first[max_bytes:]
            else:
                out.popleft()
            c.queued -= len(chunk)
            return chunk
        parts: list[bytes] = []
        size = 0
        while out and size + len(out[0]) <= max_bytes:
            part = out.pop()  # BUG: the newest message, not the oldest (a deque used as a stack)
            parts.append(part)
            size += len(part)
        if out and size < max_bytes:
            head = out[0]
            k = max_bytes - size
            parts.append(head[:k])
            out[0] = head[k:]
            size += k
        c.queued -= size
        return b"".join(parts)


class CoalesceNewestFirst(IocpServer):
    """Output order, coalescing: the messages queued behind a send in
    flight are gathered into the next send newest first (``pop()`` where
    the queue is read from its left end), so the replies or chat lines that
    waited come out reversed.  One message queued at a time (the common
    case) takes another path and is right.  Needs two messages or more queued
    for a client while its send is in flight: a burst of lines in echo, two
    members talking in chat, with a reader slower than the server."""

    HUB = _NewestFirstHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its take_output()


# ====================================================================== iocp: closing


class IocpCloseWithReceivePending(IocpServer):
    """IOCP, closesocket with a receive outstanding: a graceful close
    cancels the receive and calls closesocket at once ("the cancel is
    enough"), not after the cancelled receive's packet has been reaped.
    Windows resets a connection closed with a receive outstanding (the
    cancel completes later, through the port): a client closed gracefully
    (a stop, the end of a hang-up) reads a reset and loses the replies it
    had not read yet.  Needs a graceful close with a receive posted: a stop
    while a client is connected and owed nothing in flight."""

    COPIED = ("_close",)

    def _close(self, conn: _Conn, abort: bool = False) -> None:
        """Remove ``conn``: its place is free at once; its socket is closed once
        nothing of it is outstanding, and its OVERLAPPEDs and buffers are
        released when their operations are reaped.

        A send in flight is cancelled first (CancelIoEx: Wine would otherwise
        keep it pending after the close, see the module docstring); if the
        cancel found it, the close is abortive, since that data is lost (a
        send that has completed, not yet reaped, went out whole).  A close
        that drops output still queued is abortive too: the client must not
        read a FIN after part of its replies.  Otherwise
        a receive in flight is cancelled, and the socket is closed only when
        its completion has been reaped (:meth:`_release_if_idle`): Windows
        resets a connection closed with a receive outstanding, and maybe one
        whose cancelled receive has not completed yet."""
        if conn.closed:
            return
        conn.closed = True
        if self._leave_hub(conn):
            abort = True  # output is dropped: a reset, not a FIN that says nothing more was owed
        ws = self.ws
        if conn.send.busy:
            if ws.CancelIoEx(conn.sock, conn.send):
                self.stats.cancelled += 1
                abort = True
            elif ws.GetLastError() != ERROR_NOT_FOUND:
                abort = True  # the cancel failed: nothing says the send has ended
        close_now = True  # BUG: closesocket at once, the cancelled receive not yet reaped (Windows resets)
        if abort:
            self._set_abortive(conn.sock)
        elif conn.recv.busy:
            ws.CancelIoEx(conn.sock, conn.recv)  # BUG: the cancel taken for enough
        if close_now or conn.idle():
            self._close_socket(conn)
        self._forget(conn)

