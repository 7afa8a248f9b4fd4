"""The recipe's checker and a chat member that ends its input over the back-pressure mark (red13's
end-keeps-over-mark, fin36).

With back-pressure (the model's ``high_water``) the checker lets the server cut off (reset) a client owed
more than half the mark; but a client whose FIN the server has taken is no member any more: it gets no more
lines, holds no sender back, and ovserver's ``Hub.end`` takes it off the mark and stops its stall clock.
So a reset of such a client, well after the server took its FIN (``FakeWinsock.end_taken_ns``), is
reported; the slow-consumer time-out no longer explains it.
"""

from __future__ import annotations

import pytest

from fakewinsock import testing as t
from fakewinsock.testing import ChatModel, ClientFault, ClientScript, FaultPlan, Scenario, _checker
from ovserver import Limits, Server
from ovserver._events import EventServer
from ovserver._iocp import IocpServer
from ovserver._routines import RoutineServer
from tests.mutants.properties import OvserverUnderTest
from tests.mutants.red13_mutants import EndKeepsOverMark

_MS = 1_000_000
MARK = 16 * 1024
STALL_MS = 100


def _ender_over_the_mark() -> Scenario:
    """Chat: client 0 says nothing, reads its greeting and then nothing for 400 ms, and half-closes 20 ms
    after everyone is greeted; client 1 talks 100 KB at once (1500 lines), routed to client 0, which goes
    over the mark of 16 KiB (a window of 16 KiB) before its FIN.  The server takes the FIN at once (no
    other member is over the mark, so client 0 is not held back), long before the stall time-out."""
    talk = [b"line %04d of the talker, padded to about seventy bytes ........" % i for i in range(1500)]
    ender = ClientScript.of(pause_at_ns=0, pause_ns=400 * _MS)
    talker = ClientScript.of(*talk)
    return Scenario((ender, talker), FaultPlan((ClientFault(0, "leave", 0, delay_ns=20 * _MS),)), MARK)


def run(cls: type[Server], seed: int) -> str | None:
    try:
        t.check_line_server(lambda ws, a: OvserverUnderTest(cls, ws, a, "chat", Limits(high_water=MARK), STALL_MS),
                            _ender_over_the_mark(), ChatModel(high_water=MARK, resets_cut_sends=True), seed=seed)
    except t.LineServerFailure as e:
        return str(e)
    return None


@pytest.mark.parametrize("cls", [EventServer, RoutineServer, IocpServer], ids=lambda c: c.model)
def test_a_correct_server_keeps_a_member_that_ends_over_the_mark(cls: type[Server]) -> None:
    for seed in range(3):
        assert run(cls, seed) is None, seed


def test_a_back_pressure_reset_after_the_fin_was_taken_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proof: the mutant keeps the ender over the mark and cuts it off at the stall time-out, 80 ms after
    it took its FIN.  With the rule before (any client owed more than half the mark may be reset) it passes."""
    for seed in range(3):
        found = run(EndKeepsOverMark, seed)
        assert found is not None and "the server had taken its FIN" in found, (seed, found)
    monkeypatch.setattr(_checker._Client, "ended_before_reset", lambda self: None)
    for seed in range(3):
        assert run(EndKeepsOverMark, seed) is None, seed
