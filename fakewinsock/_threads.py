"""Program threads in the fake: deterministic interleavings, one thread at a time.

How it fits
===========

The fake's kernel (:mod:`fakewinsock._kernel`) was written for one program
thread: every Winsock call starts with ``Kernel.enter`` and every wait goes
through ``Kernel.block``, which makes the simulated world progress (ready
queue, timers, virtual clock) until the wait's condition holds.  This module
adds threads without changing that picture.  The first ``CreateThread`` makes a
:class:`Scheduler` and hangs it on the kernel (``Kernel.sched``); from then on:

* A program thread is a real Python thread (``threading.Thread``, daemon), but
  only the one holding the **baton** runs.  Each thread has its own lock,
  held (acquired) by the scheduler while the thread is parked; handing the
  baton to a thread is releasing its lock, and the giver then parks on its own
  lock.  So Python's own thread scheduler never decides anything: at any
  moment one program thread runs and the others sit in ``lock.acquire()``.
* **Scheduling points** are the interface calls (``Kernel.enter`` calls
  :meth:`Scheduler.preempt`) and the waits (``Kernel.block`` calls
  :meth:`Scheduler.block`).  At a call, the running thread and every runnable
  thread are candidates; the chooser picks one (index 0: the running thread
  keeps running, so a Hypothesis-drawn schedule shrinks towards fewer
  switches).  In a wait whose condition does not hold, the running thread
  parks and the chooser picks among the runnable ones.
* A **blocked** thread carries a :class:`Wait`: its condition (``done``), its
  deadline in virtual time, whether it is alertable, and a description.  It
  becomes runnable when the scheduler, at a scheduling point, finds its
  completion routines queued (alertable), its condition true, or its deadline
  passed; that outcome is *latched* then (a satisfied wait stays satisfied
  even if another thread resets the event before it runs, as on Windows,
  where the waiter is released when the object is signalled).  A critical
  section is not granted, only its waiters woken (Windows' sections are not
  fair): a woken waiter competes for it again when it runs.
* Looking at every blocked thread at every scheduling point would cost
  O(threads x handles) per call; instead a wait on handles (WaitFor*,
  WSAWaitForMultipleEvents) registers its thread in each object's
  ``waiters``, and is looked at again only when one of them is signalled
  (:meth:`Scheduler.poke`, called wherever an event is set or a thread
  exits), when a completion routine is queued for it
  (:meth:`Scheduler.poke_thread`), or when its deadline (a heap) passes.
  The registrations outlive the wait (a thread waiting again on the same
  objects, as a group of 64 events does at every turn, writes to none of
  them): a signal of an object a blocked thread watches from an earlier wait
  only looks at it again for nothing (see ``Scheduler._watch``).
  Other waits (a critical section, connect, WSAGetOverlappedResult with
  fWait, whatever passes no handles) are looked at every time.
* When no thread is runnable, the thread holding the baton makes the world
  progress exactly as ``Kernel.block`` always did (one ready entry, else the
  next timer, else the clock moves to the earliest deadline of any blocked
  thread), then looks again.  With nothing left to happen and no deadline,
  every thread is blocked forever: :class:`DeadlockError`, naming each thread
  and what it waits on, is raised in the main thread (the one that made the
  first thread, normally the test), after every other program thread has been
  unwound (a private ``BaseException`` raised where it was parked), so no
  Python thread is left hanging.  Unwinding is a turn of the baton too: the
  main thread hands it to the thread and waits until the thread hands it back
  as it ends, never for some wall-clock time (see :meth:`Scheduler.unwind`).
* Every way a program thread ends hands the baton on exactly once, also when
  ending it fails (its I/O is cancelled then, which may draw a choice, where
  Hypothesis may stop the example): that failure goes to the main thread.
* An exception escaping a program thread is what an unhandled exception is on
  Windows, the end of the process: the thread hands the baton to the main
  thread, which raises that very exception (with a note naming the thread)
  from whatever call or wait it was in, after unwinding the others.
* **Nothing is drawn when only one thread can run**, so a program that never
  creates a thread, or whose other threads are all blocked, has exactly the
  schedule it had before threads existed.

Thread ids (0x1000 + 4 * n, n in order of first appearance) and thread handles
(from the kernel's one handle counter) are deterministic; time is virtual only.

Divergence from real Windows:

* A program thread runs until it makes an interface call or waits: a thread
  that computes (or spins on a Python variable) without calling the interface
  is never preempted, and the others do not run meanwhile.  Races between
  two threads' plain Python code are therefore only explored at the interface
  calls between them; guard shared data with critical sections as in C.
* Python threads that the fake did not create (and that are not the main
  thread) are not scheduled: their calls run unscheduled, as before threads.
* A thread ending with an exception ends the test (the exception is raised in
  the main thread), where Windows would end the process.
* A thread that exits owning a critical section leaves it owned forever (as
  Windows does); the fake does not report it at once, but the waiters end in
  a DeadlockError naming the owner.
* A thread that never waits keeps the baton as long as the chooser lets it
  (index 0 at every call: the simplest schedule, a Hypothesis example's tail
  seed 0), where Windows ends its quantum; without ``FakeConfig.keep_up``
  such a thread sees the network move only when it waits, so it waits
  soon.  With ``keep_up`` (a program slower than its network, which may
  always have a completion ready) a thread that has run for
  :data:`QUANTUM_NS` of virtual time while another was runnable hands the
  baton, at its next call, to the thread runnable longest, as a quantum end
  on one processor does; a machine with more processors would run both.
* Thread priorities, affinity, suspension of a running thread
  (SuspendThread), TerminateThread and ExitThread are not emulated.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._errors import DeadlockError, InternalError, WinsockUsageError

if TYPE_CHECKING:
    from ._kernel import Kernel, ThreadState

__all__ = ["Scheduler", "ProgramThread", "Wait", "CritSec", "threads_broken", "thread_serial", "threads_made_since",
           "waiting_on", "RUNNING", "RUNNABLE", "BLOCKED", "SUSPENDED", "EXITED"]

RUNNING = "running"
RUNNABLE = "runnable"
#: With ``FakeConfig.keep_up``, a thread runs for at most this much virtual time while another is
#: runnable: two clock intervals of 15.625 ms, the quantum of Windows' client editions (a server edition's
#: is 12 intervals; Windows Internals, 6th ed., "Quantum").  See :meth:`Scheduler.preempt`.
QUANTUM_NS = 31_250_000
BLOCKED = "blocked"
#: How many objects a thread may watch (see Scheduler._watch) before those of its earlier waits are let go:
#: twice a wait's most (MAXIMUM_WAIT_OBJECTS), so a thread switching between two full waits keeps both.
_KEPT = 128
SUSPENDED = "suspended"
EXITED = "exited"


class _Unwind(BaseException):
    """Raised in a parked program thread to end it (the test is over)."""


#: How long the main thread waits, at most, for a program thread it unwinds to
#: end (see :meth:`Scheduler.unwind`): not what makes unwinding correct (the
#: thread hands the baton back when it is done), only the limit after which a
#: thread that never ends is reported instead of hanging the test.
UNWIND_GUARD_S = 120.0
_UNWIND_POLL_S = 0.5  # how often the wait looks whether the thread is still alive


#: Every program thread alive in this process (made by CreateThread, not yet
#: exited nor unwound), in order of creation, keyed by a process-wide serial
#: number: what lets a test runner find and end the threads a test left behind
#: (:func:`threads_made_since`), whichever fake they belong to.  Only creation
#: and exit touch it; it makes no choice.
_LIVE: dict[int, tuple[Scheduler, ProgramThread]] = {}
_serial = 0


def thread_serial() -> int:
    """The serial number the next program thread will get (a mark for :func:`threads_made_since`)."""
    return _serial


def threads_made_since(mark: int) -> list[tuple[Scheduler, ProgramThread]]:
    """The program threads made since ``mark`` (:func:`thread_serial`) that are
    still alive, with their schedulers, oldest first."""
    return [entry for serial, entry in list(_LIVE.items()) if serial >= mark]


def waiting_on(obj: Any) -> Sequence[ProgramThread]:
    """The program threads blocked in a wait on ``obj`` (an event or a thread;
    anything else, None included: none).

    A waitable object's ``waiters`` is None, the one thread that waits on it
    (the usual case: a group's thread on its 64 events), or a list of them
    when several do: a wait then registers its thread in the object itself,
    not in a list of its own that is one or two more blocks of memory to
    touch per object and wait (with every client connected at once, 64 cold
    lists per wait of a group)."""
    w = getattr(obj, "waiters", None)
    if w is None:
        return ()
    if type(w) is list:
        return w
    return (w,)


class Wait:
    """What a blocked thread waits for."""

    __slots__ = ("done", "deadline", "alertable", "what", "objs", "polls", "watched")

    def __init__(self, done: Callable[[], bool], deadline: int | None, alertable: bool,
                 what: str | Callable[[], str], objs: Sequence[Any] = ()) -> None:
        self.done = done
        self.deadline = deadline
        self.alertable = alertable
        self.what = what
        #: The objects waited on (events, threads, ports: the wait looked their
        #: handles up; closing one leaves the wait on the object: see Scheduler.forget);
        #: empty for a wait on no handle (a critical section, connect...).
        self.objs = objs
        #: A zero timeout (set by ``Scheduler.block``): on Windows such a wait
        #: never puts the thread into a wait state (KeWaitForSingleObject
        #: returns STATUS_TIMEOUT before it would), so a thread a completion
        #: port released goes on counting against the port's concurrency value.
        self.polls = False
        #: Its thread is registered in the ``waiters`` of every object of ``objs``
        #: (``Scheduler.block`` registers a quiet wait's before its first step).
        self.watched = False

    def describe(self) -> str:
        return self.what if isinstance(self.what, str) else self.what()


class ProgramThread:
    """One program thread: the main thread, or one made by CreateThread.

    Waitable like an event: ``signaled`` is True once the thread has exited.
    """

    def __init__(self, ts: ThreadState, handle: int, routine: Callable[[Any], int] | None, param: Any) -> None:
        self.ts = ts
        self.handle = handle  # 0 for the main thread (it has no handle of the program's)
        self.routine = routine
        self.param = param
        self.state = RUNNING if routine is None else RUNNABLE
        self.wait: Wait | None = None
        self.woke = ""  # why a blocked thread became runnable: "apc", "done" or "timeout"
        self.baton = threading.Lock()
        self.baton.acquire()  # parked until handed the baton
        self.exit_code = 259  # STILL_ACTIVE
        self.signaled = False  # exited (a thread handle is signalled when its thread ends)
        self.closed = False  # its handle was closed (CloseHandle)
        self.suspend_count = 0
        self.unwinding = False
        self.py: threading.Thread | None = None
        #: Threads blocked in a wait on this thread's handle (woken when it exits): None,
        #: the one thread, or a list of them (see waiting_on).
        self.waiters: ProgramThread | list[ProgramThread] | None = None
        #: The objects (events, threads) whose ``waiters`` hold this thread while it is blocked.
        self.watching: list[Any] = []
        #: Signals of the objects this thread watches (``Scheduler.poke``), counted in
        #: every state: a quiet wait's count (see Kernel.until), as ``Kernel.signals`` is
        #: the whole world's.
        self.signals = 0
        #: Objects whose handle was closed while this thread was blocked in a wait on
        #: them: still watched until that wait ends (see Scheduler.forget).
        self.stale: list[Any] = []
        self.wait_seq = 0  # which wait a deadline entry belongs to
        self.serial = -1  # process-wide, in order of creation (see _LIVE); -1 for the main thread
        #: The interface call this thread made last (its scheduling point's ``after``: see Chooser.thread).
        self.last_call = ""

    @property
    def tid(self) -> int:
        return self.ts.tid

    def describe(self) -> str:
        if self.routine is None:
            return f"T{self.ts.index} (main thread, id {self.tid:#x})"
        name = getattr(self.routine, "__qualname__", None) or repr(self.routine)
        return f"T{self.ts.index} (thread {self.handle:#x}, id {self.tid:#x}, start routine {name})"

    def describe_state(self) -> str:
        """The thread and what it is doing: waiting (in what), runnable, suspended..."""
        if self.state is SUSPENDED:
            return f"{self.describe()}: suspended (CREATE_SUSPENDED, never resumed)"
        if self.wait is not None:
            if self.state is RUNNABLE:  # its wait is over; the thread has not run since
                why = {"done": "satisfied", "timeout": "over (timed out)",
                       "apc": "ended by a queued completion routine"}
                return (f"{self.describe()}: runnable, not yet run since its wait in {self.wait.describe()} was "
                        f"{why.get(self.woke, self.woke)}")
            return f"{self.describe()}: waits in {self.wait.describe()}"
        return f"{self.describe()}: {self.state}"


class CritSec:
    """The fake's record of one CRITICAL_SECTION (keyed by the structure's address)."""

    __slots__ = ("key", "struct", "owner", "count", "waiters", "label")

    def __init__(self, key: int, struct: Any, label: int) -> None:
        self.key = key
        self.struct = struct  # the caller's CRITICAL_SECTION (kept alive while initialised)
        self.owner: ThreadState | None = None
        self.count = 0  # recursion count
        self.waiters = 0
        self.label = label  # order of initialisation, for messages

    def describe(self) -> str:
        if self.owner is None:
            owner = "free"
        else:
            gone = ", which has exited" if self.owner.exited else ""
            owner = f"owned by T{self.owner.index}{gone} ({self.count}x)"
        return f"critical section cs{self.label} at {self.key:#x} ({owner})"

    def mirror(self) -> None:
        """Write owner, recursion count and lock count into the structure, as
        Windows does.  ``LockCount`` as from Windows Server 2003 SP1 on
        (Microsoft's "Displaying a Critical Section"): bit 0 set when the section
        is free, bit 1 clear when a waiter has been woken, the other bits the
        ones' complement of the number of threads waiting: -1 free, -2 owned
        (however often its owner entered it), -6 owned with one waiter.  A
        section left while threads wait counts one of them as woken (bit 1
        clear, one waiter fewer: -3 with one) until a thread takes it.

        Divergence from real Windows: the fake does not model the woken waiter
        that loses the section to another thread (it counts as waiting again)."""
        owner = self.owner
        struct = self.struct
        struct.OwningThread = owner.tid if owner is not None else 0
        struct.RecursionCount = self.count
        w = self.waiters
        if owner is not None:
            struct.LockCount = (~w << 2) | 2
        elif w:
            struct.LockCount = (~(w - 1) << 2) | 1
        else:
            struct.LockCount = -1


class Scheduler:
    """Decides which program thread runs: see the module docstring."""

    def __init__(self, kernel: Kernel, main: ThreadState) -> None:
        self.kernel = kernel
        self.main = ProgramThread(main, 0, None, None)
        main.prog = self.main
        self.threads: list[ProgramThread] = [self.main]  # in order of creation
        self.current = self.main
        #: An exception the main thread must raise when it next runs (a deadlock
        #: found by another thread, an exception that ended a program thread).
        self.fatal: BaseException | None = None
        #: Called with a thread's state when it exits (the API cancels its I/O).
        self.on_exit: Callable[[ThreadState], None] = lambda ts: None
        # Which blocked threads to look at, so that a scheduling point does not
        # evaluate every blocked thread's condition: a wait on handles is looked
        # at when one of its objects is signalled (``poke``) or its thread gets
        # a completion routine queued (``poke_thread``); any other wait (a
        # critical section, connect, WSAGetOverlappedResult...) at every point.
        self.runq: list[ProgramThread] = []  # RUNNABLE threads
        self.opaque: list[ProgramThread] = []  # BLOCKED threads whose wait names no handle
        self.poked: list[ProgramThread] = []  # BLOCKED threads to look at again
        self.deadlines: list[tuple[int, int, ProgramThread]] = []  # heap of (deadline, wait_seq, thread)
        self._seq = 0
        self.switches = 0  # times the baton went to another thread (FakeWinsock.thread_switches)
        #: FakeConfig.keep_up: a thread that has held the baton for a quantum of virtual time gives it up at
        #: its next call, to the thread that has been runnable longest (see preempt); None: no quantum.
        self.quantum: int | None = QUANTUM_NS if kernel.config.keep_up else None
        self.slice_start = kernel.now_ns  # when the running thread got the baton
        #: Why the scheduler can no longer hand the baton (a thread that was unwound never ended).
        self.broken: str | None = None

    # ------------------------------------------------------------ threads

    def create(self, ts: ThreadState, handle: int, routine: Callable[[Any], int], param: Any,
               suspended: bool) -> ProgramThread:
        pt = ProgramThread(ts, handle, routine, param)
        ts.prog = pt
        if suspended:
            pt.state = SUSPENDED
            pt.suspend_count = 1
        else:
            self.runq.append(pt)
        global _serial
        pt.serial, _serial = _serial, _serial + 1
        _LIVE[pt.serial] = (self, pt)
        py = pt.py = threading.Thread(target=self._bootstrap, args=(pt,), daemon=True,
                                      name=f"fakewinsock T{ts.index}")
        py.start()
        assert py.ident is not None
        self.kernel.threads[py.ident] = ts
        self.threads.append(pt)
        return pt

    def _bootstrap(self, pt: ProgramThread) -> None:
        pt.baton.acquire()
        try:
            if not pt.unwinding:
                self._run(pt)
        finally:
            if pt.unwinding:
                # Unwound (see unwind): hand the baton back to the main thread, which
                # waits for this, whatever the program did on the way out.
                self.main.baton.release()

    def _run(self, pt: ProgramThread) -> None:
        """Run the start routine, then end the thread: hand the baton on, or give
        the main thread what ended it.  Every way out hands the baton exactly
        once (else the main thread waits for ever), except when the thread is
        unwound, where :meth:`_bootstrap` hands it back to the main thread."""
        exc: BaseException | None = None
        try:
            assert pt.routine is not None
            if pt.ts.apcs:
                # APCs queued before the thread began run first (QueueUserAPC's page).
                self.kernel.run_apcs(pt.ts)
            code = pt.routine(pt.param)
            if isinstance(code, bool) or not isinstance(code, int):
                raise TypeError(f"the start routine of {pt.describe()} returned {code!r}, not an int "
                                "(a thread procedure returns its DWORD exit code)")
            pt.exit_code = code & 0xFFFFFFFF
        except _Unwind:
            return
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            if pt.unwinding:
                return
            _note(e, f"raised in program thread {pt.describe()}; re-raised in the main thread")
            pt.exit_code = 0xE0000001  # never seen: the test ends
            exc = e
        if pt.unwinding:
            return  # the routine caught the unwinding and returned: it must not run the scheduler
        try:
            self._exit(pt)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            # Ending the thread cancels its I/O, which may draw a choice: Hypothesis can
            # stop the example right there (or a part of the fake fail).
            if exc is not None and e is not exc and e.__context__ is None:
                e.__context__ = exc
            _note(e, f"raised as program thread {pt.describe()} ended; re-raised in the main thread")
            exc = e
        if exc is not None:
            self._give_main(pt, exc)
        else:
            self._leave(pt)

    def resume(self, pt: ProgramThread) -> None:
        """ResumeThread brought the suspend count to 0."""
        if pt.state is SUSPENDED:
            pt.state = RUNNABLE
            self.runq.append(pt)

    def _exit(self, pt: ProgramThread) -> None:
        _LIVE.pop(pt.serial, None)
        pt.state = EXITED
        if pt.watching:
            self._unwatch(pt)  # (registrations kept from its last waits)
        self.kernel.signal(pt)
        pt.ts.exited = True
        if pt.ts.delivered:  # it has ended: it handled what it got (a record for observers)
            pt.ts.handled_delivered()
        if self.kernel.trace.enabled:
            self.kernel.record("thread", "exit", pt.handle, 0, f"T{pt.ts.index} exit_code={pt.exit_code}")
        self.on_exit(pt.ts)

    def _leave(self, pt: ProgramThread) -> None:
        """An exited thread hands the baton on (making the world progress until
        some thread can run), then its Python thread ends."""
        try:
            target = self._next_after_exit(pt)
        except BaseException as e:  # noqa: BLE001 - a deadlock, the chooser (Hypothesis) or a callback
            self._give_main(pt, e)
            return
        self._hand(pt, target)

    def _give_main(self, giver: ProgramThread, exc: BaseException) -> None:
        """Make the main thread raise ``exc`` now (called by another thread
        holding the baton, ``giver``, which then parks or ends)."""
        self.fatal = exc
        self._hand(giver, self.main)

    def _hand(self, giver: ProgramThread, target: ProgramThread) -> None:
        """``giver``, which holds the baton, hands it to ``target``."""
        if giver is not self.current or giver.unwinding or self.broken is not None:
            raise InternalError(f"{giver.describe()} hands the baton to {target.describe()} but "
                                + (self.broken if self.broken is not None else
                                   f"{'it is being unwound' if giver.unwinding else 'does not hold it'} "
                                   f"({self.current.describe()} does)"))
        if target.state is RUNNABLE:
            self.runq.remove(target)
        elif target.state is BLOCKED:  # the main thread, to raise what ends the test
            self._unwatch(target)
        target.state = RUNNING
        self.current = target
        self.switches += 1
        self.slice_start = self.kernel.now_ns
        if self.kernel.trace.enabled:
            self.kernel.record("thread", "run", target.handle, 0, f"T{target.ts.index}")
        target.baton.release()

    def _switch(self, cur: ProgramThread, target: ProgramThread) -> None:
        """Hand the baton from ``cur`` to ``target`` and park ``cur`` until it gets it back."""
        self._hand(cur, target)
        cur.baton.acquire()
        self._resumed(cur)

    def _resumed(self, cur: ProgramThread) -> None:
        if cur.unwinding:
            raise _Unwind
        if cur is self.main and self.fatal is not None:
            exc, self.fatal = self.fatal, None
            self.unwind_all()
            raise exc

    # ------------------------------------------------------------ scheduling points

    def calling(self) -> ProgramThread | None:
        """The calling thread's ProgramThread (None for a thread the fake does not schedule)."""
        pt: ProgramThread | None = self.kernel.thread().prog
        if pt is not None and pt.unwinding:
            raise _Unwind
        return pt

    def poke(self, waiters: ProgramThread | list[ProgramThread]) -> None:
        """An object these threads watch was signalled (its ``waiters``: a
        thread or a list, see :func:`waiting_on`): look again at those blocked
        (a thread not blocked watches it from an earlier wait: see ``_park``)."""
        if type(waiters) is list:
            for t in waiters:
                t.signals += 1
                if t.state is BLOCKED:
                    self.poked.append(t)
        else:
            waiters.signals += 1  # type: ignore[union-attr]
            if waiters.state is BLOCKED:  # type: ignore[union-attr]
                self.poked.append(waiters)  # type: ignore[arg-type]

    def poke_thread(self, ts: ThreadState) -> None:
        """A completion routine was queued for ``ts``: look at it again."""
        pt = ts.prog
        if pt is not None and pt.state is BLOCKED:
            self.poked.append(pt)

    def _park(self, cur: ProgramThread) -> None:
        """``cur`` (with its wait set) blocks: register it where it will be looked at."""
        cur.state = BLOCKED
        w = cur.wait
        assert w is not None
        self._seq += 1
        cur.wait_seq = self._seq
        if w.deadline is not None:
            heapq.heappush(self.deadlines, (w.deadline, self._seq, cur))
        objs = w.objs
        if not objs:
            self.opaque.append(cur)
            return
        if not w.watched:
            self._register(cur, objs)

    def _register(self, cur: ProgramThread, objs: Sequence[Any]) -> None:
        """Register ``cur`` where its wait on ``objs`` will be looked at."""
        self._watch(cur, objs)
        if len(cur.watching) > _KEPT:  # what earlier waits left is too much: only this wait's objects
            self._unwatch(cur)
            self._watch(cur, objs)

    @staticmethod
    def _watch(cur: ProgramThread, objs: Sequence[Any]) -> None:
        """Register ``cur`` in the ``waiters`` of each object (an Event, a
        ProgramThread or a Port: the waits checked the handles) not registered
        yet.  Registrations are kept when a wait ends (``watching``): a thread
        waiting again on the same objects, as a group of 64 events does at
        every turn, writes to none of them (at hundreds of groups each is a
        cold line of memory); an object the thread no longer waits on stays
        registered until it is closed (``forget``), the thread exits, or the
        thread's registrations pass ``_KEPT``, and a signal of it looks at the
        thread again for nothing if it is blocked (``poke``: no wait is
        satisfied by an object it does not wait on, so nothing else changes)."""
        watching = cur.watching
        for obj in objs:
            # Asking the object, not ``obj in watching``, keeps a 64-handle wait
            # linear (a handle given twice is registered at its first place).
            waiters = obj.waiters
            if waiters is cur:
                continue  # the usual case: registered at an earlier wait
            if obj.closed:
                continue
            if waiters is None:
                obj.waiters = cur  # the object alone is touched (see waiting_on)
            elif type(waiters) is list:
                if cur in waiters:
                    continue
                waiters.append(cur)  # (a list emptied by its last waiters is kept: no new list per wait)
            else:
                obj.waiters = [waiters, cur]  # a second thread waits on it
            watching.append(obj)

    def forget(self, obj: Any) -> None:
        """``obj`` (an event, a thread or a port handle) is being closed: the
        threads that watch it from earlier waits let it go.  A thread blocked
        in a wait on it goes on watching it until that wait ends (its ``stale``
        objects, let go in :meth:`block`): a wait holds the object, not the
        handle, so a thread's exit or an operation's completion that signals
        the object still ends the wait (``ThreadCalls._check_not_waited``).
        (A port's blocked threads were poked and see it signalled:
        ``_release_port_handle_waiters``.)"""
        kept: list[ProgramThread] = []
        for t in waiting_on(obj):
            w = t.wait
            if t.state is BLOCKED and w is not None and obj in w.objs:
                kept.append(t)
                t.stale.append(obj)
            else:
                t.watching.remove(obj)
        obj.waiters = None if not kept else kept[0] if len(kept) == 1 else kept

    @staticmethod
    def _drop_stale(t: ProgramThread) -> None:
        """``t``'s wait ended: the objects closed while it waited are let go."""
        for obj in t.stale:
            waiters = obj.waiters
            if waiters is t:
                obj.waiters = None
            elif type(waiters) is list and t in waiters:
                waiters.remove(t)
            if obj in t.watching:
                t.watching.remove(obj)
        t.stale = []

    def _unwatch(self, t: ProgramThread) -> None:
        # Every registration of ``t`` goes (it exits, is unwound or handed the
        # baton in a wait, or has too many: see _watch).  An object with one
        # waiter forgets it; a list (several waiters) keeps its emptied self.
        for obj in t.watching:
            waiters = obj.waiters
            if waiters is t:
                obj.waiters = None
            else:
                waiters.remove(t)
        t.watching = []
        t.stale = []
        if t.wait is not None and not t.wait.objs and t in self.opaque:
            self.opaque.remove(t)

    def _recheck(self) -> None:
        """Blocked threads whose wait is satisfied (or over) become runnable;
        the outcome is latched in ``woke``."""
        now = self.kernel.now_ns
        heap = self.deadlines
        if not self.poked and not self.opaque and not (heap and heap[0][0] <= now):
            return  # nothing to look at (the usual scheduling point: no new list)
        cands = self.poked
        self.poked = []
        if self.opaque:
            cands += self.opaque
        while heap and heap[0][0] <= now:
            _, seq, t = heapq.heappop(heap)
            if t.state is BLOCKED and t.wait_seq == seq:
                cands.append(t)
        if not cands:
            return
        if len(cands) > 1:
            cands = sorted(set(cands), key=_index)
        for t in cands:
            if t.state is not BLOCKED:
                continue
            w = t.wait
            assert w is not None
            if w.alertable and t.ts.apcs:
                t.woke = "apc"
            elif w.done():
                t.woke = "done"
            elif w.deadline is not None and now >= w.deadline:
                t.woke = "timeout"
            else:
                continue
            if not w.objs and t in self.opaque:  # (a wait on handles keeps its registrations: see _watch)
                self.opaque.remove(t)
            t.state = RUNNABLE
            self.runq.append(t)

    def runnable(self, cur: ProgramThread) -> list[ProgramThread]:
        """The threads other than ``cur`` that could run now, in creation order;
        a blocked thread whose wait is satisfied (or over) becomes runnable here."""
        self._recheck()
        runq = self.runq
        if not runq:
            return []
        if len(runq) > 1:
            # (a loop, not a generator: that would make ``cur`` a closure cell on every call)
            others: list[ProgramThread] = []
            for t in runq:
                if t is not cur:
                    others.append(t)
            others.sort(key=_index)
            return others
        return [] if runq[0] is cur else [runq[0]]

    def preempt(self, call: str = "") -> None:
        """A scheduling point at an interface call (``call``, about to be
        made): maybe another thread runs first."""
        cur = self.calling()
        if cur is None or cur is not self.current:
            return
        after = cur.last_call
        cur.last_call = call
        if cur is self.main and self.fatal is not None:
            self._resumed(cur)
        if not self.runq and not self.poked and not self.opaque:  # runnable(cur), inline: the usual point
            heap = self.deadlines
            if not heap or heap[0][0] > self.kernel.now_ns:
                return  # no one else could run (and no draw, as runnable() would find no one)
        others = self.runnable(cur)
        if not others:
            return
        if self.quantum is not None and self.kernel.now_ns - self.slice_start >= self.quantum:
            # Its quantum is over (keep_up only): the thread runnable longest runs, no draw.
            cur.state = RUNNABLE
            for target in self.runq:  # the first other than cur (others is not empty)
                if target is not cur:
                    break
            self.runq.append(cur)
            self._switch(cur, target)
            return
        try:
            i = self.kernel.chooser.thread(len(others) + 1, after, call, cur.ts.index)
        except BaseException:
            self._ending(cur)
            raise
        if i:
            cur.state = RUNNABLE
            self.runq.append(cur)
            self._switch(cur, others[i - 1])

    def next_deadline(self) -> int | None:
        """The earliest deadline of a blocked thread (None: none has one)."""
        heap = self.deadlines
        while heap:
            _, seq, t = heap[0]
            if t.state is BLOCKED and t.wait_seq == seq:
                return heap[0][0]
            heapq.heappop(heap)
        return None

    def _next_after_exit(self, cur: ProgramThread) -> ProgramThread:
        """``cur`` has exited: the thread to run next, making the world progress
        until one can.  Raises DeadlockError when nothing can ever happen."""
        kernel = self.kernel
        while True:
            others = self.runnable(cur)
            if others:
                return others[kernel.chooser.index(len(others), "thread")] if len(others) > 1 else others[0]
            d = self.next_deadline()
            if not kernel.step(d) and d is None:
                raise DeadlockError(self.deadlock_message())

    def block(self, done: Callable[[], bool], deadline: int | None, what: str | Callable[[], str],
              ts: ThreadState | None, objs: Sequence[Any] = (),
              quiet: int = -1) -> bool | None:
        """Kernel.block for a scheduled thread (None: the caller is not scheduled).

        With no other thread able to run it does exactly what Kernel.block does
        alone (no draw), so single-threaded schedules are unchanged."""
        cur = self.calling()
        if cur is None or cur is not self.current:
            return None
        apcs = ts.apcs if ts is not None else None
        cur.wait = wait = Wait(done, deadline, ts is not None, what, objs)
        wait.polls = deadline is not None and deadline <= self.kernel.now_ns
        if quiet >= 0:
            # A quiet wait's ``done`` reads only the signalled flags of ``objs``, and
            # one of those turns True only through Kernel.signal or Kernel.wake,
            # which count it in ``cur.signals`` once ``cur`` is registered: so
            # registered now (nothing has happened since the caller's scan), the
            # wait is asked again only after a signal of its own objects, not
            # after every signal of the world (other threads' events: the same
            # answers, and no scan of up to 64 cold objects for nothing).
            if objs:
                self._register(cur, objs)
                wait.watched = True
            quiet = cur.signals
        try:
            return self.kernel.until(done, deadline, what, apcs, quiet, cur)
        except _Unwind:
            raise
        except BaseException:
            self._ending(cur)
            raise
        finally:
            if not objs and cur in self.opaque:  # (a wait on handles keeps its registrations: see _watch)
                self.opaque.remove(cur)
            if cur.stale:  # (objects closed while it waited: see forget)
                self._drop_stale(cur)
            cur.wait = None
            cur.state = RUNNING

    def run_other(self, cur: ProgramThread, others: list[ProgramThread], done: Callable[[], bool]) -> bool:
        """``cur``'s wait does not hold and ``others`` can run (``Kernel.until``):
        one of them (the chooser picks) gets the baton and ``cur`` parks until
        its wait is over; what the wait returns."""
        target = others[self.kernel.chooser.index(len(others), "thread")] if len(others) > 1 else others[0]
        self._park(cur)
        self._switch(cur, target)
        if cur.woke == "timeout":
            return done()
        return True

    def deadlock(self, cur: ProgramThread) -> None:
        """Every thread is blocked for good (``cur`` found it): the main thread
        raises DeadlockError, another thread hands it to the main thread and is
        unwound (the private exception is raised here)."""
        exc = DeadlockError(self.deadlock_message())
        if cur is self.main:
            self.unwind_all()
            raise exc
        self.fatal = exc
        self._park(cur)
        self._switch(cur, self.main)  # raises _Unwind here when the main thread unwinds this one

    def deadlock_message(self) -> str:
        lines = ["every program thread is blocked and nothing can ever wake one (no operation in flight "
                 "can complete, nothing is scheduled, no timeout):"]
        lines += [f"  {t.describe_state()}" for t in self.threads if t.state is not EXITED]
        lines.append(self.kernel.describe_world())
        return "\n".join(lines)

    # ------------------------------------------------------------ the end

    def unwind_all(self) -> None:
        """End every program thread other than the main one that has not exited:
        each raises a private BaseException where it is parked, one at a time
        (so no two run at once), and is joined."""
        self.unwind(self.threads)

    def unwind(self, threads: list[ProgramThread]) -> None:
        """End these threads (the main one and those already ended are left as
        they are), as :meth:`unwind_all` does; from the main thread.  Threads
        waiting on an ended thread's handle are woken (it is signalled).

        Unwinding a thread is a turn of the baton: the main thread hands it to
        the thread, which raises the private exception where it is parked and
        runs whatever the program does on the way out (its ``finally`` blocks;
        an interface call raises the exception again), then hands the baton back
        as its Python thread ends.  The main thread waits for that hand-back,
        not for some time, so no two threads ever run at once however slow the
        machine.  A thread that never hands it back (the program caught the
        exception and went on without calling the interface, or blocks outside
        the fake) is reported after :data:`UNWIND_GUARD_S` seconds by an error
        naming it, and the scheduler refuses to hand the baton from then on."""
        if self.broken is not None:
            raise InternalError(self.broken)
        if self.kernel.threads.get(threading.get_ident()) is not self.main.ts:
            raise WinsockUsageError("program threads are ended (unwound) from the main thread, the one that "
                                    f"made the first thread ({self.main.describe()}), not from "
                                    f"{threading.current_thread().name}")
        for t in list(threads):
            if t is self.main or t.state is EXITED or t.unwinding:
                continue
            t.unwinding = True
            self._unwind_one(t)
            # Gone for good: counted as exited (its handle signalled), nothing left registered.
            _LIVE.pop(t.serial, None)
            if t in self.runq:
                self.runq.remove(t)
            self._unwatch(t)
            t.wait = None
            t.state = EXITED
            t.ts.exited = True
            self.kernel.signal(t)
        self.current = self.main
        self.main.state = RUNNING

    def _unwind_one(self, t: ProgramThread) -> None:
        """Hand the baton to ``t`` (being unwound) and wait until it hands it back, then for its end."""
        py = t.py
        if py is None or not py.is_alive():  # (its Python thread is gone: no one to hand the baton to)
            return
        baton = self.main.baton
        what = t.describe_state()
        t.baton.release()
        waited = 0.0
        while not baton.acquire(timeout=_UNWIND_POLL_S):
            waited += _UNWIND_POLL_S
            if not py.is_alive():
                if baton.acquire(blocking=False):  # it handed the baton back just before it ended
                    break
                self.broken = (f"the scheduler is broken: {what} ended without handing the baton back "
                               "as it was unwound (a bug in the fake)")
                raise InternalError(self.broken)
            if waited >= UNWIND_GUARD_S:
                self.broken = (
                    f"the scheduler cannot go on: {what} was unwound (the test is over) but had not ended "
                    f"after {UNWIND_GUARD_S:g} s: the program caught the fake's unwinding exception (a "
                    "BaseException: an 'except BaseException' or a bare 'except' that goes on) and kept "
                    "running without an interface call, or it blocks outside the fake")
                raise WinsockUsageError(self.broken)
        py.join()  # it hands the baton back as its last act: only the return from _bootstrap is left

    def alive(self) -> list[ProgramThread]:
        """Threads made by CreateThread that have not exited (nor been unwound)."""
        return [t for t in self.threads if t is not self.main and t.state is not EXITED and not t.unwinding]

    def _ending(self, cur: ProgramThread) -> None:
        """An exception leaves the fake in the main thread (the chooser stopped
        the example, a scheduled callback failed...): the test is over for
        every thread, so none is left parked for ever."""
        if cur is self.main:
            self.unwind_all()


def _index(t: ProgramThread) -> int:
    return t.ts.index


def _note(exc: BaseException, text: str) -> None:
    add = getattr(exc, "add_note", None)
    if add is not None:
        add(text)


def check_cs_owner(cs: CritSec, ts: ThreadState, call: str) -> None:
    if cs.owner is not ts:
        who = f"T{cs.owner.index}" if cs.owner is not None else "no thread"
        raise WinsockUsageError(
            f"{call}: {cs.describe()} is owned by {who}, not by the calling T{ts.index}; leaving a critical "
            "section the thread does not own is undefined behaviour (it can corrupt the section)"
        )


def threads_broken(kernel: Kernel) -> list[str]:
    """The scheduler's and critical sections' invariants (see _invariants.py)."""
    out: list[str] = []
    sched = kernel.sched
    if sched is not None:
        running = [t for t in sched.threads if t.state is RUNNING]
        if len(running) != 1 or running[0] is not sched.current:
            out.append(f"{len(running)} threads are running ({', '.join(t.describe() for t in running)}), "
                       f"the baton is with {sched.current.describe()}")
        for t in sched.threads:
            if t.state is BLOCKED and t.wait is None:
                out.append(f"{t.describe()} is blocked with nothing to wait for")
            # (A thread stepping the world in its wait runs the kernel's callbacks;
            # an interface call made by one of them is checked in the middle of it.)
            if t.state is RUNNING and t.wait is not None and not kernel.acting:
                out.append(f"{t.describe()} is running but still waits in {t.wait.describe()}")
            if (t.state is EXITED) != t.signaled or (t.state is EXITED) != t.ts.exited:
                out.append(f"{t.describe()} is {t.state} but signalled={t.signaled} exited={t.ts.exited}")
            if t.state is EXITED and t.ts.apcs:
                out.append(f"{t.describe()} has exited with {len(t.ts.apcs)} completion routines queued")
            if (t.state is SUSPENDED) != (t.suspend_count > 0 and not t.signaled and t.state is not RUNNING
                                          and t.state is not BLOCKED and t.state is not RUNNABLE):
                out.append(f"{t.describe()} is {t.state} with suspend count {t.suspend_count}")
            if t.handle and (kernel.objects.get(t.handle) is t) == t.closed:
                out.append(f"{t.describe()}: handle open={not t.closed} but the handle table disagrees")
            if t.ts.prog is not t:
                out.append(f"{t.describe()}: its thread state points to another thread")
            # Held by the running thread, awaited by a parked one, kept by one that has ended:
            # a free baton was handed twice (the next park of its thread would not wait).
            if not t.baton.locked():
                out.append(f"{t.describe()} is {t.state} but its baton lock is free (handed twice?)")
            if (t.state is RUNNABLE) != (t in sched.runq) or sched.runq.count(t) > 1:
                out.append(f"{t.describe()} is {t.state} but {sched.runq.count(t)} times in the run queue")
            # Registrations are kept across waits (Scheduler._watch): whatever the state,
            # each is listed by its object, once, and none is of a closed object.
            for obj in t.watching:
                if t not in waiting_on(obj):
                    out.append(f"{t.describe()} watches {obj.handle:#x}, which does not list it")
                if obj.closed and obj not in t.stale:
                    out.append(f"{t.describe()} watches {obj.handle:#x}, which is closed")
            if len({id(obj) for obj in t.watching}) != len(t.watching):
                out.append(f"{t.describe()} watches an object twice")
            w = t.wait
            if t.state is BLOCKED and w is not None:
                if w.objs:
                    for obj in w.objs:
                        if not obj.closed and obj not in t.watching:
                            out.append(f"{t.describe()} waits on {obj.handle:#x} but is not among its waiters")
                    if t not in sched.poked and (w.done() or (w.alertable and t.ts.apcs)):
                        out.append(f"{t.describe()}: its wait ({w.describe()}) is satisfied but nothing woke it "
                                   "(an object was signalled without Scheduler.poke)")
                elif t not in sched.opaque:
                    out.append(f"{t.describe()} waits in {w.describe()} but is not looked at")
            elif t in sched.opaque or (t.state is EXITED and t.watching):
                out.append(f"{t.describe()} is {t.state} but still registered as waiting")
        waitables: list[Any] = [*kernel.objects.values(), *sched.threads]
        for obj in waitables:
            for waiter in waiting_on(obj):
                if waiter.state is EXITED or obj not in waiter.watching:
                    out.append(f"{waiter.describe()} is {waiter.state} but listed as waiting on {obj.handle:#x}")
    for key, cs in kernel.critsecs.items():
        if cs.key != key:
            out.append(f"{cs.describe()} is registered under {key:#x}")
        if (cs.owner is None) != (cs.count == 0) or cs.count < 0 or cs.waiters < 0:
            out.append(f"{cs.describe()}: owner {cs.owner!r}, recursion count {cs.count}, {cs.waiters} waiters")
        if cs.struct.OwningThread != (cs.owner.tid if cs.owner is not None else 0) \
                or cs.struct.RecursionCount != cs.count:
            out.append(f"{cs.describe()}: its structure says owner {cs.struct.OwningThread:#x} "
                       f"x{cs.struct.RecursionCount}")
    return out
