"""``ovserver simulate``'s back_pressure and full_groups swarm features, and its
hang-up check (issue 10): what each draws, that the correct servers pass
them, and that each reaches the bugs it is for (the planted bugs of
tests/mutants/)."""

from __future__ import annotations

import pytest

from ovserver import Limits, simulate
from ovserver._core import DEFAULT_STALL_TIMEOUT_MS, _Io, default_high_water
from ovserver._events import EventServer
from ovserver._simulate import (
    _MS,
    BACK_PRESSURE_MARKS,
    FEATURES,
    STALL_TIMEOUTS_MS,
    scenario_plan,
    swarm_features,
)
from tests.mutants.red6_mutants import HangupFinResetsErrorLine
from tests.test_simulate_idle_slow import _seeds_with
from tests.test_simulate_swarm import found_by_simulate

KIB = 1024


def test_the_newest_features_are_drawn_last() -> None:
    """Appended, so that every seed keeps the features it drew before them
    (each has a random source of its own: a seed without them runs as before;
    measured on seeds 0-99, every model and mode: byte-identical reports)."""
    assert FEATURES[-11:-7] == ("back_pressure", "full_groups", "accepts", "accept_bursts")  # (then idle_timeout...)


@pytest.mark.parametrize("mode", ["echo", "chat"])
def test_back_pressure_is_drawn_as_serve_runs_unless_given(mode: str) -> None:
    seed = _seeds_with("back_pressure")[0]
    r = simulate(5, 1, mode=mode, seed=seed)
    assert r.ok, r.errors
    mark = r.server_limits.high_water
    if mode == "echo":  # serve's default
        assert mark == default_high_water("echo", r.server_limits.max_queued) > 0
    else:
        assert mark in BACK_PRESSURE_MARKS
    assert r.stall_timeout_ms in STALL_TIMEOUTS_MS
    assert f", back-pressure at {mark} (stall time-out {r.stall_timeout_ms} ms)" in str(r)
    off = simulate(5, 1, mode=mode, seed=seed, high_water=0)
    assert off.server_limits.high_water == off.stall_timeout_ms == 0 and "back-pressure" not in str(off)
    assert simulate(5, 1, mode=mode, seed=seed, stall_timeout_ms=700).stall_timeout_ms == 700
    without = _seeds_with(without=("back_pressure",))[0]
    assert simulate(5, 1, mode=mode, seed=without).server_limits.high_water == 0
    assert simulate(5, 1, mode=mode, seed=seed, plain=True).server_limits.high_water == 0
    given = simulate(5, 1, mode=mode, seed=without, high_water=5000)
    assert (given.server_limits.high_water, given.stall_timeout_ms) == (5000, DEFAULT_STALL_TIMEOUT_MS)
    with pytest.raises(ValueError, match="high_water"):
        simulate(5, 1, mode=mode, seed=seed, high_water=-1)
    with pytest.raises(ValueError, match="high_water"):  # the given limits' max_queued is not lowered
        simulate(5, 1, mode=mode, seed=seed, high_water=5000, limits=Limits(max_queued=4096))


def test_a_stalled_client_is_cut_off_as_due() -> None:
    """With back-pressure a client whose queue stays over the mark for the
    stall time-out is cut off: expected, counted, no error.  Seed 14 (echo,
    mark 64 KiB, stall time-out 50 ms) stalls three clients.  Proven by
    judging a reset due only over max_queued, as before back-pressure: three
    "connection reset by the server" errors."""
    r = simulate(100, 10, seed=14)
    assert r.ok, r.errors
    assert r.stall_timeout_ms == 50 and r.server.stalled >= 1 and r.cut_off >= r.server.stalled


def test_full_groups_fill_a_group_with_a_wave_and_hold_its_places() -> None:
    seed = _seeds_with("full_groups", without=("tight_limits", "few_clients"))[0]
    window = 16 * KIB
    plans = scenario_plan(100, 10, seed, features=swarm_features(seed), limits=Limits(), window=window)
    wave = [p for p in plans if not p.after_wave]
    assert len(wave) == 63 and all(p.arrival_ns <= _MS for p in wave)
    enders = [p for p in wave if p.hold_reads]
    assert 2 <= len(enders) <= 6
    for p in enders:  # echo: more replies than the window, not enough to be over half the output limit
        assert p.half_close and not p.lurk and p.reset_at < 0 and not p.stay_ns and p.too_long < 0
        assert window < sum(len(c) for c in p.chunks) <= window + Limits().max_queued // 2 + 64 * KIB
    assert all(p.lurk and not p.chunks for p in wave if not p.hold_reads)
    # Not when the clients do not all fit at once: the plans are the lurkers' and others' as before.
    few = scenario_plan(100, 10, seed, features=swarm_features(seed), limits=Limits(max_clients=99))
    assert not any(p.after_wave or p.hold_reads for p in few)


@pytest.mark.parametrize("model", ["events", "routines", "iocp"])
@pytest.mark.parametrize("mode", ["echo", "chat"])
def test_correct_servers_pass_full_groups(model: str, mode: str) -> None:
    seed = _seeds_with("full_groups", without=("tight_limits", "few_clients"))[0]
    r = simulate(100, 10, model=model, mode=mode, seed=seed)
    assert r.ok, r.errors
    if model == "events":
        assert r.server.threads_started >= 2  # a second group


@pytest.mark.parametrize(("name", "seed", "error"), [
    # full_groups: a group full of connections, some of them ended, while others arrive
    ("full-check-counts-members", 0, "WSAWaitForMultipleEvents failed"),
    # full_groups: the first group silent while the second talks
    ("other-groups-not-woken", 0, "reached another client at"),
    # the hang-up check: the client waits for the server's FIN after the error line
    ("no-update-accept-context", 2, "not the server's FIN"),
    # the causes checked against the server's counts: a reset counted as a graceful end
    ("failed-empty-receive-is-eof", 0, "clients sent a FIN"),
])
def test_a_feature_reaches_its_bug(name: str, seed: int, error: str) -> None:
    found = found_by_simulate(name, seed)
    assert error in found, found


class _ClosesOneClient(EventServer):
    """A bug: once 5000 bytes have come in, the connection of the receive that
    completes is closed abortively, for no cause."""

    done = False

    def _completed(self, io: _Io, error: int, nbytes: int) -> None:
        conn = io.conn
        super()._completed(io, error, nbytes)
        if (not self.done and io.kind == "recv" and nbytes and conn is not None and not conn.closed
                and self.stats.bytes_received > 5000):
            self.done = True
            self._close(conn, abort=True)


def test_a_client_ended_for_no_cause_does_not_pass_for_a_drop_or_a_cut_off() -> None:
    """A client reset unasked passes the per-client judge when an injected
    failure would allow a drop, or when its loose bound (bytes in flight and
    in its window count) allows a cut-off; the server's counts of those causes
    do not match then.  Seed 9 (injections, back-pressure at 16 KiB): the
    buggy close passes for a cut-off.  Proven by removing _check_causes: the
    run is ok."""
    r = simulate(30, 5, seed=9, server_class=_ClosesOneClient)
    assert any("ended for no cause" in e for e in r.errors), r.errors
    assert simulate(30, 5, seed=9).ok


def test_a_hung_up_clients_reset_is_not_covered_by_its_hang_up() -> None:
    """A hung-up client is closed gracefully once its error line is out and its FIN read, or cut off (and
    counted so) for sending on after the error line or staying over the mark: a reset it takes for a cut-off
    (more than max_queued may have waited for it) must match a cut-off the server counted, not its hang-up.
    hangup-fin-resets-error-line (a hung-up client closed at once at its FIN, its error line dropped: a reset)
    passes the per-client judge on seed 31 (echo, tight limits, piped clients); the counts find it.  Proven by
    counting hang-ups in the bound again (as before): the run is ok."""
    r = simulate(100, 10, seed=31, server_class=HangupFinResetsErrorLine)
    assert any("ended for no cause" in e for e in r.errors), r.errors
    assert simulate(100, 10, seed=31).ok
