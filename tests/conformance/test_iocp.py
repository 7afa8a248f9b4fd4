"""Completion ports (issue 15): CreateIoCompletionPort, GetQueuedCompletionStatus(Ex),
PostQueuedCompletionStatus, SetFileCompletionNotificationModes, CancelIo, CloseHandle.

Sources (Windows behaviour): Wine's sock.c test_completion_port, test_iocp
(iocp_async_read, iocp_async_read_closesocket), test_connect_completion_port and
test_shutdown_completion_port (the hEvent low bit, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS),
test_WSARecv (a completion routine on a socket with a port); kernel32 sync.c
test_iocp_callback (a second association); Microsoft's pages for each call
(CancelIo and CancelIoEx: which thread's requests, a given OVERLAPPED,
ERROR_NOT_FOUND; SetFileCompletionNotificationModes: an explicit event is
still signalled; GetQueuedCompletionStatusEx: the alertable wait happens only
when no entry is there, once the thread is associated with the port: see
test_port_association_apcs.py; "I/O Completion Ports": LIFO release).
"""

from __future__ import annotations

from typing import cast

import pytest

from fakewinsock import WSABUF, WSAOVERLAPPED, Peer, WinsockUsageError
from fakewinsock.constants import (
    ERROR_ABANDONED_WAIT_0,
    ERROR_CONNECTION_ABORTED,
    ERROR_INVALID_HANDLE,
    ERROR_INVALID_PARAMETER,
    ERROR_NETNAME_DELETED,
    ERROR_NOT_FOUND,
    ERROR_OPERATION_ABORTED,
    FALSE,
    FILE_SKIP_COMPLETION_PORT_ON_SUCCESS,
    FILE_SKIP_SET_EVENT_ON_HANDLE,
    INVALID_HANDLE_VALUE,
    SO_UPDATE_ACCEPT_CONTEXT,
    SOCKET_ERROR,
    SOL_SOCKET,
    STATUS_CANCELLED,
    STATUS_CONNECTION_ABORTED,
    STATUS_CONNECTION_RESET,
    STATUS_SUCCESS,
    TRUE,
    WAIT_FAILED,
    WAIT_IO_COMPLETION,
    WAIT_OBJECT_0,
    WAIT_TIMEOUT,
    WSA_IO_PENDING,
    WSAECONNRESET,
    WSAEINVAL,
    WSAENOTCONN,
)

from ._harness import ADDR_SLOT, Accepted, Harness

ULONG_PTR_MAX = 0xFFFFFFFFFFFFFFFF

MS = 5000
Call = tuple[int, int]


def associate(h: Harness, s: int, port: int, key: int) -> None:
    assert h.ws.CreateIoCompletionPort(s, port, key, 0) == port


def nothing_queued(h: Harness, port: int, ms: int = 200) -> None:
    """GetQueuedCompletionStatus times out: FALSE, WAIT_TIMEOUT, lpOverlapped NULL."""
    ok, _, _, ov = h.ws.GetQueuedCompletionStatus(port, ms)
    assert (ok, ov) == (FALSE, None)
    assert h.ws.WSAGetLastError() == WAIT_TIMEOUT


def post_recv(h: Harness, s: int, ov: WSAOVERLAPPED, size: int = 4096) -> tuple[int, int, bytearray]:
    rc, n, buf = h.recv(s, ov, size)
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING, h.ws.WSAGetLastError()
    return rc, n, buf


def pending_receive(h: Harness, key: int) -> tuple[Accepted, int, WSAOVERLAPPED]:
    """A connection whose socket is associated with a new port (``key``) and a
    receive pending on it (the test is skipped if it completed at once)."""
    a = h.accept()
    port = h.port()
    associate(h, a.sock, port, key)
    ov = h.overlapped()
    rc, _, _ = post_recv(h, a.sock, ov)
    if rc == 0:
        pytest.skip("the receive completed at once")
    return a, port, ov


# -- CreateIoCompletionPort ------------------------------------------------------


def test_create_and_associate(h: Harness) -> None:
    """A new port; associating a socket returns the same port; a second
    association fails with ERROR_INVALID_PARAMETER, to the same port or a new
    one (kernel32 sync.c test_iocp_callback)."""
    port = h.port()
    s = h.socket()
    associate(h, s, port, 125)
    for existing in (port, 0):
        h.ws.WSASetLastError(0)
        assert h.ws.CreateIoCompletionPort(s, existing, 7, 0) == 0
        assert h.ws.WSAGetLastError() == ERROR_INVALID_PARAMETER
    # A socket and no port: a new port, already associated.
    s2 = h.socket()
    port2 = h.ws.CreateIoCompletionPort(s2, 0, 1, 0)
    assert port2 not in (0, port)
    h.ports.append(port2)
    assert h.ws.CreateIoCompletionPort(s2, port, 1, 0) == 0
    assert h.ws.WSAGetLastError() == ERROR_INVALID_PARAMETER


def test_create_with_bad_handles(h: Harness) -> None:
    """Not a socket, or not a port: ERROR_INVALID_HANDLE; INVALID_HANDLE_VALUE
    with an existing port: ERROR_INVALID_PARAMETER."""
    port = h.port()
    s = h.socket()
    ev = h.event()
    closed = h.socket()
    h.close(closed)
    for file_handle, existing in ((closed, port), (ev, port), (s, ev), (s, closed)):
        h.ws.WSASetLastError(0)
        assert h.ws.CreateIoCompletionPort(file_handle, existing, 0, 0) == 0
        assert h.ws.WSAGetLastError() == ERROR_INVALID_HANDLE, (file_handle, existing)
    assert h.ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, port, 0, 0) == 0
    assert h.ws.WSAGetLastError() == ERROR_INVALID_PARAMETER
    # The failed attempts associated nothing: s can still get a port.
    associate(h, s, port, 3)


def test_no_file_and_any_port_is_an_invalid_parameter(h: Harness) -> None:
    """INVALID_HANDLE_VALUE with an ExistingCompletionPort that is no port (an
    event, a closed port, a value that names nothing): ERROR_INVALID_PARAMETER,
    as with a real port; the port argument is not looked at (Microsoft's page:
    with INVALID_HANDLE_VALUE "the ExistingCompletionPort parameter must be
    NULL"; Wine's kernelbase CreateIoCompletionPort fails before it touches the
    port; docs/semantics-findings.md section 57)."""
    ev = h.event()
    closed = h.ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, 0)
    assert closed != 0
    assert h.ws.CloseHandle(closed) == TRUE
    for existing in (ev, closed, 0xDEAD0):
        h.ws.WSASetLastError(0)
        assert h.ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, existing, 0, 0) == 0
        assert h.ws.WSAGetLastError() == ERROR_INVALID_PARAMETER, existing


# -- packets of operations --------------------------------------------------------


def test_pending_receive_queues_a_packet(h: Harness) -> None:
    """TRUE, the bytes, the key, the caller's own OVERLAPPED; the last error is
    left as it was; the OVERLAPPED's event is signalled too; then nothing more
    (sock.c iocp_async_read)."""
    a = h.accept()
    port = h.port()
    associate(h, a.sock, port, 0x12345678)
    ov = h.overlapped()
    rc, _, buf = post_recv(h, a.sock, ov)
    if rc == SOCKET_ERROR:
        nothing_queued(h, port, 100)
    a.peer.send(b"Hello World!")
    h.ws.WSASetLastError(12345)
    ok, n, key, got = h.ws.GetQueuedCompletionStatus(port, MS)
    assert (ok, key) == (TRUE, 0x12345678)
    assert got is ov
    assert 1 <= n <= 12 and bytes(buf[:n]) == b"Hello World!"[:n]
    assert ov.Internal == 0 and ov.InternalHigh == n
    assert h.ws.WSAGetLastError() == 12345
    assert h.is_signalled(ov.hEvent)
    nothing_queued(h, port)


@pytest.mark.needs_immediate
def test_immediate_success_still_queues_a_packet(h: Harness) -> None:
    """A WSARecv that returns 0 at once still queues its packet, with the same
    byte count (sock.c test_completion_port, 'successful immediate read')."""
    a = h.accept()
    port = h.port()
    associate(h, a.sock, port, 125)
    for _ in range(20):
        a.peer.send(b"ready")
        h.settle()  # the bytes have arrived: the receive can complete at once
        ov = h.overlapped()
        rc, n, _ = post_recv(h, a.sock, ov)
        ok, n2, key, got = h.ws.GetQueuedCompletionStatus(port, MS)
        assert (ok, key) == (TRUE, 125) and got is ov
        if rc == 0:
            assert n2 == n
            nothing_queued(h, port)
            return
    pytest.fail("no receive ever completed at once")


def test_graceful_close_queues_a_zero_byte_packet(h: Harness) -> None:
    """The peer's FIN: the receive completes with 0 bytes, TRUE (sock.c
    test_completion_port, 'graceful shutdown')."""
    a = h.accept()
    port = h.port()
    associate(h, a.sock, port, 125)
    ov = h.overlapped()
    post_recv(h, a.sock, ov)
    a.peer.close()
    assert h.ws.GetQueuedCompletionStatus(port, MS) == (TRUE, 0, 125, ov)


def test_reset_dequeues_a_failed_packet(h: Harness) -> None:
    """A receive failed by the peer's RST: FALSE with the OVERLAPPED, the key
    and 0 bytes, ERROR_NETNAME_DELETED (sock.c test_completion_port)."""
    a, port, ov = pending_receive(h, 125)
    a.peer.reset()
    h.ws.WSASetLastError(0)
    assert h.ws.GetQueuedCompletionStatus(port, MS) == (FALSE, 0, 125, ov)
    assert h.ws.WSAGetLastError() == ERROR_NETNAME_DELETED
    assert ov.Internal == STATUS_CONNECTION_RESET
    nothing_queued(h, port)


def test_immediate_failure_queues_nothing(h: Harness) -> None:
    """A receive that fails inside its call (never connected: WSAENOTCONN)
    queues no packet (sock.c test_completion_port)."""
    port = h.port()
    s = h.socket()
    associate(h, s, port, 125)
    ov = h.overlapped()
    rc, n, _ = h.recv(s, ov)
    assert (rc, n) == (SOCKET_ERROR, 0)
    assert h.ws.WSAGetLastError() == WSAENOTCONN
    nothing_queued(h, port)


@pytest.mark.wine_divergence("after a reset that came with no receive pending Wine 8.0's WSARecv succeeds at once "
                              "(0 bytes: EOF; todo_wine in sock.c test_completion_port, 'hard shutdown'); a race "
                              "in Wine: on a loaded machine its WSARecv now and then still fails with "
                              "WSAECONNRESET, as Windows' does (seen once in a whole conformance run, wine33)",
                              strict=False)
def test_a_receive_after_the_peers_reset_fails_at_once_and_queues_nothing(h: Harness) -> None:
    """The peer resets (SO_LINGER {1,0}, close) while nothing is pending; the
    next WSARecv on the socket, associated with a port, fails inside its call
    with WSAECONNRESET and queues no packet (sock.c test_completion_port,
    "Test IOCP response on hard shutdown", the crash of Wine bug 38980: plain
    ok() on Windows, todo_wine)."""
    a = h.accept()
    port = h.port()
    associate(h, a.sock, port, 125)
    a.peer.reset()
    h.ws.Sleep(200)  # (sock.c waits in select for the socket to read as readable)
    ov = h.overlapped()
    rc, _, _ = h.recv(a.sock, ov)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSAECONNRESET
    nothing_queued(h, port)
    assert not h.is_signalled(ov.hEvent)


@pytest.mark.wine_divergence("Wine 8.0 ends a receive cut by closesocket with STATUS_HANDLES_CLOSED "
                              "(ERROR_HANDLES_CLOSED, 676), Windows with STATUS_CONNECTION_ABORTED (1236): "
                              "todo_wine in sock.c iocp_async_read_closesocket")
def test_closesocket_fails_the_pending_receive(h: Harness) -> None:
    """closesocket with a receive pending: its packet is FALSE,
    ERROR_CONNECTION_ABORTED, Internal STATUS_CONNECTION_ABORTED (sock.c
    iocp_async_read_closesocket; todo_wine there)."""
    a, port, ov = pending_receive(h, 0x12345678)
    h.close(a.sock)
    h.ws.WSASetLastError(0)
    ok, n, key, got = h.ws.GetQueuedCompletionStatus(port, MS)
    assert (ok, n, key, got) == (FALSE, 0, 0x12345678, ov)
    assert (h.ws.WSAGetLastError(), ov.Internal) == (ERROR_CONNECTION_ABORTED, STATUS_CONNECTION_ABORTED)


@pytest.mark.parametrize("associate_first", [True, False], ids=["port-then-accept", "accept-then-port"])
def test_acceptex_on_a_closed_listener(h: Harness, associate_first: bool) -> None:
    """AcceptEx pending, the listener closed: FALSE, ERROR_OPERATION_ABORTED,
    Internal STATUS_CANCELLED, the listener's key; also when the port was
    associated after AcceptEx was posted (sock.c test_completion_port)."""
    lst, _ = h.listener()
    acc = h.socket()
    port = h.port()
    if associate_first:
        associate(h, lst, port, 125)
    ov = h.overlapped()
    ok, _ = h.ws.AcceptEx(lst, acc, bytearray(2 * ADDR_SLOT), 0, ADDR_SLOT, ADDR_SLOT, ov)
    assert not ok and h.ws.WSAGetLastError() == WSA_IO_PENDING
    if not associate_first:
        associate(h, lst, port, 125)
    h.close(lst)
    h.ws.WSASetLastError(0)
    assert h.ws.GetQueuedCompletionStatus(port, MS) == (FALSE, 0, 125, ov)
    assert (h.ws.WSAGetLastError(), ov.Internal) == (ERROR_OPERATION_ABORTED, STATUS_CANCELLED)
    nothing_queued(h, port)


def _listener_and_accept_socket_on_one_port(h: Harness) -> tuple[int, int, int, int, WSAOVERLAPPED]:
    """A listener (key 125) and a fresh accept socket (key 236) associated with
    one new port, and an OVERLAPPED with an event: (listener, its port number,
    accept socket, completion port, OVERLAPPED)."""
    lst, lport = h.listener()
    acc = h.socket()
    port = h.port()
    associate(h, lst, port, 125)
    associate(h, acc, port, 236)
    return lst, lport, acc, port, h.overlapped()


def test_acceptex_packet_carries_the_listeners_key(h: Harness) -> None:
    """The accept socket has a key of its own; the packet carries the
    listener's (sock.c test_completion_port)."""
    lst, lport, acc, port, ov = _listener_and_accept_socket_on_one_port(h)
    ok, _ = h.ws.AcceptEx(lst, acc, bytearray(2 * ADDR_SLOT), 0, ADDR_SLOT, ADDR_SLOT, ov)
    assert ok or h.ws.WSAGetLastError() == WSA_IO_PENDING
    h.peer().connect("127.0.0.1", lport)
    assert h.ws.GetQueuedCompletionStatus(port, MS) == (TRUE, 0, 125, ov)
    assert ov.Internal == 0
    nothing_queued(h, port)


@pytest.mark.parametrize("client_sends", [True, False])
def test_acceptex_with_a_receive_length_on_a_port(h: Harness, client_sends: bool) -> None:
    """AcceptEx with a receive length, the listener (key 125) and the accept
    socket (key 236) on one port.  A client that sends one byte: one packet,
    TRUE, 1 byte, the listener's key, Internal STATUS_SUCCESS, even with the
    accept socket closed 100 ms later, before the packet is taken; a client
    that connects and closes without sending: TRUE, 0 bytes.  Nothing else is
    queued (sock.c test_completion_port, the last AcceptEx cases)."""
    lst, lport, acc, port, ov = _listener_and_accept_socket_on_one_port(h)
    out = bytearray(64 + 2 * ADDR_SLOT)
    ok, _ = h.ws.AcceptEx(lst, acc, out, 64, ADDR_SLOT, ADDR_SLOT, ov)
    assert not ok and h.ws.WSAGetLastError() == WSA_IO_PENDING
    p = h.peer()
    p.connect("127.0.0.1", lport)
    if client_sends:
        p.send(b"x")
        h.ws.Sleep(100)
        h.close(acc)
    else:
        p.close()
    assert h.ws.GetQueuedCompletionStatus(port, MS) == (TRUE, int(client_sends), 125, ov)
    assert ov.Internal == STATUS_SUCCESS
    assert bytes(out[:1]) == (b"x" if client_sends else b"\0")
    nothing_queued(h, port)


def test_acceptex_with_no_event_completes_through_the_port(h: Harness) -> None:
    """The usual IOCP server's accept: a zeroed OVERLAPPED (no hEvent), the
    listener associated with a port.  AcceptEx pends until a client comes
    (there is none yet), then its packet comes out of the port: TRUE, the
    listener's key, the same OVERLAPPED (sock.c test_completion_port posts
    its AcceptEx with a zeroed OVERLAPPED), and the socket is connected."""
    lst, lport = h.listener()
    acc = h.socket()
    port = h.port()
    associate(h, lst, port, 125)
    ov = WSAOVERLAPPED()
    ok, _ = h.ws.AcceptEx(lst, acc, bytearray(2 * ADDR_SLOT), 0, ADDR_SLOT, ADDR_SLOT, ov)
    assert (ok, h.ws.WSAGetLastError()) == (FALSE, WSA_IO_PENDING)
    h.peer().connect("127.0.0.1", lport)
    assert h.ws.GetQueuedCompletionStatus(port, MS) == (TRUE, 0, 125, ov)
    assert ov.Internal == 0
    assert h.ws.setsockopt(acc, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, lst, 8) == 0
    nothing_queued(h, port)


def test_low_bit_of_hevent_suppresses_the_packet(h: Harness) -> None:
    """An OVERLAPPED whose hEvent has its low bit set queues no packet; the
    event itself is still signalled (sock.c test_connect_completion_port)."""
    a = h.accept()
    port = h.port()
    associate(h, a.sock, port, 1)
    ev = h.event()
    ov = WSAOVERLAPPED()
    ov.hEvent = ev | 1
    post_recv(h, a.sock, ov)
    a.peer.send(b"x")
    assert h.wait(ev) == 0
    ok, n, _ = h.ws.WSAGetOverlappedResult(a.sock, ov, FALSE)
    assert (ok, n) == (TRUE, 1)
    nothing_queued(h, port)


def skipping_port(h: Harness) -> tuple[int, int, Peer]:
    a = h.accept()
    port = h.port()
    associate(h, a.sock, port, 9)
    assert h.ws.SetFileCompletionNotificationModes(a.sock, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS) == TRUE
    return a.sock, port, a.peer


def test_skip_completion_port_on_success_keeps_pending_packets(h: Harness) -> None:
    """FILE_SKIP_COMPLETION_PORT_ON_SUCCESS: an operation that pends still
    queues its packet (sock.c test_connect_completion_port)."""
    s, port, peer = skipping_port(h)
    ov = h.overlapped()
    rc, _, _ = post_recv(h, s, ov)
    if rc == 0:
        pytest.skip("the receive completed at once")
    peer.send(b"p")
    assert h.ws.GetQueuedCompletionStatus(port, MS) == (TRUE, 1, 9, ov)


def test_skip_completion_port_on_success_still_queues_a_cancelled_operation(h: Harness) -> None:
    """FILE_SKIP_COMPLETION_PORT_ON_SUCCESS: a receive that pended and is then
    cancelled (CancelIoEx) queues its packet, FALSE with
    ERROR_OPERATION_ABORTED, its key and OVERLAPPED, 0 bytes (Microsoft's
    SetFileCompletionNotificationModes: the packet is left out only for "a
    request [that] returns success immediately"); the receive's event is
    signalled too."""
    s, port, _ = skipping_port(h)
    ov = h.overlapped()
    rc, _, _ = post_recv(h, s, ov)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING  # (nothing was sent)
    assert h.ws.CancelIoEx(s, ov) == TRUE
    h.ws.SetLastError(0)
    assert h.ws.GetQueuedCompletionStatus(port, MS) == (FALSE, 0, 9, ov)
    assert h.ws.GetLastError() == ERROR_OPERATION_ABORTED
    assert h.is_signalled(ov.hEvent)
    nothing_queued(h, port)


@pytest.mark.needs_immediate
def test_skip_completion_port_on_success(h: Harness) -> None:
    """FILE_SKIP_COMPLETION_PORT_ON_SUCCESS: a receive that completes inside its
    call queues nothing; its event is still signalled (Microsoft's
    SetFileCompletionNotificationModes)."""
    s, port, peer = skipping_port(h)
    an_immediate_receive_queues_nothing(h, s, port, peer)


def an_immediate_receive_queues_nothing(h: Harness, s: int, port: int, peer: Peer) -> None:
    """Receive until one completes inside its call (a receive that pends must
    queue its packet): its event is signalled and the port stays empty."""
    for _ in range(20):
        peer.send(b"ready")
        probe = h.overlapped()  # a zero-length receive completes once data is there
        rc, _, _ = h.ws.WSARecv(s, [WSABUF(0, bytearray(0))], 1, 0, probe, None)
        if rc == SOCKET_ERROR:
            assert h.ws.GetQueuedCompletionStatus(port, MS)[0::3] == (TRUE, probe)
        ov = h.overlapped()
        rc, n, _ = post_recv(h, s, ov)
        if rc == 0:
            assert n >= 1 and h.is_signalled(ov.hEvent)
            nothing_queued(h, port, 0)
            return
        assert h.ws.GetQueuedCompletionStatus(port, MS)[0::3] == (TRUE, ov)
    pytest.fail("no receive ever completed at once")


@pytest.mark.parametrize("modes", [FILE_SKIP_SET_EVENT_ON_HANDLE,
                                   FILE_SKIP_SET_EVENT_ON_HANDLE | FILE_SKIP_COMPLETION_PORT_ON_SUCCESS],
                         ids=["skip-set-event", "both"])
def test_skip_set_event_on_handle_still_signals_the_overlappeds_event(h: Harness, modes: int) -> None:
    """FILE_SKIP_SET_EVENT_ON_HANDLE leaves the socket's own handle alone; an
    explicit hEvent is still signalled, and a pending receive still queues its
    packet (Microsoft's SetFileCompletionNotificationModes: "If an explicit
    event is provided for the request, it is still signaled")."""
    a = h.accept()
    port = h.port()
    associate(h, a.sock, port, 6)
    assert h.ws.SetFileCompletionNotificationModes(a.sock, modes) == TRUE
    ov = h.overlapped()
    rc, _, _ = post_recv(h, a.sock, ov)
    if rc == 0:
        pytest.skip("the receive completed at once")
    a.peer.send(b"evt")
    assert h.wait(ov.hEvent) == 0
    ok, n, key, got = h.ws.GetQueuedCompletionStatus(port, MS)
    assert (ok, key, got) == (TRUE, 6, ov) and 1 <= n <= 3


def test_set_notification_modes_checks_its_arguments(h: Harness) -> None:
    s = h.socket()
    assert h.ws.SetFileCompletionNotificationModes(
        s, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE) == TRUE
    closed = h.socket()
    h.close(closed)
    assert h.ws.SetFileCompletionNotificationModes(closed, FILE_SKIP_SET_EVENT_ON_HANDLE) == FALSE
    assert h.ws.WSAGetLastError() == ERROR_INVALID_HANDLE


def test_completion_routine_on_an_associated_socket_fails(h: Harness) -> None:
    """WSAEINVAL at once; the routine is never called (sock.c test_WSARecv)."""
    a = h.accept()
    port = h.port()
    associate(h, a.sock, port, 0)
    calls: list[Call] = []

    def routine(dwError: int, cb: int, ov: WSAOVERLAPPED, flags: int) -> None:
        calls.append((dwError, cb))

    rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(16, bytearray(16))], 1, 0, WSAOVERLAPPED(), routine)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSAEINVAL
    a.peer.send(b"data")
    assert h.ws.SleepEx(100, TRUE) == 0
    assert calls == []
    nothing_queued(h, port, 0)


# -- PostQueuedCompletionStatus, GetQueuedCompletionStatusEx ---------------------------


def test_posted_packets(h: Harness) -> None:
    """A posted packet comes back as posted: TRUE, its bytes and key, its
    OVERLAPPED (NULL, or one no operation uses), in FIFO order."""
    port = h.port()
    mine = WSAOVERLAPPED()
    assert h.ws.PostQueuedCompletionStatus(port, 7, 0x42, None) == TRUE
    assert h.ws.PostQueuedCompletionStatus(port, 0, 1, mine) == TRUE
    h.ws.WSASetLastError(12345)
    assert h.ws.GetQueuedCompletionStatus(port, MS) == (TRUE, 7, 0x42, None)
    ok, n, key, got = h.ws.GetQueuedCompletionStatus(port, MS)
    assert (ok, n, key) == (TRUE, 0, 1) and got is mine
    assert h.ws.WSAGetLastError() == 12345
    nothing_queued(h, port, 0)


def test_posted_values_round_trip(h: Harness) -> None:
    """Whatever is posted comes back: the largest DWORD byte count and
    ULONG_PTR key, through GetQueuedCompletionStatus and through
    GetQueuedCompletionStatusEx (Internal STATUS_SUCCESS: the packet is
    NtSetIoCompletion's with a success status); a Python int beyond the C
    types wraps as the C cast does (the key -1 is ULONG_PTR_MAX)."""
    port = h.port()
    ov = WSAOVERLAPPED()
    for n, key in ((0xFFFFFFFF, ULONG_PTR_MAX), (0x80000000, 1 << 63), (-1, -1)):
        assert h.ws.PostQueuedCompletionStatus(port, n, key, ov) == TRUE
    ok, n, key, got = h.ws.GetQueuedCompletionStatus(port, MS)
    assert (ok, n, key) == (TRUE, 0xFFFFFFFF, ULONG_PTR_MAX) and got is ov
    ok, entries = h.ws.GetQueuedCompletionStatusEx(port, 4, MS, FALSE)
    assert ok == TRUE
    assert [(e.dwNumberOfBytesTransferred, e.lpCompletionKey, e.Internal) for e in entries] == [
        (0x80000000, 1 << 63, STATUS_SUCCESS), (0xFFFFFFFF, ULONG_PTR_MAX, STATUS_SUCCESS)]
    assert all(e.lpOverlapped is ov for e in entries)
    a = h.accept()
    associate(h, a.sock, port, -2)
    ov2 = h.overlapped()
    post_recv(h, a.sock, ov2)
    a.peer.send(b"k")
    assert h.ws.GetQueuedCompletionStatus(port, MS)[0::2] == (TRUE, ULONG_PTR_MAX - 1)


def test_a_timeout_of_minus_one_is_infinite(h: Harness) -> None:
    """dwMilliseconds is a DWORD: -1 is INFINITE (0xFFFFFFFF), not a wait
    already over: a packet another thread posts 300 ms later comes back, to
    GetQueuedCompletionStatus and to GetQueuedCompletionStatusEx."""
    port = h.port()

    def poster(_: object) -> int:
        for key in (2, 4):
            h.ws.Sleep(300)
            assert h.ws.PostQueuedCompletionStatus(port, key - 1, key, None) == TRUE
        return 0

    thread, _ = h.ws.CreateThread(None, 0, poster, None, 0)
    assert thread
    assert h.ws.GetQueuedCompletionStatus(port, -1) == (TRUE, 1, 2, None)
    ok, entries = h.ws.GetQueuedCompletionStatusEx(port, 4, -1, FALSE)
    assert ok == TRUE and [(e.lpCompletionKey, e.dwNumberOfBytesTransferred) for e in entries] == [(4, 3)]
    assert h.ws.WaitForSingleObject(thread, 20_000) == WAIT_OBJECT_0
    assert h.ws.CloseHandle(thread) == TRUE


def test_bad_port_handles(h: Harness) -> None:
    """Not a port: FALSE, ERROR_INVALID_HANDLE, lpOverlapped NULL."""
    ev = h.event()
    assert h.ws.GetQueuedCompletionStatus(ev, 0)[0::3] == (FALSE, None)
    assert h.ws.WSAGetLastError() == ERROR_INVALID_HANDLE
    assert h.ws.PostQueuedCompletionStatus(ev, 0, 0, None) == FALSE
    assert h.ws.WSAGetLastError() == ERROR_INVALID_HANDLE
    assert h.ws.GetQueuedCompletionStatusEx(ev, 1, 0, FALSE) == (FALSE, [])
    assert h.ws.WSAGetLastError() == ERROR_INVALID_HANDLE


def test_close_port(h: Harness) -> None:
    """CloseHandle closes a port: then it is no handle (ERROR_INVALID_HANDLE),
    and a second CloseHandle fails."""
    port = h.ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, 0)
    assert h.ws.PostQueuedCompletionStatus(port, 1, 2, None) == TRUE
    assert h.ws.CloseHandle(port) == TRUE
    assert h.ws.PostQueuedCompletionStatus(port, 0, 0, None) == FALSE
    assert h.ws.WSAGetLastError() == ERROR_INVALID_HANDLE
    assert h.ws.CloseHandle(port) == FALSE
    assert h.ws.WSAGetLastError() == ERROR_INVALID_HANDLE


def test_waits_that_begin_after_the_port_was_closed_fail_with_invalid_handle(h: Harness) -> None:
    """A port's handle closed with a packet queued; a wait that begins only
    then: GetQueuedCompletionStatus and GetQueuedCompletionStatusEx (alertable
    or not, 0 ms or not) fail at once with ERROR_INVALID_HANDLE and no
    OVERLAPPED (not ERROR_ABANDONED_WAIT_0, the answer of a wait already
    blocked at the close), and WaitForSingleObject on the handle gives
    WAIT_FAILED, ERROR_INVALID_HANDLE (ntdll sync.c
    test_completion_port_scheduling: its threads accept exactly these answers
    when "Handle closed before wait started"; docs/semantics-findings.md
    section 51)."""
    port = h.ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, 0)
    assert h.ws.PostQueuedCompletionStatus(port, 7, 8, None) == TRUE
    assert h.ws.CloseHandle(port) == TRUE
    start = h.ws.GetTickCount64()
    for ms in (0, 100):
        h.ws.SetLastError(0)
        assert h.ws.GetQueuedCompletionStatus(port, ms)[0::3] == (FALSE, None)
        assert h.ws.GetLastError() == ERROR_INVALID_HANDLE
        for alertable in (FALSE, TRUE):
            h.ws.SetLastError(0)
            assert h.ws.GetQueuedCompletionStatusEx(port, 2, ms, alertable) == (FALSE, [])
            assert h.ws.GetLastError() == ERROR_INVALID_HANDLE
    assert h.ws.GetTickCount64() - start < 100  # none of them waited
    h.ws.SetLastError(0)
    assert h.ws.WaitForSingleObject(port, 0) == WAIT_FAILED
    assert h.ws.GetLastError() == ERROR_INVALID_HANDLE


def test_a_socket_keeps_its_closed_port(h: Harness) -> None:
    """The port's handle closed while a receive on an associated socket pends:
    the receive still completes (its event signalled, WSAGetOverlappedResult
    TRUE with its bytes), and the socket stays associated with that port, so it
    cannot join another (ERROR_INVALID_PARAMETER). Microsoft's "I/O Completion
    Ports": the port's handle and every file handle associated with it are
    references to the port, which "is released when there are no more
    references to it"; CreateIoCompletionPort: a handle can be associated with
    one port only."""
    a = h.accept()
    port = h.ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, 0)
    assert port != 0
    associate(h, a.sock, port, 3)
    ov = h.overlapped()
    buf = bytearray(16)
    rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(16, buf)], 1, 0, ov, None)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING  # (nothing was sent)
    assert h.ws.CloseHandle(port) == TRUE
    a.peer.send(b"late")
    ok, n, err = h.complete(a.sock, ov)
    assert ok == TRUE and 1 <= n <= 4 and bytes(buf[:n]) == b"late"[:n], err
    other = h.port()
    h.ws.SetLastError(0)
    assert h.ws.CreateIoCompletionPort(a.sock, other, 4, 0) == 0
    assert h.ws.GetLastError() == ERROR_INVALID_PARAMETER


def test_ex_removes_up_to_ulcount(h: Harness) -> None:
    """Up to ulCount entries at once, in order; TRUE even for a failed
    operation's entry (its status is in Internal); then WAIT_TIMEOUT."""
    a, port, ov = pending_receive(h, 5)
    assert h.ws.CancelIoEx(a.sock, ov) == TRUE
    assert h.wait(ov.hEvent) == 0
    for i in range(3):
        assert h.ws.PostQueuedCompletionStatus(port, i, 100 + i, None) == TRUE
    ok, entries = h.ws.GetQueuedCompletionStatusEx(port, 2, MS, FALSE)
    assert ok == TRUE and len(entries) == 2
    first, second = entries
    assert first.lpOverlapped is ov and first.lpCompletionKey == 5
    assert (first.Internal, first.dwNumberOfBytesTransferred) == (STATUS_CANCELLED, 0)
    assert (second.lpCompletionKey, second.lpOverlapped, second.dwNumberOfBytesTransferred) == (100, None, 0)
    ok, entries = h.ws.GetQueuedCompletionStatusEx(port, 8, MS, FALSE)
    assert ok == TRUE and [(e.lpCompletionKey, e.dwNumberOfBytesTransferred) for e in entries] == [(101, 1), (102, 2)]
    assert h.ws.GetQueuedCompletionStatusEx(port, 8, 100, FALSE) == (FALSE, [])
    assert h.ws.WSAGetLastError() == WAIT_TIMEOUT


def test_ex_with_no_room(h: Harness) -> None:
    """ulCount 0: refused before the call (what Windows does is not shown by our
    sources; Wine 8.0 writes an entry past the empty array), whatever the handle."""
    port = h.port()
    assert h.ws.PostQueuedCompletionStatus(port, 0, 0, None) == TRUE
    with pytest.raises(WinsockUsageError, match="ulCount"):
        h.ws.GetQueuedCompletionStatusEx(port, 0, 0, FALSE)
    assert h.ws.GetQueuedCompletionStatus(port, 0)[0] == TRUE
    # Refused before the handle is looked at: the real backend raises without
    # calling Windows, so a bogus handle or a closed port does not turn it into
    # ERROR_INVALID_HANDLE.
    with pytest.raises(WinsockUsageError, match="ulCount"):
        h.ws.GetQueuedCompletionStatusEx(0xDEAD0, 0, 0, FALSE)
    closed = h.port()
    h.ports.remove(closed)
    assert h.ws.CloseHandle(closed) == TRUE
    with pytest.raises(WinsockUsageError, match="ulCount"):
        h.ws.GetQueuedCompletionStatusEx(closed, -1, 0, FALSE)


def routine_receive(h: Harness) -> tuple[int, list[Call]]:
    """A port, and a receive with a completion routine on a socket without one,
    its data sent: (the port, the routine's calls)."""
    a = h.accept()
    port = h.port()
    calls: list[Call] = []

    def routine(dwError: int, cb: int, ov: WSAOVERLAPPED, flags: int) -> None:
        calls.append((dwError, cb))

    rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(16, bytearray(16))], 1, 0, WSAOVERLAPPED(), routine)
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING
    a.peer.send(b"data")
    return port, calls


def test_ex_alertable_runs_completion_routines(h: Harness) -> None:
    """Alertable, with no packet: the thread's queued completion routines run
    and the call returns FALSE with WAIT_IO_COMPLETION."""
    port, calls = routine_receive(h)
    assert h.ws.GetQueuedCompletionStatusEx(port, 4, MS, TRUE) == (FALSE, [])
    assert h.ws.WSAGetLastError() == WAIT_IO_COMPLETION
    assert len(calls) == 1 and calls[0][0] == 0


def test_ex_alertable_takes_a_queued_packet_before_routines(h: Harness) -> None:
    """Alertable with an entry already queued, on a port the thread is
    associated with (it dequeued from it before): the entry comes back and no
    completion routine runs (Microsoft's GetQueuedCompletionStatusEx: "If the
    parameter is TRUE and there are no available entries, the function
    performs an alertable wait"; a thread not yet associated runs its routines
    first: test_port_association_apcs.py); not alertable, a queued routine
    does not run either (the wait times out); the next alertable call with
    nothing queued runs it: FALSE, WAIT_IO_COMPLETION."""
    port, calls = routine_receive(h)
    assert h.ws.PostQueuedCompletionStatus(port, 1, 2, None) == TRUE
    ok, entries = h.ws.GetQueuedCompletionStatusEx(port, 4, MS, FALSE)  # the thread is now associated
    assert ok == TRUE and len(entries) == 1
    h.ws.Sleep(300)  # not alertable: the receive completes, its routine waits in the queue
    assert h.ws.PostQueuedCompletionStatus(port, 3, 9, None) == TRUE
    ok, entries = h.ws.GetQueuedCompletionStatusEx(port, 4, MS, TRUE)
    assert ok == TRUE and [(e.lpCompletionKey, e.dwNumberOfBytesTransferred) for e in entries] == [(9, 3)]
    assert calls == []
    assert h.ws.GetQueuedCompletionStatusEx(port, 4, 100, FALSE) == (FALSE, [])
    assert h.ws.WSAGetLastError() == WAIT_TIMEOUT
    assert calls == []
    assert h.ws.GetQueuedCompletionStatusEx(port, 4, MS, TRUE) == (FALSE, [])
    assert h.ws.WSAGetLastError() == WAIT_IO_COMPLETION
    assert len(calls) == 1 and calls[0][0] == 0 and 1 <= calls[0][1] <= 4  # (the fake may split "data")


# -- cancellation -------------------------------------------------------------------


def test_cancelio_cancels_the_threads_operations(h: Harness) -> None:
    """CancelIo: the pending receive's packet is FALSE, ERROR_OPERATION_ABORTED;
    with nothing pending CancelIo still succeeds; not a handle: ERROR_INVALID_HANDLE."""
    a, port, ov = pending_receive(h, 77)
    assert h.ws.CancelIo(a.sock) == TRUE
    assert h.ws.GetQueuedCompletionStatus(port, MS) == (FALSE, 0, 77, ov)
    assert h.ws.WSAGetLastError() == ERROR_OPERATION_ABORTED
    assert h.ws.CancelIo(a.sock) == TRUE
    closed = h.socket()
    h.close(closed)
    assert h.ws.CancelIo(closed) == FALSE
    assert h.ws.WSAGetLastError() == ERROR_INVALID_HANDLE


def test_cancelioex_cancels_only_the_given_overlapped(h: Harness) -> None:
    """Two receives pending; CancelIoEx with the second's OVERLAPPED: TRUE, its
    packet FALSE, ERROR_OPERATION_ABORTED; the first still pends and gets the
    data (Microsoft's CancelIoEx: "only those specific I/O requests that were
    issued for the file with the specified lpOverlapped")."""
    a, port, first = pending_receive(h, 12)
    second = h.overlapped()
    rc, _, _ = post_recv(h, a.sock, second)
    assert rc == SOCKET_ERROR
    assert h.ws.CancelIoEx(a.sock, second) == TRUE
    assert h.ws.GetQueuedCompletionStatus(port, MS) == (FALSE, 0, 12, second)
    assert h.ws.WSAGetLastError() == ERROR_OPERATION_ABORTED
    nothing_queued(h, port)
    a.peer.send(b"still here")
    ok, n, key, got = h.ws.GetQueuedCompletionStatus(port, MS)
    assert (ok, key, got) == (TRUE, 12, first) and n >= 1


def test_cancelioex_finds_nothing(h: Harness) -> None:
    """CancelIoEx that finds no request to cancel: FALSE, ERROR_NOT_FOUND
    (Microsoft's CancelIoEx): an OVERLAPPED no operation uses, one of another
    socket's operation (which still pends), one whose operation completed.
    (Wine 8.0 agrees here, with a given OVERLAPPED; with NULL and nothing
    pending it returns TRUE: test_close_cancel.test_cancel_nothing_pending.)"""
    a, port, ov = pending_receive(h, 4)
    other = h.socket()
    for handle, what in ((a.sock, WSAOVERLAPPED()), (other, ov)):
        h.ws.WSASetLastError(0)
        assert h.ws.CancelIoEx(handle, what) == FALSE
        assert h.ws.WSAGetLastError() == ERROR_NOT_FOUND
    nothing_queued(h, port)
    assert h.ws.CancelIoEx(a.sock, ov) == TRUE
    assert h.ws.GetQueuedCompletionStatus(port, MS)[0::3] == (FALSE, ov)
    assert h.ws.CancelIoEx(a.sock, ov) == FALSE
    assert h.ws.WSAGetLastError() == ERROR_NOT_FOUND


# -- threads ---------------------------------------------------------------------------


@pytest.mark.wine_divergence("Wine 8.0 leaves a thread waiting on a closed port until its timeout (WAIT_TIMEOUT); "
                              "Windows releases it with ERROR_ABANDONED_WAIT_0 (GetQueuedCompletionStatus remarks)")
@pytest.mark.parametrize("ex", [False, True], ids=["GetQueuedCompletionStatus", "Ex"])
def test_closing_a_port_releases_a_waiting_thread(h: Harness, ex: bool) -> None:
    """A port closed while a thread waits on it: FALSE, lpOverlapped NULL (no
    entry for Ex), ERROR_ABANDONED_WAIT_0 (Microsoft's GetQueuedCompletionStatus
    and GetQueuedCompletionStatusEx remarks)."""
    port = h.ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, 0)
    result: list[tuple[int, object, int]] = []

    def worker(_: object) -> int:
        if ex:
            ok, entries = h.ws.GetQueuedCompletionStatusEx(port, 4, 3000, FALSE)
            result.append((ok, entries, h.ws.GetLastError()))
        else:
            ok, _n, _key, ov = h.ws.GetQueuedCompletionStatus(port, 3000)
            result.append((ok, ov, h.ws.GetLastError()))
        return 0

    thread, _ = h.ws.CreateThread(None, 0, worker, None, 0)
    assert thread
    h.ws.Sleep(500)  # the worker is waiting by now
    assert h.ws.CloseHandle(port) == TRUE
    assert h.ws.WaitForSingleObject(thread, 20_000) == WAIT_OBJECT_0
    assert h.ws.CloseHandle(thread) == TRUE
    assert result == [(FALSE, [] if ex else None, ERROR_ABANDONED_WAIT_0)]


@pytest.mark.wine_divergence("Wine 8.0 releases the thread that waited first (FIFO: server/completion.c wakes a port's "
                              "waiters in the order they queued); Windows the one that waited last (LIFO: Microsoft, "
                              "'I/O Completion Ports')")
def test_waiting_threads_are_released_last_in_first_out(h: Harness) -> None:
    """Threads waiting on a port are released in LIFO order (Microsoft, "I/O
    Completion Ports"): two threads wait, one after the other; the first packet
    goes to the one that waited last, the second to the other."""
    port = h.port()
    got: list[tuple[int, int]] = []

    def worker(me: object) -> int:
        ok, _n, key, _ov = h.ws.GetQueuedCompletionStatus(port, 10_000)
        got.append((int(cast(int, me)), key if ok else -1))
        return 0

    threads = []
    for me in (1, 2):
        t, _ = h.ws.CreateThread(None, 0, worker, me, 0)
        assert t
        threads.append(t)
        h.ws.Sleep(400)  # this one waits before the next starts
    assert h.ws.PostQueuedCompletionStatus(port, 0, 100, None) == TRUE
    h.ws.Sleep(400)
    assert h.ws.PostQueuedCompletionStatus(port, 0, 200, None) == TRUE
    for t in threads:
        assert h.ws.WaitForSingleObject(t, 20_000) == WAIT_OBJECT_0
        assert h.ws.CloseHandle(t) == TRUE
    assert got == [(2, 100), (1, 200)]


def test_cancelio_leaves_another_threads_io_and_cancelioex_does_not(h: Harness) -> None:
    """CancelIo cancels only what the calling thread issued; CancelIoEx cancels
    requests of any thread (Microsoft's CancelIo and CancelIoEx remarks).  The
    other thread stays alive meanwhile (its exit would cancel the receive,
    which has an event: afd.c test_async_thread_termination)."""
    a = h.accept()
    port = h.port()
    associate(h, a.sock, port, 31)
    ov = h.overlapped()
    posted, done = h.event(), h.event()
    rcs: list[tuple[int, int]] = []

    def other(_: object) -> int:
        rc, _n, _buf = h.recv(a.sock, ov)
        rcs.append((rc, h.ws.WSAGetLastError()))
        assert h.ws.WSASetEvent(posted) == TRUE
        assert h.wait(done, 20_000) == 0
        return 0

    thread, _ = h.ws.CreateThread(None, 0, other, None, 0)
    assert thread
    assert h.wait(posted, 20_000) == 0
    assert rcs == [(SOCKET_ERROR, WSA_IO_PENDING)]
    assert h.ws.CancelIo(a.sock) == TRUE  # not this thread's: nothing cancelled
    nothing_queued(h, port)
    assert not h.is_signalled(ov.hEvent)
    assert h.ws.CancelIoEx(a.sock, None) == TRUE
    h.ws.WSASetLastError(0)
    assert h.ws.GetQueuedCompletionStatus(port, MS) == (FALSE, 0, 31, ov)
    assert (h.ws.WSAGetLastError(), ov.Internal) == (ERROR_OPERATION_ABORTED, STATUS_CANCELLED)
    assert h.ws.WSASetEvent(done) == TRUE
    assert h.ws.WaitForSingleObject(thread, 20_000) == WAIT_OBJECT_0
    assert h.ws.CloseHandle(thread) == TRUE
