"""Per-example cost of the README recipe: this tree against a base revision, in one run.

    python benchmarks/bench_example_cost.py [--base REV] [--examples N] [--seeds K] [--rounds R]
                                            [--model routines|events] [--mode echo|chat] [--compiled DIR]
                                            [--instructions]

The README's "Testing your own server" recipe aimed at ovserver
(``tests.mutants.properties.recipe_property``, generate phase only, Hypothesis
seeds 0..K-1, ``--examples`` examples each) runs in a fresh process on this
tree and on ``--base`` (extracted with ``git archive`` into a temporary
folder), alternately, ``--rounds`` times.  Each process first runs a few
examples of another seed, so that one-time costs (imports, Hypothesis's scan
of local modules for constants) stay out of the measure.

Printed: examples per CPU second of the process (and per wall second) of each
tree in each round, the median of the per-round ratios of the CPU rates (this
tree / base: CPU time scatters less than wall time on a shared machine), and, from one more process per tree under
cProfile, Python calls per example (a count: it does not scatter with the
machine's load).  ``--instructions`` instead counts instructions per example
under valgrind's callgrind (a count too: the difference between runs of
``--examples`` and three times as many examples of seed 0, over the
difference in examples, so that imports and warm-up cancel out); on a
machine shared with other work, prefer it to the timed rounds.  The fake's
schedules are meant to be byte-identical between the two trees
(``tools/compare_schedules.py``), so both run the very same examples: the
benchmark checks that both drew the same number of examples and the same
number of fakes, and says so when not (the ratio then compares different
work).  ``--compiled DIR`` puts a compiled build
(``tools/build_compiled.py``) in front of this tree.

Speed is measured here, never in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WARMUP_SEED = 1_000


def worker(model: str, mode: str, examples: int, seeds: int, profile: bool) -> dict[str, float]:
    """Run in the tree on sys.path: the recipe, ``examples`` per seed; what it cost."""
    import cProfile
    import pstats
    import warnings

    from hypothesis import Phase, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis.errors import HypothesisDeprecationWarning

    from fakewinsock import FakeWinsock
    from ovserver._events import EventServer
    from ovserver._routines import RoutineServer
    from tests.mutants.properties import RECIPE_SETTINGS, recipe_property

    warnings.simplefilter("ignore", HypothesisDeprecationWarning)
    cls = EventServer if model == "events" else RoutineServer
    count = [0]
    fakes = [0]
    init = FakeWinsock.__init__

    def counting_init(self: FakeWinsock, *args: object, **kwargs: object) -> None:
        fakes[0] += 1
        init(self, *args, **kwargs)  # type: ignore[arg-type]

    FakeWinsock.__init__ = counting_init  # type: ignore[method-assign]

    def observe(failed: bool) -> None:
        count[0] += 1

    def run(seed: int, n: int) -> None:
        s = settings(RECIPE_SETTINGS, derandomize=False, max_examples=n, phases=[Phase.generate])
        hypothesis_seed(seed)(recipe_property(cls, mode, s, observe=observe))()

    run(WARMUP_SEED, 5)
    count[0] = fakes[0] = 0
    prof = cProfile.Profile() if profile else None
    t0, c0 = time.perf_counter(), time.process_time()
    if prof is not None:
        prof.enable()
    for seed in range(seeds):
        run(seed, examples)
    if prof is not None:
        prof.disable()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    calls = sum(v[1] for v in pstats.Stats(prof).stats.values()) if prof is not None else 0  # type: ignore[attr-defined]
    return {"examples": count[0], "fakes": fakes[0], "seconds": seconds, "cpu": cpu, "calls": calls}


def measure(tree: Path, front: str | None, args: argparse.Namespace, profile: bool) -> dict[str, float]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (front, str(tree)) if p)
    env.pop("PYTHONHASHSEED", None)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--model", args.model, "--mode", args.mode,
           "--examples", str(args.examples), "--seeds", str(args.seeds)] + (["--profile"] if profile else [])
    out = subprocess.run(cmd, cwd=tree, env=env, check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def instructions(tree: Path, front: str | None, args: argparse.Namespace, examples: int) -> tuple[int, int]:
    """(instructions, examples run) of one worker process of ``examples`` examples of seed 0, under callgrind."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (front, str(tree)) if p)
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
           str(Path(__file__).resolve()), "--worker", "--model", args.model, "--mode", args.mode,
           "--examples", str(examples), "--seeds", "1"]
    proc = subprocess.run(cmd, cwd=tree, env=env, check=True, capture_output=True, text=True)
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in callgrind's output:\n{proc.stderr[-2000:]}")
    return int(found.group(1)), int(json.loads(proc.stdout.strip().splitlines()[-1])["examples"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="a18313e", help="the revision compared against (default a18313e)")
    ap.add_argument("--examples", type=int, default=100, help="examples per seed (default 100)")
    ap.add_argument("--seeds", type=int, default=2, help="Hypothesis seeds 0..K-1 (default 2)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds, each tree once per round (default 3)")
    ap.add_argument("--model", choices=("routines", "events"), default="routines")
    ap.add_argument("--mode", choices=("echo", "chat"), default="echo")
    ap.add_argument("--compiled", default=None, help="a compiled build to put in front of this tree")
    ap.add_argument("--no-count", action="store_true", help="skip the cProfile count of calls per example")
    ap.add_argument("--instructions", action="store_true",
                    help="count instructions per example under callgrind instead of timing rounds")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.model, args.mode, args.examples, args.seeds, args.profile)))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-example-cost-") as tmp:
        base = Path(tmp)
        archive = subprocess.run(["git", "archive", args.base], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        trees = {"base": (base, None), "this": (ROOT, args.compiled)}
        if args.instructions:
            print(f"README recipe ({args.model}, {args.mode}), Hypothesis seed 0, instructions per example "
                  f"(callgrind: runs of {args.examples} and {3 * args.examples} examples); base = {args.base}, "
                  f"this = {ROOT}" + (f" with {args.compiled} in front" if args.compiled else ""), flush=True)
            per = {}
            with ThreadPoolExecutor(4) as pool:  # four processes at once: counts do not depend on the load
                runs_ = {(name, n): pool.submit(instructions, *trees[name], args, n)
                         for name in ("base", "this") for n in (args.examples, 3 * args.examples)}
            for name in ("base", "this"):
                (i1, e1), (i2, e2) = (runs_[name, n].result() for n in (args.examples, 3 * args.examples))
                per[name] = (i2 - i1) / (e2 - e1)
                print(f"{name}: {i1:,} instructions for {e1} examples, {i2:,} for {e2}: "
                      f"{per[name] / 1e6:,.1f} M per example", flush=True)
            print(f"instructions per example, this / base: {per['this'] / per['base']:.3f}")
            return 0
        print(f"README recipe ({args.model}, {args.mode}), Hypothesis seeds 0-{args.seeds - 1}, {args.examples} "
              f"examples each, generate phase; base = {args.base}, this = {ROOT}"
              + (f" with {args.compiled} in front" if args.compiled else ""), flush=True)
        ratios = []
        runs: dict[str, list[dict[str, float]]] = {"base": [], "this": []}
        for r in range(args.rounds):
            order = ("base", "this") if r % 2 == 0 else ("this", "base")
            for name in order:
                runs[name].append(measure(*trees[name], args, profile=False))
            b, t = runs["base"][-1], runs["this"][-1]
            rate_b, rate_t = b["examples"] / b["cpu"], t["examples"] / t["cpu"]
            ratios.append(rate_t / rate_b)
            print(f"round {r + 1}: base {rate_b:.2f} examples per CPU second ({b['examples'] / b['seconds']:.2f} "
                  f"per wall second), this {rate_t:.2f} ({t['examples'] / t['seconds']:.2f}), "
                  f"this / base {rate_t / rate_b:.2f}", flush=True)
        same = {(x["examples"], x["fakes"]) for x in runs["base"] + runs["this"]}
        if len(same) != 1:
            print(f"WARNING: the trees ran different work (examples, fakes): {sorted(same)}")
        else:
            examples, fakes = same.pop()
            print(f"both trees: {examples:.0f} examples, {fakes:.0f} fakes per run")
        print(f"examples per CPU second, this / base: median {statistics.median(ratios):.2f} of {len(ratios)} rounds "
              f"(min {min(ratios):.2f}, max {max(ratios):.2f})")
        if not args.no_count:
            counts = {name: measure(*trees[name], args, profile=True) for name in ("base", "this")}
            per = {name: c["calls"] / c["examples"] for name, c in counts.items()}
            print(f"Python calls per example (cProfile, builtins included): base {per['base']:,.0f}, "
                  f"this {per['this']:,.0f} ({per['this'] / per['base']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
