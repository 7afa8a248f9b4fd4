"""The routines model's idle check within a burst of completion routines.

One alertable wait may run routines for as long as a client keeps data
flowing (see :mod:`ovserver._routines`), so a routine itself closes idle
clients: every ``ROUTINE_BURST`` routines run in one wait (the 64th, the
128th...), not after each one, since the check reads the clock
(GetTickCount64, a call) and walks the connection table.  What that decides,
seen from outside: a silent client whose deadline passes while a busy client
keeps one wait running is closed right after the first multiple of
``ROUTINE_BURST`` routines of that wait at which its deadline tick has come,
neither earlier (a check after every routine, or every 32) nor later, and
never on another cadence (routines 1, 65, 129...; or 63, 127... if the count
did not start again at 0 with each wait).

Everything is read from the fake's trace, as an API monitor would see the
server's thread on Windows: the ``routine`` records of the wait (one per
routine run), the ``setsockopt(SO_UPDATE_ACCEPT_CONTEXT)`` that opens a
client (its clock is read then: the deadline is that tick plus the time-out)
and the ``CancelIoEx`` of its receive that closes it (the graceful close:
the ``closesocket`` follows once that receive's routine has run).
"""

from __future__ import annotations

from fakewinsock import FakeWinsock
from fakewinsock._api_waits import TICK_NS
from ovserver._routines import ROUTINE_BURST
from tests.ovserver_session import MS, Session, exact

TIMEOUT_MS = 20
#: The busy client: 300 lines received a byte per WSARecv, each completing at once (about 6300 routines).
HOSE = (b"a" * 19 + b"\n") * 300
#: The silent clients connect while the hose's burst runs, 7 ms apart (so their deadlines fall in different ticks).
SILENT_AT_MS = [3.0 + 7 * i for i in range(8)]


def _tick(time_ns: int) -> int:
    """GetTickCount64 at virtual time ``time_ns`` (the fake's 15.625 ms steps)."""
    return time_ns // TICK_NS * TICK_NS // MS


def _closes_in_burst(ws: FakeWinsock) -> list[tuple[int, int, list[int]]]:
    """Each client closed inside a burst of routines: (routines the wait had
    run before its close, the CancelIoEx of its receive, its deadline tick,
    the times of those routines)."""
    opened: dict[int, int] = {}  # socket -> the tick its idle clock started at
    first_post: dict[int, int] = {}  # socket -> time of its first WSARecv
    routines: list[int] = []  # times of the routines run in the current wait
    closes: list[tuple[int, int, list[int]]] = []
    for r in ws.trace:
        if r.what == "return" and r.call == "WSAWaitForMultipleEvents":
            routines = []
        elif r.what == "routine":
            routines.append(r.time)
        elif r.call == "setsockopt" and "SO_UPDATE_ACCEPT_CONTEXT" in r.detail:
            opened[r.handle] = _tick(r.time)
        elif r.what == "posted" and r.call == "WSARecv" and r.handle in opened:
            first_post.setdefault(r.handle, r.time)
        elif r.call == "CancelIoEx" and r.what == "call" and routines and r.handle in opened:
            # The server reads the clock between these two calls: no tick may begin in between.
            assert _tick(first_post[r.handle]) == opened[r.handle]
            closes.append((len(routines), opened[r.handle] + TIMEOUT_MS, list(routines)))
    return closes


def test_a_silent_client_is_closed_at_the_first_burst_boundary_after_its_deadline() -> None:
    """Each Winsock call takes 0.1 ms, so a burst of 64 routines lasts about
    6.4 ms and a deadline (15.625 ms ticks) falls inside a burst, not on its
    edge.  Every silent client is closed inside the one long wait, after a
    multiple of ROUTINE_BURST routines, and the check one burst before found
    its deadline not come yet.  Proven against the mutants of
    RoutineServer's ``_ran`` arithmetic (tools/mutation_recheck.py --names):
    ``+= 2``, ``% ROUTINE_BURST != 0``, ``== 1`` and ``_wait``'s ``_ran = 1``
    each fail here."""
    ws = FakeWinsock(seed=0, config=exact(1.0, syscall_cost=100_000, background=1.0))
    s = Session("routines", ws=ws, recv_size=1, idle_timeout_ms=TIMEOUT_MS)
    hose = s.client(0)
    hose.send(1, HOSE)
    for at in SILENT_AT_MS:
        s.client(at)
    stats = s.run(stop_ms=2000)
    assert bytes(hose.data) == HOSE and stats.timed_out == 1 + len(SILENT_AT_MS)
    closes = _closes_in_burst(ws)
    # The premise: every silent client timed out while the hose's one wait ran routines.
    assert len(closes) == len(SILENT_AT_MS)
    for ran, due, times in closes:
        assert ran % ROUTINE_BURST == 0, f"closed after routine {ran} of the wait"
        # The check after routine ran - ROUTINE_BURST came before the next routine began: not due then.
        assert _tick(times[ran - ROUTINE_BURST]) < due, f"closed a burst late, after routine {ran}"
