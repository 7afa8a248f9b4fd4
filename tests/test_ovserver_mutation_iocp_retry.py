"""ovserver: survivors of the thirty-eighth session's ``_iocp`` sample (seed
38, drawn among the mutants no earlier sample or full run had drawn) that a
behaviour tells apart.  The test's docstring names the mutant it was proven
against (the test failed on the mutant and passes on the source)."""

from __future__ import annotations

from ovserver import Server
from tests.ovserver_session import MS, Session, exact
from tests.test_ovserver_robust import AcceptPostsFail


def test_an_iocp_server_left_without_connections_keeps_its_accept_retry_on_time() -> None:
    """iocp model, ``accepts`` 1, ``accept_retry_ms`` 50.  Client A is
    accepted at 0.5 ms; the AcceptEx posted after it fails (WSASocket:
    WSAENOBUFS; failures until 30 ms), so the controller retries at 50.5 ms.
    A leaves at 20 ms: with no connection and no AcceptEx outstanding the
    server is empty, which is nothing to tell the controller while it is
    not stopping (its wake event is for a stop, a retry to arm and, when
    stopping, the last packet).  So the retry comes on time, and client B,
    connecting at 55 ms, is echoed by 60 ms.  Proven against
    ``_dispatch``'s ``self._stopping or self._drained()`` (A's last packet
    woke the controller at 20 ms, whose retry wait then began again: B was
    not echoed by 60 ms)."""
    ws = AcceptPostsFail(seed=0, config=exact(0.0))
    ws.windows = ((0.4, 30.0),)
    s = Session("iocp", ws=ws, workers=1, accepts=1, accept_retry_ms=50)
    a, b = s.client(0.5), s.client(55)
    a.send(2, b"a\n")
    a.close(20)
    b.send(56, b"b\n")
    seen: list[bytes] = []
    s.at(60, lambda: seen.append(bytes(b.data)))
    s.stop(100)

    def ready(_: Server) -> None:
        for ms, action in s._script:
            ws.call_at(int(ms * MS), lambda f: f(), action)

    stats = s.server.run(ready)
    assert ws.leaks() == [] and ws.open_handles() == []
    assert bytes(a.data) == b"a\n" and seen == [b"b\n"]
    assert (ws.failures, stats.accept_failures, stats.accepted, stats.ended) == (1, 1, 2, 1)
