"""The fake's kernel, operations, network and sockets: survivors of the twelfth
session's fresh mutation samples (issue 18, seed 24, drawn among the mutants
no earlier sample had drawn: ``MUTATION_EXCLUDE=... tools/mutation_sample.sh
'fakewinsock._net*' 30 24`` and the like), each asserted as what a user of the
fake relies on.  (Silly-window avoidance, the sender waiting for half the
window: ``tests/test_fake_net_mutation_more.py``'s partial reader.)"""

from __future__ import annotations

from typing import Any

from fakewinsock import WSABUF, WSAOVERLAPPED, FakeConfig, FakeWinsock, RandomChooser, sockaddr_in
from fakewinsock.constants import INFINITE, MAKEWORD, SOCKET_ERROR, TRUE, WAIT_TIMEOUT, WSA_IO_PENDING, WSAENOBUFS
from tests.fake_server import Server, quiet
from tests.test_fake_net_mutation_more import ByLabel

MS = 1_000_000


def test_the_completion_delay_is_the_delay_question_and_a_chooser_scripts_it_by_name() -> None:
    """FakeConfig.completion_delay is drawn by the chooser's question named
    ``"delay"`` (the Chooser docstring's names), so a chooser can script it: a
    receive pending when its data arrives completes exactly the delay the
    chooser answered later, within the configured span."""
    chooser = ByLabel({"delay": 3 * MS})
    ws = FakeWinsock(chooser=chooser, config=quiet(completion_delay=(0, 4 * MS)))
    srv = Server(ws)
    s, peer = srv.accept()
    ov, _ = srv.post_recv(s, 16)
    peer.send_nowait(b"x")
    assert srv.result(s, ov) == (TRUE, 1, 0)
    recv = [r for r in ws.trace if r.call == "WSARecv"][-1]
    arrived = [r.time for r in ws.trace if r.what == "net" and r.call == "arrive"][-1]
    completed = [r.time for r in ws.trace if r.op == recv.op and r.what == "completed"]
    assert completed == [arrived + 3 * MS]
    assert ("delay", 0, 4 * MS) in chooser.asked
    srv.finish()


def test_an_acceptex_that_completes_at_once_counts_as_immediate() -> None:
    """A client waits in the backlog; AcceptEx, told to complete at once when it
    can, does: ws.stats counts one immediate completion more, and no pending one."""
    ws = FakeWinsock(config=quiet(immediate={"AcceptEx": 1.0, "*": 0.0}))
    srv = Server(ws)
    peer = ws.peer()
    peer.connect_nowait("127.0.0.1", srv.port)
    ws.run_for(0.001)
    before = {k: ws.stats[k] for k in ("immediate", "pending")}
    acc, ov = srv.post_accept()
    assert ws.WSAGetLastError() != WSA_IO_PENDING
    assert {k: ws.stats[k] - before[k] for k in before} == {"immediate": 1, "pending": 0}
    assert srv.result(srv.lst, ov)[:2] == (TRUE, 0)
    srv.close(acc)
    peer.close()
    srv.finish()


def test_two_acceptex_posted_take_two_clients_that_arrive_while_the_first_completes() -> None:
    """Two AcceptEx posted on a listener, every completion 1 ms after its cause;
    two clients connect at once.  The first arrival satisfies the first
    AcceptEx; the second arrives while that one is still completing (the head
    of the listener's queue is taken, so the second AcceptEx is not looked at
    yet).  Once the first completes, the second is looked at again and takes
    the client waiting in the backlog: both complete, 1 ms apart, without a
    third arrival."""
    ws = FakeWinsock(config=quiet(completion_delay=(MS, MS)))
    srv = Server(ws)
    (acc1, ov1), (acc2, ov2) = srv.post_accept(), srv.post_accept()
    peers = [ws.peer(), ws.peer()]
    for p in peers:
        p.connect_nowait("127.0.0.1", srv.port)
    assert srv.wait(ov1, 50) == 0
    first = ws.now_ns
    assert srv.wait(ov2, 50) == 0  # (the mutant: WSA_WAIT_TIMEOUT, a client left in the backlog)
    assert ws.now_ns - first == MS
    assert srv.result(srv.lst, ov1)[:2] == srv.result(srv.lst, ov2)[:2] == (TRUE, 0)
    for s in (acc1, acc2):
        srv.close(s)
    for p in peers:
        p.close()
    srv.finish()


class AlwaysSwitch(RandomChooser):
    """At every scheduling point, another thread runs if one can."""

    def index(self, n: int, label: str) -> int:
        return n - 1 if label == "thread" else super().index(n, label)


def test_a_thread_whose_wait_timed_out_runs_at_the_next_call_of_a_busy_thread() -> None:
    """A thread waits 1 ms on an event nobody signals; the main thread, alone
    runnable, keeps making Winsock calls (0.1 ms each) without waiting.  Once
    the waiter's time-out has passed, the next call is a scheduling point at
    which it can run (here it does: the chooser switches whenever it can): its
    wait returns WAIT_TIMEOUT within a call of its 1 ms, not only when the main
    thread blocks (3 ms later)."""
    ws = FakeWinsock(chooser=AlwaysSwitch(0), config=FakeConfig(syscall_cost=100_000))
    assert ws.WSAStartup(MAKEWORD(2, 2)).error == 0
    ev = ws.WSACreateEvent()
    log: list[tuple[str, int]] = []

    def waiter(_: Any) -> int:
        start = ws.now_ns
        log.append(("waiter", ws.WaitForSingleObject(ev, 1)))
        log.append(("waited", ws.now_ns - start))
        return 0

    h = ws.CreateThread(None, 0, waiter, None, 0).hThread
    for _ in range(30):
        ws.WSAResetEvent(ev)
        log.append(("main", ws.now_ns))
    assert ws.WaitForSingleObject(h, INFINITE) == 0
    assert ("waiter", WAIT_TIMEOUT) in log
    waited = dict(log)["waited"]
    assert 1_000_000 <= waited <= 1_200_000, log
    assert [who for who, _ in log].index("waiter") < 20, log  # before the main thread's calls end
    assert ws.CloseHandle(h) and ws.WSACloseEvent(ev)
    assert ws.WSACleanup() == 0


def test_with_every_dynamic_port_taken_port_0_is_wsaenobufs_for_bind_and_connect() -> None:
    """Every port of the dynamic range (49152-65535) on 127.0.0.1 in use (by
    simulated peers' connections, set directly: the quick form of binding
    16384 sockets): bind to port 0, and connect on a socket not bound, fail
    with WSAENOBUFS (Windows' port exhaustion), and the socket stays unbound;
    no port outside the range (not port 1) is handed out instead."""
    ws = FakeWinsock(config=quiet())
    srv = Server(ws)
    ws._net._peer_addrs.update(("127.0.0.1", p) for p in range(49152, 65536))
    s = srv.socket()
    assert ws.bind(s, sockaddr_in("127.0.0.1", 0), 16) == SOCKET_ERROR
    assert ws.WSAGetLastError() == WSAENOBUFS
    assert ws.connect(s, sockaddr_in("127.0.0.1", srv.port), 16) == SOCKET_ERROR
    assert ws.WSAGetLastError() == WSAENOBUFS
    assert ws.getsockname(s)[0] == SOCKET_ERROR  # still not bound
    srv.close(s)
    ws._net._peer_addrs.clear()
    srv.finish()


def test_a_thread_woken_by_a_completion_routine_but_not_run_is_described_so() -> None:
    """What end_threads (and a deadlock or leak report) says of a thread whose
    alertable wait was ended by a completion routine queued to it, but which
    has not run since: runnable, its wait "ended by a queued completion
    routine" (tests/test_fake_threads.py has the satisfied wait).  The worker
    posts a receive with a routine and sleeps alertably; the data arrives
    behind the main thread's back during its calls; on some seeds the worker
    has not run when the main thread ends the threads."""
    described: list[str] = []
    for seed in range(8):
        ws = FakeWinsock(seed=seed, config=quiet(background=1.0))
        srv = Server(ws)
        s, peer = srv.accept()
        got: list[int] = []

        def worker(_: Any, ws: FakeWinsock = ws, s: int = s, got: list[int] = got) -> int:
            ws.WSARecv(s, [WSABUF(16, bytearray(16))], 1, 0, WSAOVERLAPPED(), lambda e, n, o, f: got.append(n))
            return ws.SleepEx(INFINITE, TRUE)

        ws.CreateThread(None, 0, worker, None, 0)
        ws.Sleep(10)  # the worker sleeps, its receive pending
        peer.send_nowait(b"x")
        ev = ws.WSACreateEvent()
        sched = ws._kernel.sched
        assert sched is not None
        for _ in range(200):  # calls (scheduling points) until the routine is queued, and maybe run
            ws.WSASetEvent(ev)
            if got or sched.threads[1].state == "runnable":
                break
        described += ws.end_threads()
    assert len(described) >= 2, "no seed left the woken thread unrun"
    for text in described:
        assert text.endswith(": runnable, not yet run since its wait in SleepEx(INFINITE, TRUE) was ended by a "
                             "queued completion routine"), text
