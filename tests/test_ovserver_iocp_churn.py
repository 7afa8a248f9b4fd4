"""Early accepts run at most ``accepts`` connections ahead of the completions (iocp, routines, events).

A worker completes the AcceptEx calls that have completed before each packet
it handles (tests/test_ovserver_iocp_accept.py); their packets still come, in
FIFO order, and each such *owed* slot is replaced by a new one meanwhile.
Without a bound, under Wine a chat with 30 clients at a time reconnecting
(connect, welcome, a line, leave; 6000 in all) had the server accept 3850
connections ahead of the packets that would have ended the clients gone
before (3662 slots owed, 11407 operations in flight): every line went to
thousands of members long gone (59 MB sent for 44 KB of lines) and the server
grew from 41 to 268 MB.  With at most ``accepts`` owed, it held 55
connections, sent 1.9 MB, and stayed at 42 MB, in the same 18 s.

On the fake: one worker, every operation completing at once; ten chat members
stream lines, so the port is never empty, while 300 clients arrive 0.05 ms
apart and each leaves 0.2 ms after it connects.
"""

from __future__ import annotations

import pytest

from fakewinsock import WSAOVERLAPPED, FakeWinsock
from ovserver import Limits
from ovserver._core import _Conn, _Io
from ovserver._events import EventServer
from ovserver._iocp import IocpServer
from ovserver._routines import RoutineServer
from tests.ovserver_session import Session, exact

SENDERS, CHURN, ACCEPTS = 10, 300, 4


def churn(s: Session) -> None:
    """Ten chat members streaming lines, then 300 clients 2 us apart, each gone
    (a close or a reset, in turn) 2 ms after it connects."""
    for i in range(SENDERS):
        c = s.client(0.1 + i / 100)
        c.send(1.0, b"".join(b"%d says %05d\n" % (i, k) for k in range(400)))
    for i in range(CHURN):
        c = s.client(1.0 + i * 0.002)
        (c.close if i % 2 else c.reset)(3.0 + i * 0.002)


@pytest.mark.parametrize("seed", [0, 1])
def test_owed_accepts_stay_within_accepts(seed: int) -> None:
    ws = FakeWinsock(seed=seed, config=exact(1.0, window=1 << 20, background=1.0))
    s = Session("iocp", "chat", ws=ws, workers=1, recv_size=64, accepts=ACCEPTS, limits=Limits(max_queued=1 << 24))
    churn(s)
    server = s.server
    assert isinstance(server, IocpServer)
    most = [0, 0]  # owed slots, connections held
    dispatch = server._dispatch

    def watching(ok: bool, nbytes: int, key: int, ov: WSAOVERLAPPED) -> None:
        dispatch(ok, nbytes, key, ov)
        most[0] = max(most[0], len(server._owed))
        most[1] = max(most[1], len(server._conns))

    server._dispatch = watching  # type: ignore[method-assign]
    stats = s.run(stop_ms=400)
    assert stats.accepted > SENDERS
    assert most[0] <= ACCEPTS, f"{most[0]} accept slots owed their packets (at most {ACCEPTS} may be)"


@pytest.mark.parametrize("seed", [0, 1])
def test_routines_accept_at_most_accepts_ahead_of_the_routines(seed: int) -> None:
    """The routines model: an accept done by a routine jumps the queue of
    routines (it has none of its own), so without a bound the server took in
    every connection as it came while the routines that would end those gone
    waited: under Wine, in the same churn as above, 3600 connections held and
    243 MB; with a marker APC per accept and at most ``accepts`` queued, 30
    and 40 MB.  Here the 300 clients connect within 0.6 ms and each leaves 2
    ms later: unbounded, the server held all 309 at once; bounded, 102."""
    ws = FakeWinsock(seed=seed, config=exact(1.0, window=1 << 20, background=1.0))
    s = Session("routines", "chat", ws=ws, recv_size=64, accepts=ACCEPTS, limits=Limits(max_queued=1 << 24))
    churn(s)
    server = s.server
    assert isinstance(server, RoutineServer)
    most = [0, 0]  # connections held, markers queued
    completed = server._completed

    def watching(io: _Io, error: int, nbytes: int) -> None:
        completed(io, error, nbytes)
        most[0] = max(most[0], len(server._conns))
        most[1] = max(most[1], server._owed)

    server._completed = watching  # type: ignore[method-assign]
    stats = s.run(stop_ms=400)
    assert stats.accepted > SENDERS
    assert most[1] <= ACCEPTS
    assert most[0] <= SENDERS + CHURN // 2, f"{most[0]} connections held at once"


@pytest.mark.parametrize("seed", [0, 1])
def test_events_accept_at_most_accepts_ahead_of_the_groups(seed: int) -> None:
    """The events model: its acceptor is a thread of its own, so without a
    bound it took in connections as they came and handed them over, and each
    group took its inbox at every wake-up, ahead of the clients signalled
    before (one client is served per wake-up), among them those whose EOF
    would end the clients gone meanwhile: under Wine, in the same churn as
    above, up to 2005 connections held, 181 MB, 130 MB sent, 32 s; bounded,
    83, 41 MB, 3.6 MB sent, 10.5 s.  Now at most ``accepts`` are
    handed over and not yet taken, or with an AcceptEx posted, and a group
    takes its inbox only in its wake event's turn.  Here: unbounded, 196 and
    193 connections held at once (seeds 0 and 1), and up to 22 in the
    inboxes; the bound alone, 140 and 130; the wake event's turn alone, 185
    and 210; both, 46."""
    ws = FakeWinsock(seed=seed, config=exact(1.0, window=1 << 20, background=1.0))
    s = Session("events", "chat", ws=ws, recv_size=64, accepts=ACCEPTS, limits=Limits(max_queued=1 << 24))
    churn(s)
    server = s.server
    assert isinstance(server, EventServer)
    most = [0, 0]  # connections held, handed over and not yet taken
    handle = server._handle_group

    def watching(conn: _Conn) -> None:
        handle(conn)
        most[0] = max(most[0], len(server._conns))
        most[1] = max(most[1], sum(len(g.inbox) for g in server._groups))

    server._handle_group = watching  # type: ignore[method-assign]
    stats = s.run(stop_ms=400)
    assert stats.accepted > SENDERS + CHURN // 2
    assert most[1] <= ACCEPTS, f"{most[1]} connections handed over and not yet taken (at most {ACCEPTS} may be)"
    assert most[0] <= SENDERS + CHURN // 4, f"{most[0]} connections held at once"
