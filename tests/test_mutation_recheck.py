"""tools/mutation_recheck.py checks each mutant in a forked process that leads
its own process group: a mutant that makes the tests hang is killed by
timeout (mutmut's verdict 36, detected), with everything it left running, and
the next mutant is checked in a clean process."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the tool forks, as mutmut does: POSIX only")


def _tool() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "tools" / "mutation_recheck.py"
    spec = importlib.util.spec_from_file_location("mutation_recheck_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_verdict_comes_back_from_the_forked_process() -> None:
    tool = _tool()
    assert tool._forked(lambda: (1, "tests/x.py::test_kills"), 30.0, 60) == (1, "tests/x.py::test_kills")
    assert tool._forked(lambda: (0, ""), 30.0, 60) == (0, "")


def test_a_hang_that_swallows_the_alarm_is_killed_by_timeout_with_its_process_group(tmp_path: Path) -> None:
    tool = _tool()
    pidfile = tmp_path / "pid"

    def hang() -> tuple[int, str]:
        # A subprocess left running, and a wait that nothing interrupts: the
        # per-test SIGALRM raises in the main thread, which catches everything.
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        pidfile.write_text(str(child.pid))
        stop = threading.Event()
        while True:
            try:
                stop.wait(600)
            except BaseException:  # noqa: BLE001 - what a mutant of a worker's catch-all does
                pass

    start = time.monotonic()
    code, by = tool._forked(hang, 3.0, 600)
    assert time.monotonic() - start < 30
    assert code == 36 and "wall-clock" in by
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(grandchild), "the subprocess the tests started outlived the timeout"


def test_a_busy_loop_is_stopped_by_the_cpu_limit() -> None:
    tool = _tool()

    def spin() -> tuple[int, str]:
        while True:
            pass

    code, by = tool._forked(spin, 120.0, 1)
    assert code == 36 and "CPU" in by


def test_a_process_that_dies_without_a_verdict_is_a_crash_detected() -> None:
    tool = _tool()

    def die() -> tuple[int, str]:
        os._exit(5)

    def terminated() -> tuple[int, str]:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
        return 0, ""

    assert tool._forked(die, 30.0, 60) == (3, "the tests exited with status 5 and no verdict")
    assert tool._forked(terminated, 30.0, 60) == (3, f"the tests died of signal {int(signal.SIGTERM)}")


def test_an_exception_in_the_forked_process_never_returns_into_the_parent() -> None:
    tool = _tool()
    me = os.getpid()

    def boom() -> tuple[int, str]:
        raise RuntimeError("under the mutant")

    assert tool._forked(boom, 30.0, 60) == (3, "the tests exited with status 70 and no verdict")
    assert os.getpid() == me


class _Stop(Exception):
    pass


def _stop(signum: int, frame: object) -> None:
    raise _Stop


if sys.platform != "win32":  # SIGALRM: POSIX only (and the module is skipped on Windows)
    def test_a_run_stopped_while_a_mutant_is_checked_kills_that_mutant_s_process_group(tmp_path: Path) -> None:
        """Ctrl+C or SIGTERM reaching the tool while a forked process runs: the
        forked process and what it started are killed, not left behind in their
        own process group."""
        tool = _tool()
        pidfile = tmp_path / "pid"

        def hang() -> tuple[int, str]:
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            pidfile.write_text(str(child.pid))
            time.sleep(600)
            return 0, ""

        previous = signal.signal(signal.SIGALRM, _stop)
        signal.alarm(5)
        try:
            with pytest.raises(_Stop):
                tool._forked(hang, 600.0, 600)
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
        grandchild = int(pidfile.read_text())
        deadline = time.monotonic() + 10
        while not _gone(grandchild) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(grandchild), "the subprocess the tests started outlived the stopped run"
