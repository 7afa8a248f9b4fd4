"""The waits' DWORD arguments, given as Python ints: they wrap as C converts
them, as the real backend passes them (docs/semantics-findings.md section 58).

A timeout of -1 is 0xFFFFFFFF, INFINITE (WSA_INFINITE): the wait blocks until
its object is signalled (Microsoft's pages of WSAWaitForMultipleEvents,
WaitForSingleObject(Ex), WaitForMultipleObjects(Ex) and SleepEx: the timeout is
a DWORD and INFINITE is 0xFFFFFFFF); a negative count is above 64: the call
fails with 87 (WSA_INVALID_PARAMETER / ERROR_INVALID_PARAMETER, as for 65).
GetQueuedCompletionStatus(Ex) had this already (test_iocp.py
test_a_timeout_of_minus_one_is_infinite).  CreateIoCompletionPort's
NumberOfConcurrentThreads is a DWORD too: -1 is 0xFFFFFFFF threads; and
WSARecv's and WSASend's dwBufferCount: -1 is more WSABUFs than any array holds.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fakewinsock import WSABUF, WinsockUsageError
from fakewinsock.constants import (
    ERROR_INVALID_PARAMETER,
    FALSE,
    INVALID_HANDLE_VALUE,
    STILL_ACTIVE,
    TRUE,
    WAIT_FAILED,
    WAIT_IO_COMPLETION,
    WAIT_OBJECT_0,
    WAIT_TIMEOUT,
    WSA_INVALID_PARAMETER,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_FAILED,
)

from ._harness import Harness


def _waits(h: Harness, ev: int) -> list[tuple[str, Callable[[], int], int]]:
    return [
        ("WSAWaitForMultipleEvents", lambda: h.ws.WSAWaitForMultipleEvents(1, [ev], FALSE, -1, FALSE),
         WSA_WAIT_EVENT_0),
        ("WSAWaitForMultipleEvents alertable",
         lambda: h.ws.WSAWaitForMultipleEvents(1, [ev], TRUE, -1, TRUE), WSA_WAIT_EVENT_0),
        ("WaitForSingleObject", lambda: h.ws.WaitForSingleObject(ev, -1), WAIT_OBJECT_0),
        ("WaitForSingleObjectEx", lambda: h.ws.WaitForSingleObjectEx(ev, -1, TRUE), WAIT_OBJECT_0),
        ("WaitForMultipleObjects", lambda: h.ws.WaitForMultipleObjects(1, [ev], FALSE, -1), WAIT_OBJECT_0),
        ("WaitForMultipleObjectsEx", lambda: h.ws.WaitForMultipleObjectsEx(1, [ev], TRUE, -1, FALSE),
         WAIT_OBJECT_0),
    ]


def test_a_timeout_of_minus_one_waits_for_the_object(h: Harness) -> None:
    """Each wait with timeout -1 on an event another thread sets 300 ms later
    returns the event's index, not WAIT_TIMEOUT."""
    ev = h.event()
    rounds = len(_waits(h, ev))

    def setter(_: object) -> int:
        for _ in range(rounds):
            h.ws.Sleep(300)
            assert h.ws.WSASetEvent(ev) == TRUE
        return 0

    thread, _ = h.ws.CreateThread(None, 0, setter, None, 0)
    assert thread
    for name, wait, signalled in _waits(h, ev):
        assert wait() == signalled, name
        assert h.ws.WSAResetEvent(ev) == TRUE
    assert h.ws.WaitForSingleObject(thread, 20_000) == WAIT_OBJECT_0
    assert h.ws.CloseHandle(thread) == TRUE


def test_sleepex_minus_one_sleeps_until_an_apc(h: Harness) -> None:
    """SleepEx(-1, TRUE) in a thread returns WAIT_IO_COMPLETION only once an APC
    queued to it 300 ms later has run; it does not return 0 at once."""
    ran: list[int] = []

    def sleeper(_: object) -> int:
        return h.ws.SleepEx(-1, TRUE)

    thread, _ = h.ws.CreateThread(None, 0, sleeper, None, 0)
    assert thread
    h.ws.Sleep(300)
    assert h.ws.QueueUserAPC(ran.append, thread, 7) != 0
    assert h.ws.WaitForSingleObject(thread, 20_000) == WAIT_OBJECT_0
    assert h.ws.GetExitCodeThread(thread) == (TRUE, WAIT_IO_COMPLETION)
    assert ran == [7]
    assert h.ws.CloseHandle(thread) == TRUE


@pytest.mark.parametrize("count", [-1, -64])
def test_a_negative_count_fails_as_one_above_64(h: Harness, count: int) -> None:
    """A negative count converts to a DWORD above 64: 87, WSA_WAIT_FAILED /
    WAIT_FAILED (an event signalled among them changes nothing)."""
    evs = [h.event() for _ in range(65)]
    h.ws.WSASetEvent(evs[0])
    h.ws.SetLastError(0)
    assert h.ws.WSAWaitForMultipleEvents(count, evs, FALSE, 0, FALSE) == WSA_WAIT_FAILED
    assert h.ws.WSAGetLastError() == WSA_INVALID_PARAMETER
    h.ws.SetLastError(0)
    assert h.ws.WaitForMultipleObjects(count, evs, FALSE, 0) == WAIT_FAILED
    assert h.ws.GetLastError() == ERROR_INVALID_PARAMETER


def test_a_port_made_for_minus_one_threads_releases_its_waiter(h: Harness) -> None:
    """CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, -1): a port whose
    concurrency value is 0xFFFFFFFF; a packet posted to it is dequeued at once
    (not held back as if no thread may run)."""
    port = h.ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, -1)
    assert port != 0
    h.ports.append(port)
    assert h.ws.PostQueuedCompletionStatus(port, 1, 2, None) == TRUE
    assert h.ws.GetQueuedCompletionStatus(port, 0) == (TRUE, 1, 2, None)


@pytest.mark.parametrize("call", ["WSARecv", "WSASend"])
def test_a_negative_buffer_count_is_misuse(h: Harness, call: str) -> None:
    """dwBufferCount -1 is a DWORD of 0xFFFFFFFF WSABUFs: Windows would read
    past the caller's array, a WinsockUsageError on every backend (the fake
    took it as no buffers: WSAEINVAL)."""
    a = h.accept()
    with pytest.raises(WinsockUsageError, match="dwBufferCount is -1"):
        getattr(h.ws, call)(a.sock, [WSABUF(4, bytearray(4))], -1, 0, h.overlapped(), None)


def test_minus_one_and_minus_two_are_the_pseudo_handles(h: Harness) -> None:
    """A HANDLE given as -1 or -2 converts as C converts it: -1 is
    INVALID_HANDLE_VALUE (GetCurrentProcess's pseudo-handle), -2
    GetCurrentThread's; the calls that treat those values specially treat -1
    and -2 so (section 58): CreateIoCompletionPort(-1, 0, ...) makes a port,
    with an existing port it is ERROR_INVALID_PARAMETER; CloseHandle succeeds;
    a single-object wait on either never ends through it (WAIT_TIMEOUT); -2
    names the calling thread for GetExitCodeThread (STILL_ACTIVE), ResumeThread
    (0) and QueueUserAPC."""
    port = h.ws.CreateIoCompletionPort(-1, 0, 0, 0)
    assert port != 0
    h.ports.append(port)
    assert h.ws.PostQueuedCompletionStatus(port, 3, 4, None) == TRUE
    assert h.ws.GetQueuedCompletionStatus(port, 0) == (TRUE, 3, 4, None)
    h.ws.SetLastError(0)
    assert h.ws.CreateIoCompletionPort(-1, port, 0, 0) == 0
    assert h.ws.GetLastError() == ERROR_INVALID_PARAMETER
    for pseudo in (-1, -2):
        assert h.ws.CloseHandle(pseudo) == TRUE, pseudo
        assert h.ws.WaitForSingleObject(pseudo, 0) == WAIT_TIMEOUT, pseudo
        assert h.ws.WaitForSingleObjectEx(pseudo, 0, TRUE) == WAIT_TIMEOUT, pseudo
    # (the waits for several objects refuse both: test_current_thread_handle.py, section 59)
    assert h.ws.GetExitCodeThread(-2) == (TRUE, STILL_ACTIVE)
    assert h.ws.ResumeThread(-2) == 0
    ran: list[int] = []
    assert h.ws.QueueUserAPC(ran.append, -2, 9) != 0
    assert h.ws.SleepEx(0, TRUE) == WAIT_IO_COMPLETION
    assert ran == [9]
