"""The seventeenth session's mutation samples (issue 18): tests for the survivors
of the first samples of fakewinsock.testing (the checker and the scenarios)
and of the interface modules (fakewinsock._api_*)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakewinsock import BusyLoopError
from fakewinsock.testing import (
    ChatModel,
    ClientFault,
    ClientScript,
    EchoModel,
    FaultPlan,
    LineServerFailure,
    LineServerReport,
    Scenario,
    check_line_server,
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
