"""The eighteenth session's mutation samples (issue 18): tests for the survivors
of the first samples of fakewinsock.testing's chooser and models and of
fakewinsock's scripted client and peer, and for two survivors the seventeenth
session left (the scenarios' talk_after_leave, the interface's wait for all
events in a program thread).

The strategies are made in the tests, not when the module is imported: mutmut's
mutant is switched on only while a test runs."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from fakewinsock import FakeConfig, FakeWinsock, ScriptedChooser
from fakewinsock._scripted import ScriptedClient
from fakewinsock.constants import FALSE, INFINITE, MAKEWORD, TRUE, WAIT_OBJECT_0, WSA_WAIT_EVENT_0
from fakewinsock.testing import LineServerFailure, Scenario, check_line_server, scenarios
from tests.fake_server import Server, quiet
from tests.test_fake_net_mutation_more import _abort
from tests.test_testing import ONE, Stub

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
