"""The checker's quiet check: a server that sits quiet while a client's bytes wait to be taken.

A lost wake-up (a completion, an event's signal or a hand-over to another
thread not noticed) leaves a client's bytes unread until something else wakes
the server; every client ends within its deadline, and a client that arrived
earlier ends before a later one's deadline, so its departure always woke the
server in time and the loss passed as a delay (redteam7: a probe counted
hundreds of lost hand-overs in the recipe's examples of
group-wake-reset-outside-lock, none reported).  ``check_line_server`` now
also fails a run when, at a client's own moment (its arrival, a send, its
FIN) or at the stop request, the server has made no Winsock call for
``idle_s`` while a client it accepted has bytes the server has not taken and
every client has read all the server sent it.
"""

from __future__ import annotations

import pytest

from fakewinsock.testing import ClientScript, EchoModel, LineServerFailure, Scenario, check_line_server
from fakewinsock.testing._checker import _Run
from ovserver import Limits, Server
from ovserver._events import EventServer
from ovserver._iocp import IocpServer
from ovserver._routines import RoutineServer
from tests.mutants import MUTANTS
from tests.mutants.properties import OvserverUnderTest

_MS = 1_000_000


def _keep_alive_and_a_late_client() -> Scenario:
    """A client that connects, says nothing and stays 1.5 s (spread_arrivals' keep-alive connection), and a
    second one arriving 10 us later, while the events model's group is still taking the first: the acceptor
    hands the second one over while the group is between its LeaveCriticalSection and its wait."""
    return Scenario((ClientScript.of(linger_ns=1500 * _MS), ClientScript.of(b"late", arrive_ns=10_000)))


def _run(cls: type[Server], seed: int) -> str | None:
    try:
        check_line_server(lambda ws, a: OvserverUnderTest(cls, ws, a, "echo", Limits()),
                          _keep_alive_and_a_late_client(), EchoModel(), seed=seed)
    except LineServerFailure as e:
        return str(e)
    return None


def test_a_lost_hand_over_is_seen_while_the_server_sits_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    """group-wake-reset-outside-lock (a group resets its wake event outside the lock, erasing a hand-over's
    signal) on seed 31: the late client's line waits unread for the 1.5 s the first client stays, and is
    served when that client leaves.  The quiet check reports it; without it the run passes (proven below)."""
    mutant = next(m for m in MUTANTS if m.name == "group-wake-reset-outside-lock").server
    found = _run(mutant, 31)
    assert found is not None and "the server made no Winsock call for 1.500 s while 5 bytes it sent" in found, found
    monkeypatch.setattr(_Run, "check_quiet", lambda self: None)
    assert _run(mutant, 31) is None


@pytest.mark.parametrize("cls", [EventServer, RoutineServer, IocpServer], ids=lambda c: c.model)
def test_the_correct_servers_are_never_quiet_with_bytes_waiting(cls: type[Server]) -> None:
    for seed in range(40):
        assert _run(cls, seed) is None, seed
