"""The fake's kernel (``fakewinsock._kernel``) as a program sees it: what the
mutation run (issue 18, ``tools/mutation.sh``) found no test asserting.

Virtual time: every Winsock call costs ``syscall_cost`` exactly, a wait that
times out moves the clock exactly to its deadline, timers fire at their time
in the order they were set (one set in the past fires now: the clock never goes
back); ``max_calls`` allows exactly that many calls; a wait that can never
return raises DeadlockError saying what is in flight; handles are multiples of
4 and never reused; completion routines all run in the one alertable wait that
delivers them; ready completions come out in the order the chooser picks
(oldest first in the simplest schedule, both orders across seeds).
"""

from __future__ import annotations

import pytest

from fakewinsock import WSABUF, WSAOVERLAPPED, BusyLoopError, DeadlockError, FakeWinsock, ScriptedChooser
from fakewinsock.constants import (
    AF_INET,
    FALSE,
    IPPROTO_TCP,
    MAKEWORD,
    SOCK_STREAM,
    SOCKET_ERROR,
    TRUE,
    WAIT_IO_COMPLETION,
    WSA_FLAG_OVERLAPPED,
    WSA_INFINITE,
    WSA_IO_PENDING,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_TIMEOUT,
)
from tests.fake_server import Server, quiet

MS = 1_000_000


def started(ws: FakeWinsock | None = None) -> FakeWinsock:
    ws = ws if ws is not None else FakeWinsock(config=quiet())
    assert ws.WSAStartup(MAKEWORD(2, 2))[0] == 0
    return ws


# ---------------------------------------------------------------- the clock


@pytest.mark.parametrize("cost", [0, 1_000, 7_777])
def test_each_call_costs_syscall_cost_exactly(cost: int) -> None:
    ws = started(FakeWinsock(config=quiet(syscall_cost=cost)))
    events = [ws.WSACreateEvent() for _ in range(3)]
    assert ws.now_ns == 4 * cost
    for ev in events:
        ws.WSACloseEvent(ev)
    ws.WSACleanup()
    assert ws.now_ns == 8 * cost and ws.stats["calls"] == 8


def test_a_wait_that_times_out_ends_exactly_at_its_deadline() -> None:
    ws = started()
    ev = ws.WSACreateEvent()
    before = ws.now_ns
    assert ws.WSAWaitForMultipleEvents(1, [ev], FALSE, 50, FALSE) == WSA_WAIT_TIMEOUT
    cost = ws.config.syscall_cost
    assert ws.now_ns == before + cost + 50 * MS
    assert ws.WSAWaitForMultipleEvents(1, [ev], FALSE, 0, FALSE) == WSA_WAIT_TIMEOUT
    assert ws.now_ns == before + 2 * cost + 50 * MS  # a zero timeout takes no time
    ws.WSACloseEvent(ev)
    ws.WSACleanup()


def test_run_for_moves_the_clock_by_exactly_that_much() -> None:
    ws = FakeWinsock(config=quiet())
    ws.run_for(0.25)
    assert ws.now_ns == 250 * MS
    ws.run_for(0)
    assert ws.now_ns == 250 * MS


def test_timers_fire_at_their_time_in_the_order_they_were_set() -> None:
    ws = FakeWinsock(config=quiet())
    fired: list[tuple[str, int]] = []

    def note(name: str) -> None:
        fired.append((name, ws.now_ns))

    ws.call_at(30 * MS, note, "c")
    ws.call_at(10 * MS, note, "a")
    ws.call_at(30 * MS, note, "d")  # the same time as c, set after it
    ws.call_at(20 * MS, note, "b")
    ws.run_for(0.025)
    assert fired == [("a", 10 * MS), ("b", 20 * MS)]
    ws.run_for(0.1)
    assert fired[2:] == [("c", 30 * MS), ("d", 30 * MS)]
    assert ws.now_ns == 125 * MS


def test_a_timer_set_in_the_past_fires_now_and_the_clock_never_goes_back() -> None:
    ws = FakeWinsock(config=quiet())
    ws.run_for(0.04)
    seen: list[int] = []
    ws.call_at(5 * MS, lambda _: seen.append(ws.now_ns))
    ws.call_at(40 * MS, lambda _: seen.append(ws.now_ns))
    ws.run_for(0.001)
    assert seen == [40 * MS, 40 * MS]
    assert ws.now_ns == 41 * MS


def test_a_timer_wakes_an_infinite_wait_at_the_timer_time() -> None:
    ws = started()
    ev = ws.WSACreateEvent()
    ws.call_at(ws.now_ns + 7 * MS, lambda _: ws.signal_event(ev))
    start = ws.now_ns
    assert ws.WSAWaitForMultipleEvents(1, [ev], FALSE, WSA_INFINITE, FALSE) == WSA_WAIT_EVENT_0
    assert ws.now_ns == start + 7 * MS
    ws.WSACloseEvent(ev)
    ws.WSACleanup()


def test_a_wait_sees_what_happens_up_to_and_including_its_deadline() -> None:
    """A timer due exactly at the deadline fires before the wait gives up; one
    due a nanosecond later does not, and the clock stops at the deadline."""
    ws = started(FakeWinsock(config=quiet(syscall_cost=0)))
    ev = ws.WSACreateEvent()
    ws.call_at(ws.now_ns + 10 * MS, lambda _: ws.signal_event(ev))
    assert ws.WSAWaitForMultipleEvents(1, [ev], FALSE, 10, FALSE) == WSA_WAIT_EVENT_0
    assert ws.now_ns == 10 * MS
    ws.WSAResetEvent(ev)
    ws.call_at(ws.now_ns + 10 * MS + 1, lambda _: ws.signal_event(ev))
    assert ws.WSAWaitForMultipleEvents(1, [ev], FALSE, 10, FALSE) == WSA_WAIT_TIMEOUT
    assert ws.now_ns == 20 * MS
    assert ws.WSAWaitForMultipleEvents(1, [ev], FALSE, WSA_INFINITE, FALSE) == WSA_WAIT_EVENT_0
    assert ws.now_ns == 20 * MS + 1
    ws.WSACloseEvent(ev)
    ws.WSACleanup()


# ---------------------------------------------------------------- the call budget


def test_max_calls_allows_exactly_that_many_calls() -> None:
    ws = started(FakeWinsock(config=quiet(max_calls=4)))
    events = [ws.WSACreateEvent() for _ in range(3)]
    assert ws.stats["calls"] == 4
    with pytest.raises(BusyLoopError, match=r"WSACloseEvent: more than 4 Winsock calls \(FakeConfig.max_calls\)"):
        ws.WSACloseEvent(events[0])


def test_no_budget_means_no_limit() -> None:
    ws = started()
    for _ in range(2000):
        ws.WSAGetLastError()
        ws.WSACloseEvent(ws.WSACreateEvent())
    ws.WSACleanup()


# ---------------------------------------------------------------- deadlocks


def test_an_infinite_wait_on_nothing_is_a_deadlock_naming_the_wait() -> None:
    ws = started()
    ev = ws.WSACreateEvent()
    with pytest.raises(DeadlockError) as info:
        ws.WSAWaitForMultipleEvents(1, [ev], FALSE, WSA_INFINITE, FALSE)
    message = str(info.value)
    assert "can never return: no operation is in flight, nothing is scheduled and the timeout is infinite." in message
    assert message.endswith("\npending operations: none")


def test_a_deadlock_lists_the_operations_still_pending() -> None:
    srv = Server(FakeWinsock(config=quiet()))
    s, peer = srv.accept()
    ov, _ = srv.post_recv(s)
    with pytest.raises(DeadlockError) as info:
        srv.wait(ov)
    listed = str(info.value).split("\npending operations: ", 1)[1]
    assert "WSARecv" in listed and listed != "none"
    peer.send(b"ok")  # the peer unblocks it: nothing was lost
    assert srv.result(s, ov) == (TRUE, 2, 0)
    srv.finish()


def test_a_wait_with_a_timeout_is_never_a_deadlock() -> None:
    ws = started()
    ev = ws.WSACreateEvent()
    assert ws.WSAWaitForMultipleEvents(1, [ev], FALSE, 10_000, FALSE) == WSA_WAIT_TIMEOUT
    ws.WSACloseEvent(ev)
    ws.WSACleanup()


# ---------------------------------------------------------------- handles


def test_handles_are_multiples_of_4_and_never_reused() -> None:
    ws = started()
    seen: list[int] = []
    for _ in range(5):
        ev = ws.WSACreateEvent()
        s = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
        seen += [ev, s]
        ws.WSACloseEvent(ev)
        ws.closesocket(s)
    assert len(set(seen)) == len(seen) and all(h > 0 and h % 4 == 0 for h in seen)
    assert seen == sorted(seen)
    ws.WSACleanup()


# ---------------------------------------------------------------- completion routines and the ready queue


def _two_receives(srv: Server, routine_log: list[str]) -> None:
    """Two connections whose peers' bytes have arrived, then a WSARecv posted on
    each (pending: ``immediate`` is 0) whose routine logs its name: both
    completions are ready at once, and the scheduler picks their order."""
    ws = srv.ws
    conns = [srv.accept(), srv.accept()]
    conns[0][1].send(b"a")
    conns[1][1].send(b"b")
    ws.run_for(0.001)
    for name, (s, _) in zip("ab", conns, strict=True):
        ov = WSAOVERLAPPED()

        def routine(err: int, n: int, _ov: WSAOVERLAPPED, _flags: int, name: str = name) -> None:
            routine_log.append(f"{name}:{err}:{n}")

        rc, _, _ = ws.WSARecv(s, [WSABUF(4, bytearray(4))], 1, 0, ov, routine)
        assert rc == SOCKET_ERROR and ws.WSAGetLastError() == WSA_IO_PENDING


def test_every_delivered_routine_runs_in_the_one_alertable_wait_and_is_counted() -> None:
    srv = Server(FakeWinsock(config=quiet()))
    log: list[str] = []
    _two_receives(srv, log)
    srv.ws.run_for(0.001)  # both complete; no routine runs outside an alertable wait
    assert log == []
    assert srv.ws.SleepEx(0, TRUE) == WAIT_IO_COMPLETION
    assert sorted(log) == ["a:0:1", "b:0:1"]
    assert srv.ws.stats["routines"] == 2
    assert srv.ws.SleepEx(0, TRUE) == 0  # nothing left to deliver
    srv.finish()


def _order(ws: FakeWinsock) -> str:
    srv = Server(ws)
    log: list[str] = []
    _two_receives(srv, log)
    ws.run_for(0.001)
    while ws.SleepEx(0, TRUE) == WAIT_IO_COMPLETION:
        pass
    srv.finish()
    return "".join(entry[0] for entry in log)


def test_completions_ready_together_come_out_oldest_first_in_the_simplest_schedule() -> None:
    assert _order(FakeWinsock(chooser=ScriptedChooser([]), config=quiet())) == "ab"


def test_completions_ready_together_come_out_in_both_orders_across_seeds() -> None:
    orders = {_order(FakeWinsock(seed=seed, config=quiet())) for seed in range(12)}
    assert orders == {"ab", "ba"}


# ---------------------------------------------------------------- progress behind the program's back


def _progress_without_waiting(background: float) -> bool:
    srv = Server(FakeWinsock(config=quiet(background=background)))
    ws = srv.ws
    s, peer = srv.accept()
    ov, _ = srv.post_recv(s)
    peer.send_nowait(b"x")
    other = srv.overlapped().hEvent
    for _ in range(50):  # calls that never wait
        ws.WSAResetEvent(other)
    done: bool = ws.WSAGetOverlappedResult(s, ov, FALSE)[0] == TRUE
    if not done:
        assert srv.result(s, ov) == (TRUE, 1, 0)
    srv.finish()
    return done


def test_background_progress_completes_operations_during_calls_that_do_not_wait() -> None:
    assert _progress_without_waiting(1.0)


def test_without_background_progress_nothing_completes_until_a_wait() -> None:
    assert not _progress_without_waiting(0.0)

