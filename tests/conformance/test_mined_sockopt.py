"""setsockopt / getsockopt on a TCP socket, mined from Wine's sock.c.

Sources (each a plain ok() that runs on Windows unless marked):
``test_set_getsockopt`` (timeouts, buffer sizes, SO_LINGER, TCP_NODELAY's
lengths, TCP_KEEPALIVE, a bad level, SO_ERROR, and the ``test_optsize`` table:
what every option does with lengths -1, 0, 1, 2, 4 and 8 and with the value
0x100), ``test_reuseaddr`` (SO_REUSEADDR against SO_EXCLUSIVEADDRUSE) and
``test_listen`` (SO_ACCEPTCONN is read-only), ``test_sockopt_validity`` (the
IPPROTO_IP options getsockopt refuses on a TCP socket); dotnet/runtime's ``LingerStateTest.cs``
(its tests run on Windows in CI) for SO_LINGER's bounds and after the listener closed, and its
``KeepAliveTest.cs`` for TCP_KEEPALIVE's default and TCP_KEEPINTVL and TCP_KEEPCNT.  A call that succeeds leaves 0
in the last error: the tests set 0xdeadbeef before and read 0 after.

Out of scope (docs/semantics-findings.md "Wine's test suite, mined"): UDP,
IPv6 and raw-socket options, SO_OPENTYPE, SO_PROTOCOL_INFO, SO_BSP_STATE,
the lengths TCP_KEEPCNT/TCP_KEEPINTVL take, a NULL or bogus optval pointer,
and what getsockopt writes into the caller's buffer when it fails (the
interface returns no bytes on failure).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from fakewinsock import LINGER, sockaddr_in
from fakewinsock.constants import (
    IPPROTO_IP,
    IPPROTO_TCP,
    SO_ACCEPTCONN,
    SO_DONTLINGER,
    SO_DONTROUTE,
    SO_ERROR,
    SO_EXCLUSIVEADDRUSE,
    SO_KEEPALIVE,
    SO_LINGER,
    SO_OOBINLINE,
    SO_RCVBUF,
    SO_RCVTIMEO,
    SO_REUSEADDR,
    SO_SNDBUF,
    SO_SNDTIMEO,
    SOCKET_ERROR,
    SOL_SOCKET,
    TCP_KEEPALIVE,
    TCP_KEEPCNT,
    TCP_KEEPINTVL,
    TCP_NODELAY,
    TRUE,
    WSAEFAULT,
    WSAEINVAL,
    WSAENOBUFS,
    WSAENOPROTOOPT,
    WSAENOTSOCK,
    WSAEOPNOTSUPP,
)

from ._harness import Harness

SENTINEL = 0xDEADBEEF


def u32(value: int) -> bytes:
    return value.to_bytes(4, "little")


def setopt(h: Harness, s: int, level: int, name: int, value: object, optlen: int) -> tuple[int, int]:
    """setsockopt with the last error set to 0xdeadbeef first: (rc, last error)."""
    h.ws.WSASetLastError(SENTINEL)
    rc = h.ws.setsockopt(s, level, name, value, optlen)
    return rc, h.ws.WSAGetLastError()


def getopt(h: Harness, s: int, level: int, name: int, optlen: int) -> tuple[int, int, bytes]:
    """getsockopt with the last error set to 0xdeadbeef first: (rc, last error, bytes)."""
    h.ws.WSASetLastError(SENTINEL)
    rc, val = h.ws.getsockopt(s, level, name, optlen)
    return rc, h.ws.WSAGetLastError(), val


@dataclass(frozen=True)
class Opt:
    """One row of Wine's test_optsize table (the TCP ones)."""

    name: str
    level: int
    optname: int
    short_len: bool  # set/get accept lengths 1 and 2
    sizes: tuple[int, int, int]  # bytes getsockopt returns for lengths 1, 2, 4 (and 4 for 8)
    boolean: bool = False  # reads back as 0/1


OPTIONS = [
    Opt("SO_DONTLINGER", SOL_SOCKET, SO_DONTLINGER, True, (1, 1, 4), True),
    Opt("SO_LINGER", SOL_SOCKET, SO_LINGER, False, (1, 2, 4)),
    Opt("SO_OOBINLINE", SOL_SOCKET, SO_OOBINLINE, True, (1, 1, 4), True),
    Opt("SO_RCVBUF", SOL_SOCKET, SO_RCVBUF, False, (1, 2, 4)),
    Opt("SO_KEEPALIVE", SOL_SOCKET, SO_KEEPALIVE, True, (1, 1, 1)),
    Opt("SO_DONTROUTE", SOL_SOCKET, SO_DONTROUTE, True, (1, 1, 1)),
    Opt("SO_RCVTIMEO", SOL_SOCKET, SO_RCVTIMEO, False, (1, 2, 4)),
    Opt("SO_REUSEADDR", SOL_SOCKET, SO_REUSEADDR, True, (1, 1, 4), True),
    Opt("SO_EXCLUSIVEADDRUSE", SOL_SOCKET, SO_EXCLUSIVEADDRUSE, True, (1, 1, 4), True),
    Opt("SO_SNDBUF", SOL_SOCKET, SO_SNDBUF, False, (1, 2, 4)),
    Opt("SO_SNDTIMEO", SOL_SOCKET, SO_SNDTIMEO, False, (1, 2, 4)),
    Opt("TCP_NODELAY", IPPROTO_TCP, TCP_NODELAY, True, (1, 1, 1)),
    Opt("TCP_KEEPALIVE", IPPROTO_TCP, TCP_KEEPALIVE, False, (0, 0, 4)),
]
NO_TCP_KEEPALIVE = ("Wine 8.0 does not know TCP_KEEPALIVE (WSAENOPROTOOPT); a plain ok() in Wine's current "
                    "test_set_getsockopt, so Windows has it")


def options(diverging: dict[str, str]) -> list[object]:
    """OPTIONS as pytest params, with the Wine divergences of one test."""
    out: list[object] = []
    for o in OPTIONS:
        reason = diverging.get(o.name) or (NO_TCP_KEEPALIVE if o.name == "TCP_KEEPALIVE" else None)
        out.append(pytest.param(o, id=o.name, marks=[pytest.mark.wine_divergence(reason)] if reason else []))
    return out


@pytest.mark.parametrize("opt", options({}))
def test_option_lengths(h: Harness, opt: Opt) -> None:
    """test_optsize: an 8-byte set works and reads back in the option's size;
    length -1 fails with WSAENOBUFS (or WSAEFAULT, Windows 7 to 10 21H1) for a
    one-byte or non-SOL_SOCKET option and works for the others; length 0 works
    only for a SOL_SOCKET boolean; getsockopt with length -1 or 0 fails with
    WSAEFAULT."""
    s = h.socket()
    rc, err, saved = getopt(h, s, opt.level, opt.optname, 4)
    assert (rc, err) == (0, 0)
    assert setopt(h, s, opt.level, opt.optname, (0xFFFFFFFF00000001).to_bytes(8, "little"), 8) == (0, 0)
    rc, err, val = getopt(h, s, opt.level, opt.optname, 8)
    assert (rc, err, len(val)) == (0, 0, opt.sizes[2])

    rc, err = setopt(h, s, opt.level, opt.optname, u32(1), -1)
    if opt.sizes[2] == 1 or opt.level != SOL_SOCKET:
        assert rc == SOCKET_ERROR and err in (WSAENOBUFS, WSAEFAULT)
    else:
        assert (rc, err) == (0, 0)
    rc, err, _ = getopt(h, s, opt.level, opt.optname, -1)
    assert (rc, err) == (SOCKET_ERROR, WSAEFAULT)

    rc, err = setopt(h, s, opt.level, opt.optname, u32(1), 0)
    if opt.level == SOL_SOCKET and opt.boolean:
        assert (rc, err) == (0, 0)
    else:
        assert (rc, err) == (SOCKET_ERROR, WSAEFAULT)
    rc, err, _ = getopt(h, s, opt.level, opt.optname, 0)
    assert (rc, err) == (SOCKET_ERROR, WSAEFAULT)
    assert setopt(h, s, opt.level, opt.optname, saved.ljust(4, b"\0"), 4) == (0, 0)


LARGE_VALUE_DIVERGES = {
    "SO_LINGER": "Wine 8.0 reads SO_LINGER's l_onoff 0x100 back as 1 (todo_wine_if in test_optsize)",
    "SO_DONTROUTE": "Wine 8.0 keeps all of SO_DONTROUTE's value 0x100 (todo_wine_if in test_optsize)",
}


@pytest.mark.parametrize("opt", options(LARGE_VALUE_DIVERGES))
def test_option_value_0x100(h: Harness, opt: Opt) -> None:
    """test_optsize: 0x100 is accepted; a boolean reads back 1, a one-byte
    option keeps only its low byte (0), the others read back 0x100."""
    s = h.socket()
    assert setopt(h, s, opt.level, opt.optname, u32(0x100), 4) == (0, 0)
    rc, err, val = getopt(h, s, opt.level, opt.optname, 4)
    assert (rc, err, len(val)) == (0, 0, opt.sizes[2])
    expected = 0 if opt.sizes[2] == 1 else 1 if opt.boolean else 0x100
    assert int.from_bytes(val, "little") == expected


@pytest.mark.parametrize("opt", options({}))
@pytest.mark.parametrize("length", [1, 2, 4])
def test_option_short_lengths(h: Harness, opt: Opt, length: int) -> None:
    """test_optsize: lengths 1 and 2 work for the options that take them
    (getsockopt then returns the size in the table) and fail with WSAEFAULT for
    the others, set and get alike."""
    s = h.socket()
    rc, err = setopt(h, s, opt.level, opt.optname, u32(1), length)
    rc2, err2, val = getopt(h, s, opt.level, opt.optname, length)
    if opt.short_len or length == 4:
        assert (rc, err) == (0, 0)
        assert (rc2, err2) == (0, 0)
        assert len(val) == opt.sizes[[1, 2, 4].index(length)]
        assert int.from_bytes(val, "little") == 1
    else:
        assert (rc, err) == (SOCKET_ERROR, WSAEFAULT)
        assert (rc2, err2) == (SOCKET_ERROR, WSAEFAULT)


@pytest.mark.parametrize(("optname", "values"), [(SO_RCVTIMEO, (63000, 0)), (SO_SNDTIMEO, (997000,)),
                                                 (SO_SNDBUF, (4096,)), (SO_RCVBUF, (4096, 0))])
def test_values_round_trip(h: Harness, optname: int, values: tuple[int, ...]) -> None:
    s = h.socket()
    for v in values:
        assert setopt(h, s, SOL_SOCKET, optname, v, 4) == (0, 0)
        rc, err, val = getopt(h, s, SOL_SOCKET, optname, 4)
        assert (rc, err, int.from_bytes(val, "little")) == (0, 0, v)


@pytest.mark.parametrize(("onoff", "linger"), [(0, 0), (0, 73), (1, 0), (5, 189),
                                               (1, 32767), (1, 32768), (1, 65535)])
def test_linger_round_trip(h: Harness, onoff: int, linger: int) -> None:
    """l_onoff reads back as the same truth value; l_linger as set when on, up to
    the u_short's largest (dotnet/runtime's ``LingerStateTest.cs`` @ ``0e9e7dcabc38``,
    Socket_LingerState_Upper_Boundaries_CorrectBehavior, run on Windows: 32767,
    32768 and 65535 are set and read back)."""
    s = h.socket()
    assert setopt(h, s, SOL_SOCKET, SO_LINGER, LINGER(onoff, linger), 4) == (0, 0)
    rc, _, val = getopt(h, s, SOL_SOCKET, SO_LINGER, 4)
    assert rc == 0
    got = LINGER.from_buffer_copy(val)
    assert bool(got.l_onoff) == bool(onoff)
    if got.l_onoff:
        assert got.l_linger == linger


@pytest.mark.parametrize(("onoff", "linger"), [(0, 0), (1, 0), (1, 1)])
def test_linger_on_a_client_whose_listener_closed_before_accepting(h: Harness, onoff: int, linger: int) -> None:
    """dotnet/runtime's ``LingerStateTest.cs`` (@ ``0e9e7dcabc38``, SetLingerAfterServerClosed, run on
    Windows): a client connects, the listener is closed with the connection still in its backlog, and
    setting SO_LINGER on the client then succeeds (docs/semantics-findings.md section 35)."""
    lst, port = h.listener()
    c = h.socket()
    assert h.ws.connect(c, sockaddr_in("127.0.0.1", port), 16) == 0
    h.close(lst)
    h.ws.Sleep(10)
    assert setopt(h, c, SOL_SOCKET, SO_LINGER, LINGER(onoff, linger), 4) == (0, 0)


def test_tcp_nodelay_lengths(h: Harness) -> None:
    """TCP_NODELAY: any positive length works; 0 and -1 fail and change
    nothing; 0x100 with length 4 turns it off (only the low byte counts)."""
    s = h.socket()
    for length in (1, 4, 42):
        assert setopt(h, s, IPPROTO_TCP, TCP_NODELAY, 1, length) == (0, 0)
        rc, _, val = getopt(h, s, IPPROTO_TCP, TCP_NODELAY, 4)
        assert rc == 0 and int.from_bytes(val, "little") == 1
        assert setopt(h, s, IPPROTO_TCP, TCP_NODELAY, 0, 4) == (0, 0)
    assert setopt(h, s, IPPROTO_TCP, TCP_NODELAY, u32(1), 0) == (SOCKET_ERROR, WSAEFAULT)
    rc, _, val = getopt(h, s, IPPROTO_TCP, TCP_NODELAY, 4)
    assert rc == 0 and int.from_bytes(val, "little") == 0
    rc, err = setopt(h, s, IPPROTO_TCP, TCP_NODELAY, u32(1), -1)
    assert rc == SOCKET_ERROR and err in (WSAEFAULT, WSAENOBUFS)  # Windows 10 pro: WSAENOBUFS
    rc, _, val = getopt(h, s, IPPROTO_TCP, TCP_NODELAY, 4)
    assert rc == 0 and int.from_bytes(val, "little") == 0
    assert setopt(h, s, IPPROTO_TCP, TCP_NODELAY, 0x100, 4) == (0, 0)
    rc, _, val = getopt(h, s, IPPROTO_TCP, TCP_NODELAY, 4)
    assert rc == 0 and int.from_bytes(val, "little") == 0


@pytest.mark.wine_divergence(NO_TCP_KEEPALIVE)
def test_tcp_keepalive_round_trip(h: Harness) -> None:
    s = h.socket()
    assert setopt(h, s, IPPROTO_TCP, TCP_KEEPALIVE, 3600, 4) == (0, 0)
    rc, _, val = getopt(h, s, IPPROTO_TCP, TCP_KEEPALIVE, 4)
    assert rc == 0 and int.from_bytes(val, "little") == 3600


NO_KEEPALIVE_TUNING = ("Wine 8.0 does not know TCP_KEEPALIVE, TCP_KEEPINTVL or TCP_KEEPCNT (WSAENOPROTOOPT); "
                       "dotnet/runtime's KeepAliveTest sets and reads them on Windows")


def keepalive(h: Harness, s: int) -> tuple[int, int]:
    """(TCP_KEEPALIVE, TCP_KEEPINTVL) as getsockopt reads them, each 4 bytes."""
    values = []
    for name in (TCP_KEEPALIVE, TCP_KEEPINTVL):
        rc, err, val = getopt(h, s, IPPROTO_TCP, name, 4)
        assert (rc, err, len(val)) == (0, 0, 4), (name, rc, err)
        values.append(int.from_bytes(val, "little"))
    return values[0], values[1]


@pytest.mark.wine_divergence(NO_KEEPALIVE_TUNING)
@pytest.mark.parametrize("time_first", [True, False], ids=["time-first", "interval-first"])
def test_keepalive_time_and_interval_defaults_and_independence(h: Harness, time_first: bool) -> None:
    """KeepAliveTest's Socket_KeepAlive_Time_And_Interval and _Interval_And_Time
    (Windows only): a new socket reads TCP_KEEPALIVE 7200 and TCP_KEEPINTVL 1
    (seconds); setting one (5, 2) leaves the other as it was."""
    s = h.socket()
    assert keepalive(h, s) == (7200, 1)
    if time_first:
        assert setopt(h, s, IPPROTO_TCP, TCP_KEEPALIVE, 5, 4) == (0, 0)
        assert keepalive(h, s) == (5, 1)
    else:
        assert setopt(h, s, IPPROTO_TCP, TCP_KEEPINTVL, 2, 4) == (0, 0)
        assert keepalive(h, s) == (7200, 2)
    assert setopt(h, s, IPPROTO_TCP, TCP_KEEPINTVL if time_first else TCP_KEEPALIVE,
                  2 if time_first else 5, 4) == (0, 0)
    assert keepalive(h, s) == (5, 2)


@pytest.mark.wine_divergence(NO_KEEPALIVE_TUNING)
def test_keepalive_retry_count_round_trip(h: Harness) -> None:
    """KeepAliveTest's Socket_KeepAlive_RetryCount_Success (Windows 10 1703
    on): TCP_KEEPCNT set to 60 reads back 60."""
    s = h.socket()
    assert setopt(h, s, IPPROTO_TCP, TCP_KEEPCNT, 60, 4) == (0, 0)
    rc, err, val = getopt(h, s, IPPROTO_TCP, TCP_KEEPCNT, 4)
    assert (rc, err, int.from_bytes(val, "little")) == (0, 0, 60)


@pytest.mark.wine_divergence("Wine 8.0 answers WSAEINVAL (10022) for level -1 whatever the optname; on Windows "
                              "optname -1 there gives WSAENOPROTOOPT or WSAEOPNOTSUPP (.NET's SocketOptionNameTest)")
@pytest.mark.parametrize("call", ["get", "set"])
def test_optname_minus_one_at_level_minus_one_fails_and_the_connection_goes_on(h: Harness, call: str) -> None:
    """dotnet/runtime's SocketOptionNameTest @ 02648d049b8f (Windows CI):
    Get/SetUnsupportedSocketOption*_DoesNotDisconnectSocket: level -1 with
    optname -1 fails with WSAENOPROTOOPT or WSAEOPNOTSUPP (not test_bad_level's
    WSAEINVAL, which comes with SO_RCVTIMEO), and the connected socket still
    carries data both ways."""
    a = h.accept()
    if call == "get":
        rc, err, _ = getopt(h, a.sock, -1, -1, 4)
    else:
        rc, err = setopt(h, a.sock, -1, -1, 1, 4)
    assert rc == SOCKET_ERROR and err in (WSAENOPROTOOPT, WSAEOPNOTSUPP), (rc, err)
    a.peer.send(b"ping")
    assert h.recv_all(a.sock, 4) == b"ping"
    assert h.send(a.sock, b"pong") == (TRUE, 4)
    assert a.peer.recv_exactly(4) == b"pong"


@pytest.mark.parametrize("level", [-1, 0x8000])
def test_bad_level(h: Harness, level: int) -> None:
    """A level that is no protocol level (0xffffffff, 0x8000): WSAEINVAL."""
    s = h.socket()
    assert setopt(h, s, level, SO_RCVTIMEO, 63000, 4) == (SOCKET_ERROR, WSAEINVAL)


def test_so_error_set_and_get_succeed(h: Harness) -> None:
    """SO_ERROR can be set (1234) and read; both succeed and leave 0 in the
    last error; reading it with length 1 fails with WSAEFAULT."""
    s = h.socket()
    assert setopt(h, s, SOL_SOCKET, SO_ERROR, 1234, 4) == (0, 0)
    rc, err, _ = getopt(h, s, SOL_SOCKET, SO_ERROR, 4)
    assert (rc, err) == (0, 0)
    rc, err, _ = getopt(h, s, SOL_SOCKET, SO_ERROR, 1)
    assert (rc, err) == (SOCKET_ERROR, WSAEFAULT)


@pytest.mark.wine_divergence("Wine 8.0 ignores setsockopt(SO_ERROR) and reads 0 (todo_wine in test_set_getsockopt)")
def test_so_error_reads_back_what_was_set(h: Harness) -> None:
    s = h.socket()
    assert h.ws.setsockopt(s, SOL_SOCKET, SO_ERROR, 1234, 4) == 0
    rc, val = h.ws.getsockopt(s, SOL_SOCKET, SO_ERROR, 4)
    assert rc == 0 and int.from_bytes(val, "little") == 1234


def test_closed_socket(h: Harness) -> None:
    s = h.socket()
    h.close(s)
    rc, err, _ = getopt(h, s, SOL_SOCKET, SO_ERROR, 4)
    assert (rc, err) == (SOCKET_ERROR, WSAENOTSOCK)


def test_reuseaddr_and_exclusiveaddruse_exclude_each_other(h: Harness) -> None:
    """test_reuseaddr: with one of the two on, turning the other on fails with
    WSAEINVAL; turning the first off lets the other on."""
    s = h.socket()
    rc, err, val = getopt(h, s, SOL_SOCKET, SO_REUSEADDR, 4)
    assert (rc, err, int.from_bytes(val, "little")) == (0, 0, 0)
    assert setopt(h, s, SOL_SOCKET, SO_REUSEADDR, 1, 4) == (0, 0)
    assert setopt(h, s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, 1, 4) == (SOCKET_ERROR, WSAEINVAL)
    assert setopt(h, s, SOL_SOCKET, SO_REUSEADDR, 0, 4) == (0, 0)
    assert setopt(h, s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, 1, 4) == (0, 0)
    assert setopt(h, s, SOL_SOCKET, SO_REUSEADDR, 1, 4) == (SOCKET_ERROR, WSAEINVAL)


@pytest.mark.parametrize("value", [1, 0])
def test_acceptconn_is_read_only(h: Harness, value: int) -> None:
    s = h.socket()
    assert setopt(h, s, SOL_SOCKET, SO_ACCEPTCONN, value, 4) == (SOCKET_ERROR, WSAENOPROTOOPT)


# test_sockopt_validity's ipv4_tcp_tests (ws2ipdef.h values): (optname, the error getsockopt gives on Windows).
IP_GET_ERRORS = [
    (-1, WSAENOPROTOOPT),
    (2, WSAEINVAL),  # IP_HDRINCL
    (9, WSAEINVAL),  # IP_MULTICAST_IF
    (10, WSAEINVAL),  # IP_MULTICAST_TTL
    (11, WSAEINVAL),  # IP_MULTICAST_LOOP
    (12, WSAENOPROTOOPT),  # IP_ADD_MEMBERSHIP
    (13, WSAENOPROTOOPT),  # IP_DROP_MEMBERSHIP
    (19, WSAEINVAL),  # IP_PKTINFO
    (21, WSAEINVAL),  # IP_RECVTTL
    (40, WSAEINVAL),  # IP_RECVTOS
]
# The rows marked todo_wine there: Windows gives WSAEINVAL, Wine 8.0 does not.
IP_GET_ERRORS_TODO_WINE = [
    22,  # IP_RECEIVE_BROADCAST
    24,  # IP_RECVIF
    25,  # IP_RECVDSTADDR
    33,  # IP_GET_IFLIST
    38,  # IP_RECVRTHDR
    47,  # IP_ORIGINAL_ARRIVAL_IF
    50,  # IP_ECN
    51,  # IP_PKTINFO_EX
    60,  # IP_WFP_REDIRECT_RECORDS
    70,  # IP_WFP_REDIRECT_CONTEXT
    75,  # IP_RECVERR
]


@pytest.mark.parametrize(("optname", "error"), IP_GET_ERRORS)
def test_ip_level_options_a_tcp_socket_refuses(h: Harness, optname: int, error: int) -> None:
    """test_sockopt_validity (ipv4_tcp_tests, rows without todo_wine): on a new
    TCP socket getsockopt at IPPROTO_IP with a 256-byte buffer fails: optname -1
    and the membership options (set-only) with WSAENOPROTOOPT, the raw-only and
    UDP-only options with WSAEINVAL; on a connected socket too (the fake's
    reading, see ``_IP_GET_ERRORS``), which still carries data."""
    s = h.socket()
    assert getopt(h, s, IPPROTO_IP, optname, 256) == (SOCKET_ERROR, error, b"")
    a = h.accept()
    assert getopt(h, a.sock, IPPROTO_IP, optname, 256) == (SOCKET_ERROR, error, b"")
    a.peer.send(b"ping")
    assert h.recv_all(a.sock, 4) == b"ping"


@pytest.mark.wine_divergence("test_sockopt_validity marks these rows todo_wine: Windows fails getsockopt with "
                              "WSAEINVAL, Wine 8.0 with WSAENOPROTOOPT (10042)")
@pytest.mark.parametrize("optname", IP_GET_ERRORS_TODO_WINE)
def test_ip_level_options_a_tcp_socket_refuses_todo_wine(h: Harness, optname: int) -> None:
    """test_sockopt_validity (ipv4_tcp_tests, the todo_wine rows with an error):
    getsockopt at IPPROTO_IP on a new TCP socket fails with WSAEINVAL."""
    s = h.socket()
    rc, err, _ = getopt(h, s, IPPROTO_IP, optname, 256)
    assert (rc, err) == (SOCKET_ERROR, WSAEINVAL)
