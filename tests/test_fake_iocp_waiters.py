"""The port's waiters on the fake when an exception goes through a wait: a
simulated actor's exception raised in the turn of a thread that waits in
GetQueuedCompletionStatus (the thread catches it and ends) must not leave
that thread listed as the port's most recent waiter, to which alone the port
grants packets: the other waiters would never get one."""

from __future__ import annotations

from fakewinsock import FakeConfig, FakeWinsock
from fakewinsock.constants import INFINITE, INVALID_HANDLE_VALUE, TRUE, WAIT_OBJECT_0


class ActorFailure(Exception):
    """What the simulated actor raises."""


def test_an_exception_through_a_port_wait_leaves_the_other_waiters_served() -> None:
    ws = FakeWinsock(seed=0, config=FakeConfig())
    port = ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, 0)
    got: list[str] = []

    def waiter(_: object) -> int:
        ok, _n, key, _ov = ws.GetQueuedCompletionStatus(port, INFINITE)
        got.append(f"waiter: key {key}" if ok == TRUE else "waiter: failed")
        return 0

    def failing(_: object) -> int:
        ws.Sleep(1)  # the last thread to block: the actor runs in its turn
        try:
            ws.GetQueuedCompletionStatus(port, INFINITE)
        except ActorFailure:
            got.append("failing: the actor's exception")
            return 1
        return 0

    def fail(_: object) -> None:
        raise ActorFailure("raised inside the scheduler")

    w, _ = ws.CreateThread(None, 0, waiter, None, 0)
    f, _ = ws.CreateThread(None, 0, failing, None, 0)
    ws.call_at(ws.now_ns + 5_000_000, fail)
    assert ws.WaitForSingleObject(f, INFINITE) == WAIT_OBJECT_0
    assert got == ["failing: the actor's exception"]
    assert ws.PostQueuedCompletionStatus(port, 0, 42, None) == TRUE
    assert ws.WaitForSingleObject(w, 1000) == WAIT_OBJECT_0  # before the fix: WAIT_TIMEOUT, the packet stuck
    assert got[1:] == ["waiter: key 42"]
    for handle in (w, f, port):
        assert ws.CloseHandle(handle) == TRUE
