"""ovserver: survivors of the thirty-eighth session's mutation samples (seed
38, drawn among the mutants no earlier sample or full run had drawn) that a
behaviour tells apart: what wakes the events acceptor, and what an accept
looks at.  Each test's docstring names the mutant it was proven against
(the test failed on the mutant and passes on the source)."""

from __future__ import annotations

from typing import Any

import pytest

from fakewinsock import FakeWinsock
from ovserver import Server
from ovserver._events import GROUP_CLIENTS, EventServer, _Group
from tests.ovserver_session import MS, Session, exact
from tests.test_ovserver_mutation_thirteenth import stop_with_more_closing_clients_than_wait_slots
from tools.wine.stillborn import short_of_threads


class _WakesNoted(FakeWinsock):
    """A fake noting every WSASetEvent a thread other than ``acceptor`` makes
    on ``server``'s wake event, with what the acceptor could do about it
    then: ``wakes`` (stopping, AcceptEx outstanding, ``accepts``, retry pending)."""

    server: EventServer
    acceptor = 0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wakes: list[tuple[bool, int, int, bool]] = []

    def WSASetEvent(self, hEvent: int) -> int:
        server = self.server
        if hEvent == server._wake and self.GetCurrentThreadId() != self.acceptor:
            self.wakes.append((server._stopping, server._accepting(), server.config.accepts, server._accept_retry))
        return super().WSASetEvent(hEvent)


def test_a_group_wakes_the_acceptor_only_when_it_can_post_an_accept() -> None:
    """Events model, 8 clients one after the other, each sending a line and
    leaving, then a stop with 3 clients connected.  A group signals the
    acceptor's wake event (``_take_inbox``'s and ``_resume_accepting``'s
    WSASetEvent) only while the acceptor can post an AcceptEx: not
    stopping, fewer than ``accepts`` outstanding, no retry pending.  (A
    client leaving while every AcceptEx is posted, or a group closing its
    clients at the stop, is no reason to wake the acceptor: each such
    wake-up is an acceptor's turn of the lock for nothing, and a stop's
    wake-up restarts the acceptor's grace-period wait.)  Every client is
    echoed and the acceptor was woken at least once for each client taken
    in.  Proven against ``_resume_accepting``'s ``... and not
    self._stopping or not self._accept_retry`` (a wake-up at every client's
    close, the stop's too, with ``accepts`` AcceptEx outstanding)."""
    ws = _WakesNoted(seed=0, config=exact(0.0))
    s = Session("events", ws=ws)
    assert isinstance(s.server, EventServer)
    ws.server = s.server
    clients = [s.client(2 * i) for i in range(11)]
    for i, c in enumerate(clients):
        c.send(2 * i + 0.5, b"%d\n" % i)
        if i < 8:
            c.close(2 * i + 1)
    s.stop(30)

    def ready(server: Server) -> None:
        ws.acceptor = ws.GetCurrentThreadId()
        for ms, action in s._script:
            ws.call_at(int(ms * MS), lambda f: f(), action)

    stats = s.server.run(ready)
    assert ws.leaks() == [] and ws.open_handles() == []
    ws.run_for(0.001)
    assert [bytes(c.data) for c in clients] == [b"%d\n" % i for i in range(11)]
    assert (stats.accepted, stats.ended, stats.closed_at_stop) == (11, 8, 3)
    assert [w for w in ws.wakes if w[0] or w[1] >= w[2] or w[3]] == []
    assert len(ws.wakes) >= 11


class _ScansCounted(EventServer):
    """The events server, counting the groups each accept looks at
    (``_has_room``) to find one with room: ``looks``, one count per accept."""

    looks: list[int] = []

    def _group_with_room(self) -> _Group | None:
        self._looked = 0
        group = super()._group_with_room()
        self.looks.append(self._looked)
        return group

    def _has_room(self, group: _Group) -> bool:
        self._looked += 1
        return super()._has_room(group)


def test_an_accept_looks_at_one_group_while_every_client_stays() -> None:
    """Events model, 130 clients connecting one after the other and staying
    (three groups: 63, 63 and 4).  Each accept's scan for a group with
    room starts at the group that had room last time (the groups before it
    are full, and stay so while no client leaves): it looks at that one
    group only (a new group is made when it is full), never at all of them (at 20000
    clients, 318 groups, the scans from the first group were +15% of the
    Python calls per message: see ``_group_with_room``).  Proven against
    ``start = ... if (len(groups) == self._groups_seen) and False else 0``
    (every scan from the first group: the 130th accept looks at three)."""
    s = Session("events", fake=exact(0.0))
    s.server = _ScansCounted(s.ws, s.config)
    _ScansCounted.looks = []
    clients = [s.client(0.01 * i) for i in range(130)]
    clients[-1].send(5, b"last\n")
    stats = s.run(stop_ms=10)
    assert bytes(clients[-1].data) == b"last\n"
    assert (stats.accepted, stats.threads_started, stats.peak_threads, stats.closed_at_stop) == (130, 3, 3, 130)
    looks = _ScansCounted.looks
    # (the first accept finds no group; every other looks at the newest group only: it is the first
    # with room, or it is full and a new group is made)
    assert looks == [0] + [1] * 129, looks


def test_an_events_group_polling_more_closing_clients_than_wait_slots_keeps_a_grace_period_under_the_poll() -> None:
    """As ``test_an_events_group_polling_more_closing_clients_than_wait_slots_gives_up_after_the_grace_period``
    (``tests/test_ovserver_mutation_thirteenth.py``: 64 closing clients in a
    group whose wait has 63 spare slots, their cancelled receives completing
    300 ms after the stop), with ``stop_grace_ms`` 50, under
    ``CLOSING_POLL_MS`` (100 ms): the poll shortens a longer wait to 100 ms
    but leaves a shorter one as it is, so the group gives up after 50 ms,
    not after a whole poll.  Proven against ``_wait_group``'s ``timeout_ms
    != WSA_INFINITE or timeout_ms > CLOSING_POLL_MS`` (every finite wait
    made 100 ms long: the stop gave up after 100 ms)."""
    stop_took_ns = stop_with_more_closing_clients_than_wait_slots(50)
    assert 50 * MS <= stop_took_ns < 60 * MS, "the stop did not give up after its grace period"


class _TimedWaits(FakeWinsock):
    """Records each WSAWaitForMultipleEvents' time (ns), handles and time-out."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.waits: list[tuple[int, list[int], int]] = []

    def WSAWaitForMultipleEvents(self, cEvents: int, lphEvents: Any, fWaitAll: int, dwTimeout: int,
                                 fAlertable: int) -> int:
        self.waits.append((self.now_ns, list(lphEvents[:cEvents]), dwTimeout))
        return super().WSAWaitForMultipleEvents(cEvents, lphEvents, fWaitAll, dwTimeout, fAlertable)


def test_the_events_acceptor_stops_watching_starting_threads_once_a_shortage_is_over() -> None:
    """Events model, ``accept_retry_ms`` 50: 63 clients fill the first
    group; the 64th finds no thread for a second group (CreateThread fails:
    refused), which arms the acceptor's watch of starting threads (see "A
    thread that never runs" in :mod:`ovserver._events`); the 65th gets a
    second group whose thread runs: the shortage is over, and the watch
    ends.  That client leaves at 8 ms (its group ends); the 66th, at 20 ms,
    gets a third group, with no shortage since: the acceptor waits for it
    without a time-out, as a server that never ran short (from 10 ms on, no
    wait of the acceptor has ``accept_retry_ms`` as its time-out).  Proven
    against ``_serve_group``'s ``self._short = self._short or
    bool(self._starting)`` (the watch never ended: the third group's
    creation had the acceptor wait 50 ms)."""
    ws = _TimedWaits(seed=0, config=exact(0.0))
    short_of_threads(ws, {2: "fail"})
    s = Session("events", ws=ws, accept_retry_ms=50)
    clients = [s.client(0.01 * i) for i in range(GROUP_CLIENTS)] + [s.client(5), s.client(6), s.client(20)]
    for i, c in enumerate(clients):
        c.send(7 if i < GROUP_CLIENTS + 2 else 21, b"%d\n" % i)
    clients[GROUP_CLIENTS + 1].close(8)
    wakes: list[int] = []
    s.at(1, lambda: wakes.append(s.server._wake))  # (the acceptor's wake event, while it runs)
    stats = s.run(stop_ms=40)
    assert clients[GROUP_CLIENTS].reset_by_server and stats.refused == 1
    assert [bytes(c.data) for c in clients] == [
        b"" if i == GROUP_CLIENTS else b"%d\n" % i for i in range(len(clients))]
    assert (stats.threads_started, stats.accepted) == (3, GROUP_CLIENTS + 2)
    mine = [(t, timeout) for t, handles, timeout in ws.waits if handles == wakes]
    assert any(timeout == 50 for t, timeout in mine if t < 10 * MS), mine  # (the watch, while short)
    assert [(t, timeout) for t, timeout in mine if t >= 10 * MS and timeout == 50] == []


class _LooksNoted(FakeWinsock):
    """Notes each WaitForSingleObject with time-out 0 (the events acceptor's
    look at a starting group's thread): the handle, and whether that thread
    had run by then (``_RunsNoted.ran``)."""

    ran: set[int]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.looks: list[tuple[int, bool]] = []

    def WaitForSingleObject(self, hHandle: int, dwMilliseconds: int) -> int:
        if dwMilliseconds == 0:
            self.looks.append((hHandle, hHandle in self.ran))
        return super().WaitForSingleObject(hHandle, dwMilliseconds)


class _RunsNoted(EventServer):
    """The events server, noting the handle of every group thread that runs (``ran``)."""

    def __init__(self, ws: _LooksNoted, config: Any) -> None:
        super().__init__(ws, config)
        self.ran: set[int] = set()
        ws.ran = self.ran

    def _group_main(self, group: _Group) -> int:
        self.ran.add(group.thread)
        return super()._group_main(group)


@pytest.mark.parametrize(("plan", "stillborn"), [({2: "fail"}, 0), ({2: "fail", 3: "stillborn"}, 1)])
def test_the_events_acceptor_looks_only_at_starting_threads_that_have_not_run(
        plan: dict[int, str], stillborn: int) -> None:
    """Events model, short of threads: the 64th client's group cannot be
    made (refused), and the 65th's group gets a thread that runs, or first
    one that ends without running.  The acceptor, watching the starting
    threads, looks (WaitForSingleObject, time-out 0) at one that never ran,
    and replaces it, but never at a thread that has run, though it is still
    starting (it ran at the acceptor's first call after creating it, and
    waits for the server lock the acceptor holds): its ``started`` says it
    is not one to replace, and no call is spent on it.  Proven against
    ``_group_main``'s ``group.started = False`` (the acceptor looked at the
    thread that ran, in the first case)."""
    ws = _LooksNoted(seed=0, config=exact(0.0))
    short_of_threads(ws, plan)
    s = Session("events", ws=ws, accept_retry_ms=50)
    s.server = _RunsNoted(ws, s.config)
    clients = [s.client(0.01 * i) for i in range(GROUP_CLIENTS)] + [s.client(5), s.client(6), s.client(7)]
    for i, c in enumerate(clients):
        c.send(8, b"%d\n" % i)
    stats = s.run(stop_ms=200)
    assert clients[GROUP_CLIENTS].reset_by_server and stats.refused == 1
    assert [bytes(c.data) for c in clients] == [
        b"" if i == GROUP_CLIENTS else b"%d\n" % i for i in range(len(clients))]
    assert (stats.threads_started, stats.threads_stillborn) == (2, stillborn)
    assert [look for look in ws.looks if look[1]] == [] and len(ws.looks) == stillborn, ws.looks
