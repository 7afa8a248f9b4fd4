"""kernel32's waits and threads, mined from Wine's kernel32 tests (which run on
Windows): ``dlls/kernel32/tests/sync.c`` (wine-mirror/wine @ 79834c069908,
test_WaitForSingleObject, test_WaitForMultipleObjects) and
``dlls/kernel32/tests/thread.c`` (@ caf92367d6e0, test_CreateThread_basic,
test_CreateThread_suspended, test_SuspendThread).  Each check below is a plain
``ok()`` there (no todo_wine), so Windows behaviour; the test bodies are in the
project's own words.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fakewinsock import CRITICAL_SECTION, WSABUF
from fakewinsock.constants import (
    CREATE_SUSPENDED,
    ERROR_INVALID_HANDLE,
    FALSE,
    INFINITE,
    INVALID_HANDLE_VALUE,
    MAXIMUM_WAIT_OBJECTS,
    SOCKET_ERROR,
    STILL_ACTIVE,
    TRUE,
    WAIT_FAILED,
    WAIT_IO_COMPLETION,
    WAIT_OBJECT_0,
    WAIT_TIMEOUT,
    WSA_INVALID_HANDLE,
    WSA_IO_PENDING,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_FAILED,
    WSA_WAIT_TIMEOUT,
)

from ._harness import WAIT_MS, Harness

MARK = 0xDEADBEEF


def test_low_two_bits_of_a_handle_are_ignored(h: Harness) -> None:
    """A handle with either or both of its two low bits set still names its
    object: a signalled event waits WAIT_OBJECT_0, a non-signalled one times out
    (sync.c test_WaitForSingleObject, "valid handle with different values for
    lower 2 bits").  WSAWaitForMultipleEvents is WaitForMultipleObjectsEx
    (Microsoft's page), so it reads the handles the same way."""
    signalled, nonsignalled = h.event(), h.event()
    assert h.ws.WSASetEvent(signalled) == TRUE
    for bits in range(4):
        assert h.ws.WaitForSingleObject(signalled | bits, 0) == WAIT_OBJECT_0, bits
        assert h.ws.WaitForSingleObject(nonsignalled | bits, 0) == WAIT_TIMEOUT, bits
        assert h.ws.WaitForMultipleObjects(2, [nonsignalled | bits, signalled | bits], FALSE, 0) \
            == WAIT_OBJECT_0 + 1, bits
        assert h.ws.WSAWaitForMultipleEvents(1, [signalled | bits], FALSE, 0, FALSE) == WSA_WAIT_EVENT_0, bits
        assert h.ws.WSAWaitForMultipleEvents(1, [nonsignalled | bits], FALSE, 0, FALSE) == WSA_WAIT_TIMEOUT, bits


def test_low_two_bits_of_a_thread_handle_are_ignored(h: Harness) -> None:
    """The same for a thread handle: an ended thread's handle with its low bits
    set waits WAIT_OBJECT_0 (sync.c test_WaitForSingleObject's rule, on the
    other waitable object the interface has)."""
    hThread, _ = h.ws.CreateThread(None, 0, lambda param: 0, None, 0)
    assert hThread != 0
    assert h.ws.WaitForSingleObject(hThread, WAIT_MS) == WAIT_OBJECT_0
    for bits in range(4):
        assert h.ws.WaitForSingleObject(hThread | bits, 0) == WAIT_OBJECT_0, bits
    assert h.ws.CloseHandle(hThread) == TRUE


def test_a_bogus_handle_fails_whatever_its_low_bits(h: Harness) -> None:
    """0xdeadbee0 with any low bits: WAIT_FAILED, ERROR_INVALID_HANDLE
    (sync.c test_WaitForSingleObject, "invalid handle with different values
    for lower 2 bits"); WSAWaitForMultipleEvents: WSA_WAIT_FAILED,
    WSA_INVALID_HANDLE (6, the same code)."""
    for bits in range(4):
        h.ws.SetLastError(MARK)
        assert h.ws.WaitForSingleObject(0xDEADBEE0 | bits, 0) == WAIT_FAILED, bits
        assert h.ws.GetLastError() == ERROR_INVALID_HANDLE, bits
        h.ws.WSASetLastError(MARK)
        assert h.ws.WSAWaitForMultipleEvents(1, [0xDEADBEE0 | bits], FALSE, 0, FALSE) == WSA_WAIT_FAILED, bits
        assert h.ws.WSAGetLastError() == WSA_INVALID_HANDLE, bits


def test_a_wait_that_succeeds_or_times_out_leaves_the_last_error(h: Harness) -> None:
    """WaitForSingleObject returning WAIT_OBJECT_0 or WAIT_TIMEOUT leaves the
    last error as it was (sync.c test_WaitForSingleObject: 0xdeadbeef after
    each).  Checked for the other waits too, which share its code on Windows
    (WaitForMultipleObjects, and WSAWaitForMultipleEvents, which is
    WaitForMultipleObjectsEx per Microsoft's page)."""
    signalled, nonsignalled = h.event(), h.event()
    h.ws.WSASetEvent(signalled)
    waits: list[tuple[Callable[[], int], int]] = [
        (lambda: h.ws.WaitForSingleObject(signalled, 0), WAIT_OBJECT_0),
        (lambda: h.ws.WaitForSingleObject(nonsignalled, 0), WAIT_TIMEOUT),
        (lambda: h.ws.WaitForSingleObjectEx(nonsignalled, 0, TRUE), WAIT_TIMEOUT),
        (lambda: h.ws.WaitForMultipleObjects(2, [nonsignalled, signalled], FALSE, 0), WAIT_OBJECT_0 + 1),
        (lambda: h.ws.WaitForMultipleObjects(2, [nonsignalled, signalled], TRUE, 0), WAIT_TIMEOUT),
        (lambda: h.ws.WSAWaitForMultipleEvents(1, [signalled], FALSE, 0, FALSE), WSA_WAIT_EVENT_0),
        (lambda: h.ws.WSAWaitForMultipleEvents(1, [nonsignalled], FALSE, 0, TRUE), WSA_WAIT_TIMEOUT),
    ]
    for i, (wait, expected) in enumerate(waits):
        h.ws.SetLastError(MARK)
        assert wait() == expected, i
        assert h.ws.GetLastError() == MARK, i


def test_sixty_four_handles_lowest_index_first_the_others_untouched(h: Harness) -> None:
    """With 64 signalled events, a wait for any gives index 0, and again (a
    manual-reset event stays signalled); once event 0 is reset, index 1, and
    the others are left signalled (sync.c test_WaitForMultipleObjects, "the
    lowest index is checked first and remaining events are untouched", with
    the WSA events, which are all manual-reset; the auto-reset ones of that
    test have no counterpart in the interface)."""
    evs = [h.event() for _ in range(MAXIMUM_WAIT_OBJECTS)]
    for ev in evs:
        h.ws.WSASetEvent(ev)
    assert h.ws.WaitForMultipleObjects(MAXIMUM_WAIT_OBJECTS, evs, FALSE, 0) == WAIT_OBJECT_0
    assert h.ws.WaitForMultipleObjects(MAXIMUM_WAIT_OBJECTS, evs, FALSE, 0) == WAIT_OBJECT_0
    for i in range(1, MAXIMUM_WAIT_OBJECTS):
        assert h.ws.WSAResetEvent(evs[i - 1]) == TRUE
        assert h.ws.WaitForMultipleObjects(MAXIMUM_WAIT_OBJECTS, evs, FALSE, 0) == WAIT_OBJECT_0 + i
        assert h.ws.WaitForMultipleObjects(MAXIMUM_WAIT_OBJECTS, evs, TRUE, 0) == WAIT_TIMEOUT
    assert all(h.ws.WaitForSingleObject(ev, 0) == WAIT_TIMEOUT for ev in evs[:-1])
    assert h.ws.WaitForSingleObject(evs[-1], 0) == WAIT_OBJECT_0


def test_create_thread_leaves_the_last_error(h: Harness) -> None:
    """A successful CreateThread leaves the last error as it was (thread.c
    test_CreateThread_basic: 0xFACEaBAD after it on NT)."""
    h.ws.SetLastError(0xFACEABAD)
    hThread, tid = h.ws.CreateThread(None, 0, lambda param: 99, None, 0)
    assert hThread != 0 and tid != 0
    assert h.ws.GetLastError() == 0xFACEABAD
    assert h.ws.WaitForSingleObject(hThread, WAIT_MS) == WAIT_OBJECT_0
    assert h.ws.GetExitCodeThread(hThread) == (TRUE, 99)
    assert h.ws.CloseHandle(hThread) == TRUE


def test_threads_that_wait_for_each_other_all_run(h: Harness) -> None:
    """Three threads each record GetCurrentThreadId, signal their event and wait
    for all three events (WaitForMultipleObjects, bWaitAll, INFINITE): they run
    at once, each sees the id CreateThread returned for it, the ids differ from
    each other and from the creator's, and each exits with its own value
    (thread.c test_CreateThread_basic with threadFunc1)."""
    n = 3
    evs = [h.event() for _ in range(n)]
    seen = [0] * n

    def routine(param: Any) -> int:
        i = int(param)
        seen[i] = h.ws.GetCurrentThreadId()
        h.ws.WSASetEvent(evs[i])
        assert h.ws.WaitForMultipleObjects(n, evs, TRUE, INFINITE) == WAIT_OBJECT_0
        return n + i

    made = [h.ws.CreateThread(None, 0, routine, i, 0) for i in range(n)]
    for i, (hThread, _) in enumerate(made):
        assert h.ws.WaitForSingleObject(hThread, WAIT_MS) == WAIT_OBJECT_0, i
        assert h.ws.GetExitCodeThread(hThread) == (TRUE, n + i)
        assert h.ws.CloseHandle(hThread) == TRUE
    tids = [tid for _, tid in made]
    assert seen == tids
    assert len(set(tids)) == n
    assert h.ws.GetCurrentThreadId() not in tids


def test_suspended_thread_is_still_active_and_resuming_an_ended_one_gives_0(h: Harness) -> None:
    """A thread made with CREATE_SUSPENDED is STILL_ACTIVE (thread.c
    test_SuspendThread: "Thread did not really suspend"); ResumeThread gives
    the previous suspend count, 1, and the thread runs to its end; resuming the
    ended thread gives 0 (test_CreateThread_suspended: "ResumeThread returned
    %ld, expected 0"; -1 only on Win9x, through broken())."""
    hThread, _ = h.ws.CreateThread(None, 0, lambda param: 99, None, CREATE_SUSPENDED)
    assert hThread != 0
    assert h.ws.GetExitCodeThread(hThread) == (TRUE, STILL_ACTIVE)
    assert h.ws.WaitForSingleObject(hThread, 10) == WAIT_TIMEOUT
    assert h.ws.ResumeThread(hThread) == 1
    assert h.ws.WaitForSingleObject(hThread, WAIT_MS) == WAIT_OBJECT_0
    assert h.ws.GetExitCodeThread(hThread) == (TRUE, 99)
    assert h.ws.ResumeThread(hThread) == 0
    assert h.ws.CloseHandle(hThread) == TRUE



@pytest.mark.wine_divergence("Wine 8.0's InitializeCriticalSection allocates debug info (DebugInfo a pointer, "
                             "as Windows before 8); Windows 8 and later leave (PVOID)-1 (sync.c test_crit_section, "
                             "plain ok; the pointer only through broken())")
def test_critical_section_has_no_debug_info(h: Harness) -> None:
    """InitializeCriticalSection on a zeroed structure leaves DebugInfo
    (PVOID)-1: Windows 8 and later allocate no debug info (sync.c
    test_crit_section; a pointer before Windows 8, accepted there only through
    broken(), which the fake does not choose)."""
    cs = CRITICAL_SECTION()
    h.ws.InitializeCriticalSection(cs)
    assert cs.DebugInfo == 0xFFFFFFFFFFFFFFFF
    h.ws.DeleteCriticalSection(cs)


def test_critical_section_delete_clears_debug_info(h: Harness) -> None:
    """A fresh section can be entered with TryEnterCriticalSection, also after
    the program cleared DebugInfo itself; DeleteCriticalSection leaves
    DebugInfo NULL, whatever Initialize put there (sync.c test_crit_section)."""
    cs = CRITICAL_SECTION()
    for clear in (False, True):
        h.ws.InitializeCriticalSection(cs)
        assert h.ws.TryEnterCriticalSection(cs) == TRUE
        h.ws.LeaveCriticalSection(cs)
        if clear:
            cs.DebugInfo = 0
            assert h.ws.TryEnterCriticalSection(cs) == TRUE
            h.ws.LeaveCriticalSection(cs)
        h.ws.DeleteCriticalSection(cs)
        assert cs.DebugInfo == 0, clear


def test_alertable_wait_ended_by_a_routine_that_signals_its_object(h: Harness) -> None:
    """A thread waits alertably (WaitForMultipleObjectsEx, bWaitAll, 1 handle)
    on an event; a completion routine queued to it during the wait signals that
    very event: the wait returns WAIT_IO_COMPLETION, not the event; the next
    alertable wait then finds the event signalled, WAIT_OBJECT_0 (sync.c
    test_alertable_wait / alertable_wait_thread, with a user APC that releases
    the awaited semaphore; here the APC is a WSARecv's completion routine)."""
    a = h.accept()
    ev = h.event()
    ran: list[int] = []

    def routine(dwError: int, cbTransferred: int, lpOverlapped: Any, dwFlags: int) -> None:
        ran.append(cbTransferred)
        h.ws.WSASetEvent(ev)

    buf = bytearray(8)
    ov = h.overlapped(with_event=False)
    rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(8, buf)], 1, 0, ov, routine)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING  # nothing was sent yet
    waker = a.peer

    def sender(param: Any) -> int:
        h.ws.Sleep(100)  # the main thread is in its wait by then
        waker.send(b"g")
        return 0

    hThread, _ = h.ws.CreateThread(None, 0, sender, None, 0)
    assert h.ws.WaitForMultipleObjectsEx(1, [ev], TRUE, WAIT_MS, TRUE) == WAIT_IO_COMPLETION
    assert ran == [1] and buf[:1] == b"g"
    assert h.ws.WaitForMultipleObjectsEx(1, [ev], TRUE, 200, TRUE) == WAIT_OBJECT_0
    assert h.ws.WaitForSingleObject(hThread, WAIT_MS) == WAIT_OBJECT_0
    assert h.ws.CloseHandle(hThread) == TRUE


@pytest.mark.wine_divergence(
    "a race in Wine 8: NtRemoveIoCompletion loops remove_completion / wait on the port, so a posted "
    "packet wakes the waiter but stays queued, and the poster's own GetQueuedCompletionStatus(0) "
    "often takes it first (CI of 8a10187: 5 of 5 tries under load); Windows hands it to the waiter",
    strict=False,
)
def test_a_packet_posted_while_a_thread_waits_goes_to_that_thread(h: Harness) -> None:
    """A thread waits in GetQueuedCompletionStatus; a packet posted meanwhile is
    handed to it: the poster's own GetQueuedCompletionStatus(0) right after
    the post finds nothing (WAIT_TIMEOUT), and the waiter returns with the
    packet.  Microsoft's "I/O Completion Ports": a queued packet releases a
    waiting thread, which gets it; a test of a Wine fork (sync.c
    test_completion_port_local, Proton for macOS, "All of it holds on
    Windows") checks exactly this hand-off."""
    port = h.ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, 0)
    assert port != 0
    got: list[tuple[int, int]] = []

    def waiter(param: Any) -> int:
        ok, _, key, _ = h.ws.GetQueuedCompletionStatus(port, WAIT_MS)
        got.append((ok, key))
        return 0

    hThread, _ = h.ws.CreateThread(None, 0, waiter, None, 0)
    for attempt in range(5):
        h.ws.Sleep(100 << attempt)  # the thread waits by then (a loaded real machine may need longer)
        assert h.ws.PostQueuedCompletionStatus(port, 0, 7, None) == TRUE
        h.ws.SetLastError(MARK)
        ok, _, key, ov = h.ws.GetQueuedCompletionStatus(port, 0)
        if not ok:
            break
        assert (key, got) == (7, [])  # the waiter was not waiting yet: the packet was still queued
    assert (ok, ov) == (FALSE, None)
    assert h.ws.GetLastError() == WAIT_TIMEOUT
    assert h.ws.WaitForSingleObject(hThread, WAIT_MS) == WAIT_OBJECT_0
    assert got == [(TRUE, 7)]
    assert h.ws.CloseHandle(hThread) == TRUE
    assert h.ws.CloseHandle(port) == TRUE
