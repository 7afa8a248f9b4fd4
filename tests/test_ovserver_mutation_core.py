"""ovserver's core (``ovserver._core``): what the mutation run (issue 18,
``tools/mutation.sh``) found no test asserting.

Each test states behaviour a user relies on: the configuration rejects what
cannot work at exactly its boundary (and says which value was wrong), the
address a server reports, the statistics an operator reads, and a stop that
always returns with nothing left open.  Scenarios run the server on the fake
with every choice fixed (:func:`ovserver_session.exact`), so counts are exact.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from fakewinsock import WSAOVERLAPPED, FakeWinsock
from fakewinsock.constants import FALSE
from ovserver import SERVERS, Limits, Server, ServerConfig, create_server
from ovserver._core import MAX_IDLE_TIMEOUT_MS, MAX_WORKERS
from tests.ovserver_session import MODELS, MS, Session, exact
from tests.test_ovserver_mutation_events_more import NoSwitch

ERROR_NOT_FOUND = 1168

# ---------------------------------------------------------------- validation at every boundary


@pytest.mark.parametrize("value", [0, -1])
def test_stop_grace_below_one_is_rejected(value: int) -> None:
    with pytest.raises(ValueError, match="stop_grace_ms"):
        ServerConfig(stop_grace_ms=value)


def test_stop_grace_of_one_is_accepted() -> None:
    assert ServerConfig(stop_grace_ms=1).stop_grace_ms == 1


@pytest.mark.parametrize("port", [-1, 65536, 99999])
def test_ports_outside_0_to_65535_are_rejected_naming_the_port(port: int) -> None:
    with pytest.raises(ValueError, match=f"port must be 0-65535, not {port}$"):
        ServerConfig(port=port)


@pytest.mark.parametrize("port", [0, 1, 65535])
def test_ports_at_the_ends_of_the_range_are_accepted(port: int) -> None:
    assert ServerConfig(port=port).port == port


@pytest.mark.parametrize("host", ["localhost", "::1", "127.0.0", "127.0.0.256", ""])
def test_a_host_that_is_not_an_ipv4_address_is_rejected_naming_it(host: str) -> None:
    with pytest.raises(ValueError, match=f"host must be an IPv4 address \\(resolve a name first\\), not {host!r}$"):
        ServerConfig(host=host)


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1", "10.1.2.3"])
def test_ipv4_hosts_are_accepted(host: str) -> None:
    assert ServerConfig(host=host).host == host


@pytest.mark.parametrize("workers", [0, -1, MAX_WORKERS + 1])
def test_worker_counts_outside_1_to_the_maximum_are_rejected_naming_the_count(workers: int) -> None:
    with pytest.raises(ValueError, match=f"^workers must be 1-{MAX_WORKERS}, not {workers}$"):
        ServerConfig(model="iocp", workers=workers)


@pytest.mark.parametrize("workers", [1, MAX_WORKERS])
def test_worker_counts_at_the_ends_of_the_range_are_accepted(workers: int) -> None:
    assert ServerConfig(model="iocp", workers=workers).workers == workers


@pytest.mark.parametrize("ms", [-1, MAX_IDLE_TIMEOUT_MS + 1])
def test_idle_time_outs_outside_the_range_are_rejected_naming_the_value(ms: int) -> None:
    with pytest.raises(ValueError, match=f"^idle_timeout_ms must be 0 \\(off\\) to {MAX_IDLE_TIMEOUT_MS}, not {ms}$"):
        ServerConfig(idle_timeout_ms=ms)


@pytest.mark.parametrize("ms", [0, 1, MAX_IDLE_TIMEOUT_MS])
def test_idle_time_outs_at_the_ends_of_the_range_are_accepted(ms: int) -> None:
    assert ServerConfig(idle_timeout_ms=ms).idle_timeout_ms == ms


@pytest.mark.parametrize("field", ["accept_retry_ms", "stop_grace_ms"])
@pytest.mark.parametrize("ms", [MAX_IDLE_TIMEOUT_MS + 1, 0xFFFFFFFF, 1 << 40])
def test_wait_time_outs_over_the_maximum_are_rejected_naming_the_value(field: str, ms: int) -> None:
    """Each is a wait's time-out: 0xFFFFFFFF (WSA_INFINITE) would wait for ever, more is no DWORD."""
    with pytest.raises(ValueError, match=f"^{field} must be 1 to {MAX_IDLE_TIMEOUT_MS}, not {ms}$"):
        ServerConfig(**{field: ms})  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["accept_retry_ms", "stop_grace_ms"])
def test_wait_time_outs_at_the_maximum_are_accepted(field: str) -> None:
    assert getattr(ServerConfig(**{field: MAX_IDLE_TIMEOUT_MS}), field) == MAX_IDLE_TIMEOUT_MS  # type: ignore[arg-type]


def test_the_error_for_a_bad_size_names_every_field_it_checks() -> None:
    """One message for the four sizes, so each one a user can get wrong is named."""
    with pytest.raises(ValueError) as info:
        ServerConfig(recv_size=0)
    assert str(info.value) == "recv_size, send_size, accept_retry_ms and stop_grace_ms must be at least 1"



# ---------------------------------------------------------------- a stop that gives up


class CancelTooLate(FakeWinsock):
    """CancelIoEx always finds nothing to cancel (ERROR_NOT_FOUND, as when the
    operation is past cancelling), on a fake that keeps a send pending past
    closesocket as Wine does: a send to a client that never reads then never
    ends, and only the stop's grace period ends the server's wait for it.
    The receive's cancel says ERROR_NOT_FOUND too ("it has completed"), so
    the graceful close waits for its completion before closesocket, which
    never comes either: the stop gives up on both (the socket is closed then)."""

    def CancelIoEx(self, hFile: int, lpOverlapped: WSAOVERLAPPED | None) -> int:
        self.WSASetLastError(ERROR_NOT_FOUND)
        return FALSE


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("grace_ms", [1, 120])
def test_a_stop_gives_up_after_the_grace_period_and_counts_what_it_abandoned(model: str, grace_ms: int) -> None:
    ws = CancelTooLate(seed=0, config=exact(0.0, close_keeps_sends=True, strict_cleanup=False, window=4096))
    server = create_server(ws, ServerConfig(port=0, model=model, stop_grace_ms=grace_ms,
                                            limits=Limits(max_queued=1 << 20)))
    stop_ns = 20 * MS
    deaf = ws.peer()  # sends two long lines and never reads their echo

    def ready(srv: Server) -> None:
        assert srv.address is not None
        deaf.connect_nowait(*srv.address)
        ws.call_at(MS, lambda _: deaf.send_nowait(b"x" * 3000 + b"\n" + b"y" * 3000 + b"\n"))
        ws.call_at(stop_ns, lambda _: srv.request_stop(signal=ws.signal_event))

    stats = server.run(ready)
    waited_ns = ws.now_ns - stop_ns
    assert grace_ms * MS <= waited_ns < grace_ms * MS + MS  # the grace period, and no more
    assert (stats.closed_at_stop, stats.cancelled, stats.abandoned) == (1, 0, 2)
    assert (stats.accepted, stats.ended, stats.reset, stats.io_errors, stats.cut_off) == (1, 0, 0, 0, 0)
    assert sorted(op.split()[0] for op in ws.pending_operations()) == ["WSARecv", "WSASend"]  # given up on
    assert not [leak for leak in ws.leaks() if leak.startswith("socket")]  # closed at the give-up


# ---------------------------------------------------------------- a client that resets while it waits to be accepted


def _reset_in_the_backlog(model: str, seed: int) -> tuple[int, int, int]:
    """max_clients=1: the second client waits in the backlog and resets there
    before the first leaves; then a third comes.  Windows gives one of three
    outcomes (the fake's seed picks): the connection is dropped, or accepted
    with its first receive failing (10054), or its AcceptEx fails.  Whichever,
    the third client is served and the statistics say what happened."""
    s = Session(model, limits=Limits(max_clients=1), ws=FakeWinsock(seed=seed, config=exact(0.0)))
    first, waiting, third = s.client(0), s.client(1), s.client(10)
    first.send(2, b"first\n")
    waiting.reset(3)
    first.close(5)
    third.send(11, b"third\n")
    stats = s.run(stop_ms=20)
    assert bytes(first.data) == b"first\n" and bytes(third.data) == b"third\n"
    assert third.closed_by_server and stats.closed_at_stop == 1 and stats.ended == 1
    assert stats.peak_connections == 1 and stats.io_errors == 0
    return stats.accepted, stats.accept_failures, stats.reset


@pytest.mark.parametrize("model", MODELS)
def test_a_client_reset_in_the_backlog_costs_only_itself(model: str) -> None:
    outcomes = {_reset_in_the_backlog(model, seed) for seed in range(12)}
    assert outcomes == {
        (2, 0, 0),  # dropped before the server saw it
        (3, 0, 1),  # accepted, its first receive failed with 10054
        (2, 1, 0),  # its AcceptEx failed (counted, and accepting goes on)
    }


def test_the_acceptor_outrunning_the_group_threads_still_accepts_no_more_than_max_clients() -> None:
    """The events model, max_clients 1, AcceptEx completing at once and the
    acceptor never giving the baton away while it can go on: it accepts the
    first client and hands it over before the group's thread has made it a
    member of the protocol.  The connection count alone says the server is
    full: the second client waits in the backlog until the first has left,
    and is then served (peak 1 connection)."""
    accept_at_once = replace(exact(0.0), immediate={"AcceptEx": 1.0, "*": 0.0})
    ws = FakeWinsock(config=accept_at_once, chooser=NoSwitch(0))
    s = Session("events", ws=ws, limits=Limits(max_clients=1))
    first, second = s.client(0), s.client(0.01)
    first.send(1, b"one\n")
    second.send(1, b"two\n")
    first.close(5)
    stats = s.run(stop_ms=20)
    assert (bytes(first.data), bytes(second.data)) == (b"one\n", b"two\n")
    assert (stats.accepted, stats.peak_connections, stats.ended, stats.closed_at_stop) == (2, 1, 1, 1)


@pytest.mark.parametrize("model", MODELS)
def test_a_server_made_without_a_configuration_has_the_default_one(model: str) -> None:
    """Each model's server class made with no ServerConfig (as ``SERVERS[model](ws)``)
    takes ServerConfig()'s defaults (whose model is "events", whatever the
    class) and the default limits."""
    server = SERVERS[model](FakeWinsock(seed=0))
    assert server.config == ServerConfig()
    assert server.hub.limits == Limits()


@pytest.mark.parametrize("model", MODELS)
def test_a_line_completed_by_a_receive_that_starts_with_its_newline_counts_as_activity(model: str) -> None:
    """Chat, idle time-out 500 ms: a talker sends "abc" at 10 ms and the
    newline alone at 300 ms (a receive whose first byte ends the line): the
    line is complete then, so the talker is active at 300 ms (nothing is sent
    to it: that is its only activity), still served at 700 ms when it says
    "x", and timed out only after that."""
    s = Session(model, mode="chat", fake=exact(0.0), idle_timeout_ms=500)
    talker, listener = s.client(0), s.client(1)
    talker.send(10, b"abc")
    talker.send(300, b"\n")
    talker.send(700, b"x\n")
    stats = s.run(stop_ms=2000)
    lines = bytes(listener.data).splitlines()
    assert [line.split(b" ", 1)[-1] for line in lines if line.endswith((b"abc", b"x"))] == [b"abc", b"x"]
    assert talker.closed_by_server and stats.timed_out == 2
