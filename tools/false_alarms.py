"""No false alarms: the search tools on the *correct* ovserver, every model and mode (issue 10).

Issue 10's measurement: "the unmutated ovserver passes the same recipe and the
default ``simulate`` for 1000 examples / 50 seeds".  This runs both and counts
every failure; on the correct servers each one is a false alarm of a checker
or a bug of the server, to be triaged.

- ``simulate``: ``ovserver simulate``'s defaults (swarm traffic, 100 clients x
  10 lines, the model's default workers), seeds ``0..--seeds - 1``, for each
  model (events, routines, iocp) and mode (echo, chat).  A run fails when its
  report is not ok (its first errors are printed) or it raises.
- ``recipe``: the README's "Testing your own server" recipe aimed at ovserver
  (``tests.mutants.properties.recipe_property``: ``scenarios(clients=(1, 4),
  lines=(0, 4))`` told ovserver's limits, tight or default, and the model with
  the same limits), ``--examples`` examples per model and mode, generate phase
  (no shrinking: the failing example is counted and the search goes on, so
  every failing example of the budget is seen).  Under two profiles:
  ``seeded`` (``@seed(--hypothesis-seed)``, as a local run with
  ``--hypothesis-seed``) and ``ci`` (derandomized, as Hypothesis's ``ci``
  profile runs the recipe wherever a CI variable is set: the examples then
  come from the test function's source, not from a seed).

Results are printed as they come (one line each, flushed), then a table
(runs, failures, seconds: this machine's wall clock, a process's own) and
every failure with what reproduces it (the simulate seed; the recipe's
profile, seed and example number: the same command runs the same examples).

Run from the repository root, on a shared machine niced and two at a time:
``nice -n 10 .venv/bin/python tools/false_alarms.py --jobs 2``
(``--only simulate``, ``--models iocp``, ``--profiles ci``... narrow it; ``--backpressure`` runs the
recipe on ovserver configured with back-pressure, ``tests.mutants.properties.recipe_bp_property``;
``--busy-server`` names every feature of the swarm (``busy_server``, ``hangup_edges`` and ``deaf_drains`` were
opt-in once; all are in the default swarm now, so it draws what the plain recipe draws); ``--idle`` runs the recipe
on ovserver configured with an idle time-out, ``tests.mutants.properties.recipe_idle_property``; ``--idle``
with ``--backpressure`` runs it on ovserver configured with both, ``recipe_bp_idle_property``, echo's only: chat is
left out, said so).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import Phase, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402

from fakewinsock.testing import FEATURES, LineServerFailure  # noqa: E402
from ovserver import simulate  # noqa: E402
from ovserver._core import Server  # noqa: E402
from ovserver._events import EventServer  # noqa: E402
from ovserver._iocp import IocpServer  # noqa: E402
from ovserver._routines import RoutineServer  # noqa: E402
from tests.mutants.properties import (  # noqa: E402
    CONFIGURED_RECIPES,
    RECIPE_SETTINGS,
)

__all__ = ["Result", "run_recipe", "run_simulate", "main"]

MODELS: dict[str, type[Server]] = {"events": EventServer, "routines": RoutineServer, "iocp": IocpServer}
MODES = ("echo", "chat")
PROFILES = ("seeded", "ci")
#: ``ovserver simulate``'s defaults (``--clients``, ``--messages``).
SIM_CLIENTS, SIM_MESSAGES = 100, 10
_MESSAGE_CHARS = 400


@dataclass
class Result:
    """One unit of work: a simulate run (one seed) or a recipe run (``runs`` examples)."""

    kind: str  # "simulate" or "recipe"
    model: str
    mode: str
    what: str  # "seed N" (simulate) or the profile (recipe)
    runs: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)  # each: what reproduces it, then the message


def _first_line(e: BaseException) -> str:
    """The exception's first line; for one that is not the checker's report, also where it was raised."""
    text = str(e).strip().splitlines()
    where = ""
    if not isinstance(e, LineServerFailure):
        frames = traceback.extract_tb(e.__traceback__)[-4:]
        where = " at " + " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))
    return f"{type(e).__name__}: {text[0][:_MESSAGE_CHARS] if text else ''}{where}"


def run_simulate(model: str, mode: str, seed: int, server_class: type[Server] | None = None) -> Result:
    """``ovserver simulate --model MODEL --mode MODE --seed SEED`` (its defaults otherwise; on
    ``server_class`` if given)."""
    r = Result("simulate", model, mode, f"seed {seed}", runs=1)
    t0 = time.perf_counter()
    try:
        report = simulate(SIM_CLIENTS, SIM_MESSAGES, model=model, mode=mode, seed=seed, server_class=server_class)
    except Exception as e:  # noqa: BLE001 (a crash is a failure, reported)
        r.failures.append(f"seed {seed}: {_first_line(e)}")
    else:
        if not report.ok:
            shown = "; ".join(x[:_MESSAGE_CHARS] for x in report.errors[:3])
            r.failures.append(f"seed {seed}: {report.error_count} errors (traffic: {report.traffic}): {shown}")
    r.seconds = time.perf_counter() - t0
    return r


def recipe_settings(profile: str, examples: int) -> settings:
    """The recipe's settings for ``profile``, generate phase only (``seeded``: randomized,
    seeded by the caller; ``ci``: derandomized, as Hypothesis's ``ci`` profile runs it)."""
    return settings(RECIPE_SETTINGS, max_examples=examples, derandomize=profile == "ci",
                    phases=[Phase.generate])


#: ``--busy-server``: every feature of the swarm named (opt-in ones were drawn only so; none is now).
EVERY_FEATURE = tuple(f for group in FEATURES.values() for f in group)


def run_recipe(model: str, mode: str, profile: str, examples: int, hypothesis_seed_: int = 0,
               server_class: type[Server] | None = None, backpressure: bool = False,
               busy_server: bool = False, idle: bool = False, preempt: bool = False) -> Result:
    """The README recipe on the correct server of ``model`` (or on ``server_class``), ``examples``
    examples; every failing one is recorded and the search goes on.  ``backpressure``: ovserver
    configured with back-pressure (``recipe_bp_property``: its own limits, the model told);
    ``busy_server``: the swarm with every feature named; ``idle``: ovserver
    configured with an idle time-out (``recipe_idle_property``, the model told); both ``idle`` and
    ``backpressure``: ovserver configured with both (``recipe_bp_idle_property``, echo only); ``preempt``: thread
    switches favour synchronization calls (check_line_server's ``preempt``; the plain recipe only)."""
    if preempt and (backpressure or idle):
        raise ValueError("preempt: the plain recipe's only (not with backpressure or idle)")
    what = ((f"seed {hypothesis_seed_}" if profile == "seeded" else "ci") + (" bp" if backpressure else "")
            + (" busy" if busy_server else "") + (" idle" if idle else "") + (" preempt" if preempt else ""))
    r = Result("recipe", model, mode, what)
    t0 = time.perf_counter()

    def observe(failed: bool) -> None:
        r.runs += 1
        if r.runs % 100 == 0:
            print(f"  (recipe {model} {mode} {what}: {r.runs} examples, {time.perf_counter() - t0:.0f} s)",
                  file=sys.stderr, flush=True)

    def on_failure(e: Exception) -> None:
        r.failures.append(f"{what}, example {r.runs}: {_first_line(e)}")

    cls, settings_ = server_class or MODELS[model], recipe_settings(profile, examples)
    # (idle_clients only with the idle time-out: scenarios() refuses it without one)
    features = tuple(f for f in EVERY_FEATURE if idle or f != "idle_clients") if busy_server else None
    _, prop = CONFIGURED_RECIPES[backpressure, idle]
    test = prop(cls, mode, settings_, observe=observe, on_failure=on_failure, features=features,
                **({"preempt": True} if preempt else {}))
    if profile == "seeded":
        test = hypothesis_seed(hypothesis_seed_)(test)
    try:
        test()
    except Exception as e:  # noqa: BLE001 (Hypothesis's own error, e.g. a health check: reported)
        r.failures.append(f"{what}, after example {r.runs}: {_first_line(e)}")
    r.seconds = time.perf_counter() - t0
    return r


def _table(results: Sequence[Result]) -> list[str]:
    rows = ["| tool | model | mode | what | runs | failures | seconds |", "|---|---|---|---|---|---|---|"]
    groups: dict[tuple[str, str, str, str], list[Result]] = {}
    for r in results:
        what = "seeds" if r.kind == "simulate" else r.what
        groups.setdefault((r.kind, r.model, r.mode, what), []).append(r)
    for (kind, model, mode, what), rs in groups.items():
        if kind == "simulate":
            seeds = sorted(int(r.what.split()[1]) for r in rs)
            what = f"seeds {seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else \
                "seeds " + ",".join(map(str, seeds))
        rows.append(f"| {kind} | {model} | {mode} | {what} | {sum(r.runs for r in rs)} "
                    f"| {sum(len(r.failures) for r in rs)} | {sum(r.seconds for r in rs):.0f} |")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--jobs", type=int, default=2, help="processes at once (default 2)")
    ap.add_argument("--seeds", type=int, default=50, help="simulate seeds 0..N-1 (default 50)")
    ap.add_argument("--first-seed", type=int, default=0, help="first simulate seed (default 0)")
    ap.add_argument("--examples", type=int, default=1000, help="recipe examples per model and mode (default 1000)")
    ap.add_argument("--hypothesis-seed", type=int, default=0, help="the seeded profile's seed (default 0)")
    ap.add_argument("--profiles", nargs="+", choices=PROFILES, default=list(PROFILES))
    ap.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    ap.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    ap.add_argument("--only", choices=("simulate", "recipe"), default=None, help="run only one of the two")
    ap.add_argument("--backpressure", action="store_true",
                    help="the recipe on ovserver with back-pressure (high_water, stall time-out; the model told)")
    ap.add_argument("--busy-server", action="store_true",
                    help="the recipe's swarm with every feature named (the default swarm's since shapes29)")
    ap.add_argument("--preempt", action="store_true",
                    help="the recipe with preemption at synchronization calls (check_line_server's preempt)")
    ap.add_argument("--idle", action="store_true",
                    help="the recipe on ovserver with an idle time-out (the model told; the swarm's idle_clients); "
                         "with --backpressure: with both (recipe_bp_idle, echo only)")
    args = ap.parse_args(argv)
    if args.preempt and (args.backpressure or args.idle):
        ap.error("--preempt is the plain recipe's only (not with --backpressure or --idle)")
    t0 = time.perf_counter()
    futures: list[Future[Result]] = []
    with ProcessPoolExecutor(args.jobs) as pool:
        if args.only != "recipe":  # the short runs first: their failures come early
            for model in args.models:
                for mode in args.modes:
                    for seed in range(args.first_seed, args.first_seed + args.seeds):
                        futures.append(pool.submit(run_simulate, model, mode, seed))
        if args.only != "simulate":
            recipe_modes = sorted(args.modes)
            if args.idle and args.backpressure and "chat" in recipe_modes:  # recipe_bp_idle refuses chat
                print("recipe with --idle and --backpressure (recipe_bp_idle): echo only, chat left out", flush=True)
                recipe_modes.remove("chat")
            for mode in recipe_modes:  # chat's examples take longer: first
                for profile in args.profiles:
                    for model in args.models:
                        futures.append(pool.submit(run_recipe, model, mode, profile, args.examples,
                                                   args.hypothesis_seed, None, args.backpressure,
                                                   args.busy_server, args.idle, args.preempt))
        for f in as_completed(futures):
            r = f.result()
            status = "ok" if not r.failures else f"{len(r.failures)} FAILED"
            print(f"{r.kind} {r.model} {r.mode} {r.what}: {r.runs} runs, {status}, {r.seconds:.0f} s", flush=True)
            for msg in r.failures:
                print(f"  {msg}", flush=True)
        results = [f.result() for f in futures]
    print()
    print("\n".join(_table(results)))
    failures = [(r, msg) for r in results for msg in r.failures]
    print(f"\n{len(failures)} failures; {time.perf_counter() - t0:.0f} s wall clock, {args.jobs} jobs")
    for r, msg in failures:
        print(f"- {r.kind} {r.model} {r.mode}: {msg}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
