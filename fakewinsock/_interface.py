"""The Winsock interface: the calls of the overlapped-IO model, as one Protocol.

Names, parameter order, return values and error codes are Microsoft's, so MSDN
(and the seed's notes) read straight onto it:

* Calls that return ``int`` in C return it here (0 / SOCKET_ERROR, TRUE / FALSE,
  a SOCKET, WSA_WAIT_*), with the reason in ``WSAGetLastError()``.
* Out-parameters are dropped from the argument list and come back as fields of
  a named tuple, after the return value: ``rc, nbytes, flags = WSARecv(...)``.
* In/out parameters (``lpFlags``) are passed in and also come back.
* A Winsock failure is never a Python exception.  Exceptions are for misuse
  that is undefined behaviour in C (:class:`WinsockUsageError`), wrong Python
  types (TypeError), and what a backend does not emulate
  (:class:`NotEmulatedError`).

A server written against :class:`Winsock` runs unchanged on the fake backend
(:class:`fakewinsock.FakeWinsock`) and, on Windows, on the real one
(ctypes over ws2_32).  The backend is passed in; :func:`fakewinsock.get_backend`
is the one place that picks a default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ._types import (  # --- threads
    CRITICAL_SECTION,
    SOCKADDR_IN,
    WSABUF,
    WSAOVERLAPPED,
    AcceptExResult,
    AcceptExSockaddrs,
    ApcRoutine,
    CompletionRoutine,
    CreateThreadResult,
    ExitCodeResult,
    IoResult,
    OverlappedResult,
    QueuedCompletion,
    QueuedCompletionEx,
    SockaddrResult,
    SockoptResult,
    StartupResult,
    ThreadStartRoutine,
)

if TYPE_CHECKING:
    from ._peer import Peer

__all__ = ["Winsock"]


@runtime_checkable
class Winsock(Protocol):
    """Every call of the seed's overlapped-IO model.  See the module docstring."""

    #: "fake" or "real"
    name: str

    # --- start-up ---------------------------------------------------------
    def WSAStartup(self, wVersionRequired: int) -> StartupResult:
        """Returns the error code itself (not via WSAGetLastError) and lpWSAData."""
        ...

    def WSACleanup(self) -> int:
        """0, or SOCKET_ERROR (WSANOTINITIALISED without a matching WSAStartup)."""
        ...

    def WSAGetLastError(self) -> int:
        """The calling thread's last error."""
        ...

    def WSASetLastError(self, iError: int) -> None:
        """Set the calling thread's last error."""
        ...

    # --- sockets ----------------------------------------------------------
    def WSASocket(self, af: int, type: int, protocol: int, lpProtocolInfo: None, g: int,  # noqa: A002
                  dwFlags: int) -> int:
        """A SOCKET, or INVALID_SOCKET."""
        ...

    def closesocket(self, s: int) -> int:
        """0 or SOCKET_ERROR.  Pending operations complete later with an error."""
        ...

    def bind(self, s: int, name: SOCKADDR_IN, namelen: int) -> int:
        """0 or SOCKET_ERROR."""
        ...

    def listen(self, s: int, backlog: int) -> int:
        """0 or SOCKET_ERROR."""
        ...

    def connect(self, s: int, name: SOCKADDR_IN, namelen: int) -> int:
        """0 or SOCKET_ERROR (blocking connect, for the client side)."""
        ...

    def shutdown(self, s: int, how: int) -> int:
        """0 or SOCKET_ERROR."""
        ...

    def setsockopt(self, s: int, level: int, optname: int, optval: object, optlen: int) -> int:
        """0 or SOCKET_ERROR.  ``optval``: bytes, a ctypes structure, or an int
        encoded little-endian in ``optlen`` bytes."""
        ...

    def getsockopt(self, s: int, level: int, optname: int, optlen: int) -> SockoptResult:
        """(0 or SOCKET_ERROR, the option's bytes)."""
        ...

    def getsockname(self, s: int) -> SockaddrResult:
        """(0 or SOCKET_ERROR, SOCKADDR_IN)."""
        ...

    def getpeername(self, s: int) -> SockaddrResult:
        """(0 or SOCKET_ERROR, SOCKADDR_IN)."""
        ...

    # --- overlapped operations --------------------------------------------
    def AcceptEx(self, sListenSocket: int, sAcceptSocket: int, lpOutputBuffer: bytearray | None,
                 dwReceiveDataLength: int, dwLocalAddressLength: int, dwRemoteAddressLength: int,
                 lpOverlapped: WSAOVERLAPPED | None) -> AcceptExResult:
        """(TRUE, bytes received) when completed at once; (FALSE, 0) otherwise,
        WSA_IO_PENDING in the last error when it pends."""
        ...

    def GetAcceptExSockaddrs(self, lpOutputBuffer: bytearray | memoryview, dwReceiveDataLength: int,
                             dwLocalAddressLength: int, dwRemoteAddressLength: int) -> AcceptExSockaddrs:
        """The local and remote addresses AcceptEx wrote into its buffer."""
        ...

    def WSARecv(self, s: int, lpBuffers: Sequence[WSABUF], dwBufferCount: int, lpFlags: int,
                lpOverlapped: WSAOVERLAPPED, lpCompletionRoutine: CompletionRoutine | None) -> IoResult:
        """(0, bytes, flags) on immediate success (which still notifies), or
        (SOCKET_ERROR, 0, flags) with WSA_IO_PENDING or an error."""
        ...

    def WSASend(self, s: int, lpBuffers: Sequence[WSABUF], dwBufferCount: int, dwFlags: int,
                lpOverlapped: WSAOVERLAPPED, lpCompletionRoutine: CompletionRoutine | None) -> IoResult:
        """As WSARecv; a send completes with its full length or fails."""
        ...

    def WSAGetOverlappedResult(self, s: int, lpOverlapped: WSAOVERLAPPED, fWait: int) -> OverlappedResult:
        """(TRUE/FALSE, *lpcbTransfer, *lpdwFlags), derived from Internal/InternalHigh."""
        ...

    def CancelIoEx(self, hFile: int, lpOverlapped: WSAOVERLAPPED | None) -> int:
        """TRUE, or FALSE with ERROR_NOT_FOUND when nothing matched."""
        ...

    # --- events and waits ---------------------------------------------------
    def WSACreateEvent(self) -> int:
        """A manual-reset event, not signalled (WSA_INVALID_EVENT on failure); the
        last error is 0 after a success."""
        ...

    def WSACloseEvent(self, hEvent: int) -> int:
        """TRUE or FALSE."""
        ...

    def WSASetEvent(self, hEvent: int) -> int:
        """TRUE or FALSE."""
        ...

    def WSAResetEvent(self, hEvent: int) -> int:
        """TRUE or FALSE."""
        ...

    def WSAWaitForMultipleEvents(self, cEvents: int, lphEvents: Sequence[int], fWaitAll: int,
                                 dwTimeout: int, fAlertable: int) -> int:
        """WSA_WAIT_EVENT_0 + i, WSA_WAIT_IO_COMPLETION, WSA_WAIT_TIMEOUT or WSA_WAIT_FAILED
        (it is WaitForMultipleObjectsEx: a pseudo-handle in lphEvents fails, WSA_INVALID_HANDLE)."""
        ...

    def SleepEx(self, dwMilliseconds: int, bAlertable: int) -> int:
        """0, or WAIT_IO_COMPLETION when completion routines ran."""
        ...

    # --- test support ---------------------------------------------------------
    def peer(self) -> Peer:
        """A new, unconnected remote endpoint for test code (a simulated one on
        the fake, a standard-library socket on the real backend)."""
        ...

    # --- threads -------------------------------------------------------------
    # Win32 (kernel32) calls a threaded server needs, with kernel32's
    # conventions: failures return FALSE / NULL / WAIT_FAILED with the reason
    # in GetLastError(), which is the same per-thread slot WSAGetLastError reads.

    def CreateThread(self, lpThreadAttributes: None, dwStackSize: int, lpStartAddress: ThreadStartRoutine,
                     lpParameter: Any, dwCreationFlags: int) -> CreateThreadResult:
        """A new thread running ``lpStartAddress(lpParameter)``; its return value
        (a DWORD) is the thread's exit code.  ``dwCreationFlags``: 0 or
        CREATE_SUSPENDED (then ResumeThread starts it).  (hThread, dwThreadId);
        hThread is 0 (NULL) on failure."""
        ...

    def ResumeThread(self, hThread: int) -> int:
        """The thread's previous suspend count (it runs when the count reaches
        0), or RESUME_THREAD_FAILED ((DWORD)-1)."""
        ...

    def WaitForSingleObject(self, hHandle: int, dwMilliseconds: int) -> int:
        """WAIT_OBJECT_0 (the thread has exited, the event is signalled),
        WAIT_TIMEOUT or WAIT_FAILED."""
        ...

    def WaitForSingleObjectEx(self, hHandle: int, dwMilliseconds: int, bAlertable: int) -> int:
        """As WaitForSingleObject; alertable, WAIT_IO_COMPLETION after running this
        thread's queued completion routines."""
        ...

    def WaitForMultipleObjects(self, nCount: int, lpHandles: Sequence[int], bWaitAll: int,
                               dwMilliseconds: int) -> int:
        """WAIT_OBJECT_0 + i (the lowest signalled index; 0 when bWaitAll and all
        are), WAIT_TIMEOUT or WAIT_FAILED (nCount 0 or over MAXIMUM_WAIT_OBJECTS:
        ERROR_INVALID_PARAMETER; an invalid handle, or a pseudo-handle
        (GetCurrentThread's, GetCurrentProcess's), which only the single-object
        waits take: ERROR_INVALID_HANDLE)."""
        ...

    def WaitForMultipleObjectsEx(self, nCount: int, lpHandles: Sequence[int], bWaitAll: int,
                                 dwMilliseconds: int, bAlertable: int) -> int:
        """As WaitForMultipleObjects, plus WAIT_IO_COMPLETION when alertable."""
        ...

    def GetExitCodeThread(self, hThread: int) -> ExitCodeResult:
        """(TRUE, exit code), the exit code being STILL_ACTIVE while the thread
        runs; (FALSE, 0) with ERROR_INVALID_HANDLE for a handle that is no thread."""
        ...

    def CloseHandle(self, hObject: int) -> int:
        """Close a thread, event, completion-port or socket handle: TRUE, or FALSE
        with ERROR_INVALID_HANDLE.  Closing a thread's handle does not end the
        thread; closing a port wakes its waiters with ERROR_ABANDONED_WAIT_0;
        a thread blocked in a wait on an event or thread whose handle is closed
        goes on waiting on the object."""
        ...

    def GetCurrentThreadId(self) -> int:
        """The calling thread's id."""
        ...

    def GetCurrentThread(self) -> int:
        """The pseudo-handle CURRENT_THREAD_PSEUDO_HANDLE ((HANDLE)-2): "the calling
        thread" for the calls it is passed to (QueueUserAPC, WaitForSingleObject(Ex):
        never signalled while the thread waits, GetExitCodeThread, ResumeThread;
        CloseHandle on it: TRUE, no effect).  WaitForMultipleObjects(Ex) and
        WSAWaitForMultipleEvents refuse it (WAIT_FAILED, ERROR_INVALID_HANDLE),
        as they refuse GetCurrentProcess's (INVALID_HANDLE_VALUE)."""
        ...

    def QueueUserAPC(self, pfnAPC: ApcRoutine, hThread: int, dwData: int) -> int:
        """Queue ``pfnAPC(dwData)`` to the thread ``hThread``: it runs in that
        thread's next alertable wait, first in, first out with the thread's
        completion routines, and the wait returns WAIT_IO_COMPLETION; queued
        before the thread began, it runs before the thread procedure.  Nonzero,
        or 0 with ERROR_INVALID_HANDLE (no thread) or ERROR_GEN_FAILURE (the
        thread has exited)."""
        ...

    def GetLastError(self) -> int:
        """The calling thread's last error (the slot WSAGetLastError reads)."""
        ...

    def SetLastError(self, dwErrCode: int) -> None:
        """Set the calling thread's last error."""
        ...

    def Sleep(self, dwMilliseconds: int) -> None:
        """Sleep, not alertably (SleepEx(dwMilliseconds, FALSE))."""
        ...

    def GetTickCount64(self) -> int:
        """Milliseconds since the system started (64 bits: it never wraps).  It
        advances in steps of the system timer (about 15.6 ms on Windows), so
        only differences mean anything, and only to that resolution."""
        ...

    def InitializeCriticalSection(self, lpCriticalSection: CRITICAL_SECTION) -> None:
        """Make ``lpCriticalSection`` (a CRITICAL_SECTION the caller created) usable."""
        ...

    def EnterCriticalSection(self, lpCriticalSection: CRITICAL_SECTION) -> None:
        """Own the section, waiting while another thread owns it (recursive: the
        owner may enter again, and leaves as many times)."""
        ...

    def TryEnterCriticalSection(self, lpCriticalSection: CRITICAL_SECTION) -> int:
        """TRUE (now owned by the caller) or FALSE (another thread owns it), without waiting."""
        ...

    def LeaveCriticalSection(self, lpCriticalSection: CRITICAL_SECTION) -> None:
        """Leave the section once (the owner only)."""
        ...

    def DeleteCriticalSection(self, lpCriticalSection: CRITICAL_SECTION) -> None:
        """Release the section's resources (no thread may own or wait for it)."""
        ...

    # --- completion ports ----------------------------------------------------
    def CreateIoCompletionPort(self, FileHandle: int, ExistingCompletionPort: int, CompletionKey: int,
                               NumberOfConcurrentThreads: int) -> int:
        """FileHandle INVALID_HANDLE_VALUE and ExistingCompletionPort 0: a new port
        (NumberOfConcurrentThreads 0: as many as processors).  A socket and a
        port: associate them, packets carry CompletionKey; returns the port.
        0 (NULL) on failure: ERROR_INVALID_HANDLE (not a socket or not a port),
        ERROR_INVALID_PARAMETER (the socket already has a port, or was made
        without WSA_FLAG_OVERLAPPED)."""
        ...

    def GetQueuedCompletionStatus(self, CompletionPort: int, dwMilliseconds: int) -> QueuedCompletion:
        """Dequeue one packet, waiting up to dwMilliseconds (INFINITE): see QueuedCompletion."""
        ...

    def GetQueuedCompletionStatusEx(self, CompletionPort: int, ulCount: int, dwMilliseconds: int,
                                    fAlertable: int) -> QueuedCompletionEx:
        """Dequeue up to ulCount packets at once; alertable, queued completion
        routines run and it returns FALSE with WAIT_IO_COMPLETION."""
        ...

    def PostQueuedCompletionStatus(self, CompletionPort: int, dwNumberOfBytesTransferred: int,
                                   dwCompletionKey: int, lpOverlapped: WSAOVERLAPPED | None) -> int:
        """Queue a packet of the caller's own making: TRUE or FALSE."""
        ...

    def SetFileCompletionNotificationModes(self, FileHandle: int, Flags: int) -> int:
        """FILE_SKIP_COMPLETION_PORT_ON_SUCCESS (an operation that succeeds inside
        its call queues no packet) and/or FILE_SKIP_SET_EVENT_ON_HANDLE: TRUE or FALSE.
        A mode once set stays set (0 or fewer flags succeed and remove nothing)."""
        ...

    def CancelIo(self, hFile: int) -> int:
        """Cancel the calling thread's operations on hFile: TRUE or FALSE."""
        ...
