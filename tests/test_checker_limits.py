"""The checker told a server's client limit (the models' ``max_clients``; ovserver's ``Limits.max_clients``):
no more clients served at once than the limit, as the clients saw it; and a counting server's ``"peak"``
of connections open at once bounded by what the clients saw, its ``"accepted"`` and the limit; the same
bounds in ``ovserver simulate`` (search27).  Each check is shown to fail on a server that breaks the rule
it guards: ovserver with a bigger limit than the model is told, tests/mutants' peak-counted-before-open,
counts that claim too much."""

from __future__ import annotations

from typing import Any

import pytest

from fakewinsock import FakeWinsock, testing
from fakewinsock.testing import (
    ChatModel,
    ClientScript,
    EchoModel,
    LineServerFailure,
    Scenario,
    check_line_server,
)
from ovserver import Limits, Server, simulate
from ovserver._events import EventServer
from ovserver._iocp import IocpServer
from ovserver._routines import RoutineServer
from tests.mutants.properties import OvserverUnderTest
from tests.mutants.red9_mutants import HubFullOffByOne, PeakCountedBeforeOpen

_MS = 1_000_000
MODELS = [EventServer, RoutineServer, IocpServer]

#: Three clients arriving together, each sending a line, then another 30 ms later, lingering 5 ms: with
#: one place, two wait in the listen backlog; with two, two are served at once (each reads its first
#: echo before the server takes the other's second line).
_THREE = Scenario((ClientScript((b"a", b"b"), (b"a\n", b"b\n"), (0, 30 * _MS), linger_ns=5 * _MS),) * 3)


def _run(cls: type[Server], served: int, told: int | None, scenario: Scenario = _THREE, mode: str = "echo",
         seed: int = 0) -> testing.LineServerReport:
    model = (EchoModel if mode == "echo" else ChatModel)(max_clients=told)
    return check_line_server(lambda ws, address: OvserverUnderTest(cls, ws, address, mode,
                                                                    Limits(max_clients=served)),
                             scenario, model, seed=seed)


@pytest.mark.parametrize("cls", MODELS, ids=[c.model for c in MODELS])
def test_a_server_serving_more_than_max_clients_at_once_is_reported(cls: type[Server]) -> None:
    for seed in range(3):
        _run(cls, 1, 1, seed=seed)  # the others wait in the backlog: no alarm
        _run(cls, 2, 2, seed=seed)
    with pytest.raises(LineServerFailure, match=r"2 clients served at once at .* but the model's max_clients is 1"):
        _run(cls, 2, 1)


def test_clients_ended_by_their_fin_count_as_served_until_then() -> None:
    """One line each (no second line to show the server still had it): a client ended normally held its
    place until its FIN; but not with an idle time-out (the server may close it before, gracefully)."""
    one = Scenario((ClientScript.of(b"a", linger_ns=20 * _MS),) * 2)
    _run(RoutineServer, 1, 1, one)
    with pytest.raises(LineServerFailure, match="2 clients served at once"):
        _run(RoutineServer, 2, 1, one)
    model = EchoModel(max_clients=1, idle_timeout_ms=500)
    check_line_server(lambda ws, address: _Uncounted(RoutineServer, ws, address, "echo", Limits(max_clients=2),
                                                     idle_timeout_ms=500),
                      one, model)  # (the FIN is no evidence with an idle time-out)


class _Uncounted:
    """ovserver without its counts (so that its peak, over the limit the model is told, is not checked)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.inner = OvserverUnderTest(*args, **kwargs)

    def serve(self) -> None:
        self.inner.serve()

    def stop(self) -> None:
        self.inner.stop()


def test_chat_members_served_at_once() -> None:
    """Chat: a member's place holds from its welcome to the lines routed to it."""
    chat = Scenario((ClientScript((b"x", b"y"), (b"x\n", b"y\n"), (0, 20 * _MS), linger_ns=5 * _MS),) * 2)
    _run(IocpServer, 2, 2, chat, "chat")
    with pytest.raises(LineServerFailure, match="2 clients served at once"):
        _run(IocpServer, 2, 1, chat, "chat")


def test_hub_full_off_by_one_serves_no_one_more() -> None:
    """tests/mutants' hub-full-off-by-one is equivalent through Winsock: the table's test stops accepting at
    max_clients before the hub is asked (tests/test_mutants.py's EQUIVALENT)."""
    for seed in range(3):
        _run(HubFullOffByOne, 1, 1, seed=seed)


def test_peak_counted_before_open_is_reported() -> None:
    one = Scenario((ClientScript.of(b"x"),))
    report = _run(IocpServer, 10, 10, one)
    assert report.ok
    with pytest.raises(LineServerFailure, match="a peak of 0 connections open at once, but it served a client"):
        _run(PeakCountedBeforeOpen, 10, 10, one)
    with pytest.raises(LineServerFailure, match="a peak of 2 connections open at once, but it served 3 clients"):
        _run(PeakCountedBeforeOpen, 10, 10)


class _Claims(OvserverUnderTest):
    """ovserver whose counts claim a peak of ``peak``."""

    peak = 0

    def counts(self) -> dict[str, int]:
        return {**super().counts(), "peak": self.peak}


@pytest.mark.parametrize(("peak", "told", "error"), [
    (4, None, "a peak of 4 connections open at once, but only 3 clients tried to connect and the server counted "
              "3 accepted"),
    (2, 1, "a peak of 2 connections open at once, but the model's max_clients is 1"),
])
def test_a_peak_over_what_was_accepted_or_allowed_is_reported(peak: int, told: int | None, error: str) -> None:
    def server(ws: FakeWinsock, address: tuple[str, int]) -> _Claims:
        s = _Claims(IocpServer, ws, address, "echo", Limits(max_clients=1))
        s.peak = peak
        return s

    with pytest.raises(LineServerFailure, match=error):
        check_line_server(server, _THREE, EchoModel(max_clients=told))


def test_max_clients_must_be_a_positive_number() -> None:
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="max_clients"):
            EchoModel(max_clients=bad)  # type: ignore[arg-type]
    assert ChatModel(max_clients=3).max_clients == 3


def test_simulate_checks_the_peak() -> None:
    """simulate's bound: seed 4's echo run (tight limits) sees 2 clients served at once, the mutant counts 1."""
    assert simulate(100, 10, mode="echo", seed=4, model="iocp").ok
    r = simulate(100, 10, mode="echo", seed=4, server_class=PeakCountedBeforeOpen)
    assert not r.ok and "a peak of 1 connections open at once, but it served 2 clients" in r.errors[0]


def test_simulate_counts_a_reset_only_with_an_operation_pending_at_the_server() -> None:
    """simulate's bound on the resets a server counts: a client's reset counts only while the server's socket
    has a receive or a send pending (which fails with it), not while the server merely holds the socket (an
    AcceptEx completed, not yet handled: a stop closes it uncounted), as the recipe's bound.  Proven by
    breaking the rule back to held_socket(): the first assertion fails.  (The query is
    FakeWinsock.held_with_io, which the recipe's checker asks too.)"""
    from fakewinsock import WSABUF, WSAOVERLAPPED
    from fakewinsock.constants import FALSE, WSA_INFINITE
    from tests.test_fake_regressions import server

    ws = FakeWinsock(seed=1)
    lst, acc, ov = server(ws)
    p = ws.peer()
    p.connect("127.0.0.1", 5000)
    ws.WSAWaitForMultipleEvents(1, [ov.hEvent], FALSE, WSA_INFINITE, FALSE)
    assert ws.held_socket(p) is not None and not ws.held_with_io(p)  # accepted, nothing posted
    rov = WSAOVERLAPPED()
    ws.WSARecv(acc, [WSABUF(16, bytearray(16))], 1, 0, rov, None)
    assert ws.held_with_io(p)
    ws.CancelIoEx(acc, rov)
    ws.closesocket(acc)
    ws.closesocket(lst)
