"""Preemption at synchronization calls: a thread-switching policy in the spirit
of PCT (Burckhardt et al., "A randomized scheduler with probabilistic
guarantees of finding bugs", ASPLOS 2010: a few priority-change points, the
other threads run meanwhile) and of Coyote's and shuttle's strategies.

Owns :class:`SyncPreemption`, the policy, and :class:`PreemptingChooser`, a
seeded chooser with it (``ovserver simulate --preempt``; Hypothesis's is
``fakewinsock.testing.HypothesisChooser(data, preempt=True)``).  Uses the
fake's public choice interface (:class:`fakewinsock._sim.Chooser`, its
``thread`` question); nothing else (no Hypothesis: ovserver imports it).

Why: the races of a threaded server sit at its synchronization calls.  A
hand-over signalled between a thread's ``LeaveCriticalSection`` and its next
call (a ``WSAResetEvent`` that erases it), a worker preempted just after a
``PostQueuedCompletionStatus`` or just after its wait returned: each needs a
switch exactly there *and* the other thread running several calls without
being switched back.  The plain chooser draws every scheduling point
uniformly (with two threads runnable, a switch at half the calls), so the
other thread rarely runs five calls in a row.  With this policy:

* at a **synchronization point** (the running thread's previous call released
  or signalled something, or a wait of it returned: :data:`SYNC_AFTER`; or it
  is about to wait: :data:`SYNC_BEFORE`) another runnable thread runs with
  probability one half (a yes/no draw, shrinking to no);
* the thread switched to then **keeps running** until it blocks (or exits),
  releases or signals something (:data:`RELEASES`: the end of its step, where
  the points are drawn again), or for at most ``depth`` calls (drawn per
  example: 4, 16 or 64), without draws;
* elsewhere a switch is rare (1 point in 16).

It is drawn on or off per example (a swarm switch: one yes/no draw, at the
first point where two threads could run, shrinking to off: then every answer
is the plain chooser's ``index``, the same draws as without the policy).

Realism: every answer is a choice among the threads the fake's scheduler
offers as runnable at an interface call, which the plain chooser can make as
well; only the probabilities change.  Windows can preempt a thread at any
instruction (its quantum ends, a thread of higher priority is readied, such
as the one a ``SetEvent`` or ``LeaveCriticalSection`` just released, which
gets a priority boost), and a preempted thread may stay off a processor for
as long as the others run; so every interleaving produced here is one a real
Windows machine can produce.  Divergence from real Windows: none added; the
policy only makes some legal interleavings likelier (the fake still switches
only at interface calls: see :mod:`fakewinsock._threads`).
"""

from __future__ import annotations

import random

from ._sim import Chooser, RandomChooser

__all__ = ["SyncPreemption", "PreemptingChooser", "SYNC_AFTER", "SYNC_BEFORE"]

#: A thread just made one of these: another thread may be waiting for what it released, signalled or posted, or
#: the thread just came back from a wait (its view of shared state is fresh; another thread may change it now).
SYNC_AFTER = frozenset({
    "LeaveCriticalSection", "EnterCriticalSection", "TryEnterCriticalSection",
    "WSASetEvent", "WSAResetEvent", "PostQueuedCompletionStatus", "QueueUserAPC",
    "WSAWaitForMultipleEvents", "WaitForSingleObject", "WaitForSingleObjectEx",
    "WaitForMultipleObjects", "WaitForMultipleObjectsEx", "GetQueuedCompletionStatus",
    "GetQueuedCompletionStatusEx", "SleepEx", "Sleep", "CreateThread", "ResumeThread",
})
#: A thread is about to make one of these (a wait, or taking a lock): what it decided before may be stale by then.
SYNC_BEFORE = frozenset({
    "EnterCriticalSection", "WSAWaitForMultipleEvents", "WaitForSingleObject", "WaitForSingleObjectEx",
    "WaitForMultipleObjects", "WaitForMultipleObjectsEx", "GetQueuedCompletionStatus",
    "GetQueuedCompletionStatusEx", "WSAResetEvent",
})
#: Calls that end a step of the thread switched to (it released, signalled or posted): its hold ends after them.
RELEASES = frozenset({"LeaveCriticalSection", "WSASetEvent", "PostQueuedCompletionStatus", "QueueUserAPC",
                      "ResumeThread", "CreateThread"})
#: How many calls the thread switched to runs at most before the points are drawn again (one drawn per example).
DEPTHS = (4, 16, 64)
#: The probability of a switch at a synchronization point, and elsewhere.
P_SYNC = 0.5
P_OTHER = 1 / 16
#: The probability that an example uses the policy at all (the swarm switch).
P_ON = 0.5


class SyncPreemption:
    """The policy's state for one run (see the module docstring): ``choose``
    answers the fake's ``thread`` question through ``chooser``'s draws."""

    __slots__ = ("on", "depth", "hold", "held_from", "switches")

    def __init__(self) -> None:
        self.on: bool | None = None  # None: not drawn yet (no point with two threads runnable so far)
        self.depth = 0
        self.hold = 0  # calls the thread switched to may still make without a draw
        self.held_from = -1  # the thread that was switched away from (its return ends the hold)
        #: Switches made at synchronization points (for measurements).
        self.switches = 0

    def choose(self, chooser: Chooser, n: int, after: str, call: str, running: int) -> int:
        on = self.on
        if on is None:
            on = self.on = chooser.boolean(P_ON, "sync preemption")
            if on:
                self.depth = DEPTHS[chooser.index(len(DEPTHS), "preemption depth")]
        if not on:
            return chooser.index(n, "thread")
        if self.hold:
            if running == self.held_from or after in RELEASES:
                # The preempted thread runs again (the other blocked or exited), or the thread switched
                # to has just released or signalled something (the end of its step): the hold is over.
                self.hold = 0
            else:
                self.hold -= 1
                return 0  # the thread switched to runs on, no draw
        p = P_SYNC if after in SYNC_AFTER or call in SYNC_BEFORE else P_OTHER
        if not chooser.boolean(p, "preempt"):
            return 0
        i = 1 + chooser.index(n - 1, "thread")
        if p == P_SYNC:
            self.switches += 1
        self.hold = self.depth
        self.held_from = running
        return i


class PreemptingChooser(RandomChooser):
    """A seeded chooser (``RandomChooser(seed)``'s answers) whose thread
    switches follow :class:`SyncPreemption`, always on: ``FakeWinsock(seed=s,
    chooser=PreemptingChooser(s))``.  The policy's draws come from a generator
    of their own (seeded from ``seed``), so the network's choices of a seed are
    those of ``RandomChooser(seed)`` until thread switches steer the run
    elsewhere."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.policy = SyncPreemption()
        self.policy.on = True
        self._sched = RandomChooser(random.Random(seed).getrandbits(64) ^ 0x5EED_5CED)
        self.policy.depth = DEPTHS[self._sched.index(len(DEPTHS), "preemption depth")]

    def thread(self, n: int, after: str, call: str, running: int) -> int:
        return self.policy.choose(self._sched, n, after, call, running)
