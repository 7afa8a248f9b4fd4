"""The mutants earlier samples drew, so that a new sample can leave them out.

A sample is fresh only if nobody wrote tests for its mutants before it was
scored.  mutmut names a mutant by its function and a number that shifts when
the function changes, so a draw is recorded by what the mutant changes: its
function and its removed and added lines (as ``tools/mutation_report.py``
shows a survivor), one JSON object a line in ``tools/mutation-drawn.txt``.

    # record what ``mutation_sample.sh PATTERN N SEED`` drew on a mutants/ copy of
    # the commit it ran on (tools/mutation_recheck.py --generate in a checkout of it)
    .venv/bin/python tools/mutation_drawn.py record --mutants /tmp/old/mutants \\
        --pattern 'fakewinsock._net*' --size 30 --seed 23 --label '11th, 3012de2' >> tools/mutation-drawn.txt
    # the names, in this mutants/, of the mutants any recorded sample drew
    .venv/bin/python tools/mutation_drawn.py names > /tmp/drawn-names.txt

``tools/mutation_recheck.py --exclude FILE`` (and ``MUTATION_EXCLUDE=FILE
tools/mutation_sample.sh ...``) then draws only among the others.  Two
mutants that change the same lines of the same function are one identity:
excluding one excludes both (a few, and on the safe side).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tools.mutation_report import Mutant, describe, functions_by_name, parse_name  # noqa: E402


def identities(mutants: Path) -> dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """Every mutant's name in ``mutants`` and what it changes."""
    out: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {}
    for meta in sorted(mutants.rglob("*.py.meta")):
        funcs = functions_by_name(meta.with_suffix(""))
        for name in json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]:
            module, function = parse_name(name)
            m = Mutant(name, module, function, "")
            describe(m, funcs)
            out[name] = (f"{module}.{function}", m.removed, m.added)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="print the identities a sample drew (as mutation_sample.sh draws)")
    rec.add_argument("--mutants", type=Path, required=True)
    rec.add_argument("--pattern", required=True)
    rec.add_argument("--size", type=int, required=True)
    rec.add_argument("--seed", type=int, required=True)
    rec.add_argument("--label", required=True, help="the session and commit, for the reader")
    rec.add_argument("--exclude", type=Path, help="the names the sample left out (as mutation_recheck.py's)")
    names = sub.add_parser("names", help="the names in mutants/ of the mutants the recorded samples drew")
    names.add_argument("--mutants", type=Path, default=ROOT / "mutants")
    names.add_argument("--drawn", type=Path, default=ROOT / "tools" / "mutation-drawn.txt")
    args = ap.parse_args(argv)

    if args.command == "record":
        ids = identities(args.mutants)
        # As mutation_recheck.py --unchecked PATTERN --sample N --seed S draws on a fresh mutants/.
        left_out = set(args.exclude.read_text(encoding="utf-8").split()) if args.exclude else set()
        pool = sorted(n for n in ids if fnmatch.fnmatch(n, args.pattern) and n not in left_out)
        drawn = random.Random(args.seed).sample(pool, args.size) if args.size < len(pool) else pool
        for n in drawn:
            function, removed, added = ids[n]
            print(json.dumps({"label": args.label, "population": len(pool), "function": function,
                              "removed": removed, "added": added}))
        return 0
    wanted = set()
    for line in args.drawn.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            d = json.loads(line)
            wanted.add((d["function"], tuple(d["removed"]), tuple(d["added"])))
    for n, ident in sorted(identities(args.mutants).items()):
        if ident in wanted:
            print(n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
