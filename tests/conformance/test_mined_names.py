"""listen, bind, getsockname and option levels, mined from Wine's sock.c.

Sources: ``test_listen`` (bad handles, unbound sockets with any backlog, a
second bind to a listening address), ``test_getsockname`` (a socket bound to
INADDR_ANY, port 0), ``test_extendedSocketOptions`` (levels that are no
level, SO_LINGER against SO_DONTLINGER, a nested WSAStartup(2.0)).  The
getsockname namelen and unchanged-buffer checks, and the getsockname of every
address of the host (gethostbyname), are out of scope (the interface takes no
namelen; gethostbyname is not in it).
"""

from __future__ import annotations

import pytest

from fakewinsock import LINGER, sockaddr_in
from fakewinsock.constants import (
    AF_INET,
    MAKEWORD,
    SO_DONTLINGER,
    SO_LINGER,
    SO_RCVBUF,
    SOCKET_ERROR,
    SOL_SOCKET,
    SOMAXCONN,
    WSAEADDRINUSE,
    WSAEINVAL,
    WSAENOTSOCK,
)

from ._harness import Harness


@pytest.mark.parametrize("handle", [0, 0xDEADBEEF])
def test_listen_on_no_socket(h: Harness, handle: int) -> None:
    h.ws.WSASetLastError(0xDEADBEEF)
    assert h.ws.listen(handle, 0) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAENOTSOCK


@pytest.mark.parametrize("backlog", [-2, 1, SOMAXCONN])
def test_listen_unbound_any_backlog(h: Harness, backlog: int) -> None:
    s = h.socket()
    h.ws.WSASetLastError(0xDEADBEEF)
    assert h.ws.listen(s, backlog) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAEINVAL


def test_second_socket_cannot_bind_or_listen_on_a_listening_address(h: Harness) -> None:
    """test_listen: fdB's bind to fdA's (listening) address fails with
    WSAEADDRINUSE, and fdB, unbound, cannot listen (WSAEINVAL)."""
    _, port = h.listener()
    b = h.socket()
    assert h.ws.listen(b, SOMAXCONN) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAEINVAL
    assert h.ws.bind(b, sockaddr_in("127.0.0.1", port), 16) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAEADDRINUSE


def test_getsockname_of_a_wildcard_bind(h: Harness) -> None:
    """Bound to INADDR_ANY port 0: getsockname succeeds (last error 0; left
    alone before Windows 7, which no backend runs on: docs/semantics-findings.md
    sections 52 and 57), AF_INET, a port picked, address 0.0.0.0, sin_zero
    zeroed."""
    s = h.socket()
    assert h.ws.bind(s, sockaddr_in("0.0.0.0", 0), 16) == 0
    h.ws.WSASetLastError(0xDEADBEEF)
    rc, name = h.ws.getsockname(s)
    assert rc == 0 and name is not None
    assert h.ws.WSAGetLastError() == 0
    assert name.sin_family == AF_INET
    assert name.port != 0
    assert name.host == "0.0.0.0"
    assert bytes(name)[8:16] == bytes(8)  # sin_zero


@pytest.mark.parametrize("level", [-1, 0x1234FFFF, -0x7FFF0001, 0x8000, 0x800])
def test_getsockopt_with_no_level(h: Harness, level: int) -> None:
    """Levels that are no protocol level (0xffffffff, which IE 3 used for
    SOL_SOCKET, 0x1234ffff, 0x8000ffff, 0x8000, 0x800): WSAEINVAL.  Wine's test
    shows it on a UDP socket (SO_MAX_MSG_SIZE); here on TCP (SO_RCVBUF)."""
    s = h.socket()
    h.ws.WSASetLastError(0xDEADBEEF)
    rc, _ = h.ws.getsockopt(s, level, SO_RCVBUF, 4)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSAEINVAL


def test_dontlinger_is_not_linger_onoff(h: Harness) -> None:
    """A bound TCP socket: SO_LINGER and SO_DONTLINGER both read, and
    SO_DONTLINGER is the negation of l_onoff (also after setting SO_LINGER)."""
    s = h.socket()
    assert h.ws.bind(s, sockaddr_in("0.0.0.0", 0), 16) == 0
    for setting in (None, LINGER(1, 5), LINGER(0, 5)):
        if setting is not None:
            assert h.ws.setsockopt(s, SOL_SOCKET, SO_LINGER, setting, 4) == 0
        rc, val = h.ws.getsockopt(s, SOL_SOCKET, SO_LINGER, 4)
        assert rc == 0
        rc2, dont = h.ws.getsockopt(s, SOL_SOCKET, SO_DONTLINGER, 4)
        assert rc2 == 0
        assert bool(LINGER.from_buffer_copy(val).l_onoff) != bool(int.from_bytes(dont, "little"))


def test_nested_startup_keeps_sockets(h: Harness) -> None:
    """test_extendedSocketOptions / test_getsockname start and clean up Winsock
    2.0 inside the suite's own startup; sockets made inside and outside work."""
    outer = h.socket()
    assert h.ws.WSAStartup(MAKEWORD(2, 0)).error == 0
    inner = h.socket()
    assert h.ws.bind(inner, sockaddr_in("127.0.0.1", 0), 16) == 0
    assert h.ws.WSACleanup() == 0
    assert h.ws.bind(outer, sockaddr_in("127.0.0.1", 0), 16) == 0
    assert h.ws.getsockname(inner).rc == 0


def test_names_of_an_accepted_socket_leave_zero_in_the_last_error(h: Harness) -> None:
    """After SO_UPDATE_ACCEPT_CONTEXT, getsockname and getpeername of the accepted
    socket, and getsockname of its listener, succeed and leave 0 in the last
    error (getsockname: test_getsockname, Windows 7 and later; getpeername: no
    Windows-run test, the same rule as bind, getsockname and shutdown, and Wine
    8.0; docs/semantics-findings.md section 57)."""
    a = h.accept()
    for call, s in ((h.ws.getsockname, a.sock), (h.ws.getpeername, a.sock), (h.ws.getsockname, a.listener)):
        h.ws.WSASetLastError(0xDEADBEEF)
        rc, name = call(s)
        assert rc == 0 and name is not None, call
        assert h.ws.WSAGetLastError() == 0, call
