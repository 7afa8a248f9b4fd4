"""ovserver's iocp model (``ovserver._iocp``): survivors of the mutation run
(issue 18, ``tools/mutation.sh``) that a behaviour tells apart: a worker
thread that cannot be created, and a packet for a connection context already
released."""

from __future__ import annotations

from typing import Any

import pytest

from fakewinsock import WSAOVERLAPPED, CreateThreadResult, FakeWinsock, ThreadStartRoutine
from fakewinsock.constants import ERROR_NOT_ENOUGH_MEMORY, TRUE
from ovserver import Server, ServerConfig, ServerError, create_server
from tests.ovserver_session import MS, exact
from tests.test_ovserver_mutation_survivors import SharedPort


class SecondThreadFails(FakeWinsock):
    """The second CreateThread fails (ERROR_NOT_ENOUGH_MEMORY), as on a machine out of memory."""

    calls = 0

    def CreateThread(self, lpThreadAttributes: None, dwStackSize: int, lpStartAddress: ThreadStartRoutine,
                     lpParameter: Any, dwCreationFlags: int) -> CreateThreadResult:
        self.calls += 1
        if self.calls == 2:
            self.SetLastError(ERROR_NOT_ENOUGH_MEMORY)
            return CreateThreadResult(0, 0)
        return super().CreateThread(lpThreadAttributes, dwStackSize, lpStartAddress, lpParameter, dwCreationFlags)


def test_a_worker_that_cannot_be_created_is_a_server_error_and_the_first_worker_ends() -> None:
    """The iocp model at start, the second of three workers: run() raises a
    ServerError naming CreateThread and its error; the worker already started
    gets its stop packet and exits with 0, and the controller leaves the
    server lock before deleting it (deleting a critical section still owned
    is undefined behaviour: a usage error on the fake).  Proven against
    ``_serve``'s first ``self._enter(None)`` (the controller then did not
    know it held the lock and left it held: DeleteCriticalSection raised
    WinsockUsageError instead).  That nothing is left open (the AcceptEx
    cancelled by closing the listener is reaped by the controller once the
    worker has taken its stop packet) is tests/test_ovserver_robust.py's."""
    ws = SecondThreadFails(seed=0, config=exact(0.0))
    server = create_server(ws, ServerConfig(port=0, model="iocp", workers=3))
    with pytest.raises(ServerError) as info:
        server.run()
    assert str(info.value) == f"CreateThread failed (error {ERROR_NOT_ENOUGH_MEMORY})"
    assert ws.calls == 2 and server.stats.threads_started == 1
    exits = [r.detail for r in ws.trace if r.what == "thread" and r.call == "exit"]
    assert len(exits) == 1 and exits[0].endswith(" exit_code=0")
    locks = [(r.thread, r.call, r.detail) for r in ws.trace if "CriticalSection" in r.call]
    assert locks[-2:] == [(1, "LeaveCriticalSection", "cs1 count=0"), (1, "DeleteCriticalSection", "cs1")], locks


class KeepsOverlapped(SharedPort):
    """Keeps the completion port the program makes and the OVERLAPPED of its
    first WSARecv, so that a test can post a packet for it, as a component
    sharing the port, or a double post, would."""

    first_recv: WSAOVERLAPPED | None = None

    def WSARecv(self, s: int, lpBuffers: Any, dwBufferCount: int, lpFlags: int, lpOverlapped: Any,
                lpCompletionRoutine: Any = None) -> Any:
        if self.first_recv is None:
            self.first_recv = lpOverlapped
        return super().WSARecv(s, lpBuffers, dwBufferCount, lpFlags, lpOverlapped, lpCompletionRoutine)


def test_a_packet_for_a_released_connection_is_a_server_error_naming_its_key() -> None:
    """A client comes and goes (its context is released once its last packet
    has been handled); then a packet arrives with that connection's key and
    receive OVERLAPPED.  The worker does not handle it as anyone's: run()
    raises a ServerError naming the key and saying the context was released,
    and nothing is left open."""
    ws = KeepsOverlapped(seed=0, config=exact(0.0))
    server = create_server(ws, ServerConfig(port=0, model="iocp", workers=2))
    c = ws.peer()

    def stale(_: object) -> None:
        assert server.stats.ended == 1 and ws.first_recv is not None
        assert ws.PostQueuedCompletionStatus(ws.port, 0, 1, ws.first_recv) == TRUE

    def ready(srv: Server) -> None:
        assert srv.address is not None
        c.connect_nowait(*srv.address)
        ws.call_at(2 * MS, lambda _: c.close())
        ws.call_at(5 * MS, stale)
        ws.call_at(10 * MS, lambda _: srv.request_stop(signal=ws.signal_event))

    with pytest.raises(ServerError) as info:
        server.run(ready)
    assert str(info.value) == "a packet (key 0x1) for a released connection context"
    assert ws.leaks() == [] and ws.open_handles() == []
