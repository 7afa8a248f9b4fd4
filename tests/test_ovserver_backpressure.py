"""Back-pressure (``Limits.high_water`` with ``ServerConfig.stall_timeout_ms``),
in every model, on the fake.

Without it, a client whose output piles up is cut off once ``max_queued``
bytes wait for it, however steadily it reads: an echo client that sends more
than that before reading, a chat member that reads slower than a flood.  With
it, the server stops reading from a sender while one of its recipients is over
the mark (TCP's window then holds the sender back: its bytes wait unsent), and
reads on once the recipient has drained to half the mark; a recipient that
stays over the mark for ``stall_timeout_ms`` (it reads nothing) is cut off, and
the senders it held back read on.

The fake's window is 16 KB here, so a client that does not read makes the
server's send pend at once, and a reader drains 2 KB every 2 ms (1 KB/ms).
"""

from __future__ import annotations

from typing import Any

import pytest

from fakewinsock import FakeWinsock
from ovserver import Limits
from ovserver._protocol import Hub, Resume, Stall, chat_line, welcome_line
from tests.ovserver_session import MODELS, Client, Session, exact

WINDOW = 16 * 1024


def session(model: str, mode: str, high_water: int, stall_ms: int, max_queued: int = 64 * 1024,
            **config: Any) -> Session:
    ws = FakeWinsock(seed=0, config=exact(1.0, window=WINDOW, max_calls=400_000))
    return Session(model, mode, ws=ws, workers=2, limits=Limits(max_queued=max_queued, high_water=high_water),
                   stall_timeout_ms=stall_ms, **config)


def read_slowly(s: Session, c: Client, start_ms: float, until_ms: float, every_ms: float = 2.0,
                size: int = 2048) -> None:
    """``c`` (made with reads=False) reads ``size`` bytes every ``every_ms``."""
    def read() -> None:
        if not c.peer.was_reset:
            c.data += c.peer.recv_nowait(size)
    t = start_ms
    while t < until_ms:
        s.at(t, read)
        t += every_ms


def lines(tag: bytes, n: int) -> list[bytes]:
    return [b"%s %06d %s\n" % (tag, k, b"z" * 60) for k in range(n)]


# ---------------------------------------------------------------- chat


def slow_chat(model: str, high_water: int, stall_ms: int) -> tuple[Session, Client, Client, list[bytes], list[int]]:
    """A talker sends 284 KB (over four times max_queued) to a reader taking
    1 KB/ms: the session (run), reader, talker, the lines, and how many of
    the talker's bytes still waited unsent at 100 ms."""
    s = session(model, "chat", high_water=high_water, stall_ms=stall_ms)
    reader = s.client(1.0, reads=False)
    talker = s.client(2.0)
    sent = lines(b"t", 4000)
    talker.send(10.0, b"".join(sent))
    read_slowly(s, reader, 1.0, 1500.0)
    held: list[int] = []
    s.at(100.0, lambda: held.append(talker.peer.unsent))
    s.run(stop_ms=1600)
    return s, reader, talker, sent, held


@pytest.mark.parametrize("model", MODELS)
def test_chat_a_slow_reader_slows_the_talker_and_is_not_cut_off(model: str) -> None:
    s, reader, talker, sent, held = slow_chat(model, 16 * 1024, 2000)
    stats = s.server.stats
    assert stats.cut_off == 0 and not reader.reset_by_server
    assert bytes(reader.data) == welcome_line(reader.name) + b"".join(chat_line(talker.name, ln) for ln in sent)
    assert stats.hub.paused > 0 and held[0] > 0  # the talker's bytes waited: the server stopped reading


@pytest.mark.parametrize("model", MODELS)
def test_chat_without_back_pressure_the_slow_reader_was_cut_off(model: str) -> None:
    """The premise: the same chat without a high-water mark cuts the reader off."""
    s, reader, _, _, _ = slow_chat(model, 0, 0)
    assert s.server.stats.cut_off == 1 and reader.reset_by_server


@pytest.mark.parametrize("stall_ms", [300, 1000])
@pytest.mark.parametrize("model", MODELS)
def test_chat_a_deaf_member_is_cut_off_after_the_stall_timeout_and_the_talker_goes_on(
        model: str, stall_ms: int) -> None:
    """GetTickCount64 moves in steps of 15.625 ms and 1000 ms is 64 of them:
    with ``stall_ms=1000`` the deadline (the tick the member went over the mark,
    plus 1000) is itself a tick the clock reads, and the wait timed to end then
    wakes on that tick.  The member is cut off as a slow consumer then (the 39th
    session's mutation sample: ``_idle_check``'s ``stall_due < now`` for ``<=``
    let it pass that tick and closed it as idle, counted in ``timed_out``)."""
    s = session(model, "chat", high_water=16 * 1024, stall_ms=stall_ms)
    deaf = s.client(1.0, reads=False)
    reader = s.client(1.5)
    talker = s.client(2.0)
    sent = lines(b"t", 4000)
    talker.send(10.0, b"".join(sent))
    alive: list[bool] = []
    s.at(250.0, lambda: alive.append(not deaf.peer.was_reset))  # held the talker back until its time-out...
    stats = s.run(stop_ms=1500)
    assert alive == [True] and deaf.reset_by_server  # ... then cut off
    assert stats.stalled == 1 and stats.cut_off == 1 and stats.hub.cut_off == 0  # not by max_queued
    assert stats.timed_out == 0
    assert stats.hub.paused > 0
    assert bytes(reader.data) == welcome_line(reader.name) + b"".join(chat_line(talker.name, ln) for ln in sent)


@pytest.mark.parametrize("model", MODELS)
def test_chat_a_talker_held_back_is_not_closed_as_idle(model: str) -> None:
    """With ``idle_timeout_ms``: while a slow reader is over the mark, the
    talker completes no line (the server does not read it) and reads nothing
    (no one else talks), for longer than the idle time-out (the reader drains
    16 KB at 100 KB/s); it is the server that stopped reading, so it is not
    idle.  It was closed as idle, its unread lines lost: the reader missed
    them (under Wine: ``serve --mode chat --high-water 65536 --idle-timeout-ms
    1000``, a talker beside a member reading 32 KB/s got a reset).  The
    reader's own sends (2 KB) complete as it reads, so it is not idle either."""
    s = session(model, "chat", high_water=32 * 1024, stall_ms=2000, idle_timeout_ms=100, send_size=2048)
    reader = s.client(1.0, reads=False)
    talker = s.client(2.0)
    sent = lines(b"t", 1000)
    talker.send(10.0, b"".join(sent))
    read_slowly(s, reader, 1.0, 1500.0, every_ms=10.0, size=1024)
    stats = s.run(stop_ms=1600)
    assert not talker.reset_by_server and stats.hub.paused > 0 and stats.stalled == 0
    assert bytes(reader.data) == welcome_line(reader.name) + b"".join(chat_line(talker.name, ln) for ln in sent)


# ---------------------------------------------------------------- echo


def slow_echo(model: str, high_water: int, stall_ms: int) -> tuple[Session, Client, bytes]:
    """A client sends 284 KB, then reads 1 KB/ms from 50 ms on: the session (run), client, bytes."""
    s = session(model, "echo", high_water=high_water, stall_ms=stall_ms)
    c = s.client(1.0, reads=False)
    sent = b"".join(lines(b"e", 4000))
    c.send(2.0, sent)
    read_slowly(s, c, 50.0, 1500.0)
    s.run(stop_ms=1600)
    return s, c, sent


@pytest.mark.parametrize("model", MODELS)
def test_echo_a_client_that_sends_much_before_reading_gets_all_of_it(model: str) -> None:
    s, c, sent = slow_echo(model, 16 * 1024, 2000)
    stats = s.server.stats
    assert stats.cut_off == 0 and bytes(c.data) == sent and stats.hub.paused > 0


@pytest.mark.parametrize("model", MODELS)
def test_echo_without_back_pressure_it_was_cut_off(model: str) -> None:
    s, c, _ = slow_echo(model, 0, 0)
    assert s.server.stats.cut_off == 1 and c.reset_by_server


@pytest.mark.parametrize("model", MODELS)
def test_echo_a_slow_reader_held_back_is_not_closed_as_idle(model: str) -> None:
    """With ``idle_timeout_ms`` 100: a client that sends 284 KB, then reads
    1 KB every 10 ms, is held back (no line of it is read) while each send to
    it, of up to 64 KB, takes over the idle time-out to complete; it was
    closed as idle within 200 ms, though it read all the time (under Wine:
    ``serve --idle-timeout-ms 1000``, back-pressure on by default, a client
    reading 32 KB/s was reset after 82 KB, "1 closed when idle").  Held back,
    the stall time-out watches it instead.  (Once the server has read it all,
    it is no longer held back, and a send that takes over the time-out closes
    it as idle: a send's completion is the server's only sign that it reads.)"""
    s = session(model, "echo", high_water=16 * 1024, stall_ms=2000, idle_timeout_ms=100)
    c = s.client(1.0, reads=False)
    sent = b"".join(lines(b"e", 4000))
    c.send(2.0, sent)
    read_slowly(s, c, 50.0, 3500.0, every_ms=10.0, size=1024)
    seen: list[tuple[bool, int, int]] = []
    s.at(1500.0, lambda: seen.append((c.peer.was_reset, s.server.stats.timed_out, len(c.data))))
    stats = s.run(stop_ms=3600)
    assert seen[0][:2] == (False, 0) and seen[0][2] > 128 * 1024 and stats.hub.paused > 0
    assert sent.startswith(bytes(c.data)) and stats.stalled == 0


@pytest.mark.parametrize("model", MODELS)
def test_echo_a_client_idle_after_it_was_held_back_is_closed(model: str) -> None:
    """Its idle clock starts again when it is read on: a client held back for
    longer than the idle time-out (it reads nothing until 300 ms), then served
    and silent, is closed once idle for the time-out (not at once, nor never:
    its deadline is armed again, though the checks while it was held back
    found no deadline left)."""
    s = session(model, "echo", high_water=16 * 1024, stall_ms=2000, idle_timeout_ms=100)
    c = s.client(1.0, reads=False)
    sent = b"".join(lines(b"i", 4000))
    c.send(2.0, sent)
    read_slowly(s, c, 300.0, 1000.0, size=1 << 20)
    ended: list[float] = []
    s.at(350.0, lambda: ended.append(float(c.peer.at_eof)))
    stats = s.run(stop_ms=1000)
    assert bytes(c.data) == sent and c.closed_by_server and stats.timed_out == 1 and stats.hub.paused > 0
    assert ended == [0.0]  # not closed at once when read on


@pytest.mark.parametrize("model", MODELS)
def test_echo_a_client_that_never_reads_is_held_back_then_cut_off(model: str) -> None:
    s = session(model, "echo", high_water=16 * 1024, stall_ms=300, max_queued=256 * 1024)
    c = s.client(1.0, reads=False)
    c.send(2.0, b"".join(lines(b"e", 16000)))  # 1.1 MB
    seen: list[tuple[bool, int]] = []
    s.at(250.0, lambda: seen.append((c.peer.was_reset, s.server.stats.bytes_received)))
    stats = s.run(stop_ms=1000)
    assert seen[0][0] is False and seen[0][1] < 128 * 1024  # read no further than the mark (and a receive)
    assert c.reset_by_server and stats.stalled == 1 and stats.hub.cut_off == 0


@pytest.mark.parametrize("model", MODELS)
def test_echo_half_close_with_replies_owed_under_back_pressure(model: str) -> None:
    """The client sends 284 KB, then its FIN, then reads slowly: the server,
    holding back, reads the FIN only once it reads on; every reply, then EOF."""
    s = session(model, "echo", high_water=16 * 1024, stall_ms=2000)
    c = s.client(1.0, reads=False)
    sent = b"".join(lines(b"h", 4000))
    c.send(2.0, sent)
    s.at(3.0, c.peer.shutdown)
    read_slowly(s, c, 50.0, 1500.0)
    stats = s.run(stop_ms=1600)
    assert bytes(c.data) == sent and c.closed_by_server and stats.cut_off == 0 and stats.ended == 1


# ---------------------------------------------------------------- the hub's rules


def chat_hub() -> Hub:
    h = Hub("chat", Limits(max_line=500, max_queued=1000, high_water=100))
    h.join(1, b"a")
    h.join(2, b"b")
    h.take_output(1, 1000)
    h.take_output(2, 1000)
    return h


def test_hub_a_sender_reads_on_only_once_the_recipient_drained_to_half_the_mark() -> None:
    h = chat_hub()
    actions = h.receive(1, b"x" * 149 + b"\n")  # 153 bytes for b: over 100
    assert Stall(2) in actions and h.hold(1) and h.paused(1) and h.over(2) and not h.hold(2)
    h.take_output(2, 60)  # 93 left: under the mark, not yet half of it
    h.settle(2)
    assert h.pop_resumes() == [] and h.paused(1)
    h.take_output(2, 43)  # 50 left: half the mark
    h.settle(2)
    assert h.pop_resumes() == [Resume(1)] and not h.paused(1) and not h.over(2)


def test_hub_chat_a_member_is_not_held_back_by_its_own_queue() -> None:
    h = chat_hub()
    h.receive(1, b"x" * 149 + b"\n")  # b is over the mark
    assert h.hold(1)
    h.take_output(1, 1000)
    h.receive(2, b"hello\n")  # b's line goes to a, who is not over the mark
    assert not h.hold(2) and h.paused(1)


def test_hub_echo_a_client_is_held_back_by_its_own_queue() -> None:
    h = Hub("echo", Limits(max_queued=1000, high_water=100))
    h.join(1, b"a")
    assert Stall(1) in h.receive(1, b"y" * 120 + b"\n") and h.hold(1)
    h.take_output(1, 1000)
    h.settle(1)
    assert h.pop_resumes() == [Resume(1)]


def test_hub_without_a_mark_nothing_is_held_back() -> None:
    h = Hub("echo", Limits(max_queued=1000))
    h.join(1, b"a")
    assert not any(isinstance(a, Stall) for a in h.receive(1, b"y" * 900 + b"\n")) and not h.hold(1)


@pytest.mark.parametrize("how", ["leave", "end", "too long"])
def test_hub_a_recipient_that_goes_resumes_the_senders_it_held_back(how: str) -> None:
    h = chat_hub()
    h.receive(1, b"x" * 149 + b"\n")
    assert h.hold(1)
    if how == "leave":
        h.leave(2)
    elif how == "end":
        h.end(2)
    else:
        h.receive(2, b"z" * 501)
    assert h.pop_resumes() == [Resume(1)] and not h.paused(1)
