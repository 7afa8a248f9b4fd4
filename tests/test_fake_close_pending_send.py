"""closesocket with a WSASend pending to a peer that does not read.

Windows completes every pending operation when the socket's last handle is
closed (closesocket's remarks; the IRP_MJ_CLEANUP contract every driver keeps;
Wine's iocp_async_read_closesocket shows it for a receive).  Wine 8.0 does not
for a send: seen under Wine with a Linux peer that does not read, the send
stayed pending (Internal 0x103) 12 s after a graceful or an abortive
closesocket, its bytes went on flowing as the peer read, and only CancelIoEx
*before* closesocket completed it (STATUS_CANCELLED at once).
``FakeConfig(close_keeps_sends=True)`` produces Wine's behaviour, so a program
can be tested against both.
"""

from __future__ import annotations

import ctypes

import pytest

from fakewinsock import LINGER, WSABUF, WSAOVERLAPPED, FakeConfig, FakePeer, FakeWinsock
from fakewinsock.constants import (
    FALSE,
    SO_LINGER,
    SOL_SOCKET,
    STATUS_CANCELLED,
    STATUS_CONNECTION_ABORTED,
    STATUS_CONNECTION_RESET,
    STATUS_PENDING,
    TRUE,
    WSA_IO_PENDING,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_TIMEOUT,
)
from tests.conformance._harness import connected_socket

WINDOW = 4096
DATA = b"d" * (4 * WINDOW)


def stalled_send(keep: bool) -> tuple[FakeWinsock, int, int, FakePeer, WSAOVERLAPPED]:
    """A connection whose server side has a WSASend pending: the peer does not read."""
    ws = FakeWinsock(seed=3, config=FakeConfig(window=WINDOW, close_keeps_sends=keep, background=0.0))
    acc, peer = connected_socket(ws)
    assert isinstance(peer, FakePeer)
    ov = WSAOVERLAPPED()
    ov.hEvent = ws.WSACreateEvent()
    rc, _, _ = ws.WSASend(acc, [WSABUF(len(DATA), DATA)], 1, 0, ov, None)
    assert rc != 0 and ws.WSAGetLastError() == WSA_IO_PENDING
    assert ws.WSAWaitForMultipleEvents(1, [ov.hEvent], FALSE, 1000, FALSE) == WSA_WAIT_TIMEOUT
    return ws, acc, ov.hEvent, peer, ov


def result(ov: WSAOVERLAPPED) -> int:
    """The status the completed operation ended with (its socket is closed, so
    WSAGetOverlappedResult could only say WSAENOTSOCK)."""
    assert ov.Internal != STATUS_PENDING
    return int(ov.Internal)


def finish(ws: FakeWinsock, ev: int) -> None:
    ws.WSACloseEvent(ev)
    ws.WSACleanup()


def abortive(ws: FakeWinsock, s: int) -> None:
    lg = LINGER(1, 0)
    assert ws.setsockopt(s, SOL_SOCKET, SO_LINGER, lg, ctypes.sizeof(lg)) == 0


def closed_stalled(keep: bool, abort: bool) -> tuple[FakeWinsock, int, FakePeer, WSAOVERLAPPED]:
    """:func:`stalled_send`, then closesocket (abortive with ``abort``): (ws, event, peer, ov)."""
    ws, acc, ev, peer, ov = stalled_send(keep=keep)
    if abort:
        abortive(ws, acc)
    assert ws.closesocket(acc) == 0
    return ws, ev, peer, ov


@pytest.mark.parametrize("abort", [False, True])
def test_windows_close_completes_the_pending_send(abort: bool) -> None:
    ws, ev, peer, ov = closed_stalled(keep=False, abort=abort)
    assert ws.WSAWaitForMultipleEvents(1, [ev], FALSE, 10, FALSE) == WSA_WAIT_EVENT_0
    assert result(ov) == STATUS_CONNECTION_ABORTED
    finish(ws, ev)


@pytest.mark.parametrize("abort", [False, True])
def test_wine_close_keeps_the_send_pending_until_the_peer_reads(abort: bool) -> None:
    ws, ev, peer, ov = closed_stalled(keep=True, abort=abort)
    assert ws.WSAWaitForMultipleEvents(1, [ev], FALSE, 60_000, FALSE) == WSA_WAIT_TIMEOUT
    assert ov.Internal == STATUS_PENDING
    assert not peer.at_eof and not peer.was_reset  # the connection is still open
    # The peer reads: the bytes flow, the send completes, then the close happens.
    got = bytearray()
    try:
        while chunk := peer.recv():
            got += chunk
        reset = False
    except ConnectionResetError:
        reset = True
    assert ws.WSAWaitForMultipleEvents(1, [ev], FALSE, 0, FALSE) == WSA_WAIT_EVENT_0
    assert result(ov) == 0
    if abort:
        # The RST follows the send's last bytes into the network and discards
        # what the peer had not read yet.
        assert reset and DATA.startswith(got)
    else:
        assert not reset and got == DATA  # everything, then FIN
    finish(ws, ev)


def test_wine_close_keeps_the_send_pending_until_the_peer_resets() -> None:
    ws, acc, ev, peer, ov = stalled_send(keep=True)
    ws.closesocket(acc)
    peer.reset()
    assert ws.WSAWaitForMultipleEvents(1, [ev], FALSE, 1000, FALSE) == WSA_WAIT_EVENT_0
    assert result(ov) == STATUS_CONNECTION_RESET
    finish(ws, ev)


def test_wine_a_kept_send_is_a_leak_at_cleanup() -> None:
    ws, acc, ev, peer, ov = stalled_send(keep=True)
    ws.closesocket(acc)
    ws.WSACloseEvent(ev)
    assert any("WSASend" in leak for leak in ws.leaks())


@pytest.mark.parametrize("keep", [False, True])
def test_cancel_before_an_abortive_close_ends_the_send_and_resets_the_peer(keep: bool) -> None:
    ws, acc, ev, peer, ov = stalled_send(keep=keep)
    assert ws.CancelIoEx(acc, None) == TRUE
    abortive(ws, acc)
    ws.closesocket(acc)
    assert ws.WSAWaitForMultipleEvents(1, [ev], FALSE, 10, FALSE) == WSA_WAIT_EVENT_0
    assert result(ov) == STATUS_CANCELLED
    with pytest.raises(ConnectionResetError):  # the RST discards what was not read yet
        peer.recv_exactly(len(DATA))
    finish(ws, ev)
