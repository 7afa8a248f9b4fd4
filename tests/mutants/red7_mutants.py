"""Single-bug variants of ovserver planted by a seventh red team (issue 10):
bugs a developer of a Winsock overlapped-IO server ships, written from the
server's code and the lecture notes (not from what the swarm draws): the
events model's send OVERLAPPED left without its event, its client event reset
after the handling (the lecture notes' order), its group's wake event reset
outside the server lock, its rotation computed from the rotated index; the
iocp model's send OVERLAPPED posted again while in flight and its failed send
left for the receive to notice; the hub's leave that forgets the chat member;
the routines model's idle clock that misses a newline in a receive's last
byte, its accept retry that waits for a wait that a burst of routines never
ends, and its room to accept that counts closing connections.

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
    WSA_INFINITE,
    WSA_INVALID_EVENT,
    WSA_MAXIMUM_WAIT_EVENTS,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_TIMEOUT,
    WSAECONNRESET,
)
from ovserver._core import Server, ServerConfig, ServerError, _Conn, _Io
from ovserver._events import CLOSING_POLL_MS, EventServer, _Group
from ovserver._iocp import IocpServer
from ovserver._protocol import Hub
from ovserver._routines import RoutineServer

__all__ = [
    "SendEventNotSet",
    "ResetAfterHandling",
    "GroupWakeResetOutsideLock",
    "RotationFromRotatedIndex",
    "IocpSendOverlappedReused",
    "IocpSendErrorLeftToReceive",
    "LeaveKeepsMember",
    "IdleNewlineOffByOne",
    "RetryOnlyBetweenWaits",
    "RoomCountsClosing",
]


def _use_hub(server: Server, hub: type[Hub]) -> None:
    server.hub = hub(server.config.mode, server.config.limits)
    server.stats.hub = server.hub.stats


# ====================================================================== events: events and indexes


class SendEventNotSet(EventServer):
    """Events, notification: the acceptor gives the client's event to its
    receive OVERLAPPED only ("the group waits for data; a send just goes
    out").  A send's completion then signals nothing (an OVERLAPPED without
    hEvent signals the socket handle, which no one waits on): the send slot
    stays busy until something else wakes the client (its next receive, or
    a post that finds the send completed), and the output queued behind it
    waits meanwhile.  Needs a client owed more than one send while it sends
    nothing: a chat member that gets two lines or more without talking, or
    echo output over one send (64 KiB) to a client that has stopped
    sending."""

    COPIED = ("_conn_opened",)

    def _conn_opened(self, conn: _Conn) -> bool:
        """The acceptor: a group with room for the client, and the client's event.
        (A group created here that gets no client finds itself empty and ends.)"""
        group = self._group_with_room()
        if group is None:
            self._short = True
            return False
        ev = self.ws.WSACreateEvent()
        if ev == WSA_INVALID_EVENT:
            self._short = True
            return False
        conn.event = ev
        conn.recv.hEvent = ev  # BUG: the send OVERLAPPED keeps hEvent 0: its completion signals no event
        self._group_of[conn.cid] = group
        return True


class ResetAfterHandling(EventServer):
    """Events, the event reset at the wrong time: a signalled client's event
    is reset after its completions have been handled, as the lecture notes'
    loop does it last ("信号置空"), not first.  Handling a receive posts the
    next WSARecv (and perhaps a WSASend); when one of them completes at once
    (data waiting, room to send) its signal lands before the reset, which
    erases it: that completion is noticed only when something else signals
    the client's event (a later completion of its other operation).  A
    client whose last lines were waiting when its receive was reposted, and
    whose reply completed at once too, waits for its replies for good.
    Needs a client's reposted WSARecv completing at once (it sent several
    sends close together) while its send completes at once too."""

    COPIED = ("_handle_group",)

    def _handle_group(self, conn: _Conn) -> None:
        ws = self.ws
        # BUG: (moved down: the event is reset here, before its completions are handled)
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
        if conn.event != WSA_INVALID_EVENT:  # BUG: reset last (released: its event is closed)
            ws.WSAResetEvent(conn.event)  # BUG: erases the signal of a post that completed at once


class GroupWakeResetOutsideLock(EventServer):
    """Events, the hand-over: a group's thread resets its wake event just
    before it waits ("so that a stale signal does not wake it for nothing"),
    after it left the server lock.  The acceptor may hand a client over
    (append to the inbox, signal the wake event) between the group's
    LeaveCriticalSection and that reset: the reset erases the signal, and the
    group waits with the client in its inbox, unserved until one of the
    group's clients wakes it.  A chat line from another group (the group's
    action queue) and a stop (its stop flag) are lost the same way.  Needs a
    hand-over (a client accepted for an existing group, a chat line from
    another group, a stop) in the moment between the group leaving the lock
    and its wait."""

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
            room = WSA_MAXIMUM_WAIT_EVENTS - len(handles)
            z = group.next_zombie % len(zombies)
            shown = (zombies[z:] + zombies[:z])[:room]
            handles += [c.event for c in shown]
            if len(shown) < len(zombies):
                group.next_zombie = z + len(shown)
                if timeout_ms == WSA_INFINITE or timeout_ms > CLOSING_POLL_MS:
                    timeout_ms = CLOSING_POLL_MS
        self._leave()
        try:
            self.ws.WSAResetEvent(group.wake)  # BUG: reset outside the lock: a hand-over's signal meanwhile is lost
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


class RotationFromRotatedIndex(EventServer):
    """Events, a wrong index after WSAWaitForMultipleEvents: the fairness
    rotation's next start is computed from the index the wait returned, which
    counts from the rotated array's first handle, as if it counted from the
    wake event ("start after the event just served": ``i + 1``, not
    ``first + i + 1``).  The client served is still the right one, but the
    rotation no longer moves past it: a client whose event is signalled at
    every wait (it keeps data flowing) is served again and again ahead of
    the others of its group and of the group's wake event (hand-overs, chat
    lines from other groups, a stop).  Needs a group of two clients or more
    (or one, and a hand-over or a stop) while a client keeps its event
    signalled: a busy client flooding a slow server."""

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
            room = WSA_MAXIMUM_WAIT_EVENTS - len(handles)
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
        group.next_first = i + 1  # BUG: i counts from the rotated array's start, not from the wake event
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


# ====================================================================== iocp: the send slot, a failed send


class IocpSendOverlappedReused(IocpServer):
    """IOCP, an OVERLAPPED reused while in flight: output for a client is
    sent as soon as the hub says there is some (a ``Send`` action, a send's
    completion), without looking at whether the client's send slot is busy
    ("the hub hands each byte out once, so two sends never carry the same
    bytes, and the port keeps them in order").  A reply that comes while the
    previous send is in flight (or completed, its packet not yet handled) is
    posted on the same OVERLAPPED and buffer.  Needs output ready for a
    client while its previous send is in flight: two receives of a client
    handled before its first reply's packet, a chat line to a member being
    sent to."""

    COPIED = ("_post_send",)

    def _post_send(self, conn: _Conn) -> None:
        """Send the next piece of ``conn``'s output unless a send is in flight;
        with nothing left, finish a hang-up or an ended connection."""
        io = conn.send
        if conn.closed:  # BUG: io.busy not looked at: the send OVERLAPPED is posted again while in flight
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


class IocpSendErrorLeftToReceive(IocpServer):
    """IOCP, a completion lost on an error path: a send that completes with
    an error (the client reset) is dropped ("the receive posted on the same
    socket fails with the same reset, and closes it").  When no receive is
    posted the connection is never closed: a client that sent its FIN
    (the server reads no more) and then reset while a reply was pending, or a
    sender held back by back-pressure; the server holds its socket and its
    place until a stop.  Needs a send failing while no receive is posted: a
    client that does not read, half-closes, then resets."""

    COPIED = ("_completed",)

    def _completed(self, io: _Io, error: int, nbytes: int) -> None:
        """The one place a receive's or a send's completion is handled."""
        io.busy = False
        conn = io.conn
        assert conn is not None
        if conn.closed:
            self._reaped(io)
            return
        if error and io.kind == "send":  # BUG: "the receive sees the reset and closes it"
            return  # BUG
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
            if not conn.closed and not self.hub.hold(conn.cid):
                self._post_recv(conn)


# ====================================================================== protocol: chat fan-out


class _LeaveHub(Hub):
    COPIED = ("leave",)

    def leave(self, cid: int) -> None:
        """The connection is gone: forget the client and whatever is queued for
        it.  (Senders it held back are resumed: :meth:`pop_resumes`.)"""
        c = self._clients.pop(cid, None)
        if c is not None:
            # BUG: not removed from self._members: the chat fan-out still queues lines for the gone client
            c.out.clear()
            c.queued = 0
            self._paused.discard(cid)
            self._not_over(cid)


class LeaveKeepsMember(IocpServer):
    """Chat fan-out to a leaving client: the hub's ``leave`` forgets the
    client (``_clients``) but not the member (``_members``, the fan-out's
    list).  A client that reset, was cut off or timed out is still routed
    every line: its queue grows with nothing to send it (the driver skips
    actions for a connection it no longer has) until it passes
    ``max_queued``, and with back-pressure it goes over the mark, with no
    connection to give a stall deadline to: every other sender is held back
    for good.  Needs chat with a member that leaves abortively (a reset, a
    cut-off) while the others keep talking past the high-water mark."""

    HUB = _LeaveHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its leave()


# ====================================================================== routines: idle clock, retry, limits


class IdleNewlineOffByOne(RoutineServer):
    """Idle clients, an off-by-one in buffer arithmetic: a receive counts as
    activity (a line completed) when it holds a newline, looked for in the
    receive's first ``nbytes - 1`` bytes ("the last index") instead of all
    ``nbytes``.  A receive whose only newline is its last byte (a line sent
    whole in one send: the common case) does not restart the client's idle
    clock; only its completed sends do.  A client that talks but gets no
    send completed (a chat member alone, a client whose replies wait behind
    a full window) is timed out while it sends a line every few seconds.
    Needs an idle time-out and a client that sends lines without having a
    send complete."""

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
            if self.config.idle_timeout_ms and io.buf.find(b"\n", 0, nbytes - 1) >= 0:  # BUG: the last byte missed
                conn.active_ms = self.ws.GetTickCount64()  # a line is complete
            self._apply(self.hub.receive(conn.cid, bytes(io.buf[:nbytes])))
            self._after_hub(conn)
            # Held back (back-pressure): read on at its Resume.  (No Resume came
            # meanwhile: a client is held back only here, with no receive posted.)
            if not conn.closed and not self.hub.hold(conn.cid):
                self._post_recv(conn)


class RetryOnlyBetweenWaits(RoutineServer):
    """Completion routines, the accept retry: a failed AcceptEx post is
    retried only by the loop around the alertable wait ("the routine does
    what the wake event would have had done": the stop, the accepts, the
    idle check; the retry is the wait's time-out's).  But one alertable wait
    runs every routine queued, also those queued while they run: clients
    that keep data flowing keep the wait from returning, and no one is
    accepted for as long as they go on (what the routines model's docstring
    says was found under Wine).  Needs an AcceptEx post failing (WSAENOBUFS)
    while clients keep data flowing without a pause, then a client that
    must be accepted."""

    COPIED = ("_between_routines",)

    def _between_routines(self, idle_check: bool) -> None:
        """What the loop around the wait would do, done by a routine (see the
        module docstring): begin a requested stop; complete the AcceptEx calls; every
        ``ROUTINE_BURST`` routines (``idle_check``), close idle clients.  The
        first two read only memory (a flag, HasOverlappedIoCompleted), so they
        are done after every routine: one routine may be long (in chat, a
        receive routed to every member), and a burst of them took seconds."""
        if self._stop and not self._stopping:
            self._begin_stop()
        elif not self._stopping:
            if self._owed < self.config.accepts:
                self._accepts_early()
            if idle_check:  # GetTickCount64: a call, so not after every routine
                self._idle_timeout(WSA_INFINITE)  # idle clients are closed even while others keep it busy
                # BUG: the failed accept's retry is left to the loop around the wait


class RoomCountsClosing(RoutineServer):
    """Limits: the room to accept counts the connections still *closing*
    (closed, an operation not yet reaped) with the live ones ("a connection
    is gone once its socket is"), where its place is free at once.  Closing
    a connection resumes accepting (``_resume_accepting``) at once, when the
    closing one still counts, and nothing resumes it when it is reaped: a
    server at its client limit whose clients left with an operation in
    flight (a cut-off, a reset while a reply is pending, a time-out) stays
    full until an accept completes, which none does.  Needs the client limit
    reached, a client closed with an operation in flight, then another
    client."""

    COPIED = ("_room_to_accept",)

    def _room_to_accept(self, busy: int) -> bool:
        """With ``busy`` AcceptEx calls outstanding, one more has a place:
        the table has room for every accept that completes, and the protocol
        takes another member."""
        conns = len(self._conns) + len(self._closing)  # BUG: closing connections hold no place
        return conns + busy < self.max_connections and not self.hub.full  # BUG
