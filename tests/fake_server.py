"""A server socket on the fake, driven by hand, for the fake's own tests.

:func:`quiet` makes a fake with no chance in it (nothing behind the program's
back, every operation pends, a fixed latency), so times and orders are exact;
:class:`Server` is the conformance suite's harness with one listener on port 0:
the few sequences those tests repeat (accept with AcceptEx, receive, wait), and
:meth:`Server.finish`, which closes everything and ends with the final
WSACleanup, whose leak check still guards every test.
"""

from __future__ import annotations

from fakewinsock import WSAOVERLAPPED, FakeConfig, FakePeer, FakeWinsock
from fakewinsock.constants import SOCKET_ERROR, SOMAXCONN, WSA_INFINITE, WSA_IO_PENDING
from tests.conformance._harness import Harness

LATENCY = 30_000  # ns, one way


def quiet(**overrides: object) -> FakeConfig:
    """No chance: nothing behind the program's back, every operation pends, no
    split or partial receive, no completion delay, a fixed latency."""
    settings: dict[str, object] = {"immediate": 0.0, "background": 0.0, "split": 0.0, "partial_recv": 0.0,
                                   "completion_delay": (0, 0), "latency": (LATENCY, LATENCY)}
    settings.update(overrides)
    return FakeConfig(**settings)  # type: ignore[arg-type]


class Server:
    """A listening socket on a started fake, with helpers to accept and receive:
    the conformance suite's :class:`~tests.conformance._harness.Harness` (``h``)
    with one listener, and waits that are infinite, so that a wait nothing can
    end is the fake's DeadlockError naming it."""

    def __init__(self, ws: FakeWinsock, backlog: int = SOMAXCONN) -> None:
        self.ws = ws
        self.h = Harness(ws)
        self.h.start()
        self.lst, self.port = self.h.listener(backlog)

    def socket(self) -> int:
        return self.h.socket()

    def overlapped(self) -> WSAOVERLAPPED:
        return self.h.overlapped()

    def wait(self, ov: WSAOVERLAPPED, ms: int = WSA_INFINITE) -> int:
        return self.h.wait(ov.hEvent, ms)

    def post_accept(self) -> tuple[int, WSAOVERLAPPED]:
        posted = self.h.post_accept(on=(self.lst, self.port))
        return posted.sock, posted.ov

    def accept(self, peer: FakePeer | None = None) -> tuple[int, FakePeer]:
        """A connected socket and its peer (a new one unless given, already connecting)."""
        accepted = self.h.accept(on=(self.lst, self.port), peer=peer, ms=WSA_INFINITE)
        assert isinstance(accepted.peer, FakePeer)
        return accepted.sock, accepted.peer

    def post_recv(self, s: int, size: int = 64) -> tuple[WSAOVERLAPPED, bytearray]:
        """A WSARecv that pends."""
        ov = self.overlapped()
        rc, _, buf = self.h.recv(s, ov, size)
        assert rc == SOCKET_ERROR and self.ws.WSAGetLastError() == WSA_IO_PENDING
        return ov, buf

    def result(self, s: int, ov: WSAOVERLAPPED) -> tuple[int, int, int]:
        """(ok, bytes, error) once ``ov`` has completed."""
        return self.h.complete(s, ov, WSA_INFINITE)

    def recv(self, s: int, size: int = 64) -> tuple[int, bytes, int]:
        """Receive once: (ok, data, error), whether it failed at once or on completion."""
        return self.h.recv_once(s, size, WSA_INFINITE)

    def close(self, s: int) -> int:
        return self.h.close(s)

    def finish(self) -> None:
        """Close every peer, socket and event, let the aborted operations end, WSACleanup."""
        self.h.finish()
