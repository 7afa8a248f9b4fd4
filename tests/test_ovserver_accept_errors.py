"""An AcceptEx that *completes* with an error that is not the client's doing
(the connection stays in the backlog, so the next AcceptEx fails the same
way) must not make the server post AcceptEx again and again at once: it backs
off ``accept_retry_ms``, as after a post that fails at once, and goes on
serving its clients meanwhile.

Under Wine, with the server's file descriptors used up (``ulimit -n 300``,
about 60 clients), every AcceptEx completed at once with WSAEINVAL and the
server re-posted it at once, 5000 times a second: the routines and iocp
models never served their clients again (their closes, which would have
freed descriptors, were never handled: under Wine an alertable wait with the
wake event signalled returns the event, not the routines), even after every
client had left, and Ctrl+C no longer stopped them.  Here the fake completes
such an AcceptEx with STATUS_BUFFER_TOO_SMALL (WSAEINVAL), the connection
staying queued, as it does for address slots under the minimum.  A client
reset in the backlog (WSAECONNRESET: that connection is gone, the next one
may be fine) is still followed by a post at once."""

from __future__ import annotations

import pytest

from fakewinsock import WSAOVERLAPPED, FakeConfig, FakePeer, FakeWinsock
from fakewinsock._types import AcceptExResult, OverlappedResult
from fakewinsock.constants import WSAECONNRESET, WSAENOTCONN
from ovserver import Limits, Server, ServerConfig, create_server
from ovserver.__main__ import stopped_line
from ovserver._core import MODELS

MS = 1_000_000
RETRY_MS = ServerConfig.accept_retry_ms
FAILING_MS = 1000


class FailingAccepts(FakeWinsock):
    """The fake, whose AcceptEx calls after the first ``good`` complete with
    WSAEINVAL and leave the connection queued, until ``mended``; ``posts``
    counts the calls."""

    good = 0
    mended = False
    posts = 0

    def AcceptEx(self, sListenSocket: int, sAcceptSocket: int, lpOutputBuffer: bytearray | None,
                 dwReceiveDataLength: int, dwLocalAddressLength: int, dwRemoteAddressLength: int,
                 lpOverlapped: WSAOVERLAPPED | None) -> AcceptExResult:
        self.posts += 1
        if self.posts > self.good and not self.mended:
            dwLocalAddressLength = 1  # a slot under the minimum: completes with STATUS_BUFFER_TOO_SMALL
        return super().AcceptEx(sListenSocket, sAcceptSocket, lpOutputBuffer, dwReceiveDataLength,
                                dwLocalAddressLength, dwRemoteAddressLength, lpOverlapped)

class Peer:
    """A client that connects at ``at_ms`` and keeps everything it reads."""

    def __init__(self, ws: FakeWinsock, at_ms: int) -> None:
        self.ws = ws
        self.data = bytearray()
        self.echoed_ms = -1  # when data first arrived
        self.peer = ws.peer()
        self.peer.on_change = self._changed
        ws.call_at(at_ms * MS, lambda _: self.peer.connect_nowait("127.0.0.1", 7000))

    def _changed(self, peer: FakePeer) -> None:
        if not peer.was_reset:
            self.data += peer.recv_nowait(1 << 20)
            if self.data and self.echoed_ms < 0:
                self.echoed_ms = self.ws.now_ns // MS

    def reset(self, _: object = None) -> None:
        self.peer.reset()

    def send_at(self, ws: FakeWinsock, at_ms: int, data: bytes) -> None:
        ws.call_at(at_ms * MS, lambda _: self.peer.send_nowait(data))


@pytest.mark.parametrize("accepts", [1, 16])
@pytest.mark.parametrize("model", MODELS)
def test_accepts_that_complete_failing_back_off_and_the_clients_are_served(model: str, accepts: int) -> None:
    # The call budget turns a server that re-posts at once (an endless loop: each post costs
    # only 1 us of virtual time) into BusyLoopError.
    ws = FailingAccepts(seed=1, config=FakeConfig(max_calls=20_000))
    ws.good = accepts  # the first posts work: they accept the served clients
    server = create_server(ws, ServerConfig(port=7000, model=model, accepts=accepts))
    posts: dict[str, int] = {}
    served = [Peer(ws, 1 + i) for i in range(accepts)]  # accepted before the accepts fail
    waiting = Peer(ws, 100)  # waits in the backlog while every accept of it fails

    def mend(_: object) -> None:
        posts["failing"] = ws.posts
        ws.mended = True

    def script(srv: Server) -> None:
        for i, peer in enumerate(served):
            peer.send_at(ws, 50, b"before %d\n" % i)
            peer.send_at(ws, 500, b"meanwhile %d\n" % i)  # served while the accepts fail
        waiting.send_at(ws, 110, b"waited\n")
        ws.call_at(FAILING_MS * MS, mend)
        ws.call_at((FAILING_MS + 500) * MS, lambda _: srv.request_stop(signal=ws.signal_event))

    stats = server.run(script)
    for i, peer in enumerate(served):
        assert bytes(peer.data) == b"before %d\nmeanwhile %d\n" % (i, i)
    assert bytes(waiting.data) == b"waited\n"  # accepted once the accepts work again
    # While failing: each slot re-posted about once per accept_retry_ms, not at once again and again.
    assert accepts < posts["failing"] <= accepts + (accepts + 1) * (FAILING_MS // RETRY_MS + 2)
    assert stats.accept_failures == posts["failing"] - accepts
    assert ws.leaks() == [] and ws.open_handles() == []


class WineAccepts(FakeWinsock):
    """The fake, whose AcceptEx of a connection reset in the backlog reports
    WSAENOTCONN, as Wine 8.0 did (Windows and the fake: WSAECONNRESET)."""

    listener = -1

    def listen(self, s: int, backlog: int) -> int:
        self.listener = s
        return super().listen(s, backlog)

    def WSAGetOverlappedResult(self, s: int, lpOverlapped: WSAOVERLAPPED, fWait: int) -> OverlappedResult:
        result = super().WSAGetOverlappedResult(s, lpOverlapped, fWait)
        if not result[0] and s == self.listener and self.WSAGetLastError() == WSAECONNRESET:
            self.WSASetLastError(WSAENOTCONN)
        return result


@pytest.mark.parametrize("wine", [False, True], ids=["WSAECONNRESET", "wine-WSAENOTCONN"])
@pytest.mark.parametrize("model", MODELS)
def test_after_a_client_reset_in_the_backlog_the_next_is_accepted_at_once(model: str, wine: bool) -> None:
    ws = WineAccepts(seed=2) if wine else FakeWinsock(seed=2)
    server = create_server(ws, ServerConfig(port=7000, model=model, limits=Limits(max_clients=1)))
    holder = Peer(ws, 1)  # holds the one place until 100 ms
    resets = [Peer(ws, 10 + i) for i in range(12)]  # reset while they wait in the backlog
    waiting = Peer(ws, 20)

    def script(srv: Server) -> None:
        for peer in resets:
            ws.call_at(30 * MS, peer.reset)
        waiting.send_at(ws, 40, b"next\n")
        ws.call_at(100 * MS, lambda _: holder.peer.close())
        ws.call_at(300 * MS, lambda _: srv.request_stop(signal=ws.signal_event))

    stats = server.run(script)
    # The fake picks what a reset in the backlog does (dropped, accepted then reset, or the
    # AcceptEx taking it fails with WSAECONNRESET): on this seed some AcceptEx calls fail.
    assert bytes(waiting.data) == b"next\n" and stats.accept_failures >= 3
    # Each is a connection the clients made and the server never served: the "stopped" line counts them.
    assert stats.gone_unaccepted == stats.accept_failures and stats.refused == 0
    assert f"; {stats.gone_unaccepted} connections gone before they were accepted" in stopped_line(stats)
    # Each failed accept (WSAECONNRESET) is followed by a post at once, not accept_retry_ms later.
    assert waiting.echoed_ms < 100 + RETRY_MS // 2
