"""Checks the fourth red team's mutants showed the checker lacked (issue 10).

* A client hung up for a line over the limit waits for the server's FIN after
  its error line (before, it left by its own FIN as soon as it had the error
  line, so a server that never closed a hung-up connection passed: ovserver
  without SO_UPDATE_ACCEPT_CONTEXT, whose shutdown() then fails).
* Back-pressure's slow-consumer cut-off is expected behaviour when the model is
  told the high-water mark (``high_water``): a reset while more than half the
  mark is owed to the client; never with less, so a server that cuts off a
  client that has drained (its stall clock never stopped) is caught.
"""

from __future__ import annotations

import pytest

from fakewinsock import testing as t
from fakewinsock.testing import ChatModel, ClientScript, EchoModel, Scenario
from ovserver import Limits, Server
from ovserver._events import EventServer
from ovserver._iocp import IocpServer
from ovserver._routines import RoutineServer
from tests.mutants.properties import OvserverUnderTest
from tests.mutants.red4_mutants import NoUpdateAcceptContext, StallClockNotCleared

_MS = 1_000_000
CORRECT: tuple[type[Server], ...] = (EventServer, RoutineServer, IocpServer)


def run(cls: type[Server], scenario: Scenario, limits: Limits, model: EchoModel | ChatModel, seed: int,
        mode: str = "echo", stall_ms: int = 0, deadline_s: float = 30.0) -> str | None:
    try:
        t.check_line_server(lambda ws, a: OvserverUnderTest(cls, ws, a, mode, limits, stall_ms), scenario, model,
                          seed=seed, client_deadline_s=deadline_s)
    except t.LineServerFailure as e:
        return str(e)
    return None


# ---------------------------------------------------------------- hung up: the server's FIN


def _hung_up() -> Scenario:
    """A line, then one over the limit (1001 bytes), then nothing: the server
    must send the reply, the error line, then its FIN."""
    return Scenario((ClientScript.of(b"hi", b"x" * 1001, chunk=300),))


@pytest.mark.parametrize("cls", CORRECT, ids=lambda c: c.model)
def test_a_hung_up_client_gets_the_servers_fin(cls: type[Server]) -> None:
    limits = Limits(max_line=1000)
    for seed in range(3):
        assert run(cls, _hung_up(), limits, EchoModel(max_line=1000), seed) is None, seed


def test_a_server_that_never_closes_a_hung_up_client_fails() -> None:
    """Proof: without SO_UPDATE_ACCEPT_CONTEXT the hang-up's shutdown() fails
    (WSAENOTCONN) and no FIN follows the error line; the client, which used to
    leave by its own FIN, now waits for the server's and reports it missing."""
    found = run(NoUpdateAcceptContext, _hung_up(), Limits(max_line=1000), EchoModel(max_line=1000), 0)
    assert found is not None and "not the server's FIN" in found, found


# ---------------------------------------------------------------- back-pressure: the slow-consumer cut-off

BP = Limits(max_queued=16 * 1024, high_water=4 * 1024)
STALL_MS = 100


def _stalled_reader() -> Scenario:
    """An echo client sends 12 KB of 100-byte lines and reads nothing for good
    (it resets 400 ms after its last send): its queue passes the 4 KB mark and
    stays there, so after the stall time-out (100 ms) the server cuts it off."""
    lines = tuple(b"%04d" % i + b"s" * 95 for i in range(120))
    script = ClientScript.of(*lines, chunk=4096, pause_at_ns=0)
    return Scenario((script,), t.FaultPlan((t.ClientFault(0, "reset", len(script.chunks), 400 * _MS),)), window=2048)


def _drained_reader() -> Scenario:
    """An echo client sends 12 KB and does not read for 20 ms (its queue passes
    the 4 KB mark), then reads everything and stays 400 ms: a server must not
    cut it off, however long ago it was over the mark."""
    lines = tuple(b"%04d" % i + b"d" * 95 for i in range(120))
    return Scenario((ClientScript.of(*lines, chunk=4096, pause_at_ns=0, pause_ns=20 * _MS, linger_ns=400 * _MS),),
                    window=2048)


@pytest.mark.parametrize("cls", CORRECT, ids=lambda c: c.model)
def test_the_stall_cut_off_is_expected_when_the_model_knows_the_mark(cls: type[Server]) -> None:
    scenario = _stalled_reader()
    told = EchoModel(max_queued=BP.max_queued, high_water=BP.high_water)
    assert run(cls, scenario, BP, told, 0, stall_ms=STALL_MS) is None
    # Not told, the same cut-off is a reset unasked: the policy is what lets it pass.
    untold = run(cls, scenario, BP, EchoModel(max_queued=BP.max_queued), 0, stall_ms=STALL_MS)
    assert untold is not None and "reset by the server" in untold, untold
    assert run(cls, _drained_reader(), BP, told, 0, stall_ms=STALL_MS) is None


def test_a_client_cut_off_after_it_drained_is_caught() -> None:
    """Proof: a stall clock that is never stopped cuts the drained reader off
    once the time-out has passed, with nothing owed: the policy does not allow it."""
    told = EchoModel(max_queued=BP.max_queued, high_water=BP.high_water)
    found = run(StallClockNotCleared, _drained_reader(), BP, told, 0, stall_ms=STALL_MS)
    assert found is not None and "reset by the server" in found, found


def test_high_water_zero_is_off_and_bad_values_are_refused() -> None:
    assert EchoModel(high_water=0).high_water is None  # ovserver's Limits().high_water: off
    assert ChatModel(high_water=4096).high_water == 4096
    for bad in (-1, True, 1.5):
        with pytest.raises(ValueError, match="high_water"):
            EchoModel(high_water=bad)  # type: ignore[arg-type]


def _stuck_member() -> Scenario:
    """Chat with back-pressure: a member that never reads (it resets only 5 s
    after its last send), a talker sending 40 lines of 500 bytes and a
    listener.  The talker's lines pile up for the stuck member past the 4 KB
    mark, so the talker is held back; the stall time-out (100 ms) must cut the
    stuck member off and let the talker go on: everyone else is served well
    within 2 s.  (The swarm's stuck readers reset 20 to 200 ms after their
    last send, and the reset ends the hold as well, so it never shows a
    server that does not watch the stall deadline.)"""
    stuck = ClientScript.of(b"hello", pause_at_ns=0)
    talker = ClientScript.of(*(b"%02d" % i + b"t" * 498 for i in range(40)), chunk=1000)
    listener = ClientScript.of(b"hi")
    return Scenario((stuck, talker, listener), t.FaultPlan((t.ClientFault(0, "reset", 1, 5_000 * _MS),)), window=2048)


@pytest.mark.parametrize("cls", CORRECT, ids=lambda c: c.model)
def test_a_stuck_member_holds_the_chat_back_no_longer_than_its_stall_time_out(cls: type[Server]) -> None:
    model = ChatModel(max_queued=BP.max_queued, high_water=BP.high_water)
    for seed in range(2):
        assert run(cls, _stuck_member(), BP, model, seed, "chat", STALL_MS, deadline_s=2.0) is None, seed


def test_a_server_that_never_cuts_off_a_stalled_member_is_caught() -> None:
    """Proof: an events server that watches deadlines only with an idle
    time-out never cuts the stuck member off; the talker stays held back
    until that member's reset, 5 s later."""
    from tests.mutants.red4_mutants import StallUnwatchedWithoutIdleTimeout

    model = ChatModel(max_queued=BP.max_queued, high_water=BP.high_water)
    found = run(StallUnwatchedWithoutIdleTimeout, _stuck_member(), BP, model, 0, "chat", STALL_MS, deadline_s=2.0)
    assert found is not None and "not served in 2 s" in found, found
