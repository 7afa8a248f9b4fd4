"""Random, well-defined Winsock programs drawn from a seed (the generator).

A program is a list of steps over a small world: one listener, up to three
connections (an accept socket made by AcceptEx and the peer that connected to
it), and the overlapped operations posted on them.  The generator keeps a model
of that world so that every program is defined behaviour on Windows:

* every post gets a fresh WSAOVERLAPPED, a fresh event and fresh buffers;
* a wait is generated only for an operation that is certain to complete (a
  send; a receive for which the peer has sent more bytes than every receive
  posted before it can hold, or whose connection has ended), so finite waits
  never depend on timing;
* a handle is never used after it is closed (bad handles are INVALID_SOCKET and
  a value no object has);
* the peer never reads while the program runs, and each connection carries
  little data, so no send waits for the window.

Steps are plain tuples (JSON-friendly): ``(kind, arg, ...)``.  The runner
(:mod:`runner`) interprets them on any backend.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

Step = tuple[Any, ...]  # (kind, *args): the runner reads it by kind

MAX_CONNS = 3
#: Seeds from here on also draw the calls added in fidelity session 6 (MSG_PEEK, SO_CONNECT_TIME,
#: option values, CancelIo, completion ports, threads, CancelIo on handles that are no file, and
#: receives/sends with both an event and a completion routine); seeds below keep their programs.
WIDE_FROM = 30000
RECV_LENS = (0, 0, 1, 2, 3, 5, 16, 64, 100)
SEND_LENS = (0, 1, 3, 10, 50, 200)


@dataclass
class _Conn:
    ours_open: bool = True
    rd_shut: bool = False
    wr_shut: bool = False
    peer: str = "open"          # open | fin | closed | reset
    peer_sent: int = 0          # bytes the peer sent
    caps: int = 0               # sum of the capacities of the receives posted (and AcceptEx's rdl)
    outstanding_recvs: int = 0
    sent_total: int = 0


@dataclass
class _Op:
    kind: str                   # recv | send
    conn: int
    notify: str                 # event | routine
    caps_before: int            # capacity of everything posted before it on its connection
    waited: bool = False
    immediate_fail: bool = False
    cancelled: bool = False
    signalled: bool | None = None   # the event's state once it is known (after a wait)
    alertable_since: bool = False   # an alertable call happened since the post (its routine may have run)


@dataclass
class _World:
    rng: random.Random
    conns: list[_Conn] = field(default_factory=list)
    ops: list[_Op] = field(default_factory=list)
    loose_sockets: int = 0
    steps: list[Step] = field(default_factory=list)
    wide: bool = False          # draw the calls added in fidelity session 6 (seeds >= WIDE_FROM)

    def guaranteed(self, i: int) -> bool:
        op = self.ops[i]
        if op.waited:
            return False
        if op.immediate_fail or op.kind == "send" or op.cancelled:
            return True
        c = self.conns[op.conn]
        return (not c.ours_open or c.peer != "open" or c.peer_sent > op.caps_before)


def _alertable(w: _World) -> None:
    for op in w.ops:
        op.alertable_since = True


def _target(w: _World) -> str:
    """A socket to ask about: the listener, a fresh socket (counted) or an open connection."""
    target = w.rng.choice(["listener", "fresh"] + [f"c{i}" for i in range(len(w.conns)) if w.conns[i].ours_open])
    if target == "fresh":
        w.loose_sockets += 1
    return target


def _bufs(rng: random.Random, lens: tuple[int, ...], n_max: int) -> list[int]:
    return [rng.choice(lens) for _ in range(rng.randint(1, n_max))]


def generate(seed: int, length: int | None = None) -> list[Step]:
    """The program of ``seed``: a list of steps (deterministic)."""
    rng = random.Random(seed)
    w = _World(rng, wide=seed >= WIDE_FROM)
    n = length if length is not None else rng.randint(6, 40)
    w.steps.append(("conn", rng.choice((0, 0, 0, 4)), rng.randint(1, 20), False))
    w.conns.append(_Conn())
    first = w.conns[0]
    if w.steps[0][1]:
        first.peer_sent = w.steps[0][2]
        first.caps = w.steps[0][1]
    for _ in range(n):
        _one_step(w)
    return w.steps


def _one_step(w: _World) -> None:
    rng = w.rng
    live = [i for i, c in enumerate(w.conns) if c.ours_open]
    kinds: list[tuple[str, int]] = [("bad", 3), ("event", 2), ("names", 1), ("opt", 1), ("poll", 2),
                                    ("known_wait", 2), ("cancel", 1)]
    if w.wide:
        kinds += [("port", 1), ("thread", 1), ("not_a_file", 1)]
    if len(w.conns) < MAX_CONNS:
        kinds.append(("conn", 2))
    if live:
        kinds += [("recv", 6), ("send", 5), ("peer", 5), ("shutdown", 1), ("close", 1)]
        if w.wide:
            kinds += [("peek", 2), ("connect_time", 1), ("opt_values", 1), ("cancel_all", 1)]
    if any(w.guaranteed(i) for i in range(len(w.ops))):
        kinds.append(("wait", 8))
    total = sum(wt for _, wt in kinds)
    r = rng.randrange(total)
    kind = kinds[0][0]
    for kind, wt in kinds:  # noqa: B007 - kind is the one chosen
        if r < wt:
            break
        r -= wt
    getattr(_Gen, kind)(w)


class _Gen:
    @staticmethod
    def conn(w: _World) -> None:
        rng = w.rng
        rdl = rng.choice((0, 0, 0, 4))
        first = rng.randint(1, 20)
        c = _Conn()
        if rdl and rng.random() < 0.2:
            first = 0  # the peer connects and closes without sending: AcceptEx completes with 0 bytes
            c.peer = "closed"
        if len(w.conns) + 2 <= MAX_CONNS and rng.random() < 0.2:
            w.steps.append(("conn_pair",))
            w.conns += [_Conn(), _Conn()]
            _alertable(w)
            return
        w.steps.append(("conn", rdl, first, rng.random() < 0.2, rng.random() < 0.25))
        _alertable(w)  # the peer's connect may wait in select(), which runs queued routines on Windows
        if rdl:
            c.peer_sent = first
            c.caps = rdl
        w.conns.append(c)

    @staticmethod
    def recv(w: _World) -> None:
        rng = w.rng
        ci = rng.choice([i for i, c in enumerate(w.conns) if c.ours_open])
        c = w.conns[ci]
        if c.outstanding_recvs >= 2:
            return
        lens = _bufs(rng, RECV_LENS, 4)
        notify = "routine" if rng.random() < 0.3 else "event"
        both = w.wide and notify == "routine" and rng.random() < 0.5
        op = _Op("recv", ci, notify, c.caps)
        # Fails at once (nothing to wait for, but a wait is still well defined).
        op.immediate_fail = c.rd_shut
        c.caps += sum(lens)
        c.outstanding_recvs += 1
        w.ops.append(op)
        w.steps.append(("recv", ci, lens, "routine+event" if both else notify))

    @staticmethod
    def send(w: _World) -> None:
        rng = w.rng
        ci = rng.choice([i for i, c in enumerate(w.conns) if c.ours_open])
        c = w.conns[ci]
        lens = _bufs(rng, SEND_LENS, 3)
        if c.sent_total + sum(lens) > 8000:
            return
        c.sent_total += sum(lens)
        notify = "routine" if rng.random() < 0.3 else "event"
        both = w.wide and notify == "routine" and rng.random() < 0.5
        w.ops.append(_Op("send", ci, notify, 0))
        w.steps.append(("send", ci, lens, "routine+event" if both else notify, rng.randrange(1 << 30)))

    @staticmethod
    def peer(w: _World) -> None:
        rng = w.rng
        ci = rng.randrange(len(w.conns))
        c = w.conns[ci]
        if c.peer != "open" or not c.ours_open:
            return
        what = rng.choice(("send", "send", "send", "send", "shutdown", "close", "reset"))
        if what == "send":
            k = rng.randint(1, 300)
            if c.peer_sent + k > 8000:
                return
            c.peer_sent += k
            w.steps.append(("peer_send", ci, k, rng.randrange(1 << 30)))
            return
        c.peer = {"shutdown": "fin", "close": "closed", "reset": "reset"}[what]
        w.steps.append(("peer_" + what, ci))

    @staticmethod
    def shutdown(w: _World) -> None:
        rng = w.rng
        ci = rng.choice([i for i, c in enumerate(w.conns) if c.ours_open])
        how = rng.choice((0, 1, 1, 2, 7))
        c = w.conns[ci]
        if how in (0, 2):
            c.rd_shut = True
        if how in (1, 2):
            c.wr_shut = True
        w.steps.append(("shutdown", ci, how))

    @staticmethod
    def close(w: _World) -> None:
        rng = w.rng
        ci = rng.choice([i for i, c in enumerate(w.conns) if c.ours_open])
        w.conns[ci].ours_open = False
        w.conns[ci].outstanding_recvs = 0
        w.steps.append(("close", ci, rng.choice(("graceful", "graceful", "abort"))))

    @staticmethod
    def wait(w: _World) -> None:
        rng = w.rng
        cands = [i for i in range(len(w.ops)) if w.guaranteed(i)]
        i = rng.choice(cands)
        op = w.ops[i]
        op.waited = True
        if op.kind == "recv":
            w.conns[op.conn].outstanding_recvs -= 1
        w.steps.append(("wait", i))
        if op.notify == "routine":
            _alertable(w)
        elif not op.immediate_fail or op.kind == "recv":
            op.signalled = None if op.immediate_fail else True
            if rng.random() < 0.4:
                w.steps.append(("reset_event", i))
                op.signalled = False

    @staticmethod
    def known_wait(w: _World) -> None:
        """Waits whose result is certain: on events whose state is known (their operation
        completed and was waited for), WSAGetOverlappedResult(fWait=TRUE) on such an
        operation, or an alertable wait while a routine is certain to be queued."""
        rng = w.rng
        known = [i for i, op in enumerate(w.ops) if op.notify == "event" and op.signalled is not None]
        routines = [i for i, op in enumerate(w.ops) if op.notify == "routine" and not op.waited
                    and not op.alertable_since and w.guaranteed(i)]
        choice = rng.random()
        if routines and choice < 0.3:
            i = rng.choice(routines)
            w.ops[i].waited = True
            if w.ops[i].kind == "recv":
                w.conns[w.ops[i].conn].outstanding_recvs -= 1
            _alertable(w)
            w.steps.append(("alertable_wait", i))
            return
        if not known:
            return
        if choice < 0.6:
            idx = [rng.choice(known) for _ in range(rng.randint(1, 4))]
            w.steps.append(("wait_known", idx, rng.choice((0, 0, 1))))
            return
        i = rng.choice(known)
        if w.conns[w.ops[i].conn].ours_open:
            w.steps.append(("gor_wait", i))

    @staticmethod
    def cancel(w: _World) -> None:
        rng = w.rng
        cands = [i for i, op in enumerate(w.ops) if not op.waited and w.conns[op.conn].ours_open]
        if not cands:
            return
        i = rng.choice(cands)
        w.ops[i].cancelled = True
        w.steps.append(("cancel", i))

    @staticmethod
    def poll(w: _World) -> None:
        if not w.ops:
            w.steps.append(("sleep_alertable",))
            _alertable(w)
            return
        i = w.rng.randrange(len(w.ops))
        if w.ops[i].notify == "event":
            w.steps.append(("poll", i))
        else:
            w.steps.append(("sleep_alertable",))
            _alertable(w)

    @staticmethod
    def event(w: _World) -> None:
        w.steps.append(("event_cycle", w.rng.choice(("set", "reset", "both"))))

    @staticmethod
    def names(w: _World) -> None:
        w.steps.append(("names", _target(w)))

    @staticmethod
    def opt(w: _World) -> None:
        rng = w.rng
        live = [i for i, c in enumerate(w.conns) if c.ours_open]
        if not live:
            return
        ci = rng.choice(live)
        w.steps.append(("opt", ci, rng.choice(("keepalive", "nodelay", "linger_short", "linger_get",
                                                "update_ctx", "update_ctx_short"))))

    @staticmethod
    def bad(w: _World) -> None:
        rng = w.rng
        live = [i for i, c in enumerate(w.conns) if c.ours_open]
        what = rng.choice(("recv_count0", "recv_invalid", "send_invalid", "recv_listener", "send_fresh",
                           "wait_zero", "wait_badhandle", "reset_badhandle", "shutdown_listener",
                           "getpeername_listener", "gor_badsock", "acceptex_remote0", "close_invalid",
                           "acceptex_connected", "shutdown_fresh", "wait_65", "setevent_badhandle",
                           "closeevent_badhandle", "listen_again", "bind_again", "linger_default",
                           "acceptex_null_output", "shutdown_invalid", "getsockname_invalid")
                          + (("send_count0",) if w.wide else ()))
        if what in ("recv_count0", "send_count0", "acceptex_connected") and not live:
            return
        if what == "acceptex_connected":
            # Windows fails at once (WSAEINVAL); Wine pends: at most once per program.
            if any(s[0] == "bad" and s[1] == "acceptex_connected" for s in w.steps):
                return
        if what in ("send_fresh", "shutdown_fresh", "linger_default"):
            w.loose_sockets += 1
        w.steps.append(("bad", what, rng.choice(live) if live else -1))

    # -- drawn only by seeds >= WIDE_FROM (fidelity session 6)

    @staticmethod
    def peek(w: _World) -> None:
        """WSARecv with MSG_PEEK, only where it is certain to complete with bytes (the
        peer sent more than every receive posted before can take) and waited for at
        once; what it saw is compared as "a prefix of what is unread" by the runner."""
        rng = w.rng
        ci = rng.choice([i for i, c in enumerate(w.conns) if c.ours_open])
        c = w.conns[ci]
        if c.rd_shut:
            w.steps.append(("peek", ci, rng.choice((1, 5, 64))))  # fails at once: WSAESHUTDOWN
            return
        if c.peer_sent <= c.caps or c.outstanding_recvs:
            return
        w.steps.append(("peek", ci, rng.choice((1, 5, 64))))

    @staticmethod
    def connect_time(w: _World) -> None:
        w.steps.append(("connect_time", _target(w), w.rng.choice((4, 4, 4, 2))))

    @staticmethod
    def opt_values(w: _World) -> None:
        rng = w.rng
        ci = rng.choice([i for i, c in enumerate(w.conns) if c.ours_open])
        what = rng.choice(("SO_RCVBUF", "SO_SNDBUF", "SO_KEEPALIVE", "TCP_NODELAY", "SO_REUSEADDR",
                           "SO_ERROR", "SO_TYPE"))
        value = rng.choice((0, 1, 4096, 65536))
        w.steps.append(("opt_value", ci, what, value))

    @staticmethod
    def cancel_all(w: _World) -> None:
        """CancelIo on a connection: every operation this thread posted on it that was
        not waited for yet is cancelled (or had completed: the runner compares both)."""
        rng = w.rng
        ci = rng.choice([i for i, c in enumerate(w.conns) if c.ours_open])
        for op in w.ops:
            if op.conn == ci and not op.waited:
                op.cancelled = True
        w.steps.append(("cancel_all", ci))

    @staticmethod
    def port(w: _World) -> None:
        """A completion port of its own (no socket is associated: the program's
        routines stay legal): posted packets, dequeues, a timeout, CancelIo on it."""
        rng = w.rng
        w.steps.append(("port", [rng.randrange(4) for _ in range(rng.randint(0, 3))], rng.choice((1, 2, 4)),
                        rng.random() < 0.5))

    @staticmethod
    def thread(w: _World) -> None:
        """A thread that sets an event and returns a code: the waits and exit codes."""
        rng = w.rng
        w.steps.append(("thread", rng.randrange(1000), rng.random() < 0.5))

    @staticmethod
    def not_a_file(w: _World) -> None:
        """CancelIo / CancelIoEx on an event or a port (Windows: ERROR_INVALID_HANDLE)."""
        rng = w.rng
        w.steps.append(("not_a_file", rng.choice(("event", "port")), rng.choice(("CancelIo", "CancelIoEx"))))
