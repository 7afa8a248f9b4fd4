"""Single-bug variants of ovserver planted by a tenth red team: bugs a
developer of such a server plausibly ships, spread over the protocol (a line
split over two receives, a long line that comes with its newline, the queue
limit, chat names), the events model's groups (a handed-over client's wait
index, the 64-handle wait array with closing clients), the routines model's
wait, the iocp model's owed accept packets and its stop, the accept path's
room for outstanding AcceptEx calls, and the shutdown summary's counts.

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
from fakewinsock.constants import (
    FALSE,
    SD_SEND,
    TRUE,
    WSA_INFINITE,
    WSA_MAXIMUM_WAIT_EVENTS,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_IO_COMPLETION,
    WSA_WAIT_TIMEOUT,
    WSAECONNRESET,
)
from ovserver._core import NEVER, Server, ServerConfig, ServerError, _Conn, _Io
from ovserver._events import CLOSING_POLL_MS, EventServer, _Group
from ovserver._iocp import LISTEN_KEY, IocpServer
from ovserver._protocol import (
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
)
from ovserver._routines import RoutineServer

__all__ = [
    "EchoDropsBufferedHead",
    "LongLineWithNewlineRouted",
    "QueueLimitCheckedBeforeAdding",
    "ChatLineNamesRecipient",
    "InboxSlotOffByOne",
    "ZombiesOverflowWaitArray",
    "IocpOwedNeverCleared",
    "RoutineCompletionCountsAsTimeout",
    "StopClosesAbortively",
    "EndedCountedWhenDrained",
    "AcceptRoomIgnoresOutstanding",
    "HungUpCountedAtFin",
]


def _use_hub(server: EventServer | RoutineServer | IocpServer, hub: type[Hub]) -> None:
    server.hub = hub(server.config.mode, server.config.limits)
    server.stats.hub = server.hub.stats


# ====================================================================== protocol: framing


class _HeadDroppedHub(Hub):
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
                if pending:  # BUG: the buffered head of the line is not put in front of the block
                    buf.clear()  # BUG
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
                if len(buf) - start > limit:
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


class EchoDropsBufferedHead(EventServer):
    """Echo's fast path (a receive ending in a newline, no limit in reach)
    clears the partial line buffered from the receives before without putting
    it in front of the lines it sends back: a line split over two receives
    comes back without its head.  Needs a line split over receives (echo)."""

    HUB = _HeadDroppedHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its receive()


class _WholeLongLineHub(Hub):
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
                if len(buf) - start > limit:
                    del buf[:start]  # the lines before it were routed: not discarded
                    self._too_long(c, actions)
                    return actions
                break
            # BUG: a line is measured only while its newline has not come: one that comes whole is routed
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


class LongLineWithNewlineRouted(IocpServer):
    """The line limit is checked only on the bytes buffered without a
    newline (the endless line), not on a line whose newline is in the same
    receive: a line over max_line that reaches the server with its newline
    (or the part of it past the limit with the newline) is routed, not
    refused.  Needs a line over max_line whose bytes past the limit come in
    one receive with its newline."""

    HUB = _WholeLongLineHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its receive()


# ====================================================================== protocol: output


class _QueueLimitHub(Hub):
    COPIED = ("_enqueue",)

    def _enqueue(self, c: _Client, data: bytes, actions: list[Action], messages: int = 1) -> None:
        """Queue ``data`` (``messages`` messages) for ``c``, or cut it off."""
        if c.queued > self.limits.max_queued:  # BUG: the queue before this message, not with it
            self._cut_off(c, "slow reader: output queue over the limit", actions)
            return
        was_empty = not c.out
        c.out.append(data)
        c.queued += len(data)
        self.stats.deliveries += messages
        self.stats.bytes_out += len(data)
        if was_empty:
            actions.append(Send(c.cid))
        if self._high and c.queued > self._high and c.cid not in self._over and c.state == _MEMBER:
            self._over.add(c.cid)
            actions.append(Stall(c.cid))


class QueueLimitCheckedBeforeAdding(RoutineServer):
    """max_queued is compared with the queue as it was before the message,
    not with the message added: a client that does not read is cut off one
    message late, its queue over the limit by up to a message (max_line) and
    that message sent.  Needs output backed up to max_queued for a client
    that does not read."""

    HUB = _QueueLimitHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its _enqueue()


class _RecipientNameHub(Hub):
    COPIED = ("_route",)

    def _route(self, sender: _Client, line: bytes, actions: list[Action]) -> None:
        if self.mode is Mode.ECHO:
            self._enqueue(sender, line, actions)
            return
        # BUG: the message is not built once, with the sender's name
        for r in list(self._members.values()):
            if r is not sender:
                self._enqueue(r, chat_line(r.name, line), actions)  # BUG: the recipient's name


class ChatLineNamesRecipient(RoutineServer):
    """Chat fan-out: each copy of a line is prefixed with its recipient's
    name, not its sender's (the message built inside the loop, with the
    loop's variable).  Needs a chat line and another member."""

    HUB = _RecipientNameHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its _route()


# ====================================================================== events: the groups


class InboxSlotOffByOne(EventServer):
    """Events, the hand-over: a client taken from the group's inbox is given
    its index in the wait array (the wake event is at 0), not in the
    members' list: when another client leaves, the last member is moved to
    the wrong place (over a live member) and the one that left stays in the
    list.  Needs a client that leaves while a member handed over after it is
    still served."""

    COPIED = ("_take_inbox",)

    def _take_inbox(self, group: _Group) -> None:
        """Serve the connections the acceptor handed over."""
        handed, group.inbox = group.inbox, []
        if not handed:
            return
        self._handed -= len(handed)
        if not self._stopping and not self._accept_retry and self._accepting() < self.config.accepts:
            self.ws.WSASetEvent(self._wake)  # room ahead of the groups again: the acceptor posts AcceptEx
        limit = self.config.idle_timeout_ms
        for conn in handed:
            if limit:
                group.idle_due = min(group.idle_due, conn.active_ms + limit)
            conn.slot = len(group.members) + 1  # BUG: its index in the wait array (0: the wake event)
            group.members.append(conn)
            group.events.append(conn.event)
            Server._begin(self, conn)


class ZombiesOverflowWaitArray(EventServer):
    """Events, the 64-handle wait array: the room left for closing clients'
    events is counted without the group's wake event, so a group whose
    members and closing clients number 64 or more waits on 65 events (a
    failed wait: WSA_INVALID_PARAMETER).  Needs a full group (63 members)
    with a closing client whose operation is still in flight."""

    COPIED = ("_wait_group",)

    def _wait_group(self, group: _Group, timeout_ms: int) -> None:
        """Wait once for the group's events and handle them."""
        members = group.members
        n = len(members)
        first = group.next_first % (n + 1)
        # The wake event and the clients' events ([wake, *members]), from index
        # ``first`` on and round (fairness), the clients' from ``events``, kept
        # beside ``members`` in the same order: no client is read (the wait's
        # index i is [wake, *members]' (first + i) % (n + 1); both lists
        # change in this thread only).
        handles = [group.wake, *group.events]
        if first:
            handles = handles[first:] + handles[:first]
        zombies = group.zombies
        if zombies:
            room = WSA_MAXIMUM_WAIT_EVENTS - n  # BUG: the wake event not counted
            z = group.next_zombie % len(zombies)
            shown = (zombies[z:] + zombies[:z])[:room]
            handles += [c.event for c in shown]
            if len(shown) < len(zombies):
                group.next_zombie = z + len(shown)
                if timeout_ms == WSA_INFINITE or timeout_ms > CLOSING_POLL_MS:
                    timeout_ms = CLOSING_POLL_MS
        self._leave()
        try:
            rc = self.ws.WSAWaitForMultipleEvents(len(handles), handles, FALSE, timeout_ms, FALSE)
        finally:
            self._enter(group)
        if zombies:
            self._sweep_zombies(group)
        if rc == WSA_WAIT_TIMEOUT:
            if group.stopping:
                group.waited_ms += timeout_ms
                group.gave_up = group.waited_ms >= self.config.stop_grace_ms
            return
        i = rc - WSA_WAIT_EVENT_0
        if not 0 <= i < len(handles):
            raise ServerError(f"WSAWaitForMultipleEvents failed: {rc:#x} (error {self.ws.WSAGetLastError()})")
        if i > n:
            return  # a closing client: swept above
        group.next_first = first + i + 1  # start after the event just served
        k = (first + i) % (n + 1)
        conn = members[k - 1] if k else None
        if conn is None:
            # Reset before the inbox, actions and stop flag are read (the loop
            # does that next, in this hold of the lock): whatever is added
            # after this signals again.  Only in this turn is the inbox taken:
            # behind the clients signalled before it.
            self.ws.WSAResetEvent(group.wake)
            group.wake_turn = True
            return
        self._handle_group(conn)


# ====================================================================== the summary's counts


class EndedCountedWhenDrained(EventServer):
    """Core, the shutdown summary's counts: a client's graceful end is
    counted when its replies are out and the server closes it, not when its
    FIN is read: a client that half-closed and then reset, was cut off or
    was closed by a stop before its replies were out is not counted as
    ended.  Needs a FIN while replies are still owed, then the connection
    closed otherwise."""

    COPIED = ("_completed", "_post_send")

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
            # BUG: the end is counted when the replies are out (_post_send), not at the FIN
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
            if not conn.closed and not self.hub.hold(conn.cid):
                self._post_recv(conn)

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
                self.stats.ended += 1  # BUG: counted here, once its replies are out
                self._close(conn)
            elif conn.state == "hangup" and not conn.fin_sent:
                conn.fin_sent = True  # the error line is out: FIN, keep reading until the client goes
                self.ws.shutdown(conn.sock, SD_SEND)
            return
        io.buf = data  # bytes: immutable while in flight
        io.wsabufs = [WSABUF(len(data), data)]
        rc, _, _ = self.ws.WSASend(conn.sock, io.wsabufs, 1, 0, io, self._routine)
        self._after_post(conn, io, rc)


class HungUpCountedAtFin(RoutineServer):
    """Core, the shutdown summary's counts: a hang-up (a line over
    max_line) is counted when its error line is out and the FIN sent, not
    when the line was found too long: a hung-up client that resets, is cut
    off or is stopped before its error line is out is not counted.  Needs a
    long line whose error line is held back (a client that does not read),
    then a reset, a cut-off or a stop."""

    COPIED = ("_apply", "_post_send")

    def _apply(self, actions: list[Action]) -> None:
        for a in actions:
            conn = self._conns.get(a.cid)
            if conn is None or conn.closed:
                continue
            if isinstance(a, Send):
                self._post_send(conn)
            elif isinstance(a, Hangup):
                # BUG: counted when its FIN goes (_post_send), not at the hang-up
                conn.state = "hangup"
                self._post_send(conn)
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
                self.stats.hung_up += 1  # BUG: counted once its error line is out
                self.ws.shutdown(conn.sock, SD_SEND)
            return
        io.buf = data  # bytes: immutable while in flight
        io.wsabufs = [WSABUF(len(data), data)]
        rc, _, _ = self.ws.WSASend(conn.sock, io.wsabufs, 1, 0, io, self._routine)
        self._after_post(conn, io, rc)


# ====================================================================== routines


class RoutineCompletionCountsAsTimeout(RoutineServer):
    """Routines: a wait that ended because completion routines ran
    (WSA_WAIT_IO_COMPLETION) is handled as one that timed out: a failed
    accept is retried early (harmless), and during a stop each such wait
    counts its whole time-out towards stop_grace_ms, so the stop gives up
    on the cancelled operations at the first wait that runs routines and
    calls WSACleanup with the later ones still pending.  Needs a stop whose
    cancelled operations complete over more than one wait."""

    COPIED = ("_wait",)

    def _wait(self, timeout_ms: int) -> None:
        if self._accept_retry:
            left = self._retry_due - self.ws.GetTickCount64()
            if left <= 0:
                self._retry_accept()
                return  # the loop around looks at the stop flag and waits again
            timeout_ms = min(timeout_ms, left)
        self._ran = 0
        rc = self.ws.WSAWaitForMultipleEvents(1, [self._wake], FALSE, timeout_ms, TRUE)
        if rc == WSA_WAIT_IO_COMPLETION:
            rc = WSA_WAIT_TIMEOUT  # BUG: a wait that ran routines taken for one that timed out
        if rc == WSA_WAIT_EVENT_0:
            self._on_wake()
        elif rc == WSA_WAIT_TIMEOUT:
            self._timed_out(timeout_ms)
        else:
            raise ServerError(f"WSAWaitForMultipleEvents failed: {rc:#x} (error {self.ws.WSAGetLastError()})")


# ====================================================================== the accept path


class AcceptRoomIgnoresOutstanding(RoutineServer):
    """Accepting: whether there is room for one more AcceptEx looks at the
    live connections only, not at the AcceptEx calls already outstanding:
    with several posted (``accepts``) and one place left, each of them may
    complete, and the second finds the protocol full (the hub raises).
    Needs accepts > 1 with the client limit reached by a burst."""

    COPIED = ("_room_to_accept",)

    def _room_to_accept(self, busy: int) -> bool:
        """With ``busy`` AcceptEx calls outstanding, one more has a place:
        the table has room for every accept that completes, and the protocol
        takes another member."""
        return len(self._conns) < self.max_connections and not self.hub.full  # BUG: busy not counted


# ====================================================================== iocp


class IocpOwedNeverCleared(IocpServer):
    """Iocp, early accepts: the packet of an AcceptEx a worker completed
    early finds its slot in the owed table but leaves it there: when the
    slot is posted again and its next accept's packet comes, it is taken for
    an owed one and freed, the new connection never served (its accept
    socket left open), and the stop never finds the server drained.  Needs
    an accept completed early (its packet behind a receive's or a send's)."""

    COPIED = ("_accept_packet",)

    def _accept_packet(self, key: int, ov: _Io) -> None:
        """An AcceptEx packet: complete the accept, unless a worker already has
        (:meth:`_accept_early`); then the OVERLAPPED is free for a later post."""
        if key != LISTEN_KEY:
            raise ServerError(f"an AcceptEx packet with key {key:#x}")
        if self._owed.get(id(ov)) is not None:  # BUG: looked up, not removed
            self._free_accepts.append(ov)  # free for a later post
            return
        if not ov.busy or ov not in self._accepts:
            raise ServerError(f"an AcceptEx packet for an OVERLAPPED not in flight (busy={ov.busy})")
        self._accept_done(ov)


# ====================================================================== the stop


class StopClosesAbortively(IocpServer):
    """Core, the stop: every connection is closed abortively (a reset),
    where the server closes gracefully unless a send is in flight or output
    is queued: a client that was sent all its replies, but had not read
    them yet, loses them (a reset discards what its receive buffer holds)
    and reads 10054 for a server that owed it nothing.  Needs a stop while
    a client has been sent everything it is owed.  (The bug is in the close
    of ``_close_at_stop``, which ``_begin_stop`` calls for each connection.)"""

    COPIED = ("_close_at_stop",)

    def _close_at_stop(self, conn: _Conn) -> None:
        """Close ``conn`` for the stop: it counts in ``closed_at_stop`` unless
        its FIN was read (that one is counted in ``ended``)."""
        self.stats.closed_at_stop += int(conn.state != "eof")
        self._close(conn, abort=True)  # BUG: every connection reset
