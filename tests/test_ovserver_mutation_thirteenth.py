"""ovserver: survivors of the thirteenth session's mutation sample (issue 18,
seed 25, drawn among mutants no earlier sample or full run had checked) that
a behaviour tells apart."""

from __future__ import annotations

import pytest

from fakewinsock import CRITICAL_SECTION, FakeWinsock
from ovserver import Limits, Server, ServerConfig, ServerError, ServerStats, create_server
from ovserver._core import MAX_IDLE_TIMEOUT_MS
from ovserver._protocol import chat_line, welcome_line
from tests.ovserver_session import MODELS, MS, Client, Session, exact
from tests.test_ovserver_backpressure import lines
from tests.test_ovserver_backpressure import session as backpressure_session
from tests.test_ovserver_mutation_routines import HOSE
from tests.test_ovserver_robust import AcceptPostsFail, NthThreadFails

GRACE_MS = 40


@pytest.mark.parametrize(("late_ms", "reaped"), [(GRACE_MS - 0.5, True), (GRACE_MS + 0.5, False)])
def test_an_iocp_server_without_workers_waits_the_whole_grace_period_for_its_cancelled_accept(
        late_ms: float, reaped: bool) -> None:
    """The iocp model's only worker cannot be created: the stop cancels the
    AcceptEx posted before it, and the controller, alone, waits for that
    operation's packet for ``stop_grace_ms`` in all.  A packet that comes
    0.5 ms before the grace period ends is reaped (run() then cleans up:
    nothing is left open); one 0.5 ms after it is given up on (run() leaves
    the operation, the port and the wake event as they are).  Proven against
    ``Server.__init__``'s ``_stop_waited_ms = 1`` (the controller waited 1 ms
    less and gave up on the packet due before the grace period had passed)."""
    ws = NthThreadFails(seed=0, config=exact(0.0, completion_delay=(int(late_ms * MS), int(late_ms * MS)),
                                             strict_cleanup=False))
    server = create_server(ws, ServerConfig(port=0, model="iocp", workers=1, stop_grace_ms=GRACE_MS))
    with pytest.raises(ServerError, match=r"^CreateThread failed"):
        server.run()
    assert server.stats.threads_started == 0
    if reaped:
        assert ws.leaks() == [] and ws.open_handles() == []
    else:
        assert any(leak.startswith("AcceptEx") and leak.endswith("still in flight") for leak in ws.leaks())
        assert len(ws.open_handles()) == 2  # the port and the wake event


def test_stall_time_outs_at_the_ends_of_the_range_are_accepted_and_one_over_is_rejected() -> None:
    """``stall_timeout_ms`` (back-pressure's cut-off, with ``limits.high_water``)
    takes 1 to ``MAX_IDLE_TIMEOUT_MS`` as the idle time-out does; one more is
    rejected naming the value.  Proven against ``__post_init__``'s ``<`` for
    ``<=`` at the upper end (the largest time-out was rejected)."""
    bp = Limits(high_water=1000)
    for ms in (1, MAX_IDLE_TIMEOUT_MS):
        assert ServerConfig(stall_timeout_ms=ms, limits=bp).stall_timeout_ms == ms
    with pytest.raises(ValueError, match=rf"^stall_timeout_ms must be 0 \(off\) to {MAX_IDLE_TIMEOUT_MS}, "
                                         rf"not {MAX_IDLE_TIMEOUT_MS + 1}$"):
        ServerConfig(stall_timeout_ms=MAX_IDLE_TIMEOUT_MS + 1, limits=bp)


def test_an_events_group_polling_more_closing_clients_than_wait_slots_gives_up_after_the_grace_period() -> None:
    """Events model, every completion (cancellations too) 400 ms after its
    cause, so the acceptor takes one client every 400 ms.  63 clients fill one
    group; all send a line at 26 s, so all are last active (their echo sent)
    at 26.8 s and the idle check (30 s) closes all 63 at 56.8 s, each with its
    receive in flight until 57.2 s.  A 64th client joins the group in their
    place at 56.85 s, and the stop comes at 56.9 s: 64 closing clients, more
    than the 63 spare slots of the group's wait, which therefore polls every
    ``CLOSING_POLL_MS`` (100 ms).  Those polls count towards the grace
    period (200 ms), so the stop gives up at 57.1 s, before the cancelled
    receives complete, and counts what it abandoned: 64 receives and the
    AcceptEx.  Proven against ``_wait_group``'s ``waited_ms = timeout_ms``
    for ``+=`` (each 100 ms poll then counted alone, never reaching the grace
    period: the stop waited for the cancellations, 200 ms longer)."""
    stop_took_ns = stop_with_more_closing_clients_than_wait_slots(200)
    assert 200 * MS <= stop_took_ns < 210 * MS, "the stop did not give up after its grace period"


def stop_with_more_closing_clients_than_wait_slots(grace_ms: int) -> int:
    """The scenario above with ``stop_grace_ms`` ``grace_ms``: checks what
    every grace period shorter than the cancellations' 300 ms gives (every
    client echoed, 63 timed out, 65 operations abandoned) and returns how
    long the stop took (ns)."""
    ws = FakeWinsock(seed=0, config=exact(0.0, completion_delay=(400 * MS, 400 * MS), strict_cleanup=False))
    s = Session("events", ws=ws, stop_grace_ms=grace_ms, idle_timeout_ms=30_000)
    group = [s.client(0.01 * i) for i in range(63)]
    for c in group:
        c.send(26_000, b"x\n")
    s.client(56_450)  # accepted at 56.85 s
    stop_ms = 56_900
    s.stop(stop_ms)

    def ready(_: Server) -> None:
        for ms, action in s._script:
            ws.call_at(int(ms * MS), lambda a: a(), action)

    stats = s.server.run(ready)
    assert all(bytes(c.data) == b"x\n" for c in group)
    assert (stats.accepted, stats.threads_started, stats.timed_out, stats.closed_at_stop) == (64, 1, 63, 1)
    assert stats.abandoned == 65 and len(ws.pending_operations()) == 65
    return ws.now_ns - stop_ms * MS


def test_a_routines_wake_up_one_tick_millisecond_before_the_retry_is_due_waits_out_that_millisecond() -> None:
    """Routines model, ``accept_retry_ms`` 16.  Re-posting the accept after
    client A fails (WSASocket: WSAENOBUFS) at 1 ms, when GetTickCount64 reads
    0 (it steps every 15.625 ms): the retry is due at tick 16.  A's line
    ends the alertable wait at 15.7 ms, when the tick reads 15: 1 ms is
    left, so the server waits that millisecond out before retrying (at
    16.7 ms), by when the failures have ended (16.2 ms): one failure, and
    client B, connecting at 20 ms, is served at once.  Proven against
    ``_wait``'s ``left <= 1`` for ``<= 0`` (the server retried at 15.7 ms,
    with 1 ms left, failed again, and served B only at the next retry, at
    31.7 ms)."""
    ws = AcceptPostsFail(seed=0, config=exact(0.0))
    stats, a, seen = retry_near_the_tick(ws, accept_retry_ms=16)
    assert (ws.failures, stats.accept_failures, stats.accepted) == (1, 1, 2)
    assert bytes(a.data) == b"a\n" and seen == [b"b\n"]


def retry_near_the_tick(ws: AcceptPostsFail, accept_retry_ms: int) -> tuple[ServerStats, Client, list[bytes]]:
    """Routines model on ``ws``: posting an accept fails from 0.9 ms to 16.2
    ms; client A connects at 1 ms (the re-post after it fails at tick 0) and
    sends a line at 15.7 ms (tick 15), B connects at 20 ms and sends a line
    at 21 ms; a stop at 40 ms.  The statistics, A, and what B had got by 25 ms."""
    ws.windows = ((0.9, 16.2),)
    s = Session("routines", ws=ws, accepts=1, accept_retry_ms=accept_retry_ms)
    a, b = s.client(1), s.client(20)
    a.send(15.7, b"a\n")
    b.send(21, b"b\n")
    seen: list[bytes] = []
    s.at(25, lambda: seen.append(bytes(b.data)))
    return s.run(stop_ms=40), a, seen


class _PossibleDeadlock(Exception):
    """What EnterCriticalSection raises when its wait times out (Windows'
    EXCEPTION_POSSIBLE_DEADLOCK)."""


class EnterFailsWhileOwned(FakeWinsock):
    """Once ``armed``, the first EnterCriticalSection of a section another
    thread owns raises, as Windows' EXCEPTION_POSSIBLE_DEADLOCK does when the
    wait for a critical section times out."""

    armed = False
    raised = 0

    def EnterCriticalSection(self, lpCriticalSection: CRITICAL_SECTION) -> None:
        if self.armed and lpCriticalSection.OwningThread not in (0, self.GetCurrentThreadId()):
            self.armed = False
            self.raised += 1
            raise _PossibleDeadlock("EnterCriticalSection: possible deadlock")
        super().EnterCriticalSection(lpCriticalSection)


def run_until_a_group_thread_dies(s: Session, ws: EnterFailsWhileOwned,
                                  raises: type[BaseException] = _PossibleDeadlock) -> None:
    """Client A sends a line every millisecond while others connect at the
    same moments, so A's group thread, back from its wait, tries to take the
    server lock while the acceptor holds it, and that EnterCriticalSection
    raises; run() re-raises it (or ``raises``, what came out of the clean-up
    after it)."""
    a = s.client(1)
    for k in range(20):
        a.send(2 + k, b"a%d\n" % k)
        s.client(2 + k)
    s.at(1.5, lambda: setattr(ws, "armed", True))

    def ready(_: Server) -> None:
        for ms, action in s._script:
            ws.call_at(int(ms * MS), lambda f: f(), action)

    with pytest.raises(raises):
        s.server.run(ready)


def test_an_events_group_thread_whose_enter_fails_does_not_leave_the_lock_another_thread_holds() -> None:
    """Events model: client A sends a line every millisecond while others
    connect at the same moments, so A's group thread, back from its wait,
    tries to take the server lock while the acceptor holds it; that
    EnterCriticalSection raises.  The group thread does not hold the lock, so
    on its way out it must not leave it: run() re-raises the group thread's
    own exception.  Proven against ``_leave_if_held``'s ``or`` for ``and``
    (the group thread called LeaveCriticalSection on the acceptor's lock: the
    fake's usage error, undefined behaviour on Windows)."""
    ws = EnterFailsWhileOwned(seed=0, config=exact(0.0, strict_cleanup=False))
    run_until_a_group_thread_dies(Session("events", ws=ws), ws)
    assert ws.raised == 1


@pytest.mark.parametrize("model", MODELS)
def test_two_deaf_chat_members_are_both_counted_as_cut_off(model: str) -> None:
    """Chat with back-pressure (high-water mark 16 KB, stall time-out 300 ms):
    two members that never read hold the talker back until each is cut off
    for stalling; both count, in ``stalled`` and in ``cut_off``, and the
    reader gets every line.  Proven against ``_idle_check``'s ``cut_off = 1``
    for ``+= 1`` (two cut-offs counted as one)."""
    s = backpressure_session(model, "chat", high_water=16 * 1024, stall_ms=300)
    deaf = [s.client(1.0, reads=False), s.client(1.2, reads=False)]
    reader = s.client(1.5)
    talker = s.client(2.0)
    sent = lines(b"t", 4000)
    talker.send(10.0, b"".join(sent))
    stats = s.run(stop_ms=1500)
    assert all(c.reset_by_server for c in deaf)
    assert (stats.stalled, stats.cut_off, stats.hub.cut_off) == (2, 2, 0)
    assert bytes(reader.data) == welcome_line(reader.name) + b"".join(chat_line(talker.name, ln) for ln in sent)


def test_an_events_stop_that_gives_up_counts_what_every_group_abandoned() -> None:
    """Events model, every completion (cancellations too) 50 ms after its
    cause; 64 clients, so two groups (63 and 1).  The stop's grace period is
    1 ms: each group gives up on its clients' cancelled receives, and the
    acceptor on its AcceptEx; ``abandoned`` adds up all of them (64 + 1), as
    the operations still pending show.  Proven against ``_group_loop``'s
    ``abandoned = ...`` for ``+=`` (the last group to give up overwrote the
    others' count)."""
    ws = FakeWinsock(seed=0, config=exact(0.0, completion_delay=(50 * MS, 50 * MS), strict_cleanup=False))
    s = Session("events", ws=ws, stop_grace_ms=1)
    for i in range(64):
        s.client(1 + 0.01 * i)
    s.stop(3500)

    def ready(_: Server) -> None:
        for ms, action in s._script:
            ws.call_at(int(ms * MS), lambda f: f(), action)

    stats = s.server.run(ready)
    assert (stats.accepted, stats.threads_started, stats.closed_at_stop) == (64, 2, 64)
    assert stats.abandoned == 65 == len(ws.pending_operations())


def test_a_routines_burst_retries_a_failed_accept_at_the_tick_it_is_due() -> None:
    """Routines model, ``accept_retry_ms`` 15, each Winsock call 0.1 ms: a
    client sends 6000 bytes received a byte per WSARecv, each completing at
    once, so one alertable wait runs routines for about a second (with no
    time-out: no retry was pending when it began).  Client B is accepted by
    a routine at 3 ms, and re-posting the accept fails (WSASocket:
    WSAENOBUFS, until 6 ms), at tick 0: the retry is due at tick 15, which
    GetTickCount64 reads from 15.625 ms.  The check every ``ROUTINE_BURST``
    routines retries at the first one that reads tick 15 (21 ms), so client
    C, connected at 5 ms, has its echo by 25 ms.  Proven against
    ``_between_routines``' ``>`` for ``>=`` (the retry waited for tick 31,
    34 ms, and C for it)."""
    assert _echo_of_c_in_a_burst(15, [25]) == [b"c\n"], "the retry waited for the next tick"


def test_a_routines_burst_does_not_retry_a_failed_accept_before_it_is_due() -> None:
    """As above with ``accept_retry_ms`` 100: the retry is due at tick 100,
    which GetTickCount64 reads from 109.375 ms.  The check every
    ``ROUTINE_BURST`` routines waits for it, though posting would work again
    from 6 ms: client C has no echo at 100 ms, and has it by 120 ms.  Proven
    against ``_between_routines``' ``and`` for ``or`` (with a retry pending,
    every check retried at once: C had its echo by 25 ms)."""
    assert _echo_of_c_in_a_burst(100, [25, 100, 120]) == [b"", b"", b"c\n"], "the retry came before it was due"


def _echo_of_c_in_a_burst(retry_ms: int, at_ms: list[float]) -> list[bytes]:
    """The routines model's burst with a failed accept (the two tests above):
    what client C has received at each of ``at_ms``."""
    ws = AcceptPostsFail(seed=0, config=exact(1.0, syscall_cost=100_000, background=1.0))
    ws.windows = ((2.5, 6),)
    s = Session("routines", ws=ws, recv_size=1, accepts=1, accept_retry_ms=retry_ms)
    hose = s.client(0)
    hose.send(1, HOSE)
    s.client(3)
    c = s.client(5)
    c.send(6, b"c\n")
    seen: list[bytes] = []
    for at in at_ms:
        s.at(at, lambda: seen.append(bytes(c.data)))
    stats = s.run(stop_ms=2000)
    assert (ws.failures, stats.accept_failures, stats.accepted) == (1, 1, 3)
    assert bytes(hose.data) == HOSE
    return seen
