#!/usr/bin/env python3
"""Build the optional compiled fake: the same sources, some modules compiled with mypyc.

    python tools/build_compiled.py [--out build/compiled]
    PYTHONPATH=build/compiled python -m ovserver simulate ...     # use it

As black compiles itself with mypyc: the fake's hot modules (``COMPILED``) are
compiled from the very sources of ``fakewinsock/`` into C extensions; every
other module stays pure Python beside them.  The result is a copy of the
package in ``--out`` (default ``build/compiled``, which git ignores): put that
folder first on ``PYTHONPATH`` and ``import fakewinsock`` gets the compiled
modules (``fakewinsock._kernel.__file__`` ends in ``.so``).  Without it the
package is the pure-Python one, as always; nothing at run time needs mypyc.

Needs mypyc (it comes with mypy, in the ``dev`` extra) and a C compiler; says
so and exits 2 when either is missing.  ``tests/test_compiled.py`` runs the
same seeds on both builds and compares their traces byte for byte (it is
skipped, saying why, when no compiled build is there).

Which modules: the kernel, the operations, the network, the sockets, the
peers, the trace and the program threads (``COMPILED``).  The threads were
left interpreted until 2026-12-04: their scheduler reads and writes the
kernel's events on every wait of the events model (64 at a time), and
interpreted code reaches a compiled object's attributes through descriptors,
slower than the pure build's slots, so the compiled build ran the events
model in more instructions than the pure one (docs/measurement-log.md, "Speed of the fake").
Not compiled, on purpose:

* ``_sim.py``: :class:`~fakewinsock.Chooser` is subclassed by interpreted code
  (``HypothesisChooser``, users' choosers);
* ``_fake.py`` and the ``_api_*.py`` mixins it is made of: the API surface
  wraps its own methods per instance (the invariant checks) and test tools
  patch it (``tools/compare_schedules.py``);
* ``_iocp.py`` and the rest: off the per-message path.

Tests that monkeypatch a compiled module's classes (``tests/test_difftest.py``
patches ``Operations.finish``) need the pure build.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The modules compiled, as paths below the package.
COMPILED = ["_kernel.py", "_ops.py", "_net.py", "_sockets.py", "_peer.py", "_trace.py", "_threads.py"]


def missing_tools() -> str:
    """What is missing to build (empty when mypyc and a C compiler are there)."""
    try:
        import mypyc  # noqa: F401
    except ImportError:
        return "mypyc is not installed (pip install mypy, or the project's dev extra)"
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        return f"no C compiler ({cc!r} is not on PATH)"
    return ""


def build(out: Path) -> None:
    """Copy the package into ``out`` and compile ``COMPILED`` there."""
    out = out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copytree(ROOT / "fakewinsock", out / "fakewinsock",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyc"))
    modules = [f"fakewinsock/{m}" for m in COMPILED]
    proc = subprocess.run([sys.executable, "-m", "mypyc", *modules], cwd=out, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"mypyc failed (exit status {proc.returncode})")
    shutil.rmtree(out / "build", ignore_errors=True)  # mypyc's C sources and objects
    built = sorted(p.name for p in (out / "fakewinsock").glob("*.so"))
    if len(built) != len(COMPILED):
        raise SystemExit(f"expected {len(COMPILED)} extension modules in {out / 'fakewinsock'}, found {built}")
    (out / "COMPILED").write_text("".join(f"fakewinsock/{m}\n" for m in COMPILED))
    print(f"compiled {', '.join(COMPILED)} into {out}\nuse it: PYTHONPATH={out} python ...")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "compiled")
    ns = ap.parse_args(argv)
    why = missing_tools()
    if why:
        print(f"cannot build the compiled fake: {why}; the pure-Python package works as it is", file=sys.stderr)
        return 2
    build(ns.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
