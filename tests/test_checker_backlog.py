"""The checker's backlog watch: a client left waiting in the listen backlog of a server with room.

A server that delays its accepts while it has room (an AcceptEx not posted
again, a wake-up of the accepting thread lost, a back-off after a failure
that was the connection's, not the server's) keeps its clients waiting in
the listen backlog; every client is still served within its deadline and
the quiet check counts only the connections the server accepted, so such a
delay passed (red12's inbox-taken-acceptor-not-woken, red13's
accept-error-backs-off).  ``check_line_server`` now fails a run when a
client waits in the backlog, next to be accepted (only connections reset
there ahead of it), while the server holds fewer connections than the
model's ``max_clients``, for 100 ms of virtual time (``_Run.check_backlog``).
"""

from __future__ import annotations

import pytest

from fakewinsock.testing import (
    ClientFault,
    ClientScript,
    EchoModel,
    FaultPlan,
    LineServerFailure,
    Scenario,
    check_line_server,
)
from fakewinsock.testing._checker import _Run
from ovserver import Limits, Server
from ovserver._events import EventServer
from ovserver._iocp import IocpServer
from ovserver._routines import RoutineServer
from tests.mutants import MUTANTS
from tests.mutants.properties import OvserverUnderTest

_MS = 1_000_000
_WAITED = "waited in the listen backlog, next to be accepted, while the server had room"


def _keep_alive_and_a_late_client() -> Scenario:
    """A client that connects, says nothing and stays 1.5 s (spread_arrivals' keep-alive connection), and a
    second one arriving 2 ms later, which must be accepted while the first stays."""
    return Scenario((ClientScript.of(linger_ns=1500 * _MS), ClientScript.of(b"late", arrive_ns=2 * _MS)))


def _resets_in_the_backlog(resets: int = 20) -> Scenario:
    """accept_faults' storm: a first client, served and staying 1.5 s; ``resets`` clients arriving at 1 ms that
    reset as soon as they are connected, in the listen backlog; and a last client 20 ms after them."""
    clients = ((ClientScript.of(b"first", linger_ns=1500 * _MS),)
               + (ClientScript.of(b"x", arrive_ns=_MS),) * resets
               + (ClientScript.of(b"late", arrive_ns=21 * _MS),))
    faults = tuple(ClientFault(i, "reset", -1) for i in range(1, resets + 1))
    return Scenario(clients, FaultPlan(clients=faults))


def _run(cls: type[Server], scenario: Scenario, seed: int, limits: Limits | None = None) -> str | None:
    limits = limits if limits is not None else Limits()
    try:
        check_line_server(lambda ws, a: OvserverUnderTest(cls, ws, a, "echo", limits), scenario,
                          EchoModel(max_clients=limits.max_clients), seed=seed)
    except LineServerFailure as e:
        return str(e)
    return None


def _mutant(name: str) -> type[Server]:
    return next(m for m in MUTANTS if m.name == name).server


def test_an_acceptor_not_woken_is_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    """red12's inbox-taken-acceptor-not-woken (a group that takes its inbox does not wake the acceptor, which
    posts its next AcceptEx only when a client leaves): the late client waits in the backlog until the first
    one leaves, 1.5 s, and is then served, within its deadline: without the watch the run passes."""
    mutant = _mutant("inbox-taken-acceptor-not-woken")
    found = _run(mutant, _keep_alive_and_a_late_client(), 0)
    assert found is not None and f"client 1 (127.0.0.1:49153): {_WAITED}" in found, found
    monkeypatch.setattr(_Run, "check_backlog", lambda self, final=False: None)
    assert _run(mutant, _keep_alive_and_a_late_client(), 0) is None


def test_a_back_off_after_a_reset_in_the_backlog_is_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    """red13's accept-error-backs-off (an AcceptEx that fails with its connection's reset makes accepting
    back off for accept_retry_ms, 50 ms): behind a storm of 20 resets the late client waits for a back-off
    after each of them whose accept fails (the fake drops some, and has the accept of others succeed), and
    is then served, within its deadline: without the watch the run passes."""
    mutant = _mutant("accept-error-backs-off")
    found = _run(mutant, _resets_in_the_backlog(), 0)
    assert found is not None and f"client 21 (127.0.0.1:49173): {_WAITED}" in found, found
    monkeypatch.setattr(_Run, "check_backlog", lambda self, final=False: None)
    assert _run(mutant, _resets_in_the_backlog(), 0) is None


@pytest.mark.parametrize("cls", [EventServer, RoutineServer, IocpServer], ids=lambda c: c.model)
def test_the_correct_servers_accept_at_once(cls: type[Server]) -> None:
    """The same scenarios, the correct servers: no report, on any of 20 seeds; nor with one client served at a
    time (max_clients 1), where the late clients rightly wait for the first to leave."""
    for seed in range(20):
        for scenario in (_keep_alive_and_a_late_client(), _resets_in_the_backlog()):
            assert _run(cls, scenario, seed) is None, seed
            assert _run(cls, scenario, seed, Limits(max_clients=1)) is None, seed
