"""The fake's threads and sockets: survivors of the fourteenth session's fresh
mutation sample (issue 18, seed 26, drawn among mutants no earlier sample had
checked), each asserted as what a user of the fake relies on.  Each test's
docstring names the mutant it was proven against (tools/mutation_recheck.py
--names on the mutant: the test failed; on the original it passes)."""

from __future__ import annotations

from typing import Any

import pytest

from fakewinsock import CRITICAL_SECTION, WSABUF, FakeWinsock, InternalError
from fakewinsock.constants import INFINITE
from tests.fake_server import LATENCY, Server, quiet
from tests.test_fake_kernel_mutation import started
from tests.test_fake_net_mutation_more import ByLabel


def test_the_scheduler_check_names_every_running_thread_and_the_baton_holder() -> None:
    """ws.invariants() on a scheduler with two threads marked running says
    how many, lists each (comma-separated) and names the thread with the
    baton.  Proven against threads_broken's ``'XX, XX'.join``."""
    ws = started(FakeWinsock(seed=1))
    ev = ws.WSACreateEvent()
    ws.CreateThread(None, 0, lambda p: ws.WaitForSingleObject(ev, INFINITE), None, 0)
    ws.Sleep(1)
    sched = ws._kernel.sched
    assert sched is not None
    t = sched.threads[1]
    saved, t.state = t.state, "running"
    with pytest.raises(InternalError) as info:
        ws.invariants()
    t.state = saved
    main = sched.threads[0]
    assert (f"2 threads are running ({main.describe()}, {t.describe()}), the baton is with {main.describe()}"
            in str(info.value))
    ws.WSASetEvent(ev)
    ws.end_threads()


def test_a_thread_whose_wait_timed_out_but_has_not_run_is_described_as_runnable_over_a_time_out() -> None:
    """What end_threads (and a deadlock or leak report) says of a thread whose
    wait ended by its time-out but which has not run since: runnable, its
    wait "over (timed out)".  The main thread's Sleep ends at the same
    virtual instant; the seed decides who runs first.  Proven against
    describe_state's key ``"XXtimeoutXX"`` (the description then fails)."""
    described: list[str] = []
    for seed in range(8):
        ws = started(FakeWinsock(seed=seed))
        ev, ev2 = ws.WSACreateEvent(), ws.WSACreateEvent()

        def wait(_: Any, ws: FakeWinsock = ws, ev: int = ev) -> int:
            return ws.WaitForSingleObject(ev, 5)

        ws.CreateThread(None, 0, wait, None, 0)
        ws.Sleep(4)  # the thread blocks in its wait, 1 ms left
        sched = ws._kernel.sched
        assert sched is not None
        for _ in range(20_000):  # calls (scheduling points) until its time-out has woken it, and maybe run it
            ws.WSASetEvent(ev2)
            if sched.threads[1].state != "blocked":
                break
        described += [d for d in ws.end_threads() if ": runnable" in d]
    assert described, "no seed left the timed-out thread unrun"
    for text in described:
        assert text.endswith("was over (timed out)"), text


def test_a_critical_section_left_with_a_waiter_has_lock_count_minus_3_until_the_waiter_takes_it() -> None:
    """LockCount as Windows shows it: the main thread owns the section and a
    second thread waits for it (-6); the owner leaves it: free, one waiter
    woken (-3) until that thread runs and takes it.  Proven against
    CritSec.mirror's ``& 1`` for ``| 1`` (0 instead of -3)."""
    seen: list[tuple[int, int]] = []
    for seed in range(8):
        ws = started(FakeWinsock(seed=seed))
        cs = CRITICAL_SECTION()
        ws.InitializeCriticalSection(cs)
        ws.EnterCriticalSection(cs)

        def enter(_: Any, ws: FakeWinsock = ws, cs: CRITICAL_SECTION = cs) -> int:
            ws.EnterCriticalSection(cs)
            ws.LeaveCriticalSection(cs)
            return 0

        h = ws.CreateThread(None, 0, enter, None, 0).hThread
        ws.Sleep(1)
        assert cs.LockCount == -6
        ws.LeaveCriticalSection(cs)
        seen.append((cs.OwningThread, cs.LockCount))
        ws.WaitForSingleObject(h, INFINITE)
        ws.CloseHandle(h)
        ws.DeleteCriticalSection(cs)
    free = [count for owner, count in seen if owner == 0]
    assert free and all(count == -3 for count in free), seen


def test_whether_a_wsasend_completes_at_once_is_the_immediate_wsasend_question() -> None:
    """FakeConfig.immediate for WSASend is drawn by the chooser's question
    named ``"immediate:WSASend"`` (the Chooser docstring's names), so a
    chooser can script it.  Proven against send_at_once's label ``None``
    and ``"IMMEDIATE:WSASEND"``."""
    chooser = ByLabel()
    ws = FakeWinsock(chooser=chooser, config=quiet(immediate={"WSASend": 0.5, "*": 0.0}))
    srv = Server(ws)
    s, _ = srv.accept()
    ov = srv.overlapped()
    ws.WSASend(s, [WSABUF(2, b"hi")], 1, 0, ov, None)
    assert "immediate:WSASend" in [label for label, _, _ in chooser.asked]
    srv.finish()


def test_a_connect_is_established_one_round_trip_after_it_starts() -> None:
    """A peer connecting to a listening socket is established when the SYN-ACK
    comes back: two one-way latencies after connect_nowait (the SYN there, the
    SYN-ACK back), not before.  Proven against _syn_arrives' ``now_ns -
    latency`` for the SYN-ACK (established one latency after the start)."""
    ws = FakeWinsock(seed=0, config=quiet())
    srv = Server(ws)
    peer = ws.peer()
    times: list[int] = []
    peer.on_change = lambda p: times.append(ws.now_ns) if p.connected and not times else None
    start = ws.now_ns
    peer.connect_nowait("127.0.0.1", srv.port)
    ws.run_for(0.01)
    assert times == [start + 2 * LATENCY]
    srv.accept(peer)
    srv.finish()


def test_how_much_a_partial_receive_takes_is_the_take_question() -> None:
    """With FakeConfig.partial_recv, how many of the bytes waiting a receive
    takes is the chooser's question named ``"take"``: a chooser answering 2
    makes a receive of "hello" return "he".  Proven against receive_result's
    label ``"TAKE"`` (the chooser's default, 1 byte, was taken)."""
    chooser = ByLabel({"take": 2})
    ws = FakeWinsock(chooser=chooser, config=quiet(partial_recv=1.0))
    srv = Server(ws)
    s, peer = srv.accept()
    peer.send_nowait(b"hello")
    ws.run_for(0.001)
    assert srv.recv(s, 16)[1] == b"he"
    assert ("take", 1, 4) in chooser.asked
    srv.finish()


def test_the_scheduler_check_names_a_critical_section_whose_structure_disagrees() -> None:
    """ws.invariants() on a critical section whose structure says another
    owner than the fake's own record (a program that wrote into it): the
    section and what its structure says.  Proven against threads_broken's
    ``out.append(None)`` for that line."""
    ws = started(FakeWinsock(seed=1))
    cs = CRITICAL_SECTION()
    ws.InitializeCriticalSection(cs)
    ws.EnterCriticalSection(cs)
    cs.OwningThread = 0x1234
    with pytest.raises(InternalError) as info:
        ws.invariants()
    assert ": its structure says owner 0x1234 x1" in str(info.value)
    cs.OwningThread = ws.GetCurrentThreadId()
    ws.LeaveCriticalSection(cs)
    ws.DeleteCriticalSection(cs)
