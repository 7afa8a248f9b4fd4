"""The last error after WSAGetOverlappedResult returns TRUE, on every backend.

Wine's ``test_WSAGetOverlappedResult`` (a plain ok(), so Windows behaviour)
accepts three values after a success status: RtlNtStatusToDosError of the
status (Windows 10 1809 and later), 0 (Windows 7 to 1809), or the last error
left as it was (before Windows 7).  For STATUS_SUCCESS, what an operation that
completed well leaves in ``Internal``, the first two are both 0.  So a program
must not read the last error after a TRUE: it is 0 or whatever an earlier call
left there.  This test accepts both.

The fake always sets 0 (Windows 7 and later); it does not produce the
pre-Windows 7 outcome.  A seeded choice between the two was tried (ce5b31c) and
reverted (d958728): it changed the schedules of every single-threaded program
that reads a completed result, and two tests failed on the new schedules.
"""

from __future__ import annotations

from fakewinsock.constants import FALSE, TRUE, WSA_IO_PENDING, WSA_WAIT_EVENT_0

from ._harness import Harness

SENTINEL = 12345  # no Winsock error has this value


def test_last_error_after_a_completed_receive_is_0_or_left_alone(h: Harness) -> None:
    a = h.accept()
    ov = h.overlapped()
    rc, _, buf = h.recv(a.sock, ov, size=4)
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING
    a.peer.send(b"data")
    assert h.wait(ov.hEvent) == WSA_WAIT_EVENT_0
    h.ws.WSASetLastError(SENTINEL)
    ok, n, _ = h.ws.WSAGetOverlappedResult(a.sock, ov, FALSE)
    assert ok == TRUE and 1 <= n <= 4 and bytes(buf[:n]) == b"data"[:n]
    assert h.ws.WSAGetLastError() in (0, SENTINEL)

