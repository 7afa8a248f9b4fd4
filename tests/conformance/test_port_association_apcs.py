"""An alertable GetQueuedCompletionStatusEx of a thread not yet associated with
the port runs the thread's APCs first, even with packets queued.

Source (Windows behaviour): Wine's ``dlls/ntdll/tests/file.c``,
``test_set_io_completion`` (plain ``ok()`` checks, run on Windows;
GetQueuedCompletionStatusEx is kernel32's wrapper of NtRemoveIoCompletionEx,
STATUS_USER_APC becoming FALSE with WAIT_IO_COMPLETION). A thread becomes
associated with a port by a call on it that does not end with the APCs:

* a user APC queued and a packet queued on a port the thread has not yet
  dequeued from: the alertable call runs the APC and returns STATUS_USER_APC,
  the packet stays ("APC takes priority over pending completion. Even if the
  thread is associated with some other completion port");
* that call did not associate the thread: the next one with an APC queued
  again returns STATUS_USER_APC, the packet still there;
* a call with no APC queued takes the packet ("Now the thread is associated");
* from then on an APC and a packet queued: the packet comes back (count 1) and
  the APC stays queued until the next alertable wait (SleepEx).

A completion routine is a user APC of the thread that posted the operation, so
the rule applies to routines too (docs/semantics-findings.md section 38).

Also from ntdll's file.c (``test_file_io_completion``): an operation posted with
a completion routine before its handle is associated with a port completes
through the routine, and the port gets no packet.
"""

from __future__ import annotations

import pytest

from fakewinsock import WSABUF, WSAOVERLAPPED
from fakewinsock.constants import (
    FALSE,
    SOCKET_ERROR,
    TRUE,
    WAIT_IO_COMPLETION,
    WAIT_TIMEOUT,
    WSA_IO_PENDING,
    WSAEINVAL,
)

from ._harness import WAIT_MS, Harness

WINE_TAKES_THE_PACKET = (
    "Wine 8.0's NtRemoveIoCompletionEx takes a queued packet before it looks at the thread's APCs, "
    "associated with the port or not (Windows: the APCs first while the thread is not associated)"
)


def queue_apc(h: Harness, log: list[int], data: int) -> None:
    def fn(d: int) -> None:
        log.append(d)

    assert h.ws.QueueUserAPC(fn, h.ws.GetCurrentThread(), data) != 0


def entries_of(h: Harness, port: int, alertable: int) -> tuple[int, list[tuple[int, int]]]:
    ok, entries = h.ws.GetQueuedCompletionStatusEx(port, 2, 0, alertable)
    return ok, [(e.lpCompletionKey, e.dwNumberOfBytesTransferred) for e in entries]


@pytest.mark.wine_divergence(WINE_TAKES_THE_PACKET)
def test_apcs_come_before_a_queued_packet_until_the_thread_is_associated(h: Harness) -> None:
    """The sequence of test_set_io_completion: associated with another port
    first; then on a new port, an APC and a packet queued: WAIT_IO_COMPLETION,
    the APC ran, the packet stays; again (another APC): WAIT_IO_COMPLETION;
    with no APC the packet comes back; then an APC and a packet: the packet,
    the APC waits for SleepEx."""
    log: list[int] = []
    other = h.port()
    assert h.ws.PostQueuedCompletionStatus(other, 789, 123, None) == TRUE
    assert entries_of(h, other, TRUE) == (TRUE, [(123, 789)])  # associated with the other port

    port = h.port()
    queue_apc(h, log, 1)
    assert h.ws.PostQueuedCompletionStatus(port, 3, 456, None) == TRUE
    h.ws.WSASetLastError(0)
    assert entries_of(h, port, TRUE) == (FALSE, [])
    assert h.ws.WSAGetLastError() == WAIT_IO_COMPLETION
    assert log == [1]

    queue_apc(h, log, 2)
    assert entries_of(h, port, TRUE) == (FALSE, [])  # that call did not associate the thread
    assert h.ws.WSAGetLastError() == WAIT_IO_COMPLETION
    assert log == [1, 2]

    assert entries_of(h, port, TRUE) == (TRUE, [(456, 3)])  # now it is associated

    queue_apc(h, log, 3)
    assert h.ws.PostQueuedCompletionStatus(port, 4, 457, None) == TRUE
    assert entries_of(h, port, TRUE) == (TRUE, [(457, 4)])
    assert log == [1, 2]
    assert h.ws.SleepEx(0, TRUE) == WAIT_IO_COMPLETION
    assert log == [1, 2, 3]


def test_an_associated_thread_with_an_apc_and_an_empty_port(h: Harness) -> None:
    """Associated, an APC queued and nothing on the port: not alertable, the
    call times out and the APC stays; alertable, it runs and the call returns
    WAIT_IO_COMPLETION; then an APC and a packet: the packet
    (test_set_io_completion, its last checks)."""
    log: list[int] = []
    port = h.port()
    assert h.ws.PostQueuedCompletionStatus(port, 1, 2, None) == TRUE
    assert entries_of(h, port, FALSE) == (TRUE, [(2, 1)])
    queue_apc(h, log, 7)
    assert entries_of(h, port, FALSE) == (FALSE, [])
    assert h.ws.WSAGetLastError() == WAIT_TIMEOUT
    assert log == []
    assert entries_of(h, port, TRUE) == (FALSE, [])
    assert h.ws.WSAGetLastError() == WAIT_IO_COMPLETION
    assert log == [7]
    queue_apc(h, log, 8)
    assert h.ws.PostQueuedCompletionStatus(port, 5, 6, None) == TRUE
    assert entries_of(h, port, TRUE) == (TRUE, [(6, 5)])
    assert log == [7]
    assert h.ws.SleepEx(0, TRUE) == WAIT_IO_COMPLETION
    assert log == [7, 8]


@pytest.mark.wine_divergence(WINE_TAKES_THE_PACKET)
def test_a_completion_routine_comes_before_a_queued_packet_until_the_thread_is_associated(h: Harness) -> None:
    """The same rule with a completion routine (a user APC of the posting
    thread): its receive completed, a packet posted to a port the thread has
    not dequeued from: the alertable call runs the routine, WAIT_IO_COMPLETION,
    and the packet comes with the next call."""
    a = h.accept()
    port = h.port()
    calls: list[tuple[int, int]] = []

    def routine(dwError: int, cb: int, ov: WSAOVERLAPPED, flags: int) -> None:
        calls.append((dwError, cb))

    rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(16, bytearray(16))], 1, 0, WSAOVERLAPPED(), routine)
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING
    a.peer.send(b"data")
    h.ws.Sleep(300)  # not alertable: the receive completes, its routine waits in the queue
    assert h.ws.PostQueuedCompletionStatus(port, 3, 9, None) == TRUE
    assert entries_of(h, port, TRUE) == (FALSE, [])
    assert h.ws.WSAGetLastError() == WAIT_IO_COMPLETION
    assert len(calls) == 1 and calls[0][0] == 0 and 1 <= calls[0][1] <= 4  # (the fake may split "data")
    assert entries_of(h, port, TRUE) == (TRUE, [(9, 3)])


def test_a_routine_posted_before_the_socket_is_associated_still_runs_and_queues_no_packet(h: Harness) -> None:
    """A receive posted with a completion routine, then the socket associated
    with a port (the association succeeds): when the bytes come the routine
    runs at the next alertable wait, not before, and the port gets no packet;
    a new receive with a routine then fails with WSAEINVAL (ntdll file.c
    test_file_io_completion, "test associating a completion port with a handle
    after an async using APC is queued": NtReadFile with an APC, then
    FileCompletionInformation, no packet, the APC at SleepEx(1, TRUE); then
    "using APCs on handle with associated completion port is not allowed")."""
    a = h.accept()
    calls: list[tuple[int, int]] = []

    def routine(dwError: int, cb: int, ov: WSAOVERLAPPED, flags: int) -> None:
        calls.append((dwError, cb))

    rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(16, bytearray(16))], 1, 0, WSAOVERLAPPED(), routine)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING  # nothing has been sent yet
    port = h.port()
    assert h.ws.CreateIoCompletionPort(a.sock, port, 5, 0) == port
    a.peer.send(b"data")
    ok, _, _, ov = h.ws.GetQueuedCompletionStatus(port, 300)  # not alertable: the receive completes meanwhile
    assert (ok, ov) == (FALSE, None) and h.ws.WSAGetLastError() == WAIT_TIMEOUT
    assert calls == []
    assert h.ws.SleepEx(WAIT_MS, TRUE) == WAIT_IO_COMPLETION
    assert len(calls) == 1 and calls[0][0] == 0 and 1 <= calls[0][1] <= 4  # (the fake may split "data")
    ok, _, _, ov = h.ws.GetQueuedCompletionStatus(port, 0)
    assert (ok, ov) == (FALSE, None) and h.ws.WSAGetLastError() == WAIT_TIMEOUT
    rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(16, bytearray(16))], 1, 0, WSAOVERLAPPED(), routine)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSAEINVAL


def test_a_receive_posted_before_the_socket_is_associated_queues_its_packet(h: Harness) -> None:
    """A receive posted with an event and no routine, then the socket
    associated with a port: when the bytes come, the receive's packet is queued
    to that port with the association's key and the receive's OVERLAPPED (ntdll
    file.c test_file_io_completion, "test associating a completion port with a
    handle after an async is queued": ReadFile pending, then
    FileCompletionInformation, no packet until the write, then one with the
    key, the OVERLAPPED and the byte count)."""
    a = h.accept()
    ov = h.overlapped()
    buf = bytearray(16)
    rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(16, buf)], 1, 0, ov, None)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING  # nothing has been sent yet
    port = h.port()
    assert h.ws.CreateIoCompletionPort(a.sock, port, 5, 0) == port
    ok, _, _, got = h.ws.GetQueuedCompletionStatus(port, 0)
    assert (ok, got) == (FALSE, None) and h.ws.WSAGetLastError() == WAIT_TIMEOUT
    a.peer.send(b"data")
    ok, n, key, got = h.ws.GetQueuedCompletionStatus(port, WAIT_MS)
    assert (ok, key) == (TRUE, 5) and got is ov and 1 <= n <= 4 and bytes(buf[:n]) == b"data"[:n]
    assert h.is_signalled(ov.hEvent)
