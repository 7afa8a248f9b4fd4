"""The fake's threads, kernel and network: survivors of mutation samples
(issue 18) left by the fourteenth session and those of the fifteenth
session's fresh sample (seed 27, drawn among mutants no earlier sample had
checked), each asserted as what a user of the fake relies on.  Each test's
docstring names the mutant it was proven against (the mutation applied to a
copy of the source: the test failed; on the original it passes)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import fakewinsock._threads as threads_module
from fakewinsock import WSABUF, WSAOVERLAPPED, FakeWinsock, InternalError
from fakewinsock.constants import FALSE, INFINITE, MAKEWORD, SOCKET_ERROR, TRUE, WAIT_OBJECT_0, WSA_IO_PENDING
from tests.fake_server import quiet
from tests.test_fake_mutation_survivors import fake, harness


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
    InternalError saying "None", and the next end_threads went on) and
    against its ``baton.acquire(blocking=True)`` for ``blocking=False`` once
    the thread is found ended (it waited for a hand-back that never comes)."""
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
    # A scheduler that waited for the lost hand-back for ever would hang the test: after 10 s
    # the baton is handed back for real (end_threads then returns without an error: the test fails).
    rescue = threading.Timer(10.0, lock.release)
    rescue.start()
    try:
        with pytest.raises(InternalError) as info:
            ws.end_threads()
    finally:
        rescue.cancel()
        sched.main.baton = lock
    assert str(info.value) == (f"the scheduler is broken: {described} ended without handing the baton back "
                               "as it was unwound (a bug in the fake)")
    assert t.py is not None and not t.py.is_alive()
    with pytest.raises(InternalError) as again:
        ws.end_threads()
    assert str(again.value) == str(info.value)


@pytest.mark.parametrize("call", ["CancelIoEx", "CancelIo"])
def test_the_trace_counts_every_operation_a_cancel_found(call: str) -> None:
    """CancelIoEx(s, NULL) and CancelIo cancel every operation on the socket
    (the calling thread's, for CancelIo): the trace's record of the call says
    how many, here two receives and a send held back by a full window.
    Proven against ``Sockets.cancel``'s ``found = 1`` for ``found += 1``
    (the record said cancelled=1)."""
    h = harness(window=4)
    ws = fake(h)
    a = h.accept()
    for _ in range(2):
        rc, _, _ = ws.WSARecv(a.sock, [WSABUF(16, bytearray(16))], 1, 0, WSAOVERLAPPED(), None)
        assert rc == SOCKET_ERROR and ws.WSAGetLastError() == WSA_IO_PENDING
    rc, _, _ = ws.WSASend(a.sock, [WSABUF(64, bytearray(64))], 1, 0, WSAOVERLAPPED(), None)
    assert rc == SOCKET_ERROR and ws.WSAGetLastError() == WSA_IO_PENDING
    if call == "CancelIoEx":
        assert ws.CancelIoEx(a.sock, None) == TRUE
    else:
        assert ws.CancelIo(a.sock) == TRUE
    (record,) = [r for r in ws.trace if r.call == call]
    assert record.detail == "cancelled=3", record
    ws.run_for(0.001)
    cancelled = [r for r in ws.trace if r.what == "completed" and r.handle == a.sock and "0xc0000120" in r.detail]
    assert len(cancelled) == 3, ws.trace.to_text(ws.trace.tail(12))


def test_a_timer_set_for_a_past_time_fires_after_the_timers_already_due() -> None:
    """FakeWinsock.call_at with a time already past fires as if set for now:
    after a timer that came due earlier but has not fired yet (a Winsock call
    moved the clock past it; with no background steps nothing ran it), not
    before it, and the clock never goes back.  Proven against
    ``Kernel.call_at``'s ``time_ns if (time_ns > now) or True else now`` (the
    past timer overtook the one already due)."""
    ws = FakeWinsock(seed=0, config=quiet())
    assert ws.WSAStartup(MAKEWORD(2, 2)).error == 0
    start = ws.now_ns
    fired: list[tuple[str, int]] = []
    ws.call_at(start + 1, lambda what: fired.append((what, ws.now_ns)), "due first")
    ev = ws.WSACreateEvent()  # a call: the clock moves past the timer, which does not fire
    later = ws.now_ns
    assert later > start + 1 and fired == []
    ws.call_at(start, lambda what: fired.append((what, ws.now_ns)), "set for the past")
    ws.run_for(0.001)
    assert fired == [("due first", later), ("set for the past", later)]
    ws.WSACloseEvent(ev)
