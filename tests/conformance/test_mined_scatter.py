"""Scatter receives: one WSARecv into two buffers (fidelity8).

A WSARecv with several WSABUFs fills them in array order, each one whole before
the next, and reports one count for all of them: the same in the immediate
result, InternalHigh, WSAGetOverlappedResult, a port's packet and a completion
routine's cbTransferred.  That holds whether the bytes had arrived before the
receive was posted or came while it pended.

Sources (plain ``ok()`` checks, run on Windows): Wine's sock.c @ 3379ee2e6b5f
test_WSARecv ("Test 2 buffers": 9 bytes already arrived, buffers of 4 and 5:
count 9, "dead" then "beefs") and test_write_watch (a receive into buffers of 5
and 0x8000 posted before "test message" is sent: GetOverlappedResult(TRUE)
gives 13, "test " in the first, "message" in the second); Microsoft's WSARecv
page (the buffers are filled in the order they appear in the array).

On the fake with ``partial_recv`` a receive may take fewer bytes than have
arrived (a stream may be cut anywhere); there the checks are that the count is
at least 1 and the buffers hold the start of the message, in order, and the
rest comes with the next receives.
"""

from __future__ import annotations

from fakewinsock import WSABUF, WSAOVERLAPPED, CompletionRoutine, FakeWinsock
from fakewinsock.constants import FALSE, SOCKET_ERROR, TRUE, WAIT_IO_COMPLETION, WSA_IO_PENDING, WSA_WAIT_TIMEOUT

from ._harness import Harness

MESSAGE = b"test message\x00"  # test_write_watch's 13 bytes


def takes_all(h: Harness) -> bool:
    """Whether a receive takes everything that has arrived (up to its length):
    Windows, and the fake unless it cuts receives short (``partial_recv``)."""
    return not (isinstance(h.ws, FakeWinsock) and h.ws.config.partial_recv > 0)


def post_two(h: Harness, s: int, ov: WSAOVERLAPPED, first: int, second: int,
             routine: CompletionRoutine | None = None) -> tuple[int, bytearray, bytearray]:
    """WSARecv into two fresh buffers of ``first`` and ``second`` bytes:
    (rc, the first buffer, the second)."""
    b0, b1 = bytearray(first), bytearray(second)
    rc, _, _ = h.ws.WSARecv(s, [WSABUF(first, b0), WSABUF(second, b1)], 2, 0, ov, routine)
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING
    return rc, b0, b1


def check_split(h: Harness, s: int, b0: bytearray, b1: bytearray, n: int, message: bytes,
                port: int = 0) -> None:
    """The ``n`` bytes received fill ``b0`` first, then ``b1``, in order; the
    rest of ``message`` (if the receive was cut short) comes next (through
    ``port`` when the socket is associated with one)."""
    assert 1 <= n <= len(message)
    if takes_all(h):
        assert n == len(message)
    k = len(b0)
    assert bytes(b0[:min(n, k)]) == message[:min(n, k)], "the first buffer is not filled first"
    assert bytes(b1[:max(0, n - k)]) == message[k:n], "the second buffer does not go on where the first ends"
    if n < len(message):
        rest = h.recv_all_on_port(s, port, len(message) - n) if port else h.recv_all(s, len(message) - n)
        assert rest == message[n:]


def test_a_message_that_had_arrived_fills_both_buffers_in_order(h: Harness) -> None:
    """test_WSARecv, "Test 2 buffers": 9 bytes already there, buffers of 4 and
    5: the count is 9, "dead" in the first and "beefs" in the second."""
    a = h.accept()
    a.peer.send(b"deadbeefs")
    h.settle()  # the bytes have arrived before the receive is posted
    ov = h.overlapped()
    _, b0, b1 = post_two(h, a.sock, ov, 4, 5)
    ok, n, err = h.complete(a.sock, ov)
    assert (ok, err) == (TRUE, 0)
    assert ov.InternalHigh == n
    check_split(h, a.sock, b0, b1, n, b"deadbeefs")


def test_a_receive_posted_before_the_message_fills_both_buffers_in_order(h: Harness) -> None:
    """test_write_watch: buffers of 5 and 32 bytes posted first (pending, nothing
    written), then "test message\\0" is sent: WSAGetOverlappedResult(fWait=TRUE)
    gives 13, "test " in the first buffer and "message\\0" in the second."""
    a = h.accept()
    ov = h.overlapped()
    rc, b0, b1 = post_two(h, a.sock, ov, 5, 32)
    assert rc == SOCKET_ERROR  # nothing has come: it pends
    assert h.wait(ov.hEvent, 50) == WSA_WAIT_TIMEOUT
    assert b0 == bytearray(5) and b1 == bytearray(32)
    a.peer.send(MESSAGE)
    ok, n, flags = h.ws.WSAGetOverlappedResult(a.sock, ov, TRUE)
    assert (ok, flags) == (TRUE, 0)
    assert ov.InternalHigh == n
    check_split(h, a.sock, b0, b1, n, MESSAGE)


def test_a_scatter_receive_through_a_port_reports_its_count_once(h: Harness) -> None:
    """Through a completion port: one packet (TRUE, the count InternalHigh holds,
    the socket's key, the OVERLAPPED) for the two buffers together, then nothing."""
    a = h.accept()
    port = h.port()
    assert h.ws.CreateIoCompletionPort(a.sock, port, 9, 0) == port
    ov = h.overlapped(with_event=False)
    _, b0, b1 = post_two(h, a.sock, ov, 5, 32)
    a.peer.send(MESSAGE)
    ok, n, key, got = h.ws.GetQueuedCompletionStatus(port, 5000)
    assert (ok, key, got) == (TRUE, 9, ov)
    assert n == ov.InternalHigh
    assert h.ws.GetQueuedCompletionStatus(port, 0)[0] == FALSE  # one packet, not one a buffer
    check_split(h, a.sock, b0, b1, n, MESSAGE, port)


def test_a_scatter_receive_through_a_routine_reports_its_count_once(h: Harness) -> None:
    """Through a completion routine: it runs once, with (0, the count, the
    OVERLAPPED, 0), in the next alertable wait."""
    a = h.accept()
    calls: list[tuple[int, int, WSAOVERLAPPED, int]] = []

    def routine(err: int, n: int, ov: WSAOVERLAPPED, flags: int) -> None:
        calls.append((err, n, ov, flags))

    ov = h.overlapped(with_event=False)
    _, b0, b1 = post_two(h, a.sock, ov, 5, 32, routine)
    a.peer.send(MESSAGE)
    assert h.ws.SleepEx(5000, TRUE) == WAIT_IO_COMPLETION
    assert len(calls) == 1
    err, n, got, flags = calls[0]
    assert (err, got, flags) == (0, ov, 0)
    assert n == ov.InternalHigh
    check_split(h, a.sock, b0, b1, n, MESSAGE)
