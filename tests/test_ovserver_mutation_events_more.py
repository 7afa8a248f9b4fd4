"""ovserver's events model (``ovserver._events``): more of what the mutation
run (issue 18, ``tools/mutation.sh``) found no test asserting."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import pytest

from fakewinsock import FakeWinsock, RandomChooser
from fakewinsock.constants import INVALID_SOCKET, WSA_INVALID_HANDLE, WSA_WAIT_EVENT_0, WSA_WAIT_FAILED, WSAENOBUFS
from ovserver import Server, ServerConfig, ServerError, create_server
from ovserver._events import GROUP_CLIENTS
from tests.ovserver_session import MODELS, MS, Session, exact


class NoSwitch(RandomChooser):
    """Never moves the baton to another thread while the running one can go on
    (and gives it to the oldest runnable thread, the acceptor first, when it
    blocks): the acceptor outruns the group threads."""

    def index(self, n: int, label: str) -> int:
        return 0 if label == "thread" else super().index(n, label)

    def integer(self, lo: int, hi: int, label: str) -> int:
        return lo if label == "thread" else super().integer(lo, hi, label)


class SocketFailsOnce(FakeWinsock):
    """The ``fail_at``-th WSASocket fails with WSAENOBUFS (the acceptor's next
    AcceptEx is retried ``accept_retry_ms`` later)."""

    fail_at = 0
    made = 0

    def WSASocket(self, af: int, type: int, protocol: int, lpProtocolInfo: None, g: int,  # noqa: A002
                  dwFlags: int) -> int:
        self.made += 1
        if self.made == self.fail_at:
            self.WSASetLastError(WSAENOBUFS)
            return INVALID_SOCKET
        return super().WSASocket(af, type, protocol, lpProtocolInfo, g, dwFlags)


def test_a_group_is_never_handed_more_than_63_clients_before_it_takes_them() -> None:
    """A group holds 62 clients; three more wait in the backlog (the acceptor's
    AcceptEx failed and waits to be retried) and are accepted at once, one
    after the other, before the group's thread takes its inbox.  The inbox
    counts against the group's room: one joins the group, the two others go
    to a second one (a group handed 65 would wait on 66 events)."""
    # AcceptEx takes a client waiting in the backlog at once
    accept_at_once = replace(exact(0.0), immediate={"AcceptEx": 1.0, "*": 0.0})
    ws = SocketFailsOnce(config=accept_at_once, chooser=NoSwitch(0))
    ws.fail_at = 1 + GROUP_CLIENTS  # the listener, then the accepts of 62 clients: the next one fails
    s = Session("events", ws=ws, accept_retry_ms=10)
    first = [s.client(0.01 * i) for i in range(GROUP_CLIENTS - 1)]
    late = [s.client(3 + 0.01 * i) for i in range(3)]
    clients = first + late
    for i, c in enumerate(clients):
        c.send(15, b"%d\n" % i)
    stats = s.run(stop_ms=20)
    assert [bytes(c.data) for c in clients] == [b"%d\n" % i for i in range(len(clients))]
    assert (stats.accepted, stats.threads_started, stats.peak_threads) == (65, 2, 2)
    assert stats.accept_failures == 1 and stats.io_errors == 0 and stats.closed_at_stop == 65


@pytest.mark.parametrize("model", MODELS)
def test_a_stop_gives_up_on_an_accept_whose_cancellation_comes_late(model: str) -> None:
    """Every completion, the cancelled operations' included, comes 50 ms after
    its cause; the stop's grace period is 1 ms.  One client is connected (its
    receive pending) when the stop comes.  The server stops after the grace
    period without waiting for the cancelled completions, and counts what it
    abandoned: the client's receive and the next client's AcceptEx.  A second
    stop request (a second Ctrl+C) half-way through the grace period changes
    nothing of that (the acceptor's wait, woken by it, goes on)."""
    ws = FakeWinsock(seed=0, config=exact(0.0, completion_delay=(50 * MS, 50 * MS), strict_cleanup=False))
    server = create_server(ws, ServerConfig(port=0, model=model, stop_grace_ms=1))
    stop_ns = 200 * MS
    client = ws.peer()

    def ready(srv: Server) -> None:
        assert srv.address is not None
        client.connect_nowait(*srv.address)
        ws.call_at(stop_ns, lambda _: srv.request_stop(signal=ws.signal_event))
        ws.call_at(stop_ns + MS // 2, lambda _: srv.request_stop(signal=ws.signal_event))

    stats = server.run(ready)
    assert MS <= ws.now_ns - stop_ns < 3 * MS  # about the grace period, not the 50 ms
    assert (stats.accepted, stats.closed_at_stop, stats.cancelled, stats.abandoned) == (1, 1, 0, 2)
    assert len(ws.pending_operations()) == 2  # what it gave up on


class AcceptorWaitFails(FakeWinsock):
    """The acceptor's first wait (the only wait on one event) from 3 ms on
    returns ``rc``, with WSA_INVALID_HANDLE as the last error."""

    rc = WSA_WAIT_FAILED
    failed = False

    def WSAWaitForMultipleEvents(self, cEvents: int, lphEvents: Sequence[int], fWaitAll: int, dwTimeout: int,
                                 fAlertable: int) -> int:
        if cEvents == 1 and self.now_ns >= 3 * MS and not self.failed:
            self.failed = True
            self.WSASetLastError(WSA_INVALID_HANDLE)
            return self.rc
        return super().WSAWaitForMultipleEvents(cEvents, lphEvents, fWaitAll, dwTimeout, fAlertable)


@pytest.mark.parametrize("model", ["events", "iocp"])
@pytest.mark.parametrize("rc", ["failed", "past the last"])
def test_a_failed_wait_of_the_acceptor_is_a_server_error_and_ends_the_groups(rc: str, model: str) -> None:
    """The events model's acceptor, or the iocp model's controller: its
    WSAWaitForMultipleEvents (on its one wake event) fails while a client is
    served: a ServerError saying what the wait returned and the last error,
    and the client is closed."""
    returns: dict[str, Callable[[int], int]] = {"failed": lambda n: WSA_WAIT_FAILED,
                                                "past the last": lambda n: WSA_WAIT_EVENT_0 + n}
    ws = AcceptorWaitFails(seed=0, config=exact(0.0))
    ws.rc = returns[rc](1)
    s = Session(model, ws=ws)
    c = s.client(0)
    c.send(1, b"hello\n")
    s.client(3)  # wakes the acceptor: its next wait fails
    with pytest.raises(ServerError) as info:
        s.run(stop_ms=10)
    assert ws.failed
    assert str(info.value) == f"WSAWaitForMultipleEvents failed: {ws.rc:#x} (error {WSA_INVALID_HANDLE})"
    ws.run_for(0.001)
    assert bytes(c.data) == b"hello\n" and c.closed_by_server


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_chat_line_for_a_group_still_reaches_its_clients_when_one_of_them_resets_meanwhile(seed: int) -> None:
    """Chat, two groups: 63 clients in the first, x and y in the second.  A
    line from the first group and x's reset arrive at once, with network
    events happening behind the threads' backs (``background=1.0``): the
    line's deliveries to x and y reach the second group's action queue, and
    x is closed before the group performs them.  The delivery to the closed x
    is skipped, y's is not: y gets the line (a group that gave up on the rest
    of its queue at x left y without it in every seed from 0 to 29)."""
    ws = FakeWinsock(seed=seed, config=exact(0.0, background=1.0))
    s = Session("events", mode="chat", ws=ws)
    first = [s.client(0.01 * i) for i in range(GROUP_CLIENTS)]
    x, y = s.client(1), s.client(1.1)
    first[0].send(5, b"hello\n")
    x.reset(5)
    stats = s.run(stop_ms=20)
    assert stats.threads_started == 2 and stats.reset == 1
    assert all(b"hello\n" in bytes(c.data) for c in [*first[1:], y])


def test_a_full_group_with_more_closing_clients_than_spare_wait_slots_serves_and_reaps_them() -> None:
    """Every completion comes 50 ms after its cause (AcceptEx's too: one
    client accepted every 50 ms).  A group of 63 clients: x1 and x2 first,
    then 61 that send a line at 4 s.  x1 and x2 time out (idle 5 s) one
    after the other, each closed with its receive in flight: its event stays
    in the group's wait until that cancelled receive completes, 50 ms later.
    Meanwhile y joins the group in x1's place, so the group has 63 clients
    and a closing one, more than the 64 wait slots less the wake event: the
    closing ones take turns in the spare slots (none at first, then one of
    two) and the wait polls for them.  Everyone is served, both closed
    clients are reaped, nothing is abandoned (a rotation that started at
    ``None`` failed there)."""
    ws = FakeWinsock(seed=0, config=exact(0.0, completion_delay=(50 * MS, 50 * MS)))
    s = Session("events", ws=ws, idle_timeout_ms=5000)
    x = [s.client(0), s.client(0.1)]
    rest = [s.client(1 + 0.01 * i) for i in range(GROUP_CLIENTS - 2)]
    y = s.client(5030)  # accepted at 5080 ms, between x1's close (5053) and its cancelled receive's completion
    for i, c in enumerate(rest):
        c.send(4000 + 0.01 * i, b"%d\n" % i)
    y.send(5230, b"y\n")
    stats = s.run(stop_ms=5500)
    assert [bytes(c.data) for c in [*rest, y]] == [b"%d\n" % i for i in range(len(rest))] + [b"y\n"]
    assert all(c.closed_by_server for c in x) and not any(bytes(c.data) for c in x)
    assert (stats.accepted, stats.peak_connections, stats.timed_out, stats.closed_at_stop) == (64, 63, 2, 62)
    assert (stats.threads_started, stats.abandoned, stats.cancelled, stats.io_errors) == (1, 0, 0, 0)
