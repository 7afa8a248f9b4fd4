"""bind and address sharing, mined from Wine's sock.c.

Sources: ``test_bind`` (bad lengths and family, an address that is not local,
the last error after success, binding twice, a second socket on the address),
``test_connecting_socket`` (a wildcard bind leaves 0 in the last error), and
``test_reuseaddr``: the IPv4 rows of its SO_EXCLUSIVEADDRUSE table, a wildcard
and a loopback bind of the same port (allowed both ways; Wine refuses them,
todo_wine), and which listener gets a connection when several listen.  The
IPv6 and v4-mapped rows are out of scope (the interface is IPv4 only).
"""

from __future__ import annotations

import pytest

from fakewinsock import SOCKADDR_IN, sockaddr_in
from fakewinsock.constants import (
    AF_INET,
    SO_EXCLUSIVEADDRUSE,
    SO_REUSEADDR,
    SOCKET_ERROR,
    SOL_SOCKET,
    TRUE,
    WSAEACCES,
    WSAEADDRINUSE,
    WSAEADDRNOTAVAIL,
    WSAEAFNOSUPPORT,
    WSAEFAULT,
    WSAEINVAL,
)

from ._harness import ADDR_SLOT, DEADBEEF_AS_INT, Harness

ANY, LOOPBACK = "0.0.0.0", "127.0.0.1"


def test_bad_arguments(h: Harness) -> None:
    s = h.socket()
    for name, namelen, error in ((sockaddr_in(LOOPBACK, 0), 0, WSAEFAULT),
                                 (sockaddr_in(LOOPBACK, 0), 15, WSAEFAULT),
                                 (sockaddr_in("192.0.2.0", 0), 16, WSAEADDRNOTAVAIL)):
        h.ws.WSASetLastError(0xDEADBEEF)
        assert h.ws.bind(s, name, namelen) == SOCKET_ERROR
        assert h.ws.WSAGetLastError() == error
    bogus = SOCKADDR_IN()
    bogus.sin_family = 0xDEAD
    assert h.ws.bind(s, bogus, 16) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAEAFNOSUPPORT


def test_success_clears_the_last_error(h: Harness) -> None:
    """test_bind: 0 (or left alone before Windows 7) after success;
    test_connecting_socket: 0 after a wildcard bind, the last error holding
    another value before."""
    s = h.socket()
    h.ws.WSASetLastError(0xDEADBEEF)
    assert h.ws.bind(s, sockaddr_in(LOOPBACK, 0), 16) == 0
    assert h.ws.WSAGetLastError() in (0, DEADBEEF_AS_INT)
    s2 = h.socket()
    h.ws.WSASetLastError(WSAEINVAL)
    assert h.ws.bind(s2, sockaddr_in(ANY, 0), 16) == 0
    assert h.ws.WSAGetLastError() == 0


def test_twice_and_a_second_socket(h: Harness) -> None:
    s = h.socket()
    assert h.ws.bind(s, sockaddr_in(LOOPBACK, 0), 16) == 0
    assert h.ws.bind(s, sockaddr_in(LOOPBACK, 0), 16) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAEINVAL
    rc, name = h.ws.getsockname(s)
    assert rc == 0 and name is not None and name.sin_family == AF_INET
    s2 = h.socket()
    assert h.ws.bind(s2, name, 16) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAEADDRINUSE


def _free_port(h: Harness) -> int:
    s = h.socket()
    assert h.ws.bind(s, sockaddr_in(LOOPBACK, 0), 16) == 0
    rc, name = h.ws.getsockname(s)
    assert rc == 0 and name is not None
    h.close(s)
    return name.port


def _bound(h: Harness, host: str, port: int, option: int | None = None) -> tuple[int, int]:
    s = h.socket()
    if option is not None:
        assert h.ws.setsockopt(s, SOL_SOCKET, option, 1, 4) == 0
    rc = h.ws.bind(s, sockaddr_in(host, port), 16)
    return s, (0 if rc == 0 else h.ws.WSAGetLastError())


EXCL = SO_EXCLUSIVEADDRUSE
# (first host, first exclusive, second host, second exclusive, result): the
# IPv4 rows of test_reuseaddr's tests_exclusive.
EXCLUSIVE_ROWS = [
    (ANY, True, LOOPBACK, False, WSAEACCES),
    (ANY, False, LOOPBACK, True, 0),
    (ANY, True, LOOPBACK, True, WSAEACCES),
    (LOOPBACK, True, ANY, False, 0),
    (LOOPBACK, False, ANY, True, WSAEADDRINUSE),
    (ANY, False, ANY, True, WSAEADDRINUSE),
    (ANY, False, ANY, False, WSAEADDRINUSE),
    (LOOPBACK, True, LOOPBACK, False, WSAEADDRINUSE),
    (LOOPBACK, False, LOOPBACK, True, WSAEADDRINUSE),
]


@pytest.mark.parametrize(("host1", "excl1", "host2", "excl2", "result"), EXCLUSIVE_ROWS)
def test_exclusive_address_use(h: Harness, host1: str, excl1: bool, host2: str, excl2: bool, result: int) -> None:
    port = _free_port(h)
    _, err1 = _bound(h, host1, port, EXCL if excl1 else None)
    assert err1 == 0
    _, err2 = _bound(h, host2, port, EXCL if excl2 else None)
    assert err2 == result


def test_reuseaddr_on_both_shares_the_address(h: Harness) -> None:
    """SO_REUSEADDR reads 0 by default; without it the second bind fails;
    with it on both sockets the bind succeeds."""
    port = _free_port(h)
    _bound(h, LOOPBACK, port, SO_REUSEADDR)
    s2 = h.socket()
    rc, val = h.ws.getsockopt(s2, SOL_SOCKET, SO_REUSEADDR, 4)
    assert rc == 0 and int.from_bytes(val, "little") == 0
    assert h.ws.bind(s2, sockaddr_in(LOOPBACK, port), 16) == SOCKET_ERROR
    assert h.ws.setsockopt(s2, SOL_SOCKET, SO_REUSEADDR, 1, 4) == 0
    assert h.ws.bind(s2, sockaddr_in(LOOPBACK, port), 16) == 0


def _accepts(h: Harness, lst: int, port: int) -> bool:
    """Whether a client connecting to 127.0.0.1:port lands in an AcceptEx on ``lst``."""
    acc = h.socket()
    ov = h.overlapped()
    ok, _ = h.ws.AcceptEx(lst, acc, bytearray(2 * ADDR_SLOT), 0, ADDR_SLOT, ADDR_SLOT, ov)
    h.peer().connect(LOOPBACK, port)
    got = h.wait(ov.hEvent, 1000) == 0
    if not got:
        h.ws.CancelIoEx(lst, ov)
    return ok == TRUE or got


@pytest.mark.wine_divergence("Wine 8.0 refuses the second bind with WSAEADDRINUSE (todo_wine in test_reuseaddr)")
@pytest.mark.parametrize("first", [ANY, LOOPBACK])
def test_wildcard_and_loopback_on_one_port(h: Harness, first: str) -> None:
    """Without any option, a wildcard and a loopback bind of the same port
    both succeed, in either order, and both listen; a connection to
    127.0.0.1 goes to the loopback listener."""
    port = _free_port(h)
    second = LOOPBACK if first == ANY else ANY
    s1, err1 = _bound(h, first, port)
    s2, err2 = _bound(h, second, port)
    assert (err1, err2) == (0, 0)
    assert h.ws.listen(s1, 1) == 0 and h.ws.listen(s2, 1) == 0
    assert _accepts(h, s2 if second == LOOPBACK else s1, port)


def test_first_listener_gets_the_connection(h: Harness) -> None:
    """Two sockets share an address with SO_REUSEADDR and the first listens:
    connections go to the first."""
    port = _free_port(h)
    s1, _ = _bound(h, LOOPBACK, port, SO_REUSEADDR)
    s2, err = _bound(h, LOOPBACK, port, SO_REUSEADDR)
    assert err == 0
    assert h.ws.listen(s1, 1) == 0
    assert _accepts(h, s1, port)


@pytest.mark.wine_divergence("Wine 8.0 cannot listen on the second socket sharing an address "
                             "(todo_wine in test_reuseaddr)")
def test_next_listener_takes_over(h: Harness) -> None:
    """Both listen: the first gets the connection; once it is closed, the
    second gets the next one; a third socket may then bind the address too."""
    port = _free_port(h)
    s1, _ = _bound(h, LOOPBACK, port, SO_REUSEADDR)
    s2, _ = _bound(h, LOOPBACK, port, SO_REUSEADDR)
    assert h.ws.listen(s1, 1) == 0 and h.ws.listen(s2, 1) == 0
    assert _accepts(h, s1, port)
    h.close(s1)
    _, err = _bound(h, LOOPBACK, port, SO_REUSEADDR)
    assert err == 0
    assert _accepts(h, s2, port)
