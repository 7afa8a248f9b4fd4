"""WSASocket: argument validation, its order, and the defaults it fills in.

Mined from Wine's sock.c ``test_WSASocket`` (the table of family / type /
protocol triples, each created with ``SetLastError(0xdeadbeef)`` first and
the last error compared afterwards, so a successful call leaves 0 there) and
``test_WithoutWSAStartup``.  Rows with UDP, raw, IPX or Bluetooth sockets and
the ones that need ``lpProtocolInfo`` are out of scope (docs/semantics-findings.md
"Wine's test suite, mined").
"""

from __future__ import annotations

import pytest

from fakewinsock.constants import (
    AF_INET,
    AF_UNSPEC,
    INVALID_SOCKET,
    IPPROTO_TCP,
    IPPROTO_UDP,
    SO_TYPE,
    SOCK_DGRAM,
    SOCK_STREAM,
    SOCKET_ERROR,
    SOL_SOCKET,
    WSAEAFNOSUPPORT,
    WSAEINVAL,
    WSAENOPROTOOPT,
    WSAEPROTONOSUPPORT,
    WSAESOCKTNOSUPPORT,
)

from ._harness import Harness

_BOGUS = 0xDEAD
_MINUS_ONE = -1

# (af, type, protocol, expected error): every row fails.  Where two arguments
# are bad, the error shows which one Windows checks first: the type before the
# family (row "0xdead, 0xdead, TCP"), the family before the protocol, and an
# unspecified family with protocol 0 before anything else.
FAILURES = [
    (_BOGUS, SOCK_STREAM, IPPROTO_TCP, WSAEAFNOSUPPORT),
    (_MINUS_ONE, SOCK_STREAM, IPPROTO_TCP, WSAEAFNOSUPPORT),
    (AF_INET, _BOGUS, IPPROTO_TCP, WSAESOCKTNOSUPPORT),
    (AF_INET, _MINUS_ONE, IPPROTO_TCP, WSAESOCKTNOSUPPORT),
    (AF_INET, SOCK_STREAM, _BOGUS, WSAEPROTONOSUPPORT),
    (AF_INET, SOCK_STREAM, _MINUS_ONE, WSAEPROTONOSUPPORT),
    (_BOGUS, _BOGUS, IPPROTO_TCP, WSAESOCKTNOSUPPORT),
    pytest.param(_BOGUS, SOCK_STREAM, _BOGUS, WSAEAFNOSUPPORT, marks=pytest.mark.wine_divergence(
        "Wine 8.0 checks the protocol before the family here (WSAEPROTONOSUPPORT); the row is a plain ok() "
        "in Wine's current test_WSASocket table, so Windows gives WSAEAFNOSUPPORT")),
    (AF_INET, _BOGUS, _BOGUS, WSAESOCKTNOSUPPORT),
    (_BOGUS, SOCK_STREAM, IPPROTO_UDP, WSAEAFNOSUPPORT),
    (AF_INET, _BOGUS, 0, WSAESOCKTNOSUPPORT),
    (AF_INET, 0, _BOGUS, WSAEPROTONOSUPPORT),
    (AF_INET, SOCK_STREAM, IPPROTO_UDP, WSAEPROTONOSUPPORT),
    (AF_INET, SOCK_DGRAM, IPPROTO_TCP, WSAEPROTONOSUPPORT),
    (AF_UNSPEC, SOCK_STREAM, _BOGUS, WSAEPROTONOSUPPORT),
    (AF_UNSPEC, _BOGUS, IPPROTO_UDP, WSAESOCKTNOSUPPORT),
    (AF_UNSPEC, SOCK_STREAM, 0, WSAEINVAL),
    (AF_UNSPEC, SOCK_DGRAM, 0, WSAEINVAL),
    (AF_UNSPEC, _BOGUS, 0, WSAEINVAL),
    (AF_UNSPEC, 0, _BOGUS, WSAEPROTONOSUPPORT),
    (AF_UNSPEC, 0, 0, WSAEINVAL),
]

# (af, type, protocol): each makes a TCP stream socket.  A zero type or
# protocol is filled in from the other argument (or the provider that matches
# protocol 0); an unspecified family is taken from the protocol (AF_INET, or
# AF_INET6 on Windows 11; both are streams).
STREAM_DEFAULTS = [
    (AF_INET, SOCK_STREAM, IPPROTO_TCP),
    (AF_INET, SOCK_STREAM, 0),
    (AF_INET, 0, IPPROTO_TCP),
    (AF_INET, 0, 0),
    (AF_UNSPEC, SOCK_STREAM, IPPROTO_TCP),
    (AF_UNSPEC, 0, IPPROTO_TCP),
]


@pytest.mark.parametrize(("af", "kind", "proto", "error"), FAILURES)
def test_invalid_triples_fail_in_windows_order(h: Harness, af: int, kind: int, proto: int, error: int) -> None:
    h.ws.WSASetLastError(0xDEADBEEF)
    s = h.ws.WSASocket(af, kind, proto, None, 0, 0)
    if s != INVALID_SOCKET:
        h.sockets.append(s)
    assert s == INVALID_SOCKET
    assert h.ws.WSAGetLastError() == error


@pytest.mark.parametrize(("af", "kind", "proto"), STREAM_DEFAULTS)
def test_defaults_make_a_tcp_stream_and_clear_the_last_error(h: Harness, af: int, kind: int, proto: int) -> None:
    """A successful WSASocket leaves 0 in the last error (Wine's table reads it
    after every call, set to 0xdeadbeef before)."""
    h.ws.WSASetLastError(0xDEADBEEF)
    s = h.ws.WSASocket(af, kind, proto, None, 0, 0)
    assert s != INVALID_SOCKET
    h.sockets.append(s)
    assert h.ws.WSAGetLastError() == 0
    rc, val = h.ws.getsockopt(s, SOL_SOCKET, SO_TYPE, 4)
    assert rc == 0 and int.from_bytes(val, "little") == SOCK_STREAM


def test_overlapped_flag_also_clears_the_last_error(h: Harness) -> None:
    h.ws.WSASetLastError(12345)
    s = h.socket()
    assert s != INVALID_SOCKET
    assert h.ws.WSAGetLastError() == 0


@pytest.mark.parametrize("value", [SOCK_STREAM, SOCK_DGRAM])
def test_so_type_cannot_be_set(h: Harness, value: int) -> None:
    """test_WSASocket: setsockopt(SO_TYPE) on a TCP socket fails with WSAENOPROTOOPT."""
    s = h.socket()
    h.ws.WSASetLastError(0xDEADBEEF)
    assert h.ws.setsockopt(s, SOL_SOCKET, SO_TYPE, value, 4) == SOCKET_ERROR
    assert h.ws.WSAGetLastError() == WSAENOPROTOOPT
    rc, val = h.ws.getsockopt(s, SOL_SOCKET, SO_TYPE, 4)
    assert rc == 0 and int.from_bytes(val, "little") == SOCK_STREAM
