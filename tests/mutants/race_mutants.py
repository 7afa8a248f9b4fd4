"""Deliberately broken variants of ovserver's threaded models: races at their
synchronization calls that a developer ships (issues 10 and 14), written to
measure the preemption policy (``fakewinsock._preempt``).

As in :mod:`tests.mutants.ovserver_mutants`: each class is an ovserver server
with one thing changed, the changed lines marked ``BUG``, a copied method
named in ``COPIED``.  Each needs a thread switch right after a lock release
and the other thread running its whole step meanwhile.

These are test code: they are not shipped with ovserver.
"""

from __future__ import annotations

from fakewinsock.constants import FALSE, WSA_INFINITE, WSA_MAXIMUM_WAIT_EVENTS, WSA_WAIT_EVENT_0, WSA_WAIT_TIMEOUT
from ovserver._core import ServerError
from ovserver._events import CLOSING_POLL_MS, EventServer, _Group
from ovserver._iocp import _CONTROLLER, IocpServer

__all__ = ["IocpControllerResetBeforeWait", "GroupInboxCheckedOutsideLock"]


class IocpControllerResetBeforeWait(IocpServer):
    """The iocp model's controller resets its wake event just before its wait,
    after it left the lock ("a signal for what was just handled would wake
    it for nothing"), where the correct loop resets it under the lock, before
    reading the flags.  A worker that sets a flag and signals between the
    controller's LeaveCriticalSection and that reset is not heard: the stop's
    "every operation reaped" signal (a worker handling the last cancelled
    operation while the controller goes back to its wait), an idle time-out
    armed, an accept to retry.  Lost at a stop, the controller waits out its
    ``stop_grace_ms`` with nothing left in flight.  Needs a worker to finish
    the stop's last packet in the moment between the controller leaving the
    lock and its wait."""

    COPIED = ("_control",)

    def _control(self) -> None:
        """The controller's loop (holding the lock but in its wait)."""
        self._post_accept()
        while True:
            # BUG: (not so: the flags are read with the wake event not yet reset, the reset moved below)
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
                self.ws.WSAResetEvent(self._wake)  # BUG: reset outside the lock, after the flags were read
                rc = self.ws.WSAWaitForMultipleEvents(1, [self._wake], FALSE, timeout, FALSE)
            finally:
                self._enter(_CONTROLLER)
            if rc == WSA_WAIT_EVENT_0:
                pass  # BUG: (the reset moved before the wait)
            elif rc == WSA_WAIT_TIMEOUT:
                self._timed_out(timeout)
            else:
                raise ServerError(f"WSAWaitForMultipleEvents failed: {rc:#x} (error {self.ws.WSAGetLastError()})")


class GroupInboxCheckedOutsideLock(EventServer):
    """The events model's group resets its wake event before waiting only when
    its inbox looks empty ("a hand-over already in the inbox must not be
    erased"): a double check, but made after the group left the lock.  The
    acceptor may append a client and signal between that look and the reset,
    which erases the signal: the group waits with the client in its inbox,
    unserved until one of the group's clients wakes it.  Needs a hand-over
    (or a chat line from another group, a stop) in the moment between the
    group's look at its inbox and its WSAResetEvent."""

    COPIED = ("_wait_group",)

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
            if not group.inbox and not group.actions and not group.stop:  # BUG: looked at without the lock
                self.ws.WSAResetEvent(group.wake)  # BUG: erases a hand-over signalled since the look
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
