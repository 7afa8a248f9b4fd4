"""closesocket right after CancelIoEx of the receive, before its completion is
reaped: graceful (docs/semantics-findings.md section 28).

Windows resets the connection when closesocket finds a WSARecv outstanding
(section 26).  A receive that CancelIoEx has cancelled is not outstanding any
more, though its completion (event, port packet, completion routine) has not
been taken yet: the close is graceful.  Source: libuv's test
``tcp_close_after_read_timeout`` (test/test-tcp-close-after-read-timeout.c,
since libuv PR #3584, 2022), which runs in libuv's Windows CI (Windows Server
2019, 2022, 2025): the client has a zero-byte WSARecv pending, ``uv_close``
calls CancelIoEx on it and closesocket at once (src/win/tcp.c
``uv__tcp_close``: the read's completion is processed later, by the loop), and
the server side asserts that its read gets ``UV_EOF``, not ``UV_ECONNRESET``.
Before that fix, a read left pending at the close (``uv_read_stop`` first
hid it from the cancel) made the peer read ECONNRESET on Windows.
"""

from __future__ import annotations

import pytest

from fakewinsock import WSAOVERLAPPED
from fakewinsock.constants import (
    FALSE,
    SOCKET_ERROR,
    STATUS_CANCELLED,
    TRUE,
    WSA_IO_PENDING,
    WSA_OPERATION_ABORTED,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_IO_COMPLETION,
)

from ._harness import WAIT_MS, Accepted, Harness

#: libuv's zero-byte read, and an ordinary one.
SIZES = [0, 4096]


def _cancel_close(h: Harness, a: Accepted, ov: WSAOVERLAPPED) -> None:
    """The pending receive is cancelled and the socket closed at once, before
    anything of the cancel is looked at."""
    assert h.ws.CancelIoEx(a.sock, ov) == TRUE
    assert h.close(a.sock) == 0


def _peer_reads_the_reply_then_eof(a: Accepted) -> None:
    assert a.peer.recv_exactly(3) == b"bye"
    assert a.peer.recv() == b""  # EOF: a reset would raise ConnectionResetError


@pytest.mark.parametrize("size", SIZES)
def test_close_right_after_cancelling_the_receive_sends_fin(h: Harness, size: int) -> None:
    """Event notification: the receive is cancelled and the socket closed
    before its event is waited for: the peer reads the reply, then EOF; the
    receive then reads as cancelled (995, Internal STATUS_CANCELLED), not as
    ended by the close (connection aborted): it had ended at the cancel."""
    a = h.accept()
    assert h.send(a.sock, b"bye") == (TRUE, 3)
    ov = h.overlapped()
    rc, _, _ = h.recv(a.sock, ov, size)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    _cancel_close(h, a, ov)
    _peer_reads_the_reply_then_eof(a)
    assert h.wait(ov.hEvent) == WSA_WAIT_EVENT_0
    assert ov.Internal == STATUS_CANCELLED
    ok, n, _ = h.ws.WSAGetOverlappedResult(a.listener, ov, FALSE)
    assert (ok, n, h.ws.WSAGetLastError()) == (FALSE, 0, WSA_OPERATION_ABORTED)


@pytest.mark.parametrize("size", SIZES)
def test_close_with_the_cancelled_receive_still_queued_on_a_port_sends_fin(h: Harness, size: int) -> None:
    """Completion port: the cancelled receive's packet is still queued when
    the socket is closed: the peer reads the reply, then EOF; the packet is
    the cancel's (FALSE, ERROR_OPERATION_ABORTED, 0 bytes, the key)."""
    a = h.accept()
    assert h.send(a.sock, b"bye") == (TRUE, 3)  # before the port: no packet
    port = h.port()
    assert h.ws.CreateIoCompletionPort(a.sock, port, 7, 0) == port
    ov = h.overlapped(with_event=False)
    rc, _, _ = h.recv(a.sock, ov, size)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    _cancel_close(h, a, ov)
    _peer_reads_the_reply_then_eof(a)
    ok, n, key, done = h.ws.GetQueuedCompletionStatus(port, WAIT_MS)
    assert (ok, n, key, done, h.ws.GetLastError()) == (FALSE, 0, 7, ov, WSA_OPERATION_ABORTED)
    assert ov.Internal == STATUS_CANCELLED


@pytest.mark.parametrize("size", SIZES)
def test_close_before_the_cancelled_receive_routine_ran_sends_fin(h: Harness, size: int) -> None:
    """Completion routine: the routine of the cancelled receive has not run
    (no alertable wait yet) when the socket is closed: the peer reads the
    reply, then EOF; the routine then runs with 995 and 0 bytes."""
    a = h.accept()
    assert h.send(a.sock, b"bye") == (TRUE, 3)
    calls: list[tuple[int, int]] = []
    ov = h.overlapped(with_event=False)

    def routine(dwError: int, cbTransferred: int, lpOverlapped: WSAOVERLAPPED, dwFlags: int) -> None:
        assert lpOverlapped is ov
        calls.append((dwError, cbTransferred))

    rc, _, _ = h.recv(a.sock, ov, size, routine)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    _cancel_close(h, a, ov)
    assert calls == []
    _peer_reads_the_reply_then_eof(a)
    assert h.ws.SleepEx(WAIT_MS, TRUE) == WSA_WAIT_IO_COMPLETION
    assert calls == [(WSA_OPERATION_ABORTED, 0)]
