"""The fake's API surface for events and waits: WSA events,
WSAWaitForMultipleEvents, SleepEx, the kernel32 waits: the calls of
:class:`WaitCalls`, a mixin of :class:`fakewinsock.FakeWinsock` (see
:mod:`fakewinsock._api_base`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import _constants as C
from . import _kernel
from ._api_base import _NS_PER_MS, FakeBase, _as_handle
from ._errors import DeadlockError, NotEmulatedError, WinsockUsageError
from ._iocp import Port
from ._kernel import Event, ThreadState, first_signaled
from ._sockets import Socket
from ._threads import ProgramThread

#: GetTickCount64's step: Windows' default timer interrupt period (64 Hz).
TICK_NS = 15_625_000


#: The kernel is the compiled build's (tools/build_compiled.py): its objects' attributes are
#: native, which interpreted code reads through descriptors, so hot scans call into it.
_NATIVE_KERNEL = not str(_kernel.__file__).endswith(".py")


def _signalled(evs: list[Event] | list[Event | ProgramThread | Port | _Running], wait_all: int) -> int:
    """What a wait on ``evs`` returns now: the index of the first signalled event
    (0 when ``wait_all`` and all are, :func:`first_signaled` otherwise), or -1."""
    if wait_all:
        return 0 if all(e.signaled for e in evs) else -1
    return first_signaled(evs)


#: WSAWaitForMultipleEvents' wait as a deadlock's message names it, by cEvents (1-64): made once,
#: not per wait (the call then makes no closure: a wait for any event is the hot case).
_WSA_WAIT_WHAT = [f"WSAWaitForMultipleEvents({n} events, INFINITE)" for n in range(C.WSA_MAXIMUM_WAIT_EVENTS + 1)]


def _block_events(kernel: _kernel.Kernel, evs: list[Event], wait_all: int, deadline: int | None, what: str,
                  ts: ThreadState | None, signals: int, objs: Sequence[Any]) -> int:
    """WSAWaitForMultipleEvents' blocking wait when program threads run or
    all must be signalled (``Kernel.block``): the index it returns, or -1.
    Apart, so the call's usual path makes none of these closures."""
    got = [-1]  # the index when the wait was satisfied (another thread may reset it before we run)

    if wait_all:
        def done() -> bool:
            got[0] = _signalled(evs, wait_all)
            return got[0] >= 0
    elif _NATIVE_KERNEL:
        def done() -> bool:
            got[0] = first_signaled(evs)
            return got[0] >= 0
    else:
        def done() -> bool:
            for e in evs:  # (as in the call; a thread's wait asks this after every step of the world)
                if e.signaled:
                    got[0] = evs.index(e)
                    return True
            return False

    kernel.block(done, deadline, what, ts, objs, signals)
    return got[0]


def _socket_wait(call: str, h: int) -> NotEmulatedError:
    """The error for a wait on a socket's handle, which Windows allows (a socket
    is a file handle, and WSAWaitForMultipleEvents is WaitForMultipleObjectsEx).

    Not emulated because its state is not known well enough to draw it.  The
    handle follows the I/O manager's file-object event: a request that starts
    on it unsignals it, one with no event signals it when it completes, one
    with an event does not (Wine's ntdll tests, read_pipe_test, plain ok()s run
    on Windows; the fake keeps this much as ``Socket.handle_signaled`` for
    WSAGetOverlappedResult, section 34 of docs/semantics-findings.md).  The
    same test finds a fresh pipe handle signalled, whichever end; but a socket
    is set up through requests its provider sends the driver with an event of
    its own (ReactOS's msafd: the window sizes and the socket context in
    WSPSocket, then bind and listen), each of which would leave it
    unsignalled, and no Windows-run test waits on a socket."""
    return NotEmulatedError(f"{call}: waiting on a socket handle ({h:#x}) is not emulated (its signalled state "
                            "on Windows depends on requests the provider makes; no Windows-run test shows it)")


class _Running:
    """What a pseudo-handle names in WaitForSingleObject(Ex): GetCurrentThread's,
    the calling thread, and GetCurrentProcess's ((HANDLE)-1,
    INVALID_HANDLE_VALUE), the process.  Only those two waits take one (Wine's
    kernel32 sync.c test_WaitForSingleObject, run on Windows: "pseudo handles
    are allowed in WaitForSingleObject"); WaitForMultipleObjects(Ex), and so
    WSAWaitForMultipleEvents, fail with ERROR_INVALID_HANDLE (WSA_INVALID_HANDLE)
    for one anywhere in the list, even alone (test_WaitForMultipleObjects: "in
    contrast to WaitForSingleObject, pseudo handles are not allowed in
    WaitForMultipleObjects and NtWaitForMultipleObjects"; NtWaitForMultipleObjects
    looks each handle up in the handle table, which has no entry for them, where
    NtWaitForSingleObject calls ObReferenceObjectByHandle, which knows them:
    Microsoft's Windows Research Kernel, ``ob/obwait.c``).  A thread object is
    signalled when its thread ends, a process object when its process does;
    neither can happen while the calling thread waits in this call.  So a wait
    on one never ends through it: a timeout (WAIT_TIMEOUT) or, alertable, a
    queued completion routine or APC (WAIT_IO_COMPLETION); a wait on one with
    INFINITE and nothing queued never returns (the fake raises DeadlockError
    where nothing else can happen).  Sources:
    Microsoft's GetCurrentThread page ("The calling thread can use this handle
    to specify itself whenever a thread handle is required"), GetCurrentProcess's
    ("a special constant, currently (HANDLE)-1, that is interpreted as the
    current process handle") and WaitForSingleObject's (thread and process
    objects are signalled when they terminate).  So WaitForSingleObject on a
    handle that a failed call returned as INVALID_HANDLE_VALUE waits on the
    process, as on Windows.  Stateless and never registered as waited on (the waits leave them
    out of the objects they hand the scheduler): one of each for every fake."""

    __slots__ = ("handle",)
    signaled = False
    closed = False

    def __init__(self, handle: int) -> None:
        self.handle = handle


_OWN_THREAD = _Running(C.CURRENT_THREAD_PSEUDO_HANDLE)
_OWN_PROCESS = _Running(C.INVALID_HANDLE_VALUE)


def _registered(objs: Sequence[Any]) -> list[Any]:
    """``objs`` without the pseudo-handles' stand-ins, for the scheduler."""
    return [o for o in objs if type(o) is not _Running]


def _tagged(objects: dict[int, Any], h: int) -> Any:
    """The object a kernel handle names, ignoring its two low bits, which Windows
    leaves to the application (Wine's sync.c test_WaitForSingleObject, run on
    Windows: an event's handle with 1, 2 or 3 or'ed in waits as the event).

    Divergence from real Windows: only the waits read handles this way; the
    fake's other calls look handles up exactly (no source we read shows them
    with tag bits)."""
    obj = objects.get(h)
    if obj is None and type(h) is int and h & 3:
        h = _as_handle(h)  # -1 and -2: the pseudo-handles
        if h == C.CURRENT_THREAD_PSEUDO_HANDLE:
            return _OWN_THREAD
        if h == C.INVALID_HANDLE_VALUE:
            return _OWN_PROCESS
        obj = objects.get(h & ~3)
    return obj


class WaitCalls(FakeBase):
    """FakeWinsock's calls for events and waits: WSA events, WSAWaitForMultipleEvents, SleepEx, the kernel32 waits."""

    # -- events

    def WSACreateEvent(self) -> int:
        """A new manual-reset event, not signalled; the last error is 0 after it.

        WSACreateEvent is CreateEventW(NULL, TRUE, FALSE, NULL) (Wine's and
        ReactOS's ws2_32; Microsoft's page: WSA events are plain system events),
        and CreateEvent sets the last error on every success: ERROR_ALREADY_EXISTS
        for a name that existed, else 0 (Wine's kernel32 sync.c test_event and
        test_mutex, run on Windows: 0 after creating a new named event or mutex;
        Wine 8.0 measured: 0 after WSACreateEvent).

        Divergence from real Windows (unverified): no Windows-run test reads the
        last error after creating an unnamed event; that the unnamed path sets 0
        as the named one does is inferred (one code path in Wine's and ReactOS's
        kernel32)."""
        ts = self._enter("WSACreateEvent")
        ts.last_error = 0
        h = self._kernel.new_handle()
        self._kernel.objects[h] = Event(h)
        if self.trace.enabled:
            self._kernel.record("call", "WSACreateEvent", h)
        return h

    def _event(self, call: str, h: object) -> Event | None:
        return self._lookup(h, Event, call, "hEvent")

    def WSACloseEvent(self, hEvent: int) -> int:
        """Close an event handle.

        A handle that names a thread, a completion port or a socket, or is
        GetCurrentThread's or GetCurrentProcess's pseudo-handle (which
        CloseHandle takes: sections 42-43), is not emulated (NotEmulatedError): Microsoft's pages say only that the call
        fails with WSA_INVALID_HANDLE when hEvent "is not a valid event object
        handle", and also that WSA events are plain system events (WSACreateEvent:
        an application may make one with CreateEvent instead).  Wine's and
        ReactOS's ws2_32 call CloseHandle, which closes any kind of handle (a
        socket's too, behind its provider's back); no Windows-run test calls it
        on another kind of object."""
        ts = self._enter("WSACloseEvent")
        ev = self._event("WSACloseEvent", hEvent)
        if ev is None:
            other = self._kernel.objects.get(hEvent)
            if _as_handle(hEvent) in (C.INVALID_HANDLE_VALUE, C.CURRENT_THREAD_PSEUDO_HANDLE):
                other = _tagged(self._kernel.objects, hEvent)  # the process or the calling thread
            if isinstance(other, (ProgramThread, Port, Socket, _Running)):
                kind = "pseudo-handle" if type(other) is _Running else f"{type(other).__name__} handle"
                raise NotEmulatedError(
                    f"WSACloseEvent({hEvent:#x}) on a {kind} is not emulated: whether "
                    "Windows closes it (as Wine's and ReactOS's CloseHandle does) or fails is unverified")
            return self._fail(ts, "WSACloseEvent", C.WSA_INVALID_HANDLE, hEvent, rc=C.FALSE)
        self._check_not_waited("WSACloseEvent", hEvent)
        del self._kernel.objects[hEvent]
        ev.closed = True
        self._kernel.closed_events.add(hEvent)
        if self.trace.enabled:
            self._kernel.record("call", "WSACloseEvent", hEvent)
        return C.TRUE

    def WSASetEvent(self, hEvent: int) -> int:
        """Signal an event."""
        ts = self._enter("WSASetEvent")
        ev = self._event("WSASetEvent", hEvent)
        if ev is None:
            return self._fail(ts, "WSASetEvent", C.WSA_INVALID_HANDLE, hEvent, rc=C.FALSE)
        self._kernel.signal(ev)
        if self.trace.enabled:
            self._kernel.record("call", "WSASetEvent", hEvent)
        return C.TRUE

    def WSAResetEvent(self, hEvent: int) -> int:
        """Return an event to non-signalled."""
        ts = self._enter("WSAResetEvent")
        ev = self._event("WSAResetEvent", hEvent)
        if ev is None:
            return self._fail(ts, "WSAResetEvent", C.WSA_INVALID_HANDLE, hEvent, rc=C.FALSE)
        ev.signaled = False
        if self.trace.enabled:
            self._kernel.record("call", "WSAResetEvent", hEvent)
        return C.TRUE

    # -- waits

    def WSAWaitForMultipleEvents(self, cEvents: int, lphEvents: Sequence[int], fWaitAll: int,
                                 dwTimeout: int, fAlertable: int) -> int:
        """Wait (in virtual time) for one or all of up to 64 events, or, when
        alertable, for completion routines (WSA_WAIT_IO_COMPLETION).

        ``cEvents`` and ``dwTimeout`` are DWORDs, taken as C converts a
        Python int (and as the real backend passes them): a timeout of -1 is
        WSA_INFINITE, -2 is 0xFFFFFFFE ms, and a negative count is above 64
        (WSA_WAIT_FAILED, WSA_INVALID_PARAMETER); the same for the kernel32
        waits' nCount and dwMilliseconds and for SleepEx and Sleep, as
        GetQueuedCompletionStatus(Ex) already did (docs/semantics-findings.md
        section 58).

        Alertable, an event already signalled when the wait begins satisfies it
        (WSA_WAIT_EVENT_0 + index) and the queued routines stay queued for the
        next alertable wait; only a wait that finds nothing signalled runs them
        (WSA_WAIT_IO_COMPLETION).  Windows' kernel tests the objects before it
        tests for a pending user APC (KeWaitForMultipleObjects in Microsoft's
        Windows Research Kernel, ``ke/wait.c``: TestForAlertPending follows the
        scan for a signalled object); Wine 8.0 does the same.

        Divergence from real Windows: when an event is signalled and a routine
        queued while the wait blocks, both at the same step of the fake's world,
        the routines run and the wait returns WSA_WAIT_IO_COMPLETION (on Windows
        whichever came first ends the wait).

        Divergence from real Windows: a handle closed by WSACloseEvent raises
        WinsockUsageError.  Windows gives WSA_WAIT_FAILED with WSA_INVALID_HANDLE
        (as the fake does for a value that never named an event) only while the
        value names nothing; the handle table hands freed values out again, so
        the same wait may as well block on an unrelated object.
        """
        call = "WSAWaitForMultipleEvents"
        ts = self._enter_wait(call)
        start = self._kernel.now_ns  # for the trace's waited=
        if type(cEvents) is not int or type(fWaitAll) is not int or type(dwTimeout) is not int \
                or type(fAlertable) is not int:  # (the exact type first: cheaper, and the usual case)
            for name, value in (("cEvents", cEvents), ("fWaitAll", fWaitAll), ("dwTimeout", dwTimeout),
                                ("fAlertable", fAlertable)):
                if not isinstance(value, int):  # as the real backend's ctypes prototype (None is no BOOL)
                    raise TypeError(f"{call}: {name} must be an int, not {type(value).__name__}")
        # DWORDs, as C converts them (and the real backend passes them): -1 is
        # WSA_INFINITE, a negative count a huge one.
        cEvents &= 0xFFFFFFFF
        dwTimeout &= 0xFFFFFFFF
        if cEvents == 0 or cEvents > C.WSA_MAXIMUM_WAIT_EVENTS:
            return self._fail(ts, call, C.WSA_INVALID_PARAMETER, rc=C.WSA_WAIT_FAILED)
        if cEvents > len(lphEvents):
            raise WinsockUsageError(
                f"{call}: cEvents is {cEvents} but lphEvents has {len(lphEvents)} handles; "
                "Windows would read past the array"
            )
        evs: list[Event] = []
        objects = self._kernel.objects
        for i in range(cEvents):
            h = lphEvents[i]
            if type(h) is int:  # the usual case first: an int handle of an open event
                ev = objects.get(h)
                if type(ev) is Event:
                    evs.append(ev)
                    continue
            ev = self._event(call, h)
            if ev is None:
                waitable = _tagged(objects, h)
                if isinstance(waitable, Event):  # a handle with tag bits (see _tagged)
                    evs.append(waitable)
                    continue
                # any waitable handle (it is WaitForMultipleObjectsEx), but not a
                # pseudo-handle, which that call refuses (see _wait_objects)
                if isinstance(waitable, (ProgramThread, Port)):
                    evs.append(waitable)  # type: ignore[arg-type]
                    continue
                if isinstance(waitable, Socket):  # waitable on Windows too; was WSA_INVALID_HANDLE
                    raise _socket_wait(call, h)
                if h in self._kernel.closed_events:
                    raise WinsockUsageError(
                        f"{call}: lphEvents[{i}] = {h:#x} is an event that was closed with "
                        "WSACloseEvent; its handle value may already name another object"
                    )
                return self._fail(ts, call, C.WSA_INVALID_HANDLE, h, rc=C.WSA_WAIT_FAILED)
            evs.append(ev)
        if fWaitAll and len({e.handle for e in evs}) != len(evs):
            return self._fail(ts, call, C.WSA_INVALID_PARAMETER, rc=C.WSA_WAIT_FAILED)
        deadline = None if dwTimeout == C.WSA_INFINITE else self._kernel.now_ns + dwTimeout * _NS_PER_MS

        # An event already signalled satisfies the wait before queued routines
        # are looked at (see _wait_objects); with none signalled, block returns
        # at once when routines are queued.
        signals = self._kernel.signals  # block's quiet: the count this scan saw
        if fWaitAll:
            idx = _signalled(evs, fWaitAll)
        elif _NATIVE_KERNEL:  # the compiled build: the kernel's native scan
            idx = first_signaled(evs)
        else:  # _signalled, inline: a wait for any event is the hot case
            idx = -1
            for e in evs:  # (no enumerate: the scan is the hot part; the first signalled is found once)
                if e.signaled:
                    idx = evs.index(e)
                    break
        if idx < 0:
            kernel = self._kernel
            what = _WSA_WAIT_WHAT[cEvents] if type(cEvents) is int else f"{call}({cEvents} events, INFINITE)"
            if not fWaitAll and kernel.sched is None:  # the hot case: any event, no program threads
                idx = kernel.block_any(evs, deadline, what, ts if fAlertable else None)
            else:
                idx = _block_events(kernel, evs, fWaitAll, deadline, what, ts if fAlertable else None, signals,
                                    evs)
            if fAlertable and ts.apcs:
                return self._wait_io_completion(ts, call, start)
        if idx >= 0:
            if self.trace.enabled:
                self._kernel.record("return", call, evs[idx].handle, 0,
                                    f"WSA_WAIT_EVENT_0+{idx} waited={self._kernel.now_ns - start}")
            return C.WSA_WAIT_EVENT_0 + idx
        if self.trace.enabled:
            self._kernel.record("return", call, 0, 0, f"WSA_WAIT_TIMEOUT waited={self._kernel.now_ns - start}")
        return C.WSA_WAIT_TIMEOUT

    def _wait_io_completion(self, ts: ThreadState, call: str, start: int) -> int:
        self._kernel.run_apcs(ts)
        if self.trace.enabled:
            self._kernel.record("return", call, 0, 0, f"WSA_WAIT_IO_COMPLETION waited={self._kernel.now_ns - start}")
        return C.WSA_WAIT_IO_COMPLETION

    def SleepEx(self, dwMilliseconds: int, bAlertable: int) -> int:
        """Sleep in virtual time; alertable, it returns WAIT_IO_COMPLETION as soon
        as completion routines have run."""
        return self._sleep("SleepEx", dwMilliseconds, bAlertable)

    def _sleep(self, call: str, dwMilliseconds: int, bAlertable: int) -> int:
        ts = self._enter_wait(call)
        start = self._kernel.now_ns  # for the trace's waited=
        if not isinstance(dwMilliseconds, int):
            raise TypeError(f"{call}: dwMilliseconds must be an int, not {type(dwMilliseconds).__name__}")
        dwMilliseconds &= 0xFFFFFFFF  # a DWORD: -1 is INFINITE (see WSAWaitForMultipleEvents)
        deadline = None if dwMilliseconds == C.INFINITE else self._kernel.now_ns + dwMilliseconds * _NS_PER_MS
        if not bAlertable:
            if deadline is None and self._kernel.sched is None:
                raise DeadlockError(f"{call}(INFINITE, FALSE) never returns")
            self._kernel.block(lambda: False, deadline, f"{call}({dwMilliseconds}, FALSE)",
                               quiet=self._kernel.signals)  # (a done that reads nothing: see Kernel.block)
        else:
            self._kernel.block(lambda: False, deadline, f"{call}(INFINITE, TRUE)", ts, quiet=self._kernel.signals)
            if ts.apcs:
                self._kernel.run_apcs(ts)
                if self.trace.enabled:
                    self._kernel.record("return", call, 0, 0,
                                        f"WAIT_IO_COMPLETION waited={self._kernel.now_ns - start}")
                return C.WAIT_IO_COMPLETION
        if self.trace.enabled:
            self._kernel.record("return", call, 0, 0, f"0 waited={self._kernel.now_ns - start}")
        return 0

    def Sleep(self, dwMilliseconds: int) -> None:
        """Sleep, not alertably, in virtual time (other threads run meanwhile)."""
        self._sleep("Sleep", dwMilliseconds, C.FALSE)

    def GetTickCount64(self) -> int:
        """Virtual milliseconds, in steps of Windows' default timer interrupt
        (15.625 ms: the value read is that of the last interrupt).  Not a
        Winsock call: it costs no virtual time and is no scheduling point, so
        calling it changes no schedule.

        Divergence from real Windows: the count starts at 0 when the fake is
        made (Windows: at boot), and the timer's resolution is always the
        default one (a program may raise it with timeBeginPeriod)."""
        return self._kernel.now_ns // TICK_NS * TICK_NS // _NS_PER_MS

    def WaitForSingleObject(self, hHandle: int, dwMilliseconds: int) -> int:
        """Wait for a thread to exit, an event to be signalled or a completion
        port to have packets queued (the wait takes none)."""
        return self._wait_objects("WaitForSingleObject", 1, [hHandle], C.FALSE, dwMilliseconds, C.FALSE, True)

    def WaitForSingleObjectEx(self, hHandle: int, dwMilliseconds: int, bAlertable: int) -> int:
        """WaitForSingleObject, alertable: WAIT_IO_COMPLETION after running this
        thread's completion routines, unless the object is signalled when the
        wait begins (then WAIT_OBJECT_0, the routines left queued: see
        :meth:`WSAWaitForMultipleEvents`)."""
        return self._wait_objects("WaitForSingleObjectEx", 1, [hHandle], C.FALSE, dwMilliseconds, bAlertable,
                                  True)

    def WaitForMultipleObjects(self, nCount: int, lpHandles: Sequence[int], bWaitAll: int,
                               dwMilliseconds: int) -> int:
        """Wait for one (the lowest index) or all of up to 64 threads and events."""
        return self._wait_objects("WaitForMultipleObjects", nCount, lpHandles, bWaitAll, dwMilliseconds, C.FALSE)

    def WaitForMultipleObjectsEx(self, nCount: int, lpHandles: Sequence[int], bWaitAll: int,
                                 dwMilliseconds: int, bAlertable: int) -> int:
        """WaitForMultipleObjects, alertable (a wait already satisfied when it
        begins returns the object's index and leaves the routines queued: see
        :meth:`WSAWaitForMultipleEvents`)."""
        return self._wait_objects("WaitForMultipleObjectsEx", nCount, lpHandles, bWaitAll, dwMilliseconds,
                                  bAlertable)

    def _wait_objects(self, call: str, nCount: int, lpHandles: Sequence[int], bWaitAll: int,
                      dwMilliseconds: int, bAlertable: int, single: bool = False) -> int:
        ts = self._enter_wait(call)
        start = self._kernel.now_ns
        for name, value in (("nCount", nCount), ("bWaitAll", bWaitAll), ("dwMilliseconds", dwMilliseconds),
                            ("bAlertable", bAlertable)):
            if not isinstance(value, int):
                raise TypeError(f"{call}: {name} must be an int, not {type(value).__name__}")
        nCount &= 0xFFFFFFFF  # DWORDs (see WSAWaitForMultipleEvents)
        dwMilliseconds &= 0xFFFFFFFF
        if nCount == 0 or nCount > C.MAXIMUM_WAIT_OBJECTS:
            return self._fail(ts, call, C.ERROR_INVALID_PARAMETER, rc=C.WAIT_FAILED)
        if nCount > len(lpHandles):
            raise WinsockUsageError(f"{call}: nCount is {nCount} but lpHandles has {len(lpHandles)} handles; "
                                    "Windows would read past the array")
        objs: list[Event | ProgramThread | Port | _Running] = []
        pseudo = False  # a pseudo-handle's stand-in among them (see _Running)
        for i in range(nCount):
            h = lpHandles[i]
            if not isinstance(h, int):
                raise TypeError(f"{call}: lpHandles[{i}] must be an int handle, not {type(h).__name__}")
            obj = _tagged(self._kernel.objects, h)
            if type(obj) is _Running and not single:
                # NtWaitForMultipleObjects looks every handle up in the process's handle
                # table, which has no entry for a pseudo-handle: STATUS_INVALID_HANDLE
                # (sync.c test_WaitForMultipleObjects; see _Running)
                return self._fail(ts, call, C.ERROR_INVALID_HANDLE, h, rc=C.WAIT_FAILED)
            if not isinstance(obj, (Event, ProgramThread, Port, _Running)):
                if isinstance(obj, Socket):
                    raise _socket_wait(call, h)
                return self._fail(ts, call, C.ERROR_INVALID_HANDLE, h, rc=C.WAIT_FAILED)
            pseudo = pseudo or type(obj) is _Running
            objs.append(obj)
        if bWaitAll and len({o.handle for o in objs}) != len(objs):
            return self._fail(ts, call, C.ERROR_INVALID_PARAMETER, rc=C.WAIT_FAILED)
        deadline = None if dwMilliseconds == C.INFINITE else self._kernel.now_ns + dwMilliseconds * _NS_PER_MS
        signals = self._kernel.signals  # block's quiet (see WSAWaitForMultipleEvents)
        idx = _signalled(objs, bWaitAll)
        if idx < 0:
            got = [-1]

            def done() -> bool:
                got[0] = _signalled(objs, bWaitAll)
                return got[0] >= 0

            def what() -> str:
                names = ", ".join(f"{o.handle:#x}" for o in objs)
                t = "INFINITE" if deadline is None else f"{dwMilliseconds} ms"
                return f"{call}([{names}], {'all' if bWaitAll else 'any'}, {t})"

            self._kernel.block(done, deadline, what, ts if bAlertable else None,
                               _registered(objs) if pseudo else objs, signals)
            if bAlertable and ts.apcs:
                return self._wait_io_completion(ts, call, start)
            idx = got[0]
        waited = self._kernel.now_ns - start
        if idx >= 0:
            if self.trace.enabled:
                self._kernel.record("return", call, objs[idx].handle, 0, f"WAIT_OBJECT_0+{idx} waited={waited}")
            return C.WAIT_OBJECT_0 + idx
        if self.trace.enabled:
            self._kernel.record("return", call, 0, 0, f"WAIT_TIMEOUT waited={waited}")
        return C.WAIT_TIMEOUT
