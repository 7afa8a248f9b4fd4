"""FakeWinsock.send_handled_ns and send_handled_steps (the recipe checker's idle account of a server's
completed sends): a send's completion counts once the program has handled it: its completion routine has
returned, or the thread it was delivered to (WSAGetOverlappedResult reaped it, GetQueuedCompletionStatus
dequeued its packet) makes its next waiting call.  Not when it completed (send_completed_ns), nor while its
packet waits in a port, nor between its delivery and that call.  A passive record: nothing reads it to decide."""

from __future__ import annotations

from fakewinsock import WSABUF, WSAOVERLAPPED, FakeWinsock
from fakewinsock.constants import FALSE, INFINITE, SOCKET_ERROR, TRUE, WSA_IO_PENDING
from tests.fake_server import Server, quiet

DATA = b"x" * 1500  # more than the window of 1000 bytes: the send pends until the peer reads


def _pending_send(ws: FakeWinsock, s: int, ov: WSAOVERLAPPED, routine: object = None) -> None:
    rc, _, _ = ws.WSASend(s, [WSABUF(len(DATA), DATA)], 1, 0, ov, routine)  # type: ignore[arg-type]
    assert rc == SOCKET_ERROR and ws.WSAGetLastError() == WSA_IO_PENDING


def test_a_reaped_send_counts_once_the_thread_waits_again() -> None:
    """Events: completed, then reaped by WSAGetOverlappedResult, it is not handled yet; the thread's next
    wait (here SleepEx) counts it, from when it completed; the step notes when it was got and the value
    before (0: none).  A second send's step notes the first's completion as the value before."""
    ws = FakeWinsock(config=quiet(window=1000))
    srv = Server(ws)
    s, peer = srv.accept()
    ov = srv.overlapped()
    _pending_send(ws, s, ov)
    assert peer.recv(4096)
    ws.run_for(0.01)
    done = ws.send_completed_ns(peer)
    assert done and ws.send_handled_ns(peer) == 0 and ws.send_handled_steps(peer) == ()
    assert srv.result(s, ov) == (TRUE, len(DATA), 0)
    assert ws.send_handled_ns(peer) == 0  # delivered to this thread, not handled until it waits again
    ws.SleepEx(0, FALSE)
    assert ws.send_handled_ns(peer) == done
    ((got, before),) = ws.send_handled_steps(peer)
    assert done < got <= ws.now_ns and before == 0
    ov2 = srv.overlapped()
    _pending_send(ws, s, ov2)
    for _ in range(3):  # (what is left of the first send, then the second's)
        peer.recv(4096)
        ws.run_for(0.01)
    assert srv.result(s, ov2) == (TRUE, len(DATA), 0)
    ws.SleepEx(0, FALSE)
    assert ws.send_handled_ns(peer) == ws.send_completed_ns(peer) > done
    assert ws.send_handled_steps(peer)[1][1] == done
    srv.finish()


def test_a_dequeued_packet_counts_at_the_next_get_queued_completion_status() -> None:
    """Completion ports: neither while the packet waits in the port nor once a GetQueuedCompletionStatus
    dequeued it; the same thread's next GetQueuedCompletionStatus (here one that times out) counts it."""
    ws = FakeWinsock(config=quiet(window=1000))
    srv = Server(ws)
    s, peer = srv.accept()
    port = ws.CreateIoCompletionPort(s, 0, 5, 0)
    assert port
    ov = WSAOVERLAPPED()
    _pending_send(ws, s, ov)
    assert peer.recv(4096)
    ws.run_for(0.01)
    done = ws.send_completed_ns(peer)
    assert done and ws.send_handled_ns(peer) == 0  # its packet waits in the port
    ok, n, key, back = ws.GetQueuedCompletionStatus(port, INFINITE)
    assert (ok, n, key, back) == (TRUE, len(DATA), 5, ov)
    assert ws.send_handled_ns(peer) == 0  # dequeued: the thread handles it now
    ok, _, _, back = ws.GetQueuedCompletionStatus(port, 0)
    assert (ok, back) == (FALSE, None)
    assert ws.send_handled_ns(peer) == done
    assert ws.CloseHandle(port)
    srv.finish()


def test_a_routine_s_send_counts_once_the_routine_has_returned() -> None:
    """Completion routines: not while the routine runs; once it has returned."""
    ws = FakeWinsock(config=quiet(window=1000))
    srv = Server(ws)
    s, peer = srv.accept()
    seen: list[int] = []

    def routine(error: int, nbytes: int, ov: WSAOVERLAPPED, flags: int) -> None:
        seen.append(ws.send_handled_ns(peer))

    _pending_send(ws, s, WSAOVERLAPPED(), routine)
    assert peer.recv(4096)
    ws.run_for(0.01)
    done = ws.send_completed_ns(peer)
    assert done and ws.send_handled_ns(peer) == 0
    ws.SleepEx(0, TRUE)
    assert seen == [0] and ws.send_handled_ns(peer) == done
    srv.finish()
