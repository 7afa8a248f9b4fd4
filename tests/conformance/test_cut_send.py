"""A send cut off half-way (fidelity session 8): an overlapped WSASend of a big
buffer to a peer that does not read, pending with part of its bytes gone out,
ended by CancelIoEx or by the peer's reset.

What holds on every backend: the send fails (995 / STATUS_CANCELLED, or
WSAECONNRESET / STATUS_CONNECTION_RESET), its count is below the buffer's
length and is the same in InternalHigh, WSAGetOverlappedResult, a completion
routine and a port's packet; what the peer reads of it is a prefix of the
buffer, never a gap or a reordering, and at least the count reported (when the
connection was not reset).  The count itself is unverified on Windows (no
Windows-run test or page): Wine 8.0 reports the bytes that went out; the fake
reports that or 0, chosen by its seed (``Sockets.cut_send_count``).

Sources: sock.c test_send (a 1 MB overlapped send to a peer that does not read
pends, and completes whole only once the peer has read everything: a send is
never completed short with success), test_WSAGetOverlappedResult's status
mapping (STATUS_CANCELLED -> 995, STATUS_CONNECTION_RESET -> 10054),
Microsoft's CancelIoEx and GetQueuedCompletionStatus pages (a failed
operation's packet: FALSE, its count, key and OVERLAPPED).
"""

from __future__ import annotations

import pytest

from fakewinsock import WSABUF, WSAOVERLAPPED, CompletionRoutine
from fakewinsock.constants import (
    ERROR_NETNAME_DELETED,
    ERROR_OPERATION_ABORTED,
    FALSE,
    SOCKET_ERROR,
    STATUS_CANCELLED,
    STATUS_CONNECTION_RESET,
    TRUE,
    WAIT_IO_COMPLETION,
    WSA_IO_PENDING,
    WSA_WAIT_TIMEOUT,
    WSAECONNRESET,
)

from ._harness import Accepted, Harness

MS = 5000


def big(h: Harness) -> bytearray:
    """More than the network takes from a peer that does not read: 1 MiB on the
    fake (a window of 128 KiB), 32 MiB on the real backend (loopback buffers of
    several MiB)."""
    size = (1 << 20) if h.is_fake else (32 << 20)
    return bytearray(bytes(range(251)) * (size // 251 + 1))[:size]


def post_big_send(h: Harness, a: Accepted, data: bytearray, ov: WSAOVERLAPPED,
                  routine: CompletionRoutine | None = None) -> None:
    """Post the send; it pends, and stays pending while the peer does not read
    (a wait of 300 ms lets part of it go out)."""
    rc, _, _ = h.ws.WSASend(a.sock, [WSABUF(len(data), data)], 1, 0, ov, routine)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    if ov.hEvent:
        assert h.wait(ov.hEvent, 300) == WSA_WAIT_TIMEOUT
    else:
        assert h.ws.SleepEx(300, TRUE) == 0


def post_big_send_on_port(h: Harness, a: Accepted, key: int) -> tuple[int, bytearray, WSAOVERLAPPED]:
    """A port with ``a.sock`` associated under ``key``, and a big send posted
    there with no event: it pends, and no packet comes for 300 ms.  Returns
    (the port, the data, the OVERLAPPED)."""
    port = h.port()
    assert h.ws.CreateIoCompletionPort(a.sock, port, key, 0) == port
    data = big(h)
    ov = h.overlapped(with_event=False)
    rc, _, _ = h.ws.WSASend(a.sock, [WSABUF(len(data), data)], 1, 0, ov, None)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert h.ws.GetQueuedCompletionStatus(port, 300)[0] == FALSE  # (times out: nothing yet)
    return port, data, ov


def cut_packet(h: Harness, port: int, key: int, ov: WSAOVERLAPPED, data: bytearray, error: int) -> int:
    """The port's one packet for the cut send: FALSE with ``error``, ``key``, the
    OVERLAPPED and the count InternalHigh holds (below the length); the count."""
    ok, n, got_key, got_ov = h.ws.GetQueuedCompletionStatus(port, MS)
    assert (ok, got_key, got_ov) == (FALSE, key, ov)
    assert h.ws.GetLastError() == error
    assert n == ov.InternalHigh < len(data)
    return n


def peer_reads(a: Accepted) -> tuple[bytes, bool]:
    """Everything the peer gets until nothing more comes: (bytes, reset seen)."""
    got = bytearray()
    try:
        while True:
            chunk = a.peer.recv(1 << 20, timeout=1.0)
            if not chunk:
                return bytes(got), False
            got += chunk
    except TimeoutError:
        return bytes(got), False
    except ConnectionResetError:
        return bytes(got), True


def check_prefix(a: Accepted, data: bytearray, n: int) -> None:
    """The peer's bytes are the start of ``data``; without a reset, at least ``n``."""
    got, reset = peer_reads(a)
    assert len(got) < len(data)
    assert got == bytes(data[:len(got)]), "the peer's bytes are not a prefix of the send"
    if not reset:
        assert len(got) >= n, f"the send reported {n} bytes but the peer got {len(got)}"


def test_cancelled_half_way_fails_with_a_count_below_the_length(h: Harness) -> None:
    """CancelIoEx on the pending send: TRUE; it fails with 995, Internal
    STATUS_CANCELLED, a count below the length (InternalHigh and
    WSAGetOverlappedResult agree); the peer gets a prefix."""
    a = h.accept()
    data = big(h)
    ov = h.overlapped()
    post_big_send(h, a, data, ov)
    assert h.ws.CancelIoEx(a.sock, ov) == TRUE
    ok, n, err = h.complete(a.sock, ov)
    assert (ok, err) == (FALSE, ERROR_OPERATION_ABORTED)
    assert 0 <= n < len(data)
    assert (ov.Internal, ov.InternalHigh) == (STATUS_CANCELLED, n)
    check_prefix(a, data, n)


def test_cancelled_half_way_through_a_completion_routine(h: Harness) -> None:
    """The routine of a send cancelled half-way runs once with dwError 995 and
    the count that InternalHigh holds."""
    a = h.accept()
    data = big(h)
    calls: list[tuple[int, int, int]] = []

    def routine(err: int, n: int, ov: WSAOVERLAPPED, flags: int) -> None:
        calls.append((err, n, flags))

    ov = h.overlapped(with_event=False)
    post_big_send(h, a, data, ov, routine)
    assert calls == []
    assert h.ws.CancelIoEx(a.sock, ov) == TRUE
    assert h.ws.SleepEx(MS, TRUE) == WAIT_IO_COMPLETION
    assert len(calls) == 1
    err, n, flags = calls[0]
    assert (err, flags) == (ERROR_OPERATION_ABORTED, 0)
    assert n == ov.InternalHigh < len(data)
    check_prefix(a, data, n)


def test_cancelled_half_way_through_a_completion_port(h: Harness) -> None:
    """On a port: one packet, FALSE with ERROR_OPERATION_ABORTED, the count that
    InternalHigh holds, the socket's key and the OVERLAPPED."""
    a = h.accept()
    port, data, ov = post_big_send_on_port(h, a, 5)
    assert h.ws.CancelIoEx(a.sock, ov) == TRUE
    check_prefix(a, data, cut_packet(h, port, 5, ov, data, ERROR_OPERATION_ABORTED))


def test_reset_half_way_fails_with_a_count_below_the_length(h: Harness) -> None:
    """The peer resets while the send is half-way: it fails with WSAECONNRESET,
    Internal STATUS_CONNECTION_RESET, a count below the length."""
    a = h.accept()
    data = big(h)
    ov = h.overlapped()
    post_big_send(h, a, data, ov)
    a.peer.reset()
    ok, n, err = h.complete(a.sock, ov)
    assert (ok, err) == (FALSE, WSAECONNRESET)
    assert 0 <= n < len(data)
    assert (ov.Internal, ov.InternalHigh) == (STATUS_CONNECTION_RESET, n)


def test_reset_half_way_on_a_port_reads_as_netname_deleted(h: Harness) -> None:
    """The same through a port: FALSE, ERROR_NETNAME_DELETED (64: the plain
    NTSTATUS mapping), the count InternalHigh holds."""
    a = h.accept()
    port, data, ov = post_big_send_on_port(h, a, 6)
    a.peer.reset()
    cut_packet(h, port, 6, ov, data, ERROR_NETNAME_DELETED)


@pytest.mark.parametrize("how", ["cancel", "reset"])
def test_a_cut_send_never_completes_short_with_success(h: Harness, how: str) -> None:
    """Whatever cuts it off, a send that did not put all its bytes out never
    reports success (test_send: success means every byte)."""
    a = h.accept()
    data = big(h)
    ov = h.overlapped()
    post_big_send(h, a, data, ov)
    if how == "cancel":
        assert h.ws.CancelIoEx(a.sock, None) == TRUE
    else:
        a.peer.reset()
    ok, n, _ = h.complete(a.sock, ov)
    assert ok == FALSE and n < len(data)
