"""The optional compiled fake (tools/build_compiled.py) makes the same schedules as the pure one.

The same ``ovserver simulate`` runs (both models, echo and chat, resets,
program threads in the events model) on the pure-Python package and on the
compiled build: reports (without the wall time) and text traces must be equal
byte for byte.  Skipped, saying why, when there is no compiled build (build one
with ``python tools/build_compiled.py``; ``FAKEWINSOCK_COMPILED`` names another
folder than ``build/compiled``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPILED = Path(os.environ.get("FAKEWINSOCK_COMPILED", ROOT / "build" / "compiled"))

RUNS = [
    ["--model", "routines", "--mode", "echo", "--clients", "24", "--messages", "4", "--seed", "1"],
    ["--model", "routines", "--mode", "chat", "--clients", "20", "--messages", "4", "--seed", "2", "--resets", "0.3"],
    ["--model", "events", "--mode", "echo", "--clients", "24", "--messages", "4", "--seed", "3", "--resets", "0.2"],
    ["--model", "events", "--mode", "chat", "--clients", "30", "--messages", "3", "--seed", "4",
     "--max-queued", "3000", "--max-clients", "12"],
]


def _compiled_modules() -> list[str]:
    listing = COMPILED / "COMPILED"
    return listing.read_text().split() if listing.exists() else []


needs_build = pytest.mark.skipif(
    not _compiled_modules(),
    reason=f"no compiled build in {COMPILED} (python tools/build_compiled.py makes one: needs mypyc and a C compiler)",
)


def _env(compiled: bool) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(COMPILED), str(ROOT)] if compiled else [str(ROOT)]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONHASHSEED"] = "0"
    return env


def _simulate(flags: list[str], compiled: bool, trace: Path) -> str:
    # Run from the trace's folder: the current directory comes first on the path, before PYTHONPATH.
    proc = subprocess.run([sys.executable, "-m", "ovserver", "simulate", *flags, "--plain", "--trace", str(trace)],
                          cwd=trace.parent, env=_env(compiled), capture_output=True, text=True, timeout=600)
    report = "".join(line + "\n" for line in proc.stdout.splitlines() if not line.startswith("wall time"))
    return f"exit status {proc.returncode}\n{report}{proc.stderr}"


@needs_build
def test_the_compiled_build_is_what_gets_imported(tmp_path: Path) -> None:
    """Each module the build lists is an extension module when the build is first on the path, and
    a .py file without it (else the comparison below would compare the pure package with itself)."""
    names = [Path(m).stem for m in _compiled_modules()]
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n"
            "    print(importlib.import_module('fakewinsock.' + name).__file__)\n")
    for compiled, suffix in ((True, ".so"), (False, ".py")):
        out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(compiled), capture_output=True,
                             text=True, check=True).stdout.split()
        assert len(out) == len(names) and all(f.endswith(suffix) for f in out), (compiled, out)


@needs_build
@pytest.mark.parametrize("flags", RUNS, ids=lambda f: "-".join(f[1:4:2]) + "-s" + f[f.index("--seed") + 1])
def test_same_seeds_same_traces(flags: list[str], tmp_path: Path) -> None:
    pure = _simulate(flags, False, tmp_path / "pure.trace")
    compiled = _simulate(flags, True, tmp_path / "compiled.trace")
    assert pure.startswith("exit status 0\n"), pure
    assert compiled == pure
    pure_trace = (tmp_path / "pure.trace").read_bytes()
    assert len(pure_trace) > 10_000  # a real run, traced
    assert (tmp_path / "compiled.trace").read_bytes() == pure_trace


_CHECKED_PROGRAM = """
from fakewinsock import FakeConfig, FakeWinsock, sockaddr_in
from fakewinsock.constants import *
ws = FakeWinsock(seed=1, config=FakeConfig(check_invariants=True))
assert ws.WSAStartup(MAKEWORD(2, 2))[0] == 0
s = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
assert ws.bind(s, sockaddr_in("127.0.0.1", 0), 16) == 0 and ws.listen(s, 5) == 0
def boom(arg):
    raise KeyError("a scripted client's failure")
ws.call_at(ws.now_ns + 1000, boom)
try:
    ws.run_for(0.001)
except KeyError:
    pass
print("interrupted", ws._kernel.interrupted)
print("closed", ws.closesocket(s), ws.WSACleanup())
"""


@pytest.mark.parametrize("compiled", [False, pytest.param(True, marks=needs_build)], ids=["pure", "compiled"])
def test_invariant_checks_work_on_both_builds(compiled: bool, tmp_path: Path) -> None:
    """A fake that checks its invariants after every call (FakeConfig(check_invariants=True), the
    pytest plugin's option) works on the compiled build too, whose Kernel's methods cannot be
    replaced: an exception from a scheduled callback marks the kernel interrupted (no check on a
    half-done state) and the calls after it still answer."""
    proc = subprocess.run([sys.executable, "-c", _CHECKED_PROGRAM], cwd=tmp_path, env=_env(compiled),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["interrupted True", "closed 0 0"], proc.stdout
