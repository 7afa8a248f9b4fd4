"""The iocp model accepts promptly while its port is busy.

The completion port hands packets out in FIFO order, so an AcceptEx's packet
waits behind every packet queued before it.  Under Wine, in a busy chat (20
members sending to 170, tools/wine/e2e.sh part ``chat-busy``), each receive
packet routes 16 KB to every member, and a new member was welcomed only 2-4 s
after it connected.  A worker therefore completes a completed AcceptEx after
every packet it handles (HasOverlappedIoCompleted reads memory only); the
accept's packet still comes later, and its OVERLAPPED is not reused until it has.

On the fake: with one worker, every operation completing at once and small
receives, ten chat members send streams of lines, so the port always holds a
packet per sender and more for the sends; a new member connects mid-stream.
Counted: the packets the worker handles between the completion of the new
member's AcceptEx and its joining.
"""

from __future__ import annotations

import pytest

from fakewinsock import WSAOVERLAPPED, FakeWinsock
from ovserver import Limits
from ovserver._iocp import IocpServer
from tests.ovserver_session import Session, exact

SENDERS = 10
#: When the senders start, and when the new member connects (ms).
STREAM_AT, FRESH_AT = 1.0, 1.2


def busy_chat(seed: int) -> tuple[Session, list[int]]:
    """The session, and the keys of the packets handled between the completion
    of the new member's AcceptEx and its joining (filled in as it runs)."""
    ws = FakeWinsock(seed=seed, config=exact(1.0, window=1 << 20, background=1.0))
    s = Session("iocp", "chat", ws=ws, workers=1, recv_size=64, limits=Limits(max_queued=1 << 24))
    for i in range(SENDERS):
        c = s.client(0.1 + i / 100)
        c.send(STREAM_AT, b"".join(b"%d says %05d\n" % (i, k) for k in range(400)))
    fresh = s.client(FRESH_AT)
    server = s.server
    assert isinstance(server, IocpServer)
    counted: list[int] = []
    dispatch = server._dispatch

    def counting(ok: bool, nbytes: int, key: int, ov: WSAOVERLAPPED) -> None:
        waiting = any(io.completed() for io in server._accepts) and server.stats.accepted == SENDERS
        dispatch(ok, nbytes, key, ov)
        if waiting and server.stats.accepted == SENDERS:
            counted.append(key)  # handled after the new member's AcceptEx completed, and it still waits

    server._dispatch = counting  # type: ignore[method-assign]
    del fresh
    return s, counted


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_new_member_is_accepted_after_the_packet_in_hand(seed: int) -> None:
    s, counted = busy_chat(seed)
    stats = s.run(stop_ms=300)
    fresh = s.clients[-1]
    assert stats.accepted == SENDERS + 1
    assert bytes(fresh.data).startswith(b"* welcome " + fresh.name + b"\n")
    # The senders' receives and the sends of their lines keep the port full:
    # the accept's packet has many packets ahead of it (24 on seed 0, handled
    # before the accept when only its packet completed it).  Completed early,
    # the accept waits for no packet at all.
    assert not counted, f"{len(counted)} packets handled before the accept (keys {counted[:12]}...)"
