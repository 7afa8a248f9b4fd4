"""Simulation controls of the fake: its configuration and its one source of choices.

Every decision the fake kernel makes (complete at once or pend, which ready
operation completes next, where a stream is split, how many bytes a receive
takes, latencies, injected faults) is asked of a :class:`Chooser`.  The
chooser reduces each question to one primitive, an integer in ``[lo, hi]``, so
that the same fake can be driven by a seeded RNG (:class:`RandomChooser`) or by
Hypothesis (``fakewinsock.testing``), whose shrinking then minimises whole
schedules.  The "simplest" answer to each question is ``lo``: pend rather than
complete at once, complete the oldest ready operation first, do not split, take
every available byte, no extra latency, no fault.

:class:`FakeConfig` holds the policy: probabilities (or forced answers) per
call kind, latency ranges and sizes.  The kernel combines the two: it asks the
chooser only when the policy leaves a choice open.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

__all__ = ["FakeConfig", "Chooser", "RandomChooser"]

#: A probability in [0, 1]; per call kind when a mapping (missing kinds use
#: the ``"*"`` entry, or 0.5).
Probability: TypeAlias = float | Mapping[str, float]

#: The call kinds that post overlapped operations.
OP_KINDS = ("AcceptEx", "WSARecv", "WSASend")


@dataclass(frozen=True)
class FakeConfig:
    """How the simulated kernel and network behave.  All times are nanoseconds
    of virtual time.

    immediate:
        Probability that an operation whose result is already available when
        it is posted completes at once (returns 0/TRUE) rather than pending.
        1.0 forces immediate completion, 0.0 forces pending; a mapping sets it
        per call kind (``{"AcceptEx": 0.0, "*": 1.0}``).
    completion_delay:
        Range of the delay between an operation becoming satisfiable and it
        being ready to complete; drawn per operation, so pending operations
        complete out of order.
    latency:
        Range of the one-way network latency of a segment (and of a connection
        handshake), drawn per segment.  Order within a connection is kept.
    split:
        Probability that a sent segment is split on the wire at a random byte,
        so a receive may see only its first part.
    partial_recv:
        Probability that a receive takes fewer bytes than are available (and
        fit in its buffer).
    background:
        Probability, at each Winsock call, that one pending completion or
        network event happens "behind the program's back" before the call runs.
    enobufs:
        Probability that posting an operation fails at once with WSAENOBUFS.
    window:
        Bytes one direction of a connection holds before a sender must wait
        (receive window plus send buffer).  A reader that never reads makes the
        writer's WSASend pend once this is full.
    backlog:
        Connections a listener queues before refusing more (what SOMAXCONN
        means here).
    syscall_cost:
        Virtual time each Winsock call takes.
    keep_up:
        The world keeps up with a slow program: at each Winsock call, before
        it runs, everything due by then happens (the ready operations, in an
        order the chooser picks, and every timer due: segments arriving, the
        peers' doings).  False (the default): only ``background``'s one step
        at most, so that a program whose calls cost much virtual time
        (``syscall_cost``) still sees the network advance a step per call;
        True makes a program slower than its network, as a loaded server is.
    check_buffers:
        Snapshot the buffers of an operation that pends and raise
        WinsockUsageError if the program modified them while it was in
        flight.  Snapshots are copies while those held stay under 32 MiB in
        all, CRC-32s beyond (slower, but no memory per operation); a whole
        bytearray ending in zeros is copied only up to that zero tail.
    trace_limit:
        Keep only the last this many trace records (None keeps all).
    strict_cleanup:
        The final WSACleanup raises LeakError when sockets, events or
        operations are still alive (False: it closes them, as Windows does).
    max_calls:
        Raise BusyLoopError after this many Winsock calls (None: no limit).  A
        program that spins on a satisfied wait never blocks, so the fake cannot
        call it a deadlock; a budget turns the endless loop into an error.
    close_keeps_sends:
        False (Windows): closesocket completes every pending operation of the
        socket; a pending WSASend ends with STATUS_CONNECTION_ABORTED.  True:
        Wine 8.0's behaviour, seen there with a peer that does not read: a
        pending WSASend outlives closesocket (graceful or abortive) and keeps
        the connection open; its bytes go on flowing as the peer reads, and
        only when it completes (all sent, or the peer resets) is the close
        carried out (FIN, or RST for linger {1,0} or unread data); and a close
        with a receive or a send pending sends a FIN, where Windows resets
        (see ``Sockets.close_endpoint``).  The handle
        is gone, so the program cannot cancel it any more: a program that must
        not hang on such a peer cancels its sends (CancelIoEx) before closing.
    check_invariants:
        Check the fake's own invariants (``FakeWinsock.invariants()``) after
        every Winsock call that returns, raising InternalError if one is
        broken.  Slow; for tests of the fake (the pytest ini option
        ``winsock_check_invariants = true`` turns it on for every fake).  It
        never changes a schedule.
    """

    immediate: Probability = 0.5
    completion_delay: tuple[int, int] = (0, 50_000)
    latency: tuple[int, int] = (20_000, 200_000)
    split: float = 0.2
    partial_recv: float = 0.1
    background: float = 0.05
    enobufs: float = 0.0
    window: int = 128 * 1024
    backlog: int = 200
    syscall_cost: int = 1_000
    keep_up: bool = False
    check_buffers: bool = True
    trace_limit: int | None = None
    strict_cleanup: bool = True
    max_calls: int | None = None
    close_keeps_sends: bool = False
    check_invariants: bool = False

    def __post_init__(self) -> None:
        for name in ("split", "partial_recv", "background", "enobufs"):
            _check_probability(name, getattr(self, name))
        if isinstance(self.immediate, Mapping):
            for kind, p in self.immediate.items():
                if kind != "*" and kind not in OP_KINDS:
                    raise ValueError(f"FakeConfig.immediate: unknown call kind {kind!r}")
                _check_probability(f"immediate[{kind!r}]", p)
        else:
            _check_probability("immediate", self.immediate)
        for name in ("completion_delay", "latency"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"FakeConfig.{name} must be a range 0 <= lo <= hi, not {(lo, hi)}")
        if self.window < 1 or self.backlog < 1 or self.syscall_cost < 0:
            raise ValueError("FakeConfig.window and backlog must be >= 1, syscall_cost >= 0")

    def immediate_for(self, kind: str) -> float:
        """The immediate-completion probability for one call kind."""
        if isinstance(self.immediate, Mapping):
            return float(self.immediate.get(kind, self.immediate.get("*", 0.5)))
        return float(self.immediate)


def _check_probability(name: str, p: object) -> None:
    if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"FakeConfig.{name} must be a probability in [0, 1], not {p!r}")


class Chooser:
    """The one source of every choice the fake makes.

    Subclasses implement :meth:`integer`; the other methods are built on it.
    ``label`` names the question (for example ``"immediate:WSARecv"``), so a
    chooser may log or script its answers.
    """

    def integer(self, lo: int, hi: int, label: str) -> int:
        """An integer in ``[lo, hi]``; ``lo`` is the simplest answer."""
        raise NotImplementedError

    def boolean(self, p: float, label: str) -> bool:
        """True with probability ``p``; never asks when ``p`` is 0 or 1."""
        if p <= 0.0:
            return False
        if p >= 1.0:
            return True
        return self.integer(0, 1_000_000 - 1, label) < int(p * 1_000_000)

    def index(self, n: int, label: str) -> int:
        """Which of ``n`` candidates (0 is the oldest)."""
        return 0 if n <= 1 else self.integer(0, n - 1, label)

    def thread(self, n: int, after: str, call: str, running: int) -> int:
        """Which thread runs at the scheduling point of an interface call: 0
        the running one (T``running``), i of ``n`` the (i-1)-th other runnable
        thread in creation order.  ``after``: the running thread's previous
        interface call ("" if none), ``call``: the one it is about to make, for
        a chooser that weighs switches by where they happen
        (``fakewinsock.testing.HypothesisChooser(preempt=True)``).  The default
        is :meth:`index` (the same draw as before the hook existed)."""
        return self.index(n, "thread")

    def pick_one(self, options: tuple[int, ...], label: str) -> int:
        """One of several outcomes that different Windows versions give."""
        return options[self.index(len(options), label)]

    def span(self, lo_hi: tuple[int, int], label: str) -> int:
        """A value in a configured range."""
        lo, hi = lo_hi
        return lo if lo == hi else self.integer(lo, hi, label)


class RandomChooser(Chooser):
    """Choices from ``random.Random(seed)``: same seed, same choices."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        self._random = self._rng.random

    def integer(self, lo: int, hi: int, label: str) -> int:
        # random() scaled, not randint(): several times faster, and the bias
        # (below 2**-40 for these ranges) is irrelevant to a schedule.
        return lo + int(self._random() * (hi - lo + 1))

    def boolean(self, p: float, label: str) -> bool:
        if p <= 0.0:
            return False
        if p >= 1.0:
            return True
        return self._random() < p

    def index(self, n: int, label: str) -> int:
        return 0 if n <= 1 else int(self._random() * n)

    def span(self, lo_hi: tuple[int, int], label: str) -> int:
        # Chooser.span with integer() inline (the same draw): one call per
        # latency and completion delay instead of two.
        lo, hi = lo_hi
        return lo if lo == hi else lo + int(self._random() * (hi - lo + 1))


@dataclass
class ScriptedChooser(Chooser):
    """Answers from a list, then ``lo`` forever: the simplest schedule, plus
    whatever the list overrides.  Useful to replay a schedule by hand."""

    answers: list[int] = field(default_factory=list)
    position: int = 0

    def integer(self, lo: int, hi: int, label: str) -> int:
        if self.position < len(self.answers):
            value = self.answers[self.position]
            self.position += 1
            return min(max(value, lo), hi)
        return lo
