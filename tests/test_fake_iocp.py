"""Completion ports on the fake only: determinism, the chooser's choices, the
fake's loud errors and its invariants (what the conformance suite cannot show
on a real backend)."""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import pytest

from fakewinsock import WSABUF, WSAOVERLAPPED, DeadlockError, FakeConfig, FakeWinsock, RandomChooser, WinsockUsageError
from fakewinsock._errors import InternalError, LeakError, NotEmulatedError
from fakewinsock.constants import (
    AF_INET,
    ERROR_ABANDONED_WAIT_0,
    ERROR_OPERATION_ABORTED,
    FALSE,
    FILE_SKIP_SET_EVENT_ON_HANDLE,
    INFINITE,
    INVALID_HANDLE_VALUE,
    IPPROTO_TCP,
    SOCK_STREAM,
    SOCKET_ERROR,
    TRUE,
    WSA_IO_PENDING,
)
from tests.conformance._harness import Accepted, Harness


def harness(config: FakeConfig | None = None, seed: int = 1, chooser: RandomChooser | None = None) -> Harness:
    h = Harness(FakeWinsock(seed=seed, config=config or FakeConfig(immediate=0.0), chooser=chooser))
    h.start()
    return h


def connection(h: Harness, key: int) -> tuple[Accepted, int]:
    a = h.accept()
    port = h.port()
    assert h.ws.CreateIoCompletionPort(a.sock, port, key, 0) == port
    return a, port


def pend(h: Harness, s: int, ov: WSAOVERLAPPED) -> None:
    rc, _, _ = h.ws.WSARecv(s, [WSABUF(64, bytearray(64))], 1, 0, ov, None)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING


def echo_program(seed: int) -> str:
    """A small IOCP echo exchange on a random schedule: its trace."""
    h = harness(FakeConfig(immediate=0.5, split=0.5, partial_recv=0.3, background=0.2), seed=seed)
    a, port = connection(h, 7)
    got = bytearray()
    for chunk in (b"hello ", b"world"):
        a.peer.send(chunk)
    while len(got) < 11:
        ov = WSAOVERLAPPED()
        buf = bytearray(8)
        rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(8, buf)], 1, 0, ov, None)
        assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING
        ok, n, key, back = h.ws.GetQueuedCompletionStatus(port, INFINITE)
        assert (ok, key) == (TRUE, 7) and back is ov
        got += buf[:n]
    assert bytes(got) == b"hello world"
    h.finish()
    assert isinstance(h.ws, FakeWinsock)
    return h.ws.trace.to_text()


def test_same_seed_same_trace() -> None:
    first = echo_program(3)
    assert "dequeued" in first and "queued" in first
    assert echo_program(3) == first
    assert any(echo_program(seed) != first for seed in range(4, 8))


class OrderChooser(RandomChooser):
    """Random, except which ready completion runs first: the oldest or the newest."""

    def __init__(self, newest: bool) -> None:
        super().__init__(0)
        self.newest = newest
        self.asked = 0

    def index(self, n: int, label: str) -> int:
        if label == "order":
            self.asked += 1
            return n - 1 if self.newest else 0
        return super().index(n, label)


@pytest.mark.parametrize("newest", [False, True])
def test_the_chooser_orders_completions_and_so_packets(newest: bool) -> None:
    """Two receives cancelled at once are both ready: the chooser picks which
    completes first, and the port hands the packets out in that order."""
    chooser = OrderChooser(newest)
    h = harness(FakeConfig(immediate=0.0, completion_delay=(0, 0), background=0.0), chooser=chooser)
    a, port = connection(h, 1)
    first, second = WSAOVERLAPPED(), WSAOVERLAPPED()
    pend(h, a.sock, first)
    pend(h, a.sock, second)
    assert h.ws.CancelIo(a.sock) == TRUE
    got = [h.ws.GetQueuedCompletionStatus(port, 1000)[3] for _ in range(2)]
    assert chooser.asked >= 1
    assert got == ([second, first] if newest else [first, second])
    h.finish()


def test_reusing_an_overlapped_whose_packet_is_queued_is_refused() -> None:
    """The classic IOCP bug (an immediate success handled inline, its OVERLAPPED
    reused while its packet still waits in the port) is a loud usage error; the
    result read with WSAGetOverlappedResult does not free the OVERLAPPED, the
    packet does."""
    h = harness(FakeConfig(immediate=1.0, background=0.0))
    a, port = connection(h, 1)
    a.peer.send(b"abc")
    h.settle()
    ov = WSAOVERLAPPED()
    rc, n, _ = h.ws.WSARecv(a.sock, [WSABUF(64, bytearray(64))], 1, 0, ov, None)
    assert (rc, n) == (0, 3)
    assert h.ws.WSAGetOverlappedResult(a.sock, ov, FALSE)[:2] == (TRUE, 3)
    with pytest.raises(WinsockUsageError, match="completion packet still queued"):
        h.ws.WSARecv(a.sock, [WSABUF(64, bytearray(64))], 1, 0, ov, None)
    assert h.ws.GetQueuedCompletionStatus(port, 0)[3] is ov
    pend(h, a.sock, ov)  # free again
    h.finish()


def test_closing_a_port_drops_its_packets_and_frees_their_overlappeds() -> None:
    h = harness()
    a, port = connection(h, 1)
    ov = WSAOVERLAPPED()
    pend(h, a.sock, ov)
    a.peer.send(b"x")
    h.settle()
    assert h.ws.pending_operations() == []  # type: ignore[attr-defined]
    h.ports.remove(port)
    assert h.ws.CloseHandle(port) == TRUE
    pend(h, a.sock, ov)  # the dropped packet no longer holds it
    a.peer.send(b"y")
    h.settle()  # its completion finds the port closed: no packet, no error
    h.finish()


def test_cleanup_reports_a_port_left_open_and_its_packets() -> None:
    h = harness()
    a, port = connection(h, 1)
    assert h.ws.PostQueuedCompletionStatus(port, 1, 2, None) == TRUE
    h.ports.remove(port)
    with pytest.raises(LeakError) as e:
        h.finish()
    assert f"completion port {port:#x} not closed" in str(e.value)
    assert "posted packet" in str(e.value)


def test_waiting_forever_on_an_idle_port_is_a_deadlock() -> None:
    h = harness()
    port = h.port()
    with pytest.raises(DeadlockError, match="GetQueuedCompletionStatus"):
        h.ws.GetQueuedCompletionStatus(port, INFINITE)


def test_a_port_closed_while_waited_on() -> None:
    """FALSE, lpOverlapped NULL, ERROR_ABANDONED_WAIT_0 (Microsoft's remarks);
    here a simulated actor closes it, as another thread would."""
    h = harness(FakeConfig(immediate=0.0, background=0.0))
    port = h.ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, 0)
    ws = h.ws
    assert isinstance(ws, FakeWinsock)
    def close_it(_: object) -> None:
        ws.CloseHandle(port)

    ws.call_at(ws.now_ns + 50_000_000, close_it)
    assert ws.GetQueuedCompletionStatus(port, 10_000) == (FALSE, 0, 0, None)
    assert ws.WSAGetLastError() == ERROR_ABANDONED_WAIT_0
    h.finish()


def test_wait_on_the_socket_handle_with_skip_set_event_is_refused() -> None:
    """WSAGetOverlappedResult(fWait) with no hEvent waits on the socket handle,
    which FILE_SKIP_SET_EVENT_ON_HANDLE keeps unsignalled: Windows would hang."""
    h = harness()
    a, _ = connection(h, 1)
    assert h.ws.SetFileCompletionNotificationModes(a.sock, FILE_SKIP_SET_EVENT_ON_HANDLE) == TRUE
    ov = WSAOVERLAPPED()
    pend(h, a.sock, ov)
    with pytest.raises(WinsockUsageError, match="FILE_SKIP_SET_EVENT_ON_HANDLE"):
        h.ws.WSAGetOverlappedResult(a.sock, ov, TRUE)
    h.finish()


@pytest.mark.parametrize("flags", [0x4, 0x80, 0x7, 0x104])
def test_completion_modes_beyond_the_two_known_are_not_emulated(flags: int) -> None:
    """FILE_SKIP_SET_USER_EVENT_ON_FAST_IO (4) and unknown bits fail loudly
    (NtSetInformationFile accepts them on Windows; kernel32's wrapper and the
    effect of 4 are not shown); only the UCHAR's low byte counts (0x104: 4)."""
    h = harness()
    a, _ = connection(h, 1)
    with pytest.raises(NotEmulatedError, match="FILE_SKIP_SET_USER_EVENT_ON_FAST_IO"):
        h.ws.SetFileCompletionNotificationModes(a.sock, flags)
    h.finish()


def test_completion_modes_take_the_low_byte_and_sync_sockets_refuse_only_the_port_flag() -> None:
    h = harness()
    a, _ = connection(h, 1)
    assert h.ws.SetFileCompletionNotificationModes(a.sock, 0x100 | FILE_SKIP_SET_EVENT_ON_HANDLE) == TRUE
    s = h.ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, 0)
    h.sockets.append(s)
    for flags in (0, FILE_SKIP_SET_EVENT_ON_HANDLE):
        with pytest.raises(NotEmulatedError, match="without WSA_FLAG_OVERLAPPED"):
            h.ws.SetFileCompletionNotificationModes(s, flags)
    h.finish()


def test_routine_posted_before_the_association_still_runs() -> None:
    """The documented divergence: the routine given at post time wins; no packet."""
    h = harness()
    a = h.accept()
    calls: list[int] = []
    rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(8, bytearray(8))], 1, 0, WSAOVERLAPPED(),
                            lambda err, n, ov, fl: calls.append(n))
    assert rc == SOCKET_ERROR
    port = h.port()
    assert h.ws.CreateIoCompletionPort(a.sock, port, 1, 0) == port
    a.peer.send(b"z")
    assert h.ws.SleepEx(1000, TRUE) != 0 and calls == [1]
    assert h.ws.GetQueuedCompletionStatus(port, 0)[0] == FALSE
    h.finish()


def test_programs_without_a_port_pay_no_hook() -> None:
    ws = FakeWinsock(seed=1)
    assert ws._ops.port_hook is None
    ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, 0)
    assert ws._ops.port_hook is not None


def queued_packet() -> tuple[Harness, FakeWinsock, int]:
    h = harness()
    a, port = connection(h, 1)
    pend(h, a.sock, WSAOVERLAPPED())
    a.peer.send(b"q")
    h.settle()
    assert isinstance(h.ws, FakeWinsock)
    h.ws.invariants()
    return h, h.ws, port


def test_invariants_catch_a_packet_whose_op_is_no_longer_waiting() -> None:
    _, ws, port = queued_packet()
    pkt = ws._kernel.objects[port].packets[0]  # type: ignore[attr-defined]
    pkt.op.in_port = False
    with pytest.raises(InternalError, match="has a packet on"):
        ws.invariants()


def test_invariants_catch_a_packet_queued_twice() -> None:
    _, ws, port = queued_packet()
    packets = ws._kernel.objects[port].packets  # type: ignore[attr-defined]
    packets.append(packets[0])
    with pytest.raises(InternalError, match="has 2 packets"):
        ws.invariants()


def test_invariants_catch_an_op_reaped_with_its_packet_queued() -> None:
    _, ws, port = queued_packet()
    op = ws._kernel.objects[port].packets[0].op  # type: ignore[attr-defined]
    op.in_port = False
    ws._ops.reap(op)
    with pytest.raises(InternalError, match="is reaped"):
        ws.invariants()


# -- program threads -----------------------------------------------------------------


def spawn(ws: FakeWinsock, fn: Callable[[object], int]) -> int:
    h, _ = ws.CreateThread(None, 0, fn, None, 0)
    assert h
    return h


def join(ws: FakeWinsock, threads: list[int]) -> None:
    for t in threads:
        assert ws.WaitForSingleObject(t, INFINITE) == 0
        assert ws.CloseHandle(t) == TRUE


def fake(config: FakeConfig | None = None, seed: int = 1) -> FakeWinsock:
    ws = FakeWinsock(seed=seed, config=config or FakeConfig(immediate=0.0))
    assert ws.WSAStartup(0x0202)[0] == 0
    return ws


@pytest.mark.parametrize("seed", range(6))
def test_waiting_threads_are_released_most_recent_first(seed: int) -> None:
    """LIFO: the packets (FIFO) go to the waiting threads in the reverse order of
    their waits, whatever the chooser does meanwhile."""
    ws = fake(seed=seed)
    port = ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, 8)
    entered: list[int] = []
    got: dict[int, int] = {}

    def worker(_: object) -> int:
        me = ws.GetCurrentThreadId()
        entered.append(me)
        ok, _n, key, _ov = ws.GetQueuedCompletionStatus(port, INFINITE)
        assert ok == TRUE
        got[me] = key
        return 0

    threads = []
    for _ in range(3):  # one at a time: each is waiting before the next starts
        threads.append(spawn(ws, worker))
        ws.Sleep(100)
    assert len(entered) == 3
    for key in (1, 2, 3):
        assert ws.PostQueuedCompletionStatus(port, 0, key, None) == TRUE
    join(ws, threads)
    assert [got[t] for t in reversed(entered)] == [1, 2, 3]
    assert ws.CloseHandle(port) == TRUE
    assert ws.WSACleanup() == 0


def busy(ws: FakeWinsock, calls: int = 20) -> None:
    """Run (no wait) through ``calls`` interface calls: scheduling points where
    a waiting thread could be released."""
    ev = ws.WSACreateEvent()
    for _ in range(calls):
        assert ws.WSAResetEvent(ev) == TRUE
    assert ws.WSACloseEvent(ev) == TRUE


@pytest.mark.parametrize("concurrency", [1, 2])
@pytest.mark.parametrize("blocks", [False, True], ids=["runs", "blocks-elsewhere"])
def test_the_concurrency_value_holds_back_a_second_waiter(concurrency: int, blocks: bool) -> None:
    """With a concurrency of 1, a thread the port released counts while it
    runs, until it waits on the port again (here: until it exits), so the
    second packet waits for that; with 2, the second waiter gets it at once.
    A released thread blocked in another wait (Sleep) does not count: the
    second waiter gets its packet meanwhile (Microsoft, "I/O Completion
    Ports": a thread that "enters a wait state for other reasons")."""
    ws = fake()
    port = ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, concurrency)
    times: list[str] = []

    def worker(_: object) -> int:
        ok, _n, key, _ov = ws.GetQueuedCompletionStatus(port, INFINITE)
        assert ok == TRUE
        times.append("got")
        if blocks:
            ws.Sleep(1000)  # busy with its packet, blocked elsewhere
        else:
            busy(ws)
        times.append("done")
        return 0

    threads = [spawn(ws, worker) for _ in range(2)]
    ws.Sleep(100)
    assert ws.PostQueuedCompletionStatus(port, 0, 1, None) == TRUE
    assert ws.PostQueuedCompletionStatus(port, 0, 2, None) == TRUE
    join(ws, threads)
    if concurrency == 1 and not blocks:
        assert times == ["got", "done", "got", "done"]
    else:
        assert times == ["got", "got", "done", "done"]
    assert ws.CloseHandle(port) == TRUE
    assert ws.WSACleanup() == 0


def test_closing_the_port_releases_every_waiting_thread() -> None:
    ws = fake()
    port = ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, 0)
    results: list[tuple[int, object, int]] = []

    def worker(_: object) -> int:
        ok, _n, _k, ov = ws.GetQueuedCompletionStatus(port, INFINITE)
        results.append((ok, ov, ws.GetLastError()))
        return 0

    threads = [spawn(ws, worker) for _ in range(2)]
    ws.Sleep(100)
    assert ws.CloseHandle(port) == TRUE
    join(ws, threads)
    assert results == [(FALSE, None, ERROR_ABANDONED_WAIT_0)] * 2
    assert ws.WSACleanup() == 0


@pytest.mark.parametrize("with_event", [False, True])
def test_io_of_an_exited_thread_on_a_port(with_event: bool) -> None:
    """afd.c test_async_thread_termination: on a socket with a port, an
    OVERLAPPED without an event survives the exit of the thread that posted
    it; with an event it is cancelled."""
    h = harness()
    ws = h.ws
    assert isinstance(ws, FakeWinsock)
    a, port = connection(h, 5)
    ov = h.overlapped(with_event=with_event)

    def poster(_: object) -> int:
        pend(h, a.sock, ov)
        return 0

    join(ws, [spawn(ws, poster)])
    a.peer.send(b"late")
    ok, n, key, got = ws.GetQueuedCompletionStatus(port, 5000)
    assert (key, got) == (5, ov)
    if with_event:
        assert (ok, n, ws.GetLastError()) == (FALSE, 0, ERROR_OPERATION_ABORTED)
    else:
        assert (ok, n) == (TRUE, 4)
    h.finish()


def test_cancelio_cancels_only_the_calling_threads_operations() -> None:
    h = harness()
    ws = h.ws
    assert isinstance(ws, FakeWinsock)
    a, port = connection(h, 5)
    mine, theirs = WSAOVERLAPPED(), WSAOVERLAPPED()
    pend(h, a.sock, mine)

    def other(_: object) -> int:
        pend(h, a.sock, theirs)
        ok, _n, _k, ov = ws.GetQueuedCompletionStatus(port, INFINITE)
        assert (ok, ov) == (TRUE, theirs)
        return 0

    t = spawn(ws, other)
    ws.Sleep(100)
    assert ws.CancelIo(a.sock) == TRUE
    ok, _n, _k, ov = ws.GetQueuedCompletionStatus(port, 5000)
    assert (ok, ov, ws.GetLastError()) == (FALSE, mine, ERROR_OPERATION_ABORTED)
    a.peer.send(b"data")
    join(ws, [t])
    h.finish()


def test_a_dequeued_packet_reaps_its_operation() -> None:
    """Taking the packet is the program's notification: the operation is reaped
    (its OVERLAPPED no longer in the fake's table), as WSAGetOverlappedResult or
    a completion routine reaps it without a port."""
    h = harness()
    ws = h.ws
    assert isinstance(ws, FakeWinsock)
    a, port = connection(h, 1)
    ov = WSAOVERLAPPED()
    pend(h, a.sock, ov)
    a.peer.send(b"r")
    assert ws.GetQueuedCompletionStatus(port, 5000)[3] is ov
    assert ctypes.addressof(ov) not in ws._ops.by_ov
    h.finish()


def test_a_thread_whose_wait_timed_out_still_counts() -> None:
    """A thread that called GetQueuedCompletionStatus on the port and timed out
    runs again associated with the port: with a concurrency of 1 a waiting
    worker gets no packet while it runs (the running thread that waits again
    takes it itself)."""
    ws = fake()
    port = ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, 1)
    got: list[int] = []

    def worker(_: object) -> int:
        ok, _n, key, _ov = ws.GetQueuedCompletionStatus(port, INFINITE)
        got.append(ws.now_ns)
        return 0

    t = spawn(ws, worker)
    ws.Sleep(100)  # the worker waits
    assert ws.GetQueuedCompletionStatus(port, 0)[0] == FALSE  # main: timed out, now counted
    assert ws.PostQueuedCompletionStatus(port, 0, 1, None) == TRUE
    busy(ws)  # main runs (a Sleep would be a wait: then it would not count)
    assert got == []
    # Main waits on the port again: it is now the most recent waiter, and takes the packet (LIFO).
    assert ws.GetQueuedCompletionStatus(port, 0)[0::2] == (TRUE, 1)
    assert ws.CloseHandle(port) == TRUE  # releases the worker (ERROR_ABANDONED_WAIT_0)
    join(ws, [t])
    assert len(got) == 1
    assert ws.WSACleanup() == 0
