"""Check mutants again, quickly, in one process: after writing tests for the
survivors of ``tools/mutation.sh``, or to finish a run that was stopped.

    .venv/bin/python tools/mutation_recheck.py --survivors 'fakewinsock._net*' -- tests/test_fake_net_mutation_more.py
    .venv/bin/python tools/mutation_recheck.py --unchecked 'ovserver._events*' --sample 100 -- tests/test_ovserver_*.py
    .venv/bin/python tools/mutation_recheck.py --generate    # mutants/ made, no test run (seconds)

It works on mutmut's own copy (``mutants/``: made by ``tools/mutation.sh``, or
by ``--generate`` alone, which skips mutmut's slow first pass over every test;
the tests are copied into it again).  pytest collects the given tests
once; then, for each mutant, every collected test runs in collection order
under mutmut's switch (``MUTANT_UNDER_TEST``) until one fails: the mutant is
killed (or timed out, after ``--timeout`` seconds of one test), else it
survived.  Put the tests most likely to kill first.  No fork per mutant and
no wasted tests before the killing one, so it is many times faster than
``mutmut run`` on a loaded machine, but it trusts each test to clean up after
itself (the project's tests do: every fake is checked for leaks).

``--update`` writes each verdict into mutmut's results (``mutants/*.meta``:
1 killed, 36 timed out, 0 survived) as soon as it is known, so that
``tools/mutation.sh --report`` counts them, also of a run that was stopped.
``--sample N`` checks N mutants drawn at random (seeded) in the order drawn,
so that a run stopped part-way has checked a random sample too.  A clean run
(no mutant) of the same tests comes first and must pass.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import random
import shutil
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"


class _Timeout(BaseException):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _Timeout("a test ran past --timeout under this mutant")


if sys.platform != "win32":  # mutmut itself runs on POSIX only (fork, SIGALRM)
    def _arm(seconds: int) -> None:
        signal.alarm(seconds)

    def _install() -> None:
        signal.signal(signal.SIGALRM, _alarm)
else:
    def _arm(seconds: int) -> None:
        raise SystemExit("tools/mutation_recheck.py needs POSIX signals, as mutmut does")

    def _install() -> None:
        _arm(0)


class Recheck:
    """The pytest plugin: replaces the test loop."""

    def __init__(self, names: list[str], timeout: int, log: Any, update: bool = False,
                 by_coverage: bool = False) -> None:
        self.names = names
        self.update = update
        self.timeout = timeout
        self.log = log
        self.by_coverage = by_coverage
        self.verdicts: dict[str, int] = {}
        self.clean_ok = False
        self.reached: dict[str, set[str]] = {}  # by test (nodeid): the mutated functions it calls

    def _run_all(self, items: list[Any], coverage: bool = False) -> tuple[int, str]:
        from _pytest.runner import runtestprotocol

        hits: set[str] = set()
        if coverage:  # mutmut's own first pass: the trampolines note each function called
            from mutmut.state import state

            hits = state()._stats
        for item in items:
            hits.clear()
            _arm(self.timeout)
            try:
                reports = runtestprotocol(item, nextitem=None, log=False)
            except _Timeout:
                return 36, item.nodeid
            except Exception:  # pytest itself broke under the mutant: mutmut counts that (exit 3) a kill
                return 3, item.nodeid
            finally:
                _arm(0)
            if coverage:
                self.reached[item.nodeid] = set(hits)
            if any(r.failed for r in reports):
                return 1, item.nodeid
        return 0, ""

    def pytest_runtestloop(self, session: Any) -> bool:
        _install()
        items = list(session.items)
        os.environ["MUTANT_UNDER_TEST"] = "stats" if self.by_coverage else ""
        start = time.monotonic()
        code, by = self._run_all(items, coverage=self.by_coverage)
        if code:
            print(f"the clean run fails ({by}): fix the tests first", file=self.log)
            return True
        self.clean_ok = True
        print(f"clean run: {len(items)} tests, {time.monotonic() - start:.0f} s", file=self.log, flush=True)
        for name in self.names:
            os.environ["MUTANT_UNDER_TEST"] = name
            start = time.monotonic()
            mine = items
            if self.by_coverage:  # only the tests that call the mutated function (as mutmut run does)
                function = name.rsplit("__mutmut_", 1)[0]
                mine = [item for item in items if function in self.reached[item.nodeid]]
            code, by = self._run_all(mine) if mine else (33, "no test calls it")
            self.verdicts[name] = code
            if self.update:
                write_verdicts({name: code})  # at once: a run that is stopped keeps what it found
            verdict = {0: "survived", 1: "killed", 3: "killed", 33: "no tests", 36: "timeout"}[code]
            print(f"{verdict:8} {name}  {by} ({time.monotonic() - start:.1f} s)", file=self.log, flush=True)
        os.environ["MUTANT_UNDER_TEST"] = ""
        return True


def _metas() -> list[Path]:
    return sorted(MUTANTS.rglob("*.py.meta"))


def write_verdicts(verdicts: dict[str, int]) -> None:
    """Write verdicts into mutmut's results (``mutants/*.meta``)."""
    for meta in _metas():
        data = json.loads(meta.read_text(encoding="utf-8"))
        mine = {n: c for n, c in verdicts.items() if n in data["exit_code_by_key"]}
        if mine:
            data["exit_code_by_key"].update(mine)
            tmp = meta.with_suffix(".meta.tmp")
            tmp.write_text(json.dumps(data, indent=4), encoding="utf-8")
            tmp.replace(meta)


def generate() -> int:
    """Make mutants/ as ``mutmut run`` does before it runs any test: the mutated
    copy of each module [tool.mutmut] names, and its ``.meta`` file with every
    mutant not checked (verdicts of functions that did not change are kept)."""
    import mutmut.__main__ as mm
    from mutmut.mutation.trampoline import set_mutant_under_test
    from mutmut.utils.file_utils import copy_also_copy_files, copy_src_dir, setup_source_paths

    os.chdir(ROOT)
    set_mutant_under_test("mutant_generation")
    MUTANTS.mkdir(exist_ok=True)
    copy_src_dir()
    copy_also_copy_files()
    setup_source_paths()
    stats = mm.create_mutants(2)
    print(f"{stats.mutated} files mutated, {stats.unmodified} unchanged")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--generate"]:
        return generate()
    pytest_args: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, pytest_args = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--survivors", metavar="PATTERN", help="mutants mutmut found surviving (or without tests)")
    which.add_argument("--unchecked", metavar="PATTERN", help="mutants not checked yet")
    which.add_argument("--names", metavar="FILE", help="the mutants named in FILE, one a line")
    ap.add_argument("--sample", type=int, default=0, help="only N of them, drawn at random (seeded)")
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--timeout", type=int, default=120, help="seconds one test may run under a mutant")
    ap.add_argument("--update", action="store_true", help="write the verdicts into mutants/*.meta")
    ap.add_argument("--by-coverage", action="store_true",
                    help="the clean run notes which mutated functions each test calls (as mutmut run's first "
                         "pass does); a mutant then runs only the tests that call its function")
    args = ap.parse_args(argv)
    if not pytest_args:
        ap.error("name the tests to run after --")
    if not MUTANTS.is_dir():
        ap.error("no mutants/: run tools/mutation.sh first")

    codes: dict[str, int | None] = {}
    for meta in _metas():
        codes.update(json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"])
    if args.names:
        names = [n.strip() for n in Path(args.names).read_text(encoding="utf-8").splitlines() if n.strip()]
    else:
        pattern = args.survivors or args.unchecked
        wanted = {0, 5, 33} if args.survivors else {None}
        names = sorted(n for n, c in codes.items() if fnmatch.fnmatch(n, pattern) and c in wanted)
    if args.sample and args.sample < len(names):
        # In the drawn order, not sorted: a run stopped part-way has checked a
        # random sample all the same (of the size it reached).
        names = random.Random(args.seed).sample(names, args.sample)
    print(f"{len(names)} mutants", flush=True)

    shutil.copytree(ROOT / "tests", MUTANTS / "tests", dirs_exist_ok=True)  # the tests as they are now
    os.chdir(MUTANTS)
    sys.path.insert(0, str(MUTANTS))
    os.environ["MUTANT_UNDER_TEST"] = ""
    import pytest

    plugin = Recheck(names, args.timeout, sys.stdout, update=args.update, by_coverage=args.by_coverage)
    pytest.main(["-p", "no:cacheprovider", "-p", "no:randomly", "--hypothesis-seed=0", "-q", *pytest_args],
                plugins=[plugin])
    if not plugin.clean_ok:
        return 2
    survived = sum(c in (0, 33) for c in plugin.verdicts.values())
    print(f"{len(plugin.verdicts) - survived} killed, {survived} survived")
    return 0


if __name__ == "__main__":
    sys.exit(main())
