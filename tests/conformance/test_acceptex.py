"""AcceptEx (winsock-semantics.md "AcceptEx").

Sources: Wine's sock.c test_AcceptEx and test_completion_port, which run on
Windows (docs/semantics-findings.md sections 1-3, 12); the seed's notes.
"""

from __future__ import annotations

import pytest

from fakewinsock import WSAOVERLAPPED, Peer, sockaddr_in
from fakewinsock.constants import (
    FALSE,
    SO_REUSEADDR,
    SO_UPDATE_ACCEPT_CONTEXT,
    SOL_SOCKET,
    STATUS_CANCELLED,
    STATUS_PENDING,
    STATUS_SUCCESS,
    TRUE,
    WSA_INVALID_PARAMETER,
    WSA_IO_PENDING,
    WSA_OPERATION_ABORTED,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_TIMEOUT,
    WSAECONNRESET,
    WSAEFAULT,
    WSAEINVAL,
    WSAENOTSOCK,
)

from ._harness import ADDR_SLOT, Harness


def post(h: Harness, lst: int, acc: int, ov: WSAOVERLAPPED, rdl: int = 0, lal: int = ADDR_SLOT,
         ral: int = ADDR_SLOT) -> tuple[int, int, bytearray]:
    out = bytearray(rdl + max(lal, 0) + max(ral, 0) + 64)
    ok, n = h.ws.AcceptEx(lst, acc, out, rdl, lal, ral, ov)
    return ok, (n if ok else h.ws.WSAGetLastError()), out


def test_accept_with_no_receive_completes_on_connect(h: Harness) -> None:
    """dwReceiveDataLength 0: completes as soon as the connect is accepted;
    GetAcceptExSockaddrs decodes both addresses with the same three lengths."""
    lst, port = h.listener()
    acc = h.socket()
    ov = h.overlapped()
    ok, info, out = post(h, lst, acc, ov)
    assert ok == TRUE or info == WSA_IO_PENDING  # code must handle both
    if not ok:
        assert ov.Internal == STATUS_PENDING
        assert not h.is_signalled(ov.hEvent)
    p = h.peer()
    p.connect("127.0.0.1", port)
    res, n, err = h.complete(lst, ov)
    assert (res, n, err) == (TRUE, 0, 0)
    assert ov.Internal == STATUS_SUCCESS
    addrs = h.ws.GetAcceptExSockaddrs(out, 0, ADDR_SLOT, ADDR_SLOT)
    assert (addrs.RemoteSockaddr.host, addrs.RemoteSockaddr.port) == p.address
    assert (addrs.LocalSockaddr.host, addrs.LocalSockaddr.port) == ("127.0.0.1", port)


def connected_to_a_waiting_accept(h: Harness, rdl: int) -> tuple[int, int, WSAOVERLAPPED, bytearray, Peer]:
    """An AcceptEx with receive length ``rdl`` posted on a new listener, and a
    client connected to it that has sent nothing: the AcceptEx still pends.
    Returns (listener, accept socket, OVERLAPPED, output buffer, client)."""
    lst, port = h.listener()
    acc = h.socket()
    ov = h.overlapped()
    ok, info, out = post(h, lst, acc, ov, rdl=rdl)
    assert ok == FALSE and info == WSA_IO_PENDING
    p = h.peer()
    p.connect("127.0.0.1", port)
    assert h.wait(ov.hEvent, 300) == WSA_WAIT_TIMEOUT
    assert ov.Internal == STATUS_PENDING
    return lst, acc, ov, out, p


def test_accept_with_receive_waits_for_first_byte(h: Harness) -> None:
    """dwReceiveDataLength > 0: not complete on connect alone; completes on the
    first bytes, with that count (test_AcceptEx "short reads")."""
    lst, _, ov, out, p = connected_to_a_waiting_accept(h, rdl=2)
    p.send(b"A")
    res, n, _ = h.complete(lst, ov)
    assert (res, n) == (TRUE, 1)
    assert out[:1] == b"A"


def test_accept_with_receive_client_closes_without_sending(h: Harness) -> None:
    """test_AcceptEx "Disconnect during receive?": success with 0 bytes."""
    lst, _, ov, _, p = connected_to_a_waiting_accept(h, rdl=16)
    p.close()
    assert h.complete(lst, ov) == (TRUE, 0, 0)


def test_accept_with_receive_client_resets_without_sending(h: Harness) -> None:
    """A client connects to an AcceptEx with a receive length, sends nothing
    and resets.  Windows accepted the connection at the handshake (Microsoft's
    AcceptEx page: SO_CONNECT_TIME then counts), so the AcceptEx does not go
    back to waiting for another client: it fails with WSAECONNRESET (the
    page's return value: "an incoming connection was indicated, but was
    subsequently terminated by the remote peer prior to accepting the call"),
    or succeeds with 0 bytes and the first receive fails with WSAECONNRESET.
    No Windows-run test says which (docs/semantics-findings.md section 54)."""
    lst, acc, ov, _, p = connected_to_a_waiting_accept(h, rdl=16)
    p.reset()
    res, n, err = h.complete(lst, ov)
    if not res:
        assert err == WSAECONNRESET
        return
    assert n == 0
    assert h.ws.setsockopt(acc, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, lst, 8) == 0
    assert h.recv_once(acc)[::2] == (FALSE, WSAECONNRESET)


def test_a_silent_client_holds_up_only_its_own_accept(h: Harness) -> None:
    """Two AcceptEx with a receive length on one listener; the first client
    connects and sends nothing, the second connects and sends.  Each pending
    accept has taken a connection at its handshake, in posting order (section
    23: the head of AFD's pre-accept list; Microsoft's AcceptEx page), and
    waits only for that connection's data: the second AcceptEx completes with
    the second client's bytes while the first still waits, then the first
    completes with its own (docs/semantics-findings.md section 56)."""
    lst, port = h.listener()
    first = h.post_accept(rdl=16, on=(lst, port))
    second = h.post_accept(rdl=16, on=(lst, port))
    silent, talker = h.peer(), h.peer()
    silent.connect("127.0.0.1", port)
    talker.connect("127.0.0.1", port)
    talker.send(b"two")
    ok, n, _ = h.complete(lst, second.ov)  # on the first bytes: all three or fewer ("short reads")
    assert ok == TRUE and 1 <= n <= 3 and bytes(second.out[:n]) == b"two"[:n]
    assert h.wait(first.ov.hEvent, 300) == WSA_WAIT_TIMEOUT
    assert first.ov.Internal == STATUS_PENDING
    silent.send(b"one")
    ok, n, _ = h.complete(lst, first.ov)
    assert ok == TRUE and 1 <= n <= 3 and bytes(first.out[:n]) == b"one"[:n]
    for posted, client in ((first, silent), (second, talker)):
        addrs = h.ws.GetAcceptExSockaddrs(posted.out, 16, ADDR_SLOT, ADDR_SLOT)
        assert (addrs.RemoteSockaddr.host, addrs.RemoteSockaddr.port) == client.address


def test_invalid_handles(h: Harness) -> None:
    """INVALID_SOCKET as listener or accept socket: WSAENOTSOCK; Internal is
    STATUS_PENDING even so (AcceptEx writes it before validating)."""
    lst, _ = h.listener()
    acc = h.socket()
    for a, b in ((0xDEADBEE0, acc), (lst, 0xDEADBEE0)):
        ov = h.overlapped()
        ok, info, _ = post(h, a, b, ov)
        assert (ok, info) == (FALSE, WSAENOTSOCK)
        assert ov.Internal == STATUS_PENDING
        assert not h.is_signalled(ov.hEvent)


def test_null_overlapped(h: Harness) -> None:
    lst, _ = h.listener()
    acc = h.socket()
    ok, _ = h.ws.AcceptEx(lst, acc, bytearray(64), 0, ADDR_SLOT, ADDR_SLOT, None)
    assert ok == FALSE and h.ws.WSAGetLastError() == WSA_INVALID_PARAMETER


@pytest.mark.wine_divergence("Wine pends AcceptEx on a bound accept socket instead of failing (todo_wine)")
def test_accept_socket_must_be_fresh_bound(h: Harness) -> None:
    lst, _ = h.listener()
    acc = h.socket()
    assert h.ws.bind(acc, sockaddr_in("127.0.0.1", 0), 16) == 0
    ov = h.overlapped()
    ok, info, _ = post(h, lst, acc, ov)
    assert (ok, info) == (FALSE, WSAEINVAL)
    assert ov.Internal == STATUS_PENDING


@pytest.mark.wine_divergence("Wine pends AcceptEx on a connected accept socket instead of failing (todo_wine)")
def test_accept_socket_must_be_fresh_connected(h: Harness) -> None:
    a = h.accept()
    lst2, _ = h.listener()
    ov = h.overlapped()
    ok, info, _ = post(h, lst2, a.sock, ov)
    assert (ok, info) == (FALSE, WSAEINVAL)


def test_accept_socket_already_pending(h: Harness) -> None:
    lst, _ = h.listener()
    acc = h.socket()
    ov1, ov2 = h.overlapped(), h.overlapped()
    ok, info, _ = post(h, lst, acc, ov1)
    assert (ok, info) == (FALSE, WSA_IO_PENDING)
    ok, info, _ = post(h, lst, acc, ov2)
    assert (ok, info) == (FALSE, WSAEINVAL)


@pytest.mark.wine_divergence("Wine pends AcceptEx on a listener that is not listening (todo_wine)")
def test_listener_not_listening(h: Harness) -> None:
    lst = h.socket()
    assert h.ws.bind(lst, sockaddr_in("127.0.0.1", 0), 16) == 0
    acc = h.socket()
    ov = h.overlapped()
    ok, info, _ = post(h, lst, acc, ov)
    assert (ok, info) == (FALSE, WSAEINVAL)


def test_remote_address_length_zero(h: Harness) -> None:
    lst, _ = h.listener()
    acc = h.socket()
    ov = h.overlapped()
    ok, info, _ = post(h, lst, acc, ov, ral=0)
    assert (ok, info) == (FALSE, WSAEFAULT)


def test_local_address_length_zero_is_legal(h: Harness) -> None:
    """test_AcceptEx: a local address length of 0 works (the docs say otherwise)."""
    lst, port = h.listener()
    acc = h.socket()
    ov = h.overlapped()
    ok, info, out = post(h, lst, acc, ov, lal=0)
    assert ok == TRUE or info == WSA_IO_PENDING
    p = h.peer()
    p.connect("127.0.0.1", port)
    assert h.complete(lst, ov) == (TRUE, 0, 0)
    addrs = h.ws.GetAcceptExSockaddrs(out, 0, 0, ADDR_SLOT)
    assert (addrs.RemoteSockaddr.host, addrs.RemoteSockaddr.port) == p.address


@pytest.mark.wine_divergence("Wine accepts a local address slot of sizeof(sockaddr_in)+4 (todo_wine)")
def test_local_address_length_too_small_fails_at_completion(h: Harness) -> None:
    """test_AcceptEx: a local length of sizeof(sockaddr_in)+4 pends, then fails
    when the client arrives (STATUS_BUFFER_TOO_SMALL: WSAEFAULT), and the
    connection stays queued for the next accept."""
    lst, port = h.listener()
    acc = h.socket()
    ov = h.overlapped()
    ok, info, _ = post(h, lst, acc, ov, lal=16 + 4)
    assert (ok, info) == (FALSE, WSA_IO_PENDING)
    p = h.peer()
    p.connect("127.0.0.1", port)
    res, _, err = h.complete(lst, ov)
    assert (res, err) == (FALSE, WSAEFAULT)
    acc2 = h.socket()
    ov2 = h.overlapped()
    post(h, lst, acc2, ov2)
    assert h.complete(lst, ov2) == (TRUE, 0, 0)
    assert h.ws.setsockopt(acc2, SOL_SOCKET, 0x700B, lst, 8) == 0
    rc, name = h.ws.getpeername(acc2)
    assert rc == 0 and name is not None and name.port == p.address[1]


def test_closing_listener_aborts_pending_accept(h: Harness) -> None:
    """test_AcceptEx / test_completion_port: WSA_OPERATION_ABORTED, Internal
    STATUS_CANCELLED, event signalled."""
    lst, _ = h.listener()
    acc = h.socket()
    ov = h.overlapped()
    ok, info, _ = post(h, lst, acc, ov)
    assert (ok, info) == (FALSE, WSA_IO_PENDING)
    assert h.close(lst) == 0
    assert h.wait(ov.hEvent) == WSA_WAIT_EVENT_0
    ok2, _, _ = h.ws.WSAGetOverlappedResult(acc, ov, FALSE)
    assert ok2 == FALSE and h.ws.WSAGetLastError() == WSA_OPERATION_ABORTED
    assert ov.Internal == STATUS_CANCELLED


def test_closing_accept_socket_aborts_pending_accept(h: Harness) -> None:
    """test_AcceptEx: closing the accept socket with no client yet: 995."""
    lst, _ = h.listener()
    acc = h.socket()
    ov = h.overlapped()
    ok, info, _ = post(h, lst, acc, ov)
    assert (ok, info) == (FALSE, WSA_IO_PENDING)
    assert h.close(acc) == 0
    res, _, err = h.complete(lst, ov)
    assert (res, err) == (FALSE, WSA_OPERATION_ABORTED)


def test_reuseaddr_listeners_first_gets_connections(h: Harness) -> None:
    """test_reuseaddr: both sockets with SO_REUSEADDR bind; the first listener
    gets the connection."""
    s1 = h.socket()
    assert h.ws.setsockopt(s1, SOL_SOCKET, SO_REUSEADDR, 1, 4) == 0
    assert h.ws.bind(s1, sockaddr_in("127.0.0.1", 0), 16) == 0
    rc, name = h.ws.getsockname(s1)
    assert rc == 0 and name is not None
    s2 = h.socket()
    assert h.ws.setsockopt(s2, SOL_SOCKET, SO_REUSEADDR, 1, 4) == 0
    assert h.ws.bind(s2, sockaddr_in("127.0.0.1", name.port), 16) == 0
    assert h.ws.listen(s1, 5) == 0
    acc = h.socket()
    ov = h.overlapped()
    post(h, s1, acc, ov)
    h.peer().connect("127.0.0.1", name.port)
    assert h.complete(s1, ov) == (TRUE, 0, 0)


def test_connect_on_an_accept_socket_with_accept_pending(h: Harness) -> None:
    """test_AcceptEx: connect() on the accept socket of a pending AcceptEx gives WSAEINVAL."""
    lst, port = h.listener()
    acc = h.socket()
    ov = h.overlapped()
    ok, info, _ = post(h, lst, acc, ov)
    assert (ok, info) == (FALSE, WSA_IO_PENDING)
    assert h.ws.connect(acc, sockaddr_in("127.0.0.1", port), 16) == -1
    assert h.ws.WSAGetLastError() == WSAEINVAL
