"""ovserver's robustness: what red-teaming ``serve`` under Wine with real
clients turned up, reproduced on the fake first (the fake runs the same
server code), and failures at start-up that must leave nothing behind."""

from __future__ import annotations

from typing import Any

import pytest

from fakewinsock import CreateThreadResult, FakeWinsock, ThreadStartRoutine
from fakewinsock.constants import ERROR_NOT_ENOUGH_MEMORY
from ovserver import ServerConfig, ServerError, create_server
from tests.ovserver_session import exact


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
