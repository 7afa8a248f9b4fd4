"""Regressions found while building ovserver on the fake (notes from that work)."""

from __future__ import annotations

from fakewinsock import WSABUF, WSAOVERLAPPED, FakeConfig, FakeWinsock, sockaddr_in
from fakewinsock.constants import (
    AF_INET,
    FALSE,
    IPPROTO_TCP,
    MAKEWORD,
    SO_UPDATE_ACCEPT_CONTEXT,
    SOCK_STREAM,
    SOL_SOCKET,
    SOMAXCONN,
    WSA_FLAG_OVERLAPPED,
    WSA_INFINITE,
)


def server(ws: FakeWinsock) -> tuple[int, int, WSAOVERLAPPED]:
    ws.WSAStartup(MAKEWORD(2, 2))
    lst = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
    ws.bind(lst, sockaddr_in("127.0.0.1", 5000), 16)
    ws.listen(lst, SOMAXCONN)
    acc = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
    ov = WSAOVERLAPPED()
    ov.hEvent = ws.WSACreateEvent()
    ws.AcceptEx(lst, acc, bytearray(64), 0, 32, 32, ov)
    return lst, acc, ov


def read_to_eof(ws: FakeWinsock, s: int, ov: WSAOVERLAPPED) -> bytes:
    got = b""
    buf = bytearray(4096)
    while True:
        ws.WSAResetEvent(ov.hEvent)
        ws.WSARecv(s, [WSABUF(4096, buf)], 1, 0, ov, None)
        ws.WSAWaitForMultipleEvents(1, [ov.hEvent], FALSE, WSA_INFINITE, FALSE)
        ok, n, _ = ws.WSAGetOverlappedResult(s, ov, FALSE)
        if not ok or n == 0:
            return got
        got += bytes(buf[:n])


def test_send_nowait_before_handshake_is_kept() -> None:
    ws = FakeWinsock(seed=1)
    lst, acc, ov = server(ws)
    p = ws.peer()
    p.connect_nowait("127.0.0.1", 5000)
    p.send_nowait(b"hello\n")
    p.close()
    ws.WSAWaitForMultipleEvents(1, [ov.hEvent], FALSE, WSA_INFINITE, FALSE)
    ws.WSAGetOverlappedResult(lst, ov, FALSE)
    ws.setsockopt(acc, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, lst, 8)
    assert read_to_eof(ws, acc, ov) == b"hello\n"


def test_close_sends_fin_after_queued_bytes() -> None:
    ws = FakeWinsock(seed=1, config=FakeConfig(window=512))
    lst, acc, ov = server(ws)
    p = ws.peer()
    p.connect("127.0.0.1", 5000)
    ws.WSAWaitForMultipleEvents(1, [ov.hEvent], FALSE, WSA_INFINITE, FALSE)
    ws.WSAGetOverlappedResult(lst, ov, FALSE)
    p.send_nowait(b"x" * 2000)
    assert p.unsent > 0
    p.close()
    assert read_to_eof(ws, acc, ov) == b"x" * 2000


def test_armed_accept_whose_connection_was_dropped_waits_again() -> None:
    for seed in range(60):
        config = FakeConfig(completion_delay=(100_000, 100_000), latency=(20_000, 20_000))
        ws = FakeWinsock(seed=seed, config=config)
        lst, acc, ov = server(ws)
        p = ws.peer()
        p.connect("127.0.0.1", 5000)
        p.reset()
        if ws.WSAWaitForMultipleEvents(1, [ov.hEvent], FALSE, 1000, FALSE) == 0:  # no IndexError
            ok, _, _ = ws.WSAGetOverlappedResult(lst, ov, FALSE)  # the accept may fail with the reset
            if not ok:
                assert ws.WSAGetLastError() == 10054
                ws.AcceptEx(lst, acc, bytearray(64), 0, 32, 32, ov)
        q = ws.peer()
        q.connect("127.0.0.1", 5000)
        assert ws.WSAWaitForMultipleEvents(1, [ov.hEvent], FALSE, 1000, FALSE) == 0
        ok, _, _ = ws.WSAGetOverlappedResult(lst, ov, FALSE)
        assert ok


def test_constants_are_visible_to_type_checkers() -> None:
    import fakewinsock.constants as c

    assert isinstance(c.__all__, list) and "WSA_IO_PENDING" in c.__all__ and "MAKEWORD" in c.__all__
    assert all(not n.startswith("_") for n in c.__all__)


def test_overlapped_reuse_is_detected_by_address_not_identity() -> None:
    """Two Python objects over the same memory are the same OVERLAPPED."""
    import ctypes

    import pytest

    from fakewinsock import WinsockUsageError

    ws = FakeWinsock(seed=1, config=FakeConfig(immediate=0.0))
    lst, acc, ov = server(ws)
    alias = WSAOVERLAPPED.from_address(ctypes.addressof(ov))
    acc2 = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
    with pytest.raises(WinsockUsageError, match="still in use by the pending AcceptEx"):
        ws.AcceptEx(lst, acc2, bytearray(64), 0, 32, 32, alias)


def test_every_queued_routine_runs_before_an_exception_surfaces() -> None:
    import pytest

    ws = FakeWinsock(seed=1, config=FakeConfig(immediate=0.0))
    lst, acc, ov = server(ws)
    p = ws.peer()
    p.connect("127.0.0.1", 5000)
    ws.WSAWaitForMultipleEvents(1, [ov.hEvent], FALSE, WSA_INFINITE, FALSE)
    ws.WSAGetOverlappedResult(lst, ov, FALSE)
    ran: list[int] = []

    def boom(err: int, n: int, o: WSAOVERLAPPED, f: int) -> None:
        ran.append(1)
        raise RuntimeError("routine failed")

    def fine(err: int, n: int, o: WSAOVERLAPPED, f: int) -> None:
        ran.append(2)

    ovs = [WSAOVERLAPPED(), WSAOVERLAPPED()]
    ws.WSASend(acc, [WSABUF(1, bytearray(b"a"))], 1, 0, ovs[0], boom)
    ws.WSASend(acc, [WSABUF(1, bytearray(b"b"))], 1, 0, ovs[1], fine)
    ws.run_for(1.0)
    with pytest.raises(RuntimeError, match="routine failed"):
        ws.SleepEx(0, 1)
    assert ran == [1, 2]
