"""A user's own completion-port server: a pool of worker threads echoes lines.

Written only against :class:`fakewinsock.Winsock`, like ``my_server.py``, so it
runs on the fake in tests (``test_pool_server.py``) and on Windows with
``get_backend("real")``.  The pattern of most Windows servers:

* one completion port; the listening socket and every accepted socket are
  associated with it (the key says which socket a packet is about);
* ``workers`` threads loop on GetQueuedCompletionStatus and handle whatever
  completed: an AcceptEx (the next one is posted), a receive (its whole lines
  are sent back), a send (the next receive is posted);
* one operation in flight per connection (receive, then send, then receive...),
  so a connection's state is touched only by the worker holding its packet;
  the table of connections is shared, and one critical section guards it and
  every post and close, so a socket is never closed while another thread
  posts on it;
* ``serve()`` (the main thread) starts the workers and waits for the stop
  request; then it closes the listener and every connection, waits until the
  workers have dequeued every aborted operation (``drained``), posts one stop
  packet per worker, waits for them, and cleans up.
"""

from __future__ import annotations

from collections.abc import Callable

from fakewinsock import CRITICAL_SECTION, WSABUF, WSAOVERLAPPED, Winsock, sockaddr_in
from fakewinsock.constants import (
    AF_INET,
    INFINITE,
    INVALID_HANDLE_VALUE,
    IPPROTO_TCP,
    MAKEWORD,
    SO_UPDATE_ACCEPT_CONTEXT,
    SOCK_STREAM,
    SOCKET_ERROR,
    SOL_SOCKET,
    SOMAXCONN,
    TRUE,
    WAIT_OBJECT_0,
    WSA_FLAG_OVERLAPPED,
    WSA_IO_PENDING,
)

LISTENER, STOP, RETRY = 1, 2, 3  # completion keys; an accepted socket's key is its handle (a multiple of 4)
ADDR = 16 + 16  # AcceptEx: sizeof(sockaddr_in) + 16 per address


class Conn:
    def __init__(self, sock: int) -> None:
        self.sock, self.ov, self.buf = sock, WSAOVERLAPPED(), bytearray(4096)
        self.receiving, self.partial, self.out = True, b"", bytearray()


class PoolServer:
    def __init__(self, ws: Winsock, address: tuple[str, int], workers: int = 2) -> None:
        self.ws, self.address, self.workers = ws, address, workers
        self.conns: dict[int, Conn] = {}
        self.lock = CRITICAL_SECTION()
        self.stopping = False
        self.stop_asked = False  # request_stop came (perhaps before serve() made its stop event)
        self.stop_event = 0  # made by serve(); 0 until then
        self.accept_ov = WSAOVERLAPPED()
        self.accept_sock = 0  # the socket AcceptEx is posted into; 0 when none is posted

    # -- the main thread
    def serve(self) -> None:
        ws = self.ws
        ws.WSAStartup(MAKEWORD(2, 2))
        self.stop_event, self.drained = ws.WSACreateEvent(), ws.WSACreateEvent()
        if self.stop_asked:  # a stop request came before the event was there to signal
            ws.WSASetEvent(self.stop_event)
        ws.InitializeCriticalSection(self.lock)
        self.port = ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, 0)
        self.listener = self.socket()
        if ws.bind(self.listener, sockaddr_in(*self.address), 16) or ws.listen(self.listener, SOMAXCONN):
            raise OSError(f"cannot listen on {self.address}: error {ws.WSAGetLastError()}")
        ws.CreateIoCompletionPort(self.listener, self.port, LISTENER, 0)
        ws.EnterCriticalSection(self.lock)
        self.post_accept()
        ws.LeaveCriticalSection(self.lock)
        threads = [ws.CreateThread(None, 0, self.worker, i, 0).hThread for i in range(self.workers)]
        ws.WaitForSingleObject(self.stop_event, INFINITE)  # until request_stop
        ws.EnterCriticalSection(self.lock)
        self.stopping = True
        ws.closesocket(self.listener)  # the pending AcceptEx is aborted: a packet for a worker
        for conn in self.conns.values():
            # Cancel its one operation first: on Windows, closing with a receive
            # outstanding resets the connection (the client loses what it has
            # not read); cancelled, it completes with 995 and the close is a FIN.
            ws.CancelIoEx(conn.sock, None)
            ws.closesocket(conn.sock)
        self.check_drained()
        ws.LeaveCriticalSection(self.lock)
        ws.WaitForSingleObject(self.drained, INFINITE)
        for _ in threads:
            ws.PostQueuedCompletionStatus(self.port, 0, STOP, None)
        assert ws.WaitForMultipleObjects(len(threads), threads, TRUE, INFINITE) == WAIT_OBJECT_0
        for h in threads:
            ws.CloseHandle(h)
        ws.CloseHandle(self.port)
        ws.DeleteCriticalSection(self.lock)
        ws.WSACloseEvent(self.stop_event)
        ws.WSACloseEvent(self.drained)
        ws.WSACleanup()

    def request_stop(self, signal: Callable[[int], object] | None = None) -> None:
        """From any thread (or, on the fake, a simulated actor: ``signal=ws.signal_event``), at any time: one
        that comes before serve() made its stop event is seen by serve() once it has (the flag is set before
        the event is looked at here, and the event made before the flag is looked at there, so one of the two
        sees the other)."""
        self.stop_asked = True
        if self.stop_event:
            (signal or self.ws.WSASetEvent)(self.stop_event)

    # -- the workers
    def worker(self, index: int) -> int:
        ws = self.ws
        while True:
            ok, nbytes, key, ov = ws.GetQueuedCompletionStatus(self.port, INFINITE)
            if key == STOP:
                return 0
            ws.EnterCriticalSection(self.lock)
            if key == LISTENER:
                self.accepted(ok == TRUE)
            elif key == RETRY:  # an AcceptEx that failed at once (WSAENOBUFS...): try again
                if not self.stopping and not self.accept_sock:
                    self.post_accept()
            else:
                self.completed(self.conns[key], ok == TRUE, nbytes)
            self.check_drained()
            ws.LeaveCriticalSection(self.lock)

    def accepted(self, ok: bool) -> None:  # (the lock is held from here down)
        ws, sock = self.ws, self.accept_sock
        self.accept_sock = 0
        if not ok or self.stopping:
            ws.closesocket(sock)
        else:
            ws.setsockopt(sock, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, self.listener, 8)
            ws.CreateIoCompletionPort(sock, self.port, sock, 0)
            self.conns[sock] = conn = Conn(sock)
            self.post(conn)
        if not self.stopping:
            self.post_accept()

    def completed(self, conn: Conn, ok: bool, nbytes: int) -> None:
        if not ok or self.stopping or (conn.receiving and nbytes == 0):  # failed, stopped or EOF
            self.drop(conn)
            return
        if conn.receiving:
            data = conn.partial + bytes(conn.buf[:nbytes])
            end = data.rfind(b"\n") + 1  # whole lines go back; a partial one waits for the rest
            conn.out, conn.partial = bytearray(data[:end]), data[end:]
            conn.receiving = not conn.out
        else:
            conn.receiving = True
        self.post(conn)

    def post(self, conn: Conn) -> None:
        buf = conn.buf if conn.receiving else conn.out
        call = self.ws.WSARecv if conn.receiving else self.ws.WSASend
        if call(conn.sock, [WSABUF(len(buf), buf)], 1, 0, conn.ov, None)[0] == SOCKET_ERROR \
                and self.ws.WSAGetLastError() != WSA_IO_PENDING:
            self.drop(conn)  # failed at once: no packet will come

    def drop(self, conn: Conn) -> None:
        if not self.stopping:
            self.ws.closesocket(conn.sock)  # (when stopping, serve() closed it)
        del self.conns[conn.sock]

    def post_accept(self) -> None:
        self.accept_sock = self.socket()
        ok, _ = self.ws.AcceptEx(self.listener, self.accept_sock, bytearray(2 * ADDR), 0, ADDR, ADDR,
                                 self.accept_ov)
        if not ok and self.ws.WSAGetLastError() != WSA_IO_PENDING:  # no packet will come
            self.ws.closesocket(self.accept_sock)
            self.accept_sock = 0
            self.ws.PostQueuedCompletionStatus(self.port, 0, RETRY, None)

    def check_drained(self) -> None:
        if self.stopping and not self.conns and not self.accept_sock:
            self.ws.WSASetEvent(self.drained)

    def socket(self) -> int:
        return self.ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)


