"""The fake's program-thread scheduler (fakewinsock._threads): determinism, the
chooser's part, shrinking, deadlocks across threads, exceptions in threads,
leaks and misuse.  Backend-neutral behaviour is in tests/conformance/test_threads.py."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fakewinsock import (
    CRITICAL_SECTION,
    WSABUF,
    WSAOVERLAPPED,
    DeadlockError,
    FakeConfig,
    FakeWinsock,
    InternalError,
    LeakError,
    RandomChooser,
    ScriptedChooser,
    WinsockUsageError,
)
from fakewinsock.constants import (
    CREATE_SUSPENDED,
    FALSE,
    INFINITE,
    INVALID_HANDLE_VALUE,
    MAKEWORD,
    TRUE,
    WAIT_FAILED,
    WAIT_IO_COMPLETION,
    WAIT_OBJECT_0,
    WAIT_TIMEOUT,
    WSA_WAIT_FAILED,
)
from fakewinsock.testing import HypothesisChooser
from tests.conformance._harness import Harness


class CountingChooser(RandomChooser):
    """A seeded chooser that counts the questions about threads."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.thread_draws = 0

    def index(self, n: int, label: str) -> int:
        if label == "thread":
            self.thread_draws += 1
        return super().index(n, label)


def started(ws: FakeWinsock) -> FakeWinsock:
    assert ws.WSAStartup(MAKEWORD(2, 2)).error == 0
    return ws


def program_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("fakewinsock T") and t.is_alive()]


def racy_counter(ws: FakeWinsock, threads: int = 2, rounds: int = 2) -> int:
    """Threads increment a shared counter with an interface call between the
    read and the write and no lock: the result is the count that survived.
    The call (WSAResetEvent) does not wait, so only a preemption there, a
    non-zero choice, loses an update."""
    counter = [0]
    ev = ws.WSACreateEvent()

    def worker(param: Any) -> int:
        for _ in range(rounds):
            value = counter[0]
            ws.WSAResetEvent(ev)
            counter[0] = value + 1
        return 0

    handles = [ws.CreateThread(None, 0, worker, i, 0).hThread for i in range(threads)]
    assert ws.WaitForMultipleObjects(len(handles), handles, TRUE, INFINITE) == WAIT_OBJECT_0
    for h in handles:
        ws.CloseHandle(h)
    ws.WSACloseEvent(ev)
    return counter[0]


def routine_of(fn: Callable[[], object]) -> Callable[[Any], int]:
    """A start routine that calls ``fn`` and exits with 0."""
    def routine(param: Any) -> int:
        fn()
        return 0

    return routine


def switches(ws: FakeWinsock) -> int:
    return sum(1 for r in ws.trace.records() if r.what == "thread" and r.call == "run")


# ---------------------------------------------------------------- determinism


def test_same_seed_same_trace_and_ids() -> None:
    texts, ids = [], []
    for _ in range(2):
        ws = started(FakeWinsock(seed=5))
        tids: list[int] = []

        def worker(param: Any, ws: FakeWinsock = ws, tids: list[int] = tids) -> int:
            tids.append(ws.GetCurrentThreadId())
            return 0

        results = [ws.CreateThread(None, 0, worker, None, 0) for _ in range(3)]
        ws.WaitForMultipleObjects(3, [r.hThread for r in results], TRUE, INFINITE)
        racy_counter(ws, 3, 3)
        for r in results:
            ws.CloseHandle(r.hThread)
        ws.WSACleanup()
        texts.append(ws.trace.to_text())
        ids.append((tuple(results), tuple(tids)))
    assert texts[0] == texts[1]
    assert ids[0] == ids[1]


def test_different_seeds_give_different_interleavings() -> None:
    traces = set()
    results = set()
    for seed in range(12):
        ws = started(FakeWinsock(seed=seed))
        results.add(racy_counter(ws, 3, 3))
        traces.add(ws.trace.to_text())
    assert len(traces) >= 6
    assert len(results) >= 2 and min(results) < 9  # updates are lost, more or fewer by seed


def test_no_draw_while_only_one_thread_can_run() -> None:
    """A suspended thread is not runnable: nothing is drawn until it is
    resumed; a thread that has exited costs no draws either."""
    chooser = CountingChooser(1)
    ws = started(FakeWinsock(chooser=chooser))
    ran: list[int] = []
    h = ws.CreateThread(None, 0, routine_of(lambda: ran.append(1)), None, CREATE_SUSPENDED).hThread
    for _ in range(20):
        ws.WSACreateEvent()
    assert chooser.thread_draws == 0 and ran == []
    ws.ResumeThread(h)
    assert ws.WaitForSingleObject(h, INFINITE) == WAIT_OBJECT_0
    assert ran == [1]
    drawn = chooser.thread_draws
    for _ in range(20):
        ws.GetExitCodeThread(h)
    assert chooser.thread_draws == drawn
    ws.CloseHandle(h)


def test_choice_zero_keeps_the_current_thread_running() -> None:
    """With every answer 0 the main thread runs until it waits; only then does
    the new thread run (the simplest schedule has the fewest switches)."""
    ws = started(FakeWinsock(chooser=ScriptedChooser()))
    order: list[str] = []
    h = ws.CreateThread(None, 0, routine_of(lambda: order.append("thread")), None, 0).hThread
    for _ in range(5):
        ws.GetExitCodeThread(h)
        order.append("main")
    ws.WaitForSingleObject(h, INFINITE)
    assert order == ["main"] * 5 + ["thread"]
    assert switches(ws) == 2  # to the thread, back to main
    ws.CloseHandle(h)


def test_a_thread_that_makes_no_call_is_never_preempted() -> None:
    """Divergence from Windows, documented: pure Python code between two
    interface calls runs without interruption."""
    ws = started(FakeWinsock(seed=3))
    log: list[int] = []

    def worker(param: Any) -> int:
        for _ in range(1000):
            log.append(param)
        return 0

    hs = [ws.CreateThread(None, 0, worker, i, 0).hThread for i in range(2)]
    ws.WaitForMultipleObjects(2, hs, TRUE, INFINITE)
    assert log in ([0] * 1000 + [1] * 1000, [1] * 1000 + [0] * 1000)
    for h in hs:
        ws.CloseHandle(h)


def test_single_threaded_program_draws_the_same_with_the_scheduler_active() -> None:
    """Once a thread has come and gone, the main thread's schedule draws what
    it would have drawn with no thread at all (only the thread's own calls
    differ)."""
    def run(with_thread: bool) -> list[tuple[str, int]]:
        from fakewinsock.testing import HypothesisChooser  # noqa: F401 - the chooser protocol only

        answers: list[tuple[str, int]] = []

        class Log(RandomChooser):
            def integer(self, lo: int, hi: int, label: str) -> int:
                v = super().integer(lo, hi, label)
                answers.append((label, v))
                return v

        ws = started(FakeWinsock(chooser=Log(9)))
        if with_thread:
            h = ws.CreateThread(None, 0, lambda p: 0, None, CREATE_SUSPENDED).hThread
            ws.ResumeThread(h)
            ws.WaitForSingleObject(h, INFINITE)
            ws.CloseHandle(h)
            answers.clear()
        ev = ws.WSACreateEvent()
        peer = ws.peer()
        del peer
        ws.SleepEx(3, TRUE)
        ws.WSACloseEvent(ev)
        return answers

    assert run(True) == run(False)


# ---------------------------------------------------------------- shrinking


@settings(max_examples=300, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
@given(data=st.data())
def _lost_update(data: st.DataObject) -> None:
    chooser = HypothesisChooser(data, record=True)
    ws = started(FakeWinsock(chooser=chooser))
    count = racy_counter(ws, 2, 2)
    _lost_update.switches = switches(ws)  # type: ignore[attr-defined]
    _lost_update.preemptions = sum(  # type: ignore[attr-defined]
        1 for label, answer in chooser.schedule or [] if label == "thread" and answer)
    assert count == 4


def test_hypothesis_finds_and_shrinks_a_lost_update() -> None:
    """The simplest schedule (every choice 0) loses no update; Hypothesis finds
    a lost one, and shrinks it to the fewest switches that lose one: main to
    T2, T2 preempted between its read and its write by T3, T3 to its end and
    back to T2, T2 to its end and back to main: one preemption."""
    ws = started(FakeWinsock(chooser=ScriptedChooser()))
    assert racy_counter(ws, 2, 2) == 4
    with pytest.raises(AssertionError):
        _lost_update()
    assert _lost_update.preemptions == 1  # type: ignore[attr-defined]
    assert _lost_update.switches <= 5  # type: ignore[attr-defined]  # 4 at best: shrinking is not exhaustive


def test_hypothesis_never_loses_an_update_under_a_critical_section() -> None:
    @settings(max_examples=60, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def locked(data: st.DataObject) -> None:
        ws = started(FakeWinsock(chooser=HypothesisChooser(data)))
        cs = CRITICAL_SECTION()
        ws.InitializeCriticalSection(cs)
        counter = [0]

        def worker(param: Any) -> int:
            for _ in range(3):
                ws.EnterCriticalSection(cs)
                value = counter[0]
                ws.Sleep(0)
                counter[0] = value + 1
                ws.LeaveCriticalSection(cs)
            return 0

        hs = [ws.CreateThread(None, 0, worker, i, 0).hThread for i in range(3)]
        assert ws.WaitForMultipleObjects(3, hs, TRUE, INFINITE) == WAIT_OBJECT_0
        assert counter == [9]
        for h in hs:
            ws.CloseHandle(h)
        ws.DeleteCriticalSection(cs)

    locked()


# ---------------------------------------------------------------- deadlocks, exceptions


def test_deadlock_names_every_thread_and_unwinds_them() -> None:
    ws = started(FakeWinsock(seed=2))
    a, b = CRITICAL_SECTION(), CRITICAL_SECTION()
    ws.InitializeCriticalSection(a)
    ws.InitializeCriticalSection(b)
    finally_ran: list[str] = []

    def lock_order(first: CRITICAL_SECTION, second: CRITICAL_SECTION, name: str) -> int:
        try:
            ws.EnterCriticalSection(first)
            ws.Sleep(1)
            ws.EnterCriticalSection(second)
            return 0
        finally:
            finally_ran.append(name)

    def ab(p: Any) -> int:
        return lock_order(a, b, "ab")

    def ba(p: Any) -> int:
        return lock_order(b, a, "ba")

    h1 = ws.CreateThread(None, 0, ab, None, 0).hThread
    h2 = ws.CreateThread(None, 0, ba, None, 0).hThread
    with pytest.raises(DeadlockError) as info:
        ws.WaitForMultipleObjects(2, [h1, h2], TRUE, INFINITE)
    text = str(info.value)
    assert "T1 (main thread" in text and "waits in WaitForMultipleObjects([0x" in text
    assert "start routine test_deadlock_names_every_thread_and_unwinds_them.<locals>.ab" in text
    assert "start routine test_deadlock_names_every_thread_and_unwinds_them.<locals>.ba" in text
    assert text.count("waits in EnterCriticalSection(critical section cs") == 2
    assert "owned by T2" in text and "owned by T3" in text
    assert sorted(finally_ran) == ["ab", "ba"]  # unwound: their finally blocks ran
    assert program_threads() == []


def test_deadlock_found_by_another_thread_is_raised_in_the_main_thread() -> None:
    """The main thread waits for T2, T2 waits for an event nobody sets: T2
    finds the deadlock (it holds the baton), the main thread raises it."""
    ws = started(FakeWinsock(seed=1))
    ev = ws.WSACreateEvent()
    h = ws.CreateThread(None, 0, lambda p: ws.WaitForSingleObject(ev, INFINITE), None, 0).hThread
    with pytest.raises(DeadlockError, match="waits in WaitForSingleObject"):
        ws.WaitForSingleObject(h, INFINITE)
    assert program_threads() == []


def test_deadlock_names_a_threaded_wait_for_events_and_their_count() -> None:
    """WSAWaitForMultipleEvents in a program thread (Kernel.block, not the
    single-threaded block_any): the deadlock names the call and its cEvents."""
    ws = started(FakeWinsock(seed=1))
    a, b = ws.WSACreateEvent(), ws.WSACreateEvent()
    h = ws.CreateThread(None, 0, routine_of(lambda: ws.WSAWaitForMultipleEvents(2, [a, b], FALSE, INFINITE,
                                                                                FALSE)), None, 0).hThread
    with pytest.raises(DeadlockError, match=r"waits in WSAWaitForMultipleEvents\(2 events, INFINITE\)"):
        ws.WaitForSingleObject(h, INFINITE)
    assert program_threads() == []


def test_infinite_sleep_in_the_last_thread_is_a_deadlock() -> None:
    ws = started(FakeWinsock(seed=1))
    h = ws.CreateThread(None, 0, routine_of(lambda: ws.Sleep(INFINITE)), None, 0).hThread
    with pytest.raises(DeadlockError, match=r"Sleep\(4294967295, FALSE\)"):
        ws.WaitForSingleObject(h, INFINITE)


def test_exception_in_a_thread_is_raised_in_the_main_thread() -> None:
    ws = started(FakeWinsock(seed=4))
    other_done = ws.WSACreateEvent()

    def bad(param: Any) -> int:
        ws.Sleep(1)
        raise ValueError("boom in the thread")

    def waiter(param: Any) -> int:
        ws.WaitForSingleObject(other_done, INFINITE)
        return 0

    ws.CreateThread(None, 0, waiter, None, 0)
    ws.CreateThread(None, 0, bad, None, 0)
    with pytest.raises(ValueError, match="boom in the thread") as info:
        ws.Sleep(10)
    notes = getattr(info.value, "__notes__", [])
    assert any("program thread T3" in n and "bad" in n for n in notes) or not hasattr(info.value, "add_note")
    assert program_threads() == []


def test_start_routine_must_return_an_int() -> None:
    """The TypeError names the thread and says why, in full."""
    ws = started(FakeWinsock(seed=1))
    h = ws.CreateThread(None, 0, lambda p: None, None, 0).hThread  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match="returned None, not an int") as info:
        ws.WaitForSingleObject(h, INFINITE)
    assert re.fullmatch(r"the start routine of T2 \(thread 0x[0-9a-f]+, id 0x[0-9a-f]+, start routine .*<lambda>\) "
                        r"returned None, not an int \(a thread procedure returns its DWORD exit code\)",
                        str(info.value)), str(info.value)


# ---------------------------------------------------------------- leaks and misuse


def test_cleanup_reports_running_threads_open_handles_and_live_sections() -> None:
    ws = started(FakeWinsock(seed=1))
    ev = ws.WSACreateEvent()
    cs = CRITICAL_SECTION()
    ws.InitializeCriticalSection(cs)

    def waiter(param: Any) -> int:
        return ws.WaitForSingleObject(ev, INFINITE)

    ws.CreateThread(None, 0, waiter, None, 0)
    ws.Sleep(1)
    with pytest.raises(LeakError) as info:
        ws.WSACleanup()
    leaks = info.value.leaks
    assert any(leak.startswith("thread handle 0x") and "not closed" in leak for leak in leaks)
    assert any("start routine" in leak and "still running (waits in WaitForSingleObject" in leak
               for leak in leaks)
    assert any("critical section cs1" in leak and "never deleted" in leak for leak in leaks)
    assert len(ws.end_threads()) == 1
    assert program_threads() == []


def test_misuse_of_critical_sections() -> None:
    ws = started(FakeWinsock(seed=1))
    cs = CRITICAL_SECTION()
    with pytest.raises(WinsockUsageError, match="never initialised"):
        ws.EnterCriticalSection(cs)
    ws.InitializeCriticalSection(cs)
    with pytest.raises(WinsockUsageError, match="already initialised"):
        ws.InitializeCriticalSection(cs)
    with pytest.raises(WinsockUsageError, match="not by the calling T1"):
        ws.LeaveCriticalSection(cs)
    ws.EnterCriticalSection(cs)
    with pytest.raises(WinsockUsageError, match="owned or waited for"):
        ws.DeleteCriticalSection(cs)

    def other(param: Any) -> int:
        with pytest.raises(WinsockUsageError, match="owned by T1, not by the calling T2"):
            ws.LeaveCriticalSection(cs)
        ws.EnterCriticalSection(cs)  # waits
        ws.LeaveCriticalSection(cs)
        return 0

    h = ws.CreateThread(None, 0, other, None, 0).hThread
    ws.Sleep(1)
    ws.Sleep(1)
    ws.LeaveCriticalSection(cs)
    ws.WaitForSingleObject(h, INFINITE)
    ws.CloseHandle(h)
    ws.DeleteCriticalSection(cs)
    with pytest.raises(WinsockUsageError, match="was deleted"):
        ws.TryEnterCriticalSection(cs)


def test_delete_while_another_thread_waits_is_a_usage_error() -> None:
    ws = started(FakeWinsock(chooser=ScriptedChooser()))
    cs = CRITICAL_SECTION()
    ws.InitializeCriticalSection(cs)
    ws.EnterCriticalSection(cs)
    h = ws.CreateThread(None, 0, routine_of(lambda: ws.EnterCriticalSection(cs)), None, 0).hThread
    ws.Sleep(1)  # the thread runs and waits for the section
    ws.LeaveCriticalSection(cs)
    ws.EnterCriticalSection(cs)  # re-taken before the waiter could run (choice 0: main keeps running)
    with pytest.raises(WinsockUsageError, match="1 thread"):
        ws.DeleteCriticalSection(cs)
    ws.end_threads()
    del h


def test_closing_a_handle_another_thread_waits_on_leaves_the_wait_on_the_object() -> None:
    """The wait holds the object (docs/semantics-findings.md section 44): an
    event closed by CloseHandle or WSACloseEvent while a thread waits on it
    alone cannot be signalled any more, so the wait times out; the closed
    objects are let go when the waits end (the invariants hold throughout)."""
    ws = started(FakeWinsock(seed=1, config=FakeConfig(check_invariants=True)))
    evs = [ws.WSACreateEvent(), ws.WSACreateEvent()]
    got: list[int] = []

    def wait(i: int) -> int:
        got.append(ws.WaitForSingleObject(evs[i], 50))
        return 0

    hs = [ws.CreateThread(None, 0, wait, i, 0).hThread for i in (0, 1)]
    ws.Sleep(1)
    sched = ws._kernel.sched
    assert sched is not None
    assert [t.state for t in sched.threads[1:]] == ["blocked"] * 2
    assert ws.CloseHandle(evs[0]) == TRUE
    assert ws.WSACloseEvent(evs[1]) == TRUE
    assert [len(t.stale) for t in sched.threads[1:]] == [1, 1]
    ws.invariants()
    assert ws.WaitForMultipleObjects(2, hs, TRUE, INFINITE) == WAIT_OBJECT_0
    assert got == [WAIT_TIMEOUT, WAIT_TIMEOUT]
    assert all(not t.stale and not t.watching for t in sched.threads[1:])
    ws.invariants()
    for h in hs:
        assert ws.CloseHandle(h) == TRUE


def test_closing_a_port_another_thread_waits_on_ends_that_wait() -> None:
    """A wait on a completion port's handle (not GetQueuedCompletionStatus, whose
    waiters a close releases with ERROR_ABANDONED_WAIT_0) ends when the port is
    closed, with the port's index: WAIT_OBJECT_0 alone, WAIT_OBJECT_0 + 1 after
    an unsignalled event (Wine's ntdll sync.c test_completion_port_scheduling;
    docs/semantics-findings.md section 39).  (An event's or a thread's handle
    closed while a thread waits on it leaves the wait on the object: section
    44.)"""
    ws = started(FakeWinsock(seed=1))
    port = ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, 0)
    ev = ws.WSACreateEvent()
    h = ws.CreateThread(None, 0, lambda p: ws.WaitForSingleObject(port, INFINITE), None, 0).hThread
    h2 = ws.CreateThread(None, 0, lambda p: ws.WaitForMultipleObjects(2, [ev, port], FALSE, INFINITE),
                         None, 0).hThread
    ws.Sleep(1)
    assert ws.CloseHandle(port) == TRUE
    assert ws.WaitForSingleObject(h, INFINITE) == WAIT_OBJECT_0
    assert ws.WaitForSingleObject(h2, INFINITE) == WAIT_OBJECT_0
    assert ws.GetExitCodeThread(h) == (TRUE, WAIT_OBJECT_0)
    assert ws.GetExitCodeThread(h2) == (TRUE, WAIT_OBJECT_0 + 1)
    assert ws.WaitForSingleObject(port, 0) == WAIT_FAILED  # the handle is gone
    assert ws.CloseHandle(h) == TRUE
    assert ws.CloseHandle(h2) == TRUE
    assert ws.WSACloseEvent(ev) == TRUE


def test_a_woken_thread_that_has_not_run_is_described_as_runnable() -> None:
    """What end_threads (and a deadlock or leak report) says of a thread whose
    wait was satisfied but which has not run since: runnable, not "waits in"."""
    described = []
    for seed in range(8):
        ws = started(FakeWinsock(seed=seed))
        ev = ws.WSACreateEvent()
        ev2 = ws.WSACreateEvent()
        def wait(p: Any, ws: FakeWinsock = ws, ev: int = ev) -> int:
            return ws.WaitForSingleObject(ev, INFINITE)

        ws.CreateThread(None, 0, wait, None, 0)
        ws.Sleep(10)  # the thread blocks in its wait
        ws.WSASetEvent(ev)
        ws.WSASetEvent(ev2)  # a scheduling point: the thread is woken, and may or may not run
        described += ws.end_threads()
    assert described, "no seed left the woken thread unrun"
    for text in described:
        assert "runnable, not yet run since its wait in WaitForSingleObject" in text
        assert "was satisfied" in text and "waits in" not in text


def test_several_threads_waiting_on_one_event_are_each_woken() -> None:
    """An object waited on by one thread holds that thread, by several a list
    of them (see _threads.waiting_on): three threads wait on one event (two of
    them on a second event too, one of those twice), each is registered, the
    second event can be closed while they wait (they go on waiting), and
    setting the first wakes all three, whatever order they parked and leave in."""
    for seed in range(4):
        ws = started(FakeWinsock(seed=seed, config=FakeConfig(check_invariants=True)))
        ev, other = ws.WSACreateEvent(), ws.WSACreateEvent()
        got: list[int] = []

        def one(param: Any, ev: int = ev, got: list[int] = got, ws: FakeWinsock = ws) -> int:
            got.append(ws.WaitForSingleObject(ev, INFINITE))
            return 0

        def two(param: int, ev: int = ev, other: int = other, got: list[int] = got, ws: FakeWinsock = ws) -> int:
            handles = [other, ev, other] if param else [other, ev]
            got.append(ws.WSAWaitForMultipleEvents(len(handles), handles, FALSE, INFINITE, FALSE))
            return 0

        hs = [ws.CreateThread(None, 0, one, None, 0).hThread,
              ws.CreateThread(None, 0, two, 0, 0).hThread,
              ws.CreateThread(None, 0, two, 1, 0).hThread]
        ws.Sleep(1)  # all three wait now
        sched = ws._kernel.sched
        assert sched is not None
        assert [t.state for t in sched.threads[1:]] == ["blocked"] * 3
        assert ws.WSACloseEvent(other) == TRUE  # two threads wait on it: they go on waiting
        ws.invariants()
        ws.WSASetEvent(ev)
        assert ws.WaitForMultipleObjects(3, hs, TRUE, INFINITE) == WAIT_OBJECT_0
        assert sorted(got) == [WAIT_OBJECT_0, WAIT_OBJECT_0 + 1, WAIT_OBJECT_0 + 1]
        ws.invariants()
        for h in (*hs, ev):
            assert ws.CloseHandle(h) == TRUE
        assert ws.WSACleanup() == 0


def test_wait_satisfied_stays_satisfied_when_reset_before_the_waiter_runs() -> None:
    """A manual-reset event set then reset at once still releases the thread
    that waited on it (Windows releases waiters when the event is set)."""
    for seed in range(8):
        ws = started(FakeWinsock(seed=seed))
        ev = ws.WSACreateEvent()
        got: list[int] = []

        def waiter(param: Any, ev: int = ev, got: list[int] = got, ws: FakeWinsock = ws) -> int:
            got.append(ws.WaitForSingleObject(ev, INFINITE))
            return 0

        h = ws.CreateThread(None, 0, waiter, None, 0).hThread
        ws.Sleep(1)  # the thread is waiting now
        ws.WSASetEvent(ev)
        ws.WSAResetEvent(ev)
        assert ws.WaitForSingleObject(h, INFINITE) == WAIT_OBJECT_0
        assert got == [WAIT_OBJECT_0]
        ws.CloseHandle(h)


def test_invariants_check_the_scheduler() -> None:
    ws = started(FakeWinsock(seed=1))
    ev = ws.WSACreateEvent()
    h = ws.CreateThread(None, 0, lambda p: ws.WaitForSingleObject(ev, INFINITE), None, 0).hThread
    ws.Sleep(1)
    ws.invariants()
    sched = ws._kernel.sched
    assert sched is not None
    t = sched.threads[1]
    saved = t.state
    t.state = "running"
    with pytest.raises(InternalError, match="2 threads are running"):
        ws.invariants()
    t.state = saved
    wait, t.wait = t.wait, None
    with pytest.raises(InternalError, match="blocked with nothing to wait for"):
        ws.invariants()
    t.wait = wait
    ws.invariants()
    ws.WSASetEvent(ev)
    ws.WaitForSingleObject(h, INFINITE)
    ws.CloseHandle(h)


def test_the_pytest_option_checks_threads_after_every_call() -> None:
    ws = started(FakeWinsock(seed=6, config=FakeConfig(check_invariants=True)))
    assert racy_counter(ws, 3, 2) <= 6
    assert ws.WSACleanup() == 0


def test_wait_on_a_socket_handle_is_not_emulated() -> None:
    from fakewinsock import NotEmulatedError
    from fakewinsock.constants import AF_INET, IPPROTO_TCP, SOCK_STREAM, WSA_FLAG_OVERLAPPED

    ws = started(FakeWinsock(seed=1))
    s = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
    with pytest.raises(NotEmulatedError):
        ws.WaitForSingleObject(s, 0)
    with pytest.raises(NotEmulatedError):
        ws.CloseHandle(s)
    ws.closesocket(s)
    assert ws.WaitForMultipleObjects(1, [s], FALSE, 0) == 0xFFFFFFFF


def test_readme_threads_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S)
              if b.startswith("# README threads example")]
    assert len(blocks) == 1
    exec(compile(blocks[0], "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out.strip()
    assert out.startswith("[") and out.endswith("] True") and out != "[] True"


def test_infinite_waits_are_woken_by_completions_and_routines() -> None:
    """A thread blocked with no timeout on an operation's event is woken by the
    completion that signals it; one blocked in an alertable wait on an event
    nobody sets is woken by its completion routine.  (With no timeout, only
    the wake-up itself can end these waits: nothing else would look at them.)"""
    for seed in range(4):
        assert _woken(seed) == [WAIT_OBJECT_0, WAIT_IO_COMPLETION]


def _woken(seed: int) -> list[int]:
    ws = FakeWinsock(seed=seed)
    h = Harness(ws)
    h.start()
    a = h.accept()
    got: list[int] = []
    ov_event, ov_routine = h.overlapped(), WSAOVERLAPPED()
    never = h.event()
    bufs = [bytearray(8), bytearray(8)]

    def on_event(param: Any) -> int:
        ws.WSARecv(a.sock, [WSABUF(8, bufs[0])], 1, 0, ov_event, None)
        got.append(ws.WaitForSingleObject(ov_event.hEvent, INFINITE))
        return 0

    def on_routine(param: Any) -> int:
        ws.WSARecv(a.sock, [WSABUF(8, bufs[1])], 1, 0, ov_routine, lambda *args: None)
        got.append(ws.WaitForSingleObjectEx(never, INFINITE, TRUE))
        return 0

    for routine in (on_event, on_routine):
        t = ws.CreateThread(None, 0, routine, None, 0).hThread
        ws.Sleep(1)
        a.peer.send(b"12345678")
        assert ws.WaitForSingleObject(t, INFINITE) == WAIT_OBJECT_0
        ws.CloseHandle(t)
    ws.WSAGetOverlappedResult(a.sock, ov_event, FALSE)
    h.finish()
    return got


class _Stop(Exception):
    pass


class StoppingChooser(RandomChooser):
    """Raises at the n-th question about threads, as Hypothesis does when an
    example runs out of data."""

    def __init__(self, seed: int, n: int) -> None:
        super().__init__(seed)
        self.n = n

    def index(self, k: int, label: str) -> int:
        if label == "thread" and k > 1:
            self.n -= 1
            if self.n == 0:
                raise _Stop
        return super().index(k, label)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_a_choice_that_stops_the_example_leaves_no_thread_behind(n: int) -> None:
    """Whichever thread the chooser stops in, the exception reaches the main
    thread and every other program thread is unwound."""
    ws = started(FakeWinsock(chooser=StoppingChooser(n, n)))
    with pytest.raises(_Stop):
        racy_counter(ws, 3, 3)
    assert program_threads() == []
    assert ws._kernel.sched is not None and ws._kernel.sched.alive() == []
    ws.invariants()


def test_invariants_catch_a_signal_that_woke_no_one() -> None:
    """An event signalled behind the scheduler's back (no Scheduler.poke) would
    leave its waiter blocked for ever: the invariants say so."""
    ws = started(FakeWinsock(seed=1))
    ev = ws.WSACreateEvent()
    h = ws.CreateThread(None, 0, lambda p: ws.WaitForSingleObject(ev, INFINITE), None, 0).hThread
    ws.Sleep(1)
    event = ws._kernel.objects[ev]
    event.signaled = True  # type: ignore[attr-defined]
    with pytest.raises(InternalError, match="satisfied but nothing woke it"):
        ws.invariants()
    ws.WSASetEvent(ev)
    ws.invariants()
    assert ws.WaitForSingleObject(h, INFINITE) == WAIT_OBJECT_0
    ws.CloseHandle(h)


def test_first_signaled_finds_what_the_wait_for_any_returns() -> None:
    """``_kernel.first_signaled``, the compiled build's scan of a wait for any
    event (the pure build scans inline in ``_fake``): the index of the first
    signalled object, events and thread handles alike, the first of an event
    given twice, -1 when none is."""
    from fakewinsock._kernel import Event, first_signaled

    class ThreadHandle:  # a waitable that is not an Event (a ProgramThread's handle in the wait)
        signaled = False

    evs: list[Any] = [Event(0x100 + 4 * i) for i in range(63)]
    thread = ThreadHandle()
    evs.insert(5, thread)
    assert first_signaled(evs) == -1
    evs[40].signaled = True
    assert first_signaled(evs) == 40
    thread.signaled = True
    assert first_signaled(evs) == 5
    evs[0].signaled = True
    assert first_signaled(evs) == 0
    evs[0].signaled = thread.signaled = False
    evs.append(evs[40])  # given twice: the first index
    assert first_signaled(evs) == 40


@pytest.mark.parametrize("how", ["signal_event", "WSASetEvent"])
@pytest.mark.parametrize("call", ["WSAWaitForMultipleEvents", "WaitForMultipleObjects"])
def test_a_wait_stepping_the_world_sees_a_signal_made_in_a_step(how: str, call: str) -> None:
    """A thread's wait that steps the world itself (the only thread that could
    run) asks its events again only after something was signalled
    (``Kernel.signals``): a signal made by a simulated actor in a step (here
    a timer's callback), after steps that signalled nothing, ends the wait
    at that step, with that event's index (never asked again, the wait would
    be a deadlock: nothing else is scheduled and the other thread waits for
    good)."""
    ws = started(FakeWinsock(seed=1))
    evs = [ws.WSACreateEvent() for _ in range(64)]
    gate = ws.WSACreateEvent()
    h = ws.CreateThread(None, 0, lambda p: ws.WaitForSingleObject(gate, INFINITE), None, 0).hThread
    ws.Sleep(1)  # the other thread runs and blocks for good: the main thread's wait steps the world
    start = ws.now_ns
    for ms in (1, 2, 3):  # steps that signal nothing
        ws.call_at(start + ms * 1_000_000, lambda _: None)
    def signal(_: object) -> None:
        if how == "signal_event":
            ws.signal_event(evs[40])
        else:
            ws.WSASetEvent(evs[40])

    ws.call_at(start + 4_000_000, signal)
    if call == "WSAWaitForMultipleEvents":
        assert ws.WSAWaitForMultipleEvents(64, evs, FALSE, INFINITE, FALSE) == WAIT_OBJECT_0 + 40
    else:
        assert ws.WaitForMultipleObjects(64, evs, FALSE, INFINITE) == WAIT_OBJECT_0 + 40
    assert 4_000_000 <= ws.now_ns - start < 5_000_000  # (WSASetEvent, a Winsock call, costs a little time)
    ws.WSASetEvent(gate)
    assert ws.WaitForSingleObject(h, INFINITE) == WAIT_OBJECT_0
    ws.CloseHandle(h)
    for e in [*evs, gate]:
        ws.WSACloseEvent(e)


def test_a_wait_for_all_without_threads_sees_each_signal_made_in_a_step() -> None:
    """The same for a wait for all events in a world without program threads
    (``Kernel.block`` steps the world): it ends when the last one is signalled."""
    ws = started(FakeWinsock(seed=1))
    evs = [ws.WSACreateEvent() for _ in range(3)]
    start = ws.now_ns
    for i, e in enumerate(evs):
        ws.call_at(start + (i + 1) * 2_000_000, lambda _: None)  # a step that signals nothing
        ws.call_at(start + (i + 1) * 2_000_000 + 1_000_000, lambda ev: ws.signal_event(ev), e)
    assert ws.WSAWaitForMultipleEvents(3, evs, TRUE, INFINITE, FALSE) == WAIT_OBJECT_0
    assert ws.now_ns == start + 7_000_000
    for e in evs:
        ws.WSACloseEvent(e)


@pytest.mark.parametrize("call", ["WSAWaitForMultipleEvents", "WaitForMultipleObjects"])
def test_a_wait_stepping_the_world_sees_a_packet_queued_in_a_step(call: str) -> None:
    """The same for a completion port's handle among the handles (signalled
    while packets are queued): a packet posted by a timer's callback, after
    steps that signalled nothing, ends the wait at that step (``Kernel.wake``
    counts it, as ``Kernel.signal`` counts an event's signal)."""
    ws = started(FakeWinsock(seed=1))
    evs = [ws.WSACreateEvent() for _ in range(63)]
    port = ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, 0)
    gate = ws.WSACreateEvent()
    h = ws.CreateThread(None, 0, lambda p: ws.WaitForSingleObject(gate, INFINITE), None, 0).hThread
    ws.Sleep(1)  # the other thread blocks for good: the main thread's wait steps the world
    start = ws.now_ns
    for ms in (1, 2, 3):  # steps that signal nothing
        ws.call_at(start + ms * 1_000_000, lambda _: None)
    def post(_: object) -> None:
        ws.PostQueuedCompletionStatus(port, 0, 7, None)

    ws.call_at(start + 4_000_000, post)
    handles = [*evs[:40], port, *evs[40:]]
    if call == "WSAWaitForMultipleEvents":
        assert ws.WSAWaitForMultipleEvents(64, handles, FALSE, INFINITE, FALSE) == WAIT_OBJECT_0 + 40
    else:
        assert ws.WaitForMultipleObjects(64, handles, FALSE, INFINITE) == WAIT_OBJECT_0 + 40
    assert 4_000_000 <= ws.now_ns - start < 5_000_000
    ws.WSASetEvent(gate)
    assert ws.WaitForSingleObject(h, INFINITE) == WAIT_OBJECT_0
    assert ws.GetQueuedCompletionStatus(port, 0)[0] == TRUE
    for x in (h, port):
        ws.CloseHandle(x)
    for e in [*evs, gate]:
        ws.WSACloseEvent(e)


def test_a_thread_waiting_again_on_the_same_events_keeps_its_registrations() -> None:
    """A thread's registration in the events it waits on (their ``waiters``)
    outlives the wait (Scheduler._watch): a group's thread waiting again on
    its 64 events, in another order, writes to none of them.  A signal of an
    event it watches while it runs does not put it on the list to look at;
    the events it no longer waits on can be closed while it waits on others
    (and are let go); when it exits it watches nothing."""
    ws = started(FakeWinsock(seed=1, config=FakeConfig(check_invariants=True)))
    evs = [ws.WSACreateEvent() for _ in range(64)]
    gate, other = ws.WSACreateEvent(), ws.WSACreateEvent()
    kernel = ws._kernel
    seen: list[list[Any]] = []

    def group(param: object) -> int:
        for turn in range(3):
            handles = evs[turn:] + evs[:turn]  # rotated, as ovserver's groups do
            assert ws.WSAWaitForMultipleEvents(64, handles, FALSE, INFINITE, FALSE) == WAIT_OBJECT_0 + 5 - turn
            ws.WSAResetEvent(evs[5])
            seen.append(list(me.watching))
        ws.WSASetEvent(evs[6])  # watched, not waited on: nothing to look at
        assert kernel.sched is not None and kernel.sched.poked == []
        assert ws.WaitForSingleObject(other, INFINITE) == WAIT_OBJECT_0  # meanwhile evs[:32] are closed
        assert ws.WaitForSingleObject(gate, INFINITE) == WAIT_OBJECT_0
        return 0

    h = ws.CreateThread(None, 0, group, None, 0).hThread
    sched = kernel.sched
    assert sched is not None
    me = sched.threads[1]
    for _ in range(3):
        ws.Sleep(1)  # the group's thread parks in its wait
        assert me.state == "blocked"
        ws.WSASetEvent(evs[5])
    ws.Sleep(1)
    objs = [kernel.objects[e] for e in evs]
    assert seen == [objs, objs, objs]  # registered once, at the first wait, in that wait's order
    assert all(o.waiters is me for o in objs)  # type: ignore[attr-defined]
    ws.WSASetEvent(other)
    ws.Sleep(1)  # now it waits on the gate alone
    assert me.state == "blocked"
    for e in evs[:32]:
        assert ws.WSACloseEvent(e) == TRUE  # watched from its earlier waits, not waited on: let go
    assert me.watching == [*objs[32:], kernel.objects[other], kernel.objects[gate]]
    ws.WSASetEvent(gate)
    assert ws.WaitForSingleObject(h, INFINITE) == WAIT_OBJECT_0
    assert me.watching == [] and all(o.waiters is None for o in objs)  # type: ignore[attr-defined]
    ws.invariants()
    for x in (h,):
        ws.CloseHandle(x)
    for e in [*evs[32:], gate, other]:
        ws.WSACloseEvent(e)


def test_a_thread_watches_at_most_twice_a_full_wait() -> None:
    """Registrations kept from earlier waits are let go once they pass two
    full waits' worth (Scheduler._watch): a thread waiting on three different
    sets of 64 events watches the last wait's 64 after the third."""
    ws = started(FakeWinsock(seed=1, config=FakeConfig(check_invariants=True)))
    sets = [[ws.WSACreateEvent() for _ in range(64)] for _ in range(3)]
    sizes: list[int] = []

    def worker(param: object) -> int:
        for evs in sets:
            assert ws.WSAWaitForMultipleEvents(64, evs, FALSE, INFINITE, FALSE) == WAIT_OBJECT_0
            sizes.append(len(me.watching))
        return 0

    h = ws.CreateThread(None, 0, worker, None, 0).hThread
    sched = ws._kernel.sched
    assert sched is not None
    me = sched.threads[1]
    for evs in sets:
        ws.Sleep(1)
        ws.WSASetEvent(evs[0])
    assert ws.WaitForSingleObject(h, INFINITE) == WAIT_OBJECT_0
    assert sizes == [64, 128, 64]
    ws.CloseHandle(h)
    for evs in sets:
        for e in evs:
            ws.WSACloseEvent(e)


@pytest.mark.parametrize("seed", range(3))
def test_a_threads_wait_on_its_own_pseudo_handle_while_another_runs(seed: int) -> None:
    """The pseudo-handles' stand-ins are never registered with the scheduler
    (they are never signalled): a thread that parks in such a wait while the
    main thread sleeps times out in the single-object waits (section 41); the
    waits for several objects refuse them at once (section 59)."""
    ws = started(FakeWinsock(seed=seed))
    got: list[int] = []

    def worker(param: Any) -> int:
        me = ws.GetCurrentThread()
        got.append(ws.WaitForSingleObject(me, 50))
        got.append(ws.WaitForSingleObjectEx(INVALID_HANDLE_VALUE, 50, TRUE))
        got.append(ws.WaitForMultipleObjects(2, [me, INVALID_HANDLE_VALUE], FALSE, 50))
        got.append(ws.WSAWaitForMultipleEvents(1, [me], FALSE, 50, FALSE))
        return 0

    hThread = ws.CreateThread(None, 0, worker, None, 0).hThread
    for _ in range(20):
        ws.Sleep(10)
    assert ws.WaitForSingleObject(hThread, INFINITE) == WAIT_OBJECT_0
    assert got == [WAIT_TIMEOUT, WAIT_TIMEOUT, WAIT_FAILED, WSA_WAIT_FAILED]
    assert ws.CloseHandle(hThread) == TRUE
    assert ws.WSACleanup() == 0
