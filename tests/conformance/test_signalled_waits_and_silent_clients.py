"""Section 27 of docs/semantics-findings.md: what an alertable wait does when
its object is already signalled and user APCs are queued, and SO_CONNECT_TIME
on the accept socket of an AcceptEx that waits for a silent client's data.

* Windows' kernel tests the objects of a wait before it tests for a pending
  user APC (KeWaitForMultipleObjects and KeWaitForSingleObject in Microsoft's
  Windows Research Kernel, ``base/ntos/ke/wait.c``: ``TestForAlertPending``
  comes after the scan that satisfies the wait with a signalled object).  So
  an alertable wait whose object is signalled when it begins returns that
  object's index and leaves the APCs queued; a wait that finds nothing
  signalled runs them and returns WAIT_IO_COMPLETION.
* Microsoft's AcceptEx page: with a receive buffer, AcceptEx completes only
  once data arrives, and ``getsockopt(SO_CONNECT_TIME)`` on the accept socket
  tells whether a connection has been accepted meanwhile (the seconds it has
  been connected; 0xFFFFFFFF while none), so that a server can close a client
  that connects and sends nothing.
"""

from __future__ import annotations

import struct

from fakewinsock import ApcRoutine
from fakewinsock.constants import (
    FALSE,
    SO_CONNECT_TIME,
    SOL_SOCKET,
    TRUE,
    WAIT_IO_COMPLETION,
    WAIT_OBJECT_0,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_IO_COMPLETION,
    WSA_WAIT_TIMEOUT,
)

from ._harness import WAIT_MS, Harness

NOT_CONNECTED = 0xFFFFFFFF


def queue_self(h: Harness, log: list[int], data: int) -> None:
    def fn(d: int) -> None:
        log.append(d)

    routine: ApcRoutine = fn
    assert h.ws.QueueUserAPC(routine, h.ws.GetCurrentThread(), data) != 0


def test_a_signalled_event_satisfies_an_alertable_wait_before_queued_apcs(h: Harness) -> None:
    """WSAWaitForMultipleEvents and WaitForSingleObjectEx, alertable, on an event
    signalled beforehand with an APC queued: the event's index, the APC still
    queued; once the event is reset, the next alertable wait runs it."""
    log: list[int] = []
    ev = h.event()
    assert h.ws.WSASetEvent(ev) == TRUE
    queue_self(h, log, 1)
    assert h.ws.WSAWaitForMultipleEvents(1, [ev], FALSE, WAIT_MS, TRUE) == WSA_WAIT_EVENT_0
    assert h.ws.WaitForSingleObjectEx(ev, WAIT_MS, TRUE) == WAIT_OBJECT_0
    assert h.ws.WaitForSingleObjectEx(ev, 0, TRUE) == WAIT_OBJECT_0
    assert log == []
    assert h.ws.WSAResetEvent(ev) == TRUE
    assert h.ws.WSAWaitForMultipleEvents(1, [ev], FALSE, WAIT_MS, TRUE) == WSA_WAIT_IO_COMPLETION
    assert log == [1]
    assert h.ws.SleepEx(0, TRUE) == 0


def test_wait_for_any_returns_the_signalled_index_with_apcs_queued(h: Harness) -> None:
    """WaitForMultipleObjectsEx for any of two events, the second signalled, an
    APC queued: WAIT_OBJECT_0 + 1, the APC left for SleepEx."""
    log: list[int] = []
    quiet, ready = h.event(), h.event()
    assert h.ws.WSASetEvent(ready) == TRUE
    queue_self(h, log, 2)
    assert h.ws.WaitForMultipleObjectsEx(2, [quiet, ready], FALSE, WAIT_MS, TRUE) == WAIT_OBJECT_0 + 1
    assert h.ws.WSAWaitForMultipleEvents(2, [quiet, ready], FALSE, WAIT_MS, TRUE) == WSA_WAIT_EVENT_0 + 1
    assert log == []
    assert h.ws.SleepEx(0, TRUE) == WAIT_IO_COMPLETION
    assert log == [2]


def test_wait_for_all_runs_apcs_only_while_one_object_is_unsignalled(h: Harness) -> None:
    """bWaitAll: with one of two events unsignalled the queued APC ends the wait
    (WAIT_IO_COMPLETION); with both signalled the wait is satisfied first
    (WAIT_OBJECT_0) and a second APC stays queued."""
    log: list[int] = []
    a, b = h.event(), h.event()
    assert h.ws.WSASetEvent(a) == TRUE
    queue_self(h, log, 3)
    assert h.ws.WaitForMultipleObjectsEx(2, [a, b], TRUE, WAIT_MS, TRUE) == WAIT_IO_COMPLETION
    assert log == [3]
    assert h.ws.WSASetEvent(b) == TRUE
    queue_self(h, log, 4)
    assert h.ws.WaitForMultipleObjectsEx(2, [a, b], TRUE, WAIT_MS, TRUE) == WAIT_OBJECT_0
    assert h.ws.WSAWaitForMultipleEvents(2, [a, b], TRUE, WAIT_MS, TRUE) == WSA_WAIT_EVENT_0
    assert log == [3]
    assert h.ws.SleepEx(0, TRUE) == WAIT_IO_COMPLETION
    assert log == [3, 4]


def test_an_exited_thread_satisfies_an_alertable_wait_before_queued_apcs(h: Harness) -> None:
    """The handle of a thread that has exited is signalled: an alertable wait on
    it returns WAIT_OBJECT_0 though an APC is queued to the waiting thread."""
    log: list[int] = []

    def proc(param: object) -> int:
        return 0

    hThread, _ = h.ws.CreateThread(None, 0, proc, None, 0)
    assert h.ws.WaitForSingleObject(hThread, WAIT_MS) == WAIT_OBJECT_0
    queue_self(h, log, 5)
    assert h.ws.WaitForSingleObjectEx(hThread, WAIT_MS, TRUE) == WAIT_OBJECT_0
    assert log == []
    assert h.ws.CloseHandle(hThread) == TRUE
    assert h.ws.SleepEx(0, TRUE) == WAIT_IO_COMPLETION
    assert log == [5]


def connect_time(h: Harness, s: int) -> int:
    rc, val = h.ws.getsockopt(s, SOL_SOCKET, SO_CONNECT_TIME, 4)
    assert rc == 0, h.ws.WSAGetLastError()
    (value,) = struct.unpack("<I", val)
    return int(value)


def test_connect_time_tells_a_silent_client_from_none(h: Harness) -> None:
    """AcceptEx with room for data: while no client has connected its accept
    socket's SO_CONNECT_TIME is 0xFFFFFFFF; a client that connects and sends
    nothing leaves the accept pending, and the accept socket's SO_CONNECT_TIME
    is then the seconds since the connect (0, then 1 after 1.2 s), which goes on
    counting after the client's first byte completes the accept."""
    posted = h.post_accept(rdl=16)
    assert connect_time(h, posted.sock) == NOT_CONNECTED
    peer = h.peer()
    peer.connect("127.0.0.1", posted.port)
    assert h.wait(posted.ov.hEvent, 200) == WSA_WAIT_TIMEOUT  # it waits for data
    assert connect_time(h, posted.sock) == 0
    assert h.wait(posted.ov.hEvent, 1000) == WSA_WAIT_TIMEOUT
    assert connect_time(h, posted.sock) == 1
    peer.send(b"hello")
    ok, n, err = h.complete(posted.listener, posted.ov)
    assert ok and n >= 1, err
    assert connect_time(h, posted.sock) in (1, 2)


def test_closing_the_accept_socket_of_a_silent_client_ends_the_accept(h: Harness) -> None:
    """The page's advice: close the accept socket of a connection that has sent
    nothing for too long; that completes the AcceptEx with an error, and the
    next AcceptEx on the listener is free for the next client."""
    posted = h.post_accept(rdl=16)
    silent = h.peer()
    silent.connect("127.0.0.1", posted.port)
    assert h.wait(posted.ov.hEvent, 1100) == WSA_WAIT_TIMEOUT
    assert connect_time(h, posted.sock) == 1
    assert h.close(posted.sock) == 0
    ok, n, _ = h.complete(posted.listener, posted.ov)
    assert not ok and n == 0
    try:  # the silent client's connection is closed (EOF: Wine; a reset is allowed, unverified)
        assert silent.recv(16, timeout=WAIT_MS / 1000) == b""
    except ConnectionResetError:
        pass
    again = h.post_accept(rdl=16, on=(posted.listener, posted.port))
    assert connect_time(h, again.sock) == NOT_CONNECTED
    talker = h.peer()
    talker.connect("127.0.0.1", posted.port)
    talker.send(b"hi")
    ok, n, err = h.complete(again.listener, again.ov)
    assert ok and n >= 1, err
    assert bytes(again.out[:n]) == b"hi"[:n]
