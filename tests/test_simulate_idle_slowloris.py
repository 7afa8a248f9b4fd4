"""``ovserver simulate``'s idle time-out: the checks that judge idle clients (an idler or talker is dropped only by
a failure injected into its own connection: FakeWinsock.injected_failure_on)."""

from __future__ import annotations

from fakewinsock import WSABUF, WSAOVERLAPPED, FakeWinsock
from fakewinsock.constants import FALSE, SOCKET_ERROR, WSA_INFINITE, WSAENOBUFS


def test_an_injected_failure_is_told_by_its_connection() -> None:
    """FakeWinsock.injected_failure_on: a receive failed by inject_error names the connection it failed on, not
    one that merely connected.  Proven by not recording it (IoCalls._io_precheck): the second assertion fails."""
    from tests.test_fake_regressions import server

    ws = FakeWinsock(seed=1)
    lst, acc, ov = server(ws)
    p, other = ws.peer(), ws.peer()
    p.connect("127.0.0.1", 5000)
    ws.WSAWaitForMultipleEvents(1, [ov.hEvent], FALSE, WSA_INFINITE, FALSE)
    rov = WSAOVERLAPPED()
    ws.inject_error("WSARecv", WSAENOBUFS, 1)
    assert not ws.injected_failure_on(p)
    assert ws.WSARecv(acc, [WSABUF(16, bytearray(16))], 1, 0, rov, None)[0] == SOCKET_ERROR
    assert ws.WSAGetLastError() == WSAENOBUFS
    assert ws.injected_failure_on(p) and not ws.injected_failure_on(other)
    ws.closesocket(acc)
    ws.closesocket(lst)
