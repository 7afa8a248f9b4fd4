"""Print the mutation score per module from mutmut's results (``mutants/``).

Run by ``tools/mutation.sh`` after ``mutmut run``.  Reads each mutated module's
``.meta`` file (mutmut's verdict per mutant) and the mutated copy of the
module (the original and the mutated version of each function, to show what a
survivor changed), and ``tools/mutation-equivalent.txt``: the survivors that
no test can kill because no behaviour tells them apart from the original, each
with its reason.  Those are left out of the score; every other survivor is
printed with its diff.

An entry of the equivalent list names the function and the changed lines (as
``- old`` and ``+ new``, stripped), so it keeps matching when mutmut numbers
the mutants differently after an edit elsewhere in the function, and the
unchanged lines around them as the source has them (``| line``): the reader
judges the reason without opening the source, and the entry matches only a
mutant with those lines within five of its change (so a ``continue`` made
``break`` is listed for one loop, not for every loop of the function).  An
entry that matches no survivor is reported as stale (the mutant is killed
now, or the code around it changed): judge it again, or remove it.

Exit status: 0 when every module reaches its target (``--target``, percent of
non-equivalent mutants killed), 1 otherwise, 2 when the results are
incomplete (mutants not checked).
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import math
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

SEP = "\u01c1"  # mutmut's separator in x<SEP>Class<SEP>method

KILLED = {1, 3}  # a test failed (3: pytest's internal error, also a kill)
TIMEOUT = {36, -24, 24, 152, 255}  # the mutant made the tests hang: detected
CRASHED = {-11, -9}  # the mutant crashed the test process: detected
SURVIVED = {0}
NO_TESTS = {5, 33}  # no test runs the function: undetected


@dataclass
class Mutant:
    name: str  # mutmut's name, e.g. ovserver._core.xǁServerǁ_close__mutmut_3
    module: str  # ovserver._core
    function: str  # Server._close
    status: str
    removed: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    context: frozenset[str] = frozenset()  # the unchanged lines within five of the change, stripped
    diff: str = ""


@dataclass
class Equivalent:
    function: str  # ovserver._core.Server._close
    removed: tuple[str, ...]
    added: tuple[str, ...]
    reason: str
    line: int
    context: tuple[str, ...] = ()  # ``| line``: unchanged lines around the change (as the source has them)
    matched: list[str] = field(default_factory=list)


def interval(detected: int, counted: int, population: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% interval of a score measured on a random sample: ``detected``
    of ``counted`` mutants, drawn without replacement from ``population``.
    Wilson's score interval (sound near 100%, where the normal one is not),
    with the finite-population correction folded into z; (p, p) when the
    sample is the whole population."""
    p = detected / counted
    if counted >= population:
        return p, p
    z2 = z * z * (population - counted) / (population - 1)
    centre = (p + z2 / (2 * counted)) / (1 + z2 / counted)
    half = math.sqrt(z2 * (p * (1 - p) / counted + z2 / (4 * counted * counted))) / (1 + z2 / counted)
    return max(0.0, centre - half), min(1.0, centre + half)


def parse_name(name: str) -> tuple[str, str]:
    """(module, Class.function) of a mutant name."""
    base = name.rsplit("__mutmut_", 1)[0]
    module, _, func = base.rpartition(".")
    if func.startswith("x" + SEP):
        _, cls, meth = func.split(SEP)
        return module, f"{cls}.{meth}"
    return module, func[2:] if func.startswith("x_") else func


def status_of(code: int | None) -> str:
    if code is None:
        return "not checked"
    if code in KILLED:
        return "killed"
    if code in TIMEOUT:
        return "timeout"
    if code in CRASHED:
        return "crashed"
    if code in SURVIVED:
        return "survived"
    if code in NO_TESTS:
        return "no tests"
    return f"suspicious (exit {code})"


def functions_by_name(path: Path) -> dict[str, str]:
    """Source of every function definition in a mutated module, by its name."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    out: dict[str, str] = {}
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and "__mutmut_" in node.name:
            # The body only (the def line names the mutant): only the body differs.
            out[node.name] = "\n".join(lines[node.lineno:node.end_lineno])
    return out


def describe(m: Mutant, funcs: dict[str, str]) -> None:
    local = m.name.rsplit(".", 1)[1]
    orig = funcs.get(local.rsplit("__mutmut_", 1)[0] + "__mutmut_orig", "")
    mutated = funcs.get(local, "")
    a, b = orig.splitlines(), mutated.splitlines()
    diff = list(difflib.unified_diff(a, b, lineterm="", n=2))[2:]
    m.diff = "\n".join(diff)
    m.removed = tuple(line[1:].strip() for line in diff if line.startswith("-"))
    m.added = tuple(line[1:].strip() for line in diff if line.startswith("+"))
    wide = list(difflib.unified_diff(a, b, lineterm="", n=5))[2:]
    m.context = frozenset(line[1:].strip() for line in wide if line.startswith(" ") and line.strip())


def entry(m: Mutant) -> str:
    """A survivor as an entry of the equivalent list, its reason to be written."""
    hunk = [line for line in m.diff.splitlines() if not line.startswith("@@")]
    body = textwrap.dedent("\n".join(line[1:] for line in hunk)).splitlines()
    marks = {" ": "|", "-": "-", "+": "+"}
    lines = [f"{marks[h[0]]} {b}".rstrip() for h, b in zip(hunk, body, strict=False) if b.strip()]
    return "\n".join([f"{m.module}.{m.function}", *lines, "why: ..."])


def matches(e: Equivalent, m: Mutant) -> bool:
    """Whether an entry of the equivalent list is this surviving mutant."""
    return (f"{m.module}.{m.function}" == e.function and (m.removed, m.added) == (e.removed, e.added)
            and all(c in m.context for c in e.context if c))


def load_equivalents(path: Path) -> list[Equivalent]:
    """Blocks separated by blank lines: the function, ``| context``, ``- old``
    and ``+ new`` lines, and ``why: reason`` (which may go on over further
    lines); ``#`` starts a comment line."""
    out: list[Equivalent] = []
    if not path.exists():
        return out
    block: list[tuple[int, str]] = []

    def flush() -> None:
        if not block:
            return
        (line_no, function), rest = block[0], block[1:]
        why = next((i for i, (_, t) in enumerate(rest) if t.startswith("why:")), len(rest))
        head, reasons = rest[:why], [t[4:].strip() if i == 0 else t for i, (_, t) in enumerate(rest[why:])]
        removed = tuple(t[1:].strip() for _, t in head if t.startswith("-"))
        added = tuple(t[1:].strip() for _, t in head if t.startswith("+"))
        context = tuple(t[1:].strip() for _, t in head if t.startswith("|"))
        other = [(n, t) for n, t in head if not t.startswith(("-", "+", "|"))]
        if other or not reasons or not (removed or added):
            sys.exit(f"{path}:{line_no}: an entry is the function, '| context', '- old' / '+ new' lines and "
                     "'why: reason'")
        out.append(Equivalent(function, removed, added, " ".join(reasons), line_no, context))
        block.clear()

    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = raw.strip()
        if text.startswith("#"):
            continue
        if not text:
            flush()
        else:
            block.append((n, text))
    flush()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mutants", type=Path, default=Path("mutants"))
    ap.add_argument("--equivalent", type=Path, default=Path("tools/mutation-equivalent.txt"))
    ap.add_argument("--target", action="append", default=[], metavar="PREFIX=PERCENT",
                    help="target score of the modules whose name starts with PREFIX (e.g. ovserver=95)")
    ap.add_argument("--only", default="", help="report only modules whose name starts with this")
    ap.add_argument("--entries", action="store_true",
                    help="print each survivor as an entry of the equivalent list (its reason left to write)")
    args = ap.parse_args(argv)

    equivalents = load_equivalents(args.equivalent)
    mutants: list[Mutant] = []
    for meta in sorted(args.mutants.rglob("*.py.meta")):
        source = meta.with_suffix("")  # mutants/pkg/mod.py
        codes: dict[str, int | None] = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        funcs: dict[str, str] | None = None
        for name, code in sorted(codes.items(), key=lambda kv: _order(kv[0])):
            module, function = parse_name(name)
            if not module.startswith(args.only):
                continue
            m = Mutant(name, module, function, status_of(code))
            if m.status not in ("killed", "timeout", "crashed"):
                if funcs is None:
                    funcs = functions_by_name(source)
                describe(m, funcs)
            mutants.append(m)
    if not mutants:
        print(f"no mutmut results under {args.mutants}/: run tools/mutation.sh", file=sys.stderr)
        return 2

    undetected = [m for m in mutants if m.status not in ("killed", "timeout", "crashed", "not checked")]
    equivalent_names: set[str] = set()
    for m in undetected:
        for e in equivalents:
            if matches(e, m):
                e.matched.append(m.name)
                equivalent_names.add(m.name)
                break

    targets = [(p, float(v)) for p, _, v in (t.partition("=") for t in args.target)]
    modules = sorted({m.module for m in mutants})
    ok = True
    # checked: mutants with a verdict (a sampled or interrupted run checks only some);
    # the score is killed (or timed out) of the checked ones less the equivalent.
    print(f"{'module':<28} {'mutants':>7} {'checked':>7} {'killed':>7} {'timeout':>7} {'equiv':>6} {'alive':>6} "
          f"{'score':>7}  95% interval (a sample)")
    for mod in modules:
        ms = [m for m in mutants if m.module == mod]
        checked = sum(m.status != "not checked" for m in ms)
        killed = sum(m.status == "killed" or m.status == "crashed" for m in ms)
        timeout = sum(m.status == "timeout" for m in ms)
        equiv = sum(m.name in equivalent_names for m in ms)
        alive = sum(m in undetected and m.name not in equivalent_names for m in ms)
        counted = checked - equiv
        if not counted:
            print(f"{mod:<28} {len(ms):>7} {checked:>7} {'':>7} {'':>7} {equiv:>6} {alive:>6} {'-':>7}")
            continue
        score = 100.0 * (killed + timeout) / counted
        target = max((v for p, v in targets if mod.startswith(p)), default=0.0)
        mark = "" if score >= target else f"  (target {target:g}%)"
        ok = ok and score >= target
        span = ""
        if checked < len(ms):  # a sample: of a population of about len(ms) * counted / checked that count
            lo, hi = interval(killed + timeout, counted, max(counted, round(len(ms) * counted / checked)))
            span = f"  {100 * lo:.1f}-{100 * hi:.1f}%"
        print(f"{mod:<28} {len(ms):>7} {checked:>7} {killed:>7} {timeout:>7} {equiv:>6} {alive:>6} "
              f"{score:>6.1f}%{span}{mark}")
    total_equiv = len(equivalent_names)
    total_checked = sum(m.status != "not checked" for m in mutants)
    total_counted = total_checked - total_equiv
    total_detected = sum(m.status in ("killed", "timeout", "crashed") for m in mutants)
    total_score = f"{100.0 * total_detected / total_counted:.1f}%" if total_counted else "-"
    print(f"{'all':<28} {len(mutants):>7} {total_checked:>7} {'':>7} {'':>7} {total_equiv:>6} "
          f"{len(undetected) - total_equiv:>6} {total_score:>7}")

    alive_list = [m for m in undetected if m.name not in equivalent_names]
    if alive_list:
        print(f"\n{len(alive_list)} surviving mutants (not in {args.equivalent}):")
        for m in alive_list:
            print(f"\n{m.name}  [{m.status}]  ({m.module}.{m.function})")
            print(entry(m) if args.entries else m.diff)
    # An entry can only be stale once every mutant of its function has been checked.
    unfinished = {f"{m.module}.{m.function}" for m in mutants if m.status == "not checked"}
    stale = [e for e in equivalents
             if not e.matched and e.function.startswith(args.only) and e.function not in unfinished]
    if stale:
        print(f"\n{len(stale)} entries of {args.equivalent} match no surviving mutant (killed now, or the code "
              "changed): check and remove them")
        for e in stale:
            print(f"  line {e.line}: {e.function}: " + " / ".join([*("- " + r for r in e.removed),
                                                                     *("+ " + a for a in e.added)]))
    unchecked = sum(m.status == "not checked" for m in mutants)
    if unchecked:
        print(f"\n{unchecked} mutants not checked (a sample, or an interrupted run): the scores are of those checked")
        return 2
    return 0 if ok else 1


def _order(name: str) -> tuple[str, int]:
    base, _, n = name.rpartition("__mutmut_")
    return base, int(n) if n.isdigit() else 0


if __name__ == "__main__":
    sys.exit(main())
