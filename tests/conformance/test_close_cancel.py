"""closesocket with operations pending, and CancelIoEx.

Sources: Wine's sock.c iocp_async_read_closesocket (a receive ended by a local
close reads as connection aborted, 10053 — not 995 as the docs say),
test_send_buffering (CancelIoEx with nothing pending), afd.c
test_async_thread_termination (docs/semantics-findings.md sections 1, 11).
"""

from __future__ import annotations

import pytest

from fakewinsock import WSABUF
from fakewinsock.constants import (
    ERROR_NOT_FOUND,
    FALSE,
    SD_SEND,
    SOCKET_ERROR,
    STATUS_CANCELLED,
    STATUS_CONNECTION_ABORTED,
    STATUS_PENDING,
    TRUE,
    WSA_IO_PENDING,
    WSA_OPERATION_ABORTED,
    WSA_WAIT_EVENT_0,
    WSAECONNABORTED,
    WSAECONNRESET,
)

from ._harness import Harness


@pytest.mark.wine_divergence("Wine completes it with STATUS_HANDLES_CLOSED (error 676), not connection aborted")
def test_close_with_receive_pending(h: Harness) -> None:
    """closesocket returns at once; the receive completes later with
    STATUS_CONNECTION_ABORTED: WSAGetOverlappedResult gives WSAECONNABORTED
    once the socket handle is gone, read from the OVERLAPPED itself."""
    a = h.accept()
    ov = h.overlapped()
    rc, _, _ = h.recv(a.sock, ov)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert h.close(a.sock) == 0
    assert h.wait(ov.hEvent) == WSA_WAIT_EVENT_0
    assert ov.Internal == STATUS_CONNECTION_ABORTED
    ok, _, _ = h.ws.WSAGetOverlappedResult(a.listener, ov, FALSE)
    assert ok == FALSE and h.ws.WSAGetLastError() == WSAECONNABORTED


def test_close_sends_fin(h: Harness) -> None:
    """A graceful closesocket delivers what was sent, then EOF."""
    a = h.accept()
    assert h.send(a.sock, b"bye") == (TRUE, 3)
    h.close(a.sock)
    assert a.peer.recv_exactly(3) == b"bye"
    assert a.peer.recv() == b""


@pytest.mark.wine_divergence(
    "the peer is a socket of the same Wine process: a Wine socket that is reset while no receive is "
    "pending reads EOF (0 bytes) afterwards, not WSAECONNRESET (the RST is sent: a Linux peer gets ECONNRESET)"
)
def test_close_with_linger_zero_sends_rst(h: Harness) -> None:
    """With SO_LINGER {1,0} closesocket is abortive: the peer gets a reset
    (close_with_rst in Wine's sock.c: "on Windows as well as on Unix")."""
    b = h.accept()
    from fakewinsock import LINGER
    from fakewinsock.constants import SO_LINGER, SOL_SOCKET

    assert h.ws.setsockopt(b.sock, SOL_SOCKET, SO_LINGER, LINGER(1, 0), 4) == 0
    h.close(b.sock)
    with pytest.raises(ConnectionResetError):
        while b.peer.recv():
            pass


@pytest.mark.wine_divergence("Wine 8.0 closes gracefully: the peer reads the data, then EOF (measured by fidelity8)")
def test_close_with_receive_pending_resets_the_connection(h: Harness) -> None:
    """closesocket with a WSARecv still outstanding is abortive, even with
    nothing received: the peer gets a reset (Go's CL 6604072: "that sequence
    results in connection being reset", fixed by cancelling first; libuv
    #3034/#3036, Windows 10: an RST "if there is an outstanding overlapped
    WSARecv call, even if no data is received")."""
    a = h.accept()
    ov = h.overlapped()
    rc, _, _ = h.recv(a.sock, ov)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    h.close(a.sock)
    with pytest.raises(ConnectionResetError):
        while a.peer.recv():
            pass


@pytest.mark.wine_divergence("Wine 8.0 closes gracefully with a receive outstanding: the peer reads EOF, no reset "
                              "(measured by fidelity8); its same-process peers read EOF after a reset anyway")
def test_shutdown_send_before_the_close_does_not_spare_a_receive_pending_the_reset(h: Harness) -> None:
    """shutdown(SD_SEND), then closesocket with a WSARecv still outstanding:
    still abortive.  libuv closed so from 2011 to 2021 ("In order for winsock
    to do a graceful close there must not be any pending reads, or the socket
    must be shut down for writing"), and on Windows 10 the peer got a reset
    all the same (libuv issue #3034, which the cancel-first close of PR #3036
    fixed).  The peer may read the shutdown's EOF first; a reset follows."""
    a = h.accept()
    ov = h.overlapped()
    rc, _, _ = h.recv(a.sock, ov)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert h.ws.shutdown(a.sock, SD_SEND) == 0
    h.close(a.sock)
    assert h.wait(ov.hEvent) == WSA_WAIT_EVENT_0
    h.ws.SleepEx(200, FALSE)  # the reset reaches the peer
    with pytest.raises(ConnectionError):  # (a Linux peer that read the FIN reports EPIPE)
        for _ in range(2):
            a.peer.recv(timeout=1.0)


def test_close_after_the_receive_was_cancelled_and_reaped_sends_fin(h: Harness) -> None:
    """The way around the reset: cancel the receive, wait for its completion,
    then close: graceful, the peer reads what was sent, then EOF."""
    a = h.accept()
    ov = h.overlapped()
    rc, _, _ = h.recv(a.sock, ov)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert h.send(a.sock, b"bye") == (TRUE, 3)
    assert h.ws.CancelIoEx(a.sock, ov) == TRUE
    assert h.wait(ov.hEvent) == WSA_WAIT_EVENT_0
    assert ov.Internal == STATUS_CANCELLED
    h.close(a.sock)
    assert a.peer.recv_exactly(3) == b"bye"
    assert a.peer.recv() == b""


def test_cancel_one_operation(h: Harness) -> None:
    """CancelIoEx: TRUE; the operation completes with 995, Internal STATUS_CANCELLED."""
    a = h.accept()
    ov = h.overlapped()
    h.recv(a.sock, ov)
    assert h.ws.CancelIoEx(a.sock, ov) == TRUE
    ok, _, err = h.complete(a.sock, ov)
    assert (ok, err) == (FALSE, WSA_OPERATION_ABORTED)
    assert ov.Internal == STATUS_CANCELLED


def test_cancel_all_with_null(h: Harness) -> None:
    a = h.accept()
    ov1 = h.overlapped()
    h.recv(a.sock, ov1)
    ov2 = h.overlapped()
    h.recv(a.sock, ov2)
    assert h.ws.CancelIoEx(a.sock, None) == TRUE
    for ov in (ov1, ov2):
        assert h.complete(a.sock, ov)[2] == WSA_OPERATION_ABORTED


@pytest.mark.wine_divergence(
    "Wine 8.0's CancelIoEx returns TRUE when nothing is pending; Windows returns FALSE with ERROR_NOT_FOUND "
    "(test_send_buffering; not todo_wine there, docs/semantics-findings.md section 11)"
)
def test_cancel_nothing_pending(h: Harness) -> None:
    """test_send_buffering: CancelIoEx with nothing to cancel: FALSE, ERROR_NOT_FOUND."""
    a = h.accept()
    assert h.ws.CancelIoEx(a.sock, None) == FALSE
    assert h.ws.WSAGetLastError() == ERROR_NOT_FOUND


def test_cancel_an_overlapped_that_is_not_pending(h: Harness) -> None:
    """Microsoft's CancelIoEx page: no request found to cancel gives FALSE with
    ERROR_NOT_FOUND.  An OVERLAPPED that no operation on the socket uses is such
    a request, even while another operation is pending there, and that other
    operation is left alone."""
    a = h.accept()
    ov = h.overlapped()
    rc, _, _ = h.recv(a.sock, ov)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert h.ws.CancelIoEx(a.sock, h.overlapped()) == FALSE
    assert h.ws.WSAGetLastError() == ERROR_NOT_FOUND
    assert ov.Internal == STATUS_PENDING and not h.is_signalled(ov.hEvent)
    a.peer.send(b"x")
    ok, n, _ = h.complete(a.sock, ov)
    assert (ok, n) == (TRUE, 1)


def test_two_pending_receives_both_fail_on_reset(h: Harness) -> None:
    """test_WSARecv: two receives pending on one socket both end with the reset."""
    a = h.accept()
    ovs = [h.overlapped(), h.overlapped()]
    for ov in ovs:
        rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(8, bytearray(8))], 1, 0, ov, None)
        assert rc == SOCKET_ERROR
    a.peer.reset()
    for ov in ovs:
        assert h.complete(a.sock, ov) == (FALSE, 0, WSAECONNRESET)
