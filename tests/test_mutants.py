"""Proof of power: ovserver's property tests catch every deliberately broken server.

The property test bodies of :mod:`tests.mutants.properties` run on the correct
servers (both I/O models), which must pass, and on each mutant of
:mod:`tests.mutants.ovserver_mutants`, which must fail: within Hypothesis's
default example budget, derandomized (the same result on every machine).
Each mutant's shrunk counterexample is printed (``-s``) and listed in the
"fakewinsock summary" at the end of the session.
"""

from __future__ import annotations

import difflib
import inspect
import textwrap
import time
from collections.abc import Callable

import pytest
from hypothesis import settings

from fakewinsock.testing import LineServerFailure
from ovserver import Server
from ovserver._events import EventServer
from ovserver._protocol import Hub
from ovserver._routines import RoutineServer
from tests.mutants import MUTANTS, Mutant
from tests.mutants.properties import PROPERTIES, SETTINGS

CORRECT: dict[str, type[Server]] = {"events": EventServer, "routines": RoutineServer}


def test_the_default_example_budget() -> None:
    assert SETTINGS.max_examples == settings.get_profile("default").max_examples == 100
    assert SETTINGS.derandomize and SETTINGS.database is None


@pytest.mark.parametrize("prop", [pytest.param(p, marks=pytest.mark.slow) if p.startswith(("recipe", "groups")) else p
                                  for p in sorted(PROPERTIES)])
@pytest.mark.parametrize("model", sorted(CORRECT))
def test_correct_server_passes(model: str, prop: str) -> None:
    PROPERTIES[prop](CORRECT[model])()


def failure_kind(error: str) -> str:
    """How the property noticed, in a few words."""
    if "busy loop" in error or "busy polling" in error:
        return "busy loop"
    if "raised" in error:
        exc = error.split("raised ", 1)[1].split(":", 1)[0]
        return {"WinsockUsageError": "misuse detected", "LeakError": "leak at WSACleanup",
                "DeadlockError": "deadlock at shutdown", "ServerError": "server error"}.get(exc, exc)
    if "still holds its socket" in error:
        return "exit not handled"
    if "not served" in error:
        return "client not served"
    if "by the server" in error or "server closed" in error:
        return "client dropped"
    return "wrong data"


def catch(mutant: Mutant) -> tuple[LineServerFailure, float]:
    test = PROPERTIES[mutant.caught_by](mutant.server)
    t0 = time.perf_counter()
    try:
        test()
    except LineServerFailure as e:  # the shrunk example's (SETTINGS: one failure reported)
        return e, time.perf_counter() - t0
    pytest.fail(f"the {mutant.caught_by} property did not catch {mutant.name}: {mutant.bug}")


#: Issue 10's mutants that their property's derandomized run catches; the
#: others are strict expected failures (an unexpected catch fails the run, so
#: this list is kept true): the swarm does not reach their bug in that run yet
#: (some it finds on other seeds: see benchmarks/bench_search.py).  Reached by
#: the targeted features: coalesced-send-drops-split-head by backpressure,
#: chat-to-ended-client by departures, accept-error-stops-accepting by
#: accept_faults (each missed by this run before the feature existed).
RECIPE_CATCHES = {"line-limit-ignores-buffered", "line-limit-off-by-one",
                  "half-close-forgets-queued-replies", "partial-last-line-delivered", "stop-skips-busy-sends",
                  "coalesced-send-drops-split-head", "chat-to-ended-client"}
#: Caught on their branches, missed once the branches met (the slow suite on the
#: merged main, 2026-12-03): a derandomized run is one fixed sequence of
#: examples, and each new feature or kind of draw moves it.  Issue 10 keeps them.
RECIPE_LOST = {
    "big-reply-truncated": "missed by the derandomized recipe since the backpressure, departures and accept_faults "
                           "features changed its sequence of examples (caught before them)",
    "accept-error-stops-accepting": "missed by the derandomized recipe since the events model runs thread groups "
                                    "(the scheduler's thread draws move the examples; caught on the reach branch)",
}


@pytest.mark.parametrize("mutant", [
    (pytest.param(m, marks=pytest.mark.slow) if m.caught_by.startswith("groups") else m) if not m.group
    else pytest.param(m, marks=[pytest.mark.slow] if m.name in RECIPE_CATCHES else [
        pytest.mark.slow, pytest.mark.xfail(strict=True, reason=RECIPE_LOST.get(
            m.name, f"issue 10: not reached yet: needs {m.needs}"))])
    for m in MUTANTS],
    ids=[m.name for m in MUTANTS])
def test_mutant_is_caught(mutant: Mutant, winsock_summary: Callable[[str], None]) -> None:
    failure, seconds = catch(mutant)
    r = failure.report
    s = r.size
    draws = f"{r.draws} draws" if r.draws is not None else f"seed {r.seed}"
    line = (f"{mutant.name:<28} {mutant.server.model:<8} {mutant.caught_by:<5} {failure_kind(r.errors[0]):<20} "
            f"{s['clients']:>3} clients {s['lines']:>3} lines {s['bytes']:>4} bytes {s['faults']} faults "
            f"{draws:>10}  {seconds:5.1f} s")
    print(f"\n{line}\n  bug: {mutant.bug} ({mutant.source})\n  caught: {r.errors[0][:200]}")
    winsock_summary(line)


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_differs_only_by_its_bug(mutant: Mutant) -> None:
    """A mutant is its model's server class with small overrides; a method it
    copies differs from the original by a few lines (at most 8 removed or
    added), each added one marked BUG."""
    cls = mutant.server
    base = EventServer if issubclass(cls, EventServer) else RoutineServer
    assert issubclass(cls, base) and cls.__mro__[1] is base
    own = {name for name in vars(cls) if callable(vars(cls)[name]) or isinstance(vars(cls)[name], property)}
    assert own, "a mutant changes something"
    assert "BUG" in inspect.getsource(cls)
    hub = getattr(cls, "HUB", None)
    copies: list[tuple[type, type, str]] = [(cls, base, name) for name in getattr(cls, "COPIED", ())]
    if hub is not None:  # the bug is in a copy of one of the protocol's methods
        assert hub.__mro__[1] is Hub and hub.COPIED
        copies += [(hub, Hub, name) for name in hub.COPIED]
    for mutated, original, name in copies:
        mine = textwrap.dedent(inspect.getsource(getattr(mutated, name))).splitlines()
        theirs = textwrap.dedent(inspect.getsource(getattr(original, name))).splitlines()
        changed = [d for d in difflib.unified_diff(theirs, mine, lineterm="", n=0)
                   if d[:1] in "+-" and not d.startswith(("+++", "---"))]
        assert 0 < len(changed) <= 8, "\n".join(changed)
        assert all("BUG" in d for d in changed if d.startswith("+")), "\n".join(changed)


def test_every_mutant_is_distinct() -> None:
    assert len({m.name for m in MUTANTS}) == len({m.server for m in MUTANTS}) == len(MUTANTS) >= 8
    assert {m.caught_by for m in MUTANTS} <= set(PROPERTIES)


#: Issue 10's mutants that ``ovserver simulate``'s default (swarm) traffic finds
#: on one of the seeds 0-7 (100 clients x 10 lines); the others are strict
#: expected failures: the swarm does not reach their bug yet.  (closed-send-never-reaped
#: was found here before ovserver began to cancel a send in flight and close
#: abortively; since then no seed of 0-7 shows it.  chat-to-ended-client is found
#: since simulate checks that no chat line reaches a client after its end: seed 0.)
SIMULATE_FINDS = {"line-limit-ignores-buffered", "line-limit-off-by-one", "big-reply-truncated",
                  "half-close-forgets-queued-replies", "partial-last-line-delivered",
                  "chat-to-ended-client"}
#: Found before the events model ran thread groups, not since (seeds 0-7).
SIMULATE_LOST = {"accept-error-stops-accepting": "not found on seeds 0-7 since the events model runs thread "
                                                 "groups (its schedules changed); found before"}
SEARCH_MUTANTS = [m for m in MUTANTS if m.group]


@pytest.mark.slow
@pytest.mark.parametrize("mutant", [
    pytest.param(m, id=m.name, marks=() if m.name in SIMULATE_FINDS else pytest.mark.xfail(
        strict=True, reason=SIMULATE_LOST.get(m.name, f"simulate's swarm does not reach it yet: needs {m.needs}")))
    for m in SEARCH_MUTANTS])
def test_simulate_default_traffic_finds(mutant: Mutant, winsock_summary: Callable[[str], None]) -> None:
    from ovserver import simulate

    mode = "chat" if mutant.caught_by.endswith("chat") else "echo"
    t0 = time.perf_counter()
    for seed in range(8):
        traffic = ""
        try:
            r = simulate(100, 10, mode=mode, seed=seed, server_class=mutant.server)
            found = None if r.ok else r.errors[0] if r.errors else "failed"
            traffic = r.traffic
        except Exception as e:  # the fake found misuse, a deadlock or a leak
            found = f"{type(e).__name__}: {str(e)[:160]}"
        if found is not None:
            line = f"{mutant.name:<36} simulate seed {seed} ({traffic}) {time.perf_counter() - t0:5.1f} s"
            print(f"\n{line}\n  caught: {found[:200]}")
            winsock_summary(line)
            return
    pytest.fail(f"simulate's default traffic did not find {mutant.name} on seeds 0-7")
