"""The simulated loopback network: TCP endpoints, segments in flight, listeners.

Owns: :class:`Endpoint` (one end of a connection), :class:`Listener` (a
listening address and its backlog of connections not yet accepted), and
:class:`Network`: transmit and deliver, FIN and RST, the handshake, the
address tables (bound addresses, listeners, ephemeral ports, peers' source
addresses).

May call: the kernel (clock, timers, chooser, trace, counters) and the owners
of endpoints and listeners through :class:`EndpointOwner`
(``endpoint_changed``).  It knows neither sockets nor operations: a socket
and a simulated peer are both just owners of endpoints.

A connection is a pair of :class:`Endpoint` objects.  Bytes sent from one end
travel as segments, each delivered to the other end after a latency drawn by
the chooser; a segment may be split in two on the wire.  Delivery times from
one end never decrease, so a connection never reorders, loses or duplicates
data.  FIN and RST travel behind the data already sent.

Flow control is one number per direction: the bytes in flight plus the bytes
delivered but not yet read may not exceed the window.  A sender that finds no
room waits (an overlapped WSASend pends, a peer's ``send`` blocks in virtual
time) until the reader makes room.

Divergence from real Windows: there is no IP layer, no retransmission, no
Nagle or delayed ACK, no TIME_WAIT; a listener's backlog is a plain count;
only IPv4 loopback addresses exist; the window is a single fixed size per
direction (Windows autotunes its receive window and the send buffer).  The
handshake has two steps, not three: the server's end is established (queued in
the backlog, so a pending AcceptEx may complete) when the SYN arrives, one
latency before the client's connect completes at the SYN-ACK; on Windows the
server's end is established by the client's final ACK, after the client's
connect has completed (on loopback the two are microseconds apart).  A program
cannot rely on either order; a checker counting what a client is owed must
count from its connect attempt (found by ``ovserver simulate``, seed 61).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

from . import _constants as C
from ._kernel import Kernel

__all__ = ["BacklogOwner", "Endpoint", "EndpointOwner", "Listener", "Network"]

EPHEMERAL_FIRST = 49152
ANY = "0.0.0.0"
_LOOPBACK_HOSTS = [f"127.0.0.{i}" for i in range(256)]


class EndpointOwner(Protocol):
    """Whoever reads an endpoint: a fake socket or a simulated peer."""

    def endpoint_changed(self, ep: Endpoint) -> None:
        """Something arrived at ``ep`` (data, FIN, RST, the handshake's end, room to send)."""


class BacklogOwner(EndpointOwner, Protocol):
    """A listening socket: told of its backlog's connections, and asked whether
    an AcceptEx of it has already taken one of them (:class:`Listener`)."""

    def accept_waits_on(self, ep: Endpoint) -> bool:
        """Whether a pending AcceptEx with a receive length has taken ``ep``
        (Windows accepts it at the handshake, then waits for its first data)."""


class AddressHolder(Protocol):
    """What holds a bound address: a socket (its options decide on SO_REUSEADDR)."""

    @property
    def options(self) -> dict[tuple[int, int], int]: ...

    @property
    def local(self) -> tuple[str, int] | None: ...


class Endpoint:
    """One end of a simulated TCP connection.

    ``rbuf`` holds the bytes delivered here and not yet read; ``eof`` is set
    when the other end's FIN has arrived (after all its data); ``reset`` when
    its RST has arrived (unread data is then discarded, as Windows does).
    ``in_flight`` counts the bytes this end has sent that have not arrived yet.
    """

    __slots__ = (
        "conn_id",
        "local",
        "remote",
        "other",
        "owner",
        "rbuf",
        "in_flight",
        "last_arrival",
        "established",
        "established_ns",
        "refused",
        "eof",
        "reset",
        "fin_sent",
        "blocked",
        "closed",
        "fail_accept",
        "reset_status",
        "listener",
        "accepted_ns",
    )

    def __init__(self, conn_id: int, local: tuple[str, int], remote: tuple[str, int]) -> None:
        self.conn_id = conn_id
        self.local = local
        self.remote = remote
        self.other: Endpoint | None = None
        self.owner: EndpointOwner | None = None
        self.rbuf = bytearray()
        self.in_flight = 0
        self.last_arrival = 0
        self.established = False
        self.established_ns = -1  # the virtual time of the handshake's end here (SO_CONNECT_TIME)
        self.refused = False
        self.eof = False
        self.reset = False
        self.fin_sent = False
        self.blocked = False  # a sender here waits for the other end to make room
        self.closed = False
        self.fail_accept = False  # reset in the backlog: the AcceptEx taking it fails
        # What a reset reads as here: connection reset, or connection aborted
        # when the RST came after the other end's FIN (Wine's test_shutdown,
        # "send data to a peer which is closed", on Windows).
        self.reset_status = 0xC000020D  # STATUS_CONNECTION_RESET
        self.listener: Listener | None = None  # the listener whose backlog it joined (server ends)
        # When an AcceptEx without a receive length took it from that backlog (the accept's completion), or -1:
        # still queued, dropped, or taken by an AcceptEx with a receive length (Windows accepted it at the
        # handshake and the accept waited for its first data, which the fake does not time).  For tests.
        self.accepted_ns = -1

    def room(self, window: int) -> int:
        """How many more bytes this end may send now."""
        other = self.other
        used = self.in_flight + (len(other.rbuf) if other is not None else 0)
        return max(0, window - used)

    def notify(self) -> None:
        if self.owner is not None:
            self.owner.endpoint_changed(self)

    def __repr__(self) -> str:
        return f"<Endpoint c{self.conn_id} {self.local}->{self.remote}>"


class Listener:
    """A listening address: the connections that completed their handshake and
    wait to be accepted (``backlog``), at most ``backlog_max`` of them.
    ``owner`` (the listening socket) is told when one arrives."""

    __slots__ = ("handle", "owner", "backlog", "backlog_max")

    def __init__(self, handle: int, owner: BacklogOwner, backlog_max: int) -> None:
        self.handle = handle
        self.owner = owner
        self.backlog: deque[Endpoint] = deque()
        self.backlog_max = backlog_max


class Network:
    """The loopback network of one fake: see the module docstring."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.config = kernel.config
        self.chooser = kernel.chooser
        self.trace = kernel.trace
        self.stats = kernel.stats
        self._next_conn = 0
        self.bound: dict[tuple[str, int], AddressHolder] = {}
        # Listeners per local address, in the order they listened: the first
        # gets the connections, the next takes over when it closes.
        self.listeners: dict[tuple[str, int], list[Listener]] = {}
        self.on_port: dict[int, list[AddressHolder]] = {}  # what is bound to each port, in bind order
        self._next_port = EPHEMERAL_FIRST
        self._peer_addrs: set[tuple[str, int]] = set()
        self._peer_host = 1  # simulated peers come from 127.0.0.1, then 127.0.0.2, ...
        self._peer_next_port = EPHEMERAL_FIRST

    # ------------------------------------------------------------ segments

    def _latency(self) -> int:
        return self.chooser.span(self.config.latency, "latency")

    def _arrival(self, src: Endpoint) -> int:
        # _latency, inline (once per segment); through span, which a chooser may redefine (Hypothesis's does)
        t = self.kernel.now_ns + self.chooser.span(self.config.latency, "latency")
        if t < src.last_arrival:
            t = src.last_arrival
        src.last_arrival = t
        return t

    def transmit(self, src: Endpoint, data: bytes) -> None:
        """Put ``data`` on the wire from ``src``; it may be split in two."""
        n = len(data)
        if n == 0:
            return
        src.in_flight += n
        kernel = self.kernel
        sent = kernel.now_ns  # for the trace: when the segment left
        chooser = self.chooser
        if n > 1 and chooser.boolean(self.config.split, "split"):
            k = chooser.integer(1, n - 1, "split_at")
            kernel.call_at(self._arrival(src), self._deliver, (src, data[:k], sent))
            data = data[k:]
        # self._arrival(src), inline (once per segment)
        t = kernel.now_ns + chooser.span(self.config.latency, "latency")
        if t < src.last_arrival:
            t = src.last_arrival
        src.last_arrival = t
        kernel.call_at(t, self._deliver, (src, data, sent))

    def _deliver(self, arg: tuple[Endpoint, bytes, int]) -> None:
        src, data, sent = arg
        src.in_flight -= len(data)
        dst = src.other
        if dst is None or dst.reset or src.reset:
            return
        if dst.closed:
            # Data arriving at a closed socket resets the connection.
            if self.trace.enabled:
                self.kernel.record("net", "data-after-close", 0, 0, f"conn=c{dst.conn_id} -> RST")
            self.send_rst(dst)
            return
        dst.rbuf += data
        if self.trace.enabled:
            self.kernel.record("net", "arrive", 0, 0,
                               f"conn=c{dst.conn_id} to={dst.local[1]} bytes={len(data)} sent={sent}", thread=0)
        owner = dst.owner  # dst.notify(), inline: once per segment
        if owner is not None:
            owner.endpoint_changed(dst)

    def window_freed(self, ep: Endpoint) -> None:
        """``ep``'s reader made room: wake the other end if its sender waits for it
        (even a closed end may still have queued bytes to send)."""
        other = ep.other
        if other is not None and other.blocked:
            other.blocked = False
            owner = other.owner  # other.notify(), inline: once per read
            if owner is not None:
                owner.endpoint_changed(other)

    def send_fin(self, src: Endpoint) -> None:
        """A graceful close from ``src``: FIN behind the data already sent."""
        if src.fin_sent or src.reset:
            return
        src.fin_sent = True
        self.kernel.call_at(self._arrival(src), self._deliver_fin, src)

    def _deliver_fin(self, src: Endpoint) -> None:
        dst = src.other
        if dst is None or dst.reset or src.reset:
            return
        dst.eof = True
        if self.trace.enabled:
            self.kernel.record("net", "fin", 0, 0, f"conn=c{dst.conn_id} to={dst.local[1]}", thread=0)
        dst.notify()

    def send_rst(self, src: Endpoint) -> None:
        """Abort the connection from ``src``: the other end gets a reset."""
        if src.reset:
            return
        src.reset = True  # this end is finished too
        src.rbuf.clear()
        self.stats["resets"] += 1
        self.kernel.call_at(self._arrival(src), self._deliver_rst, src)

    def _deliver_rst(self, src: Endpoint) -> None:
        dst = src.other
        if dst is None or dst.reset:
            return
        dst.reset = True
        if dst.eof:
            dst.reset_status = C.STATUS_CONNECTION_ABORTED
        dst.rbuf.clear()  # Windows discards unread data on a reset
        if self.trace.enabled:
            self.kernel.record("net", "rst", 0, 0, f"conn=c{dst.conn_id} to={dst.local[1]}", thread=0)
        lst = dst.listener
        if lst is not None and dst in lst.backlog:
            # Reset before it was accepted.  Untested in Wine's suite; the seed
            # picks one of the outcomes Windows servers meet: the connection is
            # dropped (AcceptEx keeps waiting); it is accepted and its first
            # receive fails with WSAECONNRESET; or the AcceptEx that takes it
            # fails with WSAECONNRESET (ERROR_NETNAME_DELETED through
            # GetOverlappedResult, as IOCP servers report: CPython issue
            # 93821, capnproto PR 2773, and Microsoft's AcceptEx page: "an
            # incoming connection was indicated, but was subsequently
            # terminated by the remote peer prior to accepting the call";
            # reports, not Windows-run tests, and none rules the other two
            # outcomes out).  A connection an AcceptEx with a receive length
            # waits on was accepted at the handshake (Microsoft's AcceptEx
            # page; SO_CONNECT_TIME counts from then): it cannot be dropped,
            # only one of the other two (docs/semantics-findings.md section 54).
            if lst.owner.accept_waits_on(dst):
                outcome = 1 + self.chooser.index(2, "reset-while-accept-waits")
            else:
                outcome = self.chooser.index(3, "reset-before-accept")
            if outcome == 0:
                lst.backlog.remove(dst)
                if self.trace.enabled:
                    self.kernel.record("net", "dropped", lst.handle, 0, f"conn=c{dst.conn_id} reset before accept",
                                       thread=0)
                return
            dst.fail_accept = outcome == 2
        dst.notify()

    # ------------------------------------------------------------ addresses

    def addr_holder(self, host: str, port: int) -> AddressHolder | None:
        """What is already bound to (host, port), a specific address, or to the
        wildcard on that port.  (Only port choices ask: an explicit bind's
        conflicts are :meth:`address_conflict`'s.)"""
        assert host != ANY
        return self.bound.get((host, port)) or self.bound.get((ANY, port))

    def address_conflict(self, holder: AddressHolder, host: str, port: int) -> int:
        """The error binding ``holder`` to (host, port) gives, or 0, by the rules
        of Wine's test_reuseaddr (run on Windows): on the same address the
        second socket needs SO_REUSEADDR, and so does the first (WSAEACCES
        otherwise); a specific address and the wildcard may share a port unless
        the wildcard one was bound first with SO_EXCLUSIVEADDRUSE (WSAEACCES),
        or is the second and asks for it (WSAEADDRINUSE)."""
        reuse, excl = (C.SOL_SOCKET, C.SO_REUSEADDR), (C.SOL_SOCKET, C.SO_EXCLUSIVEADDRUSE)
        for other in self.on_port.get(port, ()):
            assert other.local is not None
            theirs = other.local[0]
            if theirs == host:
                if not holder.options.get(reuse):
                    return C.WSAEADDRINUSE
                if not other.options.get(reuse):
                    return C.WSAEACCES
            elif theirs == ANY:
                if other.options.get(excl):
                    return C.WSAEACCES
            elif host == ANY and holder.options.get(excl):
                return C.WSAEADDRINUSE
        return 0

    def ephemeral(self) -> int:
        """A free port in the dynamic range (49152-65535) for this machine's
        sockets, or 0 when every one is taken."""
        for _ in range(65536 - EPHEMERAL_FIRST):
            p = self._next_port
            self._next_port = p + 1 if p < 65535 else EPHEMERAL_FIRST
            if ("127.0.0.1", p) not in self._peer_addrs and self.addr_holder("127.0.0.1", p) is None:
                return p
        return 0

    def peer_address(self) -> tuple[str, int]:
        """A source address for a simulated peer.  Peers stand for other hosts:
        when one loopback address has used up its dynamic ports they move on to
        the next (127.0.0.2, ...), so that 20000 simulated clients can connect
        at once as they would from many machines.

        A peer's address is never given to another peer (as if TIME_WAIT never
        ended), so no two connections ever share a name.  Divergence from real
        Windows: only the 254 x 16384 addresses exist; past them, OSError."""
        span = 65536 - EPHEMERAL_FIRST
        for _ in range(254 * span):
            host = _LOOPBACK_HOSTS[self._peer_host]
            p = self._peer_next_port
            if p < 65535:
                self._peer_next_port = p + 1
            else:
                self._peer_next_port = EPHEMERAL_FIRST
                self._peer_host = self._peer_host % 254 + 1
            addr = (host, p)
            if addr not in self._peer_addrs and (host != "127.0.0.1" or self.addr_holder(host, p) is None):
                self._peer_addrs.add(addr)
                return addr
        raise OSError("the simulated network has no source address left for another peer")

    # ------------------------------------------------------------ listeners, handshake

    def listen(self, local: tuple[str, int], handle: int, owner: BacklogOwner, backlog_max: int) -> Listener:
        """Start listening at ``local``; the first listener of an address gets its connections."""
        lst = Listener(handle, owner, backlog_max)
        self.listeners.setdefault(local, []).append(lst)
        return lst

    def close_listener(self, local: tuple[str, int], lst: Listener) -> None:
        """Stop listening at ``local``: connections never accepted are reset (the
        peer's pending receive fails with WSAECONNRESET).  Linux does so, as
        Wine 8.0 shows (a Linux client of a Wine listener gets ECONNRESET), and
        Windows' AFD aborts the connections a closed listening endpoint still
        holds; no Windows-run test checks the peer's side.  Connections already
        accepted are their accept sockets' and live on."""
        queue = self.listeners.get(local)
        if queue is not None and lst in queue:
            queue.remove(lst)
            if not queue:
                del self.listeners[local]
        for queued in lst.backlog:
            queued.closed = True
            self.send_rst(queued)
        lst.backlog.clear()

    def _find_listener(self, addr: tuple[str, int]) -> Listener | None:
        # The most specific listening address wins (Wine's test_reuseaddr).
        for key in (addr, (ANY, addr[1])):
            queue = self.listeners.get(key)
            if queue:
                return queue[0]
        return None

    def open_connection(self, local: tuple[str, int], remote: tuple[str, int],
                        on_done: Callable[[Endpoint], None]) -> Endpoint:
        """Start a handshake from ``local`` to ``remote``; return the client end.
        ``on_done`` runs when it is established or refused."""
        self._next_conn += 1
        cli = Endpoint(self._next_conn, local, remote)
        self.kernel.call_at(self.kernel.now_ns + self._latency(), self._syn_arrives, (cli, on_done))
        return cli

    def _syn_arrives(self, arg: tuple[Endpoint, Callable[[Endpoint], None]]) -> None:
        cli, on_done = arg
        lst = self._find_listener(cli.remote)
        if lst is None or len(lst.backlog) >= lst.backlog_max:
            why = "no listener" if lst is None else "backlog full"
            if self.trace.enabled:
                self.kernel.record("net", "refused", lst.handle if lst else 0, 0,
                                   f"conn=c{cli.conn_id} {cli.remote[0]}:{cli.remote[1]} ({why})", thread=0)
            cli.refused = True
            on_done(cli)
            return
        srv_local = (cli.remote[0] if cli.remote[0] != ANY else "127.0.0.1", cli.remote[1])
        srv = Endpoint(cli.conn_id, srv_local, cli.local)
        srv.other, cli.other = cli, srv
        srv.established = True
        srv.established_ns = self.kernel.now_ns
        srv.owner = lst.owner
        srv.listener = lst
        lst.backlog.append(srv)
        if self.trace.enabled:
            self.kernel.record("net", "backlog", lst.handle, 0, f"conn=c{cli.conn_id} from={cli.local[1]} "
                               f"queued={len(lst.backlog)}", thread=0)
        self.kernel.call_at(self.kernel.now_ns + self._latency(), self._synack_arrives, (cli, on_done))
        lst.owner.endpoint_changed(srv)

    def _synack_arrives(self, arg: tuple[Endpoint, Callable[[Endpoint], None]]) -> None:
        cli, on_done = arg
        cli.established = True
        cli.established_ns = self.kernel.now_ns
        on_done(cli)
