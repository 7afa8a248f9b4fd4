"""The pytest plugin: seeded fakes, replay, trace tail on failure, backends."""

from __future__ import annotations

import re

import pytest

from fakewinsock import available_backends

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
    if "real" in available_backends():  # Windows: one more backend, and the real-only test runs
        result.assert_outcomes(passed=4)
        result.stdout.fnmatch_lines(["*test_backend?fake? PASSED*", "*test_backend?real? PASSED*"])
    else:
        result.assert_outcomes(passed=2, skipped=1)
        result.stdout.fnmatch_lines(["*test_backend?fake? PASSED*", "*needs the real Winsock backend*"])


HYPOTHESIS_FAILING = '''
from hypothesis import Phase, given, settings, strategies as st
from fakewinsock.testing import ClientScript, EchoModel, Scenario, check_line_server
from ovserver import ServerConfig, create_server

class Chat:  # ovserver in chat mode, wrongly expected to echo
    def __init__(self, ws, address):
        self.ws = ws
        self.server = create_server(ws, ServerConfig(host=address[0], port=address[1], mode="chat"))
    def serve(self):
        self.server.run()
    def stop(self):
        self.server.request_stop(signal=self.ws.signal_event)

@settings(deadline=None, print_blob=False, phases=[p for p in Phase if p is not Phase.explain])
@given(data=st.data(), n=st.integers(1, 3))
def test_echo(data, n):
    scenario = Scenario(tuple(ClientScript.of(b"hi") for _ in range(n)))
    check_line_server(Chat, scenario, EchoModel(), data=data)
'''


def test_a_hypothesis_failure_shows_its_schedule_and_replays(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(HYPOTHESIS_FAILING)
    first = pytester.runpytest("-p", "no:cacheprovider")
    first.assert_outcomes(failed=1)
    out = first.stdout.str()
    assert re.search(r"(Falsifying example|Failing test case): test_echo\(", out)  # (Hypothesis < / >= 6.16x)
    assert "unexpected line b'* welcome 127.0.0.1:" in out
    assert "fakewinsock (last fake the test made)" in out
    assert re.search(r"schedule: \d+ choices drawn from Hypothesis; running the test again replays", out)
    assert re.search(r"run: 1 clients, 1 lines, 3 bytes in 1 sends, 0 faults; \d+ schedule draws", out)
    trace = re.findall(r"\d{7} t=\S+ T\d .*", out)  # in the failure message, after "last trace records:"
    assert any("AcceptEx" in line for line in trace)

    again = pytester.runpytest("-p", "no:cacheprovider")  # the example database (.hypothesis/) replays it
    assert re.findall(r"\d{7} t=\S+ T\d .*", again.stdout.str()) == trace


def test_summary_lines_travel_with_the_reports_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        '''
import pytest

@pytest.mark.parametrize("i", range(4))
def test_s(i, winsock_summary):
    winsock_summary(f"line {i}")
'''
    )
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*= fakewinsock summary =*", "line 0", "line 1", "line 2", "line 3"])
