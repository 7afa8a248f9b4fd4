"""FILE_SKIP_COMPLETION_PORT_ON_SUCCESS and completion routines
(docs/semantics-findings.md section 30).

Microsoft's SetFileCompletionNotificationModes page: with
FILE_SKIP_COMPLETION_PORT_ON_SUCCESS "the I/O Manager does not queue a
completion entry to the port" when three conditions hold, the first being
that "a completion port is associated with the file handle".  A socket that
uses completion routines has no port (a routine on a socket with a port fails
with WSAEINVAL, sock.c test_WSARecv), so the mode has nothing to skip there:
a receive that completes inside its call still queues its routine, which runs
at the next alertable wait (the rule of section 8).
"""

from __future__ import annotations

import pytest

from fakewinsock import WSABUF, WSAOVERLAPPED
from fakewinsock.constants import (
    FILE_SKIP_COMPLETION_PORT_ON_SUCCESS,
    FILE_SKIP_SET_EVENT_ON_HANDLE,
    TRUE,
    WAIT_IO_COMPLETION,
    WSA_IO_PENDING,
)

from ._harness import Harness


@pytest.mark.needs_immediate
@pytest.mark.parametrize("modes", [FILE_SKIP_COMPLETION_PORT_ON_SUCCESS,
                                   FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE])
def test_skip_on_success_leaves_an_immediate_completion_routine_queued(h: Harness, modes: int) -> None:
    """On a socket with the mode set and no port, a WSARecv that returns 0
    still queues its routine: not run inside WSARecv, run once at the next
    alertable wait with (0, the count, the OVERLAPPED, 0)."""
    a = h.accept()
    assert h.ws.SetFileCompletionNotificationModes(a.sock, modes) == TRUE
    calls: list[tuple[int, int, WSAOVERLAPPED, int]] = []

    def routine(dwError: int, cbTransferred: int, lpOverlapped: WSAOVERLAPPED, dwFlags: int) -> None:
        calls.append((dwError, cbTransferred, lpOverlapped, dwFlags))

    for _ in range(20):
        h.have_data_arrive(a)
        ov = h.overlapped(with_event=False)
        buf = bytearray(64)
        rc, n, _ = h.ws.WSARecv(a.sock, [WSABUF(64, buf)], 1, 0, ov, routine)
        if rc == 0:
            assert n >= 1 and calls == [], "the routine ran inside WSARecv"
            assert h.ws.SleepEx(0, TRUE) == WAIT_IO_COMPLETION
            assert calls == [(0, n, ov, 0)]
            assert h.ws.SleepEx(0, TRUE) == 0  # once only
            return
        assert h.ws.WSAGetLastError() == WSA_IO_PENDING
        assert h.ws.SleepEx(5000, TRUE) == WAIT_IO_COMPLETION
        calls.clear()
    pytest.fail("no receive ever completed at once")
