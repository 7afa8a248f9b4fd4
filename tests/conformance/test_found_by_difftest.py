"""Behaviours the differential tester (tools/difftest) showed, each checked once here on every backend.

The tester runs random Winsock programs on the fake and on the real ws2_32 and
reports where they disagree; each disagreement that was the fake's is fixed and
tested here, and each that is Wine's carries its evidence in
docs/difftest-explained.json and, where a test can show it, a
``wine_divergence`` test here (docs/semantics-findings.md, "Differential testing").
"""

from __future__ import annotations

from fakewinsock import WSABUF
from fakewinsock.constants import (
    TRUE,
    WSA_IO_PENDING,
)

from ._harness import Harness


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

