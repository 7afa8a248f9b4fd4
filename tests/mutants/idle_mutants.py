"""Single-bug variants of ovserver's idle time-out (``ServerConfig.idle_timeout_ms``, ``serve
--idle-timeout-ms``): what counts as activity, and who watches the deadlines.

Conventions as in :mod:`tests.mutants.fresh_mutants`: each class is one of
ovserver's server classes with one thing changed, the changed lines marked
``BUG``, each copied method named in ``COPIED``.  :data:`tests.mutants.MUTANTS`
lists them with the traffic each one needs; the recipe aimed at ovserver with
an idle time-out (``tests.mutants.properties.recipe_idle_property``) is the
property for them.

These are test code: they are not shipped with ovserver.
"""

from __future__ import annotations

from fakewinsock.constants import WSAECONNRESET
from ovserver._core import Server, _Io
from ovserver._events import EventServer, _Group
from ovserver._iocp import IocpServer
from ovserver._routines import RoutineServer

__all__ = ["IdleClockOnSendOnly", "IdleClockOnPartialData", "IdleNewlineFromIndexOne", "IdleDeadlineNotArmed"]


class IdleClockOnSendOnly(IocpServer):
    """Idle clients, the clock restarted on the wrong side: only a completed
    send (the client read) counts as activity, a receive never does ("the
    client is alive if it takes our replies").  A client that talks but is
    sent nothing back (a chat member alone, or one whose relays are few) is
    timed out while it sends a line every few tens of ms.  Needs an idle
    time-out and lines from a client that gets no send completed."""

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
            # BUG: a receive does not restart the idle clock (only a completed send does)
            self._apply(self.hub.receive(conn.cid, bytes(io.buf[:nbytes])))
            self._after_hub(conn)
            # Held back (back-pressure): read on at its Resume.  (No Resume came
            # meanwhile: a client is held back only here, with no receive posted.)
            if not conn.closed and not self.hub.hold(conn.cid):
                self._post_recv(conn)


class IdleClockOnPartialData(EventServer):
    """Idle clients, a slowloris let in: every receive of one byte or more
    restarts the idle clock, not only one that completes a line (the
    documented rule: a dribble of bytes without a newline does not count).
    A client that sends a byte every few tens of ms and never ends its line
    keeps its place for good.  Needs an idle time-out and a client that
    dribbles a line for longer than the time-out."""

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
            if self.config.idle_timeout_ms and nbytes:  # BUG: any byte counts, a dribble too
                conn.active_ms = self.ws.GetTickCount64()  # a line is complete
            self._apply(self.hub.receive(conn.cid, bytes(io.buf[:nbytes])))
            self._after_hub(conn)
            # Held back (back-pressure): read on at its Resume.  (No Resume came
            # meanwhile: a client is held back only here, with no receive posted.)
            if not conn.closed and not self.hub.hold(conn.cid):
                self._post_recv(conn)


class IdleNewlineFromIndexOne(RoutineServer):
    """Idle clients, an off-by-one at the start of the buffer: the newline
    that makes a receive count as activity is looked for from index 1 ("index
    0 is the rest of the last receive"), so a receive that begins with its
    newline (an empty line, the newline of a line whose bytes came in an
    earlier receive) does not restart the clock.  Needs an idle time-out and a
    client that gets no send completed while its lines' newlines arrive at
    the start of receives."""

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
            if self.config.idle_timeout_ms and io.buf.find(b"\n", 1, nbytes) >= 0:  # BUG: from index 1
                conn.active_ms = self.ws.GetTickCount64()  # a line is complete
            self._apply(self.hub.receive(conn.cid, bytes(io.buf[:nbytes])))
            self._after_hub(conn)
            # Held back (back-pressure): read on at its Resume.  (No Resume came
            # meanwhile: a client is held back only here, with no receive posted.)
            if not conn.closed and not self.hub.hold(conn.cid):
                self._post_recv(conn)


class IdleDeadlineNotArmed(EventServer):
    """Idle clients, the events model: a group that takes a new member from its
    inbox does not fold that member's idle deadline into the group's next
    check; the member is checked only when a later deadline of the group
    comes, so a client that connects, is served and then stays silent is
    never closed in a group with no other deadline.  Needs an idle time-out
    and a client that stays connected, silent, in a group of its own."""

    COPIED = ("_take_inbox",)

    def _take_inbox(self, group: _Group) -> None:
        """Serve the connections the acceptor handed over."""
        handed, group.inbox = group.inbox, []
        if not handed:
            return
        self._handed -= len(handed)
        if not self._stopping and not self._accept_retry and self._accepting() < self.config.accepts:
            self.ws.WSASetEvent(self._wake)  # room ahead of the groups again: the acceptor posts AcceptEx
        # BUG: (the idle limit is not read: no deadline folded in below)
        for conn in handed:
            # BUG: the new member's idle deadline is not folded into the group's next check
            conn.slot = len(group.members)
            group.members.append(conn)
            group.events.append(conn.event)
            Server._begin(self, conn)
