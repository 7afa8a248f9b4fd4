"""The completion-routine model when routines keep coming: one alertable wait
can run routines for as long as clients keep data flowing (Windows runs every
routine queued to the thread before the wait returns, those queued meanwhile
too), so a routine itself must begin a requested stop.

Found under Wine (tools/wine/e2e.sh, part ``busy``): with 200 real clients
sending and reading without a pause, Ctrl+C never stopped the routines model
and a new client was never accepted.  On the fake, a client whose data is all
buffered while the server receives one byte per WSARecv makes the same
endless-looking chain: every post completes at once and queues the next routine.
A routine must likewise complete an AcceptEx that completed meanwhile.
"""

from __future__ import annotations

from fakewinsock import FakeWinsock
from ovserver import Limits, Server
from ovserver._protocol import Action
from ovserver._routines import ROUTINE_BURST
from tests.ovserver_session import Session, exact

LINE = b"a" * 3000 + b"\n"
STOP_AT_BYTE = 100


def chained_session() -> Session:
    """One client sends a 3001-byte line; the server receives it a byte per
    WSARecv, every post completing at once: one wait runs thousands of routines."""
    s = Session("routines", fake=exact(immediate=1.0), recv_size=1)
    c = s.client(at_ms=0)
    c.send(1, LINE)
    return s


def stop_during_routines(server: Server, ws: FakeWinsock) -> None:
    """Request the stop from inside the chain, as the console control handler's
    thread does on Windows while the server's thread runs routines."""
    receive = server.hub.receive

    def hooked(cid: int, data: bytes | bytearray | memoryview) -> list[Action]:
        if server.stats.bytes_received == STOP_AT_BYTE and not server._stop:
            server.request_stop(signal=ws.signal_event)
        return receive(cid, data)

    server.hub.receive = hooked  # type: ignore[method-assign]


def test_the_chain_is_long_without_a_stop() -> None:
    """The scenario's premise: the whole line is received within the session
    (and echoed), so a chain this long really runs."""
    s = chained_session()
    stats = s.run(stop_ms=50)
    assert stats.bytes_received == len(LINE)
    assert bytes(s.clients[0].data) == LINE


def test_a_stop_requested_while_routines_run_is_begun_within_a_burst() -> None:
    """Without the check in the routine, the wait ran the whole chain after the
    stop request: all 3001 bytes received and the line echoed (proven by
    removing the check from RoutineServer._on_completion)."""
    s = chained_session()
    stop_during_routines(s.server, s.ws)
    stats = s.run()
    assert stats.closed_at_stop == 1
    assert STOP_AT_BYTE <= stats.bytes_received <= STOP_AT_BYTE + ROUTINE_BURST
    assert stats.hub.lines == 0
    assert s.clients[0].reset_by_server  # the stop closed it (send in flight: abortive)


def test_a_client_accepted_while_routines_run_joins_within_a_burst() -> None:
    """Chat, two places: A talks (200 lines, all buffered: one chain of
    routines), M is a member that never reads, B waits in the backlog.  M is cut
    off mid-chain (its queue passes --max-queued), which frees a place: the
    AcceptEx posted then completes at once with B.  B must become a member
    within a burst, so it gets the rest of A's lines, in order.  Without the
    AcceptEx check in the routine, B joined only after the chain and got none
    of them, only its welcome (proven by removing that check)."""
    s = Session("routines", "chat", fake=exact(immediate=1.0, window=1100), recv_size=1,
                limits=Limits(max_clients=2, max_queued=2000))
    a = s.client(at_ms=0)
    m = s.client(at_ms=0, reads=False)
    b = s.client(at_ms=0.5)  # the server is full: B waits in the backlog
    lines = [b"a%03d\n" % i for i in range(200)]
    a.send(1, b"".join(lines))
    stats = s.run(stop_ms=20)
    assert stats.hub.lines == 200
    assert stats.cut_off == 1 and m.reset_by_server
    welcome, *got = bytes(b.data).splitlines(keepends=True)
    assert welcome == b"* welcome " + b.name + b"\n"
    assert got, "B joined only after the chain of routines"
    assert got == [a.name + b": " + line for line in lines[len(lines) - len(got):]]


def test_a_client_accepted_while_routines_run_joins_at_the_next_routine() -> None:
    """As above, but B must join at the routine after its AcceptEx completed,
    not up to a burst later: under Wine, in a busy chat (20 senders, 170
    members), one routine routes a 16 KB receive to every member, so a burst
    of 64 routines took seconds and a new member waited 2-3 s for its welcome.
    The check is a read of the OVERLAPPED (HasOverlappedIoCompleted), so it
    costs nothing to make after every routine.  Here each routine receives one
    byte, so at most one more of A's lines may be routed between M's cut-off
    (which posts the AcceptEx that completes at once with B) and B's joining.
    With the check only every ROUTINE_BURST routines, B joined 4 lines after
    the cut-off (proven against that: the AcceptEx check under ``idle_check``)."""
    s = Session("routines", "chat", fake=exact(immediate=1.0, window=1100), recv_size=1,
                limits=Limits(max_clients=2, max_queued=2000))
    a = s.client(at_ms=0)
    m = s.client(at_ms=0, reads=False)
    b = s.client(at_ms=0.5)
    lines = [b"a%03d\n" % i for i in range(200)]
    a.send(1, b"".join(lines))
    at_cut_off: list[int] = []
    close = s.server._close

    def recording_close(conn: object, abort: bool = False) -> None:
        if abort and not at_cut_off:
            at_cut_off.append(s.server.stats.hub.lines)
        close(conn, abort)  # type: ignore[arg-type]

    s.server._close = recording_close  # type: ignore[method-assign]
    stats = s.run(stop_ms=20)
    assert stats.cut_off == 1 and m.reset_by_server and at_cut_off
    welcome, *got = bytes(b.data).splitlines(keepends=True)
    assert welcome == b"* welcome " + b.name + b"\n"
    missed = len(lines) - len(got)
    assert missed <= at_cut_off[0] + 1, f"B joined {missed - at_cut_off[0]} lines after M's cut-off freed its place"
    assert got == [a.name + b": " + line for line in lines[missed:]]
