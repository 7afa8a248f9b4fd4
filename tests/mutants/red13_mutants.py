"""Single-bug variants of ovserver planted by a thirteenth red team: bugs a
developer of such a Winsock overlapped-IO server plausibly ships, in code
paths no earlier mutant touches: back-pressure's hold of a hung-up chat
client and the over-the-mark state of a client that ends, the events model's
sweep of its closing clients, the single-table models' idle deadline, the
back-off after an AcceptEx whose client reset in the backlog, and the
"output dropped" test of a close.

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
from fakewinsock.constants import WSA_INVALID_EVENT
from ovserver._core import ServerConfig, _Conn
from ovserver._events import EventServer, _Group
from ovserver._iocp import IocpServer
from ovserver._protocol import _ENDED, Hub
from ovserver._routines import RoutineServer

from .red10_mutants import _use_hub

__all__ = [
    "HoldIgnoresMembership",
    "EndKeepsOverMark",
    "ZombieResetAfterReap",
    "DeadlineReplacesEarlier",
    "AcceptErrorBacksOff",
    "DroppedAskedAfterLeave",
]


# ====================================================================== protocol: back-pressure


class _HoldAnyHub(Hub):
    COPIED = ("hold",)

    def hold(self, cid: int) -> bool:
        """After a receive from ``cid`` (its actions performed): whether the driver
        must stop reading from it until a :class:`Resume` (a recipient of its
        lines is over the mark); it is then :meth:`paused`."""
        if not self._high or not self._held_back(cid):  # BUG: "a member only" left out: a hung-up one is held too
            return False
        self._paused.add(cid)
        self.stats.paused += 1
        return True


class HoldIgnoresMembership(RoutineServer):
    """Back-pressure's hold does not ask whether the sender is still a member:
    in chat, a client whose line was too long (hung up: it is no member any
    more, and what it sends is discarded) is held back like a talker while
    another member is over the mark.  Its Resume, when that member drains or
    goes, is not performed for a connection that is not open (hung up), so it
    is never read again: its FIN, or its reset, is never seen and the server
    holds its socket until a stop.  Needs chat with back-pressure: a line over
    max_line while another member is over the mark."""

    HUB = _HoldAnyHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its hold()


class _EndStaysOverHub(Hub):
    COPIED = ("end",)

    def end(self, cid: int) -> None:
        """The client ended its input (EOF): it is no longer a member; what is
        queued for it can still be sent; a trailing partial line is dropped."""
        c = self._clients.get(cid)
        if c is None or c.state == _ENDED:
            return
        self._members.pop(cid, None)
        c.state = _ENDED
        self._paused.discard(cid)
        pass  # BUG: self._not_over(cid) forgotten ("it leaves the mark when it drains, as anyone")
        self.stats.discarded += len(c.inbuf)
        c.inbuf.clear()
        c.scanned = 0


class EndKeepsOverMark(IocpServer):
    """A client that ends its input (FIN) while its queue is over the
    back-pressure mark stays over it: it gets no more lines, yet it holds the
    other senders back until it has drained to half the mark, and its stall
    clock runs on, so a half-closed client that reads its replies slowly, or
    pauses, is cut off (reset) at the stall time-out, where a correct server
    keeps it until it has read them.  Needs chat with back-pressure: a member
    over the mark half-closes, then reads nothing (or little) for longer than
    the stall time-out."""

    HUB = _EndStaysOverHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its end()


# ====================================================================== events: closing clients


class ZombieResetAfterReap(EventServer):
    """The sweep of a group's closing clients resets a closing client's event
    after reaping what has completed, not first (as the lecture notes' rule
    says for a client's event): an operation that completes between the look
    at it and the reset has its signal erased, and nothing signals that
    event again, so the closing client is never reaped: its event stays in the
    group's wait array, the group never ends, and a stop gives up on the
    operation.  Needs a close with both operations in flight (a cut-off, a
    stop with a slow reader), the second completing in that window."""

    COPIED = ("_sweep_zombies",)

    def _sweep_zombies(self, group: _Group) -> None:
        """Reap every operation of the group's closing clients that has completed."""
        for conn in list(group.zombies):
            # BUG: the event is reset below, after the reaping, not first
            for io in (conn.recv, conn.send):
                if io.completed():
                    self._reaped(io)
            if conn.event != WSA_INVALID_EVENT:  # BUG: (not released) the reset comes after the looks:
                self.ws.WSAResetEvent(conn.event)  # BUG: a completion between the two is erased


# ====================================================================== core: idle deadlines


class DeadlineReplacesEarlier(IocpServer):
    """A new deadline (a connection accepted with an idle time-out, a stall, a
    client read on) replaces the earliest one the server waits for, also when
    it is later: an idle connection whose deadline came first is looked at only
    at the new one, and is closed late by up to the time between the two
    (then the check finds the true earliest again).  Needs an idle time-out
    and a client that goes idle, another connecting (or read on) shortly
    before its deadline, more than the checker's lateness allowance later."""

    COPIED = ("_deadline",)

    def _deadline(self, conn: _Conn, due: int) -> None:
        """``conn`` must be checked at tick ``due`` (its idle or stall deadline);
        called by the thread that owns it."""
        if due != self._idle_due:  # BUG: any new deadline replaces the earliest one, not only an earlier one
            self._idle_due = due
            self._idle_armed()


# ====================================================================== accepting: a reset in the backlog


class AcceptErrorBacksOff(EventServer):
    """Every AcceptEx that completes with an error makes accepting back off for
    ``accept_retry_ms``, also one whose client reset while it waited in the
    listen backlog (a failure of that connection only, after which the next
    may be fine): each such reset delays the clients behind it by 50 ms, and
    a storm of them keeps good clients waiting in the backlog for seconds
    with the server idle.  Needs clients that reset in the listen backlog,
    then others waiting to be accepted."""

    COPIED = ("_accept_again",)

    def _accept_again(self, error: int) -> None:
        """After an AcceptEx that completed with ``error`` (0: it worked, but
        its socket's accept context could not be set): post again at once if
        its connection failed (that connection is gone, the next may be
        fine), else only later: the connection stays queued and the next
        AcceptEx would fail the same way at once, again and again (see
        :data:`_CONNECTION_FAILED`)."""
        if error:  # BUG: a failure of its connection (a reset in the backlog) backs off too
            self._accept_later()
        else:
            self._post_accept()


# ====================================================================== core: closing


class DroppedAskedAfterLeave(IocpServer):
    """Whether a close drops output is asked of the hub after the connection
    has left it, when its queue is forgotten (always 0): a close that drops
    output queued behind a send that has completed (its packet not yet
    handled, so the cancel finds nothing) stays graceful, and the client reads
    a FIN after part of its replies, maybe in the middle of a line.  Needs a
    close (a stop) of a client owed more than one send, its last send
    completed and its packet still queued behind others."""

    COPIED = ("_leave_hub",)

    def _leave_hub(self, conn: _Conn) -> bool:
        """``conn`` leaves the protocol's hub, and the senders it alone held
        back read on.  True if output queued for it was dropped."""
        # BUG: how much is queued is asked after the leave below
        self.hub.leave(conn.cid)
        dropped = self.hub.queued(conn.cid) > 0  # BUG: after the leave: always 0
        if self.config.stall_timeout_ms and (resumes := self.hub.pop_resumes()):
            self._apply(resumes)  # the senders it held back read on
        return dropped
