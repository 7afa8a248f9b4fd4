"""ovserver's robustness: what red-teaming ``serve`` under Wine with real
clients turned up, reproduced on the fake first (the fake runs the same
server code), and failures at start-up that must leave nothing behind."""

from __future__ import annotations

from typing import Any

import pytest

from fakewinsock import WSAOVERLAPPED, CreateThreadResult, FakeWinsock, ThreadStartRoutine
from fakewinsock._types import AcceptExResult
from fakewinsock.constants import ERROR_NOT_ENOUGH_MEMORY, INVALID_SOCKET, WSAENOBUFS
from ovserver import Limits, ServerConfig, ServerError, create_server
from tests.ovserver_session import MODELS, MS, Session, exact


class NthThreadFails(FakeWinsock):
    """CreateThread number ``fail_at`` (1-based) fails with ERROR_NOT_ENOUGH_MEMORY,
    as on a machine out of memory; the others work."""

    fail_at = 1
    calls = 0

    def CreateThread(self, lpThreadAttributes: None, dwStackSize: int, lpStartAddress: ThreadStartRoutine,
                     lpParameter: Any, dwCreationFlags: int) -> CreateThreadResult:
        self.calls += 1
        if self.calls == self.fail_at:
            self.SetLastError(ERROR_NOT_ENOUGH_MEMORY)
            return CreateThreadResult(0, 0)
        return super().CreateThread(lpThreadAttributes, dwStackSize, lpStartAddress, lpParameter, dwCreationFlags)


@pytest.mark.parametrize("immediate", [0.0, 1.0])
@pytest.mark.parametrize("fail_at", [1, 2, 3])
def test_an_iocp_worker_that_cannot_be_created_leaves_nothing_open(fail_at: int, immediate: float) -> None:
    """The iocp model at start, worker ``fail_at`` of 3 cannot be created:
    run() raises the ServerError naming CreateThread, and nothing is left: the
    AcceptEx posted before the workers (cancelled by closing the listener)
    has its packet dequeued, the completion port and the wake event are
    closed, WSACleanup is called (no LeakError: nothing in flight).  Before
    the fix the AcceptEx was never reaped (with no worker, or a worker that
    took its stop packet before the cancellation's packet came), so run()
    skipped its cleanup and left the port and the event open and Winsock
    started."""
    ws = NthThreadFails(seed=0, config=exact(immediate))
    ws.fail_at = fail_at
    server = create_server(ws, ServerConfig(port=0, model="iocp", workers=3))
    with pytest.raises(ServerError, match=rf"^CreateThread failed \(error {ERROR_NOT_ENOUGH_MEMORY}\)$"):
        server.run()
    assert server.stats.threads_started == fail_at - 1
    assert ws.leaks() == [] and ws.open_handles() == []
    cleanups = [r for r in ws.trace if r.call == "WSACleanup"]
    assert [r.detail for r in cleanups] == ["count=0"], cleanups
    assert server.stats.abandoned == 0


class AcceptPostsFail(FakeWinsock):
    """Inside the virtual-time windows ``windows`` (ms, half-open), posting an
    accept fails at once with WSAENOBUFS, as on a machine out of non-paged pool
    or socket handles: either WSASocket (``fail = "WSASocket"``) or AcceptEx
    (``"AcceptEx"``, through the fake's own error injection).  Counts the
    failures, and records every OVERLAPPED passed to AcceptEx (by identity)."""

    fail = "WSASocket"
    windows: tuple[tuple[float, float], ...] = ()
    failures = 0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.overlapped: dict[int, object] = {}

    def _failing(self) -> bool:
        return any(lo * MS <= self.now_ns < hi * MS for lo, hi in self.windows)

    def WSASocket(self, af: int, type: int, protocol: int, lpProtocolInfo: None, g: int,  # noqa: A002
                  dwFlags: int) -> int:
        if self.fail == "WSASocket" and self._failing():
            self.failures += 1
            self.WSASetLastError(WSAENOBUFS)
            return INVALID_SOCKET
        return super().WSASocket(af, type, protocol, lpProtocolInfo, g, dwFlags)

    def AcceptEx(self, sListenSocket: int, sAcceptSocket: int, lpOutputBuffer: bytearray | None,
                 dwReceiveDataLength: int, dwLocalAddressLength: int, dwRemoteAddressLength: int,
                 lpOverlapped: WSAOVERLAPPED | None) -> AcceptExResult:
        if self.fail == "AcceptEx" and self._failing():
            self.failures += 1
            self.inject_error("AcceptEx", WSAENOBUFS)
        else:
            self.overlapped[id(lpOverlapped)] = lpOverlapped
        return super().AcceptEx(sListenSocket, sAcceptSocket, lpOutputBuffer, dwReceiveDataLength,
                                dwLocalAddressLength, dwRemoteAddressLength, lpOverlapped)


@pytest.mark.parametrize("accepts", [1, 3])
@pytest.mark.parametrize("fail", ["WSASocket", "AcceptEx"])
@pytest.mark.parametrize("model", MODELS)
def test_an_accept_post_that_fails_gives_its_slot_back(model: str, fail: str, accepts: int) -> None:
    """Five clients, 100 ms apart; after each accept, re-posting fails for
    the next 35 ms (WSASocket or AcceptEx: WSAENOBUFS, as under load on real
    Windows), and the server retries every 10 ms.  Every client is served
    once the failures end; every failure is counted (accept failures and
    failed posts); nothing is left open (the accept socket of a failed
    AcceptEx is closed); and every AcceptEx, over the whole run, uses one
    of ``accepts`` OVERLAPPEDs: a slot whose post failed is posted again.
    Before the fix, a failed WSASocket dropped its slot, and each retry made
    a new one: one slot leaked per failure, without bound under sustained
    failures (the server still accepted: a new slot replaced it)."""
    ws = AcceptPostsFail(seed=0, config=exact(0.0))
    ws.fail = fail
    ws.windows = tuple((100 * i, 100 * i + 35) for i in range(1, 6))
    s = Session(model, ws=ws, accepts=accepts, accept_retry_ms=10)
    clients = [s.client(100 * i + 0.5) for i in range(1, 6)]
    for i, c in enumerate(clients):
        c.send(100 * (i + 1) + 50, b"%d\n" % i)
    stats = s.run(stop_ms=700)
    assert [bytes(c.data) for c in clients] == [b"%d\n" % i for i in range(5)]
    assert ws.failures >= 5 * 3  # 35 ms of failures, retried every 10 ms, five times
    assert (stats.accepted, stats.accept_failures, stats.posted_failed) == (5, ws.failures, ws.failures)
    used = len(ws.overlapped)
    assert used == accepts, f"{used} OVERLAPPEDs for {accepts} accept slots"
    server = s.server
    assert not server._accepts and len(server._free_accepts) == accepts  # stopped: every slot free


@pytest.mark.parametrize("model", MODELS)
def test_a_failed_accept_is_retried_while_a_client_keeps_the_server_busy(model: str) -> None:
    """One client sends a line every 3 ms for half a second; re-posting the
    accept after it was accepted fails (WSASocket: WSAENOBUFS) for 20 ms; the
    server retries every 10 ms.  A second client that connects at 50 ms is
    served at once (by 100 ms), not only once the first one falls silent: the
    retry is due ``accept_retry_ms`` after the failure however busy the
    server is."""
    ws = AcceptPostsFail(seed=0, config=exact(0.0))
    ws.windows = ((0.9, 20),)
    s = Session(model, ws=ws, accepts=1, accept_retry_ms=10)
    chatty = s.client(1)
    for k in range(160):
        chatty.send(2 + 3 * k, b"%d\n" % k)
    late = s.client(50)
    late.send(60, b"late\n")
    seen: list[bytes] = []
    s.at(100, lambda: seen.append(bytes(late.data)))
    stats = s.run(stop_ms=600)
    assert ws.failures >= 1
    assert seen == [b"late\n"], "the second client waited for the first to fall silent"
    assert stats.accepted == 2 and bytes(chatty.data) == b"".join(b"%d\n" % k for k in range(160))


@pytest.mark.parametrize("model", MODELS)
def test_an_accept_that_fails_after_an_idle_cut_off_is_retried(model: str) -> None:
    """One place (``max_clients`` 1): the first client sends a line and falls
    silent, a second one connects at 50 ms and waits in the backlog.  At
    100 ms the idle check cuts the first off, which frees the place; posting
    the accept for it fails (WSASocket: WSAENOBUFS, until 130 ms).  The retry
    is due ``accept_retry_ms`` later, so the second client is served by
    200 ms.  Found by the recipe (recipe_bp, iocp echo): the iocp controller
    chose its wait's time-out (INFINITE: no retry pending) before the idle
    check whose cut-off made the post fail, so it slept with the retry owed
    and the waiting client was never served."""
    ws = AcceptPostsFail(seed=0, config=exact(0.0))
    ws.windows = ((90, 130),)
    s = Session(model, ws=ws, limits=Limits(max_clients=1), accepts=1, accept_retry_ms=10, idle_timeout_ms=100)
    first = s.client(0.5)
    first.send(1, b"first\n")
    second = s.client(50)
    second.send(60, b"second\n")
    seen: list[bytes] = []
    s.at(200, lambda: seen.append(bytes(second.data)))
    stats = s.run(stop_ms=400)
    assert ws.failures >= 1
    assert bytes(first.data).startswith(b"first\n")
    assert seen == [b"second\n"], "the waiting client was not served after the failed accept"
    assert stats.accepted == 2
