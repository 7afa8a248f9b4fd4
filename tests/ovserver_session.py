"""Scripted sessions for ovserver's tests: the server on the fake, clients acting at set virtual times.

A :class:`Session` holds one :class:`fakewinsock.FakeWinsock`, one server (port 0:
the clients connect to the address the server reports) and the clients; every
action is scheduled in virtual time, and :meth:`Session.run` serves until the
stop and then checks that WSACleanup found nothing left open.  With
:func:`exact` every choice of the fake is fixed, so a session's counts are
exact numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ovserver._core
from fakewinsock import FakeConfig, FakePeer, FakeWinsock
from ovserver import Limits, Mode, Server, ServerConfig, ServerStats, create_server

MS = 1_000_000
MODELS = list(ovserver._core.MODELS)  # every model, iocp included


def exact(immediate: float = 0.0, **overrides: Any) -> FakeConfig:
    """A fake with no chance in it: every operation pends (``immediate=0.0``)
    or completes at once (1.0), no splitting, no partial receive, nothing
    behind the program's back, fixed latency; a server that spins (100,000
    Winsock calls: no scenario here needs a tenth of that) fails at once."""
    settings: dict[str, Any] = {"immediate": immediate, "split": 0.0, "partial_recv": 0.0, "background": 0.0,
                                "completion_delay": (0, 0), "latency": (10_000, 10_000), "max_calls": 100_000}
    settings.update(overrides)
    return FakeConfig(**settings)


class Session:
    """One server on one fake, with scripted clients."""

    def __init__(self, model: str = "events", mode: str = "echo", *, limits: Limits | None = None,
                 fake: FakeConfig | None = None, ws: FakeWinsock | None = None, **config: Any) -> None:
        self.ws = ws if ws is not None else FakeWinsock(seed=0, config=fake if fake is not None else exact())
        self.config = ServerConfig(port=0, model=model, mode=Mode(mode),
                                   limits=limits if limits is not None else Limits(), **config)
        self.server: Server = create_server(self.ws, self.config)
        self.clients: list[Client] = []
        self._script: list[tuple[float, Callable[[], None]]] = []

    def at(self, ms: float, action: Callable[[], None]) -> None:
        """Run ``action`` at ``ms`` milliseconds of virtual time (once the server listens)."""
        self._script.append((ms, action))

    def client(self, at_ms: float = 0.0, reads: bool = True) -> Client:
        """A client that connects at ``at_ms`` (and reads all it gets, unless ``reads`` is False)."""
        c = Client(self, at_ms, reads)
        self.clients.append(c)
        return c

    def stop(self, at_ms: float) -> None:
        """Ask the server to stop at ``at_ms``, as a simulated actor does."""
        self.at(at_ms, lambda: self.server.request_stop(signal=self.ws.signal_event))

    def run(self, stop_ms: float | None = None) -> ServerStats:
        """Serve (stopping at ``stop_ms`` if given) and return the statistics;
        nothing may be left open or in flight.  Then 1 ms passes, for the
        clients to see what the server sent last."""
        if stop_ms is not None:
            self.stop(stop_ms)

        def ready(_: Server) -> None:
            for ms, action in self._script:
                self.ws.call_at(int(ms * MS), _run_action, action)

        stats = self.server.run(ready)
        assert self.ws.leaks() == [] and self.ws.open_handles() == []
        self.ws.run_for(0.001)  # what the server sent last (a FIN, a RST) reaches the clients
        return stats


def _run_action(action: Callable[[], None]) -> None:
    action()


class Client:
    """A scripted client: a fake peer that connects to the server and reads what it gets."""

    def __init__(self, session: Session, at_ms: float, reads: bool) -> None:
        self.session = session
        self.reads = reads
        self.data = bytearray()
        self.peer: FakePeer = session.ws.peer()
        self.peer.on_change = self._changed
        session.at(at_ms, self._connect)

    def _connect(self) -> None:
        address = self.session.server.address
        assert address is not None
        self.peer.connect_nowait(*address)

    def _changed(self, peer: FakePeer) -> None:
        if self.reads and not peer.was_reset:
            self.data += peer.recv_nowait(1 << 30)

    def send(self, at_ms: float, data: bytes) -> None:
        """Send ``data`` at ``at_ms`` (unless the connection is gone by then)."""
        def go() -> None:
            if not self.peer.was_reset:
                self.peer.send_nowait(data)
        self.session.at(at_ms, go)

    def close(self, at_ms: float) -> None:
        """Close gracefully at ``at_ms`` (the server receives 0 bytes)."""
        self.session.at(at_ms, self.peer.close)

    def reset(self, at_ms: float) -> None:
        """Reset at ``at_ms`` (the server's operations fail with 10054)."""
        self.session.at(at_ms, self.peer.reset)

    @property
    def name(self) -> bytes:
        """What the server calls this client (its address)."""
        host, port = self.peer.address
        return f"{host}:{port}".encode()

    @property
    def closed_by_server(self) -> bool:
        """The server closed gracefully: every byte before its FIN was read."""
        return self.peer.at_eof and not self.peer.was_reset

    @property
    def reset_by_server(self) -> bool:
        return self.peer.was_reset
