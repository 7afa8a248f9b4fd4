#!/usr/bin/env python3
"""Compare the fake's schedules between two versions of the code, byte for byte.

A change to the fake that does not mean to change behaviour must leave every
schedule as it was.  This script records, for one source tree:

* ``ovserver simulate`` runs (models x modes x resets x seeds, plus larger,
  barrier, limit and flood variants, about 60 in all), each with its report
  (the ``wall time`` line removed: it is the one field that depends on the
  machine) and its text trace;
* every fake made by a selection of the test suite (the conformance suite's
  fake backends, the fake's property tests with Hypothesis-drawn schedules, the
  regression, misuse, testing-tool and server tests), under a fixed Hypothesis
  seed and no example database: for each test, in order of creation, each
  fake's virtual time, counters, trace length and the SHA-256 of its trace text,
  and the test's outcome;

and compares two recordings file by file.

Usage::

    tools/compare_schedules.py check [--base REV]     # REV (default HEAD) vs the working tree
    tools/compare_schedules.py record OUTDIR [--tree DIR]
    tools/compare_schedules.py compare DIR_A DIR_B

``check`` extracts REV with ``git archive`` into ``~/.cache/fakewinsock-schedules``
(outside git), records it there once (cached by commit id), records the working
tree, and compares.  The script always calls ``simulate`` with explicit flags
(and ``--plain`` when that version has it), so a change of its default traffic
does not make the comparison meaningless.  Run it from the tree's virtualenv
(it needs pytest and Hypothesis); each tree is imported from its own sources
(PYTHONPATH), which the recording checks.

The script is also a pytest plugin (``-p compare_schedules``): that is how it
fingerprints the fakes the tests make.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fakewinsock-schedules"
PROFILE = "compare-schedules"

#: Test files whose fakes are fingerprinted (paths relative to the tree).
TEST_PATHS = [
    "tests/conformance",
    "tests/test_fake_properties.py",
    "tests/test_fake_regressions.py",
    "tests/test_fake_misuse.py",
    "tests/test_testing.py",
    "tests/test_ovserver_server.py",
]


def simulate_runs() -> list[tuple[str, list[str]]]:
    """(name, flags) of every recorded ``ovserver simulate`` run."""
    runs: list[tuple[str, list[str]]] = []
    for model in ("events", "routines"):
        for mode in ("echo", "chat"):
            for resets in ("0", "0.3"):
                for seed in (1, 2, 3, 4, 5):
                    runs.append((f"{model}-{mode}-r{resets}-s{seed}",
                                 ["--model", model, "--mode", mode, "--clients", "24", "--messages", "4",
                                  "--resets", resets, "--seed", str(seed)]))
            base = ["--model", model, "--mode", mode]
            runs.append((f"{model}-{mode}-many", base + ["--clients", "150", "--messages", "3", "--seed", "7",
                                                          "--resets", "0.1"]))
            runs.append((f"{model}-{mode}-flood", base + ["--clients", "40", "--messages", "5", "--seed", "8",
                                                           "--arrival", "0.0005"]))
            runs.append((f"{model}-{mode}-limits", base + ["--clients", "30", "--messages", "6", "--seed", "9",
                                                            "--resets", "0.2", "--max-line", "300",
                                                            "--max-queued", "3000", "--max-clients", "12"]))
            if mode == "chat":
                runs.append((f"{model}-{mode}-barrier", base + ["--clients", "20", "--messages", "4", "--seed",
                                                                 "10", "--barrier", "--resets", "0.2"]))
    return runs


# ---------------------------------------------------------------- recording


def _env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree), str(HERE)])
    env["PYTHONHASHSEED"] = "0"
    return env


def _check_imports(tree: Path) -> None:
    out = subprocess.run([sys.executable, "-c", "import fakewinsock, ovserver; print(fakewinsock.__file__);"
                          "print(ovserver.__file__)"], cwd=tree, env=_env(tree), check=True,
                         capture_output=True, text=True).stdout.split()
    for f in out:
        if not Path(f).resolve().is_relative_to(tree.resolve()):
            sys.exit(f"recording {tree}: imports {f} from elsewhere")


def record(tree: Path, out: Path, tests: bool = True, workers: int = 2) -> None:
    """Record simulate reports and traces and the tests' fingerprints of ``tree`` into ``out``."""
    tree = tree.resolve()
    _check_imports(tree)
    if out.exists():
        shutil.rmtree(out)
    (out / "simulate").mkdir(parents=True)
    env = _env(tree)
    help_text = subprocess.run([sys.executable, "-m", "ovserver", "simulate", "--help"], cwd=tree, env=env,
                               capture_output=True, text=True, check=True).stdout
    extra = ["--plain"] if "--plain" in help_text else []
    runs = simulate_runs()
    for name, flags in runs:
        trace = out / "simulate" / f"{name}.trace"
        proc = subprocess.run([sys.executable, "-m", "ovserver", "simulate", *flags, *extra, "--trace", str(trace)],
                              cwd=tree, env=env, capture_output=True, text=True)
        report = "".join(line + "\n" for line in proc.stdout.splitlines() if not line.startswith("wall time"))
        (out / "simulate" / f"{name}.report").write_text(f"exit status {proc.returncode}\n{report}{proc.stderr}")
    print(f"recorded {len(runs)} simulate runs of {tree}")
    if tests:
        tdir = out / "tests"
        tdir.mkdir()
        env["COMPARE_SCHEDULES_OUT"] = str(tdir)
        args = [sys.executable, "-m", "pytest", "-q", "-p", "compare_schedules", "-p", "no:cacheprovider",
                f"--hypothesis-profile={PROFILE}", "--hypothesis-seed=0", "-o", "addopts=",
                "-W", "ignore", *TEST_PATHS]
        if workers > 1:
            args += ["-n", str(workers)]
        proc = subprocess.run(args, cwd=tree, env=env, capture_output=True, text=True)
        tail = proc.stdout.strip().splitlines()[-1:] or ["(no output)"]
        print(f"tests of {tree}: {tail[0]}")
        lines: list[str] = []
        for part in sorted(tdir.glob("*.jsonl")):
            lines += part.read_text().splitlines()
            part.unlink()
        lines.sort()
        (tdir / "fingerprints.jsonl").write_text("".join(line + "\n" for line in lines))
        print(f"recorded {len(lines)} tests' fakes")


def compare(a: Path, b: Path) -> int:
    """Compare two recordings; print what differs; the number of differing files."""
    names_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    names_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    bad = 0
    for name in sorted(names_a ^ names_b):
        print(f"only in {'first' if name in names_a else 'second'}: {name}")
        bad += 1
    same = 0
    for name in sorted(names_a & names_b):
        da, db = (a / name).read_bytes(), (b / name).read_bytes()
        if da == db:
            same += 1
            continue
        bad += 1
        print(f"DIFFERS: {name}")
        diff = difflib.unified_diff(da.decode(errors="replace").splitlines(),
                                    db.decode(errors="replace").splitlines(), lineterm="", n=1)
        for i, line in enumerate(diff):
            if i >= 20:
                print("  ...")
                break
            print("  " + line[:200])
    print(f"{same} files identical, {bad} differ ({len(names_a & names_b)} compared)")
    return bad


def _extract(rev: str, repo: Path) -> tuple[str, Path]:
    sha = subprocess.run(["git", "rev-parse", rev], cwd=repo, check=True, capture_output=True,
                         text=True).stdout.strip()
    tree = CACHE / sha / "tree"
    if not tree.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=CACHE))
        archive = subprocess.run(["git", "archive", sha], cwd=repo, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
        tree.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(tree)
    return sha, tree


def check(base: str, tests: bool, workers: int) -> int:
    repo = Path(subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=HERE, check=True,
                               capture_output=True, text=True).stdout.strip())
    sha, tree = _extract(base, repo)
    base_out = CACHE / sha / ("recording" if tests else "recording-simulate")
    if not (base_out / "done").exists():
        record(tree, base_out, tests, workers)
        (base_out / "done").write_text("")
    else:
        print(f"using the recording of {sha[:12]} in {base_out}")
    mine = Path(tempfile.mkdtemp(prefix="schedules-"))
    record(repo, mine / "rec", tests, workers)
    (mine / "rec" / "done").write_text("")
    print(f"comparing {sha[:12]} with the working tree {repo}")
    bad = compare(base_out, mine / "rec")
    if bad == 0:
        shutil.rmtree(mine)
    else:
        print(f"(the working tree's recording is kept in {mine / 'rec'})")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="record REV (cached) and the working tree, and compare")
    c.add_argument("--base", default="HEAD")
    c.add_argument("--no-tests", action="store_true", help="simulate runs only")
    c.add_argument("-n", "--workers", type=int, default=2)
    r = sub.add_parser("record", help="record one tree into OUTDIR")
    r.add_argument("outdir", type=Path)
    r.add_argument("--tree", type=Path, default=HERE.parent)
    r.add_argument("--no-tests", action="store_true")
    r.add_argument("-n", "--workers", type=int, default=2)
    p = sub.add_parser("compare", help="compare two recordings")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    ns = ap.parse_args(argv)
    if ns.cmd == "check":
        return check(ns.base, not ns.no_tests, ns.workers)
    if ns.cmd == "record":
        record(ns.tree, ns.outdir, not ns.no_tests, ns.workers)
        return 0
    return 1 if compare(ns.a, ns.b) else 0


# ------------------------------------------------------ the pytest plugin side

_made: list[Any] = []


def _register_profile() -> None:
    try:
        from hypothesis import settings
    except ImportError:  # pragma: no cover - the plugin runs only under pytest with Hypothesis
        return
    settings.register_profile(PROFILE, database=None, deadline=None, print_blob=False)


if os.environ.get("COMPARE_SCHEDULES_OUT"):
    _register_profile()


def pytest_configure(config: Any) -> None:
    if not os.environ.get("COMPARE_SCHEDULES_OUT"):
        return
    from fakewinsock import FakeWinsock

    init = FakeWinsock.__init__

    def tracked_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        _made.append(self)

    FakeWinsock.__init__ = tracked_init  # type: ignore[method-assign]


def _fingerprint(fake: Any) -> str:
    text = fake.trace.to_text()
    stats = ",".join(f"{k}={v}" for k, v in fake.stats.items())
    return (f"now={fake.now_ns} {stats} trace={fake.trace.count}/{len(fake.trace)} "
            f"sha256={hashlib.sha256(text.encode()).hexdigest()[:32]}")


_outcomes: dict[str, str] = {}


def pytest_runtest_makereport(item: Any, call: Any) -> None:
    if call.excinfo is not None and not call.excinfo.errisinstance(_skip_exceptions()):
        _outcomes[item.nodeid] = f"failed in {call.when}"


def _skip_exceptions() -> tuple[type[BaseException], ...]:
    import pytest

    return (pytest.skip.Exception,)


try:
    import pytest as _pytest
except ImportError:  # pragma: no cover
    pass
else:

    @_pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item: Any, nextitem: Any) -> Any:
        out = os.environ.get("COMPARE_SCHEDULES_OUT")
        _made.clear()
        yield
        if not out:
            return
        fakes = [_fingerprint(f) for f in _made]
        _made.clear()
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        line = f"{item.nodeid} {_outcomes.pop(item.nodeid, 'ok')} {json.dumps(fakes)}"
        with open(Path(out) / f"{worker}.jsonl", "a", encoding="utf-8") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    sys.exit(main())
