"""``tools/false_alarms.py``, issue 10's "no false alarms" sweep: it must see every failure.

On the correct servers the sweep reports nothing, so what it counts is proven
here on a mutant: the recipe run goes on past a failing example (Hypothesis
would stop at the first) and records each one with what reproduces it.
"""

from __future__ import annotations

import pytest

import fakewinsock._fake
from benchmarks.bench_search import _recipe_clean
from fakewinsock.testing import (
    ChatModel,
    ClientFault,
    ClientScript,
    EchoModel,
    FaultPlan,
    Injection,
    Scenario,
    check_line_server,
)
from ovserver._events import EventServer
from ovserver._iocp import IocpServer
from ovserver._routines import RoutineServer
from tests.mutants import MUTANTS
from tests.mutants.properties import OvserverUnderTest
from tools.false_alarms import main as false_alarms_main
from tools.false_alarms import run_recipe, run_simulate

_MS = 1_000_000


def test_the_recipe_run_records_every_failing_example_and_goes_on() -> None:
    mutant = next(m for m in MUTANTS if m.name == "recv-reposted-first")
    r = run_recipe("events", "echo", "ci", 30, server_class=mutant.server)
    assert r.runs == 30
    assert len(r.failures) >= 2, r.failures
    assert all(f.startswith("ci, example ") for f in r.failures), r.failures


def test_a_correct_server_passes_and_a_mutant_fails_simulate() -> None:
    assert run_simulate("events", "echo", 0).failures == []
    mutant = next(m for m in MUTANTS if m.name == "recv-reposted-first")
    failed = run_simulate("events", "echo", 0, server_class=mutant.server)
    assert failed.runs == 1 and len(failed.failures) == 1 and failed.failures[0].startswith("seed 0: ")


def test_a_chat_crowd_on_the_iocp_server_is_no_busy_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """False alarm found by the sweep (recipe, iocp chat, Hypothesis seed 0, examples 269-270; ci
    profile, examples 657-662): in a chat of 100 clients the server relays every line to the 99
    others, a send each when the lines come apart (4 calls per relayed line in the iocp model:
    the send, its packet's dequeue, the lock taken and left); the Winsock-call budget, linear in
    lines and clients, called that a busy loop.  Here 100 clients say two lines 1 ms apart: 82000
    calls, where the budget was 67000.  (The fake's own invariants, which the suite checks after
    every call, are not what this is about: unchecked, it takes a second, not forty.)"""
    monkeypatch.setattr(fakewinsock._fake, "_invariants_by_default", False)
    scripts = tuple(ClientScript(lines=(b"t", b"t"), chunks=(b"t\n", b"t\n"), gaps_ns=(i * _MS, 100 * _MS),
                                 linger_ns=30 * _MS) for i in range(100))
    report = check_line_server(lambda ws, address: OvserverUnderTest(IocpServer, ws, address, "chat"),
                               Scenario(scripts), ChatModel(), seed=0, trace_tail=0)
    assert report.calls > 1_000 + 40 * 400 + 100 * (200 + 100 + 200)  # more than the old budget allowed


@pytest.mark.parametrize("model", ["events", "routines", "iocp"])
def test_clients_that_reset_in_the_backlog_while_an_accept_retry_is_due_are_no_busy_polling(model: str) -> None:
    """False alarm found by search16 (the recipe, events echo at the default limits, Hypothesis seeds 0 and 4:
    accept_faults' storm of 20 clients resetting in the listen backlog while injected WSAENOBUFS failures of
    AcceptEx kept ovserver retrying every 50 ms): every client was done, so the idle second began, and the
    server's next retry then took the storm from its backlog (an AcceptEx, a failed one or an accept, a
    receive that fails, a close for each), hundreds of calls, which the idle check called busy polling.  Work
    owed before the second began is no polling: the idle second starts again once the server has taken a
    connection that waited in its backlog as it began.  Here 40 clients reset in the backlog while ovserver's
    first four AcceptEx posts fail (a retry at 200 ms, after the idle second began at 101 ms).  (Proven: with
    the idle check as before, seeds 0 and 2 fail "busy polling: the server made 433 Winsock calls in 1 s",
    events; 195, routines; 271, iocp.)"""
    server = {"events": EventServer, "routines": RoutineServer, "iocp": IocpServer}[model]
    scripts = (ClientScript.of(b"hello"),) + tuple(ClientScript.of(arrive_ns=1 * _MS) for _ in range(40))
    faults = FaultPlan(tuple(ClientFault(i, "reset", -1) for i in range(1, 41)), (Injection(0, "AcceptEx", count=4),))
    for seed in (0, 2):
        check_line_server(lambda ws, address: OvserverUnderTest(server, ws, address, "echo"), Scenario(scripts, faults),
                          EchoModel(), seed=seed, trace_tail=0)


def test_idle_with_backpressure_runs_the_recipe_on_ovserver_configured_with_both(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``--idle --backpressure`` (run_recipe's ``idle`` and ``backpressure``; bench_search's ``--false-alarms
    --idle --backpressure`` likewise) is recipe_bp_idle: proven on resume-keeps-idle-clock, which only a server
    with both an idle time-out and back-pressure can show (a client read on after it was held back for longer
    than the time-out keeps its stale idle clock): both find it (Hypothesis seed 0, under pytest's pinned
    constants: at example 16), neither alone does.
    (The fake's invariants unchecked, as the sweep runs: it is the tools' routing that is tested here.)"""
    monkeypatch.setattr(fakewinsock._fake, "_invariants_by_default", False)
    mutant = next(m for m in MUTANTS if m.name == "resume-keeps-idle-clock")
    both = run_recipe("iocp", "echo", "seeded", 20, 0, server_class=mutant.server, backpressure=True, idle=True)
    assert both.runs == 20 and both.failures, both.failures
    assert all(f.startswith("seed 0 bp idle, example ") for f in both.failures), both.failures
    for backpressure, idle in ((True, False), (False, True)):
        alone = run_recipe("iocp", "echo", "seeded", 20, 0, server_class=mutant.server, backpressure=backpressure,
                           idle=idle)
        assert alone.runs == 20 and alone.failures == [], (backpressure, idle, alone.failures)
    found = _recipe_clean("iocp", "echo", 20, backpressure=True, idle=True, server_class=mutant.server,
                          shrink=False)
    assert found.startswith("recipe_bp_idle iocp echo: FALSE ALARM at example "), found


def test_preemption_with_a_configured_recipe_is_refused() -> None:
    """``preempt`` is the plain recipe's only (CONFIGURED_RECIPES' other properties take none): asked for with
    back-pressure or an idle time-out, run_recipe and the command line refuse it at once, not deep in a run."""
    for backpressure, idle in ((True, False), (False, True), (True, True)):
        with pytest.raises(ValueError, match="preempt"):
            run_recipe("events", "echo", "ci", 1, backpressure=backpressure, idle=idle, preempt=True)
        flags = ["--backpressure"] * backpressure + ["--idle"] * idle
        with pytest.raises(SystemExit) as e:
            false_alarms_main(["--only", "recipe", "--preempt", *flags])
        assert e.value.code == 2
