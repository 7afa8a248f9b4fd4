"""Testing toolkit: Hypothesis strategies and a model checker for line-based servers.

Three pieces, usable on their own:

* **Every choice from Hypothesis.**  ``HypothesisChooser(data)`` answers each
  question the fake asks (complete at once or pend, which ready operation
  completes next, where a segment is split, how many bytes a receive takes,
  latencies, faults) with a draw from Hypothesis's ``data`` object.  A failing
  test then shrinks to a minimal schedule: Hypothesis shrinks towards the low
  end, and the fake's "simplest" answer to every question is the low end
  (pend, oldest first, no split, take everything, no latency, no fault).  The
  example database replays the exact schedule.

* **Strategies.**  :func:`fake_configs` (simulation policies),
  :func:`scenarios` (clients: the lines each sends, how the stream is cut into
  sends, when; plus a fault plan) and :func:`fault_plans` (which clients reset
  or leave early and at which point, WSAENOBUFS injected into AcceptEx, WSARecv
  or WSASend at a moment, a tiny listen backlog so connections are refused and
  retried).

* **A model checker.**  :func:`check_line_server` runs *your* server on a fake
  with the scripted clients of a :class:`Scenario` and checks every byte each
  client receives against a :class:`LineModel` (:class:`EchoModel`,
  :class:`ChatModel`, or your own), and more: no client is closed or reset
  unasked, every client is served in time, the server does not spin (a Winsock
  call budget, and an idle period in which it must stay quiet), it stops on
  request and leaks nothing.  Any failure raises :class:`LineServerFailure`
  with a report (size of the scenario, the schedule's seed or number of
  Hypothesis draws) and the tail of the fake's trace.

The server is yours: anything with ``serve()`` (run until stopped) and
``stop()`` (called by a simulated actor, from inside the fake's scheduler: set
a flag and ``ws.signal_event(your_wake_event)``; no Winsock calls), built by a
factory from the fake and the address to listen on::

    from hypothesis import given, strategies as st
    from fakewinsock.testing import EchoModel, check_line_server, scenarios

    @given(scenario=scenarios(), data=st.data())
    def test_echo(scenario, data):
        check_line_server(lambda ws, address: MyServer(ws, address), scenario, EchoModel(), data=data)

Speed: a run takes a millisecond or so, and the schedule's draws bypass
``data.draw`` (several times cheaper).  Hypothesis's *explain* phase, though,
re-runs a failing example under a line tracer that follows the whole fake,
which costs seconds per failure; leave it out in fake-driven tests::

    @settings(phases=[p for p in Phase if p is not Phase.explain])

Hypothesis is a test dependency; importing this module without it fails with
a clear ImportError.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

try:
    from hypothesis import strategies as st
except ImportError as e:  # pragma: no cover
    raise ImportError("fakewinsock.testing needs Hypothesis: pip install hypothesis") from e

from ._constants import WSAENOBUFS
from ._errors import BusyLoopError
from ._fake import FakeWinsock
from ._fake import _Socket as _FakeSocket
from ._sim import Chooser, FakeConfig

if TYPE_CHECKING:
    from ._peer import FakePeer

__all__ = [
    "HypothesisChooser",
    "fake_configs",
    "ClientScript",
    "ClientFault",
    "Injection",
    "FaultPlan",
    "FEATURES",
    "Scenario",
    "scenarios",
    "fault_plans",
    "LineModel",
    "EchoModel",
    "ChatModel",
    "ServerUnderTest",
    "check_line_server",
    "LineServerReport",
    "LineServerFailure",
]

T = TypeVar("T")
_US = 1_000
_MS = 1_000_000
_S = 1_000_000_000
#: After the last client is done, the server may finish what is in flight for this long.
_SETTLE_NS = 100 * _MS
#: The most schedule choices drawn from Hypothesis by default (big scenarios get the simplest answers beyond).
_MAX_DEFAULT_DRAWS = 2_000


# ====================================================================== choices


class HypothesisChooser(Chooser):
    """A :class:`~fakewinsock.Chooser` whose answers are Hypothesis draws.

    Probabilities in the fake's config still decide *whether* a question is
    asked with a non-trivial answer (p=0 and p=1 never draw); with
    ``FakeConfig(immediate=0.5, ...)`` every open choice is drawn.  Latencies
    are drawn from three landmarks of their range so that shrinking stays fast.

    ``draws`` counts the draws made (the size of the schedule); with
    ``record=True``, ``schedule`` lists them as ``(question, answer)``.  After
    ``max_draws`` draws, or once Hypothesis has stopped the example (it ran out
    of data), every question gets the simplest answer without drawing: that
    bounds the size of an example and lets the program under test unwind.

    Draws go straight to Hypothesis's choice sequence when its internal API
    allows (several times faster than ``data.draw``, which the fallback uses).
    """

    def __init__(self, data: Any, max_draws: int = 1_000, record: bool = False) -> None:
        self._data = data
        self.draws = 0
        self.max_draws = max_draws
        self.schedule: list[tuple[str, int]] | None = [] if record else None
        self._stopped = False
        #: What Hypothesis raised to end the example (it ran out of data), if it did: a server that
        #: catches it (and then fails otherwise, e.g. a leak at WSACleanup) has not failed.
        self.stopped_by: BaseException | None = None
        cd = getattr(data, "conjecture_data", None)
        self._fast_int = getattr(cd, "draw_integer", None)
        self._fast_bool = getattr(cd, "draw_boolean", None)
        self._ints: dict[tuple[int, int], st.SearchStrategy[int]] = {}

    def _open(self) -> bool:
        if self._stopped or self.draws >= self.max_draws:
            return False
        self.draws += 1
        return True

    def _stop(self, e: BaseException) -> None:
        self._stopped = True
        if self.stopped_by is None:
            self.stopped_by = e

    def _record(self, label: str, value: int) -> None:
        if self.schedule is not None:
            self.schedule.append((label, value))

    def integer(self, lo: int, hi: int, label: str) -> int:
        if not self._open():
            return lo
        try:
            if self._fast_int is not None:
                try:
                    value = int(self._fast_int(min_value=lo, max_value=hi, shrink_towards=lo))
                except TypeError:  # another Hypothesis version: use the public API from now on
                    self._fast_int = None
            if self._fast_int is None:
                s = self._ints.get((lo, hi))
                if s is None:
                    s = self._ints[(lo, hi)] = st.integers(lo, hi)
                value = int(self._data.draw(s, label=label))
        except BaseException as e:
            self._stop(e)  # Hypothesis ends this example: answer without drawing from now on
            raise
        self._record(label, value)
        return value

    def boolean(self, p: float, label: str) -> bool:
        if p <= 0.0:
            return False
        if p >= 1.0:
            return True
        if not self._open():
            return False
        try:
            if self._fast_bool is not None:
                try:
                    value = bool(self._fast_bool())
                except TypeError:
                    self._fast_bool = None
            if self._fast_bool is None:
                value = bool(self._data.draw(st.booleans(), label=label))
        except BaseException as e:
            self._stop(e)
            raise
        self._record(label, int(value))
        return value

    def span(self, lo_hi: tuple[int, int], label: str) -> int:
        lo, hi = lo_hi
        if lo == hi:
            return lo
        # Three landmarks are enough to reorder events; draws stay cheap to shrink.
        return self.pick_one((lo, (lo + hi) // 2, hi), label)

    def describe_schedule(self, limit: int = 200) -> str:
        """The recorded schedule as ``question=answer`` words (empty if not recorded)."""
        if not self.schedule:
            return ""
        words = [f"{label}={value}" for label, value in self.schedule[:limit]]
        more = len(self.schedule) - limit
        return " ".join(words) + (f" ... ({more} more)" if more > 0 else "")


def fake_configs(**overrides: Any) -> st.SearchStrategy[FakeConfig]:
    """Fake configurations that vary what matters for scheduling bugs:
    immediate vs pending, splitting, partial receives, background progress,
    latency and completion-delay ranges.  Keyword arguments fix fields.

    Each field shrinks towards its simplest value (every operation pends, no
    split, no partial receive, no background progress, no latency)."""
    return st.builds(
        FakeConfig,
        immediate=st.sampled_from([0.0, 0.5, 1.0]),
        split=st.sampled_from([0.0, 0.3, 0.9]),
        partial_recv=st.sampled_from([0.0, 0.3, 0.9]),
        background=st.sampled_from([0.0, 0.2]),
        latency=st.sampled_from([(0, 0), (20_000, 200_000), (0, 2_000_000)]),
        completion_delay=st.sampled_from([(0, 0), (0, 50_000), (0, 1_000_000)]),
    ).map(lambda c: replace(c, **overrides) if overrides else c)


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
    fill the window and then pend.
    """

    lines: tuple[bytes, ...]
    chunks: tuple[bytes, ...]
    gaps_ns: tuple[int, ...]
    arrive_ns: int = 0
    linger_ns: int = 0
    tail: bytes = b""
    pause_at_ns: int | None = None
    pause_ns: int | None = None

    def __post_init__(self) -> None:
        if any(b"\n" in line for line in self.lines) or b"\n" in self.tail:
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

    @classmethod
    def of(cls, *lines: bytes, chunk: int = 0, arrive_ns: int = 0, linger_ns: int = 0, tail: bytes = b"",
           pause_at_ns: int | None = None, pause_ns: int | None = None) -> ClientScript:
        """A script sending ``lines`` (then ``tail``, a last line without its
        newline); ``chunk`` > 0 cuts the stream into sends of that size."""
        stream = b"".join(line + b"\n" for line in lines) + tail
        size = chunk if chunk > 0 else max(1, len(stream))
        chunks = tuple(stream[i:i + size] for i in range(0, len(stream), size))
        return cls(tuple(lines), chunks, (0,) * len(chunks), arrive_ns, linger_ns, tail, pause_at_ns, pause_ns)

    @property
    def stream(self) -> bytes:
        return b"".join(line + b"\n" for line in self.lines) + self.tail

    def __repr__(self) -> str:
        """The dataclass's repr (it rebuilds the script), or, for a big script, a
        short one that a person can read: long lines cut, sends as their sizes."""
        names = ("lines", "chunks", "gaps_ns", "arrive_ns", "linger_ns", "tail", "pause_at_ns", "pause_ns")
        full = f"ClientScript({', '.join(f'{n}={getattr(self, n)!r}' for n in names)})"
        if len(full) <= 600:
            return full
        lines = [_short(x) for x in self.lines]
        parts = [f"lines=({_listed(lines)}{',' if len(lines) == 1 else ''})",
                 f"chunks=<{len(self.chunks)} sends of {_listed([len(c) for c in self.chunks])} bytes>",
                 f"gaps_ns=({_listed(list(self.gaps_ns))})"]
        defaults: dict[str, object] = {"arrive_ns": 0, "linger_ns": 0, "tail": b"", "pause_at_ns": None,
                                       "pause_ns": None}
        for name, default in defaults.items():
            value = getattr(self, name)
            if value != default:
                parts.append(f"{name}={_short(value) if isinstance(value, bytes) else repr(value)}")
        return f"ClientScript({', '.join(parts)})"

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
    """

    client: int
    kind: Literal["reset", "leave"]
    before_chunk: int
    delay_ns: int = 0


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
    reap every operation its closesocket calls cancelled and leak nothing)."""

    clients: tuple[ClientFault, ...] = ()
    injections: tuple[Injection, ...] = ()
    backlog: int | None = None
    stop_at_ns: int | None = None

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
    "sizes": ("empty_lines", "tiny_lines", "long_lines", "big_sends", "small_sends"),
    "flow": ("small_window", "paused_readers", "stopped_readers"),
    "endings": ("half_close", "fin_after_burst", "resets", "unterminated", "talk_after_leave"),
    "load": ("crowd", "spread_arrivals"),
    "faults": ("injections", "early_stop", "backlog"),
}
_ALL_FEATURES = tuple(f for group in FEATURES.values() for f in group)


@dataclass(frozen=True)
class Scenario:
    """The clients of one run, and the fault plan.  ``window`` (bytes), if
    set, is the fake's flow-control window for this run (both directions of
    every connection); ``features`` names the swarm features that made a
    difference to the scenario (for reports: a feature switched on that left
    no trace in it is not named)."""

    clients: tuple[ClientScript, ...]
    faults: FaultPlan = field(default_factory=FaultPlan)
    window: int | None = None
    features: tuple[str, ...] = ()

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
        for i, script in enumerate(self.clients):
            fault = self.faults.fault_of(i)
            if script.stops_reading and (fault is None or fault.kind != "reset"):
                raise ValueError(f"client {i} stops reading for good, so it must end with a reset fault")
        if self.window is not None and self.window < 1:
            raise ValueError(f"Scenario.window must be at least 1 byte, not {self.window}")
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
            isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value))):
        raise ValueError(f"{name}: expected a count or a range (lo, hi), not {value!r}")
    lo, hi = (value, value) if isinstance(value, int) else value
    if not 0 <= lo <= hi:
        raise ValueError(f"{name}: expected a count or a range (lo, hi) with 0 <= lo <= hi, not {value!r}")
    return lo, hi


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
        chunks = _cut(b"".join(m + b"\n" for m in msgs), draw(_CHUNK_SIZES))
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
_LONG_GAPS = (20 * _MS, 60 * _MS)
_SPREAD_ONLY = (15 * _MS, 50 * _MS)
_SPREAD = st.sampled_from([0, 300 * _US, 3 * _MS, *_SPREAD_ONLY])
_SWARM_INJECTION_TIMES = st.sampled_from([0, 50 * _US, 200 * _US, 1 * _MS, 2 * _MS, 10 * _MS, 40 * _MS])
_SWARM_STOPS = st.sampled_from([300 * _US, 3 * _MS, 1 * _MS, 30 * _MS])
_WINDOWS = (1, 3, 16, 100, 1000, 4096, 16384)
_SEGMENTS = 400
_PAUSE_AT = st.sampled_from([0, 100 * _US, 2 * _MS])
_PAUSED = st.one_of(st.none(), st.tuples(_PAUSE_AT, st.sampled_from([1 * _MS, 20 * _MS, 150 * _MS])))
_STOPPED = st.one_of(st.none(), _PAUSE_AT)
_LEAVE_LATER = st.sampled_from([0, 3 * _MS, 10 * _MS])
#: How long a client that stopped reading stays before its reset: up to "for good" as far as a server
#: that is asked to stop is concerned.
_STOPPED_FOR = st.sampled_from([0, 1 * _MS, 20 * _MS, 3 * _S])
_TINY = st.sampled_from([b"a", b"\x00", b"\r", b"\xff", b" "])
#: The big sends of a scenario add up to at most this ("hundreds of KiB"): one example stays well under a
#: second, and what a client that stopped reading is owed stays under a 1 MiB output limit (ovserver's).
_MAX_BIG = 320 * 1024


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


def _pattern(size: int, salt: int) -> bytes:
    """``size`` bytes without a newline that show where they are: every 16
    bytes start with their offset, so two such lines that differ show where."""
    if size <= 0:
        return b""
    unit = 16
    out = b"".join(b"%c%07x........" % (65 + (salt + i) % 26, i * unit) for i in range(size // unit + 1))
    return out[:size]


def _bulk(size: int, line_len: int, salt: int) -> list[bytes]:
    """Lines (without newlines) whose stream is exactly ``size`` bytes."""
    lines: list[bytes] = []
    left = size
    while left > 0:
        n = min(line_len, left - 1)
        lines.append(b"%d:" % len(lines) + _pattern(max(0, n - len(b"%d:" % len(lines))), salt))
        if len(lines[-1]) + 1 > left:
            lines[-1] = lines[-1][:left - 1]
        left -= len(lines[-1]) + 1
    return lines


class _Swarm:
    """Draws one swarm scenario: the features first, then clients within them."""

    def __init__(self, clients: tuple[int, int], lines: tuple[int, int], line: st.SearchStrategy[bytes] | None,
                 arrivals: st.SearchStrategy[int], gaps: st.SearchStrategy[int], linger: st.SearchStrategy[int],
                 allowed: tuple[str, ...], inject: Sequence[str], errors: Sequence[int], max_line: int | None,
                 recv_size: int | None, max_clients: int | None) -> None:
        self.clients, self.lines, self.line = clients, lines, line
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
        big = {s + d for s in sizes for d in (-1, 0, 1)} | {3 * sizes[-1] + 7}
        self.big = sorted(b for b in big if 0 < b <= _MAX_BIG) + [_MAX_BIG]
        self.big_left = _MAX_BIG
        self.bulk = st.one_of(st.none(), st.tuples(_one_of(self.big), _one_of((15, 99, 1000))))

    def features(self, draw: st.DrawFn) -> frozenset[str]:
        """The features switched on (each a draw that shrinks to off)."""
        on = []
        for name in self.allowed:
            rare = name == "big_sends" or (name == "crowd" and self.max_clients is not None)
            if draw(_ints(0, _RARE - 1 if rare else 1)) == (_RARE - 1 if rare else 1):
                on.append(name)
        return frozenset(on)

    @functools.lru_cache(maxsize=64)  # noqa: B019 (a handful of feature sets per strategy)
    def _lines_of(self, kinds: tuple[str, ...]) -> tuple[st.SearchStrategy[list[tuple[str, bytes]]],
                                                          st.SearchStrategy[tuple[str, bytes]]]:
        """The lines of one client, and its unterminated tail (b"": none), with
        these kinds of lines; each with the feature that made it ("" for none)."""
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
        return (st.lists(one, min_size=self.lines[0], max_size=self.lines[1]),
                st.one_of(st.just(("", b"")), one.map(lambda t: (t[0], t[1] or b"t"))))

    def script(self, draw: st.DrawFn, f: frozenset[str], index: int) -> tuple[ClientScript, ClientFault | None]:
        kinds: tuple[str, ...] = ()
        used = self.used
        if self.line is None:  # the line strategy is ours: sizes may vary it
            kinds = tuple(k for k in ("empty_lines", "tiny_lines", "long_lines") if k in f)
        lines, tails = self._lines_of(kinds)
        drawn = draw(lines)
        used.update(k for k, _ in drawn if k)
        msgs = [m for _, m in drawn]
        stream = b"".join(m + b"\n" for m in msgs)
        # How the stream is cut into sends.
        modes = ["cuts"] + (["bytes"] if "small_sends" in f else []) + (["one"] if "fin_after_burst" in f else [])
        mode = draw(_one_of(modes)) if len(modes) > 1 else "cuts"
        chunks: list[bytes] = []
        if mode != "cuts" and stream:
            used.add("small_sends" if mode == "bytes" else "fin_after_burst")
        if mode == "bytes":  # many small sends in quick succession
            size = draw(_ints(1, 3))
            cut = min(len(stream), 120 * size)
            chunks = [stream[i:i + size] for i in range(0, cut, size)] + ([stream[cut:]] if cut < len(stream) else [])
        elif mode == "one" or not stream:
            chunks = [stream] if stream else []
        else:
            chunks = _cut(stream, draw(_CHUNK_SIZES))
        if "big_sends" in f and self.big_left > 0:  # one send of many lines, around the receive buffer's size
            big = draw(self.bulk)
            if big is not None:
                used.add("big_sends")
                size = min(big[0], self.big_left)
                self.big_left -= size
                bulk = _bulk(size, big[1], index)
                msgs += bulk
                chunks.append(b"".join(b + b"\n" for b in bulk))
        tail = b""
        if "unterminated" in f:
            kind, tail = draw(tails)
            if tail:
                used.update(("unterminated", kind) if kind else ("unterminated",))
                chunks.append(tail)
        quick = mode == "bytes"
        gap_choices = self.long_gaps if "talk_after_leave" in f or "spread_arrivals" in f else self.gaps
        gaps_ns = tuple(0 if quick and i else draw(gap_choices) for i in range(len(chunks)))
        if any(g in _LONG_GAPS for g in gaps_ns):
            used.add("talk_after_leave" if "talk_after_leave" in f else "spread_arrivals")
        if "crowd" in f:
            arrive = 0
        elif "spread_arrivals" in f:
            arrive = draw(self.spread)
            if arrive in _SPREAD_ONLY:
                used.add("spread_arrivals")
        else:
            arrive = draw(self.arrivals)
        pause_at: int | None = None
        pause: int | None = None
        stops = False
        if "stopped_readers" in f:
            pause_at = draw(_STOPPED)
            stops = pause_at is not None
            if stops:
                used.add("stopped_readers")
        if not stops and "paused_readers" in f:
            pause_at, pause = draw(_PAUSED) or (None, None)
            if pause_at is not None:
                used.add("paused_readers")
        script = ClientScript(tuple(msgs), tuple(chunks), gaps_ns, arrive, draw(self.linger), tail, pause_at, pause)
        if stops:  # it must end: a reset after sending everything
            return script, ClientFault(index, "reset", len(chunks), draw(_STOPPED_FOR))
        fault = self._fault(draw, f, index, script)
        if fault is not None and fault.kind == "leave" and pause_at is None and {"half_close", "talk_after_leave"} & f:
            # It leaves with replies still queued: it has not been reading for a while.
            paused = draw(_PAUSED)
            if paused is not None:
                script = replace(script, pause_at_ns=paused[0], pause_ns=paused[1])
        return script, fault

    def _fault(self, draw: st.DrawFn, f: frozenset[str], index: int, script: ClientScript) -> ClientFault | None:
        kinds = ["stay"] + (["reset", "abort"] if "resets" in f else []) + (
            ["leave"] if {"half_close", "fin_after_burst", "talk_after_leave"} & f else [])
        kind = draw(_one_of(kinds)) if len(kinds) > 1 else "stay"
        delays = _TIMES
        if kind in ("reset", "abort"):
            self.used.add("resets")
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

    def draw(self, draw: st.DrawFn) -> Scenario:
        f = self.features(draw)
        self.used = set()
        self.big_left = _MAX_BIG  # for all the big sends of the scenario
        lo, hi = self.clients
        if "crowd" in f:  # as many as allowed (more than the server serves at once, if that is known)
            top = min(max(hi, self.max_clients + 3), 100) if self.max_clients is not None else hi
            count = top - draw(_ints(0, top - lo))
            if count > 1:
                self.used.add("crowd")
        else:
            count = draw(_ints(lo, hi))
        made = [self.script(draw, f, i) for i in range(count)]
        faults = tuple(c for _, c in made if c is not None)
        injections: tuple[Injection, ...] = ()
        if "injections" in f and self.inject:
            injections = tuple(draw(self.injections))
        backlog = draw(_ints(1, 3)) if "backlog" in f or "crowd" in f else None
        stop = draw(_SWARM_STOPS) if "early_stop" in f else None
        window = None
        if "small_window" in f:
            # A window of w bytes costs a segment per w bytes: keep it to a few hundred per client (what a
            # chat client gets is about what every client sends).
            traffic = sum(len(s.stream) for s, _ in made) * max(1, len(made) - 1) if made else 0
            window = draw(_one_of([w for w in _WINDOWS if w * _SEGMENTS >= traffic] or [_WINDOWS[-1]]))
        used = self.used | {name for name, value in (("injections", injections), ("early_stop", stop),
                                                     ("small_window", window)) if value}
        if backlog is not None:
            used.add("backlog" if "backlog" in f else "crowd")
        return Scenario(tuple(s for s, _ in made), FaultPlan(faults, injections, backlog, stop), window,
                        tuple(n for n in _ALL_FEATURES if n in used))


def scenarios(*, clients: int | tuple[int, int] = (1, 3), lines: int | tuple[int, int] = (0, 3),
              line: st.SearchStrategy[bytes] = _LINE,
              arrivals: int | st.SearchStrategy[int] = _TIMES,
              gaps: int | st.SearchStrategy[int] = _TIMES,
              linger: int | st.SearchStrategy[int] = 0,
              faults: bool = True, resets: bool = True, leaves: bool = True,
              inject: Sequence[str] = ("AcceptEx",), errors: Sequence[int] = (WSAENOBUFS,),
              backlog: bool = True, early_stop: bool = True, swarm: bool = True,
              features: Sequence[str] | None = None, max_line: int | None = None, recv_size: int | None = None,
              max_clients: int | None = None) -> st.SearchStrategy[Scenario]:
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
      under, at and over ``max_line``, the server's line limit, when given),
      ``big_sends`` (one send of many lines, from just under the server's
      receive buffer ``recv_size`` up to 320 KiB; switched on rarely, as it
      costs time; these lines come on top of ``lines``), ``small_sends``
      (sends of 1 to 3 bytes in quick succession);
    * flow: ``small_window`` (a flow-control window of 1 byte to 4 KiB),
      ``paused_readers`` (a client stops reading for a while),
      ``stopped_readers`` (a client stops reading for good, keeps sending, then
      resets);
    * endings: ``half_close`` (FIN while replies are queued or in flight),
      ``fin_after_burst`` (the whole stream in one send, then FIN at once),
      ``resets`` (at any chunk, or as soon as connected), ``unterminated`` (a
      last line without its newline, then FIN), ``talk_after_leave`` (long
      pauses between sends, so that others keep talking after a client left);
    * load: ``crowd`` (every client at once, as many as the range allows, or
      ``max_clients`` + 3 when that is given, and a listen backlog of 1 to 3),
      ``spread_arrivals`` (arrivals up to 50 ms apart, also during a stop);
    * faults: ``injections`` (1 to 3 injections of ``errors`` into the calls in
      ``inject``, at any moment), ``early_stop``, ``backlog``.

    Every feature switch is a Hypothesis draw that shrinks to "off", and each
    client's script and fault are drawn together: failures shrink towards the
    fewest features, one client, no lines, one send, no delay, no fault.
    Arguments out of range raise ValueError here, naming the argument."""
    lines_range = _range(lines, "lines")
    clients_range = _range(clients, "clients")
    for name, value in (("arrivals", arrivals), ("gaps", gaps), ("linger", linger)):
        if not isinstance(value, st.SearchStrategy) and (isinstance(value, bool) or not isinstance(value, int)
                                                         or value < 0):
            raise ValueError(f"{name}: expected nanoseconds >= 0 or a strategy, not {value!r}")
    if not isinstance(line, st.SearchStrategy):
        raise ValueError(f"line: expected a strategy of bytes, not {line!r}")
    _check_fault_args(inject, errors)
    for name, limit in (("max_line", max_line), ("recv_size", recv_size), ("max_clients", max_clients)):
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"{name}: expected a number of bytes or clients >= 1 (or None), not {limit!r}")
    if features is not None:
        unknown = set(features) - set(_ALL_FEATURES)
        if isinstance(features, str) or unknown:
            raise ValueError(f"features: unknown {sorted(unknown) if unknown else features!r}; "
                             f"known: {', '.join(_ALL_FEATURES)}")
    if not swarm:
        return _plain_scenarios(clients_range, lines_range, line, arrivals, gaps, linger, faults, resets, leaves,
                                inject, errors, backlog, early_stop)
    wanted = set(_ALL_FEATURES if features is None else features)
    if not faults:
        wanted -= {"resets", "stopped_readers", "half_close", "fin_after_burst", "injections", "early_stop",
                   "backlog", "talk_after_leave"}
    if not resets:
        wanted -= {"resets", "stopped_readers"}
    if not leaves:
        wanted -= {"half_close", "fin_after_burst", "talk_after_leave"}
    if not inject:
        wanted.discard("injections")
    if not backlog:
        wanted.discard("backlog")
    if not early_stop:
        wanted.discard("early_stop")
    if clients_range[1] == 0:
        wanted -= {"crowd"}
    allowed = tuple(n for n in _ALL_FEATURES if n in wanted)
    swarm_ = _Swarm(clients_range, lines_range, None if line is _LINE else line, _strategy(arrivals),
                    _strategy(gaps), _strategy(linger), allowed, inject, errors, max_line, recv_size, max_clients)

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


# ====================================================================== models


class LineModel(Protocol):
    """What a correct line server sends.  ``name`` is a client's address as the
    server sees it, ``b"host:port"``; ``line`` is a message without its newline.

    :meth:`reply` is called for each client's lines in order, so a model may
    keep per-client state.  Replies are whole lines (each ends with a newline),
    several or none.  A model that ``broadcasts`` (sends to the other clients)
    needs a greeting, so that a client knows when it has joined: every client
    then waits until all have been greeted before it sends anything, which
    makes the expected output exact.  Lines from different senders must differ
    (name the sender in them), so that the checker can tell them apart.

    Limits and policies (optional attributes; a model without them has no
    limits and drops an unterminated last line, see :class:`EchoModel`):

    * ``max_line``: a line longer than this many bytes (without its newline)
      makes the server send ``too_long(name)``, stop treating the client's
      input as messages and close the connection gracefully (FIN) once that
      line is out; nothing of the line is routed.
    * ``max_queued``: the server may cut a client off (reset it) once more than
      this many bytes owed to it have not reached it.
    * ``partial_at_eof``: what becomes of a last line without its newline when
      the client ends its input: ``"drop"`` (it was never a message) or
      ``"line"`` (it is handled as a line).
    """

    broadcasts: bool

    def greeting(self, name: bytes) -> bytes:
        """What the server sends a new client before anything else (b"" for nothing)."""
        ...

    def reply(self, name: bytes, line: bytes) -> tuple[bytes, bytes]:
        """For a line from ``name``: (what goes back to it, what goes to every other client)."""
        ...


PartialPolicy = Literal["drop", "line"]


def _too_long_line(max_line: int) -> bytes:
    """ovserver's error line for a line over the limit."""
    return b"* error: line longer than %d bytes\n" % max_line


class _Limited:
    """The limits and policies a model shares with the checker (see :class:`LineModel`)."""

    def __init__(self, max_line: int | None, max_queued: int | None, partial_at_eof: PartialPolicy,
                 too_long: Callable[[bytes], bytes] | bytes | None) -> None:
        for name, value in (("max_line", max_line), ("max_queued", max_queued)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}: expected a number of bytes >= 1 (or None for no limit), not {value!r}")
        if partial_at_eof not in ("drop", "line"):
            raise ValueError(f"partial_at_eof: expected 'drop' or 'line', not {partial_at_eof!r}")
        self.max_line = max_line
        self.max_queued = max_queued
        self.partial_at_eof: PartialPolicy = partial_at_eof
        if too_long is None:
            error = _too_long_line(max_line) if max_line is not None else b""
            self._too_long: Callable[[bytes], bytes] = lambda name: error
        elif isinstance(too_long, bytes):
            self._too_long = lambda name: too_long
        else:
            self._too_long = too_long

    def too_long(self, name: bytes) -> bytes:
        """What a client whose line is over ``max_line`` gets last (ovserver's error line by default)."""
        return self._too_long(name)


class EchoModel(_Limited):
    """Each line goes back to its sender, byte for byte.

    The limits default to none; to model ovserver, pass its
    :class:`~ovserver.Limits`: ``EchoModel(max_line=limits.max_line,
    max_queued=limits.max_queued)`` (its error line is the default
    ``too_long``; it drops an unterminated last line)."""

    broadcasts = False

    def __init__(self, *, max_line: int | None = None, max_queued: int | None = None,
                 partial_at_eof: PartialPolicy = "drop", too_long: Callable[[bytes], bytes] | bytes | None = None
                 ) -> None:
        super().__init__(max_line, max_queued, partial_at_eof, too_long)

    def greeting(self, name: bytes) -> bytes:
        return b""

    def reply(self, name: bytes, line: bytes) -> tuple[bytes, bytes]:
        return line + b"\n", b""


class ChatModel(_Limited):
    """Each line goes to every other client, prefixed with the sender's name; a
    new client is greeted first.  The formats default to ovserver's
    (``* welcome <name>`` and ``<name>: <line>``); limits as :class:`EchoModel`."""

    broadcasts = True

    def __init__(self, welcome: Callable[[bytes], bytes] = lambda name: b"* welcome " + name + b"\n",
                 relay: Callable[[bytes, bytes], bytes] = lambda name, line: name + b": " + line + b"\n", *,
                 max_line: int | None = None, max_queued: int | None = None, partial_at_eof: PartialPolicy = "drop",
                 too_long: Callable[[bytes], bytes] | bytes | None = None) -> None:
        super().__init__(max_line, max_queued, partial_at_eof, too_long)
        self._welcome = welcome
        self._relay = relay

    def greeting(self, name: bytes) -> bytes:
        return self._welcome(name)

    def reply(self, name: bytes, line: bytes) -> tuple[bytes, bytes]:
        return b"", self._relay(name, line)


class _Policy:
    """A model's limits and policies, with the defaults of a model that names none."""

    def __init__(self, model: LineModel) -> None:
        self.max_line: int | None = getattr(model, "max_line", None)
        self.max_queued: int | None = getattr(model, "max_queued", None)
        self.partial_at_eof: str = getattr(model, "partial_at_eof", "drop")
        too_long = getattr(model, "too_long", None)
        self.too_long: Callable[[bytes], bytes] = too_long if callable(too_long) else (
            lambda name: _too_long_line(self.max_line or 0) if self.max_line is not None else b"")


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


#: Builds your server for one run: ``factory(ws, (host, port))``.
ServerFactory = Callable[[FakeWinsock, tuple[str, int]], ServerUnderTest]


# ====================================================================== the checker


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

    def __init__(self, report: LineServerReport, trace_tail: str = "", schedule: str = "") -> None:
        self.report = report
        lines = [report.errors[0] if report.errors else "failed", f"run: {report.describe()}"]
        if schedule:
            lines.append(f"schedule drawn from Hypothesis: {schedule}")
        if len(report.errors) > 1:
            lines.append(f"{len(report.errors) - 1} more:")
            lines += [f"  {e}" for e in report.errors[1:12]]
        if trace_tail:
            lines += ["last trace records:", trace_tail.rstrip("\n")]
        super().__init__("\n".join(lines))


_WAITING, _CONNECTING, _GREETING, _BARRIER, _SENDING, _SENT, _CLOSING, _DONE = (
    "waiting", "connecting", "greeting", "barrier", "sending", "sent all", "closing", "done")
#: After a client's FIN, how long the server has to see its end before lines
#: routed to it count as sent after its end (far more than any latency or
#: completion delay of the fake's configurations, as long as the server keeps
#: a receive posted on every connection).
_END_GRACE_NS = 20 * _MS


def _lines(data: bytes, what: str) -> list[bytes]:
    if data and not data.endswith(b"\n"):
        raise ValueError(f"the model's {what} must be whole lines (end with a newline): {data[:60]!r}")
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


class _Client:
    """One scripted client of a run."""

    def __init__(self, run: _Run, index: int, script: ClientScript, fault: ClientFault | None) -> None:
        self.run = run
        self.index = index
        self.script = script
        self.fault = fault
        self.state = _WAITING
        self.peer: FakePeer | None = None
        self.attempts = 0
        self.name = b""
        self.inbuf = bytearray()
        self.own: list[bytes] = []  # greeting and replies to each of its lines, as lines
        self.own_count: list[int] = []  # own[:own_count[k]] answers the greeting and the first k lines
        self.out: list[bytes] = []  # what its lines make the server send to every other client
        self.out_count: list[int] = []
        self.out_line: list[int] = []  # out[h] is routed for line out_line[h]
        self.own_got = 0
        self.heard: dict[int, int] = {}  # other client -> lines of its ``out`` received
        self.sent_lines = 0  # complete lines handed to send
        self.sent_bytes = 0
        self.line_sent_ns: list[int] = []  # when each complete line was handed to send
        self.received = 0  # bytes read
        self.greeted_ns = 0
        self.end_seen_ns: int | None = None  # the server has had its FIN (and every byte before) for a while
        self.fin = False  # its FIN is sent
        self.leaving = False  # it has everything and lingers before its FIN
        self.dropped = False  # closed by the server, as an injected failure or a limit allows
        self.failed = False
        self.greeted = False
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
        own = _lines(model.greeting(self.name), "greeting")
        self.own_count = [len(own)]
        out: list[bytes] = []
        self.out_count = [0]
        units = list(self.script.lines)
        if self.tail_is_line:
            units.append(self.script.tail)
        for i, line in enumerate(units):
            if self.cut is None or i < self.cut:
                back, others = model.reply(self.name, line)
                own += _lines(back, "reply")
                routed = _lines(others, "broadcast")
                out += routed
                self.out_line += [i] * len(routed)
            self.own_count.append(len(own))
            self.out_count.append(len(out))
        if self.cut is not None:
            own += _lines(self.run.policy.too_long(self.name), "error line for a line over max_line")
        self.own, self.out = own, out

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
        if (self.fault is not None and self.fault.kind == "reset") or not self.own_count:
            return 0
        if self.cut_reached():
            return len(self.own)
        tail_sent = self.fin and self.sent_bytes == len(self.script.stream)
        return self.own_count[self._units(self.sent_lines, tail_sent)]

    def due_from(self, other: _Client) -> int:
        """Lines of ``other``'s broadcasts this (staying) client must hear."""
        if other.dropped or other.failed or (other.fault is not None and other.fault.kind == "reset"):
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

    def owed_unread(self) -> int:
        """Bytes owed to this client (for what every client has sent so far) that it has not read."""
        own = sum(len(x) for x in self.own[:self.own_count[self._units(self.sent_lines, self.fin)]])
        if self.cut_reached():
            own = sum(len(x) for x in self.own)
        others = sum(len(x) for c in self.run.clients if c is not self and c.out and c.out_count
                     for x in c.out[:c.out_count[c._units(c.sent_lines, c.fin)]])
        return own + others - self.received

    # ------------------------------------------------------------ life

    def arrive(self, _: object = None) -> None:
        self.run.ws.call_at(self.run.ws.now_ns + self.run.deadline_ns, self._deadline)
        self._connect()

    def _connect(self, _: object = None) -> None:
        if self.state == _DONE:
            return
        self.attempts += 1
        self.state = _CONNECTING
        peer = self.peer = self.run.ws.peer()
        peer.on_change = self._changed
        peer.connect_nowait(*self.run.address)

    def _deadline(self, _: object) -> None:
        if self.state == _DONE or self.run.stopping:
            return
        what = {_CONNECTING: "still not connected", _GREETING: "never greeted (accepted?)",
                _BARRIER: "waiting for the others to be greeted", _SENDING: "still sending",
                _SENT: "still waiting for replies", _CLOSING: "still waiting for the server's FIN"}.get(
            self.state, self.state)
        missing = f"{self.own_got} of {self.own_due()} own lines"
        if self.run.model.broadcasts:
            missing += ", " + ", ".join(f"{self.heard.get(c.index, 0)} of {self.due_from(c)} from client {c.index}"
                                        for c in self.run.clients if c is not self)
        if self.peer is not None and self.peer.unsent:
            missing += f"; {self.peer.unsent} bytes it sent wait for the server to read"
        self.fail(f"not served in {self.run.deadline_ns / 1e9:g} s: {what} (received {missing})")

    def fail(self, why: str) -> None:
        if self.state == _DONE:
            return
        self.failed = True
        self.run.error(f"{self.label}: {why}")
        peer = self.peer
        if peer is not None and peer.connected and not peer.was_reset:
            peer.reset()
        self._finish()

    def _finish(self) -> None:
        self.state = _DONE
        self.run.client_done()
        if not self.failed and self.peer is not None and self.peer.connected:
            ws = self.run.ws
            ws.call_at(ws.now_ns + self.run.idle_ns, self.run.check_released, self)

    def _reading(self) -> bool:
        s = self.script
        if s.pause_at_ns is None:
            return True
        if not self.greeted:
            return True
        t = self.run.ws.now_ns - self.greeted_ns
        return t < s.pause_at_ns or (s.pause_ns is not None and t >= s.pause_at_ns + s.pause_ns)

    def _changed(self, peer: FakePeer) -> None:
        if peer is not self.peer or self.state == _DONE:
            return
        run = self.run
        if self.state == _CONNECTING:
            if peer.refused:
                if run.stopping:  # the server is stopping: no more connections
                    self._finish()
                    return
                run.report.refusals += 1
                if self.attempts >= 40:
                    self.fail(f"connection refused {self.attempts} times")
                    return
                self.state = _WAITING
                run.ws.call_at(run.ws.now_ns + _MS * 2 ** min(self.attempts, 6), self._connect)
                return
            if not peer.connected:
                return
            host, port = peer.address
            self.name = f"{host}:{port}".encode()
            self._expect()
            if self.fault is not None and self.fault.kind == "reset" and self.fault.before_chunk < 0:
                peer.reset()  # at once: the server may still be accepting it
                run.report.resets += 1
                self._finish()
                run.recheck()
                return
            self.state = _GREETING
            if not self.own_count[0]:
                self._greeted()
                if self.state == _DONE:
                    return
        if self._reading():
            data = peer.recv_nowait(1 << 30)
            if data:
                self._received(data)
                if self.state == _DONE:
                    return
        if peer.was_reset or peer.at_eof:
            self._server_closed(peer.was_reset)

    def _server_closed(self, reset: bool) -> None:
        run = self.run
        if self.fin and not reset and not self.inbuf and self.own_got >= self.own_due():
            assert self.peer is not None
            self.peer.close()  # the normal end: the server's FIN after every reply
            if self.cut_reached():
                run.report.cut_off += 1  # (after the error line for a line over the limit)
            self._finish()
            return
        if self.cut_reached() and (
                (not reset and self.own_got >= len(self.own) and not self.inbuf)
                or (reset and self.sent_bytes - self.cut_byte > (run.policy.max_line or 0))):
            # Hung up for a line over the limit, as the model says: FIN after the error
            # line, or a reset once it sent more than max_line bytes after it (the reset
            # may discard the error line if the client had not read it yet).
            run.report.cut_off += 1
            self.dropped = True
            assert self.peer is not None
            if not reset:
                self.peer.close()
            self._finish()
            run.recheck()
            return
        max_queued = run.policy.max_queued
        if reset and max_queued is not None and self.owed_unread() > max_queued:
            run.report.cut_off += 1  # too much owed and not read: the model allows a cut-off
            self.dropped = True
            self._finish()
            run.recheck()
            return
        if run.stopping:  # asked to stop, the server closes every connection
            self._finish()
            return
        if run.drops_left > 0:  # an injected WSARecv/WSASend failure allows the server this
            run.drops_left -= 1
            run.report.dropped += 1
            self.dropped = True
            self._finish()
            run.recheck()
            return
        nxt = self.own[self.own_got] if self.own_got < len(self.own) else None
        wanted = f"; the next expected line is {_clip(nxt, 0, 60)}" if nxt is not None else ""
        if self.fin and not reset:
            if self.inbuf:
                self.fail(f"the server's last line is incomplete: {_clip(bytes(self.inbuf), 0, 60)}"
                          + (f" ({_difference(nxt, bytes(self.inbuf))})" if nxt is not None else ""))
            else:
                self.fail(f"the server closed after {self.own_got} of {self.own_due()} replies{wanted}")
            return
        how = "reset" if reset else "closed"
        state = "after its FIN" if self.fin else f"while {self.state}"
        self.fail(f"{how} by the server {state} (got {self.own_got} of {self.own_due()} own lines{wanted})")

    def _received(self, data: bytes) -> None:
        self.received += len(data)
        buf = self.inbuf
        buf += data
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            line = bytes(buf[start:nl + 1])
            start = nl + 1
            self._line(line)
            if self.state == _DONE:
                return
        del buf[:start]
        self._progress()

    def _line(self, line: bytes) -> None:
        self.run.report.replies += 1
        k = self.own_got
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
                      f"{sent / 1e9:.6f} s, after the server had this client's end (its FIN, read by "
                      f"{seen / 1e9:.6f} s): a client that has left must not get lines sent after that")

    def _greeted(self) -> None:
        self.greeted = True
        ws, s = self.run.ws, self.script
        self.greeted_ns = ws.now_ns  # a read pause counts from here
        if s.pause_at_ns is not None and s.pause_ns is not None and self.peer is not None:
            peer = self.peer
            ws.call_at(self.greeted_ns + s.pause_at_ns + s.pause_ns, lambda _: self._changed(peer))
        self.state = _BARRIER
        self.run.barrier()

    def start_sending(self) -> None:
        self.state = _SENDING
        self._schedule(0)

    def _schedule(self, j: int) -> None:
        f = self.fault
        if f is not None and j == f.before_chunk:
            delay = f.delay_ns
        elif j < len(self.script.chunks):
            delay = self.script.gaps_ns[j]
        else:
            self._sent_all()
            return
        ws = self.run.ws
        ws.call_at(ws.now_ns + delay, self._send, j)

    def _send(self, j: int) -> None:
        peer = self.peer
        if self.state != _SENDING or peer is None:
            return
        f = self.fault
        if f is not None and j == f.before_chunk:
            if f.kind == "reset":
                if self.script.stops_reading and not peer.was_reset:  # what it never read, checked now
                    data = peer.recv_nowait(1 << 30)
                    if data:
                        self._received(data)
                        if self.state == _DONE:
                            return
                if not peer.was_reset:
                    peer.reset()
                self.run.report.resets += 1
                self._finish()
                self.run.recheck()
            else:
                self.run.report.leaves += 1
                self._sent_all()
                self._close()
            return
        if peer.was_reset or peer.at_eof:
            return  # reported by _changed
        chunk = self.script.chunks[j]
        peer.send_nowait(chunk)
        self.sent_bytes += len(chunk)
        lines = chunk.count(b"\n")
        if lines:
            self.sent_lines += lines
            self.line_sent_ns += [self.run.ws.now_ns] * lines
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
        if (self.stays or self.cut_reached()) and self.complete():
            self.leaving = True
            ws = self.run.ws
            if self.script.linger_ns:
                ws.call_at(ws.now_ns + self.script.linger_ns, lambda _: self._close())
            else:
                self._close()

    def _close(self) -> None:
        """FIN (behind every byte sent), then read until the server's FIN."""
        if self.fin or self.state == _DONE or self.peer is None:
            return
        self.leaving = self.fin = True
        self.state = _CLOSING
        if self.tail_is_line and self.sent_bytes == len(self.script.stream):
            self.line_sent_ns.append(self.run.ws.now_ns)  # the tail is a line once the FIN ends it
        self.peer.shutdown()
        if self.run.model.broadcasts:
            self.run.ws.call_at(self.run.ws.now_ns + _END_GRACE_NS, self._end_seen, 0)

    def _end_seen(self, tries: int) -> None:
        """Its FIN reached the server a while ago, and the server has read
        every byte before it: from now on, no line sent by another client may
        reach it."""
        if self.state == _DONE or self.peer is None or self.peer._ep is None:
            return
        server_end = self.peer._ep.other
        if server_end is not None and server_end.eof and not server_end.rbuf:
            self.end_seen_ns = self.run.ws.now_ns
        elif tries < 20:
            self.run.ws.call_at(self.run.ws.now_ns + _END_GRACE_NS, self._end_seen, tries + 1)


class _Run:
    def __init__(self, ws: FakeWinsock, scenario: Scenario, model: LineModel, address: tuple[str, int],
                 deadline_ns: int, report: LineServerReport, idle_ns: int = _S) -> None:
        self.ws = ws
        self.scenario = scenario
        self.model = model
        self.policy = _Policy(model)
        self.idle_ns = idle_ns
        self.held_reported: set[int] = set()
        self.address = address
        self.deadline_ns = deadline_ns
        self.report = report
        self.drops_left = scenario.faults.allowed_drops
        self.clients = [_Client(self, i, s, scenario.faults.fault_of(i)) for i, s in enumerate(scenario.clients)]
        self.done = 0
        self.trace_tail = 0
        self.trace_at_error = ""  # the trace's tail when the first error was seen
        self.stopping = False  # the server was asked to stop
        self.released = False
        self.all_done: Callable[[], None] = lambda: None

    def error(self, msg: str) -> None:
        if not self.report.errors and self.ws.trace.enabled and self.trace_tail:
            self.trace_at_error = self.ws.trace.to_text(self.ws.trace.tail(self.trace_tail))
        self.report.errors.append(msg)

    def check_released(self, c: _Client) -> None:
        """``idle_ns`` after client ``c`` ended: the server must have closed its socket."""
        if self.stopping or c.index in self.held_reported:
            return
        held = _held_socket(c.peer)
        if held is not None:
            self.held_reported.add(c.index)
            handle, how = held
            self.error(f"{c.label} is gone (it {how}), but {self.idle_ns / 1e9:g} s later the server still holds "
                       f"its socket {handle:#x}: a client's exit (0 bytes, or a failed receive) must close the "
                       "connection")

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


def check_line_server(server: ServerFactory, scenario: Scenario, model: LineModel | None = None, *,
                      data: Any = None, seed: int = 0, config: FakeConfig | None = None,
                      address: tuple[str, int] = ("127.0.0.1", 7000), client_deadline_s: float = 30.0,
                      idle_s: float = 1.0, max_idle_calls: int | None = 100, max_draws: int | None = None,
                      trace_tail: int = 40) -> LineServerReport:
    """Run ``server(ws, address)`` on a fake with ``scenario``'s clients and
    check it against ``model`` (default :class:`EchoModel`).

    The fake's choices come from Hypothesis when ``data`` (from
    ``st.data()``) is given, so failures shrink to a minimal schedule;
    otherwise from ``seed``.  ``config`` is its policy (default: every choice
    open, with splits, partial receives and background progress).  At most
    ``max_draws`` choices are drawn (default: 200, plus 30 per client, line and
    send); the rest of the run gets the simplest answers.  Unless ``config``
    sets ``max_calls``, the Winsock-call budget is 1000, plus 40 per byte and
    100 per client, line and send (far more than a correct server needs).

    Each client checks every line it receives, as it arrives: its own replies
    exactly and in order (a prefix if it resets), each other client's
    broadcasts in order (exactly, between clients that stay).  A run fails
    when a line is wrong, missing, duplicated or unexpected; when the server
    closes or resets a client unasked (beyond what injected WSARecv/WSASend
    failures allow); when a client is not served within
    ``client_deadline_s`` of virtual time; when the server spins (far more
    Winsock calls than the work needs, or more than ``max_idle_calls`` during
    ``idle_s`` of idle time, 0.1 s after every client is done); when it still
    holds the socket of a client that is gone (reset or closed) after that
    idle time; when it raises
    (misuse the fake detects, a deadlock, a leak at WSACleanup); when it does
    not return from ``serve()`` on ``stop()``, or leaves anything open.
    Raises :class:`LineServerFailure`; returns the report when all is well.
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
        chooser = HypothesisChooser(data, max_draws=draws, record=final is not False)
    base = config if config is not None else FakeConfig(immediate=0.5, split=0.3, partial_recv=0.3,
                                                        background=0.2)
    if scenario.faults.backlog is not None:
        base = replace(base, backlog=scenario.faults.backlog)
    if scenario.window is not None:
        base = replace(base, window=scenario.window)
    tracing = trace_tail > 0 and final is not False
    if base.max_calls is None:
        # A correct server needs a few calls per receive (at worst one byte each), send and
        # client; a spinning one exceeds any such budget (BusyLoopError).
        base = replace(base, max_calls=1_000 + 40 * size["bytes"]
                       + 100 * (size["lines"] + size["clients"] + size["sends"]))
    ws = FakeWinsock(seed=seed, config=replace(base, trace_limit=max(trace_tail, 1)), chooser=chooser)
    ws.trace.enabled = tracing
    report = LineServerReport(size, seed=None if chooser is not None else seed, features=scenario.features)
    run = _Run(ws, scenario, model, address, int(client_deadline_s * _S), report, int(idle_s * _S))
    run.trace_tail = trace_tail
    _track(ws, report)

    handle = server(ws, address)
    stop_requested = False

    def stop(_: object = None) -> None:
        nonlocal stop_requested
        if not stop_requested:
            stop_requested = run.stopping = True
            ws.call_at(ws.now_ns + int(idle_s * _S), stop_late, ws.now_ns)
            handle.stop()

    def stop_late(asked_ns: int) -> None:  # runs only while serve() still waits
        pending = ws.pending_operations()
        run.error(f"the server did not stop within {idle_s:g} s of the stop request (at "
                  f"{asked_ns / 1e9:.6f} s): serve() still waits"
                  + (f", with {len(pending)} operations in flight: {'; '.join(pending[:4])}" if pending else "")
                  + ". A stop must close every connection (closesocket cancels what is in flight), not wait "
                  "for clients")

    def idle_over(calls_before: int) -> None:
        made = ws.stats["calls"] - calls_before
        if max_idle_calls is not None and made > max_idle_calls:
            run.error(f"busy polling: the server made {made} Winsock calls in {idle_s:g} s of idle time "
                      f"(every client done; at most {max_idle_calls} allowed)")
        for c in run.clients:
            run.check_released(c)
        stop()

    def idle_start(_: object) -> None:
        ws.call_at(ws.now_ns + int(idle_s * _S), idle_over, ws.stats["calls"])

    def all_done() -> None:
        if stop_requested:
            return
        if report.errors:
            stop()  # no point in waiting: stop now
        else:  # let the server finish what is in flight, then it must stay quiet
            ws.call_at(ws.now_ns + _SETTLE_NS, idle_start)

    run.all_done = all_done
    for c in run.clients:
        ws.call_at(c.script.arrive_ns, c.arrive)
    if scenario.faults.stop_at_ns is not None:
        ws.call_at(scenario.faults.stop_at_ns, stop)
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
    finally:
        report.calls = ws.stats["calls"]
        report.virtual_ns = ws.now_ns
        report.draws = chooser.draws if chooser is not None else None
    if report.errors:
        raise _failure(ws, chooser, report, trace_tail, run.trace_at_error)
    return report


def _held_socket(peer: FakePeer | None) -> tuple[int, str] | None:
    """The handle of the server's socket for ``peer``'s connection, and how the
    peer went ("reset" or "closed"), if the server has accepted it and still
    has it open though the peer is gone."""
    if peer is None:
        return None
    ep = peer._ep
    if ep is None or not ep.closed or ep.other is None:
        return None  # never connected, or the client has not closed nor reset
    owner = ep.other.owner
    if isinstance(owner, _FakeSocket) and owner.state == "connected":
        return owner.handle, "reset" if ep.reset else "closed"
    return None  # closed by the server, or never accepted (a listener's backlog)


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
    return LineServerFailure(report, tail, schedule)


# ====================================================================== pytest integration


def _track(ws: FakeWinsock, report: LineServerReport) -> None:
    """Let the pytest plugin (if it runs this test) show this fake in a failure report."""
    with contextlib.suppress(ImportError):
        from .pytest_plugin import track_fake

        track_fake(ws, lambda: report.describe())
