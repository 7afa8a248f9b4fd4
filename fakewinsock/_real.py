"""The real backend: the Winsock interface over ws2_32.dll, through ctypes.

Windows only (also Windows Python under Wine, which is how CI runs it:
``tools/wine/conformance.sh``).  Importing this module elsewhere raises
ImportError; :func:`fakewinsock.get_backend` is the one place that imports it.

How the machinery fits together
===============================

Each method of :class:`RealWinsock` is one C call, declared in
:mod:`fakewinsock._winapi`: the arguments are checked for their Python types
(TypeError, as on the fake), converted, passed, and the return value and the
out-parameters come back as the interface's named tuples.  A Winsock failure
is the C return value plus ``WSAGetLastError()``, never an exception.

**Lifetimes.**  An overlapped call hands the kernel addresses that it keeps
using after the call has returned: the WSAOVERLAPPED (Windows writes
``Internal``/``InternalHigh`` into it at completion), the C array of WSABUFs,
the bytes each WSABUF points at, the ``lpFlags``/byte-count DWORDs, and, for a
completion routine, the callback.  Python would free any of them as soon as the
caller drops its last reference, and Windows would then write into freed
memory.  So every operation that did not fail at once becomes an :class:`_Op`
in the process-wide registry ``_inflight``, keyed by the WSAOVERLAPPED's
address (the value the kernel gives back), which holds:

* the WSAOVERLAPPED object itself (so the address stays valid, and so a
  completion routine gets the caller's own object, subclass and all);
* the C WSABUF array and, for each buffer, a ctypes array made with
  ``(c_char * n).from_buffer(bytearray)``: it points into the caller's
  bytearray without copying and holds a buffer export on it, so the bytearray
  cannot be resized (moved) while the kernel writes into it.  Read-only bytes
  (sends only) are copied into a ctypes array of our own;
* the DWORDs passed by pointer, and AcceptEx's output-buffer export.

An operation is *reaped*, and its record dropped, when the kernel is done with
it and the result has been taken:

* with a completion routine: when the routine runs.  All routines go through
  one module-level WINFUNCTYPE trampoline (created once, never freed, so no
  callback can be freed while Windows may still call it); it maps the
  ``lpOverlapped`` address back to the record, drops the record, then calls
  the caller's routine with ``(dwError, cbTransferred, ov, dwFlags)``, where
  ``ov`` is the caller's WSAOVERLAPPED object;
* with event notification: when WSAGetOverlappedResult finds ``Internal`` no
  longer STATUS_PENDING; or when the same WSAOVERLAPPED is posted again after
  its operation completed (a server may read ``Internal`` itself, as
  HasOverlappedIoCompleted does, and never fetch the result); or by a sweep of
  completed records that runs whenever the registry has doubled in size.
  ``Internal`` leaves STATUS_PENDING only once the kernel has written the data
  and the byte count, so none of these can free memory still in use.

Posting a WSAOVERLAPPED whose operation is still pending (or whose completion
routine has not run yet) raises :class:`WinsockUsageError`, as on the fake: in
C it corrupts memory.  The registry is per process, not per backend object,
because the kernel's view is: dropping a RealWinsock never frees what an
operation still uses.

**Completion routines** run only in an alertable wait of the posting thread
(SleepEx, WSAWaitForMultipleEvents with fAlertable, and any other alertable
wait such as a blocking Winsock call).  An exception raised by a routine must
not unwind through the C frames of the wait: the trampoline catches it,
stores it for the thread, and the next alertable wait made through this
backend re-raises it after Windows has returned (the first one; later ones are
attached as notes).

**Last error.**  ws2_32 and kernel32 are loaded with ``use_last_error=True``;
``WSAGetLastError`` calls ws2_32's own, which reads the thread's last error as
ctypes saved it after the previous call.  kernel32's failures (CancelIoEx's
ERROR_NOT_FOUND) land there too, as in C.

**Extension functions.**  AcceptEx and GetAcceptExSockaddrs are fetched with
WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER) on a socket of our own, on first
use after WSAStartup, and forgotten when this object's own WSAStartup count
drops back to zero (the provider may be unloaded after the last WSACleanup).

**Threads.**  CreateThread makes a real Windows thread whose start routine is
one module-level WINFUNCTYPE trampoline (never freed); it calls the caller's
Python routine with its parameter and returns its int as the exit code.  An
exception escaping a routine is printed, recorded, gives the exit code
0xE0000001, and is re-raised by the next wait (WaitFor*, WSAWaitForMultipleEvents,
SleepEx) or GetExitCodeThread made through this backend.  Waits, exit codes,
CloseHandle, last errors and critical sections are kernel32's own (ctypes
releases the GIL around each call, so a waiting thread lets the others run).
As on the fake, misusing a critical section (using one never initialised or
already deleted, initialising it twice, leaving it from a thread that does not
own it, deleting it while owned) raises WinsockUsageError instead of
corrupting it.

Divergence from C (what this backend does not pass through):

* AcceptEx and GetAcceptExSockaddrs need Winsock started to fetch their
  addresses: before any WSAStartup AcceptEx fails with WSANOTINITIALISED
  without touching ``Internal``, and GetAcceptExSockaddrs raises
  WinsockUsageError.
* WSARecv and WSASend without an OVERLAPPED (blocking I/O) and
  ``lpProtocolInfo`` in WSASocket are not part of the interface (NotEmulatedError
  and TypeError).
* Lengths that would make Windows read or write past a Python buffer
  (``WSABUF.len`` over the buffer, ``dwBufferCount`` over the list, AcceptEx
  lengths over the output buffer, a ``namelen`` over SOCKADDR_IN) raise
  WinsockUsageError instead of corrupting memory, as on the fake.
"""

from __future__ import annotations

import sys

if sys.platform != "win32":
    raise ImportError(
        "fakewinsock._real is the real Winsock backend (ctypes over ws2_32.dll) and needs Windows "
        f"(or Windows Python under Wine), not {sys.platform}; use get_backend('fake') here"
    )

import ctypes
import threading
from collections.abc import Callable, Sequence
from ctypes import byref, c_char, c_int, c_void_p
from typing import Any, TypeVar, cast

from . import _constants as C
from . import _winapi as W
from ._errors import NotEmulatedError, WinsockUsageError
from ._peer import SocketPeer
from ._types import (  # --- threads
    CRITICAL_SECTION,
    OVERLAPPED_ENTRY,
    SOCKADDR_IN,
    WSABUF,
    WSADATA,
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
    optval_bytes,
)

__all__ = ["RealWinsock"]

_SOCKADDR_IN_SIZE = ctypes.sizeof(SOCKADDR_IN)  # 16
_ZERO = (c_char * 1)()  # a valid address for zero-length buffers (nothing is read or written there)


class _Op:
    """One overlapped operation the kernel may still be using, from its post to
    its reaping: the caller's WSAOVERLAPPED and everything its C call points
    into (``keep``)."""

    __slots__ = ("kind", "ov", "routine", "keep", "sock", "port")

    def __init__(self, kind: str, ov: WSAOVERLAPPED, routine: CompletionRoutine | None,
                 keep: list[object], sock: int = 0, immediate: bool = False) -> None:
        self.kind = kind
        self.ov = ov
        self.routine = routine
        self.keep = keep
        self.sock = sock
        #: The completion port its packet goes to (0: none); the record then
        #: lives until GetQueuedCompletionStatus hands the packet out.
        self.port = _packet_port(sock, ov, routine, immediate)

    def describe(self) -> str:
        return f"{self.kind} (OVERLAPPED at {ctypes.addressof(self.ov):#x})"


# --- The registry of operations in flight (per process, like the kernel's view) ---
_lock = threading.Lock()
_inflight: dict[int, _Op] = {}  # ctypes.addressof(WSAOVERLAPPED) -> its operation
_SWEEP_MIN = 64
_sweep_at = _SWEEP_MIN
_tls = threading.local()  # .errors: exceptions raised by this thread's completion routines


def _register(op: _Op) -> None:
    global _sweep_at
    with _lock:
        _inflight[ctypes.addressof(op.ov)] = op
        if len(_inflight) >= _sweep_at:
            # Event-notified operations whose result nobody fetched: release the
            # ones the kernel has finished with.
            # (Not ``op`` itself: it is registered before its call, its OVERLAPPED
            # still holding the previous operation's status.)
            done = [a for a, o in _inflight.items() if o is not op and o.routine is None
                    and o.ov.Internal != C.STATUS_PENDING and o.port not in _open_ports]
            for a in done:
                del _inflight[a]
            _sweep_at = max(_SWEEP_MIN, 2 * len(_inflight))


def _after_call(op: _Op, rc_ok: bool, immediate: bool) -> None:
    """After the call that posted ``op`` (registered before it: another
    thread's GetQueuedCompletionStatus may dequeue its packet before the call
    even returns, and must find the record): forget it if the call failed at
    once (nothing will complete; the last error is kept), and give it no port
    if it succeeded at once on a socket in FILE_SKIP_COMPLETION_PORT_ON_SUCCESS
    mode (no packet will come)."""
    addr = ctypes.addressof(op.ov)
    if not rc_ok:
        error = W.WSAGetLastError()
        with _lock:
            if _inflight.get(addr) is op:
                del _inflight[addr]
        W.WSASetLastError(error)
    elif immediate and op.port:
        with _lock:
            op.port = _packet_port(op.sock, op.ov, op.routine, True)


def _claim(call: str, ov: WSAOVERLAPPED) -> None:
    """``ov`` is about to be posted: reap its previous operation if the kernel
    is done with it, refuse it if that operation is still in flight."""
    addr = ctypes.addressof(ov)
    with _lock:
        op = _inflight.get(addr)
        if op is None:
            return
        if op.routine is None and ov.Internal != C.STATUS_PENDING and op.port not in _open_ports:
            del _inflight[addr]
            return
    if op.port in _open_ports and ov.Internal != C.STATUS_PENDING:
        raise WinsockUsageError(
            f"{call}: the WSAOVERLAPPED's last operation, {op.describe()}, has its completion packet still "
            f"queued on completion port {op.port:#x}; GetQueuedCompletionStatus would hand this OVERLAPPED "
            "to the code that handles the old operation")
    if op.routine is not None and ov.Internal != C.STATUS_PENDING:
        raise WinsockUsageError(
            f"{call}: the WSAOVERLAPPED is still in use by {op.describe()}, which has completed but whose "
            "completion routine has not run yet (no alertable wait since); Windows would call the routine "
            "with this OVERLAPPED after the new operation overwrote it"
        )
    raise WinsockUsageError(
        f"{call}: the WSAOVERLAPPED is still in use by the pending {op.describe()}; reusing it corrupts "
        "memory on Windows"
    )


def _stash_routine_error(exc: BaseException) -> None:
    errors: list[BaseException] | None = getattr(_tls, "errors", None)
    if errors is None:
        errors = _tls.errors = []
    errors.append(exc)


def _raise_routine_errors() -> None:
    """Re-raise, after an alertable wait has returned, what the completion
    routines run inside it raised."""
    errors: list[BaseException] | None = getattr(_tls, "errors", None)
    if not errors:
        return
    _tls.errors = []
    _raise_first(errors, "another completion routine in the same wait raised")


def _raise_first(errors: list[BaseException], later_note: str) -> None:
    """Raise the first of ``errors``, the others attached to it as notes."""
    first = errors[0]
    for later in errors[1:]:
        if hasattr(first, "add_note"):
            first.add_note(f"{later_note} {later!r}")
    raise first


def _on_completion(dwError: int, cbTransferred: int, lpOverlapped: int, dwFlags: int) -> None:
    """The one C-callable completion routine: reap the operation, then call the
    caller's routine with its own WSAOVERLAPPED.  Never lets an exception
    unwind into Windows."""
    try:
        with _lock:
            op = _inflight.pop(lpOverlapped, None)
        if op is None or op.routine is None:
            raise WinsockUsageError(
                f"a completion routine fired for the OVERLAPPED at {lpOverlapped:#x}, which no operation "
                "with a completion routine of this backend is using"
            )
        op.keep = []  # the kernel is done with every buffer
        op.routine(dwError, cbTransferred, op.ov, dwFlags)
    except BaseException as e:  # noqa: BLE001 - stored, re-raised after the wait returns
        _stash_routine_error(e)


_TRAMPOLINE = W.LPWSAOVERLAPPED_COMPLETION_ROUTINE(_on_completion)  # lives as long as the process


# --- completion ports: what the registry needs to know (per process, like the kernel's view) ---
# A socket's port and notification modes, as this backend set them: [port, modes].
_bindings: dict[int, list[int]] = {}
_open_ports: set[int] = set()  # ports made here and not closed yet
# Packets posted with an OVERLAPPED: its address -> [(port, the object)], kept alive until taken.
_posted: dict[int, list[tuple[int, WSAOVERLAPPED]]] = {}


def _packet_port(sock: int, ov: WSAOVERLAPPED, routine: CompletionRoutine | None, immediate: bool) -> int:
    """The port a new operation's packet will go to, or 0 (see _iocp for the rules)."""
    b = _bindings.get(sock)
    if b is None or not b[0] or routine is not None or ov.hEvent & 1:
        return 0
    if immediate and b[1] & C.FILE_SKIP_COMPLETION_PORT_ON_SUCCESS:
        return 0
    return b[0]


def _forget_socket(s: int) -> None:
    """The socket handle is closed (its value may be reused); its operations keep their port."""
    with _lock:
        _bindings.pop(s, None)


def _take_packet(port: int, addr: int) -> WSAOVERLAPPED | None:
    """The caller's object for the OVERLAPPED address of a dequeued packet; the
    operation it completes is reaped."""
    if not addr:
        return None
    with _lock:
        posted = _posted.get(addr)
        if posted:
            for i, (p, obj) in enumerate(posted):
                if p == port:
                    del posted[i]
                    if not posted:
                        del _posted[addr]
                    return obj
        op = _inflight.get(addr)
        if op is not None and op.routine is None:
            del _inflight[addr]
            op.keep = []
            return op.ov
    # Not ours (posted by other code in the process): a view of that memory.
    return WSAOVERLAPPED.from_address(addr)


# --- Argument conversion ----------------------------------------------------------

def _ints(call: str, **values: object) -> None:
    for name, v in values.items():
        if not isinstance(v, int):
            raise TypeError(f"{call}: {name} must be an int, not {type(v).__name__}")


def _overlapped(call: str, ov: object) -> WSAOVERLAPPED:
    if isinstance(ov, WSAOVERLAPPED):
        return ov
    if ov is None:
        raise NotEmulatedError(f"{call} without an OVERLAPPED (blocking I/O) is not part of the interface")
    raise TypeError(f"{call}: lpOverlapped must be a WSAOVERLAPPED, not {type(ov).__name__}")


def _routine(call: str, routine: object) -> CompletionRoutine | None:
    if routine is not None and not callable(routine):
        raise TypeError(f"{call}: lpCompletionRoutine must be callable or None")
    return cast("CompletionRoutine | None", routine)


def _cbuffer(call: str, what: str, buf: object, writable: bool) -> tuple[Any, int]:
    """A ctypes array over ``buf`` and its length in bytes: shared with a
    writable buffer (holding an export on it), a copy of a read-only one
    (sends only)."""
    if isinstance(buf, bytearray):
        n = len(buf)
        return ((c_char * n).from_buffer(buf) if n else _ZERO), n
    if isinstance(buf, memoryview):
        mv = buf if buf.format == "B" and buf.ndim == 1 else buf.cast("B")
        n = mv.nbytes
        if not mv.readonly:
            return ((c_char * n).from_buffer(mv) if n else _ZERO), n
        src: bytes | memoryview = mv
    elif isinstance(buf, bytes):
        src = buf
        n = len(buf)
    else:
        raise TypeError(f"{call}: {what} must be a bytearray or memoryview, not {type(buf).__name__}")
    if writable:
        raise TypeError(f"{call}: {what} must be writable (a bytearray), not read-only {type(buf).__name__}")
    return ((c_char * n).from_buffer_copy(src) if n else _ZERO), n


def _wsabufs(call: str, lpBuffers: Sequence[WSABUF] | WSABUF, dwBufferCount: int,
             writable: bool) -> tuple[Any, list[object]]:
    """The C WSABUF array for ``lpBuffers`` and what must outlive the operation."""
    if isinstance(lpBuffers, WSABUF):
        lpBuffers = [lpBuffers]
    if dwBufferCount < 0 or dwBufferCount > len(lpBuffers):
        raise WinsockUsageError(
            f"{call}: dwBufferCount is {dwBufferCount} but lpBuffers has {len(lpBuffers)} entries; "
            "Windows would read past the array"
        )
    arr = (W.WSABUF * max(dwBufferCount, 1))()
    keep: list[object] = [arr]
    for i in range(dwBufferCount):
        wb = lpBuffers[i]
        if not isinstance(wb, WSABUF):
            raise TypeError(f"{call}: lpBuffers[{i}] must be a WSABUF, not {type(wb).__name__}")
        cbuf, n = _cbuffer(call, f"lpBuffers[{i}].buf", wb.buf, writable)
        if not isinstance(wb.len, int) or wb.len < 0 or wb.len > n:
            raise WinsockUsageError(
                f"{call}: lpBuffers[{i}].len is {wb.len} but its buffer has {n} bytes; Windows would "
                f"{'write' if writable else 'read'} past its end"
            )
        arr[i].len = wb.len
        arr[i].buf = ctypes.addressof(cbuf)
        keep.append(cbuf)
    return arr, keep


def _handle_array(call: str, count_name: str, count: int, name: str, handles: Sequence[int]) -> Any:
    """The C array of HANDLEs a wait reads (``count`` of them), checked."""
    if count > len(handles):
        raise WinsockUsageError(f"{call}: {count_name} is {count} but {name} has {len(handles)} handles; "
                                "Windows would read past the array")
    for i, h in enumerate(handles):
        if not isinstance(h, int):
            raise TypeError(f"{call}: {name}[{i}] must be an int handle, not {type(h).__name__}")
    return (W.HANDLE * max(len(handles), 1))(*handles)


def _ov_arg(ov: WSAOVERLAPPED | None) -> object:
    return byref(ov) if ov is not None else None


class RealWinsock:
    """The Winsock interface on the real ws2_32 (see the module docstring)."""

    name = "real"

    def __init__(self) -> None:
        self._startups = 0  # this object's own WSAStartup count (the process may hold more)
        self._acceptex: Any = None
        self._getsockaddrs: Any = None

    # ------------------------------------------------------------ start-up

    def WSAStartup(self, wVersionRequired: int) -> StartupResult:
        _ints("WSAStartup", wVersionRequired=wVersionRequired)
        data = W.WSADATA()
        err = W.WSAStartup(wVersionRequired & 0xFFFF, byref(data))
        if not err:
            self._startups += 1
        # lpWSAData comes back on failure too: Windows fills it in even then
        # (ReactOS's WSAStartup apitest, version 0.x).
        return StartupResult(err, WSADATA(
            data.wVersion, data.wHighVersion, data.iMaxSockets, data.iMaxUdpDg,
            data.szDescription.decode("ascii", "replace"), data.szSystemStatus.decode("ascii", "replace"),
        ))

    def WSACleanup(self) -> int:
        rc = W.WSACleanup()
        if rc == 0 and self._startups > 0:
            self._startups -= 1
            if self._startups == 0:
                self._acceptex = self._getsockaddrs = None
        return rc

    def WSAGetLastError(self) -> int:
        return W.WSAGetLastError()

    def WSASetLastError(self, iError: int) -> None:
        _ints("WSASetLastError", iError=iError)
        W.WSASetLastError(iError)

    # ------------------------------------------------------------ sockets

    def WSASocket(self, af: int, type: int, protocol: int, lpProtocolInfo: None, g: int,  # noqa: A002
                  dwFlags: int) -> int:
        _ints("WSASocket", af=af, type=type, protocol=protocol, g=g, dwFlags=dwFlags)
        if lpProtocolInfo is not None:
            raise TypeError("WSASocket: lpProtocolInfo must be None")
        return W.WSASocketW(af, type, protocol, None, g, dwFlags)

    def closesocket(self, s: int) -> int:
        _ints("closesocket", s=s)
        rc = W.closesocket(s)
        if rc == 0:
            _forget_socket(s)
        return rc

    def _sockaddr_call(self, call: str, s: int, name: SOCKADDR_IN, namelen: int) -> tuple[object, int]:
        _ints(call, s=s, namelen=namelen)
        if not isinstance(name, SOCKADDR_IN):
            raise TypeError(f"{call}: name must be a SOCKADDR_IN, not {type(name).__name__}")
        if namelen > _SOCKADDR_IN_SIZE:
            raise WinsockUsageError(f"{call}: namelen is {namelen} but a SOCKADDR_IN has {_SOCKADDR_IN_SIZE} "
                                    "bytes; Windows would read past it")
        return byref(name), namelen

    def bind(self, s: int, name: SOCKADDR_IN, namelen: int) -> int:
        ref, n = self._sockaddr_call("bind", s, name, namelen)
        return W.bind(s, ref, n)

    def listen(self, s: int, backlog: int) -> int:
        _ints("listen", s=s, backlog=backlog)
        return W.listen(s, backlog)

    def connect(self, s: int, name: SOCKADDR_IN, namelen: int) -> int:
        ref, n = self._sockaddr_call("connect", s, name, namelen)
        rc = W.connect(s, ref, n)
        _raise_routine_errors()  # a blocking Winsock call waits alertably
        return rc

    def shutdown(self, s: int, how: int) -> int:
        _ints("shutdown", s=s, how=how)
        return W.shutdown(s, how)

    def setsockopt(self, s: int, level: int, optname: int, optval: object, optlen: int) -> int:
        _ints("setsockopt", s=s, level=level, optname=optname)
        raw = optval_bytes("setsockopt", optval, optlen)
        buf = ctypes.create_string_buffer(raw, max(len(raw), 1))
        return W.setsockopt(s, level, optname, buf, optlen)

    def getsockopt(self, s: int, level: int, optname: int, optlen: int) -> SockoptResult:
        _ints("getsockopt", s=s, level=level, optname=optname, optlen=optlen)
        buf = ctypes.create_string_buffer(max(optlen, 1))
        n = c_int(optlen)
        rc = W.getsockopt(s, level, optname, buf, byref(n))
        if rc != 0:
            return SockoptResult(rc, b"")
        return SockoptResult(rc, buf.raw[:max(0, min(n.value, optlen))])

    def _name(self, call: str, s: int, fn: Any) -> SockaddrResult:
        _ints(call, s=s)
        addr = SOCKADDR_IN()
        n = c_int(_SOCKADDR_IN_SIZE)
        rc: int = fn(s, byref(addr), byref(n))
        return SockaddrResult(rc, addr if rc == 0 else None)

    def getsockname(self, s: int) -> SockaddrResult:
        return self._name("getsockname", s, W.getsockname)

    def getpeername(self, s: int) -> SockaddrResult:
        return self._name("getpeername", s, W.getpeername)

    # ------------------------------------------------------------ extension functions

    def _extension(self, attr: str, guid: tuple[int, int, int, tuple[int, ...]], proto: Any) -> Any:
        fn = getattr(self, attr)
        if fn is None:
            address = W.extension_function(guid)
            if address:
                fn = proto(address)
                setattr(self, attr, fn)
        return fn

    # ------------------------------------------------------------ overlapped operations

    def AcceptEx(self, sListenSocket: int, sAcceptSocket: int, lpOutputBuffer: bytearray | None,
                 dwReceiveDataLength: int, dwLocalAddressLength: int, dwRemoteAddressLength: int,
                 lpOverlapped: WSAOVERLAPPED | None) -> AcceptExResult:
        call = "AcceptEx"
        _ints(call, sListenSocket=sListenSocket, sAcceptSocket=sAcceptSocket)
        for nm, v in (("dwReceiveDataLength", dwReceiveDataLength), ("dwLocalAddressLength", dwLocalAddressLength),
                      ("dwRemoteAddressLength", dwRemoteAddressLength)):
            if not isinstance(v, int) or v < 0:
                raise TypeError(f"{call}: {nm} must be a non-negative int, not {v!r}")
        if lpOverlapped is not None and not isinstance(lpOverlapped, WSAOVERLAPPED):
            raise TypeError(f"{call}: lpOverlapped must be a WSAOVERLAPPED or None, "
                            f"not {type(lpOverlapped).__name__}")
        keep: list[object] = []
        out: Any = None
        if lpOutputBuffer is not None:
            if not isinstance(lpOutputBuffer, (bytearray, memoryview)):
                raise TypeError(f"{call}: lpOutputBuffer must be a bytearray, not {type(lpOutputBuffer).__name__}")
            out, size = _cbuffer(call, "lpOutputBuffer", lpOutputBuffer, True)
            need = dwReceiveDataLength + dwLocalAddressLength + dwRemoteAddressLength
            if size < need:
                raise WinsockUsageError(
                    f"{call} on socket {sListenSocket:#x}: lpOutputBuffer has {size} bytes but "
                    f"dwReceiveDataLength + both address lengths is {need}; Windows would write past its end")
            keep.append(out)
        fn = self._extension("_acceptex", C.WSAID_ACCEPTEX, W.LPFN_ACCEPTEX)
        if fn is None:
            return AcceptExResult(C.FALSE, 0)  # the last error says why (WSANOTINITIALISED)
        received = W.DWORD()
        keep.append(received)
        op = None
        if lpOverlapped is not None:
            _claim(call, lpOverlapped)
            op = _Op(call, lpOverlapped, None, keep, sListenSocket)
            _register(op)  # before the call: see _after_call
        ok: int = fn(sListenSocket, sAcceptSocket, out, dwReceiveDataLength, dwLocalAddressLength,
                     dwRemoteAddressLength, byref(received), _ov_arg(lpOverlapped))
        if op is not None:
            _after_call(op, bool(ok) or W.WSAGetLastError() == C.WSA_IO_PENDING, bool(ok))
        return AcceptExResult(ok, received.value if ok else 0)

    def GetAcceptExSockaddrs(self, lpOutputBuffer: bytearray | memoryview, dwReceiveDataLength: int,
                             dwLocalAddressLength: int, dwRemoteAddressLength: int) -> AcceptExSockaddrs:
        call = "GetAcceptExSockaddrs"
        _ints(call, dwReceiveDataLength=dwReceiveDataLength, dwLocalAddressLength=dwLocalAddressLength,
              dwRemoteAddressLength=dwRemoteAddressLength)
        if not isinstance(lpOutputBuffer, (bytearray, memoryview, bytes)):
            raise TypeError(f"{call}: lpOutputBuffer must be a bytearray, not {type(lpOutputBuffer).__name__}")
        raw = bytes(memoryview(lpOutputBuffer).cast("B"))
        rdl, lal, ral = dwReceiveDataLength, dwLocalAddressLength, dwRemoteAddressLength
        if len(raw) < rdl + lal + ral or ral < _SOCKADDR_IN_SIZE or 0 < lal < _SOCKADDR_IN_SIZE:
            raise WinsockUsageError(f"{call}: the three lengths must be those given to AcceptEx and fit the buffer")
        saved = W.WSAGetLastError()  # the call sets no error; fetching the function must not either
        fn = self._extension("_getsockaddrs", C.WSAID_GETACCEPTEXSOCKADDRS, W.LPFN_GETACCEPTEXSOCKADDRS)
        W.WSASetLastError(saved)
        if fn is None:
            raise WinsockUsageError(f"{call}: Winsock is not started (WSAStartup), so the function is not available")
        cbuf = (c_char * len(raw)).from_buffer_copy(raw)
        lp, rp = c_void_p(), c_void_p()
        ll, rl = c_int(0), c_int(0)
        fn(cbuf, rdl, lal, ral, byref(lp), byref(ll), byref(rp), byref(rl))
        base = ctypes.addressof(cbuf)

        def decode(p: c_void_p, n: c_int) -> tuple[SOCKADDR_IN, int]:
            if not p.value or n.value <= 0:
                return SOCKADDR_IN(), 0  # a local length of 0: Windows leaves it untouched
            off = p.value - base
            if not 0 <= off <= len(raw) - _SOCKADDR_IN_SIZE:
                raise WinsockUsageError(f"{call}: Windows returned an address outside the buffer")
            return SOCKADDR_IN.from_buffer_copy(cbuf, off), n.value

        local, local_len = decode(lp, ll)
        remote, remote_len = decode(rp, rl)
        return AcceptExSockaddrs(local, local_len, remote, remote_len)

    def _io(self, call: str, s: int, lpBuffers: Sequence[WSABUF], dwBufferCount: int, flags: int,
            lpOverlapped: WSAOVERLAPPED, lpCompletionRoutine: CompletionRoutine | None) -> IoResult:
        """WSARecv and WSASend: post, and register what the kernel keeps using."""
        _ints(call, s=s, dwBufferCount=dwBufferCount, flags=flags)
        ov = _overlapped(call, lpOverlapped)
        routine = _routine(call, lpCompletionRoutine)
        receiving = call == "WSARecv"
        arr, keep = _wsabufs(call, lpBuffers, dwBufferCount, receiving)
        _claim(call, ov)
        nbytes, dwflags = W.DWORD(), W.DWORD(flags & 0xFFFFFFFF)  # lpFlags is in/out for WSARecv
        keep += [nbytes, dwflags]
        fn: Callable[..., int] = W.WSARecv if receiving else W.WSASend
        flags_arg: object = byref(dwflags) if receiving else flags
        op = _Op(call, ov, routine, keep, s)
        _register(op)  # before the call: see _after_call
        rc = fn(s, arr, dwBufferCount, byref(nbytes), flags_arg, byref(ov),
                _TRAMPOLINE if routine is not None else None)
        _after_call(op, rc == 0 or W.WSAGetLastError() == C.WSA_IO_PENDING, rc == 0)  # immediate success notifies too
        if rc == 0:
            return IoResult(0, nbytes.value, dwflags.value)
        return IoResult(rc, 0, flags)

    def WSARecv(self, s: int, lpBuffers: Sequence[WSABUF], dwBufferCount: int, lpFlags: int,
                lpOverlapped: WSAOVERLAPPED, lpCompletionRoutine: CompletionRoutine | None) -> IoResult:
        return self._io("WSARecv", s, lpBuffers, dwBufferCount, lpFlags, lpOverlapped, lpCompletionRoutine)

    def WSASend(self, s: int, lpBuffers: Sequence[WSABUF], dwBufferCount: int, dwFlags: int,
                lpOverlapped: WSAOVERLAPPED, lpCompletionRoutine: CompletionRoutine | None) -> IoResult:
        return self._io("WSASend", s, lpBuffers, dwBufferCount, dwFlags, lpOverlapped, lpCompletionRoutine)

    def WSAGetOverlappedResult(self, s: int, lpOverlapped: WSAOVERLAPPED, fWait: int) -> OverlappedResult:
        call = "WSAGetOverlappedResult"
        _ints(call, s=s, fWait=fWait)
        if not isinstance(lpOverlapped, WSAOVERLAPPED):
            raise TypeError(f"{call}: lpOverlapped must be a WSAOVERLAPPED, not {type(lpOverlapped).__name__}")
        addr = ctypes.addressof(lpOverlapped)
        op = _inflight.get(addr)
        if fWait and op is not None and op.routine is not None and lpOverlapped.Internal == C.STATUS_PENDING:
            raise WinsockUsageError(
                f"{call}(fWait=TRUE) on {op.describe()}: it notifies through a completion routine, not an "
                "event; fWait=TRUE is only meaningful with event notification")
        n, flags = W.DWORD(), W.DWORD()
        ok = W.WSAGetOverlappedResult(s, byref(lpOverlapped), byref(n), fWait, byref(flags))
        if (op is not None and op.routine is None and lpOverlapped.Internal != C.STATUS_PENDING
                and op.port not in _open_ports):  # a queued packet keeps the record
            with _lock:
                if _inflight.get(addr) is op:
                    del _inflight[addr]  # reaped: the result has been taken
        return OverlappedResult(ok, n.value, flags.value)

    def CancelIoEx(self, hFile: int, lpOverlapped: WSAOVERLAPPED | None) -> int:
        _ints("CancelIoEx", hFile=hFile)
        if lpOverlapped is not None and not isinstance(lpOverlapped, WSAOVERLAPPED):
            raise TypeError("CancelIoEx: lpOverlapped must be a WSAOVERLAPPED or None")
        return W.CancelIoEx(hFile, _ov_arg(lpOverlapped))

    # ------------------------------------------------------------ events and waits

    def WSACreateEvent(self) -> int:
        return W.WSACreateEvent()

    def WSACloseEvent(self, hEvent: int) -> int:
        _ints("WSACloseEvent", hEvent=hEvent)
        return W.WSACloseEvent(hEvent)

    def WSASetEvent(self, hEvent: int) -> int:
        _ints("WSASetEvent", hEvent=hEvent)
        return W.WSASetEvent(hEvent)

    def WSAResetEvent(self, hEvent: int) -> int:
        _ints("WSAResetEvent", hEvent=hEvent)
        return W.WSAResetEvent(hEvent)

    def WSAWaitForMultipleEvents(self, cEvents: int, lphEvents: Sequence[int], fWaitAll: int,
                                 dwTimeout: int, fAlertable: int) -> int:
        call = "WSAWaitForMultipleEvents"
        _ints(call, cEvents=cEvents, fWaitAll=fWaitAll, dwTimeout=dwTimeout, fAlertable=fAlertable)
        handles = _handle_array(call, "cEvents", cEvents, "lphEvents", lphEvents)
        rc = W.WSAWaitForMultipleEvents(cEvents & 0xFFFFFFFF, handles, fWaitAll, dwTimeout & 0xFFFFFFFF, fAlertable)
        _raise_thread_errors()
        if fAlertable:
            _raise_routine_errors()
        return rc

    def SleepEx(self, dwMilliseconds: int, bAlertable: int) -> int:
        _ints("SleepEx", dwMilliseconds=dwMilliseconds, bAlertable=bAlertable)
        rc = W.SleepEx(dwMilliseconds & 0xFFFFFFFF, bAlertable)
        _raise_thread_errors()
        if bAlertable:
            _raise_routine_errors()
        return rc

    # ------------------------------------------------------------ test support

    def peer(self) -> SocketPeer:
        """A new, unconnected standard-library TCP socket (loopback peer)."""
        return SocketPeer()

    def pending_operations(self) -> list[str]:
        """The operations of this process not reaped yet (completed ones included)."""
        with _lock:
            return [op.describe() for op in _inflight.values()]

    # --- threads -----------------------------------------------------------------
    # kernel32's thread calls, straight through (see the "threads" section at the
    # end of this module for the start-routine trampoline).

    def CreateThread(self, lpThreadAttributes: None, dwStackSize: int, lpStartAddress: ThreadStartRoutine,
                     lpParameter: Any, dwCreationFlags: int) -> CreateThreadResult:
        call = "CreateThread"
        _ints(call, dwStackSize=dwStackSize, dwCreationFlags=dwCreationFlags)
        if lpThreadAttributes is not None:
            raise NotEmulatedError(f"{call}: lpThreadAttributes is not supported (pass None)")
        if not callable(lpStartAddress):
            raise TypeError(f"{call}: lpStartAddress must be a callable (the thread procedure), "
                            f"not {type(lpStartAddress).__name__}")
        if dwStackSize < 0:
            raise ValueError(f"{call}: dwStackSize is a SIZE_T, not {dwStackSize}")
        key = _keep(_starting, (lpStartAddress, lpParameter))
        tid = W.DWORD()
        h = W.CreateThread(None, dwStackSize, _THREAD_TRAMPOLINE, key, dwCreationFlags & 0xFFFFFFFF, byref(tid))
        if not h:
            with _thread_lock:
                _starting.pop(key, None)
            return CreateThreadResult(0, 0)
        return CreateThreadResult(h, tid.value)

    def ResumeThread(self, hThread: int) -> int:
        _ints("ResumeThread", hThread=hThread)
        return W.ResumeThread(hThread)

    def WaitForSingleObject(self, hHandle: int, dwMilliseconds: int) -> int:
        return self.WaitForSingleObjectEx(hHandle, dwMilliseconds, C.FALSE)

    def WaitForSingleObjectEx(self, hHandle: int, dwMilliseconds: int, bAlertable: int) -> int:
        _ints("WaitForSingleObjectEx", hHandle=hHandle, dwMilliseconds=dwMilliseconds, bAlertable=bAlertable)
        rc = W.WaitForSingleObjectEx(hHandle, dwMilliseconds & 0xFFFFFFFF, bAlertable)
        _raise_thread_errors()
        if bAlertable:
            _raise_routine_errors()
        return rc

    def WaitForMultipleObjects(self, nCount: int, lpHandles: Sequence[int], bWaitAll: int,
                               dwMilliseconds: int) -> int:
        return self.WaitForMultipleObjectsEx(nCount, lpHandles, bWaitAll, dwMilliseconds, C.FALSE)

    def WaitForMultipleObjectsEx(self, nCount: int, lpHandles: Sequence[int], bWaitAll: int,
                                 dwMilliseconds: int, bAlertable: int) -> int:
        call = "WaitForMultipleObjectsEx"
        _ints(call, nCount=nCount, bWaitAll=bWaitAll, dwMilliseconds=dwMilliseconds, bAlertable=bAlertable)
        handles = _handle_array(call, "nCount", nCount, "lpHandles", lpHandles)
        rc = W.WaitForMultipleObjectsEx(nCount & 0xFFFFFFFF, handles, bWaitAll, dwMilliseconds & 0xFFFFFFFF,
                                        bAlertable)
        _raise_thread_errors()
        if bAlertable:
            _raise_routine_errors()
        return rc

    def GetExitCodeThread(self, hThread: int) -> ExitCodeResult:
        _ints("GetExitCodeThread", hThread=hThread)
        code = W.DWORD()
        ok = W.GetExitCodeThread(hThread, byref(code))
        _raise_thread_errors()
        return ExitCodeResult(ok, code.value if ok else 0)

    # CloseHandle: in the completion ports section (it also releases a port's records).

    def GetCurrentThreadId(self) -> int:
        return W.GetCurrentThreadId()

    def GetCurrentThread(self) -> int:
        return W.GetCurrentThread() or 0

    def QueueUserAPC(self, pfnAPC: ApcRoutine, hThread: int, dwData: int) -> int:
        """kernel32's QueueUserAPC through the one APC trampoline: ``dwData``
        and ``pfnAPC`` wait in ``_apcs`` under a key (what Windows is given)
        until the APC runs; one that never runs (its thread exits first) stays
        there (a few bytes).  An exception the APC raises is re-raised by the
        alertable wait that ran it, as a completion routine's."""
        call = "QueueUserAPC"
        if not callable(pfnAPC):
            raise TypeError(f"{call}: pfnAPC must be a callable (the APC function), not {type(pfnAPC).__name__}")
        _ints(call, hThread=hThread)
        if isinstance(dwData, bool) or not isinstance(dwData, int) or not 0 <= dwData <= C.MAXULONG_PTR:
            raise TypeError(f"{call}: dwData must be a ULONG_PTR (an int from 0 to 2**64-1), not {dwData!r}")
        key = _keep(_apcs, (pfnAPC, dwData))
        rc = W.QueueUserAPC(_APC_TRAMPOLINE, hThread, key)
        if not rc:
            with _thread_lock:
                _apcs.pop(key, None)
        return rc

    def GetLastError(self) -> int:
        return W.GetLastError()

    def SetLastError(self, dwErrCode: int) -> None:
        _ints("SetLastError", dwErrCode=dwErrCode)
        W.SetLastError(dwErrCode & 0xFFFFFFFF)

    def Sleep(self, dwMilliseconds: int) -> None:
        _ints("Sleep", dwMilliseconds=dwMilliseconds)
        W.Sleep(dwMilliseconds & 0xFFFFFFFF)

    def GetTickCount64(self) -> int:
        return int(W.GetTickCount64())

    def InitializeCriticalSection(self, lpCriticalSection: CRITICAL_SECTION) -> None:
        call = "InitializeCriticalSection"
        key = _cs_key(call, lpCriticalSection)
        with _thread_lock:
            if _critsecs.get(key) is lpCriticalSection:
                raise WinsockUsageError(f"{call}: the CRITICAL_SECTION at {key:#x} is already initialised; "
                                        "initialising it again is undefined behaviour")
            _critsecs[key] = lpCriticalSection
            _critsecs_deleted.discard(key)
        W.InitializeCriticalSection(byref(lpCriticalSection))

    def EnterCriticalSection(self, lpCriticalSection: CRITICAL_SECTION) -> None:
        _cs_live("EnterCriticalSection", lpCriticalSection)
        W.EnterCriticalSection(byref(lpCriticalSection))

    def TryEnterCriticalSection(self, lpCriticalSection: CRITICAL_SECTION) -> int:
        _cs_live("TryEnterCriticalSection", lpCriticalSection)
        return W.TryEnterCriticalSection(byref(lpCriticalSection))

    def LeaveCriticalSection(self, lpCriticalSection: CRITICAL_SECTION) -> None:
        call = "LeaveCriticalSection"
        _cs_live(call, lpCriticalSection)
        me = W.GetCurrentThreadId()
        if lpCriticalSection.OwningThread != me or lpCriticalSection.RecursionCount <= 0:
            raise WinsockUsageError(
                f"{call}: the critical section is owned by thread {lpCriticalSection.OwningThread:#x}, not by "
                f"the calling thread {me:#x}; leaving a critical section the thread does not own is undefined "
                "behaviour")
        W.LeaveCriticalSection(byref(lpCriticalSection))

    def DeleteCriticalSection(self, lpCriticalSection: CRITICAL_SECTION) -> None:
        call = "DeleteCriticalSection"
        key = _cs_live(call, lpCriticalSection)
        if lpCriticalSection.OwningThread:
            raise WinsockUsageError(f"{call}: the critical section is owned by thread "
                                    f"{lpCriticalSection.OwningThread:#x}; deleting it is undefined behaviour")
        with _thread_lock:
            _critsecs.pop(key, None)
            _critsecs_deleted.add(key)
        W.DeleteCriticalSection(byref(lpCriticalSection))

    # --- completion ports ----------------------------------------------------

    def CreateIoCompletionPort(self, FileHandle: int, ExistingCompletionPort: int, CompletionKey: int,
                               NumberOfConcurrentThreads: int) -> int:
        _ints("CreateIoCompletionPort", FileHandle=FileHandle, ExistingCompletionPort=ExistingCompletionPort,
              CompletionKey=CompletionKey, NumberOfConcurrentThreads=NumberOfConcurrentThreads)
        port = W.CreateIoCompletionPort(FileHandle & C.MAXULONG_PTR, ExistingCompletionPort,
                                        CompletionKey & C.MAXULONG_PTR, NumberOfConcurrentThreads & 0xFFFFFFFF)
        if port:
            with _lock:
                _open_ports.add(port)
                if FileHandle != C.INVALID_HANDLE_VALUE:
                    b = _bindings.setdefault(FileHandle, [0, 0])
                    b[0] = port
                    # Operations already in flight on it complete to the port too.
                    for op in _inflight.values():
                        if (op.sock == FileHandle and op.routine is None and not op.ov.hEvent & 1
                                and op.ov.Internal == C.STATUS_PENDING):
                            op.port = port
        return port or 0

    def GetQueuedCompletionStatus(self, CompletionPort: int, dwMilliseconds: int) -> QueuedCompletion:
        _ints("GetQueuedCompletionStatus", CompletionPort=CompletionPort, dwMilliseconds=dwMilliseconds)
        n, key, addr = W.DWORD(), ctypes.c_size_t(), ctypes.c_size_t()
        ok = W.GetQueuedCompletionStatus(CompletionPort, byref(n), byref(key), byref(addr),
                                         dwMilliseconds & 0xFFFFFFFF)
        ov = _take_packet(CompletionPort, addr.value or 0)
        if ov is None and not ok:
            return QueuedCompletion(ok, 0, 0, None)  # nothing dequeued: Windows left the two untouched
        return QueuedCompletion(ok, n.value, key.value, ov)

    def GetQueuedCompletionStatusEx(self, CompletionPort: int, ulCount: int, dwMilliseconds: int,
                                    fAlertable: int) -> QueuedCompletionEx:
        _ints("GetQueuedCompletionStatusEx", CompletionPort=CompletionPort, ulCount=ulCount,
              dwMilliseconds=dwMilliseconds, fAlertable=fAlertable)
        if ulCount <= 0:
            raise WinsockUsageError(f"GetQueuedCompletionStatusEx: ulCount is {ulCount}; the array must have room "
                                    "for at least one entry (Wine writes one past it)")
        arr = (W.OVERLAPPED_ENTRY * ulCount)()
        removed = ctypes.c_uint32(0)
        ok = W.GetQueuedCompletionStatusEx(CompletionPort, arr, ulCount & 0xFFFFFFFF, byref(removed),
                                           dwMilliseconds & 0xFFFFFFFF, fAlertable)
        entries: list[OVERLAPPED_ENTRY] = []
        if ok:
            for e in arr[:removed.value]:
                entries.append(OVERLAPPED_ENTRY(e.lpCompletionKey, _take_packet(CompletionPort, e.lpOverlapped or 0),
                                                e.Internal, e.dwNumberOfBytesTransferred))
        if fAlertable:
            _raise_routine_errors()
        return QueuedCompletionEx(ok, entries)

    def PostQueuedCompletionStatus(self, CompletionPort: int, dwNumberOfBytesTransferred: int,
                                   dwCompletionKey: int, lpOverlapped: WSAOVERLAPPED | None) -> int:
        _ints("PostQueuedCompletionStatus", CompletionPort=CompletionPort,
              dwNumberOfBytesTransferred=dwNumberOfBytesTransferred, dwCompletionKey=dwCompletionKey)
        if lpOverlapped is not None and not isinstance(lpOverlapped, WSAOVERLAPPED):
            raise TypeError("PostQueuedCompletionStatus: lpOverlapped must be a WSAOVERLAPPED or None")
        addr = 0
        if lpOverlapped is not None:
            addr = ctypes.addressof(lpOverlapped)
            with _lock:  # kept alive until the packet is taken
                _posted.setdefault(addr, []).append((CompletionPort, lpOverlapped))
        ok = W.PostQueuedCompletionStatus(CompletionPort, dwNumberOfBytesTransferred & 0xFFFFFFFF,
                                          dwCompletionKey & C.MAXULONG_PTR, addr or None)
        if not ok and addr:
            with _lock:
                _posted[addr].pop()
                if not _posted[addr]:
                    del _posted[addr]
        return ok

    def SetFileCompletionNotificationModes(self, FileHandle: int, Flags: int) -> int:
        _ints("SetFileCompletionNotificationModes", FileHandle=FileHandle, Flags=Flags)
        ok = W.SetFileCompletionNotificationModes(FileHandle, Flags & 0xFF)
        if ok:
            with _lock:
                _bindings.setdefault(FileHandle, [0, 0])[1] |= Flags
        return ok

    def CancelIo(self, hFile: int) -> int:
        _ints("CancelIo", hFile=hFile)
        return W.CancelIo(hFile)

    def CloseHandle(self, hObject: int) -> int:
        """Close any handle (a thread, an event, a completion port); a port's
        packets can then never be taken, so their records are released."""
        _ints("CloseHandle", hObject=hObject)
        ok = W.CloseHandle(hObject)
        if ok:
            with _lock:
                _bindings.pop(hObject, None)
                if hObject in _open_ports:
                    # Its packets can never be taken now: release what they kept.
                    _open_ports.discard(hObject)
                    for a in [a for a, o in _inflight.items()
                              if o.port == hObject and o.ov.Internal != C.STATUS_PENDING]:
                        del _inflight[a]
                    for a in list(_posted):
                        kept = [(p, obj) for p, obj in _posted[a] if p != hObject]
                        if kept:
                            _posted[a] = kept
                        else:
                            del _posted[a]
        return ok


# --- threads -----------------------------------------------------------------------
# CreateThread's start routine is one module-level WINFUNCTYPE trampoline (made
# once, never freed: a thread may still be returning through it after its
# Python code has finished).  lpParameter is a key into ``_starting``, which
# holds the caller's routine and parameter until the new thread takes them.
# An exception escaping a start routine must not unwind into Windows: the
# trampoline prints it to stderr, records it, makes the thread's exit code
# 0xE0000001, and the next wait or GetExitCodeThread made through this backend
# (on any thread) re-raises it.

_thread_lock = threading.Lock()
_V = TypeVar("_V")
_next_key = 0  # the last key _keep gave
_starting: dict[int, tuple[ThreadStartRoutine, Any]] = {}
_thread_errors: list[BaseException] = []
_critsecs: dict[int, CRITICAL_SECTION] = {}  # address -> the initialised CRITICAL_SECTION (kept alive)
_critsecs_deleted: set[int] = set()
#: Exit code of a thread whose start routine raised (never a real one: 0xE... is a customer exception code).
THREAD_FAILED_EXIT_CODE = 0xE0000001


def _keep(table: dict[int, _V], value: _V) -> int:
    """Store ``value`` in ``table`` under a new key, the parameter Windows is
    given for a trampoline (CreateThread's lpParameter, QueueUserAPC's dwData)."""
    global _next_key
    with _thread_lock:
        _next_key += 1
        table[_next_key] = value
        return _next_key


def _thread_main(key: int | None) -> int:
    with _thread_lock:
        routine, param = _starting.pop(key or 0)
    try:
        code = routine(param)
        if isinstance(code, bool) or not isinstance(code, int):
            raise TypeError(f"the start routine {routine!r} returned {code!r}, not an int "
                            "(a thread procedure returns its DWORD exit code)")
        return code & 0xFFFFFFFF
    except BaseException as e:  # noqa: BLE001 - must not unwind into Windows; re-raised by the next wait
        import traceback

        traceback.print_exc()
        if hasattr(e, "add_note"):
            e.add_note(f"raised in the start routine {routine!r} of thread {W.GetCurrentThreadId():#x}")
        with _thread_lock:
            _thread_errors.append(e)
        return THREAD_FAILED_EXIT_CODE


_THREAD_TRAMPOLINE = W.LPTHREAD_START_ROUTINE(_thread_main)  # lives as long as the process

# QueueUserAPC's function is one module-level PAPCFUNC trampoline too; its
# ULONG_PTR is a key into ``_apcs`` (the caller's function and dwData).
_apcs: dict[int, tuple[ApcRoutine, int]] = {}


def _on_apc(key: int) -> None:
    """Run a QueueUserAPC function; never lets an exception unwind into Windows
    (the alertable wait that ran it re-raises it)."""
    try:
        with _thread_lock:
            fn, data = _apcs.pop(key)
        fn(data)
    except BaseException as e:  # noqa: BLE001 - stored, re-raised after the wait returns
        _stash_routine_error(e)


_APC_TRAMPOLINE = W.PAPCFUNC(_on_apc)  # lives as long as the process


def _raise_thread_errors() -> None:
    """Re-raise the first exception a start routine raised (the others as notes)."""
    if not _thread_errors:
        return
    with _thread_lock:
        errors = list(_thread_errors)
        _thread_errors.clear()
    if errors:
        _raise_first(errors, "another thread's start routine raised")


def _cs_key(call: str, cs: object) -> int:
    if not isinstance(cs, CRITICAL_SECTION):
        raise TypeError(f"{call}: lpCriticalSection must be a CRITICAL_SECTION, not {type(cs).__name__}")
    return ctypes.addressof(cs)


def _cs_live(call: str, cs: object) -> int:
    key = _cs_key(call, cs)
    if _critsecs.get(key) is not cs:
        why = "deleted (DeleteCriticalSection)" if key in _critsecs_deleted else \
            "never initialised (InitializeCriticalSection)"
        raise WinsockUsageError(f"{call}: the CRITICAL_SECTION at {key:#x} was {why}; using it is undefined "
                                "behaviour")
    return key
