"""ovserver: survivors of the fourteenth session's mutation sample (issue 18,
seed 26, drawn among mutants no earlier sample or full run had checked) that
a behaviour tells apart.  Each test's docstring names the mutant it was
proven against (the mutant planted in the source by hand: the test failed;
the source restored: it passed)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from fakewinsock import FakePeer, FakeWinsock
from ovserver import Limits, ServerConfig, create_server
from ovserver._core import MAX_ACCEPTS
from tests.ovserver_session import MS, Session, exact
from tests.test_ovserver_mutation_ninth import run_with_a_packet_of_another_key
from tests.test_ovserver_mutation_thirteenth import retry_near_the_tick
from tests.test_ovserver_robust import AcceptPostsFail


def test_accepts_takes_1_to_max_accepts_and_rejects_one_more() -> None:
    """``accepts`` (AcceptEx calls kept outstanding) takes 1 to
    ``MAX_ACCEPTS``; one more is rejected naming the range and the value.
    Proven against ``__post_init__``'s ``accepts < MAX_ACCEPTS`` (the
    largest count rejected)."""
    for n in (1, MAX_ACCEPTS):
        assert ServerConfig(accepts=n).accepts == n
    with pytest.raises(ValueError, match=rf"^accepts must be 1-{MAX_ACCEPTS}, not {MAX_ACCEPTS + 1}$"):
        ServerConfig(accepts=MAX_ACCEPTS + 1)


def test_connections_are_numbered_one_by_one_as_the_iocp_completion_keys_show() -> None:
    """The iocp model associates each accepted socket with the port under
    its connection number as completion key (the listener: key 0): three
    clients, one after another, are keys 1, 2 and 3, the numbers a
    ServerError about a stray packet names.  Proven against ``_open``'s
    ``_next_cid += 2`` (keys 1, 3, 5)."""
    ws = FakeWinsock(seed=0, config=exact(0.0))
    server = create_server(ws, ServerConfig(port=0, model="iocp", workers=1))
    peers = [ws.peer() for _ in range(3)]

    def connect(p: FakePeer) -> None:
        assert server.address is not None
        p.connect_nowait(*server.address)

    def ready(_: object) -> None:
        for i, p in enumerate(peers):
            ws.call_at((1 + 2 * i) * MS, connect, p)
        ws.call_at(10 * MS, lambda _: server.request_stop(signal=ws.signal_event))

    stats = server.run(ready)
    assert stats.accepted == 3
    keys = [r.detail.rsplit(" ", 1)[-1] for r in ws.trace if r.call == "CreateIoCompletionPort"]
    assert keys == ["concurrency=1", "key=0x0", "key=0x1", "key=0x2", "key=0x3"]
    assert ws.leaks() == [] and ws.open_handles() == []


@pytest.mark.parametrize(("stall_ms", "high_water"), [(700, 0), (0, 1000)])
def test_a_stall_time_out_without_a_mark_or_a_mark_without_one_is_rejected_saying_they_go_together(
        stall_ms: int, high_water: int) -> None:
    """Back-pressure needs both ``stall_timeout_ms`` and ``limits.high_water``
    (or neither): one without the other is rejected with a message that says
    so, as the user reads it.  Proven against ``__post_init__``'s message in
    capitals."""
    with pytest.raises(ValueError) as info:
        ServerConfig(stall_timeout_ms=stall_ms, limits=Limits(high_water=high_water))
    assert str(info.value) == ("stall_timeout_ms and limits.high_water go together: both set (back-pressure), "
                               "or both 0")


def test_an_iocp_worker_that_dies_of_an_error_exits_with_code_1_and_the_others_with_0() -> None:
    """iocp model, two workers: a packet arrives with the first client's
    receive OVERLAPPED (in flight) but key 7, as a component sharing the port
    might post (a stop is asked for later); the worker that takes it raises
    a ServerError, stops the server and exits with code 1 (what GetExitCodeThread, a debugger or the
    fake's trace shows), the other takes its stop packet and exits with 0;
    run() re-raises the error.  Proven against ``_worker``'s ``return 2``."""
    ws, error = run_with_a_packet_of_another_key()
    assert str(error).startswith("a recv packet (key 0x7) for connection 1 that is not in flight")
    codes = sorted(r.detail.rsplit(" ", 1)[-1] for r in ws.trace if r.what == "thread" and r.call == "exit")
    assert codes == ["exit_code=0", "exit_code=1"]


def test_an_events_client_after_a_group_ended_joins_the_first_group_with_room() -> None:
    """Events model: 63 clients fill the first group, a 64th starts a second
    group thread; the 64th leaves (its group ends: the list of groups is
    shorter), then one of the first 63 (the first group has room again).  A
    65th client joins the first group: two group threads in all, never more
    than two at once.  Proven against ``_group_with_room``'s scan starting
    at 1 after the list got shorter (the first group, with room, was skipped:
    a third group thread was started for the 65th)."""
    s = Session("events")
    first = [s.client(1) for _ in range(63)]
    last = s.client(5)
    late = s.client(40)
    last.close(20)
    first[0].close(30)
    late.send(45, b"late\n")
    stats = s.run(stop_ms=60)
    assert bytes(late.data) == b"late\n"
    assert (stats.accepted, stats.ended) == (65, 2)
    assert (stats.threads_started, stats.peak_threads) == (2, 2)


class LogsRetries(AcceptPostsFail):
    """AcceptPostsFail that logs, in order, each WSASocket (an accept posted
    or retried: "socket") and each wait with its time-out ("wait N")."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.log: list[tuple[float, str]] = []

    def WSASocket(self, af: int, type: int, protocol: int, lpProtocolInfo: None, g: int,  # noqa: A002
                  dwFlags: int) -> int:
        self.log.append((self.now_ns / MS, "socket"))
        return super().WSASocket(af, type, protocol, lpProtocolInfo, g, dwFlags)

    def WSAWaitForMultipleEvents(self, cEvents: int, lphEvents: Sequence[int], fWaitAll: int,
                                 dwTimeout: int, fAlertable: int) -> int:
        self.log.append((self.now_ns / MS, f"wait {dwTimeout}"))
        return super().WSAWaitForMultipleEvents(cEvents, lphEvents, fWaitAll, dwTimeout, fAlertable)


def test_a_routines_wake_up_at_the_tick_the_accept_retry_is_due_retries_before_waiting_again() -> None:
    """Routines model: posting an accept fails from 0.9 ms to 16.2 ms, so the
    retry is due at tick 15 (``accept_retry_ms`` 15 after tick 0).  Client A's
    line at 15.7 ms (tick 15) ends the wait early: the retry is due with 0 ms
    left, and the server retries at once (it fails again; the next, at
    30.7 ms, accepts B), before it waits again: no wait with a time-out of 0
    (a poll in which other routines could run first).  Proven against
    ``_wait``'s ``left < 0`` for ``<= 0`` (the server waited 0 ms first, then
    retried when that wait timed out)."""
    ws = LogsRetries(seed=0, config=exact(0.0))
    stats, a, seen = retry_near_the_tick(ws, accept_retry_ms=15)
    assert (ws.failures, stats.accept_failures, stats.accepted) == (2, 2, 2)
    assert bytes(a.data) == b"a\n" and seen == [b""]  # B is served only at the next retry, at 30.7 ms
    woken = [i for i, (ms, what) in enumerate(ws.log) if 15.7 <= ms < 16.2]
    assert [what for _, what in ws.log[woken[0]:woken[0] + 2]] == ["socket", "wait 15"], ws.log
    assert all(what != "wait 0" for _, what in ws.log), ws.log
