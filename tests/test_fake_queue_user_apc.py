"""QueueUserAPC on the fake: what the conformance suite
(tests/conformance/test_queue_user_apc.py) leaves to the fake alone: the error
code for an exited thread, an infinite wait on GetCurrentThread's
pseudo-handle, the leak report of an APC that never ran, bad arguments, and an
APC queued to a thread that exits first."""

from __future__ import annotations

import pytest

from fakewinsock import DeadlockError, FakeWinsock, LeakError
from fakewinsock.constants import (
    ERROR_GEN_FAILURE,
    INFINITE,
    MAKEWORD,
    TRUE,
    WAIT_IO_COMPLETION,
    WAIT_OBJECT_0,
)


def started() -> FakeWinsock:
    ws = FakeWinsock(seed=1)
    assert ws.WSAStartup(MAKEWORD(2, 2))[0] == 0
    return ws


def test_an_exited_thread_gives_error_gen_failure() -> None:
    """As Wine 8.0 (measured): ERROR_GEN_FAILURE (31)."""
    ws = started()
    h, _ = ws.CreateThread(None, 0, lambda p: 0, None, 0)
    assert ws.WaitForSingleObject(h, INFINITE) == WAIT_OBJECT_0
    ws.SetLastError(0)
    assert ws.QueueUserAPC(lambda d: None, h, 1) == 0
    assert ws.GetLastError() == ERROR_GEN_FAILURE
    assert ws.CloseHandle(h) == TRUE
    assert ws.WSACleanup() == 0


def test_an_infinite_wait_on_the_calling_thread_alone_is_a_deadlock() -> None:
    """Nothing can end it (Windows: it never returns)."""
    ws = started()
    with pytest.raises(DeadlockError):
        ws.WaitForSingleObject(ws.GetCurrentThread(), INFINITE)


def test_an_apc_that_never_ran_is_a_leak() -> None:
    ws = started()

    def never(data: int) -> None:
        raise AssertionError("ran")

    assert ws.QueueUserAPC(never, ws.GetCurrentThread(), 0x2A) == 1
    with pytest.raises(LeakError, match=r"user APC .*never\(0x2a\) never ran"):
        ws.WSACleanup()


def test_an_apc_queued_to_a_thread_that_exits_first_never_runs() -> None:
    """The thread began and never waits alertably: the APC stays queued and
    goes with the thread when it exits (as its completion routines do)."""
    ws = started()
    ran: list[int] = []
    began = ws.WSACreateEvent()

    def proc(p: object) -> int:
        ws.WSASetEvent(began)
        ws.Sleep(10)  # not alertable
        return 0

    h, _ = ws.CreateThread(None, 0, proc, None, 0)
    assert ws.WaitForSingleObject(began, INFINITE) == WAIT_OBJECT_0
    assert ws.QueueUserAPC(ran.append, h, 4) == 1
    assert ws.WaitForSingleObject(h, INFINITE) == WAIT_OBJECT_0
    assert ran == []
    assert ws.SleepEx(0, TRUE) == 0  # nothing came to the main thread either
    assert ran == []
    assert ws.CloseHandle(h) == TRUE
    assert ws.WSACloseEvent(began) == TRUE
    assert ws.WSACleanup() == 0


@pytest.mark.parametrize("args", [(None, 0), ("f", -1), ("f", 1 << 64), ("f", True), ("f", 1.0)])
def test_bad_arguments_are_type_errors(args: tuple[object, object]) -> None:
    ws = started()
    fn, data = args
    with pytest.raises(TypeError):
        ws.QueueUserAPC((lambda d: None) if fn == "f" else fn, ws.GetCurrentThread(), data)  # type: ignore[arg-type]
    assert ws.WSACleanup() == 0


def test_an_alertable_wait_of_the_main_thread_returns_after_the_apc() -> None:
    """SleepEx(INFINITE, TRUE) with an APC queued to itself returns at once."""
    ws = started()
    got: list[int] = []
    ws.QueueUserAPC(got.append, ws.GetCurrentThread(), 9)
    assert ws.SleepEx(INFINITE, TRUE) == WAIT_IO_COMPLETION
    assert got == [9]
    assert ws.WSACleanup() == 0
