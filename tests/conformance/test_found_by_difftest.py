"""Behaviours the differential tester (tools/difftest) showed, each checked once here on every backend.

The tester runs random Winsock programs on the fake and on the real ws2_32 and
reports where they disagree; each disagreement that was the fake's is fixed and
tested here, and each that is Wine's carries its evidence in
docs/difftest-explained.json and, where a test can show it, a
``wine_divergence`` test here (docs/semantics-findings.md, "Differential testing").
"""

from __future__ import annotations

import pytest

from fakewinsock import WSABUF
from fakewinsock.constants import (
    FALSE,
    SO_UPDATE_ACCEPT_CONTEXT,
    SOCKET_ERROR,
    SOL_SOCKET,
    STATUS_PENDING,
    TRUE,
    WSA_INVALID_PARAMETER,
    WSA_IO_PENDING,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_FAILED,
    WSAEFAULT,
    WSAENOTCONN,
)

from ._harness import ADDR_SLOT, Harness


def test_scatter_list_with_empty_buffers(h: Harness) -> None:
    """A WSABUF of length 0 inside a scatter list is skipped: the bytes go on into
    the buffers after it, in order, and the count is what they hold (found by the
    differential tester, tools/difftest: the fake once stopped copying at the first
    empty buffer while still reporting the full count)."""
    a = h.accept()
    a.peer.send(b"abcdefgh")
    bufs = [bytearray(0), bytearray(3), bytearray(0), bytearray(0), bytearray(5)]
    ov = h.overlapped()
    rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(len(b), b) for b in bufs], len(bufs), 0, ov, None)
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING
    ok, n, _ = h.complete(a.sock, ov)
    assert ok and 1 <= n <= 8
    assert (bufs[1] + bufs[4])[:n] == b"abcdefgh"[:n]
    assert h.recv_all(a.sock, 8 - n) == b"abcdefgh"[n:]


def test_gather_list_with_empty_buffers(h: Harness) -> None:
    """A WSABUF of length 0 inside a gather list sends nothing and the rest is sent in order."""
    a = h.accept()
    bufs = [bytearray(b""), bytearray(b"ab"), bytearray(b""), bytearray(b"cde")]
    ov = h.overlapped()
    rc, _, _ = h.ws.WSASend(a.sock, [WSABUF(len(b), b) for b in bufs], len(bufs), 0, ov, None)
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert h.complete(a.sock, ov) == (TRUE, 5, 0)
    assert a.peer.recv_exactly(5) == b"abcde"


def _accepted_without_context(h: Harness, rdl: int = 0) -> tuple[int, int, int, bytearray]:
    """(listener, accept socket, peer port, output buffer) after an AcceptEx that
    completed, before SO_UPDATE_ACCEPT_CONTEXT."""
    posted = h.post_accept(rdl)
    p = h.peer()
    p.connect("127.0.0.1", posted.port)
    peer_port = p.address[1]
    if rdl:
        p.close()  # leaves without sending
    assert h.complete(posted.listener, posted.ov) == (TRUE, 0, 0)
    return posted.listener, posted.sock, peer_port, posted.out


@pytest.mark.wine_divergence(
    "Wine 8.0 answers getsockname and getpeername on an AcceptEx socket before SO_UPDATE_ACCEPT_CONTEXT; "
    "Windows requires the option (test_AcceptEx: 'On Windows, this requires setting SO_UPDATE_ACCEPT_CONTEXT'; "
    "Microsoft's SOL_SOCKET options page)"
)
def test_names_need_update_accept_context(h: Harness) -> None:
    """getsockname and getpeername fail on an AcceptEx socket until SO_UPDATE_ACCEPT_CONTEXT
    is set, then work.  (Which error Windows gives is not tested anywhere we could read;
    the fake gives WSAENOTCONN.)"""
    lst, acc, port, _ = _accepted_without_context(h)
    rc, _ = h.ws.getsockname(acc)
    assert rc == SOCKET_ERROR
    rc, _ = h.ws.getpeername(acc)
    assert rc == SOCKET_ERROR
    if h.is_fake:
        assert h.ws.WSAGetLastError() == WSAENOTCONN
    assert h.ws.setsockopt(acc, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, lst, 8) == 0
    rc, name = h.ws.getsockname(acc)
    assert rc == 0 and name is not None
    rc, name = h.ws.getpeername(acc)
    assert rc == 0 and name is not None and name.port == port


@pytest.mark.wine_divergence(
    "Wine 8.0 leaves the address slots empty when the client left without sending; Windows writes them "
    "whenever AcceptEx succeeds (Microsoft's AcceptEx page: it returns the local and remote addresses)"
)
def test_addresses_written_when_client_leaves_without_data(h: Harness) -> None:
    """AcceptEx with a receive length whose client connects and closes without sending
    completes with 0 bytes (test_AcceptEx "Disconnect during receive?") and still
    holds both addresses."""
    lst, acc, port, out = _accepted_without_context(h, rdl=4)
    sa = h.ws.GetAcceptExSockaddrs(out, 4, ADDR_SLOT, ADDR_SLOT)
    assert sa.RemoteSockaddr.host == "127.0.0.1" and sa.RemoteSockaddr.port == port
    rc, name = h.ws.getsockname(lst)
    assert rc == 0 and name is not None
    assert sa.LocalSockaddr.port == name.port


@pytest.mark.wine_divergence(
    "Wine 8.0 fails AcceptEx with a NULL output buffer and a receive length with WSAEINVAL; Windows gives "
    "WSAEFAULT (test_AcceptEx, todo_wine; docs/semantics-findings.md section 2)"
)
def test_acceptex_null_output_buffer(h: Harness) -> None:
    """A NULL output buffer with a receive length: immediate WSAEFAULT, Internal STATUS_PENDING."""
    lst, _ = h.listener()
    acc = h.socket()
    ov = h.overlapped()
    ok, _ = h.ws.AcceptEx(lst, acc, None, 4, ADDR_SLOT, ADDR_SLOT, ov)
    assert ok == FALSE and h.ws.WSAGetLastError() == WSAEFAULT
    assert ov.Internal == STATUS_PENDING
    assert not h.is_signalled(ov.hEvent)


@pytest.mark.wine_divergence(
    "Wine 8.0 waits on a handle listed twice with fWaitAll; Windows fails the wait with "
    "ERROR_INVALID_PARAMETER (WaitForMultipleObjects: the array may not contain copies of a handle)"
)
def test_wait_all_with_a_handle_twice_fails(h: Harness) -> None:
    """fWaitAll with the same event twice: WSA_WAIT_FAILED, WSA_INVALID_PARAMETER; without
    fWaitAll the same list is a normal wait."""
    ev = h.event()
    assert h.ws.WSASetEvent(ev)
    rc = h.ws.WSAWaitForMultipleEvents(2, [ev, ev], TRUE, 0, FALSE)
    assert rc == WSA_WAIT_FAILED and h.ws.WSAGetLastError() == WSA_INVALID_PARAMETER
    assert h.ws.WSAWaitForMultipleEvents(2, [ev, ev], FALSE, 0, FALSE) == WSA_WAIT_EVENT_0
