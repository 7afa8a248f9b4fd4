"""``ovserver simulate``: the server on the fake backend, with scripted clients that
check every reply.

Each simulated client is a :class:`fakewinsock.FakePeer` driven only by its
public non-blocking calls (``connect_nowait``, ``send_nowait``,
``recv_nowait``, ``shutdown``, ``close``, ``reset``), its ``on_change``
callback and timers (``FakeWinsock.call_at``).  What the clients do is drawn
up front (:func:`scenario_plan`: arrivals, lines, chunks, pauses, resets) and as
they run (retry backoffs) from ``random.Random`` objects seeded from the run's
seed, so the same seed gives the same run, and the same report apart from the
wall-time line.

A client's life:

1. **Arrival.**  Clients arrive at random times over a window, a quarter of
   them in one flood within 1 ms.  A full listen backlog refuses connections,
   as on Windows; a refused client retries after an exponential backoff with
   jitter, in virtual time.
2. **Sending.**  M lines of random bytes (any byte but the newline, lengths
   mostly short, sometimes long), as one stream cut into random chunks sent at
   random intervals, so lines are coalesced and split every way.  In chat mode
   a client starts sending once it has read its welcome line.
3. **Checking** (as bytes arrive, and at the end):

   * echo: the replies are exactly its own lines, in order.
   * chat: the first line is ``* welcome <its name>``; every other line is
     ``<sender>: <line>`` from a known client other than itself.  For each
     sender S, the lines received from S must be a contiguous run
     ``S.lines[i:j]`` (in order, none skipped, none altered, none repeated:
     membership is an interval and each queue is FIFO).  And the run may not
     start late: if it reaches past line ``k0``, the first line of S whose
     newline S sent after the receiver read its welcome (so it was routed
     after the receiver joined), then ``i <= k0``.  A client leaves when it
     has heard nothing for a while after sending everything (see
     ``barrier`` in :func:`simulate` for an exact check).
   * any client: the server never closes or resets it unasked.
   * Leaving is graceful: FIN (``shutdown``), read until the server's FIN
     (the server sends what it has queued first), then close: the server
     sees the seed's graceful exit, a receive of 0 bytes, never a reset.

4. **Resets** (``resets`` fraction of the clients): the client resets
   (abortive close) at a random point instead: before sending, after any
   chunk, or while waiting for replies.  What it received until then is
   checked as above (echo: a prefix of its lines).
"""

from __future__ import annotations

import enum
import gc
import random
import time
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from fakewinsock import FakeConfig, FakePeer, FakeWinsock
from fakewinsock._owed import note_taken, nothing_on_the_way, outbound, reset_by_server, taken_before, unread_before_fin
from fakewinsock._preempt import PreemptingChooser
from fakewinsock._scripted import DONE as _DONE
from fakewinsock._scripted import ScriptedClient
from fakewinsock.constants import WSAENOBUFS

from ._core import (
    DEFAULT_ACCEPTS,
    DEFAULT_STALL_TIMEOUT_MS,
    DEFAULT_WORKERS,
    Server,
    ServerConfig,
    ServerStats,
    default_high_water,
)
from ._events import GROUP_CLIENTS, EventServer
from ._iocp import IocpServer
from ._protocol import Limits, Mode, error_line, welcome_line
from ._routines import RoutineServer

__all__ = ["simulate", "SimulationReport", "format_report"]

_MS = 1_000_000  # ns

#: Connection attempts before a client gives up.
MAX_ATTEMPTS = 40
#: A client that is not done this long after it arrived is a failure.
CLIENT_DEADLINE_NS = 600_000 * _MS


@dataclass
class SimulationReport:
    """What a simulation did and found.  ``errors`` lists wrong data (and clients
    that could not finish); the run is good when it is empty."""

    model: str
    mode: str
    clients: int
    messages_per_client: int
    seed: int
    resets_fraction: float
    traffic: str = "plain"  # "plain", or "swarm: " and the features switched on
    server_limits: Limits = field(default_factory=Limits)
    stall_timeout_ms: int = 0  # back-pressure's (with server_limits.high_water), else 0
    accepts: int = 1  # the server's AcceptEx calls outstanding at once (ServerConfig.accepts)
    served: int = 0  # finished their whole session and closed gracefully
    reset_by_plan: int = 0
    refusals: int = 0  # connection attempts refused (backlog full), retried
    hung_up: int = 0  # sent a line over max_line, got the error line and the server's FIN, as due
    cut_off: int = 0  # reset by the server when over max_queued may have been queued for it
    dropped: int = 0  # closed by the server after an injected WSARecv/WSASend failure
    timed_out: int = 0  # closed by the server when idle for its idle time-out may have passed
    idle_timeout_ms: int = 0  # the server's (ServerConfig.idle_timeout_ms), 0: off
    stop_at_ns: int | None = None  # when a stop was requested mid-run (stop_at_s), if one was
    stopped: int = 0  # closed, reset or refused by the server once it was asked to stop, or never started
    stop_took_ns: int = 0  # from the stop request to the server's return
    latecomers: int = 0  # stop_arrivals: clients besides ``clients`` that arrived around the stop
    lines_sent: int = 0  # complete lines the clients sent
    bytes_sent: int = 0
    replies: int = 0  # lines the clients received and verified
    bytes_received: int = 0
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    fake_stats: dict[str, int] = field(default_factory=dict)
    thread_switches: int = 0  # the fake's (FakeWinsock.thread_switches); not in the text report
    server: ServerStats = field(default_factory=ServerStats)
    virtual_ns: int = 0
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    @property
    def calls_per_message(self) -> float:
        return self.fake_stats.get("calls", 0) / max(1, self.lines_sent)

    def __str__(self) -> str:
        return format_report(self)


def format_report(r: SimulationReport) -> str:
    """The report as text.  Only the line starting with ``wall time`` depends on
    anything but the seed and the options.  The header's ``resets=`` is the
    ``--resets`` fraction, followed by ``+swarm`` when the swarm's ``resets``
    feature resets some of the other clients too."""
    s, f = r.server, r.fake_stats
    swarm_resets = r.traffic.startswith("swarm: ") and "resets" in r.traffic.split()[1:]
    lines = [
        f"ovserver simulate: model={r.model} mode={r.mode} clients={r.clients} "
        f"messages={r.messages_per_client} seed={r.seed} resets={r.resets_fraction:g}"
        + ("+swarm" if swarm_resets else ""),
        f"traffic               {r.traffic}",
        f"limits                max_line {r.server_limits.max_line}, max_queued {r.server_limits.max_queued}, "
        f"max_clients {r.server_limits.max_clients}"
        + (f", back-pressure at {r.server_limits.high_water} (stall time-out {r.stall_timeout_ms} ms)"
           if r.server_limits.high_water else "")
        + (f", {r.accepts} AcceptEx outstanding" if r.accepts != 1 else "")
        + (f", idle time-out {r.idle_timeout_ms} ms" if r.idle_timeout_ms else ""),
        f"clients served        {r.served} of {r.clients} (reset on purpose {r.reset_by_plan}, "
        f"refused and retried {r.refusals})",
        f"limits and faults     hung up as due {r.hung_up} (line over max_line), cut off as due {r.cut_off} "
        f"(kept sending after its error line, or over max_queued"
        + (", or over half the back-pressure mark" if r.server_limits.high_water else "")
        + f"), dropped {r.dropped} (injected failures)"
        + (f", timed out as due {r.timed_out} (idle)" if r.idle_timeout_ms else ""),
        *([f"stop mid-run          requested at {r.stop_at_ns / 1e9:.6f} s, the server returned "
           f"{r.stop_took_ns / 1e9:.6f} s later; {r.stopped} clients cut off, refused or not started by it"
           + (f"; {r.latecomers} latecomers were due around it" if r.latecomers else "")]
          if r.stop_at_ns is not None else []),
        f"server                accepted {s.accepted}, peak {s.peak_connections} at once, "
        f"ended {s.ended}" + (f" ({s.ended_then_failed} then failed)" if s.ended_then_failed else "")
        + f", reset {s.reset}, io errors {s.io_errors}, hung up {s.hung_up}, "
        f"cut off {s.cut_off}" + (f" ({s.stalled} stalled)" if r.server_limits.high_water else "")
        + f", closed at stop {s.closed_at_stop}"
        + (f", {s.threads_started} worker threads" if r.model == "iocp" else
           f", {s.threads_started} group threads (at most {s.peak_threads} at once)" if s.threads_started else ""),
        f"messages              {r.lines_sent} lines sent, {r.replies} replies verified "
        f"({s.hub.deliveries} queued by the server)",
        f"bytes                 {r.bytes_sent} sent by clients, {r.bytes_received} received by clients",
        f"completions           {f.get('immediate', 0)} immediate, {f.get('pending', 0)} pending, "
        f"{f.get('failed', 0)} failed calls, {f.get('routines', 0)} completion routines run",
        f"resets                {f.get('resets', 0)} RSTs on the wire",
        f"errors                {r.error_count}",
    ]
    lines += [f"  {e}" for e in r.errors]
    lines += [
        f"virtual time          {r.virtual_ns / 1e9:.6f} s",
        f"winsock calls         {f.get('calls', 0)} "
        + (f"({r.calls_per_message:.2f} per message)" if r.lines_sent else "(no messages)"),
        f"wall time             {r.wall_s:.2f} s",
        "result                " + ("OK: every reply verified" if r.ok else
                                     "FAILED: wrong data or a client not served"),
    ]
    return "\n".join(lines) + "\n"


class _FrozenHeap:
    """Keeps CPython's cyclic garbage collector off the run's long-lived objects.

    A full collection traverses every object the collector tracks, and a run
    holds many that live as long as it does: every client's plan (its lines and
    chunks), and once they are connected, its socket, peer, OVERLAPPEDs and
    buffers.  With more clients each full collection costs more, and more of
    them come per message: at 20000 clients connected at once, ten full
    collections and, in one measurement, some 40% of the growth of CPU time
    per message over 1000 clients (docs/measurement-log.md, "The events model at 20000
    clients").
    :meth:`freeze` moves everything tracked so far to the permanent generation
    (:func:`gc.freeze`, as forking servers do; its cost does not depend on the
    heap), which collections skip; the run freezes once its plans are made and
    again as each client joins, so a collection only looks at what came since.
    :meth:`release` puts it all back at the end of the run.  Reference counting
    still frees what is frozen; only cyclic garbage among it (a few dozen
    objects per client that left) waits for the run's end.

    The collector is also paused for the run (:func:`gc.disable`, and enabled
    again by :meth:`release`).  With the world frozen, what its collections
    still did was traverse the young objects, which mostly live on (timers,
    buffers, what the clients received) and reach into the cold world: at
    5000 clients (events model) a collection of the youngest generation took
    about 0.9 ms, and the collections about 10 us per message, for nothing:
    in swarm runs of 1500 clients (every model, with resets) the collections
    during the run found 0 to 172 objects of cyclic garbage, and the tens of
    thousands that were there at the end were frozen, waiting for the end
    anyway (docs/measurement-log.md, "The events model at 20000 clients").  After the run a
    collection comes when the caller's allocations trigger one, as before.

    Nothing in the fake depends on when a collection runs (no finalizers), so
    schedules do not change.  A caller that froze objects itself (or disabled
    the collector) is left alone, and so is a ``_Sim`` used outside
    :func:`simulate` (only :meth:`start`, paired with :meth:`release`, arms
    it).
    """

    def __init__(self) -> None:
        self.active = False
        self.frozen = False
        self.paused = False

    def start(self) -> None:
        """Arm it (unless the caller froze objects or disabled the collector):
        pause the collector, and freeze."""
        self.active = gc.isenabled() and gc.get_freeze_count() == 0
        if self.active:
            gc.disable()
            self.paused = True
        self.freeze()

    def freeze(self) -> None:
        if self.active:
            gc.freeze()
            self.frozen = True

    def release(self) -> None:
        self.active = False
        if self.frozen:
            gc.unfreeze()
            self.frozen = False
        if self.paused:
            gc.enable()
            self.paused = False


class _Sim:
    """The run: the fake, the server and every client."""

    def __init__(self, ws: FakeWinsock, server: Server, report: SimulationReport, mode: Mode, barrier: bool,
                 progress: Callable[[int, int], None] | None) -> None:
        self.ws = ws
        self.server = server
        self.report = report
        self.mode = mode
        self.barrier = barrier
        self.at_barrier: list[_Client] = []
        # Barrier chat, checking: for each client the server ended, the lines the first client that
        # stayed heard of it, and that client.
        self.heard_by_stayers: dict[int, tuple[int, _Client]] = {}
        self.gave_up = 0  # clients done before they joined (chat: before their welcome)
        self.progress = progress
        self.clients: list[_Client] = []
        self.by_name: dict[bytes, _Client] = {}
        self.done = 0
        self.host = "127.0.0.1"
        self.port = 0
        self.rng = random.Random(f"ovserver-sim:{report.seed}:run")  # what clients draw as they run
        self._arrivals: deque[_Client] = deque()
        self._after_wave: list[_Client] = []  # full_groups: the clients that arrive once the wave has ended
        self.chat_bytes = 0  # chat: bytes every client has sent, each line counted with its sender's name
        # Chat: of chat_bytes, at most this many may not have been routed by the server yet: each
        # client's chat_sent less the most any one listener has heard from it (every line a listener
        # heard was routed, and the server routes each sender's lines in order).
        self.chat_unheard = 0
        self.drops_left = 0  # clients the server may drop: injected WSARecv/WSASend failures
        self.injected_failures = 0  # WSARecv/WSASend failures injected in all
        # Clients that reset (their plan's abortive close, no FIN sent) while the server held their
        # connection open: each must end in one of the server's counts but an I/O error (_check_causes).
        self.resets_held = 0
        self._deadlines: deque[tuple[int, _Client]] = deque()
        # Chat: how long after a client's end is seen (a receive of 0 bytes reaped by the server) lines
        # others send may still reach it (the server may act on the end a little after it reaped it: an
        # iocp worker waits for the lock): far more than the fake's latency and completion delay.
        cfg = ws.config
        self.end_grace_ns = _MS + 4 * (cfg.latency[1] + cfg.completion_delay[1])
        self.stopping = False  # a stop was requested mid-run: what the server does to clients from now is due
        #: Swarm traffic: once every client is done, the server has this long (a quiet second) to close
        #: the connections of clients that are gone before it is asked to stop (0: asked at once).
        self.quiet_ns = 0
        #: early_stop: the clients that neither stay connected once served nor are stuck readers, and are
        #: not done yet; when the last of them is done, the server is asked to stop (the others are still
        #: connected: a stuck reader holds the server's sends to it).
        self.stop_when_settled = 0
        self.heap = _FrozenHeap()
        #: lurkers: the clients that talk (neither lurkers nor hung readers) not yet done nor staying; the
        #: lurkers waiting for them to be 0; how long a lurker owed lines may hear nothing (see
        #: _Lurker.stop_lurking: far more than the fake takes to move a window's worth of bytes).
        self.talkers_left = 0
        self.lurking: list[_Lurker] = []
        self.lurk_grace_ns = LURK_GRACE_NS + 20 * (cfg.latency[1] + cfg.completion_delay[1])
        self.hanging = 0  # hung readers not done: the run's end does not wait for them (the stop ends them)
        #: Chat, lurkers: by sender, when each of its lines (0, 1, ...) was first heard by a client that
        #: joined before the sender sent its first line (so, routed by then to every such client).
        self.first_heard: dict[bytes, list[int]] = {}
        self.quiet_started = False
        self.arrived = 0  # clients connected, or done without connecting
        self.injected = False  # WSARecv/WSASend failures are injected (the injections feature)
        self.held_readers: list[_Client] = []  # readers that read nothing until every client has arrived
        #: stop_arrivals: the latecomers, until the stop request is planned (they arrive around it).
        self.latecomers: list[_Client] = []

    def lurk(self, c: _Lurker) -> None:
        """A lurker has joined: it waits until every client that talks is done (or staying)."""
        if self.talkers_left:
            self.lurking.append(c)
        else:
            c.stop_lurking()

    def talker_settled(self, c: _Client) -> None:
        """A client that talks is done or staying (once each): the lurkers stop waiting once all are."""
        if c.settled or c.plan.lurk or c.plan.hang or c.plan.at_stop:
            return
        c.settled = True
        self.talkers_left -= 1
        if not self.talkers_left:
            waiting, self.lurking = self.lurking, []
            for x in waiting:
                x.stop_lurking()

    def request_stop(self, _: object = None) -> None:
        """The stop mid-run: ask the server to stop while clients talk (and
        arrive); it must return within STOP_LIMIT_NS."""
        if self.stopping:
            return
        self.stopping = True
        ws = self.ws
        self.report.stop_at_ns = ws.now_ns
        for c in self.clients:
            if c.quiet_at_stop():
                c.sent_at_stop = c.sent_bytes
        ws.call_at(ws.now_ns + STOP_LIMIT_NS, self._stop_late)
        self.server.request_stop(signal=ws.signal_event)

    def _stop_late(self, _: object) -> None:
        """Runs only while the server has not returned: an error; then the stop
        is asked for again (a server that lost the request may still end, and
        the report with it)."""
        self.error(f"the server did not stop within {STOP_LIMIT_NS / 1e9:g} s of the stop request (at "
                   f"{(self.report.stop_at_ns or 0) / 1e9:.6f} s); {len(self.ws.pending_operations())} operations "
                   "in flight")
        for c in self.clients:  # (hung readers give up, reset: a server waiting for them may end)
            if c.plan.hang and c.state != _DONE:
                c.reset_if_connected()
        self.server.request_stop(signal=self.ws.signal_event)

    def error(self, msg: str) -> None:
        self.report.error_count += 1
        if len(self.report.errors) < 20:
            self.report.errors.append(msg)

    def joined(self, c: _Client) -> None:
        """A chat client read its welcome (an echo client connected): start it,
        or (barrier) hold it until all have."""
        if c.welcome_ns < 0:  # echo: joined when connected
            c.welcome_ns = self.ws.now_ns
        self.heap.freeze()  # what the world has now (this client's socket, peer, buffers...) is long-lived
        if not self.barrier:
            c.start_sending()
            return
        self.at_barrier.append(c)
        self.release_barrier()

    def release_barrier(self) -> None:
        if self.barrier and len(self.at_barrier) + self.gave_up == len(self.clients):
            waiting, self.at_barrier = self.at_barrier, []
            for c in waiting:
                c.start_sending()

    # The fake's timer heap is kept small: one timer for the next arrival and
    # one for the earliest deadline, not one of each per client (both come in
    # time order: arrivals sorted, deadlines a constant after them).

    def start_arrivals(self) -> None:
        for c in self.clients:
            c.address = (self.host, self.port)
        order = sorted([c for c in self.clients if not (c.plan.after_wave or c.plan.at_stop)],
                       key=lambda c: (c.arrival_ns, c.index))
        self._arrivals = deque(order)
        if order:
            self.ws.call_at(order[0].arrival_ns, self._arrive)
        self._after_wave = [c for c in self.clients if c.plan.after_wave]
        if self._after_wave:
            start = order[0].arrival_ns if order else self.ws.now_ns
            self.ws.call_at(start + _MS // 2, self._wave_ended, start + WAVE_LIMIT_NS)

    def _wave_ended(self, latest: int) -> None:
        """full_groups: once the server has read every ender's FIN (polled every 0.5 ms; ``latest``
        at the latest), the clients after the wave arrive, each at its offset 1 ms after that."""
        now = self.ws.now_ns
        ended = all(c.state == _DONE or c.peer is not None and c.peer.fin_read
                    for c in self.clients if c.plan.hold_reads)
        if not ended and now < latest:
            self.ws.call_at(now + _MS // 2, self._wave_ended, latest)
            return
        self._arrive_from(now + _MS, self._after_wave)
        self._after_wave = []

    def _arrive_from(self, start: int, clients: list[_Client]) -> None:
        """``clients`` arrive, each at its plan's offset from ``start``."""
        for c in clients:
            c.arrival_ns = max(self.ws.now_ns, start + c.plan.arrival_ns)
        idle = not self._arrivals
        self._arrivals = deque(sorted([*self._arrivals, *clients], key=lambda c: (c.arrival_ns, c.index)))
        if idle:
            self.ws.call_at(self._arrivals[0].arrival_ns, self._arrive)

    def stop_at(self, at: int) -> None:
        """Ask the server to stop at ``at`` (the stop mid-run), the latecomers (stop_arrivals) arriving
        around that moment."""
        if self.latecomers:
            self._arrive_from(at, self.latecomers)
            self.latecomers = []
        self.ws.call_at(at, self.request_stop)

    def _arrive(self, _: object) -> None:
        q = self._arrivals
        now = self.ws.now_ns
        while q and q[0].arrival_ns <= now:
            q.popleft().arrive()
        if q:
            self.ws.call_at(q[0].arrival_ns, self._arrive)

    def watch_deadline(self, c: _Client) -> None:
        self._deadlines.append((self.ws.now_ns + CLIENT_DEADLINE_NS, c))
        if len(self._deadlines) == 1:
            self.ws.call_at(self._deadlines[0][0], self._check_deadlines)

    def _check_deadlines(self, _: object) -> None:
        q = self._deadlines
        now = self.ws.now_ns
        while q and (q[0][0] <= now or q[0][1].state == _DONE):
            _, c = q.popleft()
            c.deadline_passed()
        if q:
            self.ws.call_at(q[0][0], self._check_deadlines)

    def count_owed(self) -> None:
        """Barrier chat: how many other clients each client waits for before it
        leaves (see :meth:`_Client.leave_if_heard_all`): every other client that does
        not plan to reset and is owed to send a line."""
        if not (self.barrier and self.mode is Mode.CHAT):
            return
        senders = [c.reset_at < 0 and c.owed > 0 for c in self.clients]
        total = sum(senders)
        for c, counted in zip(self.clients, senders, strict=True):
            c.waiting_for = total - counted

    def note_arrived(self, c: _Client) -> None:
        """``c`` connected, or is done without connecting (once each): once every client has, the
        readers held until then (full_groups' enders) read on."""
        if c.arrived:
            return
        c.arrived = True
        self.arrived += 1
        if self.arrived == len(self.clients):
            held, self.held_readers = self.held_readers, []
            for x in held:
                if x.peer is not None and x.state != _DONE:
                    x.changed(x.peer)

    def client_done(self, c: _Client) -> None:
        self.note_arrived(c)
        self.done += 1
        if c.plan.hang:
            self.hanging -= 1
        else:
            self.talker_settled(c)
        if self.stop_when_settled and not c.plan.stay_ns and not c.plan.stuck and not c.plan.at_stop:
            self.stop_when_settled -= 1
            if not self.stop_when_settled and not self.stopping:  # only those that stay are left: stop now
                self.stop_at(self.ws.now_ns + (STOP_LEAD_NS if self.latecomers else _MS))
        if c.welcome_ns < 0:
            self.gave_up += 1
        if self.barrier and self.mode is Mode.CHAT and c.reset_at < 0 and c.owed and c.ended_as != _Ending.SERVED:
            # Ended before the server had all its lines (cut off, dropped, failed, given up): only the
            # lines the server took from it until then are owed, and they are already queued for every
            # client still a member (see check_chat).  Nobody waits for it any longer.
            for x in self.clients:
                if x is not c and len(x.heard.get(c.name, ())) < c.owed:
                    x.waiting_for -= 1
                    x.leave_if_heard_all()
        self.release_barrier()
        if self.progress is not None:
            self.progress(self.done, len(self.clients))
        if (self.done + self.hanging + len(self.latecomers) == len(self.clients) and not self.stopping
                and not self.quiet_started):
            self.quiet_started = True
            if self.quiet_ns:
                self.ws.call_at(self.ws.now_ns + self.quiet_ns, self._quiet_over)
            else:
                self.server.request_stop(signal=self.ws.signal_event)

    def _quiet_over(self, _: object) -> None:
        """Swarm traffic: every client is done and a quiet second has passed:
        the server must have closed the connection of every client that is
        gone (a receive of 0 bytes or a failed one is the client's exit); then
        the stop."""
        if self.stopping:
            return
        for c in self.clients:
            peer = c.peer
            if peer is None or not peer.closed:
                continue
            handle = self.ws.held_socket(peer)
            if handle is not None:
                how = "reset" if peer.was_reset else "closed"
                self.error(f"client {c.index} {c.name.decode()}: gone (it {how}), but {self.quiet_ns / 1e9:g} s "
                           f"later the server still holds its socket {handle:#x}")
        if self.latecomers:  # (stop_arrivals)
            self.stop_at(self.ws.now_ns + STOP_LEAD_NS)
        elif self.hanging:  # hung readers still connected: a stop with clients connected, within its limit
            self.request_stop()
        else:
            self.server.request_stop(signal=self.ws.signal_event)


# Client states: those of every scripted client (waiting, connecting, done) and these.
_JOINING, _READY, _ACTIVE = ("joining", "ready", "active")


class _Ending(enum.Enum):
    """How a client ended (``_Client.ended_as``; None while it has not)."""

    SERVED = "served"  # a graceful end: the server's FIN after every reply owed
    CUT_OFF = "cut off"  # by the server, as due (a slow reader, a line over the limit)
    DROPPED = "dropped"  # by the server, as an injected WSARecv/WSASend failure allows
    STOPPED = "stopped"  # by the server, asked to stop
    TIMED_OUT = "timed out"  # by the server, idle for its idle time-out, as due
    RESET = "reset"  # by the client's plan (an abortive close)
    FAILED = "failed"  # an error was reported


_TEXT = b"abcdefghijklmnopqrstuvwxyz ,.!?0123456789"
#: Random bytes -> printable text, and -> any byte but a newline (by translate:
#: one C call per line instead of one Python call per character).
_TEXT_TABLE = bytes(_TEXT[i % len(_TEXT)] for i in range(256))
_NL_FREE_TABLE = bytes(range(256)).replace(b"\n", b"\x0b")


def _randint(rng: random.Random, lo: int, hi: int) -> int:
    """``rng.randint(lo, hi)``, several times faster (one ``random()`` call); the
    bias, below 2**-40 for these ranges, does not matter to a test plan."""
    return lo + int(rng.random() * (hi - lo + 1))


def client_script(rng: random.Random, messages: int) -> tuple[list[bytes], list[bytes]]:
    """A client's ``messages`` lines (without newlines) and the chunks it sends
    them in (split at random, any byte)."""
    # Line lengths (mostly short, sometimes long) and alphabets first, then all
    # their bytes in one draw: one randbytes call per client, not per line.
    shapes: list[tuple[int, bytes]] = []
    for _ in range(messages):
        r = rng.random()
        n = _randint(rng, 0, 12) if r < 0.4 else _randint(rng, 13, 120) if r < 0.9 else _randint(rng, 121, 3000)
        shapes.append((n, _TEXT_TABLE if rng.random() < 0.5 else _NL_FREE_TABLE))
    raw = rng.randbytes(sum([n for n, _ in shapes]))
    lines: list[bytes] = []
    pos = 0
    for n, table in shapes:
        lines.append(raw[pos:pos + n].translate(table))
        pos += n
    stream = b"\n".join(lines) + b"\n" if lines else b""
    chunks: list[bytes] = []
    pos = 0
    while pos < len(stream):
        r = rng.random()
        size = _randint(rng, 1, 8) if r < 0.3 else _randint(rng, 9, 200) if r < 0.8 else _randint(rng, 200, 5000)
        chunks.append(stream[pos:pos + size])
        pos += size
    return lines, chunks


@dataclass(slots=True)
class ClientPlan:
    """What one simulated client will do, drawn before the run: when it arrives,
    its lines, the chunks it sends them in and the pause after each chunk, and
    (``reset_at`` >= 0) the chunk before which it resets instead (the number of
    chunks: after the last).  Benchmarks replay the same plan against real
    servers."""

    arrival_ns: int
    lines: list[bytes]
    chunks: list[bytes]
    pauses_ns: list[int]
    reset_at: int
    #: Swarm traffic (see :data:`FEATURES`): the stream ends with ``tail``, a
    #: last line without its newline, then FIN; ``half_close``: FIN right after
    #: the last chunk, replies still owed; the client reads nothing before
    #: ``read_pause_ns`` after it connects; ``lines[too_long]`` (>= 0) is over
    #: the line limit and the last line sent: the client expects the error line
    #: and the server's FIN.
    tail: bytes = b""
    half_close: bool = False
    read_pause_ns: int = 0
    too_long: int = -1
    #: ``stay_ns``: once served, the client stays connected this long before it
    #: leaves (a stop finds it connected); ``reset_delay_ns``: a reset planned
    #: after the last chunk comes this long after it (a stuck reader).
    stay_ns: int = 0
    reset_delay_ns: int = 0
    #: A stuck reader: once it has joined (chat: read its welcome) it reads nothing more.
    stuck: bool = False
    #: ``lurk``: a silent listener (chat) or idle client (echo): it sends nothing and stays connected
    #: until every client that talks has ended (or is staying), then (chat) until it has heard every line
    #: it is owed by those served; ``hang``: a stuck reader that never ends by itself (no reset, no
    #: FIN): only the server ends it, cut off or closed by the stop; ``read_bytes`` (> 0): a slow reader,
    #: at most that many bytes a read, one read every ``read_every_ns``; ``pipeline`` (> 0, echo): it
    #: sends its next chunk only while at most that many bytes of its replies are unread.
    lurk: bool = False
    hang: bool = False
    read_bytes: int = 0
    read_every_ns: int = 0
    pipeline: int = 0
    #: ``hold_reads`` (full_groups' enders): once joined it reads nothing until every client has arrived
    #: (connected, or done without connecting).
    hold_reads: bool = False
    #: ``after_wave`` (full_groups, the clients not in the wave): ``arrival_ns`` counts from the moment
    #: the server has read every ender's FIN (or 1 s after the first arrival, at the latest).
    after_wave: bool = False
    #: ``idle`` (idle_timeout's idlers): once served it stays connected, reading, until the server closes
    #: it for its idle time-out.
    idle: bool = False
    #: ``talk`` (idle_talkers' talkers, ``idle`` too): watched by the idle time-out from the moment it is
    #: served (its first receive), not only once it has sent everything.
    talk: bool = False
    #: ``at_stop`` (stop_arrivals' latecomers): it arrives at ``arrival_ns`` from the server's stop
    #: request (may be negative: before it), which comes once every other client is done.
    at_stop: bool = False
    #: ``deaf_stop_ns`` (> 0, deaf_drains' client): the server is asked to stop this long after its FIN.
    deaf_stop_ns: int = 0


#: The swarm's traffic features (swarm testing, Groce et al., ISSTA 2012): each
#: run switches a subset on, drawn from its seed, and its clients draw within
#: them.  Sizes: lines just under, at and over ``max_line``; single sends of up
#: to 320 KiB; sends of 1 to 3 bytes; empty and one-byte lines.  Flow control:
#: a window of 256 bytes, 2 KiB or 16 KiB; readers that pause.  Endings: FIN right after
#: the last send, replies still queued; a last line without its newline; resets
#: at any point.  Load: every client at once; tight limits (when the run's
#: limits are not given).  Faults: WSAENOBUFS injected into WSARecv and
#: WSASend at random moments (each lets the server drop one client).
FEATURES = ("long_lines", "big_sends", "small_sends", "empty_lines", "small_window", "paused_readers",
            "half_close", "unterminated", "resets", "crowd", "tight_limits", "injections",
            "line_cuts", "stuck_readers", "early_stop", "accept_faults", "few_clients",
            "lurkers", "slow_readers", "hung_readers", "back_pressure", "full_groups",
            "accepts", "accept_bursts", "idle_timeout", "stop_arrivals", "piped", "idle_talkers",
            "hangup_edges", "deaf_drains", "queue_edges")
#: The features added last (line_cuts: sends cut right before, at and after
#: newlines; stuck_readers: clients that stop reading for good and reset 20 to
#: 200 ms after their last send, with output limits a stuck reader reaches;
#: early_stop: a third of the clients stay connected 2 s once served, and the server is asked to stop
#: 1 ms after every other client but the stuck readers is done, so that the stop finds them connected,
#: idle or holding its sends) draw from
#: a random source of their own, so the runs of seeds without them are what they were.
LATE_FEATURES = ("line_cuts", "stuck_readers", "early_stop", "accept_faults", "few_clients",
                 "lurkers", "slow_readers", "hung_readers")
#: The last two, accept_faults and few_clients, are drawn in ``simulate``, each from a random source of
#: its own: accept_faults
#: (WSAENOBUFS injected into AcceptEx in every phase of the run: before the first client, while they
#: arrive, while the server is full, as they leave; each injection fails 1 to 3 posts, and the server
#: must retry: no client may be lost for it) and few_clients (unless the limits are given or
#: tight_limits draws them, a client limit of 1, 2 or 3, at least 2 in chat: a server that is full most
#: of the time, its clients waiting in the listen backlog while each close frees the only place).
#: The three after them (:func:`_idle_and_slow`), each from a random source of its own too:
#:
#: * lurkers: a share of the clients (LURKER_SHARES) send nothing and stay connected until every client
#:   that talks is done or staying: chat's silent members, echo's idle connections; half the runs they come
#:   before most of those who talk, the others at any time.  The others talk at a person's pace (a line,
#:   then often a pause of 5 to 50 ms), so that a server thread whose clients are all idle sleeps while
#:   others talk.  In chat no client that reads all the time may hear nothing for 15 ms while a line that
#:   another client has heard is queued for it (:meth:`_Witness.watch`), and a lurker hears every line
#:   owed by each sender served before it leaves (:meth:`_Lurker.stop_lurking`).
#: * slow_readers: one client in twelve reads at most 1, 4 or 16 KiB at a time, a read every 0.2 to 2 ms.
#:   In echo it sends 3 to 8 times max_queued (at most 4 MiB) in whole lines of up to an eighth of it, and
#:   holds its next send while the replies it has not read would be over 15/16 of max_queued: its output
#:   stays backed up, under the limit, over many of the server's 64 KiB sends; half of them half-close
#:   after their last line.  Unless given, max_queued 256 or 512 KiB and a window of 16 or 64 KiB.
#: * hung_readers: one to three clients stop reading once joined and never end by themselves (a frozen
#:   process): the server cuts them off (max_queued) or closes them at the stop, which comes, as for the
#:   others, a quiet second after every other client is done, and must return within 1 s.  In echo each
#:   sends more than the window, so that a send to it is in flight when the stop comes.
#:
#: Lurkers and hung readers hold their places to the end: together at most max_clients - 1 when the
#: clients do not all fit at once.
#: The next two, back_pressure (see BACK_PRESSURE_MARKS; drawn in ``simulate``: it changes the server, not
#: the plans) and full_groups (:func:`_full_groups`: a wave of an events-model thread group's worth of
#: clients, most of them lurkers, some of them holding their places ended), each from a random source of
#: its own too.
#: The next one, accepts (drawn in ``simulate``, from a random source of its own; it changes the server,
#: not the plans): the server keeps one of ACCEPTS_DRAWN AcceptEx calls outstanding at once, as ``ovserver
#: serve`` does (``--accepts``, default 16), where the others keep the lecture notes' one.
#: The last one, accept_bursts (:func:`_accept_bursts`, and the fake's settings drawn in ``simulate``, each
#: from a random source of its own): the last clients to arrive come together, microseconds apart, on a
#: fake with narrow latencies and background progress at most calls, so that one connects while the
#: server handles the accept before it and no arrival follows: a server keeping several AcceptEx
#: outstanding on one event must signal again the completion that a post erased (found so:
#: tests/mutants/accept_mutants.py).
LURKER_SHARES = (0.3, 0.6, 0.9)
#: The last one, idle_timeout (drawn in ``simulate`` and :func:`_idlers`, each from a random source of its own): unless
#: back-pressure is on (a connection held back is not idle: its clock stops; but see BP_IDLE_ODDS), the server closes a
#: client idle for one of IDLE_TIMEOUTS_MS (``ovserver serve --idle-timeout-ms``; no line completed and no send
#: completed for that long), and one to three of IDLERS (echo: plain clients, once served; chat: silent members) stay
#: connected, reading, until the server closes them: each must be closed within the time-out and IDLE_LATE_NS of the
#: last byte it read (:meth:`_Client._idle_watch`: a server whose thread watching the deadlines sleeps through them
#: fails).  Any other client the server closes is timed out as due when it has been idle that long less IDLE_EARLY_NS by
#: its own account (:meth:`_Client._timed_out_as_due`).
IDLE_TIMEOUTS_MS = (100, 250, 1000)
#: ... but not with these: a server with deadlines wakes when the first one comes, and so finds an
#: AcceptEx completion whose signal it lost, or a post it failed to retry, which these features are
#: there to catch (measured on seeds 0-7: accept-error-stops-accepting, no-accept-resignal and
#: resume-before-freeing each passed the one seed that found them once it drew an idle time-out).
IDLE_MASKS = ("accept_faults", "accept_bursts")
#: ... and with back-pressure (back_pressure, see BACK_PRESSURE_MARKS) in BP_IDLE_ODDS of the runs that draw
#: both (from a random source of its own; the others have no idle time-out, as before): the time-out's clock
#: of a connection held back stops, and starts again when it is read on (ovserver/_core.py, "Idle clients").
#: In echo, unless idle_talkers draws its talkers, the slowloris (IDLE_SLOWLORIS) gives way to a held-back idler
#: (:func:`_held_back_idler`, from a random source of its own too; when max_queued holds the mark and two receives):
#: the last client to arrive that reads all the time and ends by itself sends past its window, a send, the mark
#: and two receives at once, so that the server holds it back, reads nothing for the time-out and
#: HELD_IDLER_EXTRA_NS more (held back across an idle check, while the others' idle deadlines pass), then reads
#: everything and stays, an idler: once idle it must be closed within the time-out and IDLE_LATE_NS (a server that
#: reads it on without its idle deadline keeps it: resume-keeps-idle-clock, found so on seeds 582 and 3009; a
#: slowloris' lines, checked every time-out, would re-arm it).
BP_IDLE_ODDS = 0.5
HELD_IDLER_EXTRA_NS = (200 * _MS, 500 * _MS)
#: The last one, stop_arrivals (:func:`_stop_arrivals`, from a random source of its own): arrivals during
#: a stop (issue 10's load).  One to forty latecomers, clients besides those asked for (the report counts
#: them; the others' plans are unchanged), each with one to three plain lines, arrive around the moment the
#: server is asked to stop, which comes, as ever, once every other client is done (a quiet second
#: after, or with early_stop STOP_LEAD_NS after), the first from STOP_ARRIVAL_EARLY_NS before it to
#: a tenth of that after it, the others (in half the runs) at the same instant or (in the others) each
#: 0 to BURST_GAP_NS after the one before (a pool of connections opened at once, or clients that
#: retry as the server goes down).  Once served, they stay connected (as early_stop's stayers:
#: pooled connections).  A latecomer accepted before the stop is served until the stop closes
#: it; one that comes after it is refused or closed by the stop: as due.  The server must still stop
#: within its second, close every socket it accepted (no leak at WSACleanup) and give up on no
#: operation.
STOP_ARRIVALS = (1, 40)
STOP_ARRIVAL_EARLY_NS = 500_000
#: With latecomers, the stop is asked for this long after every other client is done (early_stop: 1 ms
#: without them), so that the first of them may come STOP_ARRIVAL_EARLY_NS before it.
STOP_LEAD_NS = 2_000_000
#: The last one, piped (:func:`_piped`, and the output limit drawn in ``simulate``, each from a random
#: source of its own): one to three of PIPED clients are ``nc host port < file``: once connected they
#: send their lines and a file of short text lines (of up to 120 bytes and max_line; in echo the window
#: and PIPED_FILE_BYTES more, so that its replies back up; in chat an eighth of PIPED_FILE_BYTES: every
#: member gets it), in sends of 4 to 64 KiB without pauses, then their FIN at once (at EOF, as ``nc -N`` does),
#: and read nothing for 1 to 30 ms (output going to a pipe read late).  In half of them the file's last
#: line is over the line limit (a stray binary or a file with no newlines): the error line and the
#: server's FIN are owed behind replies that fill the window.  In echo, unless the limits are given, and
#: without slow_readers (whose output stays backed up under the limit), half the runs have an output limit of
#: PIPED_MAX_QUEUED (or tight_limits' or stuck_readers' if lower), under one receive's worth
#: (ServerConfig.recv_size, 16 KiB): a piped client is cut off within one receive, before any send to it
#: is posted, and must read a reset, not a FIN.
PIPED = (1, 3)
#: The last one, idle_talkers (:func:`_idle_talkers`, from a random source of its own; only in a run
#: whose server has an idle time-out T, see IDLE_TIMEOUTS_MS): one to three of IDLE_TALKERS plain clients
#: (none with another feature's traffic) talk across the time-out's notion of activity (the documented
#: rule: a completed line or a completed send restarts the clock, a dribble of bytes without a newline
#: does not), then stay, reading, as idlers do, until the server closes them.  Each one's lines come
#: just under T apart (T less IDLE_EARLY_NS and 5 to 15 ms: it must stay), and it is watched from the
#: moment it is served (:meth:`_Client._idle_watch`, which counts its lines too): once it goes quiet
#: (just over T) it must be closed.  A third of them (``newline``) send each line's newline alone, 1 to
#: 5 ms after its bytes, so that it arrives in a receive of its own; a third (``slowloris``) send half
#: their lines so, then dribble a line a byte at a time, T/4 apart (under T each), for longer than
#: T and IDLE_LATE_NS together: the server must close them mid-line, T after their last line (or send
#: completed), and the watch fails one that keeps them.  In chat, once the others are done, nothing is
#: sent to them: their lines are their only activity.
IDLE_TALKERS = (1, 3)
#: With the idle time-out T but without idle_talkers (:func:`_idle_talkers` with ``slowloris``, from a random
#: source of its own; the runs that do not draw the time-out plan what they planned), IDLE_SLOWLORIS plain client
#: is an idle talker all the same, a slowloris: its lines just under T apart, every other one's newline alone in a
#: receive of its own, then a line a byte at a time for longer than T and IDLE_LATE_NS.  In chat, once the
#: others are done, its lines are its only activity (none of its newlines at the end of a receive may be missed,
#: nor one at its start, nor its lines for want of a completed send); in echo its replies keep it, its dribble
#: must not.  Its checks: an idler or idle talker is dropped only by a failure injected into its own
#: connection (:meth:`FakeWinsock.injected_failure_on`; any other failure's allowance would hide a server that
#: times it out early), and an echo one reset at its time-out must have been owed something
#: (:meth:`_Client._reset_owed_nothing`).  (simidle34: finds idle-clock-on-send-only, idle-newline-from-index-one,
#: idle-newline-off-by-one, idle-clock-on-partial-data, idle-clock-any-bytes and idle-close-abortive on seed 5.)
IDLE_SLOWLORIS = 1
#: The last two, hangup_edges and deaf_drains (:func:`_hangup_edges`, :func:`_deaf_drains`, each from a random
#: source of its own; echo only: a chat member's sends wait for its welcome, which a client that reads nothing
#: does not read), the shapes of ``fakewinsock.testing.scenarios()``' swarm of the same names:
#:
#: * hangup_edges (with a line limit of at most HANGUP_MAX_LINE): one plain client ends with a line over the
#:   limit in two sends, the first ending exactly at byte max_line + 1 of the line (the receive that finds it
#:   too long ends there), the second HANGUP_GAPS_NS later with max_line bytes more (its newline the last), or
#:   (HANGUP_MORE) one fewer or one more, and reads nothing until HANGUP_READ_LATE_NS after its last send (so
#:   that it is still sending when the server hangs it up).  It is owed its replies, the error line and the
#:   server's FIN; the server may reset it only once it sent more than max_line bytes after that receive, so
#:   only with one more (its line is over twice max_line: see :meth:`_Client._cut_off_as_due`).
#: * deaf_drains: one plain client (the last to arrive) sends its lines and lines of DEAF_LINE bytes (max_line if
#:   less) until it is owed more than the window holds (not much more: a server that stops reading a client
#:   whose replies back up must still take its FIN), half-closes right behind its last send and reads nothing
#:   for DEAF_FOR_NS; the server is asked to stop DEAF_STOPS_NS after it has taken that FIN (if it does in time
#:   for the stop's second to end within the deafness; not while the client waits to be served): it must close
#:   that connection, which is only draining its output, and return within the stop's second, as ever (a
#:   closed or reset deaf client is stopped as due).
#: The last one, queue_edges (:func:`_queue_edges`, from a random source of its own; echo only, with the output
#: limit under QUEUE_EDGE_MAX; not with QUEUE_EDGE_EXCUSES, each of which excuses the cut-off it is for): the edge of
#: max_queued, as ``fakewinsock.testing.scenarios()``' backpressure draws it.  One plain client sends, in one
#: burst without pauses and nothing more, lines of max_line bytes (or QUEUE_EDGE_LINE, if less), as many as take
#: the server's queue past max_queued with the last: the lines in the server's send in flight and on their way
#: (a window below a line: the one line its first bytes are of; a wider one: its whole lines and as many again
#: in the send of what one receive of a window's worth echoes), max_queued's whole lines, then the line that
#: crosses it; and reads nothing for QUEUE_EDGE_PAUSE_NS.  The server must cut it off at its last line (the
#: paused reader's check, :meth:`_Client._overdue_cut_off`, sees a server that compares the queue before the
#: message with the limit, which would cut it off only at a next line).
QUEUE_EDGE_MAX = 2 * 1024 * 1024
#: (deaf_drains: its stop comes during the edge reader's pause; injections: a failed WSARecv or WSASend lets the
#: server drop a client; back_pressure: a server over its mark may hold a send back, and the cut-off is not required)
QUEUE_EDGE_EXCUSES = ("deaf_drains", "injections", "back_pressure")
QUEUE_EDGE_LINE = 64 * 1024
QUEUE_EDGE_PAUSE_NS = 300 * _MS
#: With queue_edges, where the line limit holds a line of ``max_queued`` bytes with its newline
#: (:func:`_queue_exact`, from a random source of its own; the runs without it plan what they planned), the
#: exact edge too: one more plain client sends one line, ``max_queued`` bytes with its newline, and nothing
#: else (in one send, or in sends of QUEUE_EXACT_SENDS' sizes), reading all the time.  Owed nothing before it,
#: that line is one message of exactly ``max_queued`` bytes for the server's empty queue: the limit cuts a
#: client off only when its queue would *exceed* ``max_queued`` (Hub._enqueue), and its reset is not due
#: (:meth:`_Client._cut_off_as_due` counts the error line only for a client that may be owed one): a server
#: that cuts off at ``>=`` fails (queue-limit-off-by-one).
QUEUE_EXACT_SENDS = ((1 << 20, 1 << 20), (1, 4096), (1024, 16 * 1024))
HANGUP_MAX_LINE = 64 * 1024
HANGUP_GAPS_NS = (20 * _MS, 50 * _MS)
HANGUP_MORE = (0, 0, -1, 1)
HANGUP_READ_LATE_NS = 100 * _MS
DEAF_LINE = 3000
DEAF_FOR_NS = 3_000 * _MS
DEAF_STOPS_NS = (3 * _MS, 20 * _MS, 100 * _MS)
PIPED_FILE_BYTES = (8 * 1024, 64 * 1024)
PIPED_MAX_QUEUED = (4096, 8192, 12288)
IDLERS = (1, 3)
#: The server's clock is GetTickCount64's (steps of 15.625 ms): a connection is closed up to a step
#: early or late against the true time; IDLE_LATE_NS allows two steps and 50 ms for the server's
#: thread to get round to it, IDLE_EARLY_NS two steps.  IDLE_READ_LAG_NS: how long after the server's
#: send completed a client that reads all the time may read its last bytes (far more than the fake's
#: latencies).
IDLE_LATE_NS = 2 * 15_625_000 + 50 * 1_000_000
#: A paused reader's max_queued check (_Client._overdue_cut_off) counts the lines whose bytes the server took
#: at least this long before the pause ends: time to handle them (the fake completes a receive within 50 us).
TAKEN_NS = _MS
#: At a stop, an echo client that has read every reply and nothing for this long must read a FIN
#: (_Client.quiet_at_stop).
QUIET_STOP_NS = _MS
IDLE_EARLY_NS = 2 * 15_625_000
IDLE_READ_LAG_NS = 20 * 1_000_000
#: back_pressure (drawn in ``simulate``, from a random source of its own; it changes the server, not the
#: plans): the server runs with back-pressure, as ``ovserver serve`` does by default in echo: there with
#: serve's mark, in chat with one of these (serve's ``--high-water``); the stall time-out is serve's default
#: or a shorter one, so that runs reach it (a hung reader stays over the mark until the stop).
BACK_PRESSURE_MARKS = (4096, 16384, 64 * 1024)
STALL_TIMEOUTS_MS = (DEFAULT_STALL_TIMEOUT_MS, 50, 200, 1000)
ACCEPT_FAULTS = (0, 3)  # injections besides the three phases' (start, arrivals, after the last arrival)
FEW_CLIENTS = (1, 1, 1, 2, 3)
ACCEPTS_DRAWN = (DEFAULT_ACCEPTS, 2, 4)
#: accept_bursts (:func:`_accept_bursts`; the fake's settings drawn in ``simulate``): how many clients
#: arrive last together, how far apart, and the fake's (latency, completion_delay, background) then.
BURST_CLIENTS = (2, 8)
BURST_GAP_NS = 10_000
BURST_FAKES = (((20_000, 20_000), (0, 0), 1.0), ((20_000, 21_000), (0, 1_000), 1.0),
               ((20_000, 20_000), (0, 0), 0.5))
#: Swarm runs have a Winsock-call budget (FakeConfig.max_calls, unless fake_config sets one): this many
#: calls, plus CALLS_PER_CLIENT per client and more per line and byte (_call_budget); a server that
#: spins (a wait that returns at once because an event is never reset) exceeds it, one that waits does
#: not come near it (measured: ovserver's three models used at most a fifth of it, 100 clients x 10 lines,
#: seeds 0-23).
CALL_BUDGET = 100_000
CALLS_PER_CLIENT = 2_000
CALLS_PER_LINE = 20
#: ... and CALLS_PER_LINE per BUDGET_UNIT bytes sent or received (the smallest window simulate draws).
BUDGET_UNIT = 256


def _call_budget(plans: list[ClientPlan], chat: bool) -> int:
    """The Winsock-call budget of a swarm run with these clients (see CALL_BUDGET): in chat, every line
    and byte counts once for each client it may be sent to."""
    fan = len(plans) if chat else 1
    lines = sum(len(p.lines) for p in plans)
    sent = sum(len(c) for p in plans for c in p.chunks)
    return (CALL_BUDGET + CALLS_PER_CLIENT * len(plans) + CALLS_PER_LINE * lines * fan
            + CALLS_PER_LINE * (sent * (1 + fan) // BUDGET_UNIT))


def swarm_features(seed: int) -> tuple[str, ...]:
    """The features a swarm run with ``seed`` switches on (each with odds 1/2;
    never none)."""
    rng = random.Random(f"ovserver-sim:{seed}:features")
    on = tuple(f for f in FEATURES if rng.random() < 0.5)
    return on or (FEATURES[_randint(rng, 0, len(FEATURES) - 1)],)


def _swarm_plan(out: list[ClientPlan], seed: int, features: tuple[str, ...], limits: Limits,
                window_ns: int, window: int, chat: bool, idle_timeout_ms: int = 0) -> None:
    """Rework the plain plans ``out`` for the swarm ``features``, with a random
    source of its own (plain plans stay what they were)."""
    rng = random.Random(f"ovserver-sim:{seed}:swarm")
    f = set(features)
    long_lens = sorted({max(0, limits.max_line - 1), limits.max_line, limits.max_line + 1,
                        min(2 * limits.max_line, limits.max_line + 20_000)})
    crowd_ns = _randint(rng, 0, window_ns)
    # (a random source of its own: the runs of seeds without both features are what they were)
    endless = random.Random(f"ovserver-sim:{seed}:endless") if {"long_lines", "unterminated"} <= f else None
    for p in out:
        lines = p.lines
        if "empty_lines" in f:
            lines = [(b"" if rng.random() < 0.5 else b"e") if rng.random() < 0.3 else line for line in lines]
        big = "big_sends" in f and rng.random() < 0.1
        if big:
            lines = lines + [rng.randbytes(_randint(rng, 2_000, 40_000)).translate(_NL_FREE_TABLE)
                             for _ in range(_randint(rng, 1, 4))]
        if "long_lines" in f and rng.random() < 0.1:
            n = long_lens[_randint(rng, 0, len(long_lens) - 1)]
            k = _randint(rng, 0, len(lines))
            lines = lines[:k] + [rng.randbytes(n).translate(_TEXT_TABLE)] + lines[k:]
        k = _over_limit(lines, limits.max_line)
        if k >= 0:
            lines = lines[:k + 1]  # the client stops after it: it is hung up
            p.too_long = k
        stream = b"".join(line + b"\n" for line in lines)
        if endless is not None and p.too_long >= 0 and endless.random() < 0.5:
            # Its line over the limit is its last, unterminated: the server must notice it all the same
            # (more than max_line bytes buffered), also when it comes in one receive after a newline.
            stream = stream[:-1]
        if "unterminated" in f and p.too_long < 0 and rng.random() < 0.3:
            p.tail = rng.randbytes(_randint(rng, 1, 40)).translate(_NL_FREE_TABLE)
            stream += p.tail
        if lines is not p.lines or p.tail:
            size_lo, size_hi = 1, 5000
            if "small_sends" in f and len(stream) < 4096 and rng.random() < 0.5:
                size_lo, size_hi = 1, 3
            elif "big_sends" in f and rng.random() < 0.5:
                size_lo, size_hi = 8_000, 320 * 1024
            chunks = _cut(stream, rng, size_lo, size_hi)
            p.lines, p.chunks = lines, chunks
            p.pauses_ns = [0 if rng.random() < 0.5 else _randint(rng, 1, 300_000) for _ in chunks]
            if p.reset_at >= 0:
                p.reset_at = min(p.reset_at, len(chunks))
        elif "small_sends" in f and rng.random() < 0.3:
            p.chunks = [stream[i:i + 3] for i in range(0, len(stream), 3)]
            p.pauses_ns = [0] * len(p.chunks)
        if "resets" in f and p.reset_at < 0 and rng.random() < 0.2:
            # A third reset as soon as connected (while still in the listen backlog, in a crowd).
            p.reset_at = 0 if rng.random() < 0.33 else _randint(rng, 0, len(p.chunks))
        if "half_close" in f and rng.random() < 0.3 or p.tail:
            p.half_close = True
        if "paused_readers" in f and rng.random() < (0.7 if big else 0.3):  # a big sender that does not read
            p.read_pause_ns = _randint(rng, _MS, 30 * _MS)
        if "crowd" in f:
            p.arrival_ns = crowd_ns + _randint(rng, 0, _MS)
    if f.intersection(LATE_FEATURES):
        _late_features(out, seed, f, limits)
    if f.intersection(("lurkers", "slow_readers", "hung_readers")):
        _idle_and_slow(out, seed, f, limits, window, chat, window_ns)
    if "full_groups" in f:
        _full_groups(out, seed, limits, window, chat)
    if "accept_bursts" in f:
        _accept_bursts(out, seed)
    if _idle_drawn(f, limits, seed):
        _idlers(out, seed, chat)
    if "stop_arrivals" in f:
        _stop_arrivals(out, seed, limits.max_line)
    if "piped" in f:
        _piped(out, seed, limits.max_line, window, chat)
    if idle_timeout_ms and _idle_drawn(f, limits, seed):
        if "idle_talkers" in f:
            _idle_talkers(out, seed, idle_timeout_ms)
        elif _held_back_fits(limits, chat):  # (a random source of its own: see BP_IDLE_ODDS)
            _held_back_idler(out, seed, limits, window, idle_timeout_ms)
        else:  # (a random source of its own: see IDLE_SLOWLORIS)
            _idle_talkers(out, seed, idle_timeout_ms, slowloris=True)
    if "hangup_edges" in f and not chat and limits.max_line <= HANGUP_MAX_LINE:
        _hangup_edges(out, seed, limits.max_line)
    if "deaf_drains" in f and not chat:
        _deaf_drains(out, seed, window, limits.max_line)
    if "queue_edges" in f and not chat and not f.intersection(QUEUE_EDGE_EXCUSES):
        _queue_edges(out, seed, window, limits)
        if limits.max_queued - 1 <= limits.max_line:  # (a random source of its own: see QUEUE_EXACT_SENDS)
            _queue_exact(out, seed, limits)


def _shape_pool(out: list[ClientPlan]) -> list[ClientPlan]:
    """The plain clients a shape may take (no other feature's traffic, no lurker, idler or latecomer)."""
    return [p for p in out if not (_special(p) or p.lurk or p.idle or p.at_stop or p.hold_reads or p.pipeline
                                   or p.after_wave or p.deaf_stop_ns)]


def _hangup_edges(out: list[ClientPlan], seed: int, max_line: int) -> None:
    """hangup_edges (see HANGUP_MAX_LINE; from a random source of its own): one plain client ends with a line
    over ``max_line`` in two sends, the first ending at its byte max_line + 1."""
    rng = random.Random(f"ovserver-sim:{seed}:hangup-edges")
    pool = _shape_pool(out)
    if not pool:
        return
    p = pool[_randint(rng, 0, len(pool) - 1)]
    more = rng.choice(HANGUP_MORE)
    gap = rng.choice(HANGUP_GAPS_NS)
    line = rng.randbytes(2 * max_line + more).translate(_TEXT_TABLE)
    p.too_long = len(p.lines)
    p.lines = [*p.lines, line]
    p.chunks = [*p.chunks, line[:max_line + 1], line[max_line + 1:] + b"\n"]
    p.pauses_ns = [*p.pauses_ns, gap, 0]
    p.read_pause_ns = sum(p.pauses_ns) + HANGUP_READ_LATE_NS


def _deaf_drains(out: list[ClientPlan], seed: int, window: int, max_line: int) -> None:
    """deaf_drains (see DEAF_LINE; from a random source of its own): the last plain client to arrive half-closes
    owed more than ``window``, reads nothing for DEAF_FOR_NS, and a stop follows its FIN."""
    rng = random.Random(f"ovserver-sim:{seed}:deaf-drains")
    pool = _shape_pool(out)
    if not pool:
        return
    p = max(pool, key=lambda q: q.arrival_ns)
    lines = list(p.lines)
    owed = sum(len(line) + 1 for line in lines)
    size = min(DEAF_LINE, max_line)
    while owed <= window:
        lines.append(rng.randbytes(size).translate(_TEXT_TABLE))
        owed += size + 1
    _restream(p, rng, lines, 1024, 16 * 1024)
    p.half_close = True
    p.read_pause_ns = sum(p.pauses_ns) + DEAF_FOR_NS
    p.deaf_stop_ns = rng.choice(DEAF_STOPS_NS)


def _queue_edges(out: list[ClientPlan], seed: int, window: int, limits: Limits) -> None:
    """queue_edges (see QUEUE_EDGE_MAX; from a random source of its own): one plain client sends lines of max_line
    bytes in one burst until the last takes the server's queue past max_queued, and reads nothing meanwhile."""
    rng = random.Random(f"ovserver-sim:{seed}:queue-edges")
    pool = _shape_pool(out)
    size = min(limits.max_line, QUEUE_EDGE_LINE)
    line = size + 1
    count = window // line + max(1, min(window, ServerConfig().recv_size) // line) + limits.max_queued // line + 1
    if not pool or count * line > QUEUE_EDGE_MAX:
        return
    p = pool[_randint(rng, 0, len(pool) - 1)]
    _restream(p, rng, [rng.randbytes(size).translate(_TEXT_TABLE) for _ in range(count)], 1024, 64 * 1024)
    p.read_pause_ns = QUEUE_EDGE_PAUSE_NS


def _queue_exact(out: list[ClientPlan], seed: int, limits: Limits) -> None:
    """queue_edges' exact edge (see QUEUE_EXACT_SENDS; from a random source of its own): one more plain client sends
    one line of ``max_queued - 1`` bytes and its newline, and nothing else."""
    rng = random.Random(f"ovserver-sim:{seed}:queue-exact")
    pool = _shape_pool(out)
    if not pool:
        return
    p = pool[_randint(rng, 0, len(pool) - 1)]
    line = rng.randbytes(limits.max_queued - 1).translate(_TEXT_TABLE)
    _restream(p, rng, [line], *rng.choice(QUEUE_EXACT_SENDS))


def _idle_talkers(out: list[ClientPlan], seed: int, limit_ms: int, slowloris: bool = False) -> None:
    """idle_talkers (see IDLE_TALKERS; from a random source of its own): one to three plain clients
    (no other feature's traffic, no lurker, idler or latecomer) talk across the idle time-out of
    ``limit_ms``, then stay as idlers.  ``slowloris`` (see IDLE_SLOWLORIS; from a random source of its
    own too): one client, a slowloris."""
    rng = random.Random(f"ovserver-sim:{seed}:idle-slowloris" if slowloris else f"ovserver-sim:{seed}:idle-talkers")
    pool = [p for p in out if p.lines and not (_special(p) or p.lurk or p.idle or p.at_stop or p.hold_reads
                                               or p.pipeline or p.after_wave)]
    under = limit_ms * _MS - IDLE_EARLY_NS
    for _ in range(min(len(pool), IDLE_SLOWLORIS if slowloris else _randint(rng, *IDLE_TALKERS))):
        p = pool.pop(_randint(rng, 0, len(pool) - 1))
        kind = "slowloris" if slowloris else rng.choice(("straddle", "newline", "slowloris"))
        lines = list(p.lines)
        chunks: list[bytes] = []
        pauses: list[int] = []
        for i, line in enumerate(lines):
            gap = under - _randint(rng, 5 * _MS, 15 * _MS)  # from this line's newline to the next one's
            if (kind == "newline" or kind == "slowloris" and i % 2) and line:
                split = _randint(rng, _MS, 5 * _MS)
                chunks += [line, b"\n"]
                pauses += [split, gap - split]
            else:
                chunks.append(line + b"\n")
                pauses.append(gap)
        if kind == "slowloris":  # a line a byte at a time: under T apart, longer than T and IDLE_LATE_NS in all
            every = limit_ms * _MS // 4
            n = (limit_ms * _MS + IDLE_LATE_NS + 2 * every) // every + 1
            chunks += [bytes([b]) for b in rng.randbytes(n).translate(_TEXT_TABLE)]
            pauses += [every] * n
        p.chunks, p.pauses_ns = chunks, pauses
        p.idle = p.talk = True


def _piped(out: list[ClientPlan], seed: int, max_line: int, window: int, chat: bool) -> None:
    """piped (see PIPED; from a random source of its own): one to three plain clients (none with another
    feature's traffic, no lurker, idler or latecomer) become ``nc < file`` clients."""
    rng = random.Random(f"ovserver-sim:{seed}:piped")
    pool = [p for p in out if not (_special(p) or p.lurk or p.idle or p.at_stop or p.hold_reads or p.pipeline)]
    for _ in range(min(len(pool), _randint(rng, *PIPED))):
        p = pool.pop(_randint(rng, 0, len(pool) - 1))
        size = _randint(rng, *PIPED_FILE_BYTES)
        total = size // 8 if chat else window + size  # (echo: more than the window)
        sizes: list[int] = []
        n = 0
        while n < total:
            sizes.append(_randint(rng, 0, min(120, max_line)))
            n += sizes[-1] + 1
        raw = rng.randbytes(n).translate(_TEXT_TABLE)
        lines = list(p.lines)
        pos = 0
        for size in sizes:
            lines.append(raw[pos:pos + size])
            pos += size
        if rng.random() < 0.5:  # its last line is over the limit: hung up, the error line owed behind its replies
            lines.append(rng.randbytes(max_line + _randint(rng, 1, min(max_line, 20_000))).translate(_TEXT_TABLE))
        k = _over_limit(lines, max_line)
        if k >= 0:
            lines = lines[:k + 1]  # it stops after it: it is hung up
        p.too_long = k
        _restream(p, rng, lines, 4096, 64 * 1024)
        p.half_close = True
        p.read_pause_ns = _randint(rng, _MS, 30 * _MS)


def _stop_arrivals(out: list[ClientPlan], seed: int, max_line: int) -> None:
    """stop_arrivals (see STOP_ARRIVALS; from a random source of its own): one to forty latecomers, more
    clients than asked for, each with one to three plain lines, appended to ``out`` (the others' plans
    stay what they were).  Against a line limit under the plain lines' longest, a latecomer stops after
    its first line over it (see _limit_plain)."""
    rng = random.Random(f"ovserver-sim:{seed}:stop-arrivals")
    t = _randint(rng, -STOP_ARRIVAL_EARLY_NS, STOP_ARRIVAL_EARLY_NS // 10)
    gap = BURST_GAP_NS if rng.random() < 0.5 else 0  # (0: all at the same instant)
    for _ in range(_randint(rng, *STOP_ARRIVALS)):
        lines, chunks = client_script(rng, _randint(rng, 1, 3))
        # Once served it stays connected (a pooled connection): the stop must close it.
        p = ClientPlan(t, lines, chunks, [0] * len(chunks), -1, stay_ns=2_000 * _MS, at_stop=True)
        if max_line < _LONGEST_PLAIN_LINE:
            _limit_plain(p, max_line)
        out.append(p)
        t += _randint(rng, 0, gap)


def _idle_drawn(features: Iterable[str], limits: Limits, seed: int) -> bool:
    """Whether the run's server has the swarm's idle time-out (see IDLE_TIMEOUTS_MS; with back-pressure, see
    BP_IDLE_ODDS)."""
    f = set(features)
    return "idle_timeout" in f and not f.intersection(IDLE_MASKS) and (
        not limits.high_water or random.Random(f"ovserver-sim:{seed}:bp-idle").random() < BP_IDLE_ODDS)


def _held_back_fits(limits: Limits, chat: bool) -> bool:
    """Whether an echo client can be held back by back-pressure under ``limits`` (see BP_IDLE_ODDS): its queue,
    up to the mark and a receive's worth more, fits under max_queued, with a receive to spare."""
    room = limits.high_water + 2 * ServerConfig().recv_size
    return bool(limits.high_water) and not chat and limits.max_queued >= room


def _held_back_idler(out: list[ClientPlan], seed: int, limits: Limits, window: int, limit_ms: int) -> None:
    """The idle time-out with back-pressure in echo (see HELD_IDLER_EXTRA_NS; from a random source of its own):
    the last client to arrive that reads all the time and ends by itself (no line over the limit, tail, reset
    or half-close; no other feature's shape) sends past its window, a send, the mark and two receives, reads nothing
    for the time-out and more, then reads everything and stays as an idler."""
    rng = random.Random(f"ovserver-sim:{seed}:held-idler")
    pool = [p for p in out if p.lines and not (p.lurk or p.hold_reads or p.hang or p.stuck or p.read_bytes
                                               or p.read_pause_ns or p.reset_at >= 0 or p.too_long >= 0 or p.tail
                                               or p.half_close or p.idle or p.at_stop or p.pipeline or p.after_wave
                                               or p.deaf_stop_ns)]
    if not pool:
        return
    p = max(pool, key=lambda q: q.arrival_ns)
    config = ServerConfig()
    lines = list(p.lines)
    owed = sum(len(line) + 1 for line in lines)
    size = min(DEAF_LINE, limits.max_line)
    while owed <= window + config.send_size + limits.high_water + 2 * config.recv_size:
        lines.append(rng.randbytes(size).translate(_TEXT_TABLE))
        owed += size + 1
    _restream(p, rng, lines, 1024, 16 * 1024)
    p.read_pause_ns = limit_ms * _MS + _randint(rng, *HELD_IDLER_EXTRA_NS)
    p.idle, p.stay_ns = True, 0  # (an early_stop's stayer: it stays until the server closes it instead)


def _idlers(out: list[ClientPlan], seed: int, chat: bool) -> None:
    """idle_timeout (see IDLE_TIMEOUTS_MS): one to three plain clients that read all the time become
    idlers (in chat silent members), from a random source of their own."""
    rng = random.Random(f"ovserver-sim:{seed}:idlers")
    pool = [p for p in out if not (p.lurk or p.hold_reads or p.hang or p.stuck or p.read_bytes or p.reset_at >= 0)
            and (chat or p.lines and p.too_long < 0 and not p.tail and not p.half_close)]
    for _ in range(min(len(pool), _randint(rng, *IDLERS))):
        p = pool.pop(_randint(rng, 0, len(pool) - 1))
        p.idle, p.stay_ns = True, 0  # (an early_stop's stayer: it stays until the server closes it instead)
        if chat:  # (its own lines: the server may take them later than it sent them; nothing bounds that)
            p.lines, p.chunks, p.pauses_ns, p.tail, p.too_long, p.half_close = [], [], [], b"", -1, False


def _cut_at_lines(p: ClientPlan, rng: random.Random) -> None:
    """Re-cut ``p``'s stream so that sends also end right before, at or right
    after newlines: half of them, and a long line's (100 bytes or more) always
    right before it, with a pause after, so that the line waits for its newline
    in the server's buffer at its full length."""
    stream = b"".join(p.chunks)
    cuts: dict[int, bool] = {}  # end of a send -> a pause after it
    pos = 0
    for c in p.chunks:
        pos += len(c)
        cuts[pos] = False
    start = 0
    nl = stream.find(b"\n")
    while nl >= 0:
        if nl - start >= 100:
            cuts[nl] = True
        elif rng.random() < 0.5:
            cuts.setdefault(nl + _randint(rng, 0, 2), False)  # before, at (after the newline) or after the next byte
        start = nl + 1
        nl = stream.find(b"\n", start)
    ends = sorted(x for x in cuts if 0 < x <= len(stream))
    if not ends or ends[-1] != len(stream):
        ends.append(len(stream))
    old = len(p.chunks)
    starts = [0] + ends[:-1]
    p.chunks = [stream[a:b] for a, b in zip(starts, ends, strict=True)]
    p.pauses_ns = [_randint(rng, 50_000, 300_000) if cuts.get(e) else 0 if rng.random() < 0.5
                   else _randint(rng, 1, 300_000) for e in ends]
    if p.reset_at >= 0:
        p.reset_at = len(p.chunks) if p.reset_at >= old else min(p.reset_at, len(p.chunks))


def _late_features(out: list[ClientPlan], seed: int, f: set[str], limits: Limits) -> None:
    """The features of :data:`LATE_FEATURES`, from a random source of their own.

    early_stop's stayers are at most half of ``max_clients``: each holds a
    place 2 s, so more of them would keep the others refused (the backlog full)
    until they give up, which the check would report against a correct server."""
    rng = random.Random(f"ovserver-sim:{seed}:late")
    stayers = max(1, limits.max_clients // 2)
    for p in out:
        if "line_cuts" in f and p.chunks:
            _cut_at_lines(p, rng)
        if "stuck_readers" in f and rng.random() < 0.05 and p.tail == b"":
            # Stops reading for good (never reads) and resets a while after its last send.
            p.stuck = True
            p.read_pause_ns = 0
            p.half_close = False
            p.reset_at = len(p.chunks)
            p.reset_delay_ns = _randint(rng, 20 * _MS, 200 * _MS)
        elif "early_stop" in f and rng.random() < 0.33 and stayers:
            stayers -= 1
            p.stay_ns = 2_000 * _MS


def _bulk_lines(rng: random.Random, total: int, longest: int) -> list[bytes]:
    """Lines of 1 KiB up to ``longest`` bytes (at most 40 KiB; all of
    ``longest`` when it is under 1 KiB), about ``total`` bytes in all."""
    hi = max(1, min(longest, 40 * 1024))
    lo = min(1024, hi)
    sizes: list[int] = []
    n = 0
    while n < total:
        sizes.append(_randint(rng, lo, hi))
        n += sizes[-1] + 1
    raw = rng.randbytes(n).translate(_NL_FREE_TABLE)
    out: list[bytes] = []
    pos = 0
    for size in sizes:
        out.append(raw[pos:pos + size])
        pos += size
    return out


def _cut(stream: bytes, rng: random.Random, lo: int, hi: int) -> list[bytes]:
    """``stream`` cut into chunks of ``lo`` to ``hi`` bytes (the last one shorter)."""
    chunks = []
    pos = 0
    while pos < len(stream):
        size = _randint(rng, lo, hi)
        chunks.append(stream[pos:pos + size])
        pos += size
    return chunks


def _restream(p: ClientPlan, rng: random.Random, lines: list[bytes], lo: int, hi: int) -> None:
    """``p`` sends ``lines`` (and nothing else) in chunks of ``lo`` to ``hi``
    bytes, without pauses."""
    chunks = _cut(b"".join(line + b"\n" for line in lines), rng, lo, hi)
    p.lines, p.chunks, p.pauses_ns = lines, chunks, [0] * len(chunks)


def _past_the_window(p: ClientPlan, rng: random.Random, lines: list[bytes], window: int, room: int,
                     max_line: int) -> None:
    """``p`` sends ``lines``, then more than ``window`` bytes (up to ``room`` more) of bulk lines of up to
    ``max_line`` bytes, in sends of 1 to 64 KiB without pauses: replies it does not read fill its window."""
    extra = _randint(rng, window + 1, window + max(1, room))
    _restream(p, rng, lines + _bulk_lines(rng, extra, max_line), 1024, 64 * 1024)


def _whole_lines(p: ClientPlan, rng: random.Random, lines: list[bytes], hi: int) -> None:
    """``p`` sends ``lines`` in chunks of whole lines, each of about 1 to ``hi`` bytes (or one line),
    without pauses."""
    chunks: list[bytes] = []
    part: list[bytes] = []
    size = target = 0
    for line in lines:
        if not part:
            target = _randint(rng, 1, hi)
        part.append(line + b"\n")
        size += len(line) + 1
        if size >= target:
            chunks.append(b"".join(part))
            part, size = [], 0
    if part:
        chunks.append(b"".join(part))
    p.lines, p.chunks, p.pauses_ns = lines, chunks, [0] * len(chunks)


def _idle_and_slow(out: list[ClientPlan], seed: int, f: set[str], limits: Limits, window: int, chat: bool,
                   window_ns: int) -> None:
    """lurkers, slow_readers and hung_readers (see LURKER_SHARES), each from a
    random source of its own.  A client planned to reset, to stay (early_stop),
    to be a stuck reader, to go over the line limit or to end with an
    unterminated line is left as it is, and so is one with a line longer than
    the plain traffic's (long_lines, big_sends)."""
    free = [p for p in out if p.reset_at < 0 and not p.stuck and not p.stay_ns and p.too_long < 0 and not p.tail
            and all(len(line) <= _LONGEST_PLAIN_LINE for line in p.lines)]
    # Lurkers and hung readers hold their places to the end: the others need one.
    places = limits.max_clients - 1 if limits.max_clients < len(out) else len(out)
    if "hung_readers" in f and free and places > 0:
        rng = random.Random(f"ovserver-sim:{seed}:hung")
        for _ in range(min(places, len(free), _randint(rng, 1, 3))):
            p = free.pop(_randint(rng, 0, len(free) - 1))
            places -= 1
            p.stuck = p.hang = True
            p.read_pause_ns = 0
            p.half_close = False
            if not chat:  # more than the window in replies: a send to it stays in flight
                _past_the_window(p, rng, p.lines, window, limits.max_queued // 2, limits.max_line)
    if "slow_readers" in f:
        rng = random.Random(f"ovserver-sim:{seed}:slow")
        for p in [p for p in free if rng.random() < 0.08]:
            free.remove(p)
            p.read_bytes = (1024, 4096, 16384)[_randint(rng, 0, 2)]
            p.read_every_ns = _randint(rng, 200_000, 2 * _MS)
            p.read_pause_ns = 0
            if not chat:
                # Output backed up over many sends, never over max_queued: it sends whole lines, and those
                # not read back stay within 15/16 of it.
                p.pipeline = limits.max_queued - limits.max_queued // 16
                extra = min(4 << 20, _randint(rng, 3 * limits.max_queued, 8 * limits.max_queued))
                longest = min(limits.max_line, max(1, limits.max_queued // 8))
                lines = [line for line in p.lines if len(line) <= longest] + _bulk_lines(rng, extra, longest)
                _whole_lines(p, rng, lines, max(1, min(64 * 1024, p.pipeline // 2)))
                p.half_close = rng.random() < 0.5  # FIN after its last line, its replies still backed up
    if "lurkers" in f and places > 0:
        rng = random.Random(f"ovserver-sim:{seed}:lurkers")
        share = LURKER_SHARES[_randint(rng, 0, len(LURKER_SHARES) - 1)]
        early = rng.random() < 0.5  # there before most of those who talk, or coming at any time
        for p in free:
            if places > 0 and rng.random() < share:
                places -= 1
                p.lurk = True
                p.arrival_ns = _randint(rng, 0, p.arrival_ns // 4 if early else 2 * window_ns)
                p.lines, p.chunks, p.pauses_ns = [], [], []
                p.half_close = False
                p.read_pause_ns = 0
        for p in out:  # the others talk at a person's pace: a line, then often a pause of 5 to 50 ms
            if not p.lurk and not p.read_bytes and not p.hang:
                p.pauses_ns = [t + _randint(rng, 5 * _MS, 50 * _MS) if b"\n" in c and rng.random() < 0.5 else t
                               for c, t in zip(p.chunks, p.pauses_ns, strict=True)]


def _special(p: ClientPlan) -> bool:
    """Whether ``p`` carries traffic of a feature beyond the plain lines and pauses (a line longer than
    the plain ones, a line over the limit, a tail, a reset, a stay, a reader that pauses, stops or is
    slow, a half-close, sends of 1 to 3 bytes)."""
    return (p.too_long >= 0 or bool(p.tail) or p.reset_at >= 0 or p.stuck or p.hang or bool(p.read_bytes)
            or bool(p.stay_ns) or p.half_close or bool(p.read_pause_ns)
            or any(len(line) > _LONGEST_PLAIN_LINE for line in p.lines)
            or len(p.chunks) > 2 and all(len(c) <= 3 for c in p.chunks[:-1]))


def _accept_bursts(out: list[ClientPlan], seed: int) -> None:
    """accept_bursts (from a random source of its own): the last BURST_CLIENTS clients to arrive (of
    those after full_groups' wave, when it has one) arrive together, each 0 to BURST_GAP_NS after the one before, as a
    pool of connections opened at once does; ``simulate`` narrows the fake's latencies and raises its
    background progress (BURST_FAKES), so that they connect microseconds apart while the server
    handles the accept before, and no later arrival follows the last of them."""
    rng = random.Random(f"ovserver-sim:{seed}:accept-bursts")
    pool = [p for p in out if p.after_wave] or out
    k = min(len(pool), _randint(rng, *BURST_CLIENTS))
    if k < 2:
        return
    last = sorted(pool, key=lambda p: p.arrival_ns)[-k:]
    t = last[-1].arrival_ns
    for p in last:
        p.arrival_ns = t
        t += _randint(rng, 0, BURST_GAP_NS)


def _full_groups(out: list[ClientPlan], seed: int, limits: Limits, window: int, chat: bool) -> None:
    """full_groups (from a random source of its own; only when every client fits at once and there
    are more than a group's worth): a wave of GROUP_CLIENTS clients (a thread group of the events
    model, 63 clients and its wake event in 64 wait slots) arrives first, within 1 ms, the others from
    1 ms after the server has read the FIN of every ender (below), each at its planned offset after
    that.  The wave takes the lurkers first (the lurkers feature's), then plain clients, then the
    others, those with long lines last.  Most of the wave are lurkers (silent, staying until those who
    talk are done): in chat the first group is silent while the second talks, and its thread must be
    woken for every line routed to its clients.  Two to six of the wave (enders) send their lines
    (echo: and more than the window in bulk lines, not so many that the server stops reading them:
    under half the back-pressure mark queued), half-close at once and read nothing until every
    client has arrived: they are no longer members but their connections still hold the group's
    slots while the others arrive; a server that counts a group's room by its members puts a 64th
    client in it."""
    if len(out) <= GROUP_CLIENTS or limits.max_clients < len(out):
        return
    rng = random.Random(f"ovserver-sim:{seed}:full-groups")
    # The wave takes the lurkers first, then plain clients, then those with other features' traffic, and
    # those with lines longer than the plain ones (or over the limit) last: they keep their traffic.
    kinds: tuple[list[int], ...] = ([], [], [], [])
    for i, p in enumerate(out):
        long = p.too_long >= 0 or any(len(line) > _LONGEST_PLAIN_LINE for line in p.lines)
        kinds[0 if p.lurk else 3 if long else 2 if _special(p) else 1].append(i)
    order = [i for kind in kinds for i in rng.sample(kind, len(kind))]
    wave = set(order[:GROUP_CLIENTS])
    enders = set(rng.sample(sorted(wave), _randint(rng, 2, 6)))
    for i, p in enumerate(out):
        if i not in wave:
            p.after_wave = True
            continue
        p.arrival_ns = _randint(rng, 0, _MS)
        p.reset_at, p.stuck, p.hang, p.stay_ns, p.reset_delay_ns = -1, False, False, 0, 0
        p.too_long, p.tail, p.read_bytes, p.read_every_ns, p.pipeline, p.lurk = -1, b"", 0, 0, 0, False
        if i in enders:
            lines = [line for line in p.lines if len(line) <= min(limits.max_line, _LONGEST_PLAIN_LINE)]
            if chat:
                _restream(p, rng, lines, 1024, 64 * 1024)
            else:  # its replies back up: more than the window, under half the output limit (or mark)
                _past_the_window(p, rng, lines, window, (limits.high_water or limits.max_queued) // 2, limits.max_line)
            p.lurk, p.half_close, p.read_pause_ns, p.hold_reads = False, True, 0, True
        else:
            p.lurk, p.half_close, p.read_pause_ns = True, False, 0
            p.lines, p.chunks, p.pauses_ns = [], [], []


def scenario_plan(clients: int, messages: int, seed: int, resets: float = 0.0,
                  arrival_s: float | None = None, features: tuple[str, ...] = (),
                  limits: Limits | None = None, window: int | None = None, chat: bool = False,
                  idle_timeout_ms: int = 0) -> list[ClientPlan]:
    """Every client's plan (see the module docstring): a pure function of the
    arguments.  Clients arrive over ``arrival_s`` seconds (default 1 ms per
    client), a quarter of them in one flood within 1 ms.  ``features`` (of
    :data:`FEATURES`) rework the plans for swarm traffic against a server with
    ``limits``, on a fake whose flow-control ``window`` is that (default:
    FakeConfig's), in chat when ``chat``, with the server's ``idle_timeout_ms``
    (idle_talkers' gaps); without them the plans are the plain traffic."""
    plan = random.Random(f"ovserver-sim:{seed}:plan")
    will_reset = [plan.random() < resets for _ in range(clients)]
    window_ns = int((arrival_s if arrival_s is not None else clients * 0.001) * 1e9)
    # The flood is more than the 63 event slots plus the listen backlog, for
    # 1000 clients: some are refused and retry.
    flood_ns = _randint(plan, 0, window_ns)
    arrivals = [flood_ns + _randint(plan, 0, _MS) if plan.random() < FLOOD_FRACTION else _randint(plan, 0, window_ns)
                for _ in range(clients)]
    out = []
    rng = random.Random(f"ovserver-sim:{seed}:clients")  # one for all: a Random costs 2.5 KiB
    for i in range(clients):
        lines, chunks = client_script(rng, messages)
        pauses = []
        for _ in chunks:
            r = rng.random()
            pauses.append(0 if r < 0.3 else _randint(rng, 1, 300_000) if r < 0.9 else _randint(rng, 300_000, 3 * _MS))
        reset_at = _randint(rng, 0, len(chunks)) if will_reset[i] else -1
        out.append(ClientPlan(arrivals[i], lines, chunks, pauses, reset_at))
    limits = limits if limits is not None else Limits()
    if features:
        _swarm_plan(out, seed, features, limits, window_ns, window if window is not None else FakeConfig().window,
                    chat, idle_timeout_ms)
    elif limits.max_line < _LONGEST_PLAIN_LINE:
        for p in out:
            _limit_plain(p, limits.max_line)
    return out


#: The longest line of the plain traffic (see :func:`client_script`).
_LONGEST_PLAIN_LINE = 3000


def _over_limit(lines: list[bytes], max_line: int) -> int:
    """The index of the first line over ``max_line`` bytes, or -1."""
    return next((k for k, line in enumerate(lines) if len(line) > max_line), -1)


def _limit_plain(p: ClientPlan, max_line: int) -> None:
    """A plain plan against a line limit: the client sends up to its first
    line over ``max_line`` and expects to be hung up after it."""
    k = _over_limit(p.lines, max_line)
    if k < 0:
        return
    p.too_long = k
    p.lines = p.lines[:k + 1]
    end = sum(len(line) + 1 for line in p.lines)
    pos = 0
    for j, chunk in enumerate(p.chunks):
        if pos + len(chunk) >= end:
            p.chunks = p.chunks[:j] + [chunk[:end - pos]]
            p.pauses_ns = p.pauses_ns[:j + 1]
            break
        pos += len(chunk)
    if p.reset_at > len(p.chunks):
        p.reset_at = len(p.chunks)


def _inject_accept_faults(ws: FakeWinsock, plans: list[ClientPlan], rng: random.Random) -> None:
    """WSAENOBUFS injected into AcceptEx in every phase of the run: at its start, before any client;
    while the clients arrive; and after the last arrival, while the server is full or its clients
    leave.  An AcceptEx failure allows no drop: the server must post again."""
    arrivals = sorted(p.arrival_ns for p in plans) or [0]
    last = arrivals[-1]
    times = [0, arrivals[_randint(rng, 0, len(arrivals) - 1)], last + _randint(rng, 0, 20 * _MS)]
    times += [_randint(rng, 0, last + 50 * _MS) for _ in range(_randint(rng, *ACCEPT_FAULTS))]
    for at in times:
        ws.call_at(at, lambda n: ws.inject_error("AcceptEx", WSAENOBUFS, n), _randint(rng, 1, 3))


def backoff_ns(attempt: int, rng: random.Random) -> int:
    """How long a client waits after its ``attempt``-th refused connection:
    exponential, capped at 0.5 s, with jitter."""
    return int(min(2 ** min(attempt, 10), 500) * _MS * (0.5 + rng.random()))


class _Client(ScriptedClient):
    """One scripted client (see the module docstring)."""

    __slots__ = ("sim", "lines", "chunks", "pauses_ns", "reset_at", "arrival_ns", "plan", "n_replies",
                 "read_bytes", "chat_mark", "hung_up", "pause_timer", "staying", "welcome_ns", "echo_stream",
                 "echo_pos", "got", "heard", "sent_all", "last_rx", "finished_sending_ns", "end_seen_ns",
                 "heard_at_end", "owed", "waiting_for", "ended_as", "chat_sent", "chat_heard_max",
                 "heard_bytes", "settled", "arrived", "hangup_wait", "attempt_ns", "line_ns", "rx_ns", "first_rx_ns",
                 "fin_ns", "taken_at", "sent_at_stop", "next_chunk", "lines_arrived", "rx_done_ns")

    def __init__(self, sim: _Sim, index: int, plan: ClientPlan) -> None:
        super().__init__(sim.ws, (sim.host, sim.port), index)  # (the address is the server's once it listens)
        self.sim = sim
        self.lines, self.chunks, self.pauses_ns = plan.lines, plan.chunks, plan.pauses_ns
        self.reset_at = plan.reset_at
        self.plan = plan
        # Echo: replies due (the line over the limit, if any, is answered by the error line).
        self.n_replies = len(plan.lines) if plan.too_long < 0 else plan.too_long + 1
        self.read_bytes = 0
        self.chat_mark = 0  # chat: the run's chat bytes surely routed before the server could join this client
        self.chat_sent = 0  # chat: its part of sim.chat_bytes
        self.chat_heard_max = 0  # chat: the most of chat_sent that one listener has heard
        self.heard_bytes: dict[bytes, int] = {}  # chat: bytes heard, by sender name
        self.hung_up = False  # it got the error line its line over max_line is owed
        self.pause_timer = False
        self.staying = False  # served, staying connected plan.stay_ns before it leaves
        self.arrival_ns = plan.arrival_ns
        self.welcome_ns = -1  # chat: when its welcome came; echo: when it connected
        self.echo_stream = b""  # echo: every reply due, while all have been right
        self.echo_pos = 0
        self.got = 0  # echo: replies verified
        self.heard: dict[bytes, list[bytes]] = {}  # chat: lines received, by sender name
        self.sent_all = False
        self.last_rx = 0
        self.finished_sending_ns = 0
        # Chat, after its FIN: from end_seen_ns on, the server has had its end for a while (-1: not yet
        # seen); heard_at_end[sender]: how many of that sender's lines it had heard by then.
        self.end_seen_ns = -1
        self.heard_at_end: dict[bytes, int] = {}
        # Chat: the lines the server routes from it if it is served (those before its line over
        # max_line, if any); barrier: the other clients it still waits for (see leave_if_heard_all).
        self.owed = len(plan.lines) if plan.too_long < 0 else plan.too_long
        self.waiting_for = 0
        self.ended_as: _Ending | None = None  # how it ended; None while it has not
        self.settled = False  # counted in sim.talkers_left no more (done or staying)
        self.arrived = False  # counted in sim.arrived (connected, or done without connecting)
        self.hangup_wait = 0  # hung up, done: 1 waiting for the error line, 2 for the server's FIN after it
        # The idle time-out: when it last tried to connect, sent a chunk that ended a line, read bytes.
        self.attempt_ns = self.line_ns = self.rx_ns = 0
        # The idle time-out's account (_idle_since): the chunk it sends next; how many of its lines have
        # arrived at the server, as last seen.
        self.next_chunk = self.lines_arrived = 0
        self.rx_done_ns = 0  # when it last read bytes of a server send that had completed (see _idle_since)
        self.first_rx_ns = -1  # when it read the server's first byte (-1: not yet)
        self.fin_ns = -1  # when it sent its FIN
        self.sent_at_stop = -1  # echo, quiet at the stop request (quiet_at_stop): the bytes it had sent
        self.taken_at: list[tuple[int, int]] = []  # a paused reader: (when, bytes the server had taken by then)

    # ------------------------------------------------------------ connecting

    def arrive(self) -> None:
        self.sim.watch_deadline(self)
        self.connect()

    def refused(self) -> None:
        sim = self.sim
        if sim.stopping:  # the server stopped listening: as due
            sim.report.stopped += 1
            self.ended_as = _Ending.STOPPED
            self.finish()
            return
        sim.report.refusals += 1
        if self.attempts >= MAX_ATTEMPTS:
            self._fail(f"refused {self.attempts} times")
            return
        self.retry_after(backoff_ns(self.attempts, sim.rng))

    def deadline_passed(self) -> None:
        if self.state != _DONE and not self.sim.stopping:
            self._fail(f"not done {CLIENT_DEADLINE_NS / 1e9:g} s after arriving (state {self.state})")

    def _fail(self, why: str) -> None:
        self.sim.error(f"client {self.index} {self.name.decode() or '(unconnected)'}: {why}")
        if self.ended_as is None:
            self.ended_as = _Ending.FAILED
        self.reset_if_connected()
        self.finish()

    def finished(self) -> None:
        self.echo_stream = b""
        self.sim.client_done(self)

    # ------------------------------------------------------------ events from the fake

    def connect(self, _: object = None) -> None:
        if self.sim.mode is Mode.CHAT:
            # The server can only have joined it after this attempt's SYN left: nothing it had routed by
            # then is owed to it. What it had not routed yet may be: lines sent but not yet received or
            # handled by the server (a big line sent just before this connect may cut off everyone who
            # joined since). Not when the client sees itself connected: the server may accept and join
            # it, and route lines to it, before that (the fake establishes the server's end when the SYN
            # arrives, a latency before the client's end). The mark never decreases, so taking it at the
            # attempt only loosens the bound.
            sim = self.sim
            self.chat_mark = sim.chat_bytes - sim.chat_unheard
        self.attempt_ns = self.sim.ws.now_ns
        super().connect(_)

    def connected(self) -> None:
        self.sim.by_name[self.name] = self
        self.sim.note_arrived(self)
        if self.sim.mode is Mode.CHAT:
            self.state = _JOINING
        else:
            self.sim.joined(self)

    def _paused(self) -> bool:
        """A reader that pauses: nothing is read (nor seen) before the pause ends."""
        return bool(self.plan.read_pause_ns) and self.sim.ws.now_ns < self.arrival_ns + self.plan.read_pause_ns

    def reading(self) -> bool:
        peer = self.peer
        assert peer is not None
        if self.plan.stuck and self.state == _ACTIVE and not peer.was_reset:
            return False  # a stuck reader: it resets, by its plan
        if peer.was_reset or not self._paused():
            return not (self.taken_at and self._overdue_cut_off(peer))  # (its pause is over)
        if not self.pause_timer:
            self.pause_timer = True
            self._changed_at(self.arrival_ns + self.plan.read_pause_ns, peer)
        if self.welcome_ns >= 0:
            self._note_taken(peer)
        return False

    def quiet_at_stop(self) -> bool:
        """Echo, at the stop request: served, it has read every reply to the lines it sent, nothing is on its
        way either way (its bytes all taken, no server byte on the wire, in its buffer or in a posted send), and
        it has read nothing for QUIET_STOP_NS: a server that stops closes it gracefully (see reset_when_quiet)."""
        sim, peer, p = self.sim, self.peer, self.plan
        if (sim.mode is not Mode.ECHO or self.state != _ACTIVE or peer is None or not peer.connected
                or peer.was_reset or self.fin_sent or self.first_rx_ns < 0 or p.too_long >= 0 or p.tail
                or sim.drops_left or sim.ws.now_ns - self.rx_ns < QUIET_STOP_NS
                or self.read_bytes != self._echo_owed()):
            return False
        return nothing_on_the_way(sim.ws, peer)

    def _echo_owed(self) -> int:
        """Echo: the bytes of the replies to the whole lines it has sent."""
        return b"".join(self.chunks).rfind(b"\n", 0, self.sent_bytes) + 1

    def reset_when_quiet(self) -> str | None:
        """Reset by the server at the stop though it was quiet then (quiet_at_stop) and has sent nothing since:
        what is wrong (None: nothing)."""
        if (self.sent_at_stop != self.sent_bytes or self.fin_sent or self.state == _DONE
                or self.read_bytes != self._echo_owed()):
            return None
        return (f"reset by the server at the stop, though it had read every reply and the server had sent it "
                f"nothing for {QUIET_STOP_NS / 1e6:g} ms (its last read at {self.rx_ns / 1e9:.6f} s): a server "
                f"that stops closes such a client gracefully (a FIN)")

    def _note_taken(self, peer: FakePeer) -> None:
        """While it pauses: when the server took (received) more of its stream (see _overdue_cut_off)."""
        note_taken(self.taken_at, self.sim.ws.now_ns, peer, self.sent_bytes)

    def _overdue_cut_off(self, peer: FakePeer) -> bool:
        """Echo, its read pause over: the server went over max_queued for it without cutting it off (fails it,
        returns True).  The replies to the lines whose bytes the server took at least TAKEN_NS before (time to
        handle them), less what it read before the pause, what is on its way to it (the server's bytes on the
        wire and in its receive buffer: the window) and what the server's posted sends have not moved into the
        network yet, are queued in the server; ovserver cuts a client off as soon as that is over max_queued
        (Hub._enqueue).  Not with back-pressure, a stop, a line over max_line, a tail, or injected failures."""
        stuck, self.taken_at = self.taken_at, []
        sim = self.sim
        limits = sim.server.config.limits
        if (sim.mode is not Mode.ECHO or limits.high_water or sim.stopping or peer.was_reset or sim.drops_left
                or self.plan.too_long >= 0 or self.plan.tail or self.state == _DONE):
            return False
        self._note_taken(peer)
        before = sim.ws.now_ns - TAKEN_NS
        taken = taken_before(stuck, before)
        out = outbound(sim.ws, peer)
        if out is None:
            return False
        on_way, unmoved = out
        stream = b"".join(self.chunks)
        owed = stream.rfind(b"\n", 0, taken) + 1  # echo: the lines back, byte for byte
        queued = owed - self.read_bytes - on_way - unmoved
        if queued <= limits.max_queued:
            return False
        self._fail(f"not cut off: its read pause over, the replies to the lines the server took before "
                   f"{before / 1e9:.6f} s leave {queued} bytes queued in the server (owed {owed}, read "
                   f"{self.read_bytes}, {on_way} on their way, {unmoved} in its posted sends), over max_queued "
                   f"{limits.max_queued}: a cut-off was due")
        return True

    def _changed_at(self, at_ns: int, peer: FakePeer) -> None:
        """Tell the fake at ``at_ns`` that this client's wishes changed.  (Apart from
        ``reading``, which the fake asks at every change of the peer, so that it makes no closure cells.)"""
        self.sim.ws.call_at(at_ns, lambda _: self.changed(peer))

    def received(self, data: bytes) -> None:
        sim = self.sim
        if self.plan.talk and not self.rx_ns and sim.report.idle_timeout_ms:
            sim.ws.call_at(sim.ws.now_ns, self._idle_watch)  # served: watched from now on (see IDLE_TALKERS)
        self.last_rx = self.rx_ns = sim.ws.now_ns
        peer = self.peer
        if sim.report.idle_timeout_ms and peer is not None:
            self._look_arrived(peer)
            if self._of_a_completed_send(peer, len(data)):
                self.rx_done_ns = self.rx_ns
        if self.first_rx_ns < 0:
            self.first_rx_ns = self.rx_ns
        sim.report.bytes_received += len(data)
        self.read_bytes += len(data)
        if self.echo_stream:
            # Echo, all well so far: the replies are the stream of the lines
            # sent, so one comparison checks every line in ``data``.
            pos = self.echo_pos
            if self.echo_stream.startswith(data, pos):
                self.echo_pos = pos + len(data)
                k = data.count(b"\n")
                if k:
                    self.got += k
                    sim.report.replies += k
                    if self.got == self.n_replies and self.sent_all and self.reset_at < 0:
                        self._leave()
                return
            # Wrong somewhere: check line by line from the line in progress,
            # to report the first wrong reply as it completes.
            self.inbuf += self.echo_stream[self.echo_stream.rfind(b"\n", 0, pos) + 1:pos]
            self.echo_stream = b""
        super().received(data)

    def line(self, line: bytes) -> None:
        if self.sim.mode is Mode.ECHO:
            self._echo_reply(line)
        else:
            self._chat_line(line)

    def server_closed(self, reset: bool) -> None:
        peer = self.peer
        assert peer is not None
        if not reset and (self._paused() or self.plan.stuck and self.state == _ACTIVE):
            return  # seen once the pause ends (a stuck reader resets, by its plan)
        eof = peer.at_eof
        short = self.sim.mode is Mode.ECHO and self.got < self.n_replies and self.reset_at < 0
        if eof and not reset and (self.fin_sent or self._hung_up_as_due()) and not short:
            peer.close()
            if self.plan.too_long >= 0:
                self.sim.report.hung_up += 1
            self.sim.report.served += 1
            self.ended_as = _Ending.SERVED
            self.finish()
            return
        what = "reset" if reset else "closed"
        if self.sim.stopping:  # asked to stop, the server closes every connection: as due
            wrong = self.reset_when_quiet() if reset else self._fin_after_part_of_a_line("the stop")
            if wrong is not None:
                self._fail(wrong)
                return
            self.sim.report.stopped += 1
            self.ended_as = _Ending.STOPPED
            self.finish()
            return
        if self._timed_out_as_due():
            wrong = self._reset_owed_nothing() if reset else self._fin_after_part_of_a_line("its idle time-out")
            if wrong is not None:
                self._fail(wrong)
                return
            self.sim.report.timed_out += 1
            self.ended_as = _Ending.TIMED_OUT
            self.finish()
            return
        if reset and self._cut_off_as_due():
            self.sim.report.cut_off += 1
            self.ended_as = _Ending.CUT_OFF
            self.finish()
            return
        # An injected WSARecv/WSASend failure lets the server drop one client; an idler or idle talker only if it
        # failed on its own connection (otherwise the allowance would hide one closed by its idle time-out early).
        if self.sim.drops_left > 0 and not (self.plan.idle and not self.sim.ws.injected_failure_on(peer)):
            self.sim.drops_left -= 1
            self.sim.report.dropped += 1
            self.ended_as = _Ending.DROPPED
            self.reset_if_connected()
            self.finish()
            return
        limit = self.sim.report.idle_timeout_ms
        self._fail(f"connection {what} by the server ({self._progress()})"
                   + (" after the client's FIN" if self.fin_sent else "")
                   + (f"; idle by its own account {(self.sim.ws.now_ns - self._idle_since()) / 1e6:.1f} ms, under "
                      f"the server's idle time-out of {limit} ms" if limit else ""))

    def _fin_after_part_of_a_line(self, why: str, unread: bytes = b"") -> str | None:
        """What is wrong when the server closed it gracefully (a FIN) at ``why`` (the stop, its idle
        time-out) right after part of a line (``unread``: what it has not read yet before that FIN):
        a server that closes with a send in flight resets (the client must know the line was cut short;
        a FIN says that was all).  None when its last line is whole, or with injected failures (a server
        may close after one, its output cut where its last send that worked ended)."""
        if self.echo_stream:
            pos = self.echo_pos
            part = self.echo_stream[self.echo_stream.rfind(b"\n", 0, pos) + 1:pos] + unread
        else:
            part = bytes(self.inbuf) + unread
        part = part[part.rfind(b"\n") + 1:]
        if not part or self.sim.injected_failures:
            return None
        return (f"closed by the server (a FIN) at {why} right after part of a line, {part[:40]!r} "
                f"({len(part)} bytes; {self._progress()}): a server that closes with a send in flight resets")

    def _reset_owed_nothing(self) -> str | None:
        """What is wrong when the server reset it at its idle time-out: an echo idler (or idle talker) that
        has read every reply it is owed, whole, and that no injected failure hit, had no send in flight and
        nothing queued (the send of its last reply completed, which restarted its idle clock, a time-out
        ago), and the server closes an idle connection gracefully then (ovserver/_core.py, "Idle clients":
        abortively only with a send in flight).  None otherwise."""
        p, peer = self.plan, self.peer
        if (self.sim.mode is not Mode.ECHO or not p.idle or not self.echo_stream or self.got < self.n_replies
                or self.echo_pos < len(self.echo_stream) or peer is None or self.sim.ws.injected_failure_on(peer)):
            return None
        return (f"reset by the server at its idle time-out ({self._progress()}), having read every reply it was "
                "owed: with no send in flight and nothing queued, an idle connection is closed gracefully (a FIN)")

    def unread_fin_after_part_of_a_line(self) -> str | None:
        """After the server returned from its stop: what is wrong when its FIN is on its way or here,
        unread (the client did not read: a pause, a stuck reader), behind bytes all here that end in part
        of a line (see :meth:`_fin_after_part_of_a_line`)."""
        unread = unread_before_fin(self.peer)
        if unread is None:
            return None
        return self._fin_after_part_of_a_line("the stop (not read yet when the server returned)", unread)

    def _hung_up_as_due(self) -> bool:
        """Its line over max_line was answered by the error line (and, echo,
        every reply before it): the server closes gracefully, as it must."""
        if self.plan.too_long < 0:
            return False
        return self.got == self.n_replies if self.sim.mode is Mode.ECHO else self.hung_up

    def _timed_out_as_due(self) -> bool:
        """Closed (or reset: a send was in flight) by the server's idle time-out, as due: by this client's
        account it has been idle that long less IDLE_EARLY_NS.  Its account may only be earlier than the
        server's: the server's clock starts no earlier than this client's connect attempt, at a line
        that has arrived at the server (``lines_arrived``: a server reading it takes it then; a line sent but
        still queued behind a small window does not count) no earlier than this client sent it, and at a
        send completed no earlier than
        IDLE_READ_LAG_NS (and its reading pause) before this client read bytes of it, when it reads all
        the time (the reads of one that does not are not counted; nor bytes of a send still in flight, a
        big reply through a small window: it completed nothing yet, and the server's last completed send
        may be long before, :meth:`_of_a_completed_send`).  (Simulate seed 2708, events echo: a
        client sending a long line through a small window while it read a 64 KiB reply slowly was reset at
        its time-out, as the contract allows: the line it had sent last, 0.7 ms before, was still queued
        behind the window, and the server's last line and last completed send were over 100 ms old.)"""
        limit = self.sim.report.idle_timeout_ms
        return bool(limit) and self.sim.ws.now_ns - self._idle_since() >= limit * _MS - IDLE_EARLY_NS

    def _look_arrived(self, peer: FakePeer) -> None:
        """How many of its lines have arrived at the server by now (in its receive buffer or taken): kept at
        the most seen, and not looked at once the connection was reset (which discards what had not been
        taken).  A server reading it takes what arrives at once; a line still queued here behind the window,
        or on the wire, cannot have restarted the server's idle clock."""
        if peer.was_reset or not self.sent_lines:
            return
        server_end = peer.other_end()
        if server_end is not None and server_end.reset:
            return
        n, j = self.sent_lines, self.next_chunk
        unread = peer.unread - (len(server_end.rbuf) if server_end is not None else 0)  # queued, on the wire
        while unread > 0 and j > 0:  # (the newlines of the bytes not arrived: in its last chunks sent)
            j -= 1
            chunk = self.chunks[j]
            n -= chunk.count(b"\n", max(0, len(chunk) - unread))
            unread -= len(chunk)
        self.lines_arrived = max(self.lines_arrived, n)

    def _of_a_completed_send(self, peer: FakePeer, n: int) -> bool:
        """Whether some of the ``n`` bytes it has just read (taken from its receive buffer) are of a server
        send that has completed: not all of the bytes the server's sends still in flight have moved into the
        network (their bytes are the last of what the server sent), which are those not read yet (on the
        wire, in its receive buffer) and the last it read.  A look at the fake (no call, no draw)."""
        end = self.sim.ws.server_end(peer)
        if end is None or not end.sends:
            return True
        return sum(op.moved for op in end.sends) < n + peer.available() + end.endpoint.in_flight

    def _idle_since(self) -> int:
        """When it was last active by its own account (see :meth:`_timed_out_as_due`)."""
        p = self.plan
        peer = self.peer
        if peer is not None:
            self._look_arrived(peer)
        since = max(self.attempt_ns, self.line_sent_ns[self.lines_arrived - 1] if self.lines_arrived else 0)
        if not (p.stuck or p.hang or p.read_bytes or p.hold_reads):
            since = max(since, self.rx_done_ns - IDLE_READ_LAG_NS - p.read_pause_ns)
        return since

    def _idle_watch(self, _: object = None) -> None:
        """An idler (served, reading all the time, sending nothing): the server closes it within its idle
        time-out and IDLE_LATE_NS of the last byte it read (every line it sent had its reply, or, chat, it
        sent none: the server completed nothing for it since)."""
        sim = self.sim
        if self.state != _ACTIVE or sim.stopping:
            return
        limit = sim.report.idle_timeout_ms
        due = max(self.rx_ns, self.welcome_ns, self.line_ns) + limit * _MS + IDLE_LATE_NS
        now = sim.ws.now_ns
        if now < due:
            sim.ws.call_at(due, self._idle_watch)
            return
        self._fail(f"idle since {(due - limit * _MS - IDLE_LATE_NS) / 1e9:.6f} s (served, reading, the last byte "
                   f"read then), but not closed by the server's idle time-out of {limit} ms "
                   f"{(now - due + limit * _MS + IDLE_LATE_NS) / 1e6:.1f} ms later")

    def _cut_off_as_due(self) -> bool:
        """A reset by the server is the max_line limit at work when the client
        goes on sending more than max_line bytes after its line was found too
        long (a line over twice the limit may do that), and the max_queued
        limit at work when more than
        max_queued bytes may have been waiting for this client: at most what it
        is owed (echo: what it sent, plus the error line; chat: every chat byte
        not surely routed before its connect attempt, and its welcome) less what it has read (the
        reset may have discarded some of it, which only makes this bound looser).  With
        back-pressure (``high_water``) also when more than half the mark may have been
        waiting for it: a queue over the mark stays over it until it has drained to half, and
        one over it for ``stall_timeout_ms`` is cut off (as in fakewinsock.testing's models)."""
        sim = self.sim
        cfg = sim.server.config
        k = self.plan.too_long
        if k >= 0 and len(self.lines[k]) > 2 * cfg.limits.max_line:
            return True  # it may send more than max_line bytes after being hung up: cut off
        if sim.mode is Mode.ECHO:
            # (the error line only where one may be owed: a line over max_line, or a tail over it)
            owed = self.sent_bytes + (len(error_line(cfg.limits.max_line))
                                      if k >= 0 or len(self.plan.tail) > cfg.limits.max_line else 0)
            if k >= 0:  # hung up: the replies to the lines before its line over max_line, and the error line
                # (what it sends after them is discarded, never echoed; hangup_edges' client sends twice max_line)
                owed = (min(self.sent_bytes, sum(len(line) + 1 for line in self.lines[:k]))
                        + len(error_line(cfg.limits.max_line)))
        else:
            # Joined when the server accepted it, which may be long before the welcome arrives, and
            # even before the client saw itself connected: every chat byte the server may have routed
            # since the attempt's SYN left (see connect), and the welcome.
            owed = sim.chat_bytes - self.chat_mark + len(welcome_line(self.name)) if self.name else 0
        high = cfg.limits.high_water
        return owed - self.read_bytes > (high // 2 if high else cfg.limits.max_queued)

    def _progress(self) -> str:
        if self.sim.mode is Mode.ECHO:
            return f"{self.got} of {self.n_replies} replies"
        return f"{sum(len(v) for v in self.heard.values())} lines heard"

    def _echo_reply(self, line: bytes) -> None:
        k = self.got
        want_line = self._echo_due(k)
        if line != want_line:
            want = repr(want_line[:40]) if want_line else "nothing"
            self._fail(f"reply {k} is {line[:40]!r}, expected {want}")
            return
        self.got += 1
        self.sim.report.replies += 1
        if self.got == self.n_replies and self.sent_all and self.reset_at < 0:
            self._close()

    def _echo_due(self, k: int) -> bytes:
        """Echo: the ``k``-th reply due (b"" for none)."""
        if k >= self.n_replies:
            return b""
        if k == self.plan.too_long:
            return error_line(self.sim.server.config.limits.max_line)
        return self.lines[k] + b"\n"

    def _chat_line(self, line: bytes) -> None:
        if self.state == _JOINING:
            if line != welcome_line(self.name):
                self._fail(f"first line is {line[:60]!r}, expected the welcome")
                return
            self.welcome_ns = self.sim.ws.now_ns
            self.state = _READY
            self.sim.joined(self)
            return
        if self.plan.too_long >= 0 and line == error_line(self.sim.server.config.limits.max_line):
            self.hung_up = True
            self._await_hangup()
            return
        if self.hung_up:
            # Hung up, it is no member: the lines routed before are queued before its error line, and
            # none after.
            self._fail(f"a chat line after its error line (hung up, no longer a member): {line[:60]!r}")
            return
        sender, sep, text = line.partition(b": ")
        if not sep or sender not in self.sim.by_name or sender == self.name:
            self._fail(f"chat line from an unknown sender or from itself: {line[:60]!r}")
            return
        if self.fin_sent and self.end_seen_ns < 0 and not self.sim.server.config.limits.high_water:
            # (With back-pressure the server may hold this client's receive back, so that its FIN
            # is seen only when it reads again: lines routed to it meanwhile are its due.)
            self._note_end_seen()
        got = self.heard.setdefault(sender, [])
        got.append(text[:-1])
        s = self.sim.by_name[sender]
        heard = self.heard_bytes[sender] = self.heard_bytes.get(sender, 0) + len(line)
        heard = min(heard, s.chat_sent)  # (a last line routed without its newline at EOF gains one)
        if heard > s.chat_heard_max:
            self.sim.chat_unheard -= heard - s.chat_heard_max
            s.chat_heard_max = heard
        self.sim.report.replies += 1
        if self.sim.barrier:
            if len(got) == s.owed and s.reset_at < 0 and s.ended_as in (None, _Ending.SERVED):
                self.waiting_for -= 1
            self.leave_if_heard_all()

    def leave_if_heard_all(self) -> None:
        """Barrier chat: once it has sent everything, leave (FIN) when it has
        heard all it waits for (``waiting_for`` is 0): every line owed by each
        other client that does not plan to reset, except from those that ended
        before the server had all their lines (cut off, dropped, failed): of
        those, only what the server took from them until then is owed, and it
        is queued for this client before their end (their reset) can be seen.
        A client that plans to reset is not waited for (a prefix of its lines
        is owed)."""
        if self.waiting_for == 0 and self.sent_all and self.state == _ACTIVE:
            self._close()

    # ------------------------------------------------------------ sending

    def start_sending(self) -> None:
        self.state = _ACTIVE
        if self.sim.mode is Mode.ECHO:
            p = self.plan
            self.echo_stream = (b"".join(self.chunks) if p.too_long < 0 and not p.tail
                                else b"".join([self._echo_due(k) for k in range(self.n_replies)]))
        self._send_chunk(0)

    def _send_chunk(self, j: int) -> None:
        peer = self.peer
        if self.state != _ACTIVE or peer is None:
            return
        if j == self.reset_at and not self.plan.reset_delay_ns:  # (a delayed reset: after everything is sent)
            self._reset()
            return
        if j >= len(self.chunks):
            self._sent_everything()
            return
        if peer.was_reset:
            return  # reported by changed
        chunk = self.chunks[j]
        if self.sim.report.idle_timeout_ms:
            self._look_arrived(peer)
            self.next_chunk = j + 1
        ended = self.send(chunk)
        if self.plan.read_pause_ns and self.sim.mode is Mode.ECHO and self._paused() and self.welcome_ns >= 0:
            # A reader that pauses: noted now and at the server's next take of this chunk, even when the server
            # had taken all it had been sent (only its bytes not taken yet have the peer wake it: note_taken),
            # so that lines sent after a gap count too (see _overdue_cut_off).  A look, no draw: the same schedule.
            self._note_taken(peer)
        rep = self.sim.report
        rep.bytes_sent += len(chunk)
        ws = self.sim.ws
        now = ws.now_ns
        if ended:
            rep.lines_sent += ended
            self.line_ns = now
        said = len(chunk) + ended * (len(self.name) + 2)
        self.sim.chat_bytes += said
        self.chat_sent += said
        self.sim.chat_unheard += said
        ws.call_at(now + self.pauses_ns[j], self._send_chunk, j + 1)

    def _sent_everything(self) -> None:
        self.sent_all = True
        ws = self.sim.ws
        self.finished_sending_ns = ws.now_ns
        if self.reset_at == len(self.chunks):
            delay = self.plan.reset_delay_ns or _randint(self.sim.rng, 0, 2 * _MS)
            ws.call_at(ws.now_ns + delay, lambda _: self._reset())
        elif self.plan.half_close:
            self._close()  # FIN at once: every reply to a line sent is still owed
            if self.plan.deaf_stop_ns:  # deaf_drains: a stop while it drains nothing
                ws.call_at(ws.now_ns + _MS, self._deaf_watch)
        elif self.sim.mode is Mode.ECHO:
            if self.got == self.n_replies or self.plan.half_close:
                self._leave()
        elif self.sim.barrier:
            self.leave_if_heard_all()
        else:
            self.last_rx = max(self.last_rx, ws.now_ns)
            ws.call_at(ws.now_ns + _QUIET_NS, self._linger)

    def _deaf_watch(self, _: object) -> None:
        """deaf_drains' client, after its FIN: once the server has taken its end (a query of the fake's state,
        polled every ms: no call, no draw), the stop is asked for DEAF_STOPS_NS later; not if that takes so
        long that the stop's second would end after its deafness (not served yet: a full server, accept faults)."""
        sim = self.sim
        ws = sim.ws
        if self.state == _DONE or sim.stopping or self.peer is None:
            return
        now = ws.now_ns
        if ws.end_taken(self.peer):
            ws.call_at(now + self.plan.deaf_stop_ns, sim.request_stop)
        elif now + self.plan.deaf_stop_ns + STOP_LIMIT_NS < self.arrival_ns + self.plan.read_pause_ns:
            ws.call_at(now + _MS, self._deaf_watch)

    def _linger(self, _: object) -> None:
        if self.state != _ACTIVE:
            return
        now = self.sim.ws.now_ns
        if now - self.last_rx >= _QUIET_NS or now - self.finished_sending_ns >= _MAX_LINGER_NS:
            self._leave()
        else:
            self.sim.ws.call_at(self.last_rx + _QUIET_NS, self._linger)

    def _leave(self) -> None:
        """Served: close now, or (``stay_ns``) stay connected that long first."""
        stay = self.plan.stay_ns
        if not stay:
            self._close()
        elif not self.staying:
            self.staying = True
            self.sim.talker_settled(self)
            self.sim.ws.call_at(self.sim.ws.now_ns + stay, lambda _: self._close() if self.state == _ACTIVE else None)

    def _close(self) -> None:
        """Close gracefully: FIN, then read until the server's FIN, then close.
        (Closing outright would make whatever the server still sends reset the
        connection, and a reset discards this client's last bytes in flight.)

        A client hung up for its line over max_line (and not planned to
        half-close) sends no FIN: the server closes the connection after the
        error line, and must within HANGUP_LIMIT_NS of it (a server whose
        shutdown fails would otherwise be seen to close only once the client's
        FIN came).  (The error line may come late: with back-pressure the
        server may not read the line for a while.)"""
        if self.plan.idle and self.sim.report.idle_timeout_ms:
            if not self.staying:  # it stays, idle, until the server closes it
                self.staying = True
                self.sim.talker_settled(self)
                self._idle_watch()
            return
        if self.plan.too_long >= 0 and not self.plan.half_close:
            if not self.hangup_wait:
                self.hangup_wait = 1
                self._await_hangup()
            return
        if not self.fin_sent:
            self.fin_ns = self.sim.ws.now_ns
        self.shutdown()  # the FIN follows every byte already queued

    def _await_hangup(self) -> None:
        """Hung up, waiting for the server's FIN: from the error line on, for HANGUP_LIMIT_NS."""
        if self.hangup_wait == 1 and self._hung_up_as_due():
            self.hangup_wait = 2
            ws = self.sim.ws
            ws.call_at(ws.now_ns + HANGUP_LIMIT_NS, self._hangup_late)

    def _hangup_late(self, _: object) -> None:
        if self.state != _DONE and not self.sim.stopping:
            self._fail(f"sent a line over max_line and got its error line, but not the server's FIN "
                       f"{HANGUP_LIMIT_NS / 1e9:g} s later")

    def _reset(self) -> None:
        if self.state == _DONE:
            return
        peer = self.peer
        if peer is not None and not self.fin_sent and self.sim.ws.held_with_io(peer):
            self.sim.resets_held += 1  # (a query of the fake's state: no call, no draw)
        self.send_reset()
        self.sim.report.reset_by_plan += 1
        self.ended_as = _Ending.RESET
        self.finish()

    # ------------------------------------------------------------ the chat check

    def _note_end_seen(self) -> None:
        """Chat, a line arriving after its FIN: if the server has taken the end
        (reaped a receive of 0 bytes: :meth:`FakeWinsock.end_taken`), it has
        this client's end; lines sent more than the grace after now must not
        reach it (see :meth:`check_chat`).  Not from when the FIN arrived
        (``fin_read``): a busy server posts or reaps its next receive late, and
        lines it routes to the client meanwhile are due (an events group
        serving some sixty chat clients took up to 3 ms, seed 35 with AcceptEx
        faults among the latecomers: a false alarm).  Noted as lines arrive,
        not by a timer of its own, which would change the fake's schedule."""
        assert self.peer is not None
        if self.sim.ws.end_taken(self.peer):
            self.end_seen_ns = self.sim.ws.now_ns + self.sim.end_grace_ns
            self.heard_at_end = {name: len(lines) for name, lines in self.heard.items()}

    def _after_end(self, s: _Client, start: int) -> int:
        """Of the lines heard from ``s`` (a run of its lines from ``start``), the
        first one that ``s`` sent after the server had this client's end (-1: none)."""
        if self.end_seen_ns < 0:
            return -1
        for k in range(start + self.heard_at_end.get(s.name, 0), start + len(self.heard[s.name])):
            if k < len(s.line_sent_ns) and s.line_sent_ns[k] > self.end_seen_ns:
                return k
        return -1

    def check_chat(self) -> None:
        """Check, at the end, what this client heard from each sender."""
        sim = self.sim
        if (sim.barrier and self.reset_at < 0 and self.plan.too_long < 0 and self.ended_as == _Ending.SERVED
                and not sim.stopping):
            # A client that stayed (a member from before anyone sent until its FIN; not hung up) hears every line
            # the server took: all of those of each other client served, and of each client the
            # server ended (cut off, dropped), the same lines as every other client that stayed.
            for s in sim.clients:
                if s is self or s.reset_at >= 0:
                    continue
                got = self.heard.get(s.name, [])
                if s.ended_as == _Ending.SERVED:
                    if got != s.lines[:s.owed]:
                        sim.error(f"client {self.index} {self.name.decode()}: did not hear exactly the "
                                  f"{s.owed} lines of client {s.index} {s.name.decode()}")
                elif s.ended_as in (_Ending.CUT_OFF, _Ending.DROPPED):
                    first = sim.heard_by_stayers.setdefault(s.index, (len(got), self))
                    if len(got) != first[0]:
                        sim.error(f"client {self.index} {self.name.decode()}: heard {len(got)} lines of client "
                                  f"{s.index} {s.name.decode()} ({s.ended_as.value} by the server), "
                                  f"client {first[1].index} heard {first[0]}: both stayed, so each must hear "
                                  "every line the server took from it")
        for sender_name, got in self.heard.items():
            s = self.sim.by_name[sender_name]
            k0 = 0 if self.sim.barrier else next(
                (k for k, t in enumerate(s.line_sent_ns) if t > self.welcome_ns), len(s.lines))
            n = len(got)
            start = next((i for i in range(min(k0, len(s.lines) - n) + 1) if s.lines[i:i + n] == got), -1)
            if start < 0:
                self.sim.error(
                    f"client {self.index} {self.name.decode()}: the {n} lines heard from "
                    f"{sender_name.decode()} are not a run of its lines in order starting at or before "
                    f"line {k0}")
                continue
            late = self._after_end(s, start)
            if late >= 0:
                self.sim.error(
                    f"client {self.index} {self.name.decode()}: heard line {late} of {sender_name.decode()}, "
                    f"sent at {s.line_sent_ns[late] / 1e9:.6f} s, after the server had this client's end "
                    f"(its FIN, taken by {(self.end_seen_ns - self.sim.end_grace_ns) / 1e9:.6f} s): a client "
                    "that has left must not get lines sent after that")


class _Witness(_Client):
    """Chat with lurkers: every client that reads all the time (not a slow,
    stuck or hung reader) notes, in ``sim.first_heard``, when it heard each
    line of a sender that sent its first line after it joined, and is
    watched (:meth:`watch`): no line may reach it late."""

    __slots__ = ("late",)

    def __init__(self, sim: _Sim, index: int, plan: ClientPlan) -> None:
        super().__init__(sim, index, plan)
        self.late = False  # a line reached it late (reported once)

    def start_sending(self) -> None:
        sim = self.sim
        if not self.plan.stuck and self.plan.too_long < 0:  # (hung up, it is owed no line routed after that)
            sim.ws.call_at(sim.ws.now_ns + sim.lurk_grace_ns // 2, self.watch)
        super().start_sending()

    def _chat_line(self, line: bytes) -> None:
        super()._chat_line(line)
        if self.state != _DONE and self.welcome_ns >= 0:
            sim = self.sim
            name = line.partition(b": ")[0]
            s = sim.by_name.get(name)
            if s is not None and s is not self and self.welcome_ns < s.line_sent_ns[0]:
                first = sim.first_heard.setdefault(name, [])
                if len(first) < len(self.heard.get(name, ())):
                    first.append(sim.ws.now_ns)

    def watch(self, _: object = None) -> None:
        """While it is connected and has not sent its FIN: a line of a sender
        that another client has heard, both having joined before that sender
        sent its first line, was queued for this one too by then; from then on
        the server must keep sending to it (it reads all the time, once a
        pause of its own is over), so it may not hear nothing for
        ``sim.lurk_grace_ns`` (10 ms and more: the fake moves a window's worth
        of bytes within a fraction of a millisecond).  Checked every half of
        that.  A server thread that sleeps while output waits for an idle
        client fails it."""
        sim = self.sim
        if self.state != _ACTIVE or self.fin_sent or self.late or sim.stopping:
            return
        now = sim.ws.now_ns
        since = now - sim.lurk_grace_ns
        if max(self.last_rx, self.arrival_ns + self.plan.read_pause_ns) <= since:
            for name, first in sim.first_heard.items():
                s = sim.by_name[name]
                if s is self or self.welcome_ns >= s.line_sent_ns[0]:
                    continue
                n = len(self.heard.get(name, ()))
                if len(first) > n and first[n] <= since:
                    self.late = True
                    who = " (a silent listener)" if self.plan.lurk else ""
                    sim.error(f"client {self.index} {self.name.decode()}{who}: line {n} of {name.decode()} "
                              f"reached another client at {first[n] / 1e9:.6f} s, but nothing reached this one in "
                              f"the {sim.lurk_grace_ns / 1e6:g} ms since (both joined before that client's first "
                              "line: it was queued for both)")
                    return
        sim.ws.call_at(now + sim.lurk_grace_ns // 2, self.watch)


class _Lurker(_Witness):
    """A client that sends nothing (the lurkers feature): it stays connected
    until every client that talks is done (or staying), then leaves; in chat,
    first it waits until it has heard every line it is owed (see
    :meth:`stop_lurking`)."""

    __slots__ = ("need",)

    def __init__(self, sim: _Sim, index: int, plan: ClientPlan) -> None:
        super().__init__(sim, index, plan)
        self.need: list[_Client] = []  # chat, once released: the senders whose lines it has not all heard yet

    def _sent_everything(self) -> None:
        self.sent_all = True
        self.finished_sending_ns = self.sim.ws.now_ns
        self.sim.lurk(self)

    def stop_lurking(self) -> None:
        """Every client that talks is done or staying: leave, in chat once it
        has heard every line owed by each sender that was served.

        Owed: the lines such a sender sent after this client read its welcome
        (it was a member then), up to its last line the server took (all, or
        those before its line over max_line).  The server had routed all of
        them before the sender saw the server's FIN, so they are queued for
        this client or on their way: a correct server sends them at the
        network's pace, and this client, reading, hears them.  It must not
        hear nothing for ``sim.lurk_grace_ns`` (100 ms and more) while some
        are owed: a server that leaves output queued for an idle client (for
        one whose thread sleeps until the client does something) fails."""
        if self.state != _ACTIVE:
            return
        sim = self.sim
        if sim.mode is Mode.ECHO:
            self._leave()
            return
        if not self.late:
            self.need = [s for s in sim.clients if s is not self and self._owed_by(s)]
        now = sim.ws.now_ns
        self.last_rx = max(self.last_rx, now)
        # Even when nothing is owed, it stays that long: a lurker's FIN would wake its server thread and
        # hide a line that the others are owed and that waits for a wake-up.
        sim.ws.call_at(now + sim.lurk_grace_ns, self._lurk_check)

    def _owed_by(self, s: _Client) -> bool:
        """``s`` was served and owes this client lines it has not all heard: it must have heard a
        run of its lines from at or before its first line sent after this client joined, up to the last
        line the server took from it."""
        if s.ended_as != _Ending.SERVED or s.plan.lurk:
            return False
        owed = need = s.owed
        if self.sim.injected:
            # An injected failure may have closed a sender that had half-closed: it sees the server's close
            # as its graceful end, but the server may not have had all its lines: only those that a client
            # that joined before the sender's first line heard (a prefix of them) are surely owed.
            need = min(owed, len(self.sim.first_heard.get(s.name, ())))
        k0 = bisect_right(s.line_sent_ns, self.welcome_ns)  # its first line sent after this client joined
        if k0 >= need:
            return False
        got = self.heard.get(s.name, [])
        return not any(0 <= end - len(got) <= k0 and s.lines[end - len(got):end] == got
                       for end in range(need, owed + 1))

    def _chat_line(self, line: bytes) -> None:
        super()._chat_line(line)
        if self.need and self.state == _ACTIVE:
            self.need = [s for s in self.need if self._owed_by(s)]

    def _lurk_check(self, _: object) -> None:
        if self.state != _ACTIVE:
            return
        if not self.need:
            self._leave()
            return
        sim = self.sim
        now = sim.ws.now_ns
        if now - self.last_rx < sim.lurk_grace_ns:
            sim.ws.call_at(self.last_rx + sim.lurk_grace_ns, self._lurk_check)
            return
        self.late = True
        s = self.need[0]
        k0 = bisect_right(s.line_sent_ns, self.welcome_ns)
        sim.error(f"client {self.index} {self.name.decode()} (a silent listener): heard nothing for "
                  f"{sim.lurk_grace_ns / 1e6:g} ms while lines {k0} to {s.owed - 1} of {s.name.decode()} were owed "
                  f"to it ({len(self.heard.get(s.name, []))} of its lines heard; {len(self.need)} senders owed "
                  "lines): sent after it joined, routed before that client was served; queued for it, never sent")
        self.need = []
        self._leave()


class _SlowReader(_Client):
    """A slow reader (the slow_readers feature): at most ``plan.read_bytes``
    a read, one read every ``plan.read_every_ns``; with ``plan.pipeline``
    (echo) it sends a chunk only while at most that many bytes of its replies
    would be unread, so what is queued for it stays under max_queued."""

    __slots__ = ("next_read_ns", "held", "complete")

    def __init__(self, sim: _Sim, index: int, plan: ClientPlan) -> None:
        super().__init__(sim, index, plan)
        self.read_max = plan.read_bytes
        self.next_read_ns = 0
        self.held = -1  # the chunk it holds back (-1: none)
        self.complete = 0  # echo: the bytes of its whole lines sent (the replies due so far)

    def reading(self) -> bool:
        peer = self.peer
        assert peer is not None
        if not peer.was_reset and self.sim.ws.now_ns < self.next_read_ns:
            return False
        return super().reading()

    def received(self, data: bytes) -> None:
        peer = self.peer
        if data and peer is not None:
            ws = self.sim.ws
            self.next_read_ns = ws.now_ns + self.plan.read_every_ns
            ws.call_at(self.next_read_ns, lambda _: self.changed(peer))
        super().received(data)
        j = self.held
        if j >= 0 and self.state == _ACTIVE and self._room(j):
            self.held = -1
            self._send_chunk(j)

    def _room(self, j: int) -> bool:
        """Whether chunk ``j`` may go: no reply unread, or not more than the
        pipeline's bytes with it.  (Only whole lines count: the server holds a
        partial line back.)"""
        unread = self.complete - self.read_bytes
        return unread <= 0 or unread + len(self.chunks[j]) <= self.plan.pipeline

    def _send_chunk(self, j: int) -> None:
        if not self.plan.pipeline or j >= len(self.chunks) or self.state != _ACTIVE:
            super()._send_chunk(j)
            return
        if not self._room(j):
            self.held = j
            return
        before = self.sent_bytes
        super()._send_chunk(j)
        chunk = self.chunks[j]
        nl = chunk.rfind(b"\n")
        if self.sent_bytes > before and nl >= 0:
            self.complete = before + nl + 1


class _Hung(_Client):
    """A hung reader (the hung_readers feature): a stuck reader that never
    ends by itself: the server cuts it off or closes it at the stop."""

    __slots__ = ()

    def _sent_everything(self) -> None:
        self.sent_all = True
        self.finished_sending_ns = self.sim.ws.now_ns


class _Ender(_Client):
    """full_groups' ender (``plan.hold_reads``): once joined it reads nothing
    until every client has arrived, so that its connection, ended (its FIN read by the
    server) but owed replies, holds its place meanwhile."""

    __slots__ = ()

    def _paused(self) -> bool:
        return self.state == _ACTIVE and self.sim.arrived < len(self.sim.clients)  # (chat: after its welcome)

    def reading(self) -> bool:
        peer = self.peer
        assert peer is not None
        if peer.was_reset or not self._paused():
            return True
        if self not in self.sim.held_readers:
            self.sim.held_readers.append(self)  # (changed once every client has arrived)
        return False


def _client_class(plan: ClientPlan, witness: bool) -> type[_Client]:
    """The class of the client with this plan (``witness``: chat with lurkers)."""
    if plan.lurk:
        return _Lurker
    if plan.hold_reads:
        return _Ender
    return _Hung if plan.hang else _SlowReader if plan.read_bytes else _Witness if witness else _Client


_QUIET_NS = 5 * _MS
#: A client hung up for a line over max_line gets the server's FIN within this of its error line (see
#: _Client._close).
HANGUP_LIMIT_NS = 1_000 * _MS
#: full_groups: the clients after the wave arrive at the latest this long after the first arrival.
WAVE_LIMIT_NS = 1_000 * _MS
#: How long a lurker owed lines may hear nothing (plus 20 times the fake's longest latency and
#: completion delay): see _Lurker.stop_lurking.
LURK_GRACE_NS = 10 * _MS
#: A stop requested mid-run must have the server return within this, as in fakewinsock.testing's check: a
#: correct server returns within milliseconds once it has reaped what it cancelled (ovserver's stop
#: gives up after stop_grace_ms, 1 s).
STOP_LIMIT_NS = 1_000 * _MS
#: Swarm traffic: how long after every client is done the server is asked to stop; the
#: connections of clients that are gone must be closed by then.
QUIET_SECOND_NS = 1_000 * _MS
#: The share of the clients that arrive together.
FLOOD_FRACTION = 0.25
_MAX_LINGER_NS = 50 * _MS


def _check_causes(sim: _Sim) -> None:
    """The clients' causes against the server's counts.  A client the server
    ended unasked is judged by bounds: dropped while an injected WSARecv or
    WSASend failure allows one, cut off while more than the output limit (or
    half the back-pressure mark) may have waited for it, which is loose (it
    counts what is in flight and in the client's window).  So a client ended
    for no cause could pass for either: each must be matched by the server's
    count of that cause (a drop by an I/O error, or a failure after the
    client's FIN; a cut-off by one of its cut-offs, I/O errors or failures).
    Not by a hang-up: the server closes a hung-up
    client gracefully, once it has sent the error line and read the client's
    FIN, or cuts it off (counted so) for sending on after the error line or
    staying over the back-pressure mark; a hung-up client reset otherwise
    (its error line dropped: hangup-fin-resets-error-line) was ended for no
    cause.  And the server may count no more
    graceful ends (a receive of 0 bytes) than clients sent a FIN."""
    r, s = sim.report, sim.report.server
    # (A client sends its FIN by shutdown, or by its graceful close once served: a hung-up client.)
    fins = sum(1 for c in sim.clients if c.fin_sent or c.ended_as is _Ending.SERVED)
    if s.ended > fins:
        sim.error(f"the server counted {s.ended} clients that ended (a receive of 0 bytes: the client's FIN), but "
                  f"only {fins} clients sent a FIN")
    # (A failure after the client's FIN was read counts in ended only, as ended_then_failed: the first end
    # seen.  So does a reset then, which this bound lets pass for a failure.)
    failed = s.io_errors + s.ended_then_failed
    if r.dropped > failed:
        sim.error(f"{r.dropped} clients were closed by the server as injected failures allow, but the server "
                  f"counted {s.io_errors} I/O errors and {s.ended_then_failed} failures after a client's FIN: the "
                  "others were closed for no failure")
    elif r.cut_off + r.dropped + r.timed_out > s.cut_off + failed + s.timed_out:
        sim.error(f"{r.cut_off} clients were cut off as due, {r.dropped} dropped and {r.timed_out} timed out, but the "
                  f"server counted only {s.cut_off} cut off, {s.io_errors} I/O errors, {s.ended_then_failed} "
                  f"failures after a client's FIN and {s.timed_out} timed out (and {s.hung_up} hung up, whom it "
                  "closes gracefully): the others were ended for no cause")
    # A client's reset (no FIN before it) reaches a connection the server holds open with a receive or a send
    # pending as WSAECONNRESET on that operation (FakeWinsock.held_with_io: not a connection accepted but not
    # yet taken into service, which a stop closes uncounted); the server closes it then, or has
    # closed it meanwhile for another cause (a cut-off, a hang-up, an idle time-out, the stop) or after an
    # injected failure: it may not count it as
    # an I/O error (a failed GetQueuedCompletionStatus's GetLastError is the Win32 error,
    # ERROR_NETNAME_DELETED, not WSAECONNRESET; tests/mutants/red5_mutants.py).
    # A client that read the error line for its line over max_line was hung up, counted when the line was found
    # too long, whatever ended its connection then (a reset, a cut-off, the stop).
    told = sum(1 for c in sim.clients if c.plan.too_long >= 0 and (c.hung_up or c.got > c.plan.too_long))
    closed = s.cut_off + s.hung_up + s.timed_out + s.closed_at_stop
    if told > closed:
        sim.error(f"{told} clients read the error line for a line over max_line, but the server counted only "
                  f"{closed} connections it closed itself (cut off, hung up, timed out, closed at the stop): a "
                  "hang-up counted only once its FIN goes?")
    others = s.cut_off + s.hung_up + s.timed_out + s.closed_at_stop + sim.injected_failures
    if sim.resets_held > s.reset + others:
        sim.error(f"{sim.resets_held} clients reset while the server held their connection (a receive or a send "
                  f"pending), but the server counted "
                  f"{s.reset} resets, and {others} other ends (cut off, hung up, timed out, closed at the stop, "
                  "injected failures): a reset counted as something else (an I/O error?)")


def _served_at_once(sim: _Sim) -> tuple[int, int]:
    """The most clients the server certainly had open at one moment, as the clients saw it, and that
    moment: a client's connection was open from the moment it read the server's first byte (sent after its
    accept) to the later of: (echo) the moment it sent the last line whose echo it read (the server took that
    line later); if it was served to its end (the server's FIN after its own and every reply, no line over
    max_line), its FIN (the server closes once it has taken it; or at the stop, if that came sooner); a
    connection's life is one stretch of time.  (Not by the FIN with an idle time-out or injected failures: the
    server may then close a client gracefully before its FIN, which it reads after sending it.  Chat has no
    line evidence: a line heard does not say which of its sender's lines it was.)  Post hoc, from what the
    clients kept: no call, no draw."""
    by_fin = not sim.report.idle_timeout_ms and not sim.injected_failures
    stop = sim.report.stop_at_ns
    spans = []
    for c in sim.clients:
        if c.first_rx_ns < 0:
            continue
        end = -1
        k = c.got - 1  # echo: its last reply read answers its line k (unless that is the error line)
        if sim.mode is Mode.ECHO and 0 <= k < len(c.line_sent_ns) and (c.plan.too_long < 0 or k < c.plan.too_long):
            end = c.line_sent_ns[k]
        if by_fin and c.ended_as is _Ending.SERVED and c.plan.too_long < 0 and c.fin_ns >= 0:
            end = max(end, c.fin_ns if stop is None else min(c.fin_ns, stop))
        if c.first_rx_ns <= end:
            spans.append((c.first_rx_ns, end))
    return _most_at_once(spans)


def _most_at_once(spans: list[tuple[int, int]]) -> tuple[int, int]:
    """The most of these closed spans (start <= end) that hold one moment, and the first span's start, in
    their order, where that many hold; (0, 0) without spans."""
    # The most at once is reached at some span's start t: the spans open then are those started by t
    # (s <= t) less those ended before it (e < t, so s < t too: every span has s <= e).  By sorted starts
    # and ends, not by a scan of every span per span (quadratic: minutes at 20000 clients); the first
    # span, in the clients' order, that reaches the most gives the moment, as the scan did.
    starts = sorted(s for s, _ in spans)
    ends = sorted(e for _, e in spans)
    best = (0, 0)
    for start, _ in spans:
        n = bisect_right(starts, start) - bisect_left(ends, start)
        if n > best[0]:
            best = (n, start)
    return best


def _check_peak(sim: _Sim) -> None:
    """The client limit and the summary's peak of connections open at once against the clients: no more
    than ``max_clients`` served at once (:func:`_served_at_once`); the peak at least that, and at least 1 if
    any client read a byte the server sent it (the server had its connection open), at most the connections
    it accepted and its client limit."""
    s = sim.report.server
    limit = sim.server.config.limits.max_clients
    served, at_ns = _served_at_once(sim)
    if served > limit:
        sim.error(f"{served} clients served at once at {at_ns / 1e9:.6f} s (each had read a byte the server sent "
                  f"it by then, and later had a line taken by the server or sent the FIN that ended it), but the "
                  f"client limit is {limit}")
    if s.peak_connections < 1 and any(c.read_bytes for c in sim.clients):
        sim.error(f"the server counted a peak of {s.peak_connections} connections open at once, but it sent bytes "
                  "to a client it served: a peak taken before the new connection counts?")
    elif s.peak_connections < served:
        sim.error(f"the server counted a peak of {s.peak_connections} connections open at once, but it served "
                  f"{served} clients at once at {at_ns / 1e9:.6f} s (each had read a byte the server sent it by "
                  "then, and later had a line taken by the server or sent the FIN that ended it): a peak taken "
                  "before the new connection counts?")
    elif s.peak_connections > min(s.accepted, limit):
        sim.error(f"the server counted a peak of {s.peak_connections} connections open at once, but it accepted "
                  f"{s.accepted} and its client limit is {limit}")


def _back_pressure(limits: Limits | None, given: bool, mode: str, high_water: int | None,
                   stall_timeout_ms: int | None, seed: int, features: tuple[str, ...]) -> tuple[Limits, int]:
    """The run's limits with the back-pressure mark, and the stall time-out (0: off; see
    :func:`simulate`)."""
    lim = limits if limits is not None else Limits()
    if stall_timeout_ms is not None and stall_timeout_ms < 1:
        raise ValueError(f"stall_timeout_ms must be 1 or more, not {stall_timeout_ms}")
    if high_water is None and given and lim.high_water:
        high_water = lim.high_water
    elif high_water is None and "back_pressure" in features:
        rng = random.Random(f"ovserver-sim:{seed}:back-pressure")
        mark, stall = rng.choice(BACK_PRESSURE_MARKS), rng.choice(STALL_TIMEOUTS_MS)
        high_water = default_high_water(mode, lim.max_queued) if mode == "echo" else min(mark, lim.max_queued // 2)
        stall_timeout_ms = stall if stall_timeout_ms is None else stall_timeout_ms
    elif high_water is None:
        high_water = 0
    elif high_water < 0:
        raise ValueError(f"high_water must be 0 (off) or more, not {high_water}")
    elif not given and high_water >= lim.max_queued:
        high_water = lim.max_queued // 2  # (under a max_queued the swarm drew)
    if not high_water:
        return replace(lim, high_water=0), 0
    return replace(lim, high_water=high_water), stall_timeout_ms or DEFAULT_STALL_TIMEOUT_MS


def simulate(clients: int = 10, messages: int = 5, model: str = "events", mode: str = "echo", seed: int = 0,
             resets: float = 0.0, *, fake_config: FakeConfig | None = None, limits: Limits | None = None,
             arrival_s: float | None = None, barrier: bool = False, trace: str | None = None,
             progress: Callable[[int, int], None] | None = None, trace_format: str | None = None,
             server_class: type[Server] | None = None, plain: bool = False,
             stop_at_s: float | None = None, workers: int = DEFAULT_WORKERS, high_water: int | None = None,
             stall_timeout_ms: int | None = None, accepts: int | None = None,
             idle_timeout_ms: int | None = None, preempt: bool = False) -> SimulationReport:
    """Run the server (``model``, ``mode``) on a fake backend seeded with ``seed``,
    with ``clients`` scripted clients sending ``messages`` lines each; a
    ``resets`` fraction of them reset at a random point.  Clients arrive over
    ``arrival_s`` seconds of virtual time (default: 1 ms per client), a quarter
    of them in one flood.  With
    ``trace``, the fake's trace is streamed there as the run goes, in
    ``trace_format`` (``text``, ``json``, ``jsonl``, ``perfetto``; None: by
    the file name, see :mod:`fakewinsock._trace`), keeping none in memory.
    ``progress(done, total)`` is called as clients finish.  ``server_class``
    runs that server class (a subclass of ovserver's, e.g. with a bug planted)
    instead of the model's; its ``model`` is the one reported.

    **Traffic.**  By default the run is swarm traffic: the seed switches a
    subset of :data:`FEATURES` on (:func:`swarm_features`) and the clients draw
    within them: lines at and over the line limit, big and tiny sends, empty
    lines, a small flow-control window (unless ``fake_config`` is given),
    readers that pause, FIN right after the last send, a last line without its
    newline, resets, every client at once, tight limits (unless ``limits`` is
    given), WSAENOBUFS injected into receives and sends, and into AcceptEx
    in every phase of the run, a client limit of 1 to 3 (when no limit is
    given), lurkers (clients that send nothing and stay until the others are
    done, who talk at a person's pace), slow readers (in echo with output
    backed up under max_queued), hung readers (they stop reading and never
    end: the stop must close them), an idle time-out (:data:`IDLE_TIMEOUTS_MS`:
    one to three idlers stay until the server closes them, and must be closed
    in time; idle talkers, or else one slowloris: :data:`IDLE_SLOWLORIS`; with back-pressure in some
    runs, :data:`BP_IDLE_ODDS`), and a Winsock-call budget
    (:data:`CALL_BUDGET`: a server that spins fails with BusyLoopError).  ``plain`` (and
    ``barrier``) keep the plain traffic.  The limits are expected behaviour: a
    client whose line is over ``max_line`` expects the error line and the
    server's FIN; a client reset when more than ``max_queued`` bytes may have
    been waiting for it was cut off as due; a client closed after an injected
    failure is one the server may drop.  What every client received is
    checked all the same.  In chat, a client that has ended (the server has
    reaped the receive that returned its FIN) must get no line another client sent after that (beyond a
    grace of a millisecond and the fake's latencies); with lurkers, a client
    that reads all the time may not hear nothing for 15 ms while a line is
    queued for it, and a lurker hears every line owed to it before it leaves
    (see :class:`_Witness` and :class:`_Lurker`).

    ``high_water`` and ``stall_timeout_ms``: the server's back-pressure, as
    ``ovserver serve`` takes them (``--high-water``, ``--stall-timeout-ms``;
    0 is off).  None, the default: the swarm's ``back_pressure`` feature
    decides: on the seeds that draw it, echo runs with serve's default (a
    mark of 64 KiB, or half of ``max_queued`` if that is less) and chat with
    a mark of 4, 16 or 64 KiB (serve's ``--high-water``; its chat default is
    off), each with serve's stall time-out of 10 s or a shorter one (50, 200
    or 1000 ms, so that runs reach it), unless ``stall_timeout_ms`` is given;
    on the others, and with plain traffic, it is off (the run is what it was
    before simulate had the option), unless ``limits`` sets a mark of its
    own.  A mark given at or over a ``max_queued`` the swarm drew
    (tight_limits, stuck_readers, slow_readers) is lowered to half of it.
    With back-pressure a client reset while more than half the mark may have
    been waiting for it was cut off as due (the server cuts off a client
    whose queue stays over the mark for the stall time-out), and in chat a
    client's FIN may be seen late (the server holds a paused sender's
    receive back): lines sent after it may still reach it.

    ``accepts``: the server's AcceptEx calls outstanding at once, as ``ovserver
    serve`` takes it (``--accepts``).  None, the default: the swarm's
    ``accepts`` feature decides: on the seeds that draw it, serve's default
    of 16, or 2 or 4 (:data:`ACCEPTS_DRAWN`); on the others, and with plain
    traffic, the lecture notes' one (the run is what it was before simulate
    had the option).

    ``idle_timeout_ms``: the server's idle time-out, as ``ovserver serve`` takes
    it (``--idle-timeout-ms``; 0 is off).  None, the default: the swarm's
    ``idle_timeout`` feature decides (100, 250 or 1000 ms on the seeds that draw
    it, unless back-pressure is on or they draw accept_faults or accept_bursts;
    off otherwise and with plain traffic).  A client the server closes when it
    may have been idle that long is timed out as due.

    ``workers``: the iocp model's worker threads (a fixed default, not the
    CPU count, so that a seed gives the same run on every machine).

    ``preempt``: the fake's thread switches favour the server's
    synchronization calls (``fakewinsock._preempt.PreemptingChooser(seed)``:
    right after a LeaveCriticalSection, a WSASetEvent, a wait that returned,
    another thread runs its step); off, the default, the seed's run is what it
    was before the option.

    ``stop_at_s``: the server is asked to stop at that moment of virtual time,
    while clients talk (and others keep arriving).  It must return within
    1 s (:data:`STOP_LIMIT_NS`) without giving up on an operation; the
    clients it closes, resets or refuses from then on are cut off as due (the
    report counts them), and what they received until then is checked as
    ever.

    ``barrier``: every client waits, once connected (chat: after its welcome),
    until all have connected (or given up), so all are connected at once
    before anyone sends (the lecture notes' "20000 clients connected at
    once").  In chat, survivors then stay until they have heard every other
    survivor's lines, or until that client has ended without being served
    (cut off by the server, as ``max_queued`` does to clients owed more than
    it, or failed), and the chat check is exact: each surviving client hears
    all the lines of each other survivor; of each client the server cut off,
    the same lines as every other survivor (those the server took from it
    before, a prefix of its lines); and a prefix of each resetting client's.
    All clients must fit at once (at most ``limits.max_clients``)."""
    if clients < 0 or messages < 0 or not 0.0 <= resets <= 1.0:
        raise ValueError("clients and messages must be >= 0 and resets in [0, 1]")
    if stop_at_s is not None and not stop_at_s >= 0:
        raise ValueError(f"stop_at_s must be >= 0 (seconds of virtual time), not {stop_at_s}")
    wall0 = time.perf_counter()
    features = () if plain or barrier else swarm_features(seed)
    limits_given, fake_given = limits is not None, fake_config is not None
    rng = random.Random(f"ovserver-sim:{seed}:limits")
    if limits is None and "tight_limits" in features:
        limits = Limits(max_line=rng.choice([100, 1000, 8000]), max_queued=rng.choice([4096, 32768, 300_000]),
                        max_clients=rng.choice([2, 10, 10_000]))
    if fake_config is None and "small_window" in features:
        fake_config = FakeConfig(window=rng.choice([256, 2048, 16384]))
    late = random.Random(f"ovserver-sim:{seed}:late-run")  # the late features' (see LATE_FEATURES)
    if "stuck_readers" in features:  # a stuck reader's window fills, then its output backs up to the limit
        if limits is None:
            limits = Limits(max_queued=late.choice([16384, 32768]))
        if fake_config is None:
            fake_config = FakeConfig(window=late.choice([4096, 16384]))
    if "slow_readers" in features:  # output backed up over many 64 KiB sends, under the limit
        slow = random.Random(f"ovserver-sim:{seed}:slow-run")
        if limits is None:
            limits = Limits(max_queued=slow.choice([256 * 1024, 512 * 1024]))
        if fake_config is None:
            fake_config = FakeConfig(window=slow.choice([16 * 1024, 64 * 1024]))
    if (not limits_given and "piped" in features and mode == "echo" and "slow_readers" not in features
            and (piped := random.Random(f"ovserver-sim:{seed}:piped-run")).random() < 0.5):
        # An output limit under one receive's worth: a piped client is cut off within one receive (the
        # lower of it and tight_limits' or stuck_readers'; not with slow_readers, whose output stays
        # backed up under the limit over many 64 KiB sends; not in chat, where one receive of a piped
        # file routed to every member would cut them all off).
        lim = limits if limits is not None else Limits()
        limits = replace(lim, max_queued=min(lim.max_queued, piped.choice(PIPED_MAX_QUEUED)))
    if not limits_given and "few_clients" in features and "tight_limits" not in features:
        # (stuck_readers' output limit kept; tight_limits draws a client limit of its own)
        few = random.Random(f"ovserver-sim:{seed}:few-clients").choice(FEW_CLIENTS)
        if mode == "chat":
            few = max(2, few)  # one client at a time, and nobody would hear anybody
        limits = replace(limits if limits is not None else Limits(), max_clients=few)
    if accepts is None:
        accepts = (random.Random(f"ovserver-sim:{seed}:accepts").choice(ACCEPTS_DRAWN) if "accepts" in features
                   else 1)
    if "accept_bursts" in features and not fake_given:
        latency, delay, background = random.Random(f"ovserver-sim:{seed}:burst-fake").choice(BURST_FAKES)
        fake_config = replace(fake_config if fake_config is not None else FakeConfig(), latency=latency,
                              completion_delay=delay, background=background)
    limits, stall_timeout_ms = _back_pressure(limits, limits_given, mode, high_water, stall_timeout_ms, seed,
                                              features)
    if idle_timeout_ms is None:
        idle_timeout_ms = (random.Random(f"ovserver-sim:{seed}:idle-timeout").choice(IDLE_TIMEOUTS_MS)
                           if _idle_drawn(features, limits, seed) else 0)
    # (a pure function of its arguments: drawn here, before the fake, for the call budget)
    plans = scenario_plan(clients, messages, seed, resets, arrival_s, features, limits,
                          window=(fake_config or FakeConfig()).window, chat=mode == "chat",
                          idle_timeout_ms=idle_timeout_ms)
    if features and (fake_config is None or fake_config.max_calls is None):
        # A call budget: a server that spins instead of waiting fails (BusyLoopError) rather than
        # running on until something else ends the spin.
        fake_config = replace(fake_config if fake_config is not None else FakeConfig(),
                              max_calls=_call_budget(plans, mode == "chat"))
    ws = FakeWinsock(seed=seed, config=fake_config if fake_config is not None else FakeConfig(),
                     chooser=PreemptingChooser(seed) if preempt else None)
    ws.trace.enabled = trace is not None
    config = ServerConfig(port=12345, model=model, mode=Mode(mode), limits=limits, workers=workers,
                          stall_timeout_ms=stall_timeout_ms, accepts=accepts, idle_timeout_ms=idle_timeout_ms)
    if server_class is not None:
        model = server_class.model
        config = replace(config, model=model)
    classes: dict[str, type[Server]] = {"events": EventServer, "routines": RoutineServer, "iocp": IocpServer}
    cls = server_class if server_class is not None else classes[model]
    server: Server = cls(ws, config)
    report = SimulationReport(model, config.mode.value, clients, messages, seed, resets,
                              traffic="swarm: " + " ".join(features) if features else "plain",
                              server_limits=config.limits, stall_timeout_ms=config.stall_timeout_ms,
                              accepts=config.accepts, idle_timeout_ms=config.idle_timeout_ms)
    if barrier and clients > server.max_connections:
        raise ValueError(f"barrier needs every client connected at once: at most {server.max_connections}")
    sim = _Sim(ws, server, report, config.mode, barrier, progress)
    if features:
        sim.quiet_ns = QUIET_SECOND_NS
    if stop_at_s is None and "early_stop" in features:
        sim.stop_when_settled = sum(1 for p in plans if not p.stay_ns and not p.stuck and not p.at_stop)
    witness = config.mode is Mode.CHAT and any(p.lurk for p in plans)
    sim.clients = [_client_class(p, witness)(sim, i, p) for i, p in enumerate(plans)]
    sim.hanging = sum(1 for p in plans if p.hang)
    sim.talkers_left = sum(1 for p in plans if not p.hang and not p.lurk and not p.at_stop)
    sim.latecomers = [c for c in sim.clients if c.plan.at_stop]
    report.latecomers = len(sim.latecomers)
    for c in sim.latecomers:  # (full_groups' enders read once every client but these has arrived)
        c.arrived = True
    sim.arrived = len(sim.latecomers)
    sim.count_owed()
    if "injections" in features:
        window_ns = int((arrival_s if arrival_s is not None else clients * 0.001) * 1e9)
        for _ in range(_randint(rng, 1, 4)):
            call, count = rng.choice(["WSARecv", "WSASend"]), _randint(rng, 1, 2)
            sim.drops_left += count
            sim.injected_failures += count
            sim.injected = True
            ws.call_at(_randint(rng, 0, window_ns), lambda c: ws.inject_error(c[0], WSAENOBUFS, c[1]), (call, count))

    if "accept_faults" in features:
        # (stop_arrivals' latecomers left out: their arrivals are offsets from the stop)
        _inject_accept_faults(ws, [p for p in plans if not p.at_stop],
                              random.Random(f"ovserver-sim:{seed}:accept-faults"))

    def ready(srv: Server) -> None:
        assert srv.address is not None
        sim.host, sim.port = srv.address
        sim.start_arrivals()
        if stop_at_s is not None:
            sim.stop_at(max(ws.now_ns, int(stop_at_s * 1e9)))
        if not clients:
            srv.request_stop(signal=ws.signal_event)

    if trace is not None:
        ws.trace.stream(trace, trace_format, keep=0)
    try:
        sim.heap.start()  # the plans: they live as long as the run
        report.server = server.run(ready)
    finally:
        sim.heap.release()
        ws.trace.close()
    if report.stop_at_ns is not None:
        report.stop_took_ns = ws.now_ns - report.stop_at_ns
        for c in sim.clients:  # a reset at the stop that had not reached the client when the server returned
            if c.sent_at_stop >= 0 and reset_by_server(c.peer):
                wrong = c.reset_when_quiet()
            else:  # a FIN that it had not read when the server returned (it did not read)
                wrong = c.unread_fin_after_part_of_a_line() if c.state != _DONE else None
            if wrong is not None:
                sim.error(f"client {c.index} {c.name.decode()}: {wrong}")
        report.stopped += sum(1 for c in sim.clients if c.state != _DONE)  # never started, or still connecting
        if report.server.abandoned:
            sim.error(f"the stop gave up on {report.server.abandoned} operations it never reaped")
    _check_causes(sim)
    _check_peak(sim)
    if config.mode is Mode.CHAT:
        for c in sim.clients:
            c.check_chat()
    report.fake_stats = dict(ws.stats)
    report.thread_switches = ws.thread_switches
    report.virtual_ns = ws.now_ns
    report.wall_s = time.perf_counter() - wall0
    return report
