"""ovserver: what run() leaves behind when a thread of the server dies of an
unexpected exception (found by the thirteenth mutation round, issue 18)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from fakewinsock import FakeWinsock
from ovserver import ServerConfig, ServerError, create_server
from tests.ovserver_session import MS, Session, exact
from tests.test_ovserver_mutation_thirteenth import EnterFailsWhileOwned, run_until_a_group_thread_dies
from tests.test_ovserver_robust import NthThreadFails

GRACE_MS = 40


def _scripted(s: Session, ws: FakeWinsock) -> None:
    """Run ``s``'s script from the fake's clock (ready() of run())."""
    for ms, action in s._script:
        ws.call_at(int(ms * MS), lambda f: f(), action)


def test_an_events_group_thread_that_dies_leaves_nothing_open() -> None:
    """Events model, the scenario of the thirteenth round's lock test: a
    group thread's EnterCriticalSection raises while the acceptor holds the
    lock, so the thread dies with its group's two clients, their events and
    its wake event.  run() re-raises that exception, and the acceptor, once
    every thread has ended, ends the dead thread's group as the thread would
    have (closes its clients, reaps their cancelled receives, closes their
    events and the group's wake event): the final WSACleanup, strict, finds
    nothing.  Before the fix run() raised with 4 events open and skipped
    WSACleanup (the clients stayed in the connection table)."""
    ws = EnterFailsWhileOwned(seed=0, config=exact(0.0))
    s = Session("events", ws=ws)
    run_until_a_group_thread_dies(s, ws)
    assert ws.raised == 1
    assert ws.leaks() == [] and ws.open_handles() == []
    stats = s.server.stats
    assert (stats.accepted, stats.closed_at_stop, stats.abandoned) == (2, 2, 0)


def test_an_events_group_thread_that_dies_gives_up_after_the_grace_period() -> None:
    """As above, but every completion (cancellations too) comes 400 ms after
    its cause and the grace period is 40 ms: the acceptor, ending the dead
    thread's group, gives up on its clients' cancelled receives as the group
    would have, counts them in ``abandoned`` and leaves them (run() then skips
    the cleanup, as after any stop that gave up).  The client was still in
    the group's inbox: it is served and closed at once, as a stopping group
    does.  Before the fix the group's client was neither closed nor counted
    (closed_at_stop 0, abandoned 1: the acceptor's AcceptEx only).  The
    acceptor posts no AcceptEx while ``accepts`` (1) connections are handed
    over and not yet taken (tests/test_ovserver_iocp_churn.py): the client
    left in the dead group's inbox holds it back, so only its receive is
    abandoned (before that bound: its receive and the acceptor's AcceptEx)."""
    ws = EnterFailsWhileOwned(seed=0, config=exact(0.0, completion_delay=(400 * MS, 400 * MS),
                                                   strict_cleanup=False))
    s = Session("events", ws=ws, stop_grace_ms=GRACE_MS)
    run_until_a_group_thread_dies(s, ws)
    assert ws.raised == 1
    stats = s.server.stats
    assert (stats.accepted, stats.closed_at_stop, stats.abandoned) == (1, 1, 1)
    assert [op.split()[0] for op in ws.pending_operations()] == ["WSARecv"]


@pytest.mark.parametrize(("late_ms", "abandoned"), [(GRACE_MS - 0.5, 0), (GRACE_MS + 0.5, 1)])
def test_an_iocp_server_that_fails_counts_what_it_gave_up(late_ms: float, abandoned: int) -> None:
    """The iocp model's only worker cannot be created: run() raises, the
    controller alone waits ``stop_grace_ms`` for the packet of the AcceptEx
    the stop cancelled.  A packet that comes in time is reaped (nothing
    abandoned); one that comes too late is given up on, and ``abandoned``
    says so.  Before the fix ``abandoned`` was computed after _serve's
    try/finally, so a failure skipped it (0 with the AcceptEx still in
    flight)."""
    ws = NthThreadFails(seed=0, config=exact(0.0, completion_delay=(int(late_ms * MS), int(late_ms * MS)),
                                             strict_cleanup=False))
    server = create_server(ws, ServerConfig(port=0, model="iocp", workers=1, stop_grace_ms=GRACE_MS))
    with pytest.raises(ServerError, match=r"^CreateThread failed"):
        server.run()
    assert server.stats.abandoned == abandoned == len(ws.pending_operations())


class _SecondFailure(Exception):
    """What the acceptor's wait for a dead group's events raises."""


class WaitFailsAfterwards(EnterFailsWhileOwned):
    """EnterFailsWhileOwned, and once it has raised, the next wait for more
    than one event (a group's: the acceptor waits for one) raises too."""

    def WSAWaitForMultipleEvents(self, cEvents: int, lphEvents: Sequence[int], fWaitAll: int, dwTimeout: int,
                                 fAlertable: int) -> int:
        if self.raised == 1 and cEvents > 1:
            self.raised += 1
            raise _SecondFailure("WSAWaitForMultipleEvents")
        return super().WSAWaitForMultipleEvents(cEvents, lphEvents, fWaitAll, dwTimeout, fAlertable)


def test_an_events_acceptor_ending_a_dead_group_that_fails_too_reraises_the_first_failure() -> None:
    """As in the first test, and the acceptor's wait for the dead group's
    events raises as well: run() re-raises what killed the group thread, not
    the second exception, and the acceptor left the server lock (the fake's
    DeleteCriticalSection would raise a usage error on a section still
    owned); the group, left as it is, keeps its events (no cleanup).  Proven
    by taking out _end_orphans' ``except`` (the second exception came out of
    run()) and its ``_leave_if_held`` (WinsockUsageError from
    DeleteCriticalSection)."""
    ws = WaitFailsAfterwards(seed=0, config=exact(0.0, strict_cleanup=False))
    s = Session("events", ws=ws)
    run_until_a_group_thread_dies(s, ws)
    assert ws.raised == 2
    assert len([leak for leak in ws.leaks() if leak.startswith("event")]) == 4  # wake, group's, 2 clients'


class InterruptedAfterwards(EnterFailsWhileOwned):
    """EnterFailsWhileOwned, and once it has raised, the next wait for more
    than one event (the acceptor ending the dead group) is interrupted:
    KeyboardInterrupt, as a Ctrl+C arriving there."""

    def WSAWaitForMultipleEvents(self, cEvents: int, lphEvents: Sequence[int], fWaitAll: int, dwTimeout: int,
                                 fAlertable: int) -> int:
        if self.raised == 1 and cEvents > 1:
            self.raised += 1
            raise KeyboardInterrupt
        return super().WSAWaitForMultipleEvents(cEvents, lphEvents, fWaitAll, dwTimeout, fAlertable)


def test_a_keyboard_interrupt_while_ending_a_dead_group_propagates() -> None:
    """As above, but what interrupts the acceptor's wait for the dead group's
    events is a KeyboardInterrupt: it comes out of run() (the user asked to
    stop everything), not swallowed for the group thread's failure, and the
    acceptor leaves the lock and deletes it on the way.  Before the fix
    _end_orphans caught BaseException: run() raised _PossibleDeadlock."""
    ws = InterruptedAfterwards(seed=0, config=exact(0.0, strict_cleanup=False))
    run_until_a_group_thread_dies(Session("events", ws=ws), ws, raises=KeyboardInterrupt)
    assert ws.raised == 2
    assert not any(leak.startswith("critical section") for leak in ws.leaks())


class _Boom(Exception):
    """An error nobody expected, raised in the middle of a session."""


@pytest.mark.parametrize("model", ["events", "routines", "iocp"])
def test_an_unexpected_error_counts_what_is_left_in_flight(model: str) -> None:
    """An exception raised inside the server's wait, with three clients'
    receives and an AcceptEx pending: run() re-raises it, and ``abandoned``
    counts every operation the server will never reap.  The routines model
    waits for nothing after a failure: all four are abandoned (before the fix
    it said 0, as if it had reaped them).  The events and iocp models end
    their threads as a stop does, waiting (bounded) for the cancelled
    operations: they reap all four and abandon none."""
    ws = FakeWinsock(seed=0, config=exact(0.0, strict_cleanup=False))
    s = Session(model, ws=ws)
    for k in range(3):
        s.client(0.1 * k).send(1, b"before\n")

    def boom() -> None:
        raise _Boom("mid-session")

    s.at(3, boom)
    with pytest.raises(_Boom):
        s.server.run(lambda _: _scripted(s, ws))
    assert s.server.stats.abandoned == len(ws.pending_operations()) == (4 if model == "routines" else 0)


@pytest.mark.parametrize("model", ["events", "routines", "iocp"])
def test_an_unexpected_error_resets_a_client_whose_replies_it_drops(model: str) -> None:
    """An exception raised inside the server's wait while one client, which
    never reads, is owed 200 KB of replies (its send in flight, the rest
    queued) and another has read all of its own: the server closes both, the
    first with a reset, since its replies are dropped and a FIN would tell it
    nothing more was owed; the second with a FIN, after every reply.  The
    routines model closes them in ``_abandon`` (before the fix both got a
    FIN there); the events and iocp models end their threads as a stop does,
    through ``_close``, first."""
    ws = FakeWinsock(seed=0, config=exact(0.0, strict_cleanup=False))
    s = Session(model, ws=ws)
    deaf, reader = s.client(0.1, reads=False), s.client(0.2)
    deaf.send(1, (b"x" * 99 + b"\n") * 2000)
    reader.send(1, b"before\n")

    def boom() -> None:
        raise _Boom("mid-session")

    s.at(20, boom)
    with pytest.raises(_Boom):
        s.server.run(lambda _: _scripted(s, ws))
    ws.run_for(0.01)
    assert deaf.reset_by_server
    assert bytes(reader.data) == b"before\n" and reader.closed_by_server
