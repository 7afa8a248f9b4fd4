"""Single-bug variants of ovserver planted by an eleventh red team: bugs a
developer of such a server plausibly ships, in echo's line splitting across
receives (the byte after a receive's last newline, the bytes known to hold no
newline), the end of a connection (its FIN with nothing owed), the iocp
model's early accepts and accept retry, the routines model's marker APCs, and
back-pressure's resume with an idle time-out.

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
from fakewinsock.constants import ERROR_NOT_FOUND, WSAECONNRESET
from ovserver._core import Server, ServerConfig, _Conn, _Io
from ovserver._iocp import IocpServer
from ovserver._protocol import _MEMBER, Action, Hub
from ovserver._routines import RoutineServer

from .red10_mutants import _use_hub

__all__ = [
    "EchoOneByteTailDropped",
    "ScannedCountsNewline",
    "EofMarkedAfterSend",
    "IocpOwedSlotPooled",
    "IocpRetryNotWoken",
    "MarkerDoesNotAccept",
    "MarkerNeverCounted",
    "ResumeKeepsIdleClock",
    "CancelledSendClosesGracefully",
    "AbortiveCloseWaitsForReceive",
]


# ====================================================================== protocol: framing across receives


class _OneByteTailHub(Hub):
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
                if last + 1 < n - 1:  # BUG: a tail of one byte after the last newline is not kept
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


class EchoOneByteTailDropped(IocpServer):
    """Echo's fast path keeps the partial line after a receive's last newline
    only when it is longer than one byte (``last + 1 < n - 1`` for
    ``last + 1 < n``): a receive that ends one byte into the next line loses
    that byte.  Needs a line split over receives one byte after a newline."""

    HUB = _OneByteTailHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its receive()


class _ScannedNewlineHub(Hub):
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
                c.scanned = n - last  # BUG: the bytes after the newline, counted with the newline
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


class ScannedCountsNewline(IocpServer):
    """Echo's fast path records one byte too many as known to hold no
    newline (``n - last`` for ``n - last - 1``): when the next receive takes
    the slow path (a line near max_line in it, or the queue near max_queued)
    and begins with the newline of the partial line buffered, that newline
    is skipped, and the partial line runs into the next one (two lines echoed
    as one, or refused as too long).  Needs, in echo, a receive ending just
    before a newline and the next, beginning with it, holding a long line."""

    HUB = _ScannedNewlineHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its receive()


# ====================================================================== core: the end of a connection


class EofMarkedAfterSend(IocpServer):
    """At the client's FIN (a receive of 0 bytes) the output is sent on
    before the connection is marked ended: with nothing queued and no send in
    flight, the send path finds nothing to send on an *open* connection and
    does not close it, and nothing else will: the client never gets the
    server's FIN and the server holds its socket.  (With replies still queued
    or in flight, the last send's completion closes it, as it should.)
    Needs a client that half-closes once it has read every reply."""

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
            # BUG: (moved down: marked ended here, before the send path looks at it)
            self.hub.end(conn.cid)
            self._after_hub(conn)
            if conn.send.busy and self._peer_gone(conn):
                self._count_close(conn, WSAECONNRESET)  # as the send would have failed on Windows
                self._close(conn)  # (its send in flight: cancelled, an abortive close)
                return
            self._post_send(conn)
            conn.state = "eof"  # BUG: marked after the send path looked at it
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


# ====================================================================== iocp: accepts


class IocpOwedSlotPooled(IocpServer):
    """An accept slot completed early by a worker (its packet still queued
    behind others) goes back to the free slots at once, not when its packet
    has been dequeued: the next AcceptEx reuses its OVERLAPPED while the old
    packet is still in the port, and when that packet comes it is taken for
    the owed one (the slot put in the free list a second time, while its new
    AcceptEx is in flight).  Needs ``accepts`` > 1 or an accept completed
    early behind a receive's or a send's packet, then more clients."""

    COPIED = ("_accept_handled",)

    def _accept_handled(self, io: _Io) -> None:
        """An owed slot is not posted again until its packet has been dequeued."""
        Server._accept_handled(self, io)  # BUG: owed or not, free for a post at once


class IocpRetryNotWoken(IocpServer):
    """A worker whose AcceptEx post fails at once (WSAENOBUFS) sets the retry
    flag but does not wake the controller, which waits with no time-out (only
    the controller's wait retries accepting, after ``accept_retry_ms``): no
    AcceptEx is outstanding, and the clients that come next wait in the
    backlog until something else wakes the controller (a stop).  Needs an
    AcceptEx post that fails in a worker (after an accept, or a close of a
    full server), then another client."""

    COPIED = ("_accept_later",)

    def _accept_later(self) -> None:
        Server._accept_later(self)  # BUG: the controller's wait is not woken for its retry time-out


# ====================================================================== routines: marker APCs


class MarkerDoesNotAccept(RoutineServer):
    """A marker APC (the routines queued before an early accept have run)
    frees a place ahead of the routines but does not look at the accept
    slots: an AcceptEx that completed while accepts waited for the markers,
    its wake event's signal already used, is never handled (until a stop):
    the client it took is never served, and with one AcceptEx outstanding no
    other client is accepted.  Needs a connect while an accept's marker is
    still queued (two clients arriving together, or one while routines run)."""

    COPIED = ("_marker_ran",)

    def _marker_ran(self, _: int) -> None:
        """The routines queued before an early accept have run: one more may go ahead."""
        self._owed -= 1
        if self._stop and not self._stopping:
            self._begin_stop()  # as a routine does
        if self._stopping:
            self._accepts_done()  # one that completed while accepts waited for markers: reap it
        # BUG: the accepts completed meanwhile are left to the next wake event


class MarkerNeverCounted(RoutineServer):
    """A marker APC never takes its accept off the count of accepts ahead of
    the routines (a reference count never decremented): once ``accepts``
    accepts have been completed, no further one is, and every later client
    waits in the backlog.  Needs two clients, one after the other."""

    COPIED = ("_marker_ran",)

    def _marker_ran(self, _: int) -> None:
        """The routines queued before an early accept have run: one more may go ahead."""
        # BUG: self._owed is not decremented
        if self._stop and not self._stopping:
            self._begin_stop()  # as a routine does
        if self._stopping:
            self._accepts_done()  # one that completed while accepts waited for markers: reap it
        else:
            self._accepts_early()  # (it may have completed after its wake event was used)


# ====================================================================== core: back-pressure and the idle time-out


class ResumeKeepsIdleClock(IocpServer):
    """A client held back by back-pressure is read from again at its Resume
    without its idle clock restarted (stopped while it was held back): if it
    was held back for longer than the idle time-out, the next idle check
    closes it at once, in the middle of its talking.  Needs an idle time-out
    with back-pressure, and a client held back for longer than the time-out."""

    COPIED = ("_read_on",)

    def _read_on(self, conn: _Conn) -> None:
        """Read from ``conn`` again after back-pressure held it back; its idle
        clock, stopped meanwhile (see :meth:`_idle_check`), starts again."""
        # BUG: its idle clock is not restarted
        self._post_recv(conn)


# ====================================================================== core: closing with operations in flight


class CancelledSendClosesGracefully(IocpServer):
    """A close with a send in flight cancels it (CancelIoEx found it, so part
    of that reply may be lost) but stays graceful: the client reads a FIN
    after part of a reply, as if nothing more was owed, where a reset would
    tell it that data was lost.  (A cut-off is abortive anyway.)  Needs a
    graceful close (a stop, an idle time-out) while a send to a client that
    does not read is in flight, and nothing else queued for it."""

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
        if self._leave_hub(conn):
            abort = True  # output is dropped: a reset, not a FIN that says nothing more was owed
        ws = self.ws
        if conn.send.busy:
            if ws.CancelIoEx(conn.sock, conn.send):
                self.stats.cancelled += 1  # BUG: and the close stays as it was
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


class AbortiveCloseWaitsForReceive(IocpServer):
    """An abortive close (a cut-off, a reset, a send cancelled) sets SO_LINGER
    {1, 0} but leaves the closesocket, like a graceful one, until every
    operation has been reaped: nothing cancels the receive in flight, so the
    connection stays *closing*, its socket open, until the client sends or
    goes: a client cut off that waits for the server's reset waits for good.
    Needs an abortive close of a client that then sends nothing: a reader cut
    off for its output limit, a client whose send is cancelled at a stop."""

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
        if self._leave_hub(conn):
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
        close_now = False  # BUG: closed once its operations are reaped, abortive or not
        if abort:
            self._set_abortive(conn.sock)
        elif conn.recv.busy:
            # ERROR_NOT_FOUND if it has just completed: reaped as usual, then closed.  Another
            # failure: the cancel did not take, and waiting for the receive might never end.
            close_now = not ws.CancelIoEx(conn.sock, conn.recv) and ws.GetLastError() != ERROR_NOT_FOUND
        if close_now or conn.idle():
            self._close_socket(conn)
        self._forget(conn)
