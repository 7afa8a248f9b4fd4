"""ovserver: survivors of the twelfth session's mutation samples (issue 18,
``tools/mutation_sample.sh``, seed 24) that a behaviour tells apart."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from fakewinsock import WSAOVERLAPPED
from fakewinsock.constants import ERROR_INVALID_HANDLE, FALSE, TRUE, WSA_INVALID_HANDLE, WSA_WAIT_FAILED
from ovserver import Limits, Server, ServerConfig, ServerError, create_server
from ovserver._iocp import STOP_KEY
from tests.ovserver_session import MS, exact
from tests.test_ovserver_mutation_survivors import SharedPort

GRACE_MS = 777  # the stop's grace period: the controller's wait with this time-out is the stop's


class StopWaitFails(SharedPort):
    """The iocp controller's wait for the stop to drain (the one wait with
    ``GRACE_MS`` as its time-out) fails with WSA_INVALID_HANDLE."""

    failed = False

    def WSAWaitForMultipleEvents(self, cEvents: int, lphEvents: Sequence[int], fWaitAll: int, dwTimeout: int,
                                 fAlertable: int) -> int:
        if dwTimeout == GRACE_MS and not self.failed:
            self.failed = True
            self.WSASetLastError(WSA_INVALID_HANDLE)
            return WSA_WAIT_FAILED
        return super().WSAWaitForMultipleEvents(cEvents, lphEvents, fWaitAll, dwTimeout, fAlertable)


def test_after_a_worker_and_the_controller_failed_the_controller_reaps_past_the_dead_workers_stop_packet() -> None:
    """iocp model, two workers, every completion 50 ms after its cause.  A
    packet the server did not post ends one worker with a ServerError (it asks
    for a stop); the controller cancels the client's receive and the listener's
    AcceptEx, and its wait for their packets fails: a second failure.  It posts
    one stop packet per worker, the dead one's too; the live worker takes one,
    the other stays queued, ahead of the two cancelled operations' packets, 50
    ms later.  The controller, reaping alone, skips that stop packet and
    handles both packets: then nothing is in flight, so run() cleans up
    (closes the port and the wake event, WSACleanup) before raising the
    controller's error, and nothing is left open.  Proven against
    ``_reap_alone``'s ``key != STOP_KEY`` (the controller then took the
    leftover stop packet for a failed port and gave up: the port, the wake
    event and both sockets' operations were left behind)."""
    ws = StopWaitFails(seed=0, config=exact(0.0, completion_delay=(50 * MS, 50 * MS), strict_cleanup=False))
    server = create_server(ws, ServerConfig(port=0, model="iocp", workers=2, stop_grace_ms=GRACE_MS))
    client = ws.peer()

    def foreign(_: object) -> None:
        assert server.stats.accepted == 1
        assert ws.PostQueuedCompletionStatus(ws.port, 0, 0x1234, None) == TRUE

    def ready(srv: Server) -> None:
        assert srv.address is not None
        client.connect_nowait(*srv.address)
        ws.call_at(200 * MS, foreign)

    with pytest.raises(ServerError) as info:
        server.run(ready)
    assert ws.failed
    assert str(info.value) == f"WSAWaitForMultipleEvents failed: {WSA_WAIT_FAILED:#x} (error {WSA_INVALID_HANDLE})"
    exits = sorted(r.detail.rsplit("=", 1)[1] for r in ws.trace if r.what == "thread" and r.call == "exit")
    assert exits == ["0", "1"]  # the live worker took a stop packet; the other died of the foreign packet
    assert ws.pending_operations() == [] and ws.leaks() == [] and ws.open_handles() == []


@pytest.mark.parametrize(("high_water", "accepted"), [(-1, False), (0, True), (999, True), (1000, False)])
def test_high_water_is_off_or_under_max_queued_at_each_boundary(high_water: int, accepted: bool) -> None:
    """Back-pressure's mark is 0 (off) or under ``max_queued`` (a mark at the
    limit would never hold a sender back before the cut-off): max_queued 1000
    takes 0 and 999, refuses -1 and 1000, saying why."""
    if accepted:
        assert Limits(max_queued=1000, high_water=high_water).high_water == high_water
        return
    with pytest.raises(ValueError) as info:
        Limits(max_queued=1000, high_water=high_water)
    assert str(info.value).startswith("high_water must be 0 (off) or under max_queued: Limits(")


class KeepsAcceptOverlapped(SharedPort):
    """Keeps the OVERLAPPED of the program's first AcceptEx."""

    first_accept: WSAOVERLAPPED | None = None

    def AcceptEx(self, sListenSocket: int, sAcceptSocket: int, lpOutputBuffer: bytearray | None,
                 dwReceiveDataLength: int, dwLocalAddressLength: int, dwRemoteAddressLength: int,
                 lpOverlapped: WSAOVERLAPPED | None) -> Any:
        if self.first_accept is None:
            self.first_accept = lpOverlapped
        return super().AcceptEx(sListenSocket, sAcceptSocket, lpOutputBuffer, dwReceiveDataLength,
                                dwLocalAddressLength, dwRemoteAddressLength, lpOverlapped)


def test_an_acceptex_packet_with_another_key_is_a_server_error_naming_the_key() -> None:
    """iocp model: a packet carrying an accept slot's OVERLAPPED but not the
    listener's key (a double post by a component sharing the port) is not
    taken for an accept: run() raises a ServerError naming the key."""
    ws = KeepsAcceptOverlapped(seed=0, config=exact(0.0))
    server = create_server(ws, ServerConfig(port=0, model="iocp", workers=2))

    def stray(_: object) -> None:
        assert ws.first_accept is not None
        assert ws.PostQueuedCompletionStatus(ws.port, 0, 0x77, ws.first_accept) == TRUE

    def ready(srv: Server) -> None:
        ws.call_at(2 * MS, stray)

    with pytest.raises(ServerError) as info:
        server.run(ready)
    assert str(info.value) == "an AcceptEx packet with key 0x77"


def test_a_packet_with_an_overlapped_the_server_did_not_make_is_a_server_error_naming_it() -> None:
    """iocp model: a packet whose OVERLAPPED is none of the server's operation
    slots (a component sharing the port posting its own) is refused: run()
    raises a ServerError showing that OVERLAPPED."""
    ws = SharedPort(seed=0, config=exact(0.0))
    server = create_server(ws, ServerConfig(port=0, model="iocp", workers=2))
    foreign = WSAOVERLAPPED()

    def post(_: object) -> None:
        assert ws.PostQueuedCompletionStatus(ws.port, 0, 1, foreign) == TRUE

    def ready(srv: Server) -> None:
        ws.call_at(2 * MS, post)

    with pytest.raises(ServerError) as info:
        server.run(ready)
    assert str(info.value) == f"a packet with a foreign OVERLAPPED: {foreign!r}"


class StopPostFails(SharedPort):
    """PostQueuedCompletionStatus of a stop packet fails (ERROR_INVALID_HANDLE)."""

    def PostQueuedCompletionStatus(self, CompletionPort: int, dwNumberOfBytesTransferred: int,
                                   dwCompletionKey: int, lpOverlapped: WSAOVERLAPPED | None) -> int:
        if dwCompletionKey == STOP_KEY:
            self.SetLastError(ERROR_INVALID_HANDLE)
            return FALSE
        return super().PostQueuedCompletionStatus(CompletionPort, dwNumberOfBytesTransferred, dwCompletionKey,
                                                  lpOverlapped)


def test_a_stop_packet_that_cannot_be_posted_is_a_server_error_saying_so() -> None:
    """iocp model: at the stop, posting a worker's stop packet fails: run()
    raises a ServerError naming PostQueuedCompletionStatus and its error (the
    workers, still waiting on the port, are then the test's to end)."""
    ws = StopPostFails(seed=0, config=exact(0.0, strict_cleanup=False))
    server = create_server(ws, ServerConfig(port=0, model="iocp", workers=2))

    def ready(srv: Server) -> None:
        ws.call_at(2 * MS, lambda _: srv.request_stop(signal=ws.signal_event))

    with pytest.raises(ServerError) as info:
        server.run(ready)
    assert str(info.value) == f"PostQueuedCompletionStatus failed (error {ERROR_INVALID_HANDLE})"
    ws.end_threads()
