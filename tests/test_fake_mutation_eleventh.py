"""The fake's kernel, network, threads and completion ports: survivors of the
eleventh session's fresh mutation samples (issue 18, seed 23:
``tools/mutation_sample.sh 'fakewinsock._threads*' 40 23``, and ``_iocp``,
``_kernel``, ``_net`` 30 each), each asserted as what a user of the fake
relies on.  (Which thread runs after one ends is the "thread" question: in
``tests/test_fake_threads_mutation_tenth.py``, with three threads.)"""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from fakewinsock import WSABUF, WSAOVERLAPPED, FakeConfig, FakePeer, FakeWinsock, WinsockUsageError
from fakewinsock._threads import ProgramThread, threads_broken
from fakewinsock.constants import (
    FALSE,
    INFINITE,
    INVALID_HANDLE_VALUE,
    MAKEWORD,
    SOCKET_ERROR,
    TRUE,
    WAIT_OBJECT_0,
    WAIT_TIMEOUT,
    WSA_IO_PENDING,
    WSA_OPERATION_ABORTED,
)
from tests.conformance._harness import Harness
from tests.test_fake_iocp import fake, join, spawn
from tests.test_fake_net_mutation_more import ByLabel


@pytest.mark.parametrize("seed", range(4))
def test_a_released_thread_blocked_elsewhere_leaves_room_under_a_concurrency_of_two(seed: int) -> None:
    """A port with concurrency value 2 and three waiting threads, three packets:
    the first two waiters released take keys 1 and 2; the one with key 1 then
    blocks in Sleep (a wait "for other reasons": it no longer counts), the one
    with key 2 keeps running (Winsock calls, no wait) until the third packet is
    taken.  One released thread runs, fewer than 2: the third waiter gets
    key 3 while the second still runs (Microsoft, "I/O Completion Ports")."""
    ws = fake(seed=seed)
    port = ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, 2)
    got: list[int] = []
    spins: list[int] = []

    def worker(_: object) -> int:
        ok, _n, key, _ov = ws.GetQueuedCompletionStatus(port, INFINITE)
        assert ok == TRUE
        got.append(key)
        if key == 1:
            ws.Sleep(1000)
        elif key == 2:
            ev = ws.WSACreateEvent()
            calls = 0
            while 3 not in got and calls < 2000:  # running: scheduling points, no wait
                assert ws.WSAResetEvent(ev) == TRUE
                calls += 1
            spins.append(calls)
            assert ws.WSACloseEvent(ev) == TRUE
        return 0

    threads = [spawn(ws, worker) for _ in range(3)]
    ws.Sleep(100)
    for key in (1, 2, 3):
        assert ws.PostQueuedCompletionStatus(port, 0, key, None) == TRUE
    join(ws, threads)
    assert sorted(got) == [1, 2, 3]
    assert spins[0] < 2000, "the third packet waited for the running thread although the other one was blocked"
    assert ws.CloseHandle(port) == TRUE
    assert ws.WSACleanup() == 0


def _switches_of_two_busy_threads(ws: FakeWinsock) -> int:
    """Thread switches while two program threads make 40 Winsock calls each (no wait)."""
    def worker(_: object) -> int:
        ev = ws.WSACreateEvent()
        for _ in range(40):
            assert ws.WSAResetEvent(ev) == TRUE
        assert ws.WSACloseEvent(ev) == TRUE
        return 0

    before = ws.thread_switches
    join(ws, [spawn(ws, worker), spawn(ws, worker)])
    return ws.thread_switches - before


@pytest.mark.parametrize("seed", range(3))
def test_calls_of_a_simulated_actor_that_step_the_world_leave_every_later_call_a_scheduling_point(seed: int) -> None:
    """A simulated actor (``call_at``) cancels a pending receive (ready at
    once: completion delay 0), then makes another Winsock call, in which the
    kernel's background progress (1.0) completes the receive: a step inside
    the step that runs the actor.  Afterwards, Winsock calls are scheduling
    points as before: two busy threads switch about as often as on a fake
    where no actor ran (the kernel's count of the steps in progress is back
    to 0; counted as 1 for the inner step, it ended at -1, which no call
    takes for "not inside a step": preemption at calls stopped for good)."""
    config = FakeConfig(immediate=0.0, background=1.0, completion_delay=(0, 0))
    assert _switches_of_two_busy_threads(fake(config, seed=seed)) > 20  # (39 to 54 on these seeds)
    h = Harness(FakeWinsock(seed=seed, config=config))
    h.start()
    ws = h.ws
    assert isinstance(ws, FakeWinsock)
    a = h.accept()
    ov = WSAOVERLAPPED(hEvent=h.event())
    rc, _, _ = ws.WSARecv(a.sock, [WSABUF(8, bytearray(8))], 1, 0, ov, None)
    assert (rc, ws.WSAGetLastError()) == (SOCKET_ERROR, WSA_IO_PENDING)
    ev = h.event()

    def actor(_: object) -> None:
        assert ws.CancelIoEx(a.sock, ov) == TRUE
        assert ws.WSAResetEvent(ev) == TRUE  # its background step completes the receive

    ws.call_at(ws.now_ns + 1_000_000, actor)
    assert h.complete(a.sock, ov) == (FALSE, 0, WSA_OPERATION_ABORTED)
    assert _switches_of_two_busy_threads(ws) > 20  # (with no scheduling point at calls: 3 or 4, at waits and exits)
    h.finish()


def test_a_thread_the_fake_does_not_schedule_counts_as_running_once_a_port_released_it() -> None:
    """A Python thread the fake does not schedule (not made by CreateThread)
    takes a packet from a port with concurrency value 1 and goes on running
    (busy, without Winsock calls): the fake cannot see it wait, so it counts
    against the concurrency value, and the main thread's GetQueuedCompletionStatus
    does not get the second packet meanwhile (a poll: WAIT_TIMEOUT)."""
    ws = fake()
    port = ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, 1)
    for key in (1, 2):
        assert ws.PostQueuedCompletionStatus(port, 0, key, None) == TRUE
    got: list[tuple[int, int, int]] = []
    taken, done = threading.Event(), threading.Event()

    def other() -> None:
        got.append(ws.GetQueuedCompletionStatus(port, 0)[:3])
        taken.set()
        while not done.is_set():  # running with its packet
            pass

    runner = threading.Thread(target=other, daemon=True)
    runner.start()
    try:
        assert taken.wait(60)
        assert ws.GetQueuedCompletionStatus(port, 0) == (FALSE, 0, 0, None)
        assert ws.GetLastError() == WAIT_TIMEOUT
    finally:
        done.set()
        runner.join(60)
    assert got == [(TRUE, 0, 1)]
    assert ws.CloseHandle(port) == TRUE


def _syn_after(config: FakeConfig, chooser: ByLabel | None = None) -> int:
    """Nanoseconds from a peer's connect to the completion of an AcceptEx posted before it."""
    h = Harness(FakeWinsock(seed=1, config=config, chooser=chooser))
    h.start()
    ws = h.ws
    assert isinstance(ws, FakeWinsock)
    posted = h.post_accept()
    peer = ws.peer()
    start = ws.now_ns
    peer.connect_nowait("127.0.0.1", posted.port)
    assert h.wait(posted.ov.hEvent, 1000) == WAIT_OBJECT_0
    took = ws.now_ns - start
    peer.close()
    h.close(posted.sock)
    h.finish()
    return took


def test_a_connection_s_syn_takes_one_latency_to_reach_the_listener() -> None:
    """Latency fixed at 5 ms, completion delay 0: an AcceptEx posted before a
    peer starts connecting completes one latency after the peer's connect
    began (the server's end exists when the SYN arrives), not at once.  The
    SYN's latency is the "latency" question (a chooser logs or scripts its
    answers by label): answered 7 ms of 1 to 9, the AcceptEx completes 7 ms on."""
    quiet = FakeConfig(immediate=0.0, background=0.0, completion_delay=(0, 0))
    took = _syn_after(replace(quiet, latency=(5_000_000, 5_000_000)))
    assert 5_000_000 <= took < 6_000_000
    took = _syn_after(replace(quiet, latency=(1_000_000, 9_000_000)), ByLabel({"latency": 7_000_000}))
    assert 7_000_000 <= took < 8_000_000


def test_a_thread_run_record_of_the_trace_names_no_operation() -> None:
    """The trace's "thread run" records are about threads, not operations:
    their operation id is 0 (a reader or a tool keying records by operation
    would otherwise file them under operation 1)."""
    ws = FakeWinsock(seed=3)
    assert ws.WSAStartup(MAKEWORD(2, 2)).error == 0

    def worker(param: object) -> int:
        ws.Sleep(1)
        return 0

    h = ws.CreateThread(None, 0, worker, None, 0).hThread
    assert ws.WaitForSingleObject(h, INFINITE) == WAIT_OBJECT_0
    runs = [r for r in ws.trace if r.what == "thread" and r.call == "run"]
    assert len(runs) >= 2 and {r.op for r in runs} == {0}, runs
    assert ws.CloseHandle(h) == TRUE
    assert ws.WSACleanup() == 0



def test_a_peer_is_told_of_room_to_send_only_when_its_bytes_had_to_wait() -> None:
    """``FakePeer.on_change`` runs when something arrives, or when there is
    room to send after bytes had to wait for the window: an AcceptEx taking
    the peer's first bytes, which never waited, tells the peer nothing (nor
    does a WSARecv taking the next ones)."""
    ws = FakeWinsock(seed=1, config=FakeConfig(immediate=0.0))
    h = Harness(ws)
    h.start()
    lst, port = h.listener()
    peer = h.peer()
    peer.connect("127.0.0.1", port)
    assert isinstance(peer, FakePeer)
    calls: list[FakePeer] = []
    peer.on_change = calls.append
    peer.send_nowait(b"hello")
    a = h.accept(rdl=5, on=(lst, port), peer=peer)
    peer.send_nowait(b"again")
    assert h.recv_all(a.sock, 5) == b"again"
    ws.run_for(0.01)
    assert calls == []
    peer.on_change = None
    h.finish()


def test_a_usage_error_raised_by_a_ready_completion_stops_the_invariant_checks() -> None:
    """With the invariants checked after every call: a program that writes
    into a WSAOVERLAPPED in flight gets a usage error when the operation
    completes, here with completion delay 0 (a ready entry of the kernel),
    inside ``run_for`` (no checked call).  The operation was left half done
    (off its socket's queue, not completed), so the fake no longer checks its
    invariants: the next calls work, no InternalError about the half-done
    operation."""
    ws = FakeWinsock(seed=1, config=FakeConfig(immediate=0.0, completion_delay=(0, 0), check_invariants=True))
    h = Harness(ws)
    h.start()
    a = h.accept()
    ov = WSAOVERLAPPED()
    rc, _, _ = ws.WSARecv(a.sock, [WSABUF(8, bytearray(8))], 1, 0, ov, None)
    assert (rc, ws.WSAGetLastError()) == (SOCKET_ERROR, WSA_IO_PENDING)
    ov.Internal = 0  # the program's bug: Windows would write into it later
    assert isinstance(a.peer, FakePeer)
    a.peer.send_nowait(b"x")
    with pytest.raises(WinsockUsageError, match="modified while the operation was in flight"):
        ws.run_for(0.01)
    ev = ws.WSACreateEvent()
    assert ws.WSACloseEvent(ev) == TRUE


def test_the_invariants_see_a_thread_missing_from_the_watch_list_of_an_object_it_waits_on() -> None:
    """The scheduler's invariants notice a thread blocked on an event handle
    that it does not watch (so a signal would never wake it), naming the
    handle (checked from the wait's handles as well as from the event's
    waiters)."""
    ws = FakeWinsock(seed=0)
    ev = ws.WSACreateEvent()

    def worker(param: object) -> int:
        assert ws.WaitForSingleObject(ev, 100) == WAIT_TIMEOUT
        return 0

    h = ws.CreateThread(None, 0, worker, None, 0).hThread
    ws.Sleep(1)  # the worker runs and waits
    kernel = ws._kernel
    t = kernel.objects[h]
    assert isinstance(t, ProgramThread) and kernel.objects[ev] in t.watching
    watched = list(t.watching)
    t.watching.clear()
    broken = threads_broken(kernel)
    t.watching.extend(watched)
    # (The event's own list still names the thread: that is seen too.)
    assert f"{t.describe()} waits on {ev:#x} but is not among its waiters" in broken, broken
    assert broken == [f"{t.describe()} waits on {ev:#x} but is not among its waiters",
                      f"{t.describe()} is blocked but listed as waiting on {ev:#x}"], broken
    assert threads_broken(kernel) == []
    assert ws.WaitForSingleObject(h, INFINITE) == WAIT_OBJECT_0
    assert ws.CloseHandle(h) == TRUE
    assert ws.WSACloseEvent(ev) == TRUE
