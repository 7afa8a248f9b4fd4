"""The fake's API surface for I/O completion ports: the calls of
:class:`PortCalls`, a mixin of :class:`fakewinsock.FakeWinsock` (see
:mod:`fakewinsock._api_base`).
"""

from __future__ import annotations

from . import _constants as C
from ._api_base import _NS_PER_MS, FakeBase, _as_handle
from ._errors import NotEmulatedError, WinsockUsageError
from ._iocp import Packet, Port, win32_error_of_ntstatus
from ._kernel import ThreadState
from ._types import OVERLAPPED_ENTRY, WSAOVERLAPPED, QueuedCompletion, QueuedCompletionEx

_NO_PACKET = QueuedCompletion(C.FALSE, 0, 0, None)


class PortCalls(FakeBase):
    """FakeWinsock's calls for I/O completion ports."""

    # --- completion ports ----------------------------------------------------

    def _port(self, h: object, call: str, name: str = "CompletionPort") -> Port | None:
        return self._lookup(h, Port, call, name)

    def CreateIoCompletionPort(self, FileHandle: int, ExistingCompletionPort: int, CompletionKey: int,
                               NumberOfConcurrentThreads: int) -> int:
        """A new port (FileHandle INVALID_HANDLE_VALUE, ExistingCompletionPort 0),
        or associate a socket with a port (a new one when ExistingCompletionPort
        is 0); the port's handle, or 0 with ERROR_INVALID_HANDLE (not a socket,
        not a port) or ERROR_INVALID_PARAMETER (the socket has a port already,
        or was made without WSA_FLAG_OVERLAPPED; or INVALID_HANDLE_VALUE with
        any ExistingCompletionPort but 0, a port or not).  See
        :mod:`fakewinsock._iocp`.  NumberOfConcurrentThreads is a DWORD, taken
        as C converts a Python int: -1 is 0xFFFFFFFF.

        Divergence from real Windows (unverified): that the port handle is not
        looked at when FileHandle is INVALID_HANDLE_VALUE comes from Wine's
        kernelbase (and Wine 8.0, measured), not from a Windows-run test;
        Microsoft's page only says the port must then be NULL."""
        call = "CreateIoCompletionPort"
        ts = self._enter(call)
        for name, v in (("FileHandle", FileHandle), ("ExistingCompletionPort", ExistingCompletionPort),
                        ("CompletionKey", CompletionKey), ("NumberOfConcurrentThreads", NumberOfConcurrentThreads)):
            if not isinstance(v, int):
                raise TypeError(f"{call}: {name} must be an int, not {type(v).__name__}")
        # A DWORD, as C converts it (and the real backend passes it): -1 is
        # 0xFFFFFFFF, no limit to speak of, not a port that never releases a thread.
        NumberOfConcurrentThreads &= 0xFFFFFFFF
        FileHandle = _as_handle(FileHandle)  # -1 is INVALID_HANDLE_VALUE, as the real backend passes it
        if FileHandle == C.INVALID_HANDLE_VALUE and ExistingCompletionPort:
            # No file and a port: ERROR_INVALID_PARAMETER before the port's
            # handle is looked at, so also for one that names no port
            # (Microsoft's page: with INVALID_HANDLE_VALUE "the
            # ExistingCompletionPort parameter must be NULL"; Wine's kernelbase
            # CreateIoCompletionPort fails it so without touching the port; Wine
            # 8.0 measured: 87 for a handle that names nothing).
            return self._fail(ts, call, C.ERROR_INVALID_PARAMETER, FileHandle, rc=0)
        existing: Port | None = None
        if ExistingCompletionPort:
            existing = self._port(ExistingCompletionPort, call, "ExistingCompletionPort")
            if existing is None:
                return self._fail(ts, call, C.ERROR_INVALID_HANDLE, ExistingCompletionPort, rc=0)
        if FileHandle == C.INVALID_HANDLE_VALUE:
            port = self._ports.create(NumberOfConcurrentThreads)
            if self.trace.enabled:
                self._kernel.record("call", call, port.handle, 0, f"new port concurrency={port.concurrency}")
            return port.handle
        sock = self._socket(FileHandle, call)
        if sock is None:
            return self._fail(ts, call, C.ERROR_INVALID_HANDLE, FileHandle, rc=0)
        if (sock.iocp is not None and sock.iocp.port is not None) or not sock.overlapped:
            # Already associated; or made without WSA_FLAG_OVERLAPPED, a handle for
            # synchronous I/O, which the I/O manager refuses a port (Wine's ntdll
            # tests/file.c test_file_io_completion, run on Windows: STATUS_INVALID_PARAMETER
            # for a pipe opened without FILE_FLAG_OVERLAPPED; section 46).
            return self._fail(ts, call, C.ERROR_INVALID_PARAMETER, FileHandle, rc=0)
        port = existing if existing is not None else self._ports.create(NumberOfConcurrentThreads)
        CompletionKey &= C.MAXULONG_PTR  # a ULONG_PTR: wraps as the C cast does
        self._ports.associate(sock, port, CompletionKey)
        if self.trace.enabled:
            self._kernel.record("call", call, FileHandle, 0, f"port={port.handle:#x} key={CompletionKey:#x}")
        return port.handle

    def _wait_port(self, ts: ThreadState, call: str, port: Port, dwMilliseconds: int, alertable: bool,
                   count: int) -> tuple[int, list[Packet]]:
        """Wait until the port grants this thread packets (at most ``count``):
        (0, the packets), or (the Win32 error to fail with, []): WAIT_TIMEOUT,
        WAIT_IO_COMPLETION after running completion routines, or
        ERROR_ABANDONED_WAIT_0 when the port was closed meanwhile.

        Alertable, with completion routines or APCs queued: a thread not yet
        associated with this port (its last port wait was on another port,
        or ended with its APCs, or it never waited on a port) runs them and
        returns WAIT_IO_COMPLETION even with packets queued, and stays as it
        was (still associated with its old port); a thread associated with
        the port takes a queued packet first, its routines waiting for the
        next alertable wait (Wine's ntdll tests/file.c
        ``test_set_io_completion``, plain ``ok()`` checks run on Windows:
        "APC takes priority over pending completion. Even if the thread is
        associated with some other completion port"; docs/semantics-findings.md
        section 38).  Any other call on the port associates the thread with it
        (``Ports.thread_port``), a timeout too (the kernel associates the
        thread as it enters the wait; a timeout's association is not shown by
        that test)."""
        ports = self._ports
        if alertable and ts.apcs and ports.thread_port.get(ts.index) is not port:
            self._kernel.run_apcs(ts)
            return C.WAIT_IO_COMPLETION, []
        w = ports.begin_wait(port, ts, count)
        if not ports.try_grant(port, w):
            if alertable and ts.apcs:
                ports.end_wait(port, w)
                self._kernel.run_apcs(ts)
                return C.WAIT_IO_COMPLETION, []
            deadline = None if dwMilliseconds == C.INFINITE else self._kernel.now_ns + dwMilliseconds * _NS_PER_MS
            try:
                self._kernel.block(lambda: ports.try_grant(port, w), deadline,
                                   lambda: f"{call}({port.describe()}, INFINITE)", ts if alertable else None)
            except BaseException:
                # An exception through the wait (a simulated actor's, raised in
                # this thread's turn; a deadlock): the thread no longer waits, so
                # it must not stay the most recent waiter, to which alone the
                # port grants packets.
                if w in port.waiting:
                    port.waiting.remove(w)
                raise
        if w.got:
            return 0, w.got
        ports.end_wait(port, w)
        if w.abandoned:
            return C.ERROR_ABANDONED_WAIT_0, []
        if alertable and ts.apcs:
            self._kernel.run_apcs(ts)
            return C.WAIT_IO_COMPLETION, []
        return C.WAIT_TIMEOUT, []

    def GetQueuedCompletionStatus(self, CompletionPort: int, dwMilliseconds: int) -> QueuedCompletion:
        """Dequeue one packet (waiting in virtual time): see
        :class:`fakewinsock._types.QueuedCompletion` and :mod:`fakewinsock._iocp`."""
        call = "GetQueuedCompletionStatus"
        ts = self._enter_wait(call)
        start = self._kernel.now_ns
        if not isinstance(dwMilliseconds, int):
            raise TypeError(f"{call}: dwMilliseconds must be an int, not {type(dwMilliseconds).__name__}")
        port = self._port(CompletionPort, call)
        if port is None:
            self._fail(ts, call, C.ERROR_INVALID_HANDLE, CompletionPort)
            return _NO_PACKET
        err, got = self._wait_port(ts, call, port, dwMilliseconds & 0xFFFFFFFF, False, 1)
        tracing = self.trace.enabled
        if err:
            ts.last_error = err
            if tracing:
                self._kernel.record("return", call, port.handle, 0,
                                    f"FALSE error={err} waited={self._kernel.now_ns - start}")
            return _NO_PACKET
        pkt = got[0]
        status = pkt.status
        if pkt.op is not None and pkt.op.done_ns:
            ts.delivered.append(pkt.op)  # (a record for observers: see ThreadState.handled_delivered)
        if tracing:
            self._kernel.record("dequeued", call, port.handle, pkt.op.id if pkt.op else 0,
                                f"key={pkt.key:#x} bytes={pkt.nbytes} status={status:#x} "
                                f"waited={self._kernel.now_ns - start}")
        if status < 0x80000000:
            return QueuedCompletion(C.TRUE, pkt.nbytes, pkt.key, pkt.ov)
        ts.last_error = win32_error_of_ntstatus(status)
        return QueuedCompletion(C.FALSE, pkt.nbytes, pkt.key, pkt.ov)

    def GetQueuedCompletionStatusEx(self, CompletionPort: int, ulCount: int, dwMilliseconds: int,
                                    fAlertable: int) -> QueuedCompletionEx:
        """Dequeue up to ``ulCount`` packets (TRUE, whatever their operations'
        results), or FALSE with WAIT_TIMEOUT, or, alertable, WAIT_IO_COMPLETION
        once queued completion routines have run.  ``ulCount`` below 1 raises
        WinsockUsageError."""
        call = "GetQueuedCompletionStatusEx"
        ts = self._enter_wait(call)
        start = self._kernel.now_ns
        for name, v in (("ulCount", ulCount), ("dwMilliseconds", dwMilliseconds), ("fAlertable", fAlertable)):
            if not isinstance(v, int):
                raise TypeError(f"{call}: {name} must be an int, not {type(v).__name__}")
        if ulCount <= 0:  # before the handle, as the real backend checks it before it calls Windows
            raise WinsockUsageError(
                f"{call}: ulCount is {ulCount}; the array must have room for at least one entry (what "
                "Windows does with 0 is not shown by any source we read; Wine writes an entry past it)"
            )
        port = self._port(CompletionPort, call)
        if port is None:
            self._fail(ts, call, C.ERROR_INVALID_HANDLE, CompletionPort)
            return QueuedCompletionEx(C.FALSE, [])
        err, got = self._wait_port(ts, call, port, dwMilliseconds & 0xFFFFFFFF, bool(fAlertable), ulCount)
        if err:
            ts.last_error = err
            if self.trace.enabled:
                self._kernel.record("return", call, port.handle, 0,
                                    f"FALSE error={err} waited={self._kernel.now_ns - start}")
            return QueuedCompletionEx(C.FALSE, [])
        entries = [OVERLAPPED_ENTRY(pkt.key, pkt.ov, pkt.status, pkt.nbytes) for pkt in got]
        for pkt in got:
            if pkt.op is not None and pkt.op.done_ns:
                ts.delivered.append(pkt.op)  # (a record for observers: see ThreadState.handled_delivered)
        if self.trace.enabled:
            for pkt in got:
                self._kernel.record("dequeued", call, port.handle, pkt.op.id if pkt.op else 0,
                                    f"key={pkt.key:#x} bytes={pkt.nbytes} status={pkt.status:#x}")
            self._kernel.record("return", call, port.handle, 0,
                                f"TRUE entries={len(entries)} waited={self._kernel.now_ns - start}")
        return QueuedCompletionEx(C.TRUE, entries)

    def PostQueuedCompletionStatus(self, CompletionPort: int, dwNumberOfBytesTransferred: int,
                                   dwCompletionKey: int, lpOverlapped: WSAOVERLAPPED | None) -> int:
        """Queue a packet of the caller's making (dequeued as TRUE with these
        values; ``lpOverlapped`` comes back as the same object, or None)."""
        call = "PostQueuedCompletionStatus"
        ts = self._enter(call)
        for name, v in (("dwNumberOfBytesTransferred", dwNumberOfBytesTransferred),
                        ("dwCompletionKey", dwCompletionKey)):
            if not isinstance(v, int):
                raise TypeError(f"{call}: {name} must be an int, not {type(v).__name__}")
        if lpOverlapped is not None and not isinstance(lpOverlapped, WSAOVERLAPPED):
            raise TypeError(f"{call}: lpOverlapped must be a WSAOVERLAPPED or None, "
                            f"not {type(lpOverlapped).__name__}")
        port = self._port(CompletionPort, call)
        if port is None:
            return self._fail(ts, call, C.ERROR_INVALID_HANDLE, CompletionPort, rc=C.FALSE)
        dwCompletionKey &= C.MAXULONG_PTR
        self._ports.post(port, dwNumberOfBytesTransferred & 0xFFFFFFFF, dwCompletionKey, lpOverlapped)
        if self.trace.enabled:
            self._kernel.record("call", call, port.handle, 0,
                                f"key={dwCompletionKey:#x} bytes={dwNumberOfBytesTransferred}")
        return C.TRUE

    def SetFileCompletionNotificationModes(self, FileHandle: int, Flags: int) -> int:
        """Set FILE_SKIP_COMPLETION_PORT_ON_SUCCESS and/or
        FILE_SKIP_SET_EVENT_ON_HANDLE on a socket, with or without a port.

        ``Flags`` is a UCHAR: only its low byte counts, as the C conversion
        does.  A mode once set cannot be removed: the flags are added to those
        already set, and 0 (or a subset) succeeds and leaves them all
        (Microsoft's page: "after a mode has been set for a file handle, it
        cannot be removed"; Wine's ntdll tests/file.c
        ``test_file_completion_information``, run on Windows: Flags 0 after
        FILE_SKIP_COMPLETION_PORT_ON_SUCCESS succeeds and the flag stays; an
        operation that succeeds at once then still queues no packet).
        FILE_SKIP_COMPLETION_PORT_ON_SUCCESS on a socket made without
        WSA_FLAG_OVERLAPPED (a handle opened for synchronous I/O) fails with
        ERROR_INVALID_PARAMETER (the same test, on a file opened without
        FILE_FLAG_OVERLAPPED: STATUS_INVALID_PARAMETER; the check is the I/O
        manager's, for every kind of handle).

        Not emulated (NotEmulatedError): any bit but those two, among them
        FILE_SKIP_SET_USER_EVENT_ON_FAST_IO (4): Windows' NtSetInformationFile
        accepts it and ignores unknown bits (the same test: 4 and 0xdeadbeef
        succeed), but whether kernel32's wrapper lets them through (Wine's
        does; ReactOS's refuses them with ERROR_INVALID_PARAMETER, as this fake
        did) and which of a socket's completions count as "fast I/O" that then
        leave the OVERLAPPED's event unsignalled, no source shows.  Also other
        flags than FILE_SKIP_COMPLETION_PORT_ON_SUCCESS (0 or
        FILE_SKIP_SET_EVENT_ON_HANDLE) on a socket without WSA_FLAG_OVERLAPPED:
        Wine's server refuses every call on such a handle, and no Windows-run
        test shows those."""
        call = "SetFileCompletionNotificationModes"
        ts = self._enter(call)
        if not isinstance(Flags, int):
            raise TypeError(f"{call}: Flags must be an int, not {type(Flags).__name__}")
        Flags &= 0xFF  # a UCHAR
        known = C.FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | C.FILE_SKIP_SET_EVENT_ON_HANDLE
        if Flags & ~known:
            raise NotEmulatedError(
                f"{call}: Flags {Flags:#x} has bits other than FILE_SKIP_COMPLETION_PORT_ON_SUCCESS and "
                "FILE_SKIP_SET_EVENT_ON_HANDLE (FILE_SKIP_SET_USER_EVENT_ON_FAST_IO is 0x4): Windows' "
                "NtSetInformationFile accepts them, but whether SetFileCompletionNotificationModes refuses them "
                "(ReactOS) or not (Wine), and what 0x4 does to a socket's events, no source shows"
            )
        sock = self._socket(FileHandle, call)
        if sock is None:
            return self._fail(ts, call, C.ERROR_INVALID_HANDLE, FileHandle if isinstance(FileHandle, int) else 0,
                              rc=C.FALSE)
        if not sock.overlapped:
            if Flags & C.FILE_SKIP_COMPLETION_PORT_ON_SUCCESS:
                return self._fail(ts, call, C.ERROR_INVALID_PARAMETER, FileHandle, rc=C.FALSE)
            raise NotEmulatedError(
                f"{call}: Flags {Flags:#x} on socket {FileHandle:#x}, made without WSA_FLAG_OVERLAPPED: Windows "
                "refuses FILE_SKIP_COMPLETION_PORT_ON_SUCCESS on such a handle (ERROR_INVALID_PARAMETER); what it "
                "does with other flags no source shows"
            )
        b = self._ports.binding(sock)
        b.modes |= Flags
        if self.trace.enabled:
            self._kernel.record("call", call, FileHandle, 0, f"modes={b.modes:#x}")
        return C.TRUE
