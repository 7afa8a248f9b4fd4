"""The checker told a server's idle time-out (the model's ``idle_timeout_ms``; ovserver's
``serve --idle-timeout-ms``): a client the server closes as idle is expected behaviour when it has
been idle that long by its own account, a failure when it is closed sooner, and a client that reads,
accepted, with nothing on its way, must be closed once idle (search24).  Each check is shown to fail
on a mutant of tests/mutants that breaks the rule it guards."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakewinsock.testing import (
    ChatModel,
    ClientScript,
    EchoModel,
    LineServerFailure,
    LineServerReport,
    Scenario,
    check_line_server,
    scenarios,
)
from ovserver import Server
from ovserver._events import EventServer
from ovserver._iocp import IocpServer
from ovserver._routines import RoutineServer
from tests.mutants.idle_mutants import IdleClockOnPartialData, IdleDeadlineNotArmed
from tests.mutants.properties import OvserverUnderTest
from tests.mutants.red7_mutants import IdleNewlineOffByOne
from tests.mutants.red9_mutants import IdleClockAnyBytes, IdleCloseAbortive

_MS = 1_000_000
IDLE_MS = 100


def _run(cls: type[Server], mode: str, scenario: Scenario) -> LineServerReport:
    model = (EchoModel if mode == "echo" else ChatModel)(idle_timeout_ms=IDLE_MS)
    return check_line_server(lambda ws, address: OvserverUnderTest(cls, ws, address, mode, idle_timeout_ms=IDLE_MS),
                             scenario, model, seed=1)


def _talker(gap_ns: int) -> Scenario:
    """A chat member alone: three lines, each whole in one send, ``gap_ns`` apart; nothing comes back."""
    lines = (b"one", b"two", b"three")
    return Scenario((ClientScript(lines, tuple(x + b"\n" for x in lines), (0, gap_ns, gap_ns)),))


def test_a_talker_under_the_time_out_is_not_closed_and_one_closed_early_is_reported() -> None:
    report = _run(RoutineServer, "chat", _talker(59 * _MS))
    assert report.timed_out == 0 and report.replies == 1  # (the welcome line)
    # red7's mutant does not count a receive that ends with its newline: it closes the member at 100 ms
    with pytest.raises(LineServerFailure, match="idle only .* under the idle time-out of 100 ms"):
        _run(IdleNewlineOffByOne, "chat", _talker(59 * _MS))


def test_a_talker_over_the_time_out_is_closed_as_due() -> None:
    report = _run(RoutineServer, "chat", _talker(201 * _MS))
    assert report.timed_out == 1


def test_a_client_that_stays_is_closed_once_idle_or_reported() -> None:
    scenario = Scenario((ClientScript.of(b"hello", linger_ns=400 * _MS),))
    report = _run(EventServer, "echo", scenario)
    assert report.timed_out == 1
    with pytest.raises(LineServerFailure, match="not closed by the server's idle time-out of 100 ms"):
        _run(IdleDeadlineNotArmed, "echo", scenario)


@pytest.mark.parametrize("cls", [RoutineServer, EventServer, IocpServer], ids=["routines", "events", "iocp"])
def test_an_idle_client_owed_nothing_is_closed_gracefully_or_reported(cls: type[Server]) -> None:
    """An echo client served and then idle, owed nothing, nothing on its way: the idle time-out's close is a FIN
    (the model: a reset only with a send in flight); red9's idle-close-abortive resets it (recipe31)."""
    scenario = Scenario((ClientScript.of(b"hello", linger_ns=400 * _MS),))
    assert _run(cls, "echo", scenario).timed_out == 1
    with pytest.raises(LineServerFailure, match="reset by the server's idle time-out, though it had read all it was "
                                                "owed and nothing was on its way either way"):
        _run(IdleCloseAbortive, "echo", scenario)


@pytest.mark.parametrize("gap_ns", [29_375_000, 40 * _MS, 50 * _MS, 100_625_000])
@pytest.mark.parametrize(("cls", "mutant"), [(EventServer, IdleClockOnPartialData), (IocpServer, IdleClockAnyBytes)],
                         ids=["events", "iocp"])
def test_a_dribble_without_a_newline_does_not_keep_a_client(cls: type[Server], mutant: type[Server],
                                                            gap_ns: int) -> None:
    """A slowloris (the swarm's idle_clients' dribbler: a byte each half its idle time, under, at and over the
    time-out) is closed by a correct server, and a server that lets any bytes restart its clock is reported.
    The bytes the checker finds on their way are not counted as activity when they hold no newline (search27:
    with a gap of 50 ms, a multiple of its looks' 25 ms, every other look came right after a byte was sent and
    restarted its count, so red9's idle-clock-any-bytes passed)."""
    dribble = b"slowlory"
    chunks = tuple(dribble[k:k + 1] for k in range(len(dribble))) + (b"\n",)
    scenario = Scenario((ClientScript((dribble,), chunks, (0,) + (gap_ns,) * len(dribble)),))
    assert _run(cls, "echo", scenario).timed_out == 1
    with pytest.raises(LineServerFailure, match="not closed by the server's idle time-out"):
        _run(mutant, "echo", scenario)


def test_idle_timeout_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="idle_timeout_ms"):
        EchoModel(idle_timeout_ms=-1)
    with pytest.raises(ValueError, match="idle_timeout_ms"):
        scenarios(idle_timeout_ms=0)
    assert EchoModel(idle_timeout_ms=0).idle_timeout_ms is None  # (ovserver's 0: off)


@settings(max_examples=30, database=None, derandomize=True, deadline=None)
@given(scenario=scenarios(clients=(1, 2), lines=(0, 3), features=("idle_clients",), idle_timeout_ms=IDLE_MS),
       data=st.data())
def test_idle_clients_go_idle_across_the_time_out(scenario: Scenario, data: st.DataObject) -> None:
    """The swarm's idle_clients, alone: a correct server passes (and the feature leaves a trace)."""
    check_line_server(lambda ws, address: OvserverUnderTest(RoutineServer, ws, address, "echo",
                                                            idle_timeout_ms=IDLE_MS),
                      scenario, EchoModel(idle_timeout_ms=IDLE_MS), data=data)


def test_idle_clients_named_without_a_time_out_is_refused() -> None:
    """idle_clients goes idle across the server's time-out: named without ``idle_timeout_ms`` it could draw
    nothing, so scenarios() says so at once (as for any feature the other arguments rule out), not silently."""
    with pytest.raises(ValueError, match=r"features: \['idle_clients'\] cannot be drawn .*idle_timeout_ms=None"):
        scenarios(features=("idle_clients",))
    scenarios(features=("idle_clients",), idle_timeout_ms=IDLE_MS)  # (with one: accepted)
