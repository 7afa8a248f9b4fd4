"""``ovserver simulate``'s lurkers, slow_readers and hung_readers swarm
features (issue 10): what each draws, that the correct servers pass them, and
that each reaches the bugs it is for (the planted bugs of tests/mutants/)."""

from __future__ import annotations

import re

import pytest

from ovserver import Limits, simulate
from ovserver._simulate import _MS, LATE_FEATURES, _Witness, scenario_plan, swarm_features
from tests.mutants import MUTANTS
from tests.test_simulate_swarm import found_by_simulate

KIB = 1024


def _seeds_with(*features: str, without: tuple[str, ...] = ()) -> list[int]:
    return [s for s in range(100)
            if set(features) <= set(swarm_features(s)) and not set(without) & set(swarm_features(s))]


def test_the_new_features_are_late_ones() -> None:
    assert LATE_FEATURES[-3:] == ("lurkers", "slow_readers", "hung_readers")


def test_runs_without_the_new_features_draw_what_they_drew() -> None:
    """Each new feature has a random source of its own: a seed without them
    plans what it planned before them (the plans below were those of main
    before the new features: a digest of seed 7's, which has none of them; since shapes29 it draws
    hangup_edges, one of the newer features, left out here as the three were then; queue_edges too, since qlimit31)."""
    seed = 7
    assert not {"lurkers", "slow_readers", "hung_readers"} & set(swarm_features(seed))
    features = tuple(f for f in swarm_features(seed) if f not in ("hangup_edges", "deaf_drains", "queue_edges"))
    # (the first 100: stop_arrivals' latecomers, which seed 7 draws, are clients besides them)
    plans = scenario_plan(100, 10, seed, features=features, limits=Limits(max_queued=32768))[:100]
    assert not any(p.lurk or p.hang or p.read_bytes or p.pipeline for p in plans)
    assert sum(len(c) for p in plans for c in p.chunks) == STREAM_BYTES_SEED_7
    assert sum(p.pauses_ns[j] for p in plans for j in range(len(p.chunks))) == PAUSES_NS_SEED_7


#: seed 7's plans (100 clients x 10 lines, limits max_queued=32768) before the new features, as measured
#: on main 5204d39.
STREAM_BYTES_SEED_7 = 175_682
PAUSES_NS_SEED_7 = 92_919_668


@pytest.mark.parametrize("chat", [False, True])
def test_lurkers_send_nothing_and_the_others_talk_at_a_persons_pace(chat: bool) -> None:
    seed = _seeds_with("lurkers", without=("tight_limits", "few_clients"))[0]
    plans = scenario_plan(100, 10, seed, features=swarm_features(seed), limits=Limits(), chat=chat)
    lurkers = [p for p in plans if p.lurk]
    assert len(lurkers) >= 10
    for p in lurkers:
        assert not p.lines and not p.chunks and p.reset_at < 0 and not p.half_close and not p.read_pause_ns
        assert not p.stuck and not p.stay_ns and p.too_long < 0
    paced = [t for p in plans if not p.lurk and not p.read_bytes and not p.hang
             for c, t in zip(p.chunks, p.pauses_ns, strict=True) if b"\n" in c and t >= 5 * _MS]
    assert len(paced) > 50


@pytest.mark.parametrize("max_clients", [1, 2, 3, 10])
def test_lurkers_and_hung_readers_leave_a_place_for_the_others(max_clients: int) -> None:
    for seed in _seeds_with("lurkers", "hung_readers")[:5]:
        plans = scenario_plan(100, 10, seed, features=swarm_features(seed), limits=Limits(max_clients=max_clients))
        assert sum(1 for p in plans if p.lurk or p.hang) <= max_clients - 1, seed


def test_slow_readers_send_whole_lines_and_keep_their_replies_under_the_limit() -> None:
    seed = _seeds_with("slow_readers")[0]
    limits = Limits(max_queued=256 * KIB)
    slow = [p for p in scenario_plan(100, 10, seed, features=swarm_features(seed), limits=limits) if p.read_bytes]
    assert slow
    for p in slow:
        assert p.read_bytes in (KIB, 4 * KIB, 16 * KIB) and 200_000 <= p.read_every_ns <= 2 * _MS
        assert p.pipeline == limits.max_queued - limits.max_queued // 16
        assert all(c.endswith(b"\n") for c in p.chunks)  # whole lines: every reply due comes back
        assert max(len(line) for line in p.lines) <= limits.max_queued // 8
        assert sum(len(c) for c in p.chunks) >= 3 * limits.max_queued
        assert not any(p.pauses_ns) and not p.read_pause_ns and p.reset_at < 0


def test_hung_readers_never_end_by_themselves_and_send_more_than_the_window() -> None:
    seed = _seeds_with("hung_readers")[0]
    window = 16 * KIB
    plans = scenario_plan(100, 10, seed, features=swarm_features(seed), limits=Limits(), window=window)
    hung = [p for p in plans if p.hang]
    assert 1 <= len(hung) <= 3
    for p in hung:
        assert p.stuck and p.reset_at < 0 and not p.half_close and not p.stay_ns and not p.read_pause_ns
        assert window < sum(len(c) for c in p.chunks) <= window + Limits().max_queued // 2 + 64 * KIB


@pytest.mark.parametrize("mode", ["echo", "chat"])
def test_the_stop_closes_the_hung_readers(mode: str) -> None:
    seed = next(s for s in _seeds_with("hung_readers", without=("early_stop",)))
    r = simulate(100, 10, mode=mode, seed=seed)
    assert r.ok, r.errors
    assert r.stop_at_ns is not None and r.stopped >= 1  # the stop, after the quiet second, found them


@pytest.mark.parametrize("model", ["events", "routines", "iocp"])
def test_correct_servers_pass_the_lurkers_checks_where_they_find_bugs(model: str) -> None:
    for seed in SEEDS_OF_OTHER_GROUPS_NOT_WOKEN:
        r = simulate(100, 10, model=model, mode="chat", seed=seed)
        assert r.ok, (seed, r.errors)


def _mutant(name: str) -> type:
    return next(m.server for m in MUTANTS if m.name == name)


#: Where other-groups-not-woken was found before full_groups: seed 9 (the end check finds it alone, without the
#: watch), 30 and 44 (the watch alone: the end check does not); seed 44's run changed with full_groups (not
#: found there since; seed 0 finds it, tests/test_simulate_groups_bp.py).  Since ovserver cancels a receive
#: before a graceful close (2026-12-05: Windows resets a close with a receive outstanding), seed 30's run
#: changed (not found there since); seed 38 finds it with the watch (a silent listener), also 33 and 41.
SEEDS_OF_OTHER_GROUPS_NOT_WOKEN = (9, 30, 38, 44)


@pytest.mark.parametrize(("name", "seed", "error"), [
    # lurkers, the watch: a line another client heard, queued for a client of an idle group
    ("other-groups-not-woken", 38, "reached another client at"),
    # slow_readers: output coalesced over many sends
    ("coalesced-send-drops-split-head", 0, "reply"),
    ("queued-count-leaks", 0, "connection reset by the server"),
    # hung_readers: a stop while a hung reader holds a send
    ("stop-skips-busy-sends", 4, "did not stop within 1 s"),  # (seed 2 until its back_pressure and full_groups)
    # hung_readers: one place of two held to the end, the other freed by each close while clients wait
    ("resume-before-freeing", 4, "not done 600 s after arriving"),
])
def test_a_new_feature_reaches_its_bug(name: str, seed: int, error: str) -> None:
    found = found_by_simulate(name, seed)
    assert error in found, found


def test_slow_readers_draw_an_output_limit_unless_one_is_given() -> None:
    seed = _seeds_with("slow_readers", without=("stuck_readers", "tight_limits"))[0]
    r = simulate(20, 2, seed=seed)
    assert r.ok, r.errors
    assert r.server_limits.max_queued in (256 * KIB, 512 * KIB)
    given = simulate(20, 2, seed=seed, limits=Limits(max_queued=300_000))
    assert given.ok and given.server_limits.max_queued == 300_000


def test_a_lurker_checks_at_the_end_that_it_heard_every_line_owed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the watch, the lurkers' end check alone finds the lines that
    other-groups-not-woken leaves queued for an idle group (seed 0, full_groups; seed 9 until it drew
    back_pressure: with its injections the end check owes only lines some early client heard; seed 0 with
    the lecture's one AcceptEx, as before it drew the accepts feature: with its 2 the check finds nothing)."""
    monkeypatch.setattr(_Witness, "watch", lambda self, _=None: None)
    r = simulate(100, 10, mode="chat", seed=0, server_class=_mutant("other-groups-not-woken"), accepts=1)
    # (the grace follows the fake's latency: 15 ms, 10.4 ms since seed 0 draws accept_bursts, which narrows it)
    assert any(re.search(r"\(a silent listener\): heard nothing for [\d.]+ ms while lines", e) for e in r.errors), \
        r.errors
    assert simulate(100, 10, mode="chat", seed=0).ok
