"""Start-up checks that need a process whose Winsock was never started.

Each function takes a backend and asserts; none imports ``socket`` (on Windows
importing it calls WSAStartup), so ``test_startup.py`` can run them on the real
backend in a fresh interpreter, and directly on a fresh fake.

Sources: Wine's sock.c test_WithoutWSAStartup and test_WithWSAStartup, which
run first, before anything starts Winsock (docs/semantics-findings.md section 4).
"""

from __future__ import annotations

from collections.abc import Callable

from fakewinsock import WSABUF, WSAOVERLAPPED, Winsock, sockaddr_in
from fakewinsock.constants import (
    AF_INET,
    FALSE,
    INVALID_SOCKET,
    IPPROTO_TCP,
    MAKEWORD,
    SD_BOTH,
    SO_RCVBUF,
    SO_TYPE,
    SOCK_STREAM,
    SOCKET_ERROR,
    SOL_SOCKET,
    WSA_FLAG_OVERLAPPED,
    WSAENOTSOCK,
    WSANOTINITIALISED,
    WSAVERNOTSUPPORTED,
)


def calls_before_startup_fail(ws: Winsock) -> None:
    """test_WithoutWSAStartup: WSASocket before WSAStartup gives WSANOTINITIALISED;
    so does a WSACleanup without a WSAStartup."""
    assert ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED) == INVALID_SOCKET
    assert ws.WSAGetLastError() == WSANOTINITIALISED
    assert ws.WSACleanup() == SOCKET_ERROR
    assert ws.WSAGetLastError() == WSANOTINITIALISED


def reference_counting(ws: Winsock) -> None:
    """test_WithWSAStartup: startups are counted; a socket survives an inner
    cleanup; the cleanup that brings the count to zero destroys it."""
    assert ws.WSAStartup(MAKEWORD(2, 2)).error == 0
    assert ws.WSAStartup(MAKEWORD(2, 0)).error == 0
    s = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
    assert s != INVALID_SOCKET
    assert ws.WSACleanup() == 0
    rc, _ = ws.getsockopt(s, SOL_SOCKET, SO_TYPE, 4)  # the socket still works
    assert rc == 0
    assert ws.WSACleanup() == 0
    assert ws.WSACleanup() == SOCKET_ERROR
    assert ws.WSAGetLastError() == WSANOTINITIALISED
    assert ws.WSAStartup(MAKEWORD(2, 2)).error == 0
    assert ws.closesocket(s) == SOCKET_ERROR
    assert ws.WSAGetLastError() == WSAENOTSOCK
    assert ws.WSACleanup() == 0


def failed_startup_starts_nothing(ws: Winsock) -> None:
    """ReactOS's WSAStartup apitest: a WSAStartup that fails (version 0.0) leaves
    Winsock uninitialised and the last error as it was (WSANOTINITIALISED from
    the call before); test_WithoutWSAStartup's WSASocket(0, 0, 0) shows it."""
    ws.WSASetLastError(0xDEADBEEF)
    assert ws.WSASocket(0, 0, 0, None, 0, 0) == INVALID_SOCKET
    assert ws.WSAGetLastError() == WSANOTINITIALISED
    assert ws.WSAStartup(MAKEWORD(0, 0)).error == WSAVERNOTSUPPORTED
    assert ws.WSAGetLastError() == WSANOTINITIALISED
    assert ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED) == INVALID_SOCKET
    assert ws.WSAGetLastError() == WSANOTINITIALISED
    assert ws.WSACleanup() == SOCKET_ERROR


def cleanup_destroys_sockets(ws: Winsock) -> None:
    """test_WithWSAStartup: after the WSACleanup that ends Winsock, a socket made
    before (bound, here) is gone: once Winsock is started again, WSASend and
    getsockname on it fail with WSAENOTSOCK; one more WSACleanup than
    WSAStartups fails with WSANOTINITIALISED."""
    assert ws.WSAStartup(MAKEWORD(2, 2)).error == 0
    s = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
    assert s != INVALID_SOCKET
    assert ws.bind(s, sockaddr_in("127.0.0.1", 0), 16) == 0
    assert ws.WSACleanup() == 0
    assert ws.WSAStartup(MAKEWORD(2, 2)).error == 0
    ws.WSASetLastError(0xDEADBEEF)
    rc, _, _ = ws.WSASend(s, [WSABUF(4, bytearray(b"TEST"))], 1, 0, WSAOVERLAPPED(), None)
    assert rc == SOCKET_ERROR and ws.WSAGetLastError() == WSAENOTSOCK
    ws.WSASetLastError(0xDEADBEEF)
    assert ws.getsockname(s).rc == SOCKET_ERROR and ws.WSAGetLastError() == WSAENOTSOCK
    assert ws.WSACleanup() == 0
    ws.WSASetLastError(0xDEADBEEF)
    assert ws.WSACleanup() == SOCKET_ERROR and ws.WSAGetLastError() == WSANOTINITIALISED


def socket_calls_after_the_last_cleanup_fail(ws: Winsock) -> None:
    """After the WSACleanup that drops the count to 0, every socket call fails
    with WSANOTINITIALISED, checked before the handle (which that cleanup
    destroyed: WSAENOTSOCK would come second).  Microsoft's page of each
    function lists WSANOTINITIALISED ("a successful WSAStartup call must occur
    before using this function"); test_WithoutWSAStartup shows it for a socket
    call before any start-up; ReactOS's ws2_32, built after Windows', runs the
    start-up check (WsApiProlog/WsQuickProlog) before it looks the socket up."""
    assert ws.WSAStartup(MAKEWORD(2, 2)).error == 0
    s = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
    assert s != INVALID_SOCKET
    assert ws.WSACleanup() == 0
    ov = WSAOVERLAPPED()
    buf = bytearray(4)
    # each call, and whether it returned its failure value
    calls: list[tuple[str, Callable[[], bool]]] = [
        ("WSASocket",
         lambda: ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED) == INVALID_SOCKET),
        ("bind", lambda: ws.bind(s, sockaddr_in("127.0.0.1", 0), 16) == SOCKET_ERROR),
        ("listen", lambda: ws.listen(s, 5) == SOCKET_ERROR),
        ("connect", lambda: ws.connect(s, sockaddr_in("127.0.0.1", 9), 16) == SOCKET_ERROR),
        ("shutdown", lambda: ws.shutdown(s, SD_BOTH) == SOCKET_ERROR),
        ("setsockopt", lambda: ws.setsockopt(s, SOL_SOCKET, SO_RCVBUF, 4096, 4) == SOCKET_ERROR),
        ("getsockopt", lambda: ws.getsockopt(s, SOL_SOCKET, SO_TYPE, 4).rc == SOCKET_ERROR),
        ("getsockname", lambda: ws.getsockname(s).rc == SOCKET_ERROR),
        ("getpeername", lambda: ws.getpeername(s).rc == SOCKET_ERROR),
        ("WSARecv", lambda: ws.WSARecv(s, [WSABUF(4, buf)], 1, 0, ov, None).rc == SOCKET_ERROR),
        ("WSASend", lambda: ws.WSASend(s, [WSABUF(4, buf)], 1, 0, ov, None).rc == SOCKET_ERROR),
        ("WSAGetOverlappedResult", lambda: ws.WSAGetOverlappedResult(s, ov, FALSE).ok == FALSE),
        ("closesocket", lambda: ws.closesocket(s) == SOCKET_ERROR),
    ]
    seen = {}
    for name, call in calls:
        ws.WSASetLastError(0xDEADBEEF)
        failed = call()
        seen[name] = (failed, ws.WSAGetLastError())
    assert seen == {name: (True, WSANOTINITIALISED) for name, _ in calls}, seen


CHECKS = {"calls_before_startup_fail": calls_before_startup_fail, "reference_counting": reference_counting,
          "failed_startup_starts_nothing": failed_startup_starts_nothing,
          "cleanup_destroys_sockets": cleanup_destroys_sockets,
          "socket_calls_after_the_last_cleanup_fail": socket_calls_after_the_last_cleanup_fail}
