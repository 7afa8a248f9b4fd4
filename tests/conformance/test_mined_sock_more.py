"""More of Wine's ws2_32 conformance tests (``dlls/ws2_32/tests/sock.c``,
wine-mirror/wine @ 3379ee2e6b5f, run on Windows), for checks the suite did not
have yet: the last error after calls that succeed, a second connect on an
accepted socket, AcceptEx's short reads, receives smaller than what arrived,
and the completion port's view of both.  Each check is a plain ``ok()`` there
unless its docstring says otherwise; the test bodies are in the project's own
words.
"""

from __future__ import annotations

import pytest

from fakewinsock import WSABUF, sockaddr_in
from fakewinsock import constants as K
from fakewinsock.constants import (
    FALSE,
    SD_RECEIVE,
    SD_SEND,
    SOCKET_ERROR,
    SOL_SOCKET,
    TRUE,
    WAIT_TIMEOUT,
    WSA_IO_PENDING,
    WSAECONNRESET,
    WSAEISCONN,
)

from ._harness import ADDR_SLOT, WAIT_MS, Harness

MARK = 0xDEADBEEF


def _arrived(h: Harness, s: int, data: bytes) -> None:
    """Let ``data``, just sent by the peer, reach ``s``: a zero-length receive
    completes once something is there and leaves it (test_empty_recv)."""
    ov = h.overlapped()
    rc, _, _ = h.ws.WSARecv(s, [WSABUF(0, bytearray())], 1, 0, ov, None)
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert h.complete(s, ov) == (TRUE, 0, 0)
    h.ws.Sleep(50)  # the rest of a split send, on the real network


@pytest.mark.needs_immediate
def test_receive_completing_at_once_clears_the_last_error(h: Harness) -> None:
    """A WSARecv that completes at once (returns 0) sets the last error to 0
    (sock.c test_WSARecv: "Expected 0, got %ld" after SetLastError(0xdeadbeef),
    for receives that complete synchronously).  With data already there an
    overlapped receive may still pend (test_nonblocking_async_recv: "usually
    this does return 0 (but not reliably)"); the check applies when it
    returned 0."""
    a = h.accept()
    immediate = 0
    for attempt in range(20):
        a.peer.send(b"ab")
        _arrived(h, a.sock, b"ab")
        ov = h.overlapped()
        buf = bytearray(2)
        h.ws.WSASetLastError(MARK)
        rc, n, _ = h.ws.WSARecv(a.sock, [WSABUF(2, buf)], 1, 0, ov, None)
        if rc == 0:
            immediate += 1
            assert h.ws.WSAGetLastError() == 0, attempt
            assert h.ws.GetLastError() == 0, attempt
        else:
            assert h.ws.WSAGetLastError() == WSA_IO_PENDING
        ok, got, _ = h.complete(a.sock, ov)
        assert ok == TRUE
        rest = h.recv_all(a.sock, 2 - got) if got < 2 else b""
        assert bytes(buf[:got]) + rest == b"ab"
        if immediate >= 3:
            break
    assert immediate > 0, "no receive completed at once"


@pytest.mark.needs_immediate
def test_send_completing_at_once_clears_the_last_error(h: Harness) -> None:
    """A WSASend that completes at once sets the last error to 0 (sock.c
    test_WSASendTo: WSASetLastError(12345), a successful send, then
    ``!WSAGetLastError()``; WSASend is WSASendTo without an address)."""
    a = h.accept()
    immediate = 0
    for attempt in range(20):
        ov = h.overlapped()
        buf = bytearray(b"data")
        h.ws.WSASetLastError(12345)
        rc, n, _ = h.ws.WSASend(a.sock, [WSABUF(4, buf)], 1, 0, ov, None)
        if rc == 0:
            immediate += 1
            assert n == 4
            assert h.ws.WSAGetLastError() == 0, attempt
        else:
            assert h.ws.WSAGetLastError() == WSA_IO_PENDING
        assert h.complete(a.sock, ov)[:2] == (TRUE, 4)
        assert a.peer.recv_exactly(4) == b"data"
        if immediate >= 3:
            break
    assert immediate > 0, "no send completed at once"


def test_receives_smaller_than_what_arrived_take_it_in_order(h: Harness) -> None:
    """Two bytes arrive; two receives of one byte each take "a", then "b":
    what does not fit stays for the next receive (sock.c test_WSARecv, "Send 2
    bytes and receive in two calls of 1")."""
    a = h.accept()
    a.peer.send(b"ab")
    _arrived(h, a.sock, b"ab")
    got = []
    for _ in range(2):
        ok, data, err = h.recv_once(a.sock, size=1)
        assert (ok, err) == (TRUE, 0)
        got.append(data)
    assert got == [b"a", b"b"]


def test_connect_on_an_accepted_socket_is_already_connected(h: Harness) -> None:
    """connect() on the server end of a connection (an accepted socket) fails
    with WSAEISCONN (sock.c test_connect: connect(acceptor, ...) after accept,
    and on both ends of tcp_socketpair)."""
    a = h.accept()
    lst, port = h.listener()
    h.ws.WSASetLastError(MARK)
    assert h.ws.connect(a.sock, sockaddr_in("127.0.0.1", port), 16) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAEISCONN
    assert h.send(a.sock, b"still") == (TRUE, 5)  # the connection is untouched
    assert a.peer.recv_exactly(5) == b"still"


def test_acceptex_short_read_and_its_addresses(h: Harness) -> None:
    """AcceptEx with room for 2 bytes of data: the client's connect alone does
    not complete it (the event stays unsignalled, Internal STATUS_PENDING); one
    byte does, with 1 byte; GetAcceptExSockaddrs with that receive length finds
    the listener's address as local and the client's as remote (sock.c
    test_AcceptEx, "Test short reads" and "Check if the buffer from AcceptEx is
    decoded correctly")."""
    posted = h.post_accept(rdl=2)
    p = h.peer()
    p.connect("127.0.0.1", posted.port)
    assert h.wait(posted.ov.hEvent, 100) == WAIT_TIMEOUT
    p.send(b"x")
    assert h.complete(posted.listener, posted.ov) == (TRUE, 1, 0)
    assert posted.out[:1] == b"x"
    addrs = h.ws.GetAcceptExSockaddrs(posted.out, 2, ADDR_SLOT, ADDR_SLOT)
    assert (addrs.LocalSockaddr.host, addrs.LocalSockaddr.port) == ("127.0.0.1", posted.port)
    assert (addrs.RemoteSockaddr.host, addrs.RemoteSockaddr.port) == p.address
    assert addrs.LocalSockaddrLength == addrs.RemoteSockaddrLength == 16


def test_shutdown_success_leaves_zero_in_the_last_error(h: Harness) -> None:
    """shutdown() that succeeds leaves the last error 0 (Windows 7 and later; as
    it was before 7: sock.c test_shutdown accepts exactly these two, for SD_SEND
    (twice) and SD_RECEIVE; Python 3.13, which the real backend needs, runs on
    Windows 8.1 and later, so only 0 is Windows here: section 52)."""
    a = h.accept()
    for how in (SD_SEND, SD_SEND, SD_RECEIVE):
        h.ws.WSASetLastError(MARK)
        assert h.ws.shutdown(a.sock, how) == 0
        assert h.ws.WSAGetLastError() == 0, how


def test_send_after_reset_on_a_port_fails_at_once_and_queues_nothing(h: Harness) -> None:
    """On a socket associated with a completion port whose peer has reset, an
    overlapped WSASend fails at once with WSAECONNRESET and queues no packet:
    GetQueuedCompletionStatus then times out with lpOverlapped NULL (sock.c
    test_completion_port, the second case)."""
    a = h.accept()
    port = h.port()
    assert h.ws.CreateIoCompletionPort(a.sock, port, 125, 0) == port
    ov = h.overlapped()
    rc, _, _ = h.recv(a.sock, ov)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING  # nothing was sent
    a.peer.reset()
    ok, _, key, got = h.ws.GetQueuedCompletionStatus(port, WAIT_MS)  # the receive's packet
    assert (ok, key, got) == (FALSE, 125, ov)
    buf = bytearray(b"data")
    send_ov = h.overlapped()
    h.ws.WSASetLastError(MARK)
    rc, _, _ = h.ws.WSASend(a.sock, [WSABUF(4, buf)], 1, 0, send_ov, None)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSAECONNRESET
    h.ws.SetLastError(MARK)
    ok, _, _, got = h.ws.GetQueuedCompletionStatus(port, 200)
    assert (ok, got) == (FALSE, None)
    assert h.ws.GetLastError() == WAIT_TIMEOUT


@pytest.mark.needs_immediate
def test_port_packet_of_an_immediate_receive_leaves_the_last_error(h: Harness) -> None:
    """A WSARecv that completes at once on a socket with a port still queues its
    packet; dequeuing it gives TRUE, the key, the byte count and the OVERLAPPED,
    and leaves the last error as it was (sock.c test_completion_port, "Test
    IOCP response on successful immediate read": GetLastError() == 0xdeadbeef
    after TRUE).  The same after the peer's graceful close: TRUE, 0 bytes
    ("Test IOCP response on graceful shutdown").  A receive that pends instead
    (allowed: test_nonblocking_async_recv) is dequeued and the step tried again."""
    a = h.accept()
    port = h.port()
    assert h.ws.CreateIoCompletionPort(a.sock, port, 125, 0) == port
    checked = 0
    for data in [b"hello"] * 10 + [b""]:
        if data:
            a.peer.send(data)
        else:
            a.peer.close()
        got_all = bytearray()
        while True:
            h.ws.Sleep(50)
            ov = h.overlapped()
            rc, n, buf = h.recv(a.sock, ov)
            if rc == 0:
                h.ws.SetLastError(MARK)
                assert h.ws.GetQueuedCompletionStatus(port, WAIT_MS) == (TRUE, n, 125, ov)
                assert h.ws.GetLastError() == MARK
                checked += 1
            else:
                assert h.ws.WSAGetLastError() == WSA_IO_PENDING
                ok, n, key, got = h.ws.GetQueuedCompletionStatus(port, WAIT_MS)
                assert (ok, key, got) == (TRUE, 125, ov)
            got_all += buf[:n]
            if len(got_all) == len(data):
                break
        assert got_all == data
    assert checked > 0, "no receive completed at once"


def test_closing_associated_sockets_with_nothing_pending_queues_nothing(h: Harness) -> None:
    """A listener and a connected socket, both associated with a port, closed
    with no operation pending: no packet (sock.c test_completion_port, "Test
    IOCP without AcceptEx": GetQueuedCompletionStatus times out with
    lpOverlapped NULL; iocp_async_closesocket for a connected socket)."""
    a = h.accept()
    port = h.port()
    assert h.ws.CreateIoCompletionPort(a.listener, port, 125, 0) == port
    assert h.ws.CreateIoCompletionPort(a.sock, port, 236, 0) == port
    assert h.close(a.listener) == 0
    assert h.close(a.sock) == 0
    h.ws.SetLastError(MARK)
    ok, _, _, got = h.ws.GetQueuedCompletionStatus(port, 200)
    assert (ok, got) == (FALSE, None)
    assert h.ws.GetLastError() == WAIT_TIMEOUT


_INHERITED = [
    (SOL_SOCKET, K.SO_REUSEADDR, 1), (SOL_SOCKET, K.SO_KEEPALIVE, 1), (SOL_SOCKET, K.SO_OOBINLINE, 1),
    (SOL_SOCKET, K.SO_SNDBUF, 0x123), (SOL_SOCKET, K.SO_RCVBUF, 0x123), (SOL_SOCKET, K.SO_SNDTIMEO, 0x123),
    (SOL_SOCKET, K.SO_RCVTIMEO, 0x123), (K.IPPROTO_TCP, K.TCP_NODELAY, 1),
]


@pytest.mark.wine_divergence("Wine 8.0 gives an AcceptEx socket the listener's SO_KEEPALIVE, SO_OOBINLINE, "
                             "TCP_NODELAY and SO_LINGER but its own SO_REUSEADDR (0), buffer sizes and timeouts (0); "
                             "Windows' accepted sockets inherit all of them (sock.c test_accept_inheritance, plain ok)")
def test_update_accept_context_inherits_the_listeners_options(h: Harness) -> None:
    """After SO_UPDATE_ACCEPT_CONTEXT an AcceptEx socket has the listener's
    SO_REUSEADDR, SO_KEEPALIVE, SO_OOBINLINE, SO_SNDBUF, SO_RCVBUF, SO_SNDTIMEO,
    SO_RCVTIMEO, TCP_NODELAY and SO_LINGER {1, 555}: what an accept()ed socket
    inherits (sock.c test_accept_inheritance), which AcceptEx's socket does
    once the option is set (Microsoft's AcceptEx remarks: "sAcceptSocket does
    not inherit the properties of the socket associated with sListenSocket
    parameter until SO_UPDATE_ACCEPT_CONTEXT is set on the socket")."""
    lst = h.socket()
    for level, opt, value in _INHERITED:
        assert h.ws.setsockopt(lst, level, opt, value, 4) == 0, opt
    assert h.ws.setsockopt(lst, SOL_SOCKET, K.SO_LINGER, 1 | 555 << 16, 4) == 0
    assert h.ws.bind(lst, sockaddr_in("127.0.0.1", 0), 16) == 0
    assert h.ws.listen(lst, 1) == 0
    rc, name = h.ws.getsockname(lst)
    assert rc == 0 and name is not None
    a = h.accept(on=(lst, name.port))  # AcceptEx, then SO_UPDATE_ACCEPT_CONTEXT
    for level, opt, value in _INHERITED:
        rc, raw = h.ws.getsockopt(a.sock, level, opt, 4)
        assert rc == 0 and int.from_bytes(raw, "little") == value, opt
    rc, raw = h.ws.getsockopt(a.sock, SOL_SOCKET, K.SO_LINGER, 4)
    assert rc == 0 and (raw[0] != 0, int.from_bytes(raw[2:4], "little")) == (True, 555)
