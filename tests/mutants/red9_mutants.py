"""Single-bug variants of ovserver planted by a ninth red team (issue 10):
the simple, classic bugs an outside grader plants anywhere in the code, not
the races of the earlier teams: chat fan-out that includes the sender, blank
chat lines skipped, the error line naming a wrong limit, the welcome line
without its newline, the hung-up client's allowance off by one, a completion
routine's arguments swapped, the hang-up's shutdown in the wrong direction,
a group that handles only the receive slot of a signalled client, resets
counted as I/O errors and the peak of connections taken one short (the
shutdown summary's counts), any received bytes, not a complete line,
restarting the idle clock, and a stop that closes only the connections still
open for input.

Conventions as in :mod:`tests.mutants.fresh_mutants`: each class is one of
ovserver's server classes with one thing changed, the changed lines marked
``BUG``, each copied method named in ``COPIED`` (a protocol bug: a copy of a
:class:`Hub` method in a Hub subclass named by ``HUB``).
:data:`tests.mutants.MUTANTS` lists them with the traffic each one needs and
what catches them.

These are test code: they are not shipped with ovserver.
"""

from __future__ import annotations

from collections.abc import Iterable

from fakewinsock import WSABUF, WSAOVERLAPPED, Winsock
from fakewinsock.constants import FALSE, INVALID_SOCKET, SD_RECEIVE, WSAECONNABORTED, WSAECONNRESET
from ovserver._core import NEVER, ServerConfig, ServerError, _Conn, _Io
from ovserver._events import EventServer
from ovserver._iocp import IocpServer
from ovserver._protocol import _HUNG_UP, Action, Hangup, Hub, Mode, _Client, chat_line, error_line
from ovserver._routines import ROUTINE_BURST, RoutineServer

__all__ = [
    "ChatEchoesToSender",
    "ChatSkipsBlankLines",
    "ErrorLineOffByOne",
    "WelcomeWithoutNewline",
    "HangupAllowanceOffByOne",
    "RoutineArgumentsSwapped",
    "HangupShutsReceiveSide",
    "GroupHandlesReceiveOnly",
    "ResetCountedAsError",
    "IdleClockAnyBytes",
    "PeakCountedBeforeOpen",
    "StopSkipsDraining",
    "HubFullOffByOne",
    "IdleCloseAbortive",
]


def _use_hub(server: EventServer | RoutineServer | IocpServer, hub: type[Hub]) -> None:
    server.hub = hub(server.config.mode, server.config.limits)
    server.stats.hub = server.hub.stats


# ====================================================================== protocol


class _SenderIncludedHub(Hub):
    COPIED = ("_route",)

    def _route(self, sender: _Client, line: bytes, actions: list[Action]) -> None:
        if self.mode is Mode.ECHO:
            self._enqueue(sender, line, actions)
            return
        msg = chat_line(sender.name, line)
        for r in list(self._members.values()):  # BUG: the sender too ("to every member")
            self._enqueue(r, msg, actions)  # BUG: no ``if r is not sender``


class ChatEchoesToSender(EventServer):
    """Chat fan-out: a line goes to every member, its sender included (the
    ``if r is not sender`` test forgotten).  Needs a chat line."""

    HUB = _SenderIncludedHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its _route()


class _BlankSkippedHub(Hub):
    COPIED = ("_route",)

    def _route(self, sender: _Client, line: bytes, actions: list[Action]) -> None:
        if self.mode is Mode.ECHO:
            self._enqueue(sender, line, actions)
            return
        if not line.strip():  # BUG: a blank line (only whitespace) is not passed on
            return  # BUG
        msg = chat_line(sender.name, line)
        for r in list(self._members.values()):
            if r is not sender:
                self._enqueue(r, msg, actions)


class ChatSkipsBlankLines(RoutineServer):
    """Chat framing: an empty line (or one of spaces, tabs, a lone CR) is
    skipped, not passed on, where the protocol passes every line unchanged.
    Needs a chat line that is empty or all whitespace."""

    HUB = _BlankSkippedHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its _route()


class _ErrorLineHub(Hub):
    COPIED = ("_too_long",)

    def _too_long(self, c: _Client, actions: list[Action]) -> None:
        self.stats.too_long += 1
        self.stats.discarded += len(c.inbuf)
        c.inbuf.clear()
        c.scanned = 0
        c.state = _HUNG_UP
        self._members.pop(c.cid, None)
        self._paused.discard(c.cid)
        self._not_over(c.cid)
        self._enqueue(c, error_line(self.limits.max_line + 1), actions)  # BUG: the first length refused
        if c.cid in self._clients:
            actions.append(Hangup(c.cid, "line too long"))


class ErrorLineOffByOne(IocpServer):
    """The error line's text: ``* error: line longer than <max_line + 1>
    bytes`` (the first length refused, not the limit).  Needs a line over
    max_line."""

    HUB = _ErrorLineHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its _too_long()


class _WelcomeHub(Hub):
    COPIED = ("join",)

    def join(self, cid: int, name: bytes) -> list[Action]:
        """A new connection ``cid`` (chosen by the driver, unique while it lives)
        called ``name``."""
        if cid in self._clients:
            raise ValueError(f"client {cid} has already joined")
        if self.full:
            raise RuntimeError(f"the hub is full ({self.limits.max_clients} clients)")
        c = _Client(cid, bytes(name))
        self._clients[cid] = c
        self._members[cid] = c
        self.stats.joined += 1
        actions: list[Action] = []
        if self.mode is Mode.CHAT:
            self._enqueue(c, b"* welcome " + c.name, actions)  # BUG: no newline
        return actions


class WelcomeWithoutNewline(RoutineServer):
    """Chat's welcome line without its newline: the first line the client
    reads is the welcome run into the first chat line routed to it.  Needs a
    chat client."""

    HUB = _WelcomeHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its join()


class _AllowanceHub(Hub):
    COPIED = ("_discard",)

    def _discard(self, c: _Client, n: int, actions: list[Action]) -> None:
        self.stats.discarded += n
        c.discarded += n
        if c.state == _HUNG_UP and c.discarded >= self.limits.max_line:  # BUG: >= for >
            self.stats.hung_up_cut_off += 1
            self._cut_off(c, "kept sending after being hung up", actions)


class HangupAllowanceOffByOne(EventServer):
    """A hung-up client is cut off (reset) once it has sent ``max_line``
    further bytes, not more than ``max_line`` (``>=`` for ``>``).  Needs a
    hung-up client sending exactly max_line bytes after its long line before
    its FIN."""

    HUB = _AllowanceHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its _discard()


# ====================================================================== routines


class RoutineArgumentsSwapped(RoutineServer):
    """Routines: the completion routine passes its first two parameters on
    swapped (``dwError`` as the byte count, ``cbTransferred`` as the error):
    every receive of n > 0 bytes is taken for a failure, every success for 0
    bytes (an EOF).  Needs any client."""

    COPIED = ("_on_completion",)

    def _on_completion(self, dwError: int, cbTransferred: int, lpOverlapped: WSAOVERLAPPED,
                       dwFlags: int) -> None:
        """The completion routine of every WSARecv and WSASend."""
        if not isinstance(lpOverlapped, _Io):
            raise ServerError(f"completion routine called with a foreign OVERLAPPED: {lpOverlapped!r}")
        self._completed(lpOverlapped, cbTransferred, dwError)  # BUG: error and byte count swapped
        self._ran += 1
        self._between_routines(self._ran % ROUTINE_BURST == 0)


class HangupShutsReceiveSide(RoutineServer):
    """Core: once a hung-up client's error line is sent, the server calls
    ``shutdown(SD_RECEIVE)`` where it means ``SD_SEND``: no FIN reaches the
    client, which waits for the server to end the connection.  Needs a line
    over max_line."""

    COPIED = ("_post_send",)

    def _post_send(self, conn: _Conn) -> None:
        """Send the next piece of ``conn``'s output unless a send is in flight;
        with nothing left, finish a hang-up or an ended connection."""
        io = conn.send
        if io.busy or conn.closed:
            return
        data = self.hub.take_output(conn.cid, self.config.send_size)
        self._after_hub(conn)
        if not data:
            if conn.state == "eof":
                self._close(conn)
            elif conn.state == "hangup" and not conn.fin_sent:
                conn.fin_sent = True  # the error line is out: FIN, keep reading until the client goes
                self.ws.shutdown(conn.sock, SD_RECEIVE)  # BUG: the wrong direction
            return
        io.buf = data  # bytes: immutable while in flight
        io.wsabufs = [WSABUF(len(data), data)]
        rc, _, _ = self.ws.WSASend(conn.sock, io.wsabufs, 1, 0, io, self._routine)
        self._after_post(conn, io, rc)


# ====================================================================== events


class GroupHandlesReceiveOnly(EventServer):
    """Events: a signalled client's receive slot is looked at, its send slot
    is not (the lecture notes' server, which only received, grown a send
    without its handling): a send's completion is never handled, the send
    slot stays busy and no more output goes out.  Needs a reply."""

    COPIED = ("_handle_group",)

    def _handle_group(self, conn: _Conn) -> None:
        ws = self.ws
        ws.WSAResetEvent(conn.event)
        for io in (conn.recv,):  # BUG: the send slot is never looked at
            if not io.completed():
                continue
            if conn.closed:
                # The socket is gone, so there is no result to fetch: the
                # operation ended with the error closesocket gave it.
                self._reaped(io)
                continue
            ok, nbytes, _ = ws.WSAGetOverlappedResult(conn.sock, io, FALSE)
            self._completed(io, 0 if ok else ws.WSAGetLastError(), nbytes)


class ResetCountedAsError(EventServer):
    """Core, the shutdown summary's counts: a receive failing with 10053
    (WSAECONNABORTED) is counted as a reset, one failing with 10054
    (WSAECONNRESET, the client reset) as an I/O error.  Needs a client that
    resets."""

    COPIED = ("_count_close",)

    def _count_close(self, conn: _Conn, error: int) -> None:
        """Count how ``conn`` ended, as its failed receive or send says: a
        reset (10054: the client forced it out) or another I/O error; unless
        its end was counted already, as ``ended`` (its FIN was read): each
        connection counts in one way of ending, the first seen.  (Under Wine
        a reset reads as 0 bytes first, then a send to it fails with 10054;
        on the fake, a client's reset after its FIN fails a send with 10053.)"""
        if conn.state == "eof":
            self.stats.ended_then_failed += 1
        elif error == WSAECONNABORTED:  # BUG: 10053 for 10054
            self.stats.reset += 1
        else:
            self.stats.io_errors += 1


# ====================================================================== iocp


class IdleClockAnyBytes(IocpServer):
    """Core, the idle time-out: any bytes received restart a connection's
    idle clock, not only a complete line, so a client that dribbles bytes
    without a newline (a slowloris) holds its place for ever.  Needs an idle
    time-out and a client that sends bytes without a newline for longer."""

    COPIED = ("_completed",)

    def _completed(self, io: _Io, error: int, nbytes: int) -> None:
        """The one place a receive's or a send's completion is handled."""
        io.busy = False
        conn = io.conn
        assert conn is not None
        if conn.closed:
            self._reaped(io)
            return
        if error:
            self._count_close(conn, error)  # 10054: forced out by the client
            self._close(conn)
        elif io.kind == "send":
            self.stats.bytes_sent += nbytes
            if nbytes and self.config.idle_timeout_ms:
                conn.active_ms = self.ws.GetTickCount64()  # the client read (room was made for this send)
            io.buf = b""
            self._post_send(conn)
        elif nbytes == 0:  # graceful exit: send what is queued, then close
            self.stats.ended += 1
            conn.state = "eof"
            self.hub.end(conn.cid)
            self._after_hub(conn)
            if conn.send.busy and self._peer_gone(conn):
                self._count_close(conn, WSAECONNRESET)  # as the send would have failed on Windows
                self._close(conn)  # (its send in flight: cancelled, an abortive close)
                return
            self._post_send(conn)
        else:
            self.stats.bytes_received += nbytes
            assert isinstance(io.buf, bytearray)
            if self.config.idle_timeout_ms:  # BUG: any bytes, not a complete line
                conn.active_ms = self.ws.GetTickCount64()  # a line is complete
            self._apply(self.hub.receive(conn.cid, bytes(io.buf[:nbytes])))
            self._after_hub(conn)
            # Held back (back-pressure): read on at its Resume.  (No Resume came
            # meanwhile: a client is held back only here, with no receive posted.)
            if not conn.closed and not self.hub.hold(conn.cid):
                self._post_recv(conn)


class PeakCountedBeforeOpen(IocpServer):
    """Core, the shutdown summary's counts: the peak of connections open at
    once is taken before the new connection enters the table, one short
    (0 with one client).  Needs any client, and a look at the summary."""

    COPIED = ("_open",)

    def _open(self, s: int, name: bytes) -> None:
        cid = self._next_cid
        self._next_cid += 1
        conn = _Conn(cid, s, name, self.config.recv_size)
        if not self._conn_opened(conn):
            self.stats.accept_failures += 1
            self.stats.refused += 1
            self.ws.closesocket(s)
            return
        self.stats.peak_connections = max(self.stats.peak_connections, len(self._conns))  # BUG: before it is in
        self._conns[cid] = conn
        limit = self.config.idle_timeout_ms
        if limit:
            conn.active_ms = self.ws.GetTickCount64()
            self._deadline(conn, conn.active_ms + limit)
        self.stats.accepted += 1
        # BUG: (moved up: the peak is taken here, once the connection is in the table)
        self._begin(conn)


# ====================================================================== routines: the stop


class StopSkipsDraining(RoutineServer):
    """Core, the stop: only connections still open for input are closed; one
    that is draining (the client sent its FIN, or was hung up, and its
    replies are still queued or in flight) is forgotten, left to close when
    its output is out, which a client that does not read never lets happen.
    Needs a stop while a half-closed or hung-up client has output pending."""

    COPIED = ("_begin_stop",)

    def _begin_stop(self) -> None:
        """Close the listener and every connection; their operations complete
        with errors and are reaped by the waits that follow."""
        self._stopping = True
        ws = self.ws
        if self._listener != INVALID_SOCKET:
            ws.closesocket(self._listener)
            self._listener = INVALID_SOCKET
        self._close_accept_sockets()
        for conn in [c for c in self._conns.values() if c.state == "open"]:  # BUG: draining ones forgotten
            self._close_at_stop(conn)


# ====================================================================== the limits


class _FullHub(Hub):
    COPIED = ("full",)

    @property
    def full(self) -> bool:
        """True when no more clients may join (``max_clients`` reached)."""
        return len(self._clients) > self.limits.max_clients  # BUG: > for >=


class HubFullOffByOne(IocpServer):
    """The client limit off by one in the protocol: the hub is full only
    once it holds *more* than ``max_clients`` clients, so the server accepts
    and serves ``max_clients + 1`` at once.  Needs the client limit reached
    and one more client."""

    HUB = _FullHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its full


class IdleCloseAbortive(RoutineServer):
    """Core, the idle time-out: an idle connection is closed abortively
    (a reset), where the server closes it gracefully unless a send is in
    flight or output is queued: the client reads a reset for no data lost.
    Needs an idle time-out and a client that stays idle, owed nothing."""

    COPIED = ("_idle_check",)

    def _idle_check(self, conns: Iterable[_Conn], due: int, timeout_ms: int) -> tuple[int, int]:
        """When tick ``due`` has come, close those of ``conns`` that have been
        idle for ``idle_timeout_ms``.  Returns the tick before which none of the
        others expires (:data:`NEVER` if there are none), and ``timeout_ms``
        shortened to end then: the time-out of the wait that follows."""
        now = self.ws.GetTickCount64()
        if now >= due:
            limit = self.config.idle_timeout_ms
            due = NEVER
            for conn in list(conns):
                if conn.closed:
                    continue
                # Held back (back-pressure), it is not idle: the server stopped reading it.
                idle = limit and not self.hub.paused(conn.cid)
                expires = min(conn.active_ms + limit if idle else NEVER, conn.stall_due)
                if conn.stall_due <= now:  # a slow consumer: it has not drained for stall_timeout_ms
                    self.stats.stalled += 1
                    self.stats.cut_off += 1
                    self._close(conn, abort=True)
                elif expires <= now:
                    self.stats.timed_out += 1
                    self.stats.hung_up_timed_out += int(conn.state == "hangup")
                    self._close(conn, abort=True)  # BUG: a reset for an idle client
                elif expires < due:
                    due = expires
        if due == NEVER:
            return due, timeout_ms
        return due, min(timeout_ms, due - now)
