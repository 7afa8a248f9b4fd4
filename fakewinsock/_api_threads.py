"""The fake's API surface for program threads and critical sections: the calls of
:class:`ThreadCalls`, a mixin of :class:`fakewinsock.FakeWinsock` (see
:mod:`fakewinsock._api_base`).
"""

from __future__ import annotations

from typing import Any

from . import _constants as C
from ._api_base import FakeBase, _addressof, _as_handle
from ._errors import NotEmulatedError, WinsockUsageError
from ._iocp import PROCESSORS, Port
from ._kernel import Event, ThreadState
from ._ops import Operation
from ._sockets import Socket, SocketOp, ended_send
from ._threads import BLOCKED, CritSec, ProgramThread, Scheduler, check_cs_owner, waiting_on
from ._types import CRITICAL_SECTION, ApcRoutine, CreateThreadResult, ExitCodeResult, ThreadStartRoutine

_NO_DEBUG_INFO = C.MAXULONG_PTR  # (PRTL_CRITICAL_SECTION_DEBUG)-1: all ones on the fake's 64-bit machine
#: RtlInitializeCriticalSection's SpinCount (Vista on): 2000 spins with
#: RTL_CRITICAL_SECTION_FLAG_DYNAMIC_SPIN on a machine with several processors, else 0.
_DEFAULT_SPIN_COUNT = 0x020007D0 if PROCESSORS > 1 else 0


class _UserApc:
    """An APC queued by QueueUserAPC (the kernel's :class:`_kernel.Apc`)."""

    __slots__ = ("fake", "fn", "data", "ts")

    def __init__(self, fake: FakeBase, fn: ApcRoutine, data: int, ts: ThreadState) -> None:
        self.fake = fake
        self.fn = fn
        self.data = data
        self.ts = ts

    def begin_routine(self) -> None:
        if self.fake.trace.enabled:
            self.fake._kernel.record("apc", "QueueUserAPC", 0, 0, self.describe(), thread=self.ts.index)

    def call_routine(self) -> None:
        self.fn(self.data)

    def describe(self) -> str:
        name = getattr(self.fn, "__qualname__", None) or type(self.fn).__name__
        return f"user APC {name}({self.data:#x})"



def _blocked_on(obj: object) -> list[ProgramThread]:
    """The threads blocked in a wait that names ``obj`` (among its waiters: no scan of every thread ever made)."""
    return [t for t in waiting_on(obj) if t.state is BLOCKED and t.wait is not None and obj in t.wait.objs]

class ThreadCalls(FakeBase):
    """FakeWinsock's calls for program threads and critical sections."""

    # --- threads -------------------------------------------------------------------
    # Program threads and the kernel32 calls of a threaded server.  The
    # scheduler is in fakewinsock._threads; these calls check arguments and
    # handles, and say what each wait waits for.

    def _scheduler(self) -> Scheduler:
        kernel = self._kernel
        sched = kernel.sched
        if sched is None:
            sched = kernel.sched = Scheduler(kernel, kernel.thread())
            sched.on_exit = self._thread_exited
        return sched

    def _thread_exited(self, ts: ThreadState) -> None:
        """A thread ended (its baton still held).  Its queued completion routines
        never run, and the I/O it posted is cancelled unless it survives thread
        exit (afd.c's test_async_thread_termination, on Windows: without a
        completion port, pending I/O is cancelled, STATUS_CANCELLED, its event
        signalled, its APC never run)."""
        record = self._kernel.record if self.trace.enabled else None
        while ts.apcs:
            apc = ts.apcs.popleft()
            if record is not None:
                record("dropped", "thread-exit", 0, 0, f"completion routine of {apc.describe()}")
            if isinstance(apc, Operation):
                self._ops.reap(apc)
        cancelled: list[Socket] = []
        for op in sorted(self._ops.by_ov.values(), key=lambda o: o.id):
            if op.thread is not ts or not op.state.in_flight or self._io_survives_thread_exit(op) or ended_send(op):
                continue  # (a send whose bytes all went out has ended: nothing to cancel)
            self._sockets.abort(op, C.STATUS_CANCELLED)
            if record is not None:
                record("cancelled", "thread-exit", op.sock.handle, op.id)
            if op.sock not in cancelled:
                cancelled.append(op.sock)
        for sock in cancelled:
            self._sockets.changed(sock)

    def _io_survives_thread_exit(self, op: SocketOp) -> bool:
        """Whether ``op`` outlives the thread that posted it: on Windows only
        I/O on a socket associated with a completion port whose OVERLAPPED has
        no event (afd.c).  Without completion ports, none does."""
        b = op.sock.iocp  # --- completion ports
        return b is not None and b.port is not None and op.routine is None and not op.ev_handle

    def _check_not_waited(self, call: str, h: int) -> None:
        """Closing ``h`` (an event's or a thread's handle): the threads that
        watch it from earlier waits let it go; a thread blocked in a wait on it
        goes on waiting on the object (``Scheduler.forget``).

        A wait holds the object, not the handle: closing the handle neither
        ends nor fails the wait, which ends as it would have, when the object
        is signalled (a thread's exit; an operation in flight whose OVERLAPPED
        names the event: it holds the event too) or at its timeout.  Source:
        Wine's kernel32 tests/sync.c ``test_mutex`` (plain ``ok()`` checks,
        run on Windows): a thread blocked in WaitForSingleObject on a mutex
        whose handle another thread closes stays blocked, and gets the mutex
        when its owner is terminated; docs/semantics-findings.md section 44.
        Microsoft's WaitForMultipleObjects page calls closing a handle while a
        wait on it is pending undefined; the fake does what Windows does.  An
        event closed so has no handle left to signal it through, so a wait on
        it alone, with nothing in flight that names it, ends only at its
        timeout (INFINITE: never, a DeadlockError once nothing else can
        happen)."""
        self._let_go(self._kernel.objects.get(h))

    def _let_go(self, obj: object) -> None:
        """``obj`` is being closed: the threads that watch it from earlier waits let it go."""
        if getattr(obj, "waiters", None):
            self._kernel.sched.forget(obj)  # type: ignore[union-attr]

    def _release_port_handle_waiters(self, port: Port) -> None:
        """A port was closed: the threads blocked in a wait on its handle
        (WaitForSingleObject(Ex), WaitForMultipleObjects(Ex),
        WSAWaitForMultipleEvents) see it signalled (``Port.signaled`` is true
        once it is closed) and their waits end with its index, WAIT_OBJECT_0
        for a wait on it alone (Wine's ntdll tests/sync.c
        test_completion_port_scheduling, "Close port handle while threads are
        waiting on it directly", run on Windows; docs/semantics-findings.md
        section 39).  Threads that watch it from earlier waits let it go.

        Divergence from real Windows: a wait for all of several objects counts
        the closed port as signalled (no source shows that case), and the
        closing is counted as a signal of the kernel's (``Kernel.wake``) only
        when a thread is blocked on the port."""
        if _blocked_on(port):
            self._kernel.wake(port)
        self._let_go(port)

    def _thread_handle(self, h: object, call: str) -> ProgramThread | None:
        """The thread a handle names (not GetCurrentThread's pseudo-handle: the
        callers answer for the calling thread themselves)."""
        return self._lookup(h, ProgramThread, call, "hThread")

    def QueueUserAPC(self, pfnAPC: ApcRoutine, hThread: int, dwData: int) -> int:
        """Queue ``pfnAPC(dwData)`` on the thread ``hThread`` (a handle from
        CreateThread, or GetCurrentThread's pseudo-handle): 1, or 0 with the
        reason in GetLastError (which success leaves as it was).

        The APC joins the thread's one queue of user APCs, behind the
        completion routines of I/O that completed before it and ahead of those
        that complete after (Microsoft's QueueUserAPC and "Asynchronous
        Procedure Calls": one FIFO queue, run by an alertable wait, which then
        returns WAIT_IO_COMPLETION); a thread blocked in an alertable wait
        becomes runnable, and the scheduler (the chooser) decides when it runs.
        Queued before the thread began (created suspended), it runs before the
        thread procedure (Microsoft's QueueUserAPC page).  A handle that is no
        thread (an event, a socket, a closed handle, NULL): ERROR_INVALID_HANDLE.
        A thread that has exited: ERROR_GEN_FAILURE (Wine's kernel32 sync.c
        test_QueueUserAPC, run on Windows: a terminated thread, NtQueueApcThread
        STATUS_UNSUCCESSFUL, QueueUserAPC 0 with ERROR_GEN_FAILURE).  Both as
        Wine 8.0 does (tests/conformance/test_queue_user_apc.py).

        An APC that raises: the exception propagates out of the wait that ran
        it, after the wait has run every APC queued (as a completion routine's)."""
        call = "QueueUserAPC"
        ts = self._enter(call)
        if not callable(pfnAPC):
            raise TypeError(f"{call}: pfnAPC must be a callable (the APC function), not {type(pfnAPC).__name__}")
        if isinstance(hThread, bool) or not isinstance(hThread, int):
            raise TypeError(f"{call}: hThread must be an int handle, not {type(hThread).__name__}")
        if isinstance(dwData, bool) or not isinstance(dwData, int) or not 0 <= dwData <= C.MAXULONG_PTR:
            raise TypeError(f"{call}: dwData must be a ULONG_PTR (an int from 0 to 2**64-1), not {dwData!r}")
        hThread = _as_handle(hThread)
        if hThread == C.CURRENT_THREAD_PSEUDO_HANDLE:
            target = ts
        else:
            pt = self._lookup(hThread, ProgramThread, call, "hThread")
            if pt is None:
                return self._fail(ts, call, C.ERROR_INVALID_HANDLE, hThread, rc=0)
            if pt.ts.exited:
                return self._fail(ts, call, C.ERROR_GEN_FAILURE, hThread, rc=0)
            target = pt.ts
        apc = _UserApc(self, pfnAPC, dwData, target)
        target.apcs.append(apc)
        if target.prog is not None and target is not ts:  # --- threads: it may be blocked in an alertable wait
            self._scheduler().poke_thread(target)
        if self.trace.enabled:
            self._kernel.record("queued", call, 0, 0, f"{apc.describe()} to T{target.index}")
        return 1

    def CreateThread(self, lpThreadAttributes: None, dwStackSize: int, lpStartAddress: ThreadStartRoutine,
                     lpParameter: Any, dwCreationFlags: int) -> CreateThreadResult:
        """A new program thread running ``lpStartAddress(lpParameter)``; it runs
        when the scheduler picks it (at the next interface call or wait)."""
        call = "CreateThread"
        self._enter(call)
        for name, value in (("dwStackSize", dwStackSize), ("dwCreationFlags", dwCreationFlags)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{call}: {name} must be an int, not {type(value).__name__}")
        if lpThreadAttributes is not None:
            raise NotEmulatedError(f"{call}: lpThreadAttributes is not emulated (pass None)")
        if not callable(lpStartAddress):
            raise TypeError(f"{call}: lpStartAddress must be a callable (the thread procedure), "
                            f"not {type(lpStartAddress).__name__}")
        unknown = dwCreationFlags & ~(C.CREATE_SUSPENDED | C.STACK_SIZE_PARAM_IS_A_RESERVATION)
        if unknown:
            raise NotEmulatedError(f"{call}: dwCreationFlags {unknown:#x} is not emulated")
        if dwStackSize < 0:
            raise ValueError(f"{call}: dwStackSize is a SIZE_T, not {dwStackSize}")
        kernel = self._kernel
        sched = self._scheduler()
        h = kernel.new_handle()
        new = kernel.new_thread_state()
        kernel._last_tid = -1  # a Python thread id may be reused: forget the cached one
        pt = sched.create(new, h, lpStartAddress, lpParameter, bool(dwCreationFlags & C.CREATE_SUSPENDED))
        kernel.objects[h] = pt
        if self.trace.enabled:
            kernel.record("call", call, h, 0, f"T{new.index} id={new.tid:#x} "
                          f"suspended={int(bool(dwCreationFlags & C.CREATE_SUSPENDED))}")
        return CreateThreadResult(h, new.tid)

    def ResumeThread(self, hThread: int) -> int:
        """Decrement the suspend count (the thread becomes runnable at 0); the
        previous count, or RESUME_THREAD_FAILED."""
        call = "ResumeThread"
        ts = self._enter(call)
        hThread = _as_handle(hThread)
        if hThread == C.CURRENT_THREAD_PSEUDO_HANDLE:
            # GetCurrentThread's pseudo-handle: the calling thread, which runs,
            # so its suspend count is 0 (as for any running thread: thread.c
            # test_SuspendThread; Microsoft's GetCurrentThread: the pseudo-handle
            # names the caller "whenever a thread handle is required").
            if self.trace.enabled:
                self._kernel.record("call", call, hThread, 0, "count=0 (the calling thread)")
            return 0
        pt = self._thread_handle(hThread, call)
        if pt is None:
            return self._fail(ts, call, C.ERROR_INVALID_HANDLE, hThread, rc=C.RESUME_THREAD_FAILED)
        prev = pt.suspend_count
        if prev > 0:
            pt.suspend_count -= 1
            if pt.suspend_count == 0:
                self._scheduler().resume(pt)
        if self.trace.enabled:
            self._kernel.record("call", call, hThread, 0, f"count={prev}")
        return prev

    def GetExitCodeThread(self, hThread: int) -> ExitCodeResult:
        """(TRUE, exit code or STILL_ACTIVE), or (FALSE, 0) with ERROR_INVALID_HANDLE.
        GetCurrentThread's pseudo-handle names the calling thread: STILL_ACTIVE."""
        call = "GetExitCodeThread"
        ts = self._enter(call)
        hThread = _as_handle(hThread)
        if hThread == C.CURRENT_THREAD_PSEUDO_HANDLE:
            return ExitCodeResult(C.TRUE, C.STILL_ACTIVE)
        pt = self._thread_handle(hThread, call)
        if pt is None:
            self._fail(ts, call, C.ERROR_INVALID_HANDLE, hThread, rc=C.FALSE)
            return ExitCodeResult(C.FALSE, 0)
        return ExitCodeResult(C.TRUE, pt.exit_code if pt.signaled else C.STILL_ACTIVE)

    def CloseHandle(self, hObject: int) -> int:
        """Close a thread or event handle (the thread goes on running), or a
        completion port (a thread waiting on it in GetQueuedCompletionStatus(Ex)
        returns ERROR_ABANDONED_WAIT_0, one waiting on its handle WAIT_OBJECT_0,
        its queued packets are dropped: see fakewinsock._iocp).
        INVALID_HANDLE_VALUE (GetCurrentProcess's pseudo-handle) and
        GetCurrentThread's pseudo-handle: TRUE, no effect.  NULL or a handle
        that names nothing: FALSE, ERROR_INVALID_HANDLE."""
        call = "CloseHandle"
        ts = self._enter(call)
        if not isinstance(hObject, int):
            raise TypeError(f"{call}: hObject must be an int handle, not {type(hObject).__name__}")
        hObject = _as_handle(hObject)
        obj = self._kernel.objects.get(hObject)
        if isinstance(obj, Socket):
            raise NotEmulatedError(f"{call}({hObject:#x}) on a socket is not emulated: close sockets with "
                                   "closesocket (Microsoft: CloseHandle on a SOCKET is not supported)")
        if obj is None:
            if hObject in (C.INVALID_HANDLE_VALUE, C.CURRENT_THREAD_PSEUDO_HANDLE):
                # GetCurrentProcess's and GetCurrentThread's pseudo-handles:
                # closing them "has no effect" (Microsoft's pages) and succeeds,
                # the last error left (the firehazard crate's Windows-run test
                # close_handle_invalid; a Win32 stand-in library's differential
                # test against Windows 11, CloseHandle(GetCurrentProcess()) and
                # CloseHandle(GetCurrentThread()): TRUE, the error untouched;
                # docs/semantics-findings.md sections 42 and 43).
                if self.trace.enabled:
                    which = "process" if hObject == C.INVALID_HANDLE_VALUE else "thread"
                    self._kernel.record("call", call, hObject, 0, f"the {which} pseudo-handle: no effect")
                return C.TRUE
            return self._fail(ts, call, C.ERROR_INVALID_HANDLE, hObject, rc=C.FALSE)
        if isinstance(obj, Port):  # --- completion ports: its waiters are released, not misused
            self._ports.close(obj)
            self._release_port_handle_waiters(obj)
        else:
            self._check_not_waited(call, hObject)
            del self._kernel.objects[hObject]
            if isinstance(obj, Event):
                obj.closed = True
                self._kernel.closed_events.add(hObject)
            elif isinstance(obj, ProgramThread):
                obj.closed = True
        if self.trace.enabled:
            self._kernel.record("call", call, hObject)
        return C.TRUE

    # -- critical sections

    def _critsec(self, call: str, cs: object) -> tuple[ThreadState, CritSec]:
        ts = self._enter(call)
        if not isinstance(cs, CRITICAL_SECTION):
            raise TypeError(f"{call}: lpCriticalSection must be a CRITICAL_SECTION, not {type(cs).__name__}")
        key = _addressof(cs)
        rec = self._critsecs.get(key)
        if rec is None or rec.struct is not cs:
            if key in self._critsecs_deleted:
                raise WinsockUsageError(f"{call}: the CRITICAL_SECTION at {key:#x} was deleted "
                                        "(DeleteCriticalSection); using it is undefined behaviour")
            raise WinsockUsageError(f"{call}: the CRITICAL_SECTION at {key:#x} was never initialised "
                                    "(InitializeCriticalSection); using it is undefined behaviour")
        return ts, rec

    def InitializeCriticalSection(self, lpCriticalSection: CRITICAL_SECTION) -> None:
        """Make a caller-allocated CRITICAL_SECTION usable: LockCount -1,
        RecursionCount 0, OwningThread and LockSemaphore NULL, and SpinCount
        ntdll's default for a machine with several processors (the fake's has
        :data:`fakewinsock._iocp.PROCESSORS`), 0x020007D0: 2000 spins and
        RTL_CRITICAL_SECTION_FLAG_DYNAMIC_SPIN (ReactOS's API test
        ntdll/RtlCriticalSection.c, Test_Init, written against Windows: Vista on,
        more than one processor; 0 with one; docs/semantics-findings.md
        section 50).

        Divergence from real Windows: DebugInfo is always (PVOID)-1, as from
        Windows 8 on; earlier versions store a pointer to debug info there.
        SpinCount keeps its first value: Windows tunes a dynamic spin count
        after contention (the same test reads 0x020007CF once a blocked waiter
        has taken the section) by a rule no source shows; the fake does not
        spin, so the value has no effect here either way."""
        call = "InitializeCriticalSection"
        self._enter(call)
        if not isinstance(lpCriticalSection, CRITICAL_SECTION):
            raise TypeError(f"{call}: lpCriticalSection must be a CRITICAL_SECTION, "
                            f"not {type(lpCriticalSection).__name__}")
        key = _addressof(lpCriticalSection)
        old = self._critsecs.get(key)
        if old is not None and old.struct is lpCriticalSection:
            raise WinsockUsageError(f"{call}: {old.describe()} is already initialised; initialising it again "
                                    "is undefined behaviour (Microsoft's InitializeCriticalSection remarks)")
        self._critsecs_deleted.discard(key)
        self._critsec_count += 1
        rec = self._critsecs[key] = CritSec(key, lpCriticalSection, self._critsec_count)
        lpCriticalSection.LockCount = -1  # what Windows writes for a free section
        lpCriticalSection.SpinCount = _DEFAULT_SPIN_COUNT
        # Windows 8 and later: no debug info, DebugInfo (PVOID)-1 (Wine's sync.c
        # test_crit_section; before 8 a pointer, accepted there through broken()).
        lpCriticalSection.DebugInfo = _NO_DEBUG_INFO
        rec.mirror()
        if self.trace.enabled:
            self._kernel.record("call", call, 0, 0, f"cs{rec.label}")

    def EnterCriticalSection(self, lpCriticalSection: CRITICAL_SECTION) -> None:
        """Own the section, waiting (in virtual time, other threads running)
        while another thread owns it; recursive for its owner."""
        call = "EnterCriticalSection"
        ts, rec = self._critsec(call, lpCriticalSection)
        if rec.owner is not ts and rec.owner is not None:
            # Windows' critical sections are not fair (since Server 2003 SP1):
            # a waiter is woken when the section is left and then competes for
            # it; a thread that runs first (the one that left it, say) may take
            # it again, and the waiter waits again.
            rec.waiters += 1
            rec.mirror()
            try:
                while rec.owner is not None:
                    self._kernel.block(lambda: rec.owner is None, None, lambda: f"{call}({rec.describe()})")
            finally:
                rec.waiters -= 1
        rec.owner = ts
        rec.count += 1
        rec.mirror()
        if self.trace.enabled:
            self._kernel.record("call", call, 0, 0, f"cs{rec.label} count={rec.count}")

    def TryEnterCriticalSection(self, lpCriticalSection: CRITICAL_SECTION) -> int:
        """TRUE (the caller owns the section now) or FALSE (another thread does)."""
        call = "TryEnterCriticalSection"
        ts, rec = self._critsec(call, lpCriticalSection)
        if rec.owner is not ts and rec.owner is not None:
            if self.trace.enabled:
                self._kernel.record("call", call, 0, 0, f"cs{rec.label} FALSE")
            return C.FALSE
        rec.owner = ts
        rec.count += 1
        rec.mirror()
        if self.trace.enabled:
            self._kernel.record("call", call, 0, 0, f"cs{rec.label} count={rec.count}")
        return C.TRUE

    def LeaveCriticalSection(self, lpCriticalSection: CRITICAL_SECTION) -> None:
        """Leave the section once; its owner only (anything else is undefined)."""
        call = "LeaveCriticalSection"
        ts, rec = self._critsec(call, lpCriticalSection)
        check_cs_owner(rec, ts, call)
        rec.count -= 1
        if rec.count == 0:
            rec.owner = None
        rec.mirror()
        if self.trace.enabled:
            self._kernel.record("call", call, 0, 0, f"cs{rec.label} count={rec.count}")

    def DeleteCriticalSection(self, lpCriticalSection: CRITICAL_SECTION) -> None:
        """Release the section; it must be neither owned nor waited for.
        Every field of the structure is 0 afterwards (ntdll's
        RtlDeleteCriticalSection wipes it: measured on Windows 11 by an
        emulator's kernel32 module, and ReactOS's rebuild does the same; Wine's
        sync.c test_crit_section checks DebugInfo NULL; docs/semantics-findings.md
        section 53)."""
        call = "DeleteCriticalSection"
        ts, rec = self._critsec(call, lpCriticalSection)
        if rec.owner is not None or rec.waiters:
            raise WinsockUsageError(
                f"{call}: {rec.describe()}, {rec.waiters} thread(s) waiting; deleting a critical section "
                "that is owned or waited for is undefined behaviour"
            )
        del self._critsecs[rec.key]
        self._critsecs_deleted.add(rec.key)
        for field in CRITICAL_SECTION._fields_:  # wiped, as RtlDeleteCriticalSection does
            setattr(lpCriticalSection, field[0], 0)
        if self.trace.enabled:
            self._kernel.record("call", call, 0, 0, f"cs{rec.label}")
