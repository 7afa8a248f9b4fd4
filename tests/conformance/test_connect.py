"""connect (the client side) and refused connections.

Sources: Wine's sock.c test_errors (a refused blocking connect gives
WSAECONNREFUSED), test_connect (WSAEISCONN on a connected socket, WSAEINVAL on
a listening one) (docs/semantics-findings.md section 13).
"""

from __future__ import annotations

import pytest

from fakewinsock import sockaddr_in
from fakewinsock.constants import (
    FALSE,
    SOCKET_ERROR,
    TRUE,
    WAIT_TIMEOUT,
    WSA_IO_PENDING,
    WSAECONNREFUSED,
    WSAECONNRESET,
    WSAEINVAL,
    WSAEISCONN,
)

from ._harness import ADDR_SLOT, Harness


def free_port(h: Harness) -> int:
    """A port nobody listens on: bind one, then close it."""
    s, port = h.listener()
    h.close(s)
    return port


def test_connect_to_a_listener(h: Harness) -> None:
    lst, port = h.listener()
    c = h.socket()
    assert h.ws.connect(c, sockaddr_in("127.0.0.1", port), 16) == 0
    rc, name = h.ws.getpeername(c)
    assert rc == 0 and name is not None and name.port == port
    assert h.ws.connect(c, sockaddr_in("127.0.0.1", port), 16) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAEISCONN
    acc = h.socket()
    ov = h.overlapped()
    ok, _ = h.ws.AcceptEx(lst, acc, bytearray(2 * ADDR_SLOT), 0, ADDR_SLOT, ADDR_SLOT, ov)
    assert ok or h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert h.complete(lst, ov) == (TRUE, 0, 0)
    assert h.send(c, b"from the client") == (TRUE, 15)
    assert h.recv_all(acc, 15) == b"from the client"


def test_connect_refused(h: Harness) -> None:
    port = free_port(h)
    c = h.socket()
    assert h.ws.connect(c, sockaddr_in("127.0.0.1", port), 16) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAECONNREFUSED


def test_connect_on_a_listener(h: Harness) -> None:
    lst, port = h.listener()
    assert h.ws.connect(lst, sockaddr_in("127.0.0.1", port), 16) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAEINVAL


def test_peer_connection_refused(h: Harness) -> None:
    port = free_port(h)
    with pytest.raises(ConnectionRefusedError):
        h.peer().connect("127.0.0.1", port)


@pytest.mark.wine_divergence(
    "Wine 8.0 completes the AcceptEx with STATUS_INVALID_CONNECTION (WSAENOTCONN); Windows reports the reset"
)
def test_reset_before_accept(h: Harness) -> None:
    """A client connects and resets before AcceptEx is posted.  Windows'
    outcome is untested in Wine's suite.  Three are allowed: the connection is
    dropped (the accept keeps waiting); it is accepted and its first receive
    fails with WSAECONNRESET; or the AcceptEx itself completes with the reset,
    which is what Windows servers are reported to see (GetOverlappedResult
    ERROR_NETNAME_DELETED, i.e. STATUS_CONNECTION_RESET, which
    WSAGetOverlappedResult gives as WSAECONNRESET: capnproto/capnproto#2773,
    python/cpython#93821).  Servers must handle all three; the fake's seed
    picks one of the three (a connection an AcceptEx with a receive length
    already waits on is never dropped: test_acceptex.py, section 54)."""
    lst, port = h.listener()
    p = h.peer()
    p.connect("127.0.0.1", port)
    p.reset()
    h.settle()
    acc = h.socket()
    ov = h.overlapped()
    ok, _ = h.ws.AcceptEx(lst, acc, bytearray(2 * ADDR_SLOT), 0, ADDR_SLOT, ADDR_SLOT, ov)
    assert ok or h.ws.WSAGetLastError() == WSA_IO_PENDING
    if not ok and h.wait(ov.hEvent, 500) != 0:
        return  # dropped: the accept keeps waiting (closing the listener aborts it)
    ok2, _, _ = h.ws.WSAGetOverlappedResult(lst, ov, FALSE)
    if not ok2:
        assert not ok  # TRUE from AcceptEx is a success (section 55)
        assert h.ws.WSAGetLastError() == WSAECONNRESET  # the accept failed with the reset
        return
    rov = h.overlapped()
    rc, _, _ = h.recv(acc, rov)
    if rc == SOCKET_ERROR and h.ws.WSAGetLastError() != WSA_IO_PENDING:
        assert h.ws.WSAGetLastError() == WSAECONNRESET
    else:
        assert h.complete(acc, rov)[2] == WSAECONNRESET


def test_connect_on_a_socket_with_a_port_queues_nothing(h: Harness) -> None:
    """connect() is no overlapped operation: on a socket associated with a
    completion port it queues no packet, whether it succeeds or is refused
    (sock.c test_connect_completion_port, "connect() does not queue
    completion": GetQueuedCompletionStatus then times out)."""
    lst, port = h.listener()
    refused_port = free_port(h)
    iocp = h.port()
    for target, expected in ((port, 0), (refused_port, SOCKET_ERROR)):
        c = h.socket()
        assert h.ws.CreateIoCompletionPort(c, iocp, 7, 0) == iocp
        assert h.ws.connect(c, sockaddr_in("127.0.0.1", target), 16) == expected
        ok, _, _, got = h.ws.GetQueuedCompletionStatus(iocp, 200)
        assert (ok, got) == (FALSE, None)
        assert h.ws.GetLastError() == WAIT_TIMEOUT
