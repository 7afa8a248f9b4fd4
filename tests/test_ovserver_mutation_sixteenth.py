"""ovserver: survivors of the sixteenth session's mutation samples (issue 18,
seed 28, drawn among mutants no earlier sample or full run had checked) that
a behaviour tells apart.  Each test's docstring names the mutant it was
proven against (``tools/mutation_recheck.py --names``: the test failed on the
mutant and passes on the source)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from fakewinsock import FakeWinsock
from ovserver import Limits, Server, ServerConfig, ServerError, create_server
from ovserver._protocol import Hangup, Hub, Resume, Stall, chat_line
from tests.ovserver_session import MS, Session, exact
from tests.test_ovserver_failure_cleanup import _Boom, _scripted
from tests.test_ovserver_robust import NthThreadFails


class _WaitFailed(Exception):
    """What a wait of ``GroupWaitsFail`` raises (numbered: which one)."""


class GroupWaitsFail(FakeWinsock):
    """Once ``armed``, every WSAWaitForMultipleEvents of a thread other than
    ``acceptor`` (a group thread's) raises, and so does the acceptor's first
    wait for more than one event (ending a dead group: its own wait is for
    one event) once two group threads have died."""

    acceptor = 0
    armed = False
    raised = 0

    def WSAWaitForMultipleEvents(self, cEvents: int, lphEvents: Sequence[int], fWaitAll: int, dwTimeout: int,
                                 fAlertable: int) -> int:
        if self.armed and (self.GetCurrentThreadId() != self.acceptor or (cEvents > 1 and self.raised == 2)):
            self.raised += 1
            raise _WaitFailed(f"wait {self.raised}")
        return super().WSAWaitForMultipleEvents(cEvents, lphEvents, fWaitAll, dwTimeout, fAlertable)


def test_an_events_acceptor_ends_every_dead_group_even_after_ending_one_failed() -> None:
    """Events model, 64 clients: two groups (63 clients and 1).  The second
    group's thread dies of an exception in its wait (its client sent a
    line); the stop that follows makes the first group close its 63 clients,
    and its thread dies in its next wait too.  The acceptor then ends both
    dead groups as their threads would have, and ending the first fails
    (its wait raises as well): the second is ended all the same, so its
    client, never closed by its dead thread, is closed now (a FIN), and
    counted in ``closed_at_stop`` with the first group's 63.  run()
    re-raises what killed the first thread to die.  Proven against
    ``_end_orphans``' ``break`` for ``continue`` (the second group left as
    it was: its client never closed, ``closed_at_stop`` 63)."""
    ws = GroupWaitsFail(seed=0, config=exact(0.0, strict_cleanup=False))
    s = Session("events", ws=ws)
    clients = [s.client(1 + 0.05 * k) for k in range(64)]
    s.at(10, lambda: setattr(ws, "armed", True))
    clients[-1].send(11, b"hello\n")

    def ready(_: Server) -> None:
        ws.acceptor = ws.GetCurrentThreadId()
        for ms, action in s._script:
            ws.call_at(int(ms * MS), lambda f: f(), action)

    with pytest.raises(_WaitFailed, match="^wait 1$"):
        s.server.run(ready)
    ws.run_for(0.001)
    assert ws.raised == 3
    stats = s.server.stats
    assert (stats.accepted, stats.threads_started, stats.closed_at_stop) == (64, 2, 64)
    assert clients[-1].closed_by_server
    assert all(c.closed_by_server for c in clients)


@pytest.mark.parametrize(("late_ms", "abandoned"), [(0.5, 0), (1.5, 1)])
def test_an_iocp_server_that_fails_with_a_grace_period_of_1_ms_waits_1_ms(late_ms: float, abandoned: int) -> None:
    """``stop_grace_ms`` at its least, 1: the iocp model's only worker
    cannot be created, run() raises, and the controller alone waits 1 ms
    (not more) for the packet of the AcceptEx the stop cancelled: a packet
    0.5 ms after the cancellation is reaped, one 1.5 ms after it is given
    up on and counted in ``abandoned``.  Proven against ``_reap_alone``'s
    ``max(2, ...)`` for ``max(1, ...)`` (the controller waited 2 ms and
    reaped the late packet: abandoned 0)."""
    delay = int(late_ms * MS)
    ws = NthThreadFails(seed=0, config=exact(0.0, completion_delay=(delay, delay), strict_cleanup=False))
    server = create_server(ws, ServerConfig(port=0, model="iocp", workers=1, stop_grace_ms=1))
    with pytest.raises(ServerError, match=r"^CreateThread failed"):
        server.run()
    assert server.stats.abandoned == abandoned == len(ws.pending_operations())


def test_an_unexpected_error_resets_a_routines_client_whose_reply_is_still_in_flight() -> None:
    """Routines model, every completion 2 ms after its cause: a client's
    line is echoed, and while that send is still in flight (nothing more
    queued) an exception is raised inside the server's wait.  The server
    drops a send in flight as it drops queued output (it cannot know what
    the client got), so it resets the client rather than close it with a
    FIN.  Proven against ``_abandon``'s ``and`` for ``or`` (a send in flight
    with nothing queued: the client read a FIN)."""
    ws = FakeWinsock(seed=0, config=exact(0.0, strict_cleanup=False, completion_delay=(2 * MS, 2 * MS)))
    s = Session("routines", ws=ws)
    client = s.client(0.1)
    client.send(1, b"hello\n")
    seen: list[tuple[bool, int]] = []

    def boom() -> None:
        seen.extend((c.send.busy, s.server.hub.queued(c.cid)) for c in s.server._conns.values())
        raise _Boom("mid-send")

    s.at(5, boom)
    with pytest.raises(_Boom):
        s.server.run(lambda _: _scripted(s, ws))
    assert seen == [(True, 0)]  # the echo's send in flight, nothing more queued
    assert s.server.stats.abandoned == len(ws.pending_operations()) == 3  # AcceptEx, WSARecv, WSASend
    ws.run_for(0.01)
    assert client.reset_by_server


@pytest.mark.parametrize("mode", ["echo", "chat"])
def test_a_queue_of_exactly_high_water_bytes_is_not_over_the_mark(mode: str) -> None:
    """Back-pressure: a member is over the mark when its queue grows *past*
    ``high_water`` bytes (the protocol's docstring).  Echo: a line of
    exactly 100 bytes queues 100 bytes for its sender (mark 100): no Stall,
    not over, not held back; an empty line more (one byte) passes the mark:
    Stall, and the sender is held back by its own queue.  Chat: likewise
    for the other member, the recipient of the sender's lines (each with
    the sender's name before it), its welcome line drained first.  Proven against ``_enqueue``'s ``>=`` for ``>`` (a
    Stall at exactly 100 bytes)."""
    h = Hub(mode, Limits(max_queued=1000, high_water=100))
    h.join(1, b"a")
    h.join(2, b"b")
    for cid in (1, 2):
        h.take_output(cid, 1000)  # the chat welcome lines
    recipient = 1 if mode == "echo" else 2
    prefix = len(chat_line(b"a", b"")) if mode == "chat" else 0  # chat: b"a: " before the line
    actions = h.receive(1, b"y" * (99 - prefix) + b"\n")
    assert h.queued(recipient) == 100
    assert not any(isinstance(a, Stall) for a in actions) and not h.over(recipient) and not h.hold(1)
    assert Stall(recipient) in h.receive(1, b"\n") and h.over(recipient) and h.hold(1)


@pytest.mark.parametrize("how", ["leave", "end", "too_long"])
def test_a_held_back_chat_sender_that_goes_is_forgotten_by_back_pressure(how: str) -> None:
    """Chat, mark 100: member a's line puts b over the mark, so a is held
    back (paused).  Then a goes: its connection is gone (``leave``: in the
    server, a held-back client reset or closed at a stop) or it ended its
    input (``end``: the Hub's contract only; the server reads nothing from
    a held-back client, so it never sees one's EOF), or, read on all the
    same, it sent a line over ``max_line`` and is hung up (``too_long``: the
    Hub's contract only, likewise).  It is no longer paused, and when b drains to half the
    mark no Resume names a (the driver reads from it never again; the hub
    keeps nothing of a client that left).  Proven against ``leave``'s,
    ``end``'s and ``_too_long``'s ``_paused.discard(None)`` for ``discard(cid)`` (a stayed
    paused and b's drain resumed it; ``_too_long``'s: the eighteenth session)."""
    h = Hub("chat", Limits(max_line=500, max_queued=1000, high_water=100))
    h.join(1, b"a")
    h.join(2, b"b")
    for cid in (1, 2):
        h.take_output(cid, 1000)  # the welcome lines
    h.receive(1, b"x" * 149 + b"\n")
    assert h.hold(1) and h.paused(1) and h.over(2)
    if how == "leave":
        h.leave(1)
    elif how == "end":
        h.end(1)
    else:
        assert Hangup(1, "line too long") in h.receive(1, b"y" * 501)
    assert not h.paused(1)
    h.take_output(2, 1000)
    h.settle(2)
    assert not h.over(2) and Resume(1) not in h.pop_resumes()
