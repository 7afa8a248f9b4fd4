"""A server slower than its clients (issue 10, search13): ``FakeConfig.keep_up``,
``Scenario.call_cost_ns`` and the swarm's ``busy_server`` and ``boundary_sends``.

* ``keep_up``: at each Winsock call, what is due by then happens first (a
  segment that arrived while the program computed is there at its next call);
  off (the default), at most one ``background`` step a call.
* A busy run: several clients flood a server whose calls cost 1 ms each, so that
  its completion routines' reposts keep finding data and one alertable wait runs
  routine after routine, as on Windows; a stop that only the loop around the
  wait looks at (stop-unseen-in-routine-burst) then waits for the flood's end,
  past the checker's stop second.  The correct servers stop at once.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import find, settings

from fakewinsock import FakeConfig, FakeWinsock, RandomChooser
from fakewinsock._threads import QUANTUM_NS
from fakewinsock.constants import INFINITE, MAKEWORD, WAIT_TIMEOUT
from fakewinsock.testing import ClientScript, EchoModel, FaultPlan, Scenario, check_line_server, scenarios
from fakewinsock.testing import _checker as checker
from fakewinsock.testing._scenarios import _bulk
from ovserver import Limits, Server
from ovserver._core import _Io
from ovserver._events import EventServer
from ovserver._iocp import IocpServer
from ovserver._routines import RoutineServer
from tests.mutants.properties import OvserverUnderTest
from tests.mutants.red4_mutants import StopUnseenInRoutineBurst

_MS = 1_000_000


def test_keep_up_is_off_by_default() -> None:
    assert FakeConfig().keep_up is False


FLOOD = Scenario(tuple(ClientScript.of(*_bulk(37_500, 60, i)) for i in range(2)), FaultPlan(stop_at_ns=50 * _MS),
                 window=100, features=("busy_server", "early_stop"), call_cost_ns=_MS)


def _run(cls: type[Server], seed: int) -> str | None:
    try:
        check_line_server(lambda ws, a: OvserverUnderTest(cls, ws, a, "echo", Limits()), FLOOD, EchoModel(),
                          seed=seed)
    except Exception as e:  # noqa: BLE001 (the verdict is the message)
        return str(e).splitlines()[0]
    return None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_stop_left_to_the_loop_around_the_wait_waits_for_a_busy_flood(seed: int) -> None:
    """Two clients flood a server whose calls cost 1 ms (keep_up): one alertable
    wait runs their routines back to back; a stop request at 50 ms is begun by
    the correct routines server at once, and by the mutant only when the flood
    ends, over a second later."""
    assert _run(RoutineServer, seed) is None
    failure = _run(StopUnseenInRoutineBurst, seed)
    assert failure is not None and "did not stop within 1 s of the stop request" in failure, failure


@pytest.mark.parametrize("cls", [EventServer, IocpServer])
def test_the_other_models_stop_during_a_busy_flood(cls: type[Server]) -> None:
    assert _run(cls, 0) is None


def test_the_swarm_draws_busy_servers_and_boundary_sends() -> None:
    """busy_server: a cost per call, a small window, two clients or more that
    flood (a second and more of the server's calls), and an early stop after
    the server started; boundary_sends: a send of exactly a limit.  The
    flood shrinks: the simplest busy example floods one line of one byte
    (the flood's length is a ladder draw, _FLOOD_SIZES: before it, a failure
    on a flood line kept the whole flood, hundreds of kilobytes)."""
    strategy = scenarios(clients=(1, 4), lines=(0, 4), max_line=1000, recv_size=16384, max_queued=16384,
                         features=("busy_server", "early_stop"))
    busy = find(strategy, lambda s: s.call_cost_ns is not None and s.faults.stop_at_ns is not None,
                settings=settings(database=None, max_examples=500))
    assert busy.features == ("busy_server", "early_stop") and busy.window == 100
    assert max(len(c.stream) for c in busy.clients) == 2, busy.clients  # (one flood line "0")
    busy = find(strategy, lambda s: s.call_cost_ns is not None and s.faults.stop_at_ns is not None
                and max(len(c.stream) for c in s.clients) > 32 * 1024,  # (a full flood: more than any rung)
                settings=settings(database=None, max_examples=500))
    cost, window, stop = busy.call_cost_ns, busy.window, busy.faults.stop_at_ns
    assert cost in (400_000, _MS) and window is not None and stop is not None and len(busy.clients) >= 2
    flood = sum(len(c.stream) for c in busy.clients)
    assert flood * 2 * cost // window >= _MS * 2900  # about 3 s of its calls at 2 a receive
    assert stop >= 50 * cost + 100 * _MS
    # (the boundary send comes first, alone: a pause of 3 ms or more before the client's next send)
    edge = find(scenarios(clients=1, lines=(1, 2), recv_size=16384, max_queued=16384, features=("boundary_sends",)),
                lambda s: len(s.clients[0].chunks) > 1 and len(s.clients[0].chunks[0]) == 16384,
                settings=settings(database=None, max_examples=500))
    assert edge.features == ("boundary_sends",) and edge.clients[0].gaps_ns[1] >= 3 * _MS


class _NeverSwitch(RandomChooser):
    """A running thread keeps running whenever the chooser is asked (the simplest
    schedule: a Hypothesis example's tail seed 0 answers so)."""

    def index(self, n: int, label: str) -> int:
        return 0 if label == "thread" else super().index(n, label)


class _Simplest(RandomChooser):
    """Every question gets the simplest answer, as after a Hypothesis example's
    draws with tail seed 0 (the value it shrinks to): no switch, no split, no
    immediate completion, the shortest latency."""

    def index(self, n: int, label: str) -> int:
        return 0

    def integer(self, lo: int, hi: int, label: str) -> int:
        return lo

    def boolean(self, p: float, label: str) -> bool:
        return p >= 1.0

    def span(self, lo_hi: tuple[int, int], label: str) -> int:
        return lo_hi[0]


def _starved_for(keep_up: bool) -> int:
    """The main thread waits 5 ms on an event nobody signals while a second thread
    makes 300 calls of 1 ms without waiting: the virtual time from the second
    thread's start until the main thread runs again."""
    ws = FakeWinsock(chooser=_NeverSwitch(0), config=FakeConfig(syscall_cost=_MS, keep_up=keep_up))
    assert ws.WSAStartup(MAKEWORD(2, 2)).error == 0
    ev, busy = ws.WSACreateEvent(), ws.WSACreateEvent()
    started: list[int] = []
    done = [False]

    def spinner(_: Any) -> int:
        started.append(ws.now_ns)
        for _ in range(300):
            if done[0]:
                break
            ws.WSAResetEvent(busy)
        return 0

    h = ws.CreateThread(None, 0, spinner, None, 0).hThread
    assert ws.WaitForSingleObject(ev, 5) == WAIT_TIMEOUT
    back = ws.now_ns
    done[0] = True
    assert ws.WaitForSingleObject(h, INFINITE) == 0
    assert ws.CloseHandle(h) and ws.WSACloseEvent(ev) and ws.WSACloseEvent(busy)
    assert ws.WSACleanup() == 0
    return back - started[0]


def test_with_keep_up_a_thread_that_never_waits_gives_way_after_a_quantum() -> None:
    """keep_up (a server slower than its network, whose worker may always find a
    completion ready): a thread that never waits hands the baton to a runnable
    one after a quantum (31.25 ms) of virtual time, even when the chooser never
    switches, as a quantum end does on Windows; so an iocp worker serving a flood
    cannot starve the controller that must begin a stop (search14: with tail seed
    0, the controller never ran again and the stop was reported as not begun).
    Without keep_up, such a thread keeps the baton until it waits (the fake's
    documented divergence: the network does not move meanwhile)."""
    starved = _starved_for(keep_up=True)
    assert QUANTUM_NS <= starved <= QUANTUM_NS + 2 * _MS, starved
    assert _starved_for(keep_up=False) >= 300 * _MS


@pytest.mark.parametrize("cls", [EventServer, RoutineServer, IocpServer])
def test_the_correct_servers_stop_during_a_busy_flood_in_the_simplest_schedule(
        cls: type[Server], monkeypatch: pytest.MonkeyPatch) -> None:
    """The flood above with the simplest schedule: the thread serving it (an iocp
    worker, an events group) always finds a completion ready and, the chooser never
    switching, ran for the whole flood while the thread that must begin the stop
    (the controller, the acceptor) stayed runnable: "did not stop within 1 s" on
    correct servers (busy_server's false alarms of search13).  A quantum ends
    that (keep_up), as it does on Windows."""
    monkeypatch.setattr(checker, "FakeWinsock", lambda seed=0, config=None, chooser=None: FakeWinsock(
        seed=seed, config=config, chooser=_Simplest(seed)))
    check_line_server(lambda ws, a: OvserverUnderTest(cls, ws, a, "echo", Limits()), FLOOD, EchoModel())


#: A client cut off for a line over the limit (64 KiB) that has sent 50 KB more behind it, to a server whose calls
#: cost 1 ms, in a 100-byte window: the client has the error line and the server's FIN and closes at once, but its
#: stream flows on, and the server reads it to its end (500 receives and more: over a second) before it sees the
#: client's FIN and closes the socket.
CUT_OFF = Scenario((ClientScript.of(b"x" * 65537, *[b"y" * 99] * 500),), window=100,
                   features=("long_lines", "busy_server"), call_cost_ns=_MS)


class _EofIgnored(EventServer):
    """A receive of 0 bytes (the client's end) is dropped: the socket is held for good (it reads nothing more)."""

    def _completed(self, io: _Io, error: int, nbytes: int) -> None:
        if not error and nbytes == 0 and io.kind == "recv" and io.conn is not None and not io.conn.closed:
            io.busy = False
            return
        super()._completed(io, error, nbytes)


def _cut_off(cls: type[Server]) -> str | None:
    try:
        check_line_server(lambda ws, a: OvserverUnderTest(cls, ws, a, "echo", Limits()), CUT_OFF,
                          EchoModel(max_line=Limits().max_line), seed=0)
    except Exception as e:  # noqa: BLE001 (the verdict is the message)
        return str(e)
    return None


@pytest.mark.parametrize("cls", [EventServer, RoutineServer, IocpServer])
def test_a_slowed_server_reading_a_stream_left_behind_is_not_holding_it(cls: type[Server]) -> None:
    """The release second and the idle second count from the last byte the slowed
    server took of a client's stream (it sees the client's end only behind it):
    before, "1 s later the server still holds its socket" and "busy polling" on
    the correct servers (busy_server with long_lines, search14)."""
    assert _cut_off(cls) is None


def test_a_slowed_server_that_holds_a_socket_after_the_stream_is_still_caught() -> None:
    """... but once the stream is read, a server that ignores the end still fails."""
    failure = _cut_off(_EofIgnored)
    assert failure is not None and "1 s later the server still holds its socket" in failure, failure
