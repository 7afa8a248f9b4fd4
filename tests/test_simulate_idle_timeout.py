"""``ovserver simulate``'s idle_timeout swarm feature: the server closes clients
idle for a time-out (``ovserver serve --idle-timeout-ms``), one to three
idlers stay connected, reading, until it does, and must be closed within the
time-out and a little; any other client the server closes is timed out as due
only when it has been idle that long by its own account."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from ovserver import simulate
from ovserver._iocp import IocpServer
from ovserver._simulate import IDLE_MASKS, IDLE_TIMEOUTS_MS, IDLERS, SimulationReport, scenario_plan, swarm_features
from tests.test_simulate_idle_slow import _seeds_with

#: (without the features that draw the run's limits: the plans below are drawn with the default ones)
_SEEDS = [s for s in range(1000) if "idle_timeout" in swarm_features(s) and not set(swarm_features(s)) & {
    *IDLE_MASKS, "back_pressure", "tight_limits", "stuck_readers", "slow_readers"}][:3]


def test_the_feature_is_the_last_and_keeps_other_runs() -> None:
    """Drawn last, from random sources of its own: a seed that does not draw it plans what it planned (its
    plans equal those without the feature), and so does one whose masks switch it off."""
    masked = _seeds_with("idle_timeout", "accept_faults")[0]
    for seed in (_seeds_with(without=("idle_timeout",))[0], masked):
        features = swarm_features(seed)
        assert scenario_plan(50, 4, seed, features=features) == scenario_plan(
            50, 4, seed, features=tuple(f for f in features if f != "idle_timeout"))
    r = simulate(20, 2, seed=masked)
    assert r.ok, r.errors
    assert r.idle_timeout_ms == 0


def test_idlers_are_drawn_and_timed_out_as_due() -> None:
    """On the seeds that draw it (not with back-pressure nor its masks), the server has one of the time-outs,
    one to three clients are idlers (chat: silent), and a correct server times them out: each is counted,
    and the server counts at least as many.  Proven by not drawing idlers in _idlers: none planned."""
    assert len(_SEEDS) == 3
    for seed in _SEEDS:
        for mode in ("echo", "chat"):
            plans = scenario_plan(100, 10, seed, features=swarm_features(seed), chat=mode == "chat")
            idlers = [p for p in plans if p.idle]
            assert IDLERS[0] <= len(idlers) <= IDLERS[1]  # (none when no client fits: not on these seeds)
            assert mode == "echo" or all(not p.lines and not p.chunks for p in idlers)
            r = simulate(100, 10, model="iocp", mode=mode, seed=seed)
            assert r.ok, r.errors
            assert r.idle_timeout_ms in IDLE_TIMEOUTS_MS
            assert r.timed_out >= 1 and r.server.timed_out >= r.timed_out
            assert f"idle time-out {r.idle_timeout_ms} ms" in str(r)


class _NeverWakes(IocpServer):
    """The controller is not woken when a worker gives a connection the first deadline (as
    tests/mutants/red6_mutants.py's iocp-deadline-not-woken): idle clients are never timed out."""

    def _idle_armed(self) -> None:
        pass


def _run(server_class: type[Any], **kw: Any) -> SimulationReport:
    return simulate(20, 2, seed=_SEEDS[0], server_class=server_class, **kw)


def test_an_idler_not_timed_out_fails() -> None:
    """Proven by returning at once from _Client._idle_watch: the run passes."""
    r = _run(_NeverWakes)
    assert not r.ok
    assert any("not closed by the server's idle time-out" in e for e in r.errors), r.errors
    assert _run(IocpServer).ok


def test_a_client_timed_out_early_fails() -> None:
    """A server whose time-out is a tenth of what simulate told it closes clients that are not idle that long:
    not due.  Proven by _timed_out_as_due returning True whenever the time-out is on: the run passes."""

    class Early(IocpServer):
        def __init__(self, ws: Any, config: Any) -> None:
            super().__init__(ws, config)
            self.config = replace(config, idle_timeout_ms=10)  # (simulate checks against what it told it)

    r = _run(Early, idle_timeout_ms=1000)
    assert not r.ok
    assert any("connection closed by the server" in e for e in r.errors), r.errors
    assert _run(IocpServer, idle_timeout_ms=1000).ok


def test_plain_traffic_has_no_idle_time_out() -> None:
    r = simulate(20, 2, seed=_SEEDS[0], plain=True)
    assert r.ok and r.idle_timeout_ms == 0 and r.traffic == "plain"


def test_the_command_takes_serves_option(capsys: pytest.CaptureFixture[str]) -> None:
    """Proven by dropping idle_timeout_ms from the simulate call in ovserver.__main__._simulate: the
    limits line names no time-out."""
    from ovserver.__main__ import main

    assert main(["simulate", "--plain", "--clients", "3", "--messages", "1", "--idle-timeout-ms", "700"]) == 0
    assert capsys.readouterr().out.splitlines()[2].endswith(", idle time-out 700 ms")
    assert main(["simulate", "--clients", "3", "--messages", "1", "--seed", str(_SEEDS[0]),
                 "--idle-timeout-ms", "0"]) == 0
    assert "idle time-out" not in capsys.readouterr().out.splitlines()[2]


#: Seeds whose server has an idle time-out and that draw idle_talkers (measured: 62 T=1000 ms, 159 T=100 ms,
#: 319 T=1000 ms; the first that find each of tests/mutants/idle_mutants.py's three activity mutants).
_TALKER_SEEDS = (62, 159, 319)


def test_idle_talkers_are_the_last_feature_and_keep_other_runs() -> None:
    """Drawn last, from a random source of its own, only with the run's idle time-out: without it (0, or a
    seed that does not draw the feature) the plans are what they were."""
    from ovserver._simulate import FEATURES, IDLE_EARLY_NS

    # (the two shapes after it: shapes29; queue_edges: qlimit31)
    assert FEATURES[-4:] == ("idle_talkers", "hangup_edges", "deaf_drains", "queue_edges")
    planned = 0
    for seed in _TALKER_SEEDS:
        features = swarm_features(seed)
        assert "idle_talkers" in features and "idle_timeout" in features
        without = tuple(f for f in features if f != "idle_talkers")
        assert scenario_plan(50, 4, seed, features=features) == scenario_plan(50, 4, seed, features=without)
        plans = scenario_plan(100, 10, seed, features=features, idle_timeout_ms=100)
        talkers = [p for p in plans if p.talk]
        # (none when no plain client is left: with the default limits, seed 62's other features take them all)
        assert len(talkers) <= 3 and all(p.idle for p in talkers)
        planned += len(talkers)
        if not talkers:
            assert plans == scenario_plan(100, 10, seed, features=without, idle_timeout_ms=100)
        for p in talkers:  # every line's newline just under the time-out after the one before
            assert all(gap < 100 * 1_000_000 - IDLE_EARLY_NS for gap in p.pauses_ns)
    assert planned


@pytest.mark.parametrize("model", ["events", "routines", "iocp"])
@pytest.mark.parametrize("mode", ["echo", "chat"])
def test_correct_servers_keep_idle_talkers_and_time_them_out(model: str, mode: str) -> None:
    """A talker whose lines come just under the time-out apart is kept; a slowloris is closed mid-line; each
    is closed once it goes quiet.  (The correct servers on every seed of 0-599 that draws the feature.)"""
    for seed in _TALKER_SEEDS:
        r = simulate(100, 10, model=model, mode=mode, seed=seed)
        assert r.ok, (seed, r.errors)
        assert r.idle_timeout_ms and r.timed_out >= 1


@pytest.mark.parametrize(("name", "mode", "seed"), [("idle-clock-on-send-only", "chat", 62),
                                                    ("idle-newline-from-index-one", "chat", 159),
                                                    ("idle-clock-on-partial-data", "echo", 385)])
def test_idle_talkers_find_the_activity_mutants(name: str, mode: str, seed: int) -> None:
    """tests/mutants/idle_mutants.py's three activity mutants, each on the first seed that finds it (for
    idle-clock-on-partial-data 385 since shapes29: seed 319 draws the swarm's deaf_drains now,
    whose run passes the mutant; 385, the next idle talkers' seed that finds it, draws both).  Proven
    by dropping idle_talkers from the plans (_swarm_plan): each run passes (the correct server's does)."""
    from tests.mutants import MUTANTS

    mutant = next(m for m in MUTANTS if m.name == name)
    r = simulate(100, 10, mode=mode, seed=seed, server_class=mutant.server)
    assert not r.ok


def test_a_line_still_behind_the_window_does_not_restart_the_idle_account() -> None:
    """Seed 2708, events, echo (found by simidle34's false-alarm sweep, also on main before it): a client sends
    a long line through a small window while it reads a 64 KiB reply slowly; the server, its last line taken
    and its last send completed over 100 ms before, resets it at its idle time-out (a send in flight), as the
    contract allows ("Idle clients" in ovserver/_core.py).  The line the client had sent last, 0.7 ms before,
    was still queued behind the window: only lines that have arrived at the server count in its own account
    (``_Client._look_arrived``); counting every line sent made this a false alarm."""
    r = simulate(100, 10, model="events", mode="echo", seed=2708)
    assert r.ok, r.errors
    assert r.timed_out >= 1 and r.idle_timeout_ms == 100, (r.timed_out, r.idle_timeout_ms)
