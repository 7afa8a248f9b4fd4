"""Deliberately broken variants of the events model's thread groups: the races
servers with a thread per group of 64 events have (issue 14, item 3).

As in :mod:`tests.mutants.ovserver_mutants`: each class is
:class:`ovserver._events.EventServer` with one thing changed, the changed
lines marked ``BUG``, a copied method named in ``COPIED``.  Every bug here
needs two threads interleaved in a particular way; the fake's scheduler draws
the interleaving (from Hypothesis in the property tests), and
:data:`tests.mutants.MUTANTS` says which property catches each.

These are test code: they are not shipped with ovserver.
"""

from __future__ import annotations

from fakewinsock.constants import FALSE, WSA_INFINITE, WSA_MAXIMUM_WAIT_EVENTS, WSA_WAIT_EVENT_0, WSA_WAIT_TIMEOUT
from ovserver._core import Server, ServerError, _Conn
from ovserver._events import CLOSING_POLL_MS, EventServer, _Group

__all__ = ["ArraysChangedWhileWaiting", "LostWakeUp", "UnlockedAcceptor", "GroupEndedWhileHandedOver"]


class ArraysChangedWhileWaiting(EventServer):
    """The acceptor puts a new client straight into its group's wait array (and
    posts its first receive) instead of handing it over through the group's
    inbox: the group's thread is in WSAWaitForMultipleEvents on the array as it
    was, so the new client's completions go unnoticed until something else
    wakes that group.  Needs a second client joining a group whose thread
    waits."""

    def _begin(self, conn: _Conn) -> None:
        group = self._group_of[conn.cid]
        conn.slot = len(group.members)
        group.members.append(conn)  # BUG: the group's array, changed while its thread waits on it
        Server._begin(self, conn)  # BUG: served from the acceptor's thread, and the group is not woken


class LostWakeUp(EventServer):
    """A group resets its wake event just before it waits (after letting the
    server lock go) instead of after its wait returned: a hand-over (or a chat
    line from another group, or a stop) signalled between the two is erased,
    and the group sleeps on with a client in its inbox.  Needs the acceptor to
    hand a client over in that window."""

    COPIED = ("_wait_group",)

    def _wait_group(self, group: _Group, timeout_ms: int) -> None:
        """Wait once for the group's events and handle them."""
        if group.again:
            self._handle_group(next(iter(group.again.values())))
            return
        members = group.members
        n = len(members)
        first = group.next_first % n if n else 0
        order = members[first:] + members[:first]
        handles = [group.wake] + [c.event for c in order]
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
            self.ws.WSAResetEvent(group.wake)  # BUG: reset before the wait, out of the lock
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
        if i == 0:
            # Reset before the inbox, actions and stop flag are read (the loop
            # does that next, in this hold of the lock): whatever is added
            # after this signals again.
            return
        if i > n:
            return  # a closing client: swept above
        group.next_first = first + i  # start after the client just served
        self._handle_group(order[i - 1])


class UnlockedAcceptor(EventServer):
    """The acceptor lets the server lock go while it completes an accept ("the
    accept is the acceptor's own business"), but that writes the shared tables:
    the connection table, the list of groups and a group's inbox.  A group
    picked for the new client can find itself empty meanwhile (its last client
    left), leave the list and end; the client is then handed to a group that
    is gone.  Needs a group's last client to leave while the acceptor is
    between picking that group and handing the client over."""

    def _on_wake(self) -> None:
        self._leave()  # BUG: accepting without the lock
        try:
            super()._on_wake()
        finally:
            self._enter(None)  # BUG


class GroupEndedWhileHandedOver(EventServer):
    """An empty group's thread ends, but the group stays in the list of groups
    until the acceptor reaps the thread (at its next wait): a client accepted
    in between is handed to the ended group, whose wake event is closed and
    whose thread will never serve it.  Needs a group's last client to leave
    just before another client is accepted."""

    COPIED = ("_group_loop",)

    def _group_loop(self, group: _Group) -> None:
        """Serve the group until it is empty (holding the lock but in its waits)."""
        while True:
            self._take_inbox(group)
            actions, group.actions = group.actions, []
            self._apply(actions)
            if group.stop and not group.stopping:
                group.stopping = True
                for conn in list(group.members):
                    self.stats.closed_at_stop += 1
                    self._close(conn)
            if group.stopping and group.gave_up:
                self.stats.abandoned += sum(int(c.recv.busy) + int(c.send.busy) for c in group.zombies)
            elif group.members or group.zombies:
                self._wait_group(group, self.config.stop_grace_ms if group.stopping else WSA_INFINITE)
                continue
            # Empty (or given up): leave the list in the same hold of the lock in
            # which the inbox was found empty, so nothing is handed over any more.
            self._finished.append(group.thread)  # BUG: still listed; the acceptor forgets it in _join
            return

    def _join(self, threads: list[int]) -> None:
        self._groups = [g for g in self._groups if g.thread not in threads]  # BUG: forgotten only when reaped
        super()._join(threads)

