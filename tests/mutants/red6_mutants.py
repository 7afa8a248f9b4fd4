"""Single-bug variants of ovserver planted by a sixth red team (issue 10):
bugs a developer of a Winsock overlapped-IO server ships, written from the
server's code, the lecture notes and the semantics document: WSAENOBUFS on a
post taken for a transient failure and left to a later post; the long line's
bytes counted towards a hung-up client's allowance; a stop flag set for the
event groups without waking them; the iocp model's early accept that forgets
its packet is still queued, and its worker that sets a deadline without waking
the controller; a connection cut off by the stall time-out left in the hub;
a hung-up client's FIN closing it while its error line is owed; a cut-off
closed like any other close (graceful); a handed-over client's first receive
posted before it has its wait slot; the socket of an AcceptEx that failed at
once left open.

Conventions as in :mod:`tests.mutants.fresh_mutants`: each class is one of
ovserver's server classes with one thing changed, the changed lines marked
``BUG``, each copied method named in ``COPIED`` (a protocol bug: a copy of a
:class:`Hub` method in a Hub subclass named by ``HUB``).
:data:`tests.mutants.MUTANTS` lists them with the traffic each one needs and
what catches them.

These are test code: they are not shipped with ovserver.
"""

from __future__ import annotations

from fakewinsock import Winsock
from fakewinsock.constants import (
    AF_INET,
    ERROR_NOT_FOUND,
    INVALID_SOCKET,
    IPPROTO_TCP,
    SOCK_STREAM,
    WSA_FLAG_OVERLAPPED,
    WSA_IO_PENDING,
    WSAECONNRESET,
    WSAENOBUFS,
)
from ovserver._core import ADDR_LEN, NEVER, Server, ServerConfig, _Conn, _Io
from ovserver._events import EventServer, _Group
from ovserver._iocp import IocpServer
from ovserver._protocol import _HUNG_UP, Action, Disconnect, Hangup, Hub, Resume, Send, Stall, _Client, error_line
from ovserver._routines import RoutineServer

__all__ = [
    "EnobufsPostLeftIdle",
    "HangupAllowanceCountsLongLine",
    "StopFlagNotSignalled",
    "IocpEarlyAcceptNotOwed",
    "IocpDeadlineNotWoken",
    "StallCutOffStaysInHub",
    "HangupFinResetsErrorLine",
    "CutOffClosesGracefully",
    "FirstReceiveBeforeSlot",
    "AcceptExPostFailureLeaksSocket",
]


def _use_hub(server: Server, hub: type[Hub]) -> None:
    server.hub = hub(server.config.mode, server.config.limits)
    server.stats.hub = server.hub.stats


# ====================================================================== error paths


class EnobufsPostLeftIdle(RoutineServer):
    """Error paths: a WSARecv or WSASend that fails at once with WSAENOBUFS
    ("the system is out of buffers for now") is left alone, to be retried by
    a later post, instead of closing the connection.  Nothing ever retries
    it: a receive not posted is never posted again (the client is not read
    any more: its lines get no reply, its FIN is never seen), and the bytes
    of a send not posted were already taken from the client's queue (a reply
    lost from the middle of its stream).  Needs WSAENOBUFS injected into a
    WSARecv or a WSASend."""

    COPIED = ("_after_post",)

    def _after_post(self, conn: _Conn, io: _Io, rc: int) -> None:
        error = 0 if rc == 0 else self.ws.WSAGetLastError()  # read only when rc says to
        ok = rc == 0 or error == WSA_IO_PENDING
        io.busy = ok
        self._posted(conn, io)
        if ok:
            self._count_post(rc == 0)
            return
        if error == WSAENOBUFS:  # BUG: "transient": left for a later post to retry, which never comes
            return  # BUG
        # Failed at once: nothing will notify.
        self.stats.posted_failed += 1
        self._count_close(conn, error)
        self._close(conn)


# ====================================================================== protocol: the line limit


class _AllowanceHub(Hub):
    COPIED = ("_too_long",)

    def _too_long(self, c: _Client, actions: list[Action]) -> None:
        self.stats.too_long += 1
        self.stats.discarded += len(c.inbuf)
        c.discarded += len(c.inbuf)  # BUG: the long line's bytes count towards the hung-up client's allowance
        c.inbuf.clear()
        c.scanned = 0
        c.state = _HUNG_UP
        self._members.pop(c.cid, None)
        self._paused.discard(c.cid)
        self._not_over(c.cid)
        self._enqueue(c, error_line(self.limits.max_line), actions)
        if c.cid in self._clients:
            actions.append(Hangup(c.cid, "line too long"))


class HangupAllowanceCountsLongLine(RoutineServer):
    """The line limit: a hung-up client may send ``max_line`` more bytes
    (discarded) before it is cut off; the developer counts the bytes of the
    too-long line itself (already over ``max_line``) into that allowance, as
    "discarded" (the statistic counts them).  So any byte the hung-up client
    sends after the receive that went over the limit (the rest of its long
    line, its newline, a next line) cuts it off: a reset, its error line
    perhaps lost, where it was owed the error line and a FIN.  Needs a line
    over ``max_line`` whose end (or more lines) comes in a later receive."""

    HUB = _AllowanceHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its _too_long()


# ====================================================================== events: stop, hand-over, hang-up


class StopFlagNotSignalled(EventServer):
    """Events, stop ordering: the acceptor sets every group's stop flag but
    does not signal the groups' wake events ("each group reads the flag at the
    top of its loop").  A group whose clients are quiet waits on in
    WSAWaitForMultipleEvents until one of its clients does something: the
    stop is seen only when a client sends, reads or leaves.  Needs a stop
    while a group's clients are idle (connected, nothing in flight that
    completes)."""

    COPIED = ("_begin_stop",)

    def _begin_stop(self) -> None:
        """Close the listener; tell every group to close its clients and end."""
        self._stopping = True
        ws = self.ws
        if self._listener != INVALID_SOCKET:
            ws.closesocket(self._listener)
            self._listener = INVALID_SOCKET
        self._close_accept_sockets()
        for group in self._groups:
            group.stop = True  # BUG: not signalled (WSASetEvent(group.wake)): seen at the group's next wake-up


class FirstReceiveBeforeSlot(EventServer):
    """Events, the hand-over: a group's thread serves a client handed over to
    it (joins it and posts its first WSARecv) before it gives the client its
    wait slot ("start reading first, bookkeeping after").  When that first
    WSARecv fails at once (the client reset while it was being accepted, or
    WSAENOBUFS), the connection is closed at once, and removing it from the
    wait array (the last client moves into its index) takes another client's
    place (or finds the array empty); then the closed client is appended to
    the array with its event already closed.  Needs a client whose first
    WSARecv fails at once: a reset as soon as connected, or WSAENOBUFS on
    WSARecv."""

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
            Server._begin(self, conn)  # BUG: joined and read before it has its wait slot
            conn.slot = len(group.members)
            group.members.append(conn)
            group.events.append(conn.event)
            # BUG: (moved up: joined and read here, once it has its wait slot)


class HangupFinResetsErrorLine(EventServer):
    """Half-close with a reply owed: a hung-up client (its line was too long)
    that sends its FIN is closed at once ("it was leaving anyway"), not after
    what is queued for it has been sent.  If its error line is still queued
    or in flight (a reader that does not read at once, a small window), the
    close drops it: a reset, where the client was owed the error line and a
    FIN.  Needs a line over ``max_line``, then the client's FIN, while the
    error line is not yet out."""

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
        elif nbytes == 0 and conn.state == "hangup":  # BUG: a hung-up client's FIN: "it was leaving anyway"
            self.stats.ended += 1  # BUG
            self._close(conn)  # BUG: closed now, its error line perhaps still queued or in flight
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


# ====================================================================== iocp: accept packets, deadlines, cut-offs


class IocpEarlyAcceptNotOwed(IocpServer):
    """IOCP, packets: a worker completes the AcceptEx calls that have
    completed before the packet in hand (HasOverlappedIoCompleted, so that a
    new client does not wait behind a long queue of packets), but forgets
    that the port still delivers each one's packet.  The slot is free at once
    and the next AcceptEx is posted on it; the stale packet is then taken
    for that new AcceptEx's completion (still pending: the accept fails and
    its socket is closed), or, with no AcceptEx posted on the slot (a full
    server, a stop), it is a packet for an OVERLAPPED not in flight.  Needs
    a client connecting while a worker handles another packet."""

    COPIED = ("_accept_early",)

    def _accept_early(self, ov: _Io) -> None:
        """Complete the AcceptEx calls whose packets are still queued behind
        others (every accept slot but ``ov``, the packet in hand).

        The port hands packets out in FIFO order, so in a busy server the
        accept's packet waits behind every receive and send packet queued
        before it, each of which may take long (in chat, a receive is routed
        to every member): under Wine, with 20 members sending to 170, a new
        member was welcomed 2-4 s after it connected.  So before every packet
        it handles, a worker reads the accept slots' OVERLAPPEDs
        (HasOverlappedIoCompleted: memory only, no call) and completes each
        accept that has completed, as the routines model does after every
        routine.  Its packet still comes:
        the OVERLAPPED is *owed* it and is not posted again until it has been
        dequeued; the next AcceptEx uses another slot (:meth:`_accept_handled`).
        Only the slots completed before the first of these accepts is handled
        are: the AcceptEx posted after each may complete at once (a backlog
        of connections), on a new slot, as owed ones are not posted again;
        looking at those too drained the whole backlog inside one packet,
        each accept making a slot.  (Under Wine, 3000 connect-then-reset
        clients: the worker never came back to its port, holding the lock,
        and the server neither served nor stopped.  The slots are kept in a
        list of posted ones, a list of free ones and the owed ones by id, so
        that none of this scans all of them: with 16 outstanding, early
        accepts on every accept packet ran up 1500 owed slots, and each post
        scanning them all made the server accept 20 connections a second.)

        At most ``accepts`` slots are owed at once: each owed slot is
        replaced by a new one, so without a bound the accepts ran as far
        ahead of the port as connections came, and the packets that would
        have ended the clients gone meanwhile stayed queued behind them.
        Under Wine, a chat with 30 clients at a time reconnecting (a welcome,
        a line, gone) had the server hold 3850 connections, 3662 slots owed:
        every line went to thousands of members long gone (59 MB sent for 44
        KB of lines), and the server grew from 41 to 268 MB; bounded, it held
        55, sent 1.9 MB and stayed at 42 MB, in the same 18 s
        (``tests/test_ovserver_iocp_churn.py``)."""
        room = self.config.accepts - len(self._owed)
        if room <= 0:
            return  # as many ahead of the port as --accepts: the rest come in their packets' turn
        done = [io for io in self._accepts if io is not ov and io.completed()][:room]
        for io in done:  # only those completed now: see below
            # BUG: not recorded as owed its packet (self._owed): the slot is free for a post at once
            self._accept_done(io)


class IocpDeadlineNotWoken(IocpServer):
    """IOCP, deadlines: a worker that gives a connection a deadline (an idle
    time-out for a new connection, a stall deadline for a recipient that went
    over the high-water mark) lowers the server's next deadline but does not
    wake the controller, which watches the deadlines and may be in a wait
    with no time-out (nothing was due when it began).  A slow consumer is
    then never cut off (in chat it holds every other sender back for good),
    and an idle client that arrived at a quiet server is never timed out.
    Needs back-pressure with a recipient that stays over the mark while the
    server is otherwise quiet, or an idle time-out."""

    COPIED = ("_idle_armed",)

    def _idle_armed(self) -> None:
        pass  # BUG: "the controller re-reads the deadlines after its wait": it is not woken


class CutOffClosesGracefully(IocpServer):
    """Slow readers: a client cut off for its output limit is closed like any
    other close ("the hub has dropped its queue, so close it"): gracefully
    unless the cancel finds a send in flight.  When it does not (the send
    completed, its packet still queued; or no send posted yet: the overflow
    came within one receive), the client reads a FIN after part of its
    replies and cannot tell that it was cut off.  Needs a client owed more
    than ``max_queued`` with no send in flight at the moment it overflows."""

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
            elif isinstance(a, Disconnect):
                self.stats.cut_off += 1
                self._close(conn)  # BUG: not abortive: graceful unless a send is found in flight
            elif isinstance(a, Resume):
                if conn.state == "open" and not conn.recv.busy and not self._stop:
                    self._read_on(conn)
            elif isinstance(a, Stall):  # (not if the Send before it took the queue under the mark)
                if conn.stall_due == NEVER and self.hub.over(conn.cid):
                    conn.stall_due = self.ws.GetTickCount64() + self.config.stall_timeout_ms
                    self._deadline(conn, conn.stall_due)


# ====================================================================== routines: back-pressure, accepting


class StallCutOffStaysInHub(RoutineServer):
    """Back-pressure, slow consumers: ``_close`` leaves the hub only for a
    graceful close, since "an abortive close is the hub's cut-off, and the
    hub has already forgotten that client" (so :class:`Disconnect` says).
    But the stall time-out's cut-off is the server's, not the hub's: the
    connection is closed and the hub keeps it, over the mark and counted as
    a client.  In echo with a client limit of 1 the server is full for good
    (no one is accepted any more); in chat the ghost holds every sender
    back.  Needs back-pressure with a client over the mark for the stall
    time-out (a reader that pauses longer), then another client."""

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
        if not abort and self._leave_hub(conn):  # BUG: an abortive close does not leave the hub
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


class AcceptExPostFailureLeaksSocket(RoutineServer):
    """Resource leaks: when AcceptEx fails at once (WSAENOBUFS under load) the
    accept socket made for it is not closed ("AcceptEx failed, so nothing was
    accepted").  Each failed post leaks a socket; WSACleanup finds them.
    Needs WSAENOBUFS injected into an AcceptEx."""

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
        ok, _ = ws.AcceptEx(self._listener, s, io.buf, 0, ADDR_LEN, ADDR_LEN, io)
        if ok or ws.WSAGetLastError() == WSA_IO_PENDING:
            # Even a TRUE return is handled when the wake event says so.
            self._count_post(bool(ok))
            io.busy = True
            io.sock = s
            self._accepts.append(io)
            return True
        # BUG: ws.closesocket(s) forgotten: "AcceptEx failed, nothing was accepted"
        self._accept_failed()
        self._free_accepts.append(io)
        return False
