"""``tools/false_alarms.py``, issue 10's "no false alarms" sweep: it must see every failure.

On the correct servers the sweep reports nothing, so what it counts is proven
here on a mutant: the recipe run goes on past a failing example (Hypothesis
would stop at the first) and records each one with what reproduces it.
"""

from __future__ import annotations

from tests.mutants import MUTANTS
from tools.false_alarms import run_recipe, run_simulate


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
