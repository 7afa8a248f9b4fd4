"""The max_queued cut-off is required, not only allowed (issue 10, item 2; the tenth red team's
queue-limit-checked-before-adding): a client that does not read, owed more than ``max_queued`` beyond
what is on its way to it (the server's bytes on the wire and in its receive buffer: the window) and what
the server's posted sends still hold, must have been cut off when its read pause ends.

The scenario: one echo client sends ``n`` lines of 100 bytes in sends of 1000 and reads nothing for
300 ms, on a window of 2048 bytes, against max_queued 3000.  From n = 58 on the correct server cuts it off
on some schedules, from 71 on every one; the mutant, which compares the queue before a message with the
limit, cuts off one message late, and where that message never comes it passes the limit unpunished.

The same client with its sends 3 ms apart (gapped): the server takes each send long before the next comes, so
the checker notes what it takes at each send (not only while bytes of the client are on their way to it); before
that, the taken log stopped at the first lines and the check passed servers that never cut the client off.
``ovserver simulate``'s paused reader (its _overdue_cut_off) had the same gap: checked below with the same
client as its plan.
"""

from __future__ import annotations

import dataclasses

import pytest

from fakewinsock import FakeConfig, Winsock
from fakewinsock import testing as t
from fakewinsock.testing import ClientScript, EchoModel, Scenario
from ovserver import Limits, Server, ServerConfig, _simulate
from ovserver._events import EventServer
from ovserver._iocp import IocpServer
from ovserver._protocol import Hub
from ovserver._routines import RoutineServer
from ovserver._simulate import ClientPlan, simulate
from tests.mutants.properties import OvserverUnderTest
from tests.mutants.red10_mutants import QueueLimitCheckedBeforeAdding

_MS = 1_000_000
LIMITS = Limits(max_line=1000, max_queued=3000)


def _paused(n: int, gap_ns: int = 0) -> Scenario:
    lines = tuple(b"%04d" % i + b"q" * 95 for i in range(n))
    script = ClientScript.of(*lines, chunk=1000, pause_at_ns=0, pause_ns=300 * _MS, linger_ns=10 * _MS)
    return Scenario((dataclasses.replace(script, gaps_ns=(gap_ns,) * len(script.chunks)),), window=2048)


def run(cls: type[Server], scenario: Scenario, seed: int, limits: Limits = LIMITS) -> str | None:
    """The checker's failure (None: passed) of ``cls`` run with ``limits``, checked against LIMITS."""
    try:
        t.check_line_server(lambda ws, a: OvserverUnderTest(cls, ws, a, "echo", limits, 0), scenario,
                            EchoModel(max_line=LIMITS.max_line, max_queued=LIMITS.max_queued), seed=seed)
    except t.LineServerFailure as e:
        return str(e)
    return None


@pytest.mark.parametrize("cls", [EventServer, RoutineServer, IocpServer], ids=lambda c: c.model)
def test_a_correct_server_is_never_found_late(cls: type[Server]) -> None:
    for n in range(55, 66):
        for seed in range(3):
            assert run(cls, _paused(n), seed) is None, (n, seed)


def test_a_cut_off_one_message_late_is_caught() -> None:
    """Proof: the mutant keeps a client whose queue is 3100 bytes (over 3000) when no more lines come."""
    found = run(QueueLimitCheckedBeforeAdding, _paused(61), 0)
    assert found is not None and "not cut off" in found and "a cut-off was due" in found, found
    assert "3100 bytes queued" in found, found


@pytest.mark.parametrize("cls", [EventServer, RoutineServer, IocpServer], ids=lambda c: c.model)
def test_a_correct_server_is_never_found_late_with_gapped_sends(cls: type[Server]) -> None:
    for n in range(55, 75, 3):
        for seed in range(2):
            assert run(cls, _paused(n, 3 * _MS), seed) is None, (n, seed)


def test_a_cut_off_one_message_late_is_caught_with_gapped_sends() -> None:
    """Proof: as test_a_cut_off_one_message_late_is_caught, its sends 3 ms apart (missed before the checker
    noted what the server takes at each send of a paused reader)."""
    found = run(QueueLimitCheckedBeforeAdding, _paused(61, 3 * _MS), 0)
    assert found is not None and "not cut off" in found and "a cut-off was due" in found, found
    assert "the replies to its 61 lines" in found and "3100 bytes queued" in found, found


@pytest.mark.parametrize("cls", [EventServer, RoutineServer, IocpServer], ids=lambda c: c.model)
def test_a_server_that_never_cuts_off_is_caught_with_gapped_sends(cls: type[Server]) -> None:
    """A server whose limit is far over the model's never cuts the paused reader off: found with its 100 lines
    sent 3 ms apart as in one burst (with gapped sends only the first lines counted before)."""
    never = Limits(max_line=1000, max_queued=1 << 30)
    for gap_ns in (0, 3 * _MS):
        found = run(cls, _paused(100, gap_ns), 0, never)
        assert found is not None and "not cut off" in found and "the replies to its 100 lines" in found, (gap_ns, found)


# ---------------------------------------------------------------- ovserver simulate's paused reader


def _ignore_limit(server: Server) -> None:
    """Its protocol's output limit far over the one it is configured with (and checked against): it never
    cuts a client off."""
    server.hub = Hub(server.config.mode, dataclasses.replace(server.config.limits, max_queued=1 << 30))
    server.stats.hub = server.hub.stats


class _EventsNeverCutOff(EventServer):
    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _ignore_limit(self)


class _RoutinesNeverCutOff(RoutineServer):
    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _ignore_limit(self)


class _IocpNeverCutOff(IocpServer):
    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _ignore_limit(self)


def _simulated(monkeypatch: pytest.MonkeyPatch, cls: type[Server], n: int, gap_ns: int) -> list[str]:
    """simulate's errors with one client: _paused(n, gap_ns)'s, as its plan (its read pause from its connect)."""
    lines = [b"%04d" % i + b"q" * 95 for i in range(n)]
    stream = b"".join(line + b"\n" for line in lines)
    chunks = [stream[i:i + 1000] for i in range(0, len(stream), 1000)]
    plan = ClientPlan(0, lines, chunks, [gap_ns] * len(chunks), -1, read_pause_ns=300 * _MS)
    monkeypatch.setattr(_simulate, "scenario_plan", lambda *_, **__: [plan])
    r = simulate(1, n, seed=0, plain=True, server_class=cls, limits=LIMITS, fake_config=FakeConfig(window=2048))
    return r.errors


@pytest.mark.parametrize("cls", [EventServer, RoutineServer, IocpServer], ids=lambda c: c.model)
def test_simulate_finds_a_correct_server_in_time_with_gapped_sends(monkeypatch: pytest.MonkeyPatch,
                                                                    cls: type[Server]) -> None:
    for n in (61, 70, 100):
        assert _simulated(monkeypatch, cls, n, 3 * _MS) == [], n


@pytest.mark.parametrize("cls", [_EventsNeverCutOff, _RoutinesNeverCutOff, _IocpNeverCutOff], ids=lambda c: c.model)
def test_simulate_finds_a_server_that_never_cuts_off_with_gapped_sends(monkeypatch: pytest.MonkeyPatch,
                                                                        cls: type[Server]) -> None:
    """Found with the 100 lines sent 3 ms apart (before simulate noted what the server takes at each send of a
    paused reader: only with them in one burst)."""
    for gap_ns in (0, 3 * _MS):
        errors = _simulated(monkeypatch, cls, 100, gap_ns)
        assert any("not cut off: its read pause over" in e and "a cut-off was due" in e for e in errors), errors


def test_simulate_finds_a_cut_off_one_message_late_with_gapped_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    errors = _simulated(monkeypatch, QueueLimitCheckedBeforeAdding, 61, 3 * _MS)
    assert any("not cut off" in e and "3100 bytes queued" in e for e in errors), errors
