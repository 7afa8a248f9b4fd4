"""Deliberately broken variants of ovserver's server, one real bug each.

Every class below is an ovserver server class with one thing changed: a small
override, a wrapper around the correct method, or a copy of one method with
the bug written in (the line says ``BUG``; ``COPIED`` names the copied methods,
and ``tests/test_mutants.py`` checks that each copy differs from the original
by a few lines only; a line a copy leaves out on purpose is marked by a
``# BUG:`` comment at its place, so a copy that misses lines its original
gained later fails there).  The bugs are the classic mistakes of the seed's
overlapped-IO lecture ("问题总结": the problem list) and of
``docs/winsock-semantics.md``; :data:`tests.mutants.MUTANTS` says where each
comes from and which property test catches it.

These are test code: they are not shipped with ovserver.
"""

from __future__ import annotations

from fakewinsock import WSABUF, WSAOVERLAPPED, Winsock
from fakewinsock.constants import (
    AF_INET,
    FALSE,
    INVALID_SOCKET,
    IPPROTO_TCP,
    SD_SEND,
    SO_UPDATE_ACCEPT_CONTEXT,
    SOCK_STREAM,
    SOCKET_ERROR,
    SOL_SOCKET,
    WSA_FLAG_OVERLAPPED,
    WSA_INFINITE,
    WSA_IO_PENDING,
    WSA_MAXIMUM_WAIT_EVENTS,
    WSA_OPERATION_ABORTED,
    WSAECONNABORTED,
    WSAECONNRESET,
)
from ovserver._core import _CONNECTION_FAILED, ADDR_LEN, SOCKET_SIZE, ServerConfig, _Conn, _Io
from ovserver._events import EventServer, _Group
from ovserver._protocol import _ENDED, _MEMBER, Action, Hub
from ovserver._routines import RoutineServer

__all__ = [
    "OneReceiveOneMessage",
    "ForgetsWSAResetEvent",
    "ResetIsNotAnExit",
    "ZeroBytesIsNotAnExit",
    "ImmediateHandledTwice",
    "AcceptExAfterFirstReceive",
    "SharedOverlapped",
    "ReplyInReceiveBuffer",
    "AcceptExTrueIsFailure",
    "IgnoresAbortedCompletions",
    "ExitsWithoutReaping",
    "MoreThan64Events",
    "AcceptExReceivesData",
    "LineLimitIgnoresBuffered",
    "BigReplyTruncated",
    "CoalescedSendDropsSplitHead",
    "QueuedCountLeaks",
    "PartialLastLineDelivered",
    "ChatToEndedClient",
    "HalfCloseForgetsQueuedReplies",
    "AcceptErrorStopsAccepting",
    "ClosedSendNeverReaped",
    "FullCheckCountsMembers",
    "LostSignalNotRequeued",
    "LineLimitOffByOne",
    "StopSkipsBusySends",
]


# ---------------------------------------------------------------- framing


class _OneReceiveOneMessageHub(Hub):
    def receive(self, cid: int, data: bytes | bytearray | memoryview) -> list[Action]:
        c = self._clients.get(cid)
        if c is None or not data or not self.is_member(cid):
            return super().receive(cid, data)
        # BUG: whatever one receive brings is one message (a newline added if it lacks one).
        msg = bytes(data) if bytes(data).endswith(b"\n") else bytes(data) + b"\n"
        self.stats.bytes_in += len(data)
        self.stats.lines += 1
        actions: list[Action] = []
        self._route(c, msg, actions)
        return actions


class OneReceiveOneMessage(EventServer):
    """The seed's "问题": one receive is taken to be one message.  TCP keeps no
    message boundaries: several sends arrive in one receive, one send is split
    over several."""

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        self.hub = _OneReceiveOneMessageHub(self.config.mode, self.config.limits)  # BUG: its receive()
        self.stats.hub = self.hub.stats


# ---------------------------------------------------------------- events


class ForgetsWSAResetEvent(EventServer):
    """The seed's problem 4 ("信号置空"): the group's event is never reset.  A
    manual-reset event stays signalled, so the wait returns at once, forever."""

    COPIED = ("_handle_group",)

    def _handle_group(self, conn: _Conn) -> None:
        ws = self.ws
        # BUG: no ws.WSAResetEvent(conn.event)
        for io in (conn.recv, conn.send):
            if not io.completed():
                continue
            if conn.closed:
                # The socket is gone, so there is no result to fetch: the
                # operation ended with the error closesocket gave it.
                self._reaped(io)
                continue
            ok, nbytes, _ = ws.WSAGetOverlappedResult(conn.sock, io, FALSE)
            self._completed(io, 0 if ok else ws.WSAGetLastError(), nbytes)


class MoreThan64Events(EventServer):
    """The seed's "将上万的事件分组": one WSAWaitForMultipleEvents covers at most
    64 events; this server puts 64 clients in a group, forgetting that the
    group's wake event takes one of its slots: a 64th client makes 65."""

    @property
    def _group_capacity(self) -> int:
        return WSA_MAXIMUM_WAIT_EVENTS  # BUG: forgets the group's wake event


# ---------------------------------------------------------------- client exit


class ResetIsNotAnExit(EventServer):
    """The seed's problem 3 ("检测有误"): only a receive of 0 bytes is taken as
    the client's exit.  A forced exit (WSAGetOverlappedResult fails with 10054)
    is skipped, so the group is never removed: its socket, event and slot stay
    taken for good."""

    def _completed(self, io: _Io, error: int, nbytes: int) -> None:
        assert io.conn is not None
        if error == WSAECONNRESET and not io.conn.closed:
            io.busy = False
            return  # BUG: a failed result is skipped; only 0 bytes would close the group
        super()._completed(io, error, nbytes)


class ZeroBytesIsNotAnExit(RoutineServer):
    """The seed's problem 3 the other way round: only 10054 is taken as the
    client's exit, a receive of 0 bytes as "nothing yet", so it receives again,
    and again: at EOF every receive completes at once with 0 bytes."""

    def _completed(self, io: _Io, error: int, nbytes: int) -> None:
        conn = io.conn
        assert conn is not None
        if not error and nbytes == 0 and io.kind == "recv" and not conn.closed:
            io.busy = False
            self._post_recv(conn)  # BUG: 0 bytes is not an exit: receive again
            return
        super()._completed(io, error, nbytes)


# ---------------------------------------------------------------- completion handling


class ImmediateHandledTwice(EventServer):
    """Semantics doc, "Immediate success still notifies": WSARecv returned 0, so
    the data is handled at once; its event is signalled all the same, and the
    loop handles the same bytes again."""

    def _post_recv(self, conn: _Conn) -> None:
        io = conn.recv
        rc, nbytes, _ = self.ws.WSARecv(conn.sock, io.wsabufs, 1, 0, io, self._routine)
        self._after_post(conn, io, rc)
        if rc == 0 and nbytes and not conn.closed:
            # BUG: completed at once, so handled here -- and again when its event fires.
            assert isinstance(io.buf, bytearray)
            self._apply(self.hub.receive(conn.cid, bytes(io.buf[:nbytes])))


class SharedOverlapped(RoutineServer):
    """One OVERLAPPED per client, used by its WSARecv and its WSASend alike
    (the seed keeps one ``g_allOlp[i]`` per client, which is right only while a
    client has one operation in flight)."""

    COPIED = ("_post_send",)

    def _post_send(self, conn: _Conn) -> None:
        """Send the next piece of ``conn``'s output unless a send is in flight;
        with nothing left, finish a hang-up or an ended connection."""
        io = conn.send
        if io.busy or conn.closed:
            return
        data = self.hub.take_output(conn.cid, self.config.send_size)
        self._after_hub(conn)
        if not data:
            if conn.state == "eof":
                self._close(conn)
            elif conn.state == "hangup" and not conn.fin_sent:
                conn.fin_sent = True  # the error line is out: FIN, keep reading until the client goes
                self.ws.shutdown(conn.sock, SD_SEND)
            return
        io.buf = data  # bytes: immutable while in flight
        io.wsabufs = [WSABUF(len(data), data)]
        rc, _, _ = self.ws.WSASend(conn.sock, io.wsabufs, 1, 0, conn.recv, self._routine)  # BUG: conn.recv
        self._after_post(conn, io, rc)


class ReplyInReceiveBuffer(EventServer):
    """A buffer reused while an operation is in flight: the reply is built in
    the client's receive buffer, which the next WSARecv (posted while the send
    may still be in flight) writes into."""

    COPIED = ("_post_send",)

    def _post_send(self, conn: _Conn) -> None:
        """Send the next piece of ``conn``'s output unless a send is in flight;
        with nothing left, finish a hang-up or an ended connection."""
        io = conn.send
        if io.busy or conn.closed:
            return
        data = self.hub.take_output(conn.cid, min(self.config.send_size, len(conn.recv.buf)))  # BUG: fits recv.buf
        if not data:
            if conn.state == "eof":
                self._close(conn)
            elif conn.state == "hangup" and not conn.fin_sent:
                conn.fin_sent = True  # the error line is out: FIN, keep reading until the client goes
                self.ws.shutdown(conn.sock, SD_SEND)
            return
        conn.recv.buf[:len(data)] = data  # type: ignore[index]  # BUG: the reply goes into the receive buffer
        io.buf = conn.recv.buf  # BUG: which the next WSARecv writes into while this send may be in flight
        io.wsabufs = [WSABUF(len(data), io.buf)]  # BUG
        rc, _, _ = self.ws.WSASend(conn.sock, io.wsabufs, 1, 0, io, self._routine)
        self._after_post(conn, io, rc)


# ---------------------------------------------------------------- accepting


class AcceptExAfterFirstReceive(EventServer):
    """The seed's problem 1 ("accept 位置有误"): the next AcceptEx is posted at the
    wrong point, when a receive completes (in the "a client sent something"
    branch) instead of when the accept completes.  A client that connects and
    waits to be spoken to first blocks every later client."""

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        self._hold = False

    def _accept_done(self, io: _Io) -> None:
        self._hold = True  # BUG: no AcceptEx until some client's receive completes
        super()._accept_done(io)

    def _post_accept(self) -> None:
        if not self._hold:
            super()._post_accept()

    def _completed(self, io: _Io, error: int, nbytes: int) -> None:
        super()._completed(io, error, nbytes)
        if io.kind == "recv" and self._hold:
            self._hold = False
            self._resume_accepting()


class AcceptExReceivesData(EventServer):
    """The seed's problem 1 ("accept 参数有误"): AcceptEx is posted with
    dwReceiveDataLength > 0 (the seed says 0).  It then completes only when the
    client's first bytes arrive, and puts them in its output buffer, where this
    server (written for 0) never looks: they are lost."""

    COPIED = ("_accept_slot", "_post_one_accept")
    RECEIVE = 64

    def _accept_slot(self) -> _Io:
        """A free accept slot, or a new one."""
        if self._free_accepts:
            return self._free_accepts.pop()
        io = _Io("accept", None, bytearray(self.RECEIVE + 2 * ADDR_LEN))  # BUG: room for RECEIVE bytes
        io.hEvent = self._accept_event()
        return io

    def _post_one_accept(self, io: _Io) -> bool:
        """Post AcceptEx on accept slot ``io``; False if that failed at once
        (WSASocket or AcceptEx: WSAENOBUFS or WSAEMFILE under load): the slot
        is free again (for the retry, ``accept_retry_ms`` later) and the
        accept socket, if made, is closed."""
        ws = self.ws
        s = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
        if s == INVALID_SOCKET:
            self._accept_failed()
            self._free_accepts.append(io)
            return False
        assert isinstance(io.buf, bytearray)
        ok, _ = ws.AcceptEx(self._listener, s, io.buf, self.RECEIVE, ADDR_LEN, ADDR_LEN, io)  # BUG: RECEIVE, not 0
        if ok or ws.WSAGetLastError() == WSA_IO_PENDING:
            # Even a TRUE return is handled when the wake event says so.
            self._count_post(bool(ok))
            io.busy = True
            io.sock = s
            self._accepts.append(io)
            return True
        ws.closesocket(s)
        self._accept_failed()
        self._free_accepts.append(io)
        return False


class AcceptExTrueIsFailure(EventServer):
    """Semantics doc, AcceptEx: "In practice AcceptEx pends; code must still
    handle TRUE".  This server takes only FALSE + WSA_IO_PENDING as posted; a
    TRUE (accepted at once) falls into its error path, which closes the
    freshly accepted socket and retries later."""

    COPIED = ("_post_one_accept",)

    def _post_one_accept(self, io: _Io) -> bool:
        """Post AcceptEx on accept slot ``io``; False if that failed at once
        (WSASocket or AcceptEx: WSAENOBUFS or WSAEMFILE under load): the slot
        is free again (for the retry, ``accept_retry_ms`` later) and the
        accept socket, if made, is closed."""
        ws = self.ws
        s = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
        if s == INVALID_SOCKET:
            self._accept_failed()
            self._free_accepts.append(io)
            return False
        assert isinstance(io.buf, bytearray)
        ok, _ = ws.AcceptEx(self._listener, s, io.buf, 0, ADDR_LEN, ADDR_LEN, io)
        if not ok and ws.WSAGetLastError() == WSA_IO_PENDING:  # BUG: TRUE is treated as a failure
            # Even a TRUE return is handled when the wake event says so.
            self._count_post(bool(ok))
            io.busy = True
            io.sock = s
            self._accepts.append(io)
            return True
        ws.closesocket(s)
        self._accept_failed()
        self._free_accepts.append(io)
        return False


# ---------------------------------------------------------------- shutdown


class IgnoresAbortedCompletions(RoutineServer):
    """Semantics doc, closesocket with operations pending: they complete later,
    with WSAECONNABORTED (a receive) or WSA_OPERATION_ABORTED (995).  This
    server ignores those completions ("aborted: we are shutting down anyway"),
    so the operations are never reaped and the shutdown never ends."""

    def _on_completion(self, dwError: int, cbTransferred: int, lpOverlapped: WSAOVERLAPPED,
                       dwFlags: int) -> None:
        if dwError in (WSAECONNABORTED, WSA_OPERATION_ABORTED):
            return  # BUG: the cancelled operation is never reaped
        super()._on_completion(dwError, cbTransferred, lpOverlapped, dwFlags)


class ExitsWithoutReaping(EventServer):
    """Semantics doc: closesocket returns at once and the pending operations
    complete later; "the OVERLAPPED and buffers must stay valid until then".
    At a stop, this server's groups close their clients and end at once, and
    the server calls WSACleanup (in C: frees OVERLAPPEDs the kernel still
    writes into)."""

    COPIED = ("_group_loop",)

    def _group_loop(self, group: _Group) -> None:
        """Serve the group until it is empty (holding the lock but in its waits)."""
        while True:
            if group.wake_turn or group.stop:
                group.wake_turn = False
                self._take_inbox(group)
            actions, group.actions = group.actions, []
            self._apply(actions)
            if group.stop and not group.stopping:
                group.stopping = True
                for conn in list(group.members):
                    self._close_at_stop(conn)
            timeout = self.config.stop_grace_ms if group.stopping else WSA_INFINITE
            if self._timers() and not group.stopping:
                group.idle_due, timeout = self._idle_check(group.members, group.idle_due, timeout)
            if group.stopping and group.gave_up:
                self.stats.abandoned += sum(int(c.recv.busy) + int(c.send.busy) for c in group.zombies)
            elif group.members or group.zombies and not group.stopping or group.inbox:  # BUG: a stop waits for nothing
                self._wait_group(group, timeout)
                continue
            # Empty (or given up): leave the list in the same hold of the lock in
            # which the inbox was found empty, so nothing is handed over any more.
            # (Given up: a stopping group took its inbox at the top of the loop.)
            self._groups.remove(group)
            self._finished.append(group.thread)
            return


# ====================================================================== traffic-dependent bugs (issue 10)
#
# The servers below have bugs that only some kinds of traffic reach: lines near
# and above the line limit, replies larger than one send, output backed up
# behind a slow reader, half-closes with replies still queued, a last line
# without its newline, chat clients that leave while others talk, connections
# reset while they wait in the backlog, stops and closes with sends in flight.
# :data:`tests.mutants.MUTANTS` names the traffic each one needs.


def _use_hub(server: EventServer | RoutineServer, hub: type[Hub]) -> None:
    """Give ``server`` a hub of class ``hub`` (a Hub with one method changed)."""
    server.hub = hub(server.config.mode, server.config.limits)
    server.stats.hub = server.hub.stats


class _LimitIgnoresBufferedHub(Hub):
    COPIED = ("receive",)

    def receive(self, cid: int, data: bytes | bytearray | memoryview) -> list[Action]:
        """Bytes received from ``cid``, in order; returns what the driver must do."""
        actions: list[Action] = []
        c = self._clients.get(cid)
        n = len(data)
        self.stats.bytes_in += n
        if c is None or n == 0:
            return actions
        if c.state != _MEMBER:
            self._discard(c, n, actions)
            return actions
        limit = self.limits.max_line
        if self._echo and isinstance(data, bytes):
            # Echo's common case, framed without a loop: everything up to the
            # last newline (the partial line buffered before, then whole lines)
            # goes back as one block, when no limit can be hit on the way.
            last = data.rfind(b"\n")
            pending = len(buf := c.inbuf)
            if (0 <= last and last <= limit and n - last - 1 <= limit  # BUG: the buffered part is not counted
                    and c.queued + pending + last + 1 <= self.limits.max_queued):
                lines = data.count(b"\n")
                self.stats.lines += lines
                block = data[:last + 1]
                if pending:
                    block = b"".join((buf, block))
                    buf.clear()
                if last + 1 < n:
                    buf += data[last + 1:]
                c.scanned = n - last - 1
                self._enqueue(c, block, actions, lines)
                return actions
        buf = c.inbuf
        buf += data
        start = 0
        while True:
            nl = buf.find(b"\n", max(c.scanned, start))
            if nl < 0:
                if len(buf) - start > limit:
                    del buf[:start]  # the lines before it were routed: not discarded
                    self._too_long(c, actions)
                    return actions
                break
            if nl - start > limit:
                del buf[:start]
                self._too_long(c, actions)
                return actions
            line = bytes(buf[start:nl + 1])
            start = nl + 1
            self.stats.lines += 1
            self._route(c, line, actions)
            if cid not in self._clients:  # echo: its own queue overflowed, it was cut off
                return actions
        if start:
            del buf[:start]
        c.scanned = len(buf)
        return actions


class LineLimitIgnoresBuffered(EventServer):
    """The line limit is checked against the bytes of one receive only, not the
    part of the line buffered from earlier receives: a line longer than
    ``max_line`` whose last receive is short is echoed instead of refused."""

    HUB = _LimitIgnoresBufferedHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its receive()


class _BigMessageTruncatedHub(Hub):
    COPIED = ("take_output",)

    def take_output(self, cid: int, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of ``cid``'s queued output, removed from the queue
        (b"" when nothing is queued).  The caller sends them before taking more."""
        c = self._clients.get(cid)
        if c is None or not c.out:
            return b""
        out = c.out
        first = out[0]
        if len(out) == 1 and len(first) <= max_bytes:  # the common case: all of it, as it is
            out.clear()
            c.queued = 0
            return first
        if len(first) >= max_bytes:
            chunk = first[:max_bytes]
            out.popleft()  # BUG: a message is assumed to fit in one send: the rest is lost
            c.queued -= len(first)  # BUG
            return chunk
        parts: list[bytes] = []
        size = 0
        while out and size + len(out[0]) <= max_bytes:
            part = out.popleft()
            parts.append(part)
            size += len(part)
        if out and size < max_bytes:
            head = out[0]
            k = max_bytes - size
            parts.append(head[:k])
            out[0] = head[k:]
            size += k
        c.queued -= size
        return b"".join(parts)


class BigReplyTruncated(RoutineServer):
    """A queued message longer than one send (``send_size``, 64 KiB) is sent
    as its first 64 KiB only: the developer assumed a message fits in a send.
    Only replies that big (a long line, or a long line echoed together with the
    lines behind it) show it."""

    HUB = _BigMessageTruncatedHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its take_output()


class _CoalescingDropsHeadHub(Hub):
    COPIED = ("take_output",)

    def take_output(self, cid: int, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of ``cid``'s queued output, removed from the queue
        (b"" when nothing is queued).  The caller sends them before taking more."""
        c = self._clients.get(cid)
        if c is None or not c.out:
            return b""
        out = c.out
        first = out[0]
        if len(out) == 1 and len(first) <= max_bytes:  # the common case: all of it, as it is
            out.clear()
            c.queued = 0
            return first
        if len(first) >= max_bytes:
            chunk = first[:max_bytes]
            if len(first) > max_bytes:
                out[0] = first[max_bytes:]
            else:
                out.popleft()
            c.queued -= len(chunk)
            return chunk
        parts: list[bytes] = []
        size = 0
        while out and size + len(out[0]) <= max_bytes:
            part = out.popleft()
            parts.append(part)
            size += len(part)
        if out and size < max_bytes:
            head = out[0]
            k = max_bytes - size
            out[0] = head[k:]  # BUG: the head's first k bytes are cut off but never sent
            size += k
        c.queued -= size
        return b"".join(parts)


class CoalescedSendDropsSplitHead(EventServer):
    """Output backed up behind a slow send is coalesced into sends of up to
    ``send_size``; when the last message only partly fits, its first part is
    cut off the queue but never appended to the send.  Needs more than 64 KiB
    queued behind a send in flight: a reader slower than the writer."""

    HUB = _CoalescingDropsHeadHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its take_output()


class _CoalescingKeepsCountHub(Hub):
    COPIED = ("take_output",)

    def take_output(self, cid: int, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of ``cid``'s queued output, removed from the queue
        (b"" when nothing is queued).  The caller sends them before taking more."""
        c = self._clients.get(cid)
        if c is None or not c.out:
            return b""
        out = c.out
        first = out[0]
        if len(out) == 1 and len(first) <= max_bytes:  # the common case: all of it, as it is
            out.clear()
            c.queued = 0
            return first
        if len(first) >= max_bytes:
            chunk = first[:max_bytes]
            if len(first) > max_bytes:
                out[0] = first[max_bytes:]
            else:
                out.popleft()
            c.queued -= len(chunk)
            return chunk
        parts: list[bytes] = []
        size = 0
        while out and size + len(out[0]) <= max_bytes:
            part = out.popleft()
            parts.append(part)
            size += len(part)
        if out and size < max_bytes:
            head = out[0]
            k = max_bytes - size
            parts.append(head[:k])
            out[0] = head[k:]
            # BUG: size += k forgotten: the part taken of a split message stays counted as queued
        c.queued -= size
        return b"".join(parts)


class QueuedCountLeaks(RoutineServer):
    """The count of bytes queued for a client is not lowered by the part of a
    message that a coalesced send takes, so it creeps up while output backs up
    behind a slow reader, until a reader that keeps up is cut off as "slow"."""

    HUB = _CoalescingKeepsCountHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its take_output()


class _EndFlushesPartialLineHub(Hub):
    COPIED = ("end",)

    def end(self, cid: int) -> None:
        """The client ended its input (EOF): it is no longer a member; what is
        queued for it can still be sent; a trailing partial line is dropped."""
        c = self._clients.get(cid)
        if c is None or c.state == _ENDED:
            return
        if c.inbuf and c.state == _MEMBER:  # BUG: the unterminated last line is taken as a line
            self._route(c, bytes(c.inbuf) + b"\n", [])  # BUG
        self._members.pop(cid, None)
        c.state = _ENDED
        self._paused.discard(cid)
        self._not_over(cid)  # it gets no more lines: it holds no sender back
        self.stats.discarded += len(c.inbuf)
        c.inbuf.clear()
        c.scanned = 0


class PartialLastLineDelivered(RoutineServer):
    """A last line without its newline, cut short by the client's EOF, is
    delivered as a line (newline added); the protocol drops it: it was never a
    message (a client that dies mid-line must not have half a command run).
    Only a stream that ends mid-line shows it."""

    HUB = _EndFlushesPartialLineHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its end()


class _EndedStaysMemberHub(Hub):
    COPIED = ("end",)

    def end(self, cid: int) -> None:
        """The client ended its input (EOF): it is no longer a member; what is
        queued for it can still be sent; a trailing partial line is dropped."""
        c = self._clients.get(cid)
        if c is None or c.state == _ENDED:
            return
        # BUG: self._members.pop(cid, None) forgotten: chat lines still go to a client that ended
        c.state = _ENDED
        self._paused.discard(cid)
        self._not_over(cid)  # it gets no more lines: it holds no sender back
        self.stats.discarded += len(c.inbuf)
        c.inbuf.clear()
        c.scanned = 0


class ChatToEndedClient(EventServer):
    """Chat: a client that has ended its input (FIN) stays a member, so lines
    the others send after its end are still queued for it, which delays its
    close (and sends it lines routed after it left).  Only a chat client that
    half-closes while others keep talking shows it."""

    HUB = _EndedStaysMemberHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its end()


class HalfCloseForgetsQueuedReplies(RoutineServer):
    """At the client's EOF (a receive of 0 bytes: it half-closed) the server
    forgets the client at once, with the replies still queued behind a send in
    flight; only the send in flight arrives.  Every reply to a line sent before
    the FIN is owed.  Needs replies backed up at the FIN: a slow reader, a
    small window, or a burst just before the FIN."""

    COPIED = ("_completed",)

    def _completed(self, io: _Io, error: int, nbytes: int) -> None:
        """The one place a receive's or a send's completion is handled."""
        io.busy = False
        conn = io.conn
        assert conn is not None
        if conn.closed:
            self._reaped(io)
            return
        if error:
            self._count_close(conn, error)  # 10054: forced out by the client
            self._close(conn)
        elif io.kind == "send":
            self.stats.bytes_sent += nbytes
            if nbytes and self.config.idle_timeout_ms:
                conn.active_ms = self.ws.GetTickCount64()  # the client read (room was made for this send)
            io.buf = b""
            self._post_send(conn)
        elif nbytes == 0:  # graceful exit: send what is queued, then close
            self.stats.ended += 1
            conn.state = "eof"
            self.hub.leave(conn.cid)  # BUG: leave (forget what is queued), not end
            self._after_hub(conn)
            if conn.send.busy and self._peer_gone(conn):
                self._count_close(conn, WSAECONNRESET)  # as the send would have failed on Windows
                self._close(conn)  # (its send in flight: cancelled, an abortive close)
                return
            self._post_send(conn)
        else:
            self.stats.bytes_received += nbytes
            assert isinstance(io.buf, bytearray)
            if self.config.idle_timeout_ms and io.buf.find(b"\n", 0, nbytes) >= 0:
                conn.active_ms = self.ws.GetTickCount64()  # a line is complete
            self._apply(self.hub.receive(conn.cid, bytes(io.buf[:nbytes])))
            self._after_hub(conn)
            # Held back (back-pressure): read on at its Resume.  (No Resume came
            # meanwhile: a client is held back only here, with no receive posted.)
            if not conn.closed and not self.hub.hold(conn.cid):
                self._post_recv(conn)

class AcceptErrorStopsAccepting(RoutineServer):
    """An AcceptEx that completes with an error (a client reset while it waited
    in the listen backlog: WSAECONNRESET) is handled by closing the accept
    socket, and accepting is not resumed: every later client waits in the
    backlog forever.  (A routines-model server: the events model's acceptor,
    a thread of its own since the thread groups, posts AcceptEx at the top of
    each turn of its loop whenever none is busy, so there this line is
    equivalent.)"""

    COPIED = ("_accept_done",)

    def _accept_done(self, io: _Io) -> None:
        """Accept slot ``io``'s AcceptEx completed: serve the new connection, post again."""
        ws = self.ws
        io.busy = False
        self._accept_handled(io)
        s, io.sock = io.sock, INVALID_SOCKET
        if self._stopping:  # cancelled by closing the listener (995); s is already closed
            return
        ok, _, _ = ws.WSAGetOverlappedResult(self._listener, io, FALSE)
        error = 0 if ok else ws.WSAGetLastError()
        if not ok or ws.setsockopt(s, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, self._listener,
                                   SOCKET_SIZE) == SOCKET_ERROR:
            self.stats.accept_failures += 1
            if not ok and error in _CONNECTION_FAILED:
                self.stats.gone_unaccepted += 1
            elif ok:
                self.stats.refused += 1
            ws.closesocket(s)
            return  # BUG: no AcceptEx posted again
        assert isinstance(io.buf, bytearray)
        remote = ws.GetAcceptExSockaddrs(io.buf, 0, ADDR_LEN, ADDR_LEN).RemoteSockaddr
        self._open(s, f"{remote.host}:{remote.port}".encode())
        self._post_accept()


class ClosedSendNeverReaped(EventServer):
    """A closed connection's receive is reaped when it completes, its send is
    not ("the send is done anyway"): a connection closed with a send still in
    flight (its client reset or was cut off mid-reply, or a stop came while a
    slow reader held a send) is never released.  Needs a send pending at the
    close: a reader slower than the writer."""

    COPIED = ("_handle_group",)

    def _handle_group(self, conn: _Conn) -> None:
        ws = self.ws
        ws.WSAResetEvent(conn.event)
        for io in (conn.recv, conn.send):
            if not io.completed():
                continue
            if conn.closed:
                # The socket is gone, so there is no result to fetch: the
                # operation ended with the error closesocket gave it.
                if io.kind == "recv":  # BUG: a send completing after the close is never reaped
                    self._reaped(io)  # BUG
                continue
            ok, nbytes, _ = ws.WSAGetOverlappedResult(conn.sock, io, FALSE)
            self._completed(io, 0 if ok else ws.WSAGetLastError(), nbytes)


class FullCheckCountsMembers(EventServer):
    """A group's room is counted by its protocol *members*, though clients that
    have ended (FIN received, replies still being sent) or hung up still hold
    their wait slots: with a group's 63 slots filled and some of its clients
    ending, a 64th client joins it, and its wait has 65 handles.  Needs a group
    filled while clients end and others wait."""

    COPIED = ("_has_room",)

    def _has_room(self, group: _Group) -> bool:
        members = sum(1 for c in group.members if self.hub.is_member(c.cid))  # BUG: not len(group.members)
        return members + len(group.inbox) < self._group_capacity  # BUG


class LostSignalNotRequeued(EventServer):
    """Posting a receive or a send resets the group's event, which the other
    operation of the group may have just signalled: this server does not look
    at the other slot after a post, so a completion can wait for good (until
    some later completion of the same group happens to signal it again)."""

    def _posted(self, conn: _Conn, io: _Io) -> None:
        pass  # BUG: the other slot's completion, whose signal the post erased, is not queued


class _LineLimitOffByOneHub(Hub):
    COPIED = ("receive",)

    def receive(self, cid: int, data: bytes | bytearray | memoryview) -> list[Action]:
        """Bytes received from ``cid``, in order; returns what the driver must do."""
        actions: list[Action] = []
        c = self._clients.get(cid)
        n = len(data)
        self.stats.bytes_in += n
        if c is None or n == 0:
            return actions
        if c.state != _MEMBER:
            self._discard(c, n, actions)
            return actions
        limit = self.limits.max_line
        if self._echo and isinstance(data, bytes):
            # Echo's common case, framed without a loop: everything up to the
            # last newline (the partial line buffered before, then whole lines)
            # goes back as one block, when no limit can be hit on the way.
            last = data.rfind(b"\n")
            pending = len(buf := c.inbuf)
            if (0 <= last and pending + last <= limit and n - last - 1 <= limit
                    and c.queued + pending + last + 1 <= self.limits.max_queued):
                lines = data.count(b"\n")
                self.stats.lines += lines
                block = data[:last + 1]
                if pending:
                    block = b"".join((buf, block))
                    buf.clear()
                if last + 1 < n:
                    buf += data[last + 1:]
                c.scanned = n - last - 1
                self._enqueue(c, block, actions, lines)
                return actions
        buf = c.inbuf
        buf += data
        start = 0
        while True:
            nl = buf.find(b"\n", max(c.scanned, start))
            if nl < 0:
                if len(buf) - start > limit:
                    del buf[:start]  # the lines before it were routed: not discarded
                    self._too_long(c, actions)
                    return actions
                break
            if nl - start >= limit:  # BUG: a line of exactly max_line bytes is refused
                del buf[:start]
                self._too_long(c, actions)
                return actions
            line = bytes(buf[start:nl + 1])
            start = nl + 1
            self.stats.lines += 1
            self._route(c, line, actions)
            if cid not in self._clients:  # echo: its own queue overflowed, it was cut off
                return actions
        if start:
            del buf[:start]
        c.scanned = len(buf)
        return actions


class LineLimitOffByOne(RoutineServer):
    """A line of exactly ``max_line`` bytes (allowed: the limit is the longest
    line) is refused as too long, where the general framing path checks it
    (chat, and echo lines that do not fit the fast path).  Only lines right at
    the limit show it."""

    HUB = _LineLimitOffByOneHub

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        _use_hub(self, self.HUB)  # BUG: its receive()


class StopSkipsBusySends(RoutineServer):
    """At a stop, connections with a send in flight are left to finish it ("do
    not cut a reply in half") instead of being closed: a client that has
    stopped reading holds its send, and with it the server, for good."""

    COPIED = ("_begin_stop",)

    def _begin_stop(self) -> None:
        """Close the listener and every connection; their operations complete
        with errors and are reaped by the waits that follow."""
        self._stopping = True
        ws = self.ws
        if self._listener != INVALID_SOCKET:
            ws.closesocket(self._listener)
            self._listener = INVALID_SOCKET
        self._close_accept_sockets()
        for conn in list(self._conns.values()):
            if conn.send.busy:  # BUG: left open until its send completes
                continue  # BUG
            self._close_at_stop(conn)
