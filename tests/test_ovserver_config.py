"""ovserver's configuration at every boundary, the address it reports, and stopping it on every path.

``ServerConfig`` and ``Limits`` reject what cannot work with a ValueError naming
the field, before anything starts, and accept the smallest values that do; a
server configured at those smallest values still serves exactly.  The address
a server reports is the one it is bound to (port 0: the port the system
picked).  ``request_stop`` works before ``run``, from the server's own thread
(as the console's Ctrl+C handler calls it, with the default signal), from a
simulated actor, twice, and after the server has stopped.
"""

from __future__ import annotations

from typing import Any

import pytest

from fakewinsock import FakeWinsock
from ovserver import Limits, Mode, Server, ServerConfig, ServerError, create_server
from ovserver._protocol import error_line
from tests.ovserver_session import MODELS, Session, exact

# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("field", ["recv_size", "send_size", "accept_retry_ms"])
@pytest.mark.parametrize("value", [0, -1])
def test_sizes_below_one_are_rejected(field: str, value: int) -> None:
    kwargs: dict[str, Any] = {field: value}
    with pytest.raises(ValueError, match=field):
        ServerConfig(**kwargs)


@pytest.mark.parametrize("field", ["recv_size", "send_size", "accept_retry_ms"])
def test_sizes_of_one_are_accepted(field: str) -> None:
    kwargs: dict[str, Any] = {field: 1}
    assert getattr(ServerConfig(**kwargs), field) == 1


@pytest.mark.parametrize("field", ["max_line", "max_clients", "max_queued"])
@pytest.mark.parametrize("value", [0, -1])
def test_limits_below_one_are_rejected(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=f"{field}={value}"):
        Limits(**{field: value})


@pytest.mark.parametrize("field", ["max_line", "max_clients", "max_queued"])
def test_limits_of_one_are_accepted(field: str) -> None:
    assert getattr(Limits(**{field: 1}), field) == 1


@pytest.mark.parametrize("model", ["", "Events", "IOCP", "event", "iocp "])
def test_unknown_models_are_rejected_with_the_choices(model: str) -> None:
    with pytest.raises(ValueError, match=r"model must be one of \('events', 'routines', 'iocp'\)"):
        ServerConfig(model=model)


@pytest.mark.parametrize("model", MODELS)
def test_each_model_makes_its_server(model: str) -> None:
    server = create_server(FakeWinsock(), ServerConfig(model=model))
    assert server.model == model == server.config.model


@pytest.mark.parametrize(("mode", "expected"), [("echo", Mode.ECHO), ("chat", Mode.CHAT), (Mode.CHAT, Mode.CHAT)])
def test_mode_is_given_by_name_or_member(mode: Any, expected: Mode) -> None:
    assert ServerConfig(mode=mode).mode is expected


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="shout"):
        ServerConfig(mode="shout")  # type: ignore[arg-type]


def test_the_documented_defaults() -> None:
    """What the README and ``ovserver serve --help`` promise when nothing is given."""
    cfg = ServerConfig()
    assert (cfg.host, cfg.port, cfg.model, cfg.mode) == ("127.0.0.1", 12345, "events", Mode.ECHO)
    assert (cfg.recv_size, cfg.send_size, cfg.accept_retry_ms) == (16 * 1024, 64 * 1024, 50)
    assert cfg.limits == Limits() == Limits(max_line=64 * 1024, max_clients=10_000, max_queued=1024 * 1024)


# ---------------------------------------------------------------- the smallest working values


@pytest.mark.parametrize("model", MODELS)
def test_one_byte_buffers_still_echo_exactly(model: str) -> None:
    """recv_size=1 and send_size=1: every byte is its own receive and its own send."""
    s = Session(model, fake=exact(0.5), recv_size=1, send_size=1)
    c = s.client()
    c.send(1, b"one\ntwo\n")
    c.send(2, b"three\n")
    stats = s.run(stop_ms=20)
    assert bytes(c.data) == b"one\ntwo\nthree\n"
    assert stats.bytes_sent == stats.bytes_received == 14
    assert stats.posted_immediate + stats.posted_pending >= 2 * 14  # a receive and a send per byte


@pytest.mark.parametrize("model", MODELS)
def test_a_send_carries_at_most_send_size(model: str) -> None:
    s = Session(model, fake=exact(0.0), send_size=10)
    c = s.client()
    c.send(1, b"a" * 35 + b"\n")
    stats = s.run(stop_ms=20)
    assert bytes(c.data) == b"a" * 35 + b"\n"
    recvs_accepts = 3  # AcceptEx twice (one cancelled by the stop), one WSARecv before the line
    assert stats.posted_pending == recvs_accepts + 1 + 4  # a WSARecv after the line, 4 sends of <= 10 bytes


@pytest.mark.parametrize("model", MODELS)
def test_max_line_of_one(model: str) -> None:
    """A one-byte line is fine, a two-byte line is over the limit."""
    s = Session(model, limits=Limits(max_line=1), fake=exact(0.0))
    ok, long = s.client(0), s.client(0.1)
    ok.send(1, b"a\n\n")
    long.send(1, b"ab\n")
    stats = s.run(stop_ms=10)
    assert bytes(ok.data) == b"a\n\n"
    assert bytes(long.data) == error_line(1)
    assert stats.hung_up == 1


@pytest.mark.parametrize("model", MODELS)
def test_max_clients_of_one_serves_one_at_a_time(model: str) -> None:
    """The second client waits in the backlog until the first has left."""
    s = Session(model, limits=Limits(max_clients=1), fake=exact(0.0))
    first, second = s.client(0), s.client(0.1)
    first.send(1, b"first\n")
    second.send(1, b"second\n")
    first.close(5)
    stats = s.run(stop_ms=10)
    assert bytes(first.data) == b"first\n"
    assert bytes(second.data) == b"second\n"
    assert (stats.accepted, stats.peak_connections, stats.ended, stats.closed_at_stop) == (2, 1, 1, 1)


@pytest.mark.parametrize("model", MODELS)
def test_65_clients_are_served_at_once(model: str) -> None:
    """65 clients at once: the events model's first group is full at 63 (64
    events with its wake event), so a second group takes the other two;
    routines take every client on one thread; iocp's 4 workers (the default
    pool) take any client's completions."""
    s = Session(model, fake=exact(0.0))
    clients = [s.client(0.01 * i) for i in range(65)]
    for i, c in enumerate(clients):
        c.send(2, b"%d\n" % i)
    stats = s.run(stop_ms=10)
    assert stats.peak_connections == 65
    assert stats.threads_started == {"events": 2, "routines": 0, "iocp": 4}[model]
    assert [bytes(c.data) for c in clients] == [b"%d\n" % i for i in range(65)]


@pytest.mark.parametrize("model", MODELS)
def test_max_clients_bounds_the_clients_served_at_once(model: str) -> None:
    """--max-clients 64: the 65th client waits in the backlog (both models)."""
    s = Session(model, limits=Limits(max_clients=64), fake=exact(0.0))
    clients = [s.client(0.01 * i) for i in range(65)]
    for i, c in enumerate(clients):
        c.send(2, b"%d\n" % i)
    stats = s.run(stop_ms=10)
    assert stats.peak_connections == 64
    assert [bytes(c.data) for c in clients[:64]] == [b"%d\n" % i for i in range(64)]
    assert bytes(clients[64].data) == b""


# ---------------------------------------------------------------- the address


@pytest.mark.parametrize("model", MODELS)
def test_port_zero_reports_the_port_picked(model: str) -> None:
    """The clients of a Session connect to the reported address: it must be
    the bound one, and not port 0."""
    s = Session(model, fake=exact(0.0))
    reported: list[tuple[str, int] | None] = []
    c = s.client()
    c.send(1, b"found you\n")
    s.at(0, lambda: reported.append(s.server.address))
    s.run(stop_ms=5)
    assert reported[0] is not None and reported[0][0] == "127.0.0.1" and reported[0][1] > 0
    assert bytes(c.data) == b"found you\n"


def test_an_explicit_port_is_reported_as_given() -> None:
    ws = FakeWinsock()
    server = create_server(ws, ServerConfig(port=7123))
    assert server.address is None  # not bound yet
    seen: list[tuple[str, int] | None] = []

    def ready(srv: Server) -> None:
        seen.append(srv.address)
        srv.request_stop()

    server.run(ready)
    assert seen == [("127.0.0.1", 7123)]


def test_a_port_in_use_is_a_server_error_and_leaks_nothing() -> None:
    ws = FakeWinsock()
    first = create_server(ws, ServerConfig(port=7124))

    def second_on_the_same_port(srv: Server) -> None:
        with pytest.raises(ServerError, match="bind to 127.0.0.1:7124 failed"):
            create_server(ws, ServerConfig(port=7124)).run()
        srv.request_stop()

    first.run(second_on_the_same_port)
    assert ws.leaks() == [] and ws.open_handles() == []


# ---------------------------------------------------------------- request_stop on every path


@pytest.mark.parametrize("model", MODELS)
def test_stop_requested_before_run(model: str) -> None:
    """run() then listens, stops at once and returns, leaving nothing open."""
    ws = FakeWinsock(config=exact(0.0))
    server = create_server(ws, ServerConfig(port=0, model=model))
    server.request_stop()
    stats = server.run()
    assert stats.accepted == 0 and stats.closed_at_stop == 0
    assert ws.leaks() == [] and ws.open_handles() == []


@pytest.mark.parametrize("model", MODELS)
def test_stop_from_ready_with_the_default_signal(model: str) -> None:
    """The console's Ctrl+C handler calls request_stop() with no argument:
    WSASetEvent on the wake event.  Called as soon as the server listens."""
    ws = FakeWinsock(config=exact(1.0))
    server = create_server(ws, ServerConfig(port=0, model=model))
    stats = server.run(lambda srv: srv.request_stop())
    assert stats.accepted == 0
    assert ws.leaks() == [] and ws.open_handles() == []


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("immediate", [0.0, 1.0])
def test_stop_with_the_default_signal_mid_session(model: str, immediate: float) -> None:
    """request_stop() (WSASetEvent) while clients are connected and idle: the
    server wakes, closes them and returns."""
    s = Session(model, fake=exact(immediate))
    clients = [s.client(0.1 * i) for i in range(3)]
    for c in clients:
        c.send(1, b"hello\n")
    s.at(5, lambda: s.server.request_stop())
    stats = s.run()
    assert stats.closed_at_stop == 3
    assert all(bytes(c.data) == b"hello\n" and c.closed_by_server for c in clients)
    assert s.ws.now_ns < 7 * 1_000_000  # it stopped when asked, not later


@pytest.mark.parametrize("model", MODELS)
def test_stop_requested_twice_and_after_the_end(model: str) -> None:
    s = Session(model, fake=exact(0.0))
    c = s.client()
    c.send(1, b"x\n")
    s.stop(3)
    s.stop(3.5)
    stats = s.run()
    assert stats.closed_at_stop == 1 and bytes(c.data) == b"x\n"
    s.server.request_stop()  # after run() returned: the wake event is gone, nothing happens
    assert s.ws.stats["failed"] == 0


@pytest.mark.parametrize("model", MODELS)
def test_stop_signals_through_the_signal_given(model: str) -> None:
    """request_stop(signal=...) signals the wake event with the function given
    (a simulated actor's or another thread's), once, instead of WSASetEvent."""
    s = Session(model, fake=exact(0.0))
    used: list[int] = []

    def signal(event: int) -> None:
        used.append(event)
        s.ws.signal_event(event)

    s.client().send(1, b"x\n")
    s.at(3, lambda: s.server.request_stop(signal=signal))
    stats = s.run()
    assert len(used) == 1 and stats.closed_at_stop == 1
