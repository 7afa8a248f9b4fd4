"""Scripted clients: simulated clients of a server on the fake, driven by
timers and their peer's ``on_change`` callback, never blocking.

Owns what every scripted client does the same way, whoever scripts it:
connecting (and connecting again after a refusal, when its script says),
sending its stream's chunks (counting the bytes and recording when each
line's newline was handed to the network), reading whatever arrives unless
its script pauses, cutting what it reads into lines, and ending: a graceful
FIN (then reading until the server's FIN), or a reset.  What each line must
be, when to send, when to leave and what a close by the server means is its
subclass's: :mod:`fakewinsock.testing`'s checker (against a model, for any
server) and ``ovserver simulate`` (ovserver's echo and chat, thousands of
clients) each subclass :class:`ScriptedClient`.

Uses only the public calls of :class:`~fakewinsock.FakeWinsock` and
:class:`~fakewinsock.FakePeer` (``peer``, ``call_at``, ``now_ns``;
``connect_nowait``, ``send_nowait``, ``recv_nowait``, ``shutdown``,
``reset``), and the standard library only: ``ovserver simulate`` runs without
Hypothesis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._fake import FakeWinsock
    from ._peer import FakePeer

__all__ = ["ScriptedClient", "WAITING", "CONNECTING", "DONE"]

#: The states every scripted client shares (subclasses add their own between
#: CONNECTING and DONE): not connected (before arriving, or waiting to retry),
#: connecting, done (ended, failed or given up; it does nothing more).
WAITING, CONNECTING, DONE = "waiting", "connecting", "done"


class ScriptedClient:
    """One scripted client of the server listening at ``address``.

    The subclass says what events mean, in these methods: :meth:`connected`
    (``name``, its ``b"host:port"``, is set), :meth:`refused`,
    :meth:`reading` (False while its script pauses reading; ``read_max`` is
    the most one read takes, so a subclass that lowers it and pauses between
    reads reads at a limited rate), :meth:`line`
    (each whole line received, with its newline), :meth:`server_closed` (the
    server's FIN, once every byte before it was read, or a reset) and
    :meth:`finished` (once, when it is done).  It acts with :meth:`connect`,
    :meth:`retry_after`, :meth:`send`, :meth:`shutdown`, :meth:`send_reset`,
    :meth:`reset_if_connected` and :meth:`finish`.
    """

    __slots__ = ("ws", "address", "index", "state", "peer", "attempts", "name", "inbuf", "sent_bytes",
                 "sent_lines", "line_sent_ns", "fin_sent", "read_max")

    def __init__(self, ws: FakeWinsock, address: tuple[str, int], index: int) -> None:
        self.ws = ws
        self.address = address
        self.index = index
        self.state = WAITING
        self.peer: FakePeer | None = None
        self.attempts = 0  # connection attempts made
        self.name = b""  # its address as the server sees it, once connected
        self.inbuf = bytearray()  # the line being received
        self.sent_bytes = 0  # bytes handed to send
        self.sent_lines = 0  # whole lines handed to send
        self.line_sent_ns: list[int] = []  # when each line's newline was handed to send
        self.fin_sent = False
        self.read_max = 1 << 30  # the most one read takes (a slow reader's subclass lowers it)

    # ------------------------------------------------------------ what the subclass says

    def connected(self) -> None:
        """The connection is established (``name`` is set); it may :meth:`finish` at once."""

    def refused(self) -> None:
        """The connection was refused (a full backlog): :meth:`retry_after`, or finish."""
        self.finish()

    def reading(self) -> bool:
        """Whether it reads what has arrived now (False: its script pauses reading)."""
        return True

    def line(self, line: bytes) -> None:
        """A whole line received, with its newline."""
        raise NotImplementedError

    def server_closed(self, reset: bool) -> None:
        """The server reset the connection, or its FIN came after every byte was read."""
        raise NotImplementedError

    def finished(self) -> None:
        """It is done (called once)."""

    # ------------------------------------------------------------ what it does

    def connect(self, _: object = None) -> None:
        """Connect (again): a new peer; its ``on_change`` drives this client."""
        if self.state == DONE:
            return
        self.attempts += 1
        self.state = CONNECTING
        peer = self.peer = self.ws.peer()
        peer.on_change = self.changed
        peer.connect_nowait(*self.address)

    def retry_after(self, delay_ns: int) -> None:
        """After a refusal: connect again ``delay_ns`` from now."""
        self.state = WAITING
        self.ws.call_at(self.ws.now_ns + delay_ns, self.connect)

    def changed(self, peer: FakePeer) -> None:
        """The peer's ``on_change``: connected or refused, data, FIN, reset, room to send."""
        if peer is not self.peer or self.state == DONE:
            return
        if self.state == CONNECTING:
            if peer.refused:
                self.refused()
                return
            if not peer.connected:
                return
            host, port = peer.address
            self.name = f"{host}:{port}".encode()
            self.connected()
            if self.state == DONE:
                return
        if self.reading() and peer.available():
            self.received(peer.recv_nowait(self.read_max))
            if self.state == DONE:
                return
        if peer.was_reset or peer.at_eof:
            self.server_closed(peer.was_reset)

    def received(self, data: bytes) -> None:
        """Bytes read: each line they complete goes to :meth:`line` (until the client is done)."""
        buf = self.inbuf
        buf += data
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            line = bytes(buf[start:nl + 1])
            start = nl + 1
            self.line(line)
            if self.state == DONE:
                return
        del buf[:start]

    def send(self, chunk: bytes) -> int:
        """Send ``chunk`` (without blocking: it enters the network as the
        window allows); the number of lines it ends."""
        assert self.peer is not None
        self.peer.send_nowait(chunk)
        self.sent_bytes += len(chunk)
        ended = chunk.count(b"\n")
        if ended:
            self.sent_lines += ended
            self.line_sent_ns += [self.ws.now_ns] * ended
        return ended

    def shutdown(self) -> bool:
        """FIN, behind every byte already sent (once; False if it was sent before).
        The client then reads until the server's FIN: closing outright would
        make what the server still sends reset the connection."""
        if self.fin_sent or self.peer is None:
            return False
        self.fin_sent = True
        self.peer.shutdown()
        return True

    def send_reset(self) -> None:
        """An abortive close (SO_LINGER {1, 0}): the server sees WSAECONNRESET."""
        assert self.peer is not None
        if not self.peer.was_reset:
            self.peer.reset()

    def reset_if_connected(self) -> None:
        """Reset the connection if there is one still up (a client giving up)."""
        peer = self.peer
        if peer is not None and peer.connected and not peer.was_reset:
            peer.reset()

    def finish(self) -> None:
        """Done: nothing more happens to this client."""
        if self.state == DONE:
            return
        self.state = DONE
        self.finished()
