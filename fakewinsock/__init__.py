"""fakewinsock: the Winsock overlapped-IO interface, with a deterministic fake backend.

Write a server against :class:`Winsock` (Microsoft's names, parameters,
return values and error codes), then run it on :class:`FakeWinsock` anywhere
(seeded, virtual time, every schedule and fault Windows can produce) and on the
real ws2_32 on Windows.

The constants live in :mod:`fakewinsock.constants`; ``from fakewinsock.constants
import *`` gives code that reads like the C it is ported from.
"""

from __future__ import annotations

from ._backends import available_backends, get_backend
from ._errors import BusyLoopError, DeadlockError, InternalError, LeakError, NotEmulatedError, WinsockUsageError
from ._fake import FakeWinsock
from ._interface import Winsock
from ._peer import FakePeer, Peer, SocketPeer
from ._sim import Chooser, FakeConfig, RandomChooser, ScriptedChooser
from ._trace import Trace, TraceRecord
from ._types import (  # --- threads
    CRITICAL_SECTION,
    LINGER,
    SOCKADDR_IN,
    WSABUF,
    WSADATA,
    WSAOVERLAPPED,
    ApcRoutine,
    CompletionRoutine,
    CreateThreadResult,
    ExitCodeResult,
    ThreadStartRoutine,
    htons,
    inet_addr,
    inet_ntoa,
    ntohs,
    sockaddr_in,
)

__version__ = "0.1.0"

__all__ = [
    "Winsock",
    "FakeWinsock",
    "FakeConfig",
    "Chooser",
    "RandomChooser",
    "ScriptedChooser",
    "get_backend",
    "available_backends",
    "Peer",
    "FakePeer",
    "SocketPeer",
    "Trace",
    "TraceRecord",
    "WSAOVERLAPPED",
    "WSABUF",
    "WSADATA",
    "SOCKADDR_IN",
    "LINGER",
    "CompletionRoutine",
    "sockaddr_in",
    "htons",
    "ntohs",
    "inet_addr",
    "inet_ntoa",
    "WinsockUsageError",
    "LeakError",
    "DeadlockError",
    "BusyLoopError",
    "NotEmulatedError",
    "InternalError",
    # --- threads
    "CRITICAL_SECTION",
    "CreateThreadResult",
    "ExitCodeResult",
    "ThreadStartRoutine",
    "ApcRoutine",
]
