"""The events model when a group's thread ends before it runs.

Under Wine, a process out of file descriptors can get from CreateThread a
handle to a thread that ends at once (exit code 1) without running its start
routine (seen by ``tools/wine/e2e.sh``'s fd-limit case: the client handed to
that group was never served; reproduced with 73 sockets open under
``prlimit --nofile=300``: CreateThread failed once, then returned two such
threads, then threads that ran).  Real Windows fails CreateThread instead, so
the fake never does this: these tests make it happen with a FakeWinsock
whose CreateThread, for the calls planned, fails or starts a thread that
returns 1 at once instead of the server's routine (``short_of_threads`` of
``tools/wine/stillborn.py``, which does the same on Wine's real threads).  See "A thread that never
runs" in :mod:`ovserver._events`.  The group's events (kept beside its
clients) are checked at each of its waits (``ArraysChecked``): the
replacement thread finds them as the group was made.
"""

from __future__ import annotations

from typing import Any

import pytest

from fakewinsock import FakeWinsock
from fakewinsock.constants import WSA_INFINITE
from ovserver._events import GROUP_CLIENTS
from tests.ovserver_session import MS, Session, exact
from tests.test_ovserver_groups import ArraysChecked
from tools.wine.stillborn import short_of_threads


@pytest.mark.parametrize(("plan", "restarts", "served_by_ms"), [
    ({2: "fail", 3: "stillborn"}, 1, 60),  # the refusal arms the watch; the next look replaces the thread
    ({2: "fail", 3: "stillborn", 4: "fail"}, 1, 110),  # its replacement cannot be made at once: the look after
    ({2: "fail", 3: "stillborn", 4: "stillborn"}, 2, 110),  # its replacement ends before it runs too
])
def test_a_group_whose_thread_never_ran_is_served_by_another_thread(
        plan: dict[int, str], restarts: int, served_by_ms: int) -> None:
    """63 clients fill the first group; the 64th finds no thread for a second
    group (refused: reset); the 65th gets a group whose thread ends before it
    runs.  That client is served all the same, within ``accept_retry_ms``
    (50 ms) of each look at the thread, and the stop ends everything."""
    ws = FakeWinsock(seed=0, config=exact(0.0))
    short_of_threads(ws, plan)
    s = Session("events", ws=ws)
    s.server = ArraysChecked(ws, s.config)  # the group's events checked at every wait
    ArraysChecked.waits = 0
    n = GROUP_CLIENTS + 2
    clients = [s.client(0.01 * i) for i in range(GROUP_CLIENTS)] + [s.client(5), s.client(6)]
    for i, c in enumerate(clients):
        c.send(7, b"%d\n" % i)
    served_at: list[int] = []
    last = clients[-1]

    def check() -> None:
        if bytes(last.data) == b"%d\n" % (n - 1) and not served_at:
            served_at.append(ws.now_ns)

    for ms in range(8, 300):
        s.at(ms, check)
    stats = s.run(stop_ms=300)
    assert clients[GROUP_CLIENTS].reset_by_server and stats.refused == 1
    assert [bytes(c.data) for c in clients[:GROUP_CLIENTS]] == [b"%d\n" % i for i in range(GROUP_CLIENTS)]
    assert served_at and served_at[0] <= served_by_ms * MS, f"served at {served_at} ns"
    assert stats.threads_stillborn == restarts and stats.accepted == n - 1 and ArraysChecked.waits > n


@pytest.mark.parametrize(("plan", "short"), [({}, False), ({2: "fail"}, True)])
def test_no_watch_without_a_shortage(plan: dict[int, str], short: bool) -> None:
    """A server that never ran short waits for its accepts without a time-out,
    whatever group threads have not run yet (the watch must not change the
    waits, nor the schedules, of a server that never ran short); one that ran
    short waits ``accept_retry_ms`` while a group's thread has not run."""
    ws = _Waits(seed=0, config=exact(0.0))
    calls = short_of_threads(ws, plan)
    s = Session("events", ws=ws)
    clients = [s.client(0.01 * i) for i in range(GROUP_CLIENTS + 5)]
    for i, c in enumerate(clients):
        c.send(7, b"%d\n" % i)
    wakes: list[int] = []
    s.at(1, lambda: wakes.append(s.server._wake))  # (the acceptor's wake event, while it runs)
    s.run(stop_ms=100)
    timeouts = {t for handles, t in ws.waits if handles == wakes}
    assert calls[0] >= 2 and WSA_INFINITE in timeouts and (50 in timeouts) == short, timeouts


class _Waits(FakeWinsock):
    """Records each WSAWaitForMultipleEvents' handles and time-out."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.waits: list[tuple[list[int], int]] = []

    def WSAWaitForMultipleEvents(self, cEvents: int, lphEvents: Any, fWaitAll: int, dwTimeout: int,
                                 fAlertable: int) -> int:
        self.waits.append((list(lphEvents[:cEvents]), dwTimeout))
        return super().WSAWaitForMultipleEvents(cEvents, lphEvents, fWaitAll, dwTimeout, fAlertable)
