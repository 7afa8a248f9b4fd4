"""The edge of the output limit (issue 10, search power; the tenth red team's queue-limit-checked-before-adding):
backpressure's reader aimed at the edge of ``max_queued`` in ``scenarios()``' swarm, and simulate's queue_edges.

The reader sends, in one burst and nothing more, lines of the longest size the server takes until the last
takes the server's queue past ``max_queued`` (beyond what is in its send in flight and on its way), and does not
read meanwhile: a correct server cuts it off at that last line; a server that compares the queue before the
message with the limit would cut it off only at a next line, which never comes, and the checker's required
cut-off (tests/test_checker_queue_limit.py) sees it.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, find, settings

from fakewinsock.testing import Scenario, scenarios
from ovserver import Limits, Server, simulate
from ovserver._events import EventServer
from ovserver._iocp import IocpServer
from ovserver._routines import RoutineServer
from ovserver._simulate import swarm_features
from tests.mutants.red10_mutants import QueueLimitCheckedBeforeAdding
from tests.test_checker_queue_limit import run

# The recipe's tight configuration (tests/mutants/properties.py RECIPE_LIMITS).
LIMITS = Limits(max_line=1000, max_queued=16 * 1024, max_clients=1)
_MS = 1_000_000


def _edge_reader(scenario: Scenario) -> int:
    """The index of the scenario's reader at the edge (lines of max_line bytes, unread for 150 ms), or -1."""
    for i, c in enumerate(scenario.clients):
        if (c.pause_at_ns == 0 and c.pause_ns == 150 * _MS and len(c.lines) > 3
                and all(len(line) == LIMITS.max_line for line in c.lines)):
            return i
    return -1


def _edge_scenario() -> Scenario:
    strategy = scenarios(clients=(1, 2), lines=(0, 2), max_line=LIMITS.max_line, recv_size=16 * 1024,
                         max_clients=1, max_queued=LIMITS.max_queued, features=("backpressure",), faults=False)
    return find(strategy, lambda s: _edge_reader(s) >= 0,
                settings=settings(database=None, derandomize=True, max_examples=500,
                                  suppress_health_check=list(HealthCheck)))


def _run(cls: type[Server], scenario: Scenario, seed: int) -> str | None:
    return run(cls, scenario, seed, LIMITS)


def test_the_swarm_aims_a_reader_at_the_edge_of_max_queued() -> None:
    """The edge reader's lines: the one in the server's send in flight (a window below the line), max_queued's
    whole lines, then the line that crosses it, in one burst; nothing after them (no tail, no fault)."""
    scenario = _edge_scenario()
    i = _edge_reader(scenario)
    reader = scenario.clients[i]
    line = LIMITS.max_line + 1
    assert scenario.window is not None and scenario.window < line, scenario.window
    assert len(reader.lines) == 1 + LIMITS.max_queued // line + 1
    assert set(reader.gaps_ns) == {0} and not reader.tail and scenario.faults.fault_of(i) is None
    assert "backpressure" in scenario.features


def test_the_edge_finds_a_cut_off_one_message_late_and_passes_the_correct_servers() -> None:
    """Proof: the mutant keeps the reader whose queue is one line past max_queued; ovserver cuts it off."""
    scenario = _edge_scenario()
    found = _run(QueueLimitCheckedBeforeAdding, scenario, 0)
    assert found is not None and "a cut-off was due" in found, found
    for cls in (EventServer, RoutineServer, IocpServer):
        for seed in range(2):
            assert _run(cls, scenario, seed) is None, (cls.model, seed)


# simulate: seed 7 draws queue_edges (and none of back-pressure, injections or a stop that would excuse it).
_SIM_SEED = 7


def test_simulate_queue_edges_finds_a_cut_off_one_message_late() -> None:
    assert "queue_edges" in swarm_features(_SIM_SEED)
    r = simulate(100, 10, model="routines", seed=_SIM_SEED, server_class=QueueLimitCheckedBeforeAdding)
    assert not r.ok and any("a cut-off was due" in e for e in r.errors), r.errors


@pytest.mark.parametrize("model", ["events", "routines", "iocp"])
def test_simulate_queue_edges_passes_the_correct_servers(model: str) -> None:
    r = simulate(100, 10, model=model, seed=_SIM_SEED)
    assert r.ok, r.errors


# queue_edges' exact edge (search39: ovserver._simulate.QUEUE_EXACT_SENDS): where the line limit holds a line of
# max_queued bytes, one more plain client sends one such line and nothing else.  Seed 7 draws it (stuck_readers'
# max_queued of 32 KiB under the default line limit of 64 KiB), and 39 (piped's 4096).
_EXACT_SEEDS = (7, 39)


class _Planned(Exception):
    pass


def _exact_client(seed: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """The index of the client planned at the exact edge in echo run ``seed`` (-1: none): simulate up to its
    plans (the limits are drawn in simulate)."""
    import ovserver._simulate as sim

    planned: list[int] = []
    real_exact, real_plan = sim._queue_exact, sim.scenario_plan

    def exact(out: list[sim.ClientPlan], s: int, limits: Limits) -> None:
        before = [p.lines for p in out]
        real_exact(out, s, limits)
        planned.extend(i for i, p in enumerate(out) if p.lines is not before[i])
        assert len(planned) == 1 and out[planned[0]].lines == [out[planned[0]].lines[0]]
        assert len(out[planned[0]].lines[0]) + 1 == limits.max_queued <= limits.max_line + 1

    def plan(*args: object, **kwargs: object) -> list[sim.ClientPlan]:
        real_plan(*args, **kwargs)  # type: ignore[arg-type]
        raise _Planned

    with monkeypatch.context() as m:
        m.setattr(sim, "_queue_exact", exact)
        m.setattr(sim, "scenario_plan", plan)
        with pytest.raises(_Planned):
            simulate(100, 10, model="routines", seed=seed)
    return planned[0] if planned else -1


@pytest.mark.parametrize("seed", _EXACT_SEEDS)
def test_simulate_queue_edges_plans_a_line_of_exactly_max_queued_bytes(seed: int,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert "queue_edges" in swarm_features(seed)
    assert _exact_client(seed, monkeypatch) >= 0


@pytest.mark.parametrize("seed", _EXACT_SEEDS)
def test_simulate_queue_edges_finds_a_cut_off_at_exactly_max_queued(seed: int,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """queue-limit-off-by-one cuts off the client owed exactly max_queued bytes (its only line, one message):
    a reset the limit does not allow.  (Proved by breaking each part (search39): without the exact client the
    mutant passes seeds 0-7 and 39; with the cut-off check counting the error line for every echo client, as
    before, it passes seeds 7, 39, 113 and 174, the exact client's reset allowed.)"""
    from tests.mutants.red4_mutants import QueueLimitOffByOne

    r = simulate(100, 10, model="routines", seed=seed, server_class=QueueLimitOffByOne)
    i = _exact_client(seed, monkeypatch)
    assert i >= 0 and not r.ok
    assert any(e.startswith(f"client {i} ") and "connection reset by the server (0 of 1 replies)" in e
               for e in r.errors), r.errors


@pytest.mark.parametrize("model", ["events", "routines", "iocp"])
@pytest.mark.parametrize("seed", _EXACT_SEEDS)
def test_simulate_queue_exact_passes_the_correct_servers(model: str, seed: int) -> None:
    r = simulate(100, 10, model=model, seed=seed)
    assert r.ok, r.errors
