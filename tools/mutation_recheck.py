"""Check mutants again, quickly, in one process: after writing tests for the
survivors of ``tools/mutation.sh``, or to finish a run that was stopped.

    .venv/bin/python tools/mutation_recheck.py --survivors 'fakewinsock._net*' -- tests/test_fake_net_mutation_more.py
    .venv/bin/python tools/mutation_recheck.py --unchecked 'ovserver._events*' --sample 100 -- tests/test_ovserver_*.py
    .venv/bin/python tools/mutation_recheck.py --generate    # mutants/ made, no test run (seconds)

It works on mutmut's own copy (``mutants/``: made by ``tools/mutation.sh``, or
by ``--generate`` alone, which skips mutmut's slow first pass over every test;
the tests are copied into it again).  pytest collects the given tests
once and runs them once without a mutant (the clean run, timed per test);
then each mutant is checked in a process forked from that one (no new
interpreter, no collection again), where every collected test runs in
collection order under mutmut's switch (``MUTANT_UNDER_TEST``) until one
fails: the mutant is killed, else it survived.  Put the tests most likely to
kill first.  No wasted tests before the killing one, so it is many times
faster than ``mutmut run`` on a loaded machine.

A mutant that makes the tests hang is killed by timeout, as mutmut does: the
forked process leads its own process group, and when it runs past
``--timeout-multiplier`` times the clean run's time of its tests plus
``--timeout-constant`` seconds (wall clock), or uses that multiple of their
CPU time (``RLIMIT_CPU``; CPU time does not grow with the machine's load),
the whole group is killed (SIGKILL: also a thread
that swallows every exception, or a subprocess a test started) and the
verdict is "timeout" (mutmut's 36, counted as detected).  ``--timeout``
still bounds one test (SIGALRM in the forked process), to name the test
that hung when it can.  A forked process that dies otherwise (a signal, an
exit without a verdict) crashed the tests: detected too.

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
import functools
import gc
import json
import math
import os
import random
import shutil
import signal
import sys
import time
from collections.abc import Callable
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
    import resource

    def _arm(seconds: int) -> None:
        signal.alarm(seconds)

    def _install() -> None:
        signal.signal(signal.SIGALRM, _alarm)
        signal.signal(signal.SIGTERM, _terminated)

    def _terminated(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(f"stopped by signal {signum}")  # unwinds through _forked, which kills the mutant's group

    def _forked(run: Callable[[], tuple[int, str]], wall_s: float, cpu_s: int) -> tuple[int, str]:
        """``run()`` in a forked process leading its own process group, with a
        limit on its wall-clock and CPU time; its verdict, or 36 (timeout)
        when the group had to be killed, or 3 when it died otherwise."""
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            code = 70
            try:
                os.close(rfd)
                os.setpgid(0, 0)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                limit = cpu_s + math.ceil(time.process_time())
                resource.setrlimit(resource.RLIMIT_CPU, (limit, limit + 1))  # SIGXCPU, then SIGKILL
                verdict, by = run()
                os.write(wfd, f"{verdict}\t{by}".encode())
                code = 0
            finally:
                os._exit(code)
        os.close(wfd)
        try:
            os.setpgid(pid, pid)  # also here: the group exists before any kill (no race with the child)
        except (PermissionError, ProcessLookupError):
            pass  # the child did it first (or is gone already)
        deadline = time.monotonic() + wall_s
        timed_out = False
        # Wait without reaping (WNOWAIT): while the child is a zombie its process group
        # still exists, so what it left running is killed by the group's id, no other.
        try:
            while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
                if time.monotonic() > deadline:
                    timed_out = True
                    break
                time.sleep(0.05)
        except BaseException:  # this run is stopped (Ctrl+C, SIGTERM): the mutant's group goes with it
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise
        try:
            os.killpg(pid, signal.SIGKILL)  # the hung child, or whatever the tests left running in its group
        except ProcessLookupError:
            pass
        status = os.waitpid(pid, 0)[1]
        os.set_blocking(rfd, False)  # a process that left the group may hold the pipe open
        message = b""
        try:
            while chunk := os.read(rfd, 65536):
                message += chunk
        except BlockingIOError:
            pass
        os.close(rfd)
        if timed_out:
            return 36, f"over {wall_s:.0f} s of wall-clock time: process group killed"
        if os.WIFSIGNALED(status):
            signum = os.WTERMSIG(status)
            if signum in (signal.SIGXCPU, signal.SIGKILL):
                return 36, f"over {cpu_s} s of CPU time (signal {signum})"
            return 3, f"the tests died of signal {signum}"
        if os.WEXITSTATUS(status) != 0 or not message:
            return 3, f"the tests exited with status {os.WEXITSTATUS(status)} and no verdict"
        told, by = message.decode().split("\t", 1)
        return int(told), by
else:
    def _arm(seconds: int) -> None:
        raise SystemExit("tools/mutation_recheck.py needs POSIX signals and fork, as mutmut does")

    def _install() -> None:
        _arm(0)

    def _forked(run: Callable[[], tuple[int, str]], wall_s: float, cpu_s: int) -> tuple[int, str]:
        _arm(0)
        return run()


class Recheck:
    """The pytest plugin: replaces the test loop."""

    def __init__(self, names: list[str], timeout: int, log: Any, update: bool = False,
                 by_coverage: bool = False, multiplier: float = 10.0, constant: float = 10.0) -> None:
        self.names = names
        self.multiplier = multiplier
        self.constant = constant
        self.seconds: dict[str, tuple[float, float]] = {}  # by test: wall-clock and CPU time of the clean run
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
            wall, cpu = time.monotonic(), time.process_time()
            try:
                reports = runtestprotocol(item, nextitem=None, log=False)
            except _Timeout:
                return 36, item.nodeid
            except Exception:  # pytest itself broke under the mutant: mutmut counts that (exit 3) a kill
                return 3, item.nodeid
            finally:
                _arm(0)
            self.seconds[item.nodeid] = (time.monotonic() - wall, time.process_time() - cpu)
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
        gc.freeze()  # the forked processes share the heap as it is now, not copying it to collect it
        for name in self.names:
            start = time.monotonic()
            mine = items
            if self.by_coverage:  # only the tests that call the mutated function (as mutmut run does)
                function = name.rsplit("__mutmut_", 1)[0]
                mine = [item for item in items if function in self.reached[item.nodeid]]
            if mine:
                code, by = _forked(functools.partial(self._mutant, name, mine), *self._limits(mine))
            else:
                code, by = 33, "no test calls it"
            self.verdicts[name] = code
            if self.update:
                write_verdicts({name: code})  # at once: a run that is stopped keeps what it found
            verdict = {0: "survived", 1: "killed", 3: "killed", 33: "no tests", 36: "timeout"}[code]
            print(f"{verdict:8} {name}  {by} ({time.monotonic() - start:.1f} s)", file=self.log, flush=True)
        os.environ["MUTANT_UNDER_TEST"] = ""
        return True

    def _mutant(self, name: str, items: list[Any]) -> tuple[int, str]:
        os.environ["MUTANT_UNDER_TEST"] = name
        return self._run_all(items)

    def _limits(self, items: list[Any]) -> tuple[float, int]:
        """The wall-clock and CPU seconds ``items`` may take under a mutant:
        as mutmut, a multiple of what they took in the clean run, plus a
        constant.  The CPU limit is of their own CPU time (mutmut's is twice
        its wall-clock limit): it does not grow with the machine's load, so it
        stops a spinning mutant sooner on a shared machine; the wall-clock
        limit stops one that waits forever."""
        wall = sum(self.seconds[item.nodeid][0] for item in items)
        cpu = sum(self.seconds[item.nodeid][1] for item in items)
        return (wall + self.constant) * self.multiplier, math.ceil((cpu + self.constant) * self.multiplier)


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
    ap.add_argument("--exclude", metavar="FILE", type=Path,
                    help="leave out the mutants named in FILE, one a line, before drawing (the ones earlier "
                         "samples drew: tools/mutation_drawn.py names)")
    ap.add_argument("--list", action="store_true", help="print the mutants drawn, one a line, and run nothing")
    ap.add_argument("--timeout", type=int, default=120, help="seconds one test may run under a mutant")
    ap.add_argument("--timeout-multiplier", type=float, default=10.0,
                    help="a mutant's tests may take this many times their clean run's wall-clock time ...")
    ap.add_argument("--timeout-constant", type=float, default=10.0,
                    help="... plus these seconds (times the multiplier); likewise their CPU time")
    ap.add_argument("--update", action="store_true", help="write the verdicts into mutants/*.meta")
    ap.add_argument("--by-coverage", action="store_true",
                    help="the clean run notes which mutated functions each test calls (as mutmut run's first "
                         "pass does); a mutant then runs only the tests that call its function")
    args = ap.parse_args(argv)
    if not pytest_args and not args.list:
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
    if args.exclude:
        left_out = {n.strip() for n in args.exclude.read_text(encoding="utf-8").splitlines()}
        names = [n for n in names if n not in left_out]
    if args.sample and args.sample < len(names):
        # In the drawn order, not sorted: a run stopped part-way has checked a
        # random sample all the same (of the size it reached).
        names = random.Random(args.seed).sample(names, args.sample)
    if args.list:
        print("\n".join(names))
        return 0
    print(f"{len(names)} mutants", flush=True)

    shutil.copytree(ROOT / "tests", MUTANTS / "tests", dirs_exist_ok=True)  # the tests as they are now
    # and the tools some of them import (tests/test_ovserver_stillborn.py: tools.wine.stillborn)
    shutil.copytree(ROOT / "tools", MUTANTS / "tools", dirs_exist_ok=True)
    os.chdir(MUTANTS)
    sys.path.insert(0, str(MUTANTS))
    os.environ["MUTANT_UNDER_TEST"] = ""
    import pytest

    plugin = Recheck(names, args.timeout, sys.stdout, update=args.update, by_coverage=args.by_coverage,
                     multiplier=args.timeout_multiplier, constant=args.timeout_constant)
    pytest.main(["-p", "no:cacheprovider", "-p", "no:randomly", "--hypothesis-seed=0", "-q", *pytest_args],
                plugins=[plugin])
    if not plugin.clean_ok:
        return 2
    survived = sum(c in (0, 33) for c in plugin.verdicts.values())
    print(f"{len(plugin.verdicts) - survived} killed, {survived} survived")
    return 0


if __name__ == "__main__":
    sys.exit(main())
