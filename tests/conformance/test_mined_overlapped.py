"""WSAGetOverlappedResult and the fields of a WSAOVERLAPPED, mined from Wine's sock.c.

Sources (plain ok() checks, which run on Windows):

* ``test_WSAGetOverlappedResult``: every NTSTATUS in eight ranges written into
  ``Internal`` and read back through WSAGetOverlappedResult (TRUE exactly for a
  success status other than STATUS_PENDING; the Winsock error of ws2_32's
  ``map_status`` otherwise, WSAEINVAL for any status it does not list); a bogus
  handle; fWait with the event already signalled while ``Internal`` still says
  STATUS_PENDING, which returns TRUE without running queued completion routines.
* ``test_nonblocking_async_recv``: a pending WSARecv writes STATUS_PENDING into
  ``Internal`` and leaves ``InternalHigh`` alone; with no event,
  WSAGetOverlappedResult(fWait) waits on the socket.
* ``test_timeout``: SO_RCVTIMEO does not apply to an overlapped receive.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from fakewinsock import WSABUF, WSAOVERLAPPED, sockaddr_in
from fakewinsock.constants import (
    FALSE,
    SO_RCVTIMEO,
    SOCKET_ERROR,
    SOL_SOCKET,
    STATUS_PENDING,
    TRUE,
    WAIT_IO_COMPLETION,
    WSA_IO_PENDING,
    WSA_WAIT_TIMEOUT,
    WSAEINVAL,
    WSAENOTSOCK,
)

from ._harness import Harness
from .test_cut_send import big, post_big_send

ERROR_IO_INCOMPLETE = 996
ERROR_OPERATION_ABORTED = 995

# ws2_32's map_status as Wine's test states it (status -> Winsock error).
MAP_STATUS = {
    0x00000103: ERROR_IO_INCOMPLETE,  # STATUS_PENDING
    0x80000005: 10040,  # STATUS_BUFFER_OVERFLOW: WSAEMSGSIZE
    0xC0000002: 10045,  # STATUS_NOT_IMPLEMENTED: WSAEOPNOTSUPP
    0xC0000005: 10014,  # STATUS_ACCESS_VIOLATION: WSAEFAULT
    0xC0000007: 10055,  # STATUS_PAGEFILE_QUOTA: WSAENOBUFS
    0xC0000008: 10038,  # STATUS_INVALID_HANDLE: WSAENOTSOCK
    0xC000000E: 10050,  # STATUS_NO_SUCH_DEVICE: WSAENETDOWN
    0xC000000F: 10050,  # STATUS_NO_SUCH_FILE
    0xC0000017: 10055,  # STATUS_NO_MEMORY
    0xC0000018: 10055,  # STATUS_CONFLICTING_ADDRESSES
    0xC0000022: 10013,  # STATUS_ACCESS_DENIED: WSAEACCES
    0xC0000023: 10014,  # STATUS_BUFFER_TOO_SMALL: WSAEFAULT
    0xC0000024: 10038,  # STATUS_OBJECT_TYPE_MISMATCH: WSAENOTSOCK
    0xC0000034: 10050,  # STATUS_OBJECT_NAME_NOT_FOUND
    0xC000003A: 10050,  # STATUS_OBJECT_PATH_NOT_FOUND
    0xC0000043: 10048,  # STATUS_SHARING_VIOLATION: WSAEADDRINUSE
    0xC0000044: 10055,  # STATUS_QUOTA_EXCEEDED
    0xC0000097: 10055,  # STATUS_TOO_MANY_PAGING_FILES
    0xC000009A: 10055,  # STATUS_INSUFFICIENT_RESOURCES
    0xC00000A1: 10055,  # STATUS_WORKING_SET_QUOTA
    0xC00000A3: 10035,  # STATUS_DEVICE_NOT_READY: WSAEWOULDBLOCK
    0xC00000B0: 10058,  # STATUS_PIPE_DISCONNECTED: WSAESHUTDOWN
    0xC00000B5: 10060,  # STATUS_IO_TIMEOUT: WSAETIMEDOUT
    0xC00000BB: 10045,  # STATUS_NOT_SUPPORTED: WSAEOPNOTSUPP
    0xC00000BC: 10061,  # STATUS_REMOTE_NOT_LISTENING: WSAECONNREFUSED
    0xC00000BE: 10051,  # STATUS_BAD_NETWORK_PATH: WSAENETUNREACH
    0xC00000BF: 10050,  # STATUS_NETWORK_BUSY
    0xC00000C3: 10050,  # STATUS_INVALID_NETWORK_RESPONSE
    0xC00000C4: 10050,  # STATUS_UNEXPECTED_NETWORK_ERROR
    0xC00000D0: 10035,  # STATUS_REQUEST_NOT_ACCEPTED: WSAEWOULDBLOCK
    0xC0000120: ERROR_OPERATION_ABORTED,  # STATUS_CANCELLED
    0xC000012D: 10055,  # STATUS_COMMITMENT_LIMIT
    0xC000013B: 10053,  # STATUS_LOCAL_DISCONNECT: WSAECONNABORTED
    0xC000013C: 10054,  # STATUS_REMOTE_DISCONNECT: WSAECONNRESET
    0xC000013D: 10055,  # STATUS_REMOTE_RESOURCES
    0xC000013E: 10054,  # STATUS_LINK_FAILED
    0xC000013F: 10060,  # STATUS_LINK_TIMEOUT
    0xC0000140: 10057,  # STATUS_INVALID_CONNECTION: WSAENOTCONN
    0xC0000141: 10049,  # STATUS_INVALID_ADDRESS: WSAEADDRNOTAVAIL
    0xC0000206: 10040,  # STATUS_INVALID_BUFFER_SIZE: WSAEMSGSIZE
    0xC0000207: 10049,  # STATUS_INVALID_ADDRESS_COMPONENT
    0xC0000209: 10055,  # STATUS_TOO_MANY_ADDRESSES
    0xC000020A: 10048,  # STATUS_ADDRESS_ALREADY_EXISTS
    0xC000020C: 10054,  # STATUS_CONNECTION_DISCONNECTED
    0xC000020D: 10054,  # STATUS_CONNECTION_RESET
    0xC000020F: 10053,  # STATUS_TRANSACTION_ABORTED
    0xC0000236: 10061,  # STATUS_CONNECTION_REFUSED
    0xC0000237: 10101,  # STATUS_GRACEFUL_DISCONNECT: WSAEDISCON
    0xC000023B: 10056,  # STATUS_CONNECTION_ACTIVE: WSAEISCONN
    0xC000023C: 10051,  # STATUS_NETWORK_UNREACHABLE
    0xC000023D: 10065,  # STATUS_HOST_UNREACHABLE: WSAEHOSTUNREACH
    0xC000023E: 10051,  # STATUS_PROTOCOL_UNREACHABLE
    0xC000023F: 10054,  # STATUS_PORT_UNREACHABLE
    0xC0000240: 10004,  # STATUS_REQUEST_ABORTED: WSAEINTR
    0xC0000241: 10053,  # STATUS_CONNECTION_ABORTED
    0xC00002C5: 10014,  # STATUS_DATATYPE_MISALIGNMENT_ERROR: WSAEFAULT
    0xC0000350: 10064,  # STATUS_HOST_DOWN: WSAEHOSTDOWN
    0x800703E4: ERROR_IO_INCOMPLETE,  # HRESULT-style wrappings of ERROR_IO_INCOMPLETE
    0xC00103E4: ERROR_IO_INCOMPLETE,
    0xC00703E4: ERROR_IO_INCOMPLETE,
}

RANGES = [(0x0, 0x10000), (0x40000000, 0x40001000), (0x80000000, 0x80001000), (0x80070000, 0x80080000),
          (0xC0000000, 0xC0001000), (0xC0070000, 0xC0080000), (0xD0000000, 0xD0001000),
          (0xD0070000, 0xD0080000)]


def _dos_error_of() -> Callable[[int], int] | None:
    """RtlNtStatusToDosError where Windows (or Wine) runs; None elsewhere."""
    if sys.platform != "win32":
        return None
    import ctypes

    fn = ctypes.WinDLL("ntdll").RtlNtStatusToDosError  # type: ignore[attr-defined, unused-ignore]
    fn.restype = ctypes.c_ulong
    fn.argtypes = [ctypes.c_ulong]
    return fn


@pytest.mark.parametrize(("first", "end"), RANGES, ids=[f"{a:#x}" for a, _ in RANGES])
def test_every_ntstatus_maps_like_windows(h: Harness, first: int, end: int) -> None:
    """A success status other than STATUS_PENDING reads as TRUE (the last error
    then is RtlNtStatusToDosError of it from Windows 10 1809, 0 before, left
    alone before Windows 7); any other status reads as FALSE with map_status's
    error, WSAEINVAL when it lists none (0xC00703E4 gave WSAEINVAL before
    Windows 8)."""
    s = h.socket()
    ov = WSAOVERLAPPED()
    dos_error = _dos_error_of()
    wrong: list[str] = []
    for status in range(first, end):
        ov.Internal = status
        h.ws.WSASetLastError(0xDEADBEEF)
        ok, _, _ = h.ws.WSAGetOverlappedResult(s, ov, FALSE)
        err = h.ws.WSAGetLastError() & 0xFFFFFFFF
        success = status < 0x80000000 and status != STATUS_PENDING
        if success:
            allowed = {0, 0xDEADBEEF}
            if dos_error is not None:
                allowed.add(dos_error(status))
            good = ok == TRUE and err in allowed
        else:
            expected = MAP_STATUS.get(status, WSAEINVAL)
            good = ok == FALSE and (err == expected or (status == 0xC00703E4 and err == WSAEINVAL))
        if not good:
            wrong.append(f"{status:#x}: {ok}/{err}")
    assert not wrong, f"{len(wrong)} statuses read differently, e.g. {wrong[:8]}"


def test_not_a_socket(h: Harness) -> None:
    ov = WSAOVERLAPPED()
    h.ws.WSASetLastError(0xDEADBEEF)
    ok, _, _ = h.ws.WSAGetOverlappedResult(0xDEADBEEF, ov, FALSE)
    assert ok == FALSE and h.ws.WSAGetLastError() == WSAENOTSOCK


def test_wait_on_a_signalled_event_runs_no_routine(h: Harness) -> None:
    """Internal says STATUS_PENDING but the (manual-reset) event is already
    signalled: fWait TRUE returns TRUE at once, last error ERROR_IO_PENDING or
    0; the wait is not alertable, so a completion routine already queued (here
    a finished WSARecv's) runs only in the next alertable wait."""
    a = h.accept()
    ran: list[int] = []
    rov = h.overlapped(with_event=False)
    rc, _, _ = h.recv(a.sock, rov, routine=lambda err, n, ov, flags: ran.append(n))
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING
    a.peer.send(b"x")
    idle = h.event()
    for _ in range(500):  # until the receive is done (non-alertable waits)
        if rov.Internal != STATUS_PENDING:
            break
        h.wait(idle, 10)
    assert rov.Internal != STATUS_PENDING
    ov = WSAOVERLAPPED()
    ov.Internal = STATUS_PENDING
    ov.hEvent = h.event()
    assert h.ws.WSASetEvent(ov.hEvent) == TRUE
    ok, _, _ = h.ws.WSAGetOverlappedResult(a.sock, ov, TRUE)
    assert ok == TRUE
    assert h.ws.WSAGetLastError() in (WSA_IO_PENDING, 0)
    assert ran == []
    assert h.ws.SleepEx(0, TRUE) == WAIT_IO_COMPLETION
    assert ran == [1]


def test_pending_receive_writes_internal_only(h: Harness) -> None:
    """A pending WSARecv with no event: Internal becomes STATUS_PENDING,
    InternalHigh keeps what was there; WSAGetOverlappedResult(fWait) then waits
    on the socket and returns the data."""
    a = h.accept()
    ov = WSAOVERLAPPED()
    ov.Internal = 0xDEADBEEF
    ov.InternalHigh = 0xDEADBEEF
    buf = bytearray(5)
    rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(5, buf)], 1, 0, ov, None)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert ov.Internal == STATUS_PENDING
    assert ov.InternalHigh == 0xDEADBEEF
    a.peer.send(b"data")
    ok, n, _ = h.ws.WSAGetOverlappedResult(a.sock, ov, TRUE)
    assert ok == TRUE and 1 <= n <= 4 and bytes(buf[:n]) == b"data"[:n]


def _until_done(h: Harness, ov: WSAOVERLAPPED) -> None:
    """Non-alertable waits of 10 ms until ``ov``'s operation is done (its
    Internal no longer STATUS_PENDING), without waiting on the socket."""
    idle = h.event()
    for _ in range(1000):
        if ov.Internal != STATUS_PENDING:
            return
        h.wait(idle, 10)
    raise AssertionError("the operation did not complete")


@pytest.mark.parametrize("routine", [False, True], ids=["send-no-event", "send-with-routine"])
def test_overlapped_result_wait_with_no_event_ends_when_another_operation_signals_the_socket(
        h: Harness, routine: bool) -> None:
    """With no hEvent, WSAGetOverlappedResult(fWait=TRUE) waits on the socket
    handle, which any operation started on it unsignals and any completing with
    no event signals (the I/O manager's file object event: Wine's ntdll
    read_file_test, on Windows, "with no event, the pipe handle itself gets
    signaled", and not with an event; Microsoft's GetOverlappedResult page warns
    of the confusion with several operations on one handle).  A receive pending
    with no event, then a send with no event that completes (the peer reads it
    all): the wait on the receive returns TRUE at once with the receive still
    pending (Internal STATUS_PENDING, the count InternalHigh holds, the last
    error WSA_IO_PENDING or 0, as for an event signalled by someone else); the
    receive later completes with the peer's bytes.  The same when the send
    notifies through a completion routine (it has no event either)."""
    a = h.accept()
    rov = WSAOVERLAPPED()
    buf = bytearray(5)
    rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(5, buf)], 1, 0, rov, None)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    data = big(h)
    sov = h.overlapped(with_event=False)
    ran: list[int] = []
    post_big_send(h, a, data, sov, (lambda err, n, ov, flags: ran.append(n)) if routine else None)
    assert a.peer.recv_exactly(len(data)) == bytes(data)
    _until_done(h, sov)
    assert (sov.Internal, sov.InternalHigh) == (0, len(data))
    assert rov.Internal == STATUS_PENDING
    ok, n, _ = h.ws.WSAGetOverlappedResult(a.sock, rov, TRUE)
    assert (ok, n) == (TRUE, rov.InternalHigh)
    assert h.ws.WSAGetLastError() in (WSA_IO_PENDING, 0)
    assert rov.Internal == STATUS_PENDING, "the wait on the socket waited for the receive"
    if h.is_fake:  # the fake's trace says which wait ended it, and that the receive is still pending
        fetched = [r for r in h.ws.trace if r.what == "fetched"][-1]  # type: ignore[attr-defined]
        assert (fetched.call, fetched.handle) == ("WSAGetOverlappedResult", a.sock)
        assert fetched.detail.startswith("socket handle signalled, still pending: TRUE"), fetched.detail
    if routine:
        assert h.ws.SleepEx(0, TRUE) == WAIT_IO_COMPLETION and ran == [len(data)]
    a.peer.send(b"data")
    _until_done(h, rov)
    ok, n, _ = h.ws.WSAGetOverlappedResult(a.sock, rov, FALSE)
    assert ok == TRUE and 1 <= n <= 4 and bytes(buf[:n]) == b"data"[:n]


def test_a_receive_posted_after_another_completion_unsignals_the_socket(h: Harness) -> None:
    """Starting an operation unsignals the handle (read_file_test: the handle,
    signalled before, is not once a read pends): a small send with no event
    completes (signalling the socket), then a receive with no event is posted;
    WSAGetOverlappedResult(fWait=TRUE) on it waits for the receive itself and
    returns the peer's bytes."""
    a = h.accept()
    sov = h.overlapped(with_event=False)
    sbuf = bytearray(b"hello")
    rc, _, _ = h.ws.WSASend(a.sock, [WSABUF(5, sbuf)], 1, 0, sov, None)
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING
    _until_done(h, sov)
    assert a.peer.recv_exactly(5) == b"hello"
    rov = WSAOVERLAPPED()
    buf = bytearray(5)
    rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(5, buf)], 1, 0, rov, None)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    a.peer.send(b"data")
    ok, n, _ = h.ws.WSAGetOverlappedResult(a.sock, rov, TRUE)
    assert rov.Internal == 0, "the wait on the socket ended before the receive completed"
    assert ok == TRUE and 1 <= n <= 4 and bytes(buf[:n]) == b"data"[:n]


def test_an_operation_with_an_event_does_not_signal_the_socket(h: Harness) -> None:
    """A completion with an event signals the event, not the handle
    (read_file_test: after a read with an event completes, "read handle is
    signaled" is false): a receive with no event pends, a small send with an
    event completes; WSAGetOverlappedResult(fWait=TRUE) on the receive still
    waits for the receive itself and returns the peer's bytes."""
    a = h.accept()
    rov = WSAOVERLAPPED()
    buf = bytearray(5)
    rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(5, buf)], 1, 0, rov, None)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    sov = h.overlapped()
    sbuf = bytearray(b"hello")
    rc, _, _ = h.ws.WSASend(a.sock, [WSABUF(5, sbuf)], 1, 0, sov, None)
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert h.wait(sov.hEvent) == 0
    assert a.peer.recv_exactly(5) == b"hello"
    a.peer.send(b"data")
    ok, n, _ = h.ws.WSAGetOverlappedResult(a.sock, rov, TRUE)
    assert rov.Internal == 0, "the send's completion with an event signalled the socket"
    assert ok == TRUE and 1 <= n <= 4 and bytes(buf[:n]) == b"data"[:n]


def test_rcvtimeo_does_not_apply_to_overlapped_receives(h: Harness) -> None:
    """SO_RCVTIMEO reads 0 by default (last error 0, 4 bytes); set to 100 ms,
    an overlapped WSARecv still pends past it and completes when data comes."""
    a = h.accept()
    h.ws.WSASetLastError(0xDEADBEEF)
    rc, val = h.ws.getsockopt(a.sock, SOL_SOCKET, SO_RCVTIMEO, 4)
    assert (rc, val, h.ws.WSAGetLastError()) == (0, bytes(4), 0)
    assert h.ws.setsockopt(a.sock, SOL_SOCKET, SO_RCVTIMEO, 100, 4) == 0
    rc, val = h.ws.getsockopt(a.sock, SOL_SOCKET, SO_RCVTIMEO, 4)
    assert rc == 0 and int.from_bytes(val, "little") == 100
    ov = h.overlapped()
    rc, _, buf = h.recv(a.sock, ov, size=1)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert h.wait(ov.hEvent, 200) == WSA_WAIT_TIMEOUT
    a.peer.send(b"a")
    assert h.complete(a.sock, ov) == (TRUE, 1, 0)
    assert buf[:1] == b"a"


@pytest.mark.wine_divergence(
    "Wine 8.0's blocking connect after a refused one fails with WSAECONNABORTED; on Windows the socket "
    "connects again (test_connect 'connect after previous connect attempt failure', a plain ok() there, "
    "made non-blocking)")
def test_connect_after_a_refused_connect(h: Harness) -> None:
    """test_connect: a socket whose connect was refused can connect again."""
    _, port = h.listener()
    dead, dead_port = h.listener()
    h.close(dead)
    s = h.socket()
    assert h.ws.connect(s, sockaddr_in("127.0.0.1", dead_port), 16) == SOCKET_ERROR
    assert h.ws.connect(s, sockaddr_in("127.0.0.1", port), 16) == 0


def test_receives_posted_together_fill_in_posting_order(h: Harness) -> None:
    """test_simultaneous_async_recv: two 16-byte WSARecvs pending, 32 bytes sent
    at once: the first receive gets the start of the data, the second what
    follows it (Windows fills each with 16 bytes there; a stream may also be
    cut elsewhere, so only the order is asserted)."""
    a = h.accept()
    ovs = [h.overlapped(), h.overlapped()]
    bufs = []
    for ov in ovs:
        rc, _, buf = h.recv(a.sock, ov, size=16)
        assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
        bufs.append(buf)
    msg = b"-- Lorem ipsum dolor sit amet -\0"
    a.peer.send(msg)
    got = b""
    for ov, buf in zip(ovs, bufs, strict=True):
        ok, n, err = h.complete(a.sock, ov)
        assert ok == TRUE and n >= 1, err
        got += bytes(buf[:n])
    assert msg.startswith(got)
    assert got + h.recv_all(a.sock, len(msg) - len(got)) == msg
