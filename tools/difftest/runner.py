"""Run a generated program on one backend and record what it observed, normalised.

What is recorded (as ``(key, value)`` strings, compared key by key):

* every call's return value and, when it failed, its error;
* a post (AcceptEx, WSARecv, WSASend) as ``started`` whether it completed at
  once or pends (both are Windows), or its immediate error; an operation's
  *final* status (its error code, whether it came at once, at completion, from
  WSAGetOverlappedResult or in the completion routine) once, under ``final``;
  a send's byte count (all or nothing), not a receive's (how the stream is cut);
* each connection's whole byte stream, both ways: what our socket received
  (receives in posting order, then a drain until EOF once the peer has finished)
  and what the peer received after we closed.  A stream that a reset may have
  cut is compared as "a prefix of what was sent";
* a result that depends on timing (a poll that finds an operation still
  pending, an alertable wait that may or may not run a routine) is recorded as
  ``*`` and never counts.

Addresses are written with symbolic ports (``L`` the listener, ``P0``.. the
peers), so two runs on different ephemeral ports compare equal.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fakewinsock import LINGER, WSABUF, WSAOVERLAPPED, Peer, Winsock, sockaddr_in
from fakewinsock import constants as C

ADDR_SLOT = 32
_RESETS = (C.WSAECONNRESET, C.WSAECONNABORTED)
_STATUS_NAMES = {getattr(C, n): n[len("STATUS_"):] for n in dir(C) if n.startswith("STATUS_")}
# Final results a reset may turn an operation's into (any of them, depending on when it came).
RESET_FINALS = {"err=0", "err=10053", "err=10054", "status=SUCCESS", "status=CONNECTION_ABORTED",
                "status=CONNECTION_RESET", "status=LOCAL_DISCONNECT"}
# ... and a close of its own socket while it was in flight (done just before, or aborted).
CLOSE_FINALS = {"err=0", "err=10053", "status=SUCCESS", "status=CONNECTION_ABORTED"}
# ... and a CancelIoEx (it may have completed first).
CANCEL_FINALS = {"err=0", "err=995", "status=SUCCESS", "status=CANCELLED"}
WAIT_MS = 3000
INVALID_SOCKET = 2**64 - 1
BOGUS_HANDLE = 0xDEAD0
Obs = list[tuple[str, str]]
_TRACE = bool(os.environ.get("DIFFTEST_TRACE"))


def _data(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


class _Stop(Exception):
    """The program cannot go on meaningfully on this backend."""


@dataclass
class _Op:
    kind: str
    sock: int
    ov: WSAOVERLAPPED
    bufs: list[bytearray]
    notify: str
    conn: int
    routine_result: tuple[int, int, int] | None = None
    final: str | None = None
    data: bytes = b""
    failed_at_once: bool = False
    open_at_close: bool = False  # a send not known complete when its socket was closed
    cancelled: bool = False
    extra_event: int = 0  # "routine+event": the OVERLAPPED's hEvent, which the routine's completion leaves alone


@dataclass
class _Conn:
    sock: int
    peer: Peer
    port_name: str
    acc_op: _Op | None = None
    ours_open: bool = True
    peer_state: str = "open"
    rd_shut: bool = False
    wr_shut: bool = False
    aborted: bool = False
    peer_sent: bytearray = field(default_factory=bytearray)
    sent: bytearray = field(default_factory=bytearray)  # bytes of our sends, in posting order
    recv_ops: list[_Op] = field(default_factory=list)
    first: bytes = b""
    drained: bytearray = field(default_factory=bytearray)
    drain_end: str = ""
    send_in_flight_at_close: bool = False
    closed_early: bool = False
    reset_involved: bool = False  # a reset was or may have been sent (peer reset, close with unread data)
    cap_at_close: int = -1  # what the receives posted before our close could hold (-1: not closed early)


class Runner:
    def __init__(self, ws: Winsock) -> None:
        self.ws = ws
        self.obs: Obs = []
        self.ops: list[_Op] = []
        self.extra_ops: list[_Op] = []  # posted by calls with bad arguments that Windows accepted
        self.conns: list[_Conn] = []
        self.events: list[int] = []
        self.sockets: list[int] = []
        self.loose: list[int] = []
        self.ports: dict[int, str] = {}
        self.listener = 0
        self.step = 0

    # -- recording
    def rec(self, call: str, value: str) -> None:
        self.obs.append((f"{self.step}:{call}", value))

    def err(self) -> int:
        return self.ws.WSAGetLastError()

    def rc_int(self, call: str, rc: int, fail: int = C.SOCKET_ERROR) -> None:
        self.rec(call, f"{rc}" if rc != fail else f"{rc} err={self.err()}")

    def addr(self, sa: Any) -> str:
        if sa is None:
            return "None"
        return f"{sa.host}:{self.ports.get(sa.port, '?')}"

    # -- helpers
    def socket(self) -> int:
        s = self.ws.WSASocket(C.AF_INET, C.SOCK_STREAM, C.IPPROTO_TCP, None, 0, C.WSA_FLAG_OVERLAPPED)
        assert s != INVALID_SOCKET
        self.sockets.append(s)
        return s

    def event(self) -> int:
        e = self.ws.WSACreateEvent()
        assert e != 0
        self.events.append(e)
        return e

    def routine_for(self, op: _Op) -> Callable[[int, int, WSAOVERLAPPED, int], None]:
        def routine(err: int, n: int, ov: WSAOVERLAPPED, flags: int) -> None:
            op.routine_result = (err, n, flags)
        return routine

    def settle_routines(self) -> None:
        for _ in range(20):
            if self.ws.SleepEx(0, C.TRUE) == 0:
                break

    def capture(self, op: _Op, how: str) -> bool:
        """Record an operation's final result if it has one; True when it has.

        A routine's result is its dwError (a Winsock code).  An event-notified
        operation's is read from its OVERLAPPED (Internal, InternalHigh), which
        needs no socket handle: the operation's socket may be closed by now, and a
        closed handle must not be passed to WSAGetOverlappedResult (its value may
        already belong to a new object)."""
        if op.final is not None:
            return True
        if op.notify == "routine":
            if op.routine_result is None:
                return False
            err, n, flags = op.routine_result
            self._finalise(op, f"err={err}", err == 0, n, f"flags={flags}" if flags else "")
            return True
        status = op.ov.Internal
        if status == C.STATUS_PENDING:
            return False
        self._finalise(op, f"status={_STATUS_NAMES.get(status, hex(status))}", status == 0, op.ov.InternalHigh, "")
        return True

    def _finalise(self, op: _Op, result: str, ok: bool, n: int, extra: str) -> None:
        if op.kind == "recv" and ok:
            got = bytearray()
            left = n
            for b in op.bufs:
                k = min(len(b), left)
                got += b[:k]
                left -= k
            op.data = bytes(got)
        shown = f" bytes={n}" if op.kind == "send" or (op.kind == "recv" and sum(map(len, op.bufs)) == 0) else ""
        op.final = result + shown + (f" {extra}" if extra else "")

    def wait_op(self, op: _Op) -> None:
        if op.final is not None:
            return
        if op.notify == "routine":
            for _ in range(100):  # an alertable sleep ends early when any routine runs (perhaps another's)
                if op.routine_result is not None:
                    break
                if self.ws.SleepEx(WAIT_MS, C.TRUE) == 0:
                    break  # a whole interval went by with no routine at all
        else:
            self.ws.WSAWaitForMultipleEvents(1, [op.ov.hEvent], C.FALSE, WAIT_MS, C.FALSE)
        if not self.capture(op, "wait"):
            op.final = "never completed"

    # -- the program
    def run(self, steps: list[Any]) -> Obs:
        ws = self.ws
        err, _ = ws.WSAStartup(C.MAKEWORD(2, 2))
        assert err == 0
        try:
            lst = self.socket()
            assert ws.bind(lst, sockaddr_in("127.0.0.1", 0), 16) == 0
            assert ws.listen(lst, C.SOMAXCONN) == 0
            rc, name = ws.getsockname(lst)
            assert rc == 0 and name is not None
            self.listener, self.port = lst, name.port
            self.ports[name.port] = "L"
            for i, st in enumerate(steps):
                self.step = i
                if _TRACE:
                    print(f"step {i} {st}", file=sys.stderr, flush=True)
                try:
                    getattr(self, "s_" + st[0])(*st[1:])
                except AssertionError:
                    raise
                except _Stop as stop:
                    self.obs.append(("aborted", f"STOP {stop}"))
                    self.cleanup()
                    return self.obs
                except Exception as exc:  # a usage error or an unemulated call: it is the finding
                    self.obs.append(("aborted", f"EXC in {st[0]}: {type(exc).__name__}: {str(exc)[:100]}"))
                    self.cleanup()
                    return self.obs
            self.step = len(steps)
            self.finish()
        finally:
            pass
        return self.obs

    def s_conn_pair(self) -> None:
        """Two AcceptEx posted, then two peers connect one after the other: which accept
        socket gets which connection, and both complete."""
        ws = self.ws
        posted: list[tuple[int, WSAOVERLAPPED, bytearray]] = []
        for _ in range(2):
            acc = self.socket()
            ov = WSAOVERLAPPED()
            ov.hEvent = self.event()
            out = bytearray(2 * ADDR_SLOT)
            ok, _n = ws.AcceptEx(self.listener, acc, out, 0, ADDR_SLOT, ADDR_SLOT, ov)
            self.rec(f"AcceptEx(pair {len(posted)})", "started" if ok or self.err() == C.WSA_IO_PENDING
                     else f"err={self.err()}")
            posted.append((acc, ov, out))
        peers: dict[str, Peer] = {}
        for k in range(2):
            peer = self.ws.peer()
            peer.connect("127.0.0.1", self.port)
            name = f"P{len(self.conns) + k}"
            self.ports[peer.address[1]] = name
            peers[name] = peer
        for k, (acc, ov, out) in enumerate(posted):
            ws.WSAWaitForMultipleEvents(1, [ov.hEvent], C.FALSE, WAIT_MS, C.FALSE)
            ok2, _, _ = ws.WSAGetOverlappedResult(self.listener, ov, C.FALSE)
            self.rec(f"AcceptEx(pair {k}).final", f"ok={ok2}" if ok2 else f"err={self.err()}")
            sa = ws.GetAcceptExSockaddrs(out, 0, ADDR_SLOT, ADDR_SLOT)
            remote = self.addr(sa.RemoteSockaddr)
            self.rec(f"AcceptEx(pair {k}) got", remote)
            self.rc_int(f"setsockopt(UPDATE_ACCEPT_CONTEXT, pair {k})",
                        ws.setsockopt(acc, C.SOL_SOCKET, C.SO_UPDATE_ACCEPT_CONTEXT, self.listener, 8))
            name = remote.rpartition(":")[2]
            if name not in peers:
                raise _Stop(f"AcceptEx(pair {k}) gave an unknown remote address {remote}")
            self.conns.append(_Conn(acc, peers.pop(name), name))

    def s_conn(self, rdl: int, first: int, names_early: bool = False, connect_first: bool = False) -> None:
        ws = self.ws
        acc = self.socket()
        ov = WSAOVERLAPPED()
        ov.hEvent = self.event()
        out = bytearray(rdl + 2 * ADDR_SLOT)
        idx = len(self.conns)
        peer = ws.peer()
        conn = _Conn(acc, peer, f"P{idx}")
        op = _Op("accept", self.listener, ov, [out], "event", idx)
        conn.acc_op = op
        if connect_first:  # the connection waits in the backlog for the AcceptEx
            peer.connect("127.0.0.1", self.port)
            self.ports[peer.address[1]] = conn.port_name
        ok, _n = ws.AcceptEx(self.listener, acc, out, rdl, ADDR_SLOT, ADDR_SLOT, ov)
        self.rec("AcceptEx", "started" if ok or self.err() == C.WSA_IO_PENDING else f"err={self.err()}")
        if not connect_first:
            peer.connect("127.0.0.1", self.port)
            self.ports[peer.address[1]] = conn.port_name
        if rdl and first:
            data = _data(first, first)
            peer.send(data)
            conn.peer_sent += data
        elif rdl:
            peer.close()  # connects and leaves without sending
            conn.peer_state = "closed"
        self.conns.append(conn)
        ws.WSAWaitForMultipleEvents(1, [ov.hEvent], C.FALSE, WAIT_MS, C.FALSE)
        ok2, n, _ = ws.WSAGetOverlappedResult(self.listener, ov, C.FALSE)
        self.rec("AcceptEx.final", f"ok={ok2}" if ok2 else f"err={self.err()}")
        if ok2 and rdl:
            conn.first = bytes(out[:n])  # the first bytes of the stream
        self.rec("AcceptEx.bytes", str(n) if ok2 and not first else "*")  # 0 when the peer sent nothing
        if names_early:  # before SO_UPDATE_ACCEPT_CONTEXT
            for call, fn in (("getsockname(before ctx)", ws.getsockname), ("getpeername(before ctx)", ws.getpeername)):
                rc, sa0 = fn(acc)
                self.rec(call, self.addr(sa0) if rc == 0 else f"{rc} err={self.err()}")
            self.rc_int("shutdown(before ctx, 7)", ws.shutdown(acc, 7))
        sa = ws.GetAcceptExSockaddrs(out, rdl, ADDR_SLOT, ADDR_SLOT)
        self.rec("GetAcceptExSockaddrs", f"{self.addr(sa.LocalSockaddr)} {self.addr(sa.RemoteSockaddr)}")
        self.rc_int("setsockopt(UPDATE_ACCEPT_CONTEXT)",
                    ws.setsockopt(acc, C.SOL_SOCKET, C.SO_UPDATE_ACCEPT_CONTEXT, self.listener, 8))

    def _post(self, kind: str, ci: int, lens: list[int], notify: str, seed: int = 0) -> None:
        ws = self.ws
        conn = self.conns[ci]
        ov = WSAOVERLAPPED()
        extra_event = 0
        if notify == "routine+event":  # both: the routine notifies; hEvent is the program's own
            notify = "routine"
            extra_event = ov.hEvent = self.event()
        if notify == "event":
            ov.hEvent = self.event()
        if kind == "recv":
            bufs = [bytearray(n) for n in lens]
        else:
            payload = _data(seed, sum(lens))
            bufs, pos = [], 0
            for n in lens:
                bufs.append(bytearray(payload[pos:pos + n]))
                pos += n
        op = _Op(kind, conn.sock, ov, bufs, notify, ci, extra_event=extra_event)
        self.ops.append(op)
        wsabufs = [WSABUF(len(b), b) for b in bufs]
        routine = self.routine_for(op) if notify == "routine" else None
        if kind == "recv":
            rc, n, flags = ws.WSARecv(conn.sock, wsabufs, len(wsabufs), 0, ov, routine)
            conn.recv_ops.append(op)
        else:
            rc, n, flags = ws.WSASend(conn.sock, wsabufs, len(wsabufs), 0, ov, routine)
            conn.sent += b"".join(bufs)
            if conn.peer_state == "closed" and sum(lens) > 0:
                conn.reset_involved = True  # data to a closed peer is answered with RST
        call = "WSARecv" if kind == "recv" else "WSASend"
        if rc == 0:
            self.rec(call, "started")
        else:
            e = self.err()
            if e == C.WSA_IO_PENDING:
                self.rec(call, "started")
            else:
                # After a reset, whether a post fails at once depends on when the RST arrived.
                self.rec(call, "*" if conn.reset_involved and e in _RESETS else f"err={e}")
                op.final = f"err={e}"
                op.failed_at_once = True
                if kind == "send":
                    del conn.sent[len(conn.sent) - sum(lens):]

    def s_recv(self, ci: int, lens: list[int], notify: str) -> None:
        self._post("recv", ci, lens, notify)

    def s_send(self, ci: int, lens: list[int], notify: str, seed: int) -> None:
        self._post("send", ci, lens, notify, seed)

    def s_peer_send(self, ci: int, k: int, seed: int) -> None:
        data = _data(seed, k)
        c = self.conns[ci]
        c.peer.send(data)
        c.peer_sent += data

    def s_peer_shutdown(self, ci: int) -> None:
        self.conns[ci].peer.shutdown()
        self.conns[ci].peer_state = "fin"

    def s_peer_close(self, ci: int) -> None:
        c = self.conns[ci]
        c.peer.close()
        c.peer_state = "closed" if not c.sent else "closed-unread"
        c.reset_involved = bool(c.sent)

    def s_peer_reset(self, ci: int) -> None:
        self.conns[ci].peer.reset()
        self.conns[ci].peer_state = "reset"
        self.conns[ci].reset_involved = True

    def s_shutdown(self, ci: int, how: int) -> None:
        c = self.conns[ci]
        self.rc_int("shutdown", self.ws.shutdown(c.sock, how))
        if how in (0, 2):
            c.rd_shut = True
        if how in (1, 2):
            c.wr_shut = True  # a FIN went first: the peer may read EOF before the reset of an abort

    def s_close(self, ci: int, how: str) -> None:
        c = self.conns[ci]
        if c.peer_sent and c.peer_state == "open":
            # Let bytes the peer just sent arrive: closing with them unread must reset the
            # connection, closing before they arrive need not (timing, on every backend).
            self.ws.SleepEx(20, C.FALSE)
        self._before_close(ci)
        rdl = len(c.acc_op.bufs[0]) - 2 * ADDR_SLOT if c.acc_op is not None else 0
        c.cap_at_close = rdl + sum(sum(map(len, op.bufs)) for op in c.recv_ops if not op.failed_at_once)
        if how == "abort":
            self.rc_int("setsockopt(SO_LINGER)", self.ws.setsockopt(c.sock, C.SOL_SOCKET, C.SO_LINGER,
                                                                    LINGER(1, 0), 4))
            c.aborted = True
            c.reset_involved = True
        self.rc_int("closesocket", self.ws.closesocket(c.sock))
        self.sockets.remove(c.sock)
        c.ours_open = False
        c.closed_early = True

    def _before_close(self, ci: int) -> None:
        c = self.conns[ci]
        for op in self.ops:
            if op.conn == ci and not self.capture(op, "close"):
                op.open_at_close = True  # a receive may still get its data, a send may be sent
                if op.kind == "send":
                    c.send_in_flight_at_close = True

    def s_wait(self, i: int) -> None:
        op = self.ops[i]
        if op.failed_at_once:
            self.rec("WSAWaitForMultipleEvents", "*")  # nothing will signal it (and the other side may pend)
        elif op.notify == "event":
            rc = self.ws.WSAWaitForMultipleEvents(1, [op.ov.hEvent], C.FALSE, WAIT_MS, C.FALSE)
            self.rec("WSAWaitForMultipleEvents", str(rc))
        self.wait_op(op)

    def _tags(self, op: _Op) -> str:
        tags = ("reset" if op.conn >= 0 and self.conns[op.conn].reset_involved else "") + (
            " cancel" if op.cancelled else "") + (" close" if op.open_at_close else "")
        return f" ~{tags.strip()}" if tags.strip() else ""

    def s_cancel(self, i: int) -> None:
        op = self.ops[i]
        op.cancelled = True
        self.ws.CancelIoEx(op.sock, op.ov)
        self.rec("CancelIoEx", "*")  # TRUE, or FALSE/ERROR_NOT_FOUND if it had completed: timing

    def s_alertable_wait(self, i: int) -> None:
        op = self.ops[i]
        ev = self.event()
        rc = self.ws.WSAWaitForMultipleEvents(1, [ev], C.FALSE, WAIT_MS, C.TRUE)
        # Its routine is certain to be queued by now (or soon) and has not run yet.
        self.rec("WSAWaitForMultipleEvents(alertable)", "*" if op.failed_at_once else str(rc))
        self.wait_op(op)

    def s_wait_known(self, idx: list[int], wait_all: int) -> None:
        ops = [self.ops[i] for i in idx]
        rc = self.ws.WSAWaitForMultipleEvents(len(ops), [op.ov.hEvent for op in ops], wait_all, 0, C.FALSE)
        timing = any(op.failed_at_once for op in ops)
        self.rec(f"WSAWaitForMultipleEvents(known, all={wait_all})", "*" if timing else str(rc))

    def s_gor_wait(self, i: int) -> None:
        op = self.ops[i]
        if op.failed_at_once:
            self.rec("WSAGetOverlappedResult(fWait)", "*")
            return
        ok, n, flags = self.ws.WSAGetOverlappedResult(op.sock, op.ov, C.TRUE)
        res = "err=0" if ok else f"err={self.err()}"
        self.rec("WSAGetOverlappedResult(fWait)", res + (f" bytes={n}" if op.kind == "send" else "")
                 + (f" flags={flags}" if ok and flags else "") + self._tags(op))

    def s_reset_event(self, i: int) -> None:
        ev = self.ops[i].ov.hEvent
        self.rc_int("WSAResetEvent", self.ws.WSAResetEvent(ev), C.FALSE)
        # The operation has completed and been waited for: nothing signals it again.
        self.rec("wait(0) after reset", str(self.ws.WSAWaitForMultipleEvents(1, [ev], C.FALSE, 0, C.FALSE)))

    def s_poll(self, i: int) -> None:
        op = self.ops[i]
        if not self.conns[op.conn].ours_open:
            self.capture(op, "poll")
            self.rec("poll", "*")  # its socket is closed: no handle to pass
            return
        if op.final is not None:
            ok, n, _ = self.ws.WSAGetOverlappedResult(op.sock, op.ov, C.FALSE)
            # Read again after the final result: the same answer (a send's count too).
            if op.failed_at_once:
                self.rec("poll", "*")
                return
            self.rec("poll", ("err=0" if ok else f"err={self.err()}") + (f" bytes={n}" if op.kind == "send" else "")
                     + self._tags(op))
            return
        self.ws.WSAGetOverlappedResult(op.sock, op.ov, C.FALSE)  # done or not is timing
        self.capture(op, "poll")
        self.rec("poll", "*")

    def s_sleep_alertable(self) -> None:
        self.ws.SleepEx(0, C.TRUE)
        self.rec("SleepEx", "*")

    def s_event_cycle(self, what: str) -> None:
        ws = self.ws
        ev = self.event()
        if what in ("set", "both"):
            self.rc_int("WSASetEvent", ws.WSASetEvent(ev), C.FALSE)
        if what in ("reset", "both"):
            self.rc_int("WSAResetEvent", ws.WSAResetEvent(ev), C.FALSE)
        rc = ws.WSAWaitForMultipleEvents(1, [ev], C.FALSE, 0, C.FALSE)
        self.rec("WSAWaitForMultipleEvents(0)", str(rc))
        rc = ws.WSAWaitForMultipleEvents(1, [ev], C.FALSE, 0, C.FALSE)
        self.rec("WSAWaitForMultipleEvents(0) again", str(rc))

    def _target(self, target: str) -> int:
        if target == "listener":
            return self.listener
        if target == "fresh":
            s = self.socket()
            self.loose.append(s)
            return s
        return self.conns[int(target[1:])].sock

    def s_names(self, target: str) -> None:
        s = self._target(target)
        rc, sa = self.ws.getsockname(s)
        self.rec("getsockname", self.addr(sa) if rc == 0 else f"{rc} err={self.err()}")
        rc, sa = self.ws.getpeername(s)
        self.rec("getpeername", self.addr(sa) if rc == 0 else f"{rc} err={self.err()}")

    def s_opt(self, ci: int, what: str) -> None:
        ws = self.ws
        s = self.conns[ci].sock
        if what in ("keepalive", "nodelay"):
            level, name = ((C.SOL_SOCKET, C.SO_KEEPALIVE) if what == "keepalive"
                           else (C.IPPROTO_TCP, C.TCP_NODELAY))
            self.rc_int(f"setsockopt({what})", ws.setsockopt(s, level, name, 1, 4))
            rc, val = ws.getsockopt(s, level, name, 4)
            self.rec(f"getsockopt({what})", f"{rc} {bool(int.from_bytes(val, 'little'))}" if rc == 0
                     else f"{rc} err={self.err()}")
        elif what == "linger_short":
            self.rc_int("setsockopt(SO_LINGER, 2)", ws.setsockopt(s, C.SOL_SOCKET, C.SO_LINGER, b"\x01\x00", 2))
        elif what == "linger_get":
            rc, val = ws.getsockopt(s, C.SOL_SOCKET, C.SO_LINGER, 4)
            self.rec("getsockopt(SO_LINGER)", f"{rc} {val.hex()}" if rc == 0 else f"{rc} err={self.err()}")
        elif what == "update_ctx":
            self.rc_int("setsockopt(UPDATE_ACCEPT_CONTEXT) again",
                        ws.setsockopt(s, C.SOL_SOCKET, C.SO_UPDATE_ACCEPT_CONTEXT, self.listener, 8))
        elif what == "update_ctx_short":
            self.rc_int("setsockopt(UPDATE_ACCEPT_CONTEXT, 4)",
                        ws.setsockopt(s, C.SOL_SOCKET, C.SO_UPDATE_ACCEPT_CONTEXT, self.listener & 0xFFFFFFFF, 4))

    def s_bad(self, what: str, ci: int) -> None:
        ws = self.ws
        ov = WSAOVERLAPPED()
        buf = bytearray(8)
        if what == "recv_count0":
            s = self.conns[ci].sock
            rc, _, _ = ws.WSARecv(s, [], 0, 0, ov, None)
            self.rc_int("WSARecv(count 0)", rc)
            if rc != 0 and self.err() == C.WSA_IO_PENDING:
                # Wine pended what Windows refuses (explained: recv-count-zero).  Left pending,
                # it sometimes stalls the receives after the peer's FIN on Wine (seed 71091:
                # a later receive and the drain never complete); cancel it, so the program goes
                # on from the state Windows would be in: no such receive.
                ws.CancelIoEx(s, ov)
                for _ in range(WAIT_MS // 10):
                    if ov.Internal != C.STATUS_PENDING:
                        break
                    ws.SleepEx(10, C.FALSE)
        elif what == "send_count0":
            ov.hEvent = self.event()
            s = self.conns[ci].sock
            rc, _, _ = ws.WSASend(s, [], 0, 0, ov, None)
            e = self.err()
            self.rec("WSASend(count 0)", "*" if rc != 0 and self.conns[ci].reset_involved and e in _RESETS
                     else (f"{rc}" if rc == 0 else f"{rc} err={e}"))
            if rc == 0 or e == C.WSA_IO_PENDING:
                self.extra_ops.append(_Op("send", s, ov, [], "event", -1))
        elif what in ("recv_invalid", "recv_listener"):
            s = INVALID_SOCKET if what == "recv_invalid" else self.listener
            ov.hEvent = self.event()
            rc, _, _ = ws.WSARecv(s, [WSABUF(8, buf)], 1, 0, ov, None)
            self.rc_int(f"WSARecv({what})", rc)
            if rc == 0 or self.err() == C.WSA_IO_PENDING:
                self.extra_ops.append(_Op("recv", s, ov, [buf], "event", -1))
        elif what in ("send_invalid", "send_fresh"):
            s = INVALID_SOCKET if what == "send_invalid" else self._target("fresh")
            ov.hEvent = self.event()
            rc, _, _ = ws.WSASend(s, [WSABUF(8, buf)], 1, 0, ov, None)
            self.rc_int(f"WSASend({what})", rc)
            if rc == 0 or self.err() == C.WSA_IO_PENDING:
                self.extra_ops.append(_Op("send", s, ov, [buf], "event", -1))
        elif what == "wait_zero":
            self.rc_int("WSAWaitForMultipleEvents(0 events)", ws.WSAWaitForMultipleEvents(0, [], C.FALSE, 0, C.FALSE),
                        C.WSA_WAIT_FAILED)
        elif what == "wait_badhandle":
            self.rc_int("WSAWaitForMultipleEvents(bad handle)",
                        ws.WSAWaitForMultipleEvents(1, [BOGUS_HANDLE], C.FALSE, 0, C.FALSE), C.WSA_WAIT_FAILED)
        elif what == "reset_badhandle":
            self.rc_int("WSAResetEvent(bad handle)", ws.WSAResetEvent(BOGUS_HANDLE), C.FALSE)
        elif what == "shutdown_listener":
            self.rc_int("shutdown(listener)", ws.shutdown(self.listener, C.SD_SEND))
        elif what == "shutdown_fresh":
            self.rc_int("shutdown(fresh)", ws.shutdown(self._target("fresh"), C.SD_BOTH))
        elif what == "getpeername_listener":
            rc, sa = ws.getpeername(self.listener)
            self.rec("getpeername(listener)", self.addr(sa) if rc == 0 else f"{rc} err={self.err()}")
        elif what == "gor_badsock":
            ok, n, _ = ws.WSAGetOverlappedResult(INVALID_SOCKET, ov, C.FALSE)
            self.rec("WSAGetOverlappedResult(INVALID_SOCKET)", f"ok={ok}" if ok else f"err={self.err()}")
        elif what == "acceptex_remote0":
            acc = self._target("fresh")
            ov.hEvent = self.event()
            out = bytearray(2 * ADDR_SLOT)
            ok, _ = ws.AcceptEx(self.listener, acc, out, 0, ADDR_SLOT, 0, ov)
            self.rec("AcceptEx(remote length 0)", "ok" if ok else f"err={self.err()}")
            if ok or self.err() == C.WSA_IO_PENDING:
                self.extra_ops.append(_Op("accept", self.listener, ov, [out], "event", -1))
        elif what == "acceptex_connected":
            ov.hEvent = self.event()
            out = bytearray(2 * ADDR_SLOT)
            ok, _ = ws.AcceptEx(self.listener, self.conns[ci].sock, out, 0, ADDR_SLOT, ADDR_SLOT, ov)
            self.rec("AcceptEx(connected accept socket)", "ok" if ok else f"err={self.err()}")
            if ok or self.err() == C.WSA_IO_PENDING:
                self.extra_ops.append(_Op("accept", self.listener, ov, [out], "event", -1))
                # Wine pends it (Windows fails it, todo_wine) and the socket is then unusable
                # (a later WSARecv with a routine on it killed the process): stop here.
                raise _Stop("an AcceptEx on a connected accept socket was accepted")
        elif what == "wait_65":
            evs = [self.event() for _ in range(65)]
            rc = ws.WSAWaitForMultipleEvents(65, evs, C.FALSE, 0, C.FALSE)
            self.rc_int("WSAWaitForMultipleEvents(65 events)", rc, C.WSA_WAIT_FAILED)
        elif what == "setevent_badhandle":
            self.rc_int("WSASetEvent(bad handle)", ws.WSASetEvent(BOGUS_HANDLE), C.FALSE)
        elif what == "closeevent_badhandle":
            self.rc_int("WSACloseEvent(bad handle)", ws.WSACloseEvent(BOGUS_HANDLE), C.FALSE)
        elif what == "listen_again":
            self.rc_int("listen(again)", ws.listen(self.listener, 5))
        elif what == "bind_again":
            self.rc_int("bind(again)", ws.bind(self.listener, sockaddr_in("127.0.0.1", 0), 16))
        elif what == "linger_default":
            rc, val = ws.getsockopt(self._target("fresh"), C.SOL_SOCKET, C.SO_LINGER, 4)
            self.rec("getsockopt(SO_LINGER, fresh)", f"{rc} {val.hex()}" if rc == 0 else f"{rc} err={self.err()}")
        elif what == "acceptex_null_output":
            acc = self._target("fresh")
            ov.hEvent = self.event()
            ok, _ = ws.AcceptEx(self.listener, acc, None, 4, ADDR_SLOT, ADDR_SLOT, ov)
            self.rec("AcceptEx(NULL output, recv length 4)", "ok" if ok else f"err={self.err()}")
            if ok or self.err() == C.WSA_IO_PENDING:
                self.extra_ops.append(_Op("accept", self.listener, ov, [], "event", -1))
                raise _Stop("an AcceptEx with a NULL output buffer was accepted")
        elif what == "shutdown_invalid":
            self.rc_int("shutdown(INVALID_SOCKET)", ws.shutdown(INVALID_SOCKET, C.SD_BOTH))
        elif what == "getsockname_invalid":
            rc, sa = ws.getsockname(INVALID_SOCKET)
            self.rec("getsockname(INVALID_SOCKET)", self.addr(sa) if rc == 0 else f"{rc} err={self.err()}")
        elif what == "close_invalid":
            self.rc_int("closesocket(INVALID_SOCKET)", ws.closesocket(INVALID_SOCKET))

    # -- steps drawn by seeds >= program.WIDE_FROM (fidelity session 6)
    def s_peek(self, ci: int, size: int) -> None:
        """WSARecv with MSG_PEEK, waited for at once: its status, and whether what it saw
        is the start of what the connection has not read yet (checked in finish)."""
        ws = self.ws
        c = self.conns[ci]
        ov = WSAOVERLAPPED()
        ov.hEvent = self.event()
        buf = bytearray(size)
        rc, _n, _f = ws.WSARecv(c.sock, [WSABUF(size, buf)], 1, C.MSG_PEEK, ov, None)
        e = self.err()
        if rc != 0 and e != C.WSA_IO_PENDING:
            self.rec("WSARecv(MSG_PEEK)", "*" if c.reset_involved and e in _RESETS else f"err={e}")
            if c.reset_involved:  # whether the reset came first is timing: the other side may have run it
                self.rec("WSARecv(MSG_PEEK).final", "*")
                self.rec("WSARecv(MSG_PEEK) saw", "*")
            return
        self.rec("WSARecv(MSG_PEEK)", "started")
        ws.WSAWaitForMultipleEvents(1, [ov.hEvent], C.FALSE, WAIT_MS, C.FALSE)
        ok, n, flags = ws.WSAGetOverlappedResult(c.sock, ov, C.FALSE)
        if not ok:
            self.rec("WSARecv(MSG_PEEK).final", "*" if c.reset_involved else f"err={self.err()}")
            self.rec("WSARecv(MSG_PEEK) saw", "*")
            return
        self.rec("WSARecv(MSG_PEEK).final", f"ok bytes>0={n > 0} flags={flags}")
        consumed = len(c.first) + sum(len(op.data) for op in c.recv_ops if op.final is not None)
        if all(op.final is not None for op in c.recv_ops):
            unread = bytes(c.peer_sent[consumed:])
            self.rec("WSARecv(MSG_PEEK) saw", "the unread start" if unread.startswith(bytes(buf[:n]))
                     else "bytes that are not next")
        else:
            self.rec("WSARecv(MSG_PEEK) saw", "*")

    def s_connect_time(self, target: str, size: int) -> None:
        s = self._target(target)
        rc, val = self.ws.getsockopt(s, C.SOL_SOCKET, C.SO_CONNECT_TIME, size)
        if rc != 0:
            self.rec(f"getsockopt(SO_CONNECT_TIME, {size})", f"{rc} err={self.err()}")
            return
        v = int.from_bytes(val, "little")
        shown = "~0" if v == 0xFFFFFFFF else ("small" if v < 60 else str(v))
        self.rec(f"getsockopt(SO_CONNECT_TIME, {size})", f"{rc} len={len(val)} {shown} err={self.err()}")

    _OPTS = {"SO_RCVBUF": (C.SOL_SOCKET, C.SO_RCVBUF), "SO_SNDBUF": (C.SOL_SOCKET, C.SO_SNDBUF),
             "SO_KEEPALIVE": (C.SOL_SOCKET, C.SO_KEEPALIVE), "TCP_NODELAY": (C.IPPROTO_TCP, C.TCP_NODELAY),
             "SO_REUSEADDR": (C.SOL_SOCKET, C.SO_REUSEADDR), "SO_ERROR": (C.SOL_SOCKET, C.SO_ERROR),
             "SO_TYPE": (C.SOL_SOCKET, C.SO_TYPE)}

    def s_opt_value(self, ci: int, what: str, value: int) -> None:
        ws = self.ws
        s = self.conns[ci].sock
        level, name = self._OPTS[what]
        self.rc_int(f"setsockopt({what}, {value})", ws.setsockopt(s, level, name, value, 4))
        rc, val = ws.getsockopt(s, level, name, 4)
        got = int.from_bytes(val, "little") if rc == 0 else -1
        if what in ("SO_KEEPALIVE", "TCP_NODELAY", "SO_REUSEADDR"):
            shown = str(bool(got))  # a BOOL: any nonzero value reads back as TRUE (its exact value varies)
        else:
            shown = str(got)
        self.rec(f"getsockopt({what})", f"{rc} {shown}" if rc == 0 else f"{rc} err={self.err()}")

    def s_cancel_all(self, ci: int) -> None:
        c = self.conns[ci]
        for op in self.ops:
            if op.conn == ci and op.final is None:
                op.cancelled = True
        self.rc_int("CancelIo", self.ws.CancelIo(c.sock), C.FALSE)

    def s_port(self, posts: list[int], count: int, ex: bool) -> None:
        ws = self.ws
        port = ws.CreateIoCompletionPort(C.INVALID_HANDLE_VALUE, 0, 0, 0)
        self.rec("CreateIoCompletionPort", "ok" if port else f"err={self.err()}")
        if not port:
            return
        for k in posts:
            self.rc_int(f"PostQueuedCompletionStatus({k})", ws.PostQueuedCompletionStatus(port, 10 + k, k, None),
                        C.FALSE)
        if ex:
            got = ws.GetQueuedCompletionStatusEx(port, count, 0, C.FALSE)
            self.rec(f"GetQueuedCompletionStatusEx({count})",
                     f"{got.ok} " + ",".join(f"{e.lpCompletionKey}/{e.dwNumberOfBytesTransferred}"
                                             for e in got.entries) if got.ok else f"{got.ok} err={self.err()}")
        for _ in range(count):
            one = ws.GetQueuedCompletionStatus(port, 0)
            self.rec("GetQueuedCompletionStatus(0)", f"{one.ok} {one.CompletionKey}/{one.dwNumberOfBytesTransferred}"
                     if one.ok else f"{one.ok} ov={one.lpOverlapped is not None} err={self.err()}")
        self.rc_int("CloseHandle(port)", ws.CloseHandle(port), C.FALSE)

    def s_thread(self, code: int, suspended: bool) -> None:
        ws = self.ws
        ev = self.event()

        def body(param: Any) -> int:
            ws.WSASetEvent(param)
            return code

        h, tid = ws.CreateThread(None, 0, body, ev, C.CREATE_SUSPENDED if suspended else 0)
        self.rec("CreateThread", "ok" if h and tid else f"err={self.err()}")
        if not h:
            return
        if suspended:
            self.rec("WaitForSingleObject(event, 0) before ResumeThread",
                     str(ws.WaitForSingleObject(ev, 0)))
            self.rec("ResumeThread", str(ws.ResumeThread(h)))
        self.rec("WaitForSingleObject(thread)", str(ws.WaitForSingleObject(h, WAIT_MS)))
        self.rec("WaitForSingleObject(event)", str(ws.WaitForSingleObject(ev, 0)))
        ok, exit_code = ws.GetExitCodeThread(h)
        self.rec("GetExitCodeThread", f"{ok} {exit_code}")
        self.rc_int("CloseHandle(thread)", ws.CloseHandle(h), C.FALSE)
        ok, _ = ws.GetExitCodeThread(h)
        self.rec("GetExitCodeThread(closed)", f"{ok} err={self.err()}")

    def s_not_a_file(self, kind: str, call: str) -> None:
        ws = self.ws
        if kind == "event":
            h = self.event()
        else:
            h = ws.CreateIoCompletionPort(C.INVALID_HANDLE_VALUE, 0, 0, 0)
            assert h
        rc = ws.CancelIo(h) if call == "CancelIo" else ws.CancelIoEx(h, None)
        self.rc_int(f"{call}({kind})", rc, C.FALSE)
        if kind == "port":
            ws.CloseHandle(h)

    # -- the end: finish every stream and every operation, then compare them
    def finish(self) -> None:
        ws = self.ws
        for c in self.conns:
            if c.peer_state == "open":
                c.peer.shutdown()
                c.peer_state = "fin"
        self.settle_routines()
        for op in self.ops:
            if op.conn >= 0 and self.conns[op.conn].ours_open:
                self.wait_op(op)
        # Drain what is left of each stream (only once the program's receives are done).
        for c in self.conns:
            if not c.ours_open or c.rd_shut:
                continue
            for _ in range(200):
                ov = WSAOVERLAPPED()
                ov.hEvent = self.event()
                buf = bytearray(1024)
                rc, _n, _f = ws.WSARecv(c.sock, [WSABUF(1024, buf)], 1, 0, ov, None)
                if rc != 0 and self.err() != C.WSA_IO_PENDING:
                    c.drain_end = f"err={self.err()}"
                    break
                ws.WSAWaitForMultipleEvents(1, [ov.hEvent], C.FALSE, WAIT_MS, C.FALSE)
                ok, n, _ = ws.WSAGetOverlappedResult(c.sock, ov, C.FALSE)
                if not ok:
                    c.drain_end = f"err={self.err()}"
                    break
                if n == 0:
                    c.drain_end = "eof"
                    break
                c.drained += buf[:n]
        for i, c in enumerate(self.conns):
            if c.ours_open:
                self._before_close(i)
                self.rc_int(f"closesocket(end c{i})", ws.closesocket(c.sock))
                self.sockets.remove(c.sock)
                c.ours_open = False
        # What the peers received.
        peer_got: list[tuple[bytes, str]] = []
        for c in self.conns:
            got, end = bytearray(), ""
            if c.peer_state in ("closed", "closed-unread", "reset"):
                peer_got.append((b"", "gone"))
                continue
            for _ in range(200):
                try:
                    chunk = c.peer.recv(65536, timeout=WAIT_MS / 1000)
                except (ConnectionResetError, ConnectionAbortedError):
                    end = "reset"
                    break
                except TimeoutError:
                    end = "timeout"
                    break
                if not chunk:
                    end = "eof"
                    break
                got += chunk
            peer_got.append((bytes(got), end))
        # Now every operation must be complete (sockets closed).
        for s in list(self.sockets):
            if s != self.listener:
                ws.closesocket(s)
                self.sockets.remove(s)
        self.rc_int("closesocket(listener)", ws.closesocket(self.listener))
        self.sockets.remove(self.listener)
        self.settle_routines()
        for op in self.ops + self.extra_ops:
            self.wait_op(op)
        self.settle_routines()
        for i, op in enumerate(self.ops):
            fin = op.final or "?"
            fin += self._tags(op)  # for the comparison (difftest.canonical), which applies them to both sides
            self.obs.append((f"op{i}.{op.kind}.final", fin))
            if op.extra_event:
                # A completion routine notified it: its hEvent stays as the program left it
                # (test_WSARecv: not signalled).  An immediate failure notifies nothing at all.
                rc = ws.WSAWaitForMultipleEvents(1, [op.extra_event], C.FALSE, 0, C.FALSE)
                self.obs.append((f"op{i}.{op.kind}.hEvent after its routine", str(rc)))
        for i, op in enumerate(self.extra_ops):
            self.obs.append((f"extra{i}.{op.kind}.final", op.final or "?"))
        for i, c in enumerate(self.conns):
            # AcceptEx's first bytes, then the receives in posting order, then the drain.
            inbound = c.first + b"".join(op.data for op in c.recv_ops) + bytes(c.drained)
            fuzzy_in = c.reset_involved or c.rd_shut or c.closed_early
            self.obs.append((f"conn{i}.in", _stream(inbound, bytes(c.peer_sent), fuzzy_in)))
            self.obs.append((f"conn{i}.in.end", "*" if fuzzy_in or not c.drain_end else c.drain_end))
            got_out, end = peer_got[i]
            # Closing with received bytes unread sends RST, which may cut what the peer gets.
            fuzzy_out = (c.aborted or end == "gone" or len(inbound) < len(c.peer_sent)
                         or c.send_in_flight_at_close)
            self.obs.append((f"conn{i}.out", _stream(got_out, bytes(c.sent), fuzzy_out)))
            unread = len(inbound) < len(c.peer_sent) and not c.rd_shut and not c.reset_involved
            if unread and not c.aborted and c.cap_at_close >= len(c.peer_sent):
                # The receives posted could have taken every byte: that some were still unread
                # at the close (so it reset) is a schedule (partial receives), on Windows too.
                out_end = "*"
            elif (c.aborted or unread) and end != "gone" and not c.wr_shut:
                # Closed with SO_LINGER {1, 0}, or with received bytes unread: the peer must see a reset.
                out_end = end
            else:
                out_end = "*" if fuzzy_out else end
            self.obs.append((f"conn{i}.out.end", out_end))
        for e in self.events:
            ws.WSACloseEvent(e)
        self.events.clear()
        self.obs.append(("WSACleanup", str(ws.WSACleanup())))

    def cleanup(self) -> None:
        ws = self.ws
        for c in self.conns:
            try:
                c.peer.close()
            except OSError:
                pass
        for s in self.sockets:
            ws.closesocket(s)
        self.sockets.clear()
        self.settle_routines()
        for op in self.ops:
            if op.notify == "event" and op.final is None:
                ws.WSAWaitForMultipleEvents(1, [op.ov.hEvent], C.FALSE, 200, C.FALSE)
        for e in self.events:
            ws.WSACloseEvent(e)
        try:
            ws.WSACleanup()
        except Exception:  # noqa: BLE001 - the fake's leak check: the run is already a finding
            pass


def _stream(got: bytes, sent: bytes, fuzzy: bool) -> str:
    """The stream as a class: exact, a prefix where a reset may cut it, or how it is wrong."""
    if fuzzy and sent.startswith(got):
        return "prefix of sent"
    if got == sent:
        return "all sent"
    if sent.startswith(got):
        return "a prefix of what was sent"
    if got.startswith(sent):
        return "more than was sent"
    return "bytes that were not sent"


def run_program(ws: Winsock, steps: list[Any]) -> Obs:
    return Runner(ws).run(steps)
