"""Search power: how soon the README recipe finds each mutant of ``tests/mutants/``.

For every mutant, the README's "Testing your own server" recipe aimed at it
(``tests.mutants.properties.recipe_property``: ``scenarios(clients=(1, 4),
lines=(0, 4))`` told ovserver's limits, the model with the same limits, no
explain phase) runs with Hypothesis seeds 0-4 and a budget of ``--budget``
examples (default 1000; the README's is 200).  Printed per mutant: the median
number of examples and seconds until the first failing example, how many seeds
found it within the budget and within 200, and the size of the shrunk
counterexample (clients, lines, bytes, features, schedule draws) of the median
seed.  ``--false-alarms`` instead runs the unmutated servers: the recipe for
``--budget`` examples (each model, echo and chat) and the default ``ovserver
simulate`` (100 clients x 10 lines) on seeds 0-49, and counts failures (with
``--backpressure``, ``--idle`` or both, the recipe is recipe_bp, recipe_idle or
recipe_bp_idle, echo's only, aimed at ovserver so configured).
``--cost`` measures what the targeted features of issue 10 (backpressure, slow_readers,
departures, accept_faults; ``--cost-of NAMES``: those) cost: the recipe on the correct
servers, events and routines, echo and chat, ``--budget`` examples with every feature and
with every feature but those, both in one run; examples per second of each and their ratio.
``--activation``: how often each swarm feature is switched on in the recipe's
examples (correct routines server, echo and chat, ``--budget`` examples per
seed), against its configured odds, split by the examples Hypothesis generated
and those it made by mutating an earlier one (its generate phase copies parts
of each new example into up to five more, which keep that example's features),
and the distinct feature sets per seed.

Run from the repository root: ``python benchmarks/bench_search.py [--jobs 2]``.
Counts, not timings, are the result; seconds are this machine's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import Phase, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402

from fakewinsock.testing import FEATURES, LineServerFailure, _scenarios  # noqa: E402
from ovserver import simulate  # noqa: E402
from ovserver._core import Server  # noqa: E402
from ovserver._events import EventServer  # noqa: E402
from ovserver._iocp import IocpServer  # noqa: E402
from ovserver._routines import RoutineServer  # noqa: E402
from tests.mutants import MUTANTS, Mutant  # noqa: E402
from tests.mutants.properties import (  # noqa: E402
    CONFIGURED_RECIPES,
    RECIPE_SETTINGS,
    recipe_bp_idle_property,
    recipe_bp_property,
    recipe_idle_property,
    recipe_property,
)

SEEDS = range(5)
SHRINK = True
#: --preempt: the recipe's thread switches favour synchronization calls (check_line_server's ``preempt``).
PREEMPT = False
#: The features added to reach the bugs the recipe missed (issue 10).
NEW_FEATURES = ("backpressure", "departures", "accept_faults", "slow_readers")


def _mode(m: Mutant) -> str:
    return "chat" if m.caught_by in ("chat", "recipe_chat", "recipe_bp_chat", "recipe_idle_chat") else "echo"


def _recipe(m: Mutant, settings_: settings, observe: Callable[[bool], None]) -> Callable[[], None]:
    """The recipe the mutant is caught by: the plain one, or (``recipe_bp*``) the one aimed at ovserver
    configured with back-pressure (the back-pressure code is reached only there), or (``recipe_idle*``) the one
    aimed at ovserver with an idle time-out."""
    if m.caught_by == "recipe_bp_idle":
        return recipe_bp_idle_property(m.server, _mode(m), settings_, observe=observe)
    if m.caught_by.startswith("recipe_bp"):
        return recipe_bp_property(m.server, _mode(m), settings_, observe=observe)
    if m.caught_by.startswith("recipe_idle"):
        return recipe_idle_property(m.server, _mode(m), settings_, observe=observe)
    return recipe_property(m.server, _mode(m), settings_, observe=observe, preempt=PREEMPT)


def hunt(name: str, seed: int, budget: int, shrink: bool = True) -> dict[str, object]:
    """One mutant, one Hypothesis seed: examples and seconds to the first failure, the shrunk size."""
    m = next(x for x in MUTANTS if x.name == name)
    count = [0]
    first: list[tuple[int, float]] = []
    t0 = time.perf_counter()

    def observe(failed: bool) -> None:
        count[0] += 1
        if failed and not first:
            first.append((count[0], time.perf_counter() - t0))

    phases = RECIPE_SETTINGS.phases if shrink else [p for p in RECIPE_SETTINGS.phases if p is not Phase.shrink]
    test = hypothesis_seed(seed)(_recipe(m, settings(RECIPE_SETTINGS, derandomize=False, max_examples=budget,
                                                     phases=phases), observe))
    out: dict[str, object] = {"name": name, "seed": seed, "found": False}

    def rate() -> float:  # examples per second, until the first failure (or the budget)
        return first[0][0] / first[0][1] if first else count[0] / (time.perf_counter() - t0)

    try:
        test()
    except LineServerFailure as e:
        s = e.report.size
        out.update(found=bool(first), examples=first[0][0] if first else None, rate=rate(),
                   seconds=first[0][1] if first else None,
                   shrunk=(s["clients"], s["lines"], s["bytes"], s.get("features", 0), e.report.draws))
    except Exception as e:  # not the checker's failure: report it as such
        out.update(error=f"{type(e).__name__}: {e}")
    else:
        out.update(rate=rate())
    return out


def _row(m: Mutant, runs: list[dict[str, object]], budget: int) -> str:
    found = [r for r in runs if r["found"]]
    ex = sorted(int(r["examples"]) for r in found)  # type: ignore[call-overload]
    n = len(runs)
    if len(found) * 2 <= n:  # the median run did not find it within the budget
        med_ex, med_s, shrunk = f">{budget}", "-", "-"
    else:
        med_ex = str(int(statistics.median_low(ex + [budget + 1] * (n - len(found)))))
        secs = sorted(float(r["seconds"]) for r in found)  # type: ignore[arg-type]
        med_s = f"{statistics.median_low(secs + [float('inf')] * (n - len(found))):.1f}"
        mid = sorted(found, key=lambda r: int(r["examples"]))[len(found) // 2]  # type: ignore[call-overload]
        shrunk = " / ".join(str(x) for x in cast(tuple[int, ...], mid["shrunk"]))
    within = sum(1 for e in ex if e <= 200)
    rates = [float(r["rate"]) for r in runs if "rate" in r]  # type: ignore[arg-type]
    med_rate = f"{statistics.median_low(rates):.1f}" if rates else "-"
    return (f"| {m.name} | {m.group or 'classic'} | {med_ex} | {med_s} | {med_rate} | {len(found)}/{n} "
            f"| {within}/{n} | {shrunk} |")


def search(jobs: int, budget: int, names: list[str]) -> None:
    chosen = [m for m in MUTANTS if not names or m.name in names]
    print(f"README recipe, Hypothesis seeds {SEEDS.start}-{SEEDS.stop - 1}, budget {budget} examples"
          + ("" if SHRINK else "; not shrunk: the size is the first failing example's"))
    print("| mutant | group | median examples to find | median seconds | examples/s | found | within 200 "
          "| shrunk: clients / lines / bytes / features / draws |")
    print("|---|---|---|---|---|---|---|---|")
    with ProcessPoolExecutor(jobs) as pool:
        futures = {m.name: [pool.submit(hunt, m.name, s, budget, SHRINK) for s in SEEDS] for m in chosen}
        for m in chosen:
            runs = [f.result() for f in futures[m.name]]
            for r in runs:
                if "error" in r:
                    print(f"  {m.name} seed {r['seed']}: {r['error']}", file=sys.stderr)
            print(_row(m, runs, budget), flush=True)
            print(f"  {m.name}: per seed " + ", ".join(
                f"{r['seed']}: {r['examples'] if r['found'] else '-'}" for r in runs), file=sys.stderr, flush=True)


MODELS: dict[str, type[Server]] = {"events": EventServer, "routines": RoutineServer, "iocp": IocpServer}


def _recipe_clean(cls_name: str, mode: str, budget: int, backpressure: bool = False, idle: bool = False,
                  server_class: type[Server] | None = None, shrink: bool = True) -> str:
    """The recipe (``CONFIGURED_RECIPES[backpressure, idle]``), Hypothesis seed 0, on the correct server of
    ``cls_name`` (or on ``server_class``): its first failure, if any, reported as a false alarm (its
    shrunk form's first line; the first failing example's without ``shrink``)."""
    cls = server_class or MODELS[cls_name]
    name, prop = CONFIGURED_RECIPES[backpressure, idle]
    t0 = time.perf_counter()
    count = [0]

    def observe(failed: bool) -> None:
        count[0] += 1

    try:
        phases = [p for p in RECIPE_SETTINGS.phases if shrink or p is not Phase.shrink]
        hypothesis_seed(0)(prop(cls, mode, settings(RECIPE_SETTINGS, derandomize=False, max_examples=budget,
                                                    phases=phases), observe=observe))()
    except Exception as e:  # noqa: BLE001 (any failure is a false alarm, reported)
        return (f"{name} {cls_name} {mode}: FALSE ALARM at example {count[0]}: {type(e).__name__}: "
                f"{str(e).splitlines()[0][:300]}")
    return f"{name} {cls_name} {mode}: {count[0]} examples, no failure ({time.perf_counter() - t0:.0f} s)"


def _simulate_clean(model: str, mode: str, seed: int) -> str | None:
    try:
        r = simulate(100, 10, model=model, mode=mode, seed=seed)
    except Exception as e:  # noqa: BLE001 (reported as a false alarm)
        return f"simulate {model} {mode} seed {seed}: FALSE ALARM: {type(e).__name__}: {e}"
    return None if r.ok else f"simulate {model} {mode} seed {seed}: FALSE ALARM: {r.errors[:1]}"


def false_alarms(jobs: int, budget: int, backpressure: bool = False, idle: bool = False) -> None:
    # (recipe_bp_idle is echo's only: chat left out, said so)
    modes = ("echo",) if backpressure and idle else ("echo", "chat")
    if modes == ("echo",):
        print("recipe_bp_idle: echo only, chat left out", flush=True)
    with ProcessPoolExecutor(jobs) as pool:
        recipes = [pool.submit(_recipe_clean, c, mode, budget, backpressure, idle) for c in MODELS for mode in modes]
        sims = [pool.submit(_simulate_clean, model, mode, seed) for model in MODELS
                for mode in ("echo", "chat") for seed in range(50)]
        for f in recipes:
            print(f.result(), flush=True)
        bad = [r for r in (f.result() for f in sims) if r is not None]
        print(f"simulate (default swarm traffic, 100 clients x 10 lines), seeds 0-49, models {', '.join(MODELS)}, "
              f"echo and chat: {len(sims)} runs, {len(bad)} false alarms")
        for b in bad:
            print("  " + b)


def _rate(cls_name: str, mode: str, budget: int, seed: int, features: tuple[str, ...] | None) -> float:
    """Examples per second of the recipe on a correct server (generate phase only)."""
    cls = EventServer if cls_name == "events" else RoutineServer
    t0 = time.perf_counter()
    hypothesis_seed(seed)(recipe_property(cls, mode, settings(RECIPE_SETTINGS, derandomize=False, max_examples=budget,
                                                              phases=[Phase.generate]), features=features))()
    return budget / (time.perf_counter() - t0)


def cost(jobs: int, budget: int, of: tuple[str, ...] = NEW_FEATURES) -> None:
    """The cost of features ``of``: examples/s with every feature against every feature but those, in one run."""
    every = tuple(f for group in FEATURES.values() for f in group)
    without = tuple(f for f in every if f not in of)
    print(f"recipe on the correct servers, {budget} examples, Hypothesis seeds {SEEDS.start}-{SEEDS.stop - 1} "
          f"(medians); before = without {', '.join(of)}")
    print("| server | mode | examples/s before | examples/s now | now / before |")
    print("|---|---|---|---|---|")
    setups = [(c, mode) for c in ("events", "routines") for mode in ("echo", "chat")]
    with ProcessPoolExecutor(jobs) as pool:
        runs = {(c, mode, s, which): pool.submit(_rate, c, mode, budget, s, without if which == "before" else every)
                for c, mode in setups for s in SEEDS for which in ("before", "now")}
        for c, mode in setups:
            before = statistics.median([runs[c, mode, s, "before"].result() for s in SEEDS])
            now = statistics.median([runs[c, mode, s, "now"].result() for s in SEEDS])
            print(f"| {c} | {mode} | {before:.1f} | {now:.1f} | {now / before:.2f} |", flush=True)


def _activation(mode: str, budget: int, seed: int) -> list[tuple[frozenset[str], dict[str, int], str, bool]]:
    """The swarm features switched on in each example of one recipe run (routines model, correct server):
    (features on, each allowed feature's odds, "tight" or "default" limits, whether Hypothesis made the
    example by mutating an earlier one: its generate phase copies parts of each new example into up to
    five more; a private hook of Hypothesis's engine, if it is still there)."""
    from hypothesis.internal.conjecture import engine

    drawn: list[tuple[frozenset[str], dict[str, int], str, bool]] = []
    counted: list[tuple[frozenset[str], dict[str, int], str, bool]] = []
    mutating = [False]
    features = _scenarios._Swarm.features
    mutations = getattr(engine.ConjectureRunner, "generate_mutations_from", None)

    def record(self: _scenarios._Swarm, draw: object) -> frozenset[str]:
        on = features(self, draw)  # type: ignore[arg-type]
        drawn.append((on, {n: self.odds(n) for n in self.allowed}, "tight" if self.max_line == 1000 else "default",
                      mutating[0]))
        return on

    def mutate(self: object, data: object) -> None:
        mutating[0] = True
        try:
            assert mutations is not None
            mutations(self, data)
        finally:
            mutating[0] = False

    def observe(failed: bool) -> None:
        counted.append(drawn[-1])

    _scenarios._Swarm.features = record  # type: ignore[method-assign]
    if mutations is not None:
        engine.ConjectureRunner.generate_mutations_from = mutate  # type: ignore[method-assign]
    try:
        hypothesis_seed(seed)(recipe_property(RoutineServer, mode, settings(RECIPE_SETTINGS, derandomize=False,
                                                                             max_examples=budget), observe=observe))()
    finally:
        _scenarios._Swarm.features = features  # type: ignore[method-assign]
        if mutations is not None:
            engine.ConjectureRunner.generate_mutations_from = mutations  # type: ignore[method-assign]
    return counted


def activation(jobs: int, budget: int) -> None:
    """How often each swarm feature is switched on in real recipe runs, against its configured odds."""
    with ProcessPoolExecutor(jobs) as pool:
        runs = {(mode, s): pool.submit(_activation, mode, budget, s) for mode in ("echo", "chat") for s in SEEDS}
        for mode in ("echo", "chat"):
            per_seed = [runs[mode, s].result() for s in SEEDS]
            rows = [r for seed_rows in per_seed for r in seed_rows]
            mutated = sum(1 for r in rows if r[3])
            sets = statistics.median(len({r[0] for r in seed_rows}) for seed_rows in per_seed)
            print(f"recipe {mode}, routines, Hypothesis seeds {SEEDS.start}-{SEEDS.stop - 1}, {budget} examples "
                  f"each: {len(rows)} examples, {mutated} of them ({mutated / max(1, len(rows)):.0%}) made by "
                  f"Hypothesis's mutations of an earlier one; distinct feature sets per seed (median) {sets}")
            print("| limits | feature | configured | on, all examples | on, generated | on, mutations |")
            print("|---|---|---|---|---|---|")
            for setup in ("tight", "default"):
                sub = [r for r in rows if r[2] == setup]
                gen = [r for r in sub if not r[3]]
                mut = [r for r in sub if r[3]]
                for name in (n for group in FEATURES.values() for n in group):
                    odds = [r[1][name] for r in sub if name in r[1]]
                    if not odds:
                        continue

                    shares = [f"{sum(1 for r in part if name in r[0]) / len(part):.3f}" if part else "-"
                              for part in (sub, gen, mut)]
                    print(f"| {setup} ({len(sub)}) | {name} | {statistics.mean(1 / o for o in odds):.3f} "
                          f"| {' | '.join(shares)} |", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="mutants (default: all)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=5, help="Hypothesis seeds 0..N-1")
    ap.add_argument("--no-shrink", action="store_true",
                    help="stop at the first failing example (shrinking can take minutes on big examples)")
    ap.add_argument("--new", action="store_true", help="only issue 10's mutants")
    ap.add_argument("--false-alarms", action="store_true")
    ap.add_argument("--backpressure", action="store_true",
                    help="--false-alarms: the recipe on ovserver with back-pressure (recipe_bp)")
    ap.add_argument("--idle", action="store_true",
                    help="--false-alarms: the recipe on ovserver with an idle time-out (recipe_idle); with "
                         "--backpressure, with both (recipe_bp_idle, echo only)")
    ap.add_argument("--cost", action="store_true", help="examples/s with the targeted features against without")
    ap.add_argument("--cost-of", nargs="+", default=list(NEW_FEATURES), metavar="FEATURE",
                    help=f"--cost: of these features (default {' '.join(NEW_FEATURES)})")
    ap.add_argument("--activation", action="store_true",
                    help="how often each swarm feature is switched on in real recipe runs (correct server)")
    ap.add_argument("--preempt", action="store_true",
                    help="the recipe with preemption at synchronization calls (check_line_server's preempt)")
    args = ap.parse_args()
    if not args.false_alarms and (args.backpressure or args.idle):
        ap.error("--backpressure and --idle go with --false-alarms")
    if args.false_alarms and args.preempt:
        ap.error("--preempt is the mutant search's (not --false-alarms')")
    global SEEDS, SHRINK, PREEMPT
    SEEDS, SHRINK, PREEMPT = range(args.seeds), not args.no_shrink, args.preempt
    if args.new:
        args.names = [m.name for m in MUTANTS if m.group]
    if args.false_alarms:
        false_alarms(args.jobs, args.budget, args.backpressure, args.idle)
    elif args.cost:
        cost(args.jobs, args.budget, tuple(args.cost_of))
    elif args.activation:
        activation(args.jobs, args.budget)
    else:
        search(args.jobs, args.budget, args.names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
