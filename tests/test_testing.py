"""fakewinsock.testing: the Hypothesis chooser (shrinking, replay), the strategies,
and check_line_server's verdicts, good and bad."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.database import InMemoryExampleDatabase

from fakewinsock import FakeConfig, FakeWinsock
from fakewinsock.constants import FALSE, MAKEWORD, TRUE, WSA_INFINITE, WSAENOBUFS
from fakewinsock.testing import (
    ChatModel,
    ClientFault,
    ClientScript,
    EchoModel,
    FaultPlan,
    HypothesisChooser,
    Injection,
    LineServerFailure,
    Scenario,
    check_line_server,
    fake_configs,
    fault_plans,
    scenarios,
)
from ovserver import Limits, Server, ServerConfig, create_server
from tests.conformance._harness import Harness

FAST = settings(deadline=None, database=None, derandomize=True, print_blob=False,
                phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
                suppress_health_check=[HealthCheck.too_slow])
MS = 1_000_000


# ---------------------------------------------------------------- every choice from Hypothesis


def first_receive(ws: FakeWinsock, data: bytes) -> bytes:
    """The peer sends ``data`` in one send; what does the server's first WSARecv get?"""
    h = Harness(ws)
    h.start()
    a = h.accept()
    a.peer.send(data)
    ov = h.overlapped()
    rc, _, buf = h.recv(a.sock, ov, 4096)
    ok, n, err = h.complete(a.sock, ov)  # immediate or pending: the event says when
    assert ok, err
    h.finish()
    return bytes(buf[:n])


def test_a_failure_shrinks_to_a_small_schedule() -> None:
    """The lecture notes' naive assumption (one send, one receive) fails once the fake
    splits a segment or a receive takes part of what is there; the shrunk
    example needs only a handful of schedule choices."""
    schedules: list[HypothesisChooser] = []

    @FAST
    @given(data=st.data())
    def one_send_one_receive(data: st.DataObject) -> None:
        chooser = HypothesisChooser(data, record=True)
        schedules.append(chooser)
        config = FakeConfig(immediate=0.5, split=0.5, partial_recv=0.5, background=0.5)
        ws = FakeWinsock(config=config, chooser=chooser)
        got = first_receive(ws, b"x" * 300)
        assert got == b"x" * 300, f"the first receive got {len(got)} of 300 bytes"

    with pytest.raises(AssertionError, match="the first receive got 1 of 300 bytes"):
        one_send_one_receive()
    final = schedules[-1]
    assert final.schedule is not None
    labels = [label for label, _ in final.schedule]
    assert "split" in labels or "partial" in labels
    assert final.draws <= 12, final.describe_schedule()
    assert max(s.draws for s in schedules) > final.draws


def test_the_example_database_replays_the_schedule() -> None:
    db = InMemoryExampleDatabase()
    seen: list[list[tuple[str, int]]] = []

    def run(phases: list[Phase]) -> None:
        @settings(FAST, database=db, derandomize=False, phases=phases)
        @given(data=st.data())
        def one_send_one_receive(data: st.DataObject) -> None:
            chooser = HypothesisChooser(data, record=True)
            ws = FakeWinsock(config=FakeConfig(immediate=0.5, split=0.5, partial_recv=0.5), chooser=chooser)
            got = first_receive(ws, b"y" * 200)
            assert chooser.schedule is not None
            seen.append(list(chooser.schedule))
            assert got == b"y" * 200

        with pytest.raises(AssertionError):
            one_send_one_receive()

    run([Phase.generate, Phase.shrink])
    found = seen[-1]
    seen.clear()
    run([Phase.reuse])  # only replay what the database holds
    assert seen[0] == found  # the very first run replays the saved failure


def test_the_chooser_stops_drawing_after_its_budget() -> None:
    @FAST
    @given(data=st.data())
    def bounded(data: st.DataObject) -> None:
        chooser = HypothesisChooser(data, max_draws=3)
        answers = [chooser.integer(0, 9, "q") for _ in range(10)]
        assert chooser.draws == 3 and answers[3:] == [0] * 7
        assert chooser.boolean(0.5, "b") is False and chooser.boolean(1.0, "b") is True
        assert chooser.span((5, 5), "s") == 5

    bounded()


# ---------------------------------------------------------------- strategies


@FAST
@given(scenario=scenarios(clients=(0, 5), lines=(0, 4), inject=("AcceptEx", "WSARecv", "WSASend")))
def test_scenarios_are_valid(scenario: Scenario) -> None:
    assert len(scenario.clients) <= 5
    for script in scenario.clients:
        assert b"".join(script.chunks) == script.stream and len(script.lines) <= 4
        assert len(script.chunks) <= 7
    for fault in scenario.faults.clients:
        script = scenario.clients[fault.client]
        if fault.kind == "leave":
            assert fault.before_chunk in script.line_boundaries()
        else:
            assert 0 <= fault.before_chunk <= len(script.chunks)
    size = scenario.size()
    assert size["clients"] == len(scenario.clients)
    assert size["bytes"] == sum(len(c.stream) for c in scenario.clients)


@FAST
@given(data=st.data())
def test_fault_plans_fit_their_scripts(data: st.DataObject) -> None:
    scripts = [ClientScript.of(b"a", b"bb", chunk=2), ClientScript.of(), ClientScript.of(b"ccc")]
    plan = data.draw(fault_plans(scripts, inject=("WSASend",), backlog=False, early_stop=False))
    assert plan.backlog is None and plan.stop_at_ns is None
    assert all(i.call == "WSASend" and i.error == WSAENOBUFS for i in plan.injections)
    assert plan.allowed_drops == sum(i.count for i in plan.injections)
    Scenario(tuple(scripts), plan)  # validates


@FAST
@given(config=fake_configs(window=512))
def test_fake_configs_take_overrides(config: FakeConfig) -> None:
    assert config.window == 512


def test_scripts_and_faults_are_validated() -> None:
    s = ClientScript.of(b"ab", b"c", chunk=2)
    assert s.chunks == (b"ab", b"\nc", b"\n") and s.line_boundaries() == [0] and s.lines_before(2) == 1
    assert ClientScript.of(b"ab", b"c", chunk=3).line_boundaries() == [0, 1]
    with pytest.raises(ValueError, match="newline"):
        ClientScript((b"a\nb",), (b"a\nb\n",), (0,))
    with pytest.raises(ValueError, match="join"):
        ClientScript((b"a",), (b"b\n",), (0,))
    with pytest.raises(ValueError, match="delay"):
        ClientScript((b"a",), (b"a\n",), ())
    with pytest.raises(ValueError, match="line"):
        Scenario((s,), FaultPlan((ClientFault(0, "leave", 1),)))
    with pytest.raises(ValueError, match="clients"):
        Scenario((s,), FaultPlan((ClientFault(1, "reset", 0),)))
    with pytest.raises(ValueError, match="range"):
        scenarios(clients=(3, 1))


# ---------------------------------------------------------------- check_line_server on ovserver


class Ovserver:
    """ovserver, as check_line_server drives a server."""

    def __init__(self, ws: FakeWinsock, address: tuple[str, int], model: str = "events", mode: str = "echo",
                 limits: Limits | None = None) -> None:
        self.ws = ws
        self.server: Server = create_server(ws, ServerConfig(host=address[0], port=address[1], model=model,
                                                             mode=mode, limits=limits or Limits()))

    def serve(self) -> None:
        self.server.run()

    def stop(self) -> None:
        self.server.request_stop(signal=self.ws.signal_event)


TWO = Scenario((ClientScript.of(b"hello", b"", b"\x00\xff", chunk=3),
                ClientScript.of(b"x" * 500, chunk=100, arrive_ns=50_000)))


@pytest.mark.parametrize("model", ["events", "routines"])
def test_a_correct_server_passes_and_the_report_says_what_happened(model: str) -> None:
    r = check_line_server(lambda ws, a: Ovserver(ws, a, model), TWO, EchoModel(), seed=5)
    assert r.ok and r.replies == 4 and r.seed == 5 and r.draws is None
    assert r.size == {"clients": 2, "lines": 4, "bytes": 511, "sends": 10, "faults": 0}
    again = check_line_server(lambda ws, a: Ovserver(ws, a, model), TWO, EchoModel(), seed=5)
    assert (again.calls, again.virtual_ns) == (r.calls, r.virtual_ns)  # a seed replays the run


def test_chat_is_checked_exactly_between_clients_that_stay() -> None:
    three = Scenario(tuple(ClientScript.of(b"line %d" % i, b"more", chunk=4) for i in range(3)))
    r = check_line_server(lambda ws, a: Ovserver(ws, a, "routines", "chat"), three, ChatModel(), seed=1)
    assert r.replies == 3 + 3 * 2 * 2  # greetings, then each line to the two others


def test_faults_resets_leaves_refusals_injections_and_an_early_stop() -> None:
    clients = tuple(ClientScript.of(b"a", b"b", b"c", chunk=2) for _ in range(4))
    plan = FaultPlan((ClientFault(0, "reset", 2), ClientFault(1, "leave", 0)),
                     (Injection(0, "AcceptEx", WSAENOBUFS, 2),), backlog=1)
    r = check_line_server(lambda ws, a: Ovserver(ws, a), Scenario(clients, plan), seed=3)
    assert (r.resets, r.leaves) == (1, 1) and r.refusals > 0
    stopped = replace(plan, stop_at_ns=200_000)
    check_line_server(lambda ws, a: Ovserver(ws, a, "routines"), Scenario(clients, stopped), seed=3)


def test_an_injected_receive_failure_may_cost_one_client() -> None:
    clients = tuple(ClientScript.of(b"a") for _ in range(3))
    plan = FaultPlan(injections=(Injection(0, "WSARecv", WSAENOBUFS, 1),))
    r = check_line_server(lambda ws, a: Ovserver(ws, a), Scenario(clients, plan), seed=2,
                          config=FakeConfig(immediate=0.0))
    assert r.dropped == 1


def test_a_wrong_model_is_a_failure_with_the_run_and_the_trace() -> None:
    with pytest.raises(LineServerFailure) as info:
        check_line_server(lambda ws, a: Ovserver(ws, a, mode="chat"), TWO, EchoModel(), seed=5)
    message = str(info.value)
    assert "unexpected line b'* welcome 127.0.0.1:" in message
    assert "run: 2 clients, 4 lines, 511 bytes in 10 sends, 0 faults; seed 5" in message
    assert "last trace records:" in message and "WSARecv" in message
    assert not info.value.report.ok


def test_a_hypothesis_run_reports_its_schedule() -> None:
    @FAST
    @given(data=st.data())
    def wrong(data: st.DataObject) -> None:
        check_line_server(lambda ws, a: Ovserver(ws, a, mode="chat"), TWO, EchoModel(), data=data)

    with pytest.raises(LineServerFailure) as info:
        wrong()
    r = info.value.report
    assert r.draws is not None and r.seed is None
    assert "schedule drawn from Hypothesis: " in str(info.value)


def test_a_model_must_answer_in_whole_lines() -> None:
    class Broken(EchoModel):
        def reply(self, name: bytes, line: bytes) -> tuple[bytes, bytes]:
            return line, b""

    with pytest.raises(LineServerFailure, match="whole lines"):
        check_line_server(lambda ws, a: Ovserver(ws, a), TWO, Broken(), seed=1)


# ---------------------------------------------------------------- servers that misbehave


class Stub:
    """A server that starts Winsock, then does what ``body`` says until stopped."""

    def __init__(self, ws: FakeWinsock, body: str) -> None:
        self.ws = ws
        self.body = body
        self.stopped = False
        self.wake = 0

    def stop(self) -> None:
        self.stopped = True
        if self.wake:
            self.ws.signal_event(self.wake)

    def serve(self) -> None:
        ws = self.ws
        ws.WSAStartup(MAKEWORD(2, 2))
        if self.body == "return":
            ws.WSACleanup()
            return
        self.wake = ws.WSACreateEvent()
        if self.body == "spin":
            ws.WSASetEvent(self.wake)
            while not self.stopped:  # never resets the event
                ws.WSAWaitForMultipleEvents(1, [self.wake], FALSE, WSA_INFINITE, FALSE)
        elif self.body == "poll":
            while not self.stopped:
                ws.SleepEx(5, TRUE)
        else:
            while not self.stopped:
                ws.WSAWaitForMultipleEvents(1, [self.wake], FALSE, WSA_INFINITE, FALSE)
        if self.body != "leak":
            ws.WSACloseEvent(self.wake)
        ws.WSACleanup()


NOBODY = Scenario(())
ONE = Scenario((ClientScript.of(b"hi"),))


@pytest.mark.parametrize(("body", "scenario", "verdict"), [
    ("return", NOBODY, "serve() returned before stop() was called"),
    ("spin", NOBODY, "busy loop: WSAWaitForMultipleEvents: more than 1000 Winsock calls"),
    ("poll", NOBODY, "busy polling: the server made"),
    ("leak", NOBODY, "left open after serve() returned: event"),
    ("deaf", ONE, "connection refused 40 times"),
])
def test_verdicts(body: str, scenario: Scenario, verdict: str) -> None:
    config = FakeConfig(strict_cleanup=False)
    with pytest.raises(LineServerFailure) as info:
        check_line_server(lambda ws, a: Stub(ws, body), scenario, seed=1, config=config)
    assert verdict in str(info.value)
