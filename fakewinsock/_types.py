"""The structures of the interface: WSAOVERLAPPED, WSABUF, SOCKADDR_IN, LINGER, WSADATA.

``WSAOVERLAPPED``, ``SOCKADDR_IN`` and ``LINGER`` are ctypes structures with the
Win64 layout written in fixed-width types, so the same object is usable by the
fake (which writes ``Internal``/``InternalHigh`` into it like the kernel does)
and by the real backend (which passes its address to ws2_32 and keeps it alive
until the operation is reaped).  ``WSABUF`` is a small Python class that holds a
``bytearray``; the real backend builds the C array from it at post time.

Out-parameters of the calls come back as the named tuples at the end of this
module, fields named after Microsoft's parameters.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeAlias

from ._constants import AF_INET
from ._errors import WinsockUsageError

__all__ = [
    "WSAOVERLAPPED",
    "WSABUF",
    "SOCKADDR_IN",
    "LINGER",
    "WSADATA",
    "CompletionRoutine",
    "htons",
    "ntohs",
    "inet_addr",
    "inet_ntoa",
    "sockaddr_in",
    # --- threads
    "CRITICAL_SECTION",
    "CreateThreadResult",
    "ExitCodeResult",
    "ThreadStartRoutine",
    "ApcRoutine",
]


class WSAOVERLAPPED(ctypes.Structure):
    """``WSAOVERLAPPED`` (Win64 layout, 32 bytes).

    ``Internal`` holds the NTSTATUS of the operation (``STATUS_PENDING`` while in
    flight), ``InternalHigh`` the byte count, ``hEvent`` the event handle used
    for event notification (free for the application's use with completion
    routines).  The object must stay alive and unmodified while its operation
    is pending; the fake raises :class:`WinsockUsageError` when it is reused or
    altered, the real backend keeps a reference until the operation is reaped.

    Subclass it to attach per-operation context, as C code embeds the
    structure in a larger one.
    """

    _fields_ = [
        ("Internal", ctypes.c_uint64),
        ("InternalHigh", ctypes.c_uint64),
        ("Offset", ctypes.c_uint32),
        ("OffsetHigh", ctypes.c_uint32),
        ("hEvent", ctypes.c_uint64),
    ]
    Internal: int
    InternalHigh: int
    Offset: int
    OffsetHigh: int
    hEvent: int

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(Internal={self.Internal:#x}, "
            f"InternalHigh={self.InternalHigh}, hEvent={self.hEvent:#x})"
        )


#: What a WSABUF may point at: a writable bytearray (receives and sends), a
#: writable memoryview of one, or (sends only) read-only bytes.
Buffer: TypeAlias = bytearray | memoryview | bytes


class WSABUF:
    """``WSABUF { ULONG len; CHAR *buf; }``: ``len`` bytes of ``buf``.

    Fields are in Microsoft's order: ``WSABUF(len, buf)``.  ``len`` may not
    exceed ``len(buf)`` (that would let Windows write past the end of the
    buffer); the calls that take a WSABUF raise :class:`WinsockUsageError` if it
    does.
    """

    __slots__ = ("len", "buf")

    def __init__(self, len: int, buf: Buffer) -> None:  # noqa: A002 - Microsoft's name
        if not isinstance(len, int):
            raise TypeError(f"WSABUF.len must be an int, not {type(len).__name__}")
        if not isinstance(buf, (bytearray, memoryview, bytes)):
            raise TypeError(
                f"WSABUF.buf must be a bytearray, memoryview or bytes, not {type(buf).__name__}"
            )
        self.len = len
        self.buf = buf

    @classmethod
    def of(cls, buf: Buffer) -> WSABUF:
        """A WSABUF covering the whole of ``buf``."""
        return cls(_len(buf), buf)

    def __repr__(self) -> str:
        return f"WSABUF(len={self.len}, buf=<{type(self.buf).__name__} of {_len(self.buf)}>)"


def _len(buf: Buffer) -> int:
    return buf.nbytes if isinstance(buf, memoryview) else len(buf)


class SOCKADDR_IN(ctypes.Structure):
    """``sockaddr_in`` (16 bytes): family, port and address in network byte order.

    Build one with :func:`sockaddr_in` (``sockaddr_in("127.0.0.1", 12345)``) or
    field by field as in C (``sin_port = htons(12345)``); read it back with
    :attr:`host` and :attr:`port`.
    """

    _fields_ = [
        ("sin_family", ctypes.c_int16),
        ("sin_port", ctypes.c_uint16),  # network byte order
        ("sin_addr", ctypes.c_uint32),  # network byte order (S_un.S_addr)
        ("sin_zero", ctypes.c_char * 8),
    ]
    sin_family: int
    sin_port: int
    sin_addr: int

    @property
    def host(self) -> str:
        """The dotted IPv4 address."""
        return inet_ntoa(self.sin_addr)

    @property
    def port(self) -> int:
        """The port in host byte order."""
        return ntohs(self.sin_port)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SOCKADDR_IN):
            return NotImplemented
        return (self.sin_family, self.sin_port, self.sin_addr) == (
            other.sin_family,
            other.sin_port,
            other.sin_addr,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, like every ctypes structure

    def __repr__(self) -> str:
        return f"sockaddr_in({self.host!r}, {self.port})"


class LINGER(ctypes.Structure):
    """``LINGER { u_short l_onoff; u_short l_linger; }`` for SO_LINGER.

    ``LINGER(1, 0)`` then ``closesocket`` is an abortive close: the peer gets a
    reset (10054).
    """

    _fields_ = [("l_onoff", ctypes.c_uint16), ("l_linger", ctypes.c_uint16)]
    l_onoff: int
    l_linger: int


@dataclass(frozen=True)
class WSADATA:
    """What WSAStartup reports (the fields that still mean something in 2.x)."""

    wVersion: int
    wHighVersion: int
    iMaxSockets: int
    iMaxUdpDg: int
    szDescription: str
    szSystemStatus: str


#: ``void CALLBACK CompletionROUTINE(DWORD dwError, DWORD cbTransferred,
#: LPWSAOVERLAPPED lpOverlapped, DWORD dwFlags)``
CompletionRoutine = Callable[[int, int, WSAOVERLAPPED, int], None]


def htons(x: int) -> int:
    """Host to network byte order, 16 bits (as on little-endian Windows)."""
    x &= 0xFFFF
    return ((x & 0xFF) << 8) | (x >> 8)


def ntohs(x: int) -> int:
    """Network to host byte order, 16 bits."""
    return htons(x)


def as_c_int(dword: int) -> int:
    """A 32-bit unsigned value (a DWORD slot, an option name passed as one) read as a C ``int``."""
    return dword if dword < 0x80000000 else dword - 0x100000000


def inet_addr(cp: str) -> int:
    """The IPv4 address ``cp`` as the in_addr value Windows stores (network order
    read as a little-endian ULONG); INADDR_NONE (0xFFFFFFFF) if it is not one."""
    import socket as _socket  # lazily: importing socket calls WSAStartup on Windows

    try:
        packed = _socket.inet_aton(cp)
    except (OSError, TypeError):
        return 0xFFFFFFFF
    return int(struct.unpack("<I", packed)[0])


def inet_ntoa(addr: int) -> str:
    """The dotted form of an in_addr value as stored by :func:`inet_addr`."""
    a = addr & 0xFFFFFFFF  # the first byte in memory is the lowest
    return f"{a & 0xFF}.{(a >> 8) & 0xFF}.{(a >> 16) & 0xFF}.{a >> 24}"


def sockaddr_in(host: str, port: int) -> SOCKADDR_IN:
    """``SOCKADDR_IN`` for IPv4 ``host`` and ``port`` (host byte order).
    ValueError when ``host`` is not an IPv4 address (a name, IPv6, garbage)."""
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, not {type(host).__name__}")
    if not isinstance(port, int) or not 0 <= port <= 0xFFFF:
        raise ValueError(f"port must be an int in 0..65535, not {port!r}")
    in_addr = inet_addr(host)
    if in_addr == 0xFFFFFFFF and host.strip() != "255.255.255.255":
        # inet_addr's INADDR_NONE is also the broadcast address: taking it
        # unchecked would bind 255.255.255.255 for "localhost" or "::1".
        raise ValueError(f"host must be a dotted IPv4 address, not {host!r} (resolve names first)")
    addr = SOCKADDR_IN()
    addr.sin_family = AF_INET
    addr.sin_port = htons(port)
    addr.sin_addr = in_addr
    return addr


# --- Out-parameters, returned ------------------------------------------------


class StartupResult(NamedTuple):
    """WSAStartup: the error code it returns (0 on success) and lpWSAData, which
    Windows fills in even when it fails (WSAVERNOTSUPPORTED); None only where a
    backend could not start at all."""

    error: int
    lpWSAData: WSADATA | None


class IoResult(NamedTuple):
    """WSARecv / WSASend: 0 or SOCKET_ERROR, and the out-parameters.

    ``bytes`` is ``*lpNumberOfBytesRecvd`` / ``*lpNumberOfBytesSent``: written
    only on immediate success (0 otherwise).  ``flags`` is ``*lpFlags`` after
    WSARecv (WSASend passes its flags in and this echoes them).
    """

    rc: int
    bytes: int
    flags: int


class AcceptExResult(NamedTuple):
    """AcceptEx: TRUE/FALSE and ``*lpdwBytesReceived`` (written on TRUE only)."""

    ok: int
    bytes_received: int


class OverlappedResult(NamedTuple):
    """WSAGetOverlappedResult: TRUE/FALSE, ``*lpcbTransfer``, ``*lpdwFlags``."""

    ok: int
    cbTransfer: int
    dwFlags: int


class SockaddrResult(NamedTuple):
    """getsockname / getpeername: 0 or SOCKET_ERROR, and the address."""

    rc: int
    name: SOCKADDR_IN | None


class SockoptResult(NamedTuple):
    """getsockopt: 0 or SOCKET_ERROR, and the option's bytes (``*optlen`` long)."""

    rc: int
    optval: bytes


class AcceptExSockaddrs(NamedTuple):
    """GetAcceptExSockaddrs' four out-parameters."""

    LocalSockaddr: SOCKADDR_IN
    LocalSockaddrLength: int
    RemoteSockaddr: SOCKADDR_IN
    RemoteSockaddrLength: int


def optval_bytes(call: str, optval: object, optlen: int) -> bytes:
    """setsockopt's ``optval`` as the bytes Windows reads (both backends convert it so)."""
    if not isinstance(optlen, int):
        raise TypeError(f"{call}: optlen must be an int, not {type(optlen).__name__}")
    if isinstance(optval, bool) or isinstance(optval, int):
        size = max(optlen, 0)
        try:
            return int(optval).to_bytes(size, "little", signed=int(optval) < 0)
        except OverflowError:
            raise WinsockUsageError(f"{call}: value {optval} does not fit in optlen={optlen} bytes") from None
    if isinstance(optval, ctypes.Structure):
        raw = bytes(optval)
    elif isinstance(optval, (bytes, bytearray, memoryview)):
        raw = bytes(optval)
    else:
        raise TypeError(f"{call}: optval must be bytes, an int or a ctypes structure, not {type(optval).__name__}")
    if len(raw) < optlen:
        raise WinsockUsageError(f"{call}: optlen is {optlen} but optval has {len(raw)} bytes")
    return raw


# --- completion ports --------------------------------------------------------------


class QueuedCompletion(NamedTuple):
    """GetQueuedCompletionStatus: TRUE/FALSE and its three out-parameters.

    TRUE: a packet of a successful operation (or a posted one) was dequeued.
    FALSE with ``lpOverlapped`` set: a failed operation's packet was dequeued
    (the error is in GetLastError).  FALSE with ``lpOverlapped`` None: nothing
    was dequeued (WAIT_TIMEOUT, ERROR_ABANDONED_WAIT_0, a bad handle); Windows
    then leaves ``*lpNumberOfBytesTransferred`` and ``*lpCompletionKey``
    untouched, which come back here as 0."""

    ok: int
    dwNumberOfBytesTransferred: int
    CompletionKey: int
    lpOverlapped: WSAOVERLAPPED | None


class OVERLAPPED_ENTRY(NamedTuple):
    """One entry GetQueuedCompletionStatusEx removed: the key, the OVERLAPPED
    (None for a packet posted without one), ``Internal`` (the operation's
    NTSTATUS: the entry of a failed operation does not fail the call) and the
    byte count."""

    lpCompletionKey: int
    lpOverlapped: WSAOVERLAPPED | None
    Internal: int
    dwNumberOfBytesTransferred: int


class QueuedCompletionEx(NamedTuple):
    """GetQueuedCompletionStatusEx: TRUE with up to ``ulCount`` entries, or
    FALSE with none (WAIT_TIMEOUT, WAIT_IO_COMPLETION, ...)."""

    ok: int
    entries: list[OVERLAPPED_ENTRY]


__all__ += ["QueuedCompletion", "QueuedCompletionEx", "OVERLAPPED_ENTRY"]

# --- threads -------------------------------------------------------------------------

#: ``DWORD WINAPI ThreadProc(LPVOID lpParameter)``: CreateThread's start routine;
#: its return value is the thread's exit code.
ThreadStartRoutine = Callable[[Any], int]

#: ``VOID CALLBACK APCProc(ULONG_PTR Parameter)``: QueueUserAPC's function.
ApcRoutine = Callable[[int], None]


class CRITICAL_SECTION(ctypes.Structure):
    """``CRITICAL_SECTION`` (``RTL_CRITICAL_SECTION``, Win64 layout, 40 bytes).

    A structure the caller allocates, as in C: ``cs = CRITICAL_SECTION()``,
    then ``InitializeCriticalSection(cs)``.  The real backend passes its address
    to kernel32, which keeps its state in these fields; the fake keeps its own
    record of the section (keyed by the structure's address) and mirrors the
    owner and recursion count into ``OwningThread`` and ``RecursionCount``.  The
    object must stay alive (and must not be copied or moved) from Initialize to
    Delete.
    """

    _fields_ = [
        ("DebugInfo", ctypes.c_uint64),  # PRTL_CRITICAL_SECTION_DEBUG
        ("LockCount", ctypes.c_int32),
        ("RecursionCount", ctypes.c_int32),
        ("OwningThread", ctypes.c_uint64),  # HANDLE (the owner's thread id)
        ("LockSemaphore", ctypes.c_uint64),  # HANDLE
        ("SpinCount", ctypes.c_uint64),  # ULONG_PTR
    ]
    DebugInfo: int
    LockCount: int
    RecursionCount: int
    OwningThread: int
    LockSemaphore: int
    SpinCount: int

    def __repr__(self) -> str:
        return (f"CRITICAL_SECTION(OwningThread={self.OwningThread:#x}, "
                f"RecursionCount={self.RecursionCount})")


class CreateThreadResult(NamedTuple):
    """CreateThread: the thread's handle (0, NULL, on failure: GetLastError says
    why) and ``*lpThreadId``."""

    hThread: int
    dwThreadId: int


class ExitCodeResult(NamedTuple):
    """GetExitCodeThread: TRUE/FALSE and ``*lpExitCode`` (STILL_ACTIVE while the
    thread runs)."""

    ok: int
    exit_code: int
