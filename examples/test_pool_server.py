"""Testing pool_server.PoolServer, a completion-port server with worker threads, on the fake.

The fake runs the server's threads one at a time and picks, at every Winsock
or thread call, which runnable thread goes next: from the seed in a seeded
test, from Hypothesis in a property (so a failing interleaving shrinks to few
thread switches and replays).  Run: ``pytest examples/test_pool_server.py``.
"""

from __future__ import annotations

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from pool_server import PoolServer

from fakewinsock import FakeWinsock
from fakewinsock.testing import ClientScript, EchoModel, LineServerFailure, Scenario, check_line_server, scenarios


class UnderTest:
    """How check_line_server runs the server: serve() until stop()."""

    workers = 2

    def __init__(self, ws: FakeWinsock, address: tuple[str, int]) -> None:
        self.ws, self.server = ws, PoolServer(ws, address, workers=self.workers)

    def serve(self) -> None:
        self.server.serve()

    def stop(self) -> None:  # called inside the fake's scheduler: no Winsock call, just a signal
        self.server.request_stop(signal=self.ws.signal_event)


def test_three_clients(winsock_seed: int) -> None:
    """A fixed scenario on a seeded interleaving of the two workers."""
    scenario = Scenario((ClientScript.of(b"hello", b"world", chunk=3),
                         ClientScript.of(b"x" * 5000, b"bye", arrive_ns=100_000),
                         ClientScript.of(b"third", arrive_ns=100_000)))
    report = check_line_server(UnderTest, scenario, EchoModel(), seed=winsock_seed)
    assert report.replies == 5


@settings(max_examples=50, deadline=None, phases=[p for p in Phase if p is not Phase.explain])
@given(scenario=scenarios(clients=(1, 4), lines=(0, 4)), data=st.data())
def test_any_interleaving(scenario: Scenario, data: st.DataObject) -> None:
    """Any clients on any schedule: completions and thread switches both drawn by Hypothesis."""
    check_line_server(UnderTest, scenario, EchoModel(), data=data)


class NoWorkers(UnderTest):
    workers = 0  # nobody dequeues the packets: the stop waits for ever


def test_a_wait_nothing_can_end_is_a_deadlock_report() -> None:
    """The stop waits for ``drained``, which only a worker can set: the fake
    says at once that the wait can never return (no real time passes)."""
    with pytest.raises(LineServerFailure, match=r"DeadlockError: WaitForSingleObject\(\[0x[0-9a-f]+\], any, "
                                                r"INFINITE\) can never return"):
        check_line_server(NoWorkers, Scenario(()), EchoModel(), seed=1)
