"""Program threads: CreateThread, waits on thread and event handles, exit codes,
last errors per thread, critical sections, and completion routines' thread
affinity (one body, every backend).

Sources: Microsoft's CreateThread, WaitForSingleObject(Ex),
WaitForMultipleObjects(Ex) (nCount 0 or over MAXIMUM_WAIT_OBJECTS:
ERROR_INVALID_PARAMETER), GetExitCodeThread (STILL_ACTIVE), critical sections
(recursive ownership, TryEnterCriticalSection), "Asynchronous Procedure Calls"
(an APC runs only on its own thread, in an alertable wait); Wine's kernel32
sync.c and thread.c tests (run on Windows); ws2_32 afd.c
test_async_thread_termination (a thread's pending I/O on a socket without a
completion port is cancelled when the thread exits, its event signalled, its
APC never run).
"""

from __future__ import annotations

from typing import Any

from fakewinsock import CRITICAL_SECTION, WSAOVERLAPPED
from fakewinsock.constants import (
    CREATE_SUSPENDED,
    ERROR_INVALID_HANDLE,
    ERROR_INVALID_PARAMETER,
    FALSE,
    INFINITE,
    MAXIMUM_WAIT_OBJECTS,
    SOCKET_ERROR,
    STILL_ACTIVE,
    TRUE,
    WAIT_FAILED,
    WAIT_IO_COMPLETION,
    WAIT_OBJECT_0,
    WAIT_TIMEOUT,
    WSA_IO_PENDING,
    WSA_OPERATION_ABORTED,
    WSA_WAIT_EVENT_0,
)

from ._harness import WAIT_MS, Harness


def start(h: Harness, routine: Any, param: Any = None, flags: int = 0) -> tuple[int, int]:
    """CreateThread, checked: (handle, thread id)."""
    hThread, tid = h.ws.CreateThread(None, 0, routine, param, flags)
    assert hThread != 0, h.ws.GetLastError()
    assert tid != 0
    return hThread, tid


def join(h: Harness, hThread: int) -> int:
    """Wait for the thread to end, close its handle: its exit code."""
    assert h.ws.WaitForSingleObject(hThread, WAIT_MS) == WAIT_OBJECT_0
    ok, code = h.ws.GetExitCodeThread(hThread)
    assert ok == TRUE
    assert h.ws.CloseHandle(hThread) == TRUE
    return code


def test_thread_runs_its_routine_and_exits_with_its_return_value(h: Harness) -> None:
    """The start routine gets lpParameter and runs on a thread of its own (its
    own id); its return value is the exit code; the handle is signalled when it
    ends."""
    seen: list[tuple[Any, int]] = []

    def routine(param: Any) -> int:
        seen.append((param, h.ws.GetCurrentThreadId()))
        return 42

    param = object()
    hThread, tid = start(h, routine, param)
    assert join(h, hThread) == 42
    assert seen == [(param, tid)]
    assert tid != h.ws.GetCurrentThreadId()


def test_exit_code_is_still_active_while_the_thread_runs(h: Harness) -> None:
    """GetExitCodeThread gives STILL_ACTIVE (259) until the thread ends; a wait
    with a timeout on a running thread times out."""
    go = h.event()

    def routine(param: Any) -> int:
        assert h.ws.WaitForSingleObject(go, WAIT_MS) == WAIT_OBJECT_0
        return 7

    hThread, _ = start(h, routine)
    assert h.ws.GetExitCodeThread(hThread) == (TRUE, STILL_ACTIVE)
    assert h.ws.WaitForSingleObject(hThread, 10) == WAIT_TIMEOUT
    assert h.ws.WSASetEvent(go) == TRUE
    assert join(h, hThread) == 7


def test_closed_handle_fails_with_invalid_handle(h: Harness) -> None:
    """A handle closed with CloseHandle is gone: closing it again, waiting on it
    or asking its exit code fail with ERROR_INVALID_HANDLE; the thread itself
    goes on to its end regardless."""
    ev = h.ws.WSACreateEvent()
    done: list[int] = []

    def routine(param: Any) -> int:
        done.append(1)
        return 0

    hThread, _ = start(h, routine)
    assert h.ws.WaitForSingleObject(hThread, WAIT_MS) == WAIT_OBJECT_0
    assert h.ws.CloseHandle(hThread) == TRUE
    assert done == [1]
    assert h.ws.CloseHandle(ev) == TRUE
    for handle in (hThread, ev):
        h.ws.SetLastError(0)
        assert h.ws.CloseHandle(handle) == FALSE
        assert h.ws.GetLastError() == ERROR_INVALID_HANDLE
        h.ws.SetLastError(0)
        assert h.ws.WaitForSingleObject(handle, 0) == WAIT_FAILED
        assert h.ws.GetLastError() == ERROR_INVALID_HANDLE
    h.ws.SetLastError(0)
    assert h.ws.GetExitCodeThread(hThread) == (FALSE, 0)
    assert h.ws.GetLastError() == ERROR_INVALID_HANDLE


def test_wait_for_multiple_objects_counts(h: Harness) -> None:
    """nCount 0 and nCount over MAXIMUM_WAIT_OBJECTS (64) fail with
    ERROR_INVALID_PARAMETER, before any handle is looked at."""
    ev = h.event()
    h.ws.SetLastError(0)
    assert h.ws.WaitForMultipleObjects(0, [ev], FALSE, 0) == WAIT_FAILED
    assert h.ws.GetLastError() == ERROR_INVALID_PARAMETER
    many = [ev] * (MAXIMUM_WAIT_OBJECTS + 1)
    h.ws.SetLastError(0)
    assert h.ws.WaitForMultipleObjects(len(many), many, FALSE, 0) == WAIT_FAILED
    assert h.ws.GetLastError() == ERROR_INVALID_PARAMETER
    evs = [h.event() for _ in range(MAXIMUM_WAIT_OBJECTS)]
    assert h.ws.WaitForMultipleObjects(len(evs), evs, FALSE, 0) == WAIT_TIMEOUT
    h.ws.WSASetEvent(evs[63])
    assert h.ws.WaitForMultipleObjects(len(evs), evs, FALSE, 0) == WAIT_OBJECT_0 + 63


def test_wait_any_gives_the_lowest_index_and_wait_all_needs_all(h: Harness) -> None:
    a, b, c = h.event(), h.event(), h.event()
    h.ws.WSASetEvent(c)
    h.ws.WSASetEvent(b)
    assert h.ws.WaitForMultipleObjects(3, [a, b, c], FALSE, 0) == WAIT_OBJECT_0 + 1
    assert h.ws.WaitForMultipleObjects(3, [a, b, c], TRUE, 10) == WAIT_TIMEOUT
    h.ws.WSASetEvent(a)
    assert h.ws.WaitForMultipleObjects(3, [a, b, c], TRUE, 0) == WAIT_OBJECT_0


def test_wait_on_a_thread_and_an_event_together(h: Harness) -> None:
    """Thread handles and events mix in one wait, and WSAWaitForMultipleEvents
    (WaitForMultipleObjectsEx underneath) takes a thread handle too."""
    go, never = h.event(), h.event()

    def routine(param: Any) -> int:
        h.ws.WaitForSingleObject(go, WAIT_MS)
        return 0

    hThread, _ = start(h, routine)
    assert h.ws.WaitForMultipleObjects(2, [never, hThread], FALSE, 10) == WAIT_TIMEOUT
    h.ws.WSASetEvent(go)
    assert h.ws.WaitForMultipleObjects(2, [never, hThread], FALSE, WAIT_MS) == WAIT_OBJECT_0 + 1
    assert h.ws.WSAWaitForMultipleEvents(1, [hThread], FALSE, 0, FALSE) == WSA_WAIT_EVENT_0
    assert join(h, hThread) == 0


def test_last_error_is_per_thread(h: Harness) -> None:
    """Each thread has its own last error (GetLastError and WSAGetLastError read
    the same slot)."""
    seen: list[int] = []
    h.ws.SetLastError(1234)

    def routine(param: Any) -> int:
        h.ws.SetLastError(4321)
        h.ws.Sleep(1)
        seen.append(h.ws.WSAGetLastError())
        return 0

    hThread, _ = start(h, routine)
    join(h, hThread)
    assert seen == [4321]
    h.ws.SetLastError(1234)
    assert h.ws.WSAGetLastError() == 1234
    h.ws.WSASetLastError(99)
    assert h.ws.GetLastError() == 99


def test_suspended_thread_runs_only_when_resumed(h: Harness) -> None:
    ran: list[int] = []

    def routine(param: Any) -> int:
        ran.append(1)
        return 3

    hThread, _ = start(h, routine, flags=CREATE_SUSPENDED)
    h.ws.Sleep(20)
    assert ran == []
    assert h.ws.WaitForSingleObject(hThread, 10) == WAIT_TIMEOUT
    assert h.ws.ResumeThread(hThread) == 1
    assert join(h, hThread) == 3
    assert ran == [1]


def test_critical_section_is_recursive_and_exclusive(h: Harness) -> None:
    """The owner may enter again (and leaves as often); another thread's
    TryEnterCriticalSection fails while it is owned and succeeds after."""
    cs = CRITICAL_SECTION()
    h.ws.InitializeCriticalSection(cs)
    h.ws.EnterCriticalSection(cs)
    assert h.ws.TryEnterCriticalSection(cs) == TRUE
    h.ws.EnterCriticalSection(cs)
    tries: list[int] = []
    step = h.event()

    def routine(param: Any) -> int:
        tries.append(h.ws.TryEnterCriticalSection(cs))
        h.ws.WSASetEvent(step)
        h.ws.EnterCriticalSection(cs)  # waits until the main thread has left three times
        h.ws.LeaveCriticalSection(cs)
        return 0

    hThread, _ = start(h, routine)
    assert h.ws.WaitForSingleObject(step, WAIT_MS) == WAIT_OBJECT_0
    assert tries == [FALSE]
    h.ws.LeaveCriticalSection(cs)
    h.ws.LeaveCriticalSection(cs)
    assert h.ws.WaitForSingleObject(hThread, 10) == WAIT_TIMEOUT  # still owned once
    h.ws.LeaveCriticalSection(cs)
    assert join(h, hThread) == 0
    assert h.ws.TryEnterCriticalSection(cs) == TRUE
    h.ws.LeaveCriticalSection(cs)
    h.ws.DeleteCriticalSection(cs)


def test_critical_section_serialises_a_read_modify_write(h: Harness) -> None:
    """Four threads increment a shared counter 20 times each with a wait inside
    the section: no increment is lost."""
    cs = CRITICAL_SECTION()
    h.ws.InitializeCriticalSection(cs)
    counter = [0]

    def routine(param: Any) -> int:
        for _ in range(20):
            h.ws.EnterCriticalSection(cs)
            value = counter[0]
            h.ws.Sleep(0)
            counter[0] = value + 1
            h.ws.LeaveCriticalSection(cs)
        return int(param)

    threads = [start(h, routine, i)[0] for i in range(4)]
    assert h.ws.WaitForMultipleObjects(4, threads, TRUE, WAIT_MS * 4) == WAIT_OBJECT_0
    assert [join(h, t) for t in threads] == [0, 1, 2, 3]
    assert counter == [80]
    h.ws.DeleteCriticalSection(cs)


def test_completion_routine_runs_only_on_the_posting_thread(h: Harness) -> None:
    """A routine is queued to the thread that posted the operation: the main
    thread's alertable waits do not run it; the poster's alertable wait does,
    on the poster's own thread."""
    a = h.accept()
    posted = h.event()
    ran_on: list[int] = []
    result: list[int] = []

    def routine(dwError: int, cb: int, ov: WSAOVERLAPPED, flags: int) -> None:
        ran_on.append(h.ws.GetCurrentThreadId())

    def poster(param: Any) -> int:
        ov = WSAOVERLAPPED()
        rc, _, _ = h.ws.WSARecv(a.sock, [h_wsabuf()], 1, 0, ov, routine)
        assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
        h.ws.WSASetEvent(posted)
        result.append(h.ws.WaitForSingleObjectEx(never, WAIT_MS, TRUE))
        return 0

    never = h.event()
    hThread, tid = start(h, poster)
    assert h.ws.WaitForSingleObject(posted, WAIT_MS) == WAIT_OBJECT_0
    a.peer.send(b"hello")
    assert h.ws.SleepEx(50, TRUE) == 0  # not the main thread's routine
    assert join(h, hThread) == 0
    assert result == [WAIT_IO_COMPLETION]
    assert ran_on == [tid]


def test_thread_exit_cancels_its_pending_io(h: Harness) -> None:
    """afd.c test_async_thread_termination: I/O posted by a thread that exits,
    on a socket without a completion port, is cancelled: its event is
    signalled, the result is WSA_OPERATION_ABORTED (995)."""
    a = h.accept()
    ov = h.overlapped()

    def poster(param: Any) -> int:
        rc, _, _ = h.ws.WSARecv(a.sock, [h_wsabuf()], 1, 0, ov, None)
        assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
        return 0

    hThread, _ = start(h, poster)
    assert join(h, hThread) == 0
    assert h.wait(ov.hEvent) == WSA_WAIT_EVENT_0
    ok, n, _ = h.ws.WSAGetOverlappedResult(a.sock, ov, FALSE)
    assert (ok, n, h.ws.WSAGetLastError()) == (FALSE, 0, WSA_OPERATION_ABORTED)


def test_routine_of_an_exited_thread_never_runs(h: Harness) -> None:
    """afd.c: the APC of a thread that has exited never runs, anywhere."""
    a = h.accept()
    calls: list[int] = []

    def routine(dwError: int, cb: int, ov: WSAOVERLAPPED, flags: int) -> None:
        calls.append(dwError)

    keep: list[WSAOVERLAPPED] = []

    def poster(param: Any) -> int:
        ov = WSAOVERLAPPED()
        keep.append(ov)
        rc, _, _ = h.ws.WSARecv(a.sock, [h_wsabuf()], 1, 0, ov, routine)
        assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
        return 0

    hThread, _ = start(h, poster)
    assert join(h, hThread) == 0
    a.peer.send(b"data")
    assert h.ws.SleepEx(50, TRUE) == 0
    h.settle()
    assert calls == []


def test_sleep_lets_other_threads_run(h: Harness) -> None:
    """A thread that waits forever for an event is woken by another thread's
    WSASetEvent; INFINITE is a real wait, not an error, while another thread
    can still act."""
    ev = h.event()

    def setter(param: Any) -> int:
        h.ws.Sleep(5)
        h.ws.WSASetEvent(ev)
        return 0

    hThread, _ = start(h, setter)
    assert h.ws.WaitForSingleObject(ev, INFINITE) == WAIT_OBJECT_0
    assert join(h, hThread) == 0


_BUFS: list[bytearray] = []


def h_wsabuf() -> Any:
    """A fresh 64-byte WSABUF kept alive for the whole session."""
    from fakewinsock import WSABUF

    buf = bytearray(64)
    _BUFS.append(buf)
    return WSABUF(64, buf)


def test_tick_count_advances_with_a_sleep_never_backwards(h: Harness) -> None:
    """GetTickCount64 (Microsoft: milliseconds since the system started, in
    steps of the system timer, 10-16 ms): never decreases, and a Sleep(200)
    moves it by the sleep, give or take one step (and what a loaded machine
    adds to a sleep).  Under Wine on a loaded machine the tick count (read
    from the shared page wineserver updates) has lagged a sleep by 43 ms
    (clean-clone CI on 2026-12-04: 157 ms for a Sleep(200)), so the sleep is
    measured up to three times and one must be within a step."""
    seen = [h.ws.GetTickCount64() for _ in range(100)]
    assert seen == sorted(seen) and seen[0] >= 0
    moved = []
    for _ in range(3):
        before = h.ws.GetTickCount64()
        h.ws.Sleep(200)
        after = h.ws.GetTickCount64()
        moved.append(after - before)
        if 200 - 16 <= moved[-1] <= WAIT_MS:
            break
    assert 200 - 16 <= moved[-1] <= WAIT_MS, moved
