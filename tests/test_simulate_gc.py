"""``simulate`` keeps the cyclic garbage collector off the run's long-lived
objects (``_FrozenHeap``: ``gc.freeze`` once the plans are made and again as
each client joins, ``gc.unfreeze`` at the end), pauses it for the run
(``gc.disable``, ``gc.enable`` at the end), and leaves a caller that froze
objects itself or disabled the collector alone.  (What it saves is measured in
``benchmarks/bench_scale.py events-scaling``, never here.)"""

from __future__ import annotations

import gc
import random

import pytest

from fakewinsock import FakeWinsock
from ovserver import simulate
from ovserver._protocol import Mode
from ovserver._routines import RoutineServer
from ovserver._simulate import ClientPlan, SimulationReport, _Client, _Sim, client_script


def _frozen_while_clients_finish() -> tuple[list[int], bool]:
    """The freeze count each time a client finishes, and whether the run was good."""
    seen: list[int] = []
    r = simulate(12, 2, mode="chat", seed=1, plain=True, barrier=True,
                 progress=lambda done, total: seen.append(gc.get_freeze_count()))
    return seen, r.ok


def test_the_run_is_frozen_while_it_goes_and_released_after() -> None:
    assert gc.get_freeze_count() == 0
    seen, ok = _frozen_while_clients_finish()
    assert ok
    assert len(seen) == 12 and min(seen) > 0  # frozen: the plans, then the world as clients joined
    assert gc.get_freeze_count() == 0  # and put back at the end


def test_the_collector_is_paused_for_the_run_and_enabled_after() -> None:
    assert gc.isenabled()
    enabled: list[bool] = []
    r = simulate(12, 2, seed=1, plain=True, progress=lambda done, total: enabled.append(gc.isenabled()))
    assert r.ok
    assert enabled == [False] * 12  # paused while clients finish
    assert gc.isenabled()  # and enabled again at the end


def test_the_collector_is_enabled_again_when_the_run_raises() -> None:
    def fail(done: int, total: int) -> None:
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        simulate(3, 1, seed=1, plain=True, progress=fail)
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_a_callers_disabled_collector_stays_disabled() -> None:
    gc.disable()
    try:
        enabled: list[bool] = []
        r = simulate(12, 2, seed=1, plain=True, progress=lambda done, total: enabled.append(gc.isenabled()))
        assert r.ok
        assert set(enabled) == {False}
        assert not gc.isenabled()  # not enabled behind the caller's back
        assert gc.get_freeze_count() == 0  # (and nothing frozen: the caller manages the collector)
    finally:
        gc.enable()


def test_a_callers_own_freeze_is_left_alone() -> None:
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        seen, ok = _frozen_while_clients_finish()
        assert ok
        assert set(seen) == {before}  # nothing more frozen by the run
        assert gc.get_freeze_count() == before  # and nothing of the caller's unfrozen
    finally:
        gc.unfreeze()


def test_a_sim_used_outside_simulate_freezes_nothing() -> None:
    """Tests drive ``_Sim`` and ``_Client`` by hand: a client joining there must
    not freeze the test process's heap (nothing would release it)."""
    assert gc.get_freeze_count() == 0
    ws = FakeWinsock(seed=0)
    sim = _Sim(ws, RoutineServer(ws), SimulationReport("routines", "echo", 1, 2, 0, 0.0), Mode.ECHO, False, None)
    lines, chunks = client_script(random.Random(1), 2)
    c = _Client(sim, 0, ClientPlan(0, lines, chunks, [0] * len(chunks), -1))
    sim.clients = [c]
    try:
        sim.joined(c)
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
