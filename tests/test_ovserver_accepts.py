"""Several AcceptEx outstanding at once (``ServerConfig.accepts``, ``serve --accepts``).

With one AcceptEx, a burst of connects is taken one accept at a time: each
waits until the previous accept's completion has been noticed and the next
AcceptEx posted.  Under Wine an accept is slow (the one-at-a-time server took
120-640 connections a second), so ``serve`` keeps several outstanding, as real
IOCP and event servers do.  On the fake, every model: a burst is served whole
with ``accepts`` outstanding, never more than the places free under
``max_clients``; the slots complete in an order other than the one they are
looked at in; a post that erases another slot's signal (the wake event is
shared) signals again; a stop cancels every pending AcceptEx, closes its
accept socket and reaps it; and the property tests of every model pass with
four outstanding.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings

from fakewinsock import FakeWinsock
from ovserver import Limits, Server, ServerConfig
from ovserver._core import _Io
from ovserver._events import EventServer
from ovserver._iocp import IocpServer
from ovserver._routines import RoutineServer
from tests.mutants.properties import SETTINGS, echo_property, flood_property, with_accepts
from tests.ovserver_session import MODELS, Session, exact


class Watch:
    """Wraps a session's server: after every AcceptEx post and every accepted
    connection, the AcceptEx calls outstanding and the live connections."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.outstanding: list[int] = []
        self.over: list[tuple[int, int]] = []  # (live, outstanding) beyond max_clients
        post, opened = server._post_one_accept, server._open

        def posting(io: _Io) -> bool:
            ok = post(io)
            self.look()
            return ok

        def opening(s: int, name: bytes) -> None:
            opened(s, name)
            self.look()

        server._post_one_accept = posting  # type: ignore[method-assign]
        server._open = opening  # type: ignore[method-assign]

    def look(self) -> None:
        server = self.server
        busy = server._accepting()
        self.outstanding.append(busy)
        if len(server._conns) + busy > server.config.limits.max_clients:
            self.over.append((len(server._conns), busy))


def burst(model: str, accepts: int, clients: int, *, immediate: float = 0.0, seed: int = 0,
          limits: Limits | None = None, **fake: Any) -> tuple[Session, Watch]:
    """``clients`` echo clients connect at the same moment (1 ms), each sends a
    line at 2 ms and half-closes at 3 ms (the server echoes, then closes once
    it has read the FIN, whenever it accepts it)."""
    ws = FakeWinsock(seed=seed, config=exact(immediate, **fake))
    s = Session(model, "echo", ws=ws, limits=limits, accepts=accepts, workers=2)
    for i in range(clients):
        c = s.client(1.0)
        c.send(2.0, b"line %d\n" % i)
        s.at(3.0, c.peer.shutdown)
    return s, Watch(s.server)


def served(s: Session) -> list[int]:
    """The clients that did not get exactly their echo."""
    return [i for i, c in enumerate(s.clients) if bytes(c.data) != b"line %d\n" % i or not c.closed_by_server]


@pytest.mark.parametrize("immediate", [0.0, 1.0])
@pytest.mark.parametrize("model", MODELS)
def test_a_burst_is_accepted_with_every_accept_outstanding(model: str, immediate: float) -> None:
    s, watch = burst(model, 4, 30, immediate=immediate)
    stats = s.run(stop_ms=100)
    assert served(s) == []
    assert stats.accepted == 30 and stats.abandoned == 0
    assert max(watch.outstanding) == 4  # four posted at once, and never more
    assert s.server._accepting() == 0


@pytest.mark.parametrize("model", MODELS)
def test_one_accept_by_default(model: str) -> None:
    assert ServerConfig().accepts == 1
    s, watch = burst(model, 1, 10)
    s.run(stop_ms=100)
    assert served(s) == [] and max(watch.outstanding) == 1


@pytest.mark.parametrize("model", MODELS)
def test_accepts_never_exceed_the_places_free(model: str) -> None:
    """``max_clients`` 3 and 8 accepts asked for: at most 3 - live outstanding;
    the 12 clients, each leaving once served, are all served in turn."""
    s, watch = burst(model, 8, 12, limits=Limits(max_clients=3))
    stats = s.run(stop_ms=100)
    assert served(s) == []
    assert stats.accepted == 12
    assert watch.over == []
    assert max(watch.outstanding) == 3


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("model", MODELS)
def test_accept_slots_complete_in_any_order(model: str, seed: int) -> None:
    """Slots are reused as they are freed, so after a few accepts the order in
    which the listener completes them (the order they were posted in) is not
    the order the server looks at them in; with the fake's latencies and
    immediate completions drawn from the seed, every client is served."""
    s, watch = burst(model, 5, 40, immediate=0.5, seed=seed, latency=(5_000, 200_000),
                     completion_delay=(0, 300_000))
    order: list[int] = []
    slots: dict[int, int] = {}  # id -> the slot's number, in the order slots were first posted
    done, post = s.server._accept_done, s.server._post_one_accept

    def numbering(io: _Io) -> bool:
        slots.setdefault(id(io), len(slots))
        return post(io)

    def noting(io: _Io) -> None:
        order.append(slots[id(io)])
        done(io)

    s.server._post_one_accept = numbering  # type: ignore[method-assign]

    s.server._accept_done = noting  # type: ignore[method-assign]
    stats = s.run(stop_ms=100)
    assert served(s) == []
    assert stats.accepted == 40
    assert order != sorted(order)  # not simply slot 0, 1, 2...: handled out of slot order


@pytest.mark.parametrize("model", ["events", "routines"])
def test_a_post_that_erases_a_completed_slots_signal_signals_again(model: str) -> None:
    """The slots share the wake event and every AcceptEx post resets it.  Two
    slots; client A takes slot 0, which is posted again behind slot 1; client
    B takes slot 1, and client C arrives while the server handles B's accept
    (the fake's background steps run between its calls): C completes slot 0,
    already looked at, and the post of slot 1 again erases its signal.
    Without signalling again, C waits for a wake-up that never comes (the
    events model's acceptor: C got nothing, for C arriving 2 to 10 us after B;
    the routines model's alertable wait survives it).

    The events model's acceptor now posts only while fewer than ``accepts``
    connections are handed over and not yet taken by their groups, or
    pending (tests/test_ovserver_iocp_churn.py), so with two slots and these
    three clients the case no longer arose (0 or 1 time in 12); with three
    slots and three clients 0.5 to 6 ms apart it arises 10 times in 12.  (A
    group that takes its inbox signals the acceptor, which then looks at
    every slot, so there the case no longer loses C.)"""
    arose = 0
    for k in range(12):
        ws = FakeWinsock(seed=0, config=exact(0.0, background=1.0))
        s = Session(model, "echo", ws=ws, accepts=3 if model == "events" else 2)
        times = [1.0 + i * (k + 1) * 0.0005 for i in range(3)] if model == "events" else [1.0, 2.0, 2.0 + k * 0.001]
        for i, t in enumerate(times):
            c = s.client(t)
            c.send(t + 0.5, b"line %d\n" % i)
            s.at(t + 0.6, c.peer.shutdown)
        resignal = s.server._accept_resignal
        calls: list[int] = []

        def noting(calls: list[int] = calls, resignal: Any = resignal) -> None:
            calls.append(1)
            resignal()

        s.server._accept_resignal = noting  # type: ignore[method-assign]
        stats = s.run(stop_ms=50)
        arose += bool(calls)
        assert served(s) == [], f"C {k} us after B"
        assert stats.accepted == 3
    assert arose >= 5, "the case did not arise"


@pytest.mark.parametrize("immediate", [0.0, 1.0])
@pytest.mark.parametrize("model", MODELS)
def test_a_stop_cancels_and_reaps_every_pending_accept(model: str, immediate: float) -> None:
    """Eight AcceptEx pending and two clients connected at the stop: each
    AcceptEx completes cancelled, its accept socket is closed, it is reaped
    (nothing abandoned; Session.run checks that WSACleanup finds no socket,
    event or operation left)."""
    s, watch = burst(model, 8, 2, immediate=immediate)
    stats = s.run(stop_ms=2.5)  # before the clients half-close: they are closed at the stop
    assert stats.abandoned == 0 and stats.closed_at_stop == 2
    assert max(watch.outstanding) == 8
    assert s.server._accepting() == 0
    posted = [r for r in s.ws.trace if r.call == "AcceptEx" and r.what == "posted"]
    assert len(posted) == 2 + 8  # the two accepted, and the eight cancelled at the stop


SERVERS = {"events": EventServer, "routines": RoutineServer, "iocp": IocpServer}


#: A short budget of the echo property for the per-commit suite (its first, smaller examples).
SHORT = settings(SETTINGS, max_examples=30)


@pytest.mark.parametrize("model", sorted(SERVERS))
def test_echo_with_four_accepts(model: str) -> None:
    """The echo property's traffic (resets, early leaves, WSAENOBUFS on
    AcceptEx and the other posts, a stop mid-session, 1, 2 or any number of
    clients at once) on a short budget; the whole property is below (slow)."""
    echo_property(with_accepts(SERVERS[model], 4), SHORT)()


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(SERVERS))
def test_the_echo_property_with_four_accepts(model: str) -> None:
    """The whole echo property (100 examples, about 100 s a model)."""
    echo_property(with_accepts(SERVERS[model], 4))()


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(SERVERS))
def test_the_flood_property_with_eight_accepts(model: str) -> None:
    """The flood property: 48 to 80 clients at once (about 75 s a model)."""
    flood_property(with_accepts(SERVERS[model], 8))()


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("accepts", [1, 4])
def test_iocp_early_accepts_take_only_what_completed_before(accepts: int, seed: int) -> None:
    """iocp: before each packet, a worker completes the AcceptEx calls that
    have completed (their packets are owed, their slots not posted again until
    dequeued).  The AcceptEx posted after each may complete at once too (a
    backlog of connections), on a new slot; taking those as well drained the
    whole backlog within one packet, a slot per connection (under Wine, 3000
    connect-then-reset clients: the worker never came back to its port, the
    server neither served nor stopped).  Here, one worker, five clients
    stream lines through a 64-byte receive buffer (the port always holds
    packets) and 60 clients connect at once: one packet's early accepts are
    at most ``accepts`` (before the fix: 59-60), and every client is served."""
    ws = FakeWinsock(seed=seed, config=exact(1.0, window=1 << 20, background=1.0))
    s = Session("iocp", "echo", ws=ws, workers=1, recv_size=64, accepts=accepts, limits=Limits(max_queued=1 << 24))
    lines = []
    for i in range(5):
        c = s.client(0.1 + i / 100)
        lines.append(b"".join(b"%d says %05d\n" % (i, k) for k in range(400)))
        c.send(1.0, lines[-1])
    for i in range(60):
        c = s.client(1.2)
        c.send(1.3, b"line %d\n" % i)
        s.at(1.4, c.peer.shutdown)
    server = s.server
    assert isinstance(server, IocpServer)
    early = server._accept_early
    taken: list[int] = []

    def noting(ov: _Io) -> None:
        before = server.stats.accepted + server.stats.accept_failures
        early(ov)
        taken.append(server.stats.accepted + server.stats.accept_failures - before)

    server._accept_early = noting  # type: ignore[method-assign]
    stats = s.run(stop_ms=300)
    assert stats.accepted == 65
    assert [bytes(c.data) for c in s.clients[:5]] == lines
    assert [bytes(c.data) for c in s.clients[5:]] == [b"line %d\n" % i for i in range(60)]
    assert 0 < max(taken) <= accepts, max(taken)
