"""ovserver's core and iocp model (``ovserver._core``, ``ovserver._iocp``): the
survivors of the mutation run (issue 18, ``tools/mutation.sh``) that a Windows
behaviour can tell apart, each asserted here as what a user relies on."""

from __future__ import annotations

import pytest

from fakewinsock import WSAOVERLAPPED, FakeWinsock
from fakewinsock._types import OverlappedResult
from fakewinsock.constants import TRUE, WSAECONNRESET
from ovserver import Limits, Server, ServerConfig, ServerError, create_server
from tests.ovserver_session import MODELS, MS, Session, exact


@pytest.mark.parametrize("model", MODELS)
def test_a_send_that_fails_at_once_before_a_hang_up_closes_that_client_once(model: str) -> None:
    """A line too long gives one batch of two actions for its client: send the
    error line, then hang up.  When that WSASend fails at once (the client's
    RST came in after the server read the line: WSAECONNRESET at the post), the
    client is closed there, and the hang-up that follows in the same batch is
    for a connection that is gone: it is skipped (not counted as a hang-up,
    no second close), and the server goes on serving the others."""
    ws = FakeWinsock(seed=0, config=exact(0.0))
    ws.inject_error("WSASend", WSAECONNRESET)  # the first send of the run: the error line
    s = Session(model, limits=Limits(max_line=64), ws=ws)
    rude, other = s.client(0), s.client(0)
    rude.send(2, b"x" * 100 + b"\n")
    other.send(5, b"still served\n")
    stats = s.run(stop_ms=10)  # Session.run: nothing left open
    assert stats.hub.too_long == 1
    assert (stats.hung_up, stats.reset, stats.posted_failed, stats.cut_off, stats.io_errors) == (0, 1, 1, 0, 0)
    assert bytes(rude.data) == b"" and bytes(other.data) == b"still served\n"
    assert (stats.accepted, stats.closed_at_stop) == (2, 1)


class SharedPort(FakeWinsock):
    """Keeps the handle of the completion port the program makes, so that a
    test can post to it as another component sharing the port would."""

    port = 0

    def CreateIoCompletionPort(self, FileHandle: int, ExistingCompletionPort: int, CompletionKey: int,
                               NumberOfConcurrentThreads: int) -> int:
        port = super().CreateIoCompletionPort(FileHandle, ExistingCompletionPort, CompletionKey,
                                              NumberOfConcurrentThreads)
        if ExistingCompletionPort == 0:
            self.port = port
        return port


def test_a_packet_the_iocp_server_did_not_post_is_a_server_error_naming_its_key() -> None:
    """iocp model: a packet with no OVERLAPPED is the stop packet only with the
    stop key; one with any other key (dequeued as TRUE, as
    PostQueuedCompletionStatus packets are) is not the server's: run() raises
    a ServerError naming the key (the worker does not just end, leaving the
    pool one short), and nothing is left open."""
    ws = SharedPort(seed=0, config=exact(0.0))
    server = create_server(ws, ServerConfig(port=0, model="iocp", workers=2))
    c = ws.peer()

    def foreign(_: object) -> None:
        assert ws.PostQueuedCompletionStatus(ws.port, 0, 0x1234, None) == TRUE

    def ready(srv: Server) -> None:
        assert srv.address is not None and ws.port
        c.connect_nowait(*srv.address)
        ws.call_at(2 * MS, foreign)
        ws.call_at(10 * MS, lambda _: srv.request_stop(signal=ws.signal_event))

    with pytest.raises(ServerError, match=r"GetQueuedCompletionStatus failed \(error \d+, key 0x1234\)$"):
        server.run(ready)
    assert ws.leaks() == [] and ws.open_handles() == []


class LastErrorKeptAfterSuccess(FakeWinsock):
    """WSAGetOverlappedResult leaves the last error as it was when it returns
    TRUE, as Windows before 7 did (Wine's test_WSAGetOverlappedResult accepts
    it; tests/conformance/test_overlapped_result_last_error.py): the last
    error after a success is whatever an earlier call left there."""

    def WSAGetOverlappedResult(self, s: int, lpOverlapped: WSAOVERLAPPED, fWait: int) -> OverlappedResult:
        before = self.WSAGetLastError()
        result = super().WSAGetOverlappedResult(s, lpOverlapped, fWait)
        if result.ok == TRUE:
            self.WSASetLastError(before)
        return result


@pytest.mark.parametrize("model", MODELS)
def test_no_model_reads_the_last_error_after_a_successful_completion(model: str) -> None:
    """Every operation pends (its post leaves WSA_IO_PENDING as the last
    error); a server that asked WSAGetOverlappedResult for a completion that
    succeeded, then read the last error, would take the stale 997 for the
    operation's error and drop a healthy client."""
    ws = LastErrorKeptAfterSuccess(seed=0, config=exact(0.0))
    s = Session(model, ws=ws)
    clients = [s.client(0), s.client(1)]
    for i, c in enumerate(clients):
        c.send(2 + i, b"line %d\n" % i)
        c.close(4 + i)
    stats = s.run(stop_ms=10)
    assert [bytes(c.data) for c in clients] == [b"line 0\n", b"line 1\n"]
    assert all(c.closed_by_server for c in clients)
    assert (stats.ended, stats.io_errors, stats.reset) == (2, 0, 0)
