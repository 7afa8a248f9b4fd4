"""Single-bug variants of ovserver planted by a fourth red team (issue 10):
bugs a developer of a Winsock overlapped-IO server ships, in parts of the
server the earlier mutants do not touch: back-pressure (the stall clock, the
senders a leaving recipient held back, stall deadlines watched only with an
idle time-out), the iocp worker pool's shutdown, the accept path
(SO_UPDATE_ACCEPT_CONTEXT, the socket of a failed accept), an event closed
with its operations in flight, one completion per wake-up, a stop that a
burst of completion routines hides, a stop that leaves the AcceptEx socket,
a failed receive of 0 bytes taken for a FIN, and the output limit off by one.

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
    FALSE,
    INVALID_SOCKET,
    SO_UPDATE_ACCEPT_CONTEXT,
    SOCKET_ERROR,
    SOL_SOCKET,
    WSA_INFINITE,
    WSA_INVALID_EVENT,
    WSAECONNRESET,
)
from ovserver._core import _CONNECTION_FAILED, ADDR_LEN, SOCKET_SIZE, ServerConfig, ServerError, _Conn, _Io
from ovserver._events import EventServer, _Group
from ovserver._iocp import STOP_KEY, IocpServer
from ovserver._protocol import _MEMBER, Action, Hub, Send, Stall, _Client
from ovserver._routines import RoutineServer

__all__ = [
    "StallClockNotCleared",
    "StallUnwatchedWithoutIdleTimeout",
    "CloseKeepsSendersPaused",
    "IocpWorkersNotJoined",
    "NoUpdateAcceptContext",
    "AcceptErrorLeaksSocket",
    "EventClosedWithSocket",
    "OneSlotPerWakeup",
    "StopUnseenInRoutineBurst",
    "StopLeavesAcceptSocket",
    "FailedEmptyReceiveIsEof",
    "QueueLimitOffByOne",
]

def _use_hub(server: EventServer | RoutineServer | IocpServer, hub: type[Hub]) -> None:
    server.hub = hub(server.config.mode, server.config.limits)
    server.stats.hub = server.hub.stats


# ====================================================================== back-pressure


class StallClockNotCleared(RoutineServer):
    """Back-pressure: the stall clock a client gets when its queue goes over the
    high-water mark is not stopped once the queue has drained under it, so a
    client that was over the mark once is cut off ``stall_timeout_ms`` later
    however steadily it reads.  Needs back-pressure on (``--high-water``) and
    a client whose queue passes the mark and drains, alive longer than the
    stall time-out."""

    COPIED = ("_after_hub",)

    def _after_hub(self, conn: _Conn) -> None:
        """After the hub took output from ``conn`` or forgot it: its stall clock
        stops once it is no longer over the mark, and the senders it held back
        read on (back-pressure only)."""
        if not self.config.stall_timeout_ms:
            return
        self.hub.settle(conn.cid)
        # BUG: the stall clock is not stopped when the client has drained under the mark
        if resumes := self.hub.pop_resumes():
            self._apply(resumes)


class StallUnwatchedWithoutIdleTimeout(EventServer):
    """Back-pressure, events model: a group watches its clients' deadlines
    only when the idle time-out is on (the condition written before the stall
    time-out existed), so with ``--high-water`` and no ``--idle-timeout-ms`` a
    recipient that stops reading is never cut off: in chat it holds every
    other sender back for good.  Needs back-pressure on, no idle time-out, and
    a reader that stops for good while others send to it."""

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
            if self.config.idle_timeout_ms and not group.stopping:  # BUG: stall deadlines need a check too
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


class CloseKeepsSendersPaused(IocpServer):
    """Back-pressure, iocp model: a connection that is closed (a stalled
    reader cut off, a reset, a hang-up) leaves the hub, which makes the
    senders it alone held back due to resume, but the close does not perform
    those resumes: they wait until something else happens to pop them (another
    client's send or receive completing), and in a chat whose only traffic
    was the paused senders', nothing does.  Needs back-pressure on and a
    recipient over the mark closed while senders are held back."""

    COPIED = ("_leave_hub",)

    def _leave_hub(self, conn: _Conn) -> bool:
        """``conn`` leaves the protocol's hub, and the senders it alone held
        back read on.  True if output queued for it was dropped."""
        dropped = self.hub.queued(conn.cid) > 0
        self.hub.leave(conn.cid)  # BUG: the resumes its leaving made due are left for later
        return dropped


# ====================================================================== the iocp worker pool


class IocpWorkersNotJoined(IocpServer):
    """iocp, shutdown: the controller posts a stop packet per worker, then
    closes each worker's thread handle without waiting for the thread
    ("closing the handle ends it"): it goes on to close the port and call
    WSACleanup while workers may still be dequeuing their stop packets.
    Needs nothing but a stop with workers that have not yet taken their stop
    packet."""

    COPIED = ("_stop_workers",)

    def _stop_workers(self) -> None:
        """One stop packet per worker, behind every packet already queued; then
        wait for each worker and close its handle."""
        ws = self.ws
        for _ in self._workers:
            if not ws.PostQueuedCompletionStatus(self._port, 0, STOP_KEY, None):
                raise ServerError(f"PostQueuedCompletionStatus failed (error {ws.GetLastError()})")
        for h in list(self._workers):
            ws.CloseHandle(h)  # BUG: the thread is not waited for (WaitForSingleObject) first
            self._workers.remove(h)


# ====================================================================== accepting


class NoUpdateAcceptContext(EventServer):
    """Accepting, events model: the accepted socket never gets
    SO_UPDATE_ACCEPT_CONTEXT ("only getpeername needs it, and the address
    comes from GetAcceptExSockaddrs"), so shutdown() on it fails with
    WSAENOTCONN: a client hung up for a line over the limit gets its error
    line but never the server's FIN (the failed shutdown's result is not
    read).  Needs a line over ``max_line``."""

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
        if not ok:  # BUG: SO_UPDATE_ACCEPT_CONTEXT is never set on the accepted socket
            self.stats.accept_failures += 1
            if not ok and error in _CONNECTION_FAILED:
                self.stats.gone_unaccepted += 1
            elif ok:
                self.stats.refused += 1
            ws.closesocket(s)
            self._accept_again(error)
            return
        assert isinstance(io.buf, bytearray)
        remote = ws.GetAcceptExSockaddrs(io.buf, 0, ADDR_LEN, ADDR_LEN).RemoteSockaddr
        self._open(s, f"{remote.host}:{remote.port}".encode())
        self._post_accept()


class AcceptErrorLeaksSocket(RoutineServer):
    """Accepting, routines model: an AcceptEx that completes with an error (its
    connection was reset while it waited in the listen backlog) is retried
    with a fresh socket, but the socket it was given is not closed: one
    socket handle leaks per failed accept.  Needs a client that resets while
    the server accepts it."""

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
            # BUG: the accept socket is not closed ("the failed accept took it")
            self._accept_again(error)
            return
        assert isinstance(io.buf, bytearray)
        remote = ws.GetAcceptExSockaddrs(io.buf, 0, ADDR_LEN, ADDR_LEN).RemoteSockaddr
        self._open(s, f"{remote.host}:{remote.port}".encode())
        self._post_accept()


# ====================================================================== handles and wake-ups


class EventClosedWithSocket(EventServer):
    """Events model, handles: a client's event is closed together with its
    socket, as the lecture notes' removal does (socket, event, OVERLAPPED
    go as one group), although its cancelled operations are still in flight
    and will signal it, and the group still waits on it to reap them.  Needs a
    connection closed with an operation in flight (a hang-up, a cut-off, a
    reset seen by a failed send, a stop)."""

    COPIED = ("_conn_closed", "_conn_released")

    def _conn_closed(self, conn: _Conn) -> None:
        # Remove the client as the lecture notes do: the last one moves into its index.
        group = self._group_of[conn.cid]
        last = group.members.pop()
        group.events.pop()  # (its event follows it)
        if last is not conn:
            group.members[conn.slot] = last
            group.events[conn.slot] = last.event
            last.slot = conn.slot
        conn.slot = -1
        if not conn.idle():
            group.zombies.append(conn)  # its event stays alive until it is reaped
        self.ws.WSACloseEvent(conn.event)  # BUG: closed with the socket, its operations still in flight

    def _conn_released(self, conn: _Conn) -> None:
        group = self._group_of.pop(conn.cid)
        if conn in group.zombies:
            group.zombies.remove(conn)
        conn.event = WSA_INVALID_EVENT  # BUG: (closed in _conn_closed)


class OneSlotPerWakeup(EventServer):
    """Events model: a wake-up of a client handles one completed operation,
    "the event stays signalled for the other" -- but it was reset first, so
    when the receive and the send of a client both completed, the second is
    lost: after a receive that posts again the post re-signals it (the lost
    signal check), but after the client's FIN (a receive of 0 bytes, nothing
    posted) the send's completion is never handled, the rest of its replies
    never sent and the connection never closed.  Needs a FIN arriving while
    a send is in flight that completes before the group handles the FIN."""

    COPIED = ("_handle_group",)

    def _handle_group(self, conn: _Conn) -> None:
        ws = self.ws
        ws.WSAResetEvent(conn.event)
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
            return  # BUG: one completion per wake-up: "the other slot's event is still signalled"


# ====================================================================== stopping


class StopUnseenInRoutineBurst(RoutineServer):
    """Routines model, stop: a routine no longer begins a requested stop; only
    the loop around the alertable wait does, but clients that keep data
    flowing keep one wait running routines (each routine's post completes at
    once and queues the next), so the stop waits until the traffic pauses.
    Needs a stop while clients send and read without a pause for longer
    than the stop's second."""

    COPIED = ("_between_routines",)

    def _between_routines(self, idle_check: bool) -> None:
        """What the loop around the wait would do, done by a routine (see the
        module docstring): begin a requested stop; complete the AcceptEx calls; every
        ``ROUTINE_BURST`` routines (``idle_check``), close idle clients.  The
        first two read only memory (a flag, HasOverlappedIoCompleted), so they
        are done after every routine: one routine may be long (in chat, a
        receive routed to every member), and a burst of them took seconds."""
        if not self._stopping:  # BUG: a requested stop is left to the loop around the wait
            if self._owed < self.config.accepts:
                self._accepts_early()
            if idle_check:  # GetTickCount64: a call, so not after every routine
                self._idle_timeout(WSA_INFINITE)  # idle clients are closed even while others keep it busy
                if self._accept_retry and self.ws.GetTickCount64() >= self._retry_due:
                    self._retry_accept()


class StopLeavesAcceptSocket(IocpServer):
    """iocp model, stop: the stop closes the listener (which cancels the
    pending AcceptEx) and every connection, but not the socket the AcceptEx
    was given; the cancelled accept's packet is then dropped as "stopping",
    and that socket is never closed.  Needs a stop with an AcceptEx posted
    (a server not full)."""

    COPIED = ("_begin_stop",)

    def _begin_stop(self) -> None:
        """Close the listener and every connection; their operations complete
        with errors and are reaped by the waits that follow."""
        self._stopping = True
        ws = self.ws
        if self._listener != INVALID_SOCKET:
            ws.closesocket(self._listener)
            self._listener = INVALID_SOCKET
        # BUG: the AcceptEx's socket is left open ("closing the listener cancels the accept")
        for conn in list(self._conns.values()):
            self._close_at_stop(conn)


# ====================================================================== byte counts and statistics


class FailedEmptyReceiveIsEof(IocpServer):
    """iocp model, a receive's result: a completion of 0 bytes is taken for the
    client's FIN before its error is looked at, so a reset (10054, 0 bytes)
    is counted as a graceful end (``ended``, not ``reset``), and the replies
    queued for it are tried on the reset connection.  The clients see the
    same bytes; only the statistics (the ``stopped`` line, the report) are
    wrong.  Needs a client that resets while the server's receive is
    posted."""

    COPIED = ("_completed",)

    def _completed(self, io: _Io, error: int, nbytes: int) -> None:
        """The one place a receive's or a send's completion is handled."""
        io.busy = False
        conn = io.conn
        assert conn is not None
        if conn.closed:
            self._reaped(io)
            return
        if error and (nbytes or io.kind == "send"):  # BUG: a failed receive of 0 bytes is a FIN
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


class _QueueLimitHub(Hub):
    COPIED = ("_enqueue",)

    def _enqueue(self, c: _Client, data: bytes, actions: list[Action], messages: int = 1) -> None:
        """Queue ``data`` (``messages`` messages) for ``c``, or cut it off."""
        if c.queued + len(data) >= self.limits.max_queued:  # BUG: a queue of exactly max_queued is cut off
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


class QueueLimitOffByOne(RoutineServer):
    """The protocol's output limit, at its boundary: a client is cut off when
    its queue would *reach* ``max_queued``, not exceed it, so a client owed
    exactly ``max_queued`` bytes that it has not read is reset, which the
    limit allows only above it.  Needs the bytes queued for one client to
    add up to exactly ``max_queued`` (chat: its welcome and the lines of the
    others)."""

    HUB = _QueueLimitHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its _enqueue()
