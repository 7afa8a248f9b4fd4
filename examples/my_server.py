"""A user's own overlapped-IO server: every line comes back in capitals.

Written only against :class:`fakewinsock.Winsock` (Microsoft's calls, names
and error codes), so it runs on the fake in tests and on real Windows with
``get_backend("real")``.  Completion routines on one thread: AcceptEx is
notified through the *wake* event (which also carries stop requests); each
client has one WSARecv and at most one WSASend in flight, each with its own
OVERLAPPED.  Lines are framed across receives; a trailing partial line at EOF
is dropped.  A send still in flight when a client is closed is cancelled
first (CancelIoEx): Wine keeps such a send to a client that never reads
pending after closesocket, so the stop would wait for that client.  So is a
receive still in flight: on Windows, closing with a receive outstanding
resets the connection, and the client loses the replies it has not read.

On Windows (or Windows Python under Wine): ``python my_server.py [PORT]``
prints where it listens; Ctrl+C stops it.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fakewinsock import WSABUF, WSAOVERLAPPED, Winsock, sockaddr_in
from fakewinsock.constants import (
    AF_INET,
    FALSE,
    INVALID_SOCKET,
    IPPROTO_TCP,
    MAKEWORD,
    SO_UPDATE_ACCEPT_CONTEXT,
    SOCK_STREAM,
    SOL_SOCKET,
    SOMAXCONN,
    STATUS_PENDING,
    TRUE,
    WSA_FLAG_OVERLAPPED,
    WSA_INFINITE,
    WSA_IO_PENDING,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_TIMEOUT,
)

ADDR = ctypes.sizeof(sockaddr_in("0.0.0.0", 0)) + 16  # an AcceptEx address slot


class Op(WSAOVERLAPPED):
    client: Client


class Client:
    def __init__(self, sock: int) -> None:
        self.sock = sock
        self.buf = bytearray(4096)
        self.recv_op, self.send_op = Op(), Op()
        self.recv_op.client = self.send_op.client = self
        self.partial = b""  # the start of a line whose newline has not arrived
        self.out = b""  # replies waiting for the send in flight
        self.sending = b""  # the bytes of the send in flight (kept alive until it completes)
        self.receiving = self.eof = self.closed = False


class ShoutServer:
    def __init__(self, ws: Winsock, address: tuple[str, int]) -> None:
        self.ws, self.address = ws, address
        # A dict, not a set: a set of objects iterates in the order of their addresses, which differ from
        # run to run, so the order of closing at a stop (and with it the fake's schedule draws) would too,
        # and Hypothesis could not replay a failing example (FlakyStrategyDefinition).
        self.clients: dict[Client, None] = {}
        self.accept_op = WSAOVERLAPPED()
        self.accept_buf = bytearray(2 * ADDR)
        self.accept_sock = INVALID_SOCKET
        self.accepting = self.stopping = self.closed = False
        self.on_listen: Callable[[], None] | None = None  # called once it listens

    def request_stop(self, signal: Callable[[int], object] | None = None) -> None:
        """Stop serving: from another thread (``ws.WSASetEvent``, the default) or,
        on the fake, from a simulated actor (``signal=ws.signal_event``)."""
        self.stopping = True
        if self.accept_op.hEvent:  # serve() has started
            (signal or self.ws.WSASetEvent)(self.accept_op.hEvent)

    def serve(self) -> None:
        ws = self.ws
        if ws.WSAStartup(MAKEWORD(2, 2)).error:
            raise OSError("WSAStartup failed")
        self.accept_op.hEvent = ws.WSACreateEvent()
        self.listener = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
        addr = sockaddr_in(*self.address)
        if ws.bind(self.listener, addr, ctypes.sizeof(addr)) or ws.listen(self.listener, SOMAXCONN):
            error = ws.WSAGetLastError()
            ws.closesocket(self.listener)
            ws.WSACloseEvent(self.accept_op.hEvent)
            ws.WSACleanup()
            raise OSError(f"cannot listen on {self.address}: error {error}")
        rc, name = ws.getsockname(self.listener)
        if rc == 0 and name is not None:
            self.address = (self.address[0], name.port)  # the port the system picked for 0
        if self.on_listen is not None:
            self.on_listen()
        retry = self.post_accept()
        while not (self.closed and not self.clients and not self.accepting):
            if self.stopping and not self.closed:
                self.close_all()  # pending operations complete with errors; the loop reaps them
            rc = ws.WSAWaitForMultipleEvents(1, [self.accept_op.hEvent], FALSE, 50 if retry else WSA_INFINITE, TRUE)
            if rc == WSA_WAIT_EVENT_0:
                ws.WSAResetEvent(self.accept_op.hEvent)
                if self.accepting and self.accept_op.Internal != STATUS_PENDING:
                    retry = self.accepted()
            elif rc == WSA_WAIT_TIMEOUT and retry:  # try AcceptEx again
                retry = self.post_accept()
        ws.WSACloseEvent(self.accept_op.hEvent)
        ws.WSACleanup()

    # -- accepting
    def post_accept(self) -> bool:
        """Post AcceptEx; True if that failed and must be retried later."""
        ws = self.ws
        if self.closed:
            return False
        self.accept_sock = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
        ok, _ = ws.AcceptEx(self.listener, self.accept_sock, self.accept_buf, 0, ADDR, ADDR, self.accept_op)
        if ok or ws.WSAGetLastError() == WSA_IO_PENDING:
            self.accepting = True  # TRUE or pending: the wake event is signalled either way
            return False
        ws.closesocket(self.accept_sock)  # e.g. WSAENOBUFS
        return True

    def accepted(self) -> bool:
        ws, s = self.ws, self.accept_sock
        self.accepting = False
        if self.closed:  # cancelled (995) by close_all, which closed both sockets
            return False
        ok, _, _ = ws.WSAGetOverlappedResult(self.listener, self.accept_op, FALSE)
        if not ok:
            ws.closesocket(s)
            return self.post_accept()
        ws.setsockopt(s, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, self.listener, 8)
        c = Client(s)
        self.clients[c] = None
        self.post_recv(c)
        return self.post_accept()

    # -- receiving and sending
    def post_recv(self, c: Client) -> None:
        rc, _, _ = self.ws.WSARecv(c.sock, [WSABUF(len(c.buf), c.buf)], 1, 0, c.recv_op, self.on_recv)
        c.receiving = rc == 0 or self.ws.WSAGetLastError() == WSA_IO_PENDING  # the routine runs either way
        if not c.receiving:
            self.close(c)

    def on_recv(self, error: int, nbytes: int, op: WSAOVERLAPPED, flags: int) -> None:
        assert isinstance(op, Op)
        self.stop_if_asked()
        c = op.client
        c.receiving = False
        if c.closed or error:  # closed by us, or 10054: the client was forced out
            self.close(c)
        elif nbytes == 0:  # the client left gracefully: send what is left, then close
            c.eof = True
            self.post_send(c)
        else:
            *lines, c.partial = (c.partial + bytes(c.buf[:nbytes])).split(b"\n")
            c.out += b"".join(line.upper() + b"\n" for line in lines)
            self.post_send(c)
            self.post_recv(c)

    def post_send(self, c: Client) -> None:
        if c.sending or c.closed:
            return
        if not c.out:
            if c.eof:
                self.close(c)
            return
        c.sending, c.out = c.out, b""
        rc, _, _ = self.ws.WSASend(c.sock, [WSABUF(len(c.sending), c.sending)], 1, 0, c.send_op, self.on_sent)
        if rc != 0 and self.ws.WSAGetLastError() != WSA_IO_PENDING:
            c.sending = b""
            self.close(c)

    def on_sent(self, error: int, nbytes: int, op: WSAOVERLAPPED, flags: int) -> None:
        assert isinstance(op, Op)
        self.stop_if_asked()
        c = op.client
        c.sending = b""
        if c.closed or error:
            self.close(c)
        else:
            self.post_send(c)

    # -- closing
    def stop_if_asked(self) -> None:
        """Begin a requested stop from inside a completion routine.  One
        alertable wait runs every routine queued, also those queued while it
        runs them (Windows delivers user APCs until the queue is empty), so
        clients that keep the server busy can keep the wait from returning
        for long: the loop around it would not see the stop in time."""
        if self.stopping and not self.closed:
            self.close_all()

    def close(self, c: Client) -> None:
        """Close the socket now; forget the client once no operation of it is in flight."""
        if not c.closed:
            c.closed = True
            if c.sending or c.receiving:
                self.ws.CancelIoEx(c.sock, None)  # on_sent / on_recv run with 995
            self.ws.closesocket(c.sock)
        if not c.receiving and not c.sending:
            self.clients.pop(c, None)

    def close_all(self) -> None:
        self.closed = True
        self.ws.closesocket(self.listener)  # a pending AcceptEx completes with 995
        if self.accepting:
            self.ws.closesocket(self.accept_sock)
        for c in list(self.clients):
            self.close(c)


@contextmanager
def ctrl_c_stops(stop: Callable[[], None]) -> Iterator[None]:
    """Ctrl+C or Ctrl+Break calls ``stop()``.  The server thread sits in an
    alertable wait, where Python's KeyboardInterrupt never arrives, so on
    Windows a console control handler (run by Windows on a thread of its own)
    asks for the stop instead; under Wine, SIGINT arrives as Ctrl+C."""
    if sys.platform != "win32":
        import signal

        previous = signal.signal(signal.SIGINT, lambda signum, frame: stop())
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
        return
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    def on_ctrl(ctrl_type: int) -> int:
        stop()
        return 1  # handled: Windows does not end the process

    handler = ctypes.WINFUNCTYPE(wintypes.BOOL, wintypes.DWORD)(on_ctrl)  # kept alive until removed
    kernel32.SetConsoleCtrlHandler(handler, True)
    try:
        yield
    finally:
        kernel32.SetConsoleCtrlHandler(handler, False)


if __name__ == "__main__":  # on Windows: python my_server.py [PORT], then telnet 127.0.0.1 PORT
    from fakewinsock import get_backend

    server = ShoutServer(get_backend("real"), ("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 12345))
    server.on_listen = lambda: print("my_server: shouting on {}:{}; Ctrl+C stops".format(*server.address), flush=True)
    with ctrl_c_stops(server.request_stop):
        server.serve()
    print("my_server: stopped", flush=True)
