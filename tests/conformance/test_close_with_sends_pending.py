"""closesocket or CancelIoEx with a WSASend pending half-way, with and without
shutdown(SD_SEND) first (docs/semantics-findings.md section 31).

Sources: Microsoft's closesocket page ("Any pending overlapped send and receive
operations ... are also canceled. Any event, completion routine, or completion
port action specified for these overlapped operations is performed"; no
exception for a socket shut down for sending); libuv commit 431b535a5 (2014,
"windows: use UV_ECANCELED for aborted TCP writes"): libuv then called
closesocket at once with writes pending, and its test tcp_write_queue_order
saw them fail on Windows with connection aborted (WSAECONNABORTED from
STATUS_CONNECTION_ABORTED or STATUS_LOCAL_DISCONNECT), never with a
cancellation: the commit maps that to UV_ECANCELED and drops the test's
"on Windows we never get ECANCELED" exception; Wine's iocp_async_read_closesocket
(a receive ended by a local close: STATUS_CONNECTION_ABORTED, 1236 through a
port); the shutdown page (the FIN follows the data handed over before it) and
the CancelIoEx page (a cancelled request completes with 995).

What the peer of such a close reads (section 33): a reset, since a close with a
send outstanding is abortive (unless the socket was shut down for sending first:
then a FIN, section 35) (Microsoft's MSDN paper of 1998 on closing:
"outstanding send() calls ... a closesocket() will result in an abortive close";
libuv 99eb736b4 and uv__tcp_close, which cancel writes and wait for their
completions before closesocket to avoid that RST); a close after the send was
cancelled and its completion reaped (libuv's order) is graceful.

What the tests do not fix, because no Windows-run source does: the count a cut
send reports (``Sockets.cut_send_count``: the fake gives the bytes out or 0);
they hold only that the peer's bytes are a prefix of the send, and at least the
count unless the connection was reset.
"""

from __future__ import annotations

import pytest

from fakewinsock import WSAOVERLAPPED
from fakewinsock.constants import (
    ERROR_CONNECTION_ABORTED,
    ERROR_OPERATION_ABORTED,
    FALSE,
    SD_BOTH,
    SD_SEND,
    STATUS_CANCELLED,
    STATUS_CONNECTION_ABORTED,
    TRUE,
    WSA_WAIT_EVENT_0,
    WSAECONNABORTED,
)

from ._harness import Accepted, Harness
from .test_cut_send import MS, big, check_prefix, cut_packet, peer_reads, post_big_send, post_big_send_on_port

_WINE_KEEPS = ("Wine 8.0 keeps a send pending after closesocket (measured by fidelity7; "
               "tests/test_fake_close_pending_send.py, FakeConfig.close_keeps_sends): it is not completed")


def _close_with_a_send_pending(h: Harness, a: Accepted, shut: bool | int) -> tuple[bytearray, WSAOVERLAPPED]:
    """A big send pending half-way, shutdown(SD_SEND) if ``shut`` (or
    shutdown(``shut``) if it is SD_BOTH), closesocket; the send is completed by
    the close.  Returns (the data, the OVERLAPPED)."""
    data = big(h)
    ov = h.overlapped()
    post_big_send(h, a, data, ov)
    if shut:
        assert h.ws.shutdown(a.sock, SD_BOTH if shut == SD_BOTH else SD_SEND) == 0
    assert h.close(a.sock) == 0
    assert h.wait(ov.hEvent, MS) == WSA_WAIT_EVENT_0, "the send was not completed by the close"
    return data, ov


def _closed_send_reads_as_aborted(h: Harness, a: Accepted, shut: bool) -> None:
    data, ov = _close_with_a_send_pending(h, a, shut)
    n = ov.InternalHigh
    assert ov.Internal == STATUS_CONNECTION_ABORTED and n < len(data)
    # The socket handle is gone: read the OVERLAPPED through another socket.
    ok, got_n, _ = h.ws.WSAGetOverlappedResult(a.listener, ov, FALSE)
    assert (ok, got_n, h.ws.WSAGetLastError()) == (FALSE, n, WSAECONNABORTED)
    check_prefix(a, data, n)


@pytest.mark.wine_divergence(_WINE_KEEPS)
def test_close_ends_a_send_pending_half_way_with_connection_aborted(h: Harness) -> None:
    """closesocket with a send pending half-way: the send completes (its event
    signalled) with STATUS_CONNECTION_ABORTED, WSAECONNABORTED through
    WSAGetOverlappedResult, a count below the length; the peer gets a prefix."""
    _closed_send_reads_as_aborted(h, h.accept(), shut=False)


@pytest.mark.wine_divergence(_WINE_KEEPS)
def test_close_after_shutdown_send_still_ends_the_pending_send(h: Harness) -> None:
    """shutdown(SD_SEND) first does not make closesocket wait for the pending
    send: it is ended as without the shutdown (connection aborted), and the peer
    gets a prefix of it."""
    _closed_send_reads_as_aborted(h, h.accept(), shut=True)


@pytest.mark.wine_divergence(_WINE_KEEPS)
def test_close_with_a_send_pending_on_a_port_reads_as_connection_aborted(h: Harness) -> None:
    """Through a port: one packet, FALSE with ERROR_CONNECTION_ABORTED (1236: the
    plain mapping of STATUS_CONNECTION_ABORTED), the count InternalHigh holds."""
    a = h.accept()
    port, data, ov = post_big_send_on_port(h, a, 9)
    assert h.ws.shutdown(a.sock, SD_SEND) == 0
    assert h.close(a.sock) == 0
    check_prefix(a, data, cut_packet(h, port, 9, ov, data, ERROR_CONNECTION_ABORTED))


def test_cancel_after_shutdown_send_ends_the_send_and_the_connection_still_ends(h: Harness) -> None:
    """shutdown(SD_SEND) with a send pending half-way, then CancelIoEx of it:
    TRUE; the send fails with 995, STATUS_CANCELLED, a count below the length;
    the shutdown's FIN is not lost: the peer reads a prefix of the send (at
    least the count), then EOF; no reset, never silence.  dotnet/runtime's
    TcpPeerReceivesFinOnShutdownWithPendingData shows it on Windows in its
    synchronous variants: a blocking 100 MB send half-way, Shutdown(Both),
    then Dispose, which cancels that send with CancelIoEx(handle, NULL) and
    closes without lingering (SafeSocketHandle.CloseAsIs: a shutdown keeps the
    close graceful), and the peer reads data, then EOF (section 35)."""
    a = h.accept()
    data = big(h)
    ov = h.overlapped()
    post_big_send(h, a, data, ov)
    assert h.ws.shutdown(a.sock, SD_SEND) == 0
    assert h.ws.CancelIoEx(a.sock, ov) == TRUE
    ok, n, err = h.complete(a.sock, ov)
    assert (ok, err) == (FALSE, ERROR_OPERATION_ABORTED)
    assert (ov.Internal, ov.InternalHigh) == (STATUS_CANCELLED, n) and n < len(data)
    got = bytearray()
    while chunk := a.peer.recv(1 << 20):  # (a reset or a TimeoutError fails the test)
        got += chunk
    assert n <= len(got) < len(data) and got == data[:len(got)]


@pytest.mark.wine_divergence(_WINE_KEEPS)
def test_close_with_a_send_outstanding_resets_the_connection(h: Harness) -> None:
    """closesocket with a send pending half-way is an abortive close: the peer
    reads at most a prefix of the send, then the reset (Microsoft's 1998 MSDN
    paper on closing: "outstanding send() calls ... result in an abortive
    close"; libuv 99eb736b4: "Win32 sockets ... send an RST packet if there is
    an outstanding overlapped calls"; dotnet/runtime's Windows-run
    TcpReceiveSendGetsCanceledByDispose, its send case: the peer's receive
    fails with ConnectionReset), never the whole send and never EOF."""
    a = h.accept()
    data, _ = _close_with_a_send_pending(h, a, False)
    got, reset = peer_reads(a)
    assert len(got) < len(data) and got == bytes(data[:len(got)])
    assert reset, "a close with a send outstanding closed gracefully"


@pytest.mark.wine_divergence(_WINE_KEEPS)
@pytest.mark.parametrize("how", [SD_BOTH, SD_SEND], ids=["SD_BOTH", "SD_SEND"])
def test_close_after_shutdown_with_a_send_outstanding_is_graceful(h: Harness, how: int) -> None:
    """shutdown first, then closesocket with the send still pending half-way:
    the close is graceful: the peer reads a prefix of the send, then EOF, no
    reset (dotnet/runtime's SendReceive.cs @ 0b566aa670c0,
    TcpPeerReceivesFinOnShutdownWithPendingData, run on Windows: a 100 MB send
    pending, Shutdown(Both), Dispose, and the peer reads data, then EOF).  The
    send is ended by the close as without the shutdown (connection aborted).
    SD_SEND alone is the fake's reading (docs/semantics-findings.md section
    35): the test shuts both directions."""
    a = h.accept()
    data, ov = _close_with_a_send_pending(h, a, how)
    assert ov.Internal == STATUS_CONNECTION_ABORTED
    got = bytearray()
    while chunk := a.peer.recv(1 << 20):  # (a reset or a TimeoutError fails the test: EOF must come)
        got += chunk
    assert ov.InternalHigh <= len(got) < len(data) and got == data[:len(got)]


@pytest.mark.parametrize("reaped", [True, False], ids=["reaped", "unreaped"])
def test_close_after_the_send_was_cancelled_is_graceful(h: Harness, reaped: bool) -> None:
    """libuv's close (99eb736b4; uv__tcp_close: "If any overlapped req failed to
    cancel, calling `closesocket` now would cause Win32 to send an RST packet.
    Try to avoid that for writes ... by waiting to process the completion
    notifications first"): CancelIoEx of the send pending half-way, its
    completion taken (995), then closesocket: nothing is outstanding, so the
    close is graceful: the peer reads a prefix of the send (at least the count),
    then EOF.  The same with the close right after the cancel, the completion
    taken after it: the cancel ended the send, as a cancelled receive is not
    outstanding at a close right after it (section 28: libuv's Windows CI test
    tcp_close_after_read_timeout)."""
    a = h.accept()
    data = big(h)
    ov = h.overlapped()
    post_big_send(h, a, data, ov)
    assert h.ws.CancelIoEx(a.sock, ov) == TRUE
    if reaped:
        ok, n, err = h.complete(a.sock, ov)
        assert (ok, err) == (FALSE, ERROR_OPERATION_ABORTED)
        assert h.close(a.sock) == 0
    else:
        assert h.close(a.sock) == 0
        assert h.wait(ov.hEvent, MS) == WSA_WAIT_EVENT_0
        assert ov.Internal == STATUS_CANCELLED
        n = ov.InternalHigh
    assert n < len(data)
    got = bytearray()
    while chunk := a.peer.recv(1 << 20):  # (a reset or a TimeoutError fails the test)
        got += chunk
    assert n <= len(got) < len(data) and got == data[:len(got)]
