"""Idle clients (``ServerConfig.idle_timeout_ms``, ``ovserver serve --idle-timeout-ms``).

Off by default, as in the lecture notes: a silent client keeps its place until
it leaves, so ``max_clients`` of them lock everyone else out.  With a time-out,
a connection that has completed no line and read nothing for that long is
closed, in every model.  Virtual time: GetTickCount64 on the fake steps every
15.625 ms, as Windows' default timer does, so a close comes up to one step
(plus the wake-up) after the deadline.
"""

from __future__ import annotations

import pytest

from fakewinsock import FakeWinsock
from ovserver import Limits, ServerConfig
from tests.ovserver_session import MODELS, MS, Client, Session, exact
from tests.test_ovserver_busy import STREAM, WINDOW, _served_at

TIMEOUT_MS = 100
#: GetTickCount64's step on the fake (and Windows' default), and a little for the wake-up.
LATE_MS = 16 + 2


def _session(model: str, mode: str = "echo", timeout_ms: int = TIMEOUT_MS, limits: Limits | None = None) -> Session:
    return Session(model, mode, ws=FakeWinsock(seed=1, config=exact(0.0)), idle_timeout_ms=timeout_ms,
                   workers=2, limits=limits)


def _ended_at(s: Session, c: Client) -> list[float]:
    """The virtual time (ms) at which ``c`` saw the server end the connection, once it has."""
    at: list[float] = []
    changed = c.peer.on_change
    assert changed is not None

    def on_change(peer: object) -> None:
        changed(c.peer)
        if not at and (c.peer.at_eof or c.peer.was_reset):
            at.append(s.ws.now_ns / MS)

    c.peer.on_change = on_change
    return at


def test_idle_timeout_is_off_by_default_and_bounded() -> None:
    assert ServerConfig().idle_timeout_ms == 0
    for bad in (-1, 1 << 31):
        with pytest.raises(ValueError, match="idle_timeout_ms"):
            ServerConfig(idle_timeout_ms=bad)


@pytest.mark.parametrize("model", MODELS)
def test_a_silent_client_is_closed_once_idle_for_the_time_out(model: str) -> None:
    s = _session(model)
    silent = s.client(1)
    ended = _ended_at(s, silent)
    stats = s.run(stop_ms=400)
    assert silent.closed_by_server and stats.timed_out == 1 and stats.closed_at_stop == 0
    assert 1 + TIMEOUT_MS <= ended[0] <= 1 + TIMEOUT_MS + LATE_MS


@pytest.mark.parametrize("model", MODELS)
def test_without_a_time_out_a_silent_client_stays_until_the_stop(model: str) -> None:
    s = _session(model, timeout_ms=0)
    silent = s.client(1)
    stats = s.run(stop_ms=400)
    assert stats.timed_out == 0 and stats.closed_at_stop == 1 and silent.closed_by_server


@pytest.mark.parametrize("model", MODELS)
def test_lines_keep_a_client_and_a_dribble_without_newline_does_not(model: str) -> None:
    """One client sends a line every 60 ms, another a byte every 20 ms that never
    makes a line (a slowloris): the first stays, the second is closed."""
    s = _session(model)
    talker, dribbler = s.client(1), s.client(1)
    for k in range(8):
        talker.send(5 + 60 * k, b"line %d\n" % k)
    for k in range(20):
        dribbler.send(5 + 20 * k, b"x")
    dribbled = _ended_at(s, dribbler)
    talker.close(5 + 60 * 7 + 10)
    stats = s.run(stop_ms=700)
    assert bytes(talker.data) == b"".join(b"line %d\n" % k for k in range(8))
    assert stats.ended == 1  # the talker left itself
    # Closed: it sees the FIN, or a reset when its next byte reaches the closed socket.
    assert dribbled and bytes(dribbler.data) == b"" and stats.timed_out == 1
    assert 1 + TIMEOUT_MS <= dribbled[0] <= 1 + TIMEOUT_MS + LATE_MS


@pytest.mark.parametrize("model", MODELS)
def test_a_chat_member_that_only_reads_stays_while_others_talk(model: str) -> None:
    """Reading is activity: a silent chat member whose sends complete (it reads
    the others' lines) stays while they talk, and is closed a time-out after
    the talk ends."""
    s = _session(model, mode="chat")
    listener, talker = s.client(1), s.client(1)
    for k in range(6):
        talker.send(20 + 50 * k, b"hello %d\n" % k)
    talker.close(20 + 50 * 5 + 5)
    listened = _ended_at(s, listener)
    stats = s.run(stop_ms=800)
    assert bytes(listener.data).count(b"hello") == 6 and listener.closed_by_server
    assert stats.timed_out == 1
    last_read = 20 + 50 * 5
    assert last_read + TIMEOUT_MS <= listened[0] <= last_read + TIMEOUT_MS + LATE_MS + 1


@pytest.mark.parametrize("model", MODELS)
def test_silent_clients_no_longer_lock_out_a_real_one(model: str) -> None:
    """--max-clients 2 held by two silent clients: a third is served once they
    time out (and never, without a time-out, until the stop)."""
    for timeout_ms in (TIMEOUT_MS, 0):
        s = _session(model, timeout_ms=timeout_ms, limits=Limits(max_clients=2))
        silent = [s.client(1), s.client(1)]
        real = s.client(10)
        real.send(11, b"let me in\n")
        stats = s.run(stop_ms=200)  # before the real one times out in turn
        if timeout_ms:
            assert bytes(real.data) == b"let me in\n" and stats.timed_out == 2 and stats.closed_at_stop == 1
            assert all(c.closed_by_server for c in silent)
        else:
            assert bytes(real.data) == b"" and stats.timed_out == 0


@pytest.mark.parametrize("model", MODELS)
def test_a_silent_client_is_closed_while_another_keeps_the_server_busy(model: str) -> None:
    """A stream whose every operation completes at once keeps the server busy
    (the routines model's one alertable wait runs routine after routine); each
    Winsock call takes 0.4 ms, so serving the stream takes 110-480 ms of virtual
    time.  A silent client beside it is closed before the stream is echoed
    (the routines model checks between routines, every ROUTINE_BURST)."""
    ws = FakeWinsock(seed=0, config=exact(1.0, window=WINDOW, background=1.0, syscall_cost=400_000))
    s = Session(model, ws=ws, workers=2, idle_timeout_ms=30)
    hose = s.client(0)
    hose.send(1, STREAM)
    silent = s.client(0.5)
    hose_done = _served_at(s, hose, len(STREAM))
    silent_ended = _ended_at(s, silent)
    s.run(stop_ms=2000)
    assert bytes(hose.data) == STREAM and silent.closed_by_server
    assert silent_ended[0] < hose_done[0] / MS, (silent_ended, hose_done)
