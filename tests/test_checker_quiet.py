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
    second one arriving 50 us later, while the events model's group is still taking the first: the acceptor
    hands the second one over while the group is between its LeaveCriticalSection and its wait (with the
    thread switch there that preemption makes: since the events model accepts no further ahead than its groups,
    robust29, no plain seed of 0-299 puts the hand-over there)."""
    return Scenario((ClientScript.of(linger_ns=1500 * _MS), ClientScript.of(b"late", arrive_ns=50_000)))


def _run(cls: type[Server], seed: int, preempt: bool = False) -> str | None:
    try:
        check_line_server(lambda ws, a: OvserverUnderTest(cls, ws, a, "echo", Limits()),
                          _keep_alive_and_a_late_client(), EchoModel(), seed=seed, preempt=preempt)
    except LineServerFailure as e:
        return str(e)
    return None


def test_a_lost_hand_over_is_seen_while_the_server_sits_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    """group-wake-reset-outside-lock (a group resets its wake event outside the lock, erasing a hand-over's
    signal) on seed 35, preempted: the late client's line waits unread while the first client stays.  The
    quiet check reports it after 1.5 s, naming the cause; without it the run fails only at the client's 30 s
    deadline (since robust29 a group takes its inbox only in its wake event's turn, so the lost hand-over is
    never made good by another client's event; before, the run passed without the check)."""
    mutant = next(m for m in MUTANTS if m.name == "group-wake-reset-outside-lock").server
    found = _run(mutant, 35, preempt=True)
    assert found is not None and "the server made no Winsock call for 1.500 s while 5 bytes it sent" in found, found
    monkeypatch.setattr(_Run, "check_quiet", lambda self: None)
    found = _run(mutant, 35, preempt=True)
    assert found is not None and "not served in 30 s" in found, found


@pytest.mark.parametrize("cls", [EventServer, RoutineServer, IocpServer], ids=lambda c: c.model)
def test_the_correct_servers_are_never_quiet_with_bytes_waiting(cls: type[Server]) -> None:
    for seed in range(40):
        assert _run(cls, seed) is None, seed
