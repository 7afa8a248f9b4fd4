"""Closing a listener with connections in its backlog, CancelIo on handles that
are no file, and more corners a server meets (fidelity session 6).

Sources (each test names its own): Wine's ``dlls/ws2_32/tests/sock.c`` @
``3379ee2e6b5f``, whose plain ``ok()`` checks run on Windows; ReactOS's
``ntoskrnl/io/iomgr/file.c`` (NtCancelIoFile, rebuilt after Windows' design:
supporting evidence) and Microsoft's pages.  See docs/semantics-findings.md
section 22.  Several tests connect two Winsock sockets to each other
(``connect`` + AcceptEx), so both ends are the backend under test.
"""

from __future__ import annotations

import pytest

from fakewinsock import WSABUF, WSAOVERLAPPED, sockaddr_in
from fakewinsock.constants import (
    ERROR_INVALID_HANDLE,
    FALSE,
    SD_SEND,
    SO_UPDATE_ACCEPT_CONTEXT,
    SOCKET_ERROR,
    SOL_SOCKET,
    STATUS_CANCELLED,
    STATUS_CONNECTION_ABORTED,
    TRUE,
    WAIT_TIMEOUT,
    WSA_IO_PENDING,
    WSA_OPERATION_ABORTED,
    WSAECONNABORTED,
    WSAECONNRESET,
    WSAENOTCONN,
)

from ._harness import ADDR_SLOT, Accepted, Harness

STATUS_SUCCESS = 0


def _client(h: Harness, port: int) -> int:
    """A Winsock socket connect()ed to 127.0.0.1:``port`` (the connection waits
    in the listener's backlog until something accepts it)."""
    c = h.socket()
    assert h.ws.connect(c, sockaddr_in("127.0.0.1", port), 16) == 0, h.ws.WSAGetLastError()
    return c


def _pair(h: Harness) -> tuple[int, int]:
    """Two connected Winsock sockets: (server end made by AcceptEx, client end)."""
    posted = h.post_accept()
    c = _client(h, posted.port)
    ok, _, err = h.complete(posted.listener, posted.ov)
    assert ok, err
    assert h.ws.setsockopt(posted.sock, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, posted.listener, 8) == 0
    return posted.sock, c


def _recv_result(h: Harness, s: int) -> tuple[int, bytes, int]:
    """Post a receive and wait for it: (ok, data, error), also when it fails at once."""
    return h.recv_once(s)


# -- CancelIo / CancelIoEx on a handle that is no file ------------------------------------

_CANCEL_NOT_A_FILE = (
    "Wine 8.0 returns TRUE: its NtCancelIoFile looks the handle up without checking the object's type; "
    "Windows' NtCancelIoFile references it as a file object (ObReferenceObjectByHandle with IoFileObjectType, "
    "as ReactOS does), so an event or a port gives STATUS_OBJECT_TYPE_MISMATCH, ERROR_INVALID_HANDLE"
)


@pytest.mark.wine_divergence(_CANCEL_NOT_A_FILE)
def test_cancelio_on_an_event_fails_with_invalid_handle(h: Harness) -> None:
    """CancelIo and CancelIoEx(NULL) on an event: FALSE, ERROR_INVALID_HANDLE (an
    object of the wrong type, as GetExitCodeThread on an event)."""
    e = h.event()
    assert h.ws.CancelIo(e) == FALSE
    assert h.ws.WSAGetLastError() == ERROR_INVALID_HANDLE
    assert h.ws.CancelIoEx(e, None) == FALSE
    assert h.ws.WSAGetLastError() == ERROR_INVALID_HANDLE


@pytest.mark.wine_divergence(_CANCEL_NOT_A_FILE)
def test_cancelio_on_a_completion_port_fails_with_invalid_handle(h: Harness) -> None:
    """CancelIo and CancelIoEx(NULL) on a completion port: FALSE, ERROR_INVALID_HANDLE;
    a packet already queued stays (the port is no file, nothing of it is cancelled)."""
    port = h.port()
    assert h.ws.PostQueuedCompletionStatus(port, 3, 7, None) == TRUE
    assert h.ws.CancelIo(port) == FALSE
    assert h.ws.WSAGetLastError() == ERROR_INVALID_HANDLE
    assert h.ws.CancelIoEx(port, None) == FALSE
    assert h.ws.WSAGetLastError() == ERROR_INVALID_HANDLE
    got = h.ws.GetQueuedCompletionStatus(port, 0)
    assert (got.ok, got.dwNumberOfBytesTransferred, got.CompletionKey) == (TRUE, 3, 7)


def test_cancelio_on_an_event_leaves_the_event_alone(h: Harness) -> None:
    """Whatever CancelIo answers on an event, the event keeps its state (no
    backend signals or resets an event it was asked to cancel the IO of)."""
    e = h.event()
    assert h.ws.WSASetEvent(e) == TRUE
    h.ws.CancelIo(e)
    h.ws.CancelIoEx(e, None)
    assert h.is_signalled(e)


# -- closing a listener with connections in its backlog -------------------------------------

def test_closing_a_listener_resets_a_connected_client_in_its_backlog(h: Harness) -> None:
    """A client whose connection waits in the backlog (connected, never accepted)
    when the listener closes: its pending receive fails with WSAECONNRESET.  TCP
    aborts the unaccepted connections of a closed listening socket (Linux does, as
    Wine 8.0 shows; Windows' AFD aborts the connections it still holds for a
    closed endpoint)."""
    lst, port = h.listener()
    c = _client(h, port)
    ov = h.overlapped()
    rc, _, _ = h.recv(c, ov)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert h.close(lst) == 0
    ok, n, err = h.complete(c, ov)
    assert (ok, n, err) == (FALSE, 0, WSAECONNRESET)


@pytest.mark.wine_divergence(
    "the in-process peer is a Wine socket, which reads the reset as EOF (the known Wine divergence "
    "'a reset peer reads EOF'); a Linux client of a Wine listener gets ECONNRESET (measured), as on Windows"
)
def test_closing_a_listener_resets_a_peer_in_its_backlog(h: Harness) -> None:
    """Two peers connected and never accepted: closing the listener resets both."""
    lst, port = h.listener()
    peers = [h.peer(), h.peer()]
    for p in peers:
        p.connect("127.0.0.1", port)
    h.settle()
    assert h.close(lst) == 0
    h.settle()
    for p in peers:
        with pytest.raises(ConnectionResetError):
            p.recv(16, timeout=5.0)


def test_closing_a_listener_aborts_an_accept_waiting_for_data(h: Harness) -> None:
    """AcceptEx with a receive length whose client connected but sent nothing
    (the accept waits for its first byte) when the listener closes: it ends with
    0 bytes and WSA_OPERATION_ABORTED (Internal STATUS_CANCELLED), as with no
    client (test_AcceptEx, the end); test_completion_port accepts
    ERROR_CONNECTION_ABORTED (STATUS_CONNECTION_ABORTED) too when the accept
    socket is closed in this state, so either is Windows."""
    posted = h.post_accept(rdl=16)
    c = _client(h, posted.port)
    h.settle()
    assert not h.is_signalled(posted.ov.hEvent)
    assert h.close(posted.listener) == 0
    assert h.wait(posted.ov.hEvent) == 0
    assert posted.ov.InternalHigh == 0
    assert posted.ov.Internal in (STATUS_CANCELLED, STATUS_CONNECTION_ABORTED)
    del c


def test_closing_a_listener_leaves_accepted_connections(h: Harness) -> None:
    """Connections already accepted live on after their listener closes: data
    still flows both ways (only the backlog is the listener's)."""
    srv, c = _pair(h)
    lst = [s for s in h.sockets if s not in (srv, c)]
    for s in lst:
        h.close(s)
    assert h.send(srv, b"after") == (TRUE, 5)
    assert h.recv_all(c, 5) == b"after"
    assert h.send(c, b"back") == (TRUE, 4)
    assert h.recv_all(srv, 4) == b"back"


# -- two Winsock ends ---------------------------------------------------------------------

def test_our_sd_send_completes_the_other_ends_pending_receive_with_zero(h: Harness) -> None:
    """test_shutdown ("shutting down with async I/O pending"): a receive pending on
    one end completes with 0 bytes when the other end shuts down its sending side;
    the names still read on both ends and match each other."""
    srv, c = _pair(h)
    ov = h.overlapped()
    rc, _, _ = h.recv(srv, ov)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert h.ws.shutdown(c, SD_SEND) == 0
    assert h.complete(srv, ov) == (TRUE, 0, 0)
    rc1, peer_of_srv = h.ws.getpeername(srv)
    rc2, name_of_c = h.ws.getsockname(c)
    assert rc1 == rc2 == 0 and peer_of_srv is not None and name_of_c is not None
    assert (peer_of_srv.host, peer_of_srv.port) == (name_of_c.host, name_of_c.port)


def test_a_client_reset_fails_the_servers_pending_receive(h: Harness) -> None:
    """Both ends Winsock: the client closes with SO_LINGER {1, 0}; the server's
    pending receive fails with WSAECONNRESET (test_tcp_reset)."""
    from fakewinsock import LINGER
    from fakewinsock.constants import SO_LINGER

    srv, c = _pair(h)
    ov = h.overlapped()
    rc, _, _ = h.recv(srv, ov)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert h.ws.setsockopt(c, SOL_SOCKET, SO_LINGER, LINGER(1, 0), 4) == 0
    assert h.close(c) == 0
    assert h.complete(srv, ov) == (FALSE, 0, WSAECONNRESET)


# -- completion ports ---------------------------------------------------------------------

def test_connect_queues_no_packet(h: Harness) -> None:
    """test_connect_completion_port: connect() on a socket associated with a port
    completes synchronously and queues nothing."""
    lst, port = h.listener()
    c = h.socket()
    cp = h.port()
    assert h.ws.CreateIoCompletionPort(c, cp, 5, 0) == cp
    assert h.ws.connect(c, sockaddr_in("127.0.0.1", port), 16) == 0
    got = h.ws.GetQueuedCompletionStatus(cp, 0)
    assert got.ok == FALSE and got.lpOverlapped is None and h.ws.WSAGetLastError() == WAIT_TIMEOUT
    del lst


def test_accept_completed_then_accept_socket_closed_queues_one_packet(h: Harness) -> None:
    """test_completion_port: an AcceptEx with a receive length completes on the
    client's first byte; closing the accept socket afterwards queues nothing
    more.  The one packet: TRUE, the listener's key, 1 byte, STATUS_SUCCESS."""
    lst, port = h.listener()
    acc = h.socket()
    cp = h.port()
    assert h.ws.CreateIoCompletionPort(lst, cp, 125, 0) == cp
    assert h.ws.CreateIoCompletionPort(acc, cp, 236, 0) == cp
    ov = WSAOVERLAPPED()
    out = bytearray(16 + 2 * ADDR_SLOT)
    ok, _ = h.ws.AcceptEx(lst, acc, out, 16, ADDR_SLOT, ADDR_SLOT, ov)
    assert ok == FALSE and h.ws.WSAGetLastError() == WSA_IO_PENDING
    p = h.peer()
    p.connect("127.0.0.1", port)
    p.send(b"x")
    h.settle()
    assert h.close(acc) == 0
    got = h.ws.GetQueuedCompletionStatus(cp, 2000)
    assert (got.ok, got.CompletionKey, got.dwNumberOfBytesTransferred) == (TRUE, 125, 1)
    assert got.lpOverlapped is ov and ov.Internal == STATUS_SUCCESS
    assert bytes(out[:1]) == b"x"
    again = h.ws.GetQueuedCompletionStatus(cp, 200)
    assert again.ok == FALSE and again.lpOverlapped is None and h.ws.WSAGetLastError() == WAIT_TIMEOUT


# -- receives -----------------------------------------------------------------------------

def test_zero_length_receive_with_data_queued_completes_with_zero(h: Harness) -> None:
    """test_empty_recv: a zero-length receive posted while data is queued
    completes with 0 bytes (at once on Windows; the fake may pend it first, as a
    schedule) and takes none of the data."""
    a = h.accept()
    a.peer.send(b"data")
    assert h.recv_all(a.sock, 0) == b""  # (nothing asked: only lets the data arrive)
    h.settle()
    ov = h.overlapped()
    rc, n, _ = h.ws.WSARecv(a.sock, [WSABUF(0, bytearray(0))], 1, 0, ov, None)
    if rc == 0:
        assert n == 0
    else:
        assert h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert h.complete(a.sock, ov) == (TRUE, 0, 0)
    assert h.recv_all(a.sock, 4) == b"data"


def test_accept_takes_at_most_its_receive_length(h: Harness) -> None:
    """AcceptEx with a receive length of 4 and a client that sends 10 bytes: the
    accept completes with at most 4 of them, the rest is read by the next
    receives, in order (Microsoft's AcceptEx page: the first block of data)."""
    posted = h.post_accept(rdl=4)
    p = h.peer()
    p.connect("127.0.0.1", posted.port)
    p.send(b"0123456789")
    ok, n, err = h.complete(posted.listener, posted.ov)
    assert ok == TRUE and 1 <= n <= 4, err
    assert h.ws.setsockopt(posted.sock, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, posted.listener, 8) == 0
    assert bytes(posted.out[:n]) + h.recv_all(posted.sock, 10 - n) == b"0123456789"


def test_receive_after_the_listener_closed_still_gets_data(h: Harness) -> None:
    """An accepted socket whose listener is gone: a receive posted then completes
    with the peer's bytes (the connection is the accept socket's own)."""
    a: Accepted = h.accept()
    h.close(a.listener)
    a.peer.send(b"still")
    assert h.recv_all(a.sock, 5) == b"still"


def test_send_on_the_client_after_the_server_closed_gracefully(h: Harness) -> None:
    """Both ends Winsock: the server closes gracefully; the client reads EOF, and
    its send still succeeds at once or pends and completes (the FIN closed only
    the server's direction); a later receive gives EOF or, once the server's
    stack answered the data with a reset, WSAECONNABORTED / WSAECONNRESET
    (test_shutdown, "send data to a peer which is closed": WSAECONNABORTED)."""
    srv, c = _pair(h)
    assert h.close(srv) == 0
    assert h.recv_all(c, 1) == b""
    assert h.send(c, b"late") == (TRUE, 4)
    h.settle()
    ok, data, err = _recv_result(h, c)
    assert data == b""
    assert ok == TRUE or err in (WSAECONNABORTED, WSAECONNRESET)


def test_cancelled_accept_leaves_the_connection_for_the_next(h: Harness) -> None:
    """CancelIoEx on a pending AcceptEx: it ends with WSA_OPERATION_ABORTED; a
    client that connects afterwards is taken by the next AcceptEx (test_AcceptEx:
    a cancelled accept consumes nothing)."""
    posted = h.post_accept()
    assert h.ws.CancelIoEx(posted.listener, posted.ov) == TRUE
    ok, n, err = h.complete(posted.listener, posted.ov)
    assert (ok, n, err) == (FALSE, 0, WSA_OPERATION_ABORTED)
    p = h.peer()
    p.connect("127.0.0.1", posted.port)
    again = h.post_accept(on=(posted.listener, posted.port))
    assert h.complete(posted.listener, again.ov) == (TRUE, 0, 0)
    assert h.ws.setsockopt(again.sock, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, posted.listener, 8) == 0
    rc, name = h.ws.getpeername(again.sock)
    assert rc == 0 and name is not None and name.port == p.address[1]


def test_an_accept_takes_the_connection_that_came_first(h: Harness) -> None:
    """test_AcceptEx (CF_DEFER part): with two connections waiting in the backlog,
    an AcceptEx posted then takes the one that connected first; the next AcceptEx
    the second."""
    lst, port = h.listener()
    first, second = h.peer(), h.peer()
    first.connect("127.0.0.1", port)
    h.settle()
    second.connect("127.0.0.1", port)
    h.settle()
    got = []
    for _ in range(2):
        posted = h.post_accept(on=(lst, port))
        assert h.complete(lst, posted.ov) == (TRUE, 0, 0)
        assert h.ws.setsockopt(posted.sock, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, lst, 8) == 0
        rc, name = h.ws.getpeername(posted.sock)
        assert rc == 0 and name is not None
        got.append(name.port)
    assert got == [first.address[1], second.address[1]]


def test_overlapped_result_with_fwait_on_a_completed_receive_whose_event_was_reset(h: Harness) -> None:
    """WSAGetOverlappedResult(fWait=TRUE) waits only while the operation is pending
    (Internal STATUS_PENDING): once it completed, it returns its result at once,
    even though the program reset the event (Microsoft's page: fWait applies to an
    operation still pending; Wine's implementation reads Internal first)."""
    a = h.accept()
    ov = h.overlapped()
    rc, _, buf = h.recv(a.sock, ov)
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING
    a.peer.send(b"abc")
    assert h.wait(ov.hEvent) == 0
    assert h.ws.WSAResetEvent(ov.hEvent) == TRUE
    ok, n, flags = h.ws.WSAGetOverlappedResult(a.sock, ov, TRUE)
    assert (ok, flags) == (TRUE, 0)
    assert 1 <= n <= 3 and bytes(buf[:n]) == b"abc"[:n]  # (the fake may split the stream)
    assert not h.is_signalled(ov.hEvent)


@pytest.mark.wine_divergence(
    "Wine 8.0 pends a receive on a listening socket (until the listener closes); Windows fails it with "
    "STATUS_INVALID_CONNECTION, WSAENOTCONN (afd.c test_recv: IOCTL_AFD_RECV on a listener, todo_wine)"
)
def test_receive_on_a_listening_socket_fails_with_not_connected(h: Harness) -> None:
    """afd.c test_recv: a receive on a listening socket fails at once with
    STATUS_INVALID_CONNECTION (WSAENOTCONN), before its parameters are even
    looked at; nothing is notified."""
    lst, _ = h.listener()
    ov = h.overlapped()
    rc, _, _ = h.recv(lst, ov)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSAENOTCONN
    assert not h.is_signalled(ov.hEvent)
