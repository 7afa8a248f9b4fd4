"""The fake catches misuse that is undefined behaviour in C, and bad input.

Misuse raises WinsockUsageError naming the call and the handle; Winsock-level
errors stay return codes; wrong Python types are TypeErrors; what the fake does
not emulate raises NotEmulatedError.
"""

from __future__ import annotations

import array
from collections.abc import Callable

import pytest

from fakewinsock import (
    WSABUF,
    WSAOVERLAPPED,
    DeadlockError,
    FakeConfig,
    FakeWinsock,
    LeakError,
    NotEmulatedError,
    WinsockUsageError,
    sockaddr_in,
)
from fakewinsock.constants import (
    AF_INET,
    AF_INET6,
    FALSE,
    INFINITE,
    INVALID_HANDLE_VALUE,
    IPPROTO_TCP,
    MAKEWORD,
    SOCK_DGRAM,
    SOCK_STREAM,
    SOCKET_ERROR,
    TRUE,
    WAIT_OBJECT_0,
    WSA_FLAG_OVERLAPPED,
    WSA_INFINITE,
    WSA_IO_PENDING,
    WSAEAFNOSUPPORT,
    WSAENOBUFS,
)
from tests.conformance._harness import Harness


@pytest.fixture
def h() -> Harness:
    ws = FakeWinsock(seed=7, config=FakeConfig(immediate=0.0))
    harness = Harness(ws)
    harness.start()
    return harness


def test_reusing_a_pending_overlapped(h: Harness) -> None:
    a = h.accept()
    ov = h.overlapped()
    h.recv(a.sock, ov)
    with pytest.raises(WinsockUsageError, match=r"WSASend on socket 0x[0-9a-f]+: the WSAOVERLAPPED is still in use"):
        h.ws.WSASend(a.sock, [WSABUF(1, bytearray(b"x"))], 1, 0, ov, None)


def test_overlapped_may_be_reused_after_completion(h: Harness) -> None:
    a = h.accept()
    ov = h.overlapped()
    h.recv(a.sock, ov)
    a.peer.send(b"x")
    h.complete(a.sock, ov)
    rc, _, _ = h.recv(a.sock, ov)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING


@pytest.fixture(params=["copies", "crc"])
def snapshots(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both kinds of buffer snapshot: copies, and CRC-32s once the copy budget is spent."""
    if request.param == "crc":
        monkeypatch.setattr("fakewinsock._ops._COPY_BUDGET", 0)
    return str(request.param)


@pytest.mark.usefixtures("snapshots")
@pytest.mark.parametrize("kind", ["bytearray", "part of a bytearray", "memoryview of a bytearray's middle", "array"])
def test_touching_a_receive_buffer_in_flight(h: Harness, kind: str) -> None:
    """A whole bytearray (its snapshot is compared in place), and one the WSABUF
    covers only in part or buffers that are no bytearray (a memoryview of part
    of one, of an array: compared through a copy), are all checked."""
    a = h.accept()
    ov = h.overlapped()
    buf: bytearray | memoryview
    if kind == "array":
        buf = memoryview(array.array("B", bytes(8)))
    elif kind == "memoryview of a bytearray's middle":
        buf = memoryview(bytearray(16))[4:12]
    else:
        buf = bytearray(8 if kind == "bytearray" else 16)
    h.ws.WSARecv(a.sock, [WSABUF(8, buf)], 1, 0, ov, None)
    buf[3] = 0x41
    a.peer.send(b"data")
    with pytest.raises(WinsockUsageError, match=r"WSARecv op\d+ on socket .*lpBuffers\[0\] was modified"):
        h.wait(ov.hEvent)


def _used_receive_buffer(size: int) -> bytearray:
    """A receive buffer as a server leaves it: a line, older bytes after it, zeros to its end."""
    buf = bytearray(size)
    buf[:6] = b"hello\n"
    buf[6:300] = bytes(range(1, 255)) + bytes(40)  # older bytes, zeros among them
    buf[300] = 0x7F
    return buf


@pytest.mark.usefixtures("snapshots")
@pytest.mark.parametrize("where", [0, 5, 20, 250, 300, 301, 4095, 9000, 16383])
@pytest.mark.parametrize("value", [0x00, 0x41])
def test_touching_a_used_receive_buffer_anywhere_in_flight(h: Harness, where: int, value: int) -> None:
    """A whole bytearray whose end is zeros is snapshot only up to its zero
    tail (a short copy meaning "zeros after it"): a change anywhere is caught,
    in the copied part (to zero too) as in the zero tail, to its last byte."""
    a = h.accept()
    ov = h.overlapped()
    buf = _used_receive_buffer(16384)
    if buf[where] == value:
        value ^= 0x41 if value == 0 else 0x41 ^ 0x3F  # always a change
    h.ws.WSARecv(a.sock, [WSABUF(len(buf), buf)], 1, 0, ov, None)
    buf[where] = value
    a.peer.send(b"data")
    with pytest.raises(WinsockUsageError, match=r"lpBuffers\[0\] was modified while the operation was in flight"):
        h.wait(ov.hEvent)


@pytest.mark.usefixtures("snapshots")
@pytest.mark.parametrize("fill", ["used", "zeros", "no zero tail"])
def test_an_untouched_receive_buffer_completes(h: Harness, fill: str) -> None:
    """No false alarm whatever the buffer holds (its zero tail short, long or absent)."""
    a = h.accept()
    ov = h.overlapped()
    buf = (_used_receive_buffer(16384) if fill == "used" else bytearray(16384) if fill == "zeros"
           else bytearray(b"\x01" * 16384))
    before = bytes(buf)
    h.ws.WSARecv(a.sock, [WSABUF(len(buf), buf)], 1, 0, ov, None)
    a.peer.send(b"data")
    h.wait(ov.hEvent)
    ok, n, _ = h.ws.WSAGetOverlappedResult(a.sock, ov, FALSE)
    assert ok == TRUE and 1 <= n <= 4
    assert buf == b"data"[:n] + before[n:]


def test_a_receive_buffer_with_a_zero_tail_holds_a_short_copy(h: Harness) -> None:
    """What the zero tail saves: the copy held for a pending 16 KiB receive of
    a used buffer is its first 512 bytes (the first of 64, 512, 4096 from
    which it is zeros), for a new buffer 64; a buffer without a zero tail,
    or above 1 MiB, is copied whole."""
    a = h.accept()
    assert isinstance(h.ws, FakeWinsock)
    ops = h.ws._ops
    copied = ops._copied
    for buf, held in ((_used_receive_buffer(16384), 512), (bytearray(16384), 64),
                      (bytearray(b"\x01" * 16384), 16384), (bytearray((1 << 20) + 1), (1 << 20) + 1)):
        ov = h.overlapped()
        h.ws.WSARecv(a.sock, [WSABUF(len(buf), buf)], 1, 0, ov, None)
        assert ops._copied - copied == held
        copied += held


@pytest.mark.usefixtures("snapshots")
def test_touching_a_buffer_beyond_the_wsabuf_in_flight_is_allowed(h: Harness) -> None:
    """Only the WSABUF's ``len`` bytes are the kernel's while the receive pends."""
    a = h.accept()
    ov = h.overlapped()
    buf = bytearray(16)
    h.ws.WSARecv(a.sock, [WSABUF(8, buf)], 1, 0, ov, None)
    buf[12] = 0x41
    a.peer.send(b"data")
    h.wait(ov.hEvent)
    ok, n, _ = h.ws.WSAGetOverlappedResult(a.sock, ov, FALSE)
    assert ok == TRUE and 1 <= n <= 4
    assert buf == bytearray(b"data"[:n]) + bytes(12 - n) + b"A" + bytes(3)


@pytest.mark.usefixtures("snapshots")
def test_touching_a_send_buffer_in_flight(h: Harness) -> None:
    a = h.accept()
    ov = h.overlapped()
    buf = bytearray(b"original")
    h.ws.WSASend(a.sock, [WSABUF(len(buf), buf)], 1, 0, ov, None)
    buf[0:1] = b"X"
    with pytest.raises(WinsockUsageError, match="was modified while the operation was in flight"):
        h.wait(ov.hEvent)


def test_resizing_a_buffer_in_flight_is_refused(h: Harness) -> None:
    a = h.accept()
    buf = bytearray(16)
    h.ws.WSARecv(a.sock, [WSABUF(16, buf)], 1, 0, h.overlapped(), None)
    with pytest.raises(BufferError):
        buf.extend(b"more")


def test_modifying_a_pending_overlapped(h: Harness) -> None:
    a = h.accept()
    ov = h.overlapped()
    h.recv(a.sock, ov)
    ov.hEvent = h.event()
    a.peer.send(b"x")
    with pytest.raises(WinsockUsageError, match="WSAOVERLAPPED was modified"):
        h.ws.SleepEx(1000, FALSE)


def test_wsabuf_longer_than_its_buffer(h: Harness) -> None:
    a = h.accept()
    with pytest.raises(WinsockUsageError, match=r"lpBuffers\[0\].len is 32 but its buffer has 8 bytes"):
        h.ws.WSARecv(a.sock, [WSABUF(32, bytearray(8))], 1, 0, h.overlapped(), None)


def test_buffer_count_past_the_array(h: Harness) -> None:
    a = h.accept()
    with pytest.raises(WinsockUsageError, match="dwBufferCount is 2 but lpBuffers has 1"):
        h.ws.WSARecv(a.sock, [WSABUF(8, bytearray(8))], 2, 0, h.overlapped(), None)


def test_acceptex_buffer_too_small(h: Harness) -> None:
    lst, _ = h.listener()
    acc = h.socket()
    with pytest.raises(WinsockUsageError, match="Windows would write past its end"):
        h.ws.AcceptEx(lst, acc, bytearray(10), 0, 32, 32, h.overlapped())


def test_fwait_true_on_a_routine_operation(h: Harness) -> None:
    a = h.accept()
    ov = WSAOVERLAPPED()
    h.ws.WSARecv(a.sock, [WSABUF(8, bytearray(8))], 1, 0, ov, lambda *args: None)
    with pytest.raises(WinsockUsageError, match="fWait=TRUE is only meaningful with event notification"):
        h.ws.WSAGetOverlappedResult(a.sock, ov, TRUE)


def test_waiting_on_a_closed_event(h: Harness) -> None:
    ev = h.ws.WSACreateEvent()
    h.ws.WSACloseEvent(ev)
    with pytest.raises(WinsockUsageError, match=r"lphEvents\[0\] = 0x[0-9a-f]+ is an event that was closed"):
        h.ws.WSAWaitForMultipleEvents(1, [ev], FALSE, 0, FALSE)


@pytest.mark.parametrize("as_type", [float, str])
def test_a_wait_handle_that_is_no_int_is_a_type_error(h: Harness, as_type: type) -> None:
    """A handle must be an int, even one equal to an event's (256.0 hashes as 256):
    in a list or a tuple, first or after open events, as the real backend's ctypes
    array of HANDLEs would refuse it."""
    ev = h.ws.WSACreateEvent()
    h.ws.WSASetEvent(ev)
    other = as_type(ev)
    for handles in ([other, ev], (ev, other)):
        with pytest.raises(TypeError, match="must be an int handle"):
            h.ws.WSAWaitForMultipleEvents(2, handles, FALSE, 0, FALSE)


def test_posting_with_a_closed_event(h: Harness) -> None:
    a = h.accept()
    ov = WSAOVERLAPPED()
    ov.hEvent = h.ws.WSACreateEvent()
    h.ws.WSACloseEvent(ov.hEvent)
    with pytest.raises(WinsockUsageError, match="was closed with WSACloseEvent"):
        h.recv(a.sock, ov)


def test_cleanup_reports_exactly_what_leaked() -> None:
    ws = FakeWinsock(seed=1, config=FakeConfig(immediate=0.0))
    h = Harness(ws)
    h.start()
    a = h.accept()
    ov = h.overlapped()
    h.recv(a.sock, ov)
    with pytest.raises(LeakError) as exc:
        ws.WSACleanup()
    leaks = exc.value.leaks
    assert f"socket {a.sock:#x} (connected) not closed" in leaks
    assert f"socket {a.listener:#x} (listening) not closed" in leaks
    assert f"event {ov.hEvent:#x} not closed" in leaks
    assert any("WSARecv op" in x and f"socket {a.sock:#x} still in flight" in x for x in leaks)


def test_cleanup_reports_routines_never_run() -> None:
    ws = FakeWinsock(seed=1, config=FakeConfig(immediate=0.0))
    h = Harness(ws)
    h.start()
    a = h.accept()
    ov = WSAOVERLAPPED()
    h.ws.WSARecv(a.sock, [WSABUF(8, bytearray(8))], 1, 0, ov, lambda *args: None)
    a.peer.send(b"x")
    ws.run_for(1.0)
    for s in list(h.sockets):
        h.close(s)
    for e in h.events:
        ws.WSACloseEvent(e)
    with pytest.raises(LeakError, match="completion routine of WSARecv op.* never ran"):
        ws.WSACleanup()


def test_infinite_wait_with_nothing_in_flight_is_a_deadlock(h: Harness) -> None:
    ev = h.event()
    with pytest.raises(DeadlockError, match=r"WSAWaitForMultipleEvents\(1 events, INFINITE\) can never return"):
        h.ws.WSAWaitForMultipleEvents(1, [ev], FALSE, WSA_INFINITE, FALSE)
    with pytest.raises(DeadlockError):
        h.ws.SleepEx(INFINITE, FALSE)


def test_wrong_python_types_are_type_errors(h: Harness) -> None:
    with pytest.raises(TypeError, match="SOCKET must be an int handle, not str"):
        h.ws.closesocket("3")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^WSARecv: lpOverlapped must be a WSAOVERLAPPED, not object$"):
        h.ws.WSARecv(h.socket(), [], 0, 0, object(), None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="WSABUF.buf must be"):
        WSABUF(3, "abc")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="name must be a SOCKADDR_IN"):
        h.ws.bind(h.socket(), ("127.0.0.1", 1), 16)  # type: ignore[arg-type]


def test_not_emulated_fails_loudly(h: Harness) -> None:
    with pytest.raises(NotEmulatedError, match="AF_INET6"):
        h.ws.WSASocket(AF_INET6, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
    with pytest.raises(NotEmulatedError, match="SOCK_DGRAM"):
        h.ws.WSASocket(AF_INET, SOCK_DGRAM, 0, None, 0, WSA_FLAG_OVERLAPPED)
    a = h.accept()
    # MSG_OOB, MSG_WAITALL, MSG_PEEK | MSG_WAITALL (MSG_PEEK alone is emulated), MSG_PARTIAL (what a stream
    # socket does with it as input is in no Windows-run test: docs/semantics-findings.md section 30)
    for flags in (1, 8, 2 | 8, 0x8000):
        with pytest.raises(NotEmulatedError, match=f"flags {flags:#x}"):
            h.ws.WSARecv(a.sock, [WSABUF(8, bytearray(8))], 1, flags, h.overlapped(), None)
    for flags in (2, 0x8000):  # no WSASend flag is emulated (0x2, MSG_PARTIAL)
        with pytest.raises(NotEmulatedError, match=f"flags {flags:#x}"):
            h.ws.WSASend(a.sock, [WSABUF(8, bytearray(8))], 1, flags, h.overlapped(), None)
    with pytest.raises(NotEmulatedError, match=rf"^WSARecv on socket {a.sock:#x} without an OVERLAPPED "
                                                r"\(blocking I/O\) is not emulated$"):
        h.ws.WSARecv(a.sock, [WSABUF(8, bytearray(8))], 1, 0, None, None)  # type: ignore[arg-type]
    plain = h.ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, 0)
    h.sockets.append(plain)
    with pytest.raises(NotEmulatedError, match="without WSA_FLAG_OVERLAPPED"):
        h.ws.connect(plain, sockaddr_in("127.0.0.1", a.peer.address[1]), 16)
        h.ws.WSARecv(plain, [WSABUF(8, bytearray(8))], 1, 0, h.overlapped(), None)


def test_waits_on_a_socket_handle_and_closing_other_handles_as_events_are_not_emulated(h: Harness) -> None:
    """Every wait on a socket's handle (waitable on Windows, its state unknown: ``_api_waits._socket_wait``)
    and WSACloseEvent on a socket, thread or port handle or a pseudo-handle (Windows unverified) raise
    NotEmulatedError, and
    leave the object as it was (docs/semantics-findings.md section 35)."""
    a = h.accept()
    ev = h.ws.WSACreateEvent()
    waits: dict[str, Callable[[int], int]] = {
        "WSAWaitForMultipleEvents": lambda s: h.ws.WSAWaitForMultipleEvents(2, [ev, s], FALSE, 0, FALSE),
        "WaitForSingleObject": lambda s: h.ws.WaitForSingleObject(s, 0),
        "WaitForSingleObjectEx": lambda s: h.ws.WaitForSingleObjectEx(s, 0, TRUE),
        "WaitForMultipleObjects": lambda s: h.ws.WaitForMultipleObjects(2, [ev, s], FALSE, 0),
        "WaitForMultipleObjectsEx": lambda s: h.ws.WaitForMultipleObjectsEx(2, [s, ev], TRUE, 0, FALSE),
    }
    for call, wait in waits.items():
        with pytest.raises(NotEmulatedError, match=rf"^{call}: waiting on a socket handle \({a.sock:#x}\)"):
            wait(a.sock)
    port = h.ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, 0)
    thread = h.ws.CreateThread(None, 0, lambda _: 0, None, 0).hThread
    for handle, kind in ((a.sock, "Socket"), (thread, "ProgramThread"), (port, "Port")):
        with pytest.raises(NotEmulatedError, match=rf"^WSACloseEvent\({handle:#x}\) on a {kind} handle"):
            h.ws.WSACloseEvent(handle)
    # the pseudo-handles too (CloseHandle closes them with TRUE, Wine's WSACloseEvent likewise)
    for pseudo in (h.ws.GetCurrentThread(), INVALID_HANDLE_VALUE, -1, -2):
        with pytest.raises(NotEmulatedError, match=r"^WSACloseEvent\(.*\) on a pseudo-handle"):
            h.ws.WSACloseEvent(pseudo)
    assert h.ws.WaitForSingleObject(thread, INFINITE) == WAIT_OBJECT_0
    assert h.ws.CloseHandle(thread) == TRUE
    assert h.ws.CloseHandle(port) == TRUE
    assert h.ws.WSACloseEvent(ev) == TRUE
    a.peer.send(b"still open")
    assert h.recv_all(a.sock, 10) == b"still open"


def test_bad_address_family_is_a_winsock_error(h: Harness) -> None:
    assert h.ws.WSASocket(12345, SOCK_STREAM, 0, None, 0, 0) == 2**64 - 1
    assert h.ws.WSAGetLastError() == WSAEAFNOSUPPORT


def test_injected_enobufs(h: Harness) -> None:
    a = h.accept()
    assert isinstance(h.ws, FakeWinsock)
    h.ws.inject_error("WSARecv", WSAENOBUFS)
    ov = h.overlapped()
    rc, _, _ = h.recv(a.sock, ov)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSAENOBUFS
    assert not h.is_signalled(ov.hEvent)
    rc, _, _ = h.recv(a.sock, ov)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="probability"):
        FakeConfig(split=1.5)
    with pytest.raises(ValueError, match="unknown call kind"):
        FakeConfig(immediate={"WSARecvv": 1.0})
    with pytest.raises(ValueError, match="range"):
        FakeConfig(latency=(10, 5))


def test_startup_type_error() -> None:
    ws = FakeWinsock()
    with pytest.raises(TypeError):
        ws.WSAStartup("2.2")  # type: ignore[arg-type]
    assert ws.WSAStartup(MAKEWORD(2, 2)).error == 0


def test_reset_before_accept_gives_every_windows_outcome_across_seeds() -> None:
    """The seed chooses between the two plausible Windows outcomes."""
    from fakewinsock.constants import WSA_WAIT_TIMEOUT

    outcomes = set()
    for seed in range(20):
        ws = FakeWinsock(seed=seed, config=FakeConfig(immediate=0.0))
        h = Harness(ws)
        h.start()
        lst, port = h.listener()
        p = h.peer()
        p.connect("127.0.0.1", port)
        p.reset()
        ws.run_for(1.0)
        acc = h.socket()
        ov = h.overlapped()
        ws.AcceptEx(lst, acc, bytearray(64), 0, 32, 32, ov)
        if h.wait(ov.hEvent, 500) == WSA_WAIT_TIMEOUT:
            outcomes.add("dropped")
        else:
            ok, _, _ = ws.WSAGetOverlappedResult(lst, ov, FALSE)
            outcomes.add("accepted" if ok else f"accept failed {ws.WSAGetLastError()}")
        h.finish()
    assert outcomes == {"dropped", "accepted", "accept failed 10054"}


def test_full_backlog_refuses() -> None:
    ws = FakeWinsock(seed=1, config=FakeConfig(backlog=3))
    h = Harness(ws)
    h.start()
    _, port = h.listener()
    for _ in range(3):
        h.peer().connect("127.0.0.1", port)
    with pytest.raises(ConnectionRefusedError):
        h.peer().connect("127.0.0.1", port)
    h.finish()


def test_call_budget_turns_a_busy_loop_into_an_error() -> None:
    """The lecture notes' pitfall 4: forget WSAResetEvent and the loop spins on the same event."""
    from fakewinsock import BusyLoopError

    ws = FakeWinsock(seed=1, config=FakeConfig(max_calls=1000))
    ws.WSAStartup(MAKEWORD(2, 2))
    ev = ws.WSACreateEvent()
    ws.WSASetEvent(ev)
    with pytest.raises(BusyLoopError, match="more than 1000 Winsock calls"):
        while True:
            ws.WSAWaitForMultipleEvents(1, [ev], FALSE, WSA_INFINITE, FALSE)


#: The interface's calls that do not enter the kernel (no virtual time, no scheduling point, no budget): each
#: reads or sets the calling thread's state, the clock, or a buffer the program holds.
#: (And ``peer``: test support, not a Winsock call.)
_OUTSIDE_THE_KERNEL = ("GetAcceptExSockaddrs", "GetCurrentThread", "GetCurrentThreadId", "GetLastError",
                       "GetTickCount64", "SetLastError", "WSAGetLastError", "WSASetLastError", "peer")


def _interface_calls() -> list[str]:
    import inspect

    from fakewinsock._interface import Winsock

    return sorted(n for n, v in vars(Winsock).items() if not n.startswith("_") and inspect.isfunction(v))


@pytest.mark.parametrize("name", [n for n in _interface_calls() if n not in _OUTSIDE_THE_KERNEL])
def test_every_call_enters_the_kernel_under_its_own_name(name: str) -> None:
    """Each call of the interface counts against FakeConfig.max_calls and, over it, the BusyLoopError
    names that call (the first thing it does: the budget is checked before its arguments, here all 0).
    A call added to the interface that forgets to enter the kernel fails here (or is listed above)."""
    import inspect

    from fakewinsock import BusyLoopError
    from fakewinsock._interface import Winsock

    ws = FakeWinsock(seed=1, config=FakeConfig(max_calls=1))
    ws.WSAStartup(MAKEWORD(2, 2))
    arity = len(inspect.signature(getattr(Winsock, name)).parameters) - 1  # (less self)
    with pytest.raises(BusyLoopError, match=rf"^{name}: more than 1 Winsock calls"):
        getattr(ws, name)(*[0] * arity)


def test_the_calls_outside_the_kernel_are_interface_calls() -> None:
    assert set(_OUTSIDE_THE_KERNEL) <= set(_interface_calls())
    assert len(_interface_calls()) > 40  # (the Protocol's functions were found)


def test_an_unknown_optname_at_a_level_that_is_no_protocol_level_is_not_emulated(h: Harness) -> None:
    """Level -1 gives WSAEINVAL with SO_RCVTIMEO (Wine's test_set_getsockopt)
    and WSAENOPROTOOPT with optname -1 (dotnet/runtime's SocketOptionNameTest);
    with another optname the fake knows at no level the answer is unknown."""
    s = h.socket()
    with pytest.raises(NotEmulatedError, match="no protocol level"):
        h.ws.getsockopt(s, 0x8000, 0x4242, 4)
    with pytest.raises(NotEmulatedError, match="no protocol level"):
        h.ws.setsockopt(s, -1, 0x4242, 1, 4)
