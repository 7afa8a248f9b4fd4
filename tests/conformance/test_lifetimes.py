"""What an operation in flight owns: its OVERLAPPED and its buffers.

In C, the caller must keep the OVERLAPPED and every buffer alive and unmoved
until the operation completes, or Windows writes into freed memory.  The
interface takes that burden off Python code: both backends keep what an
operation uses alive until it is reaped, refuse to reuse an OVERLAPPED that is
still in flight (WinsockUsageError: memory corruption in C), and hold a buffer
export so a bytearray cannot be resized (moved) under the kernel.
"""

from __future__ import annotations

import gc

import pytest

from fakewinsock import WSABUF, WSAOVERLAPPED, WinsockUsageError
from fakewinsock.constants import SOCKET_ERROR, TRUE, WAIT_IO_COMPLETION, WSA_IO_PENDING

from ._harness import Harness


class Context(WSAOVERLAPPED):
    """An OVERLAPPED with per-operation context, as C embeds it in a larger struct."""

    buf: bytearray


def test_dropped_references_live_until_the_routine_runs(h: Harness) -> None:
    """The caller keeps no reference to the OVERLAPPED or the buffer: the
    operation still completes into them, and the routine gets the caller's own
    object (subclass and attributes included)."""
    a = h.accept()
    done: list[tuple[int, int, WSAOVERLAPPED]] = []

    def routine(dwError: int, cb: int, lpOverlapped: WSAOVERLAPPED, dwFlags: int) -> None:
        done.append((dwError, cb, lpOverlapped))

    def post() -> None:
        ov = Context()
        ov.buf = bytearray(64)
        rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(64, ov.buf)], 1, 0, ov, routine)
        assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING

    post()
    gc.collect()
    a.peer.send(b"still here")
    assert h.ws.SleepEx(5000, TRUE) == WAIT_IO_COMPLETION
    err, n, ov = done[0]
    assert err == 0 and isinstance(ov, Context)
    assert 1 <= n <= 10 and bytes(ov.buf[:n]) == b"still here"[:n]


def test_reusing_a_pending_overlapped_is_refused(h: Harness) -> None:
    a = h.accept()
    ov = h.overlapped()
    rc, _, _ = h.recv(a.sock, ov)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    with pytest.raises(WinsockUsageError):
        h.ws.WSARecv(a.sock, [WSABUF(8, bytearray(8))], 1, 0, ov, None)
    a.peer.send(b"x")
    assert h.complete(a.sock, ov)[0] == TRUE
    rc, _, _ = h.recv(a.sock, ov)  # reaped: the OVERLAPPED is free again
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING


def test_buffer_cannot_be_resized_in_flight(h: Harness) -> None:
    a = h.accept()
    ov = h.overlapped()
    buf = bytearray(16)
    rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(16, buf)], 1, 0, ov, None)
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING
    with pytest.raises(BufferError):
        buf.extend(b"more")
    a.peer.send(b"y")
    ok, n, _ = h.complete(a.sock, ov)
    assert (ok, n) == (TRUE, 1)
    buf.extend(b"more")  # reaped: the buffer is the caller's alone again
    assert buf[:1] == b"y" and len(buf) == 20
