"""A stop at a send's end (FaultPlan.stop_at_send_end; issue 10, red13's dropped-asked-after-leave, stop37).

The swarm's stops came on a grid of times, and the moment red13's dropped-asked-after-leave needs lasts a few
microseconds: a close (a stop) of a client whose last send has ended (the client's read made room for its last
bytes), its completion not yet handled by the server (a CancelIoEx finds nothing), while more output for it is
queued behind that send.  With ``stop_at_send_end`` the checker asks for the stop at the first client event
that finds such a send, and the client owed own replies, for lines the server took 1 ms before or earlier,
beyond what it has read, has on its way and in that send: fin36's rule (a FIN at the stop must follow every
reply to the lines taken 1 ms before it) then sees the mutant's graceful close.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import Phase, find, settings
from hypothesis.errors import NoSuchExample

from fakewinsock import FakePeer, FakeWinsock
from fakewinsock import testing as t
from fakewinsock._owed import send_ending
from fakewinsock.testing import ClientScript, EchoModel, FaultPlan, Scenario, _checker, scenarios
from ovserver import Limits, Server
from ovserver._iocp import IocpServer
from tests.mutants.properties import OvserverUnderTest
from tests.mutants.red13_mutants import DroppedAskedAfterLeave

_US = 1_000
_MS = 1_000_000
STOP_AT = 50 * _MS  # long after every reply was read: a stop on the grid finds nothing owed


class Watched(OvserverUnderTest):
    """ovserver (``cls``) as the recipe runs it, noting at its stop request whether a send of the server to a
    client had ended with its completion still due (the fake's state, read through the clients' peers)."""

    def __init__(self, cls: type[Server], ws: FakeWinsock, address: tuple[str, int], seen: list[bool]) -> None:
        super().__init__(cls, ws, address, "echo", Limits(), 0)
        self.seen, self.peers = seen, list[FakePeer]()
        make = ws.peer

        def peer() -> FakePeer:
            p = make()
            self.peers.append(p)
            return p

        ws.peer = peer  # type: ignore[method-assign]

    def stop(self) -> None:
        self.seen.append(any(send_ending(self.ws, p) for p in self.peers))
        super().stop()


def _slow_reader(at_send_end: bool) -> Scenario:
    """One echo client sends 12 lines of about 42 bytes, one every 100 us, and reads 50 bytes a millisecond in a
    window of 64 bytes: the server's sends to it wait for room while the next lines' replies queue behind them."""
    lines = [b"line %d, padded to forty-two bytes ......." % i for i in range(12)]
    script = replace(ClientScript.of(*lines, read_bytes=50, read_every_ns=_MS),
                     chunks=tuple(line + b"\n" for line in lines), gaps_ns=(0,) + (100 * _US,) * 11)
    return Scenario((script,), FaultPlan((), stop_at_ns=STOP_AT, stop_at_send_end=at_send_end), 64)


def run(cls: type[Server], seed: int, at_send_end: bool = True) -> tuple[str | None, list[bool]]:
    seen: list[bool] = []
    try:
        t.check_line_server(lambda ws, a: Watched(cls, ws, a, seen), _slow_reader(at_send_end),
                            EchoModel(resets_cut_sends=True), seed=seed)
    except t.LineServerFailure as e:
        return str(e), seen
    return None, seen


def test_the_stop_comes_at_a_send_end_and_a_correct_server_passes() -> None:
    for seed in range(4):
        found, seen = run(IocpServer, seed)
        assert found is None, (seed, found)
        assert seen == [True], (seed, seen)  # asked for once, at a send's end (not at STOP_AT)


def test_a_graceful_close_at_a_send_end_with_output_queued_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proof: the mutant asks the hub whether the close drops output after the hub forgot it, so its close at
    the stop is graceful, and the client reads a FIN after part of its replies.  The same scenario with its
    stop on the grid (STOP_AT, the replies all read by then) passes, and so does the stop at a send's end
    with the checker's look for that moment taken out (the stop then comes at STOP_AT)."""
    for seed in range(4):
        found, seen = run(DroppedAskedAfterLeave, seed)
        assert found is not None and "own lines owed for the" in found and seen == [True], (seed, found, seen)
        assert run(DroppedAskedAfterLeave, seed, at_send_end=False) == (None, [False]), seed
    monkeypatch.setattr(_checker, "send_ending", lambda ws, peer: False)
    for seed in range(4):
        assert run(DroppedAskedAfterLeave, seed) == (None, [False]), seed


def test_the_swarm_draws_a_stop_at_a_send_end_only_with_a_stop() -> None:
    """1 time in 2 that a stop is drawn (the draw is made whatever the stop: see _Swarm.draw)."""
    strategy = scenarios(clients=(1, 4), lines=(0, 4), features=("early_stop", "slow_readers"))
    first = settings(database=None, max_examples=1000, phases=[Phase.generate], deadline=None, derandomize=True)
    assert find(strategy, lambda s: s.faults.stop_at_send_end, settings=first).faults.stop_at_ns is not None
    assert find(strategy, lambda s: s.faults.stop_at_ns is not None and not s.faults.stop_at_send_end,
                settings=first)
    plain = scenarios(clients=(1, 4), lines=(0, 4), early_stop=False, features=("slow_readers",))
    with pytest.raises(NoSuchExample):
        find(plain, lambda s: s.faults.stop_at_send_end, settings=first)
