"""Ctrl+C from the very start of ``ovserver``: before ``serve``'s console
handler is in place it is recorded (``ovserver._ctrl_c``), and the server
stops as soon as it runs, as after a late Ctrl+C (under Wine a Ctrl+C during
the first second of a start printed a traceback and exited 58)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakewinsock import FakeWinsock
from ovserver import __main__ as cli
from ovserver import _ctrl_c
from ovserver.__main__ import main
from ovserver._core import MODELS

ROOT = Path(__file__).resolve().parent.parent
STOPPED = "ovserver: stopped; 0 connections served, 0 lines, 0 bytes in, 0 bytes out"


@pytest.fixture
def deferred(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Ctrl+C deferred as when this process is the ovserver program; the SIGINT
    handler and the presses as they were afterwards."""
    monkeypatch.setattr(_ctrl_c.Pressed, "count", 0)
    monkeypatch.setattr(_ctrl_c.Pressed, "deferring", False)
    before = signal.getsignal(signal.SIGINT)
    _ctrl_c.defer_ctrl_c()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize("model", MODELS)
def test_an_early_ctrl_c_stops_serve_as_a_late_one(model: str, deferred: None, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    signal.raise_signal(signal.SIGINT)  # while the program still imports: recorded, no KeyboardInterrupt
    monkeypatch.setattr(cli, "get_backend", lambda name: FakeWinsock())
    assert main(["serve", "--port", "7000", "--model", model]) == 0
    out, err = capsys.readouterr()
    listening, stopped = out.splitlines()
    assert listening.startswith(f"ovserver: echo server ({model} model") and listening.endswith("; Ctrl+C stops")
    assert stopped == STOPPED and err == ""


def test_a_second_early_ctrl_c_exits_at_once(deferred: None, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    class Exited(Exception):
        pass

    def _exit(status: int) -> None:
        raise Exited(status)
    monkeypatch.setattr(os, "_exit", _exit)
    signal.raise_signal(signal.SIGINT)
    with pytest.raises(Exited) as exc:
        signal.raise_signal(signal.SIGINT)
    assert exc.value.args == (130,)
    assert capsys.readouterr().err == "ovserver: second Ctrl+C: exiting at once\n"


def test_an_early_ctrl_c_in_simulate_is_its_one_line_and_130(deferred: None, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "simulate", lambda *a, **k: pytest.fail("ran after Ctrl+C"))
    signal.raise_signal(signal.SIGINT)
    assert main(["simulate", "--clients", "1"]) == 130
    out, err = capsys.readouterr()
    assert out == "" and err.strip() == "ovserver simulate: interrupted (Ctrl+C); no report"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # simulate's Ctrl+C is Python's again


#: A sitecustomize that presses Ctrl+C (SIGINT to itself) when fakewinsock is
#: first imported: in the middle of the ovserver package's imports.
_PRESS_DURING_IMPORT = """
    import signal, sys

    class PressDuringImport:
        def find_spec(self, name, path=None, target=None):
            if name == "fakewinsock":
                sys.meta_path.remove(self)
                signal.raise_signal(signal.SIGINT)
            return None

    sys.meta_path.insert(0, PressDuringImport())
"""


def _run_pressed(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(_PRESS_DURING_IMPORT))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120, check=False)


def test_ctrl_c_while_the_program_imports_is_no_traceback(tmp_path: Path) -> None:
    done = _run_pressed(tmp_path, "-m", "ovserver", "simulate", "--clients", "1")
    assert (done.returncode, done.stdout) == (130, "")
    assert done.stderr.strip() == "ovserver simulate: interrupted (Ctrl+C); no report"


def test_a_program_that_imports_the_package_keeps_pythons_ctrl_c(tmp_path: Path) -> None:
    done = _run_pressed(tmp_path, "-c", "import ovserver; print('imported')")
    assert done.stdout == "" and "KeyboardInterrupt" in done.stderr


@pytest.mark.parametrize(("orig_argv", "argv0", "program"), [
    (["python", "-m", "ovserver", "serve"], "-m", True),
    (["python", "-X", "importtime", "-u", "-m", "ovserver"], "-m", True),
    (["python", "-movserver.__main__"], "-m", True),
    (["python", "-m", "pytest", "-m", "ovserver"], "-m", False),
    (["python", "-c", "import ovserver", "-m", "ovserver"], "-c", False),
    (["python", "tool.py", "-m", "ovserver"], "tool.py", False),
    (["python", "/venv/bin/ovserver", "serve"], "/venv/bin/ovserver", True),
    (["C:\\venv\\Scripts\\ovserver.exe", "serve"], "C:\\venv\\Scripts\\ovserver.exe", True),
    (["python", "/venv/bin/ovserver-tool"], "/venv/bin/ovserver-tool", False),
])
def test_only_the_ovserver_program_defers_ctrl_c(orig_argv: list[str], argv0: str, program: bool,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "orig_argv", orig_argv)
    monkeypatch.setattr(sys, "argv", [argv0])
    assert _ctrl_c._is_program() is program
