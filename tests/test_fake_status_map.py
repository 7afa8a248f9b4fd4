"""Every failure NTSTATUS an operation of the fake can end with has its Win32
error in ``NTSTATUS_TO_WIN32`` (and its Winsock error in ``NTSTATUS_TO_WSA``),
so GetQueuedCompletionStatus never reports the lookup's default,
ERROR_MR_MID_NOT_FOUND (317, what RtlNtStatusToDosError gives for a status it
does not know), nor WSAGetOverlappedResult its WSAEINVAL, for an outcome the
fake itself produces (issue 18).

The set is derived from the fake's source: an operation's status is whatever
its code passes to ``Operations.finish`` (directly, or as an abort status, an
endpoint's reset status, a chooser's pick), and each of those is a
``STATUS_*`` constant or a literal written in the code; so every ``STATUS_*``
name and every literal in the NTSTATUS error and warning ranges the fake's
modules use (outside the tables themselves and the real backend) is
collected.  A second test runs every way an operation fails through a
completion port, records each status ``Operations.finish`` is given, and
checks that the scan saw it and that GetQueuedCompletionStatus's last error
is the table's.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import fakewinsock
from fakewinsock import WSABUF, WSAOVERLAPPED, FakeConfig, FakeWinsock
from fakewinsock import _constants as C
from fakewinsock._ops import Operations
from fakewinsock.constants import FALSE, INFINITE, SOCKET_ERROR, TRUE, WSA_IO_PENDING
from tests.conformance._harness import ADDR_SLOT, Harness

PACKAGE = Path(fakewinsock.__file__).parent
# The tables themselves, and the real backend's (Windows writes its statuses, not the fake).
NOT_THE_FAKE = {"_constants.py", "constants.py", "_real.py", "_winapi.py"}
_STATUS_NAMES = {value: name for name, value in vars(C).items() if name.startswith("STATUS_")}


def _name(status: int) -> str:
    return f"{_STATUS_NAMES.get(status, 'a literal')} ({status:#x})"


def failure_statuses_in_source() -> dict[int, list[str]]:
    """Every failure or warning NTSTATUS (0x80000000 and up) the fake's modules
    name (``C.STATUS_X``, ``STATUS_X``) or write as a literal, with where.  A
    literal counts when it reads as a system NTSTATUS: warning or error
    severity, no customer bit, facility 0, past the sign bit alone (which the
    fake compares statuses with), 32 bits; so not 0x100000000 (a 32-bit
    value's wrap), 0xFFFFFFFF, 0xFFFFFFFE (getsockopt values), nor 0xE0000001
    (the exit code of a thread that raised)."""
    found: dict[int, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in NOT_THE_FAKE:
            continue
        where = str(path.relative_to(PACKAGE.parent))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            value: object = None
            if isinstance(node, ast.Attribute) and node.attr.startswith("STATUS_"):
                value = getattr(C, node.attr)
            elif isinstance(node, ast.Name) and node.id.startswith("STATUS_"):
                value = getattr(C, node.id)
            elif (isinstance(node, ast.Constant) and type(node.value) is int
                  and 0x80000000 < node.value <= 0xFFFFFFFF
                  and node.value & 0x3FFF0000 == 0):  # severity warning or error, facility 0, not a customer code
                value = node.value
            if isinstance(value, int) and value >= 0x80000000:
                found.setdefault(value, []).append(f"{where}:{getattr(node, 'lineno', 0)}")
    return found


def test_every_failure_status_in_the_fake_s_code_has_a_win32_and_a_winsock_error() -> None:
    found = failure_statuses_in_source()
    # The scan sees the statuses the fake is known to end operations with (else it is blind).
    assert {C.STATUS_CANCELLED, C.STATUS_CONNECTION_RESET, C.STATUS_CONNECTION_ABORTED,
            C.STATUS_BUFFER_TOO_SMALL} <= set(found)
    missing = [f"{_name(s)} at {', '.join(found[s])}" for s in sorted(found) if s not in C.NTSTATUS_TO_WIN32]
    assert not missing, f"no Win32 error in NTSTATUS_TO_WIN32 for {missing}"
    missing = [f"{_name(s)} at {', '.join(found[s])}" for s in sorted(found) if s not in C.NTSTATUS_TO_WSA]
    assert not missing, f"no Winsock error in NTSTATUS_TO_WSA for {missing}"


# ---------------------------------------------------------------- every way an operation fails, through a port


def _pend_recv(h: Harness, s: int) -> WSAOVERLAPPED:
    ov = WSAOVERLAPPED()
    rc, _, _ = h.ws.WSARecv(s, [WSABUF(64, bytearray(64))], 1, 0, ov, None)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    return ov


def _pend_accept(h: Harness, lst: int, remote_slot: int = ADDR_SLOT) -> tuple[int, WSAOVERLAPPED]:
    acc, ov = h.socket(), WSAOVERLAPPED()
    ok, _ = h.ws.AcceptEx(lst, acc, bytearray(2 * ADDR_SLOT), 0, ADDR_SLOT, remote_slot, ov)
    assert (ok, h.ws.WSAGetLastError()) == (FALSE, WSA_IO_PENDING)
    return acc, ov


def _cancelled_recv(h: Harness, port: int) -> None:
    a = h.accept()
    assert h.ws.CreateIoCompletionPort(a.sock, port, 1, 0) == port
    ov = _pend_recv(h, a.sock)
    assert h.ws.CancelIoEx(a.sock, ov) == TRUE


def _reset_recv(h: Harness, port: int) -> None:
    a = h.accept()
    assert h.ws.CreateIoCompletionPort(a.sock, port, 1, 0) == port
    _pend_recv(h, a.sock)
    a.peer.reset()


def _closed_recv(h: Harness, port: int) -> None:
    a = h.accept()
    assert h.ws.CreateIoCompletionPort(a.sock, port, 1, 0) == port
    _pend_recv(h, a.sock)
    h.close(a.sock)


def _closed_listener(h: Harness, port: int) -> None:
    lst, _ = h.listener()
    assert h.ws.CreateIoCompletionPort(lst, port, 2, 0) == port
    _pend_accept(h, lst)
    h.close(lst)


def _closed_accept_socket(h: Harness, port: int) -> None:
    lst, _ = h.listener()
    assert h.ws.CreateIoCompletionPort(lst, port, 2, 0) == port
    acc, _ = _pend_accept(h, lst)
    h.close(acc)


def _too_small_remote_slot(h: Harness, port: int) -> None:
    lst, number = h.listener()
    assert h.ws.CreateIoCompletionPort(lst, port, 2, 0) == port
    _pend_accept(h, lst, ADDR_SLOT - 1)
    h.peer().connect("127.0.0.1", number)


def _client_reset_in_the_backlog(h: Harness, port: int) -> None:
    lst, number = h.listener()
    assert h.ws.CreateIoCompletionPort(lst, port, 2, 0) == port
    p = h.peer()
    p.connect("127.0.0.1", number)
    p.reset()
    h.settle()
    _pend_accept(h, lst)
    h.peer().connect("127.0.0.1", number)  # (a client for the AcceptEx, where the reset one is dropped)


def _exiting_thread(h: Harness, port: int) -> None:
    a = h.accept()
    assert h.ws.CreateIoCompletionPort(a.sock, port, 1, 0) == port

    def program() -> int:
        _pend_recv(h, a.sock)
        return 0

    thread, _ = h.ws.CreateThread(None, 0, lambda _: program(), None, 0)
    assert h.ws.WaitForSingleObject(thread, INFINITE) == 0
    assert h.ws.CloseHandle(thread) == TRUE


SCENARIOS: list[Callable[[Harness, int], None]] = [
    _cancelled_recv, _reset_recv, _closed_recv, _closed_listener, _closed_accept_socket, _too_small_remote_slot,
    _client_reset_in_the_backlog, _exiting_thread,
]


@pytest.mark.parametrize("seed", range(1, 9))
def test_every_way_an_operation_fails_reports_the_table_s_error(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each scenario fails operations through a completion port (on eight
    seeds: the chooser picks some statuses, e.g. a closed accept socket's);
    every status ``Operations.finish`` is given is one the scan found or a
    success, and every failed packet's GetQueuedCompletionStatus reports the
    table's Win32 error for its status."""
    finished: list[int] = []
    original = Operations.finish

    def spy(self: Operations[Any], op: Any, status: int, *args: Any) -> None:
        finished.append(status)
        original(self, op, status, *args)

    monkeypatch.setattr(Operations, "finish", spy)
    scanned = failure_statuses_in_source()
    dequeued: set[int] = set()
    for scenario in SCENARIOS:
        h = Harness(FakeWinsock(seed=seed, config=FakeConfig(immediate=0.0)))
        h.start()
        port = h.port()
        scenario(h, port)
        while True:
            ok, _, _, ov = h.ws.GetQueuedCompletionStatus(port, 100)
            if ov is None:
                break
            if ok == FALSE:
                status = ov.Internal & 0xFFFFFFFF
                assert h.ws.GetLastError() == C.NTSTATUS_TO_WIN32.get(status), (scenario.__name__, _name(status))
                dequeued.add(status)
        h.finish()
    failures = {s & 0xFFFFFFFF for s in finished if s & 0xFFFFFFFF >= 0x80000000}
    assert failures <= set(scanned), f"statuses the scan missed: {[_name(s) for s in failures - set(scanned)]}"
    assert dequeued == failures
    assert {C.STATUS_CANCELLED, C.STATUS_CONNECTION_RESET, C.STATUS_CONNECTION_ABORTED,
            C.STATUS_BUFFER_TOO_SMALL} <= failures
