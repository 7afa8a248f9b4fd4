"""``ovserver simulate``'s idle time-out with back-pressure (issue 10, simbp35): in BP_IDLE_ODDS of the runs that
draw both idle_timeout and back_pressure (from a random source of its own), the server has the idle time-out too,
and in echo a held-back idler (``_held_back_idler``) is held back across an idle check, then read on, then idle:
a server that reads it on without its idle deadline (resume-keeps-idle-clock) keeps it.  And the idle account's
reads count only bytes of a server send that has completed (``_Client._of_a_completed_send``)."""

from __future__ import annotations

import pytest

from fakewinsock import FakeConfig
from ovserver import Limits, simulate
from ovserver._simulate import BP_IDLE_ODDS, IDLE_MASKS, IDLE_TIMEOUTS_MS, _idle_drawn, scenario_plan, swarm_features
from tests.mutants import MUTANTS

#: The first seed whose run draws the idle time-out with back-pressure and finds resume-keeps-idle-clock
#: (measured by simbp35: also 3009 and 4260 of the 206 seeds of 0-5999 that draw the combination).
_FINDS = 582


def _both(seed: int) -> bool:
    f = set(swarm_features(seed))
    return {"idle_timeout", "back_pressure"} <= f and not f.intersection(IDLE_MASKS)


def test_the_combination_is_drawn_in_some_runs_and_keeps_the_others() -> None:
    """Of the runs that draw both features (and no mask), some have the idle time-out (about BP_IDLE_ODDS of
    them), the others plan what they planned before: their plans equal those without idle_timeout.  Proven
    by BP_IDLE_ODDS 0 (none drawn) and by drawing idlers in every run with back-pressure (plans moved)."""
    both = [s for s in range(1000) if _both(s)]
    drawn = [s for s in both if _idle_drawn(swarm_features(s), Limits(high_water=1), s)]
    assert 0.25 < len(drawn) / len(both) < 0.75 and BP_IDLE_ODDS == 0.5, (len(drawn), len(both))
    assert _FINDS in drawn
    kept = next(s for s in both if s not in drawn)
    features = swarm_features(kept)
    limits = Limits(high_water=64 * 1024)
    assert scenario_plan(100, 10, kept, features=features, limits=limits) == scenario_plan(
        100, 10, kept, features=tuple(f for f in features if f != "idle_timeout"), limits=limits)
    r = simulate(20, 2, seed=kept)
    assert r.ok and r.idle_timeout_ms == 0 and r.server_limits.high_water, r.errors


def test_a_held_back_idler_is_held_back_then_timed_out() -> None:
    """Seed _FINDS, echo: the server has both, the held-back idler (the only idler with a read pause over the
    time-out) is planned, the server held clients back, and a correct server times the idlers out as due."""
    r = simulate(100, 10, model="iocp", mode="echo", seed=_FINDS)
    assert r.ok, r.errors
    assert r.idle_timeout_ms in IDLE_TIMEOUTS_MS and r.server_limits.high_water and r.stall_timeout_ms
    assert r.server.hub.paused > 0 and r.timed_out >= 1
    plans = scenario_plan(100, 10, _FINDS, features=swarm_features(_FINDS), limits=r.server_limits,
                          idle_timeout_ms=r.idle_timeout_ms)
    held = [p for p in plans if p.idle and p.read_pause_ns > r.idle_timeout_ms * 1_000_000]
    assert len(held) == 1 and sum(map(len, held[0].chunks)) > r.server_limits.high_water


def test_resume_keeps_idle_clock_is_found() -> None:
    """The eleventh red team's resume-keeps-idle-clock keeps the held-back idler, read on without its idle
    deadline: the idle watch fails it.  Proven by not planning the held-back idler (the slowloris instead,
    whose lines re-arm the deadline every time-out): the run passes."""
    mutant = next(m for m in MUTANTS if m.name == "resume-keeps-idle-clock")
    r = simulate(100, 10, mode="echo", seed=_FINDS, server_class=mutant.server)
    assert not r.ok
    assert any("not closed by the server's idle time-out" in e for e in r.errors), r.errors


@pytest.mark.parametrize("seed", [1, 2])
def test_bytes_of_a_send_in_flight_do_not_restart_the_idle_account(seed: int) -> None:
    """Chat on a slow network (a window of 256 bytes, 20 ms each way): a member that has said all it had to
    say reads the others' lines all the time, but the server's send to it, most of a receive's worth routed
    at once, takes longer than the idle time-out to complete; the server closes it as idle (a reset: the
    send in flight), as the contract allows ("Idle clients" in ovserver/_core.py: no send completed).  Its
    reads of that send's bytes say nothing of when the server's last send completed.  Proven by counting
    every read in the account (``_of_a_completed_send`` always True): "idle by its own account 49.6 ms"."""
    r = simulate(5, 5, mode="chat", seed=seed, plain=True, idle_timeout_ms=100,
                 fake_config=FakeConfig(window=256, latency=(20_000_000, 20_000_000)))
    assert r.ok, r.errors
    assert r.timed_out >= 1 and r.server.timed_out >= r.timed_out

