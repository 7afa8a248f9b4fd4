"""Single-bug variants of ovserver planted by a twelfth red team: bugs a
developer of such a Winsock overlapped-IO server plausibly ships, spread over
AcceptEx's address slots, an immediate success taken for a failure, the idle
time-out (a client held back by back-pressure, a newline left in the receive
buffer by an earlier receive, the wait not shortened to the next deadline),
the events model's parallel wait arrays, its wait index and its acceptor's
pacing, the deferred closesocket of a graceful close, and the hung-up client's
allowance.

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

from fakewinsock import Winsock
from fakewinsock.constants import (
    AF_INET,
    FALSE,
    INVALID_SOCKET,
    IPPROTO_TCP,
    SOCK_STREAM,
    WSA_FLAG_OVERLAPPED,
    WSA_INFINITE,
    WSA_IO_PENDING,
    WSA_MAXIMUM_WAIT_EVENTS,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_TIMEOUT,
    WSAECONNRESET,
)
from ovserver._core import ADDR_LEN, NEVER, Server, ServerConfig, ServerError, _Conn, _Io
from ovserver._events import CLOSING_POLL_MS, EventServer, _Group
from ovserver._iocp import IocpServer
from ovserver._protocol import _HUNG_UP, Action, Hub, _Client
from ovserver._routines import RoutineServer

from .red10_mutants import _use_hub

__all__ = [
    "AcceptExAddressSlotTooSmall",
    "ImmediateSuccessIsFailure",
    "IdleTimesOutHeldBack",
    "MovedEventNotUpdated",
    "LastWaitIndexTakenForClosing",
    "InboxTakenAcceptorNotWoken",
    "IdleNewlineInStaleBytes",
    "ReapedSocketNeverClosed",
    "IdleWaitNotShortened",
    "HangupAllowancePerReceive",
]


# ====================================================================== accepting: AcceptEx's address slots


class AcceptExAddressSlotTooSmall(RoutineServer):
    """AcceptEx is given address lengths of ``sizeof(sockaddr_in)``, without
    the 16 bytes more that AcceptEx requires of each slot: the call pends, and
    fails (WSAEFAULT, STATUS_BUFFER_TOO_SMALL) when a client arrives, leaving
    the connection queued; the server backs off and retries, failing the
    same way for good.  Needs any client."""

    COPIED = ("_post_one_accept",)

    def _post_one_accept(self, io: _Io) -> bool:
        """Post AcceptEx on accept slot ``io``; False if that failed at once
        (WSASocket or AcceptEx: WSAENOBUFS or WSAEMFILE under load): the slot
        is free again (for the retry, ``accept_retry_ms`` later) and the
        accept socket, if made, is closed."""
        ws = self.ws
        s = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
        if s == INVALID_SOCKET:
            self._accept_failed()
            self._free_accepts.append(io)
            return False
        assert isinstance(io.buf, bytearray)
        ok, _ = ws.AcceptEx(self._listener, s, io.buf, 0, ADDR_LEN - 16, ADDR_LEN - 16, io)  # BUG: no + 16
        if ok or ws.WSAGetLastError() == WSA_IO_PENDING:
            # Even a TRUE return is handled when the wake event says so.
            self._count_post(bool(ok))
            io.busy = True
            io.sock = s
            self._accepts.append(io)
            return True
        ws.closesocket(s)
        self._accept_failed()
        self._free_accepts.append(io)
        return False


# ====================================================================== core: posting


class ImmediateSuccessIsFailure(RoutineServer):
    """A WSARecv or WSASend that returns 0 (completed at once) is taken for a
    failure: only WSA_IO_PENDING counts as posted.  The connection is closed
    as if the post had failed (an I/O error) and released, yet the operation
    completed and its completion routine runs all the same, for a released
    slot.  Needs a receive with data waiting or a send with room in the
    window (immediate completions)."""

    COPIED = ("_after_post",)

    def _after_post(self, conn: _Conn, io: _Io, rc: int) -> None:
        error = 0 if rc == 0 else self.ws.WSAGetLastError()  # read only when rc says to
        ok = error == WSA_IO_PENDING  # BUG: "posted" only when pending; 0 (done at once) is not
        io.busy = ok
        self._posted(conn, io)
        if ok:
            self._count_post(rc == 0)
            return
        # Failed at once: nothing will notify.
        self.stats.posted_failed += 1
        self._count_close(conn, error)
        self._close(conn)


# ====================================================================== core: idle time-out


class IdleTimesOutHeldBack(RoutineServer):
    """The idle check does not skip a connection held back by back-pressure:
    the server stopped reading it, so it completes no line, and it is closed
    for idleness while it waits for its recipients to drain (as if it had said
    nothing).  Needs an idle time-out with back-pressure and a client held
    back for longer than the time-out."""

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
                idle = limit  # BUG: held back or not
                expires = min(conn.active_ms + limit if idle else NEVER, conn.stall_due)
                if conn.stall_due <= now:  # a slow consumer: it has not drained for stall_timeout_ms
                    self.stats.stalled += 1
                    self.stats.cut_off += 1
                    self._close(conn, abort=True)
                elif expires <= now:
                    self.stats.timed_out += 1
                    self.stats.hung_up_timed_out += int(conn.state == "hangup")
                    self._close(conn)
                elif expires < due:
                    due = expires
        if due == NEVER:
            return due, timeout_ms
        return due, min(timeout_ms, due - now)


class IdleNewlineInStaleBytes(IocpServer):
    """A receive's newline is looked for in the whole receive buffer, not in
    the ``nbytes`` it received: a newline an earlier, longer receive left past
    them restarts the idle clock, so a client that sent a line and then
    dribbles bytes without a newline (a slowloris) is never timed out.  Needs
    an idle time-out and such a client, the earlier line's newline at an
    offset past the dribble's receives."""

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
            if self.config.idle_timeout_ms and io.buf.find(b"\n") >= 0:  # BUG: the whole buffer, stale bytes too
                conn.active_ms = self.ws.GetTickCount64()  # a line is complete
            self._apply(self.hub.receive(conn.cid, bytes(io.buf[:nbytes])))
            self._after_hub(conn)
            # Held back (back-pressure): read on at its Resume.  (No Resume came
            # meanwhile: a client is held back only here, with no receive posted.)
            if not conn.closed and not self.hub.hold(conn.cid):
                self._post_recv(conn)


class IdleWaitNotShortened(IocpServer):
    """The idle check closes the connections that have expired, but the wait
    that follows keeps its own time-out (infinite in the iocp controller)
    instead of ending at the next deadline: a connection that is not yet idle
    at a check is looked at again only when something else wakes the
    controller.  Needs an idle time-out and a client that goes idle after the
    check that armed its deadline, with nothing else waking the server."""

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
                    self._close(conn)
                elif expires < due:
                    due = expires
        if due == NEVER:
            return due, timeout_ms
        return due, timeout_ms  # BUG: the wait is not shortened to end at the next deadline


# ====================================================================== events: the wait arrays


class MovedEventNotUpdated(EventServer):
    """A client leaving its group gives its place in the member list to the
    last member, but the event list (kept beside it, in the same order) is
    only shortened: the leaving client's event stays at that index and the
    moved member's is gone from the wait array.  The moved member is never
    served again, and once the leaving client's event is closed the group
    waits on a closed handle.  Needs a group of two clients or more, one
    leaving that is not the last one taken in."""

    COPIED = ("_conn_closed",)

    def _conn_closed(self, conn: _Conn) -> None:
        # Remove the client as the lecture notes do: the last one moves into its index.
        group = self._group_of[conn.cid]
        last = group.members.pop()
        group.events.pop()  # (its event follows it)
        if last is not conn:
            group.members[conn.slot] = last
            pass  # BUG: group.events[conn.slot] = last.event forgotten
            last.slot = conn.slot
        conn.slot = -1
        if not conn.idle():
            group.zombies.append(conn)  # its event stays alive until it is reaped


class LastWaitIndexTakenForClosing(EventServer):
    """The wait index of the last event of the wake event and members (index
    ``n``) is taken for a closing client's (``i >= n`` for ``i > n``): the
    event there is neither reset nor served, and the wait returns it again at
    once, a busy loop, until another event below it is signalled and the
    rotation moves on.  With one client, its completions (or, rotated, the
    group's wake event: a hand-over, a stop) wait.  Needs any client."""

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
        if i >= n:  # BUG: index n is the last of [wake, *members], not a closing client's
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


class InboxTakenAcceptorNotWoken(EventServer):
    """A group that takes its inbox does not signal the acceptor's wake event:
    the acceptor, which posts AcceptEx only while fewer than ``accepts``
    connections are handed over and not yet taken, waits with no time-out
    and posts again only when a client is closed (or a stop): clients are
    taken in one at a time, the next waiting in the listen backlog until
    someone leaves.  Needs a client arriving while another is served."""

    COPIED = ("_take_inbox",)

    def _take_inbox(self, group: _Group) -> None:
        """Serve the connections the acceptor handed over."""
        handed, group.inbox = group.inbox, []
        if not handed:
            return
        self._handed -= len(handed)
        if not self._stopping and not self._accept_retry and self._accepting() < self.config.accepts:
            pass  # BUG: "the acceptor posts again when it wakes": it is not woken
        limit = self.config.idle_timeout_ms
        for conn in handed:
            if limit:
                group.idle_due = min(group.idle_due, conn.active_ms + limit)
            conn.slot = len(group.members)
            group.members.append(conn)
            group.events.append(conn.event)
            Server._begin(self, conn)


# ====================================================================== core: closing


class ReapedSocketNeverClosed(IocpServer):
    """A graceful close that waits for its cancelled receive (the socket is
    kept open until the receive is reaped) releases the connection when the
    receive is reaped, but the deferred closesocket is forgotten: the client
    gets neither the FIN nor a reset, and the server holds the socket until
    WSACleanup.  Needs a graceful close with a receive posted: a stop, or an
    error on a send while the receive waits."""

    COPIED = ("_release_if_idle",)

    def _release_if_idle(self, conn: _Conn) -> None:
        """Once every operation of the closing ``conn`` is reaped: close its
        socket (gracefully: nothing is outstanding) if not yet, and release it."""
        if conn.idle() and self._closing.get(conn.cid) is conn:
            del self._closing[conn.cid]
            pass  # BUG: self._close_socket(conn) forgotten: "closed in _close"
            self._release(conn)


# ====================================================================== protocol: the hung-up client's allowance


class _PerReceiveAllowanceHub(Hub):
    COPIED = ("_discard",)

    def _discard(self, c: _Client, n: int, actions: list[Action]) -> None:
        self.stats.discarded += n
        c.discarded = n  # BUG: this receive's bytes, not all those since the hang-up
        if c.state == _HUNG_UP and c.discarded > self.limits.max_line:
            self.stats.hung_up_cut_off += 1
            self._cut_off(c, "kept sending after being hung up", actions)


class HangupAllowancePerReceive(EventServer):
    """A hung-up client is cut off only when one receive brings more than
    ``max_line`` bytes, not when all it sent since its hang-up does: a client
    that goes on sending after its error line, in receives of up to
    ``max_line`` bytes, is never cut off (it is read and discarded for as long
    as it sends).  Needs a hung-up client that sends more than ``max_line``
    further bytes over several receives."""

    HUB = _PerReceiveAllowanceHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its _discard()
