"""The fake's kernel (``fakewinsock._kernel``): survivors of the ninth
session's fresh mutation sample (issue 18, ``tools/mutation_sample.sh
'fakewinsock._kernel*' 30 21``), each asserted as what a user of the fake
relies on."""

from __future__ import annotations

from typing import Any

from fakewinsock import WSABUF, WSAOVERLAPPED, FakeWinsock
from fakewinsock.constants import (
    FALSE,
    INFINITE,
    MAKEWORD,
    SOCKET_ERROR,
    TRUE,
    WAIT_IO_COMPLETION,
    WSA_IO_PENDING,
)
from tests.fake_server import Server, quiet
from tests.test_fake_net_mutation_more import ByLabel


def test_background_progress_is_asked_as_the_background_question() -> None:
    """A chooser sees every question by its label ("so a chooser may log or
    script its answers"): progress behind the program's back, during a call
    that does not wait, is the "background" question."""
    chooser = ByLabel()  # answer 0: below p, so yes
    ws = FakeWinsock(chooser=chooser, config=quiet(background=0.5))
    srv = Server(ws)
    s, peer = srv.accept()
    ov, _ = srv.post_recv(s)
    peer.send_nowait(b"x")
    chooser.asked.clear()
    other = srv.overlapped().hEvent
    for _ in range(50):  # calls that never wait (as test_fake_kernel_mutation's progress test)
        ws.WSAResetEvent(other)
    assert ("background", 0, 999_999) in chooser.asked, chooser.asked
    assert ws.WSAGetOverlappedResult(s, ov, FALSE)[:2] == (TRUE, 1)
    srv.finish()


def test_routines_run_in_two_alertable_waits_are_all_counted() -> None:
    """ws.stats["routines"] counts every completion routine run, over all
    alertable waits (not only the last wait's)."""
    ws = FakeWinsock(seed=0, config=quiet())
    srv = Server(ws)
    s, peer = srv.accept()
    done: list[int] = []
    for data in (b"one", b"two"):
        rc, _, _ = ws.WSARecv(s, [WSABUF(16, bytearray(16))], 1, 0, WSAOVERLAPPED(),
                              lambda err, n, o, flags: done.append(n))
        assert (rc, ws.WSAGetLastError()) == (SOCKET_ERROR, WSA_IO_PENDING)
        peer.send_nowait(data)
        assert ws.SleepEx(1000, TRUE) == WAIT_IO_COMPLETION
    assert done == [3, 3]
    assert ws.stats["routines"] == 2
    srv.finish()


def test_thread_ids_are_distinct_multiples_of_4() -> None:
    """GetCurrentThreadId: as on Windows, a multiple of 4 (the fake's are
    0x1000 + 4 * the thread's number), different for every thread."""
    ws = FakeWinsock(seed=0)
    assert ws.WSAStartup(MAKEWORD(2, 2)).error == 0
    tids = [ws.GetCurrentThreadId()]

    def worker(param: Any) -> int:
        tids.append(ws.GetCurrentThreadId())
        return 0

    results = [ws.CreateThread(None, 0, worker, None, 0) for _ in range(3)]
    ws.WaitForMultipleObjects(3, [r.hThread for r in results], TRUE, INFINITE)
    for r in results:
        ws.CloseHandle(r.hThread)
    assert ws.WSACleanup() == 0
    assert sorted(tids[1:]) == sorted(r.dwThreadId for r in results)
    assert len(set(tids)) == 4 and all(t % 4 == 0 for t in tids), [hex(t) for t in tids]
