"""The event-notification model, as the seed's "事件通知实现逻辑" lays it out.

* One **group** per index: a client's socket, its event, and its OVERLAPPEDs
  (one receive slot, one send slot, both carrying the group's event in
  ``hEvent``).  Index 0 is the listener's group: the listening socket, the
  AcceptEx OVERLAPPED and its event (which is also the stop signal).
* One WSAWaitForMultipleEvents covers every group: the listener and at most 63
  clients (WSA_MAXIMUM_WAIT_EVENTS is 64).  When 63 clients are connected no
  AcceptEx is posted, so new connections wait in the listen backlog until a
  group is removed.
* A signalled group is handled as the seed says: WSAResetEvent (first, so a
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
* No busy polling: every wait is infinite, except while a failed AcceptEx
  post waits to be retried.
"""

from __future__ import annotations

from fakewinsock import Winsock
from fakewinsock.constants import (
    FALSE,
    WSA_INVALID_EVENT,
    WSA_MAXIMUM_WAIT_EVENTS,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_TIMEOUT,
)

from ._core import Server, ServerConfig, ServerError, _Conn, _Io

__all__ = ["EventServer"]


class EventServer(Server):
    """The server with event notification: one thread, at most 63 clients at once."""

    model = "events"

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        self._groups: list[_Conn] = []  # wait index i + 1 (rotated), index 0 is the listener
        self._next_first = 0  # rotation of the client part of the wait array
        self._again: dict[int, _Conn] = {}  # groups whose signal a post erased

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

    def _conn_released(self, conn: _Conn) -> None:
        # Remove the group as the seed does: the last group moves into its index.
        last = self._groups.pop()
        if last is not conn:
            self._groups[conn.slot] = last
            last.slot = conn.slot
        self._again.pop(conn.cid, None)
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
        rc = self.ws.WSAWaitForMultipleEvents(len(handles), handles, FALSE, timeout_ms, FALSE)
        if rc == WSA_WAIT_TIMEOUT:
            self._retry_accept()
            return
        i = rc - WSA_WAIT_EVENT_0
        if not 0 <= i < len(handles):
            raise ServerError(f"WSAWaitForMultipleEvents failed: {rc:#x} (error {self.ws.WSAGetLastError()})")
        if i == 0:
            self._on_wake()
            return
        self._next_first = first + i  # start after the group just served
        self._handle_group(order[i - 1])

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
