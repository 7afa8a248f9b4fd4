"""Which mutants the README recipe, ``ovserver simulate`` and the test suite miss.

Run from the repository root::

    python -m tests.mutants.gap [--suite] [NAME ...]

For each mutant (default: those of issue 10, which have a feature ``group``):

* **recipe**: the README's "Testing your own server" recipe aimed at the
  mutant (``tests.mutants.properties.recipe_property``: 200 examples, no
  explain phase), derandomized and with Hypothesis seeds 1 and 2;
* **simulate**: ``ovserver simulate`` with its default traffic (100 clients x
  10 lines, the mutant's model and mode) on seeds 0 to 4;
* **suite** (``--suite``): the whole test suite with the mutant swapped in for
  ovserver's server (``tests/mutants/swap.py``), except the tests about the
  mutants themselves; "missed" when every test passes.

It prints one row per mutant: how many runs caught it.  Issue 10 asked for the
evidence that today's tools miss each new mutant before they are made to catch
it; this script is that evidence, and rerunning it shows the change.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from hypothesis import seed as hypothesis_seed
from hypothesis import settings

from ovserver import simulate
from tests.mutants import MUTANTS, Mutant
from tests.mutants.properties import PROPERTIES, RECIPE_SETTINGS


def recipe_catches(m: Mutant, seed: int | None) -> bool:
    prop = PROPERTIES[m.caught_by]
    mode = "chat" if m.caught_by.endswith("chat") else "echo"
    if seed is None:
        test = prop(m.server)
    else:
        from tests.mutants.properties import recipe_bp_idle_property, recipe_bp_property, recipe_property

        prop_ = (recipe_bp_idle_property if m.caught_by == "recipe_bp_idle"  # back-pressure and an idle time-out
                 else recipe_bp_property if m.caught_by.startswith("recipe_bp") else recipe_property)  # back-pressure
        test = hypothesis_seed(seed)(prop_(m.server, mode, settings(RECIPE_SETTINGS, derandomize=False)))
    try:
        test()
    except AssertionError:
        return True
    return False


def simulate_catches(m: Mutant, seed: int) -> bool:
    mode = "chat" if m.caught_by.endswith("chat") else "echo"
    try:
        r = simulate(100, 10, mode=mode, seed=seed, server_class=m.server)
    except Exception:
        return True  # the server raised (or the fake found misuse, a deadlock, a leak)
    return not r.ok


def suite_catches(m: Mutant) -> str:
    env = dict(os.environ, OVSERVER_MUTANT=m.name)
    cmd = [sys.executable, "-m", "pytest", "-p", "tests.mutants.swap", "-q", "-x", "-n", "2", "-p",
           "no:cacheprovider", "-k", "not mutant_is_caught and not differs_only_by_its_bug", "tests"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    last = (p.stdout.strip().splitlines() or ["?"])[-1]
    return ("CAUGHT: " if p.returncode else "missed: ") + last


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*")
    ap.add_argument("--suite", action="store_true", help="also run the whole suite on each mutant (slow)")
    args = ap.parse_args()
    chosen = [m for m in MUTANTS if (m.name in args.names if args.names else m.group)]
    print(f"{'mutant':<36} {'group':<13} {'recipe':>7} {'simulate':>9}  suite")
    for m in chosen:
        t0 = time.perf_counter()
        recipe = sum(recipe_catches(m, s) for s in (None, 1, 2))
        sim = sum(simulate_catches(m, s) for s in range(5))
        suite = suite_catches(m) if args.suite else "-"
        print(f"{m.name:<36} {m.group:<13} {recipe:>4}/3 {sim:>6}/5  {suite}  ({time.perf_counter() - t0:.0f} s)",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
