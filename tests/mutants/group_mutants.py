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

from fakewinsock.constants import WSA_INFINITE
from ovserver._core import Server, _Conn
from ovserver._events import EventServer, _Group

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
        group.events.append(conn.event)  # BUG: (its events, kept beside its clients)
        Server._begin(self, conn)  # BUG: served from the acceptor's thread, and the group is not woken


class LostWakeUp(EventServer):
    """A group takes one handed-over connection per wake-up, as if each hand-over
    were one signal.  But the wake event is an event, not a counter: two
    hand-overs before the group's thread runs make one signal, and the second
    client waits in the inbox, never served, until something else wakes that
    group.  Needs two clients handed to one group while its thread is busy,
    and the group's other clients quiet afterwards."""

    COPIED = ("_take_inbox",)

    def _take_inbox(self, group: _Group) -> None:
        """Serve the connections the acceptor handed over."""
        handed, group.inbox = group.inbox[:1], group.inbox[1:]  # BUG: one per wake-up
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
            self._finished.append(group.thread)  # BUG: still listed; the acceptor forgets it in _join
            return

    def _join(self, threads: list[int]) -> None:
        self._groups = [g for g in self._groups if g.thread not in threads]  # BUG: forgotten only when reaped
        super()._join(threads)

