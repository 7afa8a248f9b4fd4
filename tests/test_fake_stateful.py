"""A stateful property: arbitrary well-defined call sequences on the fake's public
API keep its invariants and raise nothing.

Hypothesis drives sockets, AcceptEx, WSARecv and WSASend with arbitrary WSABUF
lists (zero-length buffers and empty lists included), event and alertable waits,
WSAGetOverlappedResult, CancelIoEx, closes and resets from both sides, and a
final clean-up.  Every call is well defined (a fresh OVERLAPPED per operation,
buffers left alone while in flight, finite waits), so a Winsock failure is a
return code and no exception may escape; the fake checks its invariants after
every call (FakeConfig.check_invariants) and the machine checks them after
every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from fakewinsock import WSABUF, WSAOVERLAPPED, FakeConfig, FakePeer, FakeWinsock, sockaddr_in
from fakewinsock.constants import (
    AF_INET,
    FALSE,
    IPPROTO_TCP,
    MAKEWORD,
    SOCK_STREAM,
    SOCKET_ERROR,
    SOMAXCONN,
    TRUE,
    WSA_FLAG_OVERLAPPED,
    WSA_IO_INCOMPLETE,
    WSA_IO_PENDING,
)

PORT = 12345
sizes = st.lists(st.integers(0, 300), max_size=4)  # WSABUF lengths: zero-length and empty lists too


@dataclass
class InFlight:
    kind: str
    sock: int
    ov: WSAOVERLAPPED
    bufs: list[WSABUF]
    accept_sock: int = 0
    routine_ran: list[int] = field(default_factory=list)


class FakeApi(RuleBasedStateMachine):
    ws: FakeWinsock
    listener: int

    def __init__(self) -> None:
        super().__init__()
        self.connected: list[int] = []  # sockets accepted, not closed
        self.peers: list[FakePeer] = []
        self.ops: list[InFlight] = []
        self.events: list[int] = []

    @initialize(seed=st.integers(0, 2**32 - 1), immediate=st.sampled_from([0.0, 0.5, 1.0]),
                split=st.sampled_from([0.0, 0.5]), background=st.sampled_from([0.0, 0.3]),
                window=st.sampled_from([64, 4096, 128 * 1024]))
    def start(self, seed: int, immediate: float, split: float, background: float, window: int) -> None:
        config = FakeConfig(immediate=immediate, split=split, partial_recv=0.3, background=background,
                            window=window, strict_cleanup=False, check_invariants=True)
        self.ws = FakeWinsock(seed=seed, config=config)
        assert self.ws.WSAStartup(MAKEWORD(2, 2)).error == 0
        self.listener = self._socket()
        assert self.ws.bind(self.listener, sockaddr_in("127.0.0.1", PORT), 16) == 0
        assert self.ws.listen(self.listener, SOMAXCONN) == 0

    def _socket(self) -> int:
        s = self.ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
        assert s > 0
        return s

    def _overlapped(self, with_event: bool) -> WSAOVERLAPPED:
        ov = WSAOVERLAPPED()
        if with_event:
            ov.hEvent = self.ws.WSACreateEvent()
            self.events.append(ov.hEvent)
        return ov

    def _posted(self, op: InFlight, ok: bool) -> None:
        assert ok or self.ws.WSAGetLastError() != 0
        if ok or self.ws.WSAGetLastError() == WSA_IO_PENDING:
            self.ops.append(op)

    # ------------------------------------------------------------ peers

    @precondition(lambda self: len(self.peers) < 8)
    @rule()
    def peer_connects(self) -> None:
        peer = self.ws.peer()
        peer.connect_nowait("127.0.0.1", PORT)
        self.peers.append(peer)

    @precondition(lambda self: bool(self.peers))
    @rule(i=st.integers(0, 7), data=st.binary(max_size=600))
    def peer_sends(self, i: int, data: bytes) -> None:
        peer = self.peers[i % len(self.peers)]
        try:
            peer.send_nowait(data)
        except (ConnectionResetError, OSError):
            pass  # reset, shut down, or not connected: the peer's documented errors

    @precondition(lambda self: bool(self.peers))
    @rule(i=st.integers(0, 7), n=st.integers(0, 1000))
    def peer_reads(self, i: int, n: int) -> None:
        peer = self.peers[i % len(self.peers)]
        try:
            peer.recv_nowait(n)
        except OSError:
            pass  # not connected

    @precondition(lambda self: bool(self.peers))
    @rule(i=st.integers(0, 7), how=st.sampled_from(["shutdown", "close", "reset"]))
    def peer_ends(self, i: int, how: str) -> None:
        peer = self.peers[i % len(self.peers)]
        try:
            getattr(peer, how)()
        except OSError:
            pass  # not connected

    # ------------------------------------------------------------ the program

    @precondition(lambda self: len(self.ops) < 40)
    @rule(rdl=st.sampled_from([0, 0, 16]), with_event=st.booleans())
    def accept_ex(self, rdl: int, with_event: bool) -> None:
        acc = self._socket()
        ov = self._overlapped(with_event)
        buf = bytearray(rdl + 64)
        ok, _ = self.ws.AcceptEx(self.listener, acc, buf, rdl, 32, 32, ov)
        self._posted(InFlight("AcceptEx", self.listener, ov, [WSABUF(len(buf), buf)], accept_sock=acc), bool(ok))

    @precondition(lambda self: bool(self.connected) and len(self.ops) < 40)
    @rule(i=st.integers(0, 63), lens=sizes, routine=st.booleans())
    def wsarecv(self, i: int, lens: list[int], routine: bool) -> None:
        s = self.connected[i % len(self.connected)]
        bufs = [WSABUF(n, bytearray(n)) for n in lens]
        op = InFlight("WSARecv", s, self._overlapped(not routine), bufs)
        rc, _, _ = self.ws.WSARecv(s, bufs, len(bufs), 0, op.ov,
                                   (lambda e, n, ov, f: op.routine_ran.append(e)) if routine else None)
        self._posted(op, rc == 0)

    @precondition(lambda self: bool(self.connected) and len(self.ops) < 40)
    @rule(i=st.integers(0, 63), lens=sizes, routine=st.booleans())
    def wsasend(self, i: int, lens: list[int], routine: bool) -> None:
        s = self.connected[i % len(self.connected)]
        bufs = [WSABUF(n, bytes(range(256)) * 2) for n in lens]
        op = InFlight("WSASend", s, self._overlapped(not routine), bufs)
        rc, _, _ = self.ws.WSASend(s, bufs, len(bufs), 0, op.ov,
                                   (lambda e, n, ov, f: op.routine_ran.append(e)) if routine else None)
        self._posted(op, rc == 0)

    @precondition(lambda self: bool(self.ops))
    @rule(i=st.integers(0, 63))
    def get_result(self, i: int) -> None:
        op = self.ops[i % len(self.ops)]
        ok, _, _ = self.ws.WSAGetOverlappedResult(op.sock, op.ov, FALSE)
        if not ok and self.ws.WSAGetLastError() == WSA_IO_INCOMPLETE:
            return
        self.ops.remove(op)
        if op.kind == "AcceptEx":
            if ok:
                self.ws.setsockopt(op.accept_sock, 0xFFFF, 0x700B, self.listener, 8)  # SO_UPDATE_ACCEPT_CONTEXT
                self.connected.append(op.accept_sock)
            else:
                self.ws.closesocket(op.accept_sock)

    @precondition(lambda self: bool(self.events))
    @rule(ms=st.integers(0, 30), alertable=st.booleans(), wait_all=st.booleans())
    def wait(self, ms: int, alertable: bool, wait_all: bool) -> None:
        evs = self.events[:64]
        rc = self.ws.WSAWaitForMultipleEvents(len(evs), evs, TRUE if wait_all else FALSE, ms,
                                              TRUE if alertable else FALSE)
        assert rc != 0xFFFFFFFF  # WSA_WAIT_FAILED: every handle is a live event
        if 0 <= rc < len(evs):
            self.ws.WSAResetEvent(evs[rc])

    @rule(ms=st.integers(0, 30))
    def sleep_alertable(self, ms: int) -> None:
        self.ws.SleepEx(ms, TRUE)

    @precondition(lambda self: bool(self.connected))
    @rule(i=st.integers(0, 63))
    def cancel(self, i: int) -> None:
        self.ws.CancelIoEx(self.connected[i % len(self.connected)], None)

    @precondition(lambda self: bool(self.connected))
    @rule(i=st.integers(0, 63), abortive=st.booleans(), how=st.sampled_from([None, 0, 1, 2]))
    def close_or_shutdown(self, i: int, abortive: bool, how: int | None) -> None:
        s = self.connected[i % len(self.connected)]
        if how is not None:
            self.ws.shutdown(s, how)
            return
        if abortive:
            self.ws.setsockopt(s, 0xFFFF, 0x0080, b"\x01\x00\x00\x00", 4)  # SO_LINGER {1, 0}
        assert self.ws.closesocket(s) == 0
        self.connected.remove(s)

    # ------------------------------------------------------------ checks

    @invariant()
    def the_fake_is_consistent(self) -> None:
        if hasattr(self, "ws"):
            self.ws.invariants()

    def teardown(self) -> None:
        if not hasattr(self, "ws"):
            return
        ws = self.ws
        for s in self.connected:
            ws.closesocket(s)
        ws.closesocket(self.listener)
        for op in self.ops:
            if op.kind == "AcceptEx":
                ws.closesocket(op.accept_sock)
        ws.SleepEx(100, TRUE)  # closed sockets' operations complete; routines run
        for op in self.ops:
            ok, _, _ = ws.WSAGetOverlappedResult(op.sock, op.ov, FALSE)
            assert ok or ws.WSAGetLastError() != WSA_IO_INCOMPLETE, "an operation outlived its socket's close"
        for ev in self.events:
            ws.WSACloseEvent(ev)
        for peer in self.peers:
            peer.close()
        assert ws.WSACleanup() == 0
        assert ws.WSACleanup() == SOCKET_ERROR  # once too often: a return code, not an exception
        ws.invariants()


FakeApi.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None,
                                     suppress_health_check=[HealthCheck.too_slow])
test_fake_api_sequences = FakeApi.TestCase
