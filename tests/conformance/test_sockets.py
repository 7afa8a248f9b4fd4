"""Sockets, bind, listen, shutdown, options (winsock-semantics.md "Sockets, bind, listen").

Sources: Wine's sock.c test_bind, test_listen, test_reuseaddr, test_shutdown,
test_set_getsockopt (docs/semantics-findings.md sections 6, 13, 17).
"""

from __future__ import annotations

from fakewinsock import LINGER, WSABUF, sockaddr_in
from fakewinsock.constants import (
    AF_INET,
    FALSE,
    INVALID_SOCKET,
    IPPROTO_TCP,
    SD_BOTH,
    SD_RECEIVE,
    SD_SEND,
    SO_ACCEPTCONN,
    SO_LINGER,
    SO_REUSEADDR,
    SOCK_STREAM,
    SOCKET_ERROR,
    SOL_SOCKET,
    SOMAXCONN,
    TRUE,
    WSA_FLAG_OVERLAPPED,
    WSA_IO_PENDING,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_TIMEOUT,
    WSAEACCES,
    WSAEADDRINUSE,
    WSAEFAULT,
    WSAEINVAL,
    WSAENOTCONN,
    WSAENOTSOCK,
    WSAESHUTDOWN,
)

from ._harness import Harness


def test_wsasocket_overlapped(h: Harness) -> None:
    s = h.ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
    assert s != INVALID_SOCKET
    assert h.ws.closesocket(s) == 0


def test_not_a_socket(h: Harness) -> None:
    """A handle that is not a socket gives WSAENOTSOCK (an event handle, a bogus value)."""
    ev = h.event()
    assert h.ws.closesocket(ev) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAENOTSOCK
    assert h.ws.bind(0xDEADBEE0, sockaddr_in("127.0.0.1", 0), 16) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAENOTSOCK


def test_closed_socket_is_not_a_socket(h: Harness) -> None:
    s = h.socket()
    h.close(s)
    assert h.ws.listen(s, 5) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAENOTSOCK


def test_bind_address_in_use(h: Harness) -> None:
    """A second socket on a taken address gives WSAEADDRINUSE."""
    _, port = h.listener()
    s2 = h.socket()
    assert h.ws.bind(s2, sockaddr_in("127.0.0.1", port), 16) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAEADDRINUSE


def test_bind_twice_same_socket(h: Harness) -> None:
    """test_bind: binding a bound socket again gives WSAEINVAL."""
    s = h.socket()
    assert h.ws.bind(s, sockaddr_in("127.0.0.1", 0), 16) == 0
    assert h.ws.bind(s, sockaddr_in("127.0.0.1", 0), 16) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAEINVAL


def test_bind_short_namelen(h: Harness) -> None:
    s = h.socket()
    assert h.ws.bind(s, sockaddr_in("127.0.0.1", 0), 8) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAEFAULT


def test_reuseaddr_over_exclusive_is_access_denied(h: Harness) -> None:
    """test_reuseaddr: SO_REUSEADDR only on the second socket gives WSAEACCES."""
    _, port = h.listener()
    s2 = h.socket()
    assert h.ws.setsockopt(s2, SOL_SOCKET, SO_REUSEADDR, 1, 4) == 0
    assert h.ws.bind(s2, sockaddr_in("127.0.0.1", port), 16) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAEACCES


def test_listen_needs_bind(h: Harness) -> None:
    """test_listen: listen on an unbound socket gives WSAEINVAL."""
    s = h.socket()
    assert h.ws.listen(s, SOMAXCONN) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAEINVAL


def test_listen_twice_and_acceptconn(h: Harness) -> None:
    """test_listen: listen twice succeeds; SO_ACCEPTCONN reads 1 after listen."""
    s = h.socket()
    assert h.ws.bind(s, sockaddr_in("127.0.0.1", 0), 16) == 0
    assert h.ws.getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, 4) == (0, b"\0\0\0\0")
    assert h.ws.listen(s, 0) == 0
    assert h.ws.listen(s, SOMAXCONN) == 0
    rc, val = h.ws.getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, 4)
    assert rc == 0 and int.from_bytes(val, "little") == 1


def test_getsockname_unbound(h: Harness) -> None:
    s = h.socket()
    rc, _ = h.ws.getsockname(s)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSAEINVAL


def test_linger_roundtrip_and_short_optlen(h: Harness) -> None:
    """test_set_getsockopt: SO_LINGER round-trips; optlen 2 gives WSAEFAULT."""
    s = h.socket()
    assert h.ws.setsockopt(s, SOL_SOCKET, SO_LINGER, LINGER(1, 0), 4) == 0
    rc, val = h.ws.getsockopt(s, SOL_SOCKET, SO_LINGER, 4)
    assert rc == 0
    lg = LINGER.from_buffer_copy(val)
    assert (bool(lg.l_onoff), lg.l_linger) == (True, 0)
    assert h.ws.setsockopt(s, SOL_SOCKET, SO_LINGER, LINGER(1, 0), 2) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAEFAULT


def test_shutdown_unconnected(h: Harness) -> None:
    """test_shutdown: shutdown on an unconnected or listening socket gives WSAENOTCONN."""
    s = h.socket()
    assert h.ws.shutdown(s, SD_SEND) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAENOTCONN
    lst, _ = h.listener()
    assert h.ws.shutdown(lst, SD_RECEIVE) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAENOTCONN


def test_shutdown_bad_how(h: Harness) -> None:
    a = h.accept()
    assert h.ws.shutdown(a.sock, 0xDEADBEEF) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAEINVAL


def test_shutdown_send(h: Harness) -> None:
    """test_shutdown: SD_SEND twice succeeds; then WSASend gives WSAESHUTDOWN; the
    peer reads EOF, twice."""
    a = h.accept()
    assert h.ws.shutdown(a.sock, SD_SEND) == 0
    assert h.ws.shutdown(a.sock, SD_SEND) == 0
    ov = h.overlapped()
    buf = bytearray(b"x")
    rc, _, _ = h.ws.WSASend(a.sock, [WSABUF(1, buf)], 1, 0, ov, None)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSAESHUTDOWN
    assert not h.is_signalled(ov.hEvent)
    assert a.peer.recv() == b""
    assert a.peer.recv() == b""


def test_shutdown_send_lets_a_pending_send_finish_first(h: Harness) -> None:
    """shutdown(SD_SEND) while a WSASend pends (its peer does not read) succeeds at
    once and cancels nothing: the send completes whole once the peer reads, and
    the peer reads every byte of it, in order, then EOF.  Microsoft's shutdown
    page: "a FIN will be sent after all data is sent and acknowledged by the
    receiver"; Wine's server keeps the SHUT_WR pending until its write queue is
    empty (sock.c, wr_shutdown_pending)."""
    a = h.accept()
    size = 16 * 1024 * 1024
    data = bytearray(bytes(range(251)) * (size // 251 + 1))[:size]  # a period prime to every chunk size
    ov = h.overlapped()
    rc, _, _ = h.ws.WSASend(a.sock, [WSABUF(size, data)], 1, 0, ov, None)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert h.ws.shutdown(a.sock, SD_SEND) == 0
    assert h.wait(ov.hEvent, 200) == WSA_WAIT_TIMEOUT  # still in flight: not cancelled
    got = bytearray()
    while chunk := a.peer.recv(1 << 20):
        got += chunk
    assert len(got) == size and got == data
    assert a.peer.recv() == b""
    assert h.wait(ov.hEvent) == WSA_WAIT_EVENT_0
    ok, n, _ = h.ws.WSAGetOverlappedResult(a.sock, ov, FALSE)
    assert (ok, n) == (TRUE, size)


def test_shutdown_receive(h: Harness) -> None:
    """test_shutdown: after SD_RECEIVE a new WSARecv fails with WSAESHUTDOWN; a
    receive posted before it still gets data; sending still works."""
    a = h.accept()
    ov_before = h.overlapped()
    rc, _, buf = h.recv(a.sock, ov_before)
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert h.ws.shutdown(a.sock, SD_RECEIVE) == 0
    ov = h.overlapped()
    rc2, _, _ = h.recv(a.sock, ov)
    assert rc2 == SOCKET_ERROR and h.ws.WSAGetLastError() == WSAESHUTDOWN
    a.peer.send(b"hello")
    ok, n, _ = h.complete(a.sock, ov_before)
    assert ok and bytes(buf[:n]) == b"hello"[:n] and n >= 1
    assert h.send(a.sock, b"back") == (1, 4)
    assert a.peer.recv_exactly(4) == b"back"


def test_shutdown_both(h: Harness) -> None:
    """test_shutdown: after SD_BOTH a receive and a send fail with WSAESHUTDOWN at
    once, nothing notified; the peer reads EOF."""
    a = h.accept()
    assert h.ws.shutdown(a.sock, SD_BOTH) == 0
    ov = h.overlapped()
    rc, _, _ = h.recv(a.sock, ov)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSAESHUTDOWN
    rc, _, _ = h.ws.WSASend(a.sock, [WSABUF(1, bytearray(b"x"))], 1, 0, ov, None)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSAESHUTDOWN
    assert not h.is_signalled(ov.hEvent)
    assert a.peer.recv() == b""


def test_getpeername_after_update_accept_context(h: Harness) -> None:
    """After SO_UPDATE_ACCEPT_CONTEXT, getpeername gives the peer's address."""
    a = h.accept()
    rc, name = h.ws.getpeername(a.sock)
    assert rc == 0 and name is not None
    assert (name.host, name.port) == a.peer.address
    rc, local = h.ws.getsockname(a.sock)
    assert rc == 0 and local is not None and local.host == "127.0.0.1"
