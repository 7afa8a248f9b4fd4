"""The completion-routine model: the same server, notified by completion routines.

* WSARecv and WSASend are posted with a completion routine; the OVERLAPPED's
  ``hEvent`` is not used.  Windows queues the routine to the posting thread
  when the operation completes (also when it completed at once), and runs it
  only inside an alertable wait of that thread.
* The thread's one wait is ``WSAWaitForMultipleEvents(1, [wake], FALSE,
  INFINITE, TRUE)``: it returns WSA_WAIT_IO_COMPLETION after running the
  routines that were queued, or WSA_WAIT_EVENT_0 when the wake event is
  signalled (an AcceptEx completed, which cannot use a routine, or a stop was
  requested).
* There is no 64-handle limit: any number of clients (up to the protocol's
  ``max_clients``) on one thread.
* A routine may post the next operation; it never runs inside the post.
* **A wait may not return for a long time.**  Windows runs every routine
  queued to the thread before the alertable wait returns, including those
  queued while they run, and a routine's post completes at once (queueing the
  next routine) whenever its client has data waiting or room to send.  So
  clients that keep data flowing can keep one wait running routines for as
  long as they go on: the loop around the wait would never see a stop
  request, nor the wake event of a completed AcceptEx.  Hence after every
  routine, a routine itself begins a requested stop, or completes the AcceptEx
  calls that have completed (as the wake event would have had it done); every
  ``ROUTINE_BURST`` routines run in one wait, it also closes idle clients.
  Found with 200 real clients under Wine: Ctrl+C did not stop the server
  while they sent and read without a pause.  The checks were once made only
  every ``ROUTINE_BURST`` routines: in a busy chat under Wine (20 senders,
  170 members) a new member then waited 2-3 s for its welcome, as one routine
  routes a whole receive to every member.
* **A failed accept is retried when due**, ``accept_retry_ms`` after the
  failure (GetTickCount64), before a wait (which waits no longer than that)
  and every ``ROUTINE_BURST`` routines.  The other models retry when their
  wait on the wake event times out, which a busy server's completions do not
  delay; here every completion ends the wait, and the retry once waited for a
  wait that timed out: a client sending every few milliseconds kept the
  server from accepting anyone for as long as it went on.
* **Accepts run at most ``accepts`` ahead of the routines.**  An accept
  completed by a routine jumps the queue of routines, and in chat each
  routine may route a line to every member (a WSASend each).  Without a
  bound, under Wine a chat with 30 clients at a time reconnecting (a
  welcome, a line, gone) had 15 accepts done per routine run: the server
  held 3600 connections of clients long gone, whose receives of 0 bytes
  waited behind the routines, sent 58 MB for 44 KB of lines, and grew from 40
  to 243 MB.  So each accept a routine completes queues a marker APC
  (QueueUserAPC) behind the routines queued so far, as the iocp model's
  accept packets queue behind the packets before them; while ``accepts``
  markers are queued, accepts wait for them (or for the wake event).
"""

from __future__ import annotations

from fakewinsock import WSAOVERLAPPED, Winsock
from fakewinsock.constants import FALSE, TRUE, WSA_INFINITE, WSA_WAIT_EVENT_0, WSA_WAIT_IO_COMPLETION, WSA_WAIT_TIMEOUT

from ._core import Server, ServerConfig, ServerError, _Io

__all__ = ["RoutineServer", "ROUTINE_BURST"]

#: Routines run in one wait between two checks for idle clients.
ROUTINE_BURST = 64


class RoutineServer(Server):
    """The server with completion routines and alertable waits."""

    model = "routines"

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        self._routine = self._on_completion
        self._ran = 0  # routines run in the current wait
        self._retry_due = 0  # GetTickCount64 at which a failed accept is retried (while _accept_retry)
        self._owed = 0  # accepts completed by routines whose marker APC has not run yet
        self._marker = self._marker_ran

    def _on_completion(self, dwError: int, cbTransferred: int, lpOverlapped: WSAOVERLAPPED,
                       dwFlags: int) -> None:
        """The completion routine of every WSARecv and WSASend."""
        if not isinstance(lpOverlapped, _Io):
            raise ServerError(f"completion routine called with a foreign OVERLAPPED: {lpOverlapped!r}")
        self._completed(lpOverlapped, dwError, cbTransferred)
        self._ran += 1
        self._between_routines(self._ran % ROUTINE_BURST == 0)

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
                if self._accept_retry and self.ws.GetTickCount64() >= self._retry_due:
                    self._retry_accept()

    def _accepts_early(self) -> None:
        """Complete the accepts that have completed, up to ``accepts`` ahead of
        the routines: each queues a marker behind the routines queued so far
        (see the module docstring)."""
        ws = self.ws
        for _ in range(self._accepts_done(self.config.accepts - self._owed)):
            if ws.QueueUserAPC(self._marker, ws.GetCurrentThread(), 0):
                self._owed += 1

    def _on_wake(self) -> None:
        """The wake event: as a routine would, complete the accepts up to
        ``accepts`` ahead.  (On Windows the wait returns the event only once
        every routine queued has run, the markers too; under Wine it returns
        the event first, and accepting everything at each wake then let
        connections in ahead of every routine.)"""
        if self._stopping:
            super()._on_wake()  # reap every cancelled accept
            return
        self.ws.WSAResetEvent(self._wake)
        if self._owed < self.config.accepts:
            self._accepts_early()

    def _owes(self) -> bool:
        return self._owed > 0  # queued markers run in the stop's (alertable) waits

    def _marker_ran(self, _: int) -> None:
        """The routines queued before an early accept have run: one more may go ahead."""
        self._owed -= 1
        if self._stop and not self._stopping:
            self._begin_stop()  # as a routine does
        if self._stopping:
            self._accepts_done()  # one that completed while accepts waited for markers: reap it
        else:
            self._accepts_early()  # (it may have completed after its wake event was used)

    def _accept_later(self) -> None:
        super()._accept_later()
        self._retry_due = self.ws.GetTickCount64() + self.config.accept_retry_ms

    def _wait(self, timeout_ms: int) -> None:
        if self._accept_retry:
            left = self._retry_due - self.ws.GetTickCount64()
            if left <= 0:
                self._retry_accept()
                return  # the loop around looks at the stop flag and waits again
            timeout_ms = min(timeout_ms, left)
        self._ran = 0
        rc = self.ws.WSAWaitForMultipleEvents(1, [self._wake], FALSE, timeout_ms, TRUE)
        if rc == WSA_WAIT_IO_COMPLETION:
            return  # the routines have run
        if rc == WSA_WAIT_EVENT_0:
            self._on_wake()
        elif rc == WSA_WAIT_TIMEOUT:
            self._timed_out(timeout_ms)
        else:
            raise ServerError(f"WSAWaitForMultipleEvents failed: {rc:#x} (error {self.ws.WSAGetLastError()})")
