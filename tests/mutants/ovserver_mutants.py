"""Deliberately broken variants of ovserver's server, one real bug each.

Every class below is an ovserver server class with one thing changed: a small
override, a wrapper around the correct method, or a copy of one method with
the bug written in (the line says ``BUG``; ``COPIED`` names the copied methods,
and ``tests/test_mutants.py`` checks that each copy differs from the original
by a few lines only).  The bugs are the classic mistakes of the seed's
overlapped-IO lecture ("问题总结": the problem list) and of
``docs/winsock-semantics.md``; :data:`tests.mutants.MUTANTS` says where each
comes from and which property test catches it.

These are test code: they are not shipped with ovserver.
"""

from __future__ import annotations

from fakewinsock import WSABUF, WSAOVERLAPPED, Winsock
from fakewinsock.constants import (
    AF_INET,
    FALSE,
    INVALID_SOCKET,
    IPPROTO_TCP,
    SD_SEND,
    SOCK_STREAM,
    WSA_FLAG_OVERLAPPED,
    WSA_INFINITE,
    WSA_IO_PENDING,
    WSA_OPERATION_ABORTED,
    WSAECONNABORTED,
    WSAECONNRESET,
)
from ovserver._core import ADDR_LEN, ServerConfig, _Conn, _Io
from ovserver._events import EventServer
from ovserver._protocol import Action, Hub
from ovserver._routines import RoutineServer

__all__ = [
    "OneReceiveOneMessage",
    "ForgetsWSAResetEvent",
    "ResetIsNotAnExit",
    "ZeroBytesIsNotAnExit",
    "ImmediateHandledTwice",
    "AcceptExAfterFirstReceive",
    "SharedOverlapped",
    "ReplyInReceiveBuffer",
    "AcceptExTrueIsFailure",
    "IgnoresAbortedCompletions",
    "ExitsWithoutReaping",
    "MoreThan64Events",
    "AcceptExReceivesData",
]


# ---------------------------------------------------------------- framing


class _OneReceiveOneMessageHub(Hub):
    def receive(self, cid: int, data: bytes | bytearray | memoryview) -> list[Action]:
        c = self._clients.get(cid)
        if c is None or not data or not self.is_member(cid):
            return super().receive(cid, data)
        # BUG: whatever one receive brings is one message (a newline added if it lacks one).
        msg = bytes(data) if bytes(data).endswith(b"\n") else bytes(data) + b"\n"
        self.stats.bytes_in += len(data)
        self.stats.lines += 1
        actions: list[Action] = []
        self._route(c, msg, actions)
        return actions


class OneReceiveOneMessage(EventServer):
    """The seed's "问题": one receive is taken to be one message.  TCP keeps no
    message boundaries: several sends arrive in one receive, one send is split
    over several."""

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        self.hub = _OneReceiveOneMessageHub(self.config.mode, self.config.limits)  # BUG: its receive()
        self.stats.hub = self.hub.stats


# ---------------------------------------------------------------- events


class ForgetsWSAResetEvent(EventServer):
    """The seed's problem 4 ("信号置空"): the group's event is never reset.  A
    manual-reset event stays signalled, so the wait returns at once, forever."""

    COPIED = ("_handle_group",)

    def _handle_group(self, conn: _Conn) -> None:
        ws = self.ws
        self._again.pop(conn.cid, None)  # everything completed is handled now
        # BUG: no ws.WSAResetEvent(conn.event)
        for io in (conn.recv, conn.send):
            if not io.completed():
                continue
            if conn.closed:
                # The socket is gone, so there is no result to fetch: the
                # operation ended with the error closesocket gave it.
                self._reaped(io)
                continue
            ok, nbytes, _ = ws.WSAGetOverlappedResult(conn.sock, io, FALSE)
            self._completed(io, 0 if ok else ws.WSAGetLastError(), nbytes)


class MoreThan64Events(EventServer):
    """The seed's "将上万的事件分组": one WSAWaitForMultipleEvents covers at most
    64 events; this server accepts a 64th client anyway."""

    @property
    def max_connections(self) -> int:
        return self.config.limits.max_clients  # BUG: forgets WSA_MAXIMUM_WAIT_EVENTS


# ---------------------------------------------------------------- client exit


class ResetIsNotAnExit(EventServer):
    """The seed's problem 3 ("检测有误"): only a receive of 0 bytes is taken as
    the client's exit.  A forced exit (WSAGetOverlappedResult fails with 10054)
    is skipped, so the group is never removed: its socket, event and slot stay
    taken for good."""

    def _completed(self, io: _Io, error: int, nbytes: int) -> None:
        assert io.conn is not None
        if error == WSAECONNRESET and not io.conn.closed:
            io.busy = False
            return  # BUG: a failed result is skipped; only 0 bytes would close the group
        super()._completed(io, error, nbytes)


class ZeroBytesIsNotAnExit(RoutineServer):
    """The seed's problem 3 the other way round: only 10054 is taken as the
    client's exit, a receive of 0 bytes as "nothing yet", so it receives again,
    and again: at EOF every receive completes at once with 0 bytes."""

    def _completed(self, io: _Io, error: int, nbytes: int) -> None:
        conn = io.conn
        assert conn is not None
        if not error and nbytes == 0 and io.kind == "recv" and not conn.closed:
            io.busy = False
            self._post_recv(conn)  # BUG: 0 bytes is not an exit: receive again
            return
        super()._completed(io, error, nbytes)


# ---------------------------------------------------------------- completion handling


class ImmediateHandledTwice(EventServer):
    """Semantics doc, "Immediate success still notifies": WSARecv returned 0, so
    the data is handled at once; its event is signalled all the same, and the
    loop handles the same bytes again."""

    def _post_recv(self, conn: _Conn) -> None:
        io = conn.recv
        rc, nbytes, _ = self.ws.WSARecv(conn.sock, io.wsabufs, 1, 0, io, self._routine)
        self._after_post(conn, io, rc)
        if rc == 0 and nbytes and not conn.closed:
            # BUG: completed at once, so handled here -- and again when its event fires.
            assert isinstance(io.buf, bytearray)
            self._apply(self.hub.receive(conn.cid, bytes(io.buf[:nbytes])))


class SharedOverlapped(RoutineServer):
    """One OVERLAPPED per client, used by its WSARecv and its WSASend alike
    (the seed keeps one ``g_allOlp[i]`` per client, which is right only while a
    client has one operation in flight)."""

    COPIED = ("_post_send",)

    def _post_send(self, conn: _Conn) -> None:
        """Send the next piece of ``conn``'s output unless a send is in flight;
        with nothing left, finish a hang-up or an ended connection."""
        io = conn.send
        if io.busy or conn.closed:
            return
        data = self.hub.take_output(conn.cid, self.config.send_size)
        if not data:
            if conn.state == "eof":
                self._close(conn)
            elif conn.state == "hangup" and not conn.fin_sent:
                conn.fin_sent = True  # the error line is out: FIN, keep reading until the client goes
                self.ws.shutdown(conn.sock, SD_SEND)
            return
        io.buf = data  # bytes: immutable while in flight
        io.wsabufs = [WSABUF(len(data), data)]
        rc, _, _ = self.ws.WSASend(conn.sock, io.wsabufs, 1, 0, conn.recv, self._routine)  # BUG: conn.recv
        self._after_post(conn, io, rc)


class ReplyInReceiveBuffer(EventServer):
    """A buffer reused while an operation is in flight: the reply is built in
    the client's receive buffer, which the next WSARecv (posted while the send
    may still be in flight) writes into."""

    COPIED = ("_post_send",)

    def _post_send(self, conn: _Conn) -> None:
        """Send the next piece of ``conn``'s output unless a send is in flight;
        with nothing left, finish a hang-up or an ended connection."""
        io = conn.send
        if io.busy or conn.closed:
            return
        data = self.hub.take_output(conn.cid, min(self.config.send_size, len(conn.recv.buf)))  # BUG: fits recv.buf
        if not data:
            if conn.state == "eof":
                self._close(conn)
            elif conn.state == "hangup" and not conn.fin_sent:
                conn.fin_sent = True  # the error line is out: FIN, keep reading until the client goes
                self.ws.shutdown(conn.sock, SD_SEND)
            return
        conn.recv.buf[:len(data)] = data  # type: ignore[index]  # BUG: the reply goes into the receive buffer
        io.buf = conn.recv.buf  # BUG: which the next WSARecv writes into while this send may be in flight
        io.wsabufs = [WSABUF(len(data), io.buf)]  # BUG
        rc, _, _ = self.ws.WSASend(conn.sock, io.wsabufs, 1, 0, io, self._routine)
        self._after_post(conn, io, rc)


# ---------------------------------------------------------------- accepting


class AcceptExAfterFirstReceive(EventServer):
    """The seed's problem 1 ("accept 位置有误"): the next AcceptEx is posted at the
    wrong point, when a receive completes (in the "a client sent something"
    branch) instead of when the accept completes.  A client that connects and
    waits to be spoken to first blocks every later client."""

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        self._hold = False

    def _accept_done(self) -> None:
        self._hold = True  # BUG: no AcceptEx until some client's receive completes
        super()._accept_done()

    def _post_accept(self) -> None:
        if not self._hold:
            super()._post_accept()

    def _completed(self, io: _Io, error: int, nbytes: int) -> None:
        super()._completed(io, error, nbytes)
        if io.kind == "recv" and self._hold:
            self._hold = False
            self._post_accept()


class AcceptExReceivesData(EventServer):
    """The seed's problem 1 ("accept 参数有误"): AcceptEx is posted with
    dwReceiveDataLength > 0 (the seed says 0).  It then completes only when the
    client's first bytes arrive, and puts them in its output buffer, where this
    server (written for 0) never looks: they are lost."""

    COPIED = ("_post_accept",)
    RECEIVE = 64

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        self._accept = _Io("accept", None, bytearray(self.RECEIVE + 2 * ADDR_LEN))

    def _post_accept(self) -> None:
        if (self._stopping or self._accept.busy or self._listener == INVALID_SOCKET
                or len(self._conns) >= self.max_connections or self.hub.full):
            return
        ws = self.ws
        s = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
        if s == INVALID_SOCKET:
            self._accept_failed()
            return
        io = self._accept
        assert isinstance(io.buf, bytearray)
        ok, _ = ws.AcceptEx(self._listener, s, io.buf, self.RECEIVE, ADDR_LEN, ADDR_LEN, io)  # BUG: RECEIVE, not 0
        if ok or ws.WSAGetLastError() == WSA_IO_PENDING:
            # Even a TRUE return is handled when the wake event says so.
            self._count_post(bool(ok))
            io.busy = True
            self._accept_sock = s
            return
        ws.closesocket(s)
        self._accept_failed()


class AcceptExTrueIsFailure(EventServer):
    """Semantics doc, AcceptEx: "In practice AcceptEx pends; code must still
    handle TRUE".  This server takes only FALSE + WSA_IO_PENDING as posted; a
    TRUE (accepted at once) falls into its error path, which closes the
    freshly accepted socket and retries later."""

    COPIED = ("_post_accept",)

    def _post_accept(self) -> None:
        if (self._stopping or self._accept.busy or self._listener == INVALID_SOCKET
                or len(self._conns) >= self.max_connections or self.hub.full):
            return
        ws = self.ws
        s = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
        if s == INVALID_SOCKET:
            self._accept_failed()
            return
        io = self._accept
        assert isinstance(io.buf, bytearray)
        ok, _ = ws.AcceptEx(self._listener, s, io.buf, 0, ADDR_LEN, ADDR_LEN, io)
        if not ok and ws.WSAGetLastError() == WSA_IO_PENDING:  # BUG: TRUE is treated as a failure
            # Even a TRUE return is handled when the wake event says so.
            self._count_post(bool(ok))
            io.busy = True
            self._accept_sock = s
            return
        ws.closesocket(s)
        self._accept_failed()


# ---------------------------------------------------------------- shutdown


class IgnoresAbortedCompletions(RoutineServer):
    """Semantics doc, closesocket with operations pending: they complete later,
    with WSAECONNABORTED (a receive) or WSA_OPERATION_ABORTED (995).  This
    server ignores those completions ("aborted: we are shutting down anyway"),
    so the operations are never reaped and the shutdown never ends."""

    def _on_completion(self, dwError: int, cbTransferred: int, lpOverlapped: WSAOVERLAPPED,
                       dwFlags: int) -> None:
        if dwError in (WSAECONNABORTED, WSA_OPERATION_ABORTED):
            return  # BUG: the cancelled operation is never reaped
        super()._on_completion(dwError, cbTransferred, lpOverlapped, dwFlags)


class ExitsWithoutReaping(EventServer):
    """Semantics doc: closesocket returns at once and the pending operations
    complete later; "the OVERLAPPED and buffers must stay valid until then".
    This server closes everything and calls WSACleanup at once (in C: frees
    OVERLAPPEDs the kernel still writes into)."""

    COPIED = ("_serve",)

    def _serve(self) -> None:
        while True:
            # The flag is read after every post, so a stop signal swallowed by a
            # post resetting the wake event (AcceptEx on it) is still seen.
            if self._stop and not self._stopping:
                self._begin_stop()
            if self._stopping:
                return  # BUG: does not wait for the cancelled operations
                if self._gave_up:
                    self.stats.abandoned = int(self._accept.busy) + sum(
                        int(c.recv.busy) + int(c.send.busy) for c in self._closing.values())
                    return
                self._wait(self.config.stop_grace_ms)
            else:
                self._wait(self.config.accept_retry_ms if self._accept_retry else WSA_INFINITE)
