"""The ovserver line protocol: framing, routing, limits and output queues, without sockets.

This module does no I/O.  The I/O models (:mod:`ovserver._events`,
:mod:`ovserver._routines`, :mod:`ovserver._iocp`) feed it the bytes each connection received and take
from it the bytes each connection must send; it tells them, as a list of
:data:`Action`, what to do next.  Every rule of the protocol is here:

Rules
=====

1. **Messages are lines.**  A line is every byte up to and including ``b"\\n"``.
   Bytes are never decoded: any byte but the newline may appear in a line
   (NUL, ``\\r``, 0xFF...), and it is passed on unchanged.
2. **Framing ignores chunking.**  Received bytes are buffered per client until
   a newline completes a line, so coalesced sends (several lines in one
   receive), split sends (one line over several receives) and partial lines
   all frame the same.  A partial line left when the client ends its input
   (EOF) is dropped: it was never a message.
3. **echo mode**: each line goes back to its sender, byte for byte.
4. **chat mode**: when a client joins it first gets ``b"* welcome <name>\\n"``
   (``name`` is what the server calls it, its remote ``host:port``).  Each line
   it sends then goes, as ``b"<name>: <line>"``, to every *other* client that
   is a member at the moment the line is complete: joined, and not yet left,
   ended (EOF), hung up or cut off.  Lines routed before a client joined or
   after it stopped being a member are not delivered to it.
5. **Order.**  Each client's output is one FIFO queue: a client receives what
   was routed to it in routing order, so it gets each sender's lines in the
   order they were sent.  Nothing a client does changes another client's queue
   except by adding its own lines to it.
6. **Limits** (:class:`Limits`, each configurable):

   * ``max_line``: a line longer than this many bytes (not counting the
     newline) is an error.  It is detected as soon as more than ``max_line``
     bytes are buffered without a newline, so an endless line never needs
     more memory than that.  Nothing of the line is routed; the client gets
     ``b"* error: line longer than <max_line> bytes\\n"`` and is **hung up**
     (:class:`Hangup`): it is no longer a member, whatever it sends afterwards
     is discarded, and the connection is closed gracefully once the error line
     has been sent.  A hung-up client that sends more than ``max_line`` further
     bytes is cut off.
   * ``max_queued``: when the output waiting for one client (bytes not yet
     handed to a send) would exceed this, that client is **cut off**
     (:class:`Disconnect`): forgotten at once, its queue discarded, its
     connection closed abortively.  The sender and every other client are
     unaffected.
   * ``max_clients``: at most this many clients are joined at once; the I/O
     model stops accepting while :attr:`Hub.full` (new connections wait in the
     listen backlog).
   * ``high_water`` (0, the default: off): **back-pressure**.  A member whose
     queue grows past this many bytes is *over* the mark (:class:`Stall`:
     the driver starts its slow-consumer clock); a sender one of whose
     recipients is over the mark when its received bytes have been routed is
     *paused* (:meth:`Hub.hold`): the driver does not read from it again
     (TCP's window then slows the sender) until every recipient that held it
     back has drained to ``high_water // 2`` or stopped being a member; then
     :class:`Resume` says to read again.  In echo the one recipient is the
     sender itself; in chat it is every other member, so one member over the
     mark pauses every other sender.  ``max_queued`` stays a hard limit (a
     receive already taken is routed whole, so a queue can pass the mark by up
     to a receive per sender).  A member that stays over the mark is the
     driver's to cut off (the server's ``stall_timeout_ms``).

The driver's side of the contract: call :meth:`Hub.join` when a connection is
accepted, :meth:`Hub.receive` with every chunk received, :meth:`Hub.end` on
EOF, :meth:`Hub.leave` when the connection is gone; perform every returned
action; send what :meth:`Hub.take_output` hands out, one send at a time per
client, in order.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple, TypeAlias

__all__ = [
    "Mode",
    "Limits",
    "Hub",
    "HubStats",
    "Send",
    "Hangup",
    "Disconnect",
    "Resume",
    "Stall",
    "Action",
    "welcome_line",
    "chat_line",
    "error_line",
]


class Mode(str, Enum):
    """What the server does with a line."""

    ECHO = "echo"
    CHAT = "chat"


@dataclass(frozen=True)
class Limits:
    """The protocol's limits (see rule 6 of the module docstring)."""

    max_line: int = 64 * 1024
    max_clients: int = 10_000
    max_queued: int = 1024 * 1024
    high_water: int = 0  # back-pressure above this many bytes queued for a member (0: off)

    def __post_init__(self) -> None:
        if self.max_line < 1 or self.max_clients < 1 or self.max_queued < 1:
            raise ValueError(f"every limit must be at least 1: {self}")
        if not 0 <= self.high_water < self.max_queued:
            raise ValueError(f"high_water must be 0 (off) or under max_queued: {self}")


class Send(NamedTuple):
    """Output is waiting for ``cid``: start a send unless one is in flight."""

    cid: int


class Hangup(NamedTuple):
    """``cid`` broke the protocol: stop treating its input as messages, send
    what is queued for it (the error line last), then close gracefully."""

    cid: int
    reason: str


class Disconnect(NamedTuple):
    """Close ``cid`` now, abortively.  The hub has already forgotten it."""

    cid: int
    reason: str


class Resume(NamedTuple):
    """``cid`` was paused (back-pressure) and no recipient holds it back any
    more: read from it again."""

    cid: int


class Stall(NamedTuple):
    """``cid``'s queue went over the high-water mark: start its slow-consumer clock."""

    cid: int


Action: TypeAlias = Send | Hangup | Disconnect | Resume | Stall


def welcome_line(name: bytes) -> bytes:
    """What a client gets first in chat mode."""
    return b"* welcome " + name + b"\n"


def chat_line(sender: bytes, line: bytes) -> bytes:
    """How a chat line from ``sender`` reaches the others (``line`` ends in a newline)."""
    return sender + b": " + line


def error_line(max_line: int) -> bytes:
    """What a client that sent a too-long line gets before it is hung up."""
    return b"* error: line longer than %d bytes\n" % max_line


#: The longest name a server gives a client: its remote IPv4 ``host:port``.
LONGEST_NAME = b"255.255.255.255:65535"


def longest_message(mode: Mode | str, max_line: int) -> int:
    """The most bytes one message to a client can take in ``mode`` with
    ``max_line``: a line of ``max_line`` bytes and its newline (in chat with
    the longest sender's name), the error line, or the welcome.  A
    ``max_queued`` under it cuts off clients that break no rule: the message
    is queued whole, so an echo client sending a line of ``max_line`` bytes,
    or in chat every other member, is cut off for it however fast it reads
    (``serve`` refuses such limits; ``simulate``'s tight limits draw them on
    purpose)."""
    line = max_line + 1
    if Mode(mode) is Mode.CHAT:
        line = max(len(chat_line(LONGEST_NAME, b"")) + line, len(welcome_line(LONGEST_NAME)))
    return max(line, len(error_line(max_line)))


@dataclass
class HubStats:
    """What the hub has seen; all counts since it was created."""

    joined: int = 0
    lines: int = 0  # complete lines received and accepted as messages
    bytes_in: int = 0  # bytes received from clients (including discarded ones)
    deliveries: int = 0  # messages queued for a client (echo: one per line; chat: one per recipient)
    bytes_out: int = 0  # bytes queued for clients
    too_long: int = 0
    cut_off: int = 0
    hung_up_cut_off: int = 0  # of cut_off: hung up (too_long), then cut off for sending on after the error line
    discarded: int = 0  # bytes ignored from hung-up or ended clients and trailing partial lines
    paused: int = 0  # times a sender was paused (back-pressure: high_water)


# Client states.
_MEMBER, _HUNG_UP, _ENDED = "member", "hung-up", "ended"


@dataclass(eq=False)
class _Client:
    cid: int
    name: bytes
    state: str = _MEMBER
    inbuf: bytearray = field(default_factory=bytearray)
    scanned: int = 0  # bytes of inbuf already known to hold no newline
    out: deque[bytes] = field(default_factory=deque)
    queued: int = 0
    discarded: int = 0


class Hub:
    """Every client's framing state and output queue, and the routing between them."""

    def __init__(self, mode: Mode | str = Mode.ECHO, limits: Limits | None = None) -> None:
        self.mode = Mode(mode)
        self._echo = self.mode is Mode.ECHO
        self.limits = limits if limits is not None else Limits()
        self.stats = HubStats()
        self._clients: dict[int, _Client] = {}
        self._members: dict[int, _Client] = {}  # insertion-ordered: routing order is join order
        self._high = self.limits.high_water
        self._low = self._high // 2
        self._over: set[int] = set()  # members whose queue is over the high-water mark
        self._paused: set[int] = set()  # members not to be read from until no recipient is over the mark
        self._resumes: list[Action] = []  # Resume actions not yet handed out (see pop_resumes)

    # ------------------------------------------------------------ membership

    @property
    def full(self) -> bool:
        """True when no more clients may join (``max_clients`` reached)."""
        return len(self._clients) >= self.limits.max_clients

    def __len__(self) -> int:
        return len(self._clients)

    def __contains__(self, cid: object) -> bool:
        return cid in self._clients

    def join(self, cid: int, name: bytes) -> list[Action]:
        """A new connection ``cid`` (chosen by the driver, unique while it lives)
        called ``name``."""
        if cid in self._clients:
            raise ValueError(f"client {cid} has already joined")
        if self.full:
            raise RuntimeError(f"the hub is full ({self.limits.max_clients} clients)")
        c = _Client(cid, bytes(name))
        self._clients[cid] = c
        self._members[cid] = c
        self.stats.joined += 1
        actions: list[Action] = []
        if self.mode is Mode.CHAT:
            self._enqueue(c, welcome_line(c.name), actions)
        return actions

    def leave(self, cid: int) -> None:
        """The connection is gone: forget the client and whatever is queued for
        it.  (Senders it held back are resumed: :meth:`pop_resumes`.)"""
        c = self._clients.pop(cid, None)
        if c is not None:
            self._members.pop(cid, None)
            c.out.clear()
            c.queued = 0
            self._paused.discard(cid)
            self._not_over(cid)

    def end(self, cid: int) -> None:
        """The client ended its input (EOF): it is no longer a member; what is
        queued for it can still be sent; a trailing partial line is dropped."""
        c = self._clients.get(cid)
        if c is None or c.state == _ENDED:
            return
        self._members.pop(cid, None)
        c.state = _ENDED
        self._paused.discard(cid)
        self._not_over(cid)  # it gets no more lines: it holds no sender back
        self.stats.discarded += len(c.inbuf)
        c.inbuf.clear()
        c.scanned = 0

    def is_member(self, cid: int) -> bool:
        return cid in self._members

    # ------------------------------------------------------------ back-pressure

    def hold(self, cid: int) -> bool:
        """After a receive from ``cid`` (its actions performed): whether the driver
        must stop reading from it until a :class:`Resume` (a recipient of its
        lines is over the mark); it is then :meth:`paused`."""
        if not self._high or cid not in self._members or not self._held_back(cid):
            return False
        self._paused.add(cid)
        self.stats.paused += 1
        return True

    def paused(self, cid: int) -> bool:
        """Whether ``cid`` is held back, to be read from again at its :class:`Resume`."""
        return cid in self._paused

    def settle(self, cid: int) -> None:
        """After :meth:`take_output` from ``cid``: once its queue has drained to
        half the mark it is no longer over it (:meth:`pop_resumes`)."""
        c = self._clients.get(cid)
        if c is not None and cid in self._over and c.queued <= self._low:
            self._not_over(cid)

    def over(self, cid: int) -> bool:
        """Whether ``cid``'s queue is over the high-water mark (not yet drained to half of it)."""
        return cid in self._over

    def pop_resumes(self) -> list[Action]:
        """The :class:`Resume` actions that :meth:`settle`, :meth:`leave`, :meth:`end`
        or :meth:`receive` (a recipient cut off or hung up) made due; the driver performs them."""
        resumes, self._resumes = self._resumes, []
        return resumes

    def _held_back(self, cid: int) -> bool:
        """Whether a recipient of ``cid``'s lines is over the mark."""
        if self._echo:
            return cid in self._over
        return len(self._over) > (1 if cid in self._over else 0)

    def _not_over(self, cid: int) -> None:
        """``cid`` no longer counts as over the mark: resume the senders it alone held back."""
        if cid in self._over:
            self._over.discard(cid)
            for p in [p for p in sorted(self._paused) if not self._held_back(p)]:  # in cid order, not the set's
                self._paused.discard(p)
                self._resumes.append(Resume(p))

    # ------------------------------------------------------------ input

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

    def _route(self, sender: _Client, line: bytes, actions: list[Action]) -> None:
        if self.mode is Mode.ECHO:
            self._enqueue(sender, line, actions)
            return
        msg = chat_line(sender.name, line)
        for r in list(self._members.values()):
            if r is not sender:
                self._enqueue(r, msg, actions)

    def _too_long(self, c: _Client, actions: list[Action]) -> None:
        self.stats.too_long += 1
        self.stats.discarded += len(c.inbuf)
        c.inbuf.clear()
        c.scanned = 0
        c.state = _HUNG_UP
        self._members.pop(c.cid, None)
        self._paused.discard(c.cid)
        self._not_over(c.cid)
        self._enqueue(c, error_line(self.limits.max_line), actions)
        if c.cid in self._clients:
            actions.append(Hangup(c.cid, "line too long"))

    def _discard(self, c: _Client, n: int, actions: list[Action]) -> None:
        self.stats.discarded += n
        c.discarded += n
        if c.state == _HUNG_UP and c.discarded > self.limits.max_line:
            self.stats.hung_up_cut_off += 1
            self._cut_off(c, "kept sending after being hung up", actions)

    # ------------------------------------------------------------ output

    def _enqueue(self, c: _Client, data: bytes, actions: list[Action], messages: int = 1) -> None:
        """Queue ``data`` (``messages`` messages) for ``c``, or cut it off."""
        if c.queued + len(data) > self.limits.max_queued:
            self._cut_off(c, "slow reader: output queue over the limit", actions)
            return
        was_empty = not c.out
        c.out.append(data)
        c.queued += len(data)
        self.stats.deliveries += messages
        self.stats.bytes_out += len(data)
        if was_empty:
            actions.append(Send(c.cid))
        if self._high and c.queued > self._high and c.cid not in self._over and c.state == _MEMBER:
            self._over.add(c.cid)
            actions.append(Stall(c.cid))

    def _cut_off(self, c: _Client, reason: str, actions: list[Action]) -> None:
        self.stats.cut_off += 1
        self.leave(c.cid)
        actions.append(Disconnect(c.cid, reason))

    def queued(self, cid: int) -> int:
        """Bytes waiting for ``cid`` (0 for an unknown client)."""
        c = self._clients.get(cid)
        return c.queued if c is not None else 0

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
            size += k
        c.queued -= size
        return b"".join(parts)
