"""``ovserver simulate``'s late swarm features (line_cuts, stuck_readers,
early_stop, accept_faults, few_clients), its call budget and its quiet-second
check: what each draws, that the correct
servers pass them, and that each reaches the bug it is for (the planted bugs
of tests/mutants/)."""

from __future__ import annotations

import pytest

from ovserver import Limits, simulate
from ovserver._simulate import LATE_FEATURES, STOP_LIMIT_NS, scenario_plan, swarm_features
from tests.mutants import MUTANTS

MS = 1_000_000


def _seed_with(*features: str) -> int:
    return next(s for s in range(100) if set(features) <= set(swarm_features(s)))


def test_line_cuts_end_a_send_right_before_each_long_lines_newline() -> None:
    seed = _seed_with("line_cuts", "long_lines")
    plans = scenario_plan(100, 10, seed, features=swarm_features(seed), limits=Limits(max_line=100))
    checked = 0
    for p in plans:
        if p.hold_reads:
            continue  # (full_groups' enders send their lines in bulk, uncut)
        stream = b"".join(p.chunks)
        ends = {sum(len(c) for c in p.chunks[:j + 1]): p.pauses_ns[j] for j in range(len(p.chunks))}
        start = 0
        for line in stream.split(b"\n")[:-1]:
            nl = start + len(line)
            if len(line) >= 100:
                checked += 1
                assert nl in ends and ends[nl] >= 50_000, (p.lines, nl)  # cut before its newline, then a pause
            start = nl + 1
    assert checked > 10


def test_stuck_readers_reset_a_while_after_their_last_send() -> None:
    seed = _seed_with("stuck_readers")
    stuck = [p for p in scenario_plan(100, 10, seed, features=swarm_features(seed)) if p.stuck]
    assert stuck
    for p in stuck:
        assert p.reset_at == len(p.chunks) and 20 * MS <= p.reset_delay_ns <= 200 * MS and not p.half_close


def test_late_features_are_the_last_ones() -> None:
    """Each run draws its features in order: the late ones, last (then back_pressure, full_groups,
    accepts, accept_bursts, idle_timeout, stop_arrivals, piped, idle_talkers, hangup_edges, deaf_drains and
    queue_edges, the newest), leave the earlier draws as they were."""
    from ovserver._simulate import FEATURES

    assert FEATURES[-len(LATE_FEATURES) - 11:-11] == LATE_FEATURES
    assert FEATURES[-11:] == ("back_pressure", "full_groups", "accepts", "accept_bursts", "idle_timeout",
                              "stop_arrivals", "piped", "idle_talkers", "hangup_edges", "deaf_drains", "queue_edges")


@pytest.mark.parametrize("model", ["events", "routines", "iocp"])
@pytest.mark.parametrize("mode", ["echo", "chat"])
def test_correct_servers_pass_every_late_feature(model: str, mode: str) -> None:
    for seed in sorted({_seed_with(f) for f in LATE_FEATURES}):
        r = simulate(100, 10, model=model, mode=mode, seed=seed)
        assert r.ok, (seed, r.traffic, r.errors)


def test_early_stop_comes_when_only_the_clients_that_stay_are_left() -> None:
    # (not with slow readers: the lurkers wait for them, and the stop for the lurkers, which may take longer
    # than the others stay: seed 0's stop comes at 5.7 s, after its slow reader, and finds nobody)
    # (nor with full_groups: its wave may take the clients that stay)
    seed = next(s for s in range(100) if "early_stop" in swarm_features(s)
                and not {"slow_readers", "full_groups"} & set(swarm_features(s)))
    r = simulate(100, 10, seed=seed)
    assert r.ok, r.errors
    assert r.stop_at_ns is not None and 0 <= r.stop_took_ns < STOP_LIMIT_NS
    assert r.stopped > 0 and r.server.closed_at_stop > 0  # the clients that stayed, closed by the stop


def _mutant(name: str) -> type:
    return next(m.server for m in MUTANTS if m.name == name)


def test_the_quiet_second_sees_a_socket_held_after_its_client_reset() -> None:
    """A server that skips 10054 (the seed's problem 3) keeps the socket of a
    client that reset: the quiet second after every client is done finds it."""
    r = simulate(100, 10, seed=7, server_class=_mutant("reset-is-not-an-exit"))
    assert any("gone (it reset), but 1 s later the server still holds its socket" in e for e in r.errors), r.errors


@pytest.mark.parametrize(("name", "seed", "error"), [
    # early_stop: two stayers in a group at the stop (seed 0 until its lurkers and slow readers, 2026-12-04)
    ("stop-closes-while-iterating", 1, "LeakError"),
    ("iocp-drain-not-signalled", 0, "did not stop within 1 s"),  # early_stop, and the 1 s limit
    ("chat-broadcast-live-dict", 7, "dictionary changed size during iteration"),  # stuck_readers
    ("partial-at-limit-refused", 2, "line longer than 100 bytes"),  # line_cuts
    ("accept-retry-not-armed", 1, "not done 600 s after arriving"),  # accept_faults: AcceptEx fails at the start
    ("resume-before-freeing", 11, "not done 600 s after arriving"),  # few_clients: a client limit of 1
    # the call budget: it spins while the server is full (seed 0 until accept_bursts, 2026-12-05: its run
    # with the bursts' fake ends without the spin)
    ("wake-event-not-reset", 3, "BusyLoopError"),
    ("rotated-index-ignored", 0, "BusyLoopError"),  # the call budget: it spins past the signalled client
])
def test_a_late_feature_reaches_its_bug(name: str, seed: int, error: str) -> None:
    found = found_by_simulate(name, seed)
    assert error in found, found


def found_by_simulate(name: str, seed: int) -> str:
    """What ``simulate`` (100 clients x 10 lines, the mutant's mode) finds on mutant ``name``: its errors,
    or what the fake or the server raised ("" if nothing)."""
    mutant = next(m for m in MUTANTS if m.name == name)
    mode = "chat" if mutant.caught_by.endswith("chat") else "echo"
    try:
        r = simulate(100, 10, mode=mode, seed=seed, server_class=mutant.server)
    except Exception as e:  # noqa: BLE001 (the fake or the server raised: that is the finding)
        return f"{type(e).__name__}: {e}"
    return " / ".join(r.errors)
