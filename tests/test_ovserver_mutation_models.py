"""ovserver's thread models (``ovserver._events``, ``ovserver._iocp``): the
start-up and mid-session failures the mutation run (issue 18,
``tools/mutation.sh``) found no test asserting."""

from __future__ import annotations

from typing import Any

import pytest

from fakewinsock import CreateThreadResult, FakeWinsock, ThreadStartRoutine
from fakewinsock.constants import ERROR_INVALID_PARAMETER, ERROR_NOT_ENOUGH_MEMORY
from ovserver import ServerConfig, ServerError, create_server
from tests.ovserver_session import Session, exact


class ThreadFailsOnce(FakeWinsock):
    """The first CreateThread fails (ERROR_NOT_ENOUGH_MEMORY), as on a machine out of memory."""

    failed = False

    def CreateThread(self, lpThreadAttributes: None, dwStackSize: int, lpStartAddress: ThreadStartRoutine,
                     lpParameter: Any, dwCreationFlags: int) -> CreateThreadResult:
        if not self.failed:
            self.failed = True
            self.SetLastError(ERROR_NOT_ENOUGH_MEMORY)
            return CreateThreadResult(0, 0)
        return super().CreateThread(lpThreadAttributes, dwStackSize, lpStartAddress, lpParameter, dwCreationFlags)


def test_a_group_thread_that_cannot_be_created_costs_that_client_only() -> None:
    """Events model: no thread for the first client's group.  That client is
    closed (counted as an accept failure), nothing of the group is left
    open, and the next client gets a group and is served."""
    ws = ThreadFailsOnce(seed=0, config=exact(0.0))
    s = Session("events", ws=ws)
    unlucky, second = s.client(0), s.client(2)
    unlucky.send(1, b"lost\n")
    second.send(3, b"served\n")
    stats = s.run(stop_ms=10)  # Session.run: nothing left open
    assert ws.failed
    assert (stats.accepted, stats.accept_failures, stats.threads_started) == (1, 1, 1)
    assert stats.refused == 1  # the "stopped" line says so: the client saw its connection made, then closed
    assert bytes(unlucky.data) == b"" and (unlucky.peer.at_eof or unlucky.reset_by_server)
    assert bytes(second.data) == b"served\n"


class PortFails(FakeWinsock):
    """CreateIoCompletionPort fails with ERROR_INVALID_PARAMETER: creating the
    port (``which="port"``) or associating a socket with it (``"listener"``)."""

    which = "port"

    def CreateIoCompletionPort(self, FileHandle: int, ExistingCompletionPort: int, CompletionKey: int,
                               NumberOfConcurrentThreads: int) -> int:
        if (ExistingCompletionPort != 0) == (self.which == "listener"):
            self.SetLastError(ERROR_INVALID_PARAMETER)
            return 0
        return super().CreateIoCompletionPort(FileHandle, ExistingCompletionPort, CompletionKey,
                                              NumberOfConcurrentThreads)


@pytest.mark.parametrize(("which", "message"), [
    ("port", f"CreateIoCompletionPort failed (error {ERROR_INVALID_PARAMETER})"),
    ("listener", f"associating the listener with the port failed (error {ERROR_INVALID_PARAMETER})"),
])
def test_a_port_that_cannot_be_made_or_take_the_listener_is_a_server_error(which: str, message: str) -> None:
    """The iocp model at start: a ServerError naming what failed and the
    error, and nothing left open (the port closed too)."""
    ws = PortFails(seed=0, config=exact(0.0))
    ws.which = which
    with pytest.raises(ServerError) as info:
        create_server(ws, ServerConfig(port=0, model="iocp")).run()
    assert str(info.value) == message
    assert ws.leaks() == [] and ws.open_handles() == []


def test_iocp_workers_that_end_normally_exit_with_code_0() -> None:
    """Every worker returns 0 after its stop packet (1 is kept for a worker
    that died of an exception): what GetExitCodeThread, a debugger or the
    fake's trace shows."""
    ws = FakeWinsock(seed=1, config=exact(0.0))
    s = Session("iocp", ws=ws, workers=3)
    c = s.client(0)
    c.send(1, b"hi\n")
    stats = s.run(stop_ms=10)
    assert bytes(c.data) == b"hi\n" and stats.threads_started == 3
    exits = [r.detail for r in ws.trace if r.what == "thread" and r.call == "exit"]
    assert len(exits) == 3 and all(e.endswith(" exit_code=0") for e in exits)


def test_an_iocp_server_whose_bind_fails_closes_no_port_it_never_made() -> None:
    """The iocp model fails before it makes its completion port (the bind is
    refused): ServerError, the wake event closed, WSACleanup, and no
    CloseHandle at all (a handle it never got is not closed)."""
    ws = FakeWinsock(seed=0, config=exact(0.0))
    server = create_server(ws, ServerConfig(model="iocp", host="10.1.2.3", port=0))
    with pytest.raises(ServerError, match="^bind to 10.1.2.3:0 failed"):
        server.run()
    assert [(r.what, r.call) for r in ws.trace if r.call in ("CloseHandle", "WSACloseEvent", "WSACleanup")] == \
        [("call", "WSACloseEvent"), ("call", "WSACleanup")]
    assert ws.open_handles() == []
