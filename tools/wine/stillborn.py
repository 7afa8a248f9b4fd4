"""The events model on the real backend when a group's thread never runs (run by e2e.sh).

Under Wine, nearly out of file descriptors, CreateThread can return a thread
that ends at once (exit code 1) without running its start routine (see
docs/wine.md); ``e2e.sh``'s fd-limit case meets it only now and then.  This
makes it happen every time, on Wine's (or Windows') real threads and
sockets: the server runs in this process on :class:`RealWinsock` whose
second CreateThread fails and whose third gives such a thread (a real thread
whose routine returns 1 at once).  63 clients fill the first group; the
64th is refused (no thread for a second group); the 65th is handed to a
group whose thread never runs, and must be served within 5 s all the same
("A thread that never runs" in ``ovserver/_events.py``).

    tools/wine/winpython tools/wine/stillborn.py      (exit 0: served; 1: not)
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from fakewinsock import CreateThreadResult, get_backend
from fakewinsock.constants import ERROR_NOT_ENOUGH_MEMORY
from ovserver import ServerConfig, ServerStats, create_server
from ovserver._events import GROUP_CLIENTS


def short_of_threads(ws: Any, plan: Mapping[int, str]) -> list[int]:
    """Make ``ws.CreateThread`` (either backend) short of threads: its ``n``-th call (from 1) fails
    (ERROR_NOT_ENOUGH_MEMORY) when ``plan[n]`` is ``"fail"`` and gives a thread that ends at once with exit
    code 1, never running the caller's routine, when it is ``"stillborn"``; every other call is the backend's.
    Returns the count of calls so far (a one-element list).  (Also the plan of tests/test_ovserver_stillborn.py,
    on the fake.)"""
    create = ws.CreateThread
    calls = [0]

    def create_thread(attributes: None, stack: int, routine: Any, param: Any, flags: int) -> CreateThreadResult:
        calls[0] += 1
        what = plan.get(calls[0])
        if what == "fail":
            ws.SetLastError(ERROR_NOT_ENOUGH_MEMORY)
            return CreateThreadResult(0, 0)
        if what == "stillborn":
            return create(None, 0, lambda _: 1, None, 0)  # type: ignore[no-any-return]
        return create(attributes, stack, routine, param, flags)  # type: ignore[no-any-return]

    ws.CreateThread = create_thread
    return calls


def main() -> int:
    ws = get_backend("real")
    short_of_threads(ws, {2: "fail", 3: "stillborn"})
    server = create_server(ws, ServerConfig(port=0, model="events"))
    ready = threading.Event()
    result: list[ServerStats] = []

    def run() -> None:
        result.append(server.run(lambda _s: ready.set()))

    t = threading.Thread(target=run)
    t.start()
    failure = ""
    held: list[socket.socket] = []
    try:
        if not ready.wait(60) or server.address is None:
            failure = "the server did not start"
            return 1
        address = server.address
        for i in range(GROUP_CLIENTS):
            c = socket.create_connection(address, timeout=10)
            held.append(c)
            c.sendall(b"%d\n" % i)
            if c.recv(10) != b"%d\n" % i:
                failure = f"client {i + 1} (first group) not echoed"
                return 1
        refused = socket.create_connection(address, timeout=5)
        held.append(refused)
        try:
            refused_got = repr(refused.recv(10))
        except OSError as e:
            refused_got = repr(e)
        t0 = time.monotonic()
        fresh = socket.create_connection(address, timeout=5)
        held.append(fresh)
        fresh.sendall(b"fresh\n")
        try:
            got = fresh.recv(10)
        except OSError as e:
            failure = f"client {GROUP_CLIENTS + 2} (its group's thread never ran) not served: {e!r}"
            return 1
        if got != b"fresh\n":
            failure = f"client {GROUP_CLIENTS + 2} got {got!r}"
            return 1
        took = time.monotonic() - t0
    finally:
        for c in held:
            c.close()
        server.request_stop()
        t.join(60)
        if failure:
            print(f"FAIL stillborn: {failure}")
    stats = result[0] if result else None
    if stats is None or stats.threads_stillborn != 1 or stats.refused != 1:
        print(f"FAIL stillborn: stats {stats}")
        return 1
    print(f"ok   stillborn: client {GROUP_CLIENTS + 1} refused (no thread for its group: {refused_got}); "
          f"client {GROUP_CLIENTS + 2}, handed to a group whose thread never ran, served in {took:.2f} s "
          f"(the thread replaced); stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
