"""The fake's kernel: virtual clock, timers, ready queue, threads and their APC
queues, handles, blocking and deadlock detection.

Owns: the virtual clock (:attr:`Kernel.now_ns`), the timer heap, the ready
queue, each program thread's state (last error, queue of completion routines),
the handle table (sockets and events share one), the counters and the trace
writer.

Knows callables, not operations: a timer is ``fn(arg)`` at a time; a ready
entry is ``fn(arg)`` to run when the scheduler picks it; an APC is any object
with ``begin_routine``, ``call_routine`` and ``describe`` (:class:`Apc`).
What those callables do (complete an operation, deliver a segment, wake a
scripted client) is the other parts' business.

May call: the chooser (which ready entry runs next, background progress), the
trace, and the callables it was given.  Imports no other part of the fake.

Every blocking wait (WSAWaitForMultipleEvents, SleepEx, WSAGetOverlappedResult
with fWait, connect, a peer waiting for data) goes through :meth:`Kernel.block`:
until its condition holds it runs one ready entry (the chooser picks which, so
completions come out of order), else fires the next timer, moving the clock to
it, else times out by moving the clock to the deadline.  With no timeout and
nothing left that could ever happen it raises :class:`DeadlockError` instead of
hanging.
"""

from __future__ import annotations

import heapq
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ._errors import BusyLoopError, DeadlockError
from ._sim import Chooser, FakeConfig
from ._trace import Trace

if TYPE_CHECKING:
    from ._iocp import Port
    from ._threads import CritSec, ProgramThread, Scheduler

__all__ = ["Kernel", "ThreadState", "Event", "Apc"]

_get_ident = threading.get_ident


class Apc(Protocol):
    """A queued completion routine (an asynchronous procedure call)."""

    def begin_routine(self) -> None:
        """Account for the routine about to run (it may raise: the wait then raises)."""

    def call_routine(self) -> None:
        """Run the program's routine."""

    def describe(self) -> str: ...


class ThreadState:
    """One program thread: its last error and its queue of completion routines
    (and, once program threads exist, its scheduling record, ``prog``)."""

    __slots__ = ("index", "last_error", "apcs", "tid", "exited", "prog", "delivered")

    def __init__(self, index: int) -> None:
        self.index = index
        self.last_error = 0
        self.apcs: deque[Apc] = deque()
        self.tid = 0x1000 + 4 * index  # GetCurrentThreadId: deterministic, a multiple of 4 as on Windows
        self.exited = False
        self.prog: ProgramThread | None = None
        #: Sends' completions delivered to it since its last wait (GetQueuedCompletionStatus(Ex),
        #: WSAGetOverlappedResult): handled once it waits again (:meth:`handled_delivered`).
        self.delivered: list[Any] = []

    def handled_delivered(self) -> None:
        """This thread waits again (or has ended): it has handled the completions of sends delivered to it
        since its last wait (``delivered``: the packets GetQueuedCompletionStatus(Ex) dequeued for it, the
        operations WSAGetOverlappedResult reaped for it; each ``_ops.Operation.handled``).  Called by the
        waiting calls (WSAWaitForMultipleEvents, WaitFor*Object(s)(Ex), Sleep(Ex),
        GetQueuedCompletionStatus(Ex), WSAGetOverlappedResult with fWait) and as the thread exits; not by
        EnterCriticalSection (a thread takes a lock to handle what it got).  A record for observers
        (FakeWinsock.send_handled_ns): nothing reads it to decide."""
        for op in self.delivered:
            op.handled()
        self.delivered.clear()


class Event:
    """A manual-reset event from WSACreateEvent."""

    __slots__ = ("handle", "signaled", "closed", "waiters")

    def __init__(self, handle: int) -> None:
        self.handle = handle
        self.signaled = False
        self.closed = False
        #: Program threads blocked in a wait on this event (see _threads.Scheduler.poke):
        #: None, the one thread, or a list of them (see _threads.waiting_on).
        self.waiters: ProgramThread | list[ProgramThread] | None = None


def first_signaled(evs: list[Any]) -> int:
    """The index of the first signalled object of ``evs`` (events, and
    perhaps thread handles), or -1: the scan of a wait for any event.  Here,
    not in the interpreted ``_fake`` module, for the compiled build: there it
    reads an event's flag natively, where interpreted code reads a compiled
    object's attribute through a descriptor, slower than the pure build's
    slot (a wait for any of 64 events reads up to 64)."""
    i = 0
    for e in evs:
        if isinstance(e, Event):
            if e.signaled:
                return i
        elif e.signaled:
            return i
        i += 1
    return -1


def _no_world() -> str:
    return ""


class Kernel:
    """The scheduler and the objects every part shares.  See the module docstring."""

    def __init__(self, config: FakeConfig, chooser: Chooser, trace: Trace) -> None:
        self.config = config
        self.chooser = chooser
        self.trace = trace
        self.now_ns = 0
        self.timers: list[tuple[int, int, Callable[..., None], Any]] = []
        self._timer_seq = 0
        self.ready: list[tuple[Callable[[Any], None], Any]] = []
        self.threads: dict[int, ThreadState] = {}
        self._last_tid = -1
        self._last_thread = ThreadState(0)
        self.thread_count = 0  # threads numbered so far (T1, T2...)
        self.objects: dict[int, object] = {}  # handle -> socket or event
        self.closed_events: set[int] = set()
        self._next_handle = 0x100
        self.stats: dict[str, int] = {
            "immediate": 0, "pending": 0, "failed": 0, "completed": 0, "routines": 0, "resets": 0,
        }
        self.calls = 0  # Winsock calls (stats["calls"])
        self.last_call_ns = 0  # virtual time of the last Winsock call (after its cost)
        #: An exception tore through the fake (only noticed while invariants are checked).
        self.interrupted = False
        #: Describes what is in flight, for the deadlock message (set by the API).
        self.describe_world: Callable[[], str] = _no_world
        #: The program-thread scheduler, made by the first CreateThread (see _threads.py).
        self.sched: Scheduler | None = None
        #: How deep the kernel is in running its own callbacks (a delivery, a
        #: timer, a simulated client).  An interface call made from one (a
        #: simulated actor's WSASetEvent, say) is not a scheduling point: the
        #: program thread whose wait is stepping the world stays the one running.
        self.acting = 0
        #: Initialised critical sections: address of a CRITICAL_SECTION -> its record (_threads.CritSec).
        self.critsecs: dict[int, CritSec] = {}
        #: How many times a waitable object was signalled: :meth:`signal` (an event,
        #: a thread's handle) and :meth:`wake` (a completion port given a packet)
        #: count, and nothing else makes one signalled.  A wait whose ``done`` reads
        #: only signalled states, found False when the count was n, is still False
        #: while the count is n: ``block``'s ``quiet`` (no scan of 64 events after
        #: a step of the world that signalled nothing).
        self.signals = 0

    # ------------------------------------------------------------ threads, trace

    def thread(self) -> ThreadState:
        """The calling thread's state (threads are numbered in order of first call)."""
        tid = _get_ident()
        if tid == self._last_tid:
            return self._last_thread
        ts = self.threads.get(tid)
        if ts is None:
            ts = self.threads[tid] = self.new_thread_state()
        self._last_tid, self._last_thread = tid, ts
        return ts

    def new_thread_state(self) -> ThreadState:
        """A new thread's state, numbered in order of appearance (never by the
        Python thread id, which Python reuses once a thread has ended)."""
        self.thread_count += 1
        return ThreadState(self.thread_count)

    def record(self, what: str, call: str, handle: int = 0, op: int = 0, detail: str = "",
               thread: int | None = None) -> None:
        """Write a trace record now (``thread`` None: the calling thread)."""
        trace = self.trace
        if trace.enabled:
            trace.add(self.now_ns, self.thread().index if thread is None else thread,
                      what, call, handle, op, detail)

    def new_handle(self) -> int:
        """The next handle value: from 0x100 up by 4, never reused."""
        h = self._next_handle
        self._next_handle += 4
        return h

    def enter(self, call: str) -> ThreadState:
        """Every Winsock call starts here: it costs virtual time, and the kernel
        may make progress behind the program's back.  With program threads it
        is a scheduling point: another thread may run first."""
        if self.sched is not None and not self.acting:
            self.sched.preempt(call)
        calls = self.calls = self.calls + 1
        config = self.config
        if config.max_calls is not None and calls > config.max_calls:
            raise BusyLoopError(
                f"{call}: more than {config.max_calls} Winsock calls (FakeConfig.max_calls); the program "
                "seems to spin instead of waiting (an event never reset? a receive re-posted after EOF?)"
            )
        now = self.now_ns = self.last_call_ns = self.now_ns + config.syscall_cost
        if config.keep_up:
            self.catch_up(now)
        bg = config.background
        if bg and (self.ready or (self.timers and self.timers[0][0] <= now)):
            if self.chooser.boolean(bg, "background"):
                self.step(now)
        tid = _get_ident()  # self.thread(), inline: once per Winsock call
        if tid == self._last_tid:
            return self._last_thread
        return self.thread()

    # ------------------------------------------------------------- signals

    def signal(self, obj: Event | ProgramThread) -> None:
        """Signal an event (WSASetEvent, ``signal_event``, an operation's
        completion) or a thread's handle (its thread ended): its flag, the count
        that quiet waits read (:attr:`signals`) and, with program threads, a look
        again at the threads blocked on it.  The one way to do it: a signal not
        counted would leave a wait that steps the world blind to it."""
        obj.signaled = True
        self.signals += 1
        if obj.waiters:
            self.sched.poke(obj.waiters)  # type: ignore[union-attr]

    def wake(self, port: Port) -> None:
        """A completion port was given a packet (its handle is signalled while
        packets are queued: ``Port.signaled``): counted as :meth:`signal` counts,
        and the threads blocked on its handle are looked at again."""
        self.signals += 1
        if port.waiters:
            self.sched.poke(port.waiters)  # type: ignore[union-attr]

    # ------------------------------------------------------------- scheduling

    def call_at(self, time_ns: int, fn: Callable[[Any], None], arg: Any = None) -> None:
        """Run ``fn(arg)`` when virtual time reaches ``time_ns`` (at once if it is past)."""
        self._timer_seq += 1
        now = self.now_ns
        heapq.heappush(self.timers, (time_ns if time_ns > now else now, self._timer_seq, fn, arg))

    def _delay_over(self, entry: tuple[Callable[[Any], None], Any]) -> None:
        """A delay is over: the entry is ready.  Alone, it runs now (inside a wait,
        the very next step would run it anyway); with others ready, the chooser
        picks the order at the next step."""
        if self.ready:
            self.ready.append(entry)
        else:
            fn, arg = entry
            fn(arg)

    def catch_up(self, now: int) -> None:
        """``FakeConfig.keep_up``: what is due by ``now`` happens before the call
        runs (the ready entries, in the order the chooser picks, and every timer
        due: segments arriving, the peers' doings), as it does on a machine whose
        network stack runs while a slow program computes."""
        timers = self.timers
        step = self.step
        while self.ready or (timers and timers[0][0] <= now):
            step(now)

    def step(self, deadline: int | None) -> bool:
        """Make one thing happen: run a ready entry, or fire the next timer
        (moving the clock to it if it is not past ``deadline``).  False if
        nothing could happen before the deadline (the clock is then moved to
        it, if there is one)."""
        ready = self.ready
        if ready:
            fn, arg = ready.pop(self.chooser.index(len(ready), "order")) if len(ready) > 1 else ready.pop()
            self.acting += 1
            try:
                fn(arg)
            except BaseException:
                self.interrupted = True  # torn through: invariants are no longer checked (FakeWinsock)
                raise
            finally:
                self.acting -= 1
            return True
        timers = self.timers
        if timers:
            t = timers[0][0]
            if deadline is None or t <= deadline:
                if t > self.now_ns:
                    self.now_ns = t
                _, _, tfn, targ = heapq.heappop(timers)
                self.acting += 1
                try:
                    tfn(targ)
                except BaseException:
                    self.interrupted = True
                    raise
                finally:
                    self.acting -= 1
                return True
        if deadline is None:
            return False
        if deadline > self.now_ns:
            self.now_ns = deadline
        return False

    def block(self, done: Callable[[], bool], deadline: int | None, what: str | Callable[[], str],
              ts: ThreadState | None = None, objs: Sequence[Any] = (), quiet: int = -1) -> bool:
        """Make progress until ``done()`` or the deadline (or, with ``ts``, until
        ts has a queued completion routine).  Raises DeadlockError if nothing can
        ever happen and there is no deadline.  With program threads the
        scheduler decides (``Scheduler.block``: other threads run meanwhile);
        ``objs`` are the objects waited on, a wait on handles (events, threads,
        ports: closing one is then a usage error).  ``quiet``, for a ``done`` that reads
        nothing but the signalled flags of events and threads: the value of
        ``signals`` when the caller last found ``done()`` False; ``done`` is
        then asked again only once something was signalled since (the same
        answers, fewer scans).  -1 (the default): ask it after every step."""
        if self.sched is not None:
            result = self.sched.block(done, deadline, what, ts, objs, quiet)
            if result is not None:
                return result
        return self.until(done, deadline, what, ts.apcs if ts is not None else None, quiet, None)

    def until(self, done: Callable[[], bool], deadline: int | None, what: str | Callable[[], str],
              apcs: deque[Apc] | None, quiet: int, cur: ProgramThread | None) -> bool:
        """The loop of :meth:`block` (``apcs``: the waiting thread's queue of
        completion routines when the wait is alertable).  ``cur``: the program
        thread waiting, its wait set (``Scheduler.block``), or None: no other
        thread can run.  Each turn asks ``done()`` (only after a signal, with
        ``quiet``); with ``cur``, hands the baton to a thread that can run
        (``Scheduler.run_other``: this thread parks until woken) and else makes
        the world progress until the earliest deadline of any blocked thread;
        without, until its own.  ``quiet`` counts the world's signals, or with
        ``cur`` the signals of the objects ``cur`` watches (``cur.signals``:
        ``Scheduler.block`` registered the wait's objects)."""
        step = self.step
        sched = self.sched
        by_signals = quiet >= 0
        own = cur if by_signals else None
        while True:
            if apcs:
                return True
            n = self.signals if own is None else own.signals
            if n != quiet:  # (always, without quiet: the count is never negative)
                if done():
                    return True
                if by_signals:
                    quiet = n
            d = deadline
            if cur is not None:  # (then sched is not None)
                others = sched.runnable(cur)  # type: ignore[union-attr]
                if others:
                    return sched.run_other(cur, others, done)  # type: ignore[union-attr]
                d = sched.next_deadline()  # type: ignore[union-attr]
                if d is None or (deadline is not None and deadline < d):
                    d = deadline
            if not step(d):
                if d is None:
                    if cur is None:
                        name = what if isinstance(what, str) else what()
                        raise DeadlockError(
                            f"{name} can never return: no operation is in flight, nothing is "
                            f"scheduled and the timeout is infinite.\n{self.describe_world()}"
                        )
                    # Never returns: the main thread raises DeadlockError, another thread is
                    # unwound.  (A Scheduler always has two threads or more: CreateThread makes
                    # it with the first one, and threads never leave the list.)
                    sched.deadlock(cur)  # type: ignore[union-attr]
                if deadline is not None and self.now_ns >= deadline:
                    return done()

    def block_any(self, evs: list[Event], deadline: int | None, what: str,
                  ts: ThreadState | None = None) -> int:
        """:meth:`block` until one of ``evs`` is signalled, without program
        threads (``sched`` is None): the index of the first signalled one, or -1
        (the deadline passed, or, with ``ts``, ts has a queued completion
        routine).  The same steps as ``block`` with a ``done`` that looks for a
        signalled event (a wait for any event is the hot case: no closure)."""
        step = self.step
        apcs = ts.apcs if ts is not None else None
        while True:
            if apcs:
                return -1
            for i, e in enumerate(evs):
                if e.signaled:
                    return i
            if not step(deadline):
                if deadline is None:
                    raise DeadlockError(
                        f"{what} can never return: no operation is in flight, nothing is "
                        f"scheduled and the timeout is infinite.\n{self.describe_world()}"
                    )
                for i, e in enumerate(evs):
                    if e.signaled:
                        return i
                return -1

    def run_apcs(self, ts: ThreadState) -> None:
        """Deliver every queued completion routine of this thread (including any
        queued while they run)."""
        apcs = ts.apcs
        failure: BaseException | None = None
        ran = 0
        while apcs:
            apc = apcs.popleft()
            apc.begin_routine()
            ran += 1
            try:
                apc.call_routine()
            except BaseException as e:  # noqa: BLE001 - re-raised below
                # Windows runs every queued routine in this one wait; the
                # exception surfaces when the wait returns (as the real
                # backend, which cannot unwind through C, does too).
                if failure is None:
                    failure = e
        self.stats["routines"] += ran
        if failure is not None:
            raise failure

