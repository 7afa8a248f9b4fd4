"""The fake's kernel and operations (``fakewinsock._kernel``, ``_ops``,
``_sockets``, ``_threads``, ``_iocp``): what the mutation run (issue 18,
``tools/mutation.sh``) found no test asserting.

Each test states what a program or its author relies on: an alertable wait
ends as soon as a completion routine is queued, ``ws.stats`` counts every
operation exactly once by how it ended, the trace says which thread a
completion routine was queued to, and a usage error explains itself in full.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from fakewinsock import WSABUF, WSAOVERLAPPED, FakePeer, FakeWinsock, WinsockUsageError
from fakewinsock.constants import (
    FALSE,
    FILE_SKIP_COMPLETION_PORT_ON_SUCCESS,
    INFINITE,
    SOCKET_ERROR,
    TRUE,
    WAIT_IO_COMPLETION,
    WAIT_OBJECT_0,
    WSA_IO_PENDING,
    WSA_OPERATION_ABORTED,
    WSAENOTCONN,
)
from tests.conformance._harness import Harness
from tests.fake_server import quiet
from tests.test_fake_net_mutation import reset_before_accept_outcome
from tests.test_fake_net_mutation_more import ByLabel

MS = 1_000_000


def harness(**config: Any) -> Harness:
    h = Harness(FakeWinsock(seed=0, config=quiet(**config)))
    h.start()
    return h


def fake(h: Harness) -> FakeWinsock:
    assert isinstance(h.ws, FakeWinsock)
    return h.ws


# ---------------------------------------------------------------- alertable waits


@pytest.mark.parametrize("timeout", [INFINITE, 1000])
def test_an_alertable_sleep_returns_as_soon_as_a_routine_is_queued(timeout: int) -> None:
    """No program threads: SleepEx(timeout, TRUE) with a receive pending whose
    completion routine is queued 2 ms later returns WAIT_IO_COMPLETION then,
    having run the routine (not at its timeout, and not a deadlock when the
    timeout is infinite)."""
    h = harness()
    ws = fake(h)
    a = h.accept()
    got: list[tuple[int, int]] = []
    ov = WSAOVERLAPPED()
    rc, _, _ = ws.WSARecv(a.sock, [WSABUF(16, bytearray(16))], 1, 0, ov,
                          lambda err, n, o, flags: got.append((err, n)))
    assert (rc, ws.WSAGetLastError()) == (SOCKET_ERROR, WSA_IO_PENDING)
    start = ws.now_ns
    peer = a.peer
    assert isinstance(peer, FakePeer)
    ws.call_at(start + 2 * MS, lambda _: peer.send_nowait(b"abc"))
    assert ws.SleepEx(timeout, TRUE) == WAIT_IO_COMPLETION
    assert got == [(0, 3)]
    assert ws.now_ns - start < 3 * MS
    h.finish()


@pytest.mark.parametrize("delay", [1, 5 * MS])
def test_an_operation_completes_exactly_completion_delay_after_its_data_arrives(delay: int) -> None:
    """FakeConfig.completion_delay is the time between an operation's
    condition holding (here: the data is in) and its completion: a receive
    pending when the data arrives completes that much later, never sooner,
    even when that is one nanosecond."""
    h = harness(completion_delay=(delay, delay))
    ws = fake(h)
    a = h.accept()
    ov = h.overlapped()
    rc, _, _ = h.recv(a.sock, ov, 16)
    assert (rc, ws.WSAGetLastError()) == (SOCKET_ERROR, WSA_IO_PENDING)
    peer = a.peer
    assert isinstance(peer, FakePeer)
    peer.send_nowait(b"x")
    assert h.complete(a.sock, ov)[:2] == (TRUE, 1)
    recv = next(r for r in ws.trace if r.call == "WSARecv")
    arrived = [r.time for r in ws.trace if r.what == "net" and r.call == "arrive"]
    completed = [r.time for r in ws.trace if r.op == recv.op and r.what == "completed"]
    assert len(arrived) >= 1 and len(completed) == 1
    assert completed[0] - arrived[-1] == delay
    h.finish()


def test_a_chooser_scripts_a_receive_by_the_labels_of_its_questions() -> None:
    """The chooser's questions are named (the Chooser docstring's
    ``"immediate:WSARecv"``), so a chooser can script them: answering "not at
    once" and "not partial" by label, a receive of data already there pends,
    then completes with all of it."""
    chooser = ByLabel({"immediate:WSARecv": 999_999, "partial": 999_999})
    h = Harness(FakeWinsock(chooser=chooser, config=quiet(immediate=0.5, partial_recv=0.5)))
    h.start()
    ws = fake(h)
    a = h.accept()
    a.peer.send(b"abcdef")
    h.settle()
    ov = h.overlapped()
    rc, _, buf = h.recv(a.sock, ov, 16)
    assert (rc, ws.WSAGetLastError()) == (SOCKET_ERROR, WSA_IO_PENDING)
    assert h.complete(a.sock, ov)[:2] == (TRUE, 6) and bytes(buf[:6]) == b"abcdef"
    assert {"immediate:WSARecv", "partial"} <= {label for label, _, _ in chooser.asked}
    h.finish()


# ---------------------------------------------------------------- the counts in ws.stats


def test_stats_count_each_operation_once_by_how_it_ended() -> None:
    """One receive completes at once, one pends and completes, one call fails
    (WSARecv on a socket not connected), one completion
    routine runs, one connection is reset: ws.stats says exactly that."""
    h = harness(immediate=1.0)  # what can complete at once does
    ws = fake(h)
    a = h.accept()
    base = {k: ws.stats[k] for k in ("immediate", "pending", "failed", "completed", "routines", "resets")}
    assert base == {"immediate": 0, "pending": 1, "failed": 0, "completed": 1, "routines": 0, "resets": 0}
    # (the accept: it pended, as no client had come yet, and completed)
    a.peer.send(b"now")
    h.settle()
    ov = h.overlapped()
    rc, n, _ = h.recv(a.sock, ov, 16)
    assert (rc, n) == (0, 3)
    assert ws.WSAGetOverlappedResult(a.sock, ov, FALSE)[:2] == (TRUE, 3)
    done: list[int] = []
    rc, _, _ = ws.WSARecv(a.sock, [WSABUF(16, bytearray(16))], 1, 0, WSAOVERLAPPED(),
                          lambda err, n, o, flags: done.append(err))  # nothing to receive yet: it pends
    assert (rc, ws.WSAGetLastError()) == (SOCKET_ERROR, WSA_IO_PENDING)
    a.peer.send(b"later")
    assert ws.SleepEx(1000, TRUE) == WAIT_IO_COMPLETION and done == [0]
    rc, _, _ = ws.WSARecv(h.socket(), [WSABUF(16, bytearray(16))], 1, 0, WSAOVERLAPPED(), None)
    assert (rc, ws.WSAGetLastError()) == (SOCKET_ERROR, WSAENOTCONN)
    a.peer.reset()
    h.settle()
    got = {k: ws.stats[k] for k in base}
    assert got == {"immediate": 1, "pending": 2, "failed": 1, "completed": 3, "routines": 1, "resets": 1}
    h.finish()


# ---------------------------------------------------------------- what the trace says


def test_the_trace_names_the_thread_a_completion_routine_is_queued_to() -> None:
    """A worker thread posts a receive with a completion routine, then waits
    (not alertably) until the main thread has cancelled it with CancelIoEx:
    the routine is queued while the main thread runs, to the worker's thread
    (the one that posted it, as Windows queues the APC), and runs there in
    the worker's next alertable wait.  The trace records both on the worker."""
    h = harness()
    ws = fake(h)
    a = h.accept()
    posted, go = h.event(), h.event()
    ran: list[int] = []

    def worker(param: Any) -> int:
        rc, _, _ = ws.WSARecv(a.sock, [WSABUF(16, bytearray(16))], 1, 0, WSAOVERLAPPED(),
                              lambda err, n, o, flags: ran.append(err))
        assert rc == SOCKET_ERROR and ws.WSAGetLastError() == WSA_IO_PENDING
        assert ws.WSASetEvent(posted) == TRUE
        assert ws.WaitForSingleObject(go, INFINITE) == WAIT_OBJECT_0
        return 0 if ws.SleepEx(0, TRUE) == WAIT_IO_COMPLETION else 1

    thread = ws.CreateThread(None, 0, worker, None, 0).hThread
    assert ws.WaitForSingleObject(posted, INFINITE) == WAIT_OBJECT_0
    assert ws.CancelIoEx(a.sock, None) == TRUE
    ws.run_for(0.001)  # the cancellation completes (on the main thread's watch)
    assert ran == []  # queued, not run: the worker is not in an alertable wait
    assert ws.WSASetEvent(go) == TRUE
    assert ws.WaitForSingleObject(thread, INFINITE) == WAIT_OBJECT_0
    assert ws.GetExitCodeThread(thread) == (TRUE, 0) and ran == [WSA_OPERATION_ABORTED]
    assert ws.CloseHandle(thread) == TRUE
    recv = next(r for r in ws.trace if r.call == "WSARecv")
    assert recv.thread != 1  # posted on the worker
    queued = [(r.what, r.call, r.handle, r.detail, r.thread) for r in ws.trace
              if r.op == recv.op and r.what in ("queued", "routine")]
    assert queued == [("queued", "WSARecv", a.sock, "completion routine", recv.thread),
                      ("routine", "WSARecv", a.sock, f"dwError={WSA_OPERATION_ABORTED} cb=0", recv.thread)]
    # A record about no operation (here, making the three events: the accept's and the two above) has op 0.
    assert [(r.what, r.op) for r in ws.trace if r.call == "WSACreateEvent"] == [("call", 0)] * 3
    h.finish()


def test_the_trace_records_the_event_a_completion_signals() -> None:
    """A receive notified by its event completes: the trace says the event
    was signalled for that operation (what ``signalled``, call ``event``,
    the event's handle), on the thread that posted it."""
    h = harness()
    ws = fake(h)
    a = h.accept()
    ov = h.overlapped()
    rc, _, _ = h.recv(a.sock, ov, 16)
    assert (rc, ws.WSAGetLastError()) == (SOCKET_ERROR, WSA_IO_PENDING)
    a.peer.send(b"x")
    assert h.complete(a.sock, ov)[:2] == (TRUE, 1)
    recv = next(r for r in ws.trace if r.call == "WSARecv")
    assert [(r.what, r.call, r.handle, r.thread) for r in ws.trace if r.op == recv.op and r.what == "signalled"] \
        == [("signalled", "event", ov.hEvent, recv.thread)]
    h.finish()


def test_touching_an_acceptex_output_buffer_in_flight_names_lpoutputbuffer() -> None:
    """AcceptEx's buffer is lpOutputBuffer, not a WSABUF array: the usage
    error for changing it while the accept is pending says so, in full (seen
    when the accept is cancelled: a connection would write the addresses into
    it, and what the program wrote is then overwritten anyway)."""
    h = harness()
    posted = h.post_accept()
    posted.out[0] ^= 0xFF
    assert h.ws.CancelIoEx(posted.listener, posted.ov) == TRUE
    with pytest.raises(WinsockUsageError) as info:
        h.wait(posted.ov.hEvent)
    assert re.fullmatch(r"AcceptEx op\d+ on socket 0x[0-9a-f]+: lpOutputBuffer was modified while the operation "
                        r"was in flight; on Windows the kernel reads or writes it until completion",
                        str(info.value)), str(info.value)


# ---------------------------------------------------------------- threads


def test_the_trace_says_a_routine_was_dropped_because_its_thread_exited() -> None:
    """A thread posts a receive with a completion routine and exits: Windows
    cancels the thread's I/O, and the routine can never run (afd.c).  The
    trace records the routine as dropped, on that thread, saying why."""
    h = harness()
    ws = fake(h)
    a = h.accept()
    ran: list[int] = []

    def worker(param: Any) -> int:
        rc, _, _ = ws.WSARecv(a.sock, [WSABUF(16, bytearray(16))], 1, 0, WSAOVERLAPPED(),
                              lambda err, n, o, flags: ran.append(err))
        return 0 if rc == SOCKET_ERROR and ws.WSAGetLastError() == WSA_IO_PENDING else 1

    thread = ws.CreateThread(None, 0, worker, None, 0).hThread
    assert ws.WaitForSingleObject(thread, INFINITE) == WAIT_OBJECT_0
    assert ws.GetExitCodeThread(thread) == (TRUE, 0)
    assert ws.CloseHandle(thread) == TRUE
    h.settle()
    assert ran == []
    recv = next(r for r in ws.trace if r.call == "WSARecv")
    assert [(r.what, r.call, r.handle, r.detail, r.thread) for r in ws.trace
            if r.op == recv.op and r.what == "dropped"] \
        == [("dropped", "WSARecv", a.sock, "completion routine: thread exited", recv.thread)]
    h.finish()


def test_a_new_thread_starts_with_last_error_0() -> None:
    """GetLastError in a thread that has made no call yet is 0 (a new
    thread's last error starts cleared), whatever the creating thread's is."""
    h = harness()
    ws = fake(h)
    ws.SetLastError(WSAENOTCONN)
    thread = ws.CreateThread(None, 0, lambda param: ws.GetLastError(), None, 0).hThread
    assert ws.WaitForSingleObject(thread, INFINITE) == WAIT_OBJECT_0
    assert ws.GetExitCodeThread(thread) == (TRUE, 0)
    assert ws.GetLastError() == WSAENOTCONN  # the main thread's own is its own
    assert ws.CloseHandle(thread) == TRUE
    h.finish()


def test_the_trace_says_which_accept_failed_for_a_reset_in_the_backlog() -> None:
    """The outcome of a reset in the backlog where AcceptEx fails (one of the
    three Windows gives): the trace records it on the listener, for that
    AcceptEx, naming the connection."""
    ws = FakeWinsock(chooser=ByLabel({"reset-before-accept": 2}), config=quiet())
    assert reset_before_accept_outcome(ws) == "AcceptEx fails"
    accept = next(r for r in ws.trace if r.call == "AcceptEx")
    assert [(r.what, r.call, r.handle, r.op, r.detail) for r in ws.trace if r.call == "accept-reset"] \
        == [("net", "accept-reset", accept.handle, accept.op, "conn=c1 reset before accept")]


# ---------------------------------------------------------------- usage errors in full


def test_reusing_an_overlapped_whose_packet_is_queued_says_what_windows_would_do() -> None:
    """The classic IOCP bug (an OVERLAPPED reused while its packet still waits
    in the port): the usage error says why it is one, in full."""
    h = harness(immediate=1.0)
    ws = fake(h)
    a = h.accept()
    port = h.port()
    assert ws.CreateIoCompletionPort(a.sock, port, 1, 0) == port
    a.peer.send(b"abc")
    h.settle()
    ov = WSAOVERLAPPED()
    assert ws.WSARecv(a.sock, [WSABUF(64, bytearray(64))], 1, 0, ov, None)[:2] == (0, 3)
    with pytest.raises(WinsockUsageError) as info:
        ws.WSARecv(a.sock, [WSABUF(64, bytearray(64))], 1, 0, ov, None)
    assert re.fullmatch(
        f"WSARecv on socket {a.sock:#x}: the WSAOVERLAPPED's last operation, WSARecv op\\d+ on socket {a.sock:#x}, "
        "has its completion packet still queued on a completion port; on Windows "
        "GetQueuedCompletionStatus would hand this OVERLAPPED to the code that handles the "
        "old operation \\(was an immediate success handled inline and left to the port too\\?\\)",
        str(info.value)), str(info.value)
    assert ws.GetQueuedCompletionStatus(port, 0)[3] is ov
    h.finish()


# ---------------------------------------------------------------- results and traces


def test_a_receive_into_two_buffers_fills_the_first_then_part_of_the_second() -> None:
    """WSARecv with two WSABUFs of 4 and 8 bytes, 6 bytes arrive: the first
    buffer gets 4, the second the other 2 and keeps the rest of its bytes."""
    h = harness()
    a = h.accept()
    first, second = bytearray(b"....."[:4]), bytearray(b"########")
    ov = h.overlapped()
    rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(4, first), WSABUF(8, second)], 2, 0, ov, None)
    assert (rc, h.ws.WSAGetLastError()) == (SOCKET_ERROR, WSA_IO_PENDING)
    a.peer.send(b"abcdef")
    assert h.complete(a.sock, ov) == (TRUE, 6, 0)
    assert (bytes(first), bytes(second)) == (b"abcd", b"ef######")
    h.finish()


def test_the_trace_follows_a_packet_queued_dropped_or_never_queued_by_a_closed_port() -> None:
    """A worker thread posts a receive on a socket associated with a port
    (key 7); its data comes while the main thread runs: the trace says the
    packet was queued, on the worker's thread (the op's, not the one whose
    call let the kernel run).  The port is closed with that packet still
    queued: "dropped", saying why and what.  A second receive completes after
    the close: "no packet", because the port is closed.  A record with no
    detail (closesocket) has an empty one."""
    h = harness()
    ws = fake(h)
    a = h.accept()
    port = h.ws.CreateIoCompletionPort(a.sock, 0, 7, 0)
    assert port
    posted, go = h.event(), h.event()
    ov1 = WSAOVERLAPPED()

    def worker(param: Any) -> int:
        rc, _, _ = ws.WSARecv(a.sock, [WSABUF(16, bytearray(16))], 1, 0, ov1, None)
        assert rc == SOCKET_ERROR and ws.WSAGetLastError() == WSA_IO_PENDING
        assert ws.WSASetEvent(posted) == TRUE
        return 0 if ws.WaitForSingleObject(go, INFINITE) == WAIT_OBJECT_0 else 1

    thread = ws.CreateThread(None, 0, worker, None, 0).hThread
    assert ws.WaitForSingleObject(posted, INFINITE) == WAIT_OBJECT_0
    a.peer.send(b"one")
    ws.run_for(0.001)
    first = next(r for r in ws.trace if r.call == "WSARecv")
    assert first.thread != 1
    assert [(r.what, r.handle, r.detail, r.thread) for r in ws.trace if r.op == first.op and r.what == "queued"] \
        == [("queued", port, "key=0x7", first.thread)]
    assert ws.CloseHandle(port) == TRUE
    what = f"WSARecv op{first.op} on socket {a.sock:#x} (key=0x7 bytes=3 status=0x0)"
    assert [(r.call, r.handle, r.op, r.detail) for r in ws.trace if r.what == "dropped"] == \
        [("packet", port, first.op, f"port closed: {what}")]
    ov2 = WSAOVERLAPPED()
    rc, _, _ = ws.WSARecv(a.sock, [WSABUF(16, bytearray(16))], 1, 0, ov2, None)
    assert rc == SOCKET_ERROR and ws.WSAGetLastError() == WSA_IO_PENDING
    a.peer.send(b"two")
    ws.run_for(0.001)
    second = [r for r in ws.trace if r.call == "WSARecv"][-1]
    assert [(r.what, r.handle, r.detail) for r in ws.trace if r.op == second.op and r.what == "no packet"] \
        == [("no packet", port, "port closed")]
    assert ws.WSASetEvent(go) == TRUE
    assert ws.WaitForSingleObject(thread, INFINITE) == WAIT_OBJECT_0
    assert ws.GetExitCodeThread(thread) == (TRUE, 0)
    assert ws.CloseHandle(thread) == TRUE
    assert h.close(a.sock) == 0
    closes = [(r.what, r.handle, r.detail) for r in ws.trace if r.call == "closesocket"]
    assert closes == [("call", a.sock, "")]
    h.finish()


@pytest.mark.parametrize("why", ["hEvent low bit", "FILE_SKIP_COMPLETION_PORT_ON_SUCCESS"])
def test_the_trace_says_why_a_completion_queued_no_packet(why: str) -> None:
    """A receive on a socket associated with a port queues no packet when its
    hEvent has the low bit set, or when it completes inside its call with
    FILE_SKIP_COMPLETION_PORT_ON_SUCCESS: the trace's "no packet" record on
    the port names which."""
    h = harness(immediate=1.0 if why.startswith("FILE") else 0.0)
    ws = fake(h)
    a = h.accept()
    port = ws.CreateIoCompletionPort(a.sock, 0, 9, 0)
    assert port
    ov = WSAOVERLAPPED()
    ev = h.event()
    if why.startswith("FILE"):
        assert ws.SetFileCompletionNotificationModes(a.sock, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS) == TRUE
        a.peer.send(b"x")
        h.settle()
        ov.hEvent = ev
    else:
        ov.hEvent = ev | 1
    rc, _, _ = ws.WSARecv(a.sock, [WSABUF(16, bytearray(16))], 1, 0, ov, None)
    if why.startswith("FILE"):
        assert rc == 0
    else:
        assert (rc, ws.WSAGetLastError()) == (SOCKET_ERROR, WSA_IO_PENDING)
        a.peer.send(b"x")
        assert h.wait(ev, 1000) == WAIT_OBJECT_0
    assert ws.WSAGetOverlappedResult(a.sock, ov, FALSE)[:2] == (TRUE, 1)
    recv = next(r for r in ws.trace if r.call == "WSARecv")
    assert [(r.what, r.handle, r.detail) for r in ws.trace if r.op == recv.op and "packet" in r.what] == \
        [("no packet", port, why)]
    assert ws.CloseHandle(port) == TRUE
    h.finish()


def test_operations_are_numbered_one_by_one_in_the_order_they_are_posted() -> None:
    """The trace names each operation by a number that counts up by one per
    operation posted (an AcceptEx, a WSARecv, a WSASend: n, n + 1, n + 2), so
    "op5" in a trace is the fifth operation."""
    h = harness()
    ws = fake(h)
    a = h.accept()
    ov = h.overlapped()
    rc, _, _ = h.recv(a.sock, ov, 16)
    assert (rc, ws.WSAGetLastError()) == (SOCKET_ERROR, WSA_IO_PENDING)
    assert h.send(a.sock, b"hi")[0] == TRUE
    posted = [(r.call, r.op) for r in ws.trace if r.what == "posted"]
    assert posted == [("AcceptEx", 1), ("WSARecv", 2), ("WSASend", 3)]
    assert ws.CancelIoEx(a.sock, ov) == TRUE
    h.complete(a.sock, ov)
    h.finish()
