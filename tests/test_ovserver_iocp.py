"""The iocp model's own behaviour (what the tests over every model do not
show): the pool's size, one stop packet per worker, a failing
GetQueuedCompletionStatus, the --workers option."""

from __future__ import annotations

import pytest

from fakewinsock import WSAOVERLAPPED, FakeWinsock
from fakewinsock._types import QueuedCompletion
from fakewinsock.constants import ERROR_INVALID_HANDLE, FALSE
from ovserver import ServerError
from ovserver.__main__ import main
from ovserver._core import DEFAULT_WORKERS, MAX_WORKERS, ServerConfig
from ovserver._iocp import STOP_KEY
from tests.ovserver_session import Session, exact


class CountingPosts(FakeWinsock):
    """The fake, noting the key of every PostQueuedCompletionStatus."""

    def __init__(self) -> None:
        super().__init__(seed=0, config=exact(0.0))
        self.posted: list[int] = []

    def PostQueuedCompletionStatus(self, CompletionPort: int, dwNumberOfBytesTransferred: int,
                                   dwCompletionKey: int, lpOverlapped: WSAOVERLAPPED | None) -> int:
        self.posted.append(dwCompletionKey)
        return super().PostQueuedCompletionStatus(CompletionPort, dwNumberOfBytesTransferred, dwCompletionKey,
                                                  lpOverlapped)


@pytest.mark.parametrize("workers", [1, 3, 7])
def test_the_pool_has_its_size_and_each_worker_gets_one_stop_packet(workers: int) -> None:
    ws = CountingPosts()
    s = Session("iocp", ws=ws, workers=workers)
    clients = [s.client(0.1 * i) for i in range(5)]
    for i, c in enumerate(clients):
        c.send(1, b"%d\n" % i)
    stats = s.run(stop_ms=10)
    assert (stats.threads_started, stats.peak_threads) == (workers, workers)
    assert ws.posted == [STOP_KEY] * workers
    assert [bytes(c.data) for c in clients] == [b"%d\n" % i for i in range(5)]
    assert stats.abandoned == 0


class FailingPort(FakeWinsock):
    """The fake, whose first GetQueuedCompletionStatus started at or after
    ``fail_at_ns`` fails as on a handle gone bad: FALSE, no OVERLAPPED."""

    def __init__(self, fail_at_ns: int) -> None:
        super().__init__(seed=0, config=exact(0.0))
        self.fail_at_ns = fail_at_ns
        self.failed = False

    def GetQueuedCompletionStatus(self, CompletionPort: int, dwMilliseconds: int) -> QueuedCompletion:
        if not self.failed and self.now_ns >= self.fail_at_ns:
            self.failed = True
            self.SetLastError(ERROR_INVALID_HANDLE)
            return QueuedCompletion(FALSE, 0, 0, None)
        return super().GetQueuedCompletionStatus(CompletionPort, dwMilliseconds)


def test_a_failing_port_wait_is_a_server_error_and_closes_the_clients() -> None:
    """A worker's GetQueuedCompletionStatus failing (FALSE, no OVERLAPPED)
    mid-session: a ServerError saying so once the pool has stopped, and the
    client is closed, not left hanging."""
    ws = FailingPort(fail_at_ns=5_000_000)
    s = Session("iocp", ws=ws)
    c = s.client(0)
    c.send(1, b"hello\n")
    c.send(6, b"again\n")  # its worker's next wait is the one that fails
    with pytest.raises(ServerError) as info:
        s.run(stop_ms=100)
    assert str(info.value) == f"GetQueuedCompletionStatus failed (error {ERROR_INVALID_HANDLE}, key 0x0)"
    ws.run_for(0.001)
    assert bytes(c.data).startswith(b"hello\n") and (c.closed_by_server or c.reset_by_server)


def test_workers_are_validated() -> None:
    assert ServerConfig(model="iocp").workers == DEFAULT_WORKERS == 4
    for bad in (0, MAX_WORKERS + 1):
        with pytest.raises(ValueError, match="workers must be"):
            ServerConfig(model="iocp", workers=bad)


def test_simulate_takes_workers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--model", "iocp", "--workers", "2", "--clients", "5", "--messages", "2"]) == 0
    out = capsys.readouterr().out
    assert "model=iocp" in out and ", 2 worker threads" in out and "OK: every reply verified" in out
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", "--model", "iocp", "--workers", "0"])
    assert exit_.value.code == 2
    assert "--workers: must be 1-1024, not 0" in capsys.readouterr().err


def test_the_same_seed_gives_the_same_iocp_run() -> None:
    from ovserver import simulate

    a, b = (simulate(30, 3, model="iocp", mode="chat", seed=7) for _ in range(2))
    assert a.ok and a.fake_stats == b.fake_stats and a.virtual_ns == b.virtual_ns
