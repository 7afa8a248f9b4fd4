"""Closing a handle while another thread waits on it: the wait holds the
object, not the handle, so it neither ends nor fails at the close; it ends as
it would have, when the object is signalled (the thread exits; an operation in
flight that names the event completes) or at its timeout.

Source: Wine's kernel32 tests/sync.c ``test_mutex`` (plain ``ok()`` checks,
run on Windows): a thread blocked in WaitForSingleObject on a mutex whose
handle another thread then closes stays blocked (a wait of 100 ms for its
signal times out) and gets the mutex when the owner is terminated. Microsoft's
WaitForMultipleObjects page calls such a close undefined; Windows keeps the
object referenced for the wait (ObReferenceObjectByHandle when it begins), and
an overlapped request references its event for its whole life.
docs/semantics-findings.md section 44.
"""

from __future__ import annotations

from typing import Any

from fakewinsock import WSABUF, WSAOVERLAPPED
from fakewinsock.constants import (
    SOCKET_ERROR,
    TRUE,
    WAIT_OBJECT_0,
    WAIT_TIMEOUT,
    WSA_IO_PENDING,
)

from ._harness import WAIT_MS, Harness
from .test_mined_threads_ports import join, start


def _waiter(h: Harness, handle: int, ms: int) -> tuple[int, list[int]]:
    """A thread blocked in WaitForSingleObject(handle, ms) (it has signalled
    that it is about to wait, and has had 100 ms to get there): the thread and
    the list its result goes to."""
    ready = h.event()
    results: list[int] = []

    def routine(_: Any) -> int:
        assert h.ws.WSASetEvent(ready) == TRUE
        results.append(h.ws.WaitForSingleObject(handle, ms))
        return 0

    t = start(h, routine)
    assert h.ws.WaitForSingleObject(ready, WAIT_MS) == WAIT_OBJECT_0
    h.ws.Sleep(100)  # (it is in its wait)
    return t, results


def test_closing_a_thread_handle_waited_on_leaves_the_wait_until_the_thread_exits(h: Harness) -> None:
    """The thread's handle is closed (TRUE) while another thread waits on it:
    the wait goes on, and ends with WAIT_OBJECT_0 when the thread returns."""
    go = h.event()

    def worker(_: Any) -> int:
        assert h.ws.WaitForSingleObject(go, WAIT_MS * 2) == WAIT_OBJECT_0
        return 7

    hw = start(h, worker)
    t, results = _waiter(h, hw, WAIT_MS * 3)
    assert h.ws.CloseHandle(hw) == TRUE
    h.ws.Sleep(50)
    assert results == []  # neither ended nor failed by the close
    assert h.ws.WSASetEvent(go) == TRUE
    assert h.ws.WaitForSingleObject(t, WAIT_MS) == WAIT_OBJECT_0  # (long before the wait's own timeout)
    assert join(h, t) == 0
    assert results == [WAIT_OBJECT_0]


def test_closing_an_event_waited_on_leaves_the_wait_until_its_timeout(h: Harness) -> None:
    """The event's handle is closed (WSACloseEvent: TRUE) while a thread waits
    on it alone: nothing can signal it any more, so the wait returns
    WAIT_TIMEOUT at its timeout, not WAIT_FAILED at the close."""
    ev = h.ws.WSACreateEvent()
    assert ev != 0
    t, results = _waiter(h, ev, 1000)
    assert h.ws.WSACloseEvent(ev) == TRUE
    h.ws.Sleep(50)
    assert results == []
    assert join(h, t) == 0
    assert results == [WAIT_TIMEOUT]


def test_a_receive_in_flight_still_signals_its_event_closed_while_a_thread_waits(h: Harness) -> None:
    """A WSARecv pending with an OVERLAPPED whose event is then closed (by
    CloseHandle) while another thread waits on it: the data's arrival completes
    the receive, which signals the event (the request holds it), and that ends
    the wait with WAIT_OBJECT_0; WSAGetOverlappedResult (no wait) gives the
    bytes."""
    a = h.accept()
    ev = h.ws.WSACreateEvent()
    assert ev != 0
    ov = WSAOVERLAPPED()
    ov.hEvent = ev
    buf = bytearray(16)
    rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(16, buf)], 1, 0, ov, None)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    t, results = _waiter(h, ev, WAIT_MS * 3)
    assert h.ws.CloseHandle(ev) == TRUE
    h.ws.Sleep(50)
    assert results == []
    a.peer.send(b"hi")
    assert h.ws.WaitForSingleObject(t, WAIT_MS) == WAIT_OBJECT_0  # (long before the wait's own timeout)
    assert join(h, t) == 0
    assert results == [WAIT_OBJECT_0]
    ok, n, _ = h.ws.WSAGetOverlappedResult(a.sock, ov, 0)
    assert ok == TRUE and 1 <= n <= 2 and bytes(buf[:n]) == b"hi"[:n]
