"""The eighteenth session's mutation samples (issue 18): tests for the survivors
of the first samples of fakewinsock.testing's chooser and models and of
fakewinsock's scripted client and peer, and for two survivors the seventeenth
session left (the scenarios' talk_after_leave, the interface's wait for all
events in a program thread).

The strategies are made in the tests, not when the module is imported: mutmut's
mutant is switched on only while a test runs."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis.errors import FlakyStrategyDefinition

from fakewinsock import FakeConfig, FakeWinsock, ScriptedChooser
from fakewinsock._scripted import ScriptedClient
from fakewinsock.constants import FALSE, INFINITE, MAKEWORD, TRUE, WAIT_OBJECT_0, WSA_WAIT_EVENT_0
from fakewinsock.testing import (
    ChatModel,
    ClientScript,
    HypothesisChooser,
    LineServerFailure,
    Scenario,
    check_line_server,
    fake_configs,
    scenarios,
)
from fakewinsock.testing._chooser import DIVERGENCE_ATTR, FLAKY_HINT_START, add_flaky_hint, flaky_hint
from ovserver import Limits
from tests.fake_server import Server, quiet
from tests.test_fake_net_mutation_more import _abort
from tests.test_testing import ONE, Stub, limited

_FEW = settings(max_examples=40, database=None, derandomize=True, deadline=None,
                suppress_health_check=list(HealthCheck))


def test_talk_after_leave_alone_names_no_other_feature() -> None:
    """A scenario names the features that made a difference to it, among those
    asked for: with talk_after_leave alone, its long pauses between sends are
    talk_after_leave's (spread_arrivals, which draws from the same long pauses,
    was not asked for and is never named)."""
    seen: set[str] = set()

    @_FEW
    @given(scenario=scenarios(features=("talk_after_leave",), clients=(1, 3), lines=(2, 4)))
    def check(scenario: Scenario) -> None:
        assert set(scenario.features) <= {"talk_after_leave"}, scenario.features
        seen.update(scenario.features)

    check()
    assert seen == {"talk_after_leave"}


def test_a_program_thread_waiting_for_all_events_wakes_when_the_last_is_set() -> None:
    """WSAWaitForMultipleEvents(fWaitAll=TRUE) in a program thread (the
    scheduler's wait, not the single-threaded stepping): it stays blocked while
    one of its events is unsignalled and returns WSA_WAIT_EVENT_0 once the
    last is set."""
    ws = FakeWinsock(seed=1)
    assert ws.WSAStartup(MAKEWORD(2, 2)).error == 0
    evs = [ws.WSACreateEvent() for _ in range(2)]
    got: list[int] = []

    def waiter(_: object) -> int:
        got.append(ws.WSAWaitForMultipleEvents(2, evs, TRUE, INFINITE, FALSE))
        return 0

    h = ws.CreateThread(None, 0, waiter, None, 0).hThread
    ws.Sleep(1)  # the thread runs and blocks
    ws.WSASetEvent(evs[1])
    ws.Sleep(1)
    assert got == []  # one of two: still waiting
    ws.WSASetEvent(evs[0])
    assert ws.WaitForSingleObject(h, INFINITE) == WAIT_OBJECT_0
    assert got == [WSA_WAIT_EVENT_0]
    assert ws.GetExitCodeThread(h) == (TRUE, 0)
    ws.CloseHandle(h)
    for e in evs:
        ws.WSACloseEvent(e)



class _Lines(ScriptedClient):
    """A scripted client that keeps the lines it reads."""

    def __init__(self, ws: FakeWinsock) -> None:
        super().__init__(ws, ("127.0.0.1", 7), 0)
        self.lines: list[bytes] = []

    def line(self, line: bytes) -> None:
        self.lines.append(line)

    def server_closed(self, reset: bool) -> None:
        raise AssertionError("not connected")


def test_a_scripted_client_cuts_what_it_reads_into_lines() -> None:
    """What a scripted client (the checker's, ovserver simulate's) reads is cut
    into whole lines, each with its newline, whatever the reads: several lines
    in one read, an empty line first in a read, a line over two reads (the
    checker's own fast path takes only the reads that are the next own lines:
    greetings, chat relays and wrong replies come this way)."""
    c = _Lines(FakeWinsock(seed=1))
    c.received(b"one\ntwo\nthr")
    assert c.lines == [b"one\n", b"two\n"]
    c.received(b"ee\n")
    c.received(b"\nafter\n")
    assert c.lines == [b"one\n", b"two\n", b"three\n", b"\n", b"after\n"]


def test_a_client_refused_for_good_says_how_many_times_it_was_refused() -> None:
    """A server that never accepts: the checker's client gives up after 10 s
    of refusals and says how many connection attempts were refused, the same
    number the report counts (each attempt refused once)."""
    with pytest.raises(LineServerFailure) as info:
        check_line_server(lambda ws, a: Stub(ws, "deaf"), ONE, seed=1, config=FakeConfig(strict_cleanup=False))
    refusals = info.value.report.refusals
    assert refusals > 40
    assert f"connection refused {refusals} times in " in str(info.value)


def test_a_peer_send_whose_bytes_all_left_returns_though_a_reset_came_after() -> None:
    """FakePeer.send in a program thread blocks while the server does not read;
    once every byte has left, it returns, even if the server reset the
    connection before the sending thread ran again (a blocking send is done once
    its bytes are taken, as on Windows): the reset shows at the peer's next
    call.  (keep_up: the RST arrives during the server's own calls, while the
    sender waits to run.)"""
    ws = FakeWinsock(config=quiet(window=1000, syscall_cost=100_000, keep_up=True), chooser=ScriptedChooser())
    srv = Server(ws)
    s, peer = srv.accept()
    data = b"x" * 3000
    outcome: list[str] = []

    def sender(_: object) -> int:
        try:
            peer.send(data)
            outcome.append("sent")
        except ConnectionResetError:
            outcome.append("reset")
        return 0

    h = ws.CreateThread(None, 0, sender, None, 0).hThread
    got = b""
    while len(got) < len(data):
        ok, chunk, err = srv.recv(s, 4096)
        assert ok and err == 0
        got += chunk
    assert got == data
    _abort(ws, srv, s)
    assert ws.WaitForSingleObject(h, INFINITE) == WAIT_OBJECT_0
    assert peer.was_reset
    assert outcome == ["sent"]
    with pytest.raises(ConnectionResetError):
        peer.send(b"more")
    ws.CloseHandle(h)
    srv.finish()


def test_a_chat_reader_owed_more_than_max_queued_may_be_cut_off() -> None:
    """ChatModel(max_queued=...): a chat member that does not read while
    another talks is owed more than the server's output limit, and ovserver
    resets it; the model's limit says the server may, so the run passes (the
    cut-off counted).  Without the limit the same run is a failure."""
    deaf = ClientScript.of(b"hi", pause_at_ns=0, pause_ns=2_000_000_000)
    talker = ClientScript.of(*[b"y" * 99] * 60, arrive_ns=1_000_000)
    r = check_line_server(limited("chat", limits=Limits(max_line=100, max_queued=4096)), Scenario((deaf, talker)),
                          ChatModel(max_line=100, max_queued=4096), seed=1)
    assert r.ok and r.cut_off == 1
    with pytest.raises(LineServerFailure, match=r"client 0 \(127.0.0.1:\d+\): reset by the server"):
        check_line_server(limited("chat", limits=Limits(max_line=100, max_queued=4096)), Scenario((deaf, talker)),
                          ChatModel(max_line=100), seed=1)


class _Data:
    """What ``st.data()`` offers through the public API alone (``draw``), as
    a Hypothesis without the internal one the chooser prefers: the chooser's
    fallback.  Answers ``answers`` in turn, or raises ``fail``; keeps the labels."""

    def __init__(self, answers: list[int], fail: BaseException | None = None) -> None:
        self.answers = iter(answers)
        self.fail = fail
        self.labels: list[str | None] = []

    def draw(self, strategy: object, label: str | None = None) -> int:
        self.labels.append(label)
        if self.fail is not None:
            raise self.fail
        return next(self.answers)


def test_draws_through_the_public_api_are_labelled_with_the_question() -> None:
    """Without Hypothesis's internal API each of the fake's questions is a
    ``data.draw`` labelled with the question (Hypothesis prints each draw of a
    failing example with its label), and the schedule records it."""
    data = _Data([1, 2])
    c = HypothesisChooser(data, record=True)
    assert c.integer(0, 3, "thread") == 1
    assert c.boolean(0.5, "split") is False  # (2 of a million: the low end, where a yes/no shrinks to no)
    assert data.labels == ["thread", "split"]
    assert c.schedule == [("thread", 1), ("split", 0)]


def test_the_questions_after_max_draws_vary_with_the_tail_seed() -> None:
    """tail=True: after ``max_draws`` the chooser draws one tail seed, and a
    generator seeded with it answers the rest, varying as a seeded chooser
    does (every answer of a small range comes up), the same for the same seed."""
    def answers(seed: int) -> list[int]:
        data = _Data([seed])
        c = HypothesisChooser(data, max_draws=0, tail=True)
        out = [c.integer(0, 3, "thread") for _ in range(100)]
        assert c.tail_seed == seed and data.labels == ["tail seed"]
        return out

    got = answers(12345)
    assert set(got) == {0, 1, 2, 3}
    assert answers(12345) == got
    assert set(answers(0)) == {0}  # (0, where the tail seed shrinks to: the simplest answers)


@pytest.mark.parametrize(("ask", "where"), [
    (lambda c: c.boolean(0.3, "split"), "(question 'split', yes/no with p=0.3)"),
    (lambda c: c.integer(0, 2, "thread"), "(question 'thread', integer of [0, 2])"),
])
def test_a_draw_hypothesis_finds_inconsistent_says_which_question_it_was(ask: Any, where: str) -> None:
    """Hypothesis raises FlakyStrategyDefinition at a draw when a replay asks
    other questions than the run it replays: it goes on to the test with the
    hint, which names the fake's draw and question; the chooser then answers
    the simplest without drawing, so the program can unwind."""
    data = _Data([], fail=FlakyStrategyDefinition("Inconsistent data generation"))
    c = HypothesisChooser(data)
    with pytest.raises(FlakyStrategyDefinition) as info:
        ask(c)
    notes = getattr(info.value, "__notes__", [])
    assert len(notes) == 1 and notes[0].startswith(FLAKY_HINT_START)
    assert f"Hypothesis found it at the fake's draw 1 {where}" in notes[0]
    assert c.stopped_by is info.value
    assert (c.integer(0, 3, "thread"), c.boolean(0.5, "split"), len(data.labels)) == (0, False, 1)


def test_the_flaky_hint_names_where_an_earlier_error_in_the_chain_was_found() -> None:
    """Hypothesis often raises a second FlakyStrategyDefinition while handling
    the first: the hint on the test's error (the second) names the draw the
    first was found at, and is added once; without a known draw, it says so
    without one."""
    first = FlakyStrategyDefinition("Inconsistent data generation")
    setattr(first, DIVERGENCE_ATTR, "the fake's draw 7 (question 'thread', integer of [0, 2])")
    second = FlakyStrategyDefinition("Inconsistent data generation")
    second.__context__ = first
    add_flaky_hint(second)
    add_flaky_hint(second)
    notes = getattr(second, "__notes__", [])
    assert notes == [flaky_hint("the fake's draw 7 (question 'thread', integer of [0, 2])")]
    assert "Hypothesis found it at the fake's draw 7" in notes[0]
    alone = FlakyStrategyDefinition("Inconsistent data generation")
    add_flaky_hint(alone)
    assert getattr(alone, "__notes__", []) == [flaky_hint()] and "found it at" not in flaky_hint()


def test_the_flaky_hint_names_the_winsock_call_the_draw_was_made_in() -> None:
    """A draw that Hypothesis finds inconsistent inside one of the program's
    Winsock calls: the hint names the call and how many calls the fake had
    counted (where to look in the program); also when the fake checks its
    invariants after every call (the project's pytest setting), whose wrapper
    of each call is not a call of the program's.  (The interrupted fake is
    left as it is: Hypothesis ends such an example.)"""
    if os.environ.get("MUTANT_UNDER_TEST"):  # (read when the test runs: mutation_recheck sets it after collecting)
        pytest.skip("under mutmut's trampolines a frame of mutmut's stands between the fake's frames: the search "
                    "for the call stops there (as the unwinding example's stop at every draw)")
    data = _Data([], fail=FlakyStrategyDefinition("Inconsistent data generation"))
    ws = FakeWinsock(config=quiet(immediate=0.5, check_invariants=True), chooser=HypothesisChooser(data))
    srv = Server(ws)
    s, peer = srv.accept()
    peer.send_nowait(b"hello\n")
    ws.run_for(0.01)
    assert data.labels == []  # (the quiet fake asked nothing yet: the receive finds data waiting)
    with pytest.raises(FlakyStrategyDefinition) as info:
        srv.post_recv(s)
    calls = ws.stats["calls"]
    assert data.labels == ["immediate:WSARecv"]
    assert (f"Hypothesis found it at the fake's draw 1 (question 'immediate:WSARecv', yes/no with p=0.5, "
            f"in WSARecv, Winsock call {calls})") in "\n".join(getattr(info.value, "__notes__", []))


def test_the_flaky_hint_goes_after_the_notes_already_there_one_cause_a_line() -> None:
    """The hint is added after the notes an error already has, and lists the
    usual causes one a line."""
    e = FlakyStrategyDefinition("Inconsistent data generation")
    setattr(e, "__notes__", ["an earlier note"])  # noqa: B010 (add_note, also on Python 3.10)
    add_flaky_hint(e)
    assert getattr(e, "__notes__", []) == ["an earlier note", flaky_hint()]
    causes = [line for line in flaky_hint().splitlines() if line.startswith("  - ")]
    assert len(causes) == 5 and all(line.endswith((";", ".")) for line in causes), causes
    assert causes[1] == "  - id(), hash() or the default repr of objects in a decision;"


def test_the_schedule_is_described_as_question_answer_words() -> None:
    """HypothesisChooser(record=True).describe_schedule(): the draws as
    question=answer words, cut at ``limit`` with how many more there were."""
    c = HypothesisChooser(_Data([1, 0, 2]), record=True)
    for _ in range(3):
        c.integer(0, 3, "thread")
    assert c.describe_schedule() == "thread=1 thread=0 thread=2"
    assert c.describe_schedule(limit=3) == "thread=1 thread=0 thread=2"
    assert c.describe_schedule(limit=2) == "thread=1 thread=0 ... (1 more)"
    assert HypothesisChooser(_Data([])).describe_schedule() == ""


def test_fake_configs_shrink_to_the_simplest_config() -> None:
    """fake_configs(): each field shrinks towards its simplest value: every
    operation pends, no split, no partial receive, no background progress,
    no latency, no completion delay; a keyword fixes a field."""
    simplest = find(fake_configs(), lambda c: True, settings=settings(database=None, derandomize=True))
    assert (simplest.immediate, simplest.split, simplest.partial_recv, simplest.background) == (0.0, 0.0, 0.0, 0.0)
    assert (simplest.latency, simplest.completion_delay) == ((0, 0), (0, 0))
    fixed = find(fake_configs(split=0.5), lambda c: True, settings=settings(database=None, derandomize=True))
    assert fixed.split == 0.5
