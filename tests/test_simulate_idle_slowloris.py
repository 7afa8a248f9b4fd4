"""``ovserver simulate``'s idle time-out without idle_talkers: one slowloris all the same (IDLE_SLOWLORIS),
and the checks that judge idle clients (an idler or talker is dropped only by a failure injected into its own
connection; an echo idler owed nothing is closed gracefully)."""

from __future__ import annotations

import pytest

from fakewinsock import WSABUF, WSAOVERLAPPED, FakeWinsock
from fakewinsock.constants import FALSE, SOCKET_ERROR, WSA_INFINITE, WSAENOBUFS
from ovserver import simulate
from ovserver._simulate import IDLE_MASKS, IDLE_TIMEOUTS_MS, scenario_plan, swarm_features
from tests.mutants import MUTANTS

_MS = 1_000_000
#: Seeds whose server has the swarm's idle time-out without idle_talkers (none of back-pressure and the idle
#: masks): 5, 12 and 17 of 0-19.
_SEEDS = [s for s in range(20) if "idle_timeout" in (f := set(swarm_features(s))) and "idle_talkers" not in f
          and not f & {*IDLE_MASKS, "back_pressure"}]


def test_the_seeds() -> None:
    assert _SEEDS == [5, 12, 17]


def test_an_injected_failure_is_told_by_its_connection() -> None:
    """FakeWinsock.injected_failure_on: a receive failed by inject_error names the connection it failed on, not
    one that merely connected.  Proven by not recording it (IoCalls._io_precheck): the second assertion fails."""
    from tests.test_fake_regressions import server

    ws = FakeWinsock(seed=1)
    lst, acc, ov = server(ws)
    p, other = ws.peer(), ws.peer()
    p.connect("127.0.0.1", 5000)
    ws.WSAWaitForMultipleEvents(1, [ov.hEvent], FALSE, WSA_INFINITE, FALSE)
    rov = WSAOVERLAPPED()
    ws.inject_error("WSARecv", WSAENOBUFS, 1)
    assert not ws.injected_failure_on(p)
    assert ws.WSARecv(acc, [WSABUF(16, bytearray(16))], 1, 0, rov, None)[0] == SOCKET_ERROR
    assert ws.WSAGetLastError() == WSAENOBUFS
    assert ws.injected_failure_on(p) and not ws.injected_failure_on(other)
    ws.closesocket(acc)
    ws.closesocket(lst)


def test_one_slowloris_is_drawn_with_the_idle_time_out() -> None:
    """A run that draws the idle time-out without idle_talkers has one talker, a slowloris: a line a byte at
    a time at the end, a quarter of the time-out apart; without the time-out (0: not drawn) its plans are
    what they were.  Proven by not drawing it (_swarm_plan): no talker."""
    for seed in _SEEDS:
        features = swarm_features(seed)
        for chat in (False, True):
            for limit_ms in IDLE_TIMEOUTS_MS:
                plans = scenario_plan(100, 10, seed, features=features, chat=chat, idle_timeout_ms=limit_ms)
                talkers = [p for p in plans if p.talk]
                # (with the default limits no plain client is left for it on seeds 12 and 17: lurkers, full groups)
                assert len(talkers) == (seed == 5) and all(p.idle for p in talkers), (seed, chat, limit_ms)
                if not talkers:
                    continue
                p = talkers[0]
                dribble = [c for c in p.chunks if len(c) == 1 and c != b"\n"]
                assert len(dribble) * limit_ms * _MS // 4 > limit_ms * _MS, (seed, chat)  # longer than the time-out
                assert p.pauses_ns[-1] == limit_ms * _MS // 4
    # (a seed without the feature: the time-out given changes nothing; with it, the shapes drawn after it take
    # their clients from the others: the run moves)
    other = next(s for s in range(20) if "idle_timeout" not in swarm_features(s))
    assert scenario_plan(100, 10, other, features=swarm_features(other), idle_timeout_ms=100) == scenario_plan(
        100, 10, other, features=swarm_features(other))


@pytest.mark.parametrize("mode", ["echo", "chat"])
@pytest.mark.parametrize("model", ["events", "routines", "iocp"])
def test_correct_servers_pass(model: str, mode: str) -> None:
    """No false alarm on the seeds whose runs have it (5 and 17: with their limits seed 17 has one too; and on
    every seed of 0-2999 that draws the idle time-out, measured when it came: simidle34)."""
    for seed in (5, 17):
        r = simulate(100, 10, model=model, mode=mode, seed=seed)
        assert r.ok, (seed, r.errors)


@pytest.mark.parametrize(("name", "mode", "expect"), [
    ("idle-clock-on-send-only", "chat", "connection closed by the server"),
    ("idle-newline-from-index-one", "chat", "connection closed by the server"),
    ("idle-newline-off-by-one", "chat", "connection closed by the server"),
    ("idle-clock-on-partial-data", "echo", "not closed by the server's idle time-out"),
    ("idle-clock-any-bytes", "echo", "not closed by the server's idle time-out"),
    ("idle-close-abortive", "echo", "an idle connection is closed gracefully"),
])
def test_seed_5_finds_the_idle_mutants(name: str, mode: str, expect: str) -> None:
    """Seed 5 (1000 ms, with injected failures): the slowloris finds the activity mutants (chat: it talks alone
    once the others are done, its lines' newlines at the end or alone in a receive; echo: its dribble), the
    FIN check the abortive idle close.  Proven by dropping the slowloris (_swarm_plan: the first five pass), by
    letting an injected failure elsewhere drop a talker (server_closed: the chat three pass), and by taking any
    reset at the idle time-out as due (server_closed: idle-close-abortive passes)."""
    mutant = next(m for m in MUTANTS if m.name == name)
    r = simulate(100, 10, mode=mode, seed=5, server_class=mutant.server)
    assert not r.ok and expect in r.errors[0], r.errors
