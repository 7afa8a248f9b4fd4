"""The idle watch with back-pressure (the eleventh red team's resume-keeps-idle-clock).

With back-pressure an echo client is held back by its own queue over the mark, whose bytes the idle
watch's looks see on their way, so the watch follows it (it did not with back-pressure until red11), and
a client that pauses its reading is followed too once it reads again (its unread replies are on their
way meanwhile).  A server whose clock of a client held back does not start again when it reads on
(``Server._read_on``) keeps that client, idle afterwards, for good: the watch fails it.
``tests.mutants.properties.recipe_bp_idle_property`` is the recipe that reaches it.
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
from tests.mutants.red11_mutants import ResumeKeepsIdleClock

_MS = 1_000_000
_LIMITS = Limits(high_water=64 * 1024)
_IDLE_MS = 100
_STALL_MS = 1000


def _held_back_then_idle() -> Scenario:
    """One echo client sends 300 KB in lines of 3000 bytes and reads nothing for its first 150 ms (held back
    across the server's first idle check), then reads everything and stays connected, idle, 500 ms."""
    lines = [bytes([65 + i % 26]) * 3000 for i in range(100)]
    return Scenario((ClientScript.of(*lines, chunk=16384, pause_at_ns=0, pause_ns=150 * _MS,
                                     linger_ns=500 * _MS),))


def run(cls: type[Server], seed: int) -> str | None:
    try:
        t.check_line_server(lambda ws, a: OvserverUnderTest(cls, ws, a, "echo", _LIMITS, _STALL_MS, _IDLE_MS),
                            _held_back_then_idle(), EchoModel(high_water=_LIMITS.high_water, idle_timeout_ms=_IDLE_MS),
                            seed=seed)
    except t.LineServerFailure as e:
        return str(e)
    return None


@pytest.mark.parametrize("cls", [EventServer, RoutineServer, IocpServer], ids=lambda c: c.model)
def test_a_correct_server_times_out_a_client_idle_after_it_was_held_back(cls: type[Server]) -> None:
    for seed in range(3):
        assert run(cls, seed) is None, seed


def test_a_resume_that_keeps_the_old_idle_clock_is_caught() -> None:
    """Proof: the mutant reads on without the idle deadline; the client, idle afterwards, is never closed."""
    for seed in range(3):
        found = run(ResumeKeepsIdleClock, seed)
        assert found is not None and "not closed by the server's idle time-out" in found, (seed, found)
