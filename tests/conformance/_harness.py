"""Backend-neutral helpers for the conformance suite.

:class:`Harness` wraps one backend: it starts Winsock, tracks every socket,
event and peer a test makes and releases them afterwards (closing sockets,
letting the operations that closing aborted complete, running their routines),
so that test bodies stay short and the fake's leak check in the final
WSACleanup still guards every test.  Waits use real milliseconds; on the fake
they cost only virtual time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fakewinsock import WSABUF, WSAOVERLAPPED, CompletionRoutine, FakeWinsock, Peer, Winsock, sockaddr_in
from fakewinsock.constants import (
    AF_INET,
    ERROR_INVALID_HANDLE,
    FALSE,
    INVALID_HANDLE_VALUE,
    IPPROTO_TCP,
    MAKEWORD,
    RESUME_THREAD_FAILED,
    SO_UPDATE_ACCEPT_CONTEXT,
    SOCK_STREAM,
    SOCKET_ERROR,
    SOL_SOCKET,
    SOMAXCONN,
    TRUE,
    WSA_FLAG_OVERLAPPED,
    WSA_INFINITE,
    WSA_INVALID_HANDLE,
    WSA_IO_PENDING,
    WSA_WAIT_EVENT_0,
)

ADDR_SLOT = 16 + 16  # sizeof(sockaddr_in) + 16
#: 0xDEADBEEF (the last-error sentinel of Wine's tests) as WSAGetLastError reads it back: a C int.
DEADBEEF_AS_INT = 0xDEADBEEF - (1 << 32)
WAIT_MS = 5000


@dataclass
class Accepted:
    listener: int
    sock: int
    peer: Peer


@dataclass
class PostedAccept:
    """An AcceptEx posted on a fresh listener (pending, or completed at once)."""

    listener: int
    port: int
    sock: int
    ov: WSAOVERLAPPED
    out: bytearray


@dataclass
class Harness:
    ws: Winsock
    sockets: list[int] = field(default_factory=list)
    events: list[int] = field(default_factory=list)
    peers: list[Peer] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)  # completion ports, closed by finish

    @property
    def is_fake(self) -> bool:
        return self.ws.name == "fake"

    # -- lifecycle
    def start(self) -> None:
        err, _ = self.ws.WSAStartup(MAKEWORD(2, 2))
        assert err == 0

    def finish(self) -> None:
        for p in self.peers:
            try:
                p.close()
            except OSError:
                pass
        for s in self.sockets:
            self.ws.closesocket(s)
        self.settle()
        for port in self.ports:
            assert self.ws.CloseHandle(port) == TRUE
        for e in self.events:
            self.ws.WSACloseEvent(e)
        assert self.ws.WSACleanup() == 0

    def settle(self) -> None:
        """Let in-flight completions happen and run queued completion routines."""
        if self.is_fake:
            assert isinstance(self.ws, FakeWinsock)
            self.ws.run_for(1.0)
        else:
            self.ws.SleepEx(100, TRUE)
        while self.ws.SleepEx(0, TRUE) != 0:
            pass

    # -- objects
    def socket(self) -> int:
        s = self.ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
        assert s != 2**64 - 1, self.ws.WSAGetLastError()
        self.sockets.append(s)
        return s

    def close(self, s: int) -> int:
        self.sockets.remove(s)
        return self.ws.closesocket(s)

    def event(self) -> int:
        e = self.ws.WSACreateEvent()
        assert e != 0
        self.events.append(e)
        return e

    def overlapped(self, with_event: bool = True) -> WSAOVERLAPPED:
        ov = WSAOVERLAPPED()
        if with_event:
            ov.hEvent = self.event()
        return ov

    def port(self) -> int:
        """A new completion port (closed by :meth:`finish`)."""
        port = self.ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, 0)
        assert port != 0, self.ws.WSAGetLastError()
        self.ports.append(port)
        return port

    def peer(self) -> Peer:
        p = self.ws.peer()
        self.peers.append(p)
        return p

    def listener(self, backlog: int = SOMAXCONN) -> tuple[int, int]:
        """A listening socket on 127.0.0.1 and an ephemeral port: (socket, port)."""
        s = self.socket()
        assert self.ws.bind(s, sockaddr_in("127.0.0.1", 0), 16) == 0
        assert self.ws.listen(s, backlog) == 0
        rc, name = self.ws.getsockname(s)
        assert rc == 0 and name is not None
        return s, name.port

    # -- handles of the wrong kind: the kernel's type check (STATUS_OBJECT_TYPE_MISMATCH,
    # ERROR_INVALID_HANDLE; Winsock's name for it WSA_INVALID_HANDLE), the last error
    # cleared first so that each call is seen to set it.
    def assert_not_an_event(self, handle: int) -> None:
        """WSASetEvent and WSAResetEvent on ``handle`` fail: FALSE, WSA_INVALID_HANDLE."""
        for call in (self.ws.WSASetEvent, self.ws.WSAResetEvent):
            self.ws.SetLastError(0)
            assert call(handle) == FALSE
            assert self.ws.WSAGetLastError() == WSA_INVALID_HANDLE

    def assert_not_a_port(self, handle: int) -> None:
        """PostQueuedCompletionStatus and GetQueuedCompletionStatus(0 ms) on
        ``handle`` fail: FALSE (no OVERLAPPED), ERROR_INVALID_HANDLE."""
        self.ws.SetLastError(0)
        assert self.ws.PostQueuedCompletionStatus(handle, 0, 0, None) == FALSE
        assert self.ws.GetLastError() == ERROR_INVALID_HANDLE
        self.ws.SetLastError(0)
        assert self.ws.GetQueuedCompletionStatus(handle, 0)[0::3] == (FALSE, None)
        assert self.ws.GetLastError() == ERROR_INVALID_HANDLE

    def assert_not_a_thread(self, handle: int) -> None:
        """GetExitCodeThread and ResumeThread on ``handle`` fail: (FALSE, 0) and
        RESUME_THREAD_FAILED, ERROR_INVALID_HANDLE."""
        self.ws.SetLastError(0)
        assert self.ws.GetExitCodeThread(handle) == (FALSE, 0)
        assert self.ws.GetLastError() == ERROR_INVALID_HANDLE
        self.ws.SetLastError(0)
        assert self.ws.ResumeThread(handle) == RESUME_THREAD_FAILED
        assert self.ws.GetLastError() == ERROR_INVALID_HANDLE

    # -- waits
    def wait(self, ev: int, ms: int = WAIT_MS, alertable: bool = False) -> int:
        return self.ws.WSAWaitForMultipleEvents(1, [ev], FALSE, ms, TRUE if alertable else FALSE)

    def is_signalled(self, ev: int) -> bool:
        return self.wait(ev, 0) == WSA_WAIT_EVENT_0

    def complete(self, s: int, ov: WSAOVERLAPPED, ms: int = WAIT_MS) -> tuple[int, int, int]:
        """Wait for the event of ``ov``, then WSAGetOverlappedResult: (ok, bytes, last error)."""
        assert self.wait(ov.hEvent, ms) == WSA_WAIT_EVENT_0, "operation did not complete in time"
        ok, n, _ = self.ws.WSAGetOverlappedResult(s, ov, FALSE)
        return ok, n, (0 if ok else self.ws.WSAGetLastError())

    # -- common sequences
    def post_accept(self, rdl: int = 0, on: tuple[int, int] | None = None) -> PostedAccept:
        """AcceptEx posted into a fresh socket, with an output buffer for ``rdl``
        bytes of data and both address slots, on the listener ``on`` ((socket,
        port), as :meth:`listener` returns) or on a fresh one."""
        lst, port = on if on is not None else self.listener()
        acc = self.socket()
        ov = self.overlapped()
        out = bytearray(rdl + 2 * ADDR_SLOT)
        ok, _ = self.ws.AcceptEx(lst, acc, out, rdl, ADDR_SLOT, ADDR_SLOT, ov)
        assert ok or self.ws.WSAGetLastError() == WSA_IO_PENDING
        return PostedAccept(lst, port, acc, ov, out)

    def accept(self, rdl: int = 0, data: bytes = b"", on: tuple[int, int] | None = None,
               peer: Peer | None = None, ms: int = WAIT_MS) -> Accepted:
        """A connected server socket (AcceptEx + SO_UPDATE_ACCEPT_CONTEXT) and its peer;
        ``data`` is sent by the peer right after connecting.  ``on``: the listener
        (a fresh one by default); ``peer``: a peer already connecting to it (a new
        one, connected here, by default)."""
        posted = self.post_accept(rdl, on)
        p = peer
        if p is None:
            p = self.peer()
            p.connect("127.0.0.1", posted.port)
        if data:
            p.send(data)
        ok, _, err = self.complete(posted.listener, posted.ov, ms)
        assert ok, err
        assert self.ws.setsockopt(posted.sock, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, posted.listener, 8) == 0
        return Accepted(posted.listener, posted.sock, p)

    def recv(self, s: int, ov: WSAOVERLAPPED, size: int = 4096,
             routine: CompletionRoutine | None = None) -> tuple[int, int, bytearray]:
        """Post WSARecv: (rc, immediate bytes, buffer)."""
        buf = bytearray(size)
        rc, n, _ = self.ws.WSARecv(s, [WSABUF(size, buf)], 1, 0, ov, routine)
        if rc == SOCKET_ERROR:
            return rc, 0, buf
        return rc, n, buf

    def recv_once(self, s: int, size: int = 4096, ms: int = WAIT_MS) -> tuple[int, bytes, int]:
        """Receive once into a fresh OVERLAPPED: (ok, data, last error), whether
        it failed at once or on completion."""
        ov = self.overlapped()
        rc, _, buf = self.recv(s, ov, size)
        if rc == SOCKET_ERROR and self.ws.WSAGetLastError() != WSA_IO_PENDING:
            return FALSE, b"", self.ws.WSAGetLastError()
        ok, n, err = self.complete(s, ov, ms)
        return ok, bytes(buf[:n]), err

    def have_data_arrive(self, a: Accepted) -> None:
        """The peer sends b"ready", and a zero-length receive waits until it is
        there: a receive posted next can complete inside its call."""
        a.peer.send(b"ready")
        probe = self.overlapped()  # a zero-length receive completes once data is there
        rc, _, _ = self.ws.WSARecv(a.sock, [WSABUF(0, bytearray(0))], 1, 0, probe, None)
        if rc == SOCKET_ERROR:
            assert self.complete(a.sock, probe) == (TRUE, 0, 0)

    def recv_all(self, s: int, total: int, ms: int = WAIT_MS) -> bytes:
        """Receive until ``total`` bytes (or EOF), handling immediate and pending."""
        got = bytearray()
        ov = self.overlapped()
        while len(got) < total:
            self.ws.WSAResetEvent(ov.hEvent)
            rc, _, buf = self.recv(s, ov)
            if rc == SOCKET_ERROR:
                assert self.ws.WSAGetLastError() == WSA_IO_PENDING
            ok, n, err = self.complete(s, ov, ms)
            assert ok, err
            if n == 0:
                break
            got += buf[:n]
        return bytes(got)

    def recv_all_on_port(self, s: int, port: int, total: int, ms: int = WAIT_MS) -> bytes:
        """:meth:`recv_all` for a socket associated with ``port``: each receive,
        completed at once or not, queues a packet, taken (from ``port``) before
        the next receive reuses the OVERLAPPED."""
        got = bytearray()
        ov = self.overlapped()
        while len(got) < total:
            rc, _, buf = self.recv(s, ov)
            if rc == SOCKET_ERROR:
                assert self.ws.WSAGetLastError() == WSA_IO_PENDING
            ok, n, _, done = self.ws.GetQueuedCompletionStatus(port, ms)
            assert ok and done is ov, self.ws.GetLastError()
            if n == 0:
                break
            got += buf[:n]
        return bytes(got)

    def send(self, s: int, data: bytes, ov: WSAOVERLAPPED | None = None) -> tuple[int, int]:
        """Post WSASend and wait for it: (ok, bytes)."""
        ov = ov or self.overlapped()
        buf = bytearray(data)
        rc, _, _ = self.ws.WSASend(s, [WSABUF(len(buf), buf)], 1, 0, ov, None)
        if rc == SOCKET_ERROR:
            assert self.ws.WSAGetLastError() == WSA_IO_PENDING, self.ws.WSAGetLastError()
        ok, n, _ = self.complete(s, ov)
        return ok, n


def connected_socket(ws: Winsock, port: int = 5000) -> tuple[int, Peer]:
    """A server socket connected to a new peer of ``ws``, for a test that drives
    a backend without a :class:`Harness` (it owns start-up and clean-up):
    WSAStartup, a listener on 127.0.0.1:``port``, AcceptEx (no receive), the
    peer's connect, SO_UPDATE_ACCEPT_CONTEXT; the listener and the accept's
    event are closed again.  Returns (the socket, its peer)."""
    assert ws.WSAStartup(MAKEWORD(2, 2))[0] == 0
    lst = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
    assert ws.bind(lst, sockaddr_in("127.0.0.1", port), 16) == 0
    assert ws.listen(lst, SOMAXCONN) == 0
    acc = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
    ov = WSAOVERLAPPED()
    ov.hEvent = ws.WSACreateEvent()
    ok, _ = ws.AcceptEx(lst, acc, bytearray(64), 0, ADDR_SLOT, ADDR_SLOT, ov)
    assert ok or ws.WSAGetLastError() == WSA_IO_PENDING
    peer = ws.peer()
    peer.connect("127.0.0.1", port)
    assert ws.WSAWaitForMultipleEvents(1, [ov.hEvent], FALSE, WSA_INFINITE, FALSE) == WSA_WAIT_EVENT_0
    assert ws.WSAGetOverlappedResult(lst, ov, FALSE)[0] == TRUE
    assert ws.setsockopt(acc, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, lst, 8) == 0
    ws.WSACloseEvent(ov.hEvent)
    ws.closesocket(lst)
    return acc, peer
