"""Zero-byte I/O: WSARecv and WSASend with buffers of length 0 (fidelity session 8).

The "zero-byte read" is how a server with many idle connections waits for
readability without committing a buffer to each: a WSARecv whose buffers are
all of length 0 pends until data arrives, then completes with 0 bytes and takes
none of it, through every kind of notification.  It must not be mistaken for
EOF (which also reads 0 bytes): after the bytes are read a new zero-byte read
pends again.

Sources (Windows behaviour): Wine's sock.c test_empty_recv (a zero-length
buffer pends, completes with 0 bytes and leaves the data; with data queued it
completes at once; ``recv(s, NULL, 0, 0)`` returns 0; dwBufferCount 0 is
WSAEINVAL), test_completion_port (a receive's packet, immediate or not),
test_WSARecv and the mapping of test_WSAGetOverlappedResult (a routine's
dwError is the Winsock code), test_tcp_reset, iocp_async_read_closesocket
(a receive ended by closesocket: STATUS_CONNECTION_ABORTED); Microsoft's
WSARecv page ("if no error occurs and the receive operation has completed
immediately, WSARecv returns zero"; a zero byte count means a graceful close
only for a receive that asked for bytes) and send's page (a zero-length send
"will be treated as a successful send", nothing reaches the peer).
"""

from __future__ import annotations

import pytest

from fakewinsock import WSABUF, WSAOVERLAPPED, CompletionRoutine
from fakewinsock.constants import (
    ERROR_OPERATION_ABORTED,
    FALSE,
    SOCKET_ERROR,
    STATUS_CANCELLED,
    STATUS_CONNECTION_ABORTED,
    STATUS_CONNECTION_RESET,
    STATUS_PENDING,
    TRUE,
    WAIT_IO_COMPLETION,
    WSA_IO_PENDING,
    WSA_WAIT_TIMEOUT,
    WSAECONNRESET,
)

from ._harness import Accepted, Harness

MS = 5000
Call = tuple[int, int, int]


def post_zero(h: Harness, s: int, ov: WSAOVERLAPPED, count: int = 1,
              routine: CompletionRoutine | None = None) -> int:
    """Post a zero-byte WSARecv (``count`` buffers of length 0): its return code."""
    bufs = [WSABUF(0, bytearray()) for _ in range(count)]
    rc, n, flags = h.ws.WSARecv(s, bufs, count, 0, ov, routine)
    if rc == 0:
        assert (n, flags) == (0, 0)
    else:
        assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    return rc


def pending_zero(h: Harness, a: Accepted, ov: WSAOVERLAPPED) -> None:
    """A zero-byte read posted on a connection with nothing to read: it pends,
    and stays pending (a wait of 50 ms times out)."""
    assert post_zero(h, a.sock, ov) == SOCKET_ERROR
    assert ov.Internal == STATUS_PENDING
    assert h.wait(ov.hEvent, 50) == WSA_WAIT_TIMEOUT
    assert ov.Internal == STATUS_PENDING


def test_zero_byte_read_pends_until_data_then_leaves_it(h: Harness) -> None:
    """test_empty_recv: pends; the peer's bytes complete it with TRUE, 0 bytes,
    flags 0, Internal 0, InternalHigh 0; the bytes wait for the next receive."""
    a = h.accept()
    ov = h.overlapped()
    pending_zero(h, a, ov)
    a.peer.send(b"wake")
    assert h.complete(a.sock, ov) == (TRUE, 0, 0)
    assert (ov.Internal, ov.InternalHigh) == (0, 0)
    assert h.recv_all(a.sock, 4) == b"wake"


def test_zero_byte_read_is_not_eof(h: Harness) -> None:
    """After a zero-byte read completed and the bytes were read, a new
    zero-byte read pends again (a connection that had data is not at EOF),
    and completes for the next bytes."""
    a = h.accept()
    for word in (b"one", b"two"):
        ov = h.overlapped()
        pending_zero(h, a, ov)
        a.peer.send(word)
        assert h.complete(a.sock, ov) == (TRUE, 0, 0)
        assert h.recv_all(a.sock, len(word)) == word


def test_zero_byte_read_with_two_empty_buffers(h: Harness) -> None:
    """Two buffers of length 0 (dwBufferCount 2) are a zero-byte read too: only
    dwBufferCount 0 is WSAEINVAL (test_empty_recv)."""
    a = h.accept()
    ov = h.overlapped()
    assert post_zero(h, a.sock, ov, count=2) == SOCKET_ERROR
    assert h.wait(ov.hEvent, 50) == WSA_WAIT_TIMEOUT
    a.peer.send(b"xy")
    assert h.complete(a.sock, ov) == (TRUE, 0, 0)
    assert h.recv_all(a.sock, 2) == b"xy"


def test_zero_byte_read_through_a_completion_routine(h: Harness) -> None:
    """With a routine: nothing runs while no data has come (an alertable wait
    times out); once bytes arrive the routine runs in an alertable wait with
    (0, 0 bytes, the OVERLAPPED, flags 0), and the bytes are still there."""
    a = h.accept()
    calls: list[Call] = []

    def routine(err: int, n: int, ov: WSAOVERLAPPED, flags: int) -> None:
        calls.append((err, n, flags))

    ov = h.overlapped(with_event=False)
    assert post_zero(h, a.sock, ov, routine=routine) == SOCKET_ERROR
    assert h.ws.SleepEx(50, TRUE) == 0
    assert calls == []
    a.peer.send(b"later")
    assert h.ws.SleepEx(MS, TRUE) == WAIT_IO_COMPLETION
    assert calls == [(0, 0, 0)]
    assert h.recv_all(a.sock, 5) == b"later"


def test_zero_byte_read_through_a_completion_port(h: Harness) -> None:
    """On a port: no packet while nothing has come; then one packet (TRUE,
    0 bytes, the socket's key, the OVERLAPPED), and the bytes are still there."""
    a = h.accept()
    port = h.port()
    assert h.ws.CreateIoCompletionPort(a.sock, port, 77, 0) == port
    ov = h.overlapped(with_event=False)
    assert post_zero(h, a.sock, ov) == SOCKET_ERROR
    assert h.ws.GetQueuedCompletionStatus(port, 50)[0] == FALSE
    a.peer.send(b"port")
    assert h.ws.GetQueuedCompletionStatus(port, MS) == (TRUE, 0, 77, ov)
    assert h.recv_all_on_port(a.sock, port, 4) == b"port"


def test_zero_byte_read_at_a_graceful_close_reads_zero_and_eof_follows(h: Harness) -> None:
    """The peer closes gracefully with a zero-byte read pending: it completes
    with 0 bytes (as any receive at EOF), and a receive that asks for bytes then
    reads 0 too: this time it is EOF."""
    a = h.accept()
    ov = h.overlapped()
    pending_zero(h, a, ov)
    a.peer.close()
    assert h.complete(a.sock, ov) == (TRUE, 0, 0)
    ok, data, _ = h.recv_once(a.sock)
    assert (ok, data) == (TRUE, b"")


def test_zero_byte_read_with_data_then_eof_leaves_both(h: Harness) -> None:
    """Bytes and then a FIN: the zero-byte read completes with 0 bytes and the
    receives that follow get the bytes, then EOF."""
    a = h.accept()
    ov = h.overlapped()
    pending_zero(h, a, ov)
    a.peer.send(b"last")
    a.peer.shutdown()
    assert h.complete(a.sock, ov) == (TRUE, 0, 0)
    assert h.recv_all(a.sock, 4) == b"last"
    ok, data, _ = h.recv_once(a.sock)
    assert (ok, data) == (TRUE, b"")


def test_zero_byte_read_fails_on_a_reset(h: Harness) -> None:
    """The peer resets: the pending zero-byte read fails with WSAECONNRESET,
    Internal STATUS_CONNECTION_RESET (as a receive that asks for bytes)."""
    a = h.accept()
    ov = h.overlapped()
    pending_zero(h, a, ov)
    a.peer.reset()
    assert h.complete(a.sock, ov) == (FALSE, 0, WSAECONNRESET)
    assert ov.Internal == STATUS_CONNECTION_RESET


def test_zero_byte_read_cancelled(h: Harness) -> None:
    """CancelIoEx: the pending zero-byte read ends with 995, Internal
    STATUS_CANCELLED; bytes sent afterwards wait for the next receive."""
    a = h.accept()
    ov = h.overlapped()
    pending_zero(h, a, ov)
    assert h.ws.CancelIoEx(a.sock, ov) == TRUE
    assert h.complete(a.sock, ov) == (FALSE, 0, ERROR_OPERATION_ABORTED)
    assert ov.Internal == STATUS_CANCELLED
    a.peer.send(b"after")
    assert h.recv_all(a.sock, 5) == b"after"


@pytest.mark.wine_divergence(
    "Wine 8.0 completes a receive pending at closesocket with STATUS_HANDLES_CLOSED (676); Windows gives "
    "STATUS_CONNECTION_ABORTED, WSAECONNABORTED (iocp_async_read_closesocket, todo_wine)"
)
def test_zero_byte_read_ended_by_closesocket(h: Harness) -> None:
    """closesocket with a zero-byte read pending: it ends with Internal
    STATUS_CONNECTION_ABORTED (WSAECONNABORTED), 0 bytes, as a receive that
    asks for bytes (the socket is gone, so Internal is read directly)."""
    a = h.accept()
    ov = h.overlapped()
    pending_zero(h, a, ov)
    assert h.close(a.sock) == 0
    assert h.wait(ov.hEvent) == 0
    assert ov.Internal == STATUS_CONNECTION_ABORTED
    assert ov.InternalHigh == 0


def test_zero_length_send_succeeds_with_zero_bytes_and_sends_nothing(h: Harness) -> None:
    """WSASend with one buffer of length 0: a successful send of 0 bytes (at
    once or later; either way the event is signalled); the peer gets nothing:
    the next send's bytes are the first it reads."""
    a = h.accept()
    ov = h.overlapped()
    rc, n, _ = h.ws.WSASend(a.sock, [WSABUF(0, bytearray())], 1, 0, ov, None)
    if rc == 0:
        assert n == 0
    else:
        assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert h.complete(a.sock, ov) == (TRUE, 0, 0)
    assert (ov.Internal, ov.InternalHigh) == (0, 0)
    assert h.send(a.sock, b"first") == (TRUE, 5)
    assert a.peer.recv_exactly(5) == b"first"


def test_zero_length_send_through_a_completion_routine(h: Harness) -> None:
    """A zero-length send with a routine: it runs once, in an alertable wait,
    with (0, 0 bytes, flags 0)."""
    a = h.accept()
    calls: list[Call] = []

    def routine(err: int, n: int, ov: WSAOVERLAPPED, flags: int) -> None:
        calls.append((err, n, flags))

    ov = h.overlapped(with_event=False)
    rc, _, _ = h.ws.WSASend(a.sock, [WSABUF(0, bytearray())], 1, 0, ov, routine)
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert calls == []
    assert h.ws.SleepEx(MS, TRUE) == WAIT_IO_COMPLETION
    assert calls == [(0, 0, 0)]
