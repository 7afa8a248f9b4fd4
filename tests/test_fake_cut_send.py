"""The fake's count for a send cut off half-way (``Sockets.cut_send_count``).

A send with part of its bytes in the network ends with its failure status when
it is cancelled, closed, reset or its thread exits; its count is then the bytes
that went out (what Wine 8.0 reports) or 0 (the I/O manager's convention for a
cancelled request), chosen by the seed: Windows' count is unverified.  The
conformance suite (tests/conformance/test_cut_send.py) checks what holds on
every backend; this file checks that the fake gives both counts, that the peer
gets exactly the bytes that went out, and that a send cut off with nothing out
draws nothing.
"""

from __future__ import annotations

import pytest

from fakewinsock import WSABUF, WSAOVERLAPPED, FakeConfig, FakeWinsock
from fakewinsock._sim import RandomChooser
from fakewinsock.constants import (
    FALSE,
    STATUS_CANCELLED,
    STATUS_CONNECTION_ABORTED,
    STATUS_CONNECTION_RESET,
    TRUE,
    WSA_INFINITE,
    WSA_IO_PENDING,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_TIMEOUT,
)
from tests.conformance._harness import connected_socket

WINDOW = 4096
DATA = bytes(range(251)) * 70  # 17570 bytes: four windows and more


class Recording(RandomChooser):
    """A seeded chooser that remembers the labels it was asked."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.labels: list[str] = []

    def index(self, n: int, label: str) -> int:
        self.labels.append(label)
        return super().index(n, label)


def connected(seed: int, chooser: RandomChooser | None = None,
              window: int = WINDOW) -> tuple[FakeWinsock, int]:
    """A server socket connected to a peer that does not read (``ws._test_peer``)."""
    ws = FakeWinsock(seed=seed, config=FakeConfig(window=window, background=0.0, immediate=0.0),
                     chooser=chooser)
    acc, peer = connected_socket(ws)
    ws._test_peer = peer  # type: ignore[attr-defined]
    return ws, acc


def stalled(seed: int, chooser: RandomChooser | None = None,
            window: int = WINDOW) -> tuple[FakeWinsock, int, WSAOVERLAPPED]:
    """A server socket with DATA's send pending: the peer does not read."""
    ws, acc = connected(seed, chooser, window)
    ov = WSAOVERLAPPED()
    ov.hEvent = ws.WSACreateEvent()
    rc, _, _ = ws.WSASend(acc, [WSABUF(len(DATA), DATA)], 1, 0, ov, None)
    assert rc != 0 and ws.WSAGetLastError() == WSA_IO_PENDING
    assert ws.WSAWaitForMultipleEvents(1, [ov.hEvent], FALSE, 1000, FALSE) == WSA_WAIT_TIMEOUT
    return ws, acc, ov


def cut(ws: FakeWinsock, acc: int, ov: WSAOVERLAPPED, how: str) -> None:
    if how == "cancel":
        assert ws.CancelIoEx(acc, ov) == TRUE
    elif how == "close":
        assert ws.closesocket(acc) == 0
    else:
        ws._test_peer.reset()  # type: ignore[attr-defined]
    assert ws.WSAWaitForMultipleEvents(1, [ov.hEvent], FALSE, 1000, FALSE) == WSA_WAIT_EVENT_0


STATUS = {"cancel": STATUS_CANCELLED, "close": STATUS_CONNECTION_ABORTED, "reset": STATUS_CONNECTION_RESET}


@pytest.mark.parametrize("how", ["cancel", "close", "reset"])
def test_the_seed_picks_the_count_moved_or_zero(how: str) -> None:
    """Over seeds both counts come: the bytes that went out, and 0."""
    counts = set()
    for seed in range(12):
        ws, acc, ov = stalled(seed)
        cut(ws, acc, ov, how)
        assert ov.Internal == STATUS[how]
        counts.add(ov.InternalHigh)
        if how != "close":
            ws.closesocket(acc)
        ws.WSACloseEvent(ov.hEvent)
        ws.WSACleanup()
    assert 0 in counts and any(0 < n < len(DATA) for n in counts), counts
    assert len(counts) == 2, counts  # the window is fixed: one count of bytes out


@pytest.mark.parametrize("how", ["cancel", "close"])
def test_the_peer_gets_exactly_the_bytes_that_went_out(how: str) -> None:
    """Cancelled or closed, the peer reads the bytes that went out, which are
    what a non-zero count says, a prefix of the send (then, after a close, the
    reset of a close with a send outstanding: Sockets.close_endpoint)."""
    seen_moved = False
    for seed in range(12):
        ws, acc, ov = stalled(seed)
        cut(ws, acc, ov, how)
        n = ov.InternalHigh
        peer = ws._test_peer  # type: ignore[attr-defined]
        got = bytearray()
        try:
            while chunk := peer.recv(65536, timeout=1.0):
                got += chunk
            raise AssertionError("EOF after a cut send")
        except TimeoutError:
            assert how == "cancel"
        except ConnectionResetError:
            assert how == "close"
        assert bytes(got) == DATA[:len(got)] and 0 < len(got) < len(DATA)
        if n:
            seen_moved = True
            assert n == len(got)
        if how == "cancel":
            ws.closesocket(acc)
        ws.WSACloseEvent(ov.hEvent)
        ws.WSACleanup()
    assert seen_moved


def test_a_send_cut_off_with_nothing_out_draws_nothing() -> None:
    """A send queued behind another, cancelled before any of its bytes went out,
    reports 0 without asking the chooser (schedules without such a send are
    unchanged)."""
    chooser = Recording(7)
    ws, acc, ov = stalled(7, chooser)
    ov2 = WSAOVERLAPPED()
    ov2.hEvent = ws.WSACreateEvent()
    rc, _, _ = ws.WSASend(acc, [WSABUF(3, b"abc")], 1, 0, ov2, None)
    assert rc != 0 and ws.WSAGetLastError() == WSA_IO_PENDING
    before = len(chooser.labels)
    assert ws.CancelIoEx(acc, ov2) == TRUE
    assert ws.WSAWaitForMultipleEvents(1, [ov2.hEvent], FALSE, 1000, FALSE) == WSA_WAIT_EVENT_0
    assert (ov2.Internal, ov2.InternalHigh) == (STATUS_CANCELLED, 0)
    assert "cut-send-count" not in chooser.labels[before:]
    cut(ws, acc, ov, "cancel")
    assert "cut-send-count" in chooser.labels[before:]
    for e in (ov.hEvent, ov2.hEvent):
        ws.WSACloseEvent(e)
    ws.closesocket(acc)
    ws.WSACleanup()


def _post_and_exit(param: tuple[FakeWinsock, int, WSAOVERLAPPED]) -> int:
    """A thread procedure: post DATA's send, let part of it go out, exit."""
    ws, acc, ov = param
    rc, _, _ = ws.WSASend(acc, [WSABUF(len(DATA), DATA)], 1, 0, ov, None)
    assert rc != 0 and ws.WSAGetLastError() == WSA_IO_PENDING
    ws.Sleep(100)  # a window's worth goes out (the peer does not read)
    return 0


def test_the_exit_of_the_posting_thread_cuts_it_too() -> None:
    """A program thread posts the send and exits with part of it out: the exit
    cancels it (afd.c test_async_thread_termination: no completion port), and
    the count is drawn as for any cut send: both come over seeds."""
    counts = set()
    for seed in range(12):
        ws, acc = connected(seed)
        ov = WSAOVERLAPPED()
        ov.hEvent = ws.WSACreateEvent()
        h, _ = ws.CreateThread(None, 0, _post_and_exit, (ws, acc, ov), 0)
        assert ws.WaitForSingleObject(h, WSA_INFINITE) == WSA_WAIT_EVENT_0
        assert ws.WSAWaitForMultipleEvents(1, [ov.hEvent], FALSE, 1000, FALSE) == WSA_WAIT_EVENT_0
        assert ov.Internal == STATUS_CANCELLED
        counts.add(ov.InternalHigh)
        assert ws.CloseHandle(h) == TRUE
        ws.closesocket(acc)
        ws.WSACloseEvent(ov.hEvent)
        ws.WSACleanup()
    assert 0 in counts and any(0 < n < len(DATA) for n in counts), counts
