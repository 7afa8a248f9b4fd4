"""Events, WSAWaitForMultipleEvents and WSAGetOverlappedResult.

Sources: Microsoft's WSAWaitForMultipleEvents and WSACreateEvent pages; Wine's
kernel32 sync.c test_WaitForMultipleObjects and sock.c
test_WSAGetOverlappedResult (docs/semantics-findings.md sections 9, 10).
"""

from __future__ import annotations

from fakewinsock.constants import (
    FALSE,
    STATUS_PENDING,
    TRUE,
    WSA_INVALID_HANDLE,
    WSA_INVALID_PARAMETER,
    WSA_IO_INCOMPLETE,
    WSA_IO_PENDING,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_FAILED,
    WSA_WAIT_TIMEOUT,
    WSAENOTSOCK,
)

from ._harness import Harness


def test_event_is_manual_reset(h: Harness) -> None:
    """WSACreateEvent: manual-reset, not signalled; it stays signalled until
    WSAResetEvent (the seed's pitfall 4)."""
    ev = h.event()
    assert h.wait(ev, 0) == WSA_WAIT_TIMEOUT
    assert h.ws.WSASetEvent(ev) == TRUE
    assert h.wait(ev, 0) == WSA_WAIT_EVENT_0
    assert h.wait(ev, 0) == WSA_WAIT_EVENT_0
    assert h.ws.WSAResetEvent(ev) == TRUE
    assert h.wait(ev, 0) == WSA_WAIT_TIMEOUT


def test_create_event_sets_the_last_error_to_zero(h: Harness) -> None:
    """A successful WSACreateEvent leaves the last error 0 (it is
    CreateEventW, which sets the last error on every success: Wine's kernel32
    sync.c test_event and test_mutex, run on Windows, read 0 after creating a
    new named event or mutex; for the unnamed event WSACreateEvent makes this
    is inferred: docs/semantics-findings.md section 59)."""
    for mark in (1234, 0xDEADBEEF):
        h.ws.SetLastError(mark)
        ev = h.ws.WSACreateEvent()
        assert ev != 0
        h.events.append(ev)
        assert h.ws.GetLastError() == 0
        assert h.ws.WSAGetLastError() == 0


def test_lowest_signalled_index_wins(h: Harness) -> None:
    evs = [h.event() for _ in range(5)]
    h.ws.WSASetEvent(evs[3])
    h.ws.WSASetEvent(evs[1])
    assert h.ws.WSAWaitForMultipleEvents(5, evs, FALSE, 0, FALSE) == WSA_WAIT_EVENT_0 + 1


def test_wait_all(h: Harness) -> None:
    evs = [h.event() for _ in range(3)]
    h.ws.WSASetEvent(evs[0])
    h.ws.WSASetEvent(evs[2])
    assert h.ws.WSAWaitForMultipleEvents(3, evs, TRUE, 0, FALSE) == WSA_WAIT_TIMEOUT
    h.ws.WSASetEvent(evs[1])
    assert h.ws.WSAWaitForMultipleEvents(3, evs, TRUE, 0, FALSE) == WSA_WAIT_EVENT_0


def test_sixty_four_events_work_sixty_five_fail(h: Harness) -> None:
    """At most WSA_MAXIMUM_WAIT_EVENTS (64); more gives WSA_WAIT_FAILED and 87."""
    evs = [h.event() for _ in range(65)]
    h.ws.WSASetEvent(evs[63])
    assert h.ws.WSAWaitForMultipleEvents(64, evs, FALSE, 0, FALSE) == WSA_WAIT_EVENT_0 + 63
    assert h.ws.WSAWaitForMultipleEvents(65, evs, FALSE, 0, FALSE) == WSA_WAIT_FAILED
    assert h.ws.WSAGetLastError() == WSA_INVALID_PARAMETER


def test_zero_events_fail(h: Harness) -> None:
    assert h.ws.WSAWaitForMultipleEvents(0, [], FALSE, 0, FALSE) == WSA_WAIT_FAILED
    assert h.ws.WSAGetLastError() == WSA_INVALID_PARAMETER


def test_invalid_handle(h: Harness) -> None:
    """sync.c: an invalid handle gives WAIT_FAILED and ERROR_INVALID_HANDLE (6)."""
    assert h.ws.WSAWaitForMultipleEvents(1, [0xDEADBEE0], FALSE, 0, FALSE) == WSA_WAIT_FAILED
    assert h.ws.WSAGetLastError() == WSA_INVALID_HANDLE
    assert h.ws.WSASetEvent(0xDEADBEE0) == FALSE
    assert h.ws.WSAGetLastError() == WSA_INVALID_HANDLE


def test_timeout(h: Harness) -> None:
    ev = h.event()
    assert h.ws.WSAWaitForMultipleEvents(1, [ev], FALSE, 50, FALSE) == WSA_WAIT_TIMEOUT


def test_overlapped_result_pending_no_wait(h: Harness) -> None:
    """Pending with fWait FALSE: FALSE, WSA_IO_INCOMPLETE (996)."""
    a = h.accept()
    ov = h.overlapped()
    h.recv(a.sock, ov)
    assert h.ws.WSAGetLastError() == WSA_IO_PENDING
    ok, _, _ = h.ws.WSAGetOverlappedResult(a.sock, ov, FALSE)
    assert ok == FALSE and h.ws.WSAGetLastError() == WSA_IO_INCOMPLETE


def test_overlapped_result_wait(h: Harness) -> None:
    """fWait TRUE waits for the operation's event."""
    a = h.accept()
    ov = h.overlapped()
    rc, _, buf = h.recv(a.sock, ov)
    a.peer.send(b"x")
    ok, n, _ = h.ws.WSAGetOverlappedResult(a.sock, ov, TRUE)
    assert (ok, n) == (TRUE, 1) and buf[:1] == b"x"


def test_overlapped_result_wait_returns_when_event_set_by_someone_else(h: Harness) -> None:
    """test_WSAGetOverlappedResult: with Internal still STATUS_PENDING but the
    event signalled (here by WSASetEvent), fWait TRUE returns TRUE at once."""
    a = h.accept()
    ov = h.overlapped()
    h.recv(a.sock, ov)
    h.ws.WSASetEvent(ov.hEvent)
    ok, _, _ = h.ws.WSAGetOverlappedResult(a.sock, ov, TRUE)
    assert ok == TRUE
    assert ov.Internal == STATUS_PENDING


def test_overlapped_result_not_a_socket(h: Harness) -> None:
    a = h.accept()
    ov = h.overlapped()
    h.recv(a.sock, ov)
    ok, _, _ = h.ws.WSAGetOverlappedResult(0xDEADBEE0, ov, FALSE)
    assert ok == FALSE and h.ws.WSAGetLastError() == WSAENOTSOCK


def test_overlapped_result_wait_on_a_handle_that_is_no_event(h: Harness) -> None:
    """Microsoft's WSAGetOverlappedResult page: WSA_INVALID_HANDLE when hEvent
    holds no valid event.  fWait TRUE waits on hEvent, and that wait fails; the
    operation goes on (the kernel took its event when it was posted)."""
    a = h.accept()
    ov = h.overlapped()
    rc, _, buf = h.recv(a.sock, ov)
    assert rc != 0 and h.ws.WSAGetLastError() == WSA_IO_PENDING
    event, ov.hEvent = ov.hEvent, 0xDEADBEE0
    ok, _, _ = h.ws.WSAGetOverlappedResult(a.sock, ov, TRUE)
    assert ok == FALSE and h.ws.WSAGetLastError() == WSA_INVALID_HANDLE
    assert ov.Internal == STATUS_PENDING
    ov.hEvent = event
    a.peer.send(b"x")
    ok, n, _ = h.ws.WSAGetOverlappedResult(a.sock, ov, TRUE)
    assert (ok, n) == (TRUE, 1) and buf[:1] == b"x"
