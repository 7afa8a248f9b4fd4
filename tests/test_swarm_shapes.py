"""The swarm's traffic shapes hangup_edges and deaf_drains (search28; opt-in until shapes29).

Each is part of the default swarm (the README's recipe, told the server's line limit, draws both), draws what it
says, and, drawn, reaches the mutant it is for while the correct servers pass.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakewinsock.testing import EchoModel, LineServerFailure, Scenario, check_line_server, scenarios
from fakewinsock.testing._scenarios import _DEAF_FOR, _HANGUP_READ_LATE
from ovserver import Limits, Server
from ovserver._events import EventServer
from ovserver._routines import RoutineServer
from tests.mutants import MUTANTS
from tests.mutants.properties import OvserverUnderTest

_MS = 1_000_000
_FEW = settings(max_examples=150, database=None, derandomize=True, deadline=None,
                suppress_health_check=list(HealthCheck))
#: The recipe's tight configuration (tests.mutants.properties.RECIPE_LIMITS), as the swarm is told it.
TIGHT = Limits(max_line=1000, max_queued=16 * 1024, max_clients=1)
_TOLD = {"max_line": TIGHT.max_line, "recv_size": 16 * 1024, "max_clients": TIGHT.max_clients,
         "max_queued": TIGHT.max_queued, "clients": (1, 4), "lines": (0, 4)}


def _drawn(strategy: st.SearchStrategy[Scenario], examples: int = 150) -> list[Scenario]:
    out: list[Scenario] = []

    @settings(_FEW, max_examples=examples)
    @given(strategy)
    def collect(s: Scenario) -> None:
        out.append(s)

    collect()
    return out


def _hangup_client(s: Scenario, max_line: int) -> tuple[int, int] | None:
    """The client with hangup_edges' shape, and how many bytes it sends after byte max_line + 1 of its long line."""
    for i, c in enumerate(s.clients):
        if len(c.chunks) < 2 or not c.lines or len(c.lines[-1]) <= max_line:
            continue
        first, second = c.chunks[-2], c.chunks[-1]
        start = len(c.stream) - len(c.lines[-1]) - 1  # where its last line begins in the stream
        if (len(c.stream) - len(second) - start == max_line + 1 and second.endswith(b"\n")
                and len(first) >= 1 and c.gaps_ns[-1] >= 20 * _MS and c.pause_at_ns == 0
                and c.pause_ns is not None and c.pause_ns >= sum(c.gaps_ns) + _HANGUP_READ_LATE
                and s.faults.fault_of(i) is None):
            return i, len(second)
    return None


def test_the_shapes_are_in_the_default_swarm() -> None:
    """Without naming them (the README's recipe as written, told the line limit), both are drawn; hangup_edges
    only with a line limit told (scenarios() guesses none); named where the other arguments rule them out, a
    ValueError.  (Opt-in until shapes29: then no default scenario had them, and this test failed.)"""
    shapes = {"hangup_edges", "deaf_drains"}
    drawn = [set(s.features) & shapes for s in _drawn(scenarios(**_TOLD), 100)]  # type: ignore[arg-type]
    assert {"hangup_edges"} in drawn or {"hangup_edges", "deaf_drains"} in drawn, drawn
    assert any("deaf_drains" in f for f in drawn), drawn
    untold = {k: v for k, v in _TOLD.items() if k != "max_line"}
    for s in _drawn(scenarios(**untold), 60):  # type: ignore[arg-type]
        assert "hangup_edges" not in s.features, s.features
    for s in _drawn(scenarios(early_stop=False, **_TOLD), 60):  # type: ignore[arg-type]
        assert "deaf_drains" not in s.features, s.features
    with pytest.raises(ValueError, match="hangup_edges"):
        scenarios(features=("hangup_edges",))  # (no line limit told)
    with pytest.raises(ValueError, match="hangup_edges"):
        scenarios(features=("hangup_edges",), max_line=64 * 1024 + 1)  # (a limit over 64 KiB: too costly)
    with pytest.raises(ValueError, match="deaf_drains"):
        scenarios(features=("deaf_drains",), early_stop=False)
    with pytest.raises(ValueError, match="max_line"):
        scenarios(max_line=0)


def test_hangup_edges_meets_the_allowance_to_the_byte() -> None:
    """hangup_edges: a client ends with a line over the limit in two sends, the first ending exactly at byte
    max_line + 1 of the line, the second 20 or 50 ms later with max_line bytes (or one fewer, one more), its
    newline the last; it reads nothing until 100 ms after that, and has no fault."""
    found = []
    for s in _drawn(scenarios(features=("hangup_edges",), **_TOLD)):  # type: ignore[arg-type]
        shape = _hangup_client(s, TIGHT.max_line)
        assert (shape is not None) == ("hangup_edges" in s.features), s
        if shape is not None:
            found.append(shape[1] - TIGHT.max_line)
    assert set(found) == {-1, 0, 1} and found.count(0) > len(found) // 3, found


def test_deaf_drains_stops_while_a_half_closed_client_reads_nothing() -> None:
    """deaf_drains: a client half-closes right behind its last send, owed more than the window holds (a 300-byte
    line, more until it is), reads nothing for 3 s, and the stop comes 3 to 100 ms after its FIN."""
    seen = 0
    for s in _drawn(scenarios(features=("deaf_drains",), **_TOLD)):  # type: ignore[arg-type]
        deaf = [(i, c) for i, c in enumerate(s.clients) if c.pause_at_ns == 0 and c.pause_ns == _DEAF_FOR]
        assert bool(deaf) == ("deaf_drains" in s.features), s
        if not deaf:
            continue
        seen += 1
        i, c = deaf[0]
        fault = s.faults.fault_of(i)
        assert fault is not None and fault.kind == "leave" and fault.before_chunk == len(c.chunks)
        assert fault.reset_after_ns is None and s.window is not None
        fin = c.arrive_ns + sum(c.gaps_ns)
        assert s.faults.stop_at_ns is not None and 3 * _MS <= s.faults.stop_at_ns - fin <= 100 * _MS
        if any(len(line) == 300 for line in c.lines):  # (its 300-byte line: a _ladder draw, which may shrink)
            assert len(c.stream) > s.window, (len(c.stream), s.window)
    assert seen >= 30, seen


def _fails(cls: type[Server], s: Scenario, seed: int) -> str | None:
    try:
        check_line_server(lambda ws, a: OvserverUnderTest(cls, ws, a, "echo", TIGHT), s,
                          EchoModel(max_line=TIGHT.max_line, max_queued=TIGHT.max_queued), seed=seed)
    except LineServerFailure as e:
        return str(e)
    return None


@pytest.mark.parametrize(("name", "feature", "picked"), [
    ("hangup-allowance-off-by-one", "hangup_edges",
     lambda s: (shape := _hangup_client(s, TIGHT.max_line)) is not None and shape[1] == TIGHT.max_line),
    ("stop-skips-draining", "deaf_drains",
     lambda s: "deaf_drains" in s.features and any(len(line) == 300 for c in s.clients for line in c.lines)),
])
def test_a_drawn_shape_reaches_its_mutant(name: str, feature: str, picked: object) -> None:
    """Of the first three drawn scenarios with the shape (hangup_edges: exactly max_line bytes after the edge;
    deaf_drains: its 300-byte line), one at least fails the mutant on a seeded schedule; the correct servers
    pass each.  (Not every draw of a shape reaches its mutant: deaf_drains with a window of 1 byte, its stop
    3 ms after its FIN, has the server still taking its stream at the stop, nothing queued for it yet; the
    first draw was such one since the stop at a send's end moved the draws, stop37.)"""
    mutant = next(m for m in MUTANTS if m.name == name)
    assert callable(picked)
    drawn = (s for s in _drawn(scenarios(features=(feature,), **_TOLD)) if picked(s))  # type: ignore[arg-type]
    first = [next(drawn) for _ in range(3)]
    for s in first:
        for cls in (EventServer, RoutineServer):
            assert _fails(cls, s, 0) is None, (cls.__name__, s)
    assert any(_fails(mutant.server, s, seed) is not None for s in first for seed in range(3)), first


def test_a_chat_burst_overflows_a_member_within_one_receive() -> None:
    """cut-off-closes-gracefully (registered with recipe_chat since search28): in echo one receive's replies alone
    never pass the recipe's tight configuration's output limit (16 KiB a receive, 16 KiB queued at most);
    in chat a member's one send of 1000 one-byte lines reaches the other member as 1000 lines each with its
    sender's name, over 16 KiB within one receive, while no send to it is in flight: the mutant closes it with a
    FIN, the correct iocp server resets it."""
    from fakewinsock.testing import ChatModel, ClientScript
    from ovserver._iocp import IocpServer

    lines = (b"a",) * 1000
    s = Scenario((ClientScript.of(linger_ns=50 * _MS), ClientScript(lines, (b"a\n" * 1000,), (5 * _MS,))))
    limits = Limits(max_line=1000, max_queued=16 * 1024)
    mutant = next(m for m in MUTANTS if m.name == "cut-off-closes-gracefully").server

    def fails(cls: type[Server]) -> str | None:
        try:
            check_line_server(lambda ws, a: OvserverUnderTest(cls, ws, a, "chat", limits), s,
                              ChatModel(max_line=1000, max_queued=16 * 1024), seed=0)
        except LineServerFailure as e:
            return str(e)
        return None

    assert fails(IocpServer) is None
    found = fails(mutant)
    assert found is not None and "closed by the server" in found, found


# ---------------------------------------------------------------- the same shapes in ovserver simulate's swarm


def test_simulate_hangup_edges_plan() -> None:
    """simulate's hangup_edges: a plain client's last line is over max_line in two sends, the first ending at
    byte max_line + 1 of it, the second 20 or 50 ms later with max_line bytes more (one fewer, one more), its
    newline last; it reads nothing until 100 ms after its last send; it expects the error line."""
    from ovserver._simulate import HANGUP_GAPS_NS, HANGUP_READ_LATE_NS, _hangup_edges, scenario_plan

    seen = set()
    for seed in range(12):
        out = scenario_plan(10, 3, seed)
        before = [p.too_long for p in out]
        _hangup_edges(out, seed, 1000)
        (p,) = [p for p, k in zip(out, before, strict=True) if p.too_long != k]
        line = p.lines[p.too_long]
        assert p.too_long == len(p.lines) - 1 and b"".join(p.chunks).endswith(line + b"\n")
        assert p.chunks[-2] == line[:1001] and p.chunks[-1] == line[1001:] + b"\n"
        assert p.pauses_ns[-2] in HANGUP_GAPS_NS and p.read_pause_ns >= sum(p.pauses_ns) + HANGUP_READ_LATE_NS
        seen.add(len(p.chunks[-1]) - 1000)
    assert seen == {-1, 0, 1}, seen


def test_simulate_deaf_drains_plan() -> None:
    """simulate's deaf_drains: the last plain client to arrive half-closes owed more than the window, reads
    nothing for 3 s, and asks for a stop after its FIN."""
    from ovserver._simulate import DEAF_FOR_NS, DEAF_STOPS_NS, _deaf_drains, scenario_plan

    out = scenario_plan(10, 3, 0)
    own = {id(p): len(p.lines) for p in out}
    _deaf_drains(out, 0, 16384, 1000)
    (p,) = [p for p in out if p.deaf_stop_ns]
    assert p.arrival_ns == max(q.arrival_ns for q in out) and p.half_close and p.deaf_stop_ns in DEAF_STOPS_NS
    added = p.lines[own[id(p)]:]
    assert 16384 < sum(len(line) + 1 for line in p.lines) <= 16384 + 1001 and {len(x) for x in added} == {1000}
    assert p.read_pause_ns >= DEAF_FOR_NS and b"".join(p.chunks) == b"".join(line + b"\n" for line in p.lines)


@pytest.mark.parametrize(("name", "seeds"), [("hangup-allowance-off-by-one", (29,)),
                                             ("stop-skips-draining", (4, 6))])
def test_simulate_default_traffic_reaches_the_shapes_mutants(name: str, seeds: tuple[int, ...]) -> None:
    """simulate's default (swarm) traffic, echo, on seeds that draw the shape (hangup_edges with exactly
    max_line bytes after the edge; deaf_drains): the mutant fails (a reset of a hung-up client owed nothing
    more than its error line; a stop that never returns, or a leak at WSACleanup), the correct servers pass."""
    from ovserver import simulate
    from ovserver._iocp import IocpServer

    mutant = next(m for m in MUTANTS if m.name == name).server
    for seed in seeds:
        for cls in (EventServer, RoutineServer, IocpServer):
            r = simulate(100, 10, mode="echo", seed=seed, server_class=cls)
            assert r.ok, (cls.__name__, seed, r.errors)
        try:
            found = not simulate(100, 10, mode="echo", seed=seed, server_class=mutant).ok
        except Exception:  # the fake found a leak: the bug found
            found = True
        assert found, (name, seed)
