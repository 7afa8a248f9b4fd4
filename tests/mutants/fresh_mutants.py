"""Fresh single-bug variants of ovserver (issue 10, red team): bugs a developer
of such a server ships, planted by someone other than the tools' authors, in
every part of the server: the line protocol (echo and chat), the shared core,
and each of the three I/O models.

As in :mod:`tests.mutants.ovserver_mutants`: each class is one of ovserver's
server classes with one thing changed, the changed lines marked ``BUG``, a
copied method named in ``COPIED`` (a protocol bug: a copy of a :class:`Hub`
method in a Hub subclass named by ``HUB``).  :data:`tests.mutants.MUTANTS`
lists them with the traffic each one needs (their names start with ``fresh-``
in the benchmark's table).

These are test code: they are not shipped with ovserver.
"""

from __future__ import annotations

from fakewinsock import WSAOVERLAPPED, Winsock
from fakewinsock.constants import (
    FALSE,
    INFINITE,
    INVALID_SOCKET,
    SO_UPDATE_ACCEPT_CONTEXT,
    SOCKET_ERROR,
    SOL_SOCKET,
    TRUE,
    WSA_INFINITE,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_IO_COMPLETION,
    WSA_WAIT_TIMEOUT,
    WSAECONNRESET,
)
from ovserver._core import _CONNECTION_FAILED, ADDR_LEN, NEVER, SOCKET_SIZE, ServerConfig, ServerError, _Conn, _Io
from ovserver._events import EventServer, _Group
from ovserver._iocp import _CONTROLLER, STOP_KEY, IocpServer
from ovserver._protocol import (
    _HUNG_UP,
    _MEMBER,
    Action,
    Disconnect,
    Hangup,
    Hub,
    Mode,
    Resume,
    Send,
    Stall,
    _Client,
    chat_line,
    error_line,
)
from ovserver._routines import RoutineServer

__all__ = [
    "ChatBroadcastLiveDict",
    "ChatCrlfNormalised",
    "HungUpStaysMember",
    "PartialAtLimitRefused",
    "LimitCountsRoutedLines",
    "HangupStopsReading",
    "HangupClosesAtOnce",
    "RecvRepostedFirst",
    "NameFromLocalAddress",
    "SlotNotUpdated",
    "StopClosesWhileIterating",
    "StopWaitNotAlertable",
    "ServeForgetsClosing",
    "IocpFullServerNeverResumes",
    "IocpReceiveWithoutLock",
    "IocpDrainNotSignalled",
]


def _use_hub(server: EventServer | RoutineServer | IocpServer, hub: type[Hub]) -> None:
    server.hub = hub(server.config.mode, server.config.limits)
    server.stats.hub = server.hub.stats


# ====================================================================== the line protocol


class _LiveDictHub(Hub):
    COPIED = ("_route",)

    def _route(self, sender: _Client, line: bytes, actions: list[Action]) -> None:
        if self.mode is Mode.ECHO:
            self._enqueue(sender, line, actions)
            return
        msg = chat_line(sender.name, line)
        for r in self._members.values():  # BUG: the live dict, which a recipient cut off meanwhile changes
            if r is not sender:
                self._enqueue(r, msg, actions)


class ChatBroadcastLiveDict(RoutineServer):
    """Chat: a broadcast iterates over the members themselves, not a copy; a
    recipient cut off on the way (its queue over ``max_queued``: a slow reader)
    leaves the dict during the iteration (RuntimeError).  Needs a chat member
    that does not read while others talk past the output limit."""

    HUB = _LiveDictHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its _route()


class _CrlfHub(Hub):
    COPIED = ("_route",)

    def _route(self, sender: _Client, line: bytes, actions: list[Action]) -> None:
        if self.mode is Mode.ECHO:
            self._enqueue(sender, line, actions)
            return
        if line.endswith(b"\r\n"):  # BUG: a telnet client's CRLF taken as the line's end
            line = line[:-2] + b"\n"  # BUG: the protocol passes every byte on unchanged
        msg = chat_line(sender.name, line)
        for r in list(self._members.values()):
            if r is not sender:
                self._enqueue(r, msg, actions)


class ChatCrlfNormalised(EventServer):
    """Chat: a line ending in CR LF is passed on as ending in LF (the protocol
    passes every byte on unchanged).  Needs a chat line whose last byte before
    the newline is a carriage return."""

    HUB = _CrlfHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its _route()


class _HungUpMemberHub(Hub):
    COPIED = ("_too_long",)

    def _too_long(self, c: _Client, actions: list[Action]) -> None:
        self.stats.too_long += 1
        self.stats.discarded += len(c.inbuf)
        c.inbuf.clear()
        c.scanned = 0
        c.state = _HUNG_UP
        # BUG: self._members.pop(c.cid, None) forgotten: a hung-up client still gets chat lines
        self._enqueue(c, error_line(self.limits.max_line), actions)
        if c.cid in self._clients:
            actions.append(Hangup(c.cid, "line too long"))


class HungUpStaysMember(IocpServer):
    """Chat: a client hung up for a line too long stays a member, so the lines
    the others send after its error line are queued for it, before the
    server's FIN.  Needs a chat line over ``max_line`` while others talk."""

    HUB = _HungUpMemberHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its _too_long()


class _PartialAtLimitHub(Hub):
    COPIED = ("receive",)

    def receive(self, cid: int, data: bytes | bytearray | memoryview) -> list[Action]:
        """Bytes received from ``cid``, in order; returns what the driver must do."""
        actions: list[Action] = []
        c = self._clients.get(cid)
        n = len(data)
        self.stats.bytes_in += n
        if c is None or n == 0:
            return actions
        if c.state != _MEMBER:
            self._discard(c, n, actions)
            return actions
        limit = self.limits.max_line
        if self._echo and isinstance(data, bytes):
            # Echo's common case, framed without a loop: everything up to the
            # last newline (the partial line buffered before, then whole lines)
            # goes back as one block, when no limit can be hit on the way.
            last = data.rfind(b"\n")
            pending = len(buf := c.inbuf)
            if (0 <= last and pending + last <= limit and n - last - 1 <= limit
                    and c.queued + pending + last + 1 <= self.limits.max_queued):
                lines = data.count(b"\n")
                self.stats.lines += lines
                block = data[:last + 1]
                if pending:
                    block = b"".join((buf, block))
                    buf.clear()
                if last + 1 < n:
                    buf += data[last + 1:]
                c.scanned = n - last - 1
                self._enqueue(c, block, actions, lines)
                return actions
        buf = c.inbuf
        buf += data
        start = 0
        while True:
            nl = buf.find(b"\n", max(c.scanned, start))
            if nl < 0:
                if len(buf) - start >= limit:  # BUG: a partial line of exactly max_line bytes is refused
                    del buf[:start]  # the lines before it were routed: not discarded
                    self._too_long(c, actions)
                    return actions
                break
            if nl - start > limit:
                del buf[:start]
                self._too_long(c, actions)
                return actions
            line = bytes(buf[start:nl + 1])
            start = nl + 1
            self.stats.lines += 1
            self._route(c, line, actions)
            if cid not in self._clients:  # echo: its own queue overflowed, it was cut off
                return actions
        if start:
            del buf[:start]
        c.scanned = len(buf)
        return actions


class PartialAtLimitRefused(RoutineServer):
    """The check of a partial line (no newline yet) refuses one of exactly
    ``max_line`` bytes, which is allowed: a line at the limit whose newline
    comes in the next receive is cut off as too long.  Needs a line of exactly
    ``max_line`` bytes split right before its newline (chat, or echo past the
    fast path)."""

    HUB = _PartialAtLimitHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its receive()


class _CountsRoutedHub(Hub):
    COPIED = ("receive",)

    def receive(self, cid: int, data: bytes | bytearray | memoryview) -> list[Action]:
        """Bytes received from ``cid``, in order; returns what the driver must do."""
        actions: list[Action] = []
        c = self._clients.get(cid)
        n = len(data)
        self.stats.bytes_in += n
        if c is None or n == 0:
            return actions
        if c.state != _MEMBER:
            self._discard(c, n, actions)
            return actions
        limit = self.limits.max_line
        if self._echo and isinstance(data, bytes):
            # Echo's common case, framed without a loop: everything up to the
            # last newline (the partial line buffered before, then whole lines)
            # goes back as one block, when no limit can be hit on the way.
            last = data.rfind(b"\n")
            pending = len(buf := c.inbuf)
            if (0 <= last and pending + last <= limit and n - last - 1 <= limit
                    and c.queued + pending + last + 1 <= self.limits.max_queued):
                lines = data.count(b"\n")
                self.stats.lines += lines
                block = data[:last + 1]
                if pending:
                    block = b"".join((buf, block))
                    buf.clear()
                if last + 1 < n:
                    buf += data[last + 1:]
                c.scanned = n - last - 1
                self._enqueue(c, block, actions, lines)
                return actions
        buf = c.inbuf
        buf += data
        start = 0
        while True:
            nl = buf.find(b"\n", max(c.scanned, start))
            if nl < 0:
                if len(buf) > limit:  # BUG: the lines routed from this buffer are counted too
                    del buf[:start]  # the lines before it were routed: not discarded
                    self._too_long(c, actions)
                    return actions
                break
            if nl - start > limit:
                del buf[:start]
                self._too_long(c, actions)
                return actions
            line = bytes(buf[start:nl + 1])
            start = nl + 1
            self.stats.lines += 1
            self._route(c, line, actions)
            if cid not in self._clients:  # echo: its own queue overflowed, it was cut off
                return actions
        if start:
            del buf[:start]
        c.scanned = len(buf)
        return actions


class LimitCountsRoutedLines(EventServer):
    """The check of a partial line counts the whole receive buffer, the lines
    already routed from it included: a receive of several short lines and the
    start of the next, more than ``max_line`` bytes in all, hangs the client up.
    Needs receives longer than ``max_line`` that end mid-line (chat, or echo
    past the fast path)."""

    HUB = _CountsRoutedHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its receive()


# ====================================================================== the shared core


class HangupStopsReading(RoutineServer):
    """After a hang-up (line too long: error line, then FIN) no receive is
    posted any more ("we are done with it"), so the server never sees the
    client's FIN or reset, and the connection stays open until the stop.
    Needs a line over ``max_line``."""

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
            if self.config.idle_timeout_ms and io.buf.find(b"\n", 0, nbytes) >= 0:
                conn.active_ms = self.ws.GetTickCount64()  # a line is complete
            self._apply(self.hub.receive(conn.cid, bytes(io.buf[:nbytes])))
            self._after_hub(conn)
            # Held back (back-pressure): read on at its Resume.  (No Resume came
            # meanwhile: a client is held back only here, with no receive posted.)
            if not conn.closed and not self.hub.hold(conn.cid) and conn.state == "open":  # BUG: not if hung up
                self._post_recv(conn)


class HangupClosesAtOnce(RoutineServer):
    """A hang-up (line too long) sends the error line and closes the socket at
    once ("it broke the protocol"), not after the error line is out: with the
    send in flight the close is abortive, and the client gets a reset instead
    of its error line and a FIN.  Needs a line over ``max_line``."""

    COPIED = ("_apply",)

    def _apply(self, actions: list[Action]) -> None:
        for a in actions:
            conn = self._conns.get(a.cid)
            if conn is None or conn.closed:
                continue
            if isinstance(a, Send):
                self._post_send(conn)
            elif isinstance(a, Hangup):
                self.stats.hung_up += 1
                conn.state = "hangup"
                self._post_send(conn)
                self._close(conn)  # BUG: closed at once, the error line perhaps still in flight
            elif isinstance(a, Disconnect):
                self.stats.cut_off += 1
                self._close(conn, abort=True)
            elif isinstance(a, Resume):
                if conn.state == "open" and not conn.recv.busy and not self._stop:
                    self._read_on(conn)
            elif isinstance(a, Stall):  # (not if the Send before it took the queue under the mark)
                if conn.stall_due == NEVER and self.hub.over(conn.cid):
                    conn.stall_due = self.ws.GetTickCount64() + self.config.stall_timeout_ms
                    self._deadline(conn, conn.stall_due)


class RecvRepostedFirst(EventServer):
    """To keep a receive always posted, the next WSARecv is posted before the
    bytes just received are handed to the protocol, into the same buffer: when
    it completes at once (data waiting), it overwrites them first.  Needs data
    waiting when a receive completes: a client that sends faster than one
    receive takes."""

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
            self._post_recv(conn)  # BUG: posted first, into the buffer still to be read
            if self.config.idle_timeout_ms and io.buf.find(b"\n", 0, nbytes) >= 0:
                conn.active_ms = self.ws.GetTickCount64()  # a line is complete
            self._apply(self.hub.receive(conn.cid, bytes(io.buf[:nbytes])))
            self._after_hub(conn)
            # BUG: (moved up: read on here unless closed or held back by back-pressure)


class NameFromLocalAddress(IocpServer):
    """Chat names a client by the wrong address of AcceptEx's pair: the local
    one (the server's own address), so every client has the same name."""

    COPIED = ("_accept_done",)

    def _accept_done(self, io: _Io) -> None:
        """Accept slot ``io``'s AcceptEx completed: serve the new connection, post again."""
        ws = self.ws
        io.busy = False
        self._accept_handled(io)
        s, io.sock = io.sock, INVALID_SOCKET
        if self._stopping:  # cancelled by closing the listener (995); s is already closed
            return
        ok, _, _ = ws.WSAGetOverlappedResult(self._listener, io, FALSE)
        error = 0 if ok else ws.WSAGetLastError()
        if not ok or ws.setsockopt(s, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, self._listener,
                                   SOCKET_SIZE) == SOCKET_ERROR:
            self.stats.accept_failures += 1
            if not ok and error in _CONNECTION_FAILED:
                self.stats.gone_unaccepted += 1
            elif ok:
                self.stats.refused += 1
            ws.closesocket(s)
            self._accept_again(error)
            return
        assert isinstance(io.buf, bytearray)
        remote = ws.GetAcceptExSockaddrs(io.buf, 0, ADDR_LEN, ADDR_LEN).LocalSockaddr  # BUG: Local, not Remote
        self._open(s, f"{remote.host}:{remote.port}".encode())
        self._post_accept()


class ServeForgetsClosing(RoutineServer):
    """A stop ends the server loop once no connection is *live*, forgetting
    the closed ones whose cancelled operations have not completed yet:
    WSACleanup while they are still in flight (in C: OVERLAPPEDs freed while
    the kernel writes into them).  Needs a stop with a connection open."""

    COPIED = ("_serve",)

    def _serve(self) -> None:
        while True:
            # The flag is read after every post, so a stop signal swallowed by a
            # post resetting the wake event (AcceptEx on it) is still seen.
            if self._stop and not self._stopping:
                self._begin_stop()
            if self._stopping:
                if not self._accepting() and not self._conns:  # BUG: self._closing forgotten
                    return
                if self._gave_up:
                    self.stats.abandoned = self._accepting() + sum(
                        int(c.recv.busy) + int(c.send.busy) for c in self._closing.values())
                    return
                self._wait(self.config.stop_grace_ms)
            else:
                self._wait(self._running_timeout())


# ====================================================================== the models


class SlotNotUpdated(EventServer):
    """Events: a client leaving its group's wait array is replaced by the last
    one, as the lecture notes do, but the moved client's index is not updated:
    when it leaves in turn, the wrong entry of the array is replaced.  Needs
    three or more clients in a group, leaving in an order other than the
    reverse of their arrival."""

    COPIED = ("_conn_closed",)

    def _conn_closed(self, conn: _Conn) -> None:
        # Remove the client as the lecture notes do: the last one moves into its index.
        group = self._group_of[conn.cid]
        last = group.members.pop()
        group.events.pop()  # (its event follows it)
        if last is not conn:
            group.members[conn.slot] = last
            group.events[conn.slot] = last.event
            # BUG: last.slot = conn.slot forgotten
        conn.slot = -1
        if not conn.idle():
            group.zombies.append(conn)  # its event stays alive until it is reaped


class StopClosesWhileIterating(EventServer):
    """Events: at a stop a group closes its clients iterating over its member
    list itself, from which each close removes the client (the last one moves
    into its place): every other client is skipped and stays open.  Needs a
    stop while a group serves two clients or more."""

    COPIED = ("_group_loop",)

    def _group_loop(self, group: _Group) -> None:
        """Serve the group until it is empty (holding the lock but in its waits)."""
        while True:
            if group.wake_turn or group.stop:
                group.wake_turn = False
                self._take_inbox(group)
            actions, group.actions = group.actions, []
            self._apply(actions)
            if group.stop and not group.stopping:
                group.stopping = True
                for conn in group.members:  # BUG: the list each close changes
                    self._close_at_stop(conn)
            timeout = self.config.stop_grace_ms if group.stopping else WSA_INFINITE
            if self._timers() and not group.stopping:
                group.idle_due, timeout = self._idle_check(group.members, group.idle_due, timeout)
            if group.stopping and group.gave_up:
                self.stats.abandoned += sum(int(c.recv.busy) + int(c.send.busy) for c in group.zombies)
            elif group.members or group.zombies or group.inbox:
                self._wait_group(group, timeout)
                continue
            # Empty (or given up): leave the list in the same hold of the lock in
            # which the inbox was found empty, so nothing is handed over any more.
            # (Given up: a stopping group took its inbox at the top of the loop.)
            self._groups.remove(group)
            self._finished.append(group.thread)
            return


class StopWaitNotAlertable(RoutineServer):
    """Routines: once stopping, the server waits for the wake event only ("we
    only wait out the grace period"), not alertably: the routines of the
    operations the stop cancelled never run, and it gives up on them.  Needs a
    stop with a connection open."""

    COPIED = ("_wait",)

    def _wait(self, timeout_ms: int) -> None:
        if self._accept_retry:
            left = self._retry_due - self.ws.GetTickCount64()
            if left <= 0:
                self._retry_accept()
                return  # the loop around looks at the stop flag and waits again
            timeout_ms = min(timeout_ms, left)
        self._ran = 0
        alertable = FALSE if self._stopping else TRUE  # BUG: the stop's wait is not alertable
        rc = self.ws.WSAWaitForMultipleEvents(1, [self._wake], FALSE, timeout_ms, alertable)  # BUG
        if rc == WSA_WAIT_IO_COMPLETION:
            return  # the routines have run
        if rc == WSA_WAIT_EVENT_0:
            self._on_wake()
        elif rc == WSA_WAIT_TIMEOUT:
            self._timed_out(timeout_ms)
        else:
            raise ServerError(f"WSAWaitForMultipleEvents failed: {rc:#x} (error {self.ws.WSAGetLastError()})")


class IocpFullServerNeverResumes(IocpServer):
    """IOCP: only the controller posts AcceptEx when a place frees up (the
    events model's rule, "posting resets the wake event"), but a worker that
    closes a connection neither posts nor wakes the controller: a full server
    whose clients leave through the workers never accepts again.  Needs the
    client limit reached, then a client leaving and another waiting."""

    COPIED = ("_resume_accepting",)

    def _resume_accepting(self) -> None:
        if not self._accept_retry and self._holder == _CONTROLLER:  # BUG: a worker's close does not resume
            self._post_accept()


class IocpReceiveWithoutLock(IocpServer):
    """IOCP: a receive's packet is handled without the server lock ("one
    receive is outstanding per connection, so no two workers handle the same
    connection's receives"), but the receive's handling sends replies and
    routes chat lines, which the connection's send completing on another
    worker, and every other connection, also touch.  Needs two workers
    interleaved: a receive handled while another packet is."""

    COPIED = ("_work",)

    def _work(self, index: int) -> None:
        ws = self.ws
        while True:
            ok, nbytes, key, ov = ws.GetQueuedCompletionStatus(self._port, INFINITE)
            if ov is None:
                if ok and key == STOP_KEY:
                    return
                raise ServerError(f"GetQueuedCompletionStatus failed (error {ws.GetLastError()}, key {key:#x})")
            if isinstance(ov, _Io) and ov.kind == "recv":  # BUG: "one receive per connection: no lock needed"
                self._dispatch(bool(ok), nbytes, key, ov)  # BUG
                continue  # BUG
            self._enter(index)
            try:
                self._dispatch(bool(ok), nbytes, key, ov)
            finally:
                self._leave_if_held(index)


class IocpDrainNotSignalled(IocpServer):
    """IOCP: the worker that handles the last packet of a stop does not signal
    the controller, which then waits out the whole grace period (1 s) before
    it sees that everything was reaped.  Needs a stop with a connection open."""

    COPIED = ("_dispatch",)

    def _dispatch(self, ok: bool, nbytes: int, key: int, ov: WSAOVERLAPPED) -> None:
        """Handle one dequeued packet (holding the lock)."""
        if not isinstance(ov, _Io):
            raise ServerError(f"a packet with a foreign OVERLAPPED: {ov!r}")
        if not self._stopping:
            self._accept_early(ov)  # before this packet, which may take long
        if ov.kind == "accept":
            self._accept_packet(key, ov)
        else:
            conn = ov.conn
            if conn is None:
                raise ServerError(f"a packet (key {key:#x}) for a released connection context")
            if key != conn.cid or not ov.busy:
                raise ServerError(f"a {ov.kind} packet (key {key:#x}) for connection {conn.cid} that is not "
                                  f"in flight (busy={ov.busy})")
            if conn.closed:
                self._reaped(ov)  # a cancelled or late operation of a closed connection
            else:
                error = 0
                if not ok:  # the packet's error is a Win32 one: the Winsock error of the operation
                    self.ws.WSAGetOverlappedResult(conn.sock, ov, FALSE)
                    error = self.ws.WSAGetLastError()
                self._completed(ov, error, nbytes)
        # BUG: the controller is not woken when the stop has drained
