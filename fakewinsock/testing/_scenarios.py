"""Scenarios: what the scripted clients of a run do, and the strategies that draw them.

Owns the scenario data (:class:`ClientScript`, :class:`ClientFault`,
:class:`Injection`, :class:`FaultPlan`, :class:`Scenario`), the traffic
features of the swarm (:data:`FEATURES`) and the strategies
(:func:`scenarios`, swarm and plain, and :func:`fault_plans`).  It draws
scenarios only: running them is :mod:`fakewinsock.testing._checker`'s job.
Uses Hypothesis and the fake's error codes; nothing else of the package.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

from hypothesis import strategies as st

from .._constants import WSAENOBUFS

__all__ = ["ClientScript", "ClientFault", "Injection", "FaultPlan", "FEATURES", "Scenario", "scenarios",
           "fault_plans"]

T = TypeVar("T")
_US = 1_000
_MS = 1_000_000
_S = 1_000_000_000


# ====================================================================== scenarios


def _short(data: bytes, keep: int = 24) -> str:
    return repr(data) if len(data) <= 2 * keep else f"{data[:keep]!r}+<{len(data) - keep} more bytes>"


def _listed(items: Sequence[object], keep: int = 8) -> str:
    shown = ", ".join(str(x) for x in items[:keep])
    return shown + (f", ... ({len(items) - keep} more)" if len(items) > keep else "")


@dataclass(frozen=True, repr=False)
class ClientScript:
    """What one simulated client sends, and when (virtual nanoseconds).

    ``lines`` are the messages without their newline; the client's byte stream
    is each line followed by ``b"\\n"``, then ``tail`` (a last line without its
    newline, b"" for none), cut into ``chunks`` (one ``send`` each,
    ``gaps_ns[i]`` after the previous one; the first after the client is ready
    to send).  The client connects at ``arrive_ns`` (retrying with a backoff
    when refused) and, once it has every reply it expects, waits ``linger_ns``
    before it leaves gracefully: FIN, read until the server's FIN, close.  A
    client with a ``tail`` sends its FIN right after the tail (the tail is then
    an unterminated last line at EOF: the model says what becomes of it).

    Reading: the client reads whatever arrives at once, except that
    ``pause_at_ns`` after it is greeted (connected, without a greeting) it
    stops reading for ``pause_ns``
    (``None``: for good; such a client must end with a reset, see
    :class:`ClientFault`).  While it does not read, the server's sends to it
    fill the window and then pend.  ``read_bytes`` (None: no limit) makes it a
    slow reader for its whole life: each read takes at most that many bytes,
    and after each read it does not read for ``read_every_ns``, so the server's
    output to it backs up whenever it is owed more than that rate.
    """

    lines: tuple[bytes, ...]
    chunks: tuple[bytes, ...]
    gaps_ns: tuple[int, ...]
    arrive_ns: int = 0
    linger_ns: int = 0
    tail: bytes = b""
    pause_at_ns: int | None = None
    pause_ns: int | None = None
    read_bytes: int | None = None
    read_every_ns: int = 0

    def __post_init__(self) -> None:
        # (one pass over the stream: the lines hold no newline if it has one per line)
        if b"\n" in self.tail or self.stream.count(b"\n") != len(self.lines):
            raise ValueError("ClientScript.lines and tail must not contain newlines")
        if b"".join(self.chunks) != self.stream or any(not c for c in self.chunks):
            raise ValueError("ClientScript.chunks must be non-empty and join to the lines, each ended by a newline, "
                             "and the tail")
        if len(self.gaps_ns) != len(self.chunks) or min(self.gaps_ns, default=0) < 0:
            raise ValueError("ClientScript.gaps_ns needs one delay >= 0 per chunk")
        if self.arrive_ns < 0 or self.linger_ns < 0:
            raise ValueError("ClientScript.arrive_ns and linger_ns must be >= 0")
        if (self.pause_at_ns is not None and self.pause_at_ns < 0) or (self.pause_ns is not None and self.pause_ns < 0):
            raise ValueError("ClientScript.pause_at_ns and pause_ns must be >= 0")
        if self.pause_ns is not None and self.pause_at_ns is None:
            raise ValueError("ClientScript.pause_ns needs pause_at_ns (when the pause starts)")
        if self.read_bytes is not None and self.read_bytes < 1:
            raise ValueError("ClientScript.read_bytes must be >= 1 (or None: no limit)")
        if self.read_every_ns < 0 or (self.read_every_ns and self.read_bytes is None):
            raise ValueError("ClientScript.read_every_ns must be >= 0, and needs read_bytes")

    @classmethod
    def of(cls, *lines: bytes, chunk: int = 0, arrive_ns: int = 0, linger_ns: int = 0, tail: bytes = b"",
           pause_at_ns: int | None = None, pause_ns: int | None = None, read_bytes: int | None = None,
           read_every_ns: int = 0) -> ClientScript:
        """A script sending ``lines`` (then ``tail``, a last line without its
        newline); ``chunk`` > 0 cuts the stream into sends of that size."""
        stream = _ended(lines) + tail
        size = chunk if chunk > 0 else max(1, len(stream))
        chunks = tuple(stream[i:i + size] for i in range(0, len(stream), size))
        return cls(tuple(lines), chunks, (0,) * len(chunks), arrive_ns, linger_ns, tail, pause_at_ns, pause_ns,
                   read_bytes, read_every_ns)

    @functools.cached_property
    def stream(self) -> bytes:
        """Every byte it sends, in order (made once: the checker asks often; the
        script is frozen, so the cached value never goes stale)."""
        return _ended(self.lines) + self.tail

    def __repr__(self) -> str:
        """The dataclass's repr (it rebuilds the script), or, for a big script, a
        short one that a person can read: long lines cut, sends as their sizes."""
        names = ["lines", "chunks", "gaps_ns", "arrive_ns", "linger_ns", "tail", "pause_at_ns", "pause_ns"]
        if self.read_bytes is not None:
            names += ["read_bytes", "read_every_ns"]
        full = f"ClientScript({', '.join(f'{n}={getattr(self, n)!r}' for n in names)})"
        if len(full) <= 600:
            return full
        lines = [_short(x) for x in self.lines]
        parts = [f"lines=({_listed(lines)}{',' if len(lines) == 1 else ''})",
                 f"chunks=<{len(self.chunks)} sends of {_listed([len(c) for c in self.chunks])} bytes>",
                 f"gaps_ns=({_listed(list(self.gaps_ns))})"]
        defaults: dict[str, object] = {"arrive_ns": 0, "linger_ns": 0, "tail": b"", "pause_at_ns": None,
                                       "pause_ns": None, "read_bytes": None, "read_every_ns": 0}
        for name, default in defaults.items():
            value = getattr(self, name)
            if value != default:
                parts.append(f"{name}={_short(value) if isinstance(value, bytes) else repr(value)}")
        return f"ClientScript({', '.join(parts)})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis's pretty printer (its "Failing test case:" line) shows
        :meth:`__repr__` too: by itself it prints a dataclass field by field,
        which for a big script is hundreds of kB.  Hypothesis then warns of an
        overly large repr in its final replay, before the test body runs; where
        warnings are errors (pytest ``-W error``) that ended the replay early
        and Hypothesis reported a FlakyStrategyDefinition instead of the failure."""
        printer.text(repr(self))

    @property
    def stops_reading(self) -> bool:
        """It stops reading for good at some point."""
        return self.pause_at_ns is not None and self.pause_ns is None

    def lines_before(self, chunk: int) -> int:
        """How many complete lines the chunks before ``chunk`` carry."""
        return sum(c.count(b"\n") for c in self.chunks[:chunk])

    def leave_points(self) -> list[int]:
        """Where a graceful early leave may come: :meth:`line_boundaries`, and
        after the last chunk if the stream ends with a whole line."""
        points = self.line_boundaries()
        if self.chunks and self.stream.endswith(b"\n") and points[-1] != len(self.chunks):
            points.append(len(self.chunks))
        return points

    def line_boundaries(self) -> list[int]:
        """The chunk indexes before which the stream sent so far ends with a whole line."""
        out = [0]
        pos = 0
        for i, c in enumerate(self.chunks[:-1]):
            pos += len(c)
            if c.endswith(b"\n"):
                out.append(i + 1)
        return out


@dataclass(frozen=True)
class ClientFault:
    """Client ``client`` does not stay to the end.

    ``kind="reset"``: an abortive close (SO_LINGER {1, 0}: the server sees
    WSAECONNRESET) instead of sending chunk ``before_chunk`` (``len(chunks)``:
    after sending everything, before all replies are in; ``-1``: as soon as it
    is connected, while the server may still be accepting it).
    ``kind="leave"``: a graceful early leave, FIN instead of sending chunk
    ``before_chunk`` (which must follow a whole line: the server sees a
    receive of 0 bytes), then it reads every reply to the lines it sent until
    the server's FIN.  ``delay_ns`` is the wait after the previous chunk.
    ``reset_after_ns`` (``kind="leave"`` only; None: it reads on): after its
    FIN the client reads nothing more, and this long after the FIN it closes
    with what it has not read, which is an abortive close (the server sees
    WSAECONNRESET, also on a send of its replies still pending): a client
    that half-closes, then gives up on the answer, as an HTTP client that
    stops reading does.  Nothing more is owed to it, as to one that resets.
    """

    client: int
    kind: Literal["reset", "leave"]
    before_chunk: int
    delay_ns: int = 0
    reset_after_ns: int | None = None

    @property
    def resets(self) -> bool:
        """It ends with a reset: ``kind="reset"``, or a leave with ``reset_after_ns``."""
        return self.kind == "reset" or self.reset_after_ns is not None


@dataclass(frozen=True)
class Injection:
    """At virtual time ``at_ns``, make the next ``count`` calls of ``call``
    (``"AcceptEx"``, ``"WSARecv"`` or ``"WSASend"``) fail at once with ``error``
    (:meth:`FakeWinsock.inject_error`).  A server may drop the one connection
    whose WSARecv or WSASend failed: each such injected failure allows one
    client to be closed by the server; an AcceptEx failure allows none (the
    server must retry)."""

    at_ns: int
    call: Literal["AcceptEx", "WSARecv", "WSASend"]
    error: int = WSAENOBUFS
    count: int = 1


@dataclass(frozen=True)
class FaultPlan:
    """What goes wrong: clients that reset or leave early, injected errors,
    ``backlog`` (a listen backlog this small refuses connections; the clients
    retry), and ``stop_at_ns``: the server is asked to stop at that moment,
    with clients still connected (they may then be closed, reset or refused;
    what they received until then must still be right, and the server must
    reap every operation its closesocket calls cancelled and leak nothing).
    With ``stop_at_send_end`` (check_line_server's), the stop comes at the
    first moment, from the start, when a send of the server to a client has
    ended (the client's read made room for its last bytes) while its
    completion is still due (the server has not been told yet: its close of
    that connection cancels nothing) and the client is owed more of its own
    replies, for the lines the server had taken 1 ms before, than it has
    read, has on their way and in that send (output queued behind it); else
    at ``stop_at_ns``, or, if a client is owed so then, at the first such
    moment up to _STOP_SEND_END_WAIT_NS (200 ms) later, at the latest then."""

    clients: tuple[ClientFault, ...] = ()
    injections: tuple[Injection, ...] = ()
    backlog: int | None = None
    stop_at_ns: int | None = None
    stop_at_send_end: bool = False

    def fault_of(self, client: int) -> ClientFault | None:
        for f in self.clients:
            if f.client == client:
                return f
        return None

    @property
    def allowed_drops(self) -> int:
        """Clients the server may close because an injected WSARecv/WSASend failure hit them."""
        return sum(i.count for i in self.injections if i.call != "AcceptEx")


#: The traffic features a swarm scenario switches on or off, by group (see :func:`scenarios`).
FEATURES: dict[str, tuple[str, ...]] = {
    "sizes": ("empty_lines", "tiny_lines", "long_lines", "big_sends", "small_sends", "boundary_sends"),
    "flow": ("small_window", "paused_readers", "stopped_readers", "backpressure", "slow_readers"),
    "endings": ("half_close", "fin_after_burst", "resets", "unterminated", "talk_after_leave", "departures",
                "reset_after_fin", "idle_clients", "hangup_edges", "deaf_drains"),
    "load": ("crowd", "spread_arrivals", "busy_server"),
    "faults": ("injections", "early_stop", "backlog", "accept_faults"),
}
_ALL_FEATURES = tuple(f for group in FEATURES.values() for f in group)
#: Features drawn only when ``scenarios(features=...)`` names them: none now.  busy_server was one from search13,
#: whose checks raised false alarms on slowed correct servers, until search14 gave the fake a quantum with keep_up
#: and the checker's release and idle seconds the stream a slowed server is still reading; hangup_edges and
#: deaf_drains were (search28, so that no sequence moved) until shapes29 made them part of the default swarm, so
#: that the README's recipe reaches the hang-up boundary and the deaf drain (it moved every swarm sequence).
_OPT_IN: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Scenario:
    """The clients of one run, and the fault plan.  ``window`` (bytes), if
    set, is the fake's flow-control window for this run (both directions of
    every connection); ``features`` names the swarm features that made a
    difference to the scenario (for reports: a feature switched on that left
    no trace in it is not named).  ``call_cost_ns``, if set, is the virtual
    time each of the server's Winsock calls takes (``FakeConfig.syscall_cost``,
    1 us by default) on a fake whose network keeps up meanwhile
    (``FakeConfig.keep_up``): a server slower than its clients, as one on a
    loaded machine is."""

    clients: tuple[ClientScript, ...]
    faults: FaultPlan = field(default_factory=FaultPlan)
    window: int | None = None
    features: tuple[str, ...] = ()
    call_cost_ns: int | None = None

    def __post_init__(self) -> None:  # noqa: C901 (one check per rule)
        for f in self.faults.clients:
            if not 0 <= f.client < len(self.clients):
                raise ValueError(f"fault for client {f.client}, but there are {len(self.clients)} clients")
            script = self.clients[f.client]
            if f.kind == "reset" and not -1 <= f.before_chunk <= len(script.chunks):
                raise ValueError(f"reset of client {f.client} before chunk {f.before_chunk}: out of range")
            if f.kind == "leave" and f.before_chunk not in script.leave_points():
                raise ValueError(f"client {f.client} can leave only before a chunk that starts a line")
            if f.delay_ns < 0:
                raise ValueError(f"fault of client {f.client}: delay_ns must be >= 0")
            if f.reset_after_ns is not None and (f.kind != "leave" or f.reset_after_ns < 0):
                raise ValueError(f"fault of client {f.client}: reset_after_ns must be >= 0, on a leave only")
        for i, script in enumerate(self.clients):
            fault = self.faults.fault_of(i)
            if script.stops_reading and (fault is None or fault.kind != "reset"):
                raise ValueError(f"client {i} stops reading for good, so it must end with a reset fault")
        if self.window is not None and self.window < 1:
            raise ValueError(f"Scenario.window must be at least 1 byte, not {self.window}")
        if self.call_cost_ns is not None and self.call_cost_ns < 0:
            raise ValueError(f"Scenario.call_cost_ns must be >= 0, not {self.call_cost_ns}")
        unknown = set(self.features) - set(_ALL_FEATURES)
        if unknown:
            raise ValueError(f"unknown features {sorted(unknown)}; known: {', '.join(_ALL_FEATURES)}")

    def size(self) -> dict[str, int]:
        """How big the scenario is: clients, lines, bytes, sends, faults, features."""
        return {
            "clients": len(self.clients),
            "lines": sum(len(c.lines) for c in self.clients),
            "bytes": sum(len(c.stream) for c in self.clients),
            "sends": sum(len(c.chunks) for c in self.clients),
            "faults": (len(self.faults.clients) + len(self.faults.injections) + (self.faults.backlog is not None)
                       + (self.faults.stop_at_ns is not None)),
            "features": len(self.features),
        }


def _strategy(value: T | st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    return value if isinstance(value, st.SearchStrategy) else st.just(value)


#: Lines of arbitrary bytes, never a newline; shrinks to b"".
_LINE: st.SearchStrategy[bytes] = st.binary(max_size=24).map(lambda b: b.replace(b"\n", b"."))

_TIMES = st.sampled_from([0, 20 * _US, 300 * _US, 3 * _MS])
_CHUNK_SIZES = st.lists(st.integers(1, 64), max_size=6)
_INJECTION_TIMES = st.sampled_from([0, 200 * _US, 2 * _MS])
_COUNTS = st.integers(1, 3)
_BACKLOGS = st.one_of(st.none(), st.integers(1, 3))
_STOPS = st.one_of(st.none(), st.sampled_from([300 * _US, 3 * _MS]))
_CALLS = ("AcceptEx", "WSARecv", "WSASend")


def _range(value: int | tuple[int, int], name: str = "value") -> tuple[int, int]:
    if isinstance(value, bool) or not (isinstance(value, int) or (
            isinstance(value, tuple) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value))):
        raise ValueError(f"{name}: expected a count or a range (lo, hi), not {value!r}")
    lo, hi = (value, value) if isinstance(value, int) else value
    if not 0 <= lo <= hi:
        raise ValueError(f"{name}: expected a count or a range (lo, hi) with 0 <= lo <= hi, not {value!r}")
    return lo, hi


def _paused_before(gaps_ns: tuple[int, ...], send: int) -> tuple[int, ...]:
    """``gaps_ns`` with the gap before send ``send``, if there is that send, at least _EXACT_PAUSE."""
    if not 0 <= send < len(gaps_ns):
        return gaps_ns
    return gaps_ns[:send] + (max(gaps_ns[send], _EXACT_PAUSE),) + gaps_ns[send + 1:]


def _ended(lines: Sequence[bytes]) -> bytes:
    """The lines, each ended by a newline, as one stream (one join: no line copied twice)."""
    return b"\n".join(lines) + b"\n" if lines else b""


def _line_before(script: ClientScript, fault: ClientFault, line: bytes) -> tuple[ClientScript, ClientFault]:
    """``script`` with ``line`` sent, in a send of its own, just before the chunk ``fault`` comes before (a line
    boundary), and ``fault`` moved behind it."""
    at = fault.before_chunk
    n = script.lines_before(at)
    script = replace(script, lines=script.lines[:n] + (line,) + script.lines[n:],
                     chunks=script.chunks[:at] + (line + b"\n",) + script.chunks[at:],
                     gaps_ns=script.gaps_ns[:at] + (0,) + script.gaps_ns[at:])
    return script, replace(fault, before_chunk=at + 1)


def _untailed(script: ClientScript) -> ClientScript:
    """``script`` without its tail (an unterminated last line: its own send, or the end of the last one, see
    _Swarm.script), so that its stream ends with a whole line, where a FIN may come."""
    chunks, gaps_ns = list(script.chunks), list(script.gaps_ns)
    if script.tail:
        if chunks[-1] == script.tail:
            chunks, gaps_ns = chunks[:-1], gaps_ns[:-1]
        else:
            chunks[-1] = chunks[-1][:-len(script.tail)]
    return replace(script, chunks=tuple(chunks), gaps_ns=tuple(gaps_ns), tail=b"")


def _deafened(script: ClientScript, index: int, line: int) -> tuple[ClientScript, ClientFault]:
    """deaf_drains' client made from ``script`` (what an ordinary client sends; its tail dropped): a line of
    ``line`` bytes (none if -1) after its lines, in a send of its own, its FIN right behind it, and no reading
    for _DEAF_FOR from the start."""
    script = replace(_untailed(script), pause_at_ns=0, pause_ns=_DEAF_FOR)
    fault = ClientFault(index, "leave", script.leave_points()[-1], 0)
    return _line_before(script, fault, _pattern(line, index)) if line >= 0 else (script, fault)


def _marked(script: ClientScript, index: int, burst_at: int) -> tuple[ClientScript, ClientFault]:
    """backpressure's member that ends over the mark (chat with back-pressure: see _MARK_FIN), made from
    ``script`` (what an ordinary client sends; its tail dropped): it reads nothing from its greeting on, sends
    its lines until then and half-closes _MARK_FIN after the backpressure reader's burst begins (``burst_at``
    after the clients begin to talk; at the last line boundary it has sent by then: sends after it do not
    come), and reads on _MARK_DEAF after its FIN."""
    script = _untailed(script)
    fin = burst_at + _MARK_FIN
    at = max(p for p in script.leave_points() if sum(script.gaps_ns[:p]) <= fin)  # (0 at least)
    script = replace(script, pause_at_ns=0, pause_ns=fin + _MARK_DEAF)
    return script, ClientFault(index, "leave", at, fin - sum(script.gaps_ns[:at]))


def _cut(stream: bytes, sizes: list[int]) -> list[bytes]:
    """``stream`` cut into sends of these sizes; the last send takes the rest."""
    chunks: list[bytes] = []
    pos = 0
    for size in sizes:
        if pos + size >= len(stream):
            break
        chunks.append(stream[pos:pos + size])
        pos += size
    if pos < len(stream):
        chunks.append(stream[pos:])
    return chunks


def _client_scripts(lines: tuple[int, int], line: st.SearchStrategy[bytes], arrivals: st.SearchStrategy[int],
                    gaps: st.SearchStrategy[int], linger: st.SearchStrategy[int]) -> st.SearchStrategy[ClientScript]:
    messages = st.lists(line, min_size=lines[0], max_size=lines[1])

    @st.composite
    def scripts(draw: st.DrawFn) -> ClientScript:
        msgs = tuple(draw(messages))
        chunks = _cut(_ended(msgs), draw(_CHUNK_SIZES))
        return ClientScript(msgs, tuple(chunks), tuple(draw(gaps) for _ in chunks), draw(arrivals), draw(linger))

    return scripts()


class _Faults:
    """The strategies fault plans are drawn from, built once."""

    def __init__(self, resets: bool, leaves: bool, inject: Sequence[str], errors: Sequence[int], backlog: bool,
                 early_stop: bool) -> None:
        self.kinds = st.sampled_from(["stay"] + (["reset"] if resets else []) + (["leave"] if leaves else []))
        self.injections = st.lists(st.builds(
            Injection, at_ns=_INJECTION_TIMES, call=st.sampled_from(list(inject)),
            error=st.sampled_from(list(errors)), count=_COUNTS), max_size=2) if inject else st.just([])
        self.backlog = _BACKLOGS if backlog else st.none()
        self.stop = _STOPS if early_stop else st.none()

    def client(self, draw: st.DrawFn, index: int, script: ClientScript) -> ClientFault | None:
        kind = draw(self.kinds)
        if kind == "reset":
            return ClientFault(index, "reset", draw(st.integers(0, len(script.chunks))), draw(_TIMES))
        if kind == "leave":
            bounds = script.line_boundaries()
            return ClientFault(index, "leave", bounds[draw(st.integers(0, len(bounds) - 1))], draw(_TIMES))
        return None

    def server(self, draw: st.DrawFn) -> tuple[tuple[Injection, ...], int | None, int | None]:
        return tuple(draw(self.injections)), draw(self.backlog), draw(self.stop)


def _check_fault_args(inject: Sequence[str], errors: Sequence[int]) -> None:
    if isinstance(inject, str) or not all(c in _CALLS for c in inject):
        raise ValueError(f"inject: expected calls among {_CALLS}, not {inject!r}")
    if isinstance(errors, int) or not errors or not all(isinstance(e, int) and e > 0 for e in errors):
        raise ValueError(f"errors: expected a non-empty sequence of Winsock error codes > 0, not {errors!r}")


def fault_plans(scripts: Sequence[ClientScript], *, resets: bool = True, leaves: bool = True,
                inject: Sequence[str] = ("AcceptEx",), errors: Sequence[int] = (WSAENOBUFS,),
                backlog: bool = True, early_stop: bool = True) -> st.SearchStrategy[FaultPlan]:
    """Fault plans for these clients.  Each client may reset (at any chunk
    boundary, or after sending everything) or leave early (gracefully, at a
    line boundary); up to two injections of ``errors`` into the calls named in
    ``inject`` (any of ``"AcceptEx"``, ``"WSARecv"``, ``"WSASend"``) at some
    moment; (``backlog``) perhaps a listen backlog of 1 to 3; (``early_stop``)
    perhaps a stop request in the middle of the session.  Shrinks towards no
    fault at all."""
    _check_fault_args(inject, errors)
    f = _Faults(resets, leaves, inject, errors, backlog, early_stop)

    @st.composite
    def plans(draw: st.DrawFn) -> FaultPlan:
        faults = [c for i, s in enumerate(scripts) if (c := f.client(draw, i, s)) is not None]
        return FaultPlan(tuple(faults), *f.server(draw))

    return plans()


# ---------------------------------------------------------------- swarm

#: Features that cost time (big sends) are switched on rarely: 1 in _RARE.
_RARE = 8
_MASKING = ("injections", "early_stop", "deaf_drains")  # (deaf_drains: a stop of its own)
_LONG_GAPS = (20 * _MS, 60 * _MS)
_SPREAD_ONLY = (15 * _MS, 50 * _MS)
_SPREAD = st.sampled_from([0, 300 * _US, 3 * _MS, *_SPREAD_ONLY])
_SWARM_INJECTION_TIMES = st.sampled_from([0, 50 * _US, 200 * _US, 1 * _MS, 2 * _MS, 10 * _MS, 40 * _MS])
#: When the server is asked to stop: early, or late in the session (100 ms, or _AFTER_SENDS: 1 ms after
#: the last send of any client: while readers that stopped or paused still hold its sends, replies are
#: under way, talkers talk, late arrivals come).  Where a reader stops reading for good, the others count
#: from its last send: the stop comes while it holds the server's sends (a server that waits for them to
#: finish never stops), in every such scenario, not only when a stop drawn early happened to be late enough.
_AFTER_SENDS = -1
_SWARM_STOPS = st.sampled_from([300 * _US, 3 * _MS, _AFTER_SENDS, 1 * _MS, 30 * _MS, 100 * _MS, _AFTER_SENDS])
#: ... and, with a slow reader (none stopped for good), how far through that reader's sends each early stop
#: comes, in eighths (8: at its last send, where it is owed the most): while its replies are backed up.
_SLOW_STOP_EIGHTHS = {300 * _US: 1, 1 * _MS: 2, 3 * _MS: 4, 30 * _MS: 6, 100 * _MS: 8}
#: FaultPlan.stop_at_send_end: how long after ``stop_at_ns`` the stop waits, at most, for one of the server's sends
#: to end, where a client is owed output queued behind it then (a slow reader reading 6 to 10 KiB every 2 ms lets a
#: send of 64 KiB end every 13 to 22 ms; a paused reader or a backpressure client reads again after up to 150 ms).
_STOP_SEND_END_WAIT_NS = 200 * _MS
#: Flow-control windows, the widest first: what a window drawn shrinks to (the least flow control).
_WINDOWS = (16384, 4096, 1000, 100, 16, 3, 1)
_WINDOW_DRAW = st.sampled_from(_WINDOWS)
_SEGMENTS = 400
_PAUSE_AT = st.sampled_from([0, 100 * _US, 2 * _MS])
# A feature that is on applies to a client 2 times in 3 (the none branch first: it shrinks to none).
_PAUSE = st.tuples(_PAUSE_AT, st.sampled_from([1 * _MS, 20 * _MS, 150 * _MS]))
_PAUSED = st.one_of(st.none(), _PAUSE, _PAUSE)
_STOPPED = st.one_of(st.none(), _PAUSE_AT, _PAUSE_AT)
_LEAVE_LATER = st.sampled_from([3 * _MS, 10 * _MS, 0])
#: How long a client that stopped reading stays before its reset: up to "for good" as far as a server
#: that is asked to stop is concerned.
_STOPPED_FOR = st.sampled_from([3 * _S, 3 * _S, 3 * _S, 20 * _MS, 0])
#: stopped_readers: the line such a reader sends (besides those drawn): its reply is more than a small
#: window (1 to 100 bytes) holds, so that the server's send to it pends (its size a _ladder draw).
_STOPPED_LINE = 300
#: ... and it sends such lines until it is owed more than the window holds, at most this many more.
_MAX_OWED_LINES = 64
_TINY = st.sampled_from([b"a", b"\x00", b"\r", b"\xff", b" "])
#: The big sends of a scenario add up to at most this ("hundreds of KiB"): one example stays well under a
#: second, and what a client that stopped reading is owed stays under a 1 MiB output limit (ovserver's).
_MAX_BIG = 320 * 1024
#: ... and a big send of exactly a limit comes at least this long after the client's previous send.
_EXACT_PAUSE = 3 * _MS
#: boundary_sends: one send of exactly one below, at or one above each of the server's limits that a send's size
#: meets (its receive buffer, its output limit; guessed receive buffers without them), up to this size: cheap
#: sends, so not rare as big_sends are (boundary values, as a generator of test inputs should draw them).
_MAX_BOUNDARY = 64 * 1024
_GUESSED_BUFFERS = (4096, 16 * 1024)
#: backpressure: the output a reader that does not read for a while lets back up in the server (aimed just
#: under the server's ``max_queued`` when that is known, never above this: time), the line sizes it comes
#: in (several lines to a send of the server's), and how long the reader does not read.
_MAX_BACKLOG = 320 * 1024
_BACKLOGS_UNKNOWN = (96 * 1024, 200 * 1024)
_BACKLOG_LINES = (3000, 15000, 40000)
_BACKLOG_PAUSES = (20 * _MS, 150 * _MS)
_BACKLOG_PAUSE = st.sampled_from(_BACKLOG_PAUSES)
#: ... with an idle time-out and back-pressure both, always the longer (see _Swarm.script).
_BACKLOG_PAUSE_IDLE = max(_BACKLOG_PAUSES)
#: backpressure, with ``max_queued`` known, one aim in as many (_EDGE): the edge of the output limit.  The reader
#: sends lines of the longest bulk line (the server's line limit, or less) in one burst and nothing more, owed
#: max_queued + the line the server's send in flight holds (whose first bytes the window holds, a window below
#: the line: see draw) + the line that crosses the limit, in all: its last line takes the server's queue past
#: max_queued, where a correct server cuts it off, and no line comes after it (a server that compares the queue
#: before the message with the limit keeps it, its queue over the limit, and only a next line would show it).
#: It does not read for _EDGE_PAUSE (the longer pause: a window below a line of 1000 bytes moves 18 KiB in
#: about 30 ms), then reads on: a cut-off must have come by then.  Not past _MAX_EDGE bytes (time).
_EDGE = -1
_EDGE_PAUSE = 150 * _MS
_MAX_EDGE = 2 * 1024 * 1024
#: backpressure: how long its client stays connected once served, 1 time in 2 (idle, reading what comes, as a
#: client whose pause was a moment's: a GC pause, a window minimised), so that it is still there well after a
#: slow-consumer time-out its pause began (a server must stop that clock once the client has read its way
#: back under the mark, and not cut it off later).  With an idle time-out and back-pressure both, always the longer
#: (see _Swarm.script).
_BURST_STAYS = (0, 300 * _MS)
_BURST_STAY = st.sampled_from(_BURST_STAYS)
#: backpressure in chat with back-pressure (``scenarios(chat=True, high_water=...)``): the reader's burst goes to
#: every other member, not back to it, so another member (departures' leaver unless it is hung up, accept_faults'
#: late client, else the next client without a role) backs up over the mark while it does not read (the burst,
#: routed to it, queued in the server), then ends its input while over it: it half-closes _MARK_FIN after the
#: burst begins (over the mark by then: a window of 1000 bytes and more moves 64 KiB in under 20 ms) and reads on
#: only _MARK_DEAF after its FIN, past a slow-consumer time-out counted from when it went over (100 ms in the
#: recipe: the FIN comes some 40 ms before it).  A client that ended its input gets no more lines and holds no
#: sender back: a server that keeps it over the mark, and cuts it off at that time-out where it is owed its
#: replies, is wrong (red13's end-keeps-over-mark; bpchat37: bench_search found it on 2 of 5 seeds without).
#: Not with a slow reader (over the mark too, it holds that member back, whose FIN is then not read), nor after
#: a burst at the edge of the output limit (it owes each member more than max_queued: a cut-off allowed).
_MARK_FIN = 40 * _MS
_MARK_DEAF = 300 * _MS
#: reset_after_fin: how long after its FIN a client that gives up on its replies (reads nothing more) resets:
#: once the server has taken the FIN (no receive posted any more) while its send to the client pends, or (0, 1 in
#: 4) right behind the FIN, as a closesocket with unread data right after shutdown.
_GIVE_UP_AFTER = st.sampled_from([20 * _MS, 3 * _MS, 100 * _MS, 0])
#: departures: how long the client that leaves does not read: longer than the others talk after it left.
_LEAVER_PAUSE = st.sampled_from([150 * _MS, 300 * _MS])
_BACKLOG_CHUNK = 16 * 1024
#: The sizes a targeted client's bulk (backpressure's and slow readers' lines, a stuck reader's line, a
#: crowd's ender's line) shrinks through (see :func:`_ladder`): none, then a line of 1 byte, ... .
_RUNGS = (0, 2, 16, 128, 1024, 16 * 1024)
#: ... and how many times the full size comes for each rung below it: 7 in 8 draws are the full size.
_FULL_ODDS = 7
#: slow_readers: a reader slower than its writer for its whole life.  It sends lines of _BACKLOG_LINES
#: in sends of _BACKLOG_CHUNK, one every _SLOW_SEND_GAP (8 MB/s), while it reads at one of _SLOW_RATES
#: (bytes per read, time between reads: 1/2, 3/8 and 5/8 of that: at 3/4, what it is owed grew too
#: slowly to matter), so that the server's output to it stays backed up, over several of its sends,
#: for as long as it talks: two and a half times the server's ``max_queued`` when that is known (what
#: it is owed then passes the limit only slowly, after many sends), at most _MAX_SLOW (time: such an
#: example takes a few tenths of a second).
_SLOW_SEND_GAP = 2 * _MS
_SLOW_RATES = st.sampled_from([(8 * 1024, 2 * _MS), (6 * 1024, 2 * _MS), (10 * 1024, 2 * _MS)])
_MAX_SLOW = 5 * 512 * 1024
_SLOW_UNKNOWN = 512 * 1024
#: departures (chat): the others' lines come this far apart, so that they keep talking after one left.
_TALK_GAPS = st.sampled_from([30 * _MS, 20 * _MS, 60 * _MS])
#: accept_faults: when the clients that reset in the listen backlog arrive, and how long after them
#: the client that must still be served comes.
_ACCEPT_ARRIVALS = st.sampled_from([1 * _MS, 100 * _US, 0])
_ACCEPT_LATE = 20 * _MS
#: ... and, 1 time in 2 where the server's client limit is given, this many more that reset in the backlog,
#: together (a connect-and-reset storm: port
#: scanners, load balancers' health checks): many accepts complete while the connections they took reset, so
#: that a reset's failed receive and another accept are handled together (measured, the iocp model taking
#: GetLastError for the Winsock error of a failed packet, seeded, 60 runs: 1 failure with 8 such clients, 13
#: with 20, 0 with 1 to 4, as many as the swarm drew before).
_RESET_STORMS = st.sampled_from([0, 20])
#: crowd: when the clients past the server's client limit arrive, together (the first ones at once;
#: one draw per scenario: one of them at once took a place the others would have found ended); the
#: first client then ends early (FIN after its line) without reading for a while, so that its replies
#: are still queued when they come.  (Each client draws it too: early_stop's stays say it.)
_CROWD_LATE = st.sampled_from([0, 5 * _MS, 1 * _MS])
#: ... and the wave also brings the server's last this many places (where it serves more than this many at
#: once): a nearly full server and a few clients arriving together, so that the accept that fills it and the
#: ones past its limit come in one burst (a server that counts its room without the clients it has accepted but
#: not yet taken in overfills there: measured on the events model's groups of 63, seeded, 66 clients, 40 seeds:
#: 2 failures with every client at once, 8 with the last two places in a wave 5 ms later).
_WAVE_PLACES = 2
_ENDER_PAUSE = 20 * _MS
#: crowd: how long each client stays once served (idle connections: the server stays full).
_CROWD_STAY = st.sampled_from([30 * _MS, 10 * _MS])
#: early_stop: how long a client stays connected once served (2 in 3 stay, as real clients do: a stop
#: finds them connected and idle, several at once, and must close them all), and the values of its
#: crowd-late draw that say so.
_STOP_STAY = 3 * _S
_STAYS_WHEN = (5 * _MS, 1 * _MS)
#: spread_arrivals: how long the first client, an ordinary one, stays connected once it has come (first) when
#: its crowd-late draw is one of _STAYS_WHEN: a keep-alive connection, opened ahead of use, that sends nothing
#: while the others come and go.  Longer than the second in which the checker wants an ended client's socket
#: closed, so that a server that misses the others' completions while a quiet connection is all it watches is
#: seen (measured: an events server that puts a new client into a group's wait array while the group's thread
#: waits on it, the recipe with spread_arrivals and resets, seeds 0-1, 100 examples each: 9 failures, none without).
_KEEP_ALIVE = 1500 * _MS
#: The line of crowd's first client that ends early: more than any window the scenario draws holds
#: (its size a _ladder draw).
_ENDER_LINE = 20000
#: crowd: at most this many clients.
_MAX_CROWD = 100
#: crowd: a small listen backlog comes with it only if the server serves at most this many at once.
_CROWD_BACKLOG_UPTO = 3
_ACCEPT_INJECTION_TIMES = st.sampled_from([0, 50 * _US])
#: busy_server: the virtual time each of the server's Winsock calls takes (Scenario.call_cost_ns: 1 us without
#: it), as on a loaded machine, while the network keeps up (FakeConfig.keep_up); one client floods it from its
#: arrival, for about _BUSY_FOR at 2 calls a receive (1.3 measured: over a second; each at most a window:
#: _BUSY_WINDOW where the traffic
#: allows, see _SEGMENTS), at most _MAX_FLOOD bytes.  The cost is cut so that the rest of the traffic takes
#: at most _BUSY_SPAN at 2 calls per window and 100 per client, and the stop at most 1 s / 40 per client.
_BUSY_COSTS = st.sampled_from([400 * _US, 1 * _MS])
_BUSY_FOR = 3 * _S
_BUSY_WINDOW = 100
#: ... for a scenario whose other traffic is at most this many such windows (2000 segments: a few tenths of a
#: second; a wider window would need megabytes of flood to keep the server busy for a second).
_BUSY_SEGMENTS = 2000
_MAX_FLOOD = 512 * 1024
_BUSY_SPAN = 6 * _S
#: ... and an early stop comes no sooner than this many calls and this long after the first flooder arrives
#: (the server starts, slowly, while the clients that arrived first are refused and retry after 2, 4, ... ms).
_BUSY_START = 50
_BUSY_CONNECTED = 100 * _MS
#: ... by these clients at most (those without another role), in lines of these sizes (a reply every receive).
_FLOODERS = 4
_FLOOD_LINES = st.sampled_from([60, 15])
#: ... and how much of the flood each flooder sends: at most a rung of _RUNGS (0: no flood and no slow calls, so
#: that the shrinker can all but switch busy_server off while the draws after it stay; 2: one line of 1 byte; 16:
#: one of 15; ...), or the full flood (None) _FULL_ODDS times in 8, as a draw that shrinks down the rungs (see
#: :func:`_ladder`): a failure on a line of the flood, whose full length is computed from the cost and the window,
#: not drawn, shrinks to a short flood of short lines (measured: with reset_after_fin's draws, the README
#: example's bug, seed 0, ended at a full flood's 6148 lines, 375000 bytes).
_FLOOD_SIZES: st.SearchStrategy[int | None] = st.sampled_from(_RUNGS + (None,) * (_FULL_ODDS * len(_RUNGS)))
#: ... and a busy server is asked to stop while they flood (the stop early_stop draws) 2 times in 3 without
#: early_stop too: a stop while it is busy is what it is for (a server that sees its stop request only between
#: bursts of work), and early_stop, 1 in 3, came with 1 busy example in 3 only.
_BUSY_STOPS = st.integers(0, 2)


_BOOL = st.booleans()


@functools.lru_cache(maxsize=512)
def _ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    """Strategies made once (a new strategy per draw costs Hypothesis a validation each time)."""
    return st.integers(lo, hi)


def _one_of(values: Sequence[T]) -> st.SearchStrategy[T]:
    return _sampled(tuple(values))


@functools.lru_cache(maxsize=512)
def _sampled(values: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    return st.sampled_from(values)


@functools.lru_cache(maxsize=64)
def _ladder(full: int) -> st.SearchStrategy[int]:
    """A bulk size: ``full`` 7 times in 8, else a rung of :data:`_RUNGS`
    below it (0, 2, 16, ... bytes), as a draw that shrinks down the rungs to
    0: a failure that needs none of a client's bulk, or only a line of it,
    loses the rest (a fixed size could not shrink: the shrunk example kept
    megabytes that the failure did not need)."""
    rungs = tuple(r for r in _RUNGS if r < full)
    return _one_of(rungs + (full,) * (_FULL_ODDS * len(rungs)))


@functools.lru_cache(maxsize=256)
def _pattern(size: int, salt: int) -> bytes:
    """``size`` bytes without a newline that show where they are: every 16
    bytes start with their offset, so two such lines that differ show where."""
    if size <= 0:
        return b""
    unit = 16
    out = b"".join(b"%c%07x........" % (65 + (salt + i) % 26, i * unit) for i in range(size // unit + 1))
    return out[:size]


@functools.lru_cache(maxsize=16)
def _bulk(size: int, line_len: int, salt: int) -> tuple[bytes, ...]:
    """Lines (without newlines) whose stream is exactly ``size`` bytes.  Cached:
    the sizes come from a few ladders and the salt is a client's index, so
    examples ask for the same bulks again and again (up to megabytes of short
    lines, which took 4% of the README recipe's CPU time to build each time);
    at most 2.5 MiB each."""
    lines: list[bytes] = []
    left = size
    while left > 0:
        n = min(line_len, left - 1)
        head = b"%d:" % len(lines)
        line = head + _pattern(max(0, n - len(head)), salt)
        if len(line) + 1 > left:
            line = line[:left - 1]
        lines.append(line)
        left -= len(line) + 1
    return tuple(lines)


#: Decoys for Hypothesis's mutator (see :func:`_decoys`): this many labels, each drawn twice per scenario.
#: idle_clients (only with ``scenarios(idle_timeout_ms=...)``): a client goes idle across the server's idle
#: time-out T, just under it (T less _IDLE_UNDER_NS: two of GetTickCount64's 15.6 ms steps and 10 ms, which a
#: correct server's clock cannot round up to T), at it, or just over it (T and _IDLE_OVER_NS: past the
#: checker's allowance for a late close, two steps and 50 ms, by 20 ms).  Either between its lines (each sent
#: whole in one send, a receive ending with its newline, or, one time in two, its bytes then its newline alone
#: _IDLE_SPLIT_NS later, a receive beginning with it), lingering once served, or dribbling (a slowloris: a first
#: line of _IDLE_DRIBBLE sent a byte at a time, each half that idle time after the one before, longer in all
#: than the time-out and the checker's allowance: the server must close it meanwhile; one time in two, with the
#: split's draw, a last line dribbled so after its lines, whose newlines the server received before the dribble:
#: one left in its receive buffer is no activity).
_IDLE_UNDER_NS = 2 * 15_625_000 + 10 * _MS
_IDLE_OVER_NS = 2 * 15_625_000 + 70 * _MS
_IDLE_SPLIT_NS = 1 * _MS
_IDLE_DRIBBLE = b"slowlory"
#: long_lines' newline split (with a known line limit, for a client whose stream is cut into sends or small sends;
#: no draw of its own, so that no example's draws move): the first newline that ends a line within max_line, after
#: another newline in the same send, followed by a whole line no shorter that, run into it, would be over max_line,
#: begins a send of its own, _NEWLINE_SPLIT_NS after the line's bytes: a receive ends just before a newline, with a
#: line framed before it, and the next begins with that newline and holds a long line (a server that counts one
#: byte too many as known to hold no newline then skips it, and runs the two lines into one too long).
_NEWLINE_SPLIT_NS = 1 * _MS
#: ... the lines of an idler between lines that has fewer than two
_IDLE_FILL = (b"still here", b"still here, again")


#: hangup_edges (with a known line limit up to _MAX_BOUNDARY): the first ordinary client ends with a line
#: over the limit in two sends, the first ending exactly at byte max_line + 1 of the line (the receive that finds
#: it too long ends there), the second, _HANGUP_GAPS later (its receives do not run into the first's), carrying
#: max_line more bytes (its newline the last) or (_HANGUP_MORE) one fewer or one more: the boundary of a hung-up
#: client's allowance, which the server counts from that receive's end.  It reads nothing until _HANGUP_READ_LATE
#: after its last send, so that a reset of the server's loses the error line still on its way.
_HANGUP_GAPS = st.sampled_from([50 * _MS, 20 * _MS])
_HANGUP_MORE = st.sampled_from([0, 0, -1, 1])
_HANGUP_READ_LATE = 100 * _MS
#: deaf_drains (with leaves and stops allowed): the first ordinary client sends its lines and a line of
#: _STOPPED_LINE bytes (more such lines until it is owed more than the window holds), half-closes right behind its
#: last send and reads nothing for _DEAF_FOR, longer than the checker's second for a stop; the server is asked to
#: stop _DEAF_STOPS after its FIN: a stop while a half-closed client drains nothing and is owed output.
_DEAF_FOR = 3 * _S
_DEAF_STOPS = st.sampled_from([20 * _MS, 3 * _MS, 100 * _MS])
#: The roles of these two shapes' clients (no unterminated tail: their ending is the shape's).
_SHAPED = ("hangup_edge", "deaf_leaver")
_SHAPES = ("hangup_edges", "deaf_drains")


_DECOY_COUNT = 200
_DECOYS = tuple(st.just(i) for i in range(_DECOY_COUNT))


def _decoys(draw: st.DrawFn) -> None:
    """Draw every decoy once: strategies of no choice, each with a label of its
    own.  A scenario draws them at its start and at its end, so that each label
    spans two empty stretches of the choice sequence.

    Why: Hypothesis's generate phase follows each new example with up to five
    more that it makes by mutating it: it picks a label at random among those
    drawn at least twice in the example, and copies one stretch drawn under it
    onto another.  Those examples keep the first one's traffic features (which
    a copy rarely touches), so measured in the recipe three examples in four
    were such copies, and 200 examples tried about 45 feature sets
    (``benchmarks/bench_search.py --activation``).  A copy of one empty stretch
    onto another changes nothing: Hypothesis sees the same example, runs
    nothing and counts a failed mutation; after six in a row it generates a
    new example.  With 200 decoy labels against the twenty or so of a run's
    own draws, most mutations are such no-ops, and most of the budget goes to
    new examples, with new feature sets.  The decoys draw no choice: they
    change no example's values, nor what shrinks to what."""
    for decoy in _DECOYS:
        draw(decoy)


class _Swarm:
    """Draws one swarm scenario: the features first, then clients within them."""

    def __init__(self, clients: tuple[int, int], lines: tuple[int, int], line: st.SearchStrategy[bytes] | None,
                 arrivals: st.SearchStrategy[int], gaps: st.SearchStrategy[int], linger: st.SearchStrategy[int],
                 allowed: tuple[str, ...], inject: Sequence[str], errors: Sequence[int], max_line: int | None,
                 recv_size: int | None, max_clients: int | None, max_queued: int | None = None,
                 stops: bool = True, idle_timeout_ms: int | None = None, high_water: int | None = None,
                 chat: bool = False) -> None:
        self.clients, self.lines, self.line = clients, lines, line
        self.high_water = high_water
        #: Chat with back-pressure: backpressure's reader comes with a member that ends over the mark (see
        #: _MARK_FIN); only then (every other strategy's draws stay as they were).
        self.mark_ends = chat and high_water is not None
        #: ... when the backpressure reader's burst begins, after the clients begin to talk (None: no burst), in
        #: the scenario being drawn
        self.burst_at: int | None = None
        #: ... and which client is that member (-1: none), and what it drew (its script as an ordinary client of its
        #: role, the labels of its draws after its sends: see _mark)
        self.marker = -1
        self.marked_from: tuple[ClientScript, set[str]] | None = None
        self.idle_timeout_ms = idle_timeout_ms
        #: False when the caller ruled stops out (``faults=False`` or ``early_stop=False``): busy_server's
        #: stop too, which ``features=("busy_server",)`` alone still draws.
        self.stops = stops
        self.arrivals, self.gaps, self.linger = arrivals, gaps, linger
        self.long_gaps = st.one_of(gaps, st.sampled_from(_LONG_GAPS))
        self.spread = st.one_of(arrivals, _SPREAD)
        self.injections = st.lists(st.builds(
            Injection, at_ns=_SWARM_INJECTION_TIMES, call=st.sampled_from(inject or _CALLS),
            error=st.sampled_from(errors), count=_COUNTS), min_size=1, max_size=3)
        self.allowed = allowed
        self.used: set[str] = set()  # the features that made a difference to the scenario being drawn
        self.inject, self.errors = tuple(inject), tuple(errors)
        self.max_line, self.max_clients = max_line, max_clients
        if max_line is not None:
            self.long = sorted({max(1, max_line - 1), max_line, max_line + 1, min(2 * max_line + 1, _MAX_BIG)})
        else:
            # Not over 64 KiB: a server with that limit (ovserver's) must accept every one of these.
            self.long = [1000, 4095, 4096, 4097, 16385, 65535, 65536]
        sizes = [recv_size] if recv_size is not None else [4096, 16 * 1024]
        # ... and at the output limit, when one send can hold it: a send of exactly max_queued bytes of lines
        # is all a server may queue for a client at once (a limit checked with >= instead of > cuts it off).
        limits = sizes + ([max_queued] if max_queued is not None and max_queued <= _MAX_BIG else [])
        big = {s + d for s in limits for d in (-1, 0, 1)} | {3 * sizes[-1] + 7}
        self.big = sorted(b for b in big if 0 < b <= _MAX_BIG) + [_MAX_BIG]
        #: The exact limits (the receive buffer, the output limit): drawn as often as every other size
        #: together (a boundary is where a limit's bugs are), and in a window that holds them (see draw), so
        #: that one receive may take such a send whole.
        #: (Only limits the caller gave: not the receive buffers guessed without recv_size.)
        self.exact = frozenset(limits if recv_size is not None else limits[2:]) & set(self.big)
        self.big_left = _MAX_BIG
        self.exact_big = 0  # the largest send of an exact limit (or of a boundary) in the scenario being drawn
        # boundary_sends: one below, at and one above each limit a send's size meets (see _MAX_BOUNDARY)
        edges = [x for x in (recv_size, max_queued) if x is not None] or list(_GUESSED_BUFFERS)
        # (the limit itself twice: the boundary that a comparison with >= for > gets wrong; each size once)
        bounds = sorted({e + d for e in edges for d in (-1, 0, 1) if 0 < e + d <= _MAX_BOUNDARY})
        bounds += sorted({e for e in edges if e <= _MAX_BOUNDARY})
        #: (a client with the feature on sends one 2 times in 3; drawn whatever the switch: see script)
        edge_sizes = st.tuples(_one_of(bounds), _one_of(tuple(min(n, max_line or n) for n in (1000, 99, 15))))
        self.boundary = st.one_of(st.none(), edge_sizes, edge_sizes) if bounds else st.none()
        # (the line sizes shrink to the fewest lines)
        others = len(self.big) - len(self.exact)
        exact = sorted(self.exact) * max(1, others // max(1, len(self.exact)))
        bulk = st.tuples(_one_of(self.big + exact), _one_of((1000, 99, 15)))
        self.bulk = st.one_of(st.none(), bulk, bulk)
        if max_queued is None:
            self.backlogs = list(_BACKLOGS_UNKNOWN)
        else:  # just under the limit, and half-way (more than one send of 64 KiB either way, if the limit allows)
            aims = {min(a, _MAX_BACKLOG) for a in (max_queued - 8 * 1024, max_queued // 2 + 32 * 1024)}
            self.backlogs = sorted(a for a in aims if a >= 80 * 1024) or [_BACKLOGS_UNKNOWN[0]]
        self.slow = min(_MAX_SLOW, 5 * max_queued // 2) if max_queued is not None else _SLOW_UNKNOWN
        self.slow_sizes = _ladder(self.slow)
        # The lines of backpressure and slow readers: within the server's line limit (lines over it
        # only get the client cut off, which long_lines covers).
        self.bulk_lines = tuple(dict.fromkeys(min(n, max_line) if max_line is not None else n
                                              for n in _BACKLOG_LINES))
        #: backpressure's edge of the output limit (see _EDGE): its lines, and its bytes in all (a window below
        #: its line: the line in the server's send in flight, max_queued's whole lines, and the line that
        #: crosses it), where max_queued is known and that is at most _MAX_EDGE
        self.edge_line = max(self.bulk_lines)
        self.max_queued, self.recv_size = max_queued, recv_size
        self.edge_size = self._edge_lines(max_queued, 0) * (self.edge_line + 1) if max_queued is not None else 0
        if 0 < self.edge_size <= _MAX_EDGE:
            self.backlogs.append(_EDGE)
        self.edges: set[int] = set()  # the clients of the scenario being drawn that backpressure aims at the edge
        self.ender_line = min(_ENDER_LINE, max_line) if max_line is not None else _ENDER_LINE
        self.stopped_line = min(_STOPPED_LINE, max_line) if max_line is not None else _STOPPED_LINE
        self.roles: list[str] = []  # what each client of the scenario being drawn does for its feature
        self.plan = ""  # the plan that gives every client a role (see draw), if any
        self.stuck_lines: dict[int, int] = {}  # the line each reader that stops for good keeps sending (-1: none)
        self.give_up_lines: dict[int, int] = {}  # reset_after_fin: the line before the FIN of a client that gives up
        self.accept_at = 0
        self.wave = 0  # crowd: when the clients past the server's limit arrive (together)
        self.storm = 0  # accept_faults: how many more reset in the backlog (a storm of them)
        self.hangup: tuple[int, int] | None = None  # hangup_edges: (bytes past max_line after the edge, gap)
        self.deaf_line = -1  # deaf_drains: the size of its line whose reply the window holds back (-1: none)

    def features(self, draw: st.DrawFn) -> frozenset[str]:
        """The features switched on (each a draw that shrinks to off)."""
        on = []
        for name in self.allowed:
            top = self.odds(name) - 1
            if draw(_ints(0, top)) == top:
                on.append(name)
        return frozenset(on)

    def _marks(self, f: frozenset[str]) -> bool:
        """Whether backpressure's reader comes with a member that ends over the mark (see _MARK_FIN): in chat
        with back-pressure, and not with a slow reader (over the mark too, it would hold that member back: a
        server does not read a sender it holds back, so its FIN would wait) nor a busy server (no backpressure)."""
        return self.mark_ends and "backpressure" in f and not {"slow_readers", "busy_server"} & f

    def odds(self, name: str) -> int:
        """A feature is switched on 1 time in this many (its draw is 0 to this - 1, on at the top)."""
        if name == "big_sends":
            return _RARE  # costly: rare
        if name == "crowd" and self.max_clients is not None:
            # tens of clients: costly, 1 in 3 where a crowd fills the server (a full server: what a
            # client limit is for), 1 in 4 where the server serves more than a crowd brings
            return 3 if self.max_clients + 3 <= _MAX_CROWD else 4
        if name == "slow_readers":
            return 3  # a few tenths of a second (megabytes, in many sends), but no other feature reaches it
        if name == "backpressure":
            return 2  # hundreds of KiB, but cheap ones (few lines, large sends)
        if name in _MASKING:
            return 3  # they end sessions early or excuse a dropped client: hiding other bugs, so 1 in 3
        if name == "busy_server":
            # thousands of slow calls; and it takes every client for its flood (no crowd, no other plan, no
            # boundary sends): 1 in 4 (1 in 3 cost a third of the examples of the features it excludes)
            return 4
        return 2

    @functools.lru_cache(maxsize=64)  # noqa: B019 (a handful of feature sets per strategy)
    def _lines_of(self, kinds: tuple[str, ...]) -> tuple[st.SearchStrategy[list[tuple[str, bytes]]],
                                                          st.SearchStrategy[tuple[str, bytes]] | None]:
        """The lines of one client, and its unterminated tail (b"": none; None:
        unterminated tails are not allowed), with these kinds of lines; each
        with the feature that made it ("" for none)."""
        normal = self.line if self.line is not None else _LINE
        options: list[st.SearchStrategy[tuple[str, bytes]]] = [normal.map(lambda b: ("", b))]
        for kind in kinds:
            if kind == "empty_lines":
                options.append(st.just((kind, b"")))
            elif kind == "tiny_lines":
                options.append(_TINY.map(lambda b: ("tiny_lines", b)))
            elif kind == "long_lines":
                options.append(_one_of(self.long).map(lambda n: ("long_lines", _pattern(n, 0))))
        one = st.one_of(*options) if len(options) > 1 else options[0]
        if "unterminated" not in self.allowed:
            return st.lists(one, min_size=self.lines[0], max_size=self.lines[1]), None
        tails = [st.just(("", b"")), one.map(lambda t: (t[0], t[1] or b"t"))]  # 1 in 2: tails end streams
        if "long_lines" in kinds and self.max_line is not None and self.max_line < _MAX_BIG:
            # ... and, with long lines, 1 in 3 a line over the limit that never ends (a client that sends
            # too much, then closes; with long lines alone too, if unterminated tails are allowed at all):
            # the server must notice it all the same, not drop it as a partial line.
            over = sorted(n for n in {self.max_line + 1, min(2 * self.max_line + 1, _MAX_BIG)} if n > self.max_line)
            tails.append(_one_of(over).map(lambda n: ("long_lines", _pattern(n, 1))))
        return st.lists(one, min_size=self.lines[0], max_size=self.lines[1]), st.one_of(*tails)

    def script(self, draw: st.DrawFn, f: frozenset[str], index: int) -> tuple[ClientScript, ClientFault | None]:
        role = self.roles[index] if index < len(self.roles) else ""
        # deaf_drains' client makes an ordinary client's draws, all of them (those of what it does not do too), and
        # is made deaf from that client at the end (see _deafened): switching deaf_drains off then keeps every draw,
        # so that the shrinker can drop it (made with draws of its own, a shrunk failure kept it, and with it the
        # other clients' FIN features: ('long_lines', 'half_close', 'fin_after_burst', 'reset_after_fin',
        # 'deaf_drains'), 4 faults)
        deaf = role == "deaf_leaver"
        if deaf or role == "mark_ender":  # (backpressure's member that ends over the mark, likewise: see over)
            role = ""
        kinds: tuple[str, ...] = ()
        used = self.used
        if self.line is None:  # the line strategy is ours: sizes may vary it
            kinds = tuple(k for k in ("empty_lines", "tiny_lines", "long_lines") if k in f)
        lines, tails = self._lines_of(kinds)
        drawn = draw(lines)
        used.update(k for k, _ in drawn if k)
        msgs = [m for _, m in drawn]
        if role == "talker":  # it talks on after the leaver left: a line a send, at least three (one
            msgs += [b"t"] * (3 - len(msgs))  # before the leave, and on after it)
        # departures: the member that leaves ends, 1 time in 2 when the line limit is known, by a line over
        # it (hung up: error line, then the server's FIN) rather than by its FIN; the others talk on.
        hung = role == "leaver" and self.max_line is not None and bool(draw(_ints(0, 1)))
        if hung:
            assert self.max_line is not None
            msgs.append(_pattern(self.max_line + 1, index))
        # backpressure's member that ends over the mark (see _marked; chat with back-pressure), unless hung up: made,
        # as deaf_drains' client, from what it draws (its role's: an ordinary client, departures' leaver or
        # accept_faults' late client), all of it, once the reader's burst is known (see _mark)
        over = index == self.marker and not hung
        if role == "ender":  # a line whose reply the window holds back
            size = draw(_ladder(self.ender_line + 1))
            if size:
                msgs.append(_pattern(size - 1, index))
        stop_at: int | None = None  # when a reader that stops for good stops
        # A crowd's first max_clients clients fill the server and stay (a full server stays full): none
        # of them stops reading for good (its reset would free its slot) nor takes a random fault.
        filler = "crowd" in f and self.max_clients is not None and index < self.max_clients
        # (nor does one of a storm of resets in the backlog: 20 readers that stop for 3 s each, at a server that
        # serves one at a time, kept the last client out for a minute)
        stormy = role == "accept_reset" and self.storm > 0
        if ("stopped_readers" in f and role not in ("backpressure", "leaver", "ender", "slow_reader", "flooder",
                                                     "hangup_edge", "deaf_leaver")
                and not filler and not stormy):
            stop_at = draw(_STOPPED)
            if stop_at is not None:  # it keeps sending: a line whose reply more than fills a small window
                size = draw(_ladder(self.stopped_line + 1))
                if not deaf:  # (deaf: the line only)
                    self.stuck_lines[index] = size - 1
                if size:
                    msgs.append(_pattern(size - 1, index))
        stream = _ended(msgs)
        # How the stream is cut into sends.
        modes = ["cuts"] + (["bytes"] if "small_sends" in f else []) + (["one"] if "fin_after_burst" in f else [])
        mode = "lines" if role == "talker" else draw(_one_of(modes)) if len(modes) > 1 else "cuts"
        chunks: list[bytes] = []
        split_at = -1  # long_lines' newline split: the send that begins with a line's newline (see _NEWLINE_SPLIT_NS)
        if mode in ("bytes", "one") and stream:
            used.add("small_sends" if mode == "bytes" else "fin_after_burst")
        if mode == "bytes":  # many small sends in quick succession
            size = draw(_ints(1, 3))
            cut = min(len(stream), 120 * size)
            chunks = [stream[i:i + size] for i in range(0, cut, size)] + ([stream[cut:]] if cut < len(stream) else [])
        elif mode == "one" or not stream:
            chunks = [stream] if stream else []
        elif mode == "lines":
            chunks = [m + b"\n" for m in msgs]
        else:
            chunks = _cut(stream, draw(_CHUNK_SIZES))
        # long_lines: the newline of a line before a longer one comes in a send of its own, with that line (no draw
        # of its own: a new draw moves every example's draws)
        if "long_lines" in f and mode in ("cuts", "bytes"):
            split_at = self._newline_split(chunks)
            if split_at >= 0:
                used.add("long_lines")
        exact_at = -1  # the send of exactly a limit (big_sends), if any
        # (drawn whatever the switch: switching big_sends off then keeps the draws after it, so the shrinker can
        # drop it; drawn only when on, a shrunk failure kept it)
        big = draw(self.bulk)
        if "big_sends" in f and self.big_left > 0:  # one send of many lines, around the receive buffer's size
            if big is not None:
                used.add("big_sends")
                size = min(big[0], self.big_left)
                self.big_left -= size
                if size in self.exact:
                    self.exact_big = max(self.exact_big, size)
                    exact_at = len(chunks)
                bulk = _bulk(size, big[1], index)
                msgs += bulk
                chunks.append(_ended(bulk))
        # boundary_sends: (drawn whatever the switch, so that switching it off keeps the draws after it) one send
        # of a size at a limit's boundary, for an ordinary client that reads: alone, a pause after the sends
        # before it, and its last (but for a tail): a server that takes it in one receive then holds exactly
        # that much for the client, with nothing else owed to it (the boundary itself, which a limit checked
        # with >= for > gets wrong), as big_sends' exact sends, but often.
        edge = draw(self.boundary)
        boundary_first = False
        # (a client whose role leaves it an ordinary one too: a chat member that talks, the client that must be
        # served after accept_faults' resets; plans give every client a role, and left few ordinary ones)
        if (edge is not None and "boundary_sends" in f and role in ("", "talker", "accept_late") and stop_at is None
                and not filler and exact_at < 0):
            used.add("boundary_sends")
            self.exact_big = max(self.exact_big, edge[0])
            boundary_first = True
            bulk = _bulk(edge[0], edge[1], index)
            msgs[:0] = bulk
            chunks.insert(0, _ended(bulk))
            split_at += split_at >= 0
        first_bulk = len(chunks)
        backed_up = False
        if role == "backpressure":  # replies backed up behind a reader that does not read for a while
            aim = draw(_one_of(self.backlogs))
            at_edge = aim == _EDGE
            size = draw(_ladder(self.edge_size if at_edge else aim))
            line_len = draw(_one_of(self.bulk_lines))
            backed_up = size > 0  # (none, where it shrinks to: an ordinary client)
            if backed_up:
                used.add("backpressure")
            if at_edge and size == self.edge_size:  # the edge of the output limit: its lines alone (no line before
                # them, no big send, no tail: they would put an unknown amount in the server's send in flight)
                self.edges.add(index)
                line_len, exact_at, first_bulk, split_at = self.edge_line, -1, 0, -1
                msgs, chunks = [], []
            bulk = _bulk(size, line_len, index)
            msgs += bulk
            stream_ = _ended(bulk)
            chunks += [stream_[i:i + _BACKLOG_CHUNK] for i in range(0, len(stream_), _BACKLOG_CHUNK)]
        read_bytes: int | None = None
        read_every = 0
        if role == "slow_reader":  # a reader slower than its writer, for as long as it talks
            size, line_len, rate = draw(self.slow_sizes), draw(_one_of(self.bulk_lines)), draw(_SLOW_RATES)
            bulk = _bulk(size, line_len, index)
            msgs += bulk
            stream_ = _ended(bulk)
            chunks += [stream_[i:i + _BACKLOG_CHUNK] for i in range(0, len(stream_), _BACKLOG_CHUNK)]
            if size:  # (none, where it shrinks to: an ordinary client)
                used.add("slow_readers")
                read_bytes, read_every = rate
        tail = b""
        # (drawn whether unterminated is on or not: switching it off keeps the draws after, so the shrinker can
        # drop it; without a known line limit it was drawn only when on, and a shrunk failure kept it)
        if tails is not None:
            kind, tail = draw(tails)
            # None without unterminated but one over the limit (long_lines' own ending), and none for a crowd's
            # filler: a tail is an ending (its FIN comes right behind it; one over the limit is hung up), and a
            # crowd's fillers stay, so that the server stays full (with tails it never filled)
            if (filler or role in _SHAPED or index in self.edges
                    or ("unterminated" not in f and not self._over_limit(tail))):
                tail = b""
            if tail:
                used.update(k for k in ("unterminated" if "unterminated" in f else "", kind) if k)
                if self._over_limit(tail) and chunks and stop_at is None and not (boundary_first and len(chunks) == 1):
                    chunks[-1] += tail  # too much, in its last write: one receive may hold a newline and it
                else:
                    chunks.append(tail)
        hangup_at = self._hangup_line(role, index, msgs, chunks)
        quick = mode == "bytes"
        gap_choices = self.long_gaps if "talk_after_leave" in f or "spread_arrivals" in f else self.gaps
        if role == "talker":  # a chat member that talks before another one leaves, and on after
            gap_choices = _TALK_GAPS
            used.add("departures")
        gaps_ns = tuple(_NEWLINE_SPLIT_NS if i == split_at  # (not drawn: the draws after stay where they were)
                        else 0 if (quick and i) or (role == "backpressure" and i >= first_bulk)
                        else _SLOW_SEND_GAP if role == "slow_reader" and i >= first_bulk
                        else draw(self.gaps if role == "talker" and not i else gap_choices)
                        for i in range(len(chunks)))
        # A send of a limit's size comes alone: big_sends' exact send a pause after the sends before it (a server
        # that takes it in one receive then holds exactly the limit, with the replies before it sent: the boundary
        # itself), a boundary send, which comes first, a pause before the next.
        gaps_ns = _paused_before(gaps_ns, exact_at if exact_at >= 0 else 1 if boundary_first else -1)
        if hangup_at >= 0 and self.hangup is not None:  # hangup_edges: the bytes after the one that makes the
            gaps_ns = gaps_ns[:hangup_at] + (self.hangup[1],)  # line too long, a while later
        sent_gaps = gaps_ns[:-1] if deaf and tail and chunks[-1] == tail else gaps_ns  # (deaf: no tail, see _deafened)
        if role != "talker" and any(g in _LONG_GAPS for g in sent_gaps):
            used.add("talk_after_leave" if "talk_after_leave" in f else "spread_arrivals")
        if role == "backpressure" and backed_up and index not in self.edges:  # (for the member that ends over the
            # mark after it: _marked; not after a burst at the edge of the output limit, whose lines owe each other
            # member more than max_queued: a cut-off the model allows)
            self.burst_at = sum(gaps_ns[:first_bulk])
        labels = used
        if deaf or over:  # (the rest of an ordinary client's draws; their labels are not its own)
            self.used = used = set()
        late, stay = draw(_CROWD_LATE), draw(_CROWD_STAY)  # (drawn whether crowd is on or not)
        if "crowd" not in f or role in ("accept_reset", "accept_late"):
            stay = 0
        # early_stop: a client stays when ``late`` is 5 or 1 ms (2 in 3; it shrinks to 0, leaving).  No draw of
        # its own: a new draw moves every example's draws, and with them what shrinks to what.
        if "early_stop" in f and late in _STAYS_WHEN and role not in ("accept_reset", "accept_late"):
            stay = max(stay, _STOP_STAY)
        keep_alive = ("spread_arrivals" in f and "crowd" not in f and index == 0 and role == "" and stop_at is None
                      and late in _STAYS_WHEN)
        if keep_alive:  # the first client: it comes first and stays, connected and quiet, while the others
            stay = max(stay, _KEEP_ALIVE)  # come and go (no draw of its own, as early_stop's stay)
            used.add("spread_arrivals")
        if role == "backpressure" and backed_up:  # it stays once served, 1 time in 2, after its pause
            stay = max(stay, draw(_BURST_STAY))
            if self.idle_timeout_ms is not None and self.high_water is not None:
                # With an idle time-out and back-pressure both, always the longer stay (the draw kept, its value
                # not used: the draws of every example stay as they were): once read on after its pause (150 ms
                # there, held back across the idle time-out), it stays idle past the time-out and the checker's
                # allowance, which the server must then close it for (its idle clock started again when it read
                # it on), where without the stay it leaves at once (bpidle37: red11's resume-keeps-idle-clock, a
                # read-on without the clock, keeps it until the next deadline of another kind).
                stay = max(stay, max(_BURST_STAYS))
        if role in ("accept_reset", "accept_late"):  # resets in the listen backlog, then one more client
            arrive = self.accept_at + (_ACCEPT_LATE if role == "accept_late" else 0)
        elif "crowd" in f:  # at once; those past the server's limit perhaps later, as some of the first end;
            # connected clients stay a while (a full server stays full)
            # (the arrival drawn all the same, unused: switching crowd off then keeps the draws after it, so the
            # shrinker can drop crowd; without this draw a shrunk failure kept it)
            draw(self.spread if "spread_arrivals" in f else self.arrivals)
            arrive = self.wave if self.max_clients is not None and index >= self._wave_from() else 0
        elif "spread_arrivals" in f:
            arrive = draw(self.spread)
            if keep_alive:
                arrive = 0
            if arrive in _SPREAD_ONLY:
                used.add("spread_arrivals")
        else:
            arrive = draw(self.arrivals)
        pause_at: int | None = None
        pause: int | None = None
        stops = False
        if role == "backpressure":  # it does not read from the start, for a while
            pause_at, pause = 0, draw(_BACKLOG_PAUSE)
            if self.idle_timeout_ms is not None and self.high_water is not None:
                # With an idle time-out and back-pressure both, always the longer pause (the draw kept, its
                # value not used: the draws of every example stay as they were): held back across the idle
                # time-out, which the server must not count as idleness (its clock stops while it holds the
                # client back and starts again when it reads on), where the shorter one ends before the
                # time-out is due (held36: red11's resume-keeps-idle-clock needs it).
                pause = max(pause, _BACKLOG_PAUSE_IDLE)
            if index in self.edges:
                pause = _EDGE_PAUSE
            if not backed_up:
                pause_at = pause = None
        elif role == "leaver":  # nor does it, until the others have talked on after it left
            pause_at, pause = 0, draw(_LEAVER_PAUSE)
        elif role == "ender":
            pause_at, pause = 0, _ENDER_PAUSE
        elif role == "hangup_edge":  # not until its error line is long on its way (see _HANGUP_READ_LATE)
            pause_at, pause = 0, sum(gaps_ns) + _HANGUP_READ_LATE
        elif stop_at is not None:
            pause_at, stops = stop_at, True
            used.add("stopped_readers")
        if (not stops and pause_at is None and read_bytes is None and role not in ("backpressure", "flooder")
                and "paused_readers" in f):
            pause_at, pause = draw(_PAUSED) or (None, None)
            if pause_at is not None:
                used.add("paused_readers")
        stay = max(stay, draw(self.linger))
        # deaf_drains: its lines (no tail: its ending is the shape's), then its line whose reply the window holds
        # back, FIN right behind it; it reads nothing for longer than the stop after its FIN may take (see draw)
        drawn_ = ClientScript(tuple(msgs), tuple(chunks), gaps_ns, arrive, stay, tail)
        deafened = _deafened(drawn_, index, self.deaf_line) if deaf else None
        if keep_alive:  # ... and sends nothing (a connection opened ahead of use)
            msgs, chunks, gaps_ns, tail, pause_at, pause = [], [], (), b"", None, None
        script = ClientScript(tuple(msgs), tuple(chunks), gaps_ns, arrive, stay, tail, pause_at, pause, read_bytes,
                              read_every)
        ending = self._ending(draw, f, index, role, script, stops=stops, hung=hung, filler=filler, quiet=keep_alive)
        if over:  # (the labels of the rest of its draws kept aside: see _mark)
            self.marked_from = drawn_, self.used
            self.used = labels
        if deafened is None:
            return ending
        self.used = labels
        self.give_up_lines.pop(index, None)
        labels.add("deaf_drains")
        if arrive in _SPREAD_ONLY and "spread_arrivals" in f and "crowd" not in f:
            labels.add("spread_arrivals")
        return deafened

    def _mark(self, f: frozenset[str], made: list[tuple[ClientScript, ClientFault | None]]
              ) -> list[tuple[ClientScript, ClientFault | None]]:
        """backpressure's member that ends over the mark (chat with back-pressure: see _MARK_FIN), once every
        client is drawn: made from what it drew (:func:`_marked`) where the reader's burst comes, which it follows;
        else (no such member, or the burst shrunk to none) ``made`` as drawn."""
        if self.marked_from is None:
            return made
        i, (drawn_, rest) = self.marker, self.marked_from
        if self.burst_at is None:  # it is what it drew, labels and all
            self.used |= rest
            return made
        self.give_up_lines.pop(i, None)
        self.stuck_lines.pop(i, None)
        self.used.update(("backpressure", "departures") if self.roles[i] == "leaver" else ("backpressure",))
        if drawn_.arrive_ns in _SPREAD_ONLY and "spread_arrivals" in f and "crowd" not in f:
            self.used.add("spread_arrivals")
        return [*made[:i], _marked(drawn_, i, self.burst_at), *made[i + 1:]]

    def _ending(self, draw: st.DrawFn, f: frozenset[str], index: int, role: str, script: ClientScript, *,
                stops: bool, hung: bool, filler: bool, quiet: bool) -> tuple[ClientScript, ClientFault | None]:
        """A client's ending (its fault, if any), and its script with what that ending adds."""
        used = self.used
        if quiet:  # (a keep-alive client does not end before its stay)
            return script, None
        if stops:  # it must end: a reset after sending everything
            return script, ClientFault(index, "reset", len(script.chunks), draw(_STOPPED_FOR))
        if role == "accept_reset":
            used.add("accept_faults")
            return script, ClientFault(index, "reset", -1)
        if role == "ender":  # FIN right after its last send, its replies still queued
            return script, ClientFault(index, "leave", script.leave_points()[-1], 0)
        if role == "hangup_edge":  # the server ends it (error line, FIN; a reset once it sent too much)
            used.add("hangup_edges")
            return script, None
        if role == "leaver":  # it leaves early, with what the others said still queued for it
            used.add("departures")
            if hung:  # the server ends it
                return script, None
            points = script.leave_points()
            return script, ClientFault(index, "leave", points[min(draw(_ints(0, 1)), len(points) - 1)],
                                       draw(_LEAVE_LATER))
        # A talker's and a slow reader's role is their ending: they talk on (for their whole life), then
        # leave gracefully once served; so do 7 in 8 of a crowd (idle connections that fill the server:
        # most of a crowd behaves; one in 8 may reset or leave).
        # A client whose stream ends in a line over the limit that never ends: that and its FIN are its ending.
        # So does backpressure's reader at the edge of the output limit: no fault (a FIN or reset before its last
        # send, or lines added before a FIN, would leave its last line short of the edge, or not its last).
        plain = (role in ("talker", "slow_reader", "flooder") or filler or ("crowd" in f and index % 8 != 1)
                 or self._over_limit(script.tail) or index in self.edges)
        fault = self._fault(draw, f, index, script) if not plain else None
        if fault is not None and fault.reset_after_ns is not None:
            # reset_after_fin: its last line before the FIN asks for more than a small window holds (a request
            # for a big answer that it then gives up on), so that the server's send of it pends at the reset
            size = draw(_ladder(self.stopped_line + 1))
            if size:
                self.give_up_lines[index] = size - 1
                script, fault = _line_before(script, fault, _pattern(size - 1, index))
        if (fault is not None and fault.kind == "leave" and script.pause_at_ns is None
                and {"half_close", "talk_after_leave"} & f):
            # It leaves with replies still queued: it has not been reading for a while.
            paused = draw(_PAUSED)
            if paused is not None:
                used.add("half_close" if "half_close" in f else "talk_after_leave")
                script = replace(script, pause_at_ns=paused[0], pause_ns=paused[1])
        return script, fault

    def _newline_split(self, chunks: list[bytes]) -> int:
        """long_lines' newline split (see _NEWLINE_SPLIT_NS): the first of ``chunks`` that holds a newline after
        another one, no more than ``max_line`` bytes of lines before its line, that line within ``max_line`` and,
        run into the next whole line (no shorter), over it, split in two (in place) before that newline; the
        index of the second part (-1: no such newline)."""
        if self.max_line is None:
            return -1
        stream = b"".join(chunks)
        at = 0  # where chunk i begins in the stream
        for i, chunk in enumerate(chunks):
            begun = stream.rfind(b"\n", 0, at) + 1  # where the line it begins in began
            first = stream.find(b"\n", at, at + len(chunk))
            p = stream.find(b"\n", first + 1, at + len(chunk)) if first >= 0 else -1
            while p >= 0:
                line_start = stream.rfind(b"\n", 0, p) + 1
                after = stream.find(b"\n", p + 1)
                if after < 0:
                    break
                # (its lines before that line, from the start of the line it began in, within max_line: a
                # server may frame such a receive in one step, then knowing the bytes after its last newline)
                if (line_start - 1 - begun <= self.max_line and p - line_start <= min(self.max_line, after - p - 1)
                        and after - line_start > self.max_line):
                    chunks[i:i + 1] = [chunk[:p - at], chunk[p - at:]]
                    return i + 1
                p = stream.find(b"\n", p + 1, at + len(chunk))
            at += len(chunk)
        return -1

    def _hangup_line(self, role: str, index: int, msgs: list[bytes], chunks: list[bytes]) -> int:
        """hangup_edges (see _HANGUP_GAPS): the line over the limit of a client of that role added to its
        ``msgs`` and ``chunks`` (in place) in two sends; the index of the second (-1 for another role)."""
        if role != "hangup_edge":
            return -1
        assert self.max_line is not None and self.hangup is not None
        more = max(self.hangup[0], 1 - self.max_line)  # (a line of max_line + 1 bytes at least)
        line = _pattern(2 * self.max_line + more, index)  # (max_line + more bytes after byte max_line + 1)
        msgs.append(line)
        chunks += [line[:self.max_line + 1], line[self.max_line + 1:] + b"\n"]
        return len(chunks) - 1

    def _wave_from(self) -> int:
        """crowd: the first client that comes with the late wave (the last places, then those past the limit)."""
        assert self.max_clients is not None
        return self.max_clients - _WAVE_PLACES if self.max_clients > _WAVE_PLACES else self.max_clients

    def _fault(self, draw: st.DrawFn, f: frozenset[str], index: int, script: ClientScript) -> ClientFault | None:
        kinds = ["stay"] + (["reset", "abort"] if "resets" in f else []) + (
            ["leave", "leave"] if {"half_close", "fin_after_burst", "talk_after_leave"} & f else []) + (
            ["gives_up"] * 4 if "reset_after_fin" in f else [])  # (most clients end so when it is on: no other
        # feature draws it, and the roles of a crowd, departures and accept_faults take most clients from it)
        kind = draw(_one_of(kinds)) if len(kinds) > 1 else "stay"
        delays = _TIMES
        if kind in ("reset", "abort"):
            self.used.add("resets")
        if kind == "gives_up":  # FIN (after its last line, where it shrinks to), then no more reading, then a
            # reset: its replies still pending in the server's sends (the window draw() gives it holds less)
            points = script.leave_points()
            self.used.add("reset_after_fin")
            return ClientFault(index, "leave", points[len(points) - 1 - draw(_ints(0, len(points) - 1))],
                               draw(delays), draw(_GIVE_UP_AFTER))
        if kind == "reset":
            return ClientFault(index, "reset", draw(_ints(0, len(script.chunks))), draw(delays))
        if kind == "abort":
            return ClientFault(index, "reset", -1)
        if kind == "leave":
            points = script.leave_points()
            if "fin_after_burst" in f and draw(_BOOL):  # FIN right behind the last send
                self.used.add("fin_after_burst")
                return ClientFault(index, "leave", points[-1], 0)
            later = "talk_after_leave" in f  # after the others' first lines, which then go on
            self.used.add("talk_after_leave" if later else "half_close")
            return ClientFault(index, "leave", points[draw(_ints(0, len(points) - 1))],
                               draw(_LEAVE_LATER if later else delays))
        return None

    def _over_limit(self, line: bytes) -> bool:
        """``line`` is longer than the server's line limit (when it is known)."""
        return self.max_line is not None and len(line) > self.max_line

    def _owed_past(self, script: ClientScript, fault: ClientFault | None,
                   window: int) -> tuple[ClientScript, ClientFault | None]:
        """A reader that stops for good (``script``, its reset ``fault``), with
        lines added (in one more send, before its tail) until its echoed lines
        are more than ``window`` bytes; unchanged if they already are, or if
        that takes more than _MAX_OWED_LINES lines."""
        if fault is None or self.stuck_lines.get(fault.client, -1) < 0:
            return script, fault
        line = self.stuck_lines[fault.client]
        owed = sum(len(m) + 1 for m in script.lines)
        extra = (window - owed) // (line + 1) + 1
        if owed > window or extra > _MAX_OWED_LINES:
            return script, fault
        more = tuple(_pattern(line, fault.client + i) for i in range(extra))
        chunk = _ended(more)
        k = len(script.chunks) - (1 if script.tail else 0)
        script = replace(script, lines=script.lines + more, chunks=script.chunks[:k] + (chunk,) + script.chunks[k:],
                         gaps_ns=script.gaps_ns[:k] + (0,) + script.gaps_ns[k:])
        return script, replace(fault, before_chunk=len(script.chunks))

    def _edge_lines(self, max_queued: int, window: int) -> int:
        """backpressure's edge of the output limit (see _EDGE): how many lines of ``edge_line`` bytes take the
        server's queue past ``max_queued`` with the last, in ``window``: the line in the server's send in flight
        (its first bytes on their way) where the window is below a line, else the window's whole lines on their
        way and as many in the send in flight (what a receive of a window's worth echoes: a guess, which a
        server's own sizes may make wrong), then max_queued's whole lines, then the line that crosses it."""
        line = self.edge_line + 1
        return window // line + max(1, min(window, self.recv_size or window) // line) + max_queued // line + 1

    def _edge_past(self, index: int, script: ClientScript, window: int) -> ClientScript:
        """backpressure's reader at the edge of the output limit (client ``index``, if it is one), with its lines
        aimed at ``window`` (see _edge_lines): unchanged where the window is below its line (drawn so)."""
        if index not in self.edges or self.max_queued is None or window <= self.edge_line:
            return script
        size = self._edge_lines(self.max_queued, window) * (self.edge_line + 1)
        lines = _bulk(size, self.edge_line, index)
        stream = _ended(lines)
        chunks = tuple(stream[i:i + _BACKLOG_CHUNK] for i in range(0, len(stream), _BACKLOG_CHUNK))
        return replace(script, lines=lines, chunks=chunks, gaps_ns=(0,) * len(chunks))

    def _given_up_past(self, script: ClientScript, fault: ClientFault | None,
                       window: int) -> tuple[ClientScript, ClientFault | None]:
        """A client that gives up after its FIN (reset_after_fin: ``fault``), with more of its last line's size
        sent just before the FIN until the replies to the lines it sent before the FIN are more than ``window``
        bytes (a window the rest of the traffic made wide): the server's send to it then pends at its reset.
        Unchanged if they already are, or if that takes more than _MAX_OWED_LINES lines."""
        if fault is None or fault.reset_after_ns is None or fault.client not in self.give_up_lines:
            return script, fault
        return self._owed_before_fin(script, fault, self.give_up_lines[fault.client], window)

    def _deaf_past(self, script: ClientScript, fault: ClientFault | None,
                   window: int) -> tuple[ClientScript, ClientFault | None]:
        """deaf_drains' client (``fault``: its FIN), widened as :meth:`_given_up_past` widens one that gives up:
        owed more than ``window`` bytes at its FIN, so that the server's send to it pends at the stop."""
        if (fault is None or self.deaf_line < 0 or fault.client >= len(self.roles)
                or self.roles[fault.client] != "deaf_leaver"):
            return script, fault
        return self._owed_before_fin(script, fault, self.deaf_line, window)

    def _owed_before_fin(self, script: ClientScript, fault: ClientFault, line: int,
                         window: int) -> tuple[ClientScript, ClientFault]:
        """``script`` with lines of ``line`` bytes sent before its FIN (``fault``) until the replies to the lines
        before it are more than ``window`` bytes (see :meth:`_given_up_past`)."""
        owed = sum(len(m) + 1 for m in script.lines[:script.lines_before(fault.before_chunk)])
        extra = (window - owed) // (line + 1) + 1
        if owed > window or extra > _MAX_OWED_LINES:
            return script, fault
        for i in range(extra):
            script, fault = _line_before(script, fault, _pattern(line, fault.client + i + 1))
        return script, fault

    def draw(self, draw: st.DrawFn) -> Scenario:
        _decoys(draw)
        f = self.features(draw)
        self.used = set()
        self.stuck_lines = {}
        self.give_up_lines = {}
        self.edges = set()
        self.burst_at = None
        self.marker = -1
        self.marked_from = None
        self.big_left = _MAX_BIG  # for all the big sends of the scenario
        self.exact_big = 0
        lo, hi = self.clients
        # Drawn the same whatever the switches (so that switching one off keeps the other draws: the
        # shrinker can then drop it).
        # (with a known client limit, crowd's count 7 times in 8 past it, and the arrival of those past it)
        known = self.max_clients is not None
        some, past, accept_at = draw(_ints(lo, hi)), draw(_ints(0, 7 if known else 3)), draw(_ACCEPT_ARRIVALS)
        self.wave = draw(_CROWD_LATE) if known else 0
        storm = draw(_RESET_STORMS)
        self.storm = 0
        # The shapes' draws (drawn whatever their switches, when they may be drawn at all: a switch that is off
        # changes no later draw).
        self.hangup = (draw(_HANGUP_MORE), draw(_HANGUP_GAPS)) if "hangup_edges" in self.allowed else None
        deaf_size, deaf_stop = ((draw(_ladder(self.stopped_line + 1)), draw(_DEAF_STOPS))
                                if "deaf_drains" in self.allowed else (0, 0))
        self.deaf_line = deaf_size - 1
        if "crowd" in f and "busy_server" not in f:  # as many as allowed (more than the server serves at once,
            # if that is known; not for a busy server: tens of clients of a chat server slowed to a ms a call
            # are not served in any time the checks allow):
            top = min(max(hi, self.max_clients + 3), _MAX_CROWD) if self.max_clients is not None else hi
            # 7 times in 8 (3 in 4 with no known limit) up to three past the limit; shrinking to the plain
            # count (past = 0), which the shrinker keeps when it switches crowd off
            count = max(lo, top - (past - 1) % 3) if past else some
            if count > 1:
                self.used.add("crowd")
        else:
            # (not for deaf_drains, which one client makes: switching it off then keeps the count, and the draws
            # after it)
            # (and backpressure's member that ends over the mark, in chat with back-pressure: see _MARK_FIN)
            pair = bool({"departures", "busy_server", "hangup_edges"} & f) or self._marks(f)
            need = 3 if "accept_faults" in f else 2 if pair else lo
            count = max(some, min(need, hi))
        roles = [""] * count  # what each client does for a targeted feature
        if count:
            # The features that give every client a role: one of them (crowd, the rarest, when it applies;
            # else a draw, when both others apply).
            # (not with busy_server, whose flooders are clients without a role: a flood by a crowd would cost
            # too much, and the other plans take every client)
            plans = [name for name, applies in (
                ("accept_faults", "accept_faults" in f and count >= 3),
                ("departures", "departures" in f and count >= 2),
                ("crowd", "crowd" in f and self.max_clients is not None and count > self.max_clients))
                if applies and "busy_server" not in f]
            plan = ("crowd" if "crowd" in plans else draw(_one_of(plans)) if len(plans) > 1
                    else plans[0] if plans else "")
            if plan == "accept_faults":  # the first is served, the middle ones reset in the backlog (perhaps a
                self.accept_at = accept_at  # storm of them), the last must still be served
                # (only where the server's client limit is given, as a crowd goes past the clients range only
                # then; not on top of a crowd's count)
                self.storm = storm if known and count <= hi else 0
                count += self.storm
                roles = [""] + ["accept_reset"] * (count - 2) + ["accept_late"]
            elif plan == "departures":
                roles[0], roles[1:] = "leaver", ["talker"] * (count - 1)
            elif plan == "crowd":  # some come late, as some of those the server holds end: the first, and
                # one in eight of the others it holds (where most of a crowd may otherwise reset or leave)
                for i in range(min(count, self.max_clients or 0)):
                    if i % 8 == 1 or not i:
                        roles[i] = "ender"
            for feature, role in (("backpressure", "backpressure"), ("slow_readers", "slow_reader")):
                # (not with busy_server, whose window is small: too slow)
                if feature in f and "busy_server" not in f:  # the first client without a role (or the last
                    # talker, if one other is left;
                    # or the last client). The first: a scenario that loses clients as it shrinks keeps it.
                    free = [i for i, r in enumerate(roles) if r == ""]
                    talkers = [i for i, r in enumerate(roles) if r == "talker"]
                    roles[free[0] if free else talkers[-1] if len(talkers) > 1 else -1] = role
                    if role == "backpressure" and self._marks(f):  # chat with back-pressure: a member that
                        # ends over the mark (see _marked): departures' leaver, accept_faults' late client, or the next
                        # client without a role (not one of a crowd's first, which stay)
                        stays = (self.max_clients or 0) if "crowd" in f else 0
                        free = [i for i, r in enumerate(roles) if r == "" and i >= stays]
                        marker = [i for i, r in enumerate(roles) if r in ("leaver", "accept_late")] or free[:1]
                        if marker:
                            self.marker = marker[0]
                            if roles[self.marker] == "":
                                roles[self.marker] = "mark_ender"
            for feature, role in (("hangup_edges", "hangup_edge"), ("deaf_drains", "deaf_leaver")):
                # the first client without a role (not one of a crowd's first, which stay: see script), or the last
                # talker, if one other is left (before a busy server's flooders take the rest)
                free = [i for i, r in enumerate(roles) if r == ""
                        and not ("crowd" in f and i < (self.max_clients or 0))]
                talkers = [i for i, r in enumerate(roles) if r == "talker"]
                if feature in f and (free or len(talkers) > 1):
                    roles[free[0] if free else talkers[-1]] = role
            if "busy_server" in f:  # the first clients without a role flood the server (several: a chain of
                # routines lasts as long as another connection's completion is queued before one's routine ends)
                for i in [i for i, r in enumerate(roles) if r == ""][:_FLOODERS]:
                    roles[i] = "flooder"
        self.roles = roles
        self.plan = plan if count else ""
        made = self._mark(f, [self.script(draw, f, i) for i in range(count)])
        faults = tuple(c for _, c in made if c is not None)
        injections: tuple[Injection, ...] = ()
        # (drawn whatever the switches: switching injections or accept_faults off keeps the draws after them)
        drawn = tuple(draw(self.injections)) if self.inject else ()
        accept_injection = draw(_ACCEPT_INJECTION_TIMES)
        few = self.max_clients is not None and self.max_clients <= _CROWD_BACKLOG_UPTO
        if "injections" in f and not (self.plan == "crowd" and not few):
            # (not in a crowd that fills a server serving tens at once: its accepts' burst across the server's
            # limit is what it is for, and an AcceptEx failing meanwhile held the crowd back for the 50 ms of a
            # retry, as a small listen backlog would, below; measured: it left a crowd 1 failure in 66 of the
            # mutant it reaches, against 1 in 8 without)
            injections = drawn
        if "accept_faults" in self.used and "AcceptEx" in self.inject and not self.storm:  # the accept is re-posted
            injections += (Injection(accept_injection, "AcceptEx", self.errors[0]),)  # meanwhile (not in a storm:
            # a failed post there left the storm in the backlog, where it reset unaccepted: 13 failures of 60 of the
            # iocp mutant above without it, 0 to 3 with it at 0 or 50 us)
        backlog: int | None = draw(_ints(1, 3))  # (drawn whatever the switches)
        # A crowd fills the listen backlog where the server serves few at once; a server that serves
        # tens at once keeps its own backlog (a backlog of 1 to 3 would refuse most of a crowd arriving
        # at once, and the clients' retries would spread it over tens of ms: it never fills the server).
        if "backlog" not in f and not ("crowd" in f and few):
            backlog = None
        elif self.plan == "crowd" and not few:  # (the backlog feature too: the crowd would never fill it)
            backlog = None
        if "flooder" in self.roles and self.max_clients is not None and self.max_clients < count:
            # Not for a busy server that serves fewer at once than come: a listen backlog of 1 to 3 then refuses
            # the others for as long as the first take at a ms a call, which is longer than a client's retries
            # (10 s; found as a false alarm on the correct events server, tight echo, 4 clients at 1 ms a call:
            # "connection refused 159 times in 10.0 s" with a backlog of 1, none without).
            backlog = None
        # (drawn whatever the switches, as the window below: switching early_stop off keeps the window's
        # draw; drawn after it, a window drawn from another list of sizes, whose choice shrinks differently)
        stop: int | None = draw(_SWARM_STOPS)
        wanted = draw(_WINDOW_DRAW)
        # (drawn whatever the switches)
        busy_stop = draw(_BUSY_STOPS) > 0 and "early_stop" not in f and "busy_server" in f and self.stops
        if "early_stop" not in f and not busy_stop:
            stop = None
        stuck = [s.arrive_ns + sum(s.gaps_ns) for s, _ in made if s.stops_reading]
        slow = [(s.arrive_ns, sum(s.gaps_ns)) for s, _ in made if s.read_bytes is not None]
        if stop == _AFTER_SENDS:  # just after the last send any client makes (its replies, reads, ends to come)
            stop = max((s.arrive_ns + sum(s.gaps_ns) for s, _ in made), default=0) + 1 * _MS
        elif stop is not None and stuck:  # a stop while readers that stopped for good hold the server's sends
            # (a server that waits for its sends to finish then never stops): counted from their last send
            stop += max(stuck)
        elif stop is not None and slow:  # a stop while a slow reader's replies are backed up: at a point of
            # its sends (an eighth of the way through them, ..., its last send, where it is owed the most), not
            # after it has read its way through them (its sends take from a few ms to hundreds)
            arrive, span = max(slow)
            stop = arrive + span * _SLOW_STOP_EIGHTHS[stop] // 8 + 1
        elif stop is not None and self.plan == "crowd":  # a stop at a full server, with clients waiting:
            stop += max(s.arrive_ns for s, _ in made)  # counted from the last arrival
        window = None
        # A reader that does not read holds the server's sends only once the window is full: readers that
        # pause or stop come with a small window.
        gives_up = {c.client for _, c in made if c is not None and c.reset_after_ns is not None}
        if ("small_window" in f or gives_up
                or any(s.pause_at_ns is not None or s.read_bytes is not None for s, _ in made)):
            # A window of w bytes costs a segment per w bytes: keep it to a few hundred per client (what a
            # chat client gets is about what every client sends).
            # And smaller than what a client sends, or it never fills.
            traffic = sum(len(s.stream) for s, _ in made) * max(1, len(made) - 1) if made else 0
            # A client whose last write ends in a line over the server's limit that never ends (long_lines'
            # unterminated tail) gets a window that holds that line and the newline before it, so that one
            # receive may hold both, as a real receive holds up to the socket's receive buffer (8 KiB and
            # more): a window smaller than the line showed the server only part of it at a time.  (One
            # window serves every connection of a run, so the readers held back get it too.)
            wide = max((len(s.tail) + 1 for s, _ in made if self._over_limit(s.tail)), default=0)
            # (and a send of an exact limit, likewise: one receive may then take it whole)
            wide = max(wide, self.exact_big)
            wide = wide if wide <= max(_WINDOWS) else 0
            fits = [w for w in _WINDOWS if w * _SEGMENTS >= traffic and w >= wide] or [max(_WINDOWS)]
            # backpressure's edge of the output limit: a window below its line, where the traffic allows, so that
            # what is on its way to it is part of the one line in the server's send in flight (see _EDGE)
            if self.edges:
                fits = [w for w in fits if w <= self.edge_line] or fits
            # What the readers it is for (those that pause, stop or read slowly; all, for small_window alone) send.
            held = [s for i, (s, _) in enumerate(made) if s.pause_at_ns is not None or s.read_bytes is not None
                    or i in gives_up] or [s for s, _ in made]
            biggest = max((len(s.stream) for s in held), default=0)
            # The window drawn, or the one nearest it that suits: a window drawn from the list that suits
            # (whose length varies with the traffic) changed with every size the shrinker lowered (to one
            # that did not fail: small windows make small receives), and a bulk stayed big.
            suits = [w for w in fits if w < biggest] or [min(fits)]
            window = min(suits, key=lambda w: (max(w, wanted) / min(w, wanted), w))
            # A reader that stops for good keeps sending until it is owed more than the window holds (its
            # 300-byte line fills a window of a few bytes, not one of kilobytes, which traffic elsewhere
            # may call for): the server's send to it then pends for good.
            # (and, with back-pressure, more than twice its mark besides: a reader stuck over it, whatever the
            # window and the socket buffers hold, which the server's slow-consumer time-out must cut off; one
            # stuck under it is rightly kept until its reset)
            stuck_owed = window + 2 * (self.high_water or 0)
            made = [self._owed_past(s, c, stuck_owed) if s.stops_reading else (s, c) for s, c in made]
            made = [self._given_up_past(s, c, window) for s, c in made]
            made = [self._deaf_past(s, c, window) for s, c in made]
            made = [(self._edge_past(i, s, window), c) for i, (s, c) in enumerate(made)]
            faults = tuple(c for _, c in made if c is not None)
        # (drawn whatever the switch)
        call_cost, window, made, stop = self._busy(draw(_BUSY_COSTS), draw(_FLOOD_LINES), draw(_FLOOD_SIZES), window,
                                                   made, stop)
        if busy_stop and call_cost is None:  # (no flooder: no busy server to stop)
            stop = None
        if self.idle_timeout_ms is not None:  # (only then: every other strategy's draws stay as they were)
            made = self._idle(draw, f, made)
        faults = tuple(c for _, c in made if c is not None)
        used = self.used | {name for name, value in (("injections", "injections" in f and injections),
                                                     ("early_stop", stop),
                                                     ("small_window", window and "small_window" in f)) if value}
        if backlog is not None:
            used.add("backlog" if "backlog" in f else "crowd")
        fins = [s.arrive_ns + sum(s.gaps_ns) for i, (s, _) in enumerate(made)
                if i < len(self.roles) and self.roles[i] == "deaf_leaver"]
        if fins and self.stops:  # deaf_drains: a stop after its FIN, while it reads nothing and is owed output
            stop = max(fins) + deaf_stop
            used.add("deaf_drains")
        # 1 in 2 that a stop is drawn, a stop at a send's end (FaultPlan.stop_at_send_end).  Drawn whatever the stop,
        # so that the shrinker can drop the stop without moving the draws after it: drawn only with a stop, the
        # derandomized test_a_failure_shrinks_to_the_feature_it_needs shrank to a local minimum of 3 features and 2
        # faults (1 feature with this draw made whatever the stop).
        at_send_end = draw(_BOOL) and stop is not None
        _decoys(draw)
        return Scenario(tuple(s for s, _ in made), FaultPlan(faults, injections, backlog, stop, at_send_end), window,
                        tuple(n for n in _ALL_FEATURES if n in used), call_cost)

    def _idle(self, draw: st.DrawFn, f: frozenset[str], made: list[tuple[ClientScript, ClientFault | None]]
              ) -> list[tuple[ClientScript, ClientFault | None]]:
        """idle_clients (see _IDLE_UNDER_NS): the first client that stays, reads all the time and has no
        other role goes idle across the time-out, between its lines, once served, or dribbling (its first
        line, or with the split its last, after its lines: then, if no client is free of a role, the last
        talker of departures).  The kind, the edge and the split are drawn
        whatever the switch (so that the shrinker can switch it off), and shrink to the first: between lines,
        each whole in one send, just under the time-out.  (The split of a dribbler came with dribble35: no
        draw of its own, so that no example's draws move.)"""
        kind, edge, split = draw(_ints(0, 2)), draw(_ints(0, 2)), draw(_ints(0, 1)) == 1
        if "idle_clients" not in f or self.idle_timeout_ms is None:
            return made
        limit = self.idle_timeout_ms * _MS
        idle = (max(limit - _IDLE_UNDER_NS, limit // 2), limit, limit + _IDLE_OVER_NS)[edge]
        def fits(i: int, s: ClientScript, c: ClientFault | None, roles: tuple[str, ...]) -> bool:
            return (c is None and not s.tail and s.pause_at_ns is None and s.read_bytes is None
                    and (i >= len(self.roles) or self.roles[i] in roles))

        # A dribble after its lines leaves a talker's talk as it was: where no client is free of a role (as
        # with departures, whose every member but the leaver talks), the last talker dribbles so.  (dribble35:
        # most examples that switch idle_clients on had no client for it; no draw of its own.)
        talkers: list[int] = []
        if kind == 2 and split and not any(fits(i, s, c, ("",)) for i, (s, c) in enumerate(made)):
            talkers = [i for i, (s, c) in enumerate(made) if fits(i, s, c, ("talker",))][-1:]
        for i, (s, c) in enumerate(made):
            if not fits(i, s, c, ("",)) and i not in talkers:
                continue
            first = s.gaps_ns[:1] or (0,)
            if kind == 0:  # each line in one send (or two: its newline alone), idle before each but the first
                lines = s.lines + _IDLE_FILL[len(s.lines):]
                if split:
                    chunks = tuple(c for line in lines for c in (line, b"\n") if c)
                    gaps = tuple(g for line in lines for g in ((idle, _IDLE_SPLIT_NS) if line else (idle,)))
                else:
                    chunks, gaps = tuple(line + b"\n" for line in lines), (idle,) * len(lines)
                s = replace(s, lines=lines, chunks=chunks, gaps_ns=first + gaps[1:])
            elif kind == 1:  # once served, it stays, idle
                s = replace(s, linger_ns=idle)
            elif not split or not s.lines:  # a first line dribbled, a byte at a time
                dribble = tuple(_IDLE_DRIBBLE[k:k + 1] for k in range(len(_IDLE_DRIBBLE))) + (b"\n",)
                s = replace(s, lines=(_IDLE_DRIBBLE, *s.lines), chunks=dribble + s.chunks,
                            gaps_ns=first + (idle // 2,) * len(_IDLE_DRIBBLE) + s.gaps_ns)
            else:  # (split) its lines first, then a last line dribbled: their newlines came before the dribble
                dribble = tuple(_IDLE_DRIBBLE[k:k + 1] for k in range(len(_IDLE_DRIBBLE))) + (b"\n",)
                s = replace(s, lines=(*s.lines, _IDLE_DRIBBLE), chunks=s.chunks + dribble,
                            gaps_ns=s.gaps_ns + (idle // 2,) * len(dribble))
            self.used.add("idle_clients")
            return [*made[:i], (s, c), *made[i + 1:]]
        return made

    def _busy(self, cost: int, line_len: int, rung: int | None, window: int | None,
              made: list[tuple[ClientScript, ClientFault | None]], stop: int | None
              ) -> tuple[int | None, int | None, list[tuple[ClientScript, ClientFault | None]], int | None]:
        """busy_server: the cost of the server's calls, the window, the clients (the flooder's flood added in
        front of its sends) and the stop (no sooner than _BUSY_START calls after the flooder's arrival: while the
        server serves the flood, not while it starts); unchanged without a flooder.  ``rung``: the flood cut to
        that many bytes (see _FLOOD_SIZES), or None for the full flood."""
        flooders = [i for i, r in enumerate(self.roles) if r == "flooder"]
        if not flooders or rung == 0:  # (rung 0: no busy server; its flooders stay plain)
            return None, window, made, stop
        clients = len(made)
        traffic = sum(len(s.stream) for s, _ in made) * max(1, clients - 1)  # (as a chat server sends it)
        if traffic <= _BUSY_WINDOW * _BUSY_SEGMENTS:  # a small window, so that a flood of a second costs little
            window = min(window or _BUSY_WINDOW, _BUSY_WINDOW)
        per_receive = min(window or max(_WINDOWS), max(_WINDOWS))
        calls = 2 * traffic // per_receive + 100 * clients
        # (a stop closes every client, and a chat line goes to every other: 1 s / 40 calls per client squared)
        cost = max(_US, min(cost, _BUSY_SPAN // calls, _S // (40 * clients * clients)))
        each = min(_MAX_FLOOD, _BUSY_FOR * per_receive // (2 * cost)) // len(flooders)
        line_len = min(line_len, self.max_line or line_len)
        if rung is not None:  # (a short flood: the shrink target)
            each = min(each, rung)
        made = list(made)
        for index in flooders:
            flood = _bulk(each, line_len, index)
            script, fault = made[index]
            script = replace(script, lines=tuple(flood) + script.lines, chunks=(_ended(flood),) + script.chunks,
                             gaps_ns=(0,) + script.gaps_ns)
            if fault is not None and fault.before_chunk >= 0:
                fault = replace(fault, before_chunk=fault.before_chunk + 1)
            made[index] = script, fault
        self.used.add("busy_server")
        if stop is not None:
            stop = max(stop, min(made[i][0].arrive_ns for i in flooders) + _BUSY_START * cost + _BUSY_CONNECTED)
        return cost, window, made, stop


def scenarios(*, clients: int | tuple[int, int] = (1, 3), lines: int | tuple[int, int] = (0, 3),
              line: st.SearchStrategy[bytes] = _LINE,
              arrivals: int | st.SearchStrategy[int] = _TIMES,
              gaps: int | st.SearchStrategy[int] = _TIMES,
              linger: int | st.SearchStrategy[int] = 0,
              faults: bool = True, resets: bool = True, leaves: bool = True,
              inject: Sequence[str] | None = None, errors: Sequence[int] = (WSAENOBUFS,),
              backlog: bool = True, early_stop: bool = True, swarm: bool = True,
              features: Sequence[str] | None = None, max_line: int | None = None, recv_size: int | None = None,
              max_clients: int | None = None, max_queued: int | None = None,
              idle_timeout_ms: int | None = None, high_water: int | None = None,
              chat: bool = False) -> st.SearchStrategy[Scenario]:
    """Scenarios: ``clients`` clients (a number, or a range ``(lo, hi)``), each
    sending ``lines`` lines (number or range) drawn from ``line``, its stream
    cut into sends, arriving at ``arrivals`` and pausing ``gaps`` before each
    send (virtual nanoseconds), staying ``linger`` once served.  With
    ``faults``, a fault plan (the remaining keywords say which faults).

    **Swarm** (the default; ``swarm=False`` draws the plain traffic of
    earlier versions): each scenario first switches a random subset of the
    traffic features of :data:`FEATURES` on (those in ``features``, default
    all that the other keywords allow), then draws its clients within them,
    so that rare combinations are common across examples (swarm testing,
    Groce et al., ISSTA 2012).  The features:

    * sizes: ``empty_lines``, ``tiny_lines`` (one byte), ``long_lines`` (just
      under, at and over ``max_line``, the server's line limit, when given;
      then also, if unterminated tails are allowed, a last line over it that
      never ends, in the client's last send, with a window that holds it; and
      a line before a longer one, the two run together over ``max_line``, ends
      a send after another line, its newline beginning the next send, with
      the long line, 1 ms later),
      ``big_sends`` (one send of many lines, from just under the server's
      receive buffer ``recv_size`` up to 320 KiB; switched on rarely, as it
      costs time; these lines come on top of ``lines``), ``small_sends``
      (sends of 1 to 3 bytes in quick succession), ``boundary_sends`` (the
      first send of an ordinary client, a chat member that talks or the client
      served after accept_faults' resets, a pause before its next, of exactly
      one below, at (twice as often) or one above ``recv_size`` and
      ``max_queued``, those up to 64 KiB (guessed receive buffers of 4 and
      16 KiB without them), in a window that holds it: boundary values of the
      limits a send meets, which the server's first receive of the client
      meets whole even when the client waited in the listen backlog);
    * flow: ``small_window`` (a flow-control window of 1 byte to 4 KiB),
      ``paused_readers`` (a client stops reading for a while),
      ``stopped_readers`` (a client stops reading for good, keeps sending, then
      resets; until it is owed more than the window holds and, when given,
      more than ``high_water``, the server's back-pressure mark: a reader
      stuck over the mark, which the server's slow-consumer time-out must
      cut off), ``backpressure`` (a client sends hundreds of KiB in lines of 3000
      to 40000 bytes without reading for 20 or 150 ms (150 ms with both
      ``idle_timeout_ms`` and ``high_water``, and then it always stays
      300 ms once served, 1 time in 2 otherwise), so that its replies back
      up in the server: up to just under ``max_queued``, the server's output
      limit, when given, and more than one send of 64 KiB; or, one time in as
      many, at the limit's edge, when ``max_queued`` is given: lines of the
      longest such size in one burst, and nothing more, whose last takes the
      server's queue just past ``max_queued`` (beyond the line in its send in
      flight, in a window below the line where the traffic allows), unread for
      150 ms: the cut-off due there, and no next line to make it; in chat with
      back-pressure, ``chat=True`` and ``high_water``, where its lines go to the
      others and not back to it, with a member that ends over the mark, two
      clients at least, unless a slow reader or the edge's burst is drawn:
      departures' leaver (not when hung up), accept_faults' late client or
      else the next client without a role reads nothing from its greeting on,
      so that the burst, routed to it, backs up in the server over
      ``high_water``, sends its lines until, and half-closes, 40 ms after the
      burst begins, and reads on only 300 ms after its FIN, past a
      slow-consumer time-out counted from when it went over (a client that
      ended its input gets no more lines and holds no sender back, so a server
      must not cut it off then)), ``slow_readers``
      (a client that reads at a limited rate all its life, 5/8 down to 3/8 of
      the rate at which it sends lines of 3000 to 40000 bytes, 16 KiB every
      2 ms, two and a half times ``max_queued`` in all, at most 2.5 MiB: its
      replies stay backed up over many of the server's sends while what it is
      owed creeps towards the limit; 1 in 3, as it costs time);
    * endings: ``half_close`` (FIN while replies are queued or in flight),
      ``fin_after_burst`` (the whole stream in one send, then FIN at once),
      ``resets`` (at any chunk, or as soon as connected), ``unterminated`` (a
      last line without its newline, then FIN), ``talk_after_leave`` (long
      pauses between sends, so that others keep talking after a client left),
      ``departures`` (at least two clients: the first leaves early without reading
      for a while, so that what the others say stays queued for it, while the
      others keep talking, 20 to 60 ms between sends), ``reset_after_fin``
      (a client leaves, FIN after a last line of 300 bytes in a send of its
      own, reads nothing more, and resets 3, 20 or 100 ms later or right
      behind its FIN, ``ClientFault.reset_after_ns``, in a window smaller than
      that line's echo: the server's send of it pends, and fails, while the
      server has no receive posted any more), ``idle_clients`` (only with
      ``idle_timeout_ms``, the server's idle time-out T: the first client that
      stays and reads all the time goes idle just under T, at T or just over
      T, either between its lines, each in a send of its own, or once served,
      lingering, or dribbling a line a byte at a time, its first or, after
      its lines, its last; the model's ``idle_timeout_ms`` says what the
      server does);
      ``hangup_edges`` (only with ``max_line``, the server's line limit, up
      to 64 KiB: a client ends with a line over it in two sends, the first
      ending exactly at byte ``max_line`` + 1, the second 20 or 50 ms later
      with ``max_line`` bytes more, or one fewer or one more, newline last,
      while it reads nothing: the edge of what a hung-up client may still
      send; scenarios() cannot know a server's line limit, and guesses none:
      without ``max_line`` there is no such edge to draw), ``deaf_drains``
      (1 in 3, as it stops the server: a client half-closes owed more than
      the window holds, reads nothing for 3 s, and the server is asked to
      stop 3 to 100 ms after its FIN; not with ``faults``, ``leaves`` or
      ``early_stop`` False);
    * load: ``crowd`` (every client at once, as many as the range allows, or
      ``max_clients`` + 3 when that is given, 1 example in 3 where that is at
      most 100, else 1 in 4: a full server; its first ``max_clients`` clients
      stay (no fault, no stop of their reading, no unterminated tail);
      a listen backlog of 1 to 3 and injections where ``max_clients`` is at
      most 3, neither where the server serves more; those past ``max_clients`` together, with the
      server's last two places where it has more, perhaps 1 or 5 ms later, when some
      of the first have ended while their replies are still being sent),
      ``spread_arrivals`` (arrivals up to 50 ms apart, also during a stop;
      2 times in 3 without a crowd, the first client, if ordinary, is a
      keep-alive connection: it comes first, sends nothing and stays 1.5 s
      while the others come and go),
      ``busy_server`` (1 in 4: a server slower than its clients, as on a
      loaded machine: each of its Winsock calls costs 400 us or 1 ms of
      virtual time, less where the traffic is heavy, while the network keeps
      up, ``Scenario.call_cost_ns``; up to four clients without another role
      flood it from their arrival, for over a second (7 times in 8: the
      flood's size is a draw that shrinks, like the bulks below, to none,
      then no busy server), in a window of 100 bytes where the traffic allows (no backpressure or slow reader then, nor
      crowd, departures or accept_faults plans); a stop, early_stop's or (2
      times in 3 without it) one of its own, comes at least 100 ms and 50 calls
      after they arrive, while they flood; never with ``faults=False`` or
      ``early_stop=False``);
    * faults: ``injections`` (1 to 3 injections of ``errors`` into the calls in
      ``inject``, at any moment; by default into AcceptEx, WSARecv and WSASend,
      each of which a server posts and may see fail at once; the plain traffic's
      default is AcceptEx only), ``early_stop`` (counted from the last send of a
      reader that stopped for good, if any: a stop while it holds the server's
      sends; else, with a slow reader, at a point of its sends, while its
      replies are backed up; in a crowd, from its last arrival; two clients in three stay
      connected 3 s once served, so that the stop finds idle ones to close;
      and, 1 time in 2 that a stop is drawn, deaf_drains' and busy_server's
      too, ``FaultPlan.stop_at_send_end``: the stop comes sooner, at the first
      moment a send of the server to a client has ended, the client's read
      having made room for its last bytes, with the send's completion still
      due and the client owed output queued behind it for lines the server
      took 1 ms before or earlier; or, if a client is owed so at the stop's
      moment, at such a moment up to 200 ms later: a stop that finds a send
      ended whose packet the server has not handled yet (a close cancels
      nothing: the send went out whole) with more output queued behind it,
      which the close drops, so it must still be abortive.  A Ctrl+C may
      come at any instant; this one is aimed at those few microseconds.
      Divergence from real Windows: none added (the moment is read from the
      fake's state, which no real client sees; the stop is the same
      request),
      ``backlog``, ``accept_faults``
      (at least three clients: after the first, the others but the last arrive
      together and reset at once, while they may still wait in the listen
      backlog, as they do when the first fills a server whose ``max_clients``
      is 1; an AcceptEx post fails meanwhile, if ``inject`` has AcceptEx; the
      last arrives 20 ms later and must be served; 1 time in 2, where
      ``max_clients`` is given, 20 more reset together, a storm of them, and no
      AcceptEx post fails).

    Every feature switch is a Hypothesis draw that shrinks to "off", and each
    client's script and fault are drawn together: failures shrink towards the
    fewest features, one client, no lines, one send, no delay, no fault.  The
    sizes a feature adds shrink too (a slow reader's or backpressure client's
    bulk, a stuck reader's and a crowd ender's line, a busy server's flood:
    the full size 7 times in 8, shrinking down to none), and the window to the
    widest.
    ``chat=True`` says that the server is a chat server (each line goes to
    every other client, as ``ChatModel`` says): with ``high_water`` it adds
    backpressure's member that ends over the mark (and draws for it); without,
    it changes nothing drawn.
    Arguments out of range raise ValueError here, naming the argument."""
    lines_range = _range(lines, "lines")
    clients_range = _range(clients, "clients")
    for name, value in (("arrivals", arrivals), ("gaps", gaps), ("linger", linger)):
        if not isinstance(value, st.SearchStrategy) and (isinstance(value, bool) or not isinstance(value, int)
                                                         or value < 0):
            raise ValueError(f"{name}: expected nanoseconds >= 0 or a strategy, not {value!r}")
    if not isinstance(line, st.SearchStrategy):
        raise ValueError(f"line: expected a strategy of bytes, not {line!r}")
    for name, flag in (("faults", faults), ("resets", resets), ("leaves", leaves), ("backlog", backlog),
                       ("early_stop", early_stop), ("swarm", swarm), ("chat", chat)):
        if not isinstance(flag, bool):
            raise ValueError(f"{name}: expected True or False, not {flag!r}")
    if inject is None:  # the swarm: every call a server posts may fail so; the plain traffic: AcceptEx, as before
        inject = _CALLS if swarm else ("AcceptEx",)
    _check_fault_args(inject, errors)
    for name, limit in (("max_line", max_line), ("recv_size", recv_size), ("max_clients", max_clients),
                        ("max_queued", max_queued), ("idle_timeout_ms", idle_timeout_ms),
                        ("high_water", high_water)):
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"{name}: expected a number of bytes or clients >= 1 (or None), not {limit!r}")
    if features is not None:
        if isinstance(features, str):
            raise ValueError(f"features: expected a sequence of feature names, not the string {features!r}")
        unknown = set(features) - set(_ALL_FEATURES)
        if unknown:
            raise ValueError(f"features: unknown {sorted(unknown)}; known: {', '.join(_ALL_FEATURES)}")
    if not swarm:
        if features is not None:
            raise ValueError("features: they choose among the swarm's features, but swarm=False draws the plain "
                             "traffic")
        return _plain_scenarios(clients_range, lines_range, line, arrivals, gaps, linger, faults, resets, leaves,
                                inject, errors, backlog, early_stop)
    wanted = set(_ALL_FEATURES if features is None else features) - (_OPT_IN if features is None else set())
    if not faults:
        wanted -= {"resets", "stopped_readers", "half_close", "fin_after_burst", "injections", "early_stop",
                   "backlog", "talk_after_leave", "departures", "accept_faults", "reset_after_fin"}
    if not resets:
        wanted -= {"resets", "stopped_readers", "accept_faults", "reset_after_fin"}
    if not leaves:
        wanted -= {"half_close", "fin_after_burst", "talk_after_leave", "departures", "reset_after_fin"}
    if not inject:
        wanted.discard("injections")
    if not backlog:
        wanted.discard("backlog")
    if not early_stop:
        wanted.discard("early_stop")
    if clients_range[1] == 0:
        wanted -= {"crowd"}
    if idle_timeout_ms is None:  # (it needs the server's time-out)
        wanted.discard("idle_clients")
    if max_line is None or max_line > _MAX_BOUNDARY:  # (it needs the server's line limit, and one that is cheap)
        wanted.discard("hangup_edges")
    if not (faults and leaves and early_stop):  # (a FIN, then a stop)
        wanted.discard("deaf_drains")
    # (asked for, and switched off by the other arguments)
    if features is not None and set(features) - wanted:
        raise ValueError(f"features: {sorted(set(features) - wanted)} cannot be drawn with the other arguments "
                         f"given (faults={faults}, resets={resets}, leaves={leaves}, inject={tuple(inject)!r}, "
                         f"backlog={backlog}, early_stop={early_stop}, clients={clients!r}, "
                         f"idle_timeout_ms={idle_timeout_ms}, max_line={max_line})")
    allowed = tuple(n for n in _ALL_FEATURES if n in wanted)
    swarm_ = _Swarm(clients_range, lines_range, None if line is _LINE else line, _strategy(arrivals),
                    _strategy(gaps), _strategy(linger), allowed, inject, errors, max_line, recv_size, max_clients,
                    max_queued, stops=faults and early_stop, idle_timeout_ms=idle_timeout_ms,
                    high_water=high_water, chat=chat)

    @st.composite
    def build(draw: st.DrawFn) -> Scenario:
        return swarm_.draw(draw)

    return build()


def _plain_scenarios(clients: tuple[int, int], lines: tuple[int, int], line: st.SearchStrategy[bytes],
                     arrivals: int | st.SearchStrategy[int], gaps: int | st.SearchStrategy[int],
                     linger: int | st.SearchStrategy[int], faults: bool, resets: bool, leaves: bool,
                     inject: Sequence[str], errors: Sequence[int], backlog: bool, early_stop: bool
                     ) -> st.SearchStrategy[Scenario]:
    """The plain traffic of earlier versions (``scenarios(swarm=False)``)."""
    f = _Faults(resets and faults, leaves and faults, inject, errors, backlog, early_stop)
    script = _client_scripts(lines, line, _strategy(arrivals), _strategy(gaps), _strategy(linger))

    @st.composite
    def client(draw: st.DrawFn) -> tuple[ClientScript, ClientFault | None]:
        s = draw(script)
        return s, f.client(draw, 0, s)

    all_clients = st.lists(client(), min_size=clients[0], max_size=clients[1])

    @st.composite
    def build(draw: st.DrawFn) -> Scenario:
        made = draw(all_clients)
        plan = FaultPlan(tuple(replace(c, client=i) for i, (_, c) in enumerate(made) if c is not None))
        if faults:
            injections, size, stop = f.server(draw)
            plan = replace(plan, injections=injections, backlog=size, stop_at_ns=stop)
        return Scenario(tuple(s for s, _ in made), plan)

    return build()
