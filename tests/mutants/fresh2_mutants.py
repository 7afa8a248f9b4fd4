"""More fresh single-bug variants of ovserver (issue 10, second red team):
bugs a developer of such a server ships, of kinds the earlier mutants do not
cover: line framing at receive-buffer boundaries, a line limit checked on one
side of the last newline only, the events model's cross-group wake-ups, its
rotated wait array and its acceptor's wake-up, the client limit off by one,
an AcceptEx failure whose retry is not armed, a wake event never reset, a
place freed after accepting is resumed, and an iocp packet of a closed
connection never reaped.

Conventions as in :mod:`tests.mutants.fresh_mutants`: each class is one of
ovserver's server classes with one thing changed, the changed lines marked
``BUG``, each copied method named in ``COPIED`` (a protocol bug: a copy of a
:class:`Hub` method in a Hub subclass named by ``HUB``).
:data:`tests.mutants.MUTANTS` lists them with the traffic each one needs.

These are test code: they are not shipped with ovserver.
"""

from __future__ import annotations

from fakewinsock import WSAOVERLAPPED, Winsock
from fakewinsock.constants import (
    FALSE,
    WSA_INFINITE,
    WSA_MAXIMUM_WAIT_EVENTS,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_TIMEOUT,
)
from ovserver._core import ServerConfig, ServerError, _Conn, _Io
from ovserver._events import CLOSING_POLL_MS, EventServer, _Group
from ovserver._iocp import IocpServer
from ovserver._protocol import _MEMBER, Action, Hub
from ovserver._routines import RoutineServer

__all__ = [
    "ScannedByReceive",
    "TailOverLimitUnchecked",
    "OtherGroupsNotWoken",
    "AcceptorNotWokenByGroup",
    "ClientLimitOffByOne",
    "AcceptRetryNotArmed",
    "WakeEventNotReset",
    "RotatedIndexIgnored",
    "ResumeBeforeFreeing",
    "IocpClosedPacketDropped",
]


def _use_hub(server: EventServer | RoutineServer | IocpServer, hub: type[Hub]) -> None:
    server.hub = hub(server.config.mode, server.config.limits)
    server.stats.hub = server.hub.stats


# ====================================================================== the line protocol


class _ScannedHub(Hub):
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
        c.scanned = len(data)  # BUG: "the new bytes are scanned", but buf now holds only their tail
        return actions


class ScannedByReceive(EventServer):
    """Framing: after routing the lines of a receive, the count of buffered
    bytes known to hold no newline is set to the receive's length, not to what
    is left buffered (its tail): the next receive's search starts that much too
    far and misses a newline in its first bytes, so two lines are routed as
    one.  Chat (echo frames most receives on a fast path without it).  Needs a
    receive that ends mid-line after a newline, then a short line completed and
    another begun in the next receive."""

    HUB = _ScannedHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its receive()


class _TailHub(Hub):
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
            if (0 <= last and pending + last <= limit  # BUG: the partial line after the last newline unchecked
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


class TailOverLimitUnchecked(RoutineServer):
    """Line limit: echo's fast path checks the line completed by a receive but
    not the partial line after its last newline, which is buffered even when
    it is over ``max_line``; the next receive notices, but when the client's
    FIN comes next that line is dropped as an unterminated last line, with no
    error line.  Needs a receive holding a newline and then more than
    ``max_line`` bytes of a line that never ends."""

    HUB = _TailHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its receive()


# ====================================================================== the events model


class OtherGroupsNotWoken(EventServer):
    """Events: a chat line routed to clients of other groups is queued on
    those groups' action lists, but their threads are not woken: a group
    whose clients are silent serves the line only when something else wakes
    it (the stop).  Needs chat with more than 63 clients, one group's clients
    listening while another's talk."""

    COPIED = ("_apply",)

    def _apply(self, actions: list[Action]) -> None:
        """Perform the actions for this group's clients; queue the others' to
        their groups and wake those."""
        mine: list[Action] = []
        woken: list[_Group] = []
        for a in actions:
            conn = self._conns.get(a.cid)
            if conn is None or conn.closed:
                continue
            group = self._group_of[a.cid]
            if group is self._running:
                mine.append(a)
                continue
            group.actions.append(a)
            if group not in woken:
                woken.append(group)
        # BUG: the other groups are not woken (they take their actions at their next wake-up)
        super()._apply(mine)


class AcceptorNotWokenByGroup(EventServer):
    """Events: a group thread that closes a connection of a full server
    does not wake the acceptor, which alone posts AcceptEx: the clients
    waiting in the listen backlog are not accepted until something else
    wakes it.  Needs the client limit reached, a client leaving and another
    waiting."""

    COPIED = ("_resume_accepting",)

    def _resume_accepting(self) -> None:
        self._full_groups = 0  # a client was closed: its group has room again
        if self._running is None:
            self._post_accept()
        # BUG: a group thread that frees a place does not wake the acceptor


class RotatedIndexIgnored(EventServer):
    """Events: the wait array holds the group's clients rotated (fairness),
    but the signalled index is taken into the unrotated list: another client
    is handled (its event reset), the signalled one is not.  Needs a group of
    two clients or more with the rotation moved on."""

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
        group.next_first = first + i + 1  # start after the event just served
        conn = members[i - 1] if i else None  # BUG: the wait's index taken into the unrotated list
        if conn is None:
            # Reset before the inbox, actions and stop flag are read (the loop
            # does that next, in this hold of the lock): whatever is added
            # after this signals again.  Only in this turn is the inbox taken:
            # behind the clients signalled before it.
            self.ws.WSAResetEvent(group.wake)
            group.wake_turn = True
            return
        self._handle_group(conn)


class AcceptRetryNotArmed(EventServer):
    """Core: a post of AcceptEx that fails at once (WSAENOBUFS) is counted but
    its retry is not armed: the acceptor waits without a time-out, and the
    clients in the listen backlog wait until something else makes it post.
    Needs an AcceptEx injection, then clients arriving."""

    COPIED = ("_accept_failed",)

    def _accept_failed(self) -> None:
        """Posting AcceptEx failed at once: accept again later."""
        self.stats.posted_failed += 1
        self.stats.accept_failures += 1
        # BUG: the retry is not armed: a failed post is retried only when something else posts


# ====================================================================== the routines model (the shared core)


class ClientLimitOffByOne(RoutineServer):
    """Core: accepting stops when the table holds *more* than ``max_clients``
    connections (``>`` for ``>=``), and the protocol's count is not asked: one
    client too many is accepted and the hub refuses it (RuntimeError).  Needs
    the client limit reached and one more client."""

    COPIED = ("_room_to_accept",)

    def _room_to_accept(self, busy: int) -> bool:
        """With ``busy`` AcceptEx calls outstanding, one more has a place:
        the table has room for every accept that completes, and the protocol
        takes another member."""
        return len(self._conns) + busy <= self.max_connections  # BUG: <= for <, and the hub not asked


class WakeEventNotReset(RoutineServer):
    """Core: the wake event is not reset when it wakes the server; an AcceptEx
    posted after it resets it, but when none is posted (the table full, or a
    stop) every wait returns at once.  Needs a full server, or a stop."""

    COPIED = ("_on_wake",)

    def _on_wake(self) -> None:
        """The wake event: as a routine would, complete the accepts up to
        ``accepts`` ahead.  (On Windows the wait returns the event only once
        every routine queued has run, the markers too; under Wine it returns
        the event first, and accepting everything at each wake then let
        connections in ahead of every routine.)"""
        if self._stopping:
            self._accepts_done()  # BUG: the cancelled accepts are reaped, the wake event is not reset
            return
        # BUG: the wake event is not reset (AcceptEx's post resets it, when one is posted)
        if self._owed < self.config.accepts:
            self._accepts_early()


class ResumeBeforeFreeing(RoutineServer):
    """Core: a close resumes accepting before its connection leaves the
    table, so a full server does not post AcceptEx (the table is still full)
    and never accepts again.  Needs the client limit reached, a client leaving
    and another waiting."""

    COPIED = ("_forget",)

    def _forget(self, conn: _Conn) -> None:
        """The closed ``conn`` leaves the connection table: released at once if
        nothing of it is outstanding, else kept *closing* until its operations
        are reaped; its place is free, so accepting resumes."""
        self._resume_accepting()  # BUG: before its place is freed: a full table stays full
        del self._conns[conn.cid]
        self._conn_closed(conn)
        if conn.idle():
            self._release(conn)
        else:
            self._closing[conn.cid] = conn
        # BUG: (moved up: accepting resumed here, once its place is free)


# ====================================================================== the iocp model


class IocpClosedPacketDropped(IocpServer):
    """IOCP: the packet of a closed connection's cancelled or late operation
    is dropped, not reaped: the connection stays *closing* for ever, and a stop
    gives up on it after its grace (``abandoned``).  Needs a connection closed
    with an operation in flight (a reset, a cut-off, a stop)."""

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
                pass  # BUG: "a packet for a closed connection: nothing to do" (never reaped)
            else:
                error = 0
                if not ok:  # the packet's error is a Win32 one: the Winsock error of the operation
                    self.ws.WSAGetOverlappedResult(conn.sock, ov, FALSE)
                    error = self.ws.WSAGetLastError()
                self._completed(ov, error, nbytes)
        if self._stopping and self._drained():
            self.ws.WSASetEvent(self._wake)  # the controller may now stop the workers
