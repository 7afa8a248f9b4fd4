"""ovserver's events model (``ovserver._events``, thread groups): what the
mutation run (issue 18, ``tools/mutation.sh``) found no test asserting."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from fakewinsock import FakeWinsock
from tests.ovserver_session import MS, Session, exact


def test_a_group_thread_that_ends_normally_exits_with_code_0() -> None:
    """A group's thread returns 0 when its clients are gone (1 is kept for a
    thread that died of an exception): what GetExitCodeThread, a debugger or the
    fake's trace shows."""
    ws = FakeWinsock(seed=1, config=exact(0.0))
    s = Session("events", ws=ws)
    clients = [s.client(0.01 * i) for i in range(3)]
    for i, c in enumerate(clients):
        c.send(2, b"%d\n" % i)
        c.close(5)
    stats = s.run(stop_ms=20)
    assert [bytes(c.data) for c in clients] == [b"%d\n" % i for i in range(3)]
    exits = [r.detail for r in ws.trace if r.what == "thread" and r.call == "exit"]
    assert stats.threads_started == 1 and len(exits) == 1
    assert exits[0].endswith(" exit_code=0")


class Boom(Exception):
    """An error nobody expected."""


class AcceptorBoom(FakeWinsock):
    """Raises Boom from the acceptor's wait (the only wait on one event: a
    group's array holds its wake event and its clients) once ``at_ns`` has come."""

    at_ns = 3 * MS

    def WSAWaitForMultipleEvents(self, cEvents: int, lphEvents: Sequence[int], fWaitAll: int, dwTimeout: int,
                                 fAlertable: int) -> int:
        if cEvents == 1 and self.now_ns >= self.at_ns:
            raise Boom("in the acceptor")
        return super().WSAWaitForMultipleEvents(cEvents, lphEvents, fWaitAll, dwTimeout, fAlertable)


def test_an_unexpected_error_in_the_acceptor_ends_the_groups_and_propagates() -> None:
    """The acceptor fails while a group serves three clients: the group is told
    to stop like at a normal stop (its clients closed, its thread ended), and
    the acceptor's exception comes out of run()."""
    ws = AcceptorBoom(seed=0, config=exact(0.0))
    s = Session("events", ws=ws)
    clients = [s.client(0.1 * k) for k in range(3)]
    for c in clients:
        c.send(1, b"before\n")
    s.client(4)  # its accept wakes the acceptor after at_ns: the wait raises
    with pytest.raises(Boom):
        s.run()
    ws.run_for(0.001)
    assert all(bytes(c.data) == b"before\n" and c.closed_by_server for c in clients)
    exits = [r.detail for r in ws.trace if r.what == "thread" and r.call == "exit"]
    assert len(exits) == 1 and exits[0].endswith(" exit_code=0")  # the group's thread ended


def test_a_chat_line_reaches_an_idle_client_of_another_group_at_once() -> None:
    """Chat with 64 clients: the 64th is alone in a second group and says
    nothing.  A line from the first group reaches it within a millisecond (its
    group is woken for it), not whenever its group happens to wake."""
    s = Session("events", mode="chat", fake=exact(0.0))
    clients = [s.client(0.01 * i) for i in range(64)]
    clients[0].send(5, b"hello\n")
    seen: list[bytes] = []
    s.at(6, lambda: seen.append(bytes(clients[63].data)))
    stats = s.run(stop_ms=20)
    assert stats.threads_started == 2
    assert seen and b"hello\n" in seen[0]


class GroupBoom(FakeWinsock):
    """Raises Boom from a group's wait (its wake event and its clients: two
    events or more) once ``at_ns`` has come."""

    at_ns = 3 * MS

    def WSAWaitForMultipleEvents(self, cEvents: int, lphEvents: Sequence[int], fWaitAll: int, dwTimeout: int,
                                 fAlertable: int) -> int:
        if cEvents >= 2 and self.now_ns >= self.at_ns:
            raise Boom("in a group")
        return super().WSAWaitForMultipleEvents(cEvents, lphEvents, fWaitAll, dwTimeout, fAlertable)


def test_a_group_thread_that_dies_of_an_exception_exits_with_code_1_and_the_error_propagates() -> None:
    """A group's thread fails (its wait raises): the thread exits with code 1
    (what GetExitCodeThread, a debugger or the fake's trace shows), the
    server stops and run() raises the group's exception."""
    ws = GroupBoom(seed=0, config=exact(0.0))
    s = Session("events", ws=ws)
    c = s.client(0)
    c.send(1, b"before\n")
    c.send(4, b"after\n")  # wakes the group after at_ns: its wait raises
    with pytest.raises(Boom, match="in a group"):
        s.run()
    exits = [r.detail for r in ws.trace if r.what == "thread" and r.call == "exit"]
    assert len(exits) == 1 and exits[0].endswith(" exit_code=1")
