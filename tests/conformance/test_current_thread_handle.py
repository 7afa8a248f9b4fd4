"""GetCurrentThread's pseudo-handle in the waits, GetExitCodeThread and
ResumeThread: the calling thread, which is running; GetCurrentProcess's,
(HANDLE)-1 = INVALID_HANDLE_VALUE, in the waits: the process, also running.

Sources (Windows behaviour): Microsoft's GetCurrentThread page ("The calling
thread can use this handle to specify itself whenever a thread handle is
required"; "The handle is always interpreted as referring to the thread that
is using it"), WaitForSingleObject's (a thread object is signalled when the
thread terminates), so a thread's wait on its own pseudo-handle never ends
through it (servers use WaitForSingleObject(GetCurrentThread(), ms) as a sleep,
and INFINITE to park a main thread); GetExitCodeThread's (STILL_ACTIVE while
the thread runs); GetCurrentProcess's ("a special constant, currently
(HANDLE)-1, that is interpreted as the current process handle": a wait on an
INVALID_HANDLE_VALUE that a failed call returned waits on the process);
kernel32 thread.c test_SuspendThread (ResumeThread on a
thread that is not suspended: 0). A timed-out wait leaves the last error
(sync.c test_WaitForSingleObject). docs/semantics-findings.md section 41.

Only WaitForSingleObject(Ex) take a pseudo-handle: Wine's kernel32 sync.c
(@ 79834c069908, run on Windows) test_WaitForSingleObject ("pseudo handles are
allowed in WaitForSingleObject": WAIT_TIMEOUT for both) and
test_WaitForMultipleObjects ("in contrast to WaitForSingleObject, pseudo
handles are not allowed in WaitForMultipleObjects": WAIT_FAILED,
ERROR_INVALID_HANDLE for either, alone in the list; todo_wine: Wine 8.0 waits
on them). WSAWaitForMultipleEvents is WaitForMultipleObjectsEx (Microsoft's
page). docs/semantics-findings.md section 59.
"""

from __future__ import annotations

from typing import Any

import pytest

from fakewinsock.constants import (
    ERROR_INVALID_HANDLE,
    FALSE,
    INVALID_HANDLE_VALUE,
    STILL_ACTIVE,
    TRUE,
    WAIT_FAILED,
    WAIT_IO_COMPLETION,
    WAIT_TIMEOUT,
    WSA_INVALID_HANDLE,
    WSA_WAIT_FAILED,
)

from ._harness import WAIT_MS, Harness
from .test_mined_threads_ports import join, start


def test_a_wait_on_the_calling_thread_times_out(h: Harness) -> None:
    me = h.ws.GetCurrentThread()
    for ms in (0, 30):
        h.ws.SetLastError(1234)
        assert h.ws.WaitForSingleObject(me, ms) == WAIT_TIMEOUT
        assert h.ws.WaitForSingleObjectEx(me, ms, TRUE) == WAIT_TIMEOUT
        assert h.ws.GetLastError() == 1234


_NO_PSEUDO_IN_LISTS = ("Wine 8.0 waits on a pseudo-handle in WaitForMultipleObjects(Ex) and "
                       "WSAWaitForMultipleEvents (WAIT_TIMEOUT here); Windows refuses it: WAIT_FAILED, "
                       "ERROR_INVALID_HANDLE (kernel32 sync.c test_WaitForMultipleObjects, todo_wine)")


@pytest.mark.wine_divergence(_NO_PSEUDO_IN_LISTS)
@pytest.mark.parametrize("pseudo", ["thread", "process", "-2", "-1"])
def test_the_waits_for_several_objects_refuse_a_pseudo_handle(h: Harness, pseudo: str) -> None:
    """WaitForMultipleObjects(Ex) and WSAWaitForMultipleEvents with
    GetCurrentThread's or GetCurrentProcess's pseudo-handle in the list fail at
    once, WAIT_FAILED / WSA_WAIT_FAILED with ERROR_INVALID_HANDLE (6,
    WSA_INVALID_HANDLE): alone, as the Windows-run test shows, and anywhere in
    a longer list, before any object is looked at, so a signalled event ahead
    of it does not satisfy the wait (NtWaitForMultipleObjects looks every
    handle up before it waits; Microsoft's Windows Research Kernel, ob/obwait.c)
    and an alertable one runs no queued APC.  The same for the pseudo-handles
    given as the negative ints -2 and -1 (a HANDLE converts them: section 58)."""
    me = {"thread": h.ws.GetCurrentThread(), "process": INVALID_HANDLE_VALUE}.get(pseudo) or int(pseudo)
    ev = h.event()
    assert h.ws.WSASetEvent(ev) == TRUE
    ran: list[int] = []
    assert h.ws.QueueUserAPC(ran.append, h.ws.GetCurrentThread(), 7) != 0
    for wait_all in (FALSE, TRUE):
        for handles in ([me], [ev, me], [me, ev]):
            n = len(handles)
            h.ws.SetLastError(1234)
            assert h.ws.WaitForMultipleObjects(n, handles, wait_all, 30) == WAIT_FAILED, (wait_all, handles)
            assert h.ws.GetLastError() == ERROR_INVALID_HANDLE
            h.ws.SetLastError(1234)
            assert h.ws.WaitForMultipleObjectsEx(n, handles, wait_all, 30, TRUE) == WAIT_FAILED
            assert h.ws.GetLastError() == ERROR_INVALID_HANDLE
            h.ws.WSASetLastError(1234)
            assert h.ws.WSAWaitForMultipleEvents(n, handles, wait_all, 30, TRUE) == WSA_WAIT_FAILED
            assert h.ws.WSAGetLastError() == WSA_INVALID_HANDLE
    assert ran == []
    # The same handle alone in WaitForSingleObject(Ex) is the thread or process.
    assert h.ws.WaitForSingleObject(me, 0) == WAIT_TIMEOUT
    assert h.ws.WaitForSingleObjectEx(me, WAIT_MS, TRUE) == WAIT_IO_COMPLETION
    assert ran == [7]


def test_an_alertable_wait_on_the_calling_thread_runs_its_apcs(h: Harness) -> None:
    """The idiom of a thread that parks to serve APCs: the wait returns
    WAIT_IO_COMPLETION once the queued APC has run."""
    me = h.ws.GetCurrentThread()
    ran: list[int] = []
    assert h.ws.QueueUserAPC(ran.append, me, 7) != 0
    assert h.ws.WaitForSingleObjectEx(me, WAIT_MS, TRUE) == WAIT_IO_COMPLETION
    assert ran == [7]


def test_the_calling_thread_is_still_active_and_not_suspended(h: Harness) -> None:
    me = h.ws.GetCurrentThread()
    assert h.ws.GetExitCodeThread(me) == (TRUE, STILL_ACTIVE)
    assert h.ws.ResumeThread(me) == 0


def test_in_another_thread_the_pseudo_handle_names_that_thread(h: Harness) -> None:
    """The same value in a second thread: that thread, running, so its own
    wait times out and it reads STILL_ACTIVE; the main thread's wait on the
    second thread's real handle ends when it returns."""
    seen: list[Any] = []

    def routine(_: Any) -> int:
        me = h.ws.GetCurrentThread()
        seen.append(h.ws.WaitForSingleObject(me, 30))
        seen.append(tuple(h.ws.GetExitCodeThread(me)))
        return 5

    assert join(h, start(h, routine)) == 5
    assert seen == [WAIT_TIMEOUT, (TRUE, STILL_ACTIVE)]


def test_a_wait_on_the_process_pseudo_handle_times_out(h: Harness) -> None:
    """INVALID_HANDLE_VALUE is GetCurrentProcess's pseudo-handle: the
    single-object waits time out (last error left; the waits for several
    objects refuse it: see above); it names no thread (GetExitCodeThread:
    FALSE, ERROR_INVALID_HANDLE, a handle of the wrong type)."""
    me = INVALID_HANDLE_VALUE
    for ms in (0, 30):
        h.ws.SetLastError(1234)
        assert h.ws.WaitForSingleObject(me, ms) == WAIT_TIMEOUT
        assert h.ws.WaitForSingleObjectEx(me, ms, TRUE) == WAIT_TIMEOUT
        assert h.ws.GetLastError() == 1234
    assert h.ws.GetExitCodeThread(me) == (FALSE, 0)
    assert h.ws.GetLastError() == ERROR_INVALID_HANDLE


def test_closing_the_process_pseudo_handle_succeeds_and_changes_nothing(h: Harness) -> None:
    """CloseHandle(INVALID_HANDLE_VALUE): TRUE, the last error left, and the
    handle still names the process (Microsoft's GetCurrentProcess page: closing
    it "has no effect"; the firehazard crate's Windows-run test
    close_handle_invalid: success). CloseHandle(NULL): FALSE,
    ERROR_INVALID_HANDLE (the same crate's close_handle_null)."""
    h.ws.SetLastError(1234)
    assert h.ws.CloseHandle(INVALID_HANDLE_VALUE) == TRUE
    assert h.ws.GetLastError() == 1234
    assert h.ws.WaitForSingleObject(INVALID_HANDLE_VALUE, 0) == WAIT_TIMEOUT
    assert h.ws.CloseHandle(0) == FALSE
    assert h.ws.GetLastError() == ERROR_INVALID_HANDLE


def test_the_process_pseudo_handle_is_no_event_port_or_thread(h: Harness) -> None:
    """Calls that need another kind of object fail the kernel's type check
    (STATUS_OBJECT_TYPE_MISMATCH, ERROR_INVALID_HANDLE; as for any handle of
    the wrong kind: test_mined_threads_ports): a failed call's
    INVALID_HANDLE_VALUE passed on as an event, a port or a thread."""
    h.assert_not_an_event(INVALID_HANDLE_VALUE)
    h.assert_not_a_port(INVALID_HANDLE_VALUE)
    h.assert_not_a_thread(INVALID_HANDLE_VALUE)


def test_closing_the_thread_pseudo_handle_succeeds_and_changes_nothing(h: Harness) -> None:
    """CloseHandle(GetCurrentThread()): TRUE, the last error left, and the
    value still names the calling thread (Microsoft's GetCurrentThread page:
    closing it "has no effect"; a Win32 stand-in library's differential test
    run on Windows 11, CloseHandle(GetCurrentThread()) against its stand-in,
    which returns 1 and leaves the error: every case agreed). The same in a
    second thread, which goes on running and returns its own exit code."""
    me = h.ws.GetCurrentThread()
    h.ws.SetLastError(1234)
    assert h.ws.CloseHandle(me) == TRUE
    assert h.ws.GetLastError() == 1234
    assert h.ws.GetExitCodeThread(me) == (TRUE, STILL_ACTIVE)
    assert h.ws.WaitForSingleObject(me, 0) == WAIT_TIMEOUT
    ran: list[int] = []
    assert h.ws.QueueUserAPC(ran.append, me, 3) != 0
    assert h.ws.SleepEx(0, TRUE) == WAIT_IO_COMPLETION
    assert ran == [3]
    seen: list[Any] = []

    def routine(_: Any) -> int:
        mine = h.ws.GetCurrentThread()
        h.ws.SetLastError(77)
        seen.append(h.ws.CloseHandle(mine))
        seen.append(h.ws.GetLastError())
        seen.append(tuple(h.ws.GetExitCodeThread(mine)))
        return 9

    assert join(h, start(h, routine)) == 9
    assert seen == [TRUE, 77, (TRUE, STILL_ACTIVE)]
