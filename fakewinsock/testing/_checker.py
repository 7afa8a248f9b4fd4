"""The checker: :func:`check_line_server` runs a server on a fake with the
scripted clients of a :class:`~fakewinsock.testing.Scenario` and checks every
byte they receive against a :class:`~fakewinsock.testing.LineModel`.

Owns the run (the clients' lives, the stop, the idle check), the verdicts
(:class:`LineServerReport`, :class:`LineServerFailure`) and the failure's trace
file.  Uses the fake's public interface (:class:`~fakewinsock.FakeWinsock`,
:class:`~fakewinsock.FakePeer`), the chooser, the scenarios and the models.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from .._errors import BusyLoopError
from .._fake import FakeWinsock
from .._owed import (
    log_taken,
    note_taken,
    nothing_on_the_way,
    outbound,
    reset_by_server,
    send_ending,
    sends_posted,
    taken_before,
    unread_before_fin,
)
from .._preempt import PreemptingChooser
from .._scripted import CONNECTING as _CONNECTING
from .._scripted import DONE as _DONE
from .._scripted import ScriptedClient
from .._sim import FakeConfig
from ._chooser import HypothesisChooser
from ._models import EchoModel, LineModel, _Policy
from ._scenarios import _MS, _S, _STOP_SEND_END_WAIT_NS, ClientFault, ClientScript, Scenario

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .._net import Endpoint
    from .._peer import FakePeer

__all__ = ["ServerUnderTest", "CountingServer", "ServerFactory", "check_line_server", "LineServerReport",
           "LineServerFailure"]

#: After the last client is done, the server may finish what is in flight for this long.
_SETTLE_NS = 100 * _MS
#: ... or for this many of its calls, if they take longer (a busy server's: Scenario.call_cost_ns).
_SETTLE_CALLS = 1000
#: The most schedule choices drawn from Hypothesis by default (big scenarios get the simplest answers beyond).
_MAX_DEFAULT_DRAWS = 600
#: A client refused this long (and at least 40 times) is not served.
_REFUSED_FOR_NS = 10 * _S
#: The idle time-out (the model's ``idle_timeout_ms``): the server's clock is GetTickCount64's, in Windows'
#: steps of 15.6 ms, so a client may be closed up to two steps early against the true time
#: (:data:`_IDLE_EARLY_NS`), and up to two steps and 50 ms late (:data:`_IDLE_LATE_NS`: the server's thread
#: that watches the deadlines gets round to it), as ovserver simulate's IDLE_EARLY_NS and IDLE_LATE_NS.
_IDLE_EARLY_NS = 2 * 15_625_000
_IDLE_LATE_NS = 2 * 15_625_000 + 50 * _MS
#: Looks this far apart that found a connection with no receive posted (and none of its bytes taken) mean the
#: server held it back (see _Client._look_held): far longer than a server that keeps up takes to handle a
#: receive that completed and post the next.
_HELD_NS = 10 * _MS


# ====================================================================== the checker

class ServerUnderTest(Protocol):
    """Your server, as :func:`check_line_server` drives it."""

    def serve(self) -> object:
        """Listen on the address the factory was given and serve until :meth:`stop`;
        then close everything (and WSACleanup).  Runs in the test's thread."""
        ...

    def stop(self) -> None:
        """Ask :meth:`serve` to return.  Called from inside the fake's scheduler
        (by a simulated actor): no Winsock calls; set a flag and
        ``ws.signal_event(wake_event)``."""
        ...


class CountingServer(ServerUnderTest, Protocol):
    """A server under test that also says how its clients ended, as it counted
    them (optional: :func:`check_line_server` checks the counts it is given)."""

    def counts(self) -> Mapping[str, int]:
        """After :meth:`serve` returned: ``"ended"``, the number of clients whose
        graceful end (a receive of 0 bytes) the server saw; optionally, both
        ``"reset"``, the clients whose reset (WSAECONNRESET) it saw, and
        ``"closed"``, the connections it closed for a cause of its own (a
        limit, a protocol error, a time-out, the stop), which are then checked
        together against the clients that reset (only if both are given);
        optionally ``"peak"``, the most connections it had open at once
        (checked against the clients it was seen to serve at once, at least
        1 if it sent any client a byte, and against ``"accepted"``, the
        connections it accepted, if given, and the model's ``max_clients``);
        other keys are ignored."""
        ...


#: Builds your server for one run: ``factory(ws, (host, port))``.
ServerFactory = Callable[[FakeWinsock, tuple[str, int]], ServerUnderTest]



@dataclass
class LineServerReport:
    """What one :func:`check_line_server` run did and found.

    ``size`` is the scenario's :meth:`Scenario.size`; ``draws`` the number of
    schedule choices drawn from Hypothesis (None with a seeded fake, whose
    ``seed`` then replays the schedule); ``errors`` what went wrong, the first
    of them being the failure."""

    size: dict[str, int]
    seed: int | None = None
    draws: int | None = None
    calls: int = 0
    virtual_ns: int = 0
    replies: int = 0
    refusals: int = 0
    resets: int = 0
    leaves: int = 0
    dropped: int = 0
    cut_off: int = 0
    timed_out: int = 0  # clients closed by the server's idle time-out (the model's idle_timeout_ms), as due
    features: tuple[str, ...] = ()
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def describe(self) -> str:
        """One line: the scenario's size and the schedule."""
        s = self.size
        sched = f"{self.draws} schedule draws" if self.draws is not None else f"seed {self.seed}"
        feats = f" (features: {', '.join(self.features)})" if self.features else ""
        return (f"{s['clients']} clients, {s['lines']} lines, {s['bytes']} bytes in {s['sends']} sends, "
                f"{s['faults']} faults{feats}; {sched}; {self.calls} Winsock calls, "
                f"{self.virtual_ns / 1e9:.6f} s virtual")


class LineServerFailure(AssertionError):
    """:func:`check_line_server` found a bug.  ``report`` says what and how big
    the run was; the message ends with the tail of the fake's trace up to the
    moment the first error was seen."""

    __module__ = "fakewinsock.testing"  # where it is imported from: pytest prints this name

    def __init__(self, report: LineServerReport, trace_tail: str = "", schedule: str = "",
                 trace_file: str = "") -> None:
        self.report = report
        self.trace_file = trace_file
        lines = [report.errors[0] if report.errors else "failed", f"run: {report.describe()}"]
        if schedule:
            lines.append(f"schedule drawn from Hypothesis: {schedule}")
        if trace_file:
            lines.append(f"whole trace: {trace_file} (Chrome Trace Event JSON: open it in ui.perfetto.dev)")
        if len(report.errors) > 1:
            lines.append(f"{len(report.errors) - 1} more:")
            lines += [f"  {e}" for e in report.errors[1:12]]
        if trace_tail:
            lines += ["last trace records:", trace_tail.rstrip("\n")]
        super().__init__("\n".join(lines))


# A client's states: those of every scripted client (waiting, connecting, done) and these.
_GREETING, _BARRIER, _SENDING, _SENT, _CLOSING = ("greeting", "barrier", "sending", "sent all", "closing")
#: After a client's FIN, how long the server has to see its end before lines
#: routed to it count as sent after its end (far more than any latency or
#: completion delay of the fake's configurations, as long as the server keeps
#: a receive posted on every connection).
_END_GRACE_NS = 20 * _MS
#: ... or, for a server whose calls cost more virtual time (``Scenario.call_cost_ns``), this many of its calls.
_END_GRACE_CALLS = 200
#: A client of a run whose server is slowed (``Scenario.call_cost_ns``) is served within this at least.
_BUSY_DEADLINE_NS = 30 * _S
#: overdue_cut_off counts the lines whose bytes the server took at least this long before it looks: time to
#: handle them (the fake completes a receive within 50 us, and its server handles it in a few calls).
_TAKEN_NS = _MS
#: At a stop, a client that has read nothing for this long (and is owed nothing) must read a FIN: the
#: server's send that brought its last byte has long completed (see _Client.quiet_at_stop).
_QUIET_STOP_NS = _MS
#: A client waiting in the listen backlog of a server with room, next to be accepted, is accepted within this
#: (see _Run.check_backlog).
_BACKLOG_WAIT_NS = 100 * _MS


def _lines(data: bytes, what: str) -> list[bytes]:
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"the model's {what} must be bytes, not {type(data).__name__}")
    if not data:
        return []
    if not data.endswith(b"\n"):
        raise ValueError(f"the model's {what} must be whole lines (end with a newline): {data[:60]!r}")
    if data.find(b"\n") == len(data) - 1:  # one line (a model's usual reply): as it is, not split and copied
        return [bytes(data)]
    return [x + b"\n" for x in data.split(b"\n")[:-1]]


def _clip(data: bytes, start: int, end: int) -> str:
    text = repr(data[max(0, start):end])
    return ("..." if start > 0 else "") + text + ("..." if end < len(data) else "")


def _difference(expected: bytes, got: bytes, around: int = 20) -> str:
    """Where two byte strings first differ, with the bytes around that offset:
    two long lines that share a prefix are shown where they differ."""
    i = 0
    n = min(len(expected), len(got))
    while i < n and expected[i] == got[i]:
        i += 1
    lo, hi = i - around, i + around
    return (f"first difference at byte {i} (expected {len(expected)} bytes, got {len(got)}): "
            f"expected {_clip(expected, lo, hi)}, got {_clip(got, lo, hi)}")


class _Client(ScriptedClient):
    """One scripted client of a run: it follows its :class:`ClientScript` and
    checks each line it receives against the model."""

    def __init__(self, run: _Run, index: int, script: ClientScript, fault: ClientFault | None) -> None:
        super().__init__(run.ws, run.address, index)
        self.run = run
        self.script = script
        self.fault = fault
        self.own: list[bytes] = []  # greeting and replies to each of its lines, as lines
        self.own_stream = b""  # own, joined (see _own_lines)
        self.own_off: list[int] = [0]  # own[k] starts at own_stream[own_off[k]]
        self.own_count: list[int] = []  # own[:own_count[k]] answers the greeting and the first k lines
        self.out: list[bytes] = []  # what its lines make the server send to every other client
        self.out_count: list[int] = []
        self.out_line: list[int] = []  # out[h] is routed for line out_line[h]
        self.own_got = 0
        self.heard: dict[int, int] = {}  # other client -> lines of its ``out`` received
        self.received_bytes = 0  # bytes read
        self.first_rx_ns: int | None = None  # when it read the server's first byte (the server had accepted it)
        self.fin_ns = 0  # when it sent its FIN
        self.ended_normally = False  # the server's FIN came after its own, and after every reply (not hung up)
        self.greeted_ns = 0
        self.end_seen_ns: int | None = None  # the server has taken its FIN (a receive of 0 bytes) for a while
        self.leaving = False  # it has everything and lingers before its FIN
        self.unread_seen: dict[str, int] = {}  # what the server had not taken of its stream, at a check's last look
        self.dropped = False  # closed by the server, as an injected failure or a limit allows
        self.failed = False
        self.greeted = False
        self.next_read_ns = 0  # a slow reader (script.read_bytes) reads again from then on
        self.next_chunk = 0  # the chunk its next send carries (see _schedule)
        self.own_waits_ns = 0  # the deadline came while it was still sending: the waits of its script then left
        # The idle time-out (the model's idle_timeout_ms): when it last tried to connect, and last read bytes.
        self.attempt_ns = self.rx_ns = self.idle_floor_ns = self.idle_line_floor_ns = 0
        self.taken_lines = 0  # its lines the server has taken, as last seen (see lines_taken)
        # With a slowed server and an idle time-out: for each line, when the last send of the server to it
        # that the server had handled by then had completed (FakeWinsock.send_handled_ns), as the line was
        # sent (see idle_before_a_line).
        self.line_active_ns: list[int] = []
        # While it does not read (a pause, or for good): (when, bytes of its stream the server had taken by
        # then), each time that grew, as seen at its peer's events and its sends (see overdue_cut_off).
        self.taken_while_stuck: list[tuple[int, int]] = []
        self.cut_taken_ns: int | None = None  # first seen: the server had taken its line's byte past max_line
        self.done_ns: int | None = None  # when it was done
        self.sent_at_stop: int | None = None  # quiet at the stop request (quiet_at_stop): the bytes it had sent
        #: With the model's resets_cut_sends and a stop at stop_at_ns: its looks until the stop note how much of
        #: its stream the server had taken, in ``taken_log`` ((when, bytes taken), each time that grew; see
        #: fin_before_replies_at_stop).  (Not with an idle time-out: a server may close a client gracefully
        #: before the stop, with a line taken and not handled yet, as the idle close races the line.)
        self.stop_looks = (run.scenario.faults.stop_at_ns is not None and run.policy.resets_cut_sends
                           and not run.busy and not run.scenario.faults.allowed_drops
                           and run.policy.idle_timeout_ms is None)
        self.taken_log: list[tuple[int, int]] = []
        #: The idle watch's last look that found nothing on its way either way (echo; see reset_when_idle):
        #: (bytes it had sent, bytes it had read, when), or None.
        self.quiet_look: tuple[int, int, int] | None = None
        #: Back-pressure with an idle time-out: the looks in a row that found the server holding its connection
        #: with no receive posted on it and none of its bytes taken in between: (first, last, bytes taken), or
        #: None (see :meth:`_look_held` and :meth:`held_at_close`).
        self.held_look: tuple[int, int, int] | None = None
        if script.read_bytes is not None:
            self.read_max = script.read_bytes
        # Limits: line ``cut`` (len(lines): the tail) is over max_line; the server
        # notices once ``cut_byte`` bytes of the stream have arrived.
        self.cut: int | None = None
        self.cut_byte = 0
        policy = run.policy
        self.tail_is_line = bool(script.tail) and policy.partial_at_eof == "line"
        if policy.max_line is not None:
            offset = 0
            for i, line in enumerate((*script.lines, script.tail) if script.tail else script.lines):
                if len(line) > policy.max_line:
                    self.cut, self.cut_byte = i, offset + policy.max_line + 1
                    break
                offset += len(line) + 1

    @property
    def label(self) -> str:
        return f"client {self.index}" + (f" ({self.name.decode(errors='replace')})" if self.name else "")

    # ------------------------------------------------------------ expectations

    def _expect(self) -> None:
        model = self.run.model
        name = self.name
        own = _lines(model.greeting(name), "greeting")
        own_count = self.own_count = [len(own)]
        out: list[bytes] = []
        out_count = self.out_count = [0]
        out_line = self.out_line
        reply = model.reply
        units = list(self.script.lines)
        if self.tail_is_line:
            units.append(self.script.tail)
        if self.cut is not None:
            del units[self.cut:]
        # (The usual reply, one line, and no broadcast, are taken as _lines would
        # take them without its call: scripts of the swarm's bulk have thousands of lines.)
        for i, line in enumerate(units):
            back, others = reply(name, line)
            if type(back) is bytes and 0 <= back.find(b"\n") == len(back) - 1:
                own.append(back)
            else:
                own += _lines(back, "reply")
            if type(others) is not bytes or others:
                routed = _lines(others, "broadcast")
                if routed:
                    out += routed
                    out_line += [i] * len(routed)
            own_count.append(len(own))
            out_count.append(len(out))
        if self.cut is not None:  # the units from the cut on add nothing
            rest = len(self.script.lines) + self.tail_is_line - len(units)
            own_count += [len(own)] * rest
            out_count += [len(out)] * rest
            own += _lines(self.run.policy.too_long(self.name), "error line for a line over max_line")
        self.own, self.out = own, out
        self.own_stream = b"".join(own)  # own, joined: own_off[k] is where own[k] starts in it
        self.own_off = [0, *itertools.accumulate(map(len, own))]

    @property
    def stays(self) -> bool:
        return self.fault is None

    def cut_reached(self) -> bool:
        """It has sent more than the line limit of a line: the server hangs it up."""
        return self.cut is not None and self.sent_bytes >= self.cut_byte

    def _units(self, lines: int, tail_sent: bool) -> int:
        """Messages the server handles when ``lines`` whole lines (and the tail, if sent) reached it before EOF."""
        if self.cut is not None and self.cut < lines:
            return self.cut
        if tail_sent and self.tail_is_line and self.cut != len(self.script.lines):
            return lines + 1
        return lines

    def own_due(self) -> int:
        """Own lines that must arrive before the server's FIN."""
        if (self.fault is not None and self.fault.resets) or not self.own_count:
            return 0
        if self.cut_reached():
            return len(self.own)
        tail_sent = self.fin_sent and self.sent_bytes == len(self.script.stream)
        return self.own_count[self._units(self.sent_lines, tail_sent)]

    def due_from(self, other: _Client) -> int:
        """Lines of ``other``'s broadcasts this (staying) client must hear."""
        if other.dropped or other.failed or (other.fault is not None and other.fault.resets):
            return 0
        if not other.out_count:  # not connected (yet, or ever: refused while the server stopped)
            return 0
        if other.fault is not None:  # leaves early: what it sent before its FIN
            return other.out_count[other._units(other.script.lines_before(other.fault.before_chunk), False)]
        return other.out_count[other._units(len(other.script.lines), bool(other.script.tail))]

    def complete(self) -> bool:
        """Everything this client waits for before its FIN has arrived."""
        if self.cut_reached():  # hung up: it has the error line, nothing more is owed
            return self.own_got >= len(self.own)
        if self.state != _SENT or self.own_got < self.own_due():
            return False
        if self.run.model.broadcasts:
            for c in self.run.clients:
                if c is not self and self.heard.get(c.index, 0) < self.due_from(c):
                    return False
        return True

    def last_answered_ns(self) -> int | None:
        """When it sent the last of its lines whose reply it has read (the server took that line later)."""
        counts, got = self.own_count, self.own_got
        for i in range(min(len(counts) - 1, len(self.line_sent_ns)) - 1, -1, -1):
            if counts[i] < counts[i + 1] <= got:
                return self.line_sent_ns[i]
        return None

    def owed_unread(self) -> int:
        """Bytes owed to this client (for what every client has sent so far) that it has not read."""
        own = sum(len(x) for x in self.own[:self.own_count[self._units(self.sent_lines, self.fin_sent)]])
        if self.cut_reached():
            own = sum(len(x) for x in self.own)
        others = sum(len(x) for c in self.run.clients if c is not self and c.out and c.out_count
                     for x in c.out[:c.out_count[c._units(c.sent_lines, c.fin_sent)]])
        return own + others - self.received_bytes

    def owed_taken_unread(self) -> int:
        """At most how many bytes the server may have queued for this client: owed for the lines of every client
        the server has taken (its bytes received: ``sent_bytes`` less the peer's ``unread``, all it sent once the
        connection is gone), less what it read.  (:meth:`owed_unread` counts every line sent, taken or not: in
        chat with back-pressure, the lines of the senders held back wait unread at the server, owed to no one.)"""
        total = 0
        for c in self.run.clients:
            if c.peer is None or not c.own_count or (c is not self and not c.out):
                continue
            taken = c.script.stream.count(b"\n", 0, c.sent_bytes - c.peer.unread)
            units = c._units(taken, c.fin_sent)
            if c is self:
                total += self.own_off[self.own_count[units]]
            else:
                total += sum(len(x) for x in c.out[:c.out_count[units]])
        return total - self.received_bytes

    def owed_behind_send(self) -> bool:
        """FaultPlan.stop_at_send_end: the server has a send to it posted, and owes it more own lines, for the
        lines it had taken _TAKEN_NS ago by its looks (``taken_log``: time to handle them), than it has read,
        has on their way and in its posted sends: output queued in the server behind the send, which a close
        now would drop (what fin_before_replies_at_stop holds a FIN at the stop to).  Own lines only (in chat
        what it has read and has on its way holds others' lines too: it is seen less often there).  A query
        of the fake's state (no call, no draw)."""
        run, peer = self.run, self.peer
        if peer is None or not self.own_count or not sends_posted(run.ws, peer):
            return False
        lines = self.script.stream.count(b"\n", 0, taken_before(self.taken_log, run.ws.now_ns - _TAKEN_NS))
        way = outbound(run.ws, peer)
        return (bool(lines) and way is not None
                and self.own_off[self.own_count[self._units(lines, False)]] > self.received_bytes + way[0] + way[1])

    # ------------------------------------------------------------ life

    def arrive(self, _: object = None) -> None:
        self.run.check_quiet()
        self.run.ws.call_at(self.run.ws.now_ns + self.run.deadline_ns, self._deadline)
        self.connect()

    def connect(self, _: object = None) -> None:
        self.attempt_ns = self.run.ws.now_ns  # (the server's idle clock starts no earlier)
        super().connect()

    def idle_since(self) -> int:
        """When this client was last active by its own account (the idle time-out): its last connect
        attempt, when it sent the last line that the server has taken (received) by now, or when the last
        send of the server to it that the server has handled by now completed with bytes (the model counts a
        completed send as activity).  The server's clock starts no earlier than any of them: it accepts a
        client after its attempt, takes a line after it was sent, and learns of a send's completion no
        earlier than it happens.  (A line sent but not taken yet does not count: the bytes before its
        newline may take longer than the time-out to arrive.  Its reads are not counted: a server's send
        may complete long before its bytes are read.)

        A completed send counts once the server has handled its completion (FakeWinsock.send_handled_ns:
        its completion routine has returned, or the thread it was delivered to, by GetQueuedCompletionStatus(Ex)
        or WSAGetOverlappedResult, has made its next waiting call), not from the moment it completed
        (FakeWinsock.send_completed_ns): until then the server may not have learned of it, and its idle
        close is as due by its own clock.  A completion packet may wait in the port behind busy workers, or
        the worker that dequeued it be switched out before it takes the server's lock, while the thread
        that closes idle clients takes it (a correct IocpServer in chat with a flooding member and a slowed
        server: tools/false_alarms.py --idle, ci, iocp chat, examples 67, 68 and 91, 2026-12-07; the
        directed test is tests/test_checker_idle_busy.py's iocp one).  Once handled it counts from when it
        completed, the earliest a server's clock may restart at it.  A server that hands a completion to
        another thread to handle, which may take the lock after the thread it was delivered to waits again,
        is not told apart: its close in between may be reported."""
        since = self.own_idle_since()
        return max(since, self.run.ws.send_handled_ns(self.peer)) if self.peer is not None else since

    def own_idle_since(self) -> int:
        """:meth:`idle_since` less the server's sends: its last connect attempt, or when it sent the last
        line that the server has taken by now (what the idle watch's looks are timed by)."""
        lines = self.lines_taken()
        return max(self.attempt_ns, self.line_sent_ns[lines - 1] if lines else 0)

    def lines_taken(self) -> int:
        """How many of its lines the server has taken (received), as last seen: looked at each time it is
        asked, unless the server has reset the connection (which discards what the server had not taken)."""
        peer = self.peer
        if peer is not None and self.line_sent_ns:
            server_end = peer.other_end()
            if server_end is None or not server_end.reset:
                taken = self.sent_bytes - peer.unread
                n = (len(self.line_sent_ns) if taken >= self.sent_bytes
                     else self.script.stream.count(b"\n", 0, taken))
                self.taken_lines = max(self.taken_lines, n)
        return self.taken_lines

    def timed_out_as_due(self) -> bool:
        """Closed by the server now, as its idle time-out allows: by its own account this client has
        been idle for the time-out (less two of the clock's steps), or, with a slowed server, was so
        before one of the lines the server has taken (:meth:`idle_before_a_line`) or before the server got
        one of its last completed sends to it (:meth:`idle_before_a_send`)."""
        limit = self.run.policy.idle_timeout_ms
        if limit is None:
            return False
        due = limit * _MS - _IDLE_EARLY_NS
        return self.run.ws.now_ns - self.idle_since() >= due or (
            self.run.busy and self.run.policy.high_water is None
            and (self.idle_before_a_line(due) or self.idle_before_a_send(due)))

    def idle_before_a_line(self, due: int) -> bool:
        """A slowed server's late time-out (``Scenario.call_cost_ns``): by its own account this client
        had been idle for ``due`` when it sent one of the lines the server has taken, so the server's
        deadline passed before that line arrived.  A server slower than its clients that gets round to
        an expired deadline before it reaps the receive that completed with the line closes the client
        as due, later than the deadline and after the line (ovserver's events model does, a correct
        server: recipe_idle, events, chat, a busy server at 1 ms a call; tools/false_alarms.py --idle,
        seeded 0, example 190: a client that connected, was accepted, and sent its first lines 131 ms
        later, closed 30 ms after them with its receive completed and not reaped, idle time-out 100 ms).
        The server's sends to it that completed count as activity before the line (the model's rule; the server
        learns of a completion no earlier than it happens, and certainly once it has handled it:
        FakeWinsock.send_handled_ns, looked at as the line was sent; see :meth:`idle_since`), so that only a gap
        with neither a line nor such a send allows the close.  (Not the client's
        reads: a send completes once its bytes are in the network, and a client that pauses reads them later,
        ``ClientScript.pause_ns``: by its reads a correct server's close after a pause would be early,
        tests/test_checker_idle_busy.py.)  Not for a server that keeps up (the watch holds it to its deadline:
        :meth:`_idle_watch`), nor with back-pressure (a client held back is not idle: its lines may wait
        unread for longer than the time-out while its clock is stopped, red11's resume-keeps-idle-clock)."""
        since = self.attempt_ns
        # (line_active_ns runs parallel to line_sent_ns, both noted as lines are sent; the taken ones a prefix)
        for sent, active in zip(self.line_sent_ns[:self.lines_taken()], self.line_active_ns, strict=False):
            if sent - max(since, active) >= due:
                return True
            since = max(since, sent)
        return False

    def idle_before_a_send(self, due: int) -> bool:
        """A slowed server's late time-out, decided before it got a completed send: by its own account
        this client had been idle for ``due`` just before the server got (dequeued, reaped) the completion
        of one of its last sends to it (FakeWinsock.send_handled_steps: when it got it, and the account of
        handled sends before it).  Such a server may have found the client idle then and closes it once it
        gets round to it, after it handled that completion (ovserver's IocpServer: its controller decides
        under the lock and a worker closes the socket once the receive it dequeued before is handled;
        tools/false_alarms.py --idle, ci, iocp chat, example 67, seeds 1 and 8 of its scenario replayed: the
        decision 12 ms before the close, the send's completion got and handled between them).  Only such a
        moment after every line of it the server has taken by now was sent: a server that found it idle
        then takes none of its later lines (it posts no receive on a connection it closes), and a server
        that closes a client by a deadline it should have moved on, after it took a later line, is what
        the planted bug of tests/test_checker_idle_busy.py does (a completed send that does not restart
        the clock: the close came 81 ms after such a moment, the client's next line taken between them).
        The account just before that moment is then its connect attempt, its last line the server has
        taken, and the sends the server had handled before it.  Only for a slowed server without
        back-pressure, as :meth:`idle_before_a_line`."""
        peer = self.peer
        if peer is None:
            return False
        lines = self.lines_taken()
        since = max(self.attempt_ns, self.line_sent_ns[lines - 1] if lines else 0)
        return any(got - max(since, before) >= due for got, before in self.run.ws.send_handled_steps(peer))

    def send(self, chunk: bytes) -> int:
        ended = super().send(chunk)
        self._note_active(ended)
        return ended

    def _note_active(self, lines: int) -> None:
        """``lines`` of its lines were sent just now: with a slowed server and an idle time-out, note when the
        last send of the server to it that the server has handled completed (see :meth:`idle_before_a_line`)."""
        if lines and self.run.busy and self.run.policy.idle_timeout_ms is not None and self.peer is not None:
            self.line_active_ns += [self.run.ws.send_handled_ns(self.peer)] * lines

    def _look_held(self) -> None:
        """Back-pressure with an idle time-out, a server that keeps up: a look at whether the server holds
        its connection (accepted, not closed) with no receive posted on it, and how many of its bytes it has
        taken, kept in ``held_look`` over the looks in a row that find so with the same bytes taken.  A
        server that reads a connection keeps a receive posted on it, save while it handles one that
        completed (microseconds for a server that keeps up) or until it takes a new connection into
        service; a receive posted meanwhile stays posted until it completes, with bytes (taken), the
        client's FIN (the looks end at its FIN) or a failure; so two such looks far enough apart
        (_HELD_NS) mean that the server held the client back (ovserver's back-pressure: it stopped
        reading it) at the second, or had not yet taken it into service.  Either way its idle clock
        starts again later (``Server._read_on``, ``Server._open``).  (A look at the fake: no call, no
        draw.)"""
        run, peer = self.run, self.peer
        if (run.policy.high_water is None or run.policy.idle_timeout_ms is None or run.busy or peer is None
                or self.fin_sent or run.stopping or self.state == _DONE):
            return
        end = run.ws.server_end(peer)
        if (end is None or end.recvs or run.ws.held_socket(peer) is None or end.endpoint.reset
                or peer.was_reset or peer.at_eof):
            self.held_look = None
            return
        now, taken, look = run.ws.now_ns, self.sent_bytes - peer.unread, self.held_look
        self.held_look = (now, now, taken) if look is None or look[2] != taken else (look[0], now, taken)

    def held_at_close(self, reset: bool) -> bool:
        """Closed by the server (``reset``: with a reset) though a look of :meth:`_look_held` found it held back
        (no receive posted on its connection for _HELD_NS, none of its bytes taken) less than the idle time-out
        (less two of the clock's steps) before, and no limit explains the close: fails it and returns True.  A
        held-back client is not idle: the server stopped reading it, so it completes no line, and its idle clock
        starts again only when the server reads on (ovserver's model: ``Server._idle_check`` skips a connection
        the hub holds back, ``Server._read_on`` restarts its clock), so a correct server closes it as idle no
        earlier than the time-out after the look (red12's idle-times-out-held-back closed it as idle).  What
        else closes a client held back: the stop; its line over max_line; an injected WSARecv/WSASend failure;
        and, a reset, the slow-consumer cut-off (its queue over the mark for the model's ``stall_timeout_ms``:
        not of a connection younger than that, less two clock steps, from its connect attempt) or one over
        ``max_queued`` (not while no more than that is owed to it unread for the lines the server has taken:
        :meth:`owed_taken_unread`).  Not after its FIN (the server reads
        it when it reads on, and may close at once)."""
        run, look, peer, policy = self.run, self.held_look, self.peer, self.run.policy
        limit, stall = policy.idle_timeout_ms, policy.stall_timeout_ms
        if (look is None or limit is None or look[1] - look[0] < _HELD_NS or self.cut is not None or peer is None
                or run.stopping or self.fin_sent or run.ws.injected_failure_on(peer)):
            return False
        now = run.ws.now_ns
        if now - look[1] >= limit * _MS - _IDLE_EARLY_NS:
            return False
        if reset and (stall is None or now - self.attempt_ns >= stall * _MS - _IDLE_EARLY_NS
                      or (policy.max_queued is not None and self.owed_taken_unread() > policy.max_queued)):
            return False
        how = "reset" if reset else "closed"
        self.fail(f"{how} by the server at {now / 1e9:.6f} s, but it was held back (the server held its "
                  f"connection with no receive posted and took none of its bytes from {look[0] / 1e9:.6f} s to "
                  f"{look[1] / 1e9:.6f} s), under the idle time-out of {limit} ms before: a client held back is not "
                  f"idle (its idle clock starts again when the server reads on), and no limit explains the close")
        return True

    def _idle_watch(self, _: object = None) -> None:
        """The idle time-out's other half: a client that reads all the time, connected, accepted, and
        neither sending a line nor being sent anything, must be closed within the time-out and
        _IDLE_LATE_NS of the last of: its last line, the last byte it read (a send of the server completes
        no later, give or take the server's delay in reaping it), the first look that found it accepted,
        the last look that found bytes between it and the server (bytes it sent not yet taken with a
        newline among them, bytes sent to it not yet read: bytes without a newline, a slowloris' dribble,
        complete no line, so they do not restart the server's clock).  Looked at from its connection until
        its FIN; not for a client that reads slowly, nor with a slowed server (Scenario.call_cost_ns); with
        back-pressure only in echo and for a client whose reading pause ends, and without it not for a
        client that pauses.  (With back-pressure an echo client is held back by its own queue over the
        mark, whose bytes the looks see on their way, and its clock starts again when it is read on; in chat
        another member's queue holds it back, unseen.  A client pausing its reading has its unread replies
        on their way meanwhile: followed with back-pressure since red11, whose recipe_bp_idle needs it;
        without, the runs of recipe_idle keep their looks, and so their draws, as they were.)  (The looks come when
        they came before newline-free bytes were told apart, every quarter of the time-out until the due
        time of any bytes on their way, ``idle_floor_ns``: a correct server's run and its draws are the same.)"""
        run, peer = self.run, self.peer
        limit = run.policy.idle_timeout_ms
        if self.state == _DONE or run.stopping or self.fin_sent or limit is None or peer is None:
            return
        self._look_held()
        now = run.ws.now_ns
        server_end = peer.other_end()
        if (_waits_in_backlog(peer) or peer.unread or peer.available()
                or (server_end is not None and server_end.in_flight)):
            self.idle_floor_ns = now  # not accepted yet, or bytes on their way: the server's clock may run from now
            self.quiet_look = None
            unread = peer.unread
            if (not unread or peer.available() or _waits_in_backlog(peer)
                    or (server_end is not None and server_end.in_flight)
                    or self.script.stream.find(b"\n", self.sent_bytes - unread, self.sent_bytes) >= 0):
                self.idle_line_floor_ns = now  # (not only bytes of its own without a newline)
        elif self.quiet_look is None or self.quiet_look[:2] != (self.sent_bytes, self.received_bytes):
            self.quiet_look = (self.sent_bytes, self.received_bytes, now)
        since = max(self.own_idle_since(), self.rx_ns, self.idle_line_floor_ns)
        due = max(self.own_idle_since(), self.rx_ns, self.idle_floor_ns) + limit * _MS + _IDLE_LATE_NS
        if now < since + limit * _MS + _IDLE_LATE_NS and now < due:
            run.ws.call_at(min(due, now + limit * _MS // 4), self._idle_watch)
            return
        self.fail(f"idle since {since / 1e9:.6f} s (accepted, reading, no line sent, nothing sent to it, read or "
                  f"on its way), but not closed by the server's idle time-out of {limit} ms "
                  f"{(now - since) / 1e6:.1f} ms later")

    def _deadline(self, _: object) -> None:
        if self.state == _DONE or self.run.stopping:
            return
        if self.state == _SENDING and not self.own_waits_ns:
            # Still sending: its sends come on its script's timers, whatever the server does, so its own gaps
            # are what it waits for (an idle client of the swarm pacing a thousand lines just under the idle
            # time-out takes a minute of its own).  The deadline comes again, once, as long after the waits
            # left in its script: the server has it all after its last send.  (Only a client still sending at
            # its deadline has a later one: nothing else moves.)
            self.own_waits_ns = max(1, self._waits_from(self.next_chunk))
            self.run.ws.call_at(self.run.ws.now_ns + self.own_waits_ns + self.run.deadline_ns, self._deadline)
            return
        if self.script.stops_reading and self.greeted and self.state in (_SENDING, _SENT):
            return  # it stopped reading for good: nothing is owed to it in any time (its reset ends it)
        what = {_CONNECTING: "still not connected", _GREETING: "never greeted (accepted?)",
                _BARRIER: "waiting for the others to be greeted", _SENDING: "still sending",
                _SENT: "still waiting for replies", _CLOSING: "still waiting for the server's FIN"}.get(
            self.state, self.state)
        if self.cut_reached() and self.own_got >= len(self.own):
            what = ("hung up (its line over max_line), it has the error line but not the server's FIN: the "
                    "server closes once the error line is out")
        missing = f"{self.own_got} of {self.own_due()} own lines"
        if self.run.model.broadcasts:
            missing += ", " + ", ".join(f"{self.heard.get(c.index, 0)} of {self.due_from(c)} from client {c.index}"
                                        for c in self.run.clients if c is not self)
        if self.peer is not None and self.peer.unsent:
            missing += f"; {self.peer.unsent} bytes it sent wait for the server to read"
        after = f" after its own sends ({self.own_waits_ns / 1e9:g} s of gaps left at its first deadline)" \
            if self.own_waits_ns else ""
        self.fail(f"not served in {self.run.deadline_ns / 1e9:g} s{after}: {what} (received {missing})")

    def fail(self, why: str) -> None:
        if self.state == _DONE:
            return
        self.failed = True
        self.run.error(f"{self.label}: {why}")
        self.reset_if_connected()
        self.finish()

    def finished(self) -> None:
        self.done_ns = self.run.ws.now_ns
        self.run.client_done()
        if not self.failed and self.peer is not None and self.peer.connected:
            ws = self.run.ws
            self.unread_seen["release"] = self.peer.unread
            ws.call_at(ws.now_ns + self.run.idle_ns, self.run.check_released, self)

    def still_read(self, check: str) -> bool:
        """The server has taken some of what this client sent since ``check`` last looked: it is still
        reading a stream whose end comes behind it (a slowed server, ``Scenario.call_cost_ns``, takes
        seconds over a client's stream cut off for a line over the limit, which flows on after the client
        has left), so ``check`` (the release second, the idle second) counts from its last byte taken."""
        left = self.peer.unread if self.peer is not None else 0
        taken = left < self.unread_seen.get(check, 0)
        self.unread_seen[check] = left
        return taken

    def reading(self) -> bool:
        s = self.script
        if self.fin_sent and self.fault is not None and self.fault.reset_after_ns is not None:
            return False  # it reads nothing after its FIN: it resets with it unread
        if s.read_bytes is not None and self.run.ws.now_ns < self.next_read_ns:
            return False
        if s.pause_at_ns is None:
            return True
        if not self.greeted:
            return True
        t = self.run.ws.now_ns - self.greeted_ns
        return t < s.pause_at_ns or (s.pause_ns is not None and t >= s.pause_at_ns + s.pause_ns)

    def refused(self) -> None:
        run = self.run
        if run.stopping:  # the server is stopping: no more connections
            self.finish()
            return
        run.report.refusals += 1
        waited = run.ws.now_ns - self.script.arrive_ns
        if self.attempts >= 40 and waited >= _REFUSED_FOR_NS:  # (others may hold every slot a while)
            self.fail(f"connection refused {self.attempts} times in {waited / 1e9:.1f} s")
            return
        self.retry_after(_MS * 2 ** min(self.attempts, 6))

    def connected(self) -> None:
        run = self.run
        self._expect()
        if self.fault is not None and self.fault.kind == "reset" and self.fault.before_chunk < 0:
            assert self.peer is not None
            self._note_reset()
            self.peer.reset()  # at once: the server may still be accepting it
            run.report.resets += 1
            self.finish()
            run.recheck()
            return
        self.state = _GREETING
        if run.backlog_bound_ns is not None:
            run.backlog_watch[self.index] = [-1, run.ws.now_ns]
            run.check_backlog()
        s, policy = self.script, run.policy
        if (policy.idle_timeout_ms is not None and not run.busy and s.read_bytes is None
                and ((policy.high_water is None and s.pause_at_ns is None)
                     or (policy.high_water is not None and not run.model.broadcasts and s.pause_ns is not None))):
            self.idle_floor_ns = self.idle_line_floor_ns = run.ws.now_ns
            self._idle_watch()
        if not self.own_count[0]:
            self._greeted()

    def server_closed(self, reset: bool) -> None:
        run = self.run
        if self.fin_sent and self.fault is not None and self.fault.reset_after_ns is not None:
            # It reads nothing after its FIN and resets: owed nothing, whatever the server does then.
            self.finish()
            return
        if self.fin_sent and not reset and not self.inbuf and self.own_got >= self.own_due():
            assert self.peer is not None
            self.peer.close()  # the normal end: the server's FIN after every reply
            if self.cut_reached():
                run.report.cut_off += 1  # (after the error line for a line over the limit)
            else:
                self.ended_normally = True
            self.finish()
            return
        if self.cut_reached() and (
                (not reset and self.own_got >= len(self.own) and not self.inbuf)
                or (reset and self.sent_bytes - self.cut_byte > (run.policy.max_line or 0))):
            # Hung up for a line over the limit, as the model says: FIN after the error
            # line, or a reset once it sent more than max_line bytes after it (the reset
            # may discard the error line if the client had not read it yet).
            run.report.cut_off += 1
            self._let_go(close=not reset)
            return
        if self.held_at_close(reset):  # (held back: not idle, and no limit's cut-off)
            return
        max_queued, high_water = run.policy.max_queued, run.policy.high_water
        ended_ns = None  # the server took its FIN before a back-pressure cut-off (see ended_before_reset)
        if reset and ((max_queued is not None and self.owed_unread() > max_queued)
                      or (high_water is not None and self.owed_unread() > high_water // 2
                          and (ended_ns := self.ended_before_reset()) is None)):
            # Too much owed and not read (over max_queued, or still over the high-water mark's
            # half with back-pressure's slow-consumer time-out): the model allows a cut-off.
            run.report.cut_off += 1
            self._let_go(close=False)
            return
        if run.stopping:  # asked to stop, the server closes every connection
            if (reset and self.reset_when_quiet()) or (not reset and (self.fin_after_part_of_a_line("the stop")
                                                                     or self.fin_before_replies_at_stop())):
                return
            self.finish()
            return
        if self.timed_out_as_due():
            # Idle for the model's idle time-out: the server may close it (a reset if a send to it was in
            # flight), whatever it had not read.
            if (reset and self.reset_when_idle()) or (not reset and self.fin_after_part_of_a_line("its idle time-out")):
                return
            run.report.timed_out += 1
            self._let_go(close=not reset)
            return
        if run.drops_left > 0:  # an injected WSARecv/WSASend failure allows the server this
            run.drops_left -= 1
            run.report.dropped += 1
            self._let_go(close=False)
            return
        nxt = self.own[self.own_got] if self.own_got < len(self.own) else None
        wanted = f"; the next expected line is {_clip(nxt, 0, 60)}" if nxt is not None else ""
        if self.fin_sent and not reset:
            if self.inbuf:
                self.fail(f"the server's last line is incomplete: {_clip(bytes(self.inbuf), 0, 60)}"
                          + (f" ({_difference(nxt, bytes(self.inbuf))})" if nxt is not None else ""))
            else:
                self.fail(f"the server closed after {self.own_got} of {self.own_due()} replies{wanted}")
            return
        how = "reset" if reset else "closed"
        state = "after its FIN" if self.fin_sent else f"while {self.state}"
        limit = run.policy.idle_timeout_ms
        idle = (f"; idle only {(run.ws.now_ns - self.idle_since()) / 1e6:.1f} ms by its own account (its last line, "
                f"connect attempt or handled completed send to it), under the idle time-out of {limit} ms"
                if limit is not None else "")
        ended = (f"; owed {self.owed_unread()} bytes unread, over half the high-water mark, but the server had "
                 f"taken its FIN at {ended_ns / 1e9:.6f} s: a client that ended its input gets no more lines, "
                 f"holds no sender back and is no longer over the mark (no back-pressure cut-off)"
                 if ended_ns is not None else "")
        self.fail(f"{how} by the server {state} (got {self.own_got} of {self.own_due()} own lines{wanted})"
                  f"{idle}{ended}")

    def received(self, data: bytes) -> None:
        if self.run.backlog_watch:
            self.run.check_backlog()
        self.received_bytes += len(data)
        if data:
            self.rx_ns = self.run.ws.now_ns
            if self.first_rx_ns is None:
                self.first_rx_ns = self.rx_ns
            if self.run.policy.idle_timeout_ms is not None:
                self.lines_taken()
        every = self.script.read_every_ns
        if every and data and self.peer is not None:  # a slow reader: the next read comes later
            ws, peer = self.run.ws, self.peer
            self.next_read_ns = ws.now_ns + every
            ws.call_at(self.next_read_ns, lambda _: self.changed(peer))
        if not self._own_lines(data):
            super().received(data)
        if self.state != _DONE:
            self._progress()

    def _own_lines(self, data: bytes) -> bool:
        """The usual read, taken whole: the greeting in, and the lines it ends
        (with the part of a line read before it) the next own lines, maybe the
        start of one more after them.  Counts them as :meth:`line` would, one
        by one (each is the next own line, no error line is passed), without a
        call per line: what the swarm's bulk and tiny lines make thousands of.
        False, having done nothing: another read, taken line by line."""
        end = data.rfind(b"\n") + 1
        if not end or not self.greeted:
            return False
        k = self.own_got
        at = self.own_off[k]
        stream = self.own_stream
        buf = self.inbuf
        if buf:  # the start of line k (no newline in it)
            if not stream.startswith(buf, at):
                return False
            at += len(buf)
        if not stream.startswith(memoryview(data)[:end], at):
            return False
        # (Own lines each end with their one newline, so the newlines read are
        # where own lines k, k + 1, ... end: each line read is one of them.)
        n = data.count(b"\n", 0, end)
        self.own_got = k + n
        self.run.report.replies += n
        buf.clear()
        if end < len(data):
            buf += data[end:]
        return True

    def line(self, line: bytes) -> None:
        self.run.report.replies += 1
        k = self.own_got
        if self.cut is not None and k == len(self.own) and k:  # its error line is in: only the FIN may follow
            self.fail(f"unexpected line {_clip(line, 0, 60)} after its error line (its line {self.cut} is over "
                      "max_line): the server closes once the error line is out, and routes it nothing more")
            return
        if k < len(self.own) and self.own[k] == line:
            self.own_got += 1
            if self.own_got == self.own_count[0] and not self.greeted:
                self._greeted()
            return
        for c in self.run.clients:
            if c is not self and c.out:
                h = self.heard.get(c.index, 0)
                if h < len(c.out) and c.out[h] == line:
                    self._heard(c, h)
                    return
        want = self.own[k] if k < len(self.own) else None
        shown = _clip(want, 0, 60) if want is not None else "no more own lines"
        diff = f"; {_difference(want, line)}" if want is not None else ""
        if not self.greeted and self.own_count[0]:
            self.fail(f"first line {_clip(line, 0, 60)}: expected the greeting {shown}{diff}")
            return
        others = ""
        if self.run.model.broadcasts:
            others = ", or the next line of another client"
            if want is None or not diff:
                for c in self.run.clients:
                    h = self.heard.get(c.index, 0)
                    if c is not self and h < len(c.out):
                        diff = f"; against client {c.index}'s next line: {_difference(c.out[h], line)}"
                        break
        self.fail(f"unexpected line {_clip(line, 0, 60)} (own line {k} expected: {shown}{others}){diff}")

    def _heard(self, c: _Client, h: int) -> None:
        self.heard[c.index] = h + 1
        seen = self.end_seen_ns
        if seen is None:
            return
        i = c.out_line[h]
        sent = c.line_sent_ns[i] if i < len(c.line_sent_ns) else None
        if sent is not None and sent > seen:
            self.fail(f"got {_clip(c.out[h], 0, 60)}, from a line client {c.index} sent at "
                      f"{sent / 1e9:.6f} s, after the server had this client's end (its FIN, taken by "
                      f"{seen / 1e9:.6f} s): a client that has left must not get lines sent after that")

    def _greeted(self) -> None:
        self.greeted = True
        ws, s = self.run.ws, self.script
        self.greeted_ns = ws.now_ns  # a read pause counts from here
        if s.pause_at_ns is not None and s.pause_ns is not None and self.peer is not None:
            peer = self.peer
            ws.call_at(self.greeted_ns + s.pause_at_ns + s.pause_ns, lambda _: self._pause_over(peer))
        self.state = _BARRIER
        self.run.barrier()

    def start_sending(self) -> None:
        self.state = _SENDING
        self._schedule(0)

    def _pause_over(self, peer: FakePeer) -> None:
        """Its read pause ends: it reads on, unless a cut-off was due (:meth:`overdue_cut_off`)."""
        if self.state != _DONE and not self.overdue_cut_off():
            self.changed(peer)

    def changed(self, peer: FakePeer) -> None:
        if peer is self.peer and self._paused_reader():
            self._note_taken(peer)
        if self.stop_looks and peer is self.peer and not self.run.stopping:
            end = peer.other_end()
            if end is not None and not end.reset and not peer.was_reset:  # (a reset discards what was not taken)
                log_taken(self.taken_log, self.run.ws.now_ns, self.sent_bytes - peer.unread)
        if self.cut is not None and self.cut_taken_ns is None and peer is self.peer and self.cut_reached():
            end = peer.other_end()
            if (not peer.was_reset and end is not None and not end.reset
                    and self.sent_bytes - peer.unread >= self.cut_byte):
                self.cut_taken_ns = self.run.ws.now_ns
        super().changed(peer)
        stop = self.run.stop_at_send_end
        if stop is not None and peer is self.peer and send_ending(self.run.ws, peer) and self.owed_behind_send():
            stop()  # (FaultPlan.stop_at_send_end: right after the read that made room for a send's last bytes)

    def hung_up_for_sure(self) -> bool:
        """The server has certainly found its line over max_line: it read the error line, or the server had
        taken the line's byte past the limit _TAKEN_NS before the stop request and its end (time to handle it)."""
        if self.cut is None or not self.own:
            return False
        if self.own_got >= len(self.own):
            return True
        run, seen = self.run, self.cut_taken_ns
        if seen is None or run.busy or run.scenario.faults.allowed_drops:
            return False
        ends = [t for t in (run.stop_ns, self.done_ns) if t is not None]
        return seen + _TAKEN_NS <= min(ends, default=run.ws.now_ns)

    def _paused_reader(self) -> bool:
        """It does not read now, as its script pauses reading (for a while, or for good): what the server takes
        of its stream is noted (see overdue_cut_off)."""
        s = self.script
        return s.pause_at_ns is not None and s.read_bytes is None and self.greeted and not self.reading()

    def _note_taken(self, peer: FakePeer) -> None:
        note_taken(self.taken_while_stuck, self.run.ws.now_ns, peer, self.sent_bytes)

    def ended_before_reset(self) -> int | None:
        """Back-pressure (the model's ``high_water``): the server took this client's FIN (reaped its receive of
        0 bytes: :meth:`FakeWinsock.end_taken_ns`) well before the reset it has just seen, by more than the
        time to act on an end it has taken (``end_grace_ns``: an iocp worker waits for the lock with the
        receive, while the thread that watches the stall deadlines may cut the client off) and the reset's
        way to the client (the fake's longest latency); when, or None.  Such a client is no longer over the
        mark: it ended its input, so it gets no more lines and holds no sender back (ovserver's ``Hub.end``
        takes it off the mark and stops its stall clock), and the slow-consumer time-out no longer cuts it
        off, whatever it is owed (red13's end-keeps-over-mark).  (In chat a client held back by another
        member is not read, so its FIN is taken only when it is read on: from the take, not the FIN.)"""
        peer, run = self.peer, self.run
        taken = run.ws.end_taken_ns(peer) if peer is not None else None
        if taken is None:
            return None
        config = run.ws.config
        if run.ws.now_ns - taken <= run.end_grace_ns + config.latency[1] + config.syscall_cost:
            return None
        return taken

    def quiet_at_stop(self) -> bool:
        """At the stop request: accepted and served (it read from the server), it has read all it is owed for
        what every client has sent, nothing is on its way either way (its bytes all taken by the server, no
        byte of the server's on the wire, in its receive buffer or in a posted send), and it has read nothing
        for _QUIET_STOP_NS: a server that stops closes such a client gracefully (see server_closed)."""
        run, peer = self.run, self.peer
        if (self.state in (_DONE, _CONNECTING) or peer is None or not peer.connected or peer.was_reset
                or self.fin_sent or self.first_rx_ns is None or self.cut is not None or self.inbuf
                or (self.fault is not None and self.fault.resets) or run.busy or run.scenario.faults.allowed_drops
                or run.ws.now_ns - self.rx_ns < _QUIET_STOP_NS or _waits_in_backlog(peer)):
            return False
        return nothing_on_the_way(run.ws, peer) and self.owed_unread() == 0

    def reset_when_quiet(self) -> bool:
        """The server reset it at the stop though it was quiet then (:meth:`quiet_at_stop`) and has sent
        nothing since: fails it and returns True."""
        if (self.sent_at_stop != self.sent_bytes or self.fin_sent or self.owed_unread() != 0
                or self.inbuf or self.state == _DONE):
            return False
        self.fail(f"reset by the server at the stop, though it had read all it was owed and the server had sent it "
                  f"nothing for {_QUIET_STOP_NS / 1e6:g} ms (its last read at {self.rx_ns / 1e9:.6f} s, the stop "
                  f"at {(self.run.stop_ns or 0) / 1e9:.6f} s): a server that stops closes such a client gracefully "
                  f"(a FIN; a reset only with a send in flight, output queued or bytes of the client unread)")
        return True

    def fin_after_part_of_a_line(self, why: str) -> bool:
        """With the model's ``resets_cut_sends``: the server closed it gracefully (a FIN) at ``why`` (a stop,
        its idle time-out: closes the model allows whatever the client had not been sent) right after part of
        a line: fails it and returns True.  Such a server resets a connection it closes with a send in flight
        (CancelIoEx found it, or it completed cut short): a FIN tells the client that what came before it is
        all there is, and a line cut short then reads as a whole one.  Not with injected WSARecv/WSASend
        failures (a server may close after one, its output cut where its last send that worked ended)."""
        if not self.run.policy.resets_cut_sends or not self.inbuf or self.run.scenario.faults.allowed_drops:
            return False
        self._fail_fin_after_part(f"at {why}", bytes(self.inbuf))
        return True

    def fin_before_replies_at_stop(self, got: int | None = None, where: str = "") -> bool:
        """With the model's ``resets_cut_sends``: the server closed it gracefully (a FIN) at the stop before
        every reply to the lines it had taken _TAKEN_NS before the stop request (time to handle them: the
        fake completes a receive within 50 us, and its server handles it in a few calls), as its looks saw
        (``taken_log``: a lower bound); fails it and returns True.  Such a server resets a connection it
        closes with output for it dropped, a send in flight or output queued (ovserver's ``Server._close``):
        a FIN tells the client that it has all it was owed.  (fin_after_part_of_a_line sees only a FIN right
        after part of a line; a close that drops whole replies queued behind a completed send is seen here:
        red13's dropped-asked-after-leave.)  Not with injected WSARecv/WSASend failures, a slowed server,
        an idle time-out, nor a stop other than the scenario's (``_Run.planned_stop``).  ``got``: its own lines,
        read and waiting unread in front of the FIN (unread_fin_after_part_of_a_line), if not only those read."""
        run = self.run
        if not self.stop_looks or run.stop_ns is None or not run.planned_stop:
            return False
        lines = self.script.stream.count(b"\n", 0, taken_before(self.taken_log, run.stop_ns - _TAKEN_NS))
        if not lines or not self.own_count:
            return False
        due = self.own_count[self._units(lines, False)]
        got = self.own_got if got is None else got
        if got >= due:
            return False
        self.fail(f"closed by the server (a FIN) at the stop{where} after {got} of the {due} own lines owed for "
                  f"the {lines} lines it had taken {_TAKEN_NS / 1e6:g} ms before the stop request (at "
                  f"{run.stop_ns / 1e9:.6f} s): the model's resets_cut_sends says that the server resets a "
                  f"connection it closes with output for it dropped (a send in flight, output queued), so that a "
                  f"FIN follows every reply it owed")
        return True

    def _fail_fin_after_part(self, where: str, part: bytes) -> None:
        self.fail(f"closed by the server (a FIN) {where} right after part of a line, {_clip(part, 0, 60)}: the "
                  f"model's resets_cut_sends says that the server resets a connection it closes with a send in "
                  f"flight (SO_LINGER {{1, 0}}), so that the client knows the line was cut short")

    def unread_fin_after_part_of_a_line(self) -> None:
        """After serve() returned, with the model's ``resets_cut_sends``: the server's FIN is on its way or
        here, unread (the client did not read: a pause), behind the rest of what it was sent, all of it here;
        fails it when that ends in part of a line (see :meth:`fin_after_part_of_a_line`: the FIN it would
        read next, once it reads on).  Only looks (FakePeer.peek()): nothing of the fake moves."""
        unread = unread_before_fin(self.peer) if self.run.policy.resets_cut_sends else None
        if unread is not None:
            part = bytes(self.inbuf) + unread
            part = part[part.rfind(b"\n") + 1:]
            if part and not self.run.scenario.faults.allowed_drops:
                self._fail_fin_after_part("(not read yet when serve() returned)", part)
                return
        peer = self.peer
        end = peer.other_end() if peer is not None else None
        if (self.stop_looks and not self.run.model.broadcasts and peer is not None and end is not None
                and end.fin_sent and not end.reset and not peer.was_reset):
            # Echo: all it is sent is its own lines, so the server sent it as many bytes before its FIN as it has
            # read, has in its receive buffer and has on their way (a graceful close leaves no send outstanding).
            sent = self.received_bytes + peer.available() + end.in_flight
            self.fin_before_replies_at_stop(bisect.bisect_right(self.own_off, sent) - 1,
                                            " (not read yet when serve() returned)")

    def reset_when_idle(self) -> bool:
        """The server reset it at its idle time-out though nothing was on its way either way since a look of the
        idle watch (:meth:`_idle_watch`) found it so, and it had read all it was owed: fails it and returns True.
        Echo only (in chat another member's line may be on its way to it meanwhile, unseen by the looks); not with
        injected WSARecv/WSASend failures (a server may close after one) nor a slowed server."""
        run, look = self.run, self.quiet_look
        if (look is None or look[:2] != (self.sent_bytes, self.received_bytes) or run.model.broadcasts
                or self.fin_sent or self.inbuf or self.owed_unread() != 0 or self.cut is not None
                or run.busy or run.scenario.faults.allowed_drops):
            return False
        self.fail(f"reset by the server's idle time-out, though it had read all it was owed and nothing was on its "
                  f"way either way since {look[2] / 1e9:.6f} s (its last read at {self.rx_ns / 1e9:.6f} s): a server "
                  f"closes an idle client gracefully (a FIN; a reset only with a send in flight, output queued or "
                  f"bytes of the client unread)")
        return True

    def overdue_cut_off(self) -> bool:
        """While it did not read (its read pause, or for good), the server went over ``max_queued`` without
        cutting it off: fails it and returns True.  Looked at when it would read again (or resets), for the
        lines whose bytes the server had taken at least _TAKEN_NS before (time to handle them): the replies
        owed for them (the greeting and its own replies; in chat what others' lines owe it comes on top),
        less what it read, what is on its way to it (the server's bytes on the wire and in its receive
        buffer: the window) and what the server's posted sends have not moved into the network yet, are
        queued in the server; a correct server cuts a client off as soon as that is over ``max_queued``.
        Not with back-pressure (a server may hold a taken send back while it resumes others), a slowed
        server, a stop, a line over max_line, a slow reader, or injected failures that allow drops."""
        run, peer, stuck = self.run, self.peer, self.taken_while_stuck
        max_queued = run.policy.max_queued
        if (max_queued is None or run.policy.high_water is not None or run.busy or run.stopping
                or peer is None or peer.was_reset or self.cut is not None or run.scenario.faults.allowed_drops
                or not stuck or self.script.read_bytes is not None):
            return False
        self._note_taken(peer)
        before = self.run.ws.now_ns - _TAKEN_NS
        taken = taken_before(stuck, before)
        self.taken_while_stuck = []
        out = outbound(run.ws, peer)
        if out is None or not self.own_count:
            return False
        on_way, unmoved = out
        lines = self.script.stream.count(b"\n", 0, taken)
        owed = self.own_off[self.own_count[self._units(lines, False)]]
        queued = owed - self.received_bytes - on_way - unmoved
        if queued <= max_queued:
            return False
        self.fail(f"not cut off: it has not read since {self.rx_ns / 1e9:.6f} s, and the replies to its {lines} "
                  f"lines the server took before {before / 1e9:.6f} s leave {queued} bytes queued in the server "
                  f"(owed {owed}, read {self.received_bytes}, {on_way} on their way, {unmoved} in its posted "
                  f"sends), over max_queued {max_queued}: a cut-off was due")
        return True

    def _delay(self, j: int) -> int | None:
        """How long after its send before (or its start) it sends chunk ``j`` (or ends early, as its fault
        says), None: it has sent all."""
        f = self.fault
        if f is not None and j == f.before_chunk:
            return f.delay_ns
        if j < len(self.script.chunks):
            return self.script.gaps_ns[j]
        return None

    def _waits_from(self, j: int) -> int:
        """The waits of its script from its send of chunk ``j`` on (to its fault's, which ends it)."""
        total = 0
        f = self.fault
        for k in range(j, len(self.script.chunks) + 1):
            delay = self._delay(k)
            if delay is None:
                break
            total += delay
            if f is not None and k == f.before_chunk:
                break
        return total

    def _schedule(self, j: int) -> None:
        delay = self._delay(j)
        if delay is None:
            self._sent_all()
            return
        self.next_chunk = j
        ws = self.run.ws
        ws.call_at(ws.now_ns + delay, self._send, j)

    def _send(self, j: int) -> None:
        peer = self.peer
        if self.state != _SENDING or peer is None:
            return
        self.run.check_quiet()
        f = self.fault
        if f is not None and j == f.before_chunk:
            if f.kind == "reset":
                if self.script.stops_reading and self.overdue_cut_off():
                    return
                if self.script.stops_reading and not peer.was_reset:  # what it never read, checked now
                    data = peer.recv_nowait(1 << 30)
                    if data:
                        self.received(data)
                        if self.state == _DONE:
                            return
                self._note_reset()
                self.send_reset()
                self.run.report.resets += 1
                self.finish()
                self.run.recheck()
            else:
                self.run.report.leaves += 1
                self._sent_all()
                self._close()
            return
        if peer.was_reset or peer.at_eof:
            return  # reported by changed
        self.send(self.script.chunks[j])
        if self._paused_reader():
            # Noted now and at the server's next take of these bytes, even when it had taken all it had been sent
            # (only its bytes not taken yet have the peer wake it: note_taken), so that lines sent after a gap
            # count too.  (A look, no draw: the schedule is the same.)
            self._note_taken(peer)
        if self.run.policy.idle_timeout_ms is not None:
            self.lines_taken()
        self._schedule(j + 1)
        if self.cut_reached():
            self._progress()

    def _sent_all(self) -> None:
        self.state = _SENT
        if self.script.tail and self.stays:  # an unterminated last line: the FIN ends it
            self._close()
        self._progress()

    def _progress(self) -> None:
        if self.state not in (_SENT, _SENDING) or self.leaving:
            return
        if self.cut_reached():
            # Hung up for a line over the limit: the server closes (FIN) once its error line is
            # out, so the client waits for that FIN (server_closed) rather than leaving first,
            # which would let a server that never closes pass.
            return
        if self.stays and self.complete():
            self.leaving = True
            ws = self.run.ws
            if self.script.linger_ns:
                ws.call_at(ws.now_ns + self.script.linger_ns, lambda _: self._close())
            else:
                self._close()

    def _close(self) -> None:
        """FIN (behind every byte sent), then read until the server's FIN."""
        if self.fin_sent or self.state == _DONE or self.peer is None:
            return
        self.run.check_quiet()
        self.leaving = True
        self.state = _CLOSING
        if self.tail_is_line and self.sent_bytes == len(self.script.stream):
            self.line_sent_ns.append(self.run.ws.now_ns)  # the tail is a line once the FIN ends it
            self._note_active(1)
        self.fin_ns = self.run.ws.now_ns
        self.shutdown()
        f = self.fault
        if f is not None and f.reset_after_ns is not None:  # it gives up on the replies: a reset, later
            self.run.ws.call_at(self.run.ws.now_ns + f.reset_after_ns, self._reset_after_fin)
        if self.run.model.broadcasts and self.run.policy.high_water is None:
            # (With back-pressure a server may hold a client's receive back, so that its FIN is
            # seen only when it reads it again: lines routed to it meanwhile are its due.)
            self.run.ws.call_at(self.run.ws.now_ns + self.run.end_grace_ns, self._end_seen, 0)

    def _note_reset(self) -> None:
        """Before its reset (no FIN sent before it): if the server's socket for it is connected with a
        receive or a send pending, that operation fails with the reset, so the server ends the connection
        and counts it, as a reset or for a cause of its own (it closed it meanwhile: a limit, a protocol
        error, a time-out, the stop; or after an injected failure).  Not when nothing is pending: a
        connection accepted but not yet taken into service (an AcceptEx completed, not reaped) may be closed
        at a stop uncounted.  (A query of the fake's state: no call, no draw.)"""
        peer = self.peer
        if peer is None or peer.sent_fin or peer.was_reset:
            return
        if self.run.ws.held_with_io(peer):
            self.run.resets_held += 1

    def _let_go(self, close: bool) -> None:
        """The server ended this client early, as the model allows (a limit, an idle time-out, an injected
        failure): nothing more is owed to it (``close``: its side closes too, after the server's FIN)."""
        self.dropped = True
        if close:
            assert self.peer is not None
            self.peer.close()
        self.finish()
        self.run.recheck()

    def _reset_after_fin(self, _: object) -> None:
        """``ClientFault.reset_after_ns`` after its FIN: it closes with what it has not read (a reset)."""
        if self.state == _DONE or self.peer is None:
            return
        self.run.check_quiet()
        self.send_reset()
        self.run.report.resets += 1
        self.finish()
        self.run.recheck()

    def _end_seen(self, tries: int) -> None:
        """Its FIN was sent a while ago, and the server has taken it (reaped a
        receive of 0 bytes: :meth:`FakeWinsock.end_taken`): no line another
        client sends from now on may reach it, or, if the server took it only
        since the last look (``tries``: it took longer than the grace), none
        sent once the grace has passed again: a server acts on an end a
        little after it reaps it (an iocp worker waits for the lock).  Not
        from when the FIN arrived behind every byte read (``fin_read``): a
        correct server that is slow to post or reap its next receive learns
        of the end only then, and lines it routes to the client meanwhile are
        due."""
        if self.state == _DONE or self.peer is None:
            return
        if self.run.ws.end_taken(self.peer):
            self.end_seen_ns = self.run.ws.now_ns + (self.run.end_grace_ns if tries else 0)
        elif tries < 20:
            self.run.ws.call_at(self.run.ws.now_ns + self.run.end_grace_ns, self._end_seen, tries + 1)


class _Run:
    def __init__(self, ws: FakeWinsock, scenario: Scenario, model: LineModel, address: tuple[str, int],
                 deadline_ns: int, report: LineServerReport, idle_ns: int = _S) -> None:
        self.ws = ws
        self.scenario = scenario
        self.model = model
        self.policy = _Policy(model)
        self.idle_ns = idle_ns
        self.held_reported: set[int] = set()
        self.quiet_reported = False
        self.address = address
        self.deadline_ns = deadline_ns
        # A slowed server (Scenario.call_cost_ns) takes longer to see a client's end and to serve it.
        self.end_grace_ns = max(_END_GRACE_NS, _END_GRACE_CALLS * ws.config.syscall_cost)
        self.busy = scenario.call_cost_ns is not None
        if self.busy:
            self.deadline_ns = max(deadline_ns, _BUSY_DEADLINE_NS)
        self.report = report
        self.drops_left = scenario.faults.allowed_drops
        #: Clients that reset (no FIN before it) while the server held their connection with an operation
        #: pending (_Client._note_reset): each must end in one of the server's counts but an I/O error.
        self.resets_held = 0
        self.clients = [_Client(self, i, s, scenario.faults.fault_of(i)) for i, s in enumerate(scenario.clients)]
        self.done = 0
        self.trace_tail = 0
        self.trace_at_error = ""  # the trace's tail when the first error was seen
        self.stopping = False  # the server was asked to stop
        self.stop_ns: int | None = None  # when
        #: FaultPlan.stop_at_send_end, until the stop: the stop, which a client's event asks for when it finds a
        #: send of the server to it ended with output owed behind it (see check_line_server); else None.
        self.stop_at_send_end: Callable[[], None] | None = None
        #: The stop was the scenario's (FaultPlan.stop_at_ns, or stop_at_send_end's), not the one after every
        #: client was done.
        self.planned_stop = False
        # The backlog watch (check_backlog): off (None) without a client limit, with a slowed server, or with
        # AcceptEx failures of the fake's own (FakeConfig.enobufs).
        self.backlog_bound_ns: int | None = (
            _BACKLOG_WAIT_NS if self.policy.max_clients is not None and not self.busy and ws.config.enobufs <= 0
            else None)
        #: Clients connected, not yet accepted nor let go: index -> [the first look that found it next to be
        #: accepted by a server with room (-1: none yet), the last look that found it waiting].
        self.backlog_watch: dict[int, list[int]] = {}
        #: The first injected AcceptEx failure (the server may back off for a while after it): the watch ends then.
        self.accept_faults_ns: int | None = min(
            (i.at_ns for i in scenario.faults.injections if i.call == "AcceptEx"), default=None)
        self.released = False
        self.all_done: Callable[[], None] = lambda: None

    def error(self, msg: str) -> None:
        if not self.report.errors and self.ws.trace.enabled and self.trace_tail:
            self.trace_at_error = self.ws.trace.to_text(self.ws.trace.tail(self.trace_tail))
        self.report.errors.append(msg)

    def check_released(self, c: _Client, look_later: bool = True) -> None:
        """``idle_ns`` after client ``c`` ended: the server must have closed its socket (a slowed server that
        is still reading what ``c`` sent before its end, ``look_later``: ``idle_ns`` after its last byte)."""
        if self.stopping or c.index in self.held_reported:
            return
        if self.busy and look_later and c.still_read("release"):  # a slowed server still reads c's stream
            self.ws.call_at(self.ws.now_ns + self.idle_ns, self.check_released, c)
            return
        held = _held_socket(self.ws, c.peer)
        if held is not None:
            self.held_reported.add(c.index)
            handle, how = held
            self.error(f"{c.label} is gone (it {how}), but {self.idle_ns / 1e9:g} s later the server still holds "
                       f"its socket {handle:#x}: a client's exit (0 bytes, or a failed receive) must close the "
                       "connection")

    def check_quiet(self) -> None:
        """At a client's own moment (it arrives, sends, sends its FIN) and at the stop request: the server
        must not have sat quiet (no Winsock call) for ``idle_ns`` or more while a client it has accepted
        waits with bytes it sent and the server has not taken, unless some client has not read everything
        the server sent it (a server may stop reading while a reader is behind: back-pressure, a
        half-duplex server).  A server that has posted a receive on the socket takes the bytes as they
        arrive (the fake completes the receive), so this is a receive never posted or re-posted: a
        completion, an event's signal or a hand-over to another thread went unnoticed.  Such a loss is
        otherwise seen only if nothing wakes the server before the client's deadline, and a client's own
        departure always does (it comes within the deadline of a client that arrived earlier).  Read only:
        it draws nothing and adds no timer, so the run is the same with or without it."""
        if self.backlog_watch:
            self.check_backlog()
        if self.stopping or self.quiet_reported or self.report.errors:
            return
        ws = self.ws
        quiet = ws.now_ns - ws.last_call_ns
        if quiet < self.idle_ns:
            return
        waiting = None
        for c in self.clients:
            peer = c.peer
            if peer is None or c.state == _DONE or not peer.connected or peer.closed:
                continue
            server_end = peer.other_end()
            if peer.available() or (server_end is not None and server_end.in_flight):
                return  # it has not read all the server sent: the server may be waiting for it
            if waiting is None and peer.unread and not c.cut_reached() and ws.held_socket(peer) is not None:
                waiting = c
        if waiting is not None:
            self.quiet_reported = True
            assert waiting.peer is not None
            self.error(f"{waiting.label}: the server made no Winsock call for {quiet / 1e9:.3f} s while "
                       f"{waiting.peer.unread} bytes it sent waited for the server to take them (its connection "
                       "accepted, every client having read all the server sent): a receive not posted again, or "
                       "a completion, a signal or a hand-over not noticed")

    def check_backlog(self, final: bool = False) -> None:
        """At a client's moments (it connects, arrives, sends, reads, sends its FIN) and at the stop request:
        a client whose connection waits in the listen backlog, next to be accepted (only connections reset
        there are ahead of it: their accepts fail at once, or are dropped), while the server has room (it
        holds fewer connections than the model's ``max_clients``), is accepted within ``backlog_bound_ns``
        of the first look that found it so.  While it is next, no other connection can be accepted (the
        backlog is first in, first out), so the server's connections only go, and it keeps that room until
        it accepts it: each look tells from then, the accept's own time (``Endpoint.accepted_ns``) until when.
        A correct server that has room accepts at once (an AcceptEx is posted, or is posted again when the
        last completed); a delay is a lost wake-up of the thread that accepts, or a back-off that is not
        due (red12's inbox-taken-acceptor-not-woken, red13's accept-error-backs-off).  Not with a slowed
        server, injected AcceptEx failures (from the first on: the server may back off after one) or the
        fake's own (``FakeConfig.enobufs``), nor after the stop request; a connection an AcceptEx with a
        receive length has taken (Windows accepted it at the handshake; the accept waits for its first
        data) counts as accepted.  Read only: no draw, no timer, so the run is the same with or without it.
        ``final``: the stop request's look, after which it tells what it knows and the watch ends."""
        watch = self.backlog_watch
        if not watch:
            return
        ws, bound = self.ws, self.backlog_bound_ns
        now = ws.now_ns
        faults = self.accept_faults_ns
        if self.stopping or bound is None:
            watch.clear()
            return
        end_all = faults is not None and now >= faults
        limit = self.policy.max_clients or 0
        held = -1
        for index in list(watch):
            w = watch[index]
            c = self.clients[index]
            ep = c.peer.other_end() if c.peer is not None else None
            lst = ep.listener if ep is not None else None
            if (ep is not None and lst is not None and not end_all and ep in lst.backlog and c.state != _DONE
                    and not ep.reset and not lst.owner.accept_waits_on(ep)):  # still waiting
                if w[0] < 0:
                    if not self._next_in_backlog(ep, lst.backlog):
                        w[1] = now
                        continue
                    if held < 0:
                        held = sum(1 for d in self.clients if d.peer is not None and ws.held_socket(d.peer) is not None)
                    if held >= limit:
                        w[1] = now
                        continue
                    w[0] = now
                w[1] = now
                if not final and now - w[0] < bound:
                    continue
            del watch[index]
            if w[0] < 0:
                continue
            accepted = ep.accepted_ns if ep is not None else -1
            until = accepted if accepted >= 0 else w[1]
            if faults is not None:
                until = min(until, faults)
            if until - w[0] >= bound:
                how = (f"accepted {(accepted - w[0]) / 1e9:.6f} s after" if accepted >= 0 and accepted == until
                       else f"still waiting {(until - w[0]) / 1e9:.6f} s after")
                self.error(f"{c.label}: waited in the listen backlog, next to be accepted, while the server had room "
                           f"(it held fewer connections than max_clients, {limit}): first seen so at "
                           f"{w[0] / 1e9:.6f} s, {how} (at most {bound / 1e9:g} s allowed): an AcceptEx not "
                           "posted, a wake-up of the thread that accepts lost, or a back-off not due")
        if end_all or final:
            watch.clear()

    @staticmethod
    def _next_in_backlog(ep: Endpoint, backlog: Iterable[Endpoint]) -> bool:
        """Only connections reset in the backlog are ahead of ``ep`` (their accepts fail, or they are dropped)."""
        for q in backlog:
            if q is ep:
                return True
            if not q.reset:
                return False
        return False

    def client_done(self) -> None:
        self.done += 1
        self.barrier()
        if self.done == len(self.clients):
            self.all_done()

    def barrier(self) -> None:
        """Clients that have been greeted start sending: with a broadcasting
        model only once every client is greeted (or done)."""
        if not self.model.broadcasts:
            for c in self.clients:
                if c.state == _BARRIER:
                    c.start_sending()
            return
        if self.released or any(c.state not in (_BARRIER, _DONE) for c in self.clients):
            return
        self.released = True
        for c in self.clients:
            if c.state == _BARRIER:
                c.start_sending()

    def recheck(self) -> None:
        for c in self.clients:
            if c.state != _DONE:
                c._progress()


def _final_hypothesis_run() -> bool | None:
    """True in Hypothesis's final replay of a failing example, False in other
    Hypothesis runs, None outside Hypothesis."""
    try:
        from hypothesis.control import current_build_context

        return bool(current_build_context().is_final)
    except Exception:
        return None


#: _call_budget: the budget's bytes come in units of at most this many (a receive of a server takes this
#: or more, unless the flow-control window is smaller).
_BUDGET_UNIT = 1024


def _call_budget(scenario: Scenario, model: LineModel, window: int) -> int:
    """The Winsock-call budget of ``check_line_server`` (unless its config sets
    ``max_calls``): 1000 calls, 40 per unit of the bytes the server receives
    and sends (a unit is 1 KiB, or the flow-control window ``window`` if
    smaller: at worst a receive and a send per window), and 100 per line it
    sends, client and send.  A correct server needs a few calls per receive,
    send and client (ovserver's three models under 1/8 of it); a spinning one
    exceeds any such budget (BusyLoopError).  The budget used to be 40 calls
    per byte: a spin in an example of megabytes then ran for hundreds of
    millions of calls (minutes) before it was reported."""
    size = scenario.size()
    fan = max(1, size["clients"]) if model.broadcasts else 1  # a chat line goes to every other client
    unit = max(1, min(window, _BUDGET_UNIT))
    units = -(-size["bytes"] * (1 + fan) // unit)
    return 1_000 + 40 * units + 100 * (size["lines"] * fan + size["clients"] + size["sends"])


def check_line_server(server: ServerFactory, scenario: Scenario, model: LineModel | None = None, *,
                      data: Any = None, seed: int = 0, config: FakeConfig | None = None,
                      address: tuple[str, int] = ("127.0.0.1", 7000), client_deadline_s: float = 30.0,
                      idle_s: float = 1.0, max_idle_calls: int | None = 100, max_draws: int | None = None,
                      trace_tail: int = 40, preempt: bool = False) -> LineServerReport:
    """Run ``server(ws, address)`` on a fake with ``scenario``'s clients and
    check it against ``model`` (default :class:`EchoModel`).

    The fake's choices come from Hypothesis when ``data`` (from
    ``st.data()``) is given, so failures shrink to a minimal schedule;
    otherwise from ``seed``.  ``config`` is its policy (default: every choice
    open, with splits, partial receives and background progress).  At most
    ``max_draws`` choices are drawn (default: 200, plus 30 per client, line and
    send); the rest of the run is answered by a generator seeded by one more
    draw (which shrinks to the simplest answers).  Unless ``config``
    sets ``max_calls``, the Winsock-call budget is 1000, plus 40 per KiB (or
    per window, if the window is smaller) received and sent, and 100 per
    client, send and line sent (far more than a correct server needs).

    Each client checks every line it receives, as it arrives: its own replies
    exactly and in order (a prefix if it resets; every reply to a whole line
    it sent before its FIN if it half-closes), each other client's
    broadcasts in order (exactly, between clients that stay; none sent once
    20 ms have passed since its FIN and the server has taken it, reaping a
    receive of 0 bytes: 20 ms after the server was seen to have taken it, if
    it took longer).  The model's limits are expected
    behaviour: a line over ``max_line`` gets the error line, then the
    server's FIN; a client owed more than ``max_queued`` (with back-pressure:
    more than half of ``high_water``, unless the server took its FIN well
    before) may be reset.  A
    wrong line is reported with the offset of its first differing byte.  A
    run fails when a line is wrong, missing, duplicated or unexpected; when the server
    closes or resets a client unasked (beyond what injected WSARecv/WSASend
    failures and the model's limits allow); when a client is not served within
    ``client_deadline_s`` of virtual time (a client still sending then, on its
    script's own gaps, gets as long again after the gaps it had left); when the server spins (far more
    Winsock calls than the work needs, or more than ``max_idle_calls`` during
    ``idle_s`` of idle time, 0.1 s after every client is done); when it still
    holds the socket of a client that is gone (reset or closed) ``idle_s``
    after that client's end; when it has made no Winsock call for ``idle_s``
    while a client it accepted has bytes it has not taken and every client
    has read all it was sent (looked at when a client arrives, sends or sends
    its FIN, and at the stop request: a lost wake-up); when, with the model's
    ``max_clients``, a client next to be accepted waits in the listen backlog
    for 100 ms while the server holds fewer connections than that (an accept
    delayed while the server has room: ``_Run.check_backlog``); when it does
    not stop within ``idle_s`` of the stop request; when it raises
    (misuse the fake detects, a deadlock, a leak at WSACleanup); when it does
    not return from ``serve()`` on ``stop()``, or leaves anything open.
    Raises :class:`LineServerFailure`; returns the report when all is well.

    ``preempt``: thread switches favour the server's synchronization calls
    (:class:`~fakewinsock.testing.HypothesisChooser`'s ``preempt``, drawn on
    or off per example; with a seed, :class:`PreemptingChooser`, always on).
    """
    __tracebackhide__ = True  # pytest: the failure is the server's, not this function's
    model = model if model is not None else EchoModel()
    final = _final_hypothesis_run()
    size = scenario.size()
    chooser = None
    if data is not None:
        # Bounded by the scenario's size, so that a spinning server's examples stay small to shrink.
        draws = max_draws if max_draws is not None else min(
            _MAX_DEFAULT_DRAWS, 200 + 30 * (size["clients"] + size["lines"] + size["sends"]))
        chooser = HypothesisChooser(data, max_draws=draws, record=final is not False, tail=True, preempt=preempt)
    base = config if config is not None else FakeConfig(immediate=0.5, split=0.3, partial_recv=0.3,
                                                        background=0.2)
    if scenario.faults.backlog is not None:
        base = replace(base, backlog=scenario.faults.backlog)
    if scenario.window is not None:
        base = replace(base, window=scenario.window)
    if scenario.call_cost_ns is not None:  # a server slower than its clients
        base = replace(base, syscall_cost=scenario.call_cost_ns, keep_up=True)
    tracing = trace_tail > 0 and final is not False
    if base.max_calls is None:
        base = replace(base, max_calls=_call_budget(scenario, model, base.window))
    # The whole trace is kept (a run is bounded by max_calls): a failure writes it to a file.
    ws = FakeWinsock(seed=seed, config=replace(base, trace_limit=None if tracing else 1),
                     chooser=chooser if chooser is not None or not preempt else PreemptingChooser(seed))
    ws.trace.enabled = tracing
    report = LineServerReport(size, seed=None if chooser is not None else seed, features=scenario.features)
    run = _Run(ws, scenario, model, address, int(client_deadline_s * _S), report, int(idle_s * _S))
    run.trace_tail = trace_tail
    _track(ws, report)

    handle = server(ws, address)
    stop_requested = False

    def stop(planned: object = False) -> None:
        nonlocal stop_requested
        if not stop_requested:
            run.planned_stop = planned is True
            run.check_quiet()
            run.check_backlog(final=True)
            for c in run.clients if not run.policy.resets_at_stop else ():
                if c.quiet_at_stop():
                    c.sent_at_stop = c.sent_bytes
            stop_requested = run.stopping = True
            run.stop_at_send_end = None
            run.stop_ns = ws.now_ns
            ws.call_at(ws.now_ns + int(idle_s * _S), stop_late, ws.now_ns)
            handle.stop()

    def stop_late(asked_ns: int) -> None:  # runs only while serve() still waits
        pending = ws.pending_operations()
        run.error(f"the server did not stop within {idle_s:g} s of the stop request (at "
                  f"{asked_ns / 1e9:.6f} s): serve() still waits"
                  + (f", with {len(pending)} operations in flight: {'; '.join(pending[:4])}" if pending else "")
                  + ". A stop must close every connection (closesocket cancels what is in flight), not wait "
                  "for clients")

    queued: list[_Client] = []  # the clients whose connections waited in the listen backlog as the idle second began

    def idle_over(calls_before: int) -> None:
        if run.busy and sum(c.still_read("idle") for c in run.clients):
            # A slowed server still reads what clients sent before their end: not idle yet, another second.
            idle_start(None)
            return
        if any(not _waits_in_backlog(c.peer) for c in queued):
            # It accepted connections that waited in its listen backlog as the second began (clients that reset
            # there, done long since, while a failed AcceptEx's retry was due): work owed before the second, not
            # polling; another second, from now (the backlog is finite: it ends).
            idle_start(None)
            return
        made = ws.stats["calls"] - calls_before
        if max_idle_calls is not None and made > max_idle_calls:
            run.error(f"busy polling: the server made {made} Winsock calls in {idle_s:g} s of idle time "
                      f"(every client done; at most {max_idle_calls} allowed)")
        for c in run.clients:
            run.check_released(c, look_later=False)  # (the idle second just seen took nothing of theirs)
        stop()

    def idle_start(_: object) -> None:
        if run.busy:
            for c in run.clients:
                c.still_read("idle")
        queued[:] = [c for c in run.clients if _waits_in_backlog(c.peer)]
        ws.call_at(ws.now_ns + int(idle_s * _S), idle_over, ws.stats["calls"])

    def all_done() -> None:
        if stop_requested:
            return
        if report.errors:
            stop()  # no point in waiting: stop now
        else:  # let the server finish what is in flight, then it must stay quiet
            ws.call_at(ws.now_ns + max(_SETTLE_NS, _SETTLE_CALLS * base.syscall_cost), idle_start)

    run.all_done = all_done
    for c in run.clients:
        ws.call_at(c.script.arrive_ns, c.arrive)
    def planned_stop() -> None:
        stop(True)

    def stop_at_send_end(_: object) -> None:
        """FaultPlan.stop_at_send_end, at its stop_at_ns (no client event found the moment before): the stop
        now, unless a client is owed output queued behind a send posted to it (_Client.owed_behind_send);
        then at the first client event that finds that send ended (the read that made room for its last
        bytes), at most _STOP_SEND_END_WAIT_NS from now."""
        behind = [c for c in run.clients if c.owed_behind_send()]
        if stop_requested or not behind or any(send_ending(ws, c.peer) for c in behind):
            stop(True)
            return
        ws.call_at(ws.now_ns + _STOP_SEND_END_WAIT_NS, stop, True)

    if scenario.faults.stop_at_ns is not None:
        ws.call_at(scenario.faults.stop_at_ns, stop_at_send_end if scenario.faults.stop_at_send_end else stop, True)
        if scenario.faults.stop_at_send_end:
            # As a console's Ctrl+C may come at any instant, this stop comes (from the start) at the first client
            # event that finds one of the server's sends to it ended, its completion still due (the server has not
            # been told yet: its close of the connection then cancels nothing), while the client is owed output
            # queued behind that send: the close must still be abortive (see fin_before_replies_at_stop).
            run.stop_at_send_end = planned_stop
    for inj in scenario.faults.injections:
        ws.call_at(inj.at_ns, lambda i: ws.inject_error(i.call, i.error, i.count), inj)
    if not run.clients:
        all_done()

    try:
        handle.serve()
    except Exception as e:  # the server (or the fake on its behalf) raised
        if chooser is not None and chooser.stopped_by is not None:
            raise chooser.stopped_by from None  # Hypothesis ended the example; whatever followed is no failure
        spun = _first_busy_loop(e)
        report.errors.insert(0, f"busy loop: {spun}" if spun is not None else
                             f"the server raised {type(e).__name__}: {e}")
        raise _failure(ws, chooser, report, trace_tail, run.trace_at_error) from e
    else:
        if chooser is not None and chooser.stopped_by is not None:
            raise chooser.stopped_by  # the server swallowed it: the run is cut short, not a verdict
        if not stop_requested:
            report.errors.insert(0, "serve() returned before stop() was called "
                                    f"({run.done} of {len(run.clients)} clients done)")
        else:
            leaks = ws.leaks()
            if leaks:
                report.errors.append("left open after serve() returned: " + "; ".join(leaks[:8]))
            for c in run.clients:  # a reset at the stop that had not reached the client when serve() returned
                if c.sent_at_stop is not None and reset_by_server(c.peer):
                    c.reset_when_quiet()
                elif c.state != _DONE:  # a FIN that it had not read when serve() returned (it did not read)
                    c.unread_fin_after_part_of_a_line()
            _check_counts(handle, run, report, _check_served(run, report))
    finally:
        report.calls = ws.stats["calls"]
        report.virtual_ns = ws.now_ns
        report.draws = chooser.draws if chooser is not None else None
        # No program thread outlives its run: when the run ends early (Hypothesis stops the
        # example inside a call of the main thread, a failure), the server's other threads
        # are still parked; a correct run has joined them all (else ws.leaks() said so).
        ws.end_threads()
    if report.errors:
        raise _failure(ws, chooser, report, trace_tail, run.trace_at_error)
    return report


def _served_at_once(run: _Run) -> tuple[int, float, list[_Client]]:
    """The most clients the server certainly served at one moment, as the clients saw it: a client held
    its place (the server had accepted it and not yet closed it) from the moment it read the server's first
    byte (sent after its accept) to the moment it sent the last line of it, or of another client routed to
    it, that the server took (the line's reply or its broadcast arrived: the server took that line, and
    routed it, after it was sent), or, if it ended normally (the server's FIN after its own and every reply,
    no line over max_line), its FIN (the server closes once it has taken it; or at the stop, if sooner), if
    that comes later; a connection's life is one stretch of time, so it held its place all along in between.
    (Not by the FIN with an idle time-out or injected WSARecv/WSASend failures: a server may then close a
    client gracefully before its FIN, which the client reads after sending it.)  Post hoc, from what the
    clients kept: no call, no draw.  The number, the moment (in seconds) and those clients."""
    until: dict[int, int] = {}
    by_fin = run.policy.idle_timeout_ms is None and not run.scenario.faults.allowed_drops
    for c in run.clients:
        if by_fin and c.ended_normally:
            end = c.fin_ns if run.stop_ns is None else min(c.fin_ns, run.stop_ns)
            until[c.index] = max(until.get(c.index, end), end)
        t = c.last_answered_ns()
        if t is not None:
            until[c.index] = max(until.get(c.index, t), t)
        for d_index, h in c.heard.items():
            d = run.clients[d_index]
            if 0 < h <= len(d.out_line) and d.out_line[h - 1] < len(d.line_sent_ns):
                sent = d.line_sent_ns[d.out_line[h - 1]]
                for i in (c.index, d_index):
                    until[i] = max(until.get(i, sent), sent)
    spans = [(c.first_rx_ns, until[c.index], c) for c in run.clients
             if c.first_rx_ns is not None and c.index in until and c.first_rx_ns <= until[c.index]]
    best: tuple[int, float, list[_Client]] = (0, 0.0, [])
    for start, _, _ in spans:  # (the most at once is reached at some span's start)
        here = [c for s, e, c in spans if s <= start <= e]
        if len(here) > best[0]:
            best = (len(here), start / 1e9, here)
    return best


def _check_served(run: _Run, report: LineServerReport) -> int:
    """The model's client limit (``max_clients``) against :func:`_served_at_once`; the clients served at
    once (at least 1 if any client read a byte of the server's)."""
    n, at_s, clients = _served_at_once(run)
    limit = run.policy.max_clients
    if limit is not None and n > limit:
        report.errors.append(
            f"{n} clients served at once at {at_s:.6f} s ({', '.join(c.label for c in clients)}: each had read a "
            f"byte the server sent it by then, and later had a line of its own or routed to it taken by the "
            f"server, or sent the FIN that ended it normally), but the model's max_clients is {limit}: the others "
            "must wait (in the listen backlog) until a place is free")
    return max(n, 1 if any(c.first_rx_ns is not None for c in run.clients) else 0)


def _check_counts(handle: ServerUnderTest, run: _Run, report: LineServerReport, served: int = 0) -> None:
    """A server that counts how its clients ended (``handle.counts()``, see
    :class:`CountingServer`) counts no more graceful ends than clients sent a
    FIN: a reset taken for a FIN (a failed receive of 0 bytes read as the end
    of the stream) shows only there.  And, if it counts both its resets
    (``"reset"``) and the connections it closed for causes of its own
    (``"closed"``), no fewer of those together than the clients that reset
    (no FIN before it) while the server held their connection with a receive
    or a send pending (which fails with the reset), less the injected
    WSARecv/WSASend failures (after one the server may close a connection and
    count an I/O error): a reset counted as an I/O error shows there.  (No
    upper bound on resets: a client's close with unread data is a reset too,
    and a server may count its own aborts.)  Its ``"peak"`` of connections open at once, if it gives one, is
    at least ``served`` (:func:`_check_served`: the clients it certainly served at once, 1 if it sent any
    client a byte) and at most its ``"accepted"`` (if given), the clients that tried to connect, and the
    model's ``max_clients``."""
    counts_of = getattr(handle, "counts", None)
    if counts_of is None:
        return
    counts = counts_of()
    peak = counts.get("peak")
    if peak is not None:
        tried = sum(1 for c in run.clients if c.attempts)
        accepted = counts.get("accepted")
        bounds = [(tried, f"only {tried} clients tried to connect")]
        if accepted is not None:
            bounds.append((accepted, f"the server counted {accepted} accepted"))
        if run.policy.max_clients is not None:
            bounds.append((run.policy.max_clients, f"the model's max_clients is {run.policy.max_clients}"))
        over = [why for most, why in bounds if peak > most]
        if peak < served:
            at_once = ("it served a client (that read a byte the server sent it)" if served == 1 else
                       f"it served {served} clients at once (each had read a byte the server sent it, and later "
                       "had a line taken by the server or sent the FIN that ended it normally)")
            report.errors.append(f"the server counted a peak of {peak} connections open at once, but {at_once}: "
                                 "a peak taken before the new connection counts?")
        elif over:
            report.errors.append(f"the server counted a peak of {peak} connections open at once, but "
                                 f"{' and '.join(over)}")
    ended = counts.get("ended")
    fins = sum(1 for c in run.clients if c.peer is not None and c.peer.sent_fin)
    if ended is not None and ended > fins:
        report.errors.append(f"the server counted {ended} clients ended gracefully, but only {fins} sent a FIN: a "
                             "reset (a failed receive, even one of 0 bytes) is not a graceful end")
    reset, closed = counts.get("reset"), counts.get("closed")
    hung_up = sum(1 for c in run.clients if c.hung_up_for_sure())
    if closed is not None and closed < hung_up:
        report.errors.append(f"{hung_up} clients sent a line over max_line that the server certainly found (the client "
                             "read the error line, or the server took its byte past the limit 1 ms before the "
                             "stop and the client's end), but the server counted "
                             f"only {closed} connections it closed itself: a hang-up is the server's own cause, "
                             "counted when the line is found too long, whatever ends the connection then (a reset, "
                             "a cut-off, the stop)")
    injected = run.scenario.faults.allowed_drops
    if reset is not None and closed is not None and run.resets_held > reset + closed + injected:
        report.errors.append(f"{run.resets_held} clients reset while the server held their connection (a receive "
                             f"or a send pending), but the server counted {reset} resets and {closed} connections "
                             f"it closed itself ({injected} injected failures allow as many other ends): a reset "
                             "counted as something else (an I/O error?)")


def _held_socket(ws: FakeWinsock, peer: FakePeer | None) -> tuple[int, str] | None:
    """The handle of the server's socket for ``peer``'s connection, and how the
    peer went ("reset" or "closed"), if the server has accepted it and still
    has it open though the peer is gone."""
    if peer is None or not peer.closed:
        return None  # never connected, or the client has not closed nor reset
    handle = ws.held_socket(peer)
    if handle is None:
        return None  # closed by the server, or never accepted (a listener's backlog)
    return handle, "reset" if peer.was_reset else "closed"


def _waits_in_backlog(peer: FakePeer | None) -> bool:
    """``peer``'s connection is established and waits in the server's listen backlog, not yet accepted (a
    connection reset there waits too, until an accept takes it: its AcceptEx fails, or it is dropped)."""
    ep = peer.other_end() if peer is not None else None
    listener = ep.listener if ep is not None else None
    return listener is not None and ep in listener.backlog


def _first_busy_loop(e: BaseException) -> BusyLoopError | None:
    """The first BusyLoopError behind ``e`` (the server's clean-up after it raises again)."""
    first = None
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, BusyLoopError):
            first = cur
        cur = cur.__cause__ or cur.__context__
    return first


def _failure(ws: FakeWinsock, chooser: HypothesisChooser | None, report: LineServerReport,
             trace_tail: int, at_error: str) -> LineServerFailure:
    report.calls = ws.stats["calls"]
    report.virtual_ns = ws.now_ns
    report.draws = chooser.draws if chooser is not None else None
    tail = at_error or (ws.trace.to_text(ws.trace.tail(trace_tail)) if ws.trace.enabled and trace_tail else "")
    schedule = chooser.describe_schedule() if chooser is not None else ""
    return LineServerFailure(report, tail, schedule, _write_trace(ws) if ws.trace.enabled and trace_tail else "")


def _write_trace(ws: FakeWinsock) -> str:
    """Write a failing run's whole trace for Perfetto into ``$FAKEWINSOCK_TRACE_DIR``
    (default: fakewinsock-traces in the temporary directory); its path."""
    folder = os.environ.get("FAKEWINSOCK_TRACE_DIR") or os.path.join(tempfile.gettempdir(), "fakewinsock-traces")
    os.makedirs(folder, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix="check_line_server-", suffix=".perfetto.json", dir=folder)
    os.close(fd)
    ws.trace.write(path, "perfetto")
    return path


# ====================================================================== pytest integration


def _track(ws: FakeWinsock, report: LineServerReport) -> None:
    """Let the pytest plugin (if it runs this test) show this fake in a failure report."""
    with contextlib.suppress(ImportError):
        from ..pytest_plugin import track_fake

        track_fake(ws, lambda: report.describe())
