"""A client read as ended (0 bytes) while a send to it is in flight, that is
in fact gone: under Wine 8.0 a reset reads as 0 bytes, as a FIN does, and the
send pending to that client may never complete (``tools/wine/misbehave.py
zombies``: in chat, members that flooded, never read and closed kept their
places and queues until the stop).  getpeername tells them apart: after a FIN
the connection is half-closed and getpeername succeeds; once the client is
gone it fails with WSAENOTCONN.

The fake, as Windows, fails the send at a reset, so here the fake's
getpeername fails for the socket of a client that has sent its FIN (the state
Wine leaves after reading a reset as EOF), whose send stays pending."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import ovserver._core
from fakewinsock import FakeConfig, FakeWinsock
from fakewinsock._types import SockaddrResult
from fakewinsock.constants import WSAENOTCONN
from ovserver import Limits, Server
from tests.test_ovserver_server import MS, Client, run, stop_at

MODELS = list(ovserver._core.MODELS)


def wine_like(gone: set[int]) -> Callable[[FakeWinsock], None]:
    """A ``prepare`` for ``run``: getpeername fails (WSAENOTCONN) for the server's
    socket of a client whose port is in ``gone`` (the test adds it at its FIN)."""
    def prepare(ws: FakeWinsock) -> None:
        real = ws.getpeername

        def getpeername(s: int) -> SockaddrResult:
            got = real(s)
            if got.rc == 0 and got.name is not None and got.name.port in gone:
                ws.WSASetLastError(WSAENOTCONN)
                return SockaddrResult(-1, None)
            return got
        ws.getpeername = getpeername  # type: ignore[method-assign]
    return prepare


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("gone", [False, True], ids=["half-closed", "gone"])
def test_a_member_gone_at_its_eof_frees_its_place(model: str, gone: bool) -> None:
    """Chat with room for 2: a member that never reads (its send pending: 40 KB
    for an 8 KB window) sends its FIN; a third member then comes.  If the first
    is gone (getpeername: WSAENOTCONN), its place is freed at once and the third
    is welcomed; if merely half-closed (it may still read), it keeps its place
    and the third waits.  Before the check, a gone member kept its place (and
    its queue) until the stop: the third was never welcomed."""
    welcomed: list[int] = []
    deaf: list[Client] = []
    gone_ports: set[int] = set()

    def script(ws: FakeWinsock, server: Server) -> None:
        d = Client(ws, at_ns=0, reads=False)
        deaf.append(d)
        talker = Client(ws, at_ns=100_000)
        for k in range(40):
            talker.send_at(2 * MS + k * 50_000, b"t" * 999 + b"\n")

        def fin(_: object) -> None:
            if gone:
                gone_ports.add(d.peer.address[1])
            d.peer.shutdown()
        ws.call_at(20 * MS, fin)

        def got(c: Client) -> None:
            if c.data.startswith(b"* welcome ") and b"\n" in c.data and not welcomed:
                welcomed.append(ws.now_ns)
        Client(ws, at_ns=40 * MS, on_data=got)
        stop_at(ws, server, 500 * MS)

    _, stats = run(script, model=model, mode="chat", fake=FakeConfig(window=8192),
                   limits=Limits(max_clients=2, max_queued=1 << 20), prepare=wine_like(gone_ports))
    if gone:
        assert welcomed and welcomed[0] < 100 * MS
        assert stats.ended_then_failed == 1  # counted as a send that failed after the FIN would be
        assert deaf[0].peer.was_reset  # its pending send cancelled: an abortive close
    else:
        assert not welcomed  # it waited in the backlog: the half-closed member kept its place
        assert stats.ended_then_failed == 0
