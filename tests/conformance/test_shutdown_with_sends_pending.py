"""shutdown(SD_SEND) while overlapped sends are still pending
(docs/semantics-findings.md sections 6 and 28).

Microsoft's shutdown page: after SD_SEND "subsequent calls to the send
function are disallowed", and for TCP "a FIN will be sent after all data is
sent and acknowledged by the receiver"; Wine's sock.c test_shutdown (run on
Windows): a send after SD_SEND fails with WSAESHUTDOWN; section 0: an
immediate failure notifies nothing.  The sends already posted are data the
application has handed over before the shutdown: they are not cancelled,
they complete whole, in order, and the FIN follows the last byte of the last
one (test_sockets.py's test_shutdown_send_lets_a_pending_send_finish_first
holds one send; these hold several, and a send posted after the shutdown).
"""

from __future__ import annotations

from fakewinsock import WSABUF, WSAOVERLAPPED
from fakewinsock.constants import (
    FALSE,
    SD_SEND,
    SOCKET_ERROR,
    TRUE,
    WSA_IO_PENDING,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_TIMEOUT,
    WSAESHUTDOWN,
)

from ._harness import WAIT_MS, Harness

BIG = 16 * 1024 * 1024  # more than any send buffer: the first send pends while the peer does not read


def _pattern(size: int, seed: int) -> bytearray:
    """``size`` bytes of a period (251) prime to every chunk size, shifted by ``seed``."""
    period = bytes((i + seed) % 256 for i in range(251))
    return bytearray(period * (size // 251 + 1))[:size]


def _post_send(h: Harness, s: int, data: bytearray) -> WSAOVERLAPPED:
    ov = h.overlapped()
    rc, _, _ = h.ws.WSASend(s, [WSABUF(len(data), data)], 1, 0, ov, None)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    return ov


def test_shutdown_send_lets_every_pending_send_finish_in_order_then_fin(h: Harness) -> None:
    """Two sends pend behind a peer that does not read; shutdown(SD_SEND)
    succeeds at once and cancels neither; once the peer reads, it gets the
    first send's bytes, then the second's, then EOF, and both complete with
    their whole length."""
    a = h.accept()
    first, second = _pattern(BIG, 0), _pattern(70001, 7)
    ovs = [_post_send(h, a.sock, first), _post_send(h, a.sock, second)]
    assert h.ws.shutdown(a.sock, SD_SEND) == 0
    assert h.wait(ovs[1].hEvent, 200) == WSA_WAIT_TIMEOUT  # still in flight: not cancelled
    got = bytearray()
    while chunk := a.peer.recv(1 << 20):
        got += chunk
    assert len(got) == len(first) + len(second)
    assert got[:len(first)] == first and got[len(first):] == second
    assert a.peer.recv() == b""
    for ov, n in zip(ovs, (len(first), len(second)), strict=True):
        assert h.wait(ov.hEvent, WAIT_MS) == WSA_WAIT_EVENT_0
        assert h.ws.WSAGetOverlappedResult(a.sock, ov, FALSE)[:2] == (TRUE, n)


def test_a_send_after_shutdown_fails_at_once_while_an_earlier_one_pends(h: Harness) -> None:
    """A WSASend posted after shutdown(SD_SEND) fails at once with
    WSAESHUTDOWN, notifies nothing (its event stays unsignalled) and sends
    nothing; the send posted before it is
    not disturbed: the peer gets exactly its bytes, then EOF."""
    a = h.accept()
    first = _pattern(BIG, 3)
    ov = _post_send(h, a.sock, first)
    assert h.ws.shutdown(a.sock, SD_SEND) == 0
    late = h.overlapped()
    rc, _, _ = h.ws.WSASend(a.sock, [WSABUF(5, bytearray(b"late!"))], 1, 0, late, None)
    assert (rc, h.ws.WSAGetLastError()) == (SOCKET_ERROR, WSAESHUTDOWN)
    got = bytearray()
    while chunk := a.peer.recv(1 << 20):
        got += chunk
    assert got == first
    assert h.wait(ov.hEvent, WAIT_MS) == WSA_WAIT_EVENT_0
    assert h.ws.WSAGetOverlappedResult(a.sock, ov, FALSE)[:2] == (TRUE, len(first))
    assert not h.is_signalled(late.hEvent)
