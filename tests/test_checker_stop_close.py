"""At a stop, a quiet client reads a FIN (issue 10, item 2; the tenth red team's stop-closes-abortively).

A client that had read all it was owed, with nothing on its way either way and nothing read for 1 ms
before the stop request, must not be reset by the stop: a server that stops closes such a connection
gracefully (Windows resets only a close with a send or a receive outstanding or bytes unread, and a
correct server cancels and reaps those first).  The reset is looked for where the client sees it, and,
when serve() returns before it arrives, at the server's end of the connection.
"""

from __future__ import annotations

import pytest

from fakewinsock import testing as t
from fakewinsock.testing import ClientScript, EchoModel, Scenario
from ovserver import Limits, Server
from ovserver._events import EventServer
from ovserver._iocp import IocpServer
from ovserver._routines import RoutineServer
from tests.mutants.properties import OvserverUnderTest
from tests.mutants.red10_mutants import StopClosesAbortively

_MS = 1_000_000


def _stopped(stop_ms: int) -> Scenario:
    """Two echo clients served and lingering 100 ms; the stop comes at ``stop_ms``."""
    return Scenario((ClientScript.of(b"hello", b"world", linger_ns=100 * _MS),
                     ClientScript.of(b"x" * 3000, chunk=700, linger_ns=100 * _MS)),
                    t.FaultPlan((), stop_at_ns=stop_ms * _MS))


def run(cls: type[Server], scenario: Scenario, seed: int, model: EchoModel | None = None) -> str | None:
    try:
        t.check_line_server(lambda ws, a: OvserverUnderTest(cls, ws, a, "echo", Limits(), 0), scenario,
                            model or EchoModel(), seed=seed)
    except t.LineServerFailure as e:
        return str(e)
    return None


@pytest.mark.parametrize("cls", [EventServer, RoutineServer, IocpServer], ids=lambda c: c.model)
def test_a_correct_server_closes_quiet_clients_gracefully_at_a_stop(cls: type[Server]) -> None:
    for stop_ms in (2, 20, 50):
        for seed in range(3):
            assert run(cls, _stopped(stop_ms), seed) is None, (stop_ms, seed)


def test_a_stop_that_resets_quiet_clients_is_caught() -> None:
    """Proof: the mutant resets every connection at the stop."""
    for seed in range(3):
        found = run(StopClosesAbortively, _stopped(20), seed)
        assert found is not None and "reset by the server at the stop" in found, (seed, found)


def test_a_model_that_resets_at_a_stop_on_purpose_lets_it() -> None:
    """A server whose stop is a hard close by design says so (``resets_at_stop=True``): the same mutant then
    passes (and the correct servers still do)."""
    for seed in range(3):
        assert run(StopClosesAbortively, _stopped(20), seed, EchoModel(resets_at_stop=True)) is None, seed
        assert run(EventServer, _stopped(20), seed, EchoModel(resets_at_stop=True)) is None, seed


@pytest.mark.parametrize("bad", [1, None, "yes"])
def test_resets_at_stop_takes_a_bool(bad: object) -> None:
    with pytest.raises(ValueError, match="resets_at_stop"):
        EchoModel(resets_at_stop=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="resets_at_stop"):
        t.ChatModel(resets_at_stop=bad)  # type: ignore[arg-type]
