"""How program threads end when a test ends early (fakewinsock._threads:
Scheduler.unwind, the baton's hand-overs at a thread's end): whatever draw
the chooser stops the example at, on whichever thread, nothing hangs, no
thread is left, no two threads run at once, and the next fake works; the
unwinding does not depend on how fast the machine is."""

from __future__ import annotations

import re
import threading
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

import fakewinsock._threads as threads_module
from fakewinsock import WSABUF, FakeConfig, FakeWinsock, InternalError, RandomChooser, WinsockUsageError
from fakewinsock.constants import INFINITE, WAIT_OBJECT_0
from tests.conformance._harness import Harness


class _Stop(BaseException):
    """What Hypothesis raises at a draw when it ends an example (StopTest is a BaseException too)."""


class StopAtDraw(RandomChooser):
    """A seeded chooser that raises at its ``k``-th draw (any question, any
    thread), then answers every question with its simplest answer without
    drawing, as fakewinsock.testing.HypothesisChooser does once Hypothesis has
    stopped the example."""

    def __init__(self, seed: int, k: int) -> None:
        super().__init__(seed)
        self.k = k
        self.count = 0
        self.stopped = False
        self.where = ""  # the thread and the fake's functions the draw was made in
        self._draw = self._random
        self._random = self._counted  # every draw of RandomChooser goes through _random

    def _counted(self) -> float:
        if self.stopped:
            return 0.0
        self.count += 1
        if self.count == self.k:
            self.stopped = True
            names = [f.name for f in traceback.extract_stack()]
            self.where = f"{threading.current_thread().name}: {' < '.join(reversed(names[-8:-1]))}"
            raise _Stop(f"draw {self.k}")
        return self._draw()


def _program(ws: FakeWinsock) -> list[int]:
    """Two threads post receives on one connection and exit while they may be
    in flight (ending a thread cancels its I/O, which can arm the other
    receive: a draw), the main thread waits for them; returns what each
    receive got."""
    h = Harness(ws)
    h.start()
    a = h.accept()
    ovs = [h.overlapped(), h.overlapped()]
    go = h.event()
    bufs = [bytearray(4), bytearray(4)]

    def poster(i: int) -> int:
        ws.WSARecv(a.sock, [WSABUF(4, bufs[i])], 1, 0, ovs[i], None)
        ws.WaitForSingleObject(go, INFINITE)
        return 0

    hs = [ws.CreateThread(None, 0, poster, i, 0).hThread for i in range(2)]
    ws.Sleep(1)
    a.peer.send(b"abcdefgh")
    ws.WSASetEvent(go)
    for t in hs:
        assert ws.WaitForSingleObject(t, INFINITE) == WAIT_OBJECT_0
        ws.CloseHandle(t)
    got = []
    for ov in ovs:
        h.wait(ov.hEvent)
        ok, n, _ = ws.WSAGetOverlappedResult(a.sock, ov, 0)
        got.append(n if ok else -ws.WSAGetLastError())
    h.finish()
    return got


#: The fake's invariants (the scheduler's among them) are checked after every call.
_CONFIG = FakeConfig(immediate=0.5, split=0.3, partial_recv=0.3, background=0.2, check_invariants=True)


def _fake(chooser: RandomChooser) -> FakeWinsock:
    return FakeWinsock(chooser=chooser, config=_CONFIG)


def _program_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("fakewinsock T") and t.is_alive()]


@pytest.fixture
def escaped(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Exceptions that escaped a program thread's Python thread.  Such a thread
    ended without handing the baton on, which left the main thread waiting for
    ever (what redteam3 saw hang); so that this test fails instead of hanging
    before the fix, the main thread is then woken to raise an AssertionError
    saying so."""
    seen: list[str] = []
    scheds: list[threads_module.Scheduler] = []
    make = threads_module.Scheduler.__init__

    def init(self: threads_module.Scheduler, *args: Any) -> None:
        make(self, *args)
        scheds.append(self)

    def hook(args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread is not None else "?"
        seen.append(f"{name}: {args.exc_type.__name__}: {args.exc_value}")
        if name.startswith("fakewinsock T") and scheds:
            sched = scheds[-1]
            sched.fatal = AssertionError(f"{name} ended without handing the baton on: {seen[-1]}")
            sched.main.baton.release()

    monkeypatch.setattr(threads_module.Scheduler, "__init__", init)
    monkeypatch.setattr(threading, "excepthook", hook)
    yield seen


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_stop_at_any_draw_ends_the_example_cleanly(seed: int, escaped: list[str]) -> None:
    """Stopping the example at the k-th draw, for every k of the program's
    draws (on the main thread, in a program thread's call or wait, in the
    scheduler's choice, while a thread ends and its I/O is cancelled): the
    stop reaches the test, no program thread is left once the test has ended
    the threads (as check_line_server and the pytest plugin do), the fake's invariants
    hold (every baton lock held: none handed twice), and a new fake runs the
    program as before.  (Before the fix, a stop at a draw made as a thread
    ended, cancelling its I/O, killed that thread without handing the baton
    on: the main thread waited for ever.)"""
    baseline_chooser = StopAtDraw(seed, 0)
    expected = _program(_fake(baseline_chooser))
    draws = baseline_chooser.count
    assert draws > 10
    places = set()
    for k in range(1, draws + 1):
        chooser = StopAtDraw(seed, k)
        ws = _fake(chooser)
        with pytest.raises(_Stop):
            _program(ws)
        ws.end_threads()  # as check_line_server and the pytest plugin do after a test
        places.add(chooser.where.split(":")[0] + (" as it ends" if "_thread_exited" in chooser.where else ""))
        assert escaped == [], (k, chooser.where)
        assert _program_threads() == [], (k, chooser.where)
        sched = ws._kernel.sched  # (None: stopped before the first CreateThread)
        assert sched is None or sched.alive() == []
        assert threads_module.threads_broken(ws._kernel) == [], (k, chooser.where)
        assert _program(_fake(StopAtDraw(seed, 0))) == expected, (k, chooser.where)
    # The stops landed on every thread, and as each program thread ended (the case that hung).
    assert places >= {"MainThread", "fakewinsock T2", "fakewinsock T3", "fakewinsock T2 as it ends",
                      "fakewinsock T3 as it ends"}, places


def _fake_and_event() -> tuple[FakeWinsock, int]:
    """A fake and an event that nothing sets."""
    ws = FakeWinsock(seed=0)
    return ws, ws.WSACreateEvent()


def _parked_thread(ws: FakeWinsock, routine: Any) -> int:
    ws.WSAStartup(0x0202)
    h = ws.CreateThread(None, 0, routine, None, 0).hThread
    ws.Sleep(1)  # it runs and parks in its wait
    return h


def test_a_thread_that_swallows_its_unwinding_runs_nothing_more() -> None:
    """A start routine that catches the unwinding (``except BaseException``)
    and returns: ending it runs no more of the scheduler from that thread
    (before the fix it ran the thread's exit: made the world progress, ran a
    timer due later, and handed the baton to the main thread, which was
    running, freeing its baton lock: its next wait would not have waited)."""
    ws, never = _fake_and_event()
    caught: list[str] = []

    def swallower(param: Any) -> int:
        try:
            ws.WaitForSingleObject(never, INFINITE)
        except BaseException as e:  # noqa: BLE001 - the misuse under test
            caught.append(type(e).__name__)
        return 0

    _parked_thread(ws, swallower)
    ran: list[int] = []
    ws.call_at(ws.now_ns + 10**9, lambda _: ran.append(1))
    now = ws.now_ns
    left = ws.end_threads()
    assert caught == ["_Unwind"] and len(left) == 1
    assert ran == [] and ws.now_ns == now
    assert _program_threads() == []
    assert threads_module.threads_broken(ws._kernel) == []
    # The fake goes on as before: a new thread runs and the main thread waits for it.
    h = ws.CreateThread(None, 0, lambda p: 7, None, 0).hThread
    assert ws.WaitForSingleObject(h, INFINITE) == WAIT_OBJECT_0
    assert ws.GetExitCodeThread(h) == (1, 7)
    assert threads_module.threads_broken(ws._kernel) == []


def test_unwinding_does_not_depend_on_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a machine so slow that every wall-clock wait runs out (a timed
    ``Thread.join`` returns at once), ending the threads still waits until
    each has run its way out: its ``finally`` blocks ran before end_threads
    returned, and no thread was left running meanwhile.  (Before the fix,
    unwind joined each thread with a 10 s timeout and went on: with the
    timeout forced to 0, the iocp echo recipe showed sweep's "release unlocked
    lock".)"""
    join = threading.Thread.join
    still_running: list[str] = []

    def hurried_join(self: threading.Thread, timeout: float | None = None) -> None:
        join(self, 0 if timeout is not None else None)
        if timeout is not None and self.is_alive():
            still_running.append(self.name)

    monkeypatch.setattr(threading.Thread, "join", hurried_join)
    ws, never = _fake_and_event()
    order: list[str] = []

    def waiter(param: Any) -> int:
        try:
            ws.WaitForSingleObject(never, INFINITE)
        finally:
            order.append(f"finally {param}")
            ws.WSASetEvent(never)  # an interface call on the way out raises the unwinding again
            order.append("never here")
        return 0

    ws.WSAStartup(0x0202)
    for i in range(3):
        ws.CreateThread(None, 0, waiter, i, 0)
    ws.Sleep(1)
    ws.end_threads()
    order.append("ended")
    assert order == ["finally 0", "finally 1", "finally 2", "ended"]
    assert still_running == [] and _program_threads() == []
    assert threads_module.threads_broken(ws._kernel) == []


def test_a_thread_that_never_ends_when_unwound_is_named_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A program thread that catches the unwinding and then blocks outside the
    fake is reported by an error naming it (after the guard's time, shortened
    here), and the scheduler refuses to hand the baton from then on: the test
    cannot go on with two threads running.  (Before the fix, unwind gave up
    after 10 s and went on silently.)  The guard counts the time over every
    look at the thread (three looks here, 0.1 s apart): a guard reset at each
    look would wait forever (a timer lets the thread go after 10 s, so that
    such a bug fails the test instead of hanging it)."""
    monkeypatch.setattr(threads_module, "UNWIND_GUARD_S", 0.3, raising=False)
    monkeypatch.setattr(threads_module, "_UNWIND_POLL_S", 0.1, raising=False)
    ws, never = _fake_and_event()
    release = threading.Event()
    rescue = threading.Timer(10.0, release.set)
    rescue.start()

    def stubborn(param: Any) -> int:
        try:
            ws.WaitForSingleObject(never, INFINITE)
        except BaseException:  # noqa: BLE001 - the misuse under test
            release.wait()
        return 0

    _parked_thread(ws, stubborn)
    try:
        with pytest.raises(WinsockUsageError, match=r"T2 \(thread .*start routine .*stubborn\)") as info:
            ws.end_threads()
        # The whole message, what the user did wrong included (a mutant that garbled its middle survived).
        assert str(info.value).endswith(
            " was unwound (the test is over) but had not ended after 0.3 s: the program caught the fake's "
            "unwinding exception (a BaseException: an 'except BaseException' or a bare 'except' that goes "
            "on) and kept running without an interface call, or it blocks outside the fake"), str(info.value)
        assert str(info.value).startswith("the scheduler cannot go on: T2 (thread "), str(info.value)
        with pytest.raises(InternalError, match="stubborn"):
            ws.end_threads()
    finally:
        rescue.cancel()
        release.set()
    for t in _program_threads():
        t.join(5.0)
    assert _program_threads() == []


def test_invariants_catch_a_baton_handed_twice() -> None:
    """threads_broken reports a baton lock that is free: its thread would not
    wait at its next park (two threads would run at once)."""
    ws, never = _fake_and_event()
    _parked_thread(ws, lambda p: ws.WaitForSingleObject(never, INFINITE))
    sched = ws._kernel.sched
    assert sched is not None and threads_module.threads_broken(ws._kernel) == []
    sched.main.baton.release()  # what a second hand-over to the running main thread did
    try:
        assert any("T1 (main thread" in p and "baton lock is free" in p
                   for p in threads_module.threads_broken(ws._kernel))
    finally:
        sched.main.baton.acquire()
    ws.end_threads()


def test_threads_are_ended_from_the_main_thread() -> None:
    """end_threads from a program thread is a usage error (the main thread
    waits for each thread it ends to hand the baton back)."""
    ws = FakeWinsock(seed=0)
    with pytest.raises(WinsockUsageError, match="from the main thread") as info:
        _parked_thread(ws, lambda p: len(ws.end_threads()))
    # The whole message: which thread may, which did (a mutant that garbled its first line survived).
    assert re.fullmatch(r"program threads are ended \(unwound\) from the main thread, the one that made the first "
                        r"thread \(T1 \(main thread, id 0x[0-9a-f]+\)\), not from fakewinsock T2",
                        str(info.value)), str(info.value)
    assert _program_threads() == []
