"""Every choice of the fake from Hypothesis: :class:`HypothesisChooser`, and
:func:`fake_configs`, strategies of the fake's simulation policies.

Owns the chooser that answers the fake's questions with Hypothesis draws (and
records them for a failure's report).  Uses the fake's public choice interface
(:class:`fakewinsock._sim.Chooser`, :class:`~fakewinsock.FakeConfig`) and
Hypothesis; nothing else of the package.
"""

from __future__ import annotations

import inspect
import random
from dataclasses import replace
from typing import Any

from hypothesis import strategies as st
from hypothesis.errors import FlakyStrategyDefinition

from .._preempt import SyncPreemption
from .._sim import Chooser, FakeConfig

__all__ = ["HypothesisChooser", "fake_configs"]

#: The public-API fallback of a weighted yes/no draw: an integer of [0, _PARTS).
_PARTS = 1_000_000
_PART = st.integers(0, _PARTS - 1)


# ====================================================================== choices


class HypothesisChooser(Chooser):
    """A :class:`~fakewinsock.Chooser` whose answers are Hypothesis draws.

    Probabilities in the fake's config decide *whether* a question is asked
    with a non-trivial answer (p=0 and p=1 never draw) and, as with a seeded
    chooser, how often a yes/no question is answered yes when Hypothesis
    generates: ``FakeConfig(split=0.3)`` splits 3 sends in 10, a fault
    injected with ``enobufs=0.01`` comes 1 post in 100 (they used to be
    50/50 whatever ``p``).  Every yes/no draw shrinks to no (no split, no
    fault, the operation pends), the simplest answer.  Latencies
    are drawn from three landmarks of their range so that shrinking stays fast.

    ``draws`` counts the draws made (the size of the schedule); with
    ``record=True``, ``schedule`` lists them as ``(question, answer)``.  After
    ``max_draws`` draws, or once Hypothesis has stopped the example (it ran out
    of data), every question gets the simplest answer without drawing: that
    bounds the size of an example and lets the program under test unwind.
    With ``tail=True``, the questions after ``max_draws`` draws are answered
    instead by a pseudo-random generator whose seed is one more draw (the
    *tail seed*; 0, where it shrinks to, gives the simplest answers): a long
    run keeps varying its schedule to its end (thread switches, immediate or
    pending completions, splits), as a seeded run does, while the example
    stays bounded (one draw for the rest of the run).

    Draws go straight to Hypothesis's choice sequence when its internal API
    allows (several times faster than ``data.draw``, which the fallback uses).
    """

    def __init__(self, data: Any, max_draws: int = 1_000, record: bool = False, tail: bool = False,
                 preempt: bool = False) -> None:
        self._data = data
        #: With ``preempt=True``: thread switches follow :class:`~fakewinsock._preempt.SyncPreemption`
        #: (preemption at synchronization calls, drawn on or off per example); None: the plain draws.
        self.preemption: SyncPreemption | None = SyncPreemption() if preempt else None
        self.draws = 0
        self.max_draws = max_draws
        self._tail = tail  # after max_draws: draw the tail seed (then _rng answers; None: the simplest)
        self._rng: random.Random | None = None
        #: The tail seed drawn (None: not drawn; 0: the simplest answers).
        self.tail_seed: int | None = None
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
            if self._tail and not self._stopped and self.tail_seed is None:
                self._draw_tail_seed()
            return False
        self.draws += 1
        return True

    def _draw_tail_seed(self) -> None:
        seed = self._draw_int(0, 2**32 - 1, "tail seed")
        self.tail_seed = seed
        self._rng = random.Random(seed) if seed else None

    def _stop(self, e: BaseException) -> None:
        self._stopped = True
        if self.stopped_by is None:
            self.stopped_by = e

    def _record(self, label: str, value: int) -> None:
        if self.schedule is not None:
            self.schedule.append((label, value))

    def integer(self, lo: int, hi: int, label: str) -> int:
        if not self._open():
            return lo if self._rng is None or self._stopped else lo + int(self._rng.random() * (hi - lo + 1))
        return self._draw_int(lo, hi, label)

    def _draw_int(self, lo: int, hi: int, label: str) -> int:
        """One integer of [lo, hi] from Hypothesis (shrinking to ``lo``), recorded."""
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
            self._explain(e, label, f"integer of [{lo}, {hi}]")
            raise
        self._record(label, value)
        return value

    def _explain(self, e: BaseException, label: str, kind: str) -> None:
        """Hypothesis found this draw inconsistent with an earlier run of the same
        draws (FlakyStrategyDefinition): say where, and what usually causes it."""
        if isinstance(e, FlakyStrategyDefinition) and getattr(e, DIVERGENCE_ATTR, None) is None:
            call, calls = _winsock_call(inspect.currentframe())  # (this frame and the testing ones are skipped)
            where = f"the fake's draw {self.draws} (question {label!r}, {kind}"
            where += f", in {call}, Winsock call {calls})" if call is not None else ")"
            setattr(e, DIVERGENCE_ATTR, where)
            add_flaky_hint(e)

    def boolean(self, p: float, label: str) -> bool:
        if p <= 0.0:
            return False
        if p >= 1.0:
            return True
        if not self._open():
            return False if self._rng is None or self._stopped else self._rng.random() < p
        try:
            if self._fast_bool is not None:
                try:
                    value = bool(self._fast_bool(p))
                except TypeError:
                    self._fast_bool = None
            if self._fast_bool is None:  # True for the top p of [0, _PARTS): 0, where it shrinks to, is False
                value = int(self._data.draw(_PART, label=label)) >= _PARTS - int(p * _PARTS)
        except BaseException as e:
            self._stop(e)
            self._explain(e, label, f"yes/no with p={p:g}")
            raise
        self._record(label, int(value))
        return value

    def thread(self, n: int, after: str, call: str, running: int) -> int:
        if self.preemption is None:
            return self.index(n, "thread")
        return self.preemption.choose(self, n, after, call, running)

    def span(self, lo_hi: tuple[int, int], label: str) -> int:
        lo, hi = lo_hi
        if lo == hi:
            return lo
        # Three landmarks are enough to reorder events; draws stay cheap to shrink.
        # (pick_one's draw of one of the three, without its two calls on the way)
        return (lo, (lo + hi) // 2, hi)[self.integer(0, 2, label)]

    def describe_schedule(self, limit: int = 200) -> str:
        """The recorded schedule as ``question=answer`` words (empty if not recorded)."""
        if not self.schedule:
            return ""
        words = [f"{label}={value}" for label, value in self.schedule[:limit]]
        more = len(self.schedule) - limit
        return " ".join(words) + (f" ... ({more} more)" if more > 0 else "")


#: The attribute of a FlakyStrategyDefinition that says at which of the fake's draws it was raised.
DIVERGENCE_ATTR = "_fakewinsock_divergence"
#: How the hint that :func:`add_flaky_hint` adds begins (it is added once).
FLAKY_HINT_START = "fakewinsock: the program under test did not make the same Winsock calls"


def _winsock_call(frame: Any) -> tuple[str | None, int]:
    """The Winsock call of the fake that a draw is made in (the outermost frame of
    the fake's code around ``frame``, a public method of the fake), and how many
    calls the fake had counted; (None, 0) if the draw was made outside a call."""
    call: str | None = None
    calls = 0
    inside = False
    f = frame
    while f is not None:
        module = f.f_globals.get("__name__", "")
        if module.startswith("fakewinsock.") and not module.startswith("fakewinsock.testing"):
            inside = True
            stats = getattr(f.f_locals.get("self"), "stats", None)
            name = f.f_code.co_name
            if not name.startswith("_") and isinstance(stats, dict) and "calls" in stats:
                call, calls = name, int(stats["calls"])
        elif inside:
            break  # left the fake: the last public method seen is the call the program made
        f = f.f_back
    return call, calls


def flaky_hint(where: str | None = None) -> str:
    """The hint added to Hypothesis's FlakyStrategyDefinition raised in a test of
    the fake: ``where`` is the draw at which it was found, if known."""
    found = (f"Hypothesis found it at {where}, which asked another question than an earlier run with the same "
             "answers did (the difference began there or before).\n" if where else "")
    return (f"{FLAKY_HINT_START} for the same draws.  Every choice of the fake (which thread runs, whether an "
            "operation completes at once, how a send is split, ...) is a Hypothesis draw, and Hypothesis replays "
            "an example (to shrink it, or to report it) by giving the same answers again: the program must then "
            "make the same Winsock calls, in the same order.\n" + found +
            "Something besides the draws steers the program; the usual causes:\n"
            "  - iterating a set of objects (or a dict keyed by objects that hash by identity): the order follows "
            "their memory addresses, which change from run to run (keep them in a dict or a list: insertion "
            "order);\n"
            "  - id(), hash() or the default repr of objects in a decision;\n"
            "  - the wall clock (time.time, time.monotonic, datetime.now) instead of the fake's "
            "GetTickCount64, or random numbers not from the fake;\n"
            "  - real threads, timers or sleeps outside the fake;\n"
            "  - state carried across examples: a module-level counter or cache, a class attribute, a server "
            "object or fake reused by the next example.\n"
            "See the README, \"Testing your own server\", 6. Troubleshooting.")


def add_flaky_hint(e: BaseException) -> None:
    """Add :func:`flaky_hint` as a note to ``e`` (once), with where it was found
    if ``e`` or an exception it was raised during knows it."""
    notes = getattr(e, "__notes__", None)
    if isinstance(notes, list) and any(str(n).startswith(FLAKY_HINT_START) for n in notes):
        return
    where = None
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen and where is None:
        seen.add(id(cur))
        where = getattr(cur, DIVERGENCE_ATTR, None)
        cur = cur.__cause__ or cur.__context__
    note = flaky_hint(where)
    if isinstance(notes, list):
        notes.append(note)
    else:
        setattr(e, "__notes__", [note])  # noqa: B010 (BaseException.add_note, also on Python 3.10)


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
