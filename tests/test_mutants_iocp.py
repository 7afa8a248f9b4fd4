"""Proof of power for the iocp model: its properties (fakewinsock.testing's
check over the model with 1-4 workers and every interleaving drawn by
Hypothesis) pass on :class:`ovserver._iocp.IocpServer` and catch each classic
IOCP bug of :mod:`tests.mutants.iocp_mutants`; ``ovserver simulate``'s default
traffic finds them on a few seeds too.  Each shrunk counterexample is printed
(``-s``): the failure, the run's size and the schedule drawn (``thread=`` draws
are the scheduler's switches between the workers)."""

from __future__ import annotations

import inspect
import textwrap
import time
from collections.abc import Callable

import pytest

from fakewinsock.testing import LineServerFailure
from ovserver import simulate
from ovserver._iocp import IocpServer
from tests.mutants import check_copy
from tests.mutants.iocp_mutants import IOCP_MUTANTS, IOCP_PROPERTIES, IocpMutant
from tests.mutants.properties import PROPERTIES


@pytest.mark.parametrize("prop", sorted(IOCP_PROPERTIES))
def test_correct_iocp_server_passes(prop: str) -> None:
    IOCP_PROPERTIES[prop](IocpServer)()


@pytest.mark.slow
@pytest.mark.parametrize("prop", ["echo", "chat", "flood"])
def test_correct_iocp_server_passes_the_models_properties(prop: str) -> None:
    """The properties every model passes (tests/test_mutants.py), on iocp's default pool of 4."""
    PROPERTIES[prop](IocpServer)()


def _counterexample(failure: LineServerFailure) -> str:
    lines = str(failure).splitlines()
    return "\n".join("  " + line[:600] for line in lines[:3])


#: Caught within a few seconds (the stop's bugs show on the first example with a
#: stop); the others need Hypothesis to find and shrink an interleaving (50-140 s
#: on the loaded two-core machine): in the slow suite.
FAST = {"iocp-failed-packet-ends-worker", "iocp-one-stop-packet", "iocp-stop-without-draining"}


@pytest.mark.parametrize("mutant", [m if m.name in FAST else pytest.param(m, marks=pytest.mark.slow)
                                    for m in IOCP_MUTANTS], ids=[m.name for m in IOCP_MUTANTS])
def test_iocp_mutant_is_caught(mutant: IocpMutant, winsock_summary: Callable[[str], None]) -> None:
    t0 = time.perf_counter()
    try:
        IOCP_PROPERTIES[mutant.caught_by](mutant.server)()
    except LineServerFailure as failure:
        r = failure.report
        switches = str(failure).count(" thread=")
        line = (f"{mutant.name:<32} {mutant.caught_by:<14} {r.size['clients']} clients {r.size['lines']} lines "
                f"{r.draws} draws ({switches} thread draws) {time.perf_counter() - t0:5.1f} s")
        print(f"\n{line}\n  bug: {mutant.bug}\n{_counterexample(failure)}")
        winsock_summary(line)
        return
    pytest.fail(f"the {mutant.caught_by} property did not catch {mutant.name}: {mutant.bug}")


@pytest.mark.parametrize("mutant", IOCP_MUTANTS, ids=[m.name for m in IOCP_MUTANTS])
def test_iocp_mutant_differs_only_by_its_bug(mutant: IocpMutant) -> None:
    """A mutant is IocpServer with small overrides; a copied method differs from
    the original by a few lines, each added one marked BUG, and every change (a
    hunk of the diff) has a marked added line: a line removed on purpose is
    marked by a BUG comment at its place (tests/test_mutants.py's rule)."""
    cls = mutant.server
    assert cls.__mro__[1] is IocpServer and "BUG" in inspect.getsource(cls)
    for name in getattr(cls, "COPIED", ()):
        mine = textwrap.dedent(inspect.getsource(getattr(cls, name))).splitlines()
        theirs = textwrap.dedent(inspect.getsource(getattr(IocpServer, name))).splitlines()
        check_copy(name, theirs, mine, 6)


@pytest.mark.slow
def test_the_correct_server_passes_simulate_on_the_seeds() -> None:
    for mode in ("echo", "chat"):
        for seed in range(3):
            r = simulate(100, 10, model="iocp", mode=mode, seed=seed)
            assert r.ok, (mode, seed, r.errors[:3])
            r = simulate(100, 10, model="iocp", mode=mode, seed=seed, stop_at_s=0.05)
            assert r.ok and r.server.abandoned == 0, (mode, seed, r.errors[:3])


@pytest.mark.slow
@pytest.mark.parametrize("mutant", IOCP_MUTANTS, ids=[m.name for m in IOCP_MUTANTS])
def test_simulate_default_traffic_finds_iocp_mutant(mutant: IocpMutant, winsock_summary: Callable[[str], None]) -> None:
    """Seeds 0-3 of echo, then of chat (100 clients x 10 lines, the swarm);
    the stop mid-run on the same seeds for the bugs of the stop."""
    t0 = time.perf_counter()
    for stop_at in (None, 0.05):
        for mode in ("echo", "chat"):
            for seed in range(4):
                try:
                    r = simulate(100, 10, mode=mode, seed=seed, server_class=mutant.server, stop_at_s=stop_at)
                    found = None if r.ok else r.errors[0] if r.errors else "failed"
                except Exception as e:  # the fake found misuse, a deadlock or a leak; the server's own check
                    found = f"{type(e).__name__}: {str(e)[:160]}"
                if found is not None:
                    line = (f"{mutant.name:<32} simulate {mode} seed {seed}"
                            f"{f' stop at {stop_at} s' if stop_at else ''} {time.perf_counter() - t0:5.1f} s")
                    print(f"\n{line}\n  caught: {found[:200]}")
                    winsock_summary(line)
                    return
    pytest.fail(f"simulate did not find {mutant.name} on seeds 0-3")
