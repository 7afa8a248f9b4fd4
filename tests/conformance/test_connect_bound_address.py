"""connect from a socket bound first: the connection's local address.

Sources: Microsoft's bind and getsockname pages (a socket bound to INADDR_ANY
gets its address when it connects: getsockname then gives the interface's,
here the loopback's 127.0.0.1); every address of 127.0.0.0/8 is the loopback
on Windows, as on Linux under Wine.  The other end sees the same address.
"""

from __future__ import annotations

import pytest

from fakewinsock import sockaddr_in
from fakewinsock.constants import SO_UPDATE_ACCEPT_CONTEXT, SOL_SOCKET, TRUE

from ._harness import ADDR_SLOT, Harness


@pytest.mark.parametrize(("bound", "seen"), [("0.0.0.0", "127.0.0.1"), ("127.0.0.2", "127.0.0.2")])
def test_a_connection_from_a_bound_socket_has_the_bound_address(h: Harness, bound: str, seen: str) -> None:
    """A client socket bound to ``bound`` (port 0) connects to a listener on
    127.0.0.1: its getsockname and the accepted socket's getpeername and
    GetAcceptExSockaddrs give ``seen`` and the same port, the port bind gave
    it (getsockname after the bind: ``bound`` and that port).  dotnet/runtime's
    LocalEndPointTest.TcpSocket_BoundToWildcardAddress_LocalEPChangeToSpecificOnConnnect
    (@ 1ff3e1413d18, Windows CI; .NET's LocalEndPoint is getsockname, read again
    after a connect from a wildcard address) asserts the bound port is kept."""
    lst, port = h.listener()
    c = h.socket()
    assert h.ws.bind(c, sockaddr_in(bound, 0), 16) == 0
    rc, before = h.ws.getsockname(c)
    assert rc == 0 and before is not None and before.host == bound and before.port != 0
    acc, ov, out = h.socket(), h.overlapped(), bytearray(2 * ADDR_SLOT)
    ok, _ = h.ws.AcceptEx(lst, acc, out, 0, ADDR_SLOT, ADDR_SLOT, ov)
    assert h.ws.connect(c, sockaddr_in("127.0.0.1", port), 16) == 0
    assert h.complete(lst, ov) == (TRUE, 0, 0)
    assert h.ws.setsockopt(acc, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, lst, 8) == 0
    rc, mine = h.ws.getsockname(c)
    assert rc == 0 and mine is not None and (mine.host, mine.port) == (seen, before.port)
    rc, theirs = h.ws.getpeername(acc)
    assert rc == 0 and theirs is not None and (theirs.host, theirs.port) == (seen, mine.port)
    remote = h.ws.GetAcceptExSockaddrs(out, 0, ADDR_SLOT, ADDR_SLOT).RemoteSockaddr
    assert (remote.host, remote.port) == (seen, mine.port)
    assert ok == TRUE or ok == 0
    h.close(c)
    h.close(acc)


def test_port_0_never_gets_a_port_a_wildcard_socket_holds(h: Harness) -> None:
    """A socket bound to 0.0.0.0:P holds P on every local address: a later
    bind to 127.0.0.1 port 0 (the system picks) is given another port, though
    an explicit bind to 127.0.0.1:P would be allowed.  P is the port the
    system would most likely pick next (one above the one it just gave)."""
    first = h.socket()
    assert h.ws.bind(first, sockaddr_in("127.0.0.1", 0), 16) == 0
    rc, name = h.ws.getsockname(first)
    assert rc == 0 and name is not None
    held = name.port + 1
    wildcard = h.socket()
    if h.ws.bind(wildcard, sockaddr_in("0.0.0.0", held), 16) != 0:
        pytest.skip(f"port {held} is taken on this host")
    later = h.socket()
    assert h.ws.bind(later, sockaddr_in("127.0.0.1", 0), 16) == 0
    rc, name = h.ws.getsockname(later)
    assert rc == 0 and name is not None and name.port not in (0, held)
    for s in (first, wildcard, later):
        h.close(s)
