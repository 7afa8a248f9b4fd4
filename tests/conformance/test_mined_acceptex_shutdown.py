"""AcceptEx, shutdown, SO_DEBUG and the state after a reset, mined from Wine's sock.c.

Sources (plain ok() checks unless marked): ``test_AcceptEx`` (every immediate
failure writes STATUS_PENDING into an ``Internal`` that held 0xdeadbeef; a
local address slot of 3 bytes pends and then fails with STATUS_BUFFER_TOO_SMALL;
slots of sizeof(sockaddr_in)+15 pend and CancelIo cancels them; cancelling the
accept socket's I/O leaves the AcceptEx alone; a NULL OVERLAPPED with zero
lengths), ``test_shutdown`` (the last error after a successful shutdown, names
and connect after it, a pending receive completed by the peer's FIN),
dotnet/runtime's ``Shutdown.cs`` (shutdown(SD_BOTH) once both sides have closed),
``test_so_debug``, ``test_tcp_reset`` (SO_ERROR reads 0 after a reset).
"""

from __future__ import annotations

import pytest

from fakewinsock import WSAOVERLAPPED, sockaddr_in
from fakewinsock.constants import (
    ERROR_NOT_FOUND,
    FALSE,
    SD_BOTH,
    SD_RECEIVE,
    SD_SEND,
    SO_DEBUG,
    SO_ERROR,
    SOCKET_ERROR,
    SOL_SOCKET,
    STATUS_BUFFER_TOO_SMALL,
    STATUS_PENDING,
    TRUE,
    WSA_INVALID_PARAMETER,
    WSA_IO_PENDING,
    WSA_WAIT_TIMEOUT,
    WSAEFAULT,
    WSAEINVAL,
    WSAEISCONN,
    WSAENOTSOCK,
    WSAESHUTDOWN,
)

from ._harness import ADDR_SLOT, Harness

SENTINEL = 0xDEADBEEF


def post(h: Harness, lst: int, acc: int, ov: WSAOVERLAPPED, rdl: int = 0, lal: int = ADDR_SLOT,
         ral: int = ADDR_SLOT, out: bytearray | None = None) -> tuple[int, int]:
    """AcceptEx with Internal set to 0xdeadbeef first: (ok, last error or bytes)."""
    if out is None:
        out = bytearray(rdl + lal + ral + 64)
    ov.Internal = SENTINEL
    ok, n = h.ws.AcceptEx(lst, acc, out, rdl, lal, ral, ov)
    return ok, (n if ok else h.ws.WSAGetLastError())


def test_failures_write_status_pending(h: Harness) -> None:
    """Every immediate failure Windows gives for these leaves STATUS_PENDING in
    Internal, whatever it held: a bogus listener or accept socket (WSAENOTSOCK),
    an address slot of 0 bytes for the remote address (WSAEFAULT), an accept
    socket with an AcceptEx already pending (WSAEINVAL)."""
    lst, _ = h.listener()
    acc = h.socket()
    cases = [(0xDEADBEE0, acc, ADDR_SLOT, WSAENOTSOCK), (lst, 0xDEADBEE0, ADDR_SLOT, WSAENOTSOCK),
             (lst, acc, 0, WSAEFAULT)]
    for listener, accept_socket, ral, error in cases:
        ov = h.overlapped()
        assert post(h, listener, accept_socket, ov, ral=ral) == (FALSE, error)
        assert ov.Internal == STATUS_PENDING
    ov1 = h.overlapped()
    assert post(h, lst, acc, ov1) == (FALSE, WSA_IO_PENDING)
    ov2 = h.overlapped()
    assert post(h, lst, acc, ov2) == (FALSE, WSAEINVAL)
    assert ov2.Internal == STATUS_PENDING
    assert ov1.Internal == STATUS_PENDING


@pytest.mark.parametrize("kind", ["not-listening", "bound-acceptor", "null-buffer"])
def test_pended_or_refused_it_says_pending(h: Harness, kind: str) -> None:
    """A listener that does not listen, a bound accept socket, a NULL output
    buffer with receive data: Windows fails them (todo_wine in Wine, which
    pends them), and either way Internal reads STATUS_PENDING (a plain ok())."""
    if kind == "not-listening":
        lst = h.socket()
        assert h.ws.bind(lst, sockaddr_in("127.0.0.1", 0), 16) == 0
    else:
        lst, _ = h.listener()
    acc = h.socket()
    if kind == "bound-acceptor":
        assert h.ws.bind(acc, sockaddr_in("127.0.0.1", 0), 16) == 0
    ov = h.overlapped()
    ov.Internal = SENTINEL
    if kind == "null-buffer":
        ok, _ = h.ws.AcceptEx(lst, acc, None, 16, ADDR_SLOT, ADDR_SLOT, ov)
    else:
        ok, _ = h.ws.AcceptEx(lst, acc, bytearray(2 * ADDR_SLOT), 0, ADDR_SLOT, ADDR_SLOT, ov)
    assert ok == FALSE
    assert ov.Internal == STATUS_PENDING
    if h.ws.WSAGetLastError() == WSA_IO_PENDING:
        assert h.ws.CancelIoEx(lst, ov) == TRUE


def test_local_slot_of_three_bytes_fails_at_completion(h: Harness) -> None:
    """A 3-byte local address slot pends; when a client connects the AcceptEx
    fails with STATUS_BUFFER_TOO_SMALL (WSAEFAULT through
    WSAGetOverlappedResult) and 0 bytes."""
    lst, port = h.listener()
    acc = h.socket()
    ov = h.overlapped()
    assert post(h, lst, acc, ov, lal=3) == (FALSE, WSA_IO_PENDING)
    assert ov.Internal == STATUS_PENDING
    h.peer().connect("127.0.0.1", port)
    ok, n, err = h.complete(lst, ov)
    assert (ok, n, err) == (FALSE, 0, WSAEFAULT)
    assert ov.Internal == STATUS_BUFFER_TOO_SMALL


@pytest.mark.parametrize(("lal", "ral"), [(16 + 15, ADDR_SLOT), (ADDR_SLOT, 16 + 15)])
def test_slots_one_byte_short_pend_and_cancel(h: Harness, lal: int, ral: int) -> None:
    """Address slots of sizeof(sockaddr_in)+15 are accepted (it pends), and
    cancelling the listener's I/O returns TRUE."""
    lst, _ = h.listener()
    acc = h.socket()
    ov = h.overlapped()
    assert post(h, lst, acc, ov, lal=lal, ral=ral) == (FALSE, WSA_IO_PENDING)
    assert ov.Internal == STATUS_PENDING
    assert h.ws.CancelIoEx(lst, None) == TRUE
    assert h.complete(lst, ov)[2] == 995


def test_null_overlapped_with_zero_slots(h: Harness) -> None:
    lst, _ = h.listener()
    acc = h.socket()
    ok, _ = h.ws.AcceptEx(lst, acc, bytearray(64), 0, 0, 0, None)
    assert ok == FALSE and h.ws.WSAGetLastError() == WSA_INVALID_PARAMETER


def test_cancelling_the_accept_socket_leaves_the_accept(h: Harness) -> None:
    """CancelIo on the accept socket does not cancel an AcceptEx (it belongs to
    the listener): its event stays unsignalled for a second."""
    lst, _ = h.listener()
    acc = h.socket()
    ov = h.overlapped()
    assert post(h, lst, acc, ov) == (FALSE, WSA_IO_PENDING)
    h.ws.CancelIoEx(acc, None)
    assert h.wait(ov.hEvent, 1000) == WSA_WAIT_TIMEOUT
    assert ov.Internal == STATUS_PENDING


@pytest.mark.wine_divergence("Wine 8.0's CancelIoEx on the accept socket returns TRUE (and cancels nothing)")
def test_cancelioex_on_the_accept_socket_finds_nothing(h: Harness) -> None:
    """CancelIoEx(accept socket, NULL) and CancelIoEx(accept socket, the
    AcceptEx's OVERLAPPED), an AcceptEx pending: FALSE, ERROR_NOT_FOUND; the
    request was issued on the listener's handle (test_AcceptEx: cancelling the
    accept socket's I/O leaves it; CancelIoEx page: FALSE with ERROR_NOT_FOUND
    when no request is found; docs/semantics-findings.md section 57).  The
    listener's handle then cancels it."""
    lst, _ = h.listener()
    acc = h.socket()
    ov = h.overlapped()
    assert post(h, lst, acc, ov) == (FALSE, WSA_IO_PENDING)
    for which in (None, ov):
        h.ws.SetLastError(0)
        assert h.ws.CancelIoEx(acc, which) == FALSE
        assert h.ws.GetLastError() == ERROR_NOT_FOUND
    assert h.ws.CancelIoEx(lst, ov) == TRUE
    assert h.complete(lst, ov)[2] == 995


def test_success_leaves_zero_in_the_last_error(h: Harness) -> None:
    """Successful shutdowns leave 0 in the last error, SD_SEND twice included
    (sock.c test_shutdown also accepts 0xdeadbeef, "< 7": no Windows the real
    backend's Python 3.13 runs on; docs/semantics-findings.md section 52)."""
    a = h.accept()
    for how in (SD_SEND, SD_SEND, SD_RECEIVE, SD_BOTH):
        h.ws.WSASetLastError(SENTINEL)
        assert h.ws.shutdown(a.sock, how) == 0
        assert h.ws.WSAGetLastError() == 0


def test_shutdown_both_after_the_connection_closed_both_ways_succeeds(h: Harness) -> None:
    """dotnet/runtime's ``Shutdown.cs`` (@ ``20dcbe553a9a``, Shutdown_TCP_CLOSED_Success; its tests run on
    Windows in CI): 32 one-byte sends, shutdown(SD_SEND), the peer answers, shuts its side and closes,
    the receives run until EOF; then shutdown(SD_BOTH) succeeds (docs/semantics-findings.md section 35)."""
    a = h.accept()
    for _ in range(32):
        assert h.send(a.sock, b"*") == (TRUE, 1)
    assert h.ws.shutdown(a.sock, SD_SEND) == 0
    assert a.peer.recv_exactly(32) == b"*" * 32
    a.peer.send(b"echo")
    a.peer.shutdown()
    a.peer.close()
    assert h.recv_all(a.sock, 4) == b"echo"
    assert h.recv_once(a.sock) == (TRUE, b"", 0)
    assert h.ws.shutdown(a.sock, SD_BOTH) == 0


def test_after_shutdown(h: Harness) -> None:
    """After SD_RECEIVE every new receive fails with WSAESHUTDOWN; after
    SD_BOTH sends do too; the names still read, connect says WSAEISCONN."""
    a = h.accept()
    assert h.ws.shutdown(a.sock, SD_RECEIVE) == 0
    for _ in range(2):
        rc, _, _ = h.recv(a.sock, h.overlapped())
        assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSAESHUTDOWN
    assert h.ws.shutdown(a.sock, SD_BOTH) == 0
    from fakewinsock import WSABUF

    rc, _, _ = h.ws.WSASend(a.sock, [WSABUF(1, bytearray(b"x"))], 1, 0, h.overlapped(), None)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSAESHUTDOWN
    rc, peer = h.ws.getpeername(a.sock)
    assert rc == 0 and peer is not None and (peer.host, peer.port) == a.peer.address
    rc, local = h.ws.getsockname(a.sock)
    assert rc == 0 and local is not None
    assert h.ws.connect(a.sock, sockaddr_in("127.0.0.1", local.port), 16) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAEISCONN


def test_peer_fin_completes_a_pending_receive_with_zero(h: Harness) -> None:
    """test_shutdown "async I/O pending": the client's shutdown(SD_SEND)
    completes the server's pending WSARecv successfully with 0 bytes."""
    a = h.accept()
    ov = h.overlapped()
    rc, _, _ = h.recv(a.sock, ov)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    a.peer.shutdown()
    assert h.complete(a.sock, ov) == (TRUE, 0, 0)


def test_so_debug(h: Harness) -> None:
    """SO_DEBUG reads 0 (4 bytes, last error 0); setting 2 succeeds."""
    s = h.socket()
    h.ws.WSASetLastError(SENTINEL)
    rc, val = h.ws.getsockopt(s, SOL_SOCKET, SO_DEBUG, 4)
    assert (rc, val, h.ws.WSAGetLastError()) == (0, bytes(4), 0)
    assert h.ws.setsockopt(s, SOL_SOCKET, SO_DEBUG, 2, 4) == 0


@pytest.mark.wine_divergence("Wine 8.0 reads SO_DEBUG back as 0 after setting 2 (todo_wine in test_so_debug)")
def test_so_debug_reads_back_as_boolean(h: Harness) -> None:
    s = h.socket()
    assert h.ws.setsockopt(s, SOL_SOCKET, SO_DEBUG, 2, 4) == 0
    rc, val = h.ws.getsockopt(s, SOL_SOCKET, SO_DEBUG, 4)
    assert rc == 0 and int.from_bytes(val, "little") == 1


def test_so_error_is_zero_after_a_reset(h: Harness) -> None:
    a = h.accept()
    ov = h.overlapped()
    h.recv(a.sock, ov)
    a.peer.reset()
    assert h.complete(a.sock, ov)[0] == FALSE
    rc, val = h.ws.getsockopt(a.sock, SOL_SOCKET, SO_ERROR, 4)
    assert rc == 0 and int.from_bytes(val, "little") == 0
