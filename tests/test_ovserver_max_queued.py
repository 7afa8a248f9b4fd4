"""--max-queued must leave room for one line of --max-line bytes (``serve`` refuses less).

A message is queued whole, so under Wine ``serve --max-queued 65536`` (with
the default ``--max-line`` 65536) reset an echo client that sent one line of
65536 bytes and read everything: a line the limits allow cut off a client
that broke no rule (in chat, every other member).  ``longest_message`` is
the least ``--max-queued`` with which no such line, error line or welcome
cuts anyone off; these tests check that bound on the fake, in every model,
and that it is tight.
"""

from __future__ import annotations

import pytest

from ovserver import ServerStats
from ovserver import __main__ as cli
from ovserver._protocol import (
    LONGEST_NAME,
    Action,
    Disconnect,
    Hub,
    Limits,
    Mode,
    chat_line,
    error_line,
    longest_message,
    welcome_line,
)
from tests.ovserver_session import MODELS, Client, Session

LINE = 1000


def _echo_session(model: str, max_queued: int) -> tuple[Session, bytes, Client]:
    s = Session(model, "echo", limits=Limits(max_line=LINE, max_queued=max_queued))
    c = s.client()
    line = b"x" * LINE + b"\n"
    c.send(1, line)
    c.close(5)
    return s, line, c


@pytest.mark.parametrize("model", MODELS)
def test_echo_a_line_of_max_line_is_echoed_at_the_bound(model: str) -> None:
    """At ``longest_message`` an echo client's line of --max-line bytes comes
    back whole; one byte less (what serve accepted before: --max-queued as
    --max-line) and the client is reset, though it read everything."""
    s, line, c = _echo_session(model, longest_message(Mode.ECHO, LINE))
    s.run(stop_ms=50)
    assert bytes(c.data) == line and c.closed_by_server
    s, line, c = _echo_session(model, longest_message(Mode.ECHO, LINE) - 1)
    s.run(stop_ms=50)
    assert c.reset_by_server and bytes(c.data) == b""


@pytest.mark.parametrize("model", MODELS)
def test_chat_a_line_of_max_line_reaches_the_others_at_the_bound(model: str) -> None:
    """In chat the line goes out with its sender's name: at ``longest_message``
    the other member gets it; at --max-line + 1 (the echo bound) that member
    is reset for a line it did not send."""
    for max_queued, served in ((longest_message(Mode.CHAT, LINE), True), (LINE + 1, False)):
        s = Session(model, "chat", limits=Limits(max_line=LINE, max_queued=max_queued))
        talker, other = s.client(), s.client()
        line = b"y" * LINE + b"\n"
        talker.send(2, line)
        talker.close(6)
        other.close(8)
        s.run(stop_ms=50)
        if served:
            assert bytes(other.data).endswith(chat_line(talker.name, line)) and other.closed_by_server
        else:
            assert other.reset_by_server


def _cut(actions: list[Action]) -> bool:
    return any(isinstance(a, Disconnect) for a in actions)


def _joined(mode: Mode, limits: Limits) -> Hub:
    """A hub with two members (1, with the longest name, and 2), their welcomes taken."""
    hub = Hub(mode, limits)
    assert not _cut(hub.join(1, LONGEST_NAME) + hub.join(2, b"1.2.3.4:5"))  # (a welcome is never the longest)
    hub.take_output(1, 1 << 20), hub.take_output(2, 1 << 20)
    return hub


@pytest.mark.parametrize("mode", [Mode.ECHO, Mode.CHAT])
@pytest.mark.parametrize("max_line", [1, 10, 12, LINE, 65536])
def test_longest_message_is_tight(mode: Mode, max_line: int) -> None:
    """The bound is the longest message itself: with the longest name (an IPv4
    host:port), a line of max_line bytes (in chat to the other member), the
    error line and the welcome each fit, and one byte less cuts off the
    recipient of whichever is longest."""
    bound = longest_message(mode, max_line)
    line = b"z" * max_line + b"\n"
    sizes = {"line": len(line if mode is Mode.ECHO else chat_line(LONGEST_NAME, line)),
             "error": len(error_line(max_line)),
             "welcome": len(welcome_line(LONGEST_NAME)) if mode is Mode.CHAT else 0}
    assert bound == max(sizes.values())
    for max_queued in (bound, bound - 1):
        limits = Limits(max_line=max_line, max_queued=max_queued)
        got = {"line": _cut(_joined(mode, limits).receive(1, line)),
               "error": _cut(_joined(mode, limits).receive(1, b"z" * (max_line + 1) + b"\n")),
               "welcome": _cut(Hub(mode, limits).join(1, LONGEST_NAME))}
        want = {what: max_queued < size for what, size in sizes.items()}
        assert got == want, (max_queued, sizes)


def test_serve_refuses_a_max_queued_under_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """``serve --max-queued 65536`` (the default --max-line 65536) is refused in
    one line, exit 2; at the bound it runs.  Proven by removing the check in
    ``_parse``: the first two calls then return."""
    for argv in (["serve", "--max-queued", "65536"], ["serve", "--mode", "chat", "--max-queued", "65537"]):
        with pytest.raises(SystemExit) as exc:
            cli._parse(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and "--max-queued: must be at least" in err, err
    config = cli.serve_config(cli._parse(["serve", "--mode", "chat", "--max-queued",
                                          str(longest_message(Mode.CHAT, 65536))]), "127.0.0.1")
    assert config.limits.max_queued == longest_message(Mode.CHAT, 65536)


def test_the_stopped_line_counts_the_clients_cut_off_or_hung_up() -> None:
    """Under Wine the client reset for its line (above) left no trace in serve's
    "stopped" line: it counted idle closes and stalls only.  Now every way a
    limit ended a client is counted.  Proven by dropping the new parts of
    ``stopped_line``: this test fails."""
    stats = ServerStats(accepted=9, cut_off=3, stalled=1, hung_up=2, timed_out=4, bytes_received=10, bytes_sent=20)
    stats.hub.lines = 5
    assert cli.stopped_line(stats) == (
        "ovserver: stopped; 9 connections served, 5 lines, 10 bytes in, 20 bytes out; 2 hung up for a line over "
        "--max-line; 1 cut off as slow consumers; 2 cut off (over --max-queued, or sending on after the error line); "
        "4 closed when idle")
    assert cli.stopped_line(ServerStats(accepted=1)) == (
        "ovserver: stopped; 1 connections served, 0 lines, 0 bytes in, 0 bytes out")


def test_the_stopped_line_counts_the_connections_never_served() -> None:
    """Under Wine, 6000 clients connected and reset during a chat (each saw its
    connect succeed) and the "stopped" line said 21 connections served and
    nothing more: an accept that failed with its client's failure, and a
    connection accepted but closed at once (the events model with no thread
    for it), were counted only in ``accept_failures``, which the line never
    showed.  A post that failed (no connection lost: it waits and is served
    later) is not a connection, and is not shown.  Proven by dropping the new
    parts of ``stopped_line``: this test fails."""
    stats = ServerStats(accepted=21, accept_failures=6009, gone_unaccepted=5998, refused=3)
    assert cli.stopped_line(stats) == (
        "ovserver: stopped; 21 connections served, 0 lines, 0 bytes in, 0 bytes out; 5998 connections gone "
        "before they were accepted; 3 connections refused (accepted, but no room to serve them)")
