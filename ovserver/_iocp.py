"""The completion-port model: one I/O completion port and a pool of worker
threads, the way production Windows servers are built (the lecture notes end
where it begins: their measurements put IOCP at about 2% CPU for 20000 clients
against about 40% for the event model).

Threads and what each one owns
==============================

* The **controller** is the thread that calls :meth:`Server.run`.  It creates
  the port (``CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0,
  workers)``: the concurrency value is the pool's size), associates the
  listening socket with it (key :data:`LISTEN_KEY`), starts the workers
  (CreateThread), posts the first AcceptEx calls (``accepts`` of them), and then only waits on the
  server's *wake event* (``WSAWaitForMultipleEvents(1, [wake])``): a stop
  request, or an AcceptEx that failed at once and must be retried after
  ``accept_retry_ms`` (the wait's time-out).  It runs the stop (below), and
  last closes the port.
* A **worker** (``--workers`` of them) loops on
  ``GetQueuedCompletionStatus(port, INFINITE)``.  Every completion comes
  through the port, AcceptEx's too: a worker completes an accept (the new
  socket is associated with the port, its key the connection's id, and it
  gets its first WSARecv) and posts the next AcceptEx; it handles receives
  and sends of any connection, and routes chat lines to any other.  A
  packet with key :data:`STOP_KEY` and no OVERLAPPED ends the worker.
  Before each packet a worker also completes the AcceptEx calls that have completed
  (its packet may wait behind many others: see :meth:`IocpServer._accept_early`).

Nothing belongs to one worker: whichever worker dequeues a packet handles it.

What is locked
==============

One critical section, the **server lock**, guards everything the threads
share: the connection table and the closing table, every connection's state
(its operation slots, its in-flight count, its protocol state), the
protocol's hub, the statistics, the accept slots and the stop flags.  A
thread holds it whenever it is not waiting: a worker's loop is
``GetQueuedCompletionStatus`` (not holding it), ``EnterCriticalSection``,
handle the packet, ``LeaveCriticalSection``; the controller's wait is
``LeaveCriticalSection``, ``WSAWaitForMultipleEvents``,
``EnterCriticalSection``.  So completions of different connections are
dequeued in parallel but handled one at a time; with one lock there is no
lock order to get wrong.

How a connection lives and dies
===============================

* **The OVERLAPPED is the per-operation context**, the completion key the
  connection's id: a packet's OVERLAPPED is one of the connection's two
  operation slots (:class:`ovserver._core._Io`: the receive's buffer, or the
  bytes being sent), which points back to its connection.
* **One receive outstanding per connection**, and at most one send: a worker
  posts the next WSARecv only after it has handed the last one's bytes to the
  protocol (under the lock), so no two workers ever hold receive data of one
  connection, and the bytes reach the protocol in the order they arrived.
* **An immediate success is handled once, from the port.**  WSARecv or
  WSASend returning 0 still queues a packet (the port is not put in
  FILE_SKIP_COMPLETION_PORT_ON_SUCCESS mode), so a post that succeeds at once
  is treated exactly like one that pends: the slot is busy until its packet
  is dequeued.
* **The in-flight count** of a connection is its busy slots (a receive and
  a send at most): a slot is busy from the moment it is posted until the
  packet it produced is *handled* under the lock, not merely dequeued: a
  worker that dequeued a packet and waits for the lock still holds the
  context.
* **Closing** (graceful: the client's FIN, once every reply owed has been
  sent; abortive: a reset, an error, a cut-off, a stop) leaves the
  connection table at once (its place is free, AcceptEx is posted again),
  and, as in the other models (``Server._close``), with a send in flight
  it is ``CancelIoEx`` then an abortive close (SO_LINGER {1, 0}), and a
  graceful close cancels the receive and keeps the socket open.  The
  cancelled operations still produce packets; the connection's context (its
  OVERLAPPEDs, buffers and, for a graceful close, its socket) lives on,
  *closing*, until the last of them has been handled.  Only then is the
  socket closed and the context released: its slots forget it, so a packet that arrived
  for a released context would be noticed (:class:`ServerError`), never
  handled as another connection's.

Stopping
========

:meth:`Server.request_stop` (any thread: a console control handler, a
simulated actor) sets a flag and signals the wake event.  The controller
(holding the lock) closes the listener and every connection (CancelIoEx
first where a send is in flight), then waits until every cancelled
operation's packet has been handled by the workers (the worker that handles
the last one signals the wake event), bounded by ``stop_grace_ms`` in all
(what is still pending then is counted in ``abandoned``).  Only then does it
post one stop packet per worker (``PostQueuedCompletionStatus(port, 0,
STOP_KEY, NULL)``): packets are dequeued in FIFO order, so every packet queued
before the stop packets is handled before any worker ends.  It waits for
each worker thread, closes their handles and the port.

Divergence from what a C server would do: the per-connection state is not
reference-counted memory but a Python object; "freed" means released (its
slots forget their connection), and use after that is detected rather than
undefined.
"""

from __future__ import annotations

from fakewinsock import CRITICAL_SECTION, WSAOVERLAPPED, Winsock
from fakewinsock.constants import (
    FALSE,
    INFINITE,
    INVALID_HANDLE_VALUE,
    WAIT_TIMEOUT,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_TIMEOUT,
)

from ._core import Server, ServerConfig, ServerError, _Conn, _Io

__all__ = ["IocpServer", "LISTEN_KEY", "STOP_KEY"]

#: The listening socket's completion key (AcceptEx packets carry it).
LISTEN_KEY = 0
#: The key of the stop packets the controller posts, one per worker (no OVERLAPPED).
STOP_KEY = 0xFFFFFFFF

_CONTROLLER = -1  # the lock holder's id of the controller; workers are 0..n-1


class IocpServer(Server):
    """The server on one I/O completion port with a pool of worker threads."""

    model = "iocp"

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        self._port = 0
        self._lock = CRITICAL_SECTION()  # the server lock (see the module docstring)
        self._holder: int | None = None  # who holds the lock (set and cleared by the holder only)
        self._workers: list[int] = []  # worker thread handles, not yet waited for
        self._failure: BaseException | None = None  # what killed a worker
        self._owed: dict[int, _Io] = {}  # accept slots completed early whose packet is still queued, by id

    @property
    def workers(self) -> int:
        return self.config.workers

    # ------------------------------------------------------------ the lock

    def _enter(self, who: int) -> None:
        self.ws.EnterCriticalSection(self._lock)
        self._holder = who

    def _leave(self) -> None:
        self._holder = None
        self.ws.LeaveCriticalSection(self._lock)

    def _leave_if_held(self, who: int) -> None:
        """On an exception's way out: leave only if this thread holds the lock."""
        if self._holder == who:
            self._leave()

    # ------------------------------------------------------------ the controller

    def _listen(self) -> None:
        super()._listen()
        ws = self.ws
        port = ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, self.workers)
        if not port:
            raise ServerError(f"CreateIoCompletionPort failed (error {ws.GetLastError()})")
        self._port = port
        if ws.CreateIoCompletionPort(self._listener, port, LISTEN_KEY, 0) != port:
            raise ServerError(f"associating the listener with the port failed (error {ws.GetLastError()})")

    def _cleanup(self) -> None:
        if self._port:
            self.ws.CloseHandle(self._port)
            self._port = 0
        super()._cleanup()

    def _serve(self) -> None:
        ws = self.ws
        ws.InitializeCriticalSection(self._lock)
        try:
            self._enter(_CONTROLLER)
            try:
                self._start_workers()
                self._control()
            finally:
                if not self._stopping:  # an exception: the workers must end all the same
                    self._begin_stop()
                self._leave_if_held(_CONTROLLER)
        finally:
            self._stop_workers()
            self._reap_alone()
            ws.DeleteCriticalSection(self._lock)
            # Every worker has ended: an operation still busy now will never be
            # handled (the stop gave up on it; after a failure too).
            self.stats.abandoned = self._accepting() + sum(
                int(c.recv.busy) + int(c.send.busy) for c in self._closing.values())
        if self._failure is not None:
            raise self._failure

    def _start_workers(self) -> None:
        for i in range(self.workers):
            h, _ = self.ws.CreateThread(None, 0, self._worker, i, 0)
            if not h:
                raise ServerError(f"CreateThread failed (error {self.ws.GetLastError()})")
            self._workers.append(h)
            self.stats.threads_started += 1
            self.stats.peak_threads = max(self.stats.peak_threads, len(self._workers))

    def _control(self) -> None:
        """The controller's loop (holding the lock but in its wait)."""
        self._post_accept()
        while True:
            # The flags are read after the wake event was reset, in the same
            # hold of the lock: whoever sets them (under the lock) signals after.
            if self._stop and not self._stopping:
                self._begin_stop()
            if self._stopping:
                if self._drained():
                    return
                if self._gave_up:
                    return  # what is still in flight is counted in _serve
                timeout = self.config.stop_grace_ms
            else:
                timeout = self._running_timeout()
            self._leave()
            try:
                rc = self.ws.WSAWaitForMultipleEvents(1, [self._wake], FALSE, timeout, FALSE)
            finally:
                self._enter(_CONTROLLER)
            if rc == WSA_WAIT_EVENT_0:
                self.ws.WSAResetEvent(self._wake)
            elif rc == WSA_WAIT_TIMEOUT:
                self._timed_out(timeout)
            else:
                raise ServerError(f"WSAWaitForMultipleEvents failed: {rc:#x} (error {self.ws.WSAGetLastError()})")

    def _idle_armed(self) -> None:
        self.ws.WSASetEvent(self._wake)  # a worker opened it: the controller's wait gets its time-out

    def _drained(self) -> bool:
        """Stopping, and every operation's packet has been handled."""
        return not self._accepting() and not self._owed and not self._conns and not self._closing

    def _stop_workers(self) -> None:
        """One stop packet per worker, behind every packet already queued; then
        wait for each worker and close its handle."""
        ws = self.ws
        for _ in self._workers:
            if not ws.PostQueuedCompletionStatus(self._port, 0, STOP_KEY, None):
                raise ServerError(f"PostQueuedCompletionStatus failed (error {ws.GetLastError()})")
        for h in list(self._workers):
            ws.WaitForSingleObject(h, INFINITE)
            ws.CloseHandle(h)
            self._workers.remove(h)

    def _reap_alone(self) -> None:
        """After a failure (a worker that could not be created, a worker or
        the controller raising): every worker has ended, but the operations
        the stop cancelled may still be owed their packets (the AcceptEx
        posted before the workers were started has no worker at all to
        handle its packet when the first CreateThread fails, and a worker
        may take its stop packet before the cancellation's packet has been
        queued).  So the controller dequeues them itself, bounded by what is
        left of ``stop_grace_ms``; once they are reaped :meth:`Server.run`
        can close the port and the wake event and call WSACleanup (before,
        a worker that could not be created left all three behind).  After a
        normal stop this does nothing: the stop returned drained, or gave up."""
        ws = self.ws
        while not self._drained() and not self._gave_up:
            timeout = max(1, self.config.stop_grace_ms - self._stop_waited_ms)
            ok, nbytes, key, ov = ws.GetQueuedCompletionStatus(self._port, timeout)
            if ov is None:
                if ok and key == STOP_KEY:
                    continue  # the stop packet of a worker that had already ended
                if ok or ws.GetLastError() != WAIT_TIMEOUT:
                    return  # the port itself failed: leave what is left (run() skips the cleanup)
                self._timed_out(timeout)
                continue
            self._enter(_CONTROLLER)
            try:
                self._dispatch(bool(ok), nbytes, key, ov)
            finally:
                self._leave()

    def _accept_later(self) -> None:
        super()._accept_later()
        if self._holder != _CONTROLLER:
            self.ws.WSASetEvent(self._wake)  # the controller's wait gets the retry time-out

    def _resume_accepting(self) -> None:
        if not self._accept_retry:  # else the controller retries when its time-out ends
            self._post_accept()

    # ------------------------------------------------------------ a worker

    def _worker(self, index: int) -> int:
        """A worker thread (CreateThread's start routine)."""
        try:
            self._work(index)
        except BaseException as e:  # the controller re-raises it once every worker has ended
            self._leave_if_held(index)
            if self._failure is None:
                self._failure = e
            self.request_stop()
            return 1
        return 0

    def _work(self, index: int) -> None:
        ws = self.ws
        while True:
            ok, nbytes, key, ov = ws.GetQueuedCompletionStatus(self._port, INFINITE)
            if ov is None:
                if ok and key == STOP_KEY:
                    return
                raise ServerError(f"GetQueuedCompletionStatus failed (error {ws.GetLastError()}, key {key:#x})")
            self._enter(index)
            try:
                self._dispatch(bool(ok), nbytes, key, ov)
            finally:
                self._leave_if_held(index)

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
                self._reaped(ov)  # a cancelled or late operation of a closed connection
            else:
                error = 0
                if not ok:  # the packet's error is a Win32 one: the Winsock error of the operation
                    self.ws.WSAGetOverlappedResult(conn.sock, ov, FALSE)
                    error = self.ws.WSAGetLastError()
                self._completed(ov, error, nbytes)
        if self._stopping and self._drained():
            self.ws.WSASetEvent(self._wake)  # the controller may now stop the workers

    def _accept_packet(self, key: int, ov: _Io) -> None:
        """An AcceptEx packet: complete the accept, unless a worker already has
        (:meth:`_accept_early`); then the OVERLAPPED is free for a later post."""
        if key != LISTEN_KEY:
            raise ServerError(f"an AcceptEx packet with key {key:#x}")
        if self._owed.pop(id(ov), None) is not None:
            self._free_accepts.append(ov)  # free for a later post
            return
        if not ov.busy or ov not in self._accepts:
            raise ServerError(f"an AcceptEx packet for an OVERLAPPED not in flight (busy={ov.busy})")
        self._accept_done(ov)

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
            self._owed[id(io)] = io
            self._accept_done(io)

    def _accept_handled(self, io: _Io) -> None:
        """An owed slot is not posted again until its packet has been dequeued."""
        if id(io) in self._owed:
            self._accepts.remove(io)
        else:
            super()._accept_handled(io)

    def _accept_event(self) -> int:
        return 0  # AcceptEx completes through the port; posting it resets no event

    # ------------------------------------------------------------ connections

    def _conn_opened(self, conn: _Conn) -> bool:
        """Associate the accepted socket with the port, the connection's id its key."""
        return bool(self.ws.CreateIoCompletionPort(conn.sock, self._port, conn.cid, 0) == self._port)
