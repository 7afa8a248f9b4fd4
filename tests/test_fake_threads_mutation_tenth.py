"""The fake's program threads (``fakewinsock._threads``): the seven survivors
of the ninth session's fresh sample (issue 18, ``tools/mutation_sample.sh
'fakewinsock._threads*' 30 22``) that the ninth session left unanalysed, each
asserted as what a user of the fake (or its invariant checks) relies on."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from fakewinsock import FakeConfig, FakeWinsock
from fakewinsock._threads import ProgramThread, threads_broken
from fakewinsock.constants import INFINITE, MAKEWORD, TRUE, WAIT_OBJECT_0, WAIT_TIMEOUT
from tests.test_fake_net_mutation_more import ByLabel


@pytest.mark.parametrize("threads", [2, 3])
def test_a_thread_blocking_with_two_others_runnable_asks_the_thread_question(threads: int) -> None:
    """Which runnable thread runs when one blocks is the "thread" question (a
    chooser logs or scripts its answers by label), asked with one answer per
    runnable thread; so is which one runs after one ends (with three threads:
    when the first ends, the other two are runnable and the main thread is
    blocked; the eleventh session's seed-23 sample)."""
    chooser = ByLabel()
    ws = FakeWinsock(chooser=chooser)
    assert ws.WSAStartup(MAKEWORD(2, 2)).error == 0
    handles = [ws.CreateThread(None, 0, lambda param: 0, None, 0).hThread for _ in range(threads)]
    chooser.asked.clear()
    assert ws.WaitForMultipleObjects(threads, handles, TRUE, INFINITE) == WAIT_OBJECT_0
    # The wait's entry may let another thread run first (a question of threads + 1
    # answers: go on, or one of them); the block itself chooses among the threads;
    # with three, the first exit chooses between the other two.
    assert ("thread", 0, 1) in chooser.asked, chooser.asked
    assert {label for label, _, _ in chooser.asked} == {"thread"}, chooser.asked
    for h in handles:
        ws.CloseHandle(h)
    assert ws.WSACleanup() == 0


def test_a_zero_timeout_wait_at_time_zero_times_out_when_the_other_thread_ends() -> None:
    """With a syscall cost of 0 the clock stays at 0: a zero-timeout wait that
    lets the other thread run first is over at once (its deadline, 0, has
    come) and returns WAIT_TIMEOUT when that thread ends.  (Read the deadline
    heap by the wait's sequence number instead of its deadline and the ended
    thread found no one to run: the world never moved, a busy loop.)"""
    outcome: list[Any] = []

    def scenario() -> None:
        ws = FakeWinsock(seed=1, config=FakeConfig(syscall_cost=0))
        ev = ws.WSACreateEvent()
        h = ws.CreateThread(None, 0, lambda param: 0, None, 0).hThread
        outcome.append(ws.WaitForSingleObject(ev, 0))
        outcome.append(ws.WaitForSingleObject(h, 0))
        ws.CloseHandle(h)
        ws.WSACloseEvent(ev)

    runner = threading.Thread(target=scenario, daemon=True)
    runner.start()
    runner.join(60)
    assert not runner.is_alive(), "the wait never returned"
    assert outcome == [WAIT_TIMEOUT, WAIT_OBJECT_0]


def test_the_invariants_see_a_thread_handle_missing_from_the_handle_table() -> None:
    """The scheduler's invariants notice a thread whose handle is open (not
    closed by CloseHandle) but gone from the handle table."""
    ws = FakeWinsock(seed=0)
    h = ws.CreateThread(None, 0, lambda param: 0, None, 0).hThread
    kernel = ws._kernel
    t = kernel.objects.pop(h)
    assert isinstance(t, ProgramThread)
    try:
        broken = threads_broken(kernel)
    finally:
        kernel.objects[h] = t
    assert broken == [f"{t.describe()}: handle open=True but the handle table disagrees"], broken
    assert threads_broken(kernel) == []
    assert ws.WaitForSingleObject(h, INFINITE) == WAIT_OBJECT_0
    ws.CloseHandle(h)


def test_the_invariants_see_a_sleeping_thread_nothing_looks_at() -> None:
    """The scheduler's invariants notice a thread blocked in a wait without
    handles (a Sleep) that the scheduler no longer looks at, and say so."""
    ws = FakeWinsock(seed=0)

    def worker(param: Any) -> int:
        ws.Sleep(100)
        return 0

    h = ws.CreateThread(None, 0, worker, None, 0).hThread
    ws.Sleep(1)  # the worker runs and sleeps
    kernel = ws._kernel
    sched = kernel.sched
    assert sched is not None
    t = kernel.objects[h]
    assert isinstance(t, ProgramThread)
    sched.opaque.remove(t)
    try:
        broken = threads_broken(kernel)
    finally:
        sched.opaque.append(t)
    assert broken == [f"{t.describe()} waits in Sleep(100, FALSE) but is not looked at"], broken
    assert threads_broken(kernel) == []
    assert ws.WaitForSingleObject(h, INFINITE) == WAIT_OBJECT_0
    ws.CloseHandle(h)
