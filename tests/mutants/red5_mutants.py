"""Single-bug variants of ovserver planted by a fifth red team (issue 10):
bugs a developer of a Winsock overlapped-IO server ships where the earlier
rounds were thin: the iocp model's in-flight count dropped when a packet is
dequeued rather than when it is handled, its send slot taken for free once
HasOverlappedIoCompleted says so (its packet still queued), the Win32 error of
a failed GetQueuedCompletionStatus taken for the Winsock one; the events
model's hand-over (a group's room counted without the clients handed to it),
a group ending with closing clients in flight, a stop read before the
hand-overs; chat fan-out stopped by a recipient cut off; the line limit's
hang-up dropping the replies queued before it, or sending its FIN before
they are out; the next AcceptEx posted before the addresses of the last one
were read.

Conventions as in :mod:`tests.mutants.fresh_mutants`: each class is one of
ovserver's server classes with one thing changed, the changed lines marked
``BUG``, each copied method named in ``COPIED`` (a protocol bug: a copy of a
:class:`Hub` method in a Hub subclass named by ``HUB``).
:data:`tests.mutants.MUTANTS` lists them with the traffic each one needs and
what catches them.

These are test code: they are not shipped with ovserver.
"""

from __future__ import annotations

from fakewinsock import WSABUF, WSAOVERLAPPED, Winsock
from fakewinsock.constants import (
    FALSE,
    INFINITE,
    INVALID_SOCKET,
    SD_SEND,
    SO_UPDATE_ACCEPT_CONTEXT,
    SOCKET_ERROR,
    SOL_SOCKET,
    WSA_INFINITE,
)
from ovserver._core import (
    _CONNECTION_FAILED,
    ADDR_LEN,
    NEVER,
    SOCKET_SIZE,
    Server,
    ServerConfig,
    ServerError,
    _Conn,
    _Io,
)
from ovserver._events import EventServer, _Group
from ovserver._iocp import STOP_KEY, IocpServer
from ovserver._protocol import (
    _HUNG_UP,
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
    "IocpBusyClearedAtDequeue",
    "IocpSendFreeAtCompletion",
    "IocpWin32ErrorAsWinsock",
    "GroupRoomIgnoresInbox",
    "GroupEndsWithZombies",
    "StopBeforeInbox",
    "FanoutStopsAtCutOff",
    "HangupDropsQueuedReplies",
    "HangupFinBeforeQueueDrained",
    "AcceptRepostedBeforeAddresses",
]


def _use_hub(server: Server, hub: type[Hub]) -> None:
    server.hub = hub(server.config.mode, server.config.limits)
    server.stats.hub = server.hub.stats


# ====================================================================== iocp


class IocpBusyClearedAtDequeue(IocpServer):
    """IOCP, reference counting: a worker drops the operation from its
    connection's in-flight count as soon as GetQueuedCompletionStatus hands it
    the packet ("InterlockedDecrement(&ctx->pending) after the dequeue"), before
    it has the lock and has handled it.  A close by another worker meanwhile (a
    chat cut-off, the stop, a failed send) then finds nothing in flight and
    frees the context the first worker is about to use; and the slot looks free
    to a chat line routed meanwhile, which posts a second WSASend on it.  Needs
    two workers: a connection closed, or sent to, while its packet waits for
    the lock."""

    COPIED = ("_work", "_dispatch")

    def _work(self, index: int) -> None:
        ws = self.ws
        while True:
            ok, nbytes, key, ov = ws.GetQueuedCompletionStatus(self._port, INFINITE)
            if ov is None:
                if ok and key == STOP_KEY:
                    return
                raise ServerError(f"GetQueuedCompletionStatus failed (error {ws.GetLastError()}, key {key:#x})")
            if isinstance(ov, _Io) and ov.conn is not None:  # BUG: no longer in flight once dequeued
                ov.busy = False  # BUG
            self._enter(index)
            try:
                self._dispatch(bool(ok), nbytes, key, ov)
            finally:
                self._leave_if_held(index)

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
            if key != conn.cid:  # BUG: (busy was cleared at the dequeue)
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
        if self._stopping and self._drained():
            self.ws.WSASetEvent(self._wake)  # the controller may now stop the workers


class IocpSendFreeAtCompletion(IocpServer):
    """IOCP, two operations of a connection in flight: the send slot is taken
    to be free as soon as its send has completed (HasOverlappedIoCompleted),
    not when its packet has been handled.  A reply produced meanwhile (the
    receive's packet handled first, by another worker or the same one) posts
    the next WSASend on the OVERLAPPED whose packet is still queued; that
    packet is then handled as the new send's completion, and the slot is
    posted again while the new send is in flight.  Needs a send completed and
    its packet queued when the next reply is ready: a client that sends again
    while its previous echo is being delivered."""

    COPIED = ("_post_send",)

    def _post_send(self, conn: _Conn) -> None:
        """Send the next piece of ``conn``'s output unless a send is in flight;
        with nothing left, finish a hang-up or an ended connection."""
        io = conn.send
        if (io.busy and not io.completed()) or conn.closed:  # BUG: completed is not handled
            return
        data = self.hub.take_output(conn.cid, self.config.send_size)
        self._after_hub(conn)
        if not data:
            if conn.state == "eof":
                self._close(conn)
            elif conn.state == "hangup" and not conn.fin_sent:
                conn.fin_sent = True  # the error line is out: FIN, keep reading until the client goes
                self.ws.shutdown(conn.sock, SD_SEND)
            return
        io.buf = data  # bytes: immutable while in flight
        io.wsabufs = [WSABUF(len(data), data)]
        rc, _, _ = self.ws.WSASend(conn.sock, io.wsabufs, 1, 0, io, self._routine)
        self._after_post(conn, io, rc)


class IocpWin32ErrorAsWinsock(IocpServer):
    """IOCP: when GetQueuedCompletionStatus returns FALSE with a packet, the
    worker takes GetLastError() for the operation's Winsock error.  It is the
    Win32 error of the packet's NTSTATUS (a reset is ERROR_NETNAME_DELETED,
    64, not WSAECONNRESET), so every client that resets is counted as an I/O
    error, never as a reset: ``ovserver serve``'s report is wrong, and an
    operator chasing "I/O errors" chases clients that just went.  Only the
    statistics differ.  Needs a client that resets while a receive is posted."""

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
                    error = self.ws.GetLastError()  # BUG: GetQueuedCompletionStatus's Win32 error
                self._completed(ov, error, nbytes)
        if self._stopping and self._drained():
            self.ws.WSASetEvent(self._wake)  # the controller may now stop the workers


# ====================================================================== events: thread groups


class GroupRoomIgnoresInbox(EventServer):
    """Events, the hand-over: the acceptor counts a group's room by its wait
    array's clients only, not those handed over and not yet taken from its
    inbox.  A burst of accepts while the group's thread has not run (it waits
    for the server lock the acceptor holds between accepts) hands it more than
    its 63 clients, and its next wait has more than 64 events
    (WSA_INVALID_PARAMETER).  Needs more than 63 clients arriving together,
    or a group nearly full and a few arriving together."""

    COPIED = ("_has_room",)

    def _has_room(self, group: _Group) -> bool:
        return len(group.members) < self._group_capacity  # BUG: the inbox is not counted


class GroupEndsWithZombies(EventServer):
    """Events, a group ending: the group's thread ends when it has no client
    left ("nothing to serve"), though clients it closed still have operations
    in flight (a send cancelled at a cut-off, a receive cancelled by the
    close).  No thread waits on their events any more: their operations are
    never reaped, their events never closed, and WSACleanup finds them.
    Needs the last client of a group closed with an operation in flight."""

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
                for conn in list(group.members):
                    self._close_at_stop(conn)
            timeout = self.config.stop_grace_ms if group.stopping else WSA_INFINITE
            if self._timers() and not group.stopping:
                group.idle_due, timeout = self._idle_check(group.members, group.idle_due, timeout)
            if group.stopping and group.gave_up:
                self.stats.abandoned += sum(int(c.recv.busy) + int(c.send.busy) for c in group.zombies)
            elif group.members or group.inbox:  # BUG: the closing clients (zombies) are not waited for
                self._wait_group(group, timeout)
                continue
            # Empty (or given up): leave the list in the same hold of the lock in
            # which the inbox was found empty, so nothing is handed over any more.
            # (Given up: a stopping group took its inbox at the top of the loop.)
            self._groups.remove(group)
            self._finished.append(group.thread)
            return


class StopBeforeInbox(EventServer):
    """Events, shutdown ordering: a group's thread looks at its stop flag
    before it takes the clients handed over to it.  A client the acceptor
    handed over just before the stop request is taken after the group closed
    its clients: it is served (joined, a receive posted) by a group that
    closes no one any more, so the stop waits for it until it gives up, and
    its socket is left open.  Needs a client accepted just before a stop,
    its group not yet woken."""

    COPIED = ("_group_loop",)

    def _group_loop(self, group: _Group) -> None:
        """Serve the group until it is empty (holding the lock but in its waits)."""
        while True:
            # BUG: (moved down: the inbox is taken here, before the stop flag is read)
            actions, group.actions = group.actions, []
            self._apply(actions)
            if group.stop and not group.stopping:
                group.stopping = True
                for conn in list(group.members):
                    self._close_at_stop(conn)
            if group.wake_turn or group.stop:  # BUG: after the stop flag was read
                group.wake_turn = False  # BUG (moved)
                self._take_inbox(group)  # BUG (moved)
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


# ====================================================================== protocol: chat fan-out, the line limit


class _FanoutHub(Hub):
    COPIED = ("_route",)

    def _route(self, sender: _Client, line: bytes, actions: list[Action]) -> None:
        if self.mode is Mode.ECHO:
            self._enqueue(sender, line, actions)
            return
        msg = chat_line(sender.name, line)
        for r in list(self._members.values()):
            if r is not sender:
                self._enqueue(r, msg, actions)
                if r.cid not in self._clients:  # BUG: echo's guard, copied: a recipient cut off
                    return  # BUG: ends the fan-out


class FanoutStopsAtCutOff(RoutineServer):
    """Chat fan-out: the guard echo needs after routing a line ("the client
    was cut off: stop") copied into the chat loop, so a recipient cut off for
    its output limit ends the fan-out: the members after it in join order do
    not get the line.  Needs chat with a member that does not read while
    others talk past ``max_queued``, and members after it."""

    HUB = _FanoutHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its _route()


class _DropQueuedHub(Hub):
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
        c.out.clear()  # BUG: "the error line goes out now": what was queued for the client is dropped
        c.queued = 0  # BUG
        self._enqueue(c, error_line(self.limits.max_line), actions)
        if c.cid in self._clients:
            actions.append(Hangup(c.cid, "line too long"))



class HangupDropsQueuedReplies(EventServer):
    """The line limit: a client whose line is too long gets the error line at
    once, and the replies still queued for it (to the lines it sent before,
    behind a send in flight) are dropped.  Needs a line over ``max_line``
    sent while replies to earlier lines wait behind a send: a slow reader or
    a small window, or replies longer than one send."""

    HUB = _DropQueuedHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its _too_long()


class HangupFinBeforeQueueDrained(RoutineServer):
    """The line limit, shutdown ordering: at a hang-up the server posts the
    next send and calls shutdown(SD_SEND) at once ("the FIN goes after the
    data in flight", which is true for a send already posted).  But output
    still queued behind a send in flight, the error line among it, is posted
    after the shutdown: WSASend fails (WSAESHUTDOWN) and the connection is
    closed without the error line.  Needs a line over ``max_line`` while a
    send is in flight with output queued behind it."""

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
                if not conn.closed and not conn.fin_sent:  # BUG: FIN now, behind the send just posted
                    conn.fin_sent = True  # BUG
                    self.ws.shutdown(conn.sock, SD_SEND)  # BUG
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


# ====================================================================== accepting


class AcceptRepostedBeforeAddresses(RoutineServer):
    """AcceptEx: "keep an accept posted at all times": the next AcceptEx is
    posted as soon as one has completed and its socket has its accept context,
    before the new connection is opened.  The slot it reuses is the one just
    completed, so its address buffer is in flight again when
    GetAcceptExSockaddrs reads it (an AcceptEx that completes at once, a
    client waiting in the backlog, has written the next client's addresses
    there), and the place check before the post does not count the
    connection being opened: at the client limit one accept too many
    completes, and the protocol refuses to join it.  Needs two clients
    arriving close together, or a full server."""

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
        self._post_accept()  # BUG: before the addresses are read and the connection counted
        assert isinstance(io.buf, bytearray)
        remote = ws.GetAcceptExSockaddrs(io.buf, 0, ADDR_LEN, ADDR_LEN).RemoteSockaddr
        self._open(s, f"{remote.host}:{remote.port}".encode())
        # BUG: (moved up: posted here, once the connection is opened)
