"""Completion routines and alertable waits (winsock-semantics.md "Completion routines").

Sources: Wine's sock.c test_WSARecv, socket_apc, the synchronous WSAIoctl tests
(immediate success queues the routine; it runs at the next alertable wait,
never inside the call), afd.c test_async_thread_termination.
"""

from __future__ import annotations

import pytest

from fakewinsock import WSABUF, WSAOVERLAPPED, CompletionRoutine
from fakewinsock.constants import (
    SOCKET_ERROR,
    TRUE,
    WAIT_IO_COMPLETION,
    WSA_IO_PENDING,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_IO_COMPLETION,
    WSA_WAIT_TIMEOUT,
    WSAECONNRESET,
)

from ._harness import Harness

Call = tuple[int, int, int, int]


def recorder(calls: list[Call]) -> CompletionRoutine:
    def routine(dwError: int, cbTransferred: int, lpOverlapped: WSAOVERLAPPED, dwFlags: int) -> None:
        calls.append((dwError, cbTransferred, id(lpOverlapped), dwFlags))

    return routine


def test_routine_runs_only_in_alertable_wait(h: Harness) -> None:
    """The routine gets (0, bytes, the OVERLAPPED, 0); it runs in SleepEx(...,
    TRUE), which returns WAIT_IO_COMPLETION; the OVERLAPPED's event is not
    signalled."""
    a = h.accept()
    calls: list[Call] = []
    ov = h.overlapped()
    rc, _, buf = h.recv(a.sock, ov, routine=recorder(calls))
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    a.peer.send(b"abc")
    assert h.ws.SleepEx(5000, TRUE) == WAIT_IO_COMPLETION
    assert len(calls) == 1
    err, n, ov_id, flags = calls[0]
    assert (err, flags, ov_id) == (0, 0, id(ov))
    assert 1 <= n <= 3 and bytes(buf[:n]) == b"abc"[:n]
    assert not h.is_signalled(ov.hEvent)


@pytest.mark.needs_immediate
def test_immediate_success_queues_the_routine(h: Harness) -> None:
    """A WSARecv that returns 0 still queues its routine, which does not run
    inside WSARecv but at the next alertable wait."""
    a = h.accept()
    calls: list[Call] = []
    for _ in range(20):
        h.have_data_arrive(a)
        rc, n, _ = h.recv(a.sock, h.overlapped(with_event=False), routine=recorder(calls))
        if rc == 0:
            assert calls == [], "the routine ran inside WSARecv"
            assert h.ws.SleepEx(0, TRUE) == WAIT_IO_COMPLETION
            assert len(calls) == 1 and calls[0][1] == n
            return
        assert h.ws.WSAGetLastError() == WSA_IO_PENDING
        assert h.ws.SleepEx(5000, TRUE) == WAIT_IO_COMPLETION
        calls.clear()
    pytest.fail("no receive ever completed at once")


def test_routine_reports_reset(h: Harness) -> None:
    """An asynchronous failure runs the routine with the Winsock code: 10054."""
    a = h.accept()
    calls: list[Call] = []
    h.recv(a.sock, h.overlapped(with_event=False), routine=recorder(calls))
    a.peer.reset()
    assert h.ws.SleepEx(5000, TRUE) == WAIT_IO_COMPLETION
    assert calls[0][0] == WSAECONNRESET and calls[0][1] == 0


def test_routine_may_post_the_next_receive(h: Harness) -> None:
    a = h.accept()
    got = bytearray()
    bufs: list[bytearray] = []  # the buffer of each receive posted, the last one in flight
    ov = WSAOVERLAPPED()

    def on_recv(dwError: int, cb: int, lpOverlapped: WSAOVERLAPPED, dwFlags: int) -> None:
        got.extend(bufs[-1][:cb])
        if cb and len(got) < 6:
            post()

    def post() -> None:
        buf = bytearray(16)
        bufs.append(buf)
        rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(16, buf)], 1, 0, ov, on_recv)
        assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING

    post()
    a.peer.send(b"abc")
    a.peer.send(b"def")
    for _ in range(20):
        if len(got) >= 6:
            break
        h.ws.SleepEx(5000, TRUE)
    assert bytes(got) == b"abcdef"


def test_alertable_wait_returns_io_completion(h: Harness) -> None:
    a = h.accept()
    calls: list[Call] = []
    h.recv(a.sock, h.overlapped(with_event=False), routine=recorder(calls))
    other = h.event()
    a.peer.send(b"z")
    assert h.ws.WSAWaitForMultipleEvents(1, [other], 0, 5000, TRUE) == WSA_WAIT_IO_COMPLETION
    assert len(calls) == 1


def test_alertable_wait_on_a_signalled_event_leaves_routines_queued(h: Harness) -> None:
    """An event signalled when an alertable wait begins satisfies it before the
    queued routine is looked at (Windows' kernel tests the objects first:
    KeWaitForMultipleObjects, then TestForAlertPending; section 27); the
    routine runs in the next alertable wait that finds nothing signalled."""
    a = h.accept()
    calls: list[Call] = []
    h.recv(a.sock, h.overlapped(with_event=False), routine=recorder(calls))
    a.peer.send(b"z")
    # Let the receive complete (its routine is then queued) without running it.
    ev = h.event()
    assert h.ws.WSAWaitForMultipleEvents(1, [ev], 0, 300, False) == WSA_WAIT_TIMEOUT
    assert calls == []
    h.ws.WSASetEvent(ev)
    assert h.ws.WSAWaitForMultipleEvents(1, [ev], 0, 5000, TRUE) == WSA_WAIT_EVENT_0
    assert calls == []
    h.ws.WSAResetEvent(ev)
    assert h.ws.WSAWaitForMultipleEvents(1, [ev], 0, 5000, TRUE) == WSA_WAIT_IO_COMPLETION
    assert len(calls) == 1
