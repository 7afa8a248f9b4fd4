"""``ovserver serve`` in this process, printing its count of Windows handles
every second (run by tools/wine/e2e.sh, part ``handles``, for
``misbehave.py churn``, which reads the counts from its output).

    tools/wine/winpython tools/wine/handles.py SERVE-ARGS...

Prints ``handles: N`` lines beside ``serve``'s own; exits as ``serve`` does
(Ctrl+C stops it).  The count is every handle value from 4 to 65532 for
which GetHandleInformation succeeds: sockets, events, threads, the completion
port (GetProcessHandleCount returns 0 under Wine 8.0; a socket is a file
descriptor of the wineserver, but an event or a thread is not, so Linux's
/proc cannot count them).  Each count takes about a second under Wine.
"""

from __future__ import annotations

import ctypes
import sys
import threading
import time

from ovserver.__main__ import main

HANDLE_VALUES = range(4, 1 << 16, 4)


def count_handles() -> int:
    if sys.platform != "win32":  # (a Windows program: Wine's python.exe runs it)
        raise OSError("tools/wine/handles.py counts Windows handles: run it with tools/wine/winpython")
    kernel32 = ctypes.WinDLL("kernel32")
    info = kernel32.GetHandleInformation
    info.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32)]
    info.restype = ctypes.c_int
    flags = ctypes.c_uint32()
    return sum(1 for h in HANDLE_VALUES if info(ctypes.c_void_p(h), ctypes.byref(flags)))


def report() -> None:
    while True:
        print(f"handles: {count_handles()}", flush=True)
        time.sleep(1.0)


if __name__ == "__main__":
    threading.Thread(target=report, daemon=True).start()
    sys.exit(main(["serve", *sys.argv[1:]]))
