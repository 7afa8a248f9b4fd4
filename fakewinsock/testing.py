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
import os
import tempfile
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
        cd = getattr(data, "conjecture_data", None)
        self._fast_int = getattr(cd, "draw_integer", None)
        self._fast_bool = getattr(cd, "draw_boolean", None)
        self._ints: dict[tuple[int, int], st.SearchStrategy[int]] = {}

    def _open(self) -> bool:
        if self._stopped or self.draws >= self.max_draws:
            return False
        self.draws += 1
        return True

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
        except BaseException:
            self._stopped = True  # Hypothesis ends this example: answer without drawing from now on
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
        except BaseException:
            self._stopped = True
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


@dataclass(frozen=True)
class ClientScript:
    """What one simulated client sends, and when (virtual nanoseconds).

    ``lines`` are the messages without their newline; the client's byte stream
    is each line followed by ``b"\\n"``, cut into ``chunks`` (one ``send`` each,
    ``gaps_ns[i]`` after the previous one; the first after the client is ready
    to send).  The client connects at ``arrive_ns`` (retrying with a backoff
    when refused) and, once it has every reply it expects, waits ``linger_ns``
    before it leaves gracefully: FIN, read until the server's FIN, close.
    """

    lines: tuple[bytes, ...]
    chunks: tuple[bytes, ...]
    gaps_ns: tuple[int, ...]
    arrive_ns: int = 0
    linger_ns: int = 0

    def __post_init__(self) -> None:
        if any(b"\n" in line for line in self.lines):
            raise ValueError("ClientScript.lines must not contain newlines")
        if b"".join(self.chunks) != self.stream or any(not c for c in self.chunks):
            raise ValueError("ClientScript.chunks must be non-empty and join to the lines, each ended by a newline")
        if len(self.gaps_ns) != len(self.chunks) or min(self.gaps_ns, default=0) < 0:
            raise ValueError("ClientScript.gaps_ns needs one delay >= 0 per chunk")

    @classmethod
    def of(cls, *lines: bytes, chunk: int = 0, arrive_ns: int = 0, linger_ns: int = 0) -> ClientScript:
        """A script sending ``lines``; ``chunk`` > 0 cuts the stream into sends of that size."""
        stream = b"".join(line + b"\n" for line in lines)
        size = chunk if chunk > 0 else max(1, len(stream))
        chunks = tuple(stream[i:i + size] for i in range(0, len(stream), size))
        return cls(tuple(lines), chunks, (0,) * len(chunks), arrive_ns, linger_ns)

    @property
    def stream(self) -> bytes:
        return b"".join(line + b"\n" for line in self.lines)

    def lines_before(self, chunk: int) -> int:
        """How many complete lines the chunks before ``chunk`` carry."""
        return sum(c.count(b"\n") for c in self.chunks[:chunk])

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
    after sending everything, before all replies are in).  ``kind="leave"``:
    a graceful early leave, FIN instead of sending chunk ``before_chunk``
    (which must follow a whole line: the server sees a receive of 0 bytes),
    then it reads every reply to the lines it sent until the server's FIN.
    ``delay_ns`` is the wait after the previous chunk.
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


@dataclass(frozen=True)
class Scenario:
    """The clients of one run, and the fault plan."""

    clients: tuple[ClientScript, ...]
    faults: FaultPlan = field(default_factory=FaultPlan)

    def __post_init__(self) -> None:
        for f in self.faults.clients:
            if not 0 <= f.client < len(self.clients):
                raise ValueError(f"fault for client {f.client}, but there are {len(self.clients)} clients")
            script = self.clients[f.client]
            if f.kind == "reset" and not 0 <= f.before_chunk <= len(script.chunks):
                raise ValueError(f"reset of client {f.client} before chunk {f.before_chunk}: out of range")
            if f.kind == "leave" and f.before_chunk not in script.line_boundaries():
                raise ValueError(f"client {f.client} can leave only before a chunk that starts a line")

    def size(self) -> dict[str, int]:
        """How big the scenario is: clients, lines, bytes, sends, faults."""
        return {
            "clients": len(self.clients),
            "lines": sum(len(c.lines) for c in self.clients),
            "bytes": sum(len(c.stream) for c in self.clients),
            "sends": sum(len(c.chunks) for c in self.clients),
            "faults": (len(self.faults.clients) + len(self.faults.injections) + (self.faults.backlog is not None)
                       + (self.faults.stop_at_ns is not None)),
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


def _range(value: int | tuple[int, int]) -> tuple[int, int]:
    lo, hi = (value, value) if isinstance(value, int) else value
    if not 0 <= lo <= hi:
        raise ValueError(f"expected a count or a range (lo, hi) with 0 <= lo <= hi, not {value!r}")
    return lo, hi


def _client_scripts(lines: tuple[int, int], line: st.SearchStrategy[bytes], arrivals: st.SearchStrategy[int],
                    gaps: st.SearchStrategy[int], linger: st.SearchStrategy[int]) -> st.SearchStrategy[ClientScript]:
    messages = st.lists(line, min_size=lines[0], max_size=lines[1])

    @st.composite
    def scripts(draw: st.DrawFn) -> ClientScript:
        msgs = tuple(draw(messages))
        stream = b"".join(m + b"\n" for m in msgs)
        chunks: list[bytes] = []
        pos = 0
        for size in draw(_CHUNK_SIZES):  # the first sends' sizes; the last send takes the rest
            if pos + size >= len(stream):
                break
            chunks.append(stream[pos:pos + size])
            pos += size
        if pos < len(stream):
            chunks.append(stream[pos:])
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
    f = _Faults(resets, leaves, inject, errors, backlog, early_stop)

    @st.composite
    def plans(draw: st.DrawFn) -> FaultPlan:
        faults = [c for i, s in enumerate(scripts) if (c := f.client(draw, i, s)) is not None]
        return FaultPlan(tuple(faults), *f.server(draw))

    return plans()


def scenarios(*, clients: int | tuple[int, int] = (1, 3), lines: int | tuple[int, int] = (0, 3),
              line: st.SearchStrategy[bytes] = _LINE,
              arrivals: int | st.SearchStrategy[int] = _TIMES,
              gaps: int | st.SearchStrategy[int] = _TIMES,
              linger: int | st.SearchStrategy[int] = 0,
              faults: bool = True, resets: bool = True, leaves: bool = True,
              inject: Sequence[str] = ("AcceptEx",), errors: Sequence[int] = (WSAENOBUFS,),
              backlog: bool = True, early_stop: bool = True) -> st.SearchStrategy[Scenario]:
    """Scenarios: ``clients`` clients (a number, or a range ``(lo, hi)``), each
    sending ``lines`` lines (number or range) drawn from ``line``, its stream
    cut into up to seven sends, arriving at ``arrivals`` and pausing ``gaps``
    before each send (virtual nanoseconds), staying ``linger`` once served.
    With ``faults``, a fault plan as :func:`fault_plans` draws it (the
    remaining keywords).  Each client's script and fault are drawn together,
    so that Hypothesis shrinks a client away whole: failures shrink towards one
    client, no lines, one send, no delay, no fault."""
    f = _Faults(resets and faults, leaves and faults, inject, errors, backlog, early_stop)
    script = _client_scripts(_range(lines), line, _strategy(arrivals), _strategy(gaps), _strategy(linger))

    @st.composite
    def client(draw: st.DrawFn) -> tuple[ClientScript, ClientFault | None]:
        s = draw(script)
        return s, f.client(draw, 0, s)

    lo, hi = _range(clients)
    all_clients = st.lists(client(), min_size=lo, max_size=hi)

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
    """

    broadcasts: bool

    def greeting(self, name: bytes) -> bytes:
        """What the server sends a new client before anything else (b"" for nothing)."""
        ...

    def reply(self, name: bytes, line: bytes) -> tuple[bytes, bytes]:
        """For a line from ``name``: (what goes back to it, what goes to every other client)."""
        ...


class EchoModel:
    """Each line goes back to its sender, byte for byte."""

    broadcasts = False

    def greeting(self, name: bytes) -> bytes:
        return b""

    def reply(self, name: bytes, line: bytes) -> tuple[bytes, bytes]:
        return line + b"\n", b""


class ChatModel:
    """Each line goes to every other client, prefixed with the sender's name; a
    new client is greeted first.  The formats default to ovserver's
    (``* welcome <name>`` and ``<name>: <line>``)."""

    broadcasts = True

    def __init__(self, welcome: Callable[[bytes], bytes] = lambda name: b"* welcome " + name + b"\n",
                 relay: Callable[[bytes, bytes], bytes] = lambda name, line: name + b": " + line + b"\n") -> None:
        self._welcome = welcome
        self._relay = relay

    def greeting(self, name: bytes) -> bytes:
        return self._welcome(name)

    def reply(self, name: bytes, line: bytes) -> tuple[bytes, bytes]:
        return b"", self._relay(name, line)


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
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def describe(self) -> str:
        """One line: the scenario's size and the schedule."""
        s = self.size
        sched = f"{self.draws} schedule draws" if self.draws is not None else f"seed {self.seed}"
        return (f"{s['clients']} clients, {s['lines']} lines, {s['bytes']} bytes in {s['sends']} sends, "
                f"{s['faults']} faults; {sched}; {self.calls} Winsock calls, "
                f"{self.virtual_ns / 1e9:.6f} s virtual")


class LineServerFailure(AssertionError):
    """:func:`check_line_server` found a bug.  ``report`` says what and how big
    the run was; the message ends with the tail of the fake's trace up to the
    moment the first error was seen."""

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


_WAITING, _CONNECTING, _GREETING, _BARRIER, _SENDING, _SENT, _CLOSING, _DONE = (
    "waiting", "connecting", "greeting", "barrier", "sending", "sent all", "closing", "done")


def _lines(data: bytes, what: str) -> list[bytes]:
    if data and not data.endswith(b"\n"):
        raise ValueError(f"the model's {what} must be whole lines (end with a newline): {data[:60]!r}")
    return [x + b"\n" for x in data.split(b"\n")[:-1]]


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
        self.own_got = 0
        self.heard: dict[int, int] = {}  # other client -> lines of its ``out`` received
        self.sent_lines = 0  # complete lines handed to send
        self.fin = False  # its FIN is sent
        self.leaving = False  # it has everything and lingers before its FIN
        self.dropped = False  # closed by the server, as an injected failure allows
        self.failed = False
        self.greeted = False

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
        for line in self.script.lines:
            back, others = model.reply(self.name, line)
            own += _lines(back, "reply")
            out += _lines(others, "broadcast")
            self.own_count.append(len(own))
            self.out_count.append(len(out))
        self.own, self.out = own, out

    @property
    def stays(self) -> bool:
        return self.fault is None

    def own_due(self) -> int:
        """Own lines that must arrive before the server's FIN."""
        if self.fault is not None and self.fault.kind == "reset":
            return 0
        return self.own_count[self.sent_lines] if self.fault is not None else self.own_count[-1]

    def due_from(self, other: _Client) -> int:
        """Lines of ``other``'s broadcasts this (staying) client must hear."""
        if other.dropped or other.failed or (other.fault is not None and other.fault.kind == "reset"):
            return 0
        if other.fault is not None:  # leaves early: what it sent before its FIN
            return other.out_count[other.script.lines_before(other.fault.before_chunk)]
        return len(other.out)

    def complete(self) -> bool:
        """Everything this staying client waits for has arrived."""
        if self.state != _SENT or self.own_got < self.own_due():
            return False
        if self.run.model.broadcasts:
            for c in self.run.clients:
                if c is not self and self.heard.get(c.index, 0) < self.due_from(c):
                    return False
        return True

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
            self.state = _GREETING
            if not self.own_count[0]:
                self._greeted()
                if self.state == _DONE:
                    return
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
            self._finish()
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
        if self.fin and not reset:
            if self.inbuf:
                self.fail(f"the server's last line is incomplete: {bytes(self.inbuf[:60])!r}")
            else:
                self.fail(f"the server closed after {self.own_got} of {self.own_due()} replies")
            return
        how = "reset" if reset else "closed"
        state = "after its FIN" if self.fin else f"while {self.state}"
        self.fail(f"{how} by the server {state} (got {self.own_got} of {self.own_due()} own lines)")

    def _received(self, data: bytes) -> None:
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
                    self.heard[c.index] = h + 1
                    return
        want = repr(self.own[k][:60]) if k < len(self.own) else "no more own lines"
        if not self.greeted and self.own_count[0]:
            self.fail(f"first line {line[:60]!r}: expected the greeting {want}")
            return
        self.fail(f"unexpected line {line[:60]!r} (own line {k} expected: {want}"
                  + (", or the next line of another client)" if self.run.model.broadcasts else ")"))

    def _greeted(self) -> None:
        self.greeted = True
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
        self.sent_lines += chunk.count(b"\n")
        self._schedule(j + 1)

    def _sent_all(self) -> None:
        self.state = _SENT
        self._progress()

    def _progress(self) -> None:
        if self.state == _SENT and self.stays and not self.leaving and self.complete():
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
        self.peer.shutdown()


class _Run:
    def __init__(self, ws: FakeWinsock, scenario: Scenario, model: LineModel, address: tuple[str, int],
                 deadline_ns: int, report: LineServerReport) -> None:
        self.ws = ws
        self.scenario = scenario
        self.model = model
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
        draws = max_draws if max_draws is not None else 200 + 30 * (size["clients"] + size["lines"] + size["sends"])
        chooser = HypothesisChooser(data, max_draws=draws, record=final is not False)
    base = config if config is not None else FakeConfig(immediate=0.5, split=0.3, partial_recv=0.3,
                                                        background=0.2)
    if scenario.faults.backlog is not None:
        base = replace(base, backlog=scenario.faults.backlog)
    tracing = trace_tail > 0 and final is not False
    if base.max_calls is None:
        # A correct server needs a few calls per receive (at worst one byte each), send and
        # client; a spinning one exceeds any such budget (BusyLoopError).
        base = replace(base, max_calls=1_000 + 40 * size["bytes"]
                       + 100 * (size["lines"] + size["clients"] + size["sends"]))
    # The whole trace is kept (a run is bounded by max_calls): a failure writes it to a file.
    ws = FakeWinsock(seed=seed, config=replace(base, trace_limit=None if tracing else 1), chooser=chooser)
    ws.trace.enabled = tracing
    report = LineServerReport(size, seed=None if chooser is not None else seed)
    run = _Run(ws, scenario, model, address, int(client_deadline_s * _S), report)
    run.trace_tail = trace_tail
    _track(ws, report)

    handle = server(ws, address)
    stop_requested = False

    def stop(_: object = None) -> None:
        nonlocal stop_requested
        if not stop_requested:
            stop_requested = run.stopping = True
            handle.stop()

    def idle_over(calls_before: int) -> None:
        made = ws.stats["calls"] - calls_before
        if max_idle_calls is not None and made > max_idle_calls:
            run.error(f"busy polling: the server made {made} Winsock calls in {idle_s:g} s of idle time "
                      f"(every client done; at most {max_idle_calls} allowed)")
        for c in run.clients:
            held = _held_socket(c.peer)
            if held is not None:
                handle, how = held
                run.error(f"{c.label} is gone (it {how}), but "
                          f"{idle_s:g} s later the server still holds its socket {handle:#x}: a client's exit "
                          "(0 bytes, or a failed receive) must close the connection")
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
        spun = _first_busy_loop(e)
        report.errors.insert(0, f"busy loop: {spun}" if spun is not None else
                             f"the server raised {type(e).__name__}: {e}")
        raise _failure(ws, chooser, report, trace_tail, run.trace_at_error) from e
    else:
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
        from .pytest_plugin import track_fake

        track_fake(ws, lambda: report.describe())
