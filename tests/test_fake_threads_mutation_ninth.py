"""The fake's program threads (``fakewinsock._threads``): survivors of the
ninth session's fresh mutation sample (issue 18, ``tools/mutation_sample.sh
'fakewinsock._threads*' 30 22``), asserted as what a user of the fake relies
on."""

from __future__ import annotations

from typing import Any

from fakewinsock import FakeWinsock
from fakewinsock.constants import INFINITE, MAKEWORD, TRUE


def test_the_trace_says_which_thread_handle_runs() -> None:
    """Each "thread run" record of the trace names the thread that runs by its
    handle (the one CreateThread returned) and its number."""
    ws = FakeWinsock(seed=3)
    assert ws.WSAStartup(MAKEWORD(2, 2)).error == 0

    def worker(param: Any) -> int:
        ws.Sleep(1)
        return 0

    results = [ws.CreateThread(None, 0, worker, None, 0) for _ in range(2)]
    ws.WaitForMultipleObjects(2, [r.hThread for r in results], TRUE, INFINITE)
    runs = {(r.handle, r.detail) for r in ws.trace if r.what == "thread" and r.call == "run"}
    # The main thread has no handle of its own (0); the workers are T2 and T3.
    assert runs == {(0, "T1"), (results[0].hThread, "T2"), (results[1].hThread, "T3")}, runs
    for r in results:
        ws.CloseHandle(r.hThread)
    assert ws.WSACleanup() == 0
