"""Differential tester: random Winsock programs on the fake and on the real ws2_32.

    python tools/difftest/difftest.py --seeds 0:200            # fake here, real under Wine
    python tools/difftest/difftest.py --seeds 0:200 --fail     # exit 1 on unexplained classes
    python tools/difftest/difftest.py --show 17                # one program, both observations
    tools/wine/winpython tools/difftest/difftest.py worker --seeds 0:200   # the real side alone

Each seed draws a program (:mod:`program`); :mod:`runner` runs it and records
normalised observations.  The fake runs here (natively); the real backend runs
in ONE Windows Python process under Wine (``worker``), whose peers are
standard-library sockets in the same process.  Observations that differ are
grouped into classes (call, fake result, real result) with a count and the
shortest program that shows each.  A class that ``docs/difftest-explained.json``
explains (a Wine divergence with its evidence, or a behaviour unverifiable
without Windows; see docs/semantics-findings.md) is listed but not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for _p in (HERE, ROOT):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from program import generate  # noqa: E402
from runner import CANCEL_FINALS, CLOSE_FINALS, RESET_FINALS, Obs, run_program  # noqa: E402

EXPLAINED = os.path.join(ROOT, "docs", "difftest-explained.json")
FAKE_CONFIGS: list[dict[str, Any]] = [
    {"immediate": 0.0},
    {"immediate": 1.0, "background": 0.0},
    {"immediate": 0.5, "split": 0.5, "partial_recv": 0.3, "background": 0.2},
]


def seeds(spec: str) -> range:
    a, _, b = spec.partition(":")
    return range(int(a), int(b)) if b else range(int(a), int(a) + 1)


def run_fake(seed: int) -> Obs:
    from fakewinsock import FakeConfig, FakeWinsock

    cfg = FakeConfig(**FAKE_CONFIGS[seed % len(FAKE_CONFIGS)])
    return run_program(FakeWinsock(seed=seed, config=cfg), generate(seed))


def run_real(seed: int) -> Obs:
    from fakewinsock import get_backend

    return run_program(get_backend("real"), generate(seed))


def worker(spec: str) -> None:
    for s in seeds(spec):
        t0 = time.monotonic()
        try:
            obs = run_real(s)
        except Exception as exc:  # noqa: BLE001 - reported as the program's result
            obs = [("runner", f"EXC {type(exc).__name__}: {exc}")]
        sys.stdout.write(json.dumps({"seed": s, "obs": obs, "s": round(time.monotonic() - t0, 2)}) + "\n")
        sys.stdout.flush()


def real_results(spec: str) -> Iterator[tuple[int, Obs]]:
    """Each program's observations on the real backend, from one Windows Python under Wine.
    If that process dies (Wine itself crashed), the program it was running is reported as
    a crash and a new process goes on with the next one."""
    todo = seeds(spec)
    while len(todo):
        cmd = [os.path.join(ROOT, "tools", "wine", "winpython"), os.path.join(HERE, "difftest.py"), "worker",
               "--seeds", f"{todo.start}:{todo.stop}"]
        done = todo.start
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("{"):
                    d = json.loads(line)
                    yield d["seed"], [tuple(x) for x in d["obs"]]
                    done = d["seed"] + 1
            proc.wait()
        if done < todo.stop:
            held = any(st[:2] == ("bad", "acceptex_connected") for st in generate(done))
            why = " (it holds an AcceptEx on a connected socket that Wine accepted)" if held else ""
            yield done, [("aborted", f"CRASH: the Windows process died running this program{why}")]
            done += 1
        todo = range(done, todo.stop)


# -- comparison

# A stream that one side's run may have seen cut (a reset, a close with bytes in flight)
# agrees with the whole stream or a prefix of it.
_CUT_OK = {"prefix of sent", "all sent", "a prefix of what was sent"}
_PEER = re.compile(r"\bP\d+\b")
_STEP = re.compile(r"^\d+:")
_OPN = re.compile(r"^(op|conn|extra)\d+\.")


def call_of(key: str) -> str:
    return _OPN.sub(r"\1.", _STEP.sub("", key))


@dataclass
class Klass:
    call: str
    fake: str
    real: str
    count: int = 0
    example: tuple[int, int, str] = (1 << 30, 0, "")  # (program length, seed, key)
    explained: dict[str, str] | None = None


@dataclass
class Report:
    programs: int = 0
    compared: int = 0
    agreed: int = 0
    classes: dict[tuple[str, str, str], Klass] = field(default_factory=dict)


_TAG_SETS = {"reset": RESET_FINALS, "close": CLOSE_FINALS, "cancel": CANCEL_FINALS}


def canonical(fv: str, rv: str) -> tuple[str, str]:
    """Apply the tags either side put on a final result (``~reset``, ``~close``) to both:
    a result that timing may change into another one is compared as the set of them."""
    (fv, _, ft), (rv, _, rt) = fv.partition(" ~"), rv.partition(" ~")
    tags = set(ft.split()) | set(rt.split())

    allowed: set[str] = set()
    for tag in tags:
        allowed |= _TAG_SETS.get(tag, set())
    name = "done or " + "/".join(sorted(tags))

    def canon(v: str) -> str:
        return name if v.split(" ")[0] in allowed else v

    return (canon(fv), canon(rv)) if tags else (fv, rv)


def _cut(obs: Obs) -> tuple[Obs, str]:
    """The observations before the program stopped, and why it stopped ("" if it did not)."""
    for i, (k, v) in enumerate(obs):
        if k == "aborted":
            return obs[:i], v
    return obs, ""


def compare(seed: int, fake: Obs, real: Obs, report: Report) -> None:
    report.programs += 1
    (fake, fstop), (real, rstop) = _cut(fake), _cut(real)
    fd, rd = dict(fake), dict(real)
    keys = list(dict.fromkeys([k for k, _ in fake] + [k for k, _ in real]))
    if fstop or rstop:
        # Compare only what both ran, then the stop itself.
        keys = [k for k in keys if k in fd and k in rd] + ["aborted"]
        fd["aborted"], rd["aborted"] = fstop or "(ran on)", rstop or "(ran on)"
    length = len(generate(seed))
    for k in keys:
        fv, rv = canonical(fd.get(k, "(not reached)"), rd.get(k, "(not reached)"))
        if fv == "*" or rv == "*":
            continue
        report.compared += 1
        if fv == rv or {fv, rv} <= _CUT_OK:
            report.agreed += 1
            continue
        key = (call_of(k), _PEER.sub("P#", fv), _PEER.sub("P#", rv))
        kl = report.classes.setdefault(key, Klass(*key))
        kl.count += 1
        kl.example = min(kl.example, (length, seed, k))


def load_explained(path: str = EXPLAINED) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as f:
        entries: list[dict[str, str]] = json.load(f)["explained"]
    return entries


def explain(kl: Klass, entries: list[dict[str, str]]) -> dict[str, str] | None:
    for e in entries:
        if (re.fullmatch(e["call"], kl.call) and re.fullmatch(e["fake"], kl.fake)
                and re.fullmatch(e["real"], kl.real)):
            return e
    return None


def print_report(report: Report, entries: list[dict[str, str]]) -> int:
    unexplained = 0
    rows = sorted(report.classes.values(), key=lambda k: (-k.count, k.call))
    for kl in rows:
        kl.explained = explain(kl, entries)
        if kl.explained is None:
            unexplained += 1
    rate = report.agreed / report.compared if report.compared else 1.0
    print(f"programs {report.programs}, observations compared {report.compared}, agreed {report.agreed} "
          f"({rate:.4%}); classes {len(rows)}, unexplained {unexplained}")
    for kl in rows:
        tag = "UNEXPLAINED" if kl.explained is None else f"explained ({kl.explained['verdict']})"
        length, seed, key = kl.example
        print(f"\n[{tag}] {kl.call}  x{kl.count}\n    fake: {kl.fake}\n    real: {kl.real}\n"
              f"    shortest: seed {seed} ({length} steps), at {key}  (--show {seed})")
        if kl.explained is not None:
            print(f"    why: {kl.explained['why']}")
    return unexplained


def show(seed: int, real: bool) -> None:
    steps = generate(seed)
    for i, st in enumerate(steps):
        print(f"  {i:3d} {st}")
    fake = run_fake(seed)
    other = next(iter(real_results(str(seed))))[1] if real else []
    od, fd = dict(other), dict(fake)
    for k in list(dict.fromkeys([k for k, _ in fake] + [k for k, _ in other])):
        fv, rv = fd.get(k, "(not reached)"), od.get(k, "(not reached)" if real else "-")
        cf, cr = canonical(fv, rv)
        same = not real or cf == cr or "*" in (cf, cr) or {cf, cr} <= _CUT_OK
        print(f"{'  ' if same else '!!'} {k:45s} fake={fv}   real={rv}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", nargs="?", default="compare", choices=("compare", "worker"))
    ap.add_argument("--seeds", default="0:200", help="A:B, the seed range (default 0:200)")
    ap.add_argument("--fail", action="store_true", help="exit 1 if any class is unexplained")
    ap.add_argument("--show", type=int, help="print one program and both runs' observations")
    ap.add_argument("--fake-only", action="store_true", help="--show without the real side")
    args = ap.parse_args(argv)
    if args.mode == "worker":
        worker(args.seeds)
        return 0
    if args.show is not None:
        show(args.show, not args.fake_only)
        return 0
    t0 = time.monotonic()
    report = Report()
    for seed, real in real_results(args.seeds):
        compare(seed, run_fake(seed), real, report)
    if report.programs != len(seeds(args.seeds)):
        print(f"difftest: only {report.programs} of {len(seeds(args.seeds))} programs came back from Wine")
        return 1
    unexplained = print_report(report, load_explained())
    print(f"\n({time.monotonic() - t0:.0f} s)")
    return 1 if args.fail and unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
