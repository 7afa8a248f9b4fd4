"""A server socket on the fake, driven by hand, for the fake's own tests.

:func:`quiet` makes a fake with no chance in it (nothing behind the program's
back, every operation pends, a fixed latency), so times and orders are exact;
:class:`Server` starts Winsock, listens on port 0 and offers the few sequences
those tests repeat (accept with AcceptEx, receive, wait), and :meth:`Server.finish`
closes everything and ends with the final WSACleanup, whose leak check still
guards every test.
"""

from __future__ import annotations

from fakewinsock import WSABUF, WSAOVERLAPPED, FakeConfig, FakePeer, FakeWinsock, sockaddr_in
from fakewinsock.constants import (
    AF_INET,
    FALSE,
    INVALID_SOCKET,
    IPPROTO_TCP,
    MAKEWORD,
    SO_UPDATE_ACCEPT_CONTEXT,
    SOCK_STREAM,
    SOCKET_ERROR,
    SOL_SOCKET,
    SOMAXCONN,
    TRUE,
    WSA_FLAG_OVERLAPPED,
    WSA_INFINITE,
    WSA_IO_PENDING,
    WSA_WAIT_EVENT_0,
)

LATENCY = 30_000  # ns, one way


def quiet(**overrides: object) -> FakeConfig:
    """No chance: nothing behind the program's back, every operation pends, no
    split or partial receive, no completion delay, a fixed latency."""
    settings: dict[str, object] = {"immediate": 0.0, "background": 0.0, "split": 0.0, "partial_recv": 0.0,
                                   "completion_delay": (0, 0), "latency": (LATENCY, LATENCY)}
    settings.update(overrides)
    return FakeConfig(**settings)  # type: ignore[arg-type]


class Server:
    """A listening socket on a started fake, with helpers to accept and receive."""

    def __init__(self, ws: FakeWinsock, backlog: int = SOMAXCONN) -> None:
        self.ws = ws
        assert ws.WSAStartup(MAKEWORD(2, 2))[0] == 0
        self.socks: list[int] = []
        self.events: list[int] = []
        self.lst = self.socket()
        assert ws.bind(self.lst, sockaddr_in("127.0.0.1", 0), 16) == 0 and ws.listen(self.lst, backlog) == 0
        rc, name = ws.getsockname(self.lst)
        assert rc == 0 and name is not None
        self.port = name.port

    def socket(self) -> int:
        s = self.ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
        assert s != INVALID_SOCKET
        self.socks.append(s)
        return s

    def overlapped(self) -> WSAOVERLAPPED:
        ov = WSAOVERLAPPED()
        ov.hEvent = self.ws.WSACreateEvent()
        self.events.append(ov.hEvent)
        return ov

    def wait(self, ov: WSAOVERLAPPED, ms: int = WSA_INFINITE) -> int:
        return self.ws.WSAWaitForMultipleEvents(1, [ov.hEvent], FALSE, ms, FALSE)

    def post_accept(self) -> tuple[int, WSAOVERLAPPED]:
        acc = self.socket()
        ov = self.overlapped()
        ok, _ = self.ws.AcceptEx(self.lst, acc, bytearray(64), 0, 32, 32, ov)
        assert ok or self.ws.WSAGetLastError() == WSA_IO_PENDING
        return acc, ov

    def accept(self, peer: FakePeer | None = None) -> tuple[int, FakePeer]:
        """A connected socket and its peer (a new one unless given, already connecting)."""
        acc, ov = self.post_accept()
        if peer is None:
            peer = self.ws.peer()
            peer.connect("127.0.0.1", self.port)
        assert self.wait(ov) == WSA_WAIT_EVENT_0
        ok, _, _ = self.ws.WSAGetOverlappedResult(self.lst, ov, FALSE)
        assert ok == TRUE, self.ws.WSAGetLastError()
        assert self.ws.setsockopt(acc, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, self.lst, 8) == 0
        return acc, peer

    def post_recv(self, s: int, size: int = 64) -> tuple[WSAOVERLAPPED, bytearray]:
        """A WSARecv that pends."""
        ov, buf = self.overlapped(), bytearray(size)
        rc, _, _ = self.ws.WSARecv(s, [WSABUF(size, buf)], 1, 0, ov, None)
        assert rc == SOCKET_ERROR and self.ws.WSAGetLastError() == WSA_IO_PENDING
        return ov, buf

    def result(self, s: int, ov: WSAOVERLAPPED) -> tuple[int, int, int]:
        """(ok, bytes, error) once ``ov`` has completed."""
        assert self.wait(ov) == WSA_WAIT_EVENT_0
        ok, n, _ = self.ws.WSAGetOverlappedResult(s, ov, FALSE)
        return ok, n, 0 if ok else self.ws.WSAGetLastError()

    def recv(self, s: int, size: int = 64) -> tuple[int, bytes, int]:
        """Receive once: (ok, data, error), whether it failed at once or on completion."""
        ov, buf = self.overlapped(), bytearray(size)
        rc, _, _ = self.ws.WSARecv(s, [WSABUF(size, buf)], 1, 0, ov, None)
        if rc == SOCKET_ERROR and self.ws.WSAGetLastError() != WSA_IO_PENDING:
            return FALSE, b"", self.ws.WSAGetLastError()
        ok, n, err = self.result(s, ov)
        return ok, bytes(buf[:n]), err

    def close(self, s: int) -> int:
        self.socks.remove(s)
        return self.ws.closesocket(s)

    def finish(self) -> None:
        """Close every socket and event, let the aborted operations end, WSACleanup."""
        for s in self.socks:
            self.ws.closesocket(s)
        for ev in self.events:
            self.ws.WSACloseEvent(ev)
        self.ws.run_for(0.01)
        assert self.ws.WSACleanup() == 0
