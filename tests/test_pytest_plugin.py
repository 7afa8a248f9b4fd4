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


LEFT_THREADS = '''
import threading
import pytest
from fakewinsock import FakeWinsock
from fakewinsock.constants import *

def program_threads():
    return [t.name for t in threading.enumerate() if t.name.startswith("fakewinsock T") and t.is_alive()]

def start_threads(ws):
    """A thread blocked for ever, one runnable, one suspended."""
    ws.WSAStartup(MAKEWORD(2, 2))
    ev = ws.WSACreateEvent()
    def blocked(param):
        return ws.WaitForSingleObject(ev, INFINITE)
    def busy(param):
        for _ in range(1000):
            ws.WSAResetEvent(ev)
        return 0
    ws.CreateThread(None, 0, blocked, None, 0)
    ws.CreateThread(None, 0, busy, None, 0)
    ws.CreateThread(None, 0, busy, None, CREATE_SUSPENDED)
    ws.Sleep(0)

def test_own_fake():
    start_threads(FakeWinsock(seed=1))   # made in the test body, not by the fixture

def test_fixture_fake(fake_winsock):
    start_threads(fake_winsock)

def test_fails_anyway():
    start_threads(FakeWinsock(seed=2))
    assert False, "the test's own failure"

def test_two_fakes():
    start_threads(FakeWinsock(seed=4))
    start_threads(FakeWinsock(seed=5))

def test_ends_them_itself():
    ws = FakeWinsock(seed=3)
    start_threads(ws)
    assert len(ws.end_threads()) == 3

def test_later():
    assert program_threads() == []
'''


def test_threads_a_test_leaves_alive_are_ended_and_named(pytester: pytest.Pytester) -> None:
    """Before: the tests passed and their Python threads lived on, parked, for
    the rest of the session (test_later saw twelve); a fake the test made itself
    was never cleaned up, the fixture's silently."""
    pytester.makepyfile(LEFT_THREADS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5, failed=1, errors=3)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_own_fake*", "*ERROR at teardown of test_fixture_fake*"])
    assert "ERROR at teardown of test_fails_anyway" not in out  # its own failure is the story
    assert "the test's own failure" in out
    result.stdout.fnmatch_lines([
        "fakewinsock: the test left 3 program threads alive (ended now, unwound where each was parked):",
        "  T2 (thread 0x*, start routine start_threads.<locals>.blocked): waits in WaitForSingleObject(*INFINITE)",
        "  T3 (thread 0x*, start routine start_threads.<locals>.busy): runnable",
        "  T4 (thread 0x*, start routine start_threads.<locals>.busy): suspended (CREATE_SUSPENDED, never resumed)",
        "A test ends the threads it starts*ws.end_threads() at the end of the test.",
    ])
    result.stdout.fnmatch_lines([  # threads of several fakes: which is whose
        "fakewinsock: the test left 6 program threads alive*",
        *(f"  fake {n}: T{t} (*" for n in (1, 2) for t in (2, 3, 4)),
    ])


MODULE_FAKE = '''
import pytest
from fakewinsock import FakeWinsock
from fakewinsock.constants import *

@pytest.fixture(scope="module")
def shared():
    ws = FakeWinsock(seed=1)
    ws.WSAStartup(MAKEWORD(2, 2))
    go, box = ws.WSACreateEvent(), []
    def watcher(param):  # made before the tests: waits for a thread the first test makes
        ws.WaitForSingleObject(go, INFINITE)
        return ws.WaitForSingleObject(box[0], INFINITE)
    box.append(ws.CreateThread(None, 0, watcher, None, 0).hThread)
    ws.Sleep(1)
    yield ws, go, box
    ws.end_threads()

def test_leaves_one(shared):
    ws, go, box = shared
    ev = ws.WSACreateEvent()
    box[0:0] = [ws.CreateThread(None, 0, lambda p: ws.WaitForSingleObject(ev, INFINITE), None, 0).hThread]
    ws.WSASetEvent(go)
    ws.Sleep(1)  # the watcher now waits for the new thread

def test_the_fake_lives_on(shared):
    ws, go, box = shared
    assert ws.WaitForSingleObject(box[1], 1000) == WAIT_OBJECT_0  # the watcher saw its thread end
    h = ws.CreateThread(None, 0, lambda p: 7, None, 0).hThread
    assert ws.WaitForSingleObject(h, INFINITE) == WAIT_OBJECT_0
    assert ws.GetExitCodeThread(h).exit_code == 7
'''


def test_only_the_threads_the_test_made_are_ended_and_their_waiters_woken(pytester: pytest.Pytester) -> None:
    """A fake shared between tests (a module fixture) keeps working: only the
    thread the first test made is ended (the watcher, made by the fixture
    before it, is not), and ending it signals its handle, so the watcher,
    waiting for it, returns."""
    pytester.makepyfile(MODULE_FAKE)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*the test left 1 program thread alive*", "  T3 (*): waits in WaitForSingleObject*"])


FORGOTTEN = '''
import gc
import weakref

from fakewinsock import FakeWinsock

refs = []


def test_fixture_fake(fake_winsock):
    refs.append(weakref.ref(fake_winsock))


def test_body_fake():
    ws = FakeWinsock(seed=1)  # tracked by the plugin for its failure report
    refs.append(weakref.ref(ws))


def test_both_are_gone():
    gc.collect()
    assert len(refs) == 2
    assert [r() is None for r in refs] == [True, True]
'''


def test_a_finished_test_keeps_no_fake_alive(pytester: pytest.Pytester) -> None:
    """pytest keeps every item until the session ends: the plugin forgets a
    test's fakes once its reports are made, or a session of long Hypothesis
    properties keeps every one's world (its fake, the engine's data of every
    example: 14.8 GB after the 87 slow recipe tests in one process)."""
    pytester.makepyfile(FORGOTTEN)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
