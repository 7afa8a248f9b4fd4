"""The counts check's lower bound on the server's own closes (issue 10, item 2; the tenth red team's
hung-up-counted-at-fin): a client whose line over max_line the server certainly found (it read the error
line, or the server took the line's byte past the limit 1 ms before the stop and the client's end) is one
the server closed for a cause of its own (``"closed"``), whatever ends the connection after: a hang-up is
counted when the line is found too long, not when the error line is out.

The scenario: an echo client sends 60 lines of 100 bytes and a line of 1001 (max_line 1000) and never
reads (the window, 2048 bytes, stays full: the error line stays queued), then resets 50 ms later.
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
from tests.mutants.red10_mutants import HungUpCountedAtFin

_MS = 1_000_000


def _hung_up_then_reset() -> Scenario:
    script = ClientScript.of(*(b"%04d" % i + b"h" * 95 for i in range(60)), b"x" * 1001, chunk=1000, pause_at_ns=0)
    return Scenario((script,), t.FaultPlan((t.ClientFault(0, "reset", len(script.chunks), 50 * _MS),)), window=2048)


def run(cls: type[Server], seed: int) -> str | None:
    try:
        t.check_line_server(lambda ws, a: OvserverUnderTest(cls, ws, a, "echo", Limits(max_line=1000), 0),
                            _hung_up_then_reset(), EchoModel(max_line=1000), seed=seed)
    except t.LineServerFailure as e:
        return str(e)
    return None


@pytest.mark.parametrize("cls", [EventServer, RoutineServer, IocpServer], ids=lambda c: c.model)
def test_a_correct_server_counts_the_hang_up(cls: type[Server]) -> None:
    for seed in range(3):
        assert run(cls, seed) is None, seed


def test_a_hang_up_counted_only_when_its_fin_goes_is_caught() -> None:
    """Proof: the mutant counts the hang-up when the error line is out, which never happens here."""
    for seed in range(3):
        found = run(HungUpCountedAtFin, seed)
        assert found is not None and "connections it closed itself" in found, (seed, found)
