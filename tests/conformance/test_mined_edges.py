"""Edges of the interface no other conformance test held (fidelity session 5):
MSG_PEEK, SO_CONNECT_TIME, half-closed connections, cancelled receives, and
kernel32 calls given a handle of the wrong kind.

Sources (each test names its own): Wine's ``dlls/ws2_32/tests/sock.c`` @
``3379ee2e6b5f`` and ``dlls/kernel32/tests/sync.c`` / ``thread.c``, whose plain
``ok()`` checks run on Windows, and Microsoft's pages of the functions.  See
docs/semantics-findings.md section 21.
"""

from __future__ import annotations

from typing import Any

import pytest

from fakewinsock import WSABUF, WSAOVERLAPPED
from fakewinsock.constants import (
    ERROR_INVALID_HANDLE,
    ERROR_OPERATION_ABORTED,
    FALSE,
    MSG_PEEK,
    SD_BOTH,
    SD_SEND,
    SO_CONNECT_TIME,
    SOCKET_ERROR,
    SOL_SOCKET,
    STATUS_CANCELLED,
    TRUE,
    WAIT_OBJECT_0,
    WAIT_TIMEOUT,
    WSA_IO_PENDING,
    WSA_OPERATION_ABORTED,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_TIMEOUT,
    WSAEFAULT,
    WSAENOTSOCK,
    WSAEWOULDBLOCK,
)

from ._harness import WAIT_MS, Harness

# -- MSG_PEEK ---------------------------------------------------------------------
# Microsoft's WSARecv page: MSG_PEEK copies the incoming data into the buffers
# without removing it from the input queue.  Wine's sock.c test_fionread_siocatmark
# (recv with MSG_PEEK, run on Windows): the peeked bytes, then the same bytes again.


def _recv_flags(h: Harness, s: int, ov: WSAOVERLAPPED, size: int, flags: int) -> tuple[int, bytearray]:
    buf = bytearray(size)
    rc, _, _ = h.ws.WSARecv(s, [WSABUF(size, buf)], 1, flags, ov, None)
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING, h.ws.WSAGetLastError()
    return rc, buf


def _settle_data(h: Harness, s: int, data: bytes) -> None:
    """Wait until all of ``data`` has arrived at ``s`` (peek until it shows whole)."""
    for _ in range(50):
        ov = h.overlapped()
        _, buf = _recv_flags(h, s, ov, len(data), MSG_PEEK)
        ok, n, err = h.complete(s, ov)
        assert ok, err
        if n == len(data):
            return
        h.ws.Sleep(20)
    raise AssertionError("the peer's bytes never all arrived")


def test_peek_leaves_the_data_for_the_next_receive(h: Harness) -> None:
    """A peek reads the bytes there and leaves them: a second peek and then a
    plain receive get the same bytes."""
    a = h.accept()
    a.peer.send(b"data")
    _settle_data(h, a.sock, b"data")
    ov = h.overlapped()
    _, buf = _recv_flags(h, a.sock, ov, 2, MSG_PEEK)
    ok, n, err = h.complete(a.sock, ov)
    assert ok, err
    assert 1 <= n <= 2 and bytes(buf[:n]) == b"da"[:n]  # (the fake's partial_recv may take 1)
    assert h.recv_all(a.sock, 4) == b"data"


def test_peek_posted_before_the_data_completes_with_it_and_keeps_it(h: Harness) -> None:
    """A peek posted on an empty connection pends, completes when bytes arrive,
    and the bytes are still there for a plain receive."""
    a = h.accept()
    ov = h.overlapped()
    rc, buf = _recv_flags(h, a.sock, ov, 16, MSG_PEEK)
    assert rc == SOCKET_ERROR
    assert not h.is_signalled(ov.hEvent)
    a.peer.send(b"hello")
    ok, n, err = h.complete(a.sock, ov)
    assert ok, err
    assert 1 <= n <= 5 and bytes(buf[:n]) == b"hello"[:n]
    assert h.recv_all(a.sock, 5) == b"hello"


def test_peek_at_eof_reads_zero_and_eof_stays(h: Harness) -> None:
    """After the peer's FIN a peek reads 0 bytes, and so does the receive after it."""
    a = h.accept()
    a.peer.shutdown()
    ov = h.overlapped()
    _recv_flags(h, a.sock, ov, 8, MSG_PEEK)
    assert h.complete(a.sock, ov)[:2] == (TRUE, 0)
    ok, data, err = h.recv_once(a.sock)
    assert (ok, data) == (TRUE, b""), err


# -- SO_CONNECT_TIME ----------------------------------------------------------------
# Wine's sock.c test_connect_time (run on Windows): getsockopt succeeds, clears
# the last error and writes 4 bytes: ~0u on a socket never connected, 0 on both
# ends right after the connection.


def _connect_time(h: Harness, s: int, optlen: int = 4) -> int:
    h.ws.WSASetLastError(0xDEADBEEF)
    rc, raw = h.ws.getsockopt(s, SOL_SOCKET, SO_CONNECT_TIME, optlen)
    assert rc == 0, h.ws.WSAGetLastError()
    assert h.ws.WSAGetLastError() == 0 and len(raw) == 4
    return int.from_bytes(raw, "little")


def test_connect_time_of_a_socket_never_connected_is_all_ones(h: Harness) -> None:
    assert _connect_time(h, h.socket()) == 0xFFFFFFFF


def test_connect_time_is_zero_right_after_connecting_on_both_ends(h: Harness) -> None:
    """A connect()ed client and the AcceptEx socket that took its connection."""
    lst, port = h.listener()
    posted = h.post_accept(on=(lst, port))
    client = h.socket()
    from fakewinsock import sockaddr_in

    assert h.ws.connect(client, sockaddr_in("127.0.0.1", port), 16) == 0
    assert h.complete(lst, posted.ov)[0] == TRUE
    assert _connect_time(h, client) == 0
    assert _connect_time(h, posted.sock) == 0


def test_connect_time_counts_whole_seconds(h: Harness) -> None:
    """Microsoft's SOL_SOCKET options page: the number of seconds the socket has
    been connected."""
    a = h.accept()
    assert _connect_time(h, a.sock) == 0
    h.ws.Sleep(1100)
    assert _connect_time(h, a.sock) in (1, 2)  # (2: a loaded machine may run late)


def test_connect_time_of_a_listener_is_all_ones(h: Harness) -> None:
    """A listening socket is not connected (the same ~0u as an unconnected one)."""
    lst, _ = h.listener()
    assert _connect_time(h, lst) == 0xFFFFFFFF


def test_connect_time_with_a_short_buffer_fails(h: Harness) -> None:
    """A 4-byte option read into less than 4 bytes: WSAEFAULT (as SO_RCVBUF and
    the other 4-byte options in test_set_getsockopt's size table)."""
    s = h.socket()
    assert h.ws.getsockopt(s, SOL_SOCKET, SO_CONNECT_TIME, 2)[0] == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAEFAULT


# -- half-closed connections ---------------------------------------------------------
# Wine's sock.c test_shutdown (run on Windows): after one side's SD_SEND the other
# direction goes on working, and EOF is read again and again.


def test_after_the_peers_fin_sends_still_reach_it(h: Harness) -> None:
    a = h.accept()
    a.peer.shutdown()
    assert h.recv_once(a.sock)[:2] == (TRUE, b"")
    assert h.send(a.sock, b"still here") == (TRUE, 10)
    assert a.peer.recv_exactly(10) == b"still here"


def test_eof_is_read_again_by_every_later_receive(h: Harness) -> None:
    a = h.accept()
    a.peer.shutdown()
    for _ in range(3):
        ok, data, err = h.recv_once(a.sock)
        assert (ok, data) == (TRUE, b""), err


def test_after_our_sd_send_receives_still_work(h: Harness) -> None:
    a = h.accept()
    assert h.ws.shutdown(a.sock, SD_SEND) == 0
    assert a.peer.recv(16) == b""  # our FIN
    a.peer.send(b"reply")
    assert h.recv_all(a.sock, 5) == b"reply"


def test_shutdown_of_a_closed_socket_is_not_a_socket(h: Harness) -> None:
    """test_shutdown: shutdown after closesocket gives WSAENOTSOCK."""
    a = h.accept()
    assert h.close(a.sock) == 0
    assert h.ws.shutdown(a.sock, SD_BOTH) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAENOTSOCK



@pytest.mark.wine_divergence("Wine 8.0 fails getpeername with WSAENOTCONN once both directions are closed "
                             "(the Linux socket underneath has no peer any more); Windows answers (sock.c "
                             "test_shutdown, SD_BOTH part: getpeername on both ends after both shut down, plain ok())")
def test_names_survive_a_connection_closed_both_ways(h: Harness) -> None:
    """test_shutdown: after SD_BOTH here and the peer's FIN, getpeername still gives
    the peer's address and getsockname ours, until closesocket."""
    a = h.accept()
    rc, ours = h.ws.getsockname(a.sock)
    assert rc == 0 and ours is not None
    assert h.ws.shutdown(a.sock, SD_BOTH) == 0
    assert a.peer.recv(16) == b""
    a.peer.shutdown()
    h.settle()
    rc, theirs = h.ws.getpeername(a.sock)
    assert rc == 0, h.ws.WSAGetLastError()
    assert theirs is not None and (theirs.host, theirs.port) == a.peer.address
    assert h.ws.getsockname(a.sock) == (0, ours)

# -- cancelled receives -----------------------------------------------------------------


def test_data_arriving_after_a_cancelled_receive_is_not_lost(h: Harness) -> None:
    """CancelIoEx ends the receive with 995 and no bytes; what the peer sends
    afterwards waits for the next receive (Microsoft's CancelIoEx page: only the
    request is cancelled; a stream loses no byte)."""
    a = h.accept()
    ov = h.overlapped()
    rc, _, _ = h.recv(a.sock, ov)
    assert rc == SOCKET_ERROR
    assert h.ws.CancelIoEx(a.sock, ov) == TRUE
    ok, n, err = h.complete(a.sock, ov)
    assert (ok, n, err) == (FALSE, 0, WSA_OPERATION_ABORTED)
    a.peer.send(b"kept")
    assert h.recv_all(a.sock, 4) == b"kept"


@pytest.mark.parametrize("together", [False, True], ids=["one-at-a-time", "two-pending"])
def test_receives_cancelled_in_turn_leave_the_connection_usable(h: Harness, together: bool) -> None:
    """dotnet/runtime's ``SendReceive.cs`` (@ ``0b566aa670c0``; its tests run on Windows in CI; its
    Windows sockets cancel with CancelIoEx and the operation's OVERLAPPED),
    ReceiveAsync_CanceledDuringOperation_Throws: a receive of 0 bytes, then one of 1 byte posted after the
    first was cancelled, each pends and ends cancelled; then the socket's send reaches the peer.  corefx's
    older TCP_ReceiveCanceledDuringOperation_Throws also cancels two receives pending at once.  So a
    cancelled receive leaves the receiving side open: the next receive pends (vibe-d eventcore #225 reported
    a connection that read as closed after CancelIoEx of a read; section 35)."""
    a = h.accept()
    for size in (0, 1):
        ovs = [h.overlapped() for _ in range(2 if together else 1)]
        for ov in ovs:
            rc, _, _ = h.recv(a.sock, ov, size)
            assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
        assert h.wait(ovs[-1].hEvent, 50) == WSA_WAIT_TIMEOUT
        for ov in ovs:
            assert h.ws.CancelIoEx(a.sock, ov) == TRUE
        for ov in ovs:
            assert h.complete(a.sock, ov) == (FALSE, 0, WSA_OPERATION_ABORTED)
            assert ov.Internal == STATUS_CANCELLED
    ok, n = h.send(a.sock, b"x")
    assert (ok, n) == (TRUE, 1)
    assert a.peer.recv_exactly(1) == b"x"
    a.peer.send(b"after")
    assert h.recv_all(a.sock, 5) == b"after"


def test_cancelled_receive_routine_gets_operation_aborted(h: Harness) -> None:
    """A receive with a completion routine, cancelled: the routine runs at the next
    alertable wait with dwError WSA_OPERATION_ABORTED (995) and 0 bytes; Internal
    holds STATUS_CANCELLED (sock.c test_WSAGetOverlappedResult's status table:
    STATUS_CANCELLED is WSA_OPERATION_ABORTED)."""
    a = h.accept()
    calls: list[tuple[int, int]] = []

    def routine(dwError: int, cb: int, ov: WSAOVERLAPPED, flags: int) -> None:
        calls.append((dwError, cb))

    ov = WSAOVERLAPPED()
    rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(8, bytearray(8))], 1, 0, ov, routine)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert h.ws.CancelIoEx(a.sock, ov) == TRUE
    for _ in range(50):
        if h.ws.SleepEx(100, TRUE) != 0:
            break
    assert calls == [(WSA_OPERATION_ABORTED, 0)]
    assert ov.Internal == STATUS_CANCELLED


def test_cancelled_receive_packet_on_a_port(h: Harness) -> None:
    """On a completion port the cancelled receive dequeues FALSE with
    ERROR_OPERATION_ABORTED, its key, its OVERLAPPED and 0 bytes (the port's
    Win32 view of STATUS_CANCELLED)."""
    a = h.accept()
    port = h.port()
    assert h.ws.CreateIoCompletionPort(a.sock, port, 77, 0) == port
    ov = WSAOVERLAPPED()
    rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(8, bytearray(8))], 1, 0, ov, None)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert h.ws.CancelIoEx(a.sock, ov) == TRUE
    ok, n, key, got = h.ws.GetQueuedCompletionStatus(port, WAIT_MS)
    assert (ok, n, key, got) == (FALSE, 0, 77, ov)
    assert h.ws.GetLastError() == ERROR_OPERATION_ABORTED


# -- waits with a handle twice; kernel32 calls on the wrong kind of handle ---------------


def test_wait_any_with_an_event_twice_gives_the_first_index(h: Harness) -> None:
    """Only bWaitAll refuses a handle given twice (Microsoft's
    WaitForMultipleObjects page); waiting for any of them returns the lowest index."""
    a, b = h.event(), h.event()
    assert h.ws.WSASetEvent(b) == TRUE
    assert h.ws.WSAWaitForMultipleEvents(3, [a, b, b], FALSE, 0, FALSE) == WSA_WAIT_EVENT_0 + 1
    assert h.ws.WaitForMultipleObjects(3, [b, a, b], FALSE, 0) == WAIT_OBJECT_0
    assert h.ws.WSAWaitForMultipleEvents(2, [a, a], FALSE, 0, FALSE) == WSA_WAIT_TIMEOUT


def test_thread_calls_on_an_event_handle_fail_with_invalid_handle(h: Harness) -> None:
    """GetExitCodeThread and ResumeThread on an event: FALSE / (DWORD)-1 with
    ERROR_INVALID_HANDLE (an object of the wrong type: STATUS_OBJECT_TYPE_MISMATCH,
    which kernel32 reports as ERROR_INVALID_HANDLE)."""
    h.assert_not_a_thread(h.event())


def test_resume_of_a_running_thread_gives_zero(h: Harness) -> None:
    """thread.c test_SuspendThread: ResumeThread on a thread that is not
    suspended returns 0 (its previous suspend count) and changes nothing."""
    ev = h.event()

    def routine(param: Any) -> int:
        h.ws.WaitForSingleObject(ev, WAIT_MS)
        return 3

    hThread, _ = h.ws.CreateThread(None, 0, routine, None, 0)
    assert hThread != 0
    assert h.ws.ResumeThread(hThread) == 0
    assert h.ws.WaitForSingleObject(hThread, 0) == WAIT_TIMEOUT
    assert h.ws.WSASetEvent(ev) == TRUE
    assert h.ws.WaitForSingleObject(hThread, WAIT_MS) == WAIT_OBJECT_0
    assert h.ws.GetExitCodeThread(hThread) == (TRUE, 3)
    assert h.ws.CloseHandle(hThread) == TRUE


def test_alertable_waits_with_nothing_queued_time_out(h: Harness) -> None:
    """SleepEx(0, TRUE) returns 0 and an alertable zero-timeout wait on an unsignalled
    event WSA_WAIT_TIMEOUT when no routine is queued; the last error is left alone
    (sync.c test_WaitForSingleObject: a wait that times out leaves it)."""
    ev = h.event()
    h.ws.WSASetLastError(WSAEWOULDBLOCK)
    assert h.ws.SleepEx(0, TRUE) == 0
    assert h.ws.WSAWaitForMultipleEvents(1, [ev], FALSE, 0, TRUE) == WSA_WAIT_TIMEOUT
    assert h.ws.WSAGetLastError() == WSAEWOULDBLOCK


def test_port_calls_on_a_socket_handle_fail_with_invalid_handle(h: Harness) -> None:
    """A socket is no completion port: GetQueuedCompletionStatus(Ex) and
    PostQueuedCompletionStatus on it fail with ERROR_INVALID_HANDLE (the kernel's
    STATUS_OBJECT_TYPE_MISMATCH, which kernel32 reports as ERROR_INVALID_HANDLE;
    test_bad_port_handles does the same with an event)."""
    a = h.accept()
    h.ws.SetLastError(0)
    assert h.ws.GetQueuedCompletionStatus(a.sock, 0)[0::3] == (FALSE, None)
    assert h.ws.GetLastError() == ERROR_INVALID_HANDLE
    h.ws.SetLastError(0)
    assert h.ws.PostQueuedCompletionStatus(a.sock, 1, 2, None) == FALSE
    assert h.ws.GetLastError() == ERROR_INVALID_HANDLE
    h.ws.SetLastError(0)
    assert h.ws.GetQueuedCompletionStatusEx(a.sock, 1, 0, FALSE) == (FALSE, [])
    assert h.ws.GetLastError() == ERROR_INVALID_HANDLE


def test_event_calls_on_a_thread_or_port_handle_fail_with_invalid_handle(h: Harness) -> None:
    """WSASetEvent and WSAResetEvent (SetEvent, ResetEvent) on a handle that names
    no event: FALSE, WSA_INVALID_HANDLE (6); the thread and port are untouched."""
    port = h.port()
    ev = h.event()

    def routine(param: Any) -> int:
        h.ws.WaitForSingleObject(ev, WAIT_MS)
        return 0

    hThread, _ = h.ws.CreateThread(None, 0, routine, None, 0)
    for handle in (hThread, port):
        h.assert_not_an_event(handle)
    assert h.ws.WaitForSingleObject(hThread, 0) == WAIT_TIMEOUT  # not signalled by the SetEvent
    assert h.ws.WSASetEvent(ev) == TRUE
    assert h.ws.WaitForSingleObject(hThread, WAIT_MS) == WAIT_OBJECT_0
    assert h.ws.CloseHandle(hThread) == TRUE
    assert h.ws.PostQueuedCompletionStatus(port, 0, 9, None) == TRUE
    assert h.ws.GetQueuedCompletionStatus(port, 0)[0::2] == (TRUE, 9)

