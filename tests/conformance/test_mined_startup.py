"""WSAStartup: what each requested version gives, and what it fills in.

Wine's sock.c has no version table (test_WithWSAStartup only asks for 2.2);
this one is from ReactOS's ws2_32 apitest ``WSAStartup.c``, written against
Windows (Server 2003) and run there: every version from 0.0 to 255.255, the
WSADATA filled with 0x55 before each call and read after it, success or not.
The WSAStartup(2.2, NULL) check (WSAEFAULT) has no counterpart here: the
interface returns lpWSAData instead of taking a pointer.
"""

from __future__ import annotations

import pytest

from fakewinsock.constants import MAKEWORD, WSAVERNOTSUPPORTED

from .test_startup import fresh, run_fresh

# (requested, wVersion Windows answers with)
VERSIONS = [
    ((1, 0), (1, 0)), ((1, 1), (1, 1)), ((1, 2), (1, 1)), ((1, 15), (1, 1)), ((1, 255), (1, 1)),
    ((2, 0), (2, 0)), ((2, 1), (2, 1)), ((2, 2), (2, 2)), ((2, 3), (2, 2)), ((2, 15), (2, 2)),
    ((2, 255), (2, 2)), ((3, 0), (2, 2)), ((3, 1), (2, 2)), ((3, 2), (2, 2)), ((3, 3), (2, 2)),
    ((3, 15), (2, 2)), ((3, 255), (2, 2)), ((15, 255), (2, 2)), ((255, 255), (2, 2)),
]


@pytest.mark.parametrize(("requested", "expected"), VERSIONS)
def test_version_table(backend_id: str, requested: tuple[int, int], expected: tuple[int, int]) -> None:
    """wVersion is the request clamped to 1.1 (major 1) or 2.2; wHighVersion is
    2.2; the strings are "WinSock 2.0" and "Running"; iMaxSockets/iMaxUdpDg are
    32767/65467 for a 1.x version and 0/0 from 2.0 on."""
    ws = fresh(backend_id)
    err, data = ws.WSAStartup(MAKEWORD(*requested))
    assert err == 0 and data is not None
    assert data.wVersion == MAKEWORD(*expected)
    assert data.wHighVersion == MAKEWORD(2, 2)
    assert (data.szDescription, data.szSystemStatus) == ("WinSock 2.0", "Running")
    if expected[0] == 1:
        assert (data.iMaxSockets, data.iMaxUdpDg) == (32767, 65467)
    else:
        assert (data.iMaxSockets, data.iMaxUdpDg) == (0, 0)
    assert ws.WSACleanup() == 0


@pytest.mark.wine_divergence(
    "Wine 8.0's WSAStartup leaves the last error as it was; Windows sets 0 on success "
    "(ReactOS's WSAStartup apitest: ok_dec(WSAGetLastError(), 0) after every successful call)")
@pytest.mark.parametrize("requested", [(1, 1), (2, 2), (3, 0)])
def test_success_clears_the_last_error(backend_id: str, requested: tuple[int, int]) -> None:
    ws = fresh(backend_id)
    ws.WSASetLastError(0xDEADBEEF)
    assert ws.WSAStartup(MAKEWORD(*requested)).error == 0
    assert ws.WSAGetLastError() == 0
    assert ws.WSACleanup() == 0


@pytest.mark.parametrize("minor", [0, 9])
def test_major_zero_fails_but_fills_wsadata(backend_id: str, minor: int) -> None:
    """Version 0.x fails with WSAVERNOTSUPPORTED (the return value), and the
    WSADATA is filled all the same: wVersion 2.2, wHighVersion 2.2, the strings."""
    ws = fresh(backend_id)
    err, data = ws.WSAStartup(MAKEWORD(0, minor))
    assert err == WSAVERNOTSUPPORTED
    assert data is not None
    assert (data.wVersion, data.wHighVersion) == (MAKEWORD(2, 2), MAKEWORD(2, 2))
    assert (data.szDescription, data.szSystemStatus) == ("WinSock 2.0", "Running")
    assert (data.iMaxSockets, data.iMaxUdpDg) == (0, 0)


def test_upgrade_and_downgrade(backend_id: str) -> None:
    """A second WSAStartup answers with its own version, up or down."""
    ws = fresh(backend_id)
    for first, second in (((1, 1), (2, 2)), ((2, 2), (1, 1))):
        err, d1 = ws.WSAStartup(MAKEWORD(*first))
        assert err == 0 and d1 is not None and d1.wVersion == MAKEWORD(*first)
        err, d2 = ws.WSAStartup(MAKEWORD(*second))
        assert err == 0 and d2 is not None and d2.wVersion == MAKEWORD(*second)
        assert d2.iMaxSockets == (32767 if second[0] == 1 else 0)
        assert ws.WSACleanup() == 0
        assert ws.WSACleanup() == 0


def test_failed_startup_starts_nothing(backend_id: str) -> None:
    run_fresh(backend_id, "failed_startup_starts_nothing")


@pytest.mark.wine_divergence(
    "Wine 8.0 keeps a socket alive through the final WSACleanup (getsockname still succeeds, WSASend gives "
    "WSAECONNRESET); test_WithWSAStartup checks WSAENOTSOCK with plain ok() and closes the sockets by hand "
    "'while wine is not fixed'")
def test_cleanup_destroys_sockets(backend_id: str) -> None:
    run_fresh(backend_id, "cleanup_destroys_sockets")
