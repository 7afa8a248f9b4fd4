"""Waits on a completion port's handle, critical sections' lock count, and several
AcceptEx outstanding on one listener: one body for every backend.

Sources, per test: ReactOS's IoCompletion API test ("I/O completion port
dispatcher-object semantics"; ReactOS's API tests are written against Windows and
run there: supporting evidence, as Wine's current server, which makes the port's
handle waitable the same way): an empty port waits as WAIT_TIMEOUT, a queued
packet makes it WAIT_OBJECT_0 without being taken, threads waiting on the handle
are all woken by one packet, which stays queued.  Microsoft's "Displaying a
Critical Section" (the debugger's reading of LockCount from Windows Server 2003
SP1 on: bit 0 set when free, bit 1 clear when a waiter was woken, the other bits
the ones' complement of the number of waiters).  AcceptEx: pending accept
requests are satisfied in the order they were posted (ReactOS's AFD takes the
head of its pre-accept list for each connection; Wine agrees), closing the
listener ends those still pending with ERROR_OPERATION_ABORTED / STATUS_CANCELLED
(Wine's sock.c test_AcceptEx and test_completion_port, for one; here for each),
and the accepted connections live on.
"""

from __future__ import annotations

from typing import Any

import pytest

from fakewinsock import CRITICAL_SECTION, WSABUF, WSAOVERLAPPED
from fakewinsock.constants import (
    ERROR_NOT_FOUND,
    ERROR_OPERATION_ABORTED,
    FALSE,
    SO_UPDATE_ACCEPT_CONTEXT,
    SOL_SOCKET,
    STATUS_CANCELLED,
    STATUS_PENDING,
    TRUE,
    WAIT_OBJECT_0,
    WAIT_TIMEOUT,
    WSA_IO_INCOMPLETE,
    WSA_IO_PENDING,
    WSA_OPERATION_ABORTED,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_TIMEOUT,
)

from ._harness import WAIT_MS, Harness, PostedAccept
from .test_mined_threads_ports import join as _join
from .test_mined_threads_ports import start as _start

_LOCKCOUNT_WINE = ("Wine 8.0 keeps the pre-Server 2003 SP1 LockCount (-1 free, 0 owned, +1 per entry "
                   "and per waiter); Windows encodes lock bit, woken bit and waiter count")


# -- a completion port's handle is waitable ---------------------------------------


def test_a_port_handle_is_signalled_while_packets_are_queued(h: Harness) -> None:
    """WaitForSingleObject on a port: WAIT_TIMEOUT while it is empty, WAIT_OBJECT_0
    once a packet is queued, and the wait takes nothing: GetQueuedCompletionStatus
    then gets the packet, after which the port waits as empty again."""
    port = h.port()
    h.ws.SetLastError(1234)
    assert h.ws.WaitForSingleObject(port, 0) == WAIT_TIMEOUT
    assert h.ws.GetLastError() == 1234  # a timeout leaves the last error
    assert h.ws.PostQueuedCompletionStatus(port, 7, 0x1234, None) == TRUE
    assert h.ws.WaitForSingleObject(port, 0) == WAIT_OBJECT_0
    assert h.ws.WaitForSingleObject(port, 0) == WAIT_OBJECT_0  # still queued
    ok, nbytes, key, ov = h.ws.GetQueuedCompletionStatus(port, 0)
    assert (ok, nbytes, key, ov) == (TRUE, 7, 0x1234, None)
    assert h.ws.WaitForSingleObject(port, 0) == WAIT_TIMEOUT


def test_a_port_in_a_wait_for_several_objects(h: Harness) -> None:
    """A port among the handles of WaitForMultipleObjects and of
    WSAWaitForMultipleEvents (WaitForMultipleObjectsEx itself): its index once a
    packet is queued, a timeout once it is taken."""
    port = h.port()
    ev = h.event()
    assert h.ws.WaitForMultipleObjects(2, [ev, port], FALSE, 0) == WAIT_TIMEOUT
    assert h.ws.WSAWaitForMultipleEvents(2, [ev, port], FALSE, 0, FALSE) == WSA_WAIT_TIMEOUT
    assert h.ws.PostQueuedCompletionStatus(port, 11, 0x4321, None) == TRUE
    assert h.ws.WaitForMultipleObjects(2, [ev, port], FALSE, 0) == WAIT_OBJECT_0 + 1
    assert h.ws.WSAWaitForMultipleEvents(2, [ev, port], FALSE, 0, FALSE) == WSA_WAIT_EVENT_0 + 1
    assert h.ws.GetQueuedCompletionStatus(port, 0)[0:3] == (TRUE, 11, 0x4321)
    assert h.ws.WaitForMultipleObjects(2, [ev, port], FALSE, 0) == WAIT_TIMEOUT


def test_the_completion_of_an_operation_signals_the_port(h: Harness) -> None:
    """A port is signalled by the packet of a completed operation as by a posted
    one: a receive on an associated socket completes, the port's handle waits as
    WAIT_OBJECT_0, and the packet is still there for GetQueuedCompletionStatus."""
    conn = h.accept()
    port = h.port()
    assert h.ws.CreateIoCompletionPort(conn.sock, port, 0x77, 0) == port
    ov = WSAOVERLAPPED()
    buf = bytearray(16)
    rc, _, _ = h.ws.WSARecv(conn.sock, [WSABUF(16, buf)], 1, 0, ov, None)
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert h.ws.WaitForSingleObject(port, 0) == WAIT_TIMEOUT
    conn.peer.send(b"abc")
    assert h.ws.WaitForSingleObject(port, WAIT_MS) == WAIT_OBJECT_0
    ok, nbytes, key, got = h.ws.GetQueuedCompletionStatus(port, 0)
    assert (ok, key, got) == (TRUE, 0x77, ov)
    assert 1 <= nbytes <= 3 and bytes(buf[:nbytes]) == b"abc"[:nbytes]
    assert h.ws.WaitForSingleObject(port, 0) == WAIT_TIMEOUT


def _two_threads_waiting_on(h: Harness, port: int) -> tuple[list[int], list[int]]:
    """Two threads blocked in WaitForSingleObject(port, WAIT_MS): the threads
    and the list their results go to."""
    ready = [h.event(), h.event()]
    results: list[int] = []

    def waiter(i: int) -> Any:
        def routine(_: Any) -> int:
            assert h.ws.WSASetEvent(ready[i]) == TRUE
            results.append(h.ws.WaitForSingleObject(port, WAIT_MS))
            return 0
        return routine

    threads = [_start(h, waiter(0)), _start(h, waiter(1))]
    assert h.ws.WaitForMultipleObjects(2, ready, TRUE, WAIT_MS) == WAIT_OBJECT_0
    h.ws.Sleep(100)  # (both are in their wait)
    return threads, results


@pytest.mark.wine_divergence("Wine 8.0 wakes one thread waiting on a port's handle per queued packet; "
                             "Windows wakes every one (the port stays signalled)")
def test_threads_waiting_on_a_port_handle_are_all_woken_and_take_nothing(h: Harness) -> None:
    """Two threads blocked in WaitForSingleObject(port, ...): one posted packet
    wakes both with WAIT_OBJECT_0 (the port is signalled, not taken), and the
    packet is still queued afterwards."""
    port = h.port()
    threads, results = _two_threads_waiting_on(h, port)
    assert h.ws.PostQueuedCompletionStatus(port, 21, 0x2001, None) == TRUE
    assert [_join(h, t) for t in threads] == [0, 0]
    assert results == [WAIT_OBJECT_0, WAIT_OBJECT_0]
    assert h.ws.GetQueuedCompletionStatus(port, 0)[0:3] == (TRUE, 21, 0x2001)


# -- CRITICAL_SECTION.LockCount ---------------------------------------------------


@pytest.mark.wine_divergence(_LOCKCOUNT_WINE)
def test_lock_count_of_a_free_and_an_owned_section(h: Harness) -> None:
    """LockCount: -1 when free, -2 when owned with nobody waiting (bit 0 clear:
    locked; bit 1 set: no waiter woken), whatever the owner's recursion count,
    which RecursionCount holds; -1 again once left as often as entered."""
    cs = CRITICAL_SECTION()
    h.ws.InitializeCriticalSection(cs)
    assert (cs.LockCount, cs.RecursionCount, cs.OwningThread) == (-1, 0, 0)
    h.ws.EnterCriticalSection(cs)
    assert (cs.LockCount, cs.RecursionCount, cs.OwningThread) == (-2, 1, h.ws.GetCurrentThreadId())
    assert h.ws.TryEnterCriticalSection(cs) == TRUE
    assert (cs.LockCount, cs.RecursionCount) == (-2, 2)
    h.ws.LeaveCriticalSection(cs)
    assert (cs.LockCount, cs.RecursionCount) == (-2, 1)
    h.ws.LeaveCriticalSection(cs)
    assert (cs.LockCount, cs.RecursionCount, cs.OwningThread) == (-1, 0, 0)
    h.ws.DeleteCriticalSection(cs)


@pytest.mark.wine_divergence(_LOCKCOUNT_WINE)
def test_lock_count_counts_a_blocked_waiter(h: Harness) -> None:
    """A thread blocked in EnterCriticalSection while this one owns the section:
    LockCount -6 (locked, no waiter woken, one waiter: the ones' complement of 1
    in the bits above the two flags); once the waiter has had and left the section
    it is -1 again."""
    cs = CRITICAL_SECTION()
    h.ws.InitializeCriticalSection(cs)
    h.ws.EnterCriticalSection(cs)
    ready = h.event()

    def routine(_: Any) -> int:
        assert h.ws.WSASetEvent(ready) == TRUE
        h.ws.EnterCriticalSection(cs)
        h.ws.LeaveCriticalSection(cs)
        return 0

    t = _start(h, routine)
    assert h.ws.WaitForSingleObject(ready, WAIT_MS) == WAIT_OBJECT_0
    for _ in range(200):  # until the waiter has stopped spinning and blocks (Windows may spin first)
        if cs.LockCount != -2:
            break
        h.ws.Sleep(10)
    assert (cs.LockCount, cs.RecursionCount) == (-6, 1)
    h.ws.LeaveCriticalSection(cs)
    assert _join(h, t) == 0
    assert (cs.LockCount, cs.RecursionCount, cs.OwningThread) == (-1, 0, 0)
    h.ws.DeleteCriticalSection(cs)


# -- several AcceptEx on one listener ---------------------------------------------


def _state(h: Harness, pa: PostedAccept) -> tuple[int, int, int, int]:
    """(ok, bytes, last error, Internal) of an AcceptEx, read without waiting."""
    ok, nbytes, _ = h.ws.WSAGetOverlappedResult(pa.sock, pa.ov, FALSE)
    return ok, nbytes, (0 if ok else h.ws.WSAGetLastError()), pa.ov.Internal


def test_pending_accepts_take_connections_in_the_order_they_were_posted(h: Harness) -> None:
    """Three AcceptEx pending on one listener, two clients connecting one after
    the other: the first AcceptEx gets the first client, the second the second
    (both TRUE, 0 bytes, STATUS_SUCCESS); the third stays pending
    (WSA_IO_INCOMPLETE, Internal STATUS_PENDING)."""
    lst = h.listener()
    posted = [h.post_accept(on=lst) for _ in range(3)]
    clients = []
    for pa in posted[:2]:
        p = h.peer()
        p.connect("127.0.0.1", lst[1])
        clients.append(p.address)
        assert h.wait(pa.ov.hEvent) == WSA_WAIT_EVENT_0  # this one is complete before the next connects
    for pa, client in zip(posted[:2], clients, strict=True):
        assert _state(h, pa) == (TRUE, 0, 0, 0)
        assert h.ws.setsockopt(pa.sock, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, pa.listener, 8) == 0
        rc, name = h.ws.getpeername(pa.sock)
        assert rc == 0 and name is not None
        assert (name.host, name.port) == client
    assert not h.is_signalled(posted[2].ov.hEvent)
    assert _state(h, posted[2]) == (FALSE, 0, WSA_IO_INCOMPLETE, STATUS_PENDING)


def test_two_quick_connections_pair_with_the_accepts_in_posting_order(h: Harness) -> None:
    """Two AcceptEx pending, two clients connecting back to back (neither accept
    waited for in between): both complete, the first posted with the first client,
    the second with the second."""
    lst = h.listener()
    posted = [h.post_accept(on=lst) for _ in range(2)]
    clients = []
    for _ in posted:
        p = h.peer()
        p.connect("127.0.0.1", lst[1])
        clients.append(p.address)
    for pa, client in zip(posted, clients, strict=True):
        assert h.wait(pa.ov.hEvent) == WSA_WAIT_EVENT_0
        assert _state(h, pa) == (TRUE, 0, 0, 0)
        assert h.ws.setsockopt(pa.sock, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, pa.listener, 8) == 0
        rc, name = h.ws.getpeername(pa.sock)
        assert rc == 0 and name is not None
        assert (name.host, name.port) == client


def test_closing_the_listener_aborts_each_pending_accept_and_keeps_the_accepted(h: Harness) -> None:
    """Two AcceptEx still pending and one completed on one listener, then
    closesocket(listener): each pending one completes with 0 bytes,
    WSA_OPERATION_ABORTED and Internal STATUS_CANCELLED; the connection the
    completed one accepted lives on (data flows both ways)."""
    lst = h.listener()
    posted = [h.post_accept(on=lst) for _ in range(3)]
    p = h.peer()
    p.connect("127.0.0.1", lst[1])
    assert h.wait(posted[0].ov.hEvent) == WSA_WAIT_EVENT_0
    assert h.ws.setsockopt(posted[0].sock, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, lst[0], 8) == 0
    assert h.close(lst[0]) == 0
    for pa in posted[1:]:
        assert h.wait(pa.ov.hEvent) == WSA_WAIT_EVENT_0
        assert _state(h, pa) == (FALSE, 0, WSA_OPERATION_ABORTED, STATUS_CANCELLED)
    p.send(b"ping")
    assert h.recv_all(posted[0].sock, 4) == b"ping"
    assert h.send(posted[0].sock, b"pong") == (TRUE, 4)
    assert p.recv_exactly(4) == b"pong"


def test_closing_the_listener_queues_a_failed_packet_per_pending_accept(h: Harness) -> None:
    """On a listener associated with a port, two AcceptEx pending, then
    closesocket(listener): two packets, each FALSE with ERROR_OPERATION_ABORTED,
    0 bytes, the listener's key and its own OVERLAPPED; nothing more."""
    lst = h.listener()
    port = h.port()
    assert h.ws.CreateIoCompletionPort(lst[0], port, 0x55, 0) == port
    posted = [h.post_accept(on=lst) for _ in range(2)]
    assert h.close(lst[0]) == 0
    seen = []
    for _ in posted:
        h.ws.SetLastError(0)
        ok, nbytes, key, ov = h.ws.GetQueuedCompletionStatus(port, WAIT_MS)
        seen.append((ok, nbytes, key, h.ws.GetLastError()))
        assert ov is not None
        assert any(ov is pa.ov for pa in posted)
        assert ov.Internal == STATUS_CANCELLED
    assert seen == [(FALSE, 0, 0x55, ERROR_OPERATION_ABORTED)] * 2
    ok, _, _, ov = h.ws.GetQueuedCompletionStatus(port, 0)
    assert (ok, ov) == (FALSE, None)
    assert h.ws.GetLastError() == WAIT_TIMEOUT



# -- a send whose bytes have gone out ------------------------------------------------


def _send_small(h: Harness, s: int, data: bytes) -> tuple[WSAOVERLAPPED, bytearray]:
    ov = h.overlapped()
    buf = bytearray(data)
    rc, _, _ = h.ws.WSASend(s, [WSABUF(len(buf), buf)], 1, 0, ov, None)
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING
    return ov, buf


def test_cancelling_a_send_whose_bytes_went_out_finds_nothing(h: Harness) -> None:
    """A small send on an idle connection: its bytes go out at once (the transport
    takes them; on Windows the request completes then), so CancelIoEx right after
    finds nothing to cancel (FALSE, ERROR_NOT_FOUND), the send completes with
    every byte, and the peer gets them."""
    conn = h.accept()
    ov, _ = _send_small(h, conn.sock, b"data")
    h.ws.SetLastError(0)
    assert h.ws.CancelIoEx(conn.sock, ov) == FALSE
    assert h.ws.GetLastError() == ERROR_NOT_FOUND
    assert h.complete(conn.sock, ov) == (TRUE, 4, 0)
    assert conn.peer.recv_exactly(4) == b"data"


def test_closing_a_socket_after_a_send_went_out_leaves_the_send_a_success(h: Harness) -> None:
    """closesocket right after a small send whose bytes went out: the send still
    completes with success and every byte (Internal STATUS_SUCCESS, InternalHigh
    4; the operation had ended before the close), and the peer reads the bytes,
    then EOF."""
    conn = h.accept()
    ov, _ = _send_small(h, conn.sock, b"data")
    assert h.close(conn.sock) == 0
    assert h.wait(ov.hEvent) == WSA_WAIT_EVENT_0
    assert (ov.Internal, ov.InternalHigh) == (0, 4)
    assert conn.peer.recv_exactly(4) == b"data"
    assert conn.peer.recv(16) == b""


def test_a_send_that_went_out_outlives_the_exit_of_its_thread(h: Harness) -> None:
    """A thread posts a small send (an event, no port) and exits at once: the
    send, whose bytes went out when it was posted, is not cancelled by the exit
    (afd.c test_async_thread_termination cancels only what is still pending); it
    completes with every byte and the peer gets them."""
    conn = h.accept()
    ov = h.overlapped()
    buf = bytearray(b"data")

    def routine(_: Any) -> int:
        rc, _, _ = h.ws.WSASend(conn.sock, [WSABUF(4, buf)], 1, 0, ov, None)
        return 0 if rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING else 1

    assert _join(h, _start(h, routine)) == 0
    assert h.complete(conn.sock, ov) == (TRUE, 4, 0)
    assert conn.peer.recv_exactly(4) == b"data"


@pytest.mark.wine_divergence("Wine 8.0 leaves a thread waiting on a closed port's handle until its timeout "
                             "(WAIT_TIMEOUT); Windows ends the wait with WAIT_OBJECT_0")
def test_closing_a_port_ends_the_waits_on_its_handle(h: Harness) -> None:
    """Two threads blocked in WaitForSingleObject on an empty port's handle;
    the port is closed: both waits return WAIT_OBJECT_0 (Wine's ntdll
    tests/sync.c test_completion_port_scheduling, "Close port handle while
    threads are waiting on it directly", plain ok(); its skip for WAIT_FAILED
    covers a close that came before the wait began, which the ready events and
    the Sleep here rule out)."""
    port = h.port()
    threads, results = _two_threads_waiting_on(h, port)
    h.ports.remove(port)
    assert h.ws.CloseHandle(port) == TRUE
    assert [_join(h, t) for t in threads] == [0, 0]
    assert results == [WAIT_OBJECT_0, WAIT_OBJECT_0]
