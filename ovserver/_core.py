"""What the I/O models share: configuration, connections, the three overlapped
operations and what to do when each one completes.

The server is the lecture notes' overlapped-IO server, written only against the
:class:`fakewinsock.Winsock` interface (it never knows which backend it runs on).
Per connection there is one socket, one receive and one send operation slot
(an OVERLAPPED subclass, :class:`_Io`, with the buffer it owns), and the line
protocol's state (:class:`ovserver._protocol.Hub`).  The I/O model decides only
how completions are noticed:

* :mod:`ovserver._events`: an event per connection, WSAWaitForMultipleEvents
  over at most 64 of them, WSAGetOverlappedResult, WSAResetEvent; a thread
  per group of 63 connections;
* :mod:`ovserver._routines`: completion routines run by alertable waits;
* :mod:`ovserver._iocp`: one completion port and a pool of worker threads.

Rules every path below keeps:

* **One completion, handled once.**  An operation that completes at once
  (AcceptEx returns TRUE, WSARecv/WSASend return 0) still notifies: its event
  is signalled, its completion routine is queued.  So an immediate success is
  treated exactly like a pending operation: the slot is marked busy and the
  result is handled only when the notification arrives.
* **Nothing in flight is touched.**  A slot's OVERLAPPED and buffer are not
  reused or modified while it is busy.  At most one receive and one send are
  in flight per connection; the output waiting behind the send is queued in
  the hub.
* **Closing reaps, and frees the place at once.**  closesocket makes pending
  operations complete later with an error.  A closed connection leaves the
  table of live connections at once (so it no longer counts against
  ``max_clients`` or the event model's 63 clients per group, and AcceptEx is
  posted again), but keeps its OVERLAPPEDs, buffers and event alive, *closing*,
  until every busy one has completed and been reaped; only then is it released.
* **A send in flight is cancelled before its socket is closed.**  Windows
  completes every pending operation when the socket is closed, but Wine 8.0
  keeps a WSASend to a peer that does not read pending after closesocket
  (graceful or abortive) until that peer reads or goes, and after the close the
  handle that CancelIoEx needs is gone.  So whenever a connection is closed
  with its send in flight (a cut-off, an error, a stop), CancelIoEx of that
  send comes first, and if it found the send the close is abortive (SO_LINGER
  {1, 0}: the client sees a reset, so it knows that data was lost).  If it
  did not (ERROR_NOT_FOUND), the send has completed, every byte went out, and
  the close stays graceful: the client gets that reply whole, then a FIN;
  unless more output was queued behind it, which the close drops: then it is
  abortive too, so that a FIN never follows part of what the client was owed.
  ``FakeConfig(close_keeps_sends=True)`` produces Wine's behaviour on the fake.
* **A graceful close cancels, reaps, then closes.**  On Windows closesocket
  with a WSARecv still outstanding resets the connection, even with nothing
  received (Go's CL 6604072, libuv #3034), and a client loses the replies it
  had not read yet: the idle time-out, a cut-off after its error line and a
  stop would all reset.  A receive cancelled but not yet reaped no longer
  counts (libuv's Windows-run test; docs/semantics-findings.md sections 26
  and 28), but the server reaps it first all the same: ``_close`` cancels
  the receive (CancelIoEx) and keeps the socket open while the connection is *closing*;
  the socket is closed when the receive's completion (and a completed send's)
  has been reaped, then the connection is released.  Its place is free at once
  all the same.  An abortive close (the send was found in flight, a cut-off)
  closes at once, and so does a graceful one whose cancel failed otherwise
  than ERROR_NOT_FOUND (waiting for that receive might never end).  The fake
  resets as Windows does, Wine 8.0 sends a FIN either way.
* **Stopping is bounded.**  A stop closes the listener and every connection as
  above, then waits for the cancelled operations; when waiting has timed out
  for ``stop_grace_ms`` in all, the server gives up on what is still pending
  (counted in ``abandoned``), closes the sockets still open (a graceful close
  still waiting for its receive) and returns.
* **Accepting** uses AcceptEx with dwReceiveDataLength 0 on the listening
  socket, notified through the listener's event, the *wake event*.  A stop
  request sets a flag and signals the same event.  Accepting pauses while the connection
  table is full; new connections then wait in the listen backlog.
  ``accepts`` AcceptEx calls are kept outstanding at once (one by default,
  the lecture notes' server), each with its own OVERLAPPED, address buffer
  and accept socket (an *accept slot*), but never more than the places
  free (``max_clients`` less the live connections), so an accept that
  completes always has room.  Real IOCP and event servers post several:
  with one, a burst of connects is taken one accept at a time, each waiting
  for the previous one's completion to be noticed and the next AcceptEx
  posted (under Wine, where an accept is slow, 120-640 connections a second).
  The slots share the wake event; they complete in any order, and each
  notification is handled by looking at every slot
  (HasOverlappedIoCompleted).  Posting an AcceptEx resets the wake event,
  which may erase the signal of another slot that completed meanwhile, so
  after posting, a completed slot signals it again (as the events model's
  "lost signals").  A stop closes the listener, which cancels every pending
  AcceptEx, and every slot's accept socket; each cancelled one is reaped.
* **Idle clients** (``idle_timeout_ms``, off by default).  As in the lecture
  notes, a client that connects and says nothing holds its place for as long
  as it stays connected, so ``max_clients`` silent connections lock everyone
  else out.  With a time-out, a connection is closed (gracefully, or
  abortively with a send in flight, as any close) once it has been idle that
  long: no receive completed a line (bytes without a newline, a slowloris'
  dribble, do not count) and no send completed (its client read nothing)
  since it was accepted or last did either.  A connection held back by
  back-pressure is not idle (the server stopped reading it; the stall
  time-out watches its recipients), and its clock starts again when it is
  read on.  The time is GetTickCount64's
  (steps of about 15.6 ms), so a connection is closed up to one step late.
  Whoever watches a connection's table checks it when the earliest deadline
  has come and waits no longer than until the next: the routines model's
  thread (also between completion routines of a long burst), the iocp
  model's controller, each group of the events model for its own clients.
* **Back-pressure** (``limits.high_water`` with ``stall_timeout_ms``, off by
  default).  The hub says when a sender must not be read from (its receive's
  lines went to a recipient still over the mark once they were routed and
  sent: :meth:`Hub.hold`, asked before the next WSARecv is posted) and when it may again (a ``Resume``
  action, from whatever made the recipient drain to half the mark or go: a
  send taken, a close, an EOF); the next WSARecv is then posted by the thread
  that owns the sender (the events model: its group, through the group's
  action queue).  Whoever of the two comes first posts it, once.  A recipient
  going over the mark is a ``Stall`` action: its owner gives it a *stall
  deadline* ``stall_timeout_ms`` ahead, watched with the idle deadlines, and
  clears it once the recipient is under the mark again (a ``Stall`` performed
  when it is no longer over, its queue taken down to half the mark by the send
  of the same receive's ``Send``, starts no clock); a connection still
  over the mark at its deadline is cut off (abortive close, ``stalled``),
  which resumes the senders it held back.  A client held back is not read
  from, so its FIN or its reset is seen only when it is read from again (or,
  for a reset, when a send to it fails).
"""

from __future__ import annotations

import ctypes
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from fakewinsock import LINGER, WSABUF, WSAOVERLAPPED, CompletionRoutine, Winsock, sockaddr_in
from fakewinsock.constants import (
    AF_INET,
    ERROR_NOT_FOUND,
    FALSE,
    HIBYTE,
    INVALID_SOCKET,
    IPPROTO_TCP,
    LOBYTE,
    MAKEWORD,
    SD_SEND,
    SO_LINGER,
    SO_UPDATE_ACCEPT_CONTEXT,
    SOCK_STREAM,
    SOCKET_ERROR,
    SOL_SOCKET,
    SOMAXCONN,
    STATUS_PENDING,
    STATUS_SUCCESS,
    WSA_FLAG_OVERLAPPED,
    WSA_INFINITE,
    WSA_INVALID_EVENT,
    WSA_IO_PENDING,
    WSAECONNABORTED,
    WSAECONNRESET,
    WSAENETRESET,
    WSAENOTCONN,
    WSAETIMEDOUT,
)

from ._protocol import Action, Disconnect, Hangup, Hub, HubStats, Limits, Mode, Resume, Send, Stall

__all__ = ["ServerConfig", "ServerStats", "Server", "ServerError"]

#: AcceptEx address slot: sizeof(sockaddr_in) + 16, as AcceptEx requires.
ADDR_LEN = ctypes.sizeof(sockaddr_in("0.0.0.0", 0)) + 16
#: sizeof(SOCKET) on Win64: the optlen of SO_UPDATE_ACCEPT_CONTEXT.
SOCKET_SIZE = 8

MODELS = ("events", "routines", "iocp")
#: The iocp model's default worker pool: fixed, so that a seed gives the same run on every
#: machine (``ovserver serve`` defaults to the CPU count instead).
DEFAULT_WORKERS = 4
#: The most worker threads the iocp model starts.
MAX_WORKERS = 1024
#: The most AcceptEx calls kept outstanding at once (``ServerConfig.accepts``).
MAX_ACCEPTS = 1024
#: ``ovserver serve``'s AcceptEx calls outstanding at once (``--accepts``; ``ServerConfig`` keeps the
#: lecture notes' one), and the one ``simulate``'s ``accepts`` feature draws most often.
DEFAULT_ACCEPTS = 16
#: The longest idle time-out (and stall time-out, accept retry and stop grace): under WSA_INFINITE
#: (0xFFFFFFFF), so each is always a finite wait.
MAX_IDLE_TIMEOUT_MS = 0x7FFFFFFF
#: "No idle deadline": later than any GetTickCount64.
NEVER = 1 << 64
#: The back-pressure mark ``ovserver serve`` (and ``simulate``) run with in echo mode unless told
#: (half of max_queued if that is less; see :func:`default_high_water`), and its stall time-out.
DEFAULT_HIGH_WATER = 64 * 1024
DEFAULT_STALL_TIMEOUT_MS = 10_000


def default_high_water(mode: Mode | str, max_queued: int) -> int:
    """The back-pressure mark a server in ``mode`` with ``max_queued`` runs with
    when none is given: on in echo (:data:`DEFAULT_HIGH_WATER`, or half of
    ``max_queued`` if that is less; 0 when there is no room for a mark), off
    (0) in chat.  Why: see ``ovserver.__main__.high_water``."""
    if Mode(mode) is not Mode.ECHO:
        return 0
    return min(DEFAULT_HIGH_WATER, max_queued // 2)

#: How an AcceptEx completes when the connection it took failed (a client reset in the backlog:
#: WSAECONNRESET on Windows and on the fake, WSAENOTCONN under Wine 8.0): the next connection may
#: be fine, so AcceptEx is posted again at once.  Any other error is the accept's own, and the
#: connection stays queued for the next AcceptEx, which fails the same way (under Wine, out of file
#: descriptors: WSAEINVAL, 5000 times a second): accepting backs off.
_CONNECTION_FAILED = frozenset({WSAECONNRESET, WSAECONNABORTED, WSAENETRESET, WSAETIMEDOUT, WSAENOTCONN})

#: What a bind failure means, for the message a user reads.
_BIND_ERRORS = {
    10013: ": WSAEACCES, permission denied (the port is reserved or in use by another program)",
    10048: ": WSAEADDRINUSE, the port is in use",
    10049: ": WSAEADDRNOTAVAIL, not an address of this machine",
}


class ServerError(RuntimeError):
    """The server could not start (or hit a Winsock failure it cannot handle)."""


@dataclass(frozen=True)
class ServerConfig:
    """How to run the server.

    ``port`` 0 lets the system pick one (see :attr:`Server.address`).
    ``recv_size`` is each receive buffer, ``send_size`` the most one WSASend
    carries.  ``accept_retry_ms``: when posting AcceptEx fails at once (e.g.
    WSAENOBUFS), or it completes with an error that is not its client's (see
    ``_CONNECTION_FAILED``), the wait gets this timeout and accepting is retried after it;
    otherwise every wait is infinite (an idle server uses no CPU).  It and
    ``stop_grace_ms`` are wait time-outs: 1 to :data:`MAX_IDLE_TIMEOUT_MS`.
    ``stop_grace_ms``: after a stop request, how long (in wait time-outs) the
    server waits for the operations it cancelled before giving up on them.
    ``workers``: the iocp model's worker threads (the other models ignore it).
    ``accepts``: AcceptEx calls kept outstanding at once (1, the lecture
    notes' server; never more than the places free under ``max_clients``;
    see "Accepting" in the module docstring).
    ``idle_timeout_ms``: 0 (the default, the lecture notes' server) keeps a
    silent client for as long as it stays connected; otherwise a connection
    that has sent no complete line and had no send complete (its client read
    nothing) for that long is closed (see "Idle clients" in the module docstring).
    ``stall_timeout_ms``: with back-pressure (``limits.high_water``), a client
    whose queue stays over the high-water mark (not drained to half of it) for
    that long is cut off (see "Back-pressure" in the module docstring); it
    must be set (1 or more) exactly when ``high_water`` is.
    """

    host: str = "127.0.0.1"
    port: int = 12345
    model: str = "events"
    mode: Mode = Mode.ECHO
    limits: Limits = field(default_factory=Limits)
    recv_size: int = 16 * 1024
    send_size: int = 64 * 1024
    accept_retry_ms: int = 50
    stop_grace_ms: int = 1000
    workers: int = DEFAULT_WORKERS
    idle_timeout_ms: int = 0
    stall_timeout_ms: int = 0
    accepts: int = 1

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, not {self.model!r}")
        object.__setattr__(self, "mode", Mode(self.mode))
        if (self.recv_size < 1 or self.send_size < 1 or self.accept_retry_ms < 1
                or self.stop_grace_ms < 1):
            raise ValueError("recv_size, send_size, accept_retry_ms and stop_grace_ms must be at least 1")
        for name in ("accept_retry_ms", "stop_grace_ms"):  # wait time-outs: WSA_INFINITE or over is no finite wait
            if (ms := getattr(self, name)) > MAX_IDLE_TIMEOUT_MS:
                raise ValueError(f"{name} must be 1 to {MAX_IDLE_TIMEOUT_MS}, not {ms}")
        if not 0 <= self.idle_timeout_ms <= MAX_IDLE_TIMEOUT_MS:
            raise ValueError(f"idle_timeout_ms must be 0 (off) to {MAX_IDLE_TIMEOUT_MS}, not {self.idle_timeout_ms}")
        if not 0 <= self.stall_timeout_ms <= MAX_IDLE_TIMEOUT_MS:
            raise ValueError(f"stall_timeout_ms must be 0 (off) to {MAX_IDLE_TIMEOUT_MS}, not {self.stall_timeout_ms}")
        if bool(self.stall_timeout_ms) != bool(self.limits.high_water):
            raise ValueError("stall_timeout_ms and limits.high_water go together: both set (back-pressure), or both 0")
        if not 1 <= self.accepts <= MAX_ACCEPTS:
            raise ValueError(f"accepts must be 1-{MAX_ACCEPTS}, not {self.accepts}")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise ValueError(f"workers must be 1-{MAX_WORKERS}, not {self.workers}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0-65535, not {self.port}")
        try:
            ipaddress.IPv4Address(self.host)
        except ValueError:
            raise ValueError(f"host must be an IPv4 address (resolve a name first), not {self.host!r}") from None


@dataclass
class ServerStats:
    """What the server did.  ``hub`` holds the protocol's counts.

    A client's end counts once, the first seen: a connection whose FIN was
    read (``ended``) is not counted again as a reset or an I/O error when a
    send (or receive) then fails, but in ``ended_then_failed``; nor as
    closed at the stop.  (Not yet one way each: ``hung_up`` counts with what
    closes the connection then, as do the ended ones the server then cuts
    off or times out.)"""

    accepted: int = 0
    accept_failures: int = 0  # posts that failed, accepts that completed failing, connections refused
    gone_unaccepted: int = 0  # an accept failed with its client's failure (a reset in the backlog): never served
    refused: int = 0  # accepted but not served (its accept context, or no thread or port for it): closed at once
    peak_connections: int = 0
    ended: int = 0  # the client closed gracefully (a receive of 0 bytes)
    ended_then_failed: int = 0  # of ended: a send (or receive) then failed, a reset or not: counted in ended only
    reset: int = 0  # the client was forced out (10054)
    io_errors: int = 0  # another receive or send error
    hung_up: int = 0  # protocol error: error line, then closed
    cut_off: int = 0  # slow reader (or worse): closed abortively
    closed_at_stop: int = 0  # still open at the stop (one whose FIN was read counts in ended)
    timed_out: int = 0  # idle for idle_timeout_ms: closed
    hung_up_timed_out: int = 0  # of timed_out: hung up (counted in hung_up too), then idle (it never went)
    stalled: int = 0  # over the high-water mark for stall_timeout_ms: cut off (also counted in cut_off)
    cancelled: int = 0  # connections whose send in flight was cancelled before the close
    abandoned: int = 0  # operations still pending when a stop gave up waiting for them
    bytes_received: int = 0
    bytes_sent: int = 0
    posted_immediate: int = 0  # operations that completed at once (and still notified)
    posted_pending: int = 0
    posted_failed: int = 0
    threads_started: int = 0  # the events model's group threads, each ended when its group emptied
    peak_threads: int = 0  # group threads alive at once
    threads_stillborn: int = 0  # group threads that ended before they ran (Wine, out of descriptors): replaced
    hub: HubStats = field(default_factory=HubStats)


class _Io(WSAOVERLAPPED):
    """An operation slot: the OVERLAPPED, with what the server needs at its completion."""

    kind: str
    conn: _Conn | None
    buf: bytearray | bytes  # the receive buffer, or the bytes being sent (an accept: the addresses)
    wsabufs: list[WSABUF]
    busy: bool  # posted and not yet handled
    sock: int  # an accept slot's accept socket while its AcceptEx is posted

    def __init__(self, kind: str, conn: _Conn | None, buf: bytearray | bytes) -> None:
        super().__init__()
        self.kind = kind
        self.conn = conn
        self.buf = buf
        self.wsabufs = [WSABUF(len(buf), buf)]
        self.busy = False
        self.sock = INVALID_SOCKET

    def completed(self) -> bool:
        """HasOverlappedIoCompleted: busy and no longer STATUS_PENDING."""
        return self.busy and self.Internal != STATUS_PENDING


class _Conn:
    """One accepted connection: the lecture notes' group of socket, event and OVERLAPPEDs."""

    __slots__ = ("cid", "sock", "name", "event", "slot", "recv", "send", "state", "fin_sent", "closed", "active_ms",
                 "stall_due")

    def __init__(self, cid: int, sock: int, name: bytes, recv_size: int) -> None:
        self.cid = cid
        self.sock = sock
        self.name = name
        self.event = WSA_INVALID_EVENT  # the event model's per-connection event
        self.slot = -1  # the event model's index in its wait array
        self.recv = _Io("recv", self, bytearray(recv_size))
        self.send = _Io("send", self, b"")
        self.state = "open"  # open -> "hangup" (protocol error) / "eof" (client ended) -> closed
        self.fin_sent = False
        self.closed = False
        self.active_ms = 0  # GetTickCount64 of its last activity (idle time-out only)
        self.stall_due = NEVER  # over the high-water mark: cut off at this tick (back-pressure only)

    def idle(self) -> bool:
        return not self.recv.busy and not self.send.busy


class Server:
    """The overlapped-IO server; a subclass per I/O model (:func:`create_server`).

    :meth:`run` starts Winsock, listens, serves until :meth:`request_stop`,
    then closes everything, reaps every operation and calls WSACleanup.
    """

    model: ClassVar[str]

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        self.ws = ws
        self.config = config if config is not None else ServerConfig()
        self.hub = Hub(self.config.mode, self.config.limits)
        self.stats = ServerStats(hub=self.hub.stats)
        #: (host, port) the server listens on, once :meth:`run` has bound it.
        self.address: tuple[str, int] | None = None
        self._conns: dict[int, _Conn] = {}  # live connections
        self._closing: dict[int, _Conn] = {}  # closed, with operations not yet reaped
        self._next_cid = 1
        self._listener = INVALID_SOCKET
        self._wake = WSA_INVALID_EVENT
        self._accepts: list[_Io] = []  # accept slots with an AcceptEx posted (see "Accepting" in the module docstring)
        self._free_accepts: list[_Io] = []  # accept slots free for a post
        self._accept_retry = False
        self._stop = False
        self._stopping = False
        self._stop_waited_ms = 0
        self._gave_up = False
        self._routine: CompletionRoutine | None = None
        self._idle_due = NEVER  # a tick no connection of self._conns expires before (idle time-out)

    # ------------------------------------------------------------ model hooks

    @property
    def max_connections(self) -> int:
        """Connections served at once (the protocol's max_clients, or less)."""
        return self.config.limits.max_clients

    def _conn_opened(self, conn: _Conn) -> bool:
        """Prepare notification for a new connection; False if impossible."""
        return True

    def _conn_closed(self, conn: _Conn) -> None:
        """``conn`` was closed: it is no longer served (its operations may still be busy)."""

    def _conn_released(self, conn: _Conn) -> None:
        """Undo :meth:`_conn_opened` (every operation of ``conn`` is reaped)."""

    def _posted(self, conn: _Conn, io: _Io) -> None:
        """``io`` of ``conn`` was just posted (``io.busy`` says whether that worked)."""

    def _wait(self, timeout_ms: int) -> None:
        """Wait once for notifications and handle them."""
        raise NotImplementedError

    def _resume_accepting(self) -> None:
        """A place may be free: accept again (post AcceptEx unless one is posted or the table is full)."""
        self._post_accept()

    def _idle_armed(self) -> None:
        """A connection got a deadline (idle or stall) earlier than every other
        (the thread that watches them may be in a wait without that time-out)."""

    def _deadline(self, conn: _Conn, due: int) -> None:
        """``conn`` must be checked at tick ``due`` (its idle or stall deadline);
        called by the thread that owns it."""
        if due < self._idle_due:
            self._idle_due = due
            self._idle_armed()

    # ------------------------------------------------------------ life cycle

    def request_stop(self, signal: Callable[[int], object] | None = None) -> None:
        """Ask the server to stop; callable from another thread (a console control
        handler) or a simulated actor.  ``signal`` signals the wake event from
        there: ``ws.WSASetEvent`` by default; a simulated actor on the fake
        passes ``FakeWinsock.signal_event``."""
        self._stop = True  # set before the event is signalled: see _serve
        if self._wake != WSA_INVALID_EVENT:
            (signal if signal is not None else self.ws.WSASetEvent)(self._wake)

    def run(self, ready: Callable[[Server], None] | None = None) -> ServerStats:
        """Serve until stopped; ``ready(server)`` runs once the server listens."""
        ws = self.ws
        err, data = ws.WSAStartup(MAKEWORD(2, 2))
        if err or data is None:
            raise ServerError(f"WSAStartup failed (error {err})")
        if LOBYTE(data.wVersion) != 2 or HIBYTE(data.wVersion) != 2:  # the lecture notes' version check
            ws.WSACleanup()
            raise ServerError(f"Winsock 2.2 is not available (got {LOBYTE(data.wVersion)}.{HIBYTE(data.wVersion)})")
        try:
            self._listen()
            if ready is not None:
                ready(self)
            self._post_accept()
            self._serve()
            self._close_abandoned(self._closing.values())  # a stop that gave up (every thread has ended)
        except BaseException:
            self._abandon()
            if not self._accepting() and not self._conns and not self._closing:
                self._cleanup()  # nothing in flight: WSACleanup cannot find a leak
            raise
        self._cleanup()
        return self.stats

    def _cleanup(self) -> None:
        ws = self.ws
        if self._wake != WSA_INVALID_EVENT:
            ws.WSACloseEvent(self._wake)
            self._wake = WSA_INVALID_EVENT
        ws.WSACleanup()

    def _listen(self) -> None:
        ws, cfg = self.ws, self.config
        self._wake = ws.WSACreateEvent()
        if self._wake == WSA_INVALID_EVENT:
            raise ServerError(f"WSACreateEvent failed (error {ws.WSAGetLastError()})")
        s = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
        if s == INVALID_SOCKET:
            raise ServerError(f"WSASocket failed (error {ws.WSAGetLastError()})")
        self._listener = s
        addr = sockaddr_in(cfg.host, cfg.port)
        if ws.bind(s, addr, ctypes.sizeof(addr)) == SOCKET_ERROR:
            error = ws.WSAGetLastError()
            why = _BIND_ERRORS.get(error, "")
            raise ServerError(f"bind to {cfg.host}:{cfg.port} failed (error {error}{why})")
        if ws.listen(s, SOMAXCONN) == SOCKET_ERROR:
            raise ServerError(f"listen failed (error {ws.WSAGetLastError()})")
        rc, name = ws.getsockname(s)
        port = name.port if rc == 0 and name is not None else cfg.port
        self.address = (cfg.host, port)

    def _serve(self) -> None:
        while True:
            # The flag is read after every post, so a stop signal swallowed by a
            # post resetting the wake event (AcceptEx on it) is still seen.
            if self._stop and not self._stopping:
                self._begin_stop()
            if self._stopping:
                if not self._accepting() and not self._conns and not self._closing and not self._owes():
                    return
                if self._gave_up:
                    self.stats.abandoned = self._accepting() + sum(
                        int(c.recv.busy) + int(c.send.busy) for c in self._closing.values())
                    return
                self._wait(self.config.stop_grace_ms)
            else:
                self._wait(self._running_timeout())

    def _owes(self) -> bool:
        """Whether the model still waits for something of its own to run (the
        routines model: its marker APCs) before a stop can end."""
        return False

    def _running_timeout(self) -> int:
        """The time-out of a running server's wait: the idle check's (which it
        runs), cut to ``accept_retry_ms`` while a failed accept waits for its
        retry.  The retry flag is read after the check: a client it cuts off
        frees a place, and the AcceptEx posted for it may fail."""
        timeout = self._idle_timeout(WSA_INFINITE)
        return min(timeout, self.config.accept_retry_ms) if self._accept_retry else timeout

    def _timed_out(self, waited_ms: int) -> None:
        """A wait of ``waited_ms`` timed out: retry accepting, or, while
        stopping, count towards giving up."""
        if self._stopping:
            self._stop_waited_ms += waited_ms
            if self._stop_waited_ms >= self.config.stop_grace_ms:
                self._gave_up = True
        elif self._accept_retry:
            self._retry_accept()

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
            self._close_at_stop(conn)

    def _close_at_stop(self, conn: _Conn) -> None:
        """Close ``conn`` for the stop: it counts in ``closed_at_stop`` unless
        its FIN was read (that one is counted in ``ended``)."""
        self.stats.closed_at_stop += int(conn.state != "eof")
        self._close(conn)

    def _abandon(self) -> None:
        """After an unexpected exception: close what is open, wait for nothing.
        A receive in flight is cancelled first, so that the close is graceful
        (see :meth:`_close`): the clients still get the replies already sent.
        A client whose output is dropped (a send in flight, or output still
        queued) is reset instead, as :meth:`_close` does: it must not read a
        FIN after part of its replies.
        Every operation still busy now will never be reaped: ``abandoned``
        says how many (the models that waited after the failure, bounded by
        ``stop_grace_ms``, reaped what came in time)."""
        ws = self.ws
        if self._listener != INVALID_SOCKET:
            ws.closesocket(self._listener)
        for c in self._conns.values():
            if c.send.busy or self.hub.queued(c.cid):
                self._set_abortive(c.sock)
            elif c.recv.busy:
                ws.CancelIoEx(c.sock, c.recv)
            ws.closesocket(c.sock)
        self._close_abandoned(self._closing.values())  # those waiting for their cancelled receive
        self._listener = INVALID_SOCKET
        self._close_accept_sockets()
        self.stats.abandoned = self._accepting() + sum(
            int(c.recv.busy) + int(c.send.busy) for c in (*self._conns.values(), *self._closing.values()))

    def _close_accept_sockets(self) -> None:
        """Close the accept socket of every AcceptEx still posted (a stop: the
        listener is closed too, so each completes cancelled and is reaped)."""
        for io in self._accepts:
            if io.sock != INVALID_SOCKET:
                self.ws.closesocket(io.sock)
                io.sock = INVALID_SOCKET

    def _on_wake(self) -> None:
        """The wake event: an AcceptEx completed, or a stop was requested."""
        self.ws.WSAResetEvent(self._wake)
        self._accepts_done()

    def _accepts_done(self, most: int | None = None) -> int:
        """Complete every AcceptEx that has completed (HasOverlappedIoCompleted:
        memory only), in whatever order they completed, or the first ``most``
        of them; how many.  Those that complete meanwhile (the posts that
        follow each) signal the wake event."""
        for io in self._accepts:
            if io.completed():
                break
        else:
            return 0  # (after every routine in the routines model: no allocation)
        done = [io for io in self._accepts if io.completed()][:most]
        for io in done:
            self._accept_done(io)
        return len(done)

    def _retry_accept(self) -> None:
        self._accept_retry = False
        self._post_accept()

    # ------------------------------------------------------------ accepting

    def _accepting(self) -> int:
        """AcceptEx calls outstanding (posted and not yet handled)."""
        return len(self._accepts)

    def _post_accept(self) -> None:
        """Post AcceptEx until ``accepts`` are outstanding (no more than the
        places free), unless stopping; a post that fails at once stops it
        (accepting is retried after ``accept_retry_ms``)."""
        last = None
        while True:
            busy = self._accepting()
            if (self._stopping or busy >= self.config.accepts or self._listener == INVALID_SOCKET
                    or not self._room_to_accept(busy)):
                break
            io = self._accept_slot()
            if not self._post_one_accept(io):
                break
            last = io
        if last is not None and any(io.completed() for io in self._accepts if io is not last):
            self._accept_resignal()  # the posts reset the wake event: a completed slot signals again

    def _room_to_accept(self, busy: int) -> bool:
        """With ``busy`` AcceptEx calls outstanding, one more has a place:
        the table has room for every accept that completes, and the protocol
        takes another member."""
        return len(self._conns) + busy < self.max_connections and not self.hub.full

    def _accept_slot(self) -> _Io:
        """A free accept slot, or a new one."""
        if self._free_accepts:
            return self._free_accepts.pop()
        io = _Io("accept", None, bytearray(2 * ADDR_LEN))
        io.hEvent = self._accept_event()
        return io

    def _accept_handled(self, io: _Io) -> None:
        """Accept slot ``io``'s AcceptEx has been handled: it is free for a post."""
        self._accepts.remove(io)
        self._free_accepts.append(io)

    def _accept_event(self) -> int:
        """The event an accept slot's AcceptEx signals: the wake event."""
        return self._wake

    def _accept_resignal(self) -> None:
        """A completed AcceptEx's signal may have been erased by a later post: signal again."""
        self.ws.WSASetEvent(self._wake)

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

    def _accept_failed(self) -> None:
        """Posting AcceptEx failed at once: accept again later."""
        self.stats.posted_failed += 1
        self.stats.accept_failures += 1
        self._accept_later()

    def _accept_later(self) -> None:
        """Post AcceptEx again only ``accept_retry_ms`` from now (each model's
        wait, or the routines model's check, retries it)."""
        self._accept_retry = True

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
            self._accept_again(error)
            return
        assert isinstance(io.buf, bytearray)
        remote = ws.GetAcceptExSockaddrs(io.buf, 0, ADDR_LEN, ADDR_LEN).RemoteSockaddr
        self._open(s, f"{remote.host}:{remote.port}".encode())
        self._post_accept()

    def _accept_again(self, error: int) -> None:
        """After an AcceptEx that completed with ``error`` (0: it worked, but
        its socket's accept context could not be set): post again at once if
        its connection failed (that connection is gone, the next may be
        fine), else only later: the connection stays queued and the next
        AcceptEx would fail the same way at once, again and again (see
        :data:`_CONNECTION_FAILED`)."""
        if error and error not in _CONNECTION_FAILED:
            self._accept_later()
        else:
            self._post_accept()

    def _open(self, s: int, name: bytes) -> None:
        cid = self._next_cid
        self._next_cid += 1
        conn = _Conn(cid, s, name, self.config.recv_size)
        if not self._conn_opened(conn):
            self.stats.accept_failures += 1
            self.stats.refused += 1
            self.ws.closesocket(s)
            return
        self._conns[cid] = conn
        limit = self.config.idle_timeout_ms
        if limit:
            conn.active_ms = self.ws.GetTickCount64()
            self._deadline(conn, conn.active_ms + limit)
        self.stats.accepted += 1
        self.stats.peak_connections = max(self.stats.peak_connections, len(self._conns))
        self._begin(conn)

    def _begin(self, conn: _Conn) -> None:
        """Serve ``conn`` (opened and counted): it joins the protocol, its first receive is posted."""
        actions = self.hub.join(conn.cid, conn.name)
        self._post_recv(conn)
        self._apply(actions)

    # ------------------------------------------------------------ receiving and sending

    def _count_post(self, immediate: bool) -> None:
        if immediate:
            self.stats.posted_immediate += 1
        else:
            self.stats.posted_pending += 1

    def _post_recv(self, conn: _Conn) -> None:
        io = conn.recv
        rc, _, _ = self.ws.WSARecv(conn.sock, io.wsabufs, 1, 0, io, self._routine)
        self._after_post(conn, io, rc)

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
        rc, _, _ = self.ws.WSASend(conn.sock, io.wsabufs, 1, 0, io, self._routine)
        self._after_post(conn, io, rc)

    def _after_post(self, conn: _Conn, io: _Io, rc: int) -> None:
        error = 0 if rc == 0 else self.ws.WSAGetLastError()  # read only when rc says to
        ok = rc == 0 or error == WSA_IO_PENDING
        io.busy = ok
        self._posted(conn, io)
        if ok:
            self._count_post(rc == 0)
            return
        # Failed at once: nothing will notify.
        self.stats.posted_failed += 1
        self._count_close(conn, error)
        self._close(conn)

    def _count_close(self, conn: _Conn, error: int) -> None:
        """Count how ``conn`` ended, as its failed receive or send says: a
        reset (10054: the client forced it out) or another I/O error; unless
        its end was counted already, as ``ended`` (its FIN was read): each
        connection counts in one way of ending, the first seen.  (Under Wine
        a reset reads as 0 bytes first, then a send to it fails with 10054;
        on the fake, a client's reset after its FIN fails a send with 10053.)"""
        if conn.state == "eof":
            self.stats.ended_then_failed += 1
        elif error == WSAECONNRESET:
            self.stats.reset += 1
        else:
            self.stats.io_errors += 1

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
            self.hub.end(conn.cid)
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

    def _peer_gone(self, conn: _Conn) -> bool:
        """At the EOF of ``conn`` with a send in flight: whether the client is gone
        (getpeername fails with WSAENOTCONN: no connection is left), not merely
        done sending.  Under Wine 8.0 a reset reads as 0 bytes, as a FIN does,
        and the send pending to that client may then never complete (seen in
        chat with members that flooded, never read and closed: each kept its
        place and its queue until the stop; ``tools/wine/misbehave.py zombies``).
        On Windows (and the fake) a reset fails the receive and the send, and
        after a FIN getpeername succeeds (the connection is half-closed), so
        there this never finds a client gone."""
        if self.ws.getpeername(conn.sock).rc == 0:
            return False
        return self.ws.WSAGetLastError() == WSAENOTCONN

    def _apply(self, actions: list[Action]) -> None:
        for a in actions:
            conn = self._conns.get(a.cid)
            if conn is None or conn.closed:
                continue
            if isinstance(a, Send):
                self._post_send(conn)
            elif isinstance(a, Hangup):
                self.stats.hung_up += 1
                conn.state = "hangup"
                self._post_send(conn)
            elif isinstance(a, Disconnect):
                self.stats.cut_off += 1
                self._close(conn, abort=True)
            elif isinstance(a, Resume):
                if conn.state == "open" and not conn.recv.busy and not self._stop:
                    self._read_on(conn)
            elif isinstance(a, Stall):  # (not if the Send before it took the queue under the mark)
                if conn.stall_due == NEVER and self.hub.over(conn.cid):
                    conn.stall_due = self.ws.GetTickCount64() + self.config.stall_timeout_ms
                    self._deadline(conn, conn.stall_due)

    def _read_on(self, conn: _Conn) -> None:
        """Read from ``conn`` again after back-pressure held it back; its idle
        clock, stopped meanwhile (see :meth:`_idle_check`), starts again."""
        if self.config.idle_timeout_ms:
            conn.active_ms = self.ws.GetTickCount64()
            self._deadline(conn, conn.active_ms + self.config.idle_timeout_ms)
        self._post_recv(conn)

    def _after_hub(self, conn: _Conn) -> None:
        """After the hub took output from ``conn`` or forgot it: its stall clock
        stops once it is no longer over the mark, and the senders it held back
        read on (back-pressure only)."""
        if not self.config.stall_timeout_ms:
            return
        self.hub.settle(conn.cid)
        if conn.stall_due != NEVER and not self.hub.over(conn.cid):
            conn.stall_due = NEVER
        if resumes := self.hub.pop_resumes():
            self._apply(resumes)

    # ------------------------------------------------------------ idle clients

    def _idle_check(self, conns: Iterable[_Conn], due: int, timeout_ms: int) -> tuple[int, int]:
        """When tick ``due`` has come, close those of ``conns`` that have been
        idle for ``idle_timeout_ms``.  Returns the tick before which none of the
        others expires (:data:`NEVER` if there are none), and ``timeout_ms``
        shortened to end then: the time-out of the wait that follows."""
        now = self.ws.GetTickCount64()
        if now >= due:
            limit = self.config.idle_timeout_ms
            due = NEVER
            for conn in list(conns):
                if conn.closed:
                    continue
                # Held back (back-pressure), it is not idle: the server stopped reading it.
                idle = limit and not self.hub.paused(conn.cid)
                expires = min(conn.active_ms + limit if idle else NEVER, conn.stall_due)
                if conn.stall_due <= now:  # a slow consumer: it has not drained for stall_timeout_ms
                    self.stats.stalled += 1
                    self.stats.cut_off += 1
                    self._close(conn, abort=True)
                elif expires <= now:
                    self.stats.timed_out += 1
                    self.stats.hung_up_timed_out += int(conn.state == "hangup")
                    self._close(conn)
                elif expires < due:
                    due = expires
        if due == NEVER:
            return due, timeout_ms
        return due, min(timeout_ms, due - now)

    def _timers(self) -> bool:
        """Whether connections have deadlines (idle time-out or back-pressure's stall time-out)."""
        return bool(self.config.idle_timeout_ms or self.config.stall_timeout_ms)

    def _idle_timeout(self, timeout_ms: int) -> int:
        """The single-table models (routines, iocp): check ``self._conns`` for
        idle (or stalled) connections; the time-out of the wait that follows."""
        if not self._timers():
            return timeout_ms
        self._idle_due, timeout_ms = self._idle_check(self._conns.values(), self._idle_due, timeout_ms)
        return timeout_ms

    # ------------------------------------------------------------ closing

    def _close(self, conn: _Conn, abort: bool = False) -> None:
        """Remove ``conn``: its place is free at once; its socket is closed once
        nothing of it is outstanding, and its OVERLAPPEDs and buffers are
        released when their operations are reaped.

        A send in flight is cancelled first (CancelIoEx: Wine would otherwise
        keep it pending after the close, see the module docstring); if the
        cancel found it, the close is abortive, since that data is lost (a
        send that has completed, not yet reaped, went out whole).  A close
        that drops output still queued is abortive too: the client must not
        read a FIN after part of its replies.  Otherwise
        a receive in flight is cancelled, and the socket is closed only when
        its completion has been reaped (:meth:`_release_if_idle`): Windows
        resets a connection closed with a receive outstanding, and maybe one
        whose cancelled receive has not completed yet."""
        if conn.closed:
            return
        conn.closed = True
        if self._leave_hub(conn):
            abort = True  # output is dropped: a reset, not a FIN that says nothing more was owed
        ws = self.ws
        if conn.send.busy:
            if ws.CancelIoEx(conn.sock, conn.send):
                self.stats.cancelled += 1
                abort = True
            elif ws.GetLastError() != ERROR_NOT_FOUND:
                abort = True  # the cancel failed: nothing says the send has ended
            # (ERROR_NOT_FOUND: it has completed, every byte went out; it is reaped as usual,
            # and the close stays graceful unless output waited behind it.)
        close_now = abort
        if abort:
            self._set_abortive(conn.sock)
        elif conn.recv.busy:
            # ERROR_NOT_FOUND if it has just completed: reaped as usual, then closed.  Another
            # failure: the cancel did not take, and waiting for the receive might never end.
            close_now = not ws.CancelIoEx(conn.sock, conn.recv) and ws.GetLastError() != ERROR_NOT_FOUND
        if close_now or conn.idle():
            self._close_socket(conn)
        self._forget(conn)

    def _leave_hub(self, conn: _Conn) -> bool:
        """``conn`` leaves the protocol's hub, and the senders it alone held
        back read on.  True if output queued for it was dropped."""
        dropped = self.hub.queued(conn.cid) > 0
        self.hub.leave(conn.cid)
        if self.config.stall_timeout_ms and (resumes := self.hub.pop_resumes()):
            self._apply(resumes)  # the senders it held back read on
        return dropped

    def _forget(self, conn: _Conn) -> None:
        """The closed ``conn`` leaves the connection table: released at once if
        nothing of it is outstanding, else kept *closing* until its operations
        are reaped; its place is free, so accepting resumes."""
        del self._conns[conn.cid]
        self._conn_closed(conn)
        if conn.idle():
            self._release(conn)
        else:
            self._closing[conn.cid] = conn
        self._resume_accepting()  # its place is free again

    def _set_abortive(self, sock: int) -> None:
        """Make the coming closesocket of ``sock`` abortive: SO_LINGER {1, 0}, so the
        client reads a reset (10054), not a FIN that says nothing more was owed."""
        lg = LINGER(1, 0)
        self.ws.setsockopt(sock, SOL_SOCKET, SO_LINGER, lg, ctypes.sizeof(lg))

    def _close_socket(self, conn: _Conn) -> None:
        """closesocket on ``conn``'s socket, unless that was done."""
        if conn.sock != INVALID_SOCKET:
            self.ws.closesocket(conn.sock)
            conn.sock = INVALID_SOCKET

    def _close_abandoned(self, conns: Iterable[_Conn]) -> None:
        """A stop gave up on the operations of the closing ``conns``: close the
        sockets still open (a graceful close waiting for its cancelled receive)."""
        for conn in conns:
            self._close_socket(conn)

    def _reaped(self, io: _Io) -> None:
        """A busy slot of a closed connection completed (with whatever error).
        A send that succeeded went out whole before the close (its cancel
        found nothing): its bytes count as sent, as the client may have read
        them all (under Wine, 40 echo clients got their 150 bytes back, and a
        stop that came before the server saw the last sends complete left 134
        in the "stopped" line).  The socket may be gone, so the status and
        byte count are read from the OVERLAPPED, as HasOverlappedIoCompleted
        reads its status."""
        io.busy = False
        if io.kind == "send" and io.Internal == STATUS_SUCCESS:
            self.stats.bytes_sent += io.InternalHigh
        assert io.conn is not None
        self._release_if_idle(io.conn)

    def _release_if_idle(self, conn: _Conn) -> None:
        """Once every operation of the closing ``conn`` is reaped: close its
        socket (gracefully: nothing is outstanding) if not yet, and release it."""
        if conn.idle() and self._closing.get(conn.cid) is conn:
            del self._closing[conn.cid]
            self._close_socket(conn)
            self._release(conn)

    def _release(self, conn: _Conn) -> None:
        self._conn_released(conn)
        # Nothing can complete on its slots any more: break the conn <-> slot
        # cycles, so its buffers are freed now, not at some later GC pass.
        conn.recv.conn = conn.send.conn = None
