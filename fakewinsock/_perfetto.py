"""The fake's trace as a picture: Chrome's Trace Event Format, for ui.perfetto.dev
and chrome://tracing.

:class:`PerfettoWriter` turns trace records (:mod:`fakewinsock._trace`) into
trace events as they come, with memory bounded by what is in flight (open
operations, unread bytes, a thread's calls since its last wait), so a long
run can be streamed.  The output is the JSON object form
(``{"traceEvents": [...], "displayTimeUnit": "ns"}``); timestamps are the
fake's virtual time in microseconds, as the format wants.

What is drawn:

* process "program threads": a track per program thread (T1, T2...).  Each
  Winsock call is an instant (posts say ``(pending)``, ``(immediate)`` or
  ``(failed)``); each wait (WSAWaitForMultipleEvents, SleepEx, a blocking
  WSAGetOverlappedResult) a slice from its start to its return, and inside it
  the completion routines it ran (a slice each, holding the calls the routine
  made) and the completions that signalled the thread.
* process "sockets": a track per socket.  Each operation (AcceptEx, WSARecv,
  WSASend) is a slice from its post to its completion, named ``WSARecv
  (immediate)`` when it completed at once, ``... (failed)`` when the post
  failed; its end carries ``status`` and ``bytes``.  Operations in flight
  together on one socket go on extra tracks of that socket (``socket 0x108
  (2)``).  Instants: a connection accepted or queued in the backlog, bytes
  arriving, FIN and RST arriving, the socket closed.
* process "network": a track per simulated peer (its connection, FIN,
  close, reset and the bytes reaching it) and a track of the segments each
  end sends towards a program socket (``peer c1 :49152 sends``), and a
  "kernel" track for what belongs to no socket.
* flows (arrows): from each segment a peer (or a socket) sent to the
  completion that delivered its bytes (an AcceptEx with receive data, a
  WSARecv); a segment read by several receives steps through each.  Bytes
  never read end their flow on the RST, the close or the end of the trace
  that discarded them.

Divergence from the real thing: nothing here is measured on Windows; the
slices are the fake's virtual time.  A wait's start comes from its return
record (``waited=``); traces from before that field show waits as instants.
Bytes are matched to completions by counting (a connection delivers in
order), so a record the fake did not write (none is known) would misplace
arrows, never slices.
"""

from __future__ import annotations

import json
from collections import deque
from typing import TextIO

__all__ = ["PerfettoWriter"]

_PROGRAM, _SOCKETS, _NETWORK = 1, 2, 3
_PROCESS_NAMES = {_PROGRAM: "program threads", _SOCKETS: "sockets", _NETWORK: "network"}
_OPS = ("AcceptEx", "WSARecv", "WSASend")
#: A thread's instants held back waiting for its next wait's start, at most.
_HOLD_LIMIT = 10_000
_FLOW_CAT = "bytes"
#: One encoder for every event (json.dumps with options would build one per call).
_encode = json.JSONEncoder(separators=(",", ":")).encode


def _kv(detail: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for word in detail.split():
        k, sep, v = word.partition("=")
        if sep:
            out[k] = v
    return out


def _int(text: str | None, default: int = 0) -> int:
    if text is None:
        return default
    try:
        return int(text, 0) if text.startswith("0x") else int(text)
    except ValueError:
        return default


def _us(ns: int) -> float:
    return ns / 1000


class _Sock:
    __slots__ = ("handle", "lanes", "lane_tids", "closed", "conn", "side")

    def __init__(self, handle: int) -> None:
        self.handle = handle
        self.lanes: list[int] = []  # op id per lane, 0 when free
        self.lane_tids: list[int] = []
        self.closed = False
        self.conn = 0
        self.side = ""  # "srv" (accepted) or "cli" (connected)


class _Conn:
    __slots__ = ("cid", "client_port", "listener", "srv", "cli", "fifo", "peer_port")

    def __init__(self, cid: int) -> None:
        self.cid = cid
        self.client_port = -1
        self.listener = 0
        self.srv = 0  # the accepted socket
        self.cli = 0  # the program's connecting socket (0: a simulated peer)
        self.peer_port = 0
        # Unread segments per receiving side: [flow id, bytes left, stepped].
        self.fifo: dict[str, deque[list[int]]] = {}


class _Op:
    __slots__ = ("op", "call", "handle", "ts", "thread", "detail", "seq", "lane_tid", "lane", "name")

    def __init__(self, op: int, call: str, handle: int, ts: int, thread: int, detail: str, seq: int) -> None:
        self.op, self.call, self.handle, self.ts = op, call, handle, ts
        self.thread, self.detail, self.seq = thread, detail, seq
        self.lane_tid = 0
        self.lane = -1
        self.name = call


class _Thread:
    __slots__ = ("tid", "held", "routine")

    def __init__(self, tid: int) -> None:
        self.tid = tid
        self.held: list[tuple[int, str]] = []  # (ts, event) since the last wait
        self.routine = ""  # the name of the routine slice open (inside a wait)


class PerfettoWriter:
    """Streams trace records to ``out`` as Trace Event Format JSON; ``close()``
    ends the JSON and closes ``out``."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._sep = ""
        self._tids: dict[tuple[object, ...], int] = {}
        self._threads: dict[int, _Thread] = {}
        self._socks: dict[int, _Sock] = {}
        self._conns: dict[int, _Conn] = {}
        self._posts: dict[int, _Op] = {}  # posted, not yet known to pend or complete
        self._last_post: dict[int, int] = {}  # thread -> op id of its latest post
        self._ops: dict[int, _Op] = {}  # open slices
        self._accept_socket: dict[int, int] = {}  # AcceptEx op -> its accept socket
        self._now = 0
        out.write('{"displayTimeUnit":"ns","otherData":{"producer":"fakewinsock","clock":"virtual time"},'
                  '"traceEvents":[\n')
        for pid, name in _PROCESS_NAMES.items():
            self._put(self._meta("process_name", pid, 0, name))
            self._put(self._meta("process_sort_index", pid, 0, pid))

    # ------------------------------------------------------------ low level

    def _put(self, event: str) -> None:
        self._out.write(self._sep + event)
        self._sep = ",\n"

    @staticmethod
    def _meta(name: str, pid: int, tid: int, value: object) -> str:
        key = "sort_index" if name.endswith("sort_index") else "name"
        return _encode({"ph": "M", "name": name, "pid": pid, "tid": tid, "args": {key: value}})

    @staticmethod
    def _event(ph: str, name: str, pid: int, tid: int, ts: int, args: dict[str, object] | None = None,
               **extra: object) -> str:
        ev: dict[str, object] = {"ph": ph, "name": name, "pid": pid, "tid": tid, "ts": _us(ts)}
        ev.update(extra)
        if args:
            ev["args"] = args
        return _encode(ev)

    def _tid(self, key: tuple[object, ...], pid: int, name: str) -> int:
        tid = self._tids.get(key)
        if tid is None:
            tid = self._tids[key] = len(self._tids) + 1
            self._put(self._meta("thread_name", pid, tid, name))
            self._put(self._meta("thread_sort_index", pid, tid, tid))
        return tid

    def _instant(self, pid: int, tid: int, ts: int, name: str, args: dict[str, object]) -> str:
        return self._event("i", name, pid, tid, ts, args, s="t")

    # --------------------------------------------------------------- tracks

    def _thread(self, index: int) -> _Thread:
        th = self._threads.get(index)
        if th is None:
            th = self._threads[index] = _Thread(self._tid(("T", index), _PROGRAM, f"thread T{index}"))
        return th

    def _sock(self, handle: int) -> _Sock:
        s = self._socks.get(handle)
        if s is None:
            s = self._socks[handle] = _Sock(handle)
        return s

    def _lane_tid(self, s: _Sock, lane: int) -> int:
        while len(s.lane_tids) <= lane:
            k = len(s.lane_tids)
            name = f"socket {s.handle:#x}" + (f" ({k + 1})" if k else "")
            s.lane_tids.append(self._tid(("S", s.handle, k), _SOCKETS, name))
            s.lanes.append(0)
        return s.lane_tids[lane]

    def _sock_tid(self, handle: int) -> int:
        """The first track of socket ``handle`` (its lane-0 track)."""
        s = self._socks.get(handle)
        if s is not None:
            return self._lane_tid(s, 0)
        return self._tid(("S", handle, 0), _SOCKETS, f"socket {handle:#x}")

    def _peer_tid(self, conn: _Conn) -> int:
        port = f" :{conn.peer_port}" if conn.peer_port else ""
        return self._tid(("P", conn.cid), _NETWORK, f"peer c{conn.cid}{port}")

    def _kernel_tid(self) -> int:
        return self._tid(("K",), _NETWORK, "kernel")

    def _dest(self, conn: _Conn, side: str) -> tuple[int, int]:
        """The track where things arriving at ``side`` of ``conn`` are shown."""
        if side == "srv":
            h = conn.srv or conn.listener
            if h:
                return _SOCKETS, self._sock_tid(h)
            return _NETWORK, self._kernel_tid()
        if conn.cli:
            return _SOCKETS, self._sock_tid(conn.cli)
        return _NETWORK, self._peer_tid(conn)

    def _sender_tid(self, conn: _Conn, to_side: str) -> tuple[int, int]:
        """The track of the segments sent towards ``to_side`` of ``conn``."""
        if to_side == "srv" and not conn.cli:
            port = f" :{conn.peer_port}" if conn.peer_port else ""
            return _NETWORK, self._tid(("W", conn.cid, "cli"), _NETWORK, f"peer c{conn.cid}{port} sends")
        h = conn.cli if to_side == "srv" else conn.srv
        name = f"socket {h:#x} sends" if h else f"c{conn.cid} sends"
        return _SOCKETS, self._tid(("W", conn.cid, "srv" if to_side == "cli" else "cli"), _SOCKETS, name)

    # --------------------------------------------------------- thread track

    def _on_thread(self, index: int, ts: int, event_of: str) -> None:
        th = self._thread(index)
        th.held.append((ts, event_of))
        if len(th.held) > _HOLD_LIMIT and not th.routine:
            for _, ev in th.held:
                self._put(ev)
            th.held.clear()

    def _thread_instant(self, index: int, ts: int, name: str, args: dict[str, object]) -> None:
        if index <= 0:
            self._put(self._instant(_NETWORK, self._kernel_tid(), ts, name, args))
            return
        th = self._thread(index)
        self._on_thread(index, ts, self._instant(_PROGRAM, th.tid, ts, name, args))

    def _wait(self, index: int, start: int, end: int, name: str, args: dict[str, object]) -> None:
        """A wait from ``start`` to ``end``: the thread's held events before it,
        the wait's slice around those after its start (routines, signals)."""
        th = self._thread(index)
        held, th.held = th.held, []
        i = 0
        while i < len(held) and held[i][0] < start:
            self._put(held[i][1])
            i += 1
        self._put(self._event("B", name, _PROGRAM, th.tid, start, args))
        for _, ev in held[i:]:
            self._put(ev)
        if th.routine:
            self._put(self._event("E", th.routine, _PROGRAM, th.tid, end))
            th.routine = ""
        self._put(self._event("E", name, _PROGRAM, th.tid, end))

    # ---------------------------------------------------------- socket track

    def _open_op(self, op: _Op, name: str) -> None:
        s = self._sock(op.handle)
        lane = 0
        while lane < len(s.lanes) and s.lanes[lane]:
            lane += 1
        tid = self._lane_tid(s, lane)
        s.lanes[lane] = op.op or -1
        op.lane, op.lane_tid, op.name = lane, tid, name
        args: dict[str, object] = {"op": op.op, "thread": f"T{op.thread}", "seq": op.seq}
        if op.detail:
            args["posted"] = op.detail
        self._put(self._event("B", name, _SOCKETS, tid, op.ts, args))

    def _close_op(self, op: _Op, ts: int, args: dict[str, object]) -> None:
        self._put(self._event("E", op.name, _SOCKETS, op.lane_tid, ts, args))
        s = self._socks.get(op.handle)
        if s is not None:
            s.lanes[op.lane] = 0
            self._maybe_forget(s)

    def _maybe_forget(self, s: _Sock) -> None:
        """A closed socket with nothing in flight is forgotten (its connection,
        a few numbers, is kept: its peer may still send, FIN and reset)."""
        if s.closed and not any(s.lanes):
            del self._socks[s.handle]

    # ---------------------------------------------------------------- bytes

    def _side_of(self, conn: _Conn, to_port: int) -> str:
        return "cli" if to_port == conn.client_port else "srv"

    def _tracked(self, conn: _Conn, side: str) -> bool:
        """Bytes reaching ``side`` are read by a program socket (so matched)."""
        return side == "srv" or bool(conn.cli)

    def _consume(self, conn: _Conn, side: str, n: int, tid: int, ts: int) -> None:
        """``n`` bytes of ``conn``'s ``side`` were read by the slice open on ``tid``."""
        fifo = conn.fifo.get(side)
        while n > 0 and fifo:
            seg = fifo[0]
            take = min(n, seg[1])
            seg[1] -= take
            n -= take
            if seg[1] == 0:
                fifo.popleft()
                self._put(self._event("f", "segment", _SOCKETS, tid, ts, None, cat=_FLOW_CAT, id=seg[0], bp="e"))
            else:
                self._put(self._event("t", "segment", _SOCKETS, tid, ts, None, cat=_FLOW_CAT, id=seg[0]))

    def _discard(self, conn: _Conn | None, side: str, ts: int, pid: int, tid: int, name: str,
                 args: dict[str, object]) -> None:
        """An instant on (pid, tid) that throws away what ``side`` had unread:
        those bytes' flows end on it."""
        fifo = conn.fifo.pop(side, None) if conn is not None else None
        if fifo:
            args = dict(args, discarded=sum(seg[1] for seg in fifo))
            for seg in fifo:
                self._put(self._event("f", "segment", pid, tid, ts, None, cat=_FLOW_CAT, id=seg[0]))
        self._put(self._instant(pid, tid, ts, name, args))

    # ------------------------------------------------------------ records

    def write(self, rec: tuple[int, int, int, str, str, int, int, str]) -> None:
        seq, ts, thread, what, call, handle, op, detail = rec
        self._now = ts
        if what == "net":
            self._net(seq, ts, thread, call, handle, op, detail)
            return
        if what == "posted":
            post = _Op(op, call, handle, ts, thread, detail, seq)
            self._posts[op] = post
            self._last_post[thread] = op
            if call == "AcceptEx":
                self._accept_socket[op] = _int(_kv(detail).get("accept"))
            return
        if what in ("pending", "immediate") and op in self._posts:
            post = self._posts.pop(op)
            self._last_post.pop(post.thread, None)
            immediate = what == "immediate"
            self._open_op(post, f"{call} (immediate)" if immediate else call)
            self._ops[op] = post
            self._thread_instant(post.thread, post.ts, f"{call} ({what})",
                                 {"op": op, "socket": f"{handle:#x}", "seq": post.seq, "detail": post.detail})
            if immediate:
                self._completed(post, ts, detail, seq)
            return
        if what == "completed" and op in self._ops:
            self._completed(self._ops[op], ts, detail, seq)
            return
        if what == "failed":
            last = self._last_post.get(thread)
            failed = self._posts.get(last) if last is not None else None
            if failed is not None and failed.call == call and failed.handle == handle:
                # The post itself failed at once (a reset that had just arrived).
                del self._posts[failed.op]
                del self._last_post[thread]
                self._open_op(failed, f"{call} (failed)")
                self._close_op(failed, ts, {"detail": detail, "seq": seq})
                self._thread_instant(thread, ts, f"{call} (failed)", {"op": failed.op, "detail": detail, "seq": seq})
                return
            self._thread_instant(thread, ts, f"{call} failed", self._args(handle, op, detail, seq))
            return
        if what == "routine":
            th = self._thread(thread)
            if th.routine:
                self._on_thread(thread, ts, self._event("E", th.routine, _PROGRAM, th.tid, ts))
            th.routine = f"routine {call} op{op}"
            self._on_thread(thread, ts, self._event("B", th.routine, _PROGRAM, th.tid, ts,
                                                    self._args(handle, op, detail, seq)))
            return
        if what == "return" or (what == "fetched" and "waited=" in detail):
            waited = _int(_kv(detail).get("waited"))
            self._wait(thread, ts - waited, ts, call, self._args(handle, op, detail, seq))
            return
        if what == "call":
            self._call(seq, ts, thread, call, handle, detail)
            return
        if what == "signalled" and call == "external":
            self._put(self._instant(_NETWORK, self._kernel_tid(), ts, f"signal_event {handle:#x}",
                                    self._args(handle, op, detail, seq)))
            return
        name = f"{what} {handle:#x}" if what == "signalled" else (f"{call} {what}" if what != "fetched" else call)
        self._thread_instant(thread, ts, name, self._args(handle, op, detail, seq))

    @staticmethod
    def _args(handle: int, op: int, detail: str, seq: int) -> dict[str, object]:
        args: dict[str, object] = {}
        if handle:
            args["handle"] = f"{handle:#x}"
        if op:
            args["op"] = op
        if detail:
            args["detail"] = detail
        args["seq"] = seq
        return args

    def _completed(self, op: _Op, ts: int, detail: str, seq: int) -> None:
        del self._ops[op.op]
        kv = _kv(detail)
        status, n = _int(kv.get("status")), _int(kv.get("bytes"))
        # (a MSG_PEEK receive copies its bytes and leaves them queued: their flows go on to the read)
        if status == 0 and n > 0 and op.call != "WSASend" and "MSG_PEEK" not in op.detail:
            sock_handle = self._accept_socket.get(op.op, 0) if op.call == "AcceptEx" else op.handle
            s = self._socks.get(sock_handle)
            conn = self._conns.get(s.conn) if s is not None else None
            if conn is not None and s is not None:
                self._consume(conn, s.side, n, op.lane_tid, ts)
        self._accept_socket.pop(op.op, None)
        self._close_op(op, ts, {"status": f"{status:#x}", "bytes": n, "seq": seq})

    def _call(self, seq: int, ts: int, thread: int, call: str, handle: int, detail: str) -> None:
        args = self._args(handle, 0, detail, seq)
        self._thread_instant(thread, ts, call, args)
        if call == "connect" and handle:
            cid = _int(_kv(detail).get("conn", "c0")[1:])
            conn = self._conns.setdefault(cid, _Conn(cid))
            conn.cli = handle
            s = self._sock(handle)
            s.conn, s.side = cid, "cli"
        elif call == "closesocket" and handle in self._socks:
            s = self._socks[handle]
            s.closed = True
            tid = self._lane_tid(s, 0)
            self._discard(self._conns.get(s.conn), s.side, ts, _SOCKETS, tid, "closesocket", {"seq": seq})
            self._maybe_forget(s)

    def _net(self, seq: int, ts: int, thread: int, call: str, handle: int, op: int, detail: str) -> None:
        kv = _kv(detail)
        cid = _int(kv.get("conn", "c0")[1:])
        conn = self._conns.get(cid)
        args = self._args(handle, op, detail, seq)
        if detail.startswith("peer "):  # a simulated peer's own doing
            if conn is None:
                conn = self._conns[cid] = _Conn(cid)
            if not conn.peer_port:
                conn.peer_port = _int(detail.split()[1])
            self._put(self._instant(_NETWORK, self._peer_tid(conn), ts, call, args))
            return
        if call == "backlog":
            if conn is None:
                conn = self._conns[cid] = _Conn(cid)
            conn.client_port = _int(kv.get("from"), -1)
            conn.listener = handle
            if not conn.cli and not conn.peer_port:
                conn.peer_port = conn.client_port
            self._put(self._instant(_SOCKETS, self._sock_tid(handle), ts, "backlog", args))
            return
        if call == "accept" and conn is not None:
            conn.srv = handle
            s = self._sock(handle)
            s.conn, s.side = cid, "srv"
            self._put(self._instant(_SOCKETS, self._lane_tid(s, 0), ts, "accepted", args))
            return
        if conn is None:
            if handle:
                self._put(self._instant(_SOCKETS, self._sock_tid(handle), ts, call, args))
            else:
                self._put(self._instant(_NETWORK, self._kernel_tid(), ts, call, args))
            return
        if call == "arrive":
            side = self._side_of(conn, _int(kv.get("to"), -2))
            n = _int(kv.get("bytes"))
            pid, tid = self._dest(conn, side)
            if self._tracked(conn, side):
                sent = _int(kv.get("sent"), ts)
                wpid, wtid = self._sender_tid(conn, side)
                name = f"send {n} B"
                self._put(self._event("B", name, wpid, wtid, sent, {"conn": f"c{cid}", "seq": seq}))
                self._put(self._event("s", "segment", wpid, wtid, sent, None, cat=_FLOW_CAT, id=seq))
                self._put(self._event("E", name, wpid, wtid, sent))
                conn.fifo.setdefault(side, deque()).append([seq, n])
            self._put(self._instant(pid, tid, ts, f"arrive {n} B", args))
            return
        if call in ("rst", "fin"):
            side = self._side_of(conn, _int(kv.get("to"), -2))
            pid, tid = self._dest(conn, side)
            if call == "rst":
                self._discard(conn, side, ts, pid, tid, "RST", args)
            else:
                self._put(self._instant(pid, tid, ts, "FIN", args))
            return
        if call in ("dropped", "accept-reset"):
            h = handle or conn.listener
            pid, tid = (_SOCKETS, self._sock_tid(h)) if h else (_NETWORK, self._kernel_tid())
            self._discard(conn, "srv", ts, pid, tid, call, args)
            return
        pid, tid = self._dest(conn, "srv") if handle else (_NETWORK, self._kernel_tid())
        self._put(self._instant(pid, tid, ts, call, args))

    # ----------------------------------------------------------------- end

    def close(self) -> None:
        """End what is still open at the end of the trace, and the JSON."""
        end = self._now
        for post in list(self._posts.values()):  # posted, and the trace ended before it pended
            self._open_op(post, post.call)
            self._ops[post.op] = post
        self._posts.clear()
        for op in list(self._ops.values()):
            del self._ops[op.op]
            self._close_op(op, end, {"unfinished": True})
        for index in list(self._threads):
            th = self._threads[index]
            for _, ev in th.held:
                self._put(ev)
            th.held.clear()
            if th.routine:
                self._put(self._event("E", th.routine, _PROGRAM, th.tid, end))
                th.routine = ""
        for conn in list(self._conns.values()):
            for side in list(conn.fifo):
                if conn.fifo[side]:
                    pid, tid = self._dest(conn, side)
                    self._discard(conn, side, end, pid, tid, "unread at the end of the trace", {})
        self._out.write("\n]}\n")
        self._out.close()
