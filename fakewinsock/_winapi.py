"""ctypes declarations of the ws2_32 and kernel32 calls the real backend uses.

Windows only (also Windows Python under Wine): importing it elsewhere raises
ImportError.  One place for every prototype, in the spirit of trio's
``_windows_cffi.py``: each function gets its ``argtypes`` and ``restype`` from
the C headers (``winsock2.h``, ``mswsock.h``, ``synchapi.h``, ``ioapiset.h``)
and a Python type for mypy.  Everything is 64-bit Windows: SOCKET and HANDLE
are 8 bytes (``c_size_t``), DWORD 4, pointers 8; the structures are written in
fixed-width types and their sizes are asserted at import.

Every DLL is loaded with ``use_last_error=True``: ctypes then keeps the
thread's last error in a private per-thread copy, saved right after each
foreign call, so nothing the interpreter does between two calls can clobber
it.  ``WSAGetLastError`` (declared here like any other function) reads that
value back, as it does in C.

AcceptEx and GetAcceptExSockaddrs are not exported by ws2_32: their addresses
come from ``WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER)`` on a socket of the
provider (:func:`extension_function`), and are wrapped here in the
``LPFN_ACCEPTEX`` and ``LPFN_GETACCEPTEXSOCKADDRS`` prototypes.
"""

from __future__ import annotations

import sys

if sys.platform != "win32":
    raise ImportError(
        "fakewinsock._winapi declares ws2_32.dll (the real Winsock) and can only be imported on "
        f"Windows (or Windows Python under Wine), not on {sys.platform}; use the fake backend here"
    )

import ctypes
from collections.abc import Callable
from ctypes import (
    POINTER,
    Structure,
    c_char,
    c_int32,
    c_size_t,
    c_uint8,
    c_uint16,
    c_uint32,
    c_void_p,
)
from typing import Any

from ._constants import (
    AF_INET,
    INVALID_SOCKET,
    IPPROTO_TCP,
    SIO_GET_EXTENSION_FUNCTION_POINTER,
    SOCK_STREAM,
    WSA_FLAG_OVERLAPPED,
    WSADESCRIPTION_LEN,
    WSASYS_STATUS_LEN,
)
from ._types import SOCKADDR_IN, WSAOVERLAPPED

__all__ = [
    "SOCKET",
    "HANDLE",
    "DWORD",
    "BOOL",
    "WSADATA",
    "WSABUF",
    "GUID",
    "LPWSAOVERLAPPED_COMPLETION_ROUTINE",
    "LPFN_ACCEPTEX",
    "LPFN_GETACCEPTEXSOCKADDRS",
    "extension_function",
]

# --- Types (Win64) -------------------------------------------------------------
SOCKET = c_size_t  # UINT_PTR
HANDLE = c_size_t  # void *, passed and returned as an integer
DWORD = c_uint32
BOOL = c_int32
WORD = c_uint16
INT = c_int32
LPDWORD = POINTER(DWORD)
LPINT = POINTER(INT)
LPWSAOVERLAPPED = POINTER(WSAOVERLAPPED)
LPSOCKADDR = POINTER(SOCKADDR_IN)


class WSADATA(Structure):
    """``WSADATA`` in its Win64 layout (the field order differs from Win32)."""

    _fields_ = [
        ("wVersion", WORD),
        ("wHighVersion", WORD),
        ("iMaxSockets", c_uint16),
        ("iMaxUdpDg", c_uint16),
        ("lpVendorInfo", c_void_p),
        ("szDescription", c_char * (WSADESCRIPTION_LEN + 1)),
        ("szSystemStatus", c_char * (WSASYS_STATUS_LEN + 1)),
    ]
    wVersion: int
    wHighVersion: int
    iMaxSockets: int
    iMaxUdpDg: int
    szDescription: bytes
    szSystemStatus: bytes


class WSABUF(Structure):
    """``WSABUF { ULONG len; CHAR *buf; }`` (4 bytes of padding after ``len``)."""

    _fields_ = [("len", c_uint32), ("buf", c_void_p)]
    len: int
    buf: int | None


class GUID(Structure):
    """``GUID``: the identifier of an extension function."""

    _fields_ = [("Data1", c_uint32), ("Data2", c_uint16), ("Data3", c_uint16), ("Data4", c_uint8 * 8)]

    @classmethod
    def of(cls, value: tuple[int, int, int, tuple[int, ...]]) -> GUID:
        d1, d2, d3, d4 = value
        return cls(d1, d2, d3, (c_uint8 * 8)(*d4))


assert ctypes.sizeof(WSADATA) == 408, ctypes.sizeof(WSADATA)
assert ctypes.sizeof(WSAOVERLAPPED) == 32, ctypes.sizeof(WSAOVERLAPPED)
assert ctypes.sizeof(WSABUF) == 16, ctypes.sizeof(WSABUF)
assert ctypes.sizeof(GUID) == 16, ctypes.sizeof(GUID)
assert ctypes.sizeof(SOCKADDR_IN) == 16, ctypes.sizeof(SOCKADDR_IN)
assert ctypes.sizeof(SOCKET) == 8 and ctypes.sizeof(c_void_p) == 8, "64-bit Windows Python needed"

#: ``void CALLBACK CompletionROUTINE(DWORD dwError, DWORD cbTransferred,
#: LPWSAOVERLAPPED lpOverlapped, DWORD dwFlags)``; lpOverlapped arrives as an
#: address (an int), which the real backend maps back to its Python object.
LPWSAOVERLAPPED_COMPLETION_ROUTINE = ctypes.WINFUNCTYPE(None, DWORD, DWORD, c_size_t, DWORD)

#: ``BOOL AcceptEx(SOCKET sListenSocket, SOCKET sAcceptSocket, PVOID lpOutputBuffer,
#: DWORD dwReceiveDataLength, DWORD dwLocalAddressLength, DWORD dwRemoteAddressLength,
#: LPDWORD lpdwBytesReceived, LPOVERLAPPED lpOverlapped)``
LPFN_ACCEPTEX = ctypes.WINFUNCTYPE(
    BOOL, SOCKET, SOCKET, c_void_p, DWORD, DWORD, DWORD, LPDWORD, LPWSAOVERLAPPED, use_last_error=True
)

#: ``void GetAcceptExSockaddrs(PVOID lpOutputBuffer, DWORD dwReceiveDataLength,
#: DWORD dwLocalAddressLength, DWORD dwRemoteAddressLength, sockaddr **LocalSockaddr,
#: LPINT LocalSockaddrLength, sockaddr **RemoteSockaddr, LPINT RemoteSockaddrLength)``
LPFN_GETACCEPTEXSOCKADDRS = ctypes.WINFUNCTYPE(
    None, c_void_p, DWORD, DWORD, DWORD, POINTER(c_void_p), LPINT, POINTER(c_void_p), LPINT,
    use_last_error=True,
)

ws2_32 = ctypes.WinDLL("ws2_32", use_last_error=True)
kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)


def _proto(dll: Any, name: str, restype: Any, *argtypes: Any) -> Any:
    fn = getattr(dll, name)
    fn.restype = restype
    fn.argtypes = argtypes
    return fn


# Pointer arguments are typed ``object``: ctypes checks them against argtypes
# (byref(...) of the right structure, a ctypes array, None for NULL).  The
# completion-routine parameters are declared ``c_void_p``, which takes a
# LPWSAOVERLAPPED_COMPLETION_ROUTINE instance or None (a WINFUNCTYPE argtype
# would refuse None).

# --- ws2_32: start-up and errors --------------------------------------------------
WSAStartup: Callable[[int, object], int] = _proto(ws2_32, "WSAStartup", INT, WORD, POINTER(WSADATA))
WSACleanup: Callable[[], int] = _proto(ws2_32, "WSACleanup", INT)
WSAGetLastError: Callable[[], int] = _proto(ws2_32, "WSAGetLastError", INT)
WSASetLastError: Callable[[int], None] = _proto(ws2_32, "WSASetLastError", None, INT)

# --- ws2_32: sockets ----------------------------------------------------------------
WSASocketW: Callable[[int, int, int, object, int, int], int] = _proto(
    ws2_32, "WSASocketW", SOCKET, INT, INT, INT, c_void_p, c_uint32, DWORD)
closesocket: Callable[[int], int] = _proto(ws2_32, "closesocket", INT, SOCKET)
bind: Callable[[int, object, int], int] = _proto(ws2_32, "bind", INT, SOCKET, LPSOCKADDR, INT)
listen: Callable[[int, int], int] = _proto(ws2_32, "listen", INT, SOCKET, INT)
connect: Callable[[int, object, int], int] = _proto(ws2_32, "connect", INT, SOCKET, LPSOCKADDR, INT)
shutdown: Callable[[int, int], int] = _proto(ws2_32, "shutdown", INT, SOCKET, INT)
setsockopt: Callable[[int, int, int, object, int], int] = _proto(
    ws2_32, "setsockopt", INT, SOCKET, INT, INT, c_void_p, INT)
getsockopt: Callable[[int, int, int, object, object], int] = _proto(
    ws2_32, "getsockopt", INT, SOCKET, INT, INT, c_void_p, LPINT)
getsockname: Callable[[int, object, object], int] = _proto(ws2_32, "getsockname", INT, SOCKET, LPSOCKADDR, LPINT)
getpeername: Callable[[int, object, object], int] = _proto(ws2_32, "getpeername", INT, SOCKET, LPSOCKADDR, LPINT)
WSAIoctl: Callable[[int, int, object, int, object, int, object, object, object], int] = _proto(
    ws2_32, "WSAIoctl", INT, SOCKET, DWORD, c_void_p, DWORD, c_void_p, DWORD, LPDWORD, LPWSAOVERLAPPED,
    c_void_p)

# --- ws2_32: overlapped I/O -----------------------------------------------------------
WSARecv: Callable[[int, object, int, object, object, object, object], int] = _proto(
    ws2_32, "WSARecv", INT, SOCKET, POINTER(WSABUF), DWORD, LPDWORD, LPDWORD, LPWSAOVERLAPPED,
    c_void_p)
WSASend: Callable[[int, object, int, object, int, object, object], int] = _proto(
    ws2_32, "WSASend", INT, SOCKET, POINTER(WSABUF), DWORD, LPDWORD, DWORD, LPWSAOVERLAPPED,
    c_void_p)
WSAGetOverlappedResult: Callable[[int, object, object, int, object], int] = _proto(
    ws2_32, "WSAGetOverlappedResult", BOOL, SOCKET, LPWSAOVERLAPPED, LPDWORD, BOOL, LPDWORD)

# --- ws2_32: events and waits ----------------------------------------------------------
WSACreateEvent: Callable[[], int] = _proto(ws2_32, "WSACreateEvent", HANDLE)
WSACloseEvent: Callable[[int], int] = _proto(ws2_32, "WSACloseEvent", BOOL, HANDLE)
WSASetEvent: Callable[[int], int] = _proto(ws2_32, "WSASetEvent", BOOL, HANDLE)
WSAResetEvent: Callable[[int], int] = _proto(ws2_32, "WSAResetEvent", BOOL, HANDLE)
WSAWaitForMultipleEvents: Callable[[int, object, int, int, int], int] = _proto(
    ws2_32, "WSAWaitForMultipleEvents", DWORD, DWORD, POINTER(HANDLE), BOOL, DWORD, BOOL)

# --- kernel32 ------------------------------------------------------------------------
SleepEx: Callable[[int, int], int] = _proto(kernel32, "SleepEx", DWORD, DWORD, BOOL)
CancelIoEx: Callable[[int, object], int] = _proto(kernel32, "CancelIoEx", BOOL, HANDLE, LPWSAOVERLAPPED)


def extension_function(guid: tuple[int, int, int, tuple[int, ...]]) -> int:
    """The address of the mswsock extension function ``guid`` (WSAID_ACCEPTEX,
    ...), asked of a TCP socket of our own through
    ``WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER)``; 0 on failure (the reason
    is in the last error: WSANOTINITIALISED before WSAStartup).

    The address stays valid while Winsock stays started in this process (the
    provider DLL is not unloaded before the last WSACleanup)."""
    s = WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
    if s == INVALID_SOCKET:
        return 0
    try:
        g = GUID.of(guid)
        out = c_void_p()
        returned = DWORD()
        rc = WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, ctypes.byref(g), ctypes.sizeof(g),
                      ctypes.byref(out), ctypes.sizeof(out), ctypes.byref(returned), None, None)
        return (out.value or 0) if rc == 0 else 0
    finally:
        err = WSAGetLastError()
        closesocket(s)
        WSASetLastError(err)


# --- completion ports ------------------------------------------------------------------
ULONG_PTR = c_size_t


class OVERLAPPED_ENTRY(Structure):
    """``OVERLAPPED_ENTRY`` (Win64: 32 bytes); ``lpOverlapped`` as an address."""

    _fields_ = [("lpCompletionKey", ULONG_PTR), ("lpOverlapped", c_size_t), ("Internal", ULONG_PTR),
                ("dwNumberOfBytesTransferred", DWORD)]
    lpCompletionKey: int
    lpOverlapped: int
    Internal: int
    dwNumberOfBytesTransferred: int


assert ctypes.sizeof(OVERLAPPED_ENTRY) == 32, ctypes.sizeof(OVERLAPPED_ENTRY)

#: ``HANDLE CreateIoCompletionPort(HANDLE FileHandle, HANDLE ExistingCompletionPort,
#: ULONG_PTR CompletionKey, DWORD NumberOfConcurrentThreads)``
CreateIoCompletionPort: Callable[[int, int, int, int], int] = _proto(
    kernel32, "CreateIoCompletionPort", HANDLE, HANDLE, HANDLE, ULONG_PTR, DWORD)
#: ``BOOL GetQueuedCompletionStatus(HANDLE, LPDWORD, PULONG_PTR, LPOVERLAPPED *, DWORD)``;
#: the OVERLAPPED comes back as an address (a ULONG_PTR here).
GetQueuedCompletionStatus: Callable[[int, object, object, object, int], int] = _proto(
    kernel32, "GetQueuedCompletionStatus", BOOL, HANDLE, LPDWORD, POINTER(ULONG_PTR), POINTER(c_size_t), DWORD)
#: ``BOOL GetQueuedCompletionStatusEx(HANDLE, LPOVERLAPPED_ENTRY, ULONG, PULONG, DWORD, BOOL)``
GetQueuedCompletionStatusEx: Callable[[int, object, int, object, int, int], int] = _proto(
    kernel32, "GetQueuedCompletionStatusEx", BOOL, HANDLE, POINTER(OVERLAPPED_ENTRY), c_uint32,
    POINTER(c_uint32), DWORD, BOOL)
#: ``BOOL PostQueuedCompletionStatus(HANDLE, DWORD, ULONG_PTR, LPOVERLAPPED)`` (the OVERLAPPED
#: as an address or None: the kernel only carries it).
PostQueuedCompletionStatus: Callable[[int, int, int, int | None], int] = _proto(
    kernel32, "PostQueuedCompletionStatus", BOOL, HANDLE, DWORD, ULONG_PTR, c_void_p)
#: ``BOOL SetFileCompletionNotificationModes(HANDLE FileHandle, UCHAR Flags)``
SetFileCompletionNotificationModes: Callable[[int, int], int] = _proto(
    kernel32, "SetFileCompletionNotificationModes", BOOL, HANDLE, c_uint8)
CancelIo: Callable[[int], int] = _proto(kernel32, "CancelIo", BOOL, HANDLE)
# CloseHandle: declared in the threads section below.

__all__ += ["OVERLAPPED_ENTRY"]

# --- threads -----------------------------------------------------------------------------
from ._types import CRITICAL_SECTION  # noqa: E402 - kept in this section (the iocp branch adds its own)

assert ctypes.sizeof(CRITICAL_SECTION) == 40, ctypes.sizeof(CRITICAL_SECTION)

#: ``DWORD WINAPI ThreadProc(LPVOID lpParameter)``.
LPTHREAD_START_ROUTINE = ctypes.WINFUNCTYPE(DWORD, c_void_p)
LPCRITICAL_SECTION = POINTER(CRITICAL_SECTION)

CreateThread: Callable[[object, int, object, object, int, object], int] = _proto(
    kernel32, "CreateThread", HANDLE, c_void_p, c_size_t, c_void_p, c_void_p, DWORD, LPDWORD)
ResumeThread: Callable[[int], int] = _proto(kernel32, "ResumeThread", DWORD, HANDLE)
WaitForSingleObjectEx: Callable[[int, int, int], int] = _proto(
    kernel32, "WaitForSingleObjectEx", DWORD, HANDLE, DWORD, BOOL)
WaitForMultipleObjectsEx: Callable[[int, object, int, int, int], int] = _proto(
    kernel32, "WaitForMultipleObjectsEx", DWORD, DWORD, POINTER(HANDLE), BOOL, DWORD, BOOL)
GetExitCodeThread: Callable[[int, object], int] = _proto(kernel32, "GetExitCodeThread", BOOL, HANDLE, LPDWORD)
CloseHandle: Callable[[int], int] = _proto(kernel32, "CloseHandle", BOOL, HANDLE)
GetCurrentThreadId: Callable[[], int] = _proto(kernel32, "GetCurrentThreadId", DWORD)
GetCurrentThread: Callable[[], int | None] = _proto(kernel32, "GetCurrentThread", HANDLE)
#: ``VOID CALLBACK APCProc(ULONG_PTR Parameter)``.
PAPCFUNC = ctypes.WINFUNCTYPE(None, c_size_t)
QueueUserAPC: Callable[[object, int, int], int] = _proto(kernel32, "QueueUserAPC", DWORD, PAPCFUNC, HANDLE, c_size_t)
GetLastError: Callable[[], int] = _proto(kernel32, "GetLastError", DWORD)
SetLastError: Callable[[int], None] = _proto(kernel32, "SetLastError", None, DWORD)
Sleep: Callable[[int], None] = _proto(kernel32, "Sleep", None, DWORD)
GetTickCount64: Callable[[], int] = _proto(kernel32, "GetTickCount64", ctypes.c_uint64)
InitializeCriticalSection: Callable[[object], None] = _proto(
    kernel32, "InitializeCriticalSection", None, LPCRITICAL_SECTION)
EnterCriticalSection: Callable[[object], None] = _proto(kernel32, "EnterCriticalSection", None, LPCRITICAL_SECTION)
TryEnterCriticalSection: Callable[[object], int] = _proto(
    kernel32, "TryEnterCriticalSection", BOOL, LPCRITICAL_SECTION)
LeaveCriticalSection: Callable[[object], None] = _proto(kernel32, "LeaveCriticalSection", None, LPCRITICAL_SECTION)
DeleteCriticalSection: Callable[[object], None] = _proto(
    kernel32, "DeleteCriticalSection", None, LPCRITICAL_SECTION)
