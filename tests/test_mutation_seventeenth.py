"""The seventeenth session's mutation samples (issue 18): tests for the survivors
of the first samples of fakewinsock.testing (the checker and the scenarios).

The strategies are made in the tests, not when the module is imported: mutmut's
mutant is switched on only while a test runs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from fakewinsock import BusyLoopError, FakeConfig, FakeWinsock
from fakewinsock.constants import AF_INET, IPPROTO_TCP, MAKEWORD, SO_TYPE, SOCK_STREAM, SOL_SOCKET, WSA_FLAG_OVERLAPPED
from fakewinsock.testing import (
    FEATURES,
    ChatModel,
    ClientFault,
    ClientScript,
    EchoModel,
    FaultPlan,
    LineServerFailure,
    LineServerReport,
    Scenario,
    check_line_server,
    scenarios,
)
from fakewinsock.testing._checker import _first_busy_loop
from ovserver import Limits
from ovserver._events import EventServer
from ovserver._protocol import Action, Hub
from tests.test_testing import Ovserver, limited, with_hub

_SIZE = {"clients": 1, "lines": 1, "bytes": 1, "sends": 1, "faults": 0}


def test_a_failure_shows_its_first_error_and_eleven_more_at_most() -> None:
    """LineServerFailure's message: the first error, the count of the others,
    then the next eleven of them (a run that goes wrong early can pile up
    hundreds: the message stays readable)."""
    report = LineServerReport(dict(_SIZE), errors=[f"error {i}" for i in range(14)])
    lines = str(LineServerFailure(report)).splitlines()
    assert lines[0] == "error 0"
    assert "13 more:" in lines
    assert [ln for ln in lines if ln.startswith("  ")] == [f"  error {i}" for i in range(1, 12)]


def test_the_busy_loop_behind_a_cycle_of_exceptions_is_found() -> None:
    """A server's clean-up that re-raises can chain its exceptions into a
    cycle (``__context__`` set by hand, or an exception raised again while it
    is handled): the search for the BusyLoopError behind a failure ends."""
    spun = BusyLoopError("more than 1000 Winsock calls")
    later = RuntimeError("clean-up failed")
    later.__context__ = spun
    spun.__context__ = later
    assert _first_busy_loop(later) is spun
    assert _first_busy_loop(RuntimeError("no busy loop")) is None


def test_a_client_that_resets_as_soon_as_it_is_connected_is_counted() -> None:
    """ClientFault(kind="reset", before_chunk=-1): the client resets at once,
    while the server may still be accepting it (not after some chunk)."""
    clients = tuple(ClientScript.of(b"a", b"b") for _ in range(2))
    r = check_line_server(lambda ws, a: Ovserver(ws, a), Scenario(clients, FaultPlan((ClientFault(0, "reset", -1),))),
                          seed=1)
    assert (r.resets, r.leaves, r.replies) == (1, 0, 2)


def test_an_unexpected_chat_line_is_shown_against_the_next_line_of_a_client_not_heard_yet() -> None:
    """ovserver's echo checked against the chat model: client 1 gets its own
    line back where no own line is due; the message compares it with client
    0's next line (client 1 has heard nothing from client 0 yet)."""
    two = Scenario((ClientScript.of(b"from zero"), ClientScript.of(b"from one", arrive_ns=10_000_000)))
    with pytest.raises(LineServerFailure, match=r"client 1 \(127.0.0.1:\d+\): unexpected line b'from one\\n' \(own "
                                                r"line 0 expected: no more own lines, or the next line of another "
                                                r"client\); against client 0's next line: first difference at byte 0"):
        check_line_server(lambda ws, a: Ovserver(ws, a, "events", "echo"), two,
                          ChatModel(welcome=lambda name: b""), seed=1)


def test_an_unterminated_chat_line_the_model_keeps_is_owed_to_the_others() -> None:
    """ChatModel(partial_at_eof="line"): a client's unterminated last line is a
    line once its FIN ends it, and goes to the others.  ovserver drops it: a
    client that stays waits for it in vain, and the checker says so."""
    two = Scenario((ClientScript.of(b"a", tail=b"no newline", arrive_ns=5_000_000), ClientScript.of(b"b")))
    check_line_server(lambda ws, a: Ovserver(ws, a, "routines", "chat"), two, ChatModel(), seed=1)
    with pytest.raises(LineServerFailure, match=r"client 1 \(127.0.0.1:\d+\): not served in 30 s: still waiting for "
                                                r"replies \(received 1 of 1 own lines, 1 of 2 from client 0\)"):
        check_line_server(lambda ws, a: Ovserver(ws, a, "routines", "chat"), two, ChatModel(partial_at_eof="line"),
                          seed=1)


class _Marked(Hub):
    def receive(self, cid: int, data: bytes | bytearray | memoryview) -> list[Action]:
        return super().receive(cid, bytes(data).replace(b"\n", b"\n#\n"))  # each line, then a line "#"


class _MarkedEcho(EchoModel):
    def reply(self, name: bytes, line: bytes) -> tuple[bytes, bytes]:
        return line + b"\n#\n", b""


def test_a_reply_of_two_lines_is_expected_line_by_line() -> None:
    """A model may answer a line with several lines: each is expected on its
    own, also by a client that reads them 2 bytes at a time (each read then
    ends one of them)."""
    one = Scenario((ClientScript.of(b"a", b"bc", b"d", chunk=1, read_bytes=2, read_every_ns=100_000),
                    ClientScript.of(b"e" * 50, chunk=7)))
    r = check_line_server(limited(cls=with_hub(EventServer, _Marked), limits=Limits()), one, _MarkedEcho(), seed=3)
    assert r.ok and r.replies == 8


@settings(max_examples=1, database=None, derandomize=True, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_schedule_draws_scale_with_the_scenario(data: st.DataObject) -> None:
    """Under Hypothesis, a run draws its schedule's choices up to a budget of
    200 plus 30 per client, line and send (then the fake takes its defaults):
    a scenario of 12 clients draws past 200."""
    many = Scenario(tuple(ClientScript.of(b"line %d" % i, b"more", chunk=3) for i in range(12)))
    r = check_line_server(lambda ws, a: Ovserver(ws, a), many, data=data)
    assert r.draws is not None and r.draws > 260


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"clients": [1, 3]}, "clients"),  # a list is no range: a tuple (lo, hi)
    ({"lines": (1, 2, 3)}, "lines"),  # three numbers are no range
])
def test_a_range_is_a_count_or_a_tuple_of_two(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name}: expected a count or a range \\(lo, hi\\), not "):
        scenarios(**kwargs)


def test_the_swarm_injects_a_failure_into_up_to_three_calls_in_a_row() -> None:
    """An injection of the swarm makes 1 to 3 calls in a row fail (``count``),
    as the plain traffic's do."""
    found = find(scenarios(features=("injections",)), lambda s: any(i.count == 3 for i in s.faults.injections),
                 settings=settings(database=None, derandomize=True, max_examples=500,
                                   suppress_health_check=list(HealthCheck)))
    assert any(i.count == 3 for i in found.faults.injections)


def test_a_leaver_of_departures_may_end_by_a_line_over_the_limit() -> None:
    """departures, the line limit known: the member that leaves ends 1 time in
    2 by a line one byte over ``max_line`` (the server hangs up on it: error
    line, then its FIN), with no fault of its own, rather than by its FIN."""
    def hung(s: Scenario) -> bool:
        return s.faults.fault_of(0) is None and bool(s.clients[0].lines) and len(s.clients[0].lines[-1]) == 101

    found = find(scenarios(features=("departures",), max_line=100), hung,
                 settings=settings(database=None, derandomize=True, max_examples=500,
                                   suppress_health_check=list(HealthCheck)))
    assert hung(found)


_FEW = settings(max_examples=30, database=None, derandomize=True, deadline=None,
                suppress_health_check=list(HealthCheck))


def test_the_plain_traffic_has_at_least_the_clients_asked_for() -> None:
    # (each strategy made in the test, not when the module is imported: mutmut's mutant is switched on then)
    @_FEW
    @given(scenario=scenarios(clients=(2, 3), lines=(0, 2), swarm=False))
    def check(scenario: Scenario) -> None:
        assert 2 <= len(scenario.clients) <= 3

    check()


def test_a_crowds_first_client_sends_a_line_of_exactly_the_limit() -> None:
    """crowd: its first client, which ends early, sends (7 times in 8) a line
    of ``max_line`` bytes, the most the server takes, whose reply a window
    holds back."""
    def at_limit(s: Scenario) -> bool:
        return any(len(line) == 100 for line in s.clients[0].lines) if s.clients else False

    found = find(scenarios(features=("crowd",), max_line=100, max_clients=2, clients=(3, 4)), at_limit,
                 settings=settings(database=None, derandomize=True, max_examples=300,
                                   suppress_health_check=list(HealthCheck)))
    assert at_limit(found)



FEATURES_ALL = tuple(f for group in FEATURES.values() for f in group)
_FAULTS = {"resets", "stopped_readers", "half_close", "fin_after_burst", "injections", "early_stop", "backlog",
           "talk_after_leave", "departures", "accept_faults", "reset_after_fin", "deaf_drains"}


def test_the_swarm_without_faults_draws_none() -> None:
    """``scenarios(faults=False)``: the swarm leaves out every feature that
    makes something go wrong (resets, leaves, injections, stops, backlogs).
    (Not busy_server: a busy server is asked to stop, early_stop or not.)"""
    @_FEW
    @given(scenario=scenarios(faults=False, clients=(1, 4), lines=(0, 3),
                              features=tuple(f for f in FEATURES_ALL
                                             if f not in _FAULTS and f not in ("busy_server", "idle_clients",
                                                                               "hangup_edges", "deaf_drains"))))
    def check(scenario: Scenario) -> None:
        assert not set(scenario.features) & _FAULTS
        assert scenario.faults.clients == () and scenario.faults.injections == ()
        assert scenario.faults.stop_at_ns is None and scenario.faults.backlog is None

    check()


def test_a_crowd_of_few_keeps_a_listen_backlog_of_its_own() -> None:
    """crowd without the backlog feature: a crowd of few clients still keeps
    a listen backlog of its own (a small one: some of them are refused and
    retry)."""
    found = find(scenarios(features=("crowd",), max_clients=2, clients=(3, 5)),
                 lambda s: s.faults.backlog is not None,
                 settings=settings(database=None, derandomize=True, max_examples=300,
                                   suppress_health_check=list(HealthCheck)))
    assert found.faults.backlog is not None


def test_the_call_over_the_budget_is_named_getsockopt() -> None:
    """The BusyLoopError names the call that went over FakeConfig.max_calls:
    each API function enters the kernel under its own name (here getsockopt)."""
    ws = FakeWinsock(config=FakeConfig(max_calls=2))
    ws.WSAStartup(MAKEWORD(2, 2))
    s = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
    with pytest.raises(BusyLoopError, match=r"^getsockopt: more than 2 Winsock calls"):
        ws.getsockopt(s, SOL_SOCKET, SO_TYPE, 4)
