"""The events model's thread groups (issue 14, item 3): a thread per group of
63 clients, created on demand, ended when empty; the acceptor hands each new
connection to a group with room; stats, stops and chat across groups.

The small properties here run the many-groups bodies of
:mod:`tests.mutants.group_properties` with fewer clients and examples; the
full ones (150-300 clients) run in ``tests/test_mutants.py`` (``-m slow``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import settings

from fakewinsock import FakeWinsock
from ovserver import Limits, Server, simulate
from ovserver._events import GROUP_CLIENTS, EventServer, _Group
from tests.mutants.group_properties import GROUP_SETTINGS, groups_chat_property, groups_property
from tests.ovserver_session import MS, Session, exact


def test_a_group_is_64_events() -> None:
    assert GROUP_CLIENTS == 63  # and the group's wake event


def test_groups_property_small() -> None:
    """Echo, 64-130 clients (two or three groups), every interleaving drawn by Hypothesis."""
    groups_property(EventServer, clients=(64, 130), settings_=settings(GROUP_SETTINGS, max_examples=4))()


def test_groups_chat_property_small() -> None:
    """Chat across two groups, every interleaving drawn by Hypothesis."""
    groups_chat_property(EventServer, clients=(64, 90), settings_=settings(GROUP_SETTINGS, max_examples=3))()


def test_groups_end_when_empty_and_are_created_again() -> None:
    """Two waves of 70 clients, 100 ms apart: each wave needs two groups; the
    groups of the first end when its clients have left, and the second wave
    gets new ones."""
    s = Session("events", fake=exact(0.0))
    clients = [s.client(wave * 100 + 0.01 * i) for wave in range(2) for i in range(70)]
    for i, c in enumerate(clients):
        start = 100 * (i // 70)
        c.send(start + 2, b"%d\n" % i)
        c.close(start + 10)
    stats = s.run(stop_ms=300)
    assert [bytes(c.data) for c in clients] == [b"%d\n" % i for i in range(140)]
    assert (stats.threads_started, stats.peak_threads, stats.peak_connections) == (4, 2, 70)
    assert (stats.accepted, stats.ended, stats.closed_at_stop) == (140, 140, 0)


def test_stats_across_groups() -> None:
    """150 clients over three groups: 50 end gracefully, 50 reset, 50 never
    read and are cut off; the counts add up whichever thread saw each."""
    s = Session("events", fake=exact(0.0, window=2048), limits=Limits(max_queued=4096))
    ending = [s.client(0.01 * i) for i in range(50)]
    resetting = [s.client(1 + 0.01 * i) for i in range(50)]
    deaf = [s.client(2 + 0.01 * i, reads=False) for i in range(50)]
    for i, c in enumerate(ending):
        c.send(5, b"e%d\n" % i)
        c.close(20)
    for i, c in enumerate(resetting):
        c.send(5, b"r%d\n" % i)
        c.reset(20)
    for c in deaf:
        for k in range(40):
            c.send(5 + k * 0.1, b"d" * 500 + b"\n")
    stats = s.run(stop_ms=200)
    assert stats.accepted == 150 and stats.peak_threads == 3
    assert (stats.ended, stats.reset, stats.cut_off, stats.closed_at_stop) == (50, 50, 50, 0)
    assert stats.io_errors == 0 and stats.abandoned == 0
    assert [bytes(c.data) for c in ending] == [b"e%d\n" % i for i in range(50)]
    assert all(c.reset_by_server for c in deaf)


def test_a_stop_ends_every_group() -> None:
    """A stop with 200 clients connected (four groups) closes them all and
    ends every group thread; nothing is left open (Session.run checks)."""
    s = Session("events", fake=exact(0.0))
    clients = [s.client(0.01 * i) for i in range(200)]
    for i, c in enumerate(clients):
        c.send(3, b"%d\n" % i)
    stats = s.run(stop_ms=20)
    assert (stats.closed_at_stop, stats.peak_threads, stats.abandoned) == (200, 4, 0)
    assert all(c.closed_by_server for c in clients)


def test_request_stop_from_another_program_thread() -> None:
    """The Ctrl+C path: request_stop() from another thread of the program (as
    Windows' console control handler runs), with WSASetEvent as its signal."""
    ws = FakeWinsock(seed=3, config=exact(0.0))
    s = Session("events", ws=ws)
    clients = [s.client(0.01 * i) for i in range(70)]
    for i, c in enumerate(clients):
        c.send(2, b"%d\n" % i)
    stopped_at: list[int] = []

    def stopper(server: Server) -> int:
        ws.Sleep(50)
        stopped_at.append(ws.now_ns)
        server.request_stop()
        return 0

    def ready(server: Server) -> None:
        h, _ = ws.CreateThread(None, 0, stopper, server, 0)
        assert h and ws.CloseHandle(h)  # the thread runs on; nothing waits for it
        for ms, action in s._script:
            ws.call_at(int(ms * MS), _call, action)

    stats = s.server.run(ready)
    assert len(stopped_at) == 1 and 50 * MS <= stopped_at[0] < 60 * MS
    assert stats.closed_at_stop == 70 and stats.peak_threads == 2
    assert [bytes(c.data) for c in clients] == [b"%d\n" % i for i in range(70)]


def _call(action: Callable[[], None]) -> None:
    action()


@pytest.mark.parametrize("mode", ["echo", "chat"])
def test_simulate_with_many_groups(mode: str) -> None:
    r = simulate(clients=300 if mode == "echo" else 150, messages=2, model="events", mode=mode, seed=5, plain=True)
    assert r.ok, r.errors[:3]
    assert r.server is not None and r.server.threads_started >= 2


class _PicksChecked(EventServer):
    """The events server, checking at every accept that the group it picks is
    the first group with room, found by looking at every group (the scan
    before it started where the last one ended); ``gids``: the groups picked."""

    gids: list[int] = []

    def _group_with_room(self) -> _Group | None:
        expected = next((g for g in self._groups if self._has_room(g)), None)
        group = super()._group_with_room()
        if expected is not None:
            assert group is expected, (f"picked group {group.gid if group else None}, "
                                       f"the first with room is {expected.gid}")
        self.gids.append(group.gid if group is not None else 0)
        return group


def test_the_group_picked_is_the_first_with_room() -> None:
    """130 clients fill two groups and start a third; then a client of the
    second group leaves, and the next connection must go there (the first
    group is full), not to the third, and the one after to the third; then
    one of the first group leaves, and the next goes to the first.  The group
    is checked at every accept against a scan of every group (_PicksChecked)."""
    s = Session("events", fake=exact(0.0))
    s.server = _PicksChecked(s.ws, s.config)
    _PicksChecked.gids = []
    clients = [s.client(0.01 * i) for i in range(130)]
    clients[70].close(10)  # second group
    late = [s.client(15), s.client(16)]
    clients[5].close(20)  # first group
    late.append(s.client(25))
    for i, c in enumerate(clients + late):
        if i not in (5, 70):
            c.send(30, b"%d\n" % i)
            c.close(40)
    stats = s.run(stop_ms=100)
    assert [bytes(c.data) for c in clients + late] == [
        b"" if i in (5, 70) else b"%d\n" % i for i in range(len(clients + late))]
    assert (stats.accepted, stats.peak_threads) == (133, 3)
    assert _PicksChecked.gids == [1] * 63 + [2] * 63 + [3] * 4 + [2, 3, 1]


class ArraysChecked(EventServer):
    """The events server, checking before every wait of a group that the
    events it keeps beside its clients (``_Group.events``, from which each
    wait's array is made) are its clients' events in the clients' order, and
    each client's slot its index; ``waits``: the waits checked."""

    waits = 0

    def _wait_group(self, group: _Group, timeout_ms: int) -> None:
        assert group.events == [c.event for c in group.members], (
            f"group {group.gid}: events {group.events}, its clients' {[c.event for c in group.members]}")
        assert [c.slot for c in group.members] == list(range(len(group.members)))
        ArraysChecked.waits += 1
        super()._wait_group(group, timeout_ms)


@pytest.mark.parametrize(("seed", "stop_at_s"), [
    (3, None),  # 200 clients at once: four groups
    (6, 0.2),  # a stop closes 160 clients across four groups
])
def test_the_wait_array_follows_the_clients(seed: int, stop_at_s: float | None) -> None:
    """200 clients at once over four groups, a third of them resetting (each
    close moves the group's last client into the closed one's place), and a
    stop with clients connected: at every wait the group's events are its
    clients' events in order (ArraysChecked; a stillborn thread's
    replacement: tests/test_ovserver_stillborn.py)."""
    ArraysChecked.waits = 0
    r = simulate(clients=200, messages=3, model="events", seed=seed, resets=0.3, plain=True, barrier=True,
                 stop_at_s=stop_at_s, server_class=ArraysChecked)
    assert r.ok, r.errors[:3]
    assert r.server is not None and r.server.peak_threads >= 2 and ArraysChecked.waits >= 500
    assert (r.server.closed_at_stop >= 100) == (stop_at_s is not None)
