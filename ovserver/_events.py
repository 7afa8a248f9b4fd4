"""The event-notification model, as the lecture notes' "事件通知实现逻辑" lays it out.

* One **group** per index: a client's socket, its event, and its OVERLAPPEDs
  (one receive slot, one send slot, both carrying the group's event in
  ``hEvent``).  Index 0 is the listener's group: the listening socket, the
  AcceptEx OVERLAPPED and its event (which is also the stop signal).
* One WSAWaitForMultipleEvents covers every group: the listener and at most 63
  clients (WSA_MAXIMUM_WAIT_EVENTS is 64).  When 63 clients are connected no
  AcceptEx is posted, so new connections wait in the listen backlog until a
  group is removed.
* A signalled group is handled as the lecture notes say: WSAResetEvent (first, so a
  completion that lands while we work signals it again), then for each slot
  whose operation has completed, WSAGetOverlappedResult: 0 bytes received is
  a graceful exit, 10054 a forced one, and either removes the whole group
  (once its other operation is reaped).
* **Lost signals.**  Posting an operation resets its event, and the two slots
  of a group share one.  So after every post the group's *other* slot is
  checked (HasOverlappedIoCompleted); if it completed meanwhile, its signal was
  just erased and the group is queued to be handled again without waiting.
* **Fairness.**  WSAWaitForMultipleEvents reports the lowest signalled index,
  so the client part of the array is rotated after each wake-up: a busy client
  at a low index cannot starve the others.
* **Closed groups leave the array at once.**  A closed connection's group is
  removed from the client part when it is closed (its place goes to a new
  client), but its event, OVERLAPPEDs and buffers live on until its cancelled
  operations complete.  Such *closing* groups fill the array's spare places
  (after the listener and the live clients); each wake-up sweeps all of them,
  reaping what has completed.  Only when more are closing than there are
  spare places does the wait get a time-out (``CLOSING_POLL_MS``), so that
  those not in the array are swept too.
* No busy polling: every wait is infinite, except while a failed AcceptEx
  post waits to be retried, while a stop waits for cancelled operations, or
  while closing groups do not fit in the array.
"""

from __future__ import annotations

from fakewinsock import Winsock
from fakewinsock.constants import (
    FALSE,
    WSA_INFINITE,
    WSA_INVALID_EVENT,
    WSA_MAXIMUM_WAIT_EVENTS,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_TIMEOUT,
)

from ._core import Server, ServerConfig, ServerError, _Conn, _Io

__all__ = ["EventServer"]

#: Time-out of a wait while some closing groups do not fit in the wait array.
CLOSING_POLL_MS = 100


class EventServer(Server):
    """The server with event notification: one thread, at most 63 clients at once."""

    model = "events"

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        self._groups: list[_Conn] = []  # wait index i + 1 (rotated), index 0 is the listener
        self._next_first = 0  # rotation of the client part of the wait array
        self._again: dict[int, _Conn] = {}  # groups whose signal a post erased
        self._zombies: list[_Conn] = []  # closed groups with operations still in flight
        self._next_zombie = 0  # rotation of the closing part of the wait array

    @property
    def max_connections(self) -> int:
        return min(WSA_MAXIMUM_WAIT_EVENTS - 1, self.config.limits.max_clients)

    def _conn_opened(self, conn: _Conn) -> bool:
        ev = self.ws.WSACreateEvent()
        if ev == WSA_INVALID_EVENT:
            return False
        conn.event = ev
        conn.recv.hEvent = ev
        conn.send.hEvent = ev
        conn.slot = len(self._groups)
        self._groups.append(conn)
        return True

    def _conn_closed(self, conn: _Conn) -> None:
        # Remove the group as the lecture notes do: the last group moves into its index.
        last = self._groups.pop()
        if last is not conn:
            self._groups[conn.slot] = last
            last.slot = conn.slot
        conn.slot = -1
        self._again.pop(conn.cid, None)
        if not conn.idle():
            self._zombies.append(conn)  # its event stays alive until it is reaped

    def _conn_released(self, conn: _Conn) -> None:
        if conn in self._zombies:
            self._zombies.remove(conn)
        self.ws.WSACloseEvent(conn.event)
        conn.event = WSA_INVALID_EVENT

    def _posted(self, conn: _Conn, io: _Io) -> None:
        other = conn.send if io is conn.recv else conn.recv
        if other.completed():
            self._again[conn.cid] = conn

    def _wait(self, timeout_ms: int) -> None:
        if self._again:
            self._handle_group(next(iter(self._again.values())))
            return
        groups = self._groups
        n = len(groups)
        first = self._next_first % n if n else 0
        order = groups[first:] + groups[:first]
        handles = [self._wake] + [c.event for c in order]
        zombies = self._zombies
        if zombies:
            room = WSA_MAXIMUM_WAIT_EVENTS - len(handles)
            z = self._next_zombie % len(zombies)
            shown = (zombies[z:] + zombies[:z])[:room]
            handles += [c.event for c in shown]
            if len(shown) < len(zombies):
                self._next_zombie = z + len(shown)
                if timeout_ms == WSA_INFINITE or timeout_ms > CLOSING_POLL_MS:
                    timeout_ms = CLOSING_POLL_MS
        rc = self.ws.WSAWaitForMultipleEvents(len(handles), handles, FALSE, timeout_ms, FALSE)
        if zombies:
            self._sweep_zombies()
        if rc == WSA_WAIT_TIMEOUT:
            self._timed_out(timeout_ms)
            return
        i = rc - WSA_WAIT_EVENT_0
        if not 0 <= i < len(handles):
            raise ServerError(f"WSAWaitForMultipleEvents failed: {rc:#x} (error {self.ws.WSAGetLastError()})")
        if i == 0:
            self._on_wake()
            return
        if i > n:
            return  # a closing group: swept above
        self._next_first = first + i  # start after the group just served
        self._handle_group(order[i - 1])

    def _sweep_zombies(self) -> None:
        """Reap every operation of the closing groups that has completed."""
        for conn in list(self._zombies):
            self.ws.WSAResetEvent(conn.event)  # first: a later completion signals again
            for io in (conn.recv, conn.send):
                if io.completed():
                    self._reaped(io)

    def _handle_group(self, conn: _Conn) -> None:
        ws = self.ws
        self._again.pop(conn.cid, None)  # everything completed is handled now
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
