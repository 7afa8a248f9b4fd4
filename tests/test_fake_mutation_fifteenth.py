"""The fake's threads, kernel and network: survivors of mutation samples
(issue 18) left by the fourteenth session and those of the fifteenth
session's fresh sample (seed 27, drawn among mutants no earlier sample had
checked), each asserted as what a user of the fake relies on.  Each test's
docstring names the mutant it was proven against (the mutation applied to a
copy of the source: the test failed; on the original it passes)."""

from __future__ import annotations

from typing import Any

import pytest

import fakewinsock._threads as threads_module
from fakewinsock import FakeWinsock, InternalError
from fakewinsock.constants import FALSE, INFINITE, MAKEWORD, WAIT_OBJECT_0


def test_a_thread_waits_again_on_an_event_another_thread_still_waits_on() -> None:
    """Two threads wait on one event, one of them on a second event too; that
    one is woken by the second event and waits on the first again: both wake
    once it is set.  (The event's list of waiters holds the other waiter alone
    when the woken thread registers again.)  Proven against ``_park``'s
    ``waiters[-2] is cur`` for ``waiters[-1]`` (the handle-given-twice check:
    an IndexError on the one-waiter list)."""
    ws = FakeWinsock(seed=0)
    assert ws.WSAStartup(MAKEWORD(2, 2)).error == 0
    ev, other = ws.WSACreateEvent(), ws.WSACreateEvent()
    results: dict[str, list[int]] = {"a": [], "b": []}

    def first(param: Any) -> int:
        results["a"].append(ws.WaitForSingleObject(ev, INFINITE))
        return 0

    def second(param: Any) -> int:
        results["b"].append(ws.WaitForMultipleObjects(2, [ev, other], FALSE, INFINITE))
        results["b"].append(ws.WaitForSingleObject(ev, INFINITE))
        return 0

    handles = [ws.CreateThread(None, 0, fn, None, 0).hThread for fn in (first, second)]
    ws.Sleep(10)
    assert ws.WSASetEvent(other)
    ws.Sleep(10)
    assert results == {"a": [], "b": [WAIT_OBJECT_0 + 1]}
    assert ws.WSASetEvent(ev)
    for h in handles:
        assert ws.WaitForSingleObject(h, INFINITE) == WAIT_OBJECT_0
        ws.CloseHandle(h)
    assert results == {"a": [WAIT_OBJECT_0], "b": [WAIT_OBJECT_0 + 1, WAIT_OBJECT_0]}
    for h in (ev, other):
        ws.WSACloseEvent(h)
    assert ws.WSACleanup() == 0


class _LostHandBack:
    """The main thread's baton with its hand-back lost: ``release`` does
    nothing (the class of scheduler bug redteam3 hit: a program thread ended
    without handing the baton on)."""

    def __init__(self, lock: Any) -> None:
        self.lock = lock

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return bool(self.lock.acquire(blocking, timeout))

    def release(self) -> None:
        pass


def test_a_thread_that_ends_without_handing_the_baton_back_breaks_the_scheduler_loudly(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in the fake planted by hand: an unwound thread's hand-back of the
    baton is lost, so its Python thread ends while the main thread still
    waits for the baton.  Ending the threads then raises an InternalError that
    names the thread and says the scheduler is broken, and every later call
    to end threads raises it again (the scheduler refuses to go on).  Proven
    against ``_unwind_one``'s ``self.broken = None`` for that message (an
    InternalError saying "None", and the next end_threads went on)."""
    monkeypatch.setattr(threads_module, "_UNWIND_POLL_S", 0.05, raising=False)
    ws = FakeWinsock(seed=0)
    never = ws.WSACreateEvent()
    assert ws.WSAStartup(MAKEWORD(2, 2)).error == 0
    ws.CreateThread(None, 0, lambda param: ws.WaitForSingleObject(never, INFINITE), None, 0)
    ws.Sleep(1)  # it runs and parks in its wait
    sched = ws._kernel.sched
    assert sched is not None
    (t,) = sched.alive()
    described = t.describe_state()
    lock = sched.main.baton
    setattr(sched.main, "baton", _LostHandBack(lock))  # noqa: B010 - not a lock's type
    try:
        with pytest.raises(InternalError) as info:
            ws.end_threads()
    finally:
        sched.main.baton = lock
    assert str(info.value) == (f"the scheduler is broken: {described} ended without handing the baton back "
                               "as it was unwound (a bug in the fake)")
    assert t.py is not None and not t.py.is_alive()
    with pytest.raises(InternalError) as again:
        ws.end_threads()
    assert str(again.value) == str(info.value)
