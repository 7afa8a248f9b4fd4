"""The pytest plugin: seeded fakes, replay, trace tail on failure, backends."""

from __future__ import annotations

import re

import pytest

pytest_plugins = ["pytester"]

FAILING = '''
import pytest
from fakewinsock.constants import *
from fakewinsock import WSAOVERLAPPED

def test_fails(fake_winsock):
    ws = fake_winsock
    ws.WSAStartup(MAKEWORD(2, 2))
    for _ in range(5):
        ev = ws.WSACreateEvent()
        ws.WSAWaitForMultipleEvents(1, [ev], FALSE, 10, FALSE)
    assert False, "boom"
'''


def seed_and_trace(text: str) -> tuple[int, str]:
    m = re.search(r"seed: (\d+)", text)
    assert m, text
    trace = "\n".join(line for line in text.splitlines() if re.match(r"^\d{7} t=", line))
    return int(m.group(1)), trace


def test_failure_shows_seed_replay_and_trace(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(FAILING)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "fakewinsock" in out and "replay: pytest 'test_failure_shows_seed_replay_and_trace.py::test_fails'" in out
    seed, trace = seed_and_trace(out)
    assert "WSAWaitForMultipleEvents" in trace

    replay = pytester.runpytest(f"--winsock-seed={seed}")
    seed2, trace2 = seed_and_trace(replay.stdout.str())
    assert (seed2, trace2) == (seed, trace)


def test_seed_base_changes_every_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_s(winsock_seed):\n    print('SEED', winsock_seed)\n")
    a = pytester.runpytest("-s")
    b = pytester.runpytest("-s", "--winsock-seed-base=7")
    sa = re.search(r"SEED (\d+)", a.stdout.str())
    sb = re.search(r"SEED (\d+)", b.stdout.str())
    assert sa and sb and sa.group(1) != sb.group(1)
    assert "seed base 7" in b.stdout.str()


def test_backend_fixture_and_config_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        '''
import pytest
from fakewinsock.constants import MAKEWORD

def test_backend(winsock_backend):
    assert winsock_backend.WSAStartup(MAKEWORD(2, 2)).error == 0
    assert winsock_backend.WSACleanup() == 0

@pytest.mark.winsock_config(immediate=0.0, backlog=7)
def test_config(fake_winsock):
    assert fake_winsock.config.backlog == 7

@pytest.mark.requires_real_winsock
def test_real_only():
    pass
'''
    )
    result = pytester.runpytest("-v", "-rs")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*test_backend?fake? PASSED*", "*needs the real Winsock backend*"])
