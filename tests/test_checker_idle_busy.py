"""The checker told a server's idle time-out, with a server slower than its clients
(``Scenario.call_cost_ns``): a client idle for the time-out that then sends a line may be closed by
the server's late look at its expired deadline, after the line arrived and before the server reaped
the receive that completed with it (``_Client.idle_before_a_line``).  That is the correct ovserver's
behaviour, a false alarm of the recipe before (tools/false_alarms.py --idle, events chat, seeded 0,
example 190).  Likewise a completed send to a client counts as its activity only once the server has
handled that completion (``FakeWinsock.send_handled_ns``), and a close decided before the server got it
is as due (``_Client.idle_before_a_send``): the correct IocpServer in chat, a false alarm before
(tools/false_alarms.py --idle, ci, iocp chat, examples 67, 68 and 91)."""

from __future__ import annotations

import pytest

from fakewinsock.testing import ChatModel, ClientScript, EchoModel, LineServerFailure, Scenario, check_line_server
from ovserver import Limits
from ovserver._core import _Io
from ovserver._events import EventServer
from ovserver._iocp import IocpServer
from tests.mutants.properties import OvserverUnderTest

_MS = 1_000_000
IDLE_MS = 100


def _scenario(gap_ns: int) -> Scenario:
    """A client keeping the slowed server busy (a line every 2 ms for 240 ms) and one that connects and
    sends its two lines ``gap_ns`` later, just past its idle deadline."""
    flood = tuple(b"f%03d" % i for i in range(120))
    late = (b"late one", b"late two")
    return Scenario((ClientScript(flood, tuple(x + b"\n" for x in flood), (0,) + (2 * _MS,) * 119),
                     ClientScript(late, (b"late one\nlate two\n",), (gap_ns,), arrive_ns=1 * _MS)),
                    call_cost_ns=1 * _MS)


@pytest.mark.parametrize(("gap_ms", "seed"), [(110, 0), (110, 3), (108, 3)])
def test_a_slowed_server_may_time_out_a_line_that_came_after_the_deadline(gap_ms: int, seed: int) -> None:
    """The late client's line arrives after its deadline, and the busy events server closes it before it
    reaps that line's receive: its reply never comes, 10-15 ms after the line (under the time-out by the
    client's account of its last line), and that is as due.  (Fails with the checker's account of the last
    line alone: "idle only 13.0 ms by its own account".)"""
    report = check_line_server(
        lambda ws, address: OvserverUnderTest(EventServer, ws, address, "echo", idle_timeout_ms=IDLE_MS),
        _scenario(gap_ms * _MS), EchoModel(idle_timeout_ms=IDLE_MS), seed=seed)
    assert report.timed_out >= 1


def _pausing_scenario(gap_ns: int, window: int | None = None) -> Scenario:
    """The slowed server kept busy as above; the late client sends its first line as it connects and its
    second ``gap_ns`` later, and reads nothing for the first 60 ms (so the first line's reply, which the
    server's send put on its way at once, is read 60 ms late; with a ``window`` of 4 bytes the send cannot
    complete before that read)."""
    flood = tuple(b"f%03d" % i for i in range(120))
    late = ClientScript((b"late one", b"late two"), (b"late one\n", b"late two\n"), (0, gap_ns), arrive_ns=1 * _MS,
                        pause_at_ns=0, pause_ns=60 * _MS)
    return Scenario((ClientScript(flood, tuple(x + b"\n" for x in flood), (0,) + (2 * _MS,) * 119), late),
                    call_cost_ns=1 * _MS, window=window)


def _check(cls: type[EventServer], scenario: Scenario, seed: int) -> str | None:
    try:
        report = check_line_server(
            lambda ws, address: OvserverUnderTest(cls, ws, address, "echo", idle_timeout_ms=IDLE_MS),
            scenario, EchoModel(idle_timeout_ms=IDLE_MS), seed=seed)
    except LineServerFailure as e:
        return str(e)
    assert report.timed_out == 1
    return None


@pytest.mark.parametrize("gap_ms", [112, 120])
def test_a_reader_that_paused_is_timed_out_from_the_server_s_send_not_from_its_read(gap_ms: int) -> None:
    """The late client's reply completed (the server's clock restarted) at once, but it read it only 60 ms
    later; its second line comes past the server's deadline, which the busy server gets round to after that
    line arrived.  By the server's completed send the client had been idle for the time-out: as due.
    (Failed when the checker counted the client's reads as the server's activity: "idle only 30.0 ms by its
    own account", a false alarm on the correct ovserver.)"""
    assert _check(EventServer, _pausing_scenario(gap_ms * _MS), seed=0) is None


class _SendKeepsIdleClock(EventServer):
    """A planted bug: a completed send to a client does not restart its idle clock (only its lines do)."""

    def _completed(self, io: _Io, error: int, nbytes: int) -> None:
        conn = io.conn
        before = conn.active_ms if conn is not None else 0
        super()._completed(io, error, nbytes)
        if io.kind == "send" and conn is not None:
            conn.active_ms = before  # BUG: the send's restart undone


@pytest.mark.parametrize(("gap_ms", "seed"), [(112, 0), (112, 3), (120, 3)])
def test_a_server_whose_completed_sends_do_not_keep_a_client_alive_is_caught(gap_ms: int, seed: int) -> None:
    """A window of 4 bytes: the reply's send completes only when the late client reads, 60 ms in.  The
    correct server's clock restarts then and it keeps the client; the planted bug's runs from the first
    line and closes it after its second line arrived (the checker's account of the completed send,
    ``FakeWinsock.send_handled_ns``: with only the client's lines and connect, such a close is as due)."""
    found = _check(_SendKeepsIdleClock, _pausing_scenario(gap_ms * _MS, window=4), seed)
    assert found is not None and "under the idle time-out" in found, found


@pytest.mark.parametrize("seed", [0, 3])
def test_the_correct_server_keeps_a_client_whose_send_completed_late(seed: int) -> None:
    report = check_line_server(
        lambda ws, address: OvserverUnderTest(EventServer, ws, address, "echo", idle_timeout_ms=IDLE_MS),
        _pausing_scenario(112 * _MS, window=4), EchoModel(idle_timeout_ms=IDLE_MS), seed=seed)
    assert report.timed_out == 0


def _members(n: int = 62) -> Scenario:
    """Three chat members, each sending ``n`` lines of 60 bytes in one send at once, through a window of 3
    bytes, to a server slowed to 0.4 ms a call: each member's bytes trickle in while the server routes the
    others' lines to it (tools/false_alarms.py --idle, ci, iocp chat, example 67, made plain)."""
    def member(tag: bytes) -> ClientScript:
        lines = tuple(b"%d:" % i + tag * 57 for i in range(n))
        return ClientScript(lines, (b"".join(x + b"\n" for x in lines),), (0,), linger_ns=30 * _MS)
    return Scenario((member(b"A"), member(b"B"), member(b"C")), window=3, call_cost_ns=400_000)


@pytest.mark.parametrize("seed", [2, 6, 10, 36])
def test_iocp_chat_idle_close_that_races_a_send_completion_is_as_due(seed: int) -> None:
    """The correct IocpServer in chat (tight limits) closes idle members while sends to them complete:
    a send's packet waits in the port behind busy workers, or the worker that dequeued it has not taken the
    lock yet, while the controller closes the client by the server's clock (seed 6 needs the account of
    handled sends); or the controller decided the close, under the lock, just before a worker got the
    completion, and a worker closes the socket later, once it handled the receive it had dequeued (seed 36
    needs ``idle_before_a_send``; seed 10 both).  Each was a false alarm when the checker counted a send from
    when it completed ("reset by the server while sent all ...; idle only 4.8-19.6 ms by its own account":
    14 of seeds 0-39, none now)."""
    limits = Limits(max_line=1000, max_queued=16 * 1024)
    model = ChatModel(max_line=limits.max_line, max_queued=limits.max_queued, idle_timeout_ms=IDLE_MS,
                      max_clients=Limits().max_clients, resets_cut_sends=True)
    report = check_line_server(
        lambda ws, address: OvserverUnderTest(IocpServer, ws, address, "chat", limits, idle_timeout_ms=IDLE_MS),
        _members(), model, seed=seed)
    assert report.timed_out >= 1
