"""The event-notification model, as the lecture notes lay it out, with their
optimisation "将上万的事件分组分线程等待处理": tens of thousands of events, grouped
into threads of 64.

Threads and what each one owns
==============================

* The **acceptor** is the thread that calls :meth:`Server.run`.  It owns the
  listening socket and the accept slots (their AcceptEx OVERLAPPEDs, up to
  ``accepts`` posted at once), whose event is the server's *wake event*
  (also the stop signal).  Its one wait is
  ``WSAWaitForMultipleEvents(1, [wake])``.
* A **group** is one program thread (CreateThread) with a wait array of its
  own: the group's own *wake event* and its live clients (up to 63)
  (one event per client, shared by the client's receive and send
  OVERLAPPEDs).  The group's wake event costs it one of its 64 slots, so a
  group serves at most 63 clients (``GROUP_CLIENTS``).  ``--max-clients``
  (:attr:`Limits.max_clients`) bounds the clients of the whole server; groups
  are created when no group has room and end when they are empty (no client,
  none handed over, no closed client with operations still in flight).
* The clients' events are kept as the lecture notes keep their event array,
  beside the list of clients and in the same order (``_Group.events``:
  client i's event at index i): a client taken in appends its event, a
  client removed gives its place in both lists to the last one (see "Closed
  clients leave the array at once").  A wait's array is the group's wake
  event and that list, rotated (see "Fairness"): it reads none of the
  clients.  A thread that never ran (see below) touched neither list.

How a connection moves to a group
=================================

The acceptor completes the accept (WSAGetOverlappedResult,
SO_UPDATE_ACCEPT_CONTEXT), creates the client's event, picks the first group
with room (or creates a group: its wake event, then its thread), appends the
connection to that group's **inbox** and signals the group's wake event.  The
group's thread, when its wake event's turn comes (see "Fairness" below),
resets its wake event and then takes its inbox: each connection enters its
wait array, joins the protocol and gets its first WSARecv.  The acceptor
never touches a group's wait array.

Accepting no further ahead than the groups
==========================================

The acceptor posts AcceptEx only while fewer than ``accepts`` connections
are handed over and not yet taken by their group, or have an AcceptEx
posted for them (``_room_to_accept``); a group that takes its inbox signals
the acceptor's wake event, which then posts again.  And a group takes its
inbox only in its wake event's turn, behind the clients signalled before
it (one client is served per wake-up).  Without the two, the acceptor took
connections in as fast as they came, and the groups took them in at every
wake-up, ahead of the completions (EOFs, resets) that would have ended the
clients gone meanwhile: under Wine, a chat with 30 clients at a time
reconnecting (a welcome, a line, gone; 6000 in all) had the server hold
up to 2005 connections, every line routed to all of them: 130 MB sent for
95 KB of lines, 181 MB resident, 32 s.  Bounded: at most 83 connections,
3.6 MB sent, 41 MB, 10.5 s (``tests/test_ovserver_iocp_churn.py``; the
iocp and routines models bound their early accepts the same way).  New clients wait in the listen backlog
meanwhile, as they do while the server is full.

A thread that never runs
========================

Under Wine, a process out of file descriptors can get from CreateThread a
handle to a thread that ends at once with exit code 1 and never runs its
start routine (its start-up needs descriptors of its own; found by e2e.sh's
fd-limit case: the group made for a client never served it, the client
waited until the stop).  Real Windows reports such a failure from
CreateThread itself.  So, once the server has run short of resources (an
AcceptEx or its socket failed at once or completed with WSAENOBUFS or
WSAEMFILE, or a client could not be given a group or an event), the
acceptor waits at most ``accept_retry_ms`` while a group's thread has not
run yet (``_starting``), and each time looks at those threads: one that has
ended without running is replaced by a new thread for the same group (whose
inbox and wake event it never touched), or, if CreateThread fails again, at
the next look.  When a group's thread runs and no other is starting, the
shortage is over: no more watching until the next one.  (Without a
shortage, the acceptor's waits are those of a server that never watches.)

What is locked
==============

One critical section, the **server lock**, guards everything the threads
share: the connection table and statistics, the protocol's hub (chat routes
lines between clients of different groups), the list of groups, every group's
inbox, action queue and stop flag, and the accept slots.  A thread holds it
whenever it is not waiting: each wait is ``LeaveCriticalSection``,
``WSAWaitForMultipleEvents``, ``EnterCriticalSection``.  Rules on top of it:

* **A group's wait array is changed only by its own thread**, and so is
  everything of its clients' sockets and OVERLAPPEDs: posting, closing,
  reaping, closing their events.  What another thread needs done to a
  client (a chat line to send, a slow reader to cut off: the hub's actions
  for a client of another group) goes to the owning group's **action queue**
  and its wake event is signalled.
* **Hand-over and ending are atomic.**  A group decides it is empty and
  removes itself from the list of groups in one hold of the lock; the
  acceptor picks a group and appends to its inbox in one hold.  So a
  connection is never handed to a group that has ended.  The ended thread
  closes its wake event after it left the list (no one signals it any more);
  the acceptor closes the thread's handle after waiting for it.
* **No lost wake-up.**  A group resets its wake event *after* its wait
  returned and *before* it reads its inbox, action queue and stop flag (all
  in one hold of the lock); whoever adds to them does so under the lock and
  then signals.
* **Only the acceptor posts AcceptEx** (posting resets the wake event, which
  would swallow a stop request signalled meanwhile: the acceptor reads the
  stop flag after each post).  A group whose client left while the server was
  full signals the acceptor's wake event instead.

Within a group the lecture notes' loop is unchanged:

* A signalled client is handled as the lecture notes say: WSAResetEvent
  (first, so a completion that lands while we work signals it again), then for
  each slot whose operation has completed, WSAGetOverlappedResult: 0 bytes
  received is a graceful exit, 10054 a forced one, and either removes the
  client (once its other operation is reaped).
* **Lost signals.**  Posting an operation resets its event, and the two slots
  of a client share one.  So after every post the client's *other* slot is
  checked (HasOverlappedIoCompleted); if it completed meanwhile, its signal was
  just erased, and the post signals the event again (WSASetEvent): the client
  is served at a later wake-up, in its turn, like any signalled client.
* **One client per wake-up, and every wake-up waits.**  A wake-up handles
  what completed for one client (at most one receive of ``recv_size`` bytes
  and one send), then the thread takes its actions (its inbox in the wake event's turn), leaves the
  lock and waits again.  No client is handled twice without a wait in
  between: a client whose receives and sends all complete
  at once (it reads and sends as fast as the server echoes) would otherwise
  keep its group, and with it the server lock, to itself for as long as it
  keeps up, and a new client (the acceptor's hand-over, that client's group)
  would not be served meanwhile (found under Wine: 200 clients sending and
  reading without a pause held the lock for up to 1.9 s at a time).
* **Fairness.**  WSAWaitForMultipleEvents reports the lowest signalled index,
  so the array (the group's wake event and its clients) is rotated after each
  wake-up, to start after the event just served.  The wake event takes its
  turn like a client: when it had index 0 for good, an acceptor handing over
  a connect storm signalled it before every wait of the group, which then
  only took its inbox while its clients waited (found under Wine: a client
  already connected waited up to 2.4 s for an echo; on the fake,
  ``tests/test_ovserver_busy.py``).  Every wake-up takes the actions (chat
  lines from other groups, which do not wait), but only the wake event's
  turn takes the inbox (see "Accepting no further ahead than the groups").
* **Closed clients leave the array at once.**  A closed connection leaves its
  group's client part when it is closed (its place goes to a new client), but
  its event, OVERLAPPEDs and buffers (and, for a graceful close, its socket)
  live on until its cancelled operations complete.  Such *closing* clients
  fill the array's spare places; each wake-up sweeps all of them.  Only when more are closing than there are
  spare places does the wait get a time-out (``CLOSING_POLL_MS``).

Idle clients (``idle_timeout_ms``, see :mod:`ovserver._core`): each group
closes its own idle clients (it owns their sockets) at the top of its loop,
once its earliest deadline has come, and its wait ends at that deadline at the
latest; a busy group checks at every wake-up.  Back-pressure's stall deadlines
(see :mod:`ovserver._core`) are watched the same way; the ``Stall`` and
``Resume`` actions for a client go to its group's action queue like any other.

Stopping: :meth:`Server.request_stop` (any thread: a console control handler,
a simulated actor) sets a flag and signals the acceptor's wake event.  The
acceptor closes the listener, sets every group's stop flag and signals it;
each group closes its clients (see ``Server._close``: the receive cancelled and
the socket closed once it is reaped; a send found in flight cancelled, an
abortive close) and waits at most ``stop_grace_ms`` for their cancelled
operations, then closes the sockets still open and ends.  The acceptor waits
for the AcceptEx calls it cancelled (also bounded), then for every group
thread, and closes their handles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fakewinsock import CRITICAL_SECTION, Winsock
from fakewinsock.constants import (
    FALSE,
    INFINITE,
    INVALID_SOCKET,
    WAIT_OBJECT_0,
    WSA_INFINITE,
    WSA_INVALID_EVENT,
    WSA_MAXIMUM_WAIT_EVENTS,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_TIMEOUT,
)

from ._core import NEVER, Server, ServerConfig, ServerError, _Conn, _Io
from ._protocol import Action

__all__ = ["EventServer", "GROUP_CLIENTS"]

#: Time-out of a wait while some closing clients do not fit in the group's wait array.
CLOSING_POLL_MS = 100
#: Clients per group: its wait array (64 events) less the group's wake event.
GROUP_CLIENTS = WSA_MAXIMUM_WAIT_EVENTS - 1


@dataclass(eq=False)
class _Group:
    """One group: a thread, its wake event and up to 63 clients.

    ``members``, ``events``, ``zombies``, ``next_first``, ``next_zombie``,
    ``stopping``, ``waited_ms``, ``gave_up`` and ``idle_due`` are the group thread's own;
    ``inbox``, ``actions`` and ``stop`` are written by other threads (under
    the server lock) and taken by the group thread (under the lock)."""

    gid: int
    wake: int
    thread: int = 0
    members: list[_Conn] = field(default_factory=list)  # wait index i + 1 (rotated)
    events: list[int] = field(default_factory=list)  # members' events, in the same order
    zombies: list[_Conn] = field(default_factory=list)  # closed, operations still in flight
    inbox: list[_Conn] = field(default_factory=list)  # handed over by the acceptor, not yet taken
    actions: list[Action] = field(default_factory=list)  # the hub's actions for members, from other threads
    stop: bool = False
    stopping: bool = False
    next_first: int = 0
    next_zombie: int = 0
    waited_ms: int = 0
    gave_up: bool = False
    wake_turn: bool = True  # its wake event's turn came (or it just started): the inbox is taken
    started: bool = False  # its thread ran (see "A thread that never runs" in the module docstring)
    idle_due: int = NEVER  # no member's idle time-out expires before this tick


class EventServer(Server):
    """The server with event notification: a thread per group of 63 clients."""

    model = "events"

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        self._lock = CRITICAL_SECTION()  # the server lock (see the module docstring)
        self._groups: list[_Group] = []  # live groups, oldest first
        # The first ``_full_groups`` of the ``_groups_seen`` groups had no room
        # when last looked at (see _group_with_room).
        self._full_groups = 0
        self._groups_seen = 0
        self._group_of: dict[int, _Group] = {}  # cid -> its group, until the connection is released
        self._next_gid = 1
        self._threads: list[int] = []  # handles of group threads not yet waited for
        self._finished: list[int] = []  # handles of threads whose group has ended
        self._running: _Group | None = None  # the group whose thread holds the lock (None: the acceptor)
        self._handed = 0  # connections in the groups' inboxes (handed over, not yet taken)
        self._held = False  # whether any thread holds it (set and cleared by the holder only)
        self._failure: BaseException | None = None  # what killed a group thread
        self._starting: list[_Group] = []  # groups whose thread has not yet run, oldest first
        self._short = False  # out of resources lately: watch the starting groups' threads

    @property
    def max_connections(self) -> int:
        return self.config.limits.max_clients

    @property
    def _group_capacity(self) -> int:
        """Clients one group serves: 64 wait slots, less its wake event."""
        return GROUP_CLIENTS

    # ------------------------------------------------------------ the lock

    def _enter(self, group: _Group | None) -> None:
        self.ws.EnterCriticalSection(self._lock)
        self._running = group
        self._held = True

    def _leave(self) -> None:
        self._running = None
        self._held = False
        self.ws.LeaveCriticalSection(self._lock)

    def _leave_if_held(self, group: _Group | None) -> None:
        """On an exception's way out: leave only if this thread holds the lock (the
        EnterCriticalSection in a ``finally`` may itself have raised)."""
        if self._held and self._running is group:
            self._leave()

    # ------------------------------------------------------------ the acceptor

    def _serve(self) -> None:
        ws = self.ws
        ws.InitializeCriticalSection(self._lock)
        try:
            self._enter(None)
            try:
                self._accept_loop()
            finally:
                if not self._stopping:  # an exception: the groups must end all the same
                    self._begin_stop()
                self._leave_if_held(None)
        finally:
            self._join(self._threads)
            try:
                self._end_orphans()
            finally:  # also when a KeyboardInterrupt or SystemExit comes out of it
                ws.DeleteCriticalSection(self._lock)
        if self._failure is not None:
            raise self._failure

    def _end_orphans(self) -> None:
        """After a group thread died (every thread has ended now, so the
        groups still in the list are those whose thread died): end each such
        group as its thread would have, from the acceptor (close its clients,
        wait at most ``stop_grace_ms`` for their cancelled operations, close
        their events and the group's wake event), so that :meth:`Server.run`
        finds nothing open and can clean up.  Should that raise too, the
        group is left as it is (run() then skips the cleanup) and the
        failure that killed the thread is the one re-raised; but a
        KeyboardInterrupt or SystemExit (not an Exception) propagates: the
        user asked to stop everything.  (Their stop flag is set: the stop
        began before the threads were waited for.)"""
        for group in list(self._groups):
            try:
                self._serve_group(group)
            except Exception:
                continue  # the next one all the same

    def _accept_loop(self) -> None:
        """The acceptor's loop (holding the lock but in its wait)."""
        while True:
            if not self._accept_retry:
                self._post_accept()
            # The flag is read after every post, so a stop signal swallowed by a
            # post resetting the wake event (AcceptEx on it) is still seen.
            if self._stop and not self._stopping:
                self._begin_stop()
            if self._stopping:
                if not self._accepting():
                    return
                if self._gave_up:
                    self.stats.abandoned += self._accepting()
                    return
                timeout = self.config.stop_grace_ms
            else:
                timeout = self.config.accept_retry_ms if self._accept_retry else WSA_INFINITE
                if self._short:
                    timeout = self._watch_starting(timeout)
            finished, self._finished = self._finished, []
            self._leave()
            try:
                self._join(finished)
                rc = self.ws.WSAWaitForMultipleEvents(1, [self._wake], FALSE, timeout, FALSE)
            finally:
                self._enter(None)
            if rc == WSA_WAIT_EVENT_0:
                self._on_wake()
            elif rc == WSA_WAIT_TIMEOUT:
                self._timed_out(timeout)
            else:
                raise ServerError(f"WSAWaitForMultipleEvents failed: {rc:#x} (error {self.ws.WSAGetLastError()})")

    def _watch_starting(self, timeout: int) -> int:
        """Out of resources lately (``_short``): replace the thread of every
        starting group whose thread ended before it ran, and wait at most
        ``accept_retry_ms`` while one has not run yet.  (The group thread that
        runs last of those starting clears ``_short``: see "A thread that
        never runs" in the module docstring.)"""
        if not self._starting:
            return timeout
        for group in self._starting:  # (not changed by a restart)
            if not group.started:
                self._restart_stillborn(group)
        retry = self.config.accept_retry_ms
        return retry if timeout == WSA_INFINITE or timeout > retry else timeout

    def _restart_stillborn(self, group: _Group) -> None:
        """If ``group``'s thread has ended without running (or could not be
        created again last time), close its handle and create another one for
        the group, whose state it never touched; if that fails, try again at
        the next watch."""
        ws = self.ws
        if group.thread:
            if ws.WaitForSingleObject(group.thread, 0) != WAIT_OBJECT_0 or group.started:
                return  # still starting (or it ran after all: its group is its own)
            self._threads.remove(group.thread)
            ws.CloseHandle(group.thread)
            group.thread = 0
            self.stats.threads_stillborn += 1
        self._start_thread(group)

    def _start_thread(self, group: _Group) -> bool:
        """Create ``group``'s thread (it runs :meth:`_group_main`); False if CreateThread failed."""
        h, _ = self.ws.CreateThread(None, 0, self._group_main, group, 0)
        if not h:
            return False
        group.thread = h
        self._threads.append(h)
        return True

    def _accept_later(self) -> None:
        super()._accept_later()
        self._short = True  # (an AcceptEx or its socket failed: WSAENOBUFS, WSAEMFILE)

    def _join(self, threads: list[int]) -> None:
        """Wait for each of ``threads`` (their groups have ended or are ending) and close its handle."""
        for h in list(threads):
            self.ws.WaitForSingleObject(h, INFINITE)
            self.ws.CloseHandle(h)
            self._threads.remove(h)

    def _begin_stop(self) -> None:
        """Close the listener; tell every group to close its clients and end."""
        self._stopping = True
        ws = self.ws
        if self._listener != INVALID_SOCKET:
            ws.closesocket(self._listener)
            self._listener = INVALID_SOCKET
        self._close_accept_sockets()
        for group in self._groups:
            group.stop = True
            ws.WSASetEvent(group.wake)

    def _resume_accepting(self) -> None:
        self._full_groups = 0  # a client was closed: its group has room again
        if self._running is None:
            self._post_accept()
        elif self._accepting() < self.config.accepts and not self._stopping and not self._accept_retry:
            self.ws.WSASetEvent(self._wake)  # the acceptor posts AcceptEx (see the module docstring)

    def _conn_opened(self, conn: _Conn) -> bool:
        """The acceptor: a group with room for the client, and the client's event.
        (A group created here that gets no client finds itself empty and ends.)"""
        group = self._group_with_room()
        if group is None:
            self._short = True
            return False
        ev = self.ws.WSACreateEvent()
        if ev == WSA_INVALID_EVENT:
            self._short = True
            return False
        conn.event = ev
        conn.recv.hEvent = ev
        conn.send.hEvent = ev
        self._group_of[conn.cid] = group
        return True

    def _group_with_room(self) -> _Group | None:
        """The first group with room, or a new one (None if it cannot be created).

        The scan starts at the first group that had room when last looked
        at: the groups before it had none, and a group gains room only when
        one of its clients is closed (``_resume_accepting`` then restarts the
        scan from the first group) or when a group before it ends (the list
        is shorter: restart too).  So with every client connected at once
        an accept looks at one or two groups, not at all of them (at 20000
        clients, 318 groups: the accepts' scans were +15% of the Python
        calls per message); the group picked is the same."""
        groups = self._groups
        start = self._full_groups if len(groups) == self._groups_seen else 0
        for i in range(start, len(groups)):
            group = groups[i]
            if self._has_room(group):
                self._full_groups, self._groups_seen = i, len(groups)
                return group
        ws = self.ws
        wake = ws.WSACreateEvent()
        if wake == WSA_INVALID_EVENT:
            return None
        group = _Group(self._next_gid, wake)
        if not self._start_thread(group):
            ws.WSACloseEvent(wake)
            return None
        self._next_gid += 1
        self._groups.append(group)
        self._starting.append(group)
        self._full_groups, self._groups_seen = len(groups) - 1, len(groups)
        self.stats.threads_started += 1
        self.stats.peak_threads = max(self.stats.peak_threads, len(self._groups))
        return group

    def _has_room(self, group: _Group) -> bool:
        return len(group.members) + len(group.inbox) < self._group_capacity

    def _room_to_accept(self, busy: int) -> bool:
        """As every model's, and at most ``accepts`` connections ahead of the
        groups: handed over and not yet taken, or with an AcceptEx posted for
        them (see "Accepting no further ahead than the groups" in the module
        docstring)."""
        return self._handed + busy < self.config.accepts and super()._room_to_accept(busy)

    def _begin(self, conn: _Conn) -> None:
        """The acceptor hands ``conn`` over to its group and wakes the group."""
        group = self._group_of[conn.cid]
        group.inbox.append(conn)
        self._handed += 1
        self.ws.WSASetEvent(group.wake)

    # ------------------------------------------------------------ a group's thread

    def _group_main(self, group: _Group) -> int:
        """A group's thread (CreateThread's start routine)."""
        group.started = True  # first: the acceptor reads it once the thread has ended
        try:
            self._serve_group(group)
        except BaseException as e:  # the acceptor re-raises it once every thread has ended
            if self._failure is None:
                self._failure = e
            self.request_stop()
            return 1
        return 0

    def _serve_group(self, group: _Group) -> None:
        """Serve the group until it has ended, then close its wake event."""
        self._enter(group)
        if group in self._starting:
            self._starting.remove(group)
            self._short = self._short and bool(self._starting)  # a thread runs: resources are back
        try:
            self._group_loop(group)
        finally:
            self._leave_if_held(group)
        self._close_abandoned(group.zombies)  # it gave up on them: their sockets are closed now
        self.ws.WSACloseEvent(group.wake)  # out of the list of groups: no one signals it any more

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
            if self._timers() and not group.stopping:
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
            conn.slot = len(group.members)
            group.members.append(conn)
            group.events.append(conn.event)
            Server._begin(self, conn)

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

    def _sweep_zombies(self, group: _Group) -> None:
        """Reap every operation of the group's closing clients that has completed."""
        for conn in list(group.zombies):
            self.ws.WSAResetEvent(conn.event)  # first: a later completion signals again
            for io in (conn.recv, conn.send):
                if io.completed():
                    self._reaped(io)

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
        for group in woken:
            self.ws.WSASetEvent(group.wake)
        super()._apply(mine)

    # ------------------------------------------------------------ the group's clients

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

    def _conn_released(self, conn: _Conn) -> None:
        group = self._group_of.pop(conn.cid)
        if conn in group.zombies:
            group.zombies.remove(conn)
        self.ws.WSACloseEvent(conn.event)
        conn.event = WSA_INVALID_EVENT

    def _deadline(self, conn: _Conn, due: int) -> None:
        """Only the group's own thread lowers its ``idle_due`` (a stall, applied
        as its action); a connection handed over gets its idle deadline when
        the group takes its inbox."""
        group = self._group_of[conn.cid]
        if group is self._running:
            group.idle_due = min(group.idle_due, due)

    def _posted(self, conn: _Conn, io: _Io) -> None:
        other = conn.send if io is conn.recv else conn.recv
        if other.completed():
            self.ws.WSASetEvent(conn.event)  # the post erased its signal: served at a later wake-up
