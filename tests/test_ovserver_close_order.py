"""ovserver's close order: cancel, reap, then close (``Server._close``), and
the send cancelled alone (an abortive close only when the cancel found it).

On Windows closesocket with a WSARecv outstanding resets the connection
(docs/semantics-findings.md section 26); a receive that was cancelled but
whose completion has not been reaped yet does not count there (section 28:
libuv's test of it runs on Windows).  :class:`CancelledReceiveResets` is a
fake on which it does count, a stricter stack than Windows: a server that
closes before its cancelled receive has completed resets its clients here,
and they lose the replies they had not read; ovserver's order (cancel, reap,
close) holds even there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from fakewinsock import WSABUF, WSAOVERLAPPED, CompletionRoutine, FakeWinsock
from fakewinsock._sockets import Socket
from fakewinsock._types import IoResult
from fakewinsock.constants import ERROR_NOT_FOUND, STATUS_CANCELLED
from ovserver import Server, ServerStats
from ovserver._core import _Conn, _Io
from tests.ovserver_session import MODELS, MS, Client, Session, exact


class CancelledReceiveResets(FakeWinsock):
    """The fake, with the stricter reading that Windows does not follow
    (section 28): closesocket on a socket whose receive was cancelled but has
    not completed yet (its completion not yet written, queued or dequeued)
    resets the connection, as if the receive were still outstanding."""

    early_closes = 0

    def closesocket(self, s: int) -> int:
        sock = self._kernel.objects.get(s)
        if isinstance(sock, Socket) and any(op.abort_status == STATUS_CANCELLED for op in sock.recv_ops):
            self.early_closes += 1
            sock.linger = (1, 0)  # what the close then does: RST
        return super().closesocket(s)


def _owed_replies(model: str, *, immediate: float, **config: Any) -> tuple[Session, list[bytes]]:
    """Three clients that each send two lines and read nothing until the
    server has closed them (the replies wait in their receive buffers)."""
    s = Session(model, ws=CancelledReceiveResets(seed=0, config=exact(immediate)), **config)
    clients = [s.client(0.1 * k, reads=False) for k in range(3)]
    lines = []
    for k, c in enumerate(clients):
        line = b"client %d line %%d\n" % k
        c.send(1, line % 1 + line % 2)
        lines.append(line % 1 + line % 2)
    return s, lines


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("immediate", [0.0, 1.0])
@pytest.mark.parametrize("how", ["stop", "idle"])
def test_a_graceful_close_waits_for_the_cancelled_receive(model: str, immediate: float, how: str) -> None:
    """A stop, or the idle time-out, closes clients that have replies unread
    and their next receive posted: the server cancels the receive and closes
    the socket only once the receive's completion has been reaped, so even
    where a cancelled receive not yet completed resets, every client gets all
    its replies and then a FIN.  (Cancelling and closing at once, the order
    before, reset all three here: they read nothing.)"""
    if how == "idle":
        s, lines = _owed_replies(model, immediate=immediate, idle_timeout_ms=20)
        stats = s.run(stop_ms=100)
        assert stats.timed_out == 3
    else:
        s, lines = _owed_replies(model, immediate=immediate)
        stats = s.run(stop_ms=5)
        assert stats.closed_at_stop == 3
    assert isinstance(s.ws, CancelledReceiveResets) and s.ws.early_closes == 0
    assert stats.cancelled == stats.abandoned == 0
    for c, want in zip(s.clients, lines, strict=True):
        assert not c.peer.was_reset
        assert c.peer.recv_nowait(1 << 20) == want and c.peer.at_eof


class _Recorder:
    """What each close of the server found: its send busy and completed."""

    def __init__(self, server: Server) -> None:
        self.seen: list[tuple[bool, bool]] = []
        close = server._close

        def recording(conn: _Conn, abort: bool = False) -> None:
            self.seen.append((conn.send.busy, conn.send.completed()))
            close(conn, abort)

        server._close = recording  # type: ignore[method-assign]


class StopAfterTheEcho(FakeWinsock):
    """The stop is requested right after the first WSASend that completes at
    once: its completion is then still to be reaped when the server closes."""

    server: Server | None = None

    def WSASend(self, s: int, lpBuffers: Sequence[WSABUF], dwBufferCount: int, dwFlags: int,
                lpOverlapped: WSAOVERLAPPED, lpCompletionRoutine: CompletionRoutine | None) -> IoResult:
        result = super().WSASend(s, lpBuffers, dwBufferCount, dwFlags, lpOverlapped, lpCompletionRoutine)
        if result[0] == 0 and self.server is not None:
            self.server.request_stop(signal=self.signal_event)
            self.server = None
        return result


def _stop_after_the_echo(model: str, sent: bytes, **config: Any) -> tuple[ServerStats, Client]:
    """One client sends ``sent`` and reads only after the server has closed
    it; the stop comes right after the first send completes at once, so the
    close finds that send completed and not reaped."""
    ws = StopAfterTheEcho(seed=0, config=exact(1.0))
    s = Session(model, ws=ws, workers=1, **config)
    ws.server = s.server
    recorder = _Recorder(s.server)
    c = s.client(0, reads=False)
    c.send(1, sent)
    stats = s.run(stop_ms=50)
    assert recorder.seen == [(True, True)]  # the close found the send completed, not reaped
    assert stats.closed_at_stop == 1
    return stats, c


@pytest.mark.parametrize("model", ["routines", "iocp"])
def test_a_send_completed_but_not_reaped_at_a_close_reaches_the_client_whole(model: str) -> None:
    """The stop comes while the echo's send has completed (every byte went
    out) but is not reaped: CancelIoEx of that send finds nothing, so the
    close is graceful and the client, which reads only after the close,
    gets the whole echo and then a FIN.  (The close used to be abortive
    whenever the send was busy: the reset made the client lose the echo.)
    The events model reaps a send completed at once in the same wake-up as
    the receive that posted it; its case (a group thread that dies) is
    tests/test_ovserver_lifecycle.py's failed-wait test."""
    stats, c = _stop_after_the_echo(model, b"the echo\n")
    assert stats.cancelled == 0
    assert not c.peer.was_reset
    assert c.peer.recv_nowait(1 << 20) == b"the echo\n" and c.peer.at_eof


class ReceiveCancelNotFound(FakeWinsock):
    """A stack whose CancelIoEx on a receive answers ERROR_NOT_FOUND ("it has
    completed") while the receive stays pending: the server then waits for a
    completion that does not come."""

    def CancelIoEx(self, hFile: int, lpOverlapped: WSAOVERLAPPED | None) -> int:
        if isinstance(lpOverlapped, _Io) and lpOverlapped.kind == "recv":
            self.SetLastError(ERROR_NOT_FOUND)
            return 0
        return super().CancelIoEx(hFile, lpOverlapped)


@pytest.mark.parametrize("model", MODELS)
def test_a_socket_still_open_when_the_stop_gives_up_is_closed_then(model: str) -> None:
    """The stop closes a client gracefully and waits for its cancelled
    receive, which never completes: after ``stop_grace_ms`` the server gives
    up on it (counted in ``abandoned``) and closes the socket it kept open,
    itself, before WSACleanup (which would otherwise find it open)."""
    ws = ReceiveCancelNotFound(seed=0, config=exact(0.0, strict_cleanup=False))
    s = Session(model, ws=ws, stop_grace_ms=30)
    closed: list[int] = []
    close = s.server._close

    def recording(conn: _Conn, abort: bool = False) -> None:
        closed.append(conn.sock)
        close(conn, abort)

    s.server._close = recording  # type: ignore[method-assign]
    c = s.client(0)
    c.send(1, b"hello\n")
    s.stop(5)

    def ready(_: Server) -> None:
        for ms, action in s._script:
            ws.call_at(int(ms * MS), _call, action)

    stats = s.server.run(ready)
    assert stats.closed_at_stop == 1 and stats.abandoned == 1
    assert len(closed) == 1
    calls = [r.call for r in ws.trace if r.call in ("closesocket", "WSACleanup") and r.what == "call"
             and (r.call == "WSACleanup" or r.handle == closed[0])]
    assert calls == ["closesocket", "WSACleanup"]
    assert bytes(c.data) == b"hello\n"


def _call(action: Callable[[], None]) -> None:
    action()


@pytest.mark.parametrize("model", ["routines", "iocp"])
def test_a_close_that_drops_queued_output_is_abortive_though_the_send_completed(model: str) -> None:
    """As above, but more output waits behind the completed send (one
    WSASend carries ``send_size`` bytes): the close drops it, so it is
    abortive, and the client sees a reset rather than a FIN after part of
    its replies, which would tell it that nothing more was owed."""
    _, c = _stop_after_the_echo(model, b"the echo\nthe second\n", send_size=9)
    assert c.peer.was_reset
