"""WSAStartup / WSACleanup (winsock-semantics.md "WSAStartup / WSACleanup").

Sources: the seed's version rules; Microsoft's WSAStartup page (the return value
is the error code); Wine's sock.c test_WithoutWSAStartup / test_WithWSAStartup
(reference counting, the last WSACleanup destroys every socket).
"""

from __future__ import annotations

import pytest

from fakewinsock import FakeConfig, FakeWinsock, Winsock, get_backend
from fakewinsock.constants import (
    AF_INET,
    INVALID_SOCKET,
    IPPROTO_TCP,
    MAKEWORD,
    SOCK_STREAM,
    SOCKET_ERROR,
    WSA_FLAG_OVERLAPPED,
    WSAENOTSOCK,
    WSANOTINITIALISED,
    WSAVERNOTSUPPORTED,
)

from ._harness import Harness


def fresh(backend_id: str) -> Winsock:
    """A backend with no WSAStartup of its own.

    On the real backend the process's own ``socket`` module already holds one
    WSAStartup reference, so reference counting is checked on the fake and the
    real backend alike only for the calls that do not depend on the count
    reaching zero."""
    if backend_id == "real":
        return get_backend("real")
    return FakeWinsock(seed=1, config=FakeConfig(strict_cleanup=False))


@pytest.mark.parametrize(
    ("requested", "expected"),
    [((2, 2), (2, 2)), ((1, 3), (1, 1)), ((2, 3), (2, 2)), ((3, 1), (2, 2)), ((3, 3), (2, 2)), ((1, 1), (1, 1))],
)
def test_version_negotiation(backend_id: str, requested: tuple[int, int], expected: tuple[int, int]) -> None:
    """The seed: 1.3 gives 1.1, 2.3 gives 2.2, 3.x gives 2.2; wHighVersion is 2.2."""
    ws = fresh(backend_id)
    err, data = ws.WSAStartup(MAKEWORD(*requested))
    assert err == 0 and data is not None
    assert data.wVersion == MAKEWORD(*expected)
    assert data.wHighVersion == MAKEWORD(2, 2)
    assert ws.WSACleanup() == 0


@pytest.mark.parametrize("minor", [0, 1, 3])
def test_major_version_zero_is_not_supported(backend_id: str, minor: int) -> None:
    """The seed: requesting 0.x fails with WSAVERNOTSUPPORTED, returned (not last error)."""
    ws = fresh(backend_id)
    err, _ = ws.WSAStartup(MAKEWORD(0, minor))
    assert err == WSAVERNOTSUPPORTED


def test_calls_before_startup_fail(backend_id: str) -> None:
    """test_WithoutWSAStartup: WSASocket before WSAStartup gives WSANOTINITIALISED."""
    if backend_id == "real":
        pytest.xfail("the test process's own socket module has already called WSAStartup on Windows")
    ws = fresh(backend_id)
    assert ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED) == INVALID_SOCKET
    assert ws.WSAGetLastError() == WSANOTINITIALISED
    assert ws.WSACleanup() == SOCKET_ERROR
    assert ws.WSAGetLastError() == WSANOTINITIALISED


def test_reference_counting(backend_id: str) -> None:
    """test_WithWSAStartup: startups are counted; a socket survives an inner
    cleanup; the cleanup that brings the count to zero destroys it."""
    if backend_id == "real":
        pytest.xfail("the test process's own socket module holds a WSAStartup reference on Windows")
    ws = fresh(backend_id)
    assert ws.WSAStartup(MAKEWORD(2, 2)).error == 0
    assert ws.WSAStartup(MAKEWORD(2, 0)).error == 0
    s = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
    assert ws.WSACleanup() == 0
    rc, _ = ws.getsockopt(s, 0xFFFF, 0x1008, 4)  # SO_TYPE: the socket still works
    assert rc == 0
    assert ws.WSACleanup() == 0
    assert ws.WSACleanup() == SOCKET_ERROR
    assert ws.WSAGetLastError() == WSANOTINITIALISED
    assert ws.WSAStartup(MAKEWORD(2, 2)).error == 0
    assert ws.closesocket(s) == SOCKET_ERROR
    assert ws.WSAGetLastError() == WSAENOTSOCK
    assert ws.WSACleanup() == 0


def test_last_error_is_settable(h: Harness) -> None:
    h.ws.WSASetLastError(12345)
    assert h.ws.WSAGetLastError() == 12345
