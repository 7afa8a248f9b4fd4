"""ovserver's connection life cycle: the client table, closing, stopping and failing.

* Every way a client leaves frees its place: with a small ``max_clients``, many
  more clients than that come and go and every one is served.
* A connection is closed once, whatever completes on it afterwards.
* A stop finishes whatever state each connection's receive and send are in.
* Winsock failures the server cannot work around at start are ServerErrors
  that leave nothing open; failures it can work around (an event or a socket
  that cannot be made for a new client) cost that client only.
* An unexpected exception mid-session closes every socket and propagates.
* The event model serves busy clients in turn (none is starved).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from fakewinsock import WSABUF, WSAOVERLAPPED, CompletionRoutine, FakeConfig, FakeWinsock
from fakewinsock._types import IoResult, OverlappedResult, StartupResult
from fakewinsock.constants import (
    INVALID_SOCKET,
    MAKEWORD,
    SOCKET_ERROR,
    WSA_INVALID_EVENT,
    WSA_INVALID_HANDLE,
    WSA_NOT_ENOUGH_MEMORY,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_FAILED,
    WSA_WAIT_IO_COMPLETION,
    WSAEADDRINUSE,
    WSAEMFILE,
    WSANOTINITIALISED,
)
from ovserver import Limits, ServerConfig, ServerError, create_server
from ovserver._protocol import error_line
from tests.ovserver_session import MODELS, Session, exact


class FlakyWinsock(FakeWinsock):
    """The fake, with calls that fail on demand as on a machine out of
    resources: ``fail[name]`` lists which calls of ``name`` (1 = the first)
    fail; failing calls return what Windows returns and set the last error."""

    def __init__(self, fail: dict[str, set[int]], config: FakeConfig | None = None, *,
                 version: int = MAKEWORD(2, 2), wait_rc: Callable[[int], int] = lambda n: WSA_WAIT_FAILED) -> None:
        super().__init__(seed=0, config=config if config is not None else exact(0.0))
        self.fail = fail
        self.calls: dict[str, int] = {}
        self.version = version
        self.wait_rc = wait_rc  # what a failing wait returns, given cEvents
        self.routines: list[CompletionRoutine] = []
        self.failed_wait_rc = -1

    def _failing(self, name: str) -> bool:
        self.calls[name] = n = self.calls.get(name, 0) + 1
        return n in self.fail.get(name, set())

    def WSAStartup(self, wVersionRequired: int) -> StartupResult:
        if self._failing("WSAStartup"):
            return StartupResult(WSA_NOT_ENOUGH_MEMORY, None)
        return super().WSAStartup(self.version)  # what this "machine" offers

    def WSACreateEvent(self) -> int:
        if self._failing("WSACreateEvent"):
            self.WSASetLastError(WSA_NOT_ENOUGH_MEMORY)
            return WSA_INVALID_EVENT
        return super().WSACreateEvent()

    def WSASocket(self, af: int, type: int, protocol: int, lpProtocolInfo: None, g: int,  # noqa: A002
                  dwFlags: int) -> int:
        if self._failing("WSASocket"):
            self.WSASetLastError(WSAEMFILE)
            return INVALID_SOCKET
        return super().WSASocket(af, type, protocol, lpProtocolInfo, g, dwFlags)

    def WSAWaitForMultipleEvents(self, cEvents: int, lphEvents: Sequence[int], fWaitAll: int,
                                 dwTimeout: int, fAlertable: int) -> int:
        if self._failing("WSAWaitForMultipleEvents"):
            self.WSASetLastError(WSA_INVALID_HANDLE)
            self.failed_wait_rc = self.wait_rc(cEvents)
            return self.failed_wait_rc
        return super().WSAWaitForMultipleEvents(cEvents, lphEvents, fWaitAll, dwTimeout, fAlertable)

    def WSARecv(self, s: int, lpBuffers: Sequence[WSABUF], dwBufferCount: int, lpFlags: int,
                lpOverlapped: WSAOVERLAPPED, lpCompletionRoutine: CompletionRoutine | None) -> IoResult:
        if lpCompletionRoutine is not None:
            self.routines.append(lpCompletionRoutine)
        return super().WSARecv(s, lpBuffers, dwBufferCount, lpFlags, lpOverlapped, lpCompletionRoutine)

    def listen(self, s: int, backlog: int) -> int:
        if self._failing("listen"):
            self.WSASetLastError(WSAEADDRINUSE)
            return SOCKET_ERROR
        return super().listen(s, backlog)


def assert_winsock_balanced(ws: FakeWinsock) -> None:
    """Nothing open, and every WSAStartup the server made was balanced by WSACleanup."""
    assert ws.leaks() == [] and ws.open_handles() == []
    assert ws.WSACleanup() == SOCKET_ERROR and ws.WSAGetLastError() == WSANOTINITIALISED


# ---------------------------------------------------------------- the client table


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("immediate", [0.0, 1.0])
def test_clients_coming_and_going_past_max_clients(model: str, immediate: float) -> None:
    """max_clients=2, and 12 clients in 6 waves of 2; each wave leaves one of
    six ways (graceful close, reset, cut off as a slow reader, hung up then
    close, an I/O error, a half-close).  Each place is freed: every client is
    accepted and served."""
    s = Session(model, limits=Limits(max_clients=2, max_line=20, max_queued=300),
                fake=exact(immediate, window=256))
    waves: list[list[object]] = []
    for w in range(6):
        t = 10.0 * w
        pair = [s.client(t + 0.1 * k, reads=w != 2) for k in range(2)]
        waves.append(list(pair))
        for k, c in enumerate(pair):
            if w == 0:
                c.send(t + 1, b"bye\n")
                c.close(t + 3)
            elif w == 1:
                c.send(t + 1, b"bye\n")
                c.reset(t + 3)
            elif w == 2:  # never reads: cut off
                for j in range(60):
                    c.send(t + 1 + 0.05 * j, b"z" * 19 + b"\n")
            elif w == 3:  # too long: hung up, then it closes
                c.send(t + 1, b"y" * 30)
                c.close(t + 3)
            elif w == 4:  # its next receive cannot be posted
                if k == 0:
                    s.at(t + 0.9, lambda: s.ws.inject_error("WSARecv", 10053, 2))
                c.send(t + 1 + 0.2 * k, b"bye\n")
            else:
                c.send(t + 1, b"bye\n")
                c.session.at(t + 3, c.peer.shutdown)
    stats = s.run(stop_ms=70)
    assert stats.accepted == 12 and stats.peak_connections == 2
    assert (stats.ended, stats.reset, stats.cut_off, stats.hung_up, stats.io_errors) == (2 + 2 + 2, 2, 2, 2, 2)
    for c in s.clients[:4] + s.clients[10:]:
        assert bytes(c.data) == b"bye\n"
    for c in s.clients[6:8]:
        assert bytes(c.data) == error_line(20)
    assert stats.closed_at_stop == 0


@pytest.mark.parametrize("model", MODELS)
def test_a_cut_off_connection_is_closed_once(model: str) -> None:
    """Chat: a member that never reads is cut off while its receive is pending;
    that receive then fails (the socket is closed) and must not count as
    another way of leaving, nor close the socket again."""
    s = Session(model, "chat", limits=Limits(max_queued=500), fake=exact(0.0, window=256))
    deaf = [s.client(0.1 * k, reads=False) for k in range(2)]
    talker = s.client(0.5)
    for j in range(30):
        talker.send(1 + 0.1 * j, b"w" * 29 + b"\n")
    stats = s.run(stop_ms=20)
    assert stats.cut_off == 2 and all(c.reset_by_server for c in deaf)
    assert (stats.reset, stats.io_errors, stats.ended, stats.closed_at_stop) == (0, 0, 0, 1)
    assert s.ws.stats["failed"] == 0  # no closesocket on a closed socket


# ---------------------------------------------------------------- stopping


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("immediate", [0.0, 1.0])
@pytest.mark.parametrize("reads", [True, False])
@pytest.mark.parametrize("talks", [True, False])
def test_stop_with_operations_in_every_state(model: str, immediate: float, reads: bool, talks: bool) -> None:
    """At the stop each connection's receive is pending, and its send is idle,
    pending (a client that does not read fills the window) or just completed;
    closing cancels what is pending and the server reaps every operation,
    whichever completed first or both at once, and returns."""
    s = Session(model, fake=exact(immediate, window=512))
    clients = [s.client(0.1 * k, reads=reads) for k in range(3)]
    if talks:
        for c in clients:
            for j in range(8):
                c.send(1 + 0.2 * j, b"v" * 99 + b"\n")
    stats = s.run(stop_ms=5)
    assert stats.closed_at_stop == 3 and stats.accepted == 3
    assert all(c.closed_by_server or (not reads and c.peer.connected) for c in clients)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("immediate", [0.0, 1.0])
@pytest.mark.parametrize("seed", range(3))
def test_stop_when_both_operations_of_a_connection_complete_at_once(model: str, immediate: float,
                                                                    seed: int) -> None:
    """Completions landing behind the server's back (at any Winsock call): at
    the stop a closed connection's cancelled receive and stalled send complete
    together, on one signal; the server reaps both, not only the first, and
    returns (a missed one would leave it waiting forever: DeadlockError)."""
    ws = FakeWinsock(seed=seed, config=exact(immediate, background=1.0, window=512))
    s = Session(model, ws=ws)
    clients = [s.client(0.1 * k, reads=False) for k in range(3)]
    for c in clients:
        for j in range(8):
            c.send(1 + 0.2 * j, b"v" * 99 + b"\n")
    stats = s.run(stop_ms=5)
    assert stats.closed_at_stop == 3


@pytest.mark.parametrize("model", MODELS)
def test_stop_during_a_flood_of_arrivals(model: str) -> None:
    """Clients still arriving when the stop comes: the pending AcceptEx is
    cancelled and those not accepted are refused or reset, never served half."""
    s = Session(model, fake=exact(0.0))
    clients = [s.client(0.02 * k) for k in range(40)]
    for c in clients:
        c.send(0.9, b"hi\n")
    stats = s.run(stop_ms=1)
    assert stats.accepted == stats.closed_at_stop
    assert all(bytes(c.data) in (b"", b"hi\n") for c in clients)


# ---------------------------------------------------------------- failures


def test_winsock_start_up_failure_is_a_server_error() -> None:
    ws = FlakyWinsock({"WSAStartup": {1}})
    with pytest.raises(ServerError, match=f"WSAStartup failed \\(error {WSA_NOT_ENOUGH_MEMORY}\\)"):
        create_server(ws, ServerConfig(port=0)).run()
    assert_winsock_balanced(ws)


def test_winsock_older_than_2_2_is_a_server_error() -> None:
    """The lecture notes' version check: a Winsock offering only 1.1 is
    refused (and its WSAStartup balanced)."""
    ws = FlakyWinsock({}, version=MAKEWORD(1, 1))
    with pytest.raises(ServerError, match=r"Winsock 2.2 is not available \(got 1.1\)"):
        create_server(ws, ServerConfig(port=0)).run()
    assert_winsock_balanced(ws)


@pytest.mark.parametrize(("call", "message"), [
    ("WSACreateEvent", f"WSACreateEvent failed (error {WSA_NOT_ENOUGH_MEMORY})"),
    ("WSASocket", f"WSASocket failed (error {WSAEMFILE})"),
    ("listen", f"listen failed (error {WSAEADDRINUSE})"),
])
@pytest.mark.parametrize("model", MODELS)
def test_start_failures_are_server_errors_that_leave_nothing_open(model: str, call: str, message: str) -> None:
    ws = FlakyWinsock({call: {1}})
    with pytest.raises(ServerError) as info:
        create_server(ws, ServerConfig(port=0, model=model)).run()
    assert str(info.value) == message
    assert_winsock_balanced(ws)


@pytest.mark.parametrize("model", MODELS)
def test_no_socket_for_the_next_accept_is_retried(model: str) -> None:
    """WSASocket fails twice for the socket AcceptEx needs (the first is the
    listener's): counted, retried after accept_retry_ms, then the client is
    served."""
    ws = FlakyWinsock({"WSASocket": {2, 3}})
    s = Session(model, ws=ws, accept_retry_ms=5)
    c = s.client(1)
    c.send(2, b"patience\n")
    stats = s.run(stop_ms=30)
    assert (stats.accept_failures, stats.posted_failed, stats.accepted) == (2, 2, 1)
    assert (stats.gone_unaccepted, stats.refused) == (0, 0)  # no connection was lost: it waited and was served
    assert bytes(c.data) == b"patience\n"
    assert ws.now_ns >= 10 * 1_000_000  # two retries, accept_retry_ms apart


def test_no_event_for_a_new_client_costs_that_client_only() -> None:
    """The events model needs an event per client: when WSACreateEvent fails
    for one, that connection is closed and counted as an accept failure; the
    others are served."""
    ws = FlakyWinsock({"WSACreateEvent": {4}})  # the wake event, the first group's, the first client's
    s = Session("events", ws=ws)
    first, unlucky, third = s.client(0), s.client(1), s.client(2)
    for c in (first, unlucky, third):
        c.send(3, b"me too\n")
    stats = s.run(stop_ms=10)
    assert (stats.accepted, stats.accept_failures, stats.refused) == (2, 1, 1)
    assert bytes(first.data) == bytes(third.data) == b"me too\n"
    assert bytes(unlucky.data) == b"" and (unlucky.peer.at_eof or unlucky.reset_by_server)


# The iocp model's controller waits on its wake event only for a stop (its
# workers wait on the port): its failing waits are in tests/test_ovserver_iocp.py.
@pytest.mark.parametrize("model", ["events", "routines"])
@pytest.mark.parametrize("rc", ["failed", "past the last", "I/O completion"])
def test_a_failed_wait_is_a_server_error_and_closes_the_clients(model: str, rc: str) -> None:
    """WSAWaitForMultipleEvents failing (or returning what was not asked for)
    mid-session: a ServerError saying what it returned, and the connected
    client is closed, not left hanging.  In the events model the failing wait
    is the group's: its thread dies with the echo's WSASend completed but not
    reaped, and the acceptor closes the group's client as any stop does: the
    CancelIoEx of the send finds nothing (every byte went out), so the close
    is graceful and the client gets the echo, then a FIN (before, the close
    was abortive whenever the send was busy: the client was reset)."""
    returns: dict[str, Callable[[int], int]] = {
        "failed": lambda n: WSA_WAIT_FAILED,
        "past the last": lambda n: WSA_WAIT_EVENT_0 + n,
        "I/O completion": lambda n: WSA_WAIT_IO_COMPLETION if model == "events" else WSA_WAIT_EVENT_0 + 1,
    }
    # The events model: its group's sixth wait, after the echo (the group, having taken its inbox,
    # wakes the acceptor, which posts its AcceptEx again then: one wait more than before that bound,
    # tests/test_ovserver_iocp_churn.py); the routines model: the fifth (its accept queues a marker
    # APC, which one wait runs: ovserver/_routines.py).
    ws = FlakyWinsock({"WSAWaitForMultipleEvents": {6 if model == "events" else 5}}, wait_rc=returns[rc])
    s = Session(model, ws=ws)
    c = s.client(0)
    c.send(1, b"hello\n")
    with pytest.raises(ServerError) as info:
        s.run(stop_ms=10)
    code = ws.failed_wait_rc
    assert code == returns[rc](2 if model == "events" else 1)  # the listener's event and the client's
    assert str(info.value) == f"WSAWaitForMultipleEvents failed: {code:#x} (error {WSA_INVALID_HANDLE})"
    ws.run_for(0.001)
    assert bytes(c.data) == b"hello\n" and c.closed_by_server and not c.reset_by_server


def test_a_completion_routine_with_a_foreign_overlapped_is_a_server_error() -> None:
    """The routine the server posts its receives with, called by a backend
    with an OVERLAPPED the server never posted: a ServerError naming it, not
    an AttributeError deep inside."""
    ws = FlakyWinsock({})
    s = Session("routines", ws=ws)
    s.client(0)
    foreign = WSAOVERLAPPED()
    s.at(1, lambda: ws.routines[0](0, 5, foreign, 0))
    with pytest.raises(ServerError) as info:
        s.run(stop_ms=10)
    assert str(info.value) == f"completion routine called with a foreign OVERLAPPED: {foreign!r}"


class Boom(Exception):
    """An error nobody expected, raised in the middle of a session."""


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("in_flight", [True, False])
def test_an_unexpected_error_closes_every_socket_and_propagates(model: str, in_flight: bool) -> None:
    """The original exception comes out of run() (not a LeakError from a
    WSACleanup with operations in flight), and every socket is closed so the
    clients are not left hanging.  With nothing in flight WSACleanup runs."""
    ws = FakeWinsock(seed=0, config=exact(0.0))
    s = Session(model, ws=ws)
    clients = [s.client(0.1 * k) for k in range(3)]
    for c in clients:
        c.send(1, b"before\n")

    def boom() -> None:
        raise Boom("mid-session")

    if in_flight:
        s.at(3, boom)  # raised inside the server's wait, receives and an AcceptEx pending
        with pytest.raises(Boom):
            s.run()
        sockets = [h for h in ws.open_handles() if "socket" in " ".join(ws.leaks())]
        ws.run_for(0.001)
        assert all(bytes(c.data) == b"before\n" and c.closed_by_server for c in clients)
        assert not any("socket" in leak and "not closed" in leak for leak in ws.leaks()), sockets
    else:
        server = create_server(ws, ServerConfig(port=0, model=model))

        def fail_at_once(_: object) -> None:
            raise Boom("in ready")

        with pytest.raises(Boom):
            server.run(fail_at_once)
        assert_winsock_balanced(ws)


# ---------------------------------------------------------------- fairness


class ServiceLog(FakeWinsock):
    """The fake, noting the socket of every WSAGetOverlappedResult: the order
    in which the event model serves its clients."""

    def __init__(self, seed: int, config: FakeConfig) -> None:
        super().__init__(seed=seed, config=config)
        self.served: list[int] = []

    def WSAGetOverlappedResult(self, s: int, lpOverlapped: WSAOVERLAPPED, fWait: int) -> OverlappedResult:
        self.served.append(s)
        return super().WSAGetOverlappedResult(s, lpOverlapped, fWait)


def test_the_event_model_serves_busy_clients_in_turn() -> None:
    """WSAWaitForMultipleEvents reports the lowest signalled index, so the
    server rotates its wait array: while several clients always have data
    waiting, each is served once before any is served twice."""
    ws = ServiceLog(seed=0, config=exact(1.0, background=1.0))  # several events signalled at each wait
    s = Session("events", ws=ws, recv_size=8)
    clients = [s.client(0.01 * k) for k in range(4)]
    for c in clients[1:]:  # three busy clients, one idle; each line needs many 8-byte receives
        c.send(1, b"b" * 800 + b"\n")
    s.run(stop_ms=20)
    served = ws.served
    busy = [x for x in served if served.count(x) > 50]
    assert len(set(busy)) == 3
    window = busy[:90]
    for k in range(0, len(window) - 3):  # any 3 consecutive services are the 3 clients
        assert len(set(window[k:k + 3])) == 3, window
