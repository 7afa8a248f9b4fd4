"""Threads, waits and completion ports: behaviours mined from Wine's tests that
run on Windows (kernel32 sync.c and thread.c, ntdll om.c, ws2_32 afd.c) and
Microsoft's pages, one body for every backend.

Sources, per test: Microsoft's CloseHandle ("closing a thread handle does not
terminate the associated thread"), GetExitCodeThread (the exit code is a
DWORD; a thread that returns STILL_ACTIVE (259) is indistinguishable from a
running one), WaitForMultipleObjects (bWaitAll with the same object twice:
ERROR_INVALID_PARAMETER, ntdll's STATUS_INVALID_PARAMETER_MIX; every handle
is referenced before anything is waited for), the object-type checks
(STATUS_OBJECT_TYPE_MISMATCH is ERROR_INVALID_HANDLE), "I/O Completion Ports"
(the concurrency value: no waiter is released while as many threads as the
value run after their packets; a thread that enters another wait stops
counting), QueueUserAPC ("the thread handles all pending APCs in FIFO order"
once alertable), afd.c test_async_thread_termination (I/O on a socket with a
completion port and an OVERLAPPED without an event outlives its thread; with
an event it is cancelled), CreateThread (a new thread's last error is 0),
critical sections (OwningThread and RecursionCount, sync.c test_crit_section).
"""

from __future__ import annotations

from typing import Any

import pytest

from fakewinsock import CRITICAL_SECTION, WSAOVERLAPPED
from fakewinsock.constants import (
    ERROR_CONNECTION_ABORTED,
    ERROR_INVALID_HANDLE,
    ERROR_INVALID_PARAMETER,
    ERROR_OPERATION_ABORTED,
    FALSE,
    SOCKET_ERROR,
    STATUS_CONNECTION_ABORTED,
    STILL_ACTIVE,
    TRUE,
    WAIT_FAILED,
    WAIT_IO_COMPLETION,
    WAIT_OBJECT_0,
    WAIT_TIMEOUT,
    WSA_INVALID_HANDLE,
    WSA_INVALID_PARAMETER,
    WSA_IO_PENDING,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_FAILED,
)

from ._harness import WAIT_MS, Accepted, Harness

_SPIN_LIMIT = 2_000_000  # calls: a spinning thread gives up after this many (a hang otherwise)


def start(h: Harness, routine: Any, param: Any = None) -> int:
    hThread, tid = h.ws.CreateThread(None, 0, routine, param, 0)
    assert hThread != 0 and tid != 0, h.ws.GetLastError()
    return hThread


def join(h: Harness, hThread: int) -> int:
    assert h.ws.WaitForSingleObject(hThread, WAIT_MS * 4) == WAIT_OBJECT_0
    ok, code = h.ws.GetExitCodeThread(hThread)
    assert ok == TRUE
    assert h.ws.CloseHandle(hThread) == TRUE
    return code


# -- thread handles ---------------------------------------------------------------


def test_closing_a_running_threads_handle_leaves_it_running(h: Harness) -> None:
    """CloseHandle on the handle of a thread that still runs succeeds and does
    not end the thread (Microsoft's CloseHandle and TerminateThread remarks):
    it goes on and signals an event afterwards; the handle is gone."""
    go, done = h.event(), h.event()

    def routine(_: Any) -> int:
        assert h.ws.WaitForSingleObject(go, WAIT_MS) == WAIT_OBJECT_0
        assert h.ws.WSASetEvent(done) == TRUE
        return 0

    hThread = start(h, routine)
    assert h.ws.CloseHandle(hThread) == TRUE
    assert h.ws.GetExitCodeThread(hThread) == (FALSE, 0)
    assert h.ws.GetLastError() == ERROR_INVALID_HANDLE
    assert h.ws.WSASetEvent(go) == TRUE
    assert h.ws.WaitForSingleObject(done, WAIT_MS) == WAIT_OBJECT_0


def test_exit_code_is_a_dword_and_still_active_is_a_possible_one(h: Harness) -> None:
    """The exit code is the DWORD the thread procedure returns: -1 reads as
    0xFFFFFFFF; a thread that returns STILL_ACTIVE (259) has ended (its handle
    is signalled) yet GetExitCodeThread gives 259 (Microsoft's GetExitCodeThread
    remarks: why a program must not test STILL_ACTIVE alone)."""
    assert join(h, start(h, lambda _: -1)) == 0xFFFFFFFF
    ended = start(h, lambda _: STILL_ACTIVE)
    assert h.ws.WaitForSingleObject(ended, WAIT_MS) == WAIT_OBJECT_0
    assert h.ws.GetExitCodeThread(ended) == (TRUE, STILL_ACTIVE)
    assert h.ws.CloseHandle(ended) == TRUE


def test_a_new_thread_starts_with_last_error_zero(h: Harness) -> None:
    """A thread's last error starts at 0, whatever its creator's is (the TEB of
    a new thread is zeroed; CreateThread leaves the creator's)."""
    h.ws.SetLastError(1234)
    seen: list[int] = []

    def routine(_: Any) -> int:
        seen.append(h.ws.GetLastError())
        return 0

    hThread = start(h, routine)
    assert h.ws.GetLastError() == 1234
    assert join(h, hThread) == 0
    assert seen == [0]


def test_calls_on_the_wrong_kind_of_handle_fail_with_invalid_handle(h: Harness) -> None:
    """A handle of another object type: the kernel's type check fails
    (STATUS_OBJECT_TYPE_MISMATCH, ERROR_INVALID_HANDLE): a thread call on an
    event, an event call on a thread, a port call on a thread."""
    ev = h.event()
    go = h.event()
    hThread = start(h, lambda _: 0 if h.ws.WaitForSingleObject(go, WAIT_MS) == WAIT_OBJECT_0 else 1)
    h.assert_not_a_thread(ev)
    h.assert_not_an_event(hThread)
    h.assert_not_a_port(hThread)
    assert h.ws.WSASetEvent(go) == TRUE
    assert join(h, hThread) == 0


# -- waits --------------------------------------------------------------------------


@pytest.mark.wine_divergence("Wine 8.0 waits for all of a list that names one event twice (WAIT_TIMEOUT here); "
                              "Windows' NtWaitForMultipleObjects fails a WaitAll naming an object twice with "
                              "STATUS_INVALID_PARAMETER_MIX (ERROR_INVALID_PARAMETER)")
def test_wait_all_on_the_same_object_twice_is_invalid(h: Harness) -> None:
    """Waiting for all of a list that names one object twice fails at once with
    ERROR_INVALID_PARAMETER (the NT kernel's NtWaitForMultipleObjects checks a
    WaitAll list for an object named twice: STATUS_INVALID_PARAMETER_MIX;
    Microsoft's WaitForMultipleObjects: the array "may not contain multiple
    copies of the same handle"), also when the object is signalled;
    WSAWaitForMultipleEvents likewise.  Waiting for any of such a list is fine
    and gives the lowest index."""
    a, b = h.event(), h.event()
    assert h.ws.WSASetEvent(b) == TRUE
    for wait_all in (TRUE, FALSE):
        h.ws.SetLastError(0)
        rc = h.ws.WaitForMultipleObjects(3, [a, b, b], wait_all, 0)
        if wait_all:
            assert (rc, h.ws.GetLastError()) == (WAIT_FAILED, ERROR_INVALID_PARAMETER)
        else:
            assert (rc, h.ws.GetLastError()) == (WAIT_OBJECT_0 + 1, 0)
    assert h.ws.WaitForMultipleObjects(2, [b, b], TRUE, 0) == WAIT_FAILED
    assert h.ws.GetLastError() == ERROR_INVALID_PARAMETER
    h.ws.WSASetLastError(0)
    assert h.ws.WSAWaitForMultipleEvents(2, [b, b], TRUE, 0, FALSE) == WSA_WAIT_FAILED
    assert h.ws.WSAGetLastError() == WSA_INVALID_PARAMETER
    assert h.ws.WSAWaitForMultipleEvents(2, [b, b], FALSE, 0, FALSE) == WSA_WAIT_EVENT_0


def test_an_invalid_handle_fails_the_wait_even_after_a_signalled_one(h: Harness) -> None:
    """Every handle of the list is looked up before anything is waited for: a
    signalled event first and a handle that names nothing after it fail the
    whole wait (WAIT_FAILED, ERROR_INVALID_HANDLE), for any and for all."""
    ev = h.event()
    assert h.ws.WSASetEvent(ev) == TRUE
    bogus = 0xDEADBEE0
    for wait_all in (FALSE, TRUE):
        h.ws.SetLastError(0)
        assert h.ws.WaitForMultipleObjects(2, [ev, bogus], wait_all, 0) == WAIT_FAILED
        assert h.ws.GetLastError() == ERROR_INVALID_HANDLE
        h.ws.WSASetLastError(0)
        assert h.ws.WSAWaitForMultipleEvents(2, [ev, bogus], wait_all, 0, FALSE) == WSA_WAIT_FAILED
        assert h.ws.WSAGetLastError() == WSA_INVALID_HANDLE


def test_one_alertable_wait_runs_every_queued_routine(h: Harness) -> None:
    """Once the thread is alertable it runs all its queued completion routines,
    in the order they were queued, then the wait returns WAIT_IO_COMPLETION
    (Microsoft's QueueUserAPC: "the thread handles all pending APCs in FIFO
    order"); the next alertable wait finds none."""
    conns = [h.accept(), h.accept()]
    ran: list[int] = []
    keep: list[WSAOVERLAPPED] = []

    def routine(dwError: int, cb: int, ov: WSAOVERLAPPED, flags: int) -> None:
        ran.append(keep.index(ov))

    for a in conns:
        ov = WSAOVERLAPPED()
        keep.append(ov)
        rc, _, _ = h.recv(a.sock, ov, 64, routine)
        assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    conns[1].peer.send(b"second")
    h.ws.Sleep(300)  # not alertable: the routine waits in the queue
    conns[0].peer.send(b"first")
    h.ws.Sleep(300)
    assert ran == []
    assert h.ws.SleepEx(0, TRUE) == WAIT_IO_COMPLETION
    assert ran == [1, 0]
    assert h.ws.SleepEx(0, TRUE) == 0


# -- completion ports and threads -------------------------------------------------


def _busy_until_ended(h: Harness, hThread: int) -> int:
    """Run without waiting until the thread has ended: interface calls, and waits
    with a zero timeout, which never block (a poll is no wait state on Windows:
    KeWaitForSingleObject returns STATUS_TIMEOUT before the thread would wait;
    Sleep(0) only yields).  The number of calls made."""
    for i in range(_SPIN_LIMIT):
        if i % 3 == 1 and h.ws.WaitForSingleObject(hThread, 0) == WAIT_OBJECT_0:
            return i
        if i % 3 == 2:
            h.ws.Sleep(0)
        if h.ws.GetExitCodeThread(hThread) != (TRUE, STILL_ACTIVE):
            return i
    raise AssertionError("the other thread never ended")


@pytest.mark.wine_divergence("Wine 8.0 ignores a port's concurrency value (server/completion.c's FIXME: the 'max "
                              "concurrent active threads' parameter is not used): the waiter gets the packet; Windows "
                              "holds it back while the thread the port released runs")
def test_concurrency_value_holds_back_a_waiter_while_a_released_thread_runs(h: Harness) -> None:
    """A port with concurrency value 1: the main thread takes a packet and goes
    on running (no wait); another thread's GetQueuedCompletionStatus is not
    released although a second packet is queued, and times out ("I/O
    Completion Ports": the concurrency value).  The packet is still there."""
    port = h.ws.CreateIoCompletionPort(-1 & 0xFFFFFFFFFFFFFFFF, 0, 0, 1)
    assert port != 0
    h.ports.append(port)
    for key in (1, 2):
        assert h.ws.PostQueuedCompletionStatus(port, 0, key, None) == TRUE
    assert h.ws.GetQueuedCompletionStatus(port, 0)[0:3] == (TRUE, 0, 1)
    got: list[tuple[int, int, int]] = []

    def worker(_: Any) -> int:
        ok, _n, key, _ov = h.ws.GetQueuedCompletionStatus(port, 1)
        got.append((ok, key, h.ws.GetLastError()))
        return 0

    hThread = start(h, worker)
    _busy_until_ended(h, hThread)
    assert h.ws.CloseHandle(hThread) == TRUE
    assert got == [(FALSE, 0, WAIT_TIMEOUT)]
    assert h.ws.GetQueuedCompletionStatus(port, 0)[0:3] == (TRUE, 0, 2)


def test_a_released_thread_that_waits_elsewhere_lets_a_waiter_go(h: Harness) -> None:
    """The same port, but the main thread, after its packet, waits for the other
    thread (WaitForSingleObject): a thread in another wait does not count
    against the concurrency value, so the waiter gets the second packet."""
    port = h.ws.CreateIoCompletionPort(-1 & 0xFFFFFFFFFFFFFFFF, 0, 0, 1)
    assert port != 0
    h.ports.append(port)
    for key in (1, 2):
        assert h.ws.PostQueuedCompletionStatus(port, 0, key, None) == TRUE
    assert h.ws.GetQueuedCompletionStatus(port, 0)[0:3] == (TRUE, 0, 1)
    got: list[tuple[int, int]] = []

    def worker(_: Any) -> int:
        ok, _n, key, _ov = h.ws.GetQueuedCompletionStatus(port, WAIT_MS)
        got.append((ok, key))
        return 0

    assert join(h, start(h, worker)) == 0
    assert got == [(TRUE, 2)]


def _receive_left_by_an_exited_thread(h: Harness, key: int) -> tuple[Accepted, int, WSAOVERLAPPED, list[bytearray]]:
    """A connection whose socket has a port (``key``) and a WSARecv with no event
    posted by a thread that then exited; no packet yet.  Returns (the
    connection, the port, the OVERLAPPED, [the receive buffer])."""
    a = h.accept()
    port = h.port()
    assert h.ws.CreateIoCompletionPort(a.sock, port, key, 0) == port
    ov = h.overlapped(with_event=False)
    bufs: list[bytearray] = []

    def poster(_: Any) -> int:
        rc, _n, buf = h.recv(a.sock, ov, 64)
        bufs.append(buf)
        return 0 if rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING else 1

    assert join(h, start(h, poster)) == 0
    ok, _n, _k, got_ov = h.ws.GetQueuedCompletionStatus(port, 200)
    assert (ok, got_ov, h.ws.GetLastError()) == (FALSE, None, WAIT_TIMEOUT)
    return a, port, ov, bufs


def test_port_io_without_an_event_outlives_its_thread(h: Harness) -> None:
    """afd.c test_async_thread_termination: a receive posted by a thread that
    then exits, on a socket associated with a completion port, with an
    OVERLAPPED without an event, is not cancelled: it completes later with the
    peer's data and its packet carries the key."""
    a, port, ov, bufs = _receive_left_by_an_exited_thread(h, 77)
    a.peer.send(b"late")
    ok, n, key, got_ov = h.ws.GetQueuedCompletionStatus(port, WAIT_MS)
    assert (ok, key, got_ov) == (TRUE, 77, ov)
    assert 1 <= n <= 4 and bytes(bufs[0][:n]) == b"late"[:n]


@pytest.mark.wine_divergence("Wine 8.0 ends a receive cut by closesocket with STATUS_HANDLES_CLOSED (676), "
                              "Windows with STATUS_CONNECTION_ABORTED (1236): todo_wine in sock.c "
                              "iocp_async_read_thread_closesocket")
def test_closing_the_socket_ends_a_receive_its_exited_thread_left(h: Harness) -> None:
    """The receive an exited thread left pending (no event, a port) is ended by
    closesocket like any other: one packet, FALSE, ERROR_CONNECTION_ABORTED,
    0 bytes, the key, Internal STATUS_CONNECTION_ABORTED, InternalHigh 0
    (sock.c iocp_async_read_thread_closesocket)."""
    a, port, ov, _ = _receive_left_by_an_exited_thread(h, 79)
    assert h.close(a.sock) == 0
    assert h.ws.GetQueuedCompletionStatus(port, WAIT_MS) == (FALSE, 0, 79, ov)
    assert h.ws.GetLastError() == ERROR_CONNECTION_ABORTED
    assert (ov.Internal, ov.InternalHigh) == (STATUS_CONNECTION_ABORTED, 0)
    ok, _n, _k, got_ov = h.ws.GetQueuedCompletionStatus(port, 200)
    assert (ok, got_ov) == (FALSE, None)


def test_port_io_with_an_event_is_cancelled_when_its_thread_exits(h: Harness) -> None:
    """The same, with an event in the OVERLAPPED: the receive is cancelled when
    its thread exits; the port gets a failed packet (ERROR_OPERATION_ABORTED)
    and the event is signalled (afd.c test_async_thread_termination)."""
    a = h.accept()
    port = h.port()
    assert h.ws.CreateIoCompletionPort(a.sock, port, 78, 0) == port
    ov = h.overlapped()

    def poster(_: Any) -> int:
        rc, _n, _buf = h.recv(a.sock, ov, 64)
        return 0 if rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING else 1

    assert join(h, start(h, poster)) == 0
    h.ws.SetLastError(0)
    assert h.ws.GetQueuedCompletionStatus(port, WAIT_MS) == (FALSE, 0, 78, ov)
    assert h.ws.GetLastError() == ERROR_OPERATION_ABORTED
    assert h.is_signalled(ov.hEvent)


# -- critical sections --------------------------------------------------------------


def test_critical_section_fields_show_the_owner_and_its_recursion(h: Harness) -> None:
    """OwningThread is the owner's thread id and RecursionCount how often it
    entered (EnterCriticalSection and TryEnterCriticalSection alike); both are
    0 again once it has left as often (sync.c test_crit_section reads
    RecursionCount).  Another thread sees the same fields while it is owned."""
    cs = CRITICAL_SECTION()
    h.ws.InitializeCriticalSection(cs)
    me = h.ws.GetCurrentThreadId()
    assert (cs.OwningThread or 0, cs.RecursionCount) == (0, 0)
    h.ws.EnterCriticalSection(cs)
    assert (cs.OwningThread, cs.RecursionCount) == (me, 1)
    assert h.ws.TryEnterCriticalSection(cs) == TRUE
    h.ws.EnterCriticalSection(cs)
    assert (cs.OwningThread, cs.RecursionCount) == (me, 3)
    seen: list[tuple[int, int, int]] = []

    def other(_: Any) -> int:
        seen.append((h.ws.TryEnterCriticalSection(cs), cs.OwningThread, cs.RecursionCount))
        return 0

    assert join(h, start(h, other)) == 0
    assert seen == [(FALSE, me, 3)]
    h.ws.LeaveCriticalSection(cs)
    assert (cs.OwningThread, cs.RecursionCount) == (me, 2)
    h.ws.LeaveCriticalSection(cs)
    h.ws.LeaveCriticalSection(cs)
    assert (cs.OwningThread or 0, cs.RecursionCount) == (0, 0)
    h.ws.DeleteCriticalSection(cs)


# -- more of a thread's association with a port -------------------------------------


def _port_with_two_packets(h: Harness) -> int:
    """A port with concurrency value 1 and two posted packets (keys 1, 2)."""
    port = h.ws.CreateIoCompletionPort(-1 & 0xFFFFFFFFFFFFFFFF, 0, 0, 1)
    assert port != 0
    h.ports.append(port)
    for key in (1, 2):
        assert h.ws.PostQueuedCompletionStatus(port, 0, key, None) == TRUE
    return port


def test_a_thread_that_exits_no_longer_counts_against_the_concurrency_value(h: Harness) -> None:
    """A thread takes a packet from a port with concurrency value 1 and exits:
    its association with the port ends ("I/O Completion Ports": a thread is
    associated with the port "until it exits, specifies a different I/O
    completion port, or frees the I/O completion port"), so the next packet
    goes to the next caller at once."""
    port = _port_with_two_packets(h)
    got: list[int] = []

    def worker(_: Any) -> int:
        ok, _n, key, _ov = h.ws.GetQueuedCompletionStatus(port, WAIT_MS)
        got.append(key if ok else -1)
        return 0

    assert join(h, start(h, worker)) == 0
    assert got == [1]
    assert h.ws.GetQueuedCompletionStatus(port, 0)[0:3] == (TRUE, 0, 2)


def test_waiting_on_another_port_ends_the_association_with_the_first(h: Harness) -> None:
    """The main thread takes a packet from a port with concurrency value 1, then
    polls another port (GetQueuedCompletionStatus with a zero timeout: no wait,
    but it specifies a different port), and goes on running: it no longer
    counts for the first port, so a thread waiting there gets the second
    packet ("I/O Completion Ports", as above)."""
    port = _port_with_two_packets(h)
    other = h.port()
    assert h.ws.GetQueuedCompletionStatus(port, 0)[0:3] == (TRUE, 0, 1)
    ok, _n, _key, ov = h.ws.GetQueuedCompletionStatus(other, 0)
    assert (ok, ov, h.ws.GetLastError()) == (FALSE, None, WAIT_TIMEOUT)
    got: list[tuple[int, int]] = []

    def worker(_: Any) -> int:
        ok, _n, key, _ov = h.ws.GetQueuedCompletionStatus(port, 100)  # (the packet is there: no wait)
        got.append((ok, key))
        return 0

    hThread = start(h, worker)
    _busy_until_ended(h, hThread)
    assert h.ws.CloseHandle(hThread) == TRUE
    assert got == [(TRUE, 2)]


@pytest.mark.parametrize("ex", [False, True], ids=["GetQueuedCompletionStatus", "Ex-not-alertable"])
def test_a_port_wait_that_is_not_alertable_leaves_completion_routines_queued(h: Harness, ex: bool) -> None:
    """GetQueuedCompletionStatus is never alertable (nor is
    GetQueuedCompletionStatusEx with fAlertable FALSE): a completion routine
    queued to the waiting thread does not run and does not end the wait, which
    times out; the next alertable wait runs it (Microsoft's
    GetQueuedCompletionStatusEx: fAlertable; "Asynchronous Procedure Calls")."""
    a = h.accept()
    port = h.port()
    ran: list[int] = []

    def routine(dwError: int, cb: int, ov: WSAOVERLAPPED, flags: int) -> None:
        ran.append(cb)

    ov = WSAOVERLAPPED()
    rc, _, _ = h.recv(a.sock, ov, 64, routine)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    a.peer.send(b"ping")
    h.ws.Sleep(300)  # the receive completes; its routine is queued
    h.ws.SetLastError(0)
    if ex:
        assert h.ws.GetQueuedCompletionStatusEx(port, 4, 300, FALSE) == (FALSE, [])
    else:
        assert h.ws.GetQueuedCompletionStatus(port, 300)[0::3] == (FALSE, None)
    assert h.ws.GetLastError() == WAIT_TIMEOUT
    assert ran == []
    assert h.ws.SleepEx(0, TRUE) == WAIT_IO_COMPLETION
    assert len(ran) == 1 and 1 <= ran[0] <= 4
