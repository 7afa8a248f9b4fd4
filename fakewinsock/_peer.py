"""Peers: the other end of a connection, driven by test code.

A conformance test is written once against :class:`Peer`: ``connect``,
``send``, ``recv``, ``shutdown``, ``close`` (graceful) and ``reset``
(abortive).  On the fake, :class:`FakePeer` is a simulated endpoint whose
blocking calls wait in virtual time (and let the simulated kernel make progress
meanwhile); on the real backend, :class:`SocketPeer` is a standard-library
socket over loopback.  Errors are the standard library's: ConnectionRefusedError,
ConnectionResetError, TimeoutError.

A :class:`FakePeer` talks to the fake's network (:class:`fakewinsock._net.Network`:
peer addresses, handshake, transmit, FIN, RST, window) and waits through the
network's kernel (:meth:`fakewinsock._kernel.Kernel.block`); it never touches
``FakeWinsock`` or its sockets.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from typing import Protocol

from ._net import Endpoint, Network

__all__ = ["Peer", "FakePeer", "SocketPeer"]


class Peer(Protocol):
    """The remote end of a connection, in test code."""

    def connect(self, host: str, port: int, timeout: float = 10.0) -> None:
        """Connect; ConnectionRefusedError if nothing listens (or the backlog is full)."""

    def send(self, data: bytes, timeout: float = 10.0) -> None:
        """Send all of ``data`` (blocks while the other side does not read)."""

    def recv(self, bufsize: int = 65536, timeout: float = 10.0) -> bytes:
        """Up to ``bufsize`` bytes; b"" at EOF; ConnectionResetError on a reset;
        TimeoutError if nothing arrives in time."""
        ...

    def recv_exactly(self, n: int, timeout: float = 10.0) -> bytes:
        """Exactly ``n`` bytes (fewer only at EOF)."""
        ...

    def shutdown(self) -> None:
        """Send FIN (no more data from this side)."""

    def close(self) -> None:
        """Close gracefully (a reset if unread data is left, as TCP does)."""

    def reset(self) -> None:
        """Abortive close: SO_LINGER {1, 0}, then close; the other side gets 10054."""

    @property
    def address(self) -> tuple[str, int]:
        """This peer's local (host, port)."""
        ...


def _recv_exactly(peer: Peer, n: int, timeout: float) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = peer.recv(n - len(out), timeout)
        if not chunk:
            break
        out += chunk
    return bytes(out)


class FakePeer:
    """A simulated remote endpoint on a :class:`FakeWinsock`.

    Blocking calls run the simulated kernel in virtual time until they can
    return.  ``on_change``, if set, is called whenever something arrives
    (connection established or refused, data, FIN, RST, room to send after
    bytes had to wait for the window), for
    scripted peers that react instead of blocking; :meth:`send_nowait` and
    :meth:`recv_nowait` are their non-blocking calls.
    """

    def __init__(self, network: Network) -> None:
        self._net = network
        self._kernel = network.kernel
        self._ep: Endpoint | None = None
        self._pending: bytes = b""
        self._fin_after_flush = False
        self.on_change: Callable[[FakePeer], None] | None = None
        self._closed = False

    # -- state
    @property
    def address(self) -> tuple[str, int]:
        if self._ep is None:
            raise OSError("peer is not connected")
        return self._ep.local

    @property
    def connected(self) -> bool:
        return self._ep is not None and self._ep.established and not self._ep.refused

    @property
    def refused(self) -> bool:
        return self._ep is not None and self._ep.refused

    @property
    def was_reset(self) -> bool:
        return self._ep is not None and self._ep.reset

    @property
    def at_eof(self) -> bool:
        """The other side's FIN has arrived and every byte before it was read."""
        return self._ep is not None and self._ep.eof and not self._ep.rbuf

    def available(self) -> int:
        return len(self._ep.rbuf) if self._ep is not None else 0

    def peek(self) -> bytes:
        """What has arrived and was not read yet, left where it is (b"" if nothing)."""
        return bytes(self._ep.rbuf) if self._ep is not None else b""

    @property
    def closed(self) -> bool:
        """This peer has closed (gracefully or with a reset) its connected endpoint."""
        return self._ep is not None and self._ep.closed

    @property
    def sent_fin(self) -> bool:
        """This peer's FIN has entered the network (a shutdown, or a graceful
        close, once every byte queued before it went out)."""
        return self._ep is not None and self._ep.fin_sent

    @property
    def fin_read(self) -> bool:
        """This peer's FIN has reached the other side, and the other side has
        taken every byte before it: its next receive gets the end."""
        other = self._ep.other if self._ep is not None else None
        return other is not None and other.eof and not other.rbuf

    def other_end(self) -> Endpoint | None:
        """The endpoint at the other end of the connection (None before the
        handshake), for the fake to find who holds it."""
        return self._ep.other if self._ep is not None else None

    def endpoint_changed(self, ep: Endpoint) -> None:
        if self._pending or self._fin_after_flush:
            self._flush()
        if self.on_change is not None:
            self.on_change(self)

    def _deadline(self, timeout: float | None) -> int | None:
        return None if timeout is None else self._kernel.now_ns + int(timeout * 1e9)

    # -- non-blocking (scripted peers)
    def connect_nowait(self, host: str, port: int) -> None:
        """Start connecting; ``on_change`` fires when it is established or refused."""
        if self._ep is not None:
            raise OSError("peer already connected")
        net = self._net
        local = net.peer_address()
        self._ep = net.open_connection(local, (host, port), self._handshake_done)
        self._ep.owner = self

    def _handshake_done(self, ep: Endpoint) -> None:
        self._note("refused" if ep.refused else "connected", ep)
        self.endpoint_changed(ep)

    def _note(self, what: str, ep: Endpoint) -> None:
        """A trace record of this peer's doing (formatted only when tracing)."""
        if self._kernel.trace.enabled:
            self._kernel.record("net", what, 0, 0, f"peer {ep.local[1]} conn=c{ep.conn_id}", thread=0)

    def send_nowait(self, data: bytes) -> None:
        """Queue ``data``; it enters the network as the window allows."""
        ep = self._ep
        if ep is None:
            raise OSError("peer is not connected")
        if ep.reset:
            raise ConnectionResetError("connection reset by the server")
        if ep.fin_sent or self._fin_after_flush or self._closed:
            raise OSError("peer has shut down sending")
        self._pending += bytes(data)
        self._flush()

    def _flush(self) -> None:
        """Send what ``send_nowait`` queued, once connected and as the window
        allows; then the FIN that ``shutdown``/``close`` deferred behind it."""
        ep = self._ep
        if ep is None or ep.reset or not ep.established:
            return
        if self._pending:
            window = self._net.config.window
            other = ep.other  # ep.room(window), inline: once per send and per wake-up
            room = window - ep.in_flight - (len(other.rbuf) if other is not None else 0)
            if room > 0 and room >= min(window // 2, len(self._pending)):  # silly-window avoidance
                chunk, self._pending = self._pending[:room], self._pending[room:]
                self._net.transmit(ep, chunk)
            if self._pending:
                ep.blocked = True  # the reader's next read wakes us
        if self._fin_after_flush and not self._pending:
            self._fin_after_flush = False
            self._net.send_fin(ep)

    def wake_at_next_read(self) -> None:
        """Have ``on_change`` called at the other side's next read (as when a
        send waits for the window): an observer's look, which changes nothing
        else (no draw, no byte moved)."""
        if self._ep is not None:
            self._ep.blocked = True

    @property
    def unsent(self) -> int:
        """Bytes queued by send_nowait that have not entered the network yet."""
        return len(self._pending)

    @property
    def unread(self) -> int:
        """Bytes this peer has sent (or queued with send_nowait) that the other
        side has not taken yet: queued here, on the wire, or in its receive
        buffer.  The other side sees this peer's FIN only after all of them."""
        ep = self._ep
        if ep is None:
            return 0
        other = ep.other
        return len(self._pending) + ep.in_flight + (len(other.rbuf) if other is not None else 0)

    def recv_nowait(self, bufsize: int = 65536) -> bytes:
        """What has arrived, up to ``bufsize`` (b"" if nothing yet: check
        :attr:`at_eof` and :attr:`was_reset`)."""
        ep = self._ep
        if ep is None:
            raise OSError("peer is not connected")
        rbuf = ep.rbuf
        if not rbuf or bufsize <= 0:
            return b""
        if bufsize >= len(rbuf):
            data = bytes(rbuf)
            rbuf.clear()
        else:
            data = bytes(rbuf[:bufsize])
            del rbuf[:bufsize]
        self._net.window_freed(ep)
        return data

    # -- blocking (Peer protocol)
    def connect(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.connect_nowait(host, port)
        ep = self._ep
        assert ep is not None
        if not self._kernel.block(lambda: ep.established or ep.refused, self._deadline(timeout),
                              "peer connect"):
            raise TimeoutError("connect timed out")
        if ep.refused:
            raise ConnectionRefusedError(f"connection to {host}:{port} refused")

    def send(self, data: bytes, timeout: float = 10.0) -> None:
        self.send_nowait(data)
        ep = self._ep
        assert ep is not None
        if not self._kernel.block(lambda: not self._pending or ep.reset, self._deadline(timeout), "peer send"):
            raise TimeoutError("send timed out: the other side does not read")
        if self._pending and ep.reset:
            raise ConnectionResetError("connection reset by the server")

    def recv(self, bufsize: int = 65536, timeout: float = 10.0) -> bytes:
        ep = self._require()
        if not self._kernel.block(lambda: bool(ep.rbuf) or ep.eof or ep.reset, self._deadline(timeout),
                              "peer recv"):
            raise TimeoutError("recv timed out")
        if ep.rbuf:
            return self.recv_nowait(bufsize)
        if ep.reset:
            raise ConnectionResetError("connection reset by the server")
        return b""

    def recv_exactly(self, n: int, timeout: float = 10.0) -> bytes:
        return _recv_exactly(self, n, timeout)

    def shutdown(self) -> None:
        ep = self._require()
        self._note("peer-fin", ep)
        self._fin_after_flush = True  # FIN goes behind every byte already queued
        self._flush()

    def close(self) -> None:
        if self._closed or self._ep is None:
            self._closed = True
            return
        ep = self._ep
        self._closed = True
        ep.closed = True
        if ep.rbuf:
            self.reset()
            return
        self._note("peer-close", ep)
        self._fin_after_flush = True
        self._flush()

    def reset(self) -> None:
        ep = self._require()
        self._closed = True
        ep.closed = True
        self._pending = b""
        self._note("peer-rst", ep)
        self._net.send_rst(ep)

    def _require(self) -> Endpoint:
        if self._ep is None:
            raise OSError("peer is not connected")
        return self._ep


class SocketPeer:
    """A real peer: a standard-library TCP socket over loopback.

    ``socket`` is imported only when a SocketPeer is made: on Windows importing
    it calls WSAStartup, and ``import fakewinsock`` must leave the process's
    Winsock reference count alone (the start-up conformance tests check it)."""

    def __init__(self) -> None:
        import socket

        self._socket = socket
        self._s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._s.getsockname()[:2]
        return (str(host), int(port))

    def connect(self, host: str, port: int, timeout: float = 10.0) -> None:
        self._s.settimeout(timeout)
        self._s.connect((host, port))

    def send(self, data: bytes, timeout: float = 10.0) -> None:
        self._s.settimeout(timeout)
        self._s.sendall(data)

    def recv(self, bufsize: int = 65536, timeout: float = 10.0) -> bytes:
        self._s.settimeout(timeout)
        try:
            return self._s.recv(bufsize)
        except TimeoutError:
            raise TimeoutError("recv timed out") from None

    def recv_exactly(self, n: int, timeout: float = 10.0) -> bytes:
        return _recv_exactly(self, n, timeout)

    def shutdown(self) -> None:
        self._s.shutdown(self._socket.SHUT_WR)

    def close(self) -> None:
        self._s.close()

    def reset(self) -> None:
        fmt = "HH" if sys.platform == "win32" else "ii"  # struct linger differs
        self._s.setsockopt(self._socket.SOL_SOCKET, self._socket.SO_LINGER, struct.pack(fmt, 1, 0))
        self._s.close()
