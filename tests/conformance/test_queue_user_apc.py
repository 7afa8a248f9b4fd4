"""QueueUserAPC and GetCurrentThread (fidelity session 8): user APCs, one queue
with the thread's I/O completion routines (one body, every backend).

Sources: Microsoft's QueueUserAPC ("When a user-mode APC is queued, the thread
is not directed to call the APC function unless it is in an alertable state.
After the thread is in an alertable state, the thread handles all pending APCs
in first in, first out (FIFO) order, and the wait operation returns
WAIT_IO_COMPLETION"; "If an application queues an APC before the thread begins
running, the thread begins by calling the APC function"), "Asynchronous
Procedure Calls" (a completion routine of ReadFileEx/WriteFileEx-style I/O is a
user APC of the thread that posted it: the same queue), GetCurrentThread (the
pseudo-handle (HANDLE)-2); Wine 8.0 agrees with each check here.
"""

from __future__ import annotations

import pytest

from fakewinsock import WSAOVERLAPPED, ApcRoutine, CompletionRoutine
from fakewinsock.constants import (
    CREATE_SUSPENDED,
    CURRENT_THREAD_PSEUDO_HANDLE,
    ERROR_GEN_FAILURE,
    ERROR_INVALID_HANDLE,
    FALSE,
    INFINITE,
    MAXULONG_PTR,
    SOCKET_ERROR,
    TRUE,
    WAIT_IO_COMPLETION,
    WAIT_OBJECT_0,
    WAIT_TIMEOUT,
    WSA_IO_PENDING,
    WSA_WAIT_IO_COMPLETION,
    WSA_WAIT_TIMEOUT,
)

from ._harness import DEADBEEF_AS_INT, WAIT_MS, Harness

Log = list[tuple[str, int]]


def apc(log: Log, name: str = "apc") -> ApcRoutine:
    def fn(data: int) -> None:
        log.append((name, data))
    return fn


def queue_self(h: Harness, fn: ApcRoutine, data: int) -> None:
    assert h.ws.QueueUserAPC(fn, h.ws.GetCurrentThread(), data) != 0


def test_get_current_thread_is_the_pseudo_handle(h: Harness) -> None:
    assert h.ws.GetCurrentThread() == CURRENT_THREAD_PSEUDO_HANDLE


def test_apc_runs_only_in_an_alertable_wait(h: Harness) -> None:
    """Queued to the calling thread: a non-alertable wait leaves it queued
    (SleepEx(0, FALSE) returns 0, a non-alertable WSAWaitForMultipleEvents
    times out); SleepEx(0, TRUE) runs it once with dwData and returns
    WAIT_IO_COMPLETION; the next alertable SleepEx(0) finds nothing."""
    log: Log = []
    queue_self(h, apc(log), 7)
    assert h.ws.SleepEx(0, FALSE) == 0
    ev = h.event()
    assert h.ws.WSAWaitForMultipleEvents(1, [ev], FALSE, 20, FALSE) == WSA_WAIT_TIMEOUT
    assert log == []
    assert h.ws.SleepEx(0, TRUE) == WAIT_IO_COMPLETION
    assert log == [("apc", 7)]
    assert h.ws.SleepEx(0, TRUE) == 0
    assert log == [("apc", 7)]


def test_apcs_run_first_in_first_out_in_one_wait(h: Harness) -> None:
    """Three APCs run in the order queued, all in one alertable wait; dwData is
    a ULONG_PTR (its whole range passes)."""
    log: Log = []
    for data in (1, MAXULONG_PTR, 3):
        queue_self(h, apc(log), data)
    assert h.ws.SleepEx(WAIT_MS, TRUE) == WAIT_IO_COMPLETION
    assert log == [("apc", 1), ("apc", MAXULONG_PTR), ("apc", 3)]


def test_alertable_event_waits_run_apcs(h: Harness) -> None:
    """WSAWaitForMultipleEvents(fAlertable) returns WSA_WAIT_IO_COMPLETION and
    WaitForSingleObjectEx(bAlertable) WAIT_IO_COMPLETION after running them,
    though the event is never signalled."""
    log: Log = []
    ev = h.event()
    queue_self(h, apc(log), 1)
    assert h.ws.WSAWaitForMultipleEvents(1, [ev], FALSE, WAIT_MS, TRUE) == WSA_WAIT_IO_COMPLETION
    queue_self(h, apc(log), 2)
    assert h.ws.WaitForSingleObjectEx(ev, WAIT_MS, TRUE) == WAIT_IO_COMPLETION
    assert log == [("apc", 1), ("apc", 2)]


def test_an_apc_may_queue_another_which_runs_in_the_same_wait(h: Harness) -> None:
    """An APC that queues another: the wait runs both before it returns."""
    log: Log = []
    second = apc(log, "second")

    def first(data: int) -> None:
        log.append(("first", data))
        queue_self(h, second, data + 1)

    queue_self(h, first, 10)
    assert h.ws.SleepEx(0, TRUE) == WAIT_IO_COMPLETION
    assert log == [("first", 10), ("second", 11)]
    assert h.ws.SleepEx(0, TRUE) == 0


def _routine(log: Log) -> CompletionRoutine:
    def routine(err: int, n: int, ov: WSAOVERLAPPED, flags: int) -> None:
        log.append(("io", n))
    return routine


def test_apcs_and_completion_routines_share_one_fifo_queue(h: Harness) -> None:
    """A receive completes (its routine is queued), then an APC is queued: the
    routine runs first. An APC queued, then a receive completes: the APC runs
    first. Non-alertable Sleeps let the receives complete without running
    anything."""
    a = h.accept()
    log: Log = []
    rc, _, _ = h.recv(a.sock, h.overlapped(with_event=False), routine=_routine(log))
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    a.peer.send(b"abc")
    h.ws.Sleep(300)  # the receive completes: its routine is queued, not run
    queue_self(h, apc(log), 1)
    assert h.ws.SleepEx(WAIT_MS, TRUE) == WAIT_IO_COMPLETION
    assert [what for what, _ in log] == ["io", "apc"] and log[1] == ("apc", 1)
    n = log[0][1]
    assert 1 <= n <= 3  # (the fake may split the stream: the rest is read before part two)
    assert h.recv_all(a.sock, 3 - n) == b"abc"[n:]

    log.clear()
    rc, _, _ = h.recv(a.sock, h.overlapped(with_event=False), routine=_routine(log))
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    queue_self(h, apc(log), 2)
    a.peer.send(b"de")
    h.ws.Sleep(300)
    assert log == []
    assert h.ws.SleepEx(WAIT_MS, TRUE) == WAIT_IO_COMPLETION
    assert [what for what, _ in log] == ["apc", "io"] and log[0] == ("apc", 2) and 1 <= log[1][1] <= 2


def test_apc_queued_to_a_suspended_thread_runs_before_its_procedure(h: Harness) -> None:
    """CreateThread(CREATE_SUSPENDED), QueueUserAPC, ResumeThread: the thread
    begins with the APC, on that thread, then its procedure."""
    log: list[tuple[str, int]] = []

    def proc(param: object) -> int:
        log.append(("proc", h.ws.GetCurrentThreadId()))
        return 0

    def fn(data: int) -> None:
        log.append(("apc", h.ws.GetCurrentThreadId()))

    hThread, tid = h.ws.CreateThread(None, 0, proc, None, CREATE_SUSPENDED)
    assert hThread != 0
    assert h.ws.QueueUserAPC(fn, hThread, 5) != 0
    assert h.ws.ResumeThread(hThread) == 1
    assert h.ws.WaitForSingleObject(hThread, WAIT_MS) == WAIT_OBJECT_0
    assert log == [("apc", tid), ("proc", tid)]
    assert h.ws.CloseHandle(hThread) == TRUE


@pytest.mark.parametrize("wait", ["SleepEx", "WaitForSingleObjectEx", "WSAWaitForMultipleEvents",
                                  "GetQueuedCompletionStatusEx"])
def test_apc_wakes_a_thread_in_an_alertable_wait_and_runs_there(h: Harness, wait: str) -> None:
    """A thread blocked in an infinite alertable wait (SleepEx, a wait on an
    event nobody signals, or GetQueuedCompletionStatusEx on an empty port): an
    APC queued to it from the main thread runs on it, and its wait returns
    WAIT_IO_COMPLETION (WSA_WAIT_IO_COMPLETION: the same 192; the port wait:
    FALSE, no entry, WAIT_IO_COMPLETION in the last error: Microsoft's
    GetQueuedCompletionStatusEx page, "The thread returns when the system queues
    an I/O completion routine or APC to the thread"; ntdll file.c
    test_set_io_completion, STATUS_USER_APC with nothing on the port)."""
    ready = h.event()
    never = h.event()
    port = h.port() if wait == "GetQueuedCompletionStatusEx" else 0  # (the other cases' schedules as they were)
    ran_on: list[int] = []

    def proc(param: object) -> int:
        h.ws.WSASetEvent(ready)
        if wait == "SleepEx":
            return h.ws.SleepEx(INFINITE, TRUE)
        if wait == "WaitForSingleObjectEx":
            return h.ws.WaitForSingleObjectEx(never, INFINITE, TRUE)
        if wait == "GetQueuedCompletionStatusEx":
            got = h.ws.GetQueuedCompletionStatusEx(port, 4, INFINITE, TRUE)
            return h.ws.GetLastError() if got == (FALSE, []) else 0
        return h.ws.WSAWaitForMultipleEvents(1, [never], FALSE, INFINITE, TRUE)

    def fn(data: int) -> None:
        ran_on.append(h.ws.GetCurrentThreadId())

    hThread, tid = h.ws.CreateThread(None, 0, proc, None, 0)
    assert hThread != 0
    assert h.ws.WaitForSingleObject(ready, WAIT_MS) == WAIT_OBJECT_0
    assert h.ws.WaitForSingleObject(hThread, 50) == WAIT_TIMEOUT  # it waits
    assert h.ws.QueueUserAPC(fn, hThread, 0) != 0
    assert h.ws.WaitForSingleObject(hThread, WAIT_MS) == WAIT_OBJECT_0
    assert h.ws.GetExitCodeThread(hThread) == (TRUE, WAIT_IO_COMPLETION)
    assert ran_on == [tid]
    assert h.ws.CloseHandle(hThread) == TRUE


def test_queue_to_a_handle_that_is_no_thread_fails(h: Harness) -> None:
    """NULL, an event, a closed thread handle: 0 with ERROR_INVALID_HANDLE, and
    nothing is queued."""
    log: Log = []
    ev = h.event()

    def proc(param: object) -> int:
        return 0

    hThread, _ = h.ws.CreateThread(None, 0, proc, None, 0)
    assert h.ws.WaitForSingleObject(hThread, WAIT_MS) == WAIT_OBJECT_0
    assert h.ws.CloseHandle(hThread) == TRUE
    for bad in (0, ev, hThread):
        h.ws.SetLastError(0)
        assert h.ws.QueueUserAPC(apc(log), bad, 1) == 0
        assert h.ws.GetLastError() == ERROR_INVALID_HANDLE
    assert h.ws.SleepEx(0, TRUE) == 0
    assert log == []


def test_queue_to_a_thread_that_has_exited_fails(h: Harness) -> None:
    """A thread that has exited (its handle still open): QueueUserAPC fails with
    ERROR_GEN_FAILURE (kernel32 sync.c test_QueueUserAPC, section 27), and the
    APC never runs anywhere."""
    log: Log = []

    def proc(param: object) -> int:
        return 0

    hThread, _ = h.ws.CreateThread(None, 0, proc, None, 0)
    assert h.ws.WaitForSingleObject(hThread, WAIT_MS) == WAIT_OBJECT_0
    h.ws.SetLastError(0)
    assert h.ws.QueueUserAPC(apc(log), hThread, 1) == 0
    assert h.ws.GetLastError() == ERROR_GEN_FAILURE
    assert h.ws.SleepEx(0, TRUE) == 0
    assert log == []
    assert h.ws.CloseHandle(hThread) == TRUE


def test_success_leaves_the_last_error(h: Harness) -> None:
    log: Log = []
    h.ws.SetLastError(1234)
    queue_self(h, apc(log), 0)
    assert h.ws.GetLastError() == 1234
    assert h.ws.SleepEx(0, TRUE) == WAIT_IO_COMPLETION


def test_an_apc_that_raises_surfaces_from_its_wait_after_the_others_ran(h: Harness) -> None:
    """An APC that raises (undefined in C: the interface surfaces it): the wait
    that ran it raises that exception, after running every APC queued behind
    it, as for a completion routine."""
    log: Log = []

    def boom(data: int) -> None:
        raise ValueError(f"apc {data}")

    queue_self(h, boom, 1)
    queue_self(h, apc(log), 2)
    with pytest.raises(ValueError, match="apc 1"):
        h.ws.SleepEx(0, TRUE)
    assert log == [("apc", 2)]
    assert h.ws.SleepEx(0, TRUE) == 0


def test_the_last_error_is_a_c_int(h: Harness) -> None:
    """WSASetLastError and WSAGetLastError take and return an int, over the
    thread's one DWORD slot that SetLastError and GetLastError use: 0xDEADBEEF
    (the sentinel Wine's tests set) reads back as -559038737 through
    WSAGetLastError and as 0xDEADBEEF through GetLastError, -1 as -1 and
    0xFFFFFFFF, and a value past 32 bits keeps its low 32."""
    for value, as_int, as_dword in ((0xDEADBEEF, DEADBEEF_AS_INT, 0xDEADBEEF), (-1, -1, 0xFFFFFFFF),
                                    (0x1_0000_0005, 5, 5), (10054, 10054, 10054)):
        h.ws.WSASetLastError(value)
        assert (h.ws.WSAGetLastError(), h.ws.GetLastError()) == (as_int, as_dword)
        h.ws.SetLastError(value)
        assert (h.ws.WSAGetLastError(), h.ws.GetLastError()) == (as_int, as_dword)


@pytest.mark.parametrize("alertable", [FALSE, TRUE], ids=["not-alertable", "alertable"])
@pytest.mark.parametrize("ms", [0, 10], ids=["yield", "sleep"])
@pytest.mark.parametrize("queued", [False, True], ids=["no-apc", "apc"])
def test_sleep_and_sleepex_leave_the_last_error(h: Harness, alertable: int, ms: int, queued: bool) -> None:
    """Wine's ntdll tests/sync.c test_delayexecution (plain ok()s, run on
    Windows): SleepEx and Sleep never change the last error; SleepEx returns
    WAIT_IO_COMPLETION when it is alertable and an APC is queued (the APC ran),
    else 0, with a zero or a non-zero timeout."""
    log: Log = []
    if queued:
        queue_self(h, apc(log), 5)
    h.ws.WSASetLastError(0xDEADBEEF)
    rc = h.ws.SleepEx(ms, alertable)
    assert h.ws.WSAGetLastError() == DEADBEEF_AS_INT
    if alertable and queued:
        assert (rc, log) == (WAIT_IO_COMPLETION, [("apc", 5)])
    else:
        assert (rc, log) == (0, [])
    if not alertable:
        h.ws.WSASetLastError(0xDEADBEEF)
        h.ws.Sleep(ms)
        assert h.ws.WSAGetLastError() == DEADBEEF_AS_INT
    assert h.ws.SleepEx(0, TRUE) == (WAIT_IO_COMPLETION if queued and not alertable else 0)  # no leftover APC
