"""An OVERLAPPED whose hEvent names no event, given to WSARecv, WSASend and
AcceptEx (docs/semantics-findings.md section 57).

The I/O manager references hEvent as an event object before the request
starts: a value that names nothing fails with STATUS_INVALID_HANDLE, a handle
of another kind (a completion port) with STATUS_OBJECT_TYPE_MISMATCH, and
ws2_32's status map makes both WSAENOTSOCK (Wine's sock.c
test_WSAGetOverlappedResult, run on Windows, for the map).  No Windows-run
test posts such an operation: that the call fails with the mapped code is
inferred; Wine 8.0 gives WSAENOTSOCK for all three.  Nothing is queued or
signalled, and the OVERLAPPED can be used again at once.
"""

from __future__ import annotations

import pytest

from fakewinsock import WSABUF, WSAOVERLAPPED
from fakewinsock.constants import FALSE, SOCKET_ERROR, STATUS_PENDING, TRUE, WSAENOTSOCK

from ._harness import ADDR_SLOT, Harness

_NAMES_NOTHING = 0xDEAD0


@pytest.mark.parametrize("call", ["WSARecv", "WSASend"])
def test_receive_or_send_with_an_hevent_that_is_no_event_fails_with_wsaenotsock(h: Harness, call: str) -> None:
    a = h.accept()
    port = h.port()
    for bogus in (_NAMES_NOTHING, port):
        ov = WSAOVERLAPPED()
        ov.hEvent = bogus
        buf = bytearray(b"data")
        h.ws.WSASetLastError(0)
        rc, _, _ = getattr(h.ws, call)(a.sock, [WSABUF(len(buf), buf)], 1, 0, ov, None)
        assert rc == SOCKET_ERROR, bogus
        assert h.ws.WSAGetLastError() == WSAENOTSOCK, bogus
    # The connection is untouched: the same call with an event works.
    if call == "WSASend":
        assert h.send(a.sock, b"ok") == (TRUE, 2)
        assert a.peer.recv_exactly(2) == b"ok"
    else:
        a.peer.send(b"ok")
        assert h.recv_all(a.sock, 2) == b"ok"


@pytest.mark.wine_divergence("Wine's ws2_32 writes Internal = STATUS_PENDING before it calls the server")
def test_a_receive_that_fails_on_its_hevent_leaves_internal_alone(h: Harness) -> None:
    """An immediate failure of WSARecv leaves Internal as it was (section 0;
    here the request never started: the event reference fails first)."""
    a = h.accept()
    ov = WSAOVERLAPPED()
    ov.hEvent = _NAMES_NOTHING
    ov.Internal = 0x1234
    buf = bytearray(4)
    rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(4, buf)], 1, 0, ov, None)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSAENOTSOCK
    assert ov.Internal == 0x1234


def test_acceptex_with_an_hevent_that_is_no_event_fails_with_wsaenotsock(h: Harness) -> None:
    """AcceptEx: FALSE, WSAENOTSOCK, Internal STATUS_PENDING (AcceptEx writes it
    before it validates: section 0); no connection is taken, so a later AcceptEx
    gets the client."""
    lst, port = h.listener()
    acc = h.socket()
    for bogus in (_NAMES_NOTHING, h.port()):
        ov = WSAOVERLAPPED()
        ov.hEvent = bogus
        h.ws.WSASetLastError(0)
        ok, _ = h.ws.AcceptEx(lst, acc, bytearray(2 * ADDR_SLOT), 0, ADDR_SLOT, ADDR_SLOT, ov)
        assert ok == FALSE
        assert h.ws.WSAGetLastError() == WSAENOTSOCK, bogus
        assert ov.Internal == STATUS_PENDING
    a = h.accept(on=(lst, port))
    rc, name = h.ws.getpeername(a.sock)
    assert rc == 0 and name is not None
