"""The README's example runs as written."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from fakewinsock.testing import LineServerFailure
from ovserver import __main__ as cli

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = python_blocks()
    assert blocks, "README has no python example"
    exec(compile(blocks[0], "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out.strip()
    assert out.startswith("b'h") and "hello\\n".startswith(out[2:-1])


def shell_lines() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    return [line for block in blocks for line in block.splitlines()]


def test_readme_ovserver_commands_parse() -> None:
    """Every ``ovserver`` command in the README's shell blocks is one the CLI
    takes (a renamed or removed flag would otherwise stay in the README)."""
    commands = [line.split("ovserver ", 1)[1].split("#", 1)[0] for line in shell_lines()
                if re.search(r"(^|/|-m )ovserver (serve|simulate)\b", line) and "..." not in line]
    assert len(commands) >= 8, commands
    for command in commands:
        words = shlex.split(command)
        if "--help" in words:
            with pytest.raises(SystemExit) as exc, contextlib.redirect_stdout(io.StringIO()):
                cli._parse(words)
            assert exc.value.code == 0, command
        else:
            assert cli._parse(words).command == words[0], command


def test_readme_threads_example_finds_and_replays_a_lost_update(capsys: pytest.CaptureFixture[str]) -> None:
    [block] = [b for b in python_blocks() if b.startswith("# README threads example")]
    exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    lost, replays = capsys.readouterr().out.rsplit(" ", 1)
    assert re.fullmatch(r"\[\d+(, \d+){0,2}\]", lost) and replays.strip() == "True"


def test_readme_failure_names_the_exception_as_pytest_prints_it() -> None:
    # pytest prints module.qualname; the README's failure shows what a user imports.
    name = f"{LineServerFailure.__module__}.{LineServerFailure.__qualname__}"
    assert name == "fakewinsock.testing.LineServerFailure"
    assert f"E   {name}: client 1" in README.read_text(encoding="utf-8")


def test_the_fakes_exceptions_are_named_as_users_import_them() -> None:
    # Tracebacks print module.qualname: "fakewinsock.DeadlockError", not the private module.
    import fakewinsock

    for cls in (fakewinsock.WinsockUsageError, fakewinsock.LeakError, fakewinsock.DeadlockError,
                fakewinsock.BusyLoopError, fakewinsock.NotEmulatedError, fakewinsock.InternalError):
        assert cls.__module__ == "fakewinsock" and getattr(fakewinsock, cls.__qualname__) is cls, cls
