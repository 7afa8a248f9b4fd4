"""Proof of power: ovserver's property tests catch every deliberately broken server.

The property test bodies of :mod:`tests.mutants.properties` run on the correct
servers (both I/O models), which must pass, and on each mutant of
:mod:`tests.mutants.ovserver_mutants`, which must fail: within Hypothesis's
default example budget, derandomized (the same result on every machine).
Each mutant's shrunk counterexample is printed (``-s``) and listed in the
"fakewinsock summary" at the end of the session.
"""

from __future__ import annotations

import inspect
import textwrap
import time
from collections.abc import Callable

import pytest
from hypothesis import settings

from fakewinsock import FakeWinsock
from fakewinsock.testing import (
    ChatModel,
    ClientFault,
    ClientScript,
    EchoModel,
    FaultPlan,
    LineServerFailure,
    Scenario,
    check_line_server,
)
from fakewinsock.testing._scenarios import _bulk
from ovserver import Limits, Server
from ovserver._events import EventServer
from ovserver._iocp import IocpServer
from ovserver._protocol import Hub
from ovserver._routines import RoutineServer
from tests.mutants import MUTANTS, Mutant, check_copy
from tests.mutants.group_properties import (
    GROUP_SETTINGS,
    groups_burst_property,
    groups_chat_property,
    groups_property,
)
from tests.mutants.properties import (
    PROPERTIES,
    RECIPE_SETTINGS,
    SETTINGS,
    STORM_STOP_SETTINGS,
    OvserverUnderTest,
    recipe_bp_idle_property,
    recipe_bp_property,
    recipe_property,
    storm_stop_property,
    with_accepts,
)

CORRECT: dict[str, type[Server]] = {"events": EventServer, "routines": RoutineServer}


def test_the_default_example_budget() -> None:
    assert SETTINGS.max_examples == settings.get_profile("default").max_examples == 100
    assert SETTINGS.derandomize and SETTINGS.database is None


@pytest.mark.parametrize("prop", [pytest.param(p, marks=pytest.mark.slow) if p.startswith(("recipe", "groups")) else p
                                  for p in sorted(PROPERTIES)])
@pytest.mark.parametrize("model", sorted(CORRECT))
def test_correct_server_passes(model: str, prop: str) -> None:
    (CORRECT_BUDGETS.get(prop) or PROPERTIES[prop])(CORRECT[model])()


#: The slow properties on the correct servers, on budgets that let .ci/run-slow
#: end (their full budgets did not end in 13 minutes on two cores): what the
#: mutants are caught with is unchanged.  The recipe's no-false-alarm measure is
#: benchmarks/bench_search.py --false-alarms (1000 examples per model and mode);
#: here 100 examples each.  The thread-group properties: 6 examples of 130-200
#: clients (three or four groups, as with 150-300: groups are made and ended as
#: clients come and go either way, and the interleavings drawn are bounded by
#: MAX_DRAWS, not by the clients) and 50 of the few-clients and burst ones.
_CORRECT_SETTINGS = settings(SETTINGS, max_examples=50)
CORRECT_BUDGETS: dict[str, Callable[[type[Server]], Callable[[], None]]] = {
    "recipe": lambda cls: recipe_property(cls, settings_=settings(RECIPE_SETTINGS, max_examples=100)),
    "recipe_chat": lambda cls: recipe_property(cls, "chat", settings_=settings(RECIPE_SETTINGS, max_examples=100)),
    "recipe_bp": lambda cls: recipe_bp_property(cls, settings_=settings(RECIPE_SETTINGS, max_examples=100)),
    "recipe_accepts": lambda cls: recipe_property(with_accepts(cls, 4),
                                                  settings_=settings(RECIPE_SETTINGS, max_examples=100)),
    "recipe_bp_chat": lambda cls: recipe_bp_property(cls, "chat",
                                                     settings_=settings(RECIPE_SETTINGS, max_examples=100)),
    "recipe_bp_idle": lambda cls: recipe_bp_idle_property(cls, settings_=settings(RECIPE_SETTINGS, max_examples=100)),
    "groups": lambda cls: groups_property(cls, clients=(130, 200), settings_=settings(GROUP_SETTINGS, max_examples=6)),
    "groups_chat": lambda cls: groups_chat_property(cls, clients=(130, 160),
                                                    settings_=settings(GROUP_SETTINGS, max_examples=6)),
    "groups_few": lambda cls: groups_property(cls, clients=(2, 70), settings_=_CORRECT_SETTINGS, lines=(0, 3)),
    "groups_burst": lambda cls: groups_burst_property(cls, settings_=_CORRECT_SETTINGS),
}


def failure_kind(error: str) -> str:
    """How the property noticed, in a few words."""
    if "busy loop" in error or "busy polling" in error:
        return "busy loop"
    if "did not stop within" in error:  # (the checker's stop second: not "wrong data")
        return "stop not honoured"
    if "raised" in error:
        exc = error.split("raised ", 1)[1].split(":", 1)[0]
        return {"WinsockUsageError": "misuse detected", "LeakError": "leak at WSACleanup",
                "DeadlockError": "deadlock at shutdown", "ServerError": "server error"}.get(exc, exc)
    if "still holds its socket" in error:
        return "exit not handled"
    if "served at once" in error and "max_clients" in error:  # (the checker's client limit)
        return "over client limit"
    if "connections open at once" in error:  # (a counting server's peak)
        return "peak miscounted"
    if "not served" in error:
        return "client not served"
    if "by the server" in error or "server closed" in error:
        return "client dropped"
    return "wrong data"


def test_a_stop_not_honoured_has_its_own_kind() -> None:
    """The checker's "did not stop within 1 s of the stop request" is its own kind, not "wrong data": two clients
    flood a routines server slowed to 1 ms a call whose stop is seen only between bursts of routines
    (stop-unseen-in-routine-burst), asked to stop at 50 ms; the correct server's run passes."""
    flood = Scenario(tuple(ClientScript.of(*_bulk(37_500, 60, i)) for i in range(2)), FaultPlan(stop_at_ns=50_000_000),
                     window=100, features=("busy_server", "early_stop"), call_cost_ns=1_000_000)
    mutant = next(m for m in MUTANTS if m.name == "stop-unseen-in-routine-burst")
    for cls in (RoutineServer, mutant.server):
        def server(ws: FakeWinsock, address: tuple[str, int], cls: type[Server] = cls) -> OvserverUnderTest:
            return OvserverUnderTest(cls, ws, address, "echo", Limits())

        try:
            check_line_server(server, flood, EchoModel(), seed=0)
        except LineServerFailure as e:
            assert cls is mutant.server, e
            assert "did not stop within 1 s of the stop request" in e.report.errors[0], e.report.errors
            assert failure_kind(e.report.errors[0]) == "stop not honoured"
        else:
            assert cls is RoutineServer, "the mutant's stop came in time"
    assert failure_kind("client 1: expected b'a\\n', received b'b\\n'") == "wrong data"


def catch(mutant: Mutant) -> tuple[LineServerFailure, float]:
    test = PROPERTIES[mutant.caught_by](mutant.server)
    t0 = time.perf_counter()
    try:
        test()
    except LineServerFailure as e:  # the shrunk example's (SETTINGS: one failure reported)
        return e, time.perf_counter() - t0
    pytest.fail(f"the {mutant.caught_by} property did not catch {mutant.name}: {mutant.bug}")


#: Issue 10's mutants that their property's derandomized run catches; the others are strict expected failures (an
#: unexpected catch fails the run, so this list is kept true).  Measured on 2026-12-05 on the search12 branch (main
#: f75e439 and search12's swarm: decoys against Hypothesis's copies of examples, exact-limit sends weighted and
#: alone, early stops during a slow reader's sends, crowd's and unterminated's draws whatever the switch; queue-
#: limit-off-by-one under the echo recipe) with CI=true (the derandomized "ci" profile), generate phase only (a
#: plugin that skips the shrink phase, which takes minutes per mutant on the shared machine; catching does not
#: depend on it), this file alone collected (``-m slow -k test_mutant_is_caught -n 2``, load about 18; re-run
#: after merging main 4faf7ee, before the iocp accept-retry fix: the same, but stall-clock-not-cleared): the
#: check_line_server call each is caught at is 33 (partial-last-line-delivered), 59 (line-limit-ignores-buffered), 5
#: (line-limit-off-by-one), 99 (big-reply-truncated), 32 (coalesced-send-drops-split-head), 70 (queued-count-leaks),
#: 39 (half-close-forgets-queued-replies), 28 (chat-crlf-normalised), 28 (chat-to-ended-client), 11 (accept-error-
#: stops-accepting), 102 (full-check-counts-members), 49 (stop-skips-busy-sends), 38 (chat-broadcast-live-dict), 13
#: (serve-forgets-closing), 33 (slot-not-updated), 37 (stop-closes-while-iterating), 13 (stop-wait-not-alertable),
#: 11 (iocp-full-server-never-resumes), 31 (iocp-receive-without-lock), 1 (iocp-drain-not-signalled), 29 (scanned-
#: by-receive), 56 (tail-over-limit-unchecked), 83 (hung-up-stays-member), 29 (partial-at-limit-refused), 6 (limit-
#: counts-routed-lines), 11 (hangup-stops-reading), 11 (hangup-closes-at-once), 5 (recv-reposted-first), 1 (name-
#: from-local-address), 40 (rotated-index-ignored), 23 (accept-retry-not-armed), 5 (client-limit-off-by-one), 1
#: (wake-event-not-reset), 5 (resume-before-freeing), 3 (iocp-closed-packet-dropped), 48 (stall-clock-not-cleared),
#: 47 (other-groups-not-woken), 5 (acceptor-not-woken-by-group), 1 (iocp-workers-not-joined), 84 (no-update-accept-
#: context), 11 (accept-error-leaks-socket), 14 (event-closed-with-socket), 52 (stall-unwatched-without-idle-
#: timeout), 37 (one-slot-per-wakeup), 27 (close-keeps-senders-paused), 1 (stop-leaves-accept-socket), 3 (failed-
#: empty-receive-is-eof).  Missed: queue-limit-off-by-one and stop-unseen-in-routine-burst (below).  One fixed
#: sequence of examples decides it, which every change of the swarm's draws or of the checker moves, and so does the
#: set of local modules loaded (Hypothesis 6.1xx draws constants from their source: see the README's caution):
#: benchmarks/bench_search.py's seeds are the measure of search power.
#: (Caught again since search12's decoys, strict expected failures before: full-check-counts-members,
#: queued-count-leaks, stop-skips-busy-sends, close-keeps-senders-paused.)
#: Re-measured on 2026-12-05 on the search13 branch (boundary_sends; busy_server opt-in), the same way (CI=true,
#: generate phase only, both files, ``-n 2``): the first failing check_line_server call of each is 88
#: (queue-limit-off-by-one, a strict expected failure before: now caught; search13's boundary sends), 7 (line-limit-
#: off-by-one), 33 (line-limit-ignores-buffered), 29 (partial-last-line-delivered), 5 (big-reply-truncated), 5
#: (coalesced-send-drops-split-head), 59 (queued-count-leaks), 37 (half-close-forgets-queued-replies), 16 (chat-crlf-
#: normalised), 103 (chat-to-ended-client), 28 (accept-error-stops-accepting), 115 (full-check-counts-members), 55
#: (stop-skips-busy-sends), 7 (chat-broadcast-live-dict), 49 (serve-forgets-closing), 31 (slot-not-updated), 33
#: (stop-closes-while-iterating), 49 (stop-wait-not-alertable), 5 (iocp-full-server-never-resumes), 59 (iocp-receive-
#: without-lock), 1 (iocp-drain-not-signalled), 28 (scanned-by-receive), 31 (tail-over-limit-unchecked), 60 (hung-up-
#: stays-member), 11 (partial-at-limit-refused), 27 (limit-counts-routed-lines), 7 (hangup-stops-reading), 31
#: (hangup-closes-at-once), 5 (recv-reposted-first), 1 (name-from-local-address), 43 (rotated-index-ignored), 26
#: (accept-retry-not-armed), 7 (client-limit-off-by-one), 1 (wake-event-not-reset), 7 (resume-before-freeing), 19
#: (iocp-closed-packet-dropped), 56 (stall-clock-not-cleared), 35 (other-groups-not-woken), 35 (acceptor-not-woken-
#: by-group), 1 (iocp-workers-not-joined), 26 (no-update-accept-context), 7 (accept-error-leaks-socket), 19 (event-
#: closed-with-socket), 29 (one-slot-per-wakeup), 1 (stop-leaves-accept-socket), 25 (failed-empty-receive-is-eof), 49
#: (no-accept-resignal), 13 (close-keeps-senders-paused), 49 (stall-unwatched-without-idle-timeout);
#: stop-unseen-in-routine-burst missed (below): 50 passed, 1 expected failure, in 588 s.
#: Re-measured on 2026-12-05 on the search14 branch (busy_server in the default swarm: one more switch in every
#: example, so every sequence moved), the same way (CI=true, generate phase only, both files, ``-n 2``, 1261 s
#: under load 12): caught, at check_line_server call 42 (line-limit-ignores-buffered), 30 (line-limit-off-by-
#: one), 49 (big-reply-truncated), 32 (coalesced-send-drops-split-head), 41 (queued-count-leaks), 25 (half-close-
#: forgets-queued-replies), 28 (partial-last-line-delivered), 111 (chat-to-ended-client), 91 (accept-error-stops-
#: accepting), 211 (full-check-counts-members: its chat recipe's 200 examples and the final replay), 33 (stop-
#: skips-busy-sends), 27 (queue-limit-off-by-one), 33 (stop-unseen-in-routine-burst, a strict expected failure
#: before) and 54 (iocp-win32-error-as-winsock, likewise), every other issue-10 mutant within 128; missed:
#: group-room-ignores-inbox (below) and stop-before-inbox.
#: On the search15 branch (a crowd's late wave with the server's last two places, accept_faults' reset storm,
#: busy_server 1 in 4 with a stop of its own: every sequence moved again), the same way but for these two only
#: (CI=true, generate phase only, ``-m slow -k "group-room-ignores-inbox or stop-before-inbox"``, 513 s under
#: load 18, before the last change of the swarm, no small listen backlog for a busy server that serves fewer at
#: once than come): both still missed (strict expected failures).  The others were not re-run derandomized.
#: On the search16 branch (the checker's idle second after a drained backlog; fillers without tails, no injections
#: in a crowd at a server serving tens, boundary sends first, injections into receives and sends: every sequence
#: moved again), CI=true, ``-m slow`` for these two only (682 s under load 5 to 11): group-room-ignores-inbox caught
#: ("server error", 65 clients) and stop-before-inbox caught ("stop not honoured", 3 clients), both strict expected
#: failures before (XPASS): out of RECIPE_LOST and RED5_RECIPE_LOST.  Also re-run derandomized there:
#: queue-limit-off-by-one and iocp-win32-error-as-winsock (see the measurement log's thirteenth round).
#: On the merged swarm of search17 (spread_arrivals' keep-alive connection, which moves every example with
#: spread_arrivals on and no crowd; 2026-12-05, main 286a5d2, CI=true, -m slow, the whole slow list in one process):
#: chat-to-ended-client missed by the new sequence (below; and stop-before-inbox, RED5_RECIPE_LOST); every other
#: issue-10 and red-team mutant still caught or still a strict expected failure as listed.
#: On redteam7's branch (2026-12-06: red7_mutants.py loaded and the checker's quiet check, whose source adds
#: constants Hypothesis draws from: the sequence moved), CI=true, -m slow: chat-to-ended-client caught again
#: (wrong data, 66 clients, "a line ... after the server had this client's end"; a strict XPASS before this change).
RECIPE_LOST: dict[str, str] = {}
#: The fourth red team's (tests/mutants/red4_mutants.py), measured as above (the back-pressure ones with
#: recipe_bp, the recipe aimed at ovserver with back-pressure); caught since the recipe11 branch:
#: stall-clock-not-cleared (a backpressure client that stays once served), stall-unwatched-without-idle-timeout
#: (recipe_bp's 2 s deadline in chat) and failed-empty-receive-is-eof (the server's counts()).
#: stop-unseen-in-routine-burst was one until search14: "not observable in virtual time" (redteam4, recipe11: at
#: 1 us a call the server empties the buffers far faster than the fake's network refills them); search13 added
#: FakeConfig.keep_up and the swarm's busy_server (a server at 400 us or 1 ms a call, clients flooding a 100-byte
#: window, a stop while they do), opt-in while it raised false alarms on the correct servers; search14 removed them
#: (the fake's quantum with keep_up, the checker's slowed-server release and idle seconds) and put busy_server in
#: the default swarm: caught at check_line_server call 33 of the derandomized run ("did not stop within 1 s").
RED4_RECIPE_LOST: dict[str, str] = {}
RECIPE_LOST |= RED4_RECIPE_LOST
#: The fifth red team's (tests/mutants/red5_mutants.py), measured 2026-12-05 (redteam5, on main c62dee4: the
#: recipe derandomized and with Hypothesis seeds 1 and 2): the other eight are caught derandomized.  (iocp-win32-
#: error-as-winsock was one too until search14's swarm, whose derandomized run catches it at call 54: the server
#: counted 3 clients ended gracefully where 2 sent a FIN.)
#: On the merged swarm of search17 (main 286a5d2, CI=true, -m slow, the whole slow list): stop-before-inbox missed.
#: On main 7c8c75a (2026-12-06, lead: CI=true, -m slow, the fifteen strict expected failures of RECIPE_LOST, -n 2):
#: stop-before-inbox caught (a strict XPASS; out of this list).  The derandomized sequences had moved with search23's
#: swarm (a session earlier) and the list was not re-run whole since: which change made it reachable is not isolated.
#: The caught ones re-run on 95b0e3a and again on 5b841b5 (2026-12-06, lead: CI=true, -m slow): group-room-ignores-inbox
#: missed on both (its sequence had moved since it was last confirmed, before search23; the change is not isolated).
RED5_RECIPE_LOST = {
    "group-room-ignores-inbox": "the derandomized sequence no longer reaches it (on 95b0e3a and 5b841b5): it needs "
                                "more clients accepted than a group's last places before the group's thread runs "
                                "(a crowd over a nearly full group), which the swarm draws rarely; "
                                "benchmarks/bench_search.py, Hypothesis seeds 0-4, 200 examples, on d615f83: found "
                                "on 2 of 5 (seeds 0 and 2, at examples 135 and 24)",
}
RECIPE_LOST |= RED5_RECIPE_LOST
#: The sixth red team's (tests/mutants/red6_mutants.py), measured 2026-12-05 (redteam6, on main a0dfb4e: the recipe
#: derandomized, CI=true, generate phase only, one test at a time): caught at check_line_server call 20
#: (acceptex-post-failure-leaks-socket), 3 (iocp-early-accept-not-owed), 11 (first-receive-before-slot), 132
#: (stop-flag-not-signalled), 54 (hangup-allowance-counts-long-line), 52 (hangup-fin-resets-error-line), 44
#: (stall-cut-off-stays-in-hub, recipe_bp) and 47 (iocp-deadline-not-woken, recipe_bp_chat); missed:
#: enobufs-post-left-idle, cut-off-closes-gracefully.
#: Re-checked as the slow run does it (CI=true, -m slow, every phase, no measuring plugin loaded): the eight caught
#: in 9 to 316 s each (stop-flag-not-signalled 316 s, iocp-deadline-not-woken 134 s, hangup-fin-resets-error-line
#: 110 s, the others under 40 s), enobufs-post-left-idle and cut-off-closes-gracefully xfail (55 s together).
#: On the merged swarm of search16 (boundary sends first, injections into receives and sends by default, fillers
#: without tails; 2026-12-05, main 84ab53d, CI=true, -m slow, every phase, 367 s for the ten and closed-send-never-
#: reaped, under load 2 to 4): enobufs-post-left-idle and cut-off-closes-gracefully caught (they were strict
#: expected failures: XPASS), the six others above still caught, and these two missed by the new sequence:
#: On redteam8's branch (2026-12-06: red8_mutants.py loaded, whose source adds constants Hypothesis draws from:
#: the sequence moved), CI=true, -m slow, the eight strict expected failures of RECIPE_LOST before the RED8 ones in
#: one run (307 s, load 5-6): stall-cut-off-stays-in-hub caught (a strict XPASS; alone: 19 s, client not served, 4
#: clients), so it leaves this list; the seven others still xfail.
RED6_RECIPE_LOST = {
    "closed-send-never-reaped": "needs a connection closed (reset, cut-off, stop) with its send still in flight in "
                                "a group that then stays quiet for a second, so that the send's completion is "
                                "never reaped and the socket never closed: benchmarks/bench_search.py seed 4 finds "
                                "it at example 30 (readers that stop for good); the derandomized sequence does not",
}
RECIPE_LOST |= RED6_RECIPE_LOST
#: The seventh red team's (tests/mutants/red7_mutants.py), measured 2026-12-06 (redteam7, on main 4743126 with
#: red7_mutants.py loaded: CI=true, -m slow, one test at a time, every phase, nice 10 under load 4-5): caught
#: send-event-not-set (38 s, "client not served": a silent chat listener), reset-after-handling (19 s),
#: iocp-send-overlapped-reused (91 s, the server's own check: a send packet not in flight), leave-keeps-member
#: (recipe_bp_chat, 308 s) and room-counts-closing (12 s); missed (each run to the end of its budget; the five
#: re-checked as strict expected failures with the checker's quiet check, which changes no draw):
#: On search21's branch (2026-12-06: the swarm's reset_after_fin, a client that half-closes, reads nothing more and
#: resets: every sequence moved), CI=true, -m slow, for the red7 targets only: iocp-send-error-left-to-receive caught
#: (a strict XPASS before this change: out of the list); group-wake-reset-outside-lock and idle-newline-off-by-one
#: still strict expected failures.
RED7_RECIPE_LOST = {
    "rotation-from-rotated-index": "unfairness only: a client whose event is signalled at every wait is served "
                                   "ahead of the rest of its group, which waits until its flood ends (the stop flag, "
                                   "inbox and actions are read at every wake-up, so nothing is lost); within the "
                                   "checker's 30 s deadline that is correct behaviour; tests/test_ovserver_busy.py's "
                                   "fairness test catches it",
    "retry-only-between-waits": "a client kept in the listen backlog while a burst of routines runs is accepted "
                                "once the burst ends: within the checker's 30 s deadline, a delay only; needs an "
                                "AcceptEx failure during a flood of a routines server longer than the deadline",
}
RECIPE_LOST |= RED7_RECIPE_LOST
#: idle-newline-off-by-one was in RED7_RECIPE_LOST ("needs an idle time-out, which the recipe's server never has")
#: until 2026-12-06 (search24): the recipe aimed at ovserver with an idle time-out of 100 ms
#: (tests.mutants.properties.recipe_idle_property, chat; the models and the checker told the time-out, the
#: swarm's idle_clients) catches it derandomized at its 18th example ("closed by the server while sending ...
#: idle only 54.0 ms by its own account"), and the four idle mutants of tests/mutants/idle_mutants.py each.
#: The eighth red team's (tests/mutants/red8_mutants.py), measured 2026-12-06 (redteam8, on main 987c53e with
#: red8_mutants.py loaded: CI=true, -m slow, one test at a time, every phase, nice 10 under load 7-8): caught
#: iocp-one-stop-packet (10 s, leak at WSACleanup: three workers never ended), iocp-failed-packet-ends-worker (9 s,
#: the stop gave up on the unhandled operation), iocp-skip-on-success-assumed (124 s, the server's own check: a
#: send packet not in flight), iocp-release-on-first-reap (37 s, a WSASend still in flight at WSACleanup),
#: iocp-shared-receive-buffer (30 s, misuse: a pending WSARecv's buffer written), iocp-worker-timeout-is-failure
#: (9 s, ServerError: GetQueuedCompletionStatus failed, error 258) and coalesce-newest-first (recipe_chat, 68 s,
#: wrong data); missed (each run to the end of its budget):
RED8_RECIPE_LOST = {
    "iocp-close-with-receive-pending": "a graceful close with a receive outstanding happens, in the recipe, only "
                                       "at a stop (the idle time-out is off, a hang-up ends with the client's FIN "
                                       "or an abortive cut-off), and at a stop the checker accepts a reset with "
                                       "any prefix of the replies: a correct server resets too when its send is "
                                       "found in flight, also after all its bytes reached the client, so a check "
                                       "would raise false alarms; needs a graceful close outside a stop (an idle "
                                       "time-out); tests/test_ovserver_close_order.py's directed stop catches it",
    "iocp-receive-buffer-pooled-at-close": "needs a close with a receive in flight (a cut-off) and a new client "
                                           "accepted whose first receive completes before the cancelled "
                                           "receive's completion (tens of microseconds in the fake): the recipe's "
                                           "cut-offs come with no arrival right after them; not shown reachable "
                                           "in the fake at all (its cancellations complete within microseconds)",
    "iocp-key-reused-while-closing": "the closing table's entry overwritten by a new connection given the same "
                                     "id matters only when the first one's socket is still open, i.e. a graceful "
                                     "close waiting for its cancelled receive (at a stop, after which no one is "
                                     "accepted, or at an idle time-out, off in the recipe), and the second closes "
                                     "with an operation in flight before that cancellation completes "
                                     "(microseconds in the fake): no recipe traffic reaches it",
}
RECIPE_LOST |= RED8_RECIPE_LOST
#: Since the suite pins Hypothesis's local constants (tests/conftest.py, 2026-12-06: the derandomized sequence no
#: longer moves with the code's literals, but moved once with the pin), measured by alarm3 on main 3114e58 (CI=true,
#: -m slow, one test at a time): cut-off-closes-gracefully missed (stall-cut-off-stays-in-hub caught: out of
#: RED6_RECIPE_LOST).
#: On 2026-12-06 (search28) cut-off-closes-gracefully moved to recipe_chat and left this list: in echo, the
#: recipe's tight configuration takes 16 KiB a receive and queues 16 KiB at most, so one receive's replies alone
#: never pass the limit: the mutant shows only when replies before them are still queued with no send in flight
#: (the plain recipe, Hypothesis seeds 0-4, 200 examples, generate phase: seeds 2 and 4, at examples 37 and
#: 106); in chat one member's receive
#: of short lines reaches another as lines each prefixed with the sender's name, several times the bytes (a
#: directed burst of 1000 one-byte lines fails the mutant, seeds 0-1, the correct iocp server passes), and the
#: derandomized recipe_chat catches it (CI=true, -m slow).
PINNED_RECIPE_LOST: dict[str, str] = {}
RECIPE_LOST |= PINNED_RECIPE_LOST
#: The race mutants (tests/mutants/race_mutants.py, sched1), measured 2026-12-06 on sched1's branch (CI=true, -m slow,
#: the two alone, every phase, nice 10): iocp-controller-reset-before-wait caught ("did not stop within 1 s of the
#: stop request", 343 s for both); group-inbox-checked-outside-lock missed (the same window as
#: group-wake-reset-outside-lock, and the same reason).
RACE_RECIPE_LOST: dict[str, str] = {}  # (group-inbox-checked-outside-lock caught since 3c8d02f: see below)
RECIPE_LOST |= RACE_RECIPE_LOST
#: The ninth red team's (tests/mutants/red9_mutants.py: classic bugs an outside grader plants), measured 2026-12-06
#: (redteam9, on main b9e85a5 with red9_mutants.py loaded: CI=true, -m slow, one test at a time, nice 10 under load
#: 5-6): caught welcome-without-newline (6 s), routine-arguments-swapped (7 s), chat-echoes-to-sender (30 s) and
#: error-line-off-by-one (24 s), hangup-shuts-receive-side (44 s), chat-skips-blank-lines (37 s) and
#: group-handles-receive-only (14 s); missed (each run to the end of its budget, 17-70 s) the list below and
#: idle-close-abortive, which the idle property (recipe_idle, search24) catches (lead, CI=true, -m slow, 2026-12-06;
#: both idle ones registered with recipe_idle since).  Since the checker's peak bound (search27, 2026-12-06: the
#: models' max_clients, OvserverUnderTest.counts()'s "peak" and "accepted"): peak-counted-before-open caught; and
#: hub-full-off-by-one is EQUIVALENT (below).  Since the idle check no longer takes a client's newline-free bytes
#: on their way for activity (search27): idle-clock-any-bytes caught on recipe_idle (1 client, the swarm's
#: dribbler a byte each 29.4 ms, 54 draws, 105 s).
RED9_RECIPE_LOST: dict[str, str] = {}
RECIPE_LOST |= RED9_RECIPE_LOST
#: The tenth red team's (tests/mutants/red10_mutants.py: bugs a developer of such a server plausibly ships), measured
#: 2026-12-06 (redteam10, on main 160b2cb with red10_mutants.py loaded: CI=true, -m slow, one test at a time, every
#: phase, nice 10 under load 8-10): see the measurement log's round for the caught ones; missed (each run to the end
#: of its budget, 60-180 s) the five (three now) below, which simulate misses too (_RT10_LOST).
#: queue-limit-checked-before-adding was one until qlimit31 (2026-12-06): backpressure's reader at the edge of the
#: output limit (its last line takes the queue past max_queued) reaches it, with the checker's required cut-off
#: (bench_search: 5/5 seeds, median 30 examples; the derandomized recipe: 1 client, 18 lines of 1000 bytes).
#: hung-up-counted-at-fin was here ("checks29's lower bound sees it, bench_search 5 of 5 seeds, median 70, but not the
#: derandomized sequence") until 2026-12-07: caught by it since fa190's checker change moved the sequence (main 2518efa,
#: CI=true, -m slow: a strict XPASS, 74 s; again on 175b778 in 77 s: 1 client, the counts check "counted only 0
#: connections it closed itself", which failure_kind files as "wrong data"); the correct routines server passes that
#: shrunk example (replayed with reproduce_failure: it completes), so the catch is real.
RED10_RECIPE_LOST = {
    "zombies-overflow-wait-array": "needs 63 members and a closing client whose operation is still in flight in "
                                   "one group: a client handed over into the place of one just closed before its "
                                   "cancelled operation completes, which the fake does within its completion "
                                   "delay (0-50 us); test_a_full_group_with_a_closing_client_reaches_zombies_"
                                   "overflow_wait_array reaches it with a 5 ms delay, and tests/test_ovserver_"
                                   "mutation_events_more.py's full group with closing clients catches it",
    "ended-counted-when-drained": "the counts check bounds graceful ends from above only (no more than the "
                                  "clients that sent a FIN): counting fewer passes; a lower bound needs the "
                                  "clients whose FIN the server provably read, and those that then read the "
                                  "server's FIN are counted by the mutant too; what differs (a FIN, then a reset, "
                                  "cut-off or stop before the replies are out) is not provable from outside; "
                                  "every tests/test_ovserver_*.py passes too (no exact count after such an end)",
}
RECIPE_LOST |= RED10_RECIPE_LOST
#: The eleventh red team's (tests/mutants/red11_mutants.py), measured 2026-12-07 (red11, on 5d76482 + its
#: checks: CI=true, -m slow, the ten in one run, nice 10 under load 8-11): caught eof-marked-after-send (8 s),
#: marker-never-counted (22 s), iocp-retry-not-woken (38 s), resume-keeps-idle-clock (124 s, on
#: recipe_bp_idle, red11's), abortive-close-waits-for-receive (156 s), echo-one-byte-tail-dropped (172 s),
#: marker-does-not-accept (198 s); bench_search (README recipe, Hypothesis seeds 0-4, 200 examples, no
#: shrink): the same, 5/5 each, medians 1, 1, 24, 37, 68, 29 and 23 examples.  iocp-owed-slot-pooled: caught
#: by the plain recipe (367 s, misuse detected: an AcceptEx on an OVERLAPPED whose packet is still queued;
#: bench_search 3 of 5 seeds, at examples 70, 52 and 31), not by recipe_accepts's derandomized sequence (4
#: AcceptEx; why was not looked into).  cancelled-send-closes-gracefully: caught since flag32 (the models'
#: resets_cut_sends, on in recipe_property: ovserver's policy; a819ec5's check, opt-in): bench_search 5/5,
#: median 51 (per seed 34, 51, 13, 103, 119).  Missed: the ones below.
RED11_RECIPE_LOST = {
    "scanned-counts-newline": "needs, in echo, a receive that ends just before a newline, the next beginning with "
                              "that newline and taking the slow path (a line near max_line after it, or the queue "
                              "near max_queued): the fast path frames every other receive without the count it "
                              "gets wrong; bench_search 0 of 5 seeds, and 2 of 5 (at examples 56 and 161) since "
                              "long_lines' newline split (bpidle33: such sends, no draw of its own); the "
                              "derandomized sequence still misses it (re-measured then: CI=true, -m slow, xfailed "
                              "in 143 s; split sends reach it only with a window and receives that hold them whole, "
                              "and a client served while it sends); simulate (seed 6) and tests/test_ovserver_"
                              "protocol.py's test_echo_fast_framing_matches_the_line_loop catch it",
}
RECIPE_LOST |= RED11_RECIPE_LOST
#: The twelfth red team's (tests/mutants/red12_mutants.py), measured 2026-12-07 (red12, on main d6417a7 with
#: red12_mutants.py loaded: CI=true, -m slow, the ten in one run, every phase, nice 5 under load 3-5, 591 s): caught
#: acceptex-address-slot-too-small (8 s, busy loop: the AcceptEx retried for good), immediate-success-is-failure
#: (11 s, AssertionError: a routine for a released slot), moved-event-not-updated (27 s, misuse: a closed event in
#: the wait array), last-wait-index-taken-for-closing (38 s, busy loop), reaped-socket-never-closed (13 s, leak at
#: WSACleanup) and idle-wait-not-shortened (recipe_idle, 320 s, most of it shrinking: an idler never closed);
#: missed (each ran its whole budget) the four below.  bench_search (README recipe, Hypothesis seeds 0-2, 200
#: examples, no shrink, --jobs 1): the six caught 3/3 each, medians 1 (acceptex-address-slot-too-small), 5
#: (immediate-success-is-failure), 13 (moved-event-not-updated), 10 (last-wait-index-taken-for-closing), 11
#: (reaped-socket-never-closed) and 36 examples (idle-wait-not-shortened, recipe_idle); of the four below
#: hangup-allowance-per-receive 1/3 (seed 0, at example 76: a hung-up client of long_lines and talk_after_leave
#: sends on, 346 KB in small sends, to a busy_server (1 ms a call), which reads and discards it past the checker's
#: 30 s deadline where a correct server cuts it off: the correct events server passes seed 0's 77 examples), the
#: others 0/3.
#: idle-times-out-held-back was here (the idle close of a client held back dropped its queued output, a reset the
#: checker allowed as back-pressure's slow-consumer cut-off) until held36's look at the posted receive: the idle
#: watch sees that the server holds a client back (no receive posted on its connection for 10 ms, none of its bytes
#: taken), and a close less than the idle time-out later that neither the stall time-out nor max_queued explains
#: fails (``_Client.held_at_close``).  Measured 2026-12-07 on held36 (CI=true, -m slow, -p no:xdist, alone, load
#: about 2): caught by recipe_bp_idle, 15.5 s (client dropped: 2 clients, 19 lines, 18019 bytes, 52 draws: reset at
#: 116 ms, held back from 27 ms to the look at 102 ms).  Re-run on bpidle37 (the backpressure reader always stays
#: 300 ms in recipe_bp_idle): caught, 26.2 s (client dropped: 1 client, 17 lines, 16384 bytes, 38 draws).
RED12_RECIPE_LOST = {
    "idle-newline-in-stale-bytes": "needs an idle time-out and a client that sends a line and then dribbles bytes "
                                   "without a newline, the line's newline past the dribble's receives in the "
                                   "buffer: the swarm's idle_clients dribbled its first line only (no earlier "
                                   "newline of that connection in the buffer); since dribble35 a dribbler with "
                                   "the split draw dribbles its last line after its lines (a talker of "
                                   "departures where no client is free of a role): bench_search (recipe_idle, "
                                   "seeds 0-4, 200 examples, no shrink) finds it on 3 of 5 seeds (at 8, 49 and "
                                   "42 examples; 0 of 5 before, and 0 of 5 with the split alone), but the "
                                   "derandomized sequence still misses it (CI=true, -m slow: of its 200 examples "
                                   "3 give idle_clients a client, one a dribble after lines, in a crowd of 99 "
                                   "with an early stop); tests/test_checker_idle_stale.py (red12, dribble35) "
                                   "catches it",
    "hangup-allowance-per-receive": "the checker lets a hung-up client be reset once it has sent more than "
                                    "max_line bytes after its long line, but does not require it (the server "
                                    "counts from the end of the receive that found the line too long, which the "
                                    "checker does not see), so a server that never cuts it off passes unless "
                                    "the discarding outlasts a client's deadline (bench_search seed 0: a busy "
                                    "server); "
                                    "tests/test_ovserver_protocol.py's test_endless_line_is_caught_without_a_"
                                    "newline catches it (the hub alone)",
}
RECIPE_LOST |= RED12_RECIPE_LOST
#: inbox-taken-acceptor-not-woken was in RED12_RECIPE_LOST ("a delay only: the quiet check counts only connections
#: the server accepted, not one waiting in the backlog of a server with room") until backlog36 (2026-12-07): the
#: checker's backlog watch (_Run.check_backlog: a client next to be accepted, waiting in the listen backlog of a
#: server that holds fewer connections than max_clients, is accepted within 100 ms) catches it: CI=true, -m slow,
#: -p no:xdist, on 175b778 with the watch, caught in 39 s (2 clients, 0 lines, 84 draws: a client that stays 1.5 s
#: and one arriving while it is served, which waits until it leaves); tests/test_checker_backlog.py.
#: The thirteenth red team's (tests/mutants/red13_mutants.py), measured 2026-12-07 (red13, on main 73741df with
#: red13_mutants.py loaded: CI=true, -m slow, -p no:xdist, the six in one run, every phase, nice 5 under load 9-11):
#: caught hold-ignores-membership (recipe_bp_chat, 356 s, exit not handled: 98 clients, a hung-up member never read
#: again), zombie-reset-after-reap (388 s, most of it shrinking: stop not honoured, 4 clients, 4 faults, 220 draws:
#: a closing client's cancelled send completing between the sweep's look and its WSAResetEvent) and
#: deadline-replaces-earlier (recipe_idle, 424 s: an idler closed 81 ms late, 100 clients); missed (each ran its
#: whole budget) the three below (1891 s in all).  Re-checked on the registering commit (ab34859, CI=true, -m slow):
#: the three below xfailed (612 s), zombie-reset-after-reap caught again (370 s).
RED13_RECIPE_LOST = {
    "dropped-asked-after-leave": "needs a close (a stop) of an iocp client whose send has completed, its packet not "
                                 "yet handled (the cancel finds nothing), with more output queued behind it: the "
                                 "stop must come while a worker waits for the lock with that packet.  Since fin36 "
                                 "the checker holds a FIN at the scenario's stop to every reply of the lines the "
                                 "server had taken 1 ms before it (with resets_cut_sends; also on the wire or "
                                 "unread when serve() returns, in echo), not only to whole lines (red11's check), "
                                 "but the derandomized recipe still does not catch it in its budget (fin36, "
                                 "CI=true, -m slow: 83 s): the race is a few calls wide.  Since stop37 the swarm "
                                 "aims 1 stop in 2 at a send's end (FaultPlan.stop_at_send_end): bench_search "
                                 "finds it on 4 of 5 seeds (median 87 examples; 0 of 5 before), but the "
                                 "derandomized sequence still misses it (CI=true, -m slow, on 25c2065); "
                                 "tests/test_checker_fin_before_replies.py (the race forced at the checker's stop) "
                                 "and tests/test_ovserver_close_order.py's test_a_close_that_drops_queued_output_"
                                 "is_abortive_though_the_send_completed catch it",
}
RECIPE_LOST |= RED13_RECIPE_LOST
#: stop37 (2026-12-07: FaultPlan.stop_at_send_end, one boolean draw in every swarm scenario) moved every derandomized
#: recipe sequence.  Re-run after it, on the merged tree (25c2065; CI=true, -m slow, -p no:xdist, nice 5 beside CI,
#: 801 s): the 13 strict expected failures of the plain recipe in RECIPE_LOST, all still missed, as registered.  The
#: idle and back-pressure recipes' see the measurement log's thirty-fourth round.  The plain recipe's caught ones
#: were measured before it and not re-run yet: a registration that no longer holds fails loudly under -m slow
#: (a caught one missed, or a strict expected failure caught).
#: Lost by the derandomized sequences that stop37's draw moved: on bca4bb4 (CI=true, -m slow, -p no:xdist, nice 5
#: beside CI, the caught ones of recipe_bp, recipe_accepts, recipe_idle and recipe_idle_chat in one run, 621 s) each
#: property below ran its budget without a catch; the other eight of those recipes' caught ones still caught
#: (stall-clock-not-cleared, no-accept-resignal, stall-cut-off-stays-in-hub, idle-newline-off-by-one,
#: idle-clock-on-send-only, idle-deadline-not-armed, idle-clock-any-bytes, accept-room-ignores-outstanding).
STOP37_RECIPE_LOST = {
    "idle-newline-from-index-one": "the derandomized recipe_idle_chat sequence moved with stop37's draw (a stop at a "
                                   "send's end) and no longer catches it (it needs a member, sent nothing back, "
                                   "whose newlines arrive at the start of receives); bench_search on bca4bb4 "
                                   "(seeds 0-4, 200 examples, no shrink) 5 of 5 (median 115); simulate (seed "
                                   "159) and tests/test_simulate_idle_slowloris.py catch it",
    "idle-wait-not-shortened": "the derandomized recipe_idle sequence moved with stop37's draw and no longer "
                               "catches it (an idler whose deadline comes while the server's wait has no time-out); "
                               "bench_search on bca4bb4 4 of 5 seeds (median 37; 5 of 5, median 36, before); "
                               "simulate catches it (seed 5)",
    "deadline-replaces-earlier": "the derandomized recipe_idle sequence moved with stop37's draw and no longer "
                                 "catches it (an idler whose deadline a later one replaced, closed late); "
                                 "bench_search on bca4bb4 2 of 5 seeds (52, 80); simulate catches it (seed 5)",
}
STOP37_RECIPE_LOST["hangup-fin-resets-error-line"] = (
    "the derandomized recipe sequence moved with stop37's draw and no longer catches it (a line over max_line, "
    "then FIN with the error line not yet out): missed on 0810f13 and on 9aafad7 (2026-12-07, CI=true, -m slow, "
    "-p no:xdist); simulate catches it (seeds 31 and 84: _SIMULATE_SEEDS)")
RECIPE_LOST |= STOP37_RECIPE_LOST
#: Re-run on 2026-12-07 (the thirty-eighth session; CI=true, -m slow, -p no:xdist, nice 5 beside helpers and CI): of
#: the plain recipe's and recipe_chat's caught registrations, 40 on 0810f13 (30 plain, 10 chat: all caught) and 35
#: more on 9aafad7, after real38's 051a39b (19 plain, 14 chat caught; hangup-fin-resets-error-line and
#: queue-limit-off-by-one missed: above and below); then the 5 other recipe_chat ones on ad3327f (-n 2): all caught,
#: so all 19 of recipe_chat hold on the current schedules.  Then, on 2026-12-08 (the thirty-ninth session, the same
#: way, nice 10 beside three helpers, 2030 s), the other 41 caught registrations of the plain recipe, groups_few,
#: groups_burst and recipe_accepts on 72a70ed: 40 caught, group-inbox-checked-outside-lock missed (below).
#: 051a39b (ovserver: getpeername at an EOF that comes with a send in flight, so that a client Wine reports gone is
#: closed) adds a Winsock call wherever that happens, which moves the schedules that follow it.
REAL38_RECIPE_LOST = {
    "queue-limit-off-by-one": "caught by the derandomized recipe on 0810f13 (54 s: 3 clients, 17 lines, 16384 "
                              "bytes, 2 faults, 36 draws) and missed on 9aafad7: 051a39b's getpeername at an EOF "
                              "with a send in flight moved the sequence; it needs exactly max_queued bytes owed to "
                              "a client that does not read (simulate finds it since search39: _RT4_FINDS)",
    "group-inbox-checked-outside-lock": "caught by the derandomized recipe on 0810f13 (390.8 s, near the end of its "
                                        "budget: 23 clients, 895 lines, 24 faults, 271 draws) and missed on 72a70ed "
                                        "(2026-12-08): 051a39b's getpeername at an EOF with a send in flight moved "
                                        "the sequence; the race needs a hand-over signalled between a group's look "
                                        "at its inbox and its reset of the wake event (simulate finds it: seed 7)",
}
RECIPE_LOST |= REAL38_RECIPE_LOST
#: end-keeps-over-mark was in RED13_RECIPE_LOST ("unreachable in echo ...; in chat a member over the mark that
#: half-closes is then reset at the stall time-out where the correct server keeps it ... the derandomized
#: recipe_bp_chat does not catch it in its budget: it needs a member that goes over the mark, then half-closes 20 ms
#: or more before its stall time-out and reads nothing until then") until bpchat37 (2026-12-07): told chat
#: (``scenarios(chat=True)``, with high_water), the swarm's backpressure reader comes with a member that does not
#: read while the burst backs up over the mark for it, half-closes 40 ms after the burst begins and reads on 300 ms
#: after its FIN (fin36's rule then refuses the mutant's stall cut-off).  CI=true, -m slow, -p no:xdist: caught in
#: 993 s (most of it shrinking, load 6 on 2 cores: client dropped, 2 clients, 110 lines, 327680 bytes, 1 fault,
#: 201 draws, features backpressure).  bench_search (recipe_bp_chat, seeds 0-4, 200 examples, no shrink): 4 of 5
#: seeds (115, 83, -, 19, 92; median 92) where 59e3d72 found it on 2 (-, -, -, 72, 64).
#: accept-error-backs-off was in RED13_RECIPE_LOST ("each reset in the backlog delays accepting by 50 ms, within
#: every deadline; a check would have to bound how long a client waits in the backlog of a server with room") until
#: backlog36 (2026-12-07): the checker's backlog watch (_Run.check_backlog, 100 ms) catches it: CI=true, -m slow,
#: -p no:xdist, on 175b778 with the watch, caught in 258 s (23 clients, 22 faults, 231 draws: accept_faults' storm
#: of 20 resets in the backlog, the client behind them waiting out a back-off after each failed accept);
#: tests/test_checker_backlog.py.
#: Lost by the derandomized recipe_idle since long_lines' newline split (bpidle33, 2026-12-07: no draw added, but
#: the traffic of examples with a split, and so the sequence after the first such one, moved): CI=true, -m slow,
#: the property ran its budget without a catch, where main 6af3a7d catches it (1 client, 42 draws, 59 s).
#: bench_search (recipe_idle, Hypothesis seeds 0-4, 200 examples, no shrink) finds it on 5 of 5 seeds either way:
#: median 119 examples on 6af3a7d (per seed 119, 120, 125, 49, 34), 78 with the split (54, 78, 196, 49, 155).
#: Caught again since stop37's draw moved the sequence (2026-12-07, on ac37636, with the checker's completed-send
#: idle account: CI=true, -m slow, -p no:xdist, nice 5 beside CI): a strict XPASS, 140.9 s (client dropped: 3
#: clients, 5 lines, 16 bytes, 2 faults, 96 draws: a dribbler of idle_clients not closed at its time-out).
BPIDLE33_RECIPE_LOST: dict[str, str] = {}
RECIPE_LOST |= BPIDLE33_RECIPE_LOST
#: Lost by the derandomized recipe_bp_idle since dribble35's dribble after a client's lines (ed88355, 2026-12-07: no
#: draw added, but the traffic of the examples that draw kind 2 with the split, the first at 122, and so the sequence
#: after them, moved): CI=true, -m slow, the property ran its budget without a catch (54 s), where main 44de035 catches
#: it (4 clients, 326 draws, 149 s).  bench_search (recipe_bp_idle, Hypothesis seeds 0-4, 200 examples, no shrink) on
#: ed88355 finds it on 4 of 5 seeds (33, 40, 54, 26 examples; seed 4 not in 200).  dribble35's probe of the property
#: outside pytest saw it caught: outside pytest the local constants are not pinned (tests/conftest.py), so the
#: sequence is another.
#: Still lost after held36 (2026-12-07: the checker's look at the posted receive, a close of a client held back
#: within the idle time-out fails; with an idle time-out and back-pressure the swarm's backpressure reader always
#: pauses 150 ms, its draw kept): CI=true, -m slow, -p no:xdist, the property ran its budget without a catch (40 s);
#: bench_search (recipe_bp_idle, seeds 0-4, 200 examples, no shrink) 5 of 5 seeds (33, 40, 54, 26, 50; seed 4's 50
#: comes with the 150 ms pause, not found in 200 with the look alone).
#: Caught again since bpidle37 (2026-12-07: with an idle time-out and back-pressure the swarm's backpressure reader
#: always stays 300 ms once served, its draw kept: read on after its 150 ms pause, it then stays idle past the idle
#: time-out, which the mutant, its read-on arming no deadline, lets pass): CI=true, -m slow, -p no:xdist, in one run
#: with idle-times-out-held-back, load about 2: recipe_bp_idle, 71.0 s (client dropped: 1 client, 17 lines, 16384
#: bytes, 87 draws).  The derandomized sequence run on past each failure (a probe, not kept): 12 of its 210 examples
#: fail the mutant (the first at 30), none of 209 before.  bench_search (recipe_bp_idle, seeds 0-4, 200 examples, no
#: shrink) unchanged: 5 of 5 at 33, 40, 54, 26, 50 (no example before those became a find).
DRIBBLE35_RECIPE_LOST: dict[str, str] = {}
RECIPE_LOST |= DRIBBLE35_RECIPE_LOST
#: hangup-allowance-off-by-one and stop-skips-draining were in RED9_RECIPE_LOST ("the recipe's long lines come in
#: sends that do not end at byte max_line + 1"; "the recipe's leavers and paused readers pause 20-300 ms") until
#: 2026-12-06 (search28): the swarm's shapes hangup_edges and deaf_drains reach both; opt-in then (named by a
#: recipe_shapes property), part of the default swarm since shapes29, so the plain recipe draws them (registered
#: with "recipe"; see the measurement log's twenty-fifth round).
#: Re-measured on 2026-12-06 on main 3c8d02f (CI=true, -m slow, the recipe's strict expected failures one at a
#: time, -n 1, load 4-5): caught now, out of their lists: group-wake-reset-outside-lock and
#: group-inbox-checked-outside-lock (the checker's quiet check and robust29's accept pacing: a group takes its
#: inbox only in its wake event's turn, so a lost hand-over is no longer made good by the group's next event) and
#: stop-closes-abortively (checks29's graceful-stop check); the other ten still missed.
#: Lost by the derandomized sequence since the twenty-seventh round's swarm changes (shapes29, shrink29, robust29),
#: measured 2026-12-06 on main 3c8d02f (CI=true, -m slow, alone): each property ran to the end of its budget.
#: bench_search (README recipe, Hypothesis seeds 0-4, 200 examples, no shrink) still finds both on some seeds.
SLOW30_RECIPE_LOST = {
    "stop-before-inbox": "needs the stop request while a client handed to a group waits in its inbox: from the "
                         "hand-over to the group's wake event's turn, which comes behind the members signalled "
                         "before it (robust29), microseconds on an idle group; the swarm's stops come on a grid "
                         "(300 us to 100 ms after 0, a crowd's last arrival or the last send), so a stop lands "
                         "there only when accepts are still under way (a crowd at the default limits, a busy "
                         "server); bench_search finds it on 2 of 5 seeds (examples 172, 23); the derandomized "
                         "recipe_accepts (4 AcceptEx) reaches it at example 193 of 200 (recipe31, 2026-12-06: "
                         "too close to the budget to register it there); storm_stop catches it "
                         "(test_a_stop_during_a_connect_storm_catches_stop_before_inbox)",
}
#: stall-cut-off-stays-in-hub left SLOW30_RECIPE_LOST on 2026-12-06 (recipe31): it shows only in recipe_bp's tight
#: configuration (one client at a time: the ghost keeps the server full) and needs a stall cut-off there, of which the
#: derandomized sequence had none in ~110 tight examples: only the backpressure client's 150 ms pause outlasted the
#: stall time-out (from its connect: it had to be served first and not end by a fault of its own first), and a reader
#: stuck for good was owed only what the window holds, under the 4 KiB mark, kept until its reset.  The recipe now
#: tells scenarios() the mark (high_water), and a stuck reader keeps sending until it is owed the window and twice
#: the mark: over it, for the slow-consumer time-out to cut off.  bench_search before/after 3/5 -> 4/5 (median
#: 151 -> 115); stall-clock-not-cleared 3/5 -> 4/5 (median 174 -> 88).
#: idle-close-abortive left SLOW30_RECIPE_LOST on 2026-12-06 (recipe31): no traffic could show it, since the checker
#: let any client closed by the idle time-out be reset (bench_search, recipe_idle, seeds 0-4, 200 examples: 0 of 5);
#: the checker now fails a reset at the idle time-out of an echo client that had read all it was owed with nothing on
#: its way either way since the idle watch's last look (reset_when_idle), as the stop's graceful check does: caught
#: (CI=true, -m slow: 1 client, 0 lines, 12 draws), bench_search 5 of 5 seeds (median 31 examples).
RECIPE_LOST |= SLOW30_RECIPE_LOST
#: Lost again on main since 521d7f9 (2026-12-06, the merge of qlimit31: f9f182f's edge aim moved every recipe's
#: draws; found by the lead on 2026-12-07: ffceb6d, with b1fb7fb's check, passes): the derandomized recipe_idle run
#: of this routines mutant runs its whole budget (10 s) without a catch.  bench_search (recipe_idle, seeds 0-2, 200
#: examples, no shrink) on 70c2823 and on 5d76482: 1 of 3 (seed 2 at example 129), where recipe31 measured 5 of 5
#: (median 31) before f9f182f: the one-client scenario that shows it (a client owed nothing lingering past the idle
#: time-out, looked at quiet by the idle watch) is drawn rarely.  Not analysed further.
#: Caught again since stop37's draw moved the sequence (2026-12-07, on ac37636: CI=true, -m slow, -p no:xdist,
#: nice 5 beside CI): a strict XPASS, 22.3 s (client dropped: 1 client, 0 lines, 0 faults, 6 draws: an idler reset
#: at its time-out though owed nothing).
SLOW32_RECIPE_LOST: dict[str, str] = {}
RECIPE_LOST |= SLOW32_RECIPE_LOST
#: Re-run on main 5d76482 (2026-12-07, slow32: after f9f182f's edge aim, which moved every recipe's draws, and
#: c398760's high_water, which moved recipe_bp's and recipe_bp_chat's; CI=true, -m slow, ``-n 2``, nice 5 under load
#: 10-12): the faults group (26) 22 caught, 4 strict expected failures as listed (closed-send-never-reaped,
#: stop-before-inbox, retry-only-between-waits, iocp-close-with-receive-pending), 1628 s; the groups properties'
#: two (arrays-changed-while-waiting, lost-wake-up) caught, 87 s; the load group (31: recipe 23, recipe_chat 6,
#: recipe_accepts 2) 26 caught, 5 strict expected failures as listed (group-room-ignores-inbox,
#: iocp-receive-buffer-pooled-at-close, iocp-key-reused-while-closing, rotation-from-rotated-index,
#: zombies-overflow-wait-array), 2406 s.  Nothing changed lists.  Not re-run there: the other recipe_chat and
#: recipe_idle_chat mutants, and test_correct_server_passes.
RECIPE_CATCHES = {m.name for m in MUTANTS if m.group} - set(RECIPE_LOST)
#: Mutants whose bug the current servers make equivalent or unobservable
#: through Winsock: skipped, with the reason (each was checked against the code
#: it targets since the events model runs thread groups).  (closed-send-never-reaped was listed until
#: 2026-12-05 as "reaped at the group's next wake-up, its socket closed at once", but its socket is closed
#: only once both operations are reaped: with the group quiet after the close, the server holds the socket
#: of a client that has gone for good; search16's swarm caught it, bench_search seed 4, example 30: "client 0
#: is gone (it reset), but 1 s later the server still holds its socket".)
EQUIVALENT = {
    "lost-signal-not-requeued": (
        "equivalent up to a delay that the shared event itself ends: _handle_group checks the receive "
        "slot, then the send slot, each with HasOverlappedIoCompleted after the posts the first one made, "
        "so a completion whose signal a post erased within one handling is found by that loop; what is "
        "left (a receive completing between its check and the WSASend that follows the send slot's "
        "handling, or a chat action posting a send while the receive's signal waits) waits only until "
        "the send just posted completes and signals the event again, which it does as soon as the client "
        "reads, and at its reset if it never does.  No scenario the checker can draw turns that delay "
        "into a lost line (a reader that never reads must reset)"),
    "hub-full-off-by-one": (
        "equivalent through Winsock (search27, 2026-12-06): the hub's ``full`` is asked only by "
        "Server._room_to_accept, after ``len(self._conns) + busy < self.max_connections`` (max_clients), and "
        "the hub's clients are the table's connections at every moment it asks (a connection joins the hub "
        "right after it enters the table, and leaves it right before it leaves the table): the table's test "
        "already stops accepting at max_clients, so ``>`` for ``>=`` changes nothing a client can see (the "
        "iocp model has no other test; measured: max_clients=1, 3 clients, seeds 0-9: peak 1 like the correct "
        "server).  The checker's client limit (the models' max_clients) would see a server serving one more "
        "(tests/test_checker_limits.py); tests/test_ovserver_protocol.py's test_max_clients catches this hub "
        "alone (tests/mutants/swap.py)"),
}


#: Mutants the recipe test skips, with the reason: EQUIVALENT.  (rotated-index-ignored
#: was skipped until 2026-12-04 because its shrink phase hung: a group thread
#: that failed was stopped by Hypothesis as it ended, while its I/O was
#: cancelled, and died without handing the baton on; fixed in
#: fakewinsock/_threads.py, see tests/test_fake_threads_unwind.py.)
_RECIPE_SKIPPED = EQUIVALENT


@pytest.mark.parametrize("mutant", [
    (pytest.param(m, marks=pytest.mark.slow) if m.caught_by.startswith("groups") else m) if not m.group
    else pytest.param(m, marks=[pytest.mark.slow] if m.name in RECIPE_CATCHES else [
        pytest.mark.slow, pytest.mark.xfail(strict=True, reason=RECIPE_LOST.get(
            m.name, f"issue 10: not reached yet: needs {m.needs}"))])
    for m in MUTANTS if m.name not in _RECIPE_SKIPPED]
    + [pytest.param(m, marks=pytest.mark.skip(reason=_RECIPE_SKIPPED[m.name])) for m in MUTANTS
       if m.name in _RECIPE_SKIPPED],
    ids=[m.name for m in MUTANTS if m.name not in _RECIPE_SKIPPED]
    + [m.name for m in MUTANTS if m.name in _RECIPE_SKIPPED])
def test_mutant_is_caught(mutant: Mutant, winsock_summary: Callable[[str], None]) -> None:
    failure, seconds = catch(mutant)
    r = failure.report
    s = r.size
    draws = f"{r.draws} draws" if r.draws is not None else f"seed {r.seed}"
    line = (f"{mutant.name:<28} {mutant.server.model:<8} {mutant.caught_by:<5} {failure_kind(r.errors[0]):<20} "
            f"{s['clients']:>3} clients {s['lines']:>3} lines {s['bytes']:>4} bytes {s['faults']} faults "
            f"{draws:>10}  {seconds:5.1f} s")
    print(f"\n{line}\n  bug: {mutant.bug} ({mutant.source})\n  caught: {r.errors[0][:200]}")
    winsock_summary(line)


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_differs_only_by_its_bug(mutant: Mutant) -> None:
    """A mutant is its model's server class with small overrides; a method it
    copies differs from the original by a few lines (at most 8 removed or
    added), each added one marked BUG, and every change (a hunk of the diff)
    has a marked added line: a line removed on purpose is marked by a BUG
    comment at its place, so a copy that silently lacks lines its original
    gained later (a stale copy: a second, unintended difference) fails."""
    cls = mutant.server
    base = EventServer if issubclass(cls, EventServer) else IocpServer if issubclass(cls, IocpServer) else RoutineServer
    assert issubclass(cls, base) and cls.__mro__[1] is base
    own = {name for name in vars(cls) if callable(vars(cls)[name]) or isinstance(vars(cls)[name], property)}
    assert own, "a mutant changes something"
    assert "BUG" in inspect.getsource(cls)
    hub = getattr(cls, "HUB", None)
    copies: list[tuple[type, type, str]] = [(cls, base, name) for name in getattr(cls, "COPIED", ())]
    if hub is not None:  # the bug is in a copy of one of the protocol's methods
        assert hub.__mro__[1] is Hub and hub.COPIED
        copies += [(hub, Hub, name) for name in hub.COPIED]
    def source(owner: type, name: str) -> str:
        obj = getattr(owner, name)
        if isinstance(obj, property):  # (a property: its getter)
            assert obj.fget is not None
            obj = obj.fget
        return inspect.getsource(obj)

    for mutated, original, name in copies:
        mine = textwrap.dedent(source(mutated, name)).splitlines()
        theirs = textwrap.dedent(source(original, name)).splitlines()
        check_copy(name, theirs, mine, 8)


def test_every_mutant_is_distinct() -> None:
    assert len({m.name for m in MUTANTS}) == len({m.server for m in MUTANTS}) == len(MUTANTS) >= 8
    assert {m.caught_by for m in MUTANTS} <= set(PROPERTIES)


#: Issue 10's mutants that ``ovserver simulate``'s default (swarm) traffic finds
#: on one of the seeds 0-7 (100 clients x 10 lines; a few on seeds listed in
#: _SIMULATE_SEEDS after those); the others are strict
#: expected failures.  Measured on 2026-12-04 (redteam branch, every seed 0-7 run
#: for every issue-10 mutant): line-limit-ignores-buffered seeds 2 and 6,
#: line-limit-off-by-one 0 and 6, big-reply-truncated 0,
#: half-close-forgets-queued-replies 0 and 6, partial-last-line-delivered 2, 6
#: and 7, chat-to-ended-client 0, accept-error-stops-accepting 6; the red team's:
#: chat-broadcast-live-dict 7, chat-crlf-normalised 0, 1, 3 and 7,
#: hung-up-stays-member 2 and 3, partial-at-limit-refused 2,
#: limit-counts-routed-lines 0, 2, 3 and 6, hangup-stops-reading 3 and 6,
#: hangup-closes-at-once 0, 2, 3, 5 and 6, serve-forgets-closing 0, 1, 4 and 5,
#: stop-closes-while-iterating 0, 1, 4 and 5, stop-wait-not-alertable 0, 1, 2, 4
#: and 5, iocp-full-server-never-resumes 1, 3, 5 and 6, iocp-receive-without-lock
#: 0, 2 and 7, iocp-drain-not-signalled 0, 1, 2, 4 and 5, and every seed for
#: recv-reposted-first, name-from-local-address and slot-not-updated; none of
#: the other four on any seed.  (closed-send-never-reaped and
#: lost-signal-not-requeued are EQUIVALENT.)
#: The second red team's (tests/mutants/fresh2_mutants.py), measured 2026-12-04 (redteam2 branch merged with
#: main b8b1586, seeds 0-7): scanned-by-receive all, tail-over-limit-unchecked 2 and 6 (none before simulate's
#: over-limit unterminated line), acceptor-not-woken-by-group and client-limit-off-by-one 1, 3, 5 and 6,
#: iocp-closed-packet-dropped 0, 1, 2, 4 and 5.  Since simulate's accept_faults, few_clients and call budget
#: (2026-12-04, redteam3; every issue-10 mutant re-run on seeds 0-7): accept-retry-not-armed 1 and 6,
#: wake-event-not-reset 0, 1, 3, 4 and 5, rotated-index-ignored 0, 1 and 5 (none before);
#: hung-up-stays-member now 2 (2 and 3 before: seed 3's run has AcceptEx faults now),
#: line-limit-ignores-buffered 2, acceptor-not-woken-by-group and client-limit-off-by-one 1, 3, 4, 5 and 6,
#: iocp-receive-without-lock 1, 2 and 7, serve-forgets-closing 0, 1 and 2; the others as above.  The two in
#: _RT2_LOST none.
#: Since simulate's lurkers, slow_readers and hung_readers (2026-12-04, simulate10 branch; every issue-10
#: mutant re-run on seeds 0-7, the first seed that finds each): coalesced-send-drops-split-head and
#: queued-count-leaks 0 (slow readers: output backed up under max_queued over many sends),
#: stop-skips-busy-sends 2 (a hung reader holds a send at the stop), resume-before-freeing 4 (a hung
#: reader holds one of the two places to the end), none of them before; the others as above, on these
#: first seeds: line-limit-ignores-buffered, partial-last-line-delivered, hung-up-stays-member,
#: partial-at-limit-refused and tail-over-limit-unchecked 2; line-limit-off-by-one, big-reply-truncated,
#: half-close-forgets-queued-replies, chat-to-ended-client, chat-crlf-normalised, limit-counts-routed-lines,
#: hangup-closes-at-once, recv-reposted-first, name-from-local-address, slot-not-updated,
#: iocp-receive-without-lock, iocp-drain-not-signalled, scanned-by-receive, rotated-index-ignored,
#: accept-retry-not-armed and wake-event-not-reset 0; serve-forgets-closing, stop-closes-while-iterating,
#: stop-wait-not-alertable, iocp-full-server-never-resumes, acceptor-not-woken-by-group,
#: client-limit-off-by-one and iocp-closed-packet-dropped 1; hangup-stops-reading 3;
#: accept-error-stops-accepting 4; chat-broadcast-live-dict 5.
#: Since simulate's back_pressure and full_groups features, the hung-up client that waits for the server's FIN,
#: the causes checked against the server's counts and the chat line after an error line (2026-12-05, simulate11
#: branch with main e580d94 merged; every issue-10 mutant run on seeds 0-7 until found, the first seed
#: that finds each): full-check-counts-members and other-groups-not-woken 0 (full_groups: a group's 63
#: places held, some by clients that have ended; the first group silent while the second talks),
#: no-update-accept-context 2 (no FIN from the server after the error line), failed-empty-receive-is-eof 0
#: (the server counted more graceful ends than clients sent FINs), none of them before; 43 of the 49 (not
#: EQUIVALENT) found, each on this first seed: big-reply-truncated, line-limit-off-by-one,
#: coalesced-send-drops-split-head, queued-count-leaks, half-close-forgets-queued-replies, chat-to-ended-client,
#: chat-crlf-normalised, hung-up-stays-member (now by the chat line after its error line: back-pressure's
#: looser cut-off bound hid it on seed 2), limit-counts-routed-lines, hangup-closes-at-once, recv-reposted-first,
#: name-from-local-address, slot-not-updated, iocp-drain-not-signalled, scanned-by-receive, rotated-index-ignored,
#: accept-retry-not-armed, wake-event-not-reset, one-slot-per-wakeup and stop-leaves-accept-socket 0;
#: serve-forgets-closing, stop-closes-while-iterating, stop-wait-not-alertable, iocp-full-server-never-resumes,
#: iocp-receive-without-lock, acceptor-not-woken-by-group, client-limit-off-by-one, iocp-closed-packet-dropped,
#: accept-error-leaks-socket and event-closed-with-socket 1; partial-at-limit-refused and
#: tail-over-limit-unchecked 2; line-limit-ignores-buffered and hangup-stops-reading 3;
#: accept-error-stops-accepting, stop-skips-busy-sends and resume-before-freeing 4; chat-broadcast-live-dict 5;
#: partial-last-line-delivered 6.  Not found: the six in _RT4_LOST.
_NEW_FINDS = {"coalesced-send-drops-split-head", "queued-count-leaks", "stop-skips-busy-sends",
              "resume-before-freeing", "full-check-counts-members"}
_RT2_LOST: dict[str, str] = {}
#: The fourth red team's, measured 2026-12-04 (redteam4, seeds 0-7): stop-leaves-accept-socket every seed,
#: accept-error-leaks-socket 0-4 and 6, event-closed-with-socket 0-5, one-slot-per-wakeup 0, 3, 5, 6 and 7; the
#: ones in _RT4_LOST none.
_RT4_LOST = {
    "stall-clock-not-cleared": "(back-pressure is drawn on seeds 1 and 2 of 0-7; found on seed 14 (stall "
                               "time-out 50 ms): a client over the mark once, drained, alive past the time-out; "
                               "the cut-off it gets passes as due where the bound counts bytes in the client's "
                               "window and in flight, as for a slow reader)",
    "stall-unwatched-without-idle-timeout": "(needs, in chat with back-pressure, a member that stops reading for "
                                            "good with more than the window and the mark owed: seeds 1 and 2 of "
                                            "0-7 draw back-pressure, without such a member)",
    "close-keeps-senders-paused": "(needs, in chat with back-pressure, a member over the mark closed while the "
                                  "senders it held back have nothing else to wake them: not on seeds 0-7)",
    "stop-unseen-in-routine-burst": "(needs a server slower than its clients: simulate has no busy server; the "
                                    "recipe's busy_server reaches it since search14)",
}
#: queue-limit-off-by-one was in _RT4_LOST ("needs exactly max_queued bytes owed to a client that does not read")
#: until search39 (2026-12-08): queue_edges' exact edge (ovserver._simulate.QUEUE_EXACT_SENDS: where the line limit
#: holds a line of max_queued bytes, one more plain client sends one such line and nothing else, a message of
#: exactly max_queued bytes for an empty queue), and the cut-off check that counts the error line only for an echo
#: client that may be owed one (it had allowed a reset of any echo client owed max_queued plus the error line's 34
#: bytes): found on seed 7 (client 22 reset, 0 of 1 replies; the two changes each alone: none of 0-7); of 0-599 the
#: seeds that draw the exact client in echo, 7, 39, 113, 174 (73: no plain client left for it) of 0-199 and 239,
#: 278, 290, 339, 358, 405, 500, 513 of 200-599.
_RT4_FINDS = {"queue-limit-off-by-one"}
#: The fifth red team's, measured 2026-12-05 (redteam5, seeds 0-7, the first seed that finds each):
#: iocp-busy-cleared-at-dequeue, iocp-send-free-at-completion and iocp-win32-error-as-winsock 0 (the last
#: since simulate's bound on counted resets, none before), group-ends-with-zombies and
#: accept-reposted-before-addresses 1, hangup-drops-queued-replies and hangup-fin-before-queue-drained 2,
#: fanout-stops-at-cut-off 5; the two in _RT5_LOST none.
_RT5_LOST = {
    "group-room-ignores-inbox": "(needs two or more accepts handed to a group at its last places before its "
                                "thread takes them: the fake paces a crowd's connects some 20-40 us apart, and "
                                "the group takes its inbox between two; the recipe's crowd of 63 and more finds "
                                "it derandomized)",
}
#: The sixth red team's, measured 2026-12-05 (redteam6, seeds 0-7, the first seed that finds each):
#: acceptex-post-failure-leaks-socket, iocp-early-accept-not-owed, first-receive-before-slot and
#: hangup-allowance-counts-long-line 0, stop-flag-not-signalled 1, enobufs-post-left-idle 2; four none (two since
#: simulate's piped clients: _RT6_LOST; see _PIPED_FINDS).
_RT6_LOST = {
    "stall-cut-off-stays-in-hub": "(needs a cut-off by the stall time-out, then a client that needs the place "
                                  "the ghost holds: back-pressure with a client limit the ghost fills; "
                                  "simulate's back-pressure runs do not have both on seeds 0-7)",
}
#: Since simulate's idle_timeout (2026-12-05, search18; every issue-10 mutant run on seeds 0-7 until found):
#: iocp-deadline-not-woken 5 (an idler, served and reading, never closed: the controller was not woken for the
#: first deadline), none before; every other mutant found or missed as before.
_IDLE_FINDS = {"iocp-deadline-not-woken", "idle-deadline-not-armed"}
#: The idle mutants of tests/mutants/idle_mutants.py (search24, 2026-12-06, seeds 0-7, run until found):
#: idle-deadline-not-armed 5 (an idler never closed: _IDLE_FINDS); the three below none.  simulate's
#: idle_timeout times out idlers (served, reading, sending nothing): a bug in what counts as activity needs a
#: client that talks while no send of it completes, or one that dribbles.
#: Since simulate's idle_talkers (search25, 2026-12-06): found by it, on no seed of 0-7 (none draws it with an
#: idle time-out: the first seeds that do are 62, 159, 216, 249, 319 and 338), first on seed 62 (chat:
#: idle-clock-on-send-only; also 159, 249), 159 (chat: idle-newline-from-index-one; also 62) and 319 (echo:
#: idle-clock-on-partial-data, a slowloris): tests/test_simulate_idle_timeout.py runs each on its seed.
_IDLE24_LOST: dict[str, str] = {}
#: Since simidle34 (2026-12-07): a run with the idle time-out that does not draw idle_talkers has one slowloris all
#: the same (ovserver._simulate.IDLE_SLOWLORIS), and an idler or idle talker may be dropped only by a failure injected
#: into its own connection (seed 5 injects failures elsewhere, whose allowance let a talker timed out early pass):
#: seed 5 (the one of 0-7 whose run has the idle time-out: 1000 ms) finds the three above, idle-newline-off-by-one
#: (_RT7_LOST until then) and idle-clock-any-bytes (_RT9_LOST), and, by the check that an echo idler owed nothing is
#: closed gracefully, idle-close-abortive (_RT9_LOST).  Measured on every seed of 0-7: none of the six found on 0-4.
#: Seed 5's run moved (the slowloris keeps it going to its time-out, some 10 s), and of the mutants found on it
#: before, group-handles-receive-only, iocp-send-free-at-completion and one-slot-per-wakeup are found on seed 0 as
#: ever, but iocp-workers-not-joined (a worker still parked at WSACleanup: a race at the stop, found on seed 5 only
#: of 0-49 before, search19's measure) on no seed of 0-79 since; seed 221 finds it: _SIMULATE_SEEDS.
#: (routine-completion-counts-as-timeout is found on seed 5 now too.)
_SLOWLORIS_FINDS = {"idle-clock-on-send-only", "idle-clock-on-partial-data", "idle-newline-from-index-one"}
#: The seventh red team's, measured 2026-12-06 (redteam7, seeds 0-7, the first seed that finds each):
#: send-event-not-set, reset-after-handling and iocp-send-overlapped-reused 0, leave-keeps-member 1 (chat with
#: back_pressure); the six in _RT7_LOST none.
_RT7_LOST = {
    "rotation-from-rotated-index": "(unfairness only: see RECIPE_LOST)",
    "iocp-send-error-left-to-receive": "(needs a client that half-closes, does not read, then resets while a send "
                                       "to it pends: simulate's resets come before its clients' FIN)",
    "retry-only-between-waits": "(needs an AcceptEx failure while clients keep a routines server's wait running "
                                "routines, then a client: a delay only, see RECIPE_LOST)",
    "room-counts-closing": "(needs the client limit reached and a client closed with an operation in flight while no "
                           "other client closes afterwards: simulate's later closes resume accepting)",
}
#: Since simulate's stop_arrivals (2026-12-06, search19; every issue-10 mutant run on seeds 0-7 until found, the
#: first seed that finds each): iocp-workers-not-joined 5 and stop-before-inbox 7 (latecomers accepted around
#: the stop, staying: a worker still parked at WSACleanup; a client handed over at the stop, served by a group
#: that has closed its clients, left open), none before; every other mutant found on the same first seed as
#: before.  On seeds 0-49 (all seeds that find each): stop-before-inbox 7, 34 and 35, iocp-workers-not-joined 5;
#: the ten still missed on 0-7 on the same seeds as before: cut-off-closes-gracefully 15, 23, 28, 44 and 46,
#: stall-unwatched-without-idle-timeout 23, 34, 38 and 47, close-keeps-senders-paused 9, 23 and 34,
#: group-room-ignores-inbox 13, 18 and 48, hangup-fin-resets-error-line 24, stall-cut-off-stays-in-hub 14, the
#: four others in _RT4_LOST none.
_STOP_FINDS = {"stop-before-inbox"}  # (iocp-workers-not-joined found again on 5fdbb1d: see _MOVED27_FINDS)
#: Since simulate's piped clients (2026-12-06, search22: ``nc host port < file``, a file of short lines sent in
#: 4-64 KiB sends, then FIN at once, reading late; half of them end with a line over max_line, half the runs
#: have an output limit under one receive's worth): cut-off-closes-gracefully 5 (a piped client cut off
#: within one receive read a FIN after part of its replies) and hangup-fin-resets-error-line 6 (a piped client
#: hung up behind replies filling its window read a reset after its FIN, its error line dropped), neither
#: found on seeds 0-7 before; iocp-workers-not-joined lost (seed 5 draws piped); every other mutant found on
#: seeds 0-7 (each run until found; chat-broadcast-live-dict, fanout-stops-at-cut-off, iocp-deadline-not-woken
#: and stop-before-inbox on seed 5, leave-keeps-member and thirteen others on seed 1, line-limit-ignores-buffered
#: and partial-last-line-delivered on 6).
_PIPED_FINDS: set[str] = set()  # (both red team 6's: lost on 5fdbb1d, found again since power30: _POWER30_FINDS)
#: The eighth red team's, measured 2026-12-06 (redteam8, seeds 0-7, the first seed that finds each):
#: iocp-one-stop-packet, iocp-failed-packet-ends-worker, iocp-worker-timeout-is-failure, iocp-shared-receive-buffer,
#: iocp-skip-on-success-assumed and coalesce-newest-first 0, iocp-release-on-first-reap 4; the three in _RT8_LOST
#: none.  On main after search22's piped clients (merged first): iocp-receive-buffer-pooled-at-close found on seed 5
#: (a strict XPASS, 14.7 s): a piped client cut off with its receive in flight while others arrive and send.
_RT8_LOST = {
    "iocp-close-with-receive-pending": "(a graceful close with a receive pending comes at a stop, where a reset "
                                       "is accepted, or at an idle time-out: see RECIPE_LOST)",
    "iocp-key-reused-while-closing": "(needs a graceful close waiting for its cancelled receive and a client given "
                                     "the same id closed with an operation in flight meanwhile: see RECIPE_LOST)",
}
#: The ninth red team's (classic bugs an outside grader plants), measured 2026-12-06 (redteam9, seeds 0-7, the
#: first seed that finds each): chat-echoes-to-sender, chat-skips-blank-lines, error-line-off-by-one,
#: welcome-without-newline, routine-arguments-swapped, hangup-shuts-receive-side, group-handles-receive-only and
#: reset-counted-as-error 0 (each in under 17 s); the six in _RT9_LOST none (each seed run; 2 to 8 s for all 8).
#: Since simulate's peak bound (search27, 2026-12-06: the most clients served at once as the clients saw it, and
#: peak <= accepted, max_clients): peak-counted-before-open on seed 4 (echo: 2 clients seen at once, peak 1; also
#: 6, 8, 11, 14, 15 of 0-15), out of _RT9_LOST; hub-full-off-by-one is EQUIVALENT.
_RT9_LOST = {
    "hangup-allowance-off-by-one": "(needs a hung-up client whose bytes after the one that made its line too long "
                                   "number exactly max_line, the server's receive ending at that byte: simulate's "
                                   "hung-up clients send their long line in one go, and its cut-off bound takes any "
                                   "reset of a client whose line is over twice max_line; see "
                                   "test_directed_traffic_reaches_the_mutant)",
}
#: The tenth red team's (bugs a developer of such a server plausibly ships), measured 2026-12-06 (redteam10, on main
#: 160b2cb with red10_mutants.py loaded, seeds 0-7, the first seed that finds each, load 8): echo-drops-buffered-head,
#: chat-line-names-recipient, inbox-slot-off-by-one and iocp-owed-never-cleared 0, routine-completion-counts-as-timeout
#: 1 (LeakError: WSARecvs in flight at WSACleanup), long-line-with-newline-routed 2, accept-room-ignores-outstanding 3
#: (the hub's RuntimeError); the five in _RT10_LOST none (each seed run; 5 to 16 s for all 8).
#: (queue-limit-checked-before-adding was one until qlimit31: simulate's queue_edges finds it on seed 7.)
_RT10_LOST = {
    "zombies-overflow-wait-array": "(needs a group whose members and closing clients number 64 or more: a member "
                                   "closed with an operation in flight, and a client handed over to fill its place "
                                   "before that operation is reaped; the fake's cancellations complete within its "
                                   "completion delay (0-50 us), and full_groups fills groups with clients that stay)",
    "ended-counted-when-drained": "(the counts check bounds graceful ends from above only (no more than FINs "
                                  "sent): counting fewer passes; a lower bound needs the clients whose FIN the "
                                  "server provably read, e.g. those that then read the server's FIN, which this "
                                  "mutant counts too; no regular test catches it: every tests/test_ovserver_*.py "
                                  "passes)",
    "hung-up-counted-at-fin": "(the counts check has no lower bound on hang-ups: a hung-up client that resets is "
                              "counted as a reset by both servers, so reset + closed still covers it; needs a "
                              "bound \"closed >= clients that read an error line\", which the generic checker "
                              "does not know the error line for)",
}
#: The eleventh red team's (tests/mutants/red11_mutants.py), measured 2026-12-07 (red11, on main 5d76482 with
#: red11_mutants.py loaded, seeds 0-7, every seed run, load 8-11): echo-one-byte-tail-dropped 0, 2-7,
#: eof-marked-after-send 0-4, 6, 7, marker-never-counted every seed, iocp-owed-slot-pooled 0, 3, 7,
#: iocp-retry-not-woken 1, 3, 6, marker-does-not-accept 1, 2, 4, 6, abortive-close-waits-for-receive 4, 6, 7,
#: scanned-counts-newline 6; cancelled-send-closes-gracefully none of 0-7 but 15, 16 and 21 of 8-60 since
#: red11's check of a FIN behind part of a line at the stop (_SIMULATE_SEEDS; none of 0-7 either before);
#: resume-keeps-idle-clock none of 0-7 (no idle time-out with back-pressure then); since simbp35's held-back idler
#: (BP_IDLE_ODDS: the time-out drawn with back-pressure in half the runs that draw both, none of 0-7; in echo a client
#: held back across an idle check, read on, then idle, while no other deadline re-arms it) seeds 582, 3009 and 4260
#: of the 206 of 0-5999 that draw the combination (_SIMULATE_SEEDS).  (simidle34's draft, a held-back client reading
#: nothing for the time-out and 20-100 ms more beside the slowloris, found it on none of 0-99: the slowloris' lines,
#: checked every time-out, and the other idlers' deadlines re-arm the one the mutant forgets.)
_RT11_LOST: dict[str, str] = {}
#: The twelfth red team's, measured 2026-12-07 (red12, on main d6417a7 with red12_mutants.py loaded, seeds 0-7, the
#: first seed that finds each): acceptex-address-slot-too-small, immediate-success-is-failure, moved-event-not-updated,
#: last-wait-index-taken-for-closing and inbox-taken-acceptor-not-woken 0, reaped-socket-never-closed 1,
#: idle-wait-not-shortened 5; the three in _RT12_LOST none (each seed run).  Since simidle34's slowloris in idle runs
#: (merged after red12 measured): idle-newline-in-stale-bytes on seed 5 too (the lead's slow re-run on 3fb5cf2, XPASS).
_RT12_LOST = {
    "idle-times-out-held-back": "(needs an idle time-out with back-pressure and a check that a client closed while "
                                "held back was not idle: simulate draws both in half the runs that draw the two "
                                "features (BP_IDLE_ODDS, simbp35), but its idle account counts a held-back client's "
                                "lines waiting unread at the server from when it sent them, so a close T after "
                                "them passes as due; measured by simbp35: found on none of the first 60 seeds that "
                                "draw the combination, echo or chat)",
    "hangup-allowance-per-receive": "(needs a hung-up client that sends more than max_line further bytes over "
                                    "several receives, and a check that it is then cut off: simulate's hung-up "
                                    "clients send their long line in one go, and a cut-off is allowed, not required)",
}
#: The thirteenth red team's, measured 2026-12-07 (red13, on main 73741df with red13_mutants.py loaded, seeds 0-7,
#: CI=true, -m slow, -p no:xdist): deadline-replaces-earlier 5 (an idler closed 81 ms late: its deadline replaced
#: by a later client's); the ones in _RT13_LOST none (each seed run).  simulate draws back-pressure
#: (its back_pressure feature) on seeds 1 and 2 of 0-7 only.
_RT13_LOST = {
    "hold-ignores-membership": "(needs chat with back-pressure, a line over max_line while another member is over "
                               "the mark, and the hung-up client leaving a second before the run ends: back-pressure "
                               "is drawn on seeds 1 and 2 only; seed 1 has no long lines (its hangup_edges are "
                               "echo's), seed 2's run (long lines, hung readers, an early stop) does not show it)",
    "end-keeps-over-mark": "(needs chat with back-pressure and a member over the mark that half-closes: seeds 1 and "
                           "2, the two with back-pressure, draw no half_close; and the reset it makes is allowed, "
                           "as it was in the recipe's checker before fin36; recipe_bp_chat catches it since "
                           "bpchat37: see the note after RED13_RECIPE_LOST)",
    "zombie-reset-after-reap": "(needs a closing client whose two cancelled operations complete apart, the second "
                               "within the one call (1 us) between the sweep's look and its WSAResetEvent: "
                               "simulate's fake draws completion delays at random from 0-50 us and a background "
                               "step at a call 1 time in 5; a probe (8 non-reading clients stopped at 60 ms, "
                               "events model, 40 seeds, 80 closing clients with both operations in flight, 48 "
                               "sweeps of one half-completed) found none, also with a background step at every "
                               "call; the recipe's Hypothesis-drawn choices reach it)",
    "accept-error-backs-off": "(each reset in the backlog delays accepting by accept_retry_ms (50 ms), the server "
                              "calling WSAWaitForMultipleEvents every 50 ms: simulate's accept_faults (seeds 0, 1, "
                              "3 and 6) and its storms of 20 resets delay the clients behind them by up to a "
                              "second, within every deadline, and no check bounds how long a client waits in the "
                              "backlog of a server with room; tests/test_ovserver_accept_errors.py's test_after_a_"
                              "client_reset_in_the_backlog_the_next_is_accepted_at_once catches it)",
    "dropped-asked-after-leave": "(needs a stop while an iocp client's send has completed and its packet waits for "
                                 "a worker, more output queued behind it, the send ending mid-line: see "
                                 "RED13_RECIPE_LOST)",
}
#: Since simulate's accept_bursts (2026-12-05, accepts9): no-accept-resignal 0 (accepts draws 2 there: the
#: last of the burst connects while the accept before it is handled; not found on seeds 0-7 before).
_ACCEPT_FINDS: set[str] = set()  # (lost on 5fdbb1d; found again on a listed seed since power30: _POWER30_FINDS)
#: The lead's re-run of the whole simulate part of the slow list on 5fdbb1d (2026-12-06, CI=true, -m slow, -n 2,
#: beside a CI run): every default-traffic sequence moved this session (shapes29: hangup_edges and deaf_drains
#: in simulate's echo swarm; robust29: the events model accepts no further ahead than its groups; fidelity21:
#: AcceptEx pairs each pending accept with its own backlog connection; realcli3's routines marker APC before
#: it). Found now, on seeds 0-7 (the first seed that finds each): group-wake-reset-outside-lock 0,
#: stop-closes-abortively 1 (checks29's stop check), iocp-controller-reset-before-wait 4, stop-skips-draining 4
#: (deaf_drains), iocp-workers-not-joined 5, group-inbox-checked-outside-lock 7.  Lost (not found on 0-7):
#: _MOVED27_LOST.
_MOVED27_FINDS = {"iocp-controller-reset-before-wait", "group-inbox-checked-outside-lock"}
#: The three lost there (hangup-fin-resets-error-line, cut-off-closes-gracefully, no-accept-resignal) were
#: analysed and found again by power30 (below): none is lost now.
_MOVED27_LOST: dict[str, str] = {}
#: Found again (power30, 2026-12-06, on main 3e0dc70; each mutant run as this test runs it on seeds 0-59, and on
#: 60-300 where 0-59 had few or none; the correct servers pass seeds 0-49, echo and chat, all three models):
#:
#: * cut-off-closes-gracefully: search28 moved its recipe property to recipe_chat, and this test takes its mode
#:   from that property, so simulate ran it in chat from then on, where the piped clients' output limit under one
#:   receive's worth is never drawn (PIPED_MAX_QUEUED is echo's only); in echo it is still found on seed 5 (and
#:   11, 15), as before: _SIMULATE_MODE runs it in echo.  (In chat: seeds 9, 13, 15, 16, 18, 23 ... of 0-59.)
#: * hangup-fin-resets-error-line: seed 6 drew deaf_drains since shapes29 (in simulate's echo swarm), whose stop,
#:   3-100 ms after the deaf client's FIN, ends that run at 0.53 s, before the piped client that found it is
#:   served (without deaf_drains seed 6 finds it still); no other seed of 0-59 found it (only 6 did before
#:   either): a hung-up client that half-closes while its error line is still queued or in flight, with no cause
#:   for a reset the client's judge allows (the piped clients' output limit, tight_limits' max_queued and
#:   back-pressure all allow one).  power30's counts check (a reset taken for a cut-off is matched by the
#:   server's cut-offs, not its hang-ups) finds it on seed 31 of 0-59 (and 105, 235 of 60-300); the reset after
#:   the FIN is seen directly on seeds 84, 121, 191, 199, 217, 241, 255 and 268 of 60-300: _SIMULATE_SEEDS.
#: * no-accept-resignal: robust29's events model posts AcceptEx only while fewer than ``accepts`` connections
#:   are ahead of its groups, so a post rarely follows the hand-over in the same wake-up any more, and the
#:   group that takes its inbox signals the acceptor's wake event again, which heals an erased signal (a
#:   delay, not a lost accept) unless every slot is outstanding: accept_bursts' burst finds it on seed 40 of
#:   0-59 (a client that reset in the backlog, its accept never handled: its socket held 1 s later) and
#:   133, 148, 166, 174, 209 and 210 of 60-300 (a burst client never served), not on 0-7: _SIMULATE_SEEDS.
_POWER30_FINDS = {"no-accept-resignal"}  # (the other two are red team 6's: found unless listed lost)
#: The mode simulate runs a mutant in where it is not its recipe property's (chat if that ends in "chat").
_SIMULATE_MODE = {"cut-off-closes-gracefully": "echo"}
#: Seeds run after 0-7 for a mutant those miss (measured by power30, see above).
_SIMULATE_SEEDS = {"hangup-fin-resets-error-line": (31, 84), "no-accept-resignal": (40, 166),
                   "cancelled-send-closes-gracefully": (15,), "iocp-workers-not-joined": (221,),
                   "resume-keeps-idle-clock": (582,)}
SIMULATE_FINDS = {"line-limit-ignores-buffered", "line-limit-off-by-one", "big-reply-truncated",
                  "half-close-forgets-queued-replies", "partial-last-line-delivered",
                  "chat-to-ended-client", "accept-error-stops-accepting"} | _NEW_FINDS | _ACCEPT_FINDS | _IDLE_FINDS \
    | _STOP_FINDS | _PIPED_FINDS | _MOVED27_FINDS | _POWER30_FINDS | _SLOWLORIS_FINDS | _RT4_FINDS | {
    m.name for m in MUTANTS if m.source.startswith("red team")
    and m.name not in _RT2_LOST | _RT4_LOST.keys() | _RT5_LOST.keys() | _RT6_LOST.keys() | _RT7_LOST.keys()
    | _RT8_LOST.keys() | _RT9_LOST.keys() | _RT10_LOST.keys() | _RT11_LOST.keys() | _RT12_LOST.keys()
    | _RT13_LOST.keys() | _MOVED27_LOST.keys()}
#: Not found by simulate's default traffic on seeds 0-7 (measured, see above), with the reason where it is
#: known.  simulate draws its own swarm (ovserver/_simulate.py), not fakewinsock.testing's.
_NOT_ON_0_7 = "measured 2026-12-06: not found by simulate's default traffic on seeds 0-7"
SIMULATE_LOST = {name: f"{_NOT_ON_0_7} {why}"
                 for name, why in (_RT2_LOST | _RT4_LOST | _RT5_LOST | _RT6_LOST | _RT7_LOST
                                  | _RT8_LOST | _IDLE24_LOST | _RT9_LOST | _RT10_LOST | _RT11_LOST
                                  | _RT12_LOST | _RT13_LOST | _MOVED27_LOST).items()}
SEARCH_MUTANTS = [m for m in MUTANTS if m.group]


@pytest.mark.slow
@pytest.mark.parametrize("mutant", [
    pytest.param(m, id=m.name, marks=pytest.mark.skip(reason=EQUIVALENT[m.name]) if m.name in EQUIVALENT
                 else () if m.name in SIMULATE_FINDS else pytest.mark.xfail(
        strict=True, reason=SIMULATE_LOST.get(m.name, f"simulate's swarm does not reach it yet: needs {m.needs}")))
    for m in SEARCH_MUTANTS])
def test_simulate_default_traffic_finds(mutant: Mutant, winsock_summary: Callable[[str], None]) -> None:
    from fakewinsock._threads import thread_serial, threads_made_since
    from ovserver import simulate

    mode = _SIMULATE_MODE.get(mutant.name, "chat" if mutant.caught_by.endswith("chat") else "echo")
    seeds = (*range(8), *_SIMULATE_SEEDS.get(mutant.name, ()))
    t0 = time.perf_counter()
    for seed in seeds:
        traffic = ""
        mark = thread_serial()
        try:
            r = simulate(100, 10, mode=mode, seed=seed, server_class=mutant.server)
            found = None if r.ok else r.errors[0] if r.errors else "failed"
            traffic = r.traffic
        except Exception as e:  # the fake found misuse, a deadlock or a leak
            found = f"{type(e).__name__}: {str(e)[:160]}"
            # A leak of threads (iocp-workers-not-joined: a worker not waited for) is the bug found: end them.
            for sched, t in threads_made_since(mark):
                if t in sched.alive():
                    sched.unwind([t])
        if found is not None:
            line = f"{mutant.name:<36} simulate seed {seed} ({traffic}) {time.perf_counter() - t0:5.1f} s"
            print(f"\n{line}\n  caught: {found[:200]}")
            winsock_summary(line)
            return
    pytest.fail(f"simulate's default traffic did not find {mutant.name} on seeds {seeds}")


# ---------------------------------------------------------------- what reaches the traffic-dependent mutants
#
# Directed scenarios, one per mutant the swarm reaches only rarely: each must
# fail the mutant and pass both correct servers (seeded: a few runs each).

_MS = 1_000_000


def _directed(cls: type[Server], scenario: Scenario, limits: Limits, seed: int) -> str | None:
    from tests.mutants.properties import OvserverUnderTest

    model = EchoModel(max_line=limits.max_line, max_queued=limits.max_queued)
    try:
        check_line_server(lambda ws, a: OvserverUnderTest(cls, ws, a, "echo", limits), scenario, model, seed=seed)
    except LineServerFailure as e:
        return str(e)
    return None


def _slow_reader() -> Scenario:
    """A client that sends 2.5 MiB of 15000-byte lines, 16 KiB every 2 ms, and
    reads 6 KiB every 2 ms (what slow_readers draws): its output stays backed
    up over many of the server's 64 KiB sends."""
    lines = _bulk(5 * 512 * 1024, 15000, 0)
    stream = b"".join(x + b"\n" for x in lines)
    chunks = tuple(stream[i:i + 16 * 1024] for i in range(0, len(stream), 16 * 1024))
    return Scenario((ClientScript(tuple(lines), chunks, (2 * _MS,) * len(chunks), read_bytes=6 * 1024,
                                  read_every_ns=2 * _MS),), window=16 * 1024)


def _resets_in_a_full_backlog() -> Scenario:
    """A server with one place: the first client holds it while two others
    arrive and reset at once in the listen backlog; one more comes 20 ms later
    (what accept_faults draws, aimed at the recipe's max_clients=1)."""
    return Scenario((ClientScript.of(b"first"), ClientScript.of(arrive_ns=100_000), ClientScript.of(arrive_ns=100_000),
                     ClientScript.of(b"late", arrive_ns=20 * _MS)),
                    FaultPlan((ClientFault(1, "reset", -1), ClientFault(2, "reset", -1))))


def _group_full_while_clients_end() -> Scenario:
    """63 clients fill the events model's first group; five of them half-close
    while their replies are still queued (they do not read for 50 ms, window
    16 bytes); three more arrive at 5 ms (what crowd draws past the limit)."""
    first = [ClientScript.of(b"x" * 200, pause_at_ns=0, pause_ns=50 * _MS) if i < 5
             else ClientScript.of(b"s", linger_ns=30 * _MS) for i in range(63)]
    late = [ClientScript.of(b"late", arrive_ns=5 * _MS) for _ in range(3)]
    return Scenario(tuple(first + late), FaultPlan(tuple(ClientFault(i, "leave", 1, 1 * _MS) for i in range(5))),
                    window=16)


def _endless_line_after_a_newline() -> Scenario:
    """One send: a line, then 1001 bytes of a line that never ends, then FIN
    (what ``unterminated`` with ``long_lines`` draws, the tail in its client's
    last send): the server must send the error line (the fake's split of the
    receive decides whether the echo fast path sees both parts at once)."""
    tail = b"x" * 1001
    return Scenario((ClientScript((b"a",), (b"a\n" + tail,), (0,), tail=tail),))


def _four_talkers() -> Scenario:
    """Four clients in one group, three lines each, 1 to 5 ms apart: the
    group's rotation moves on between their completions."""
    return Scenario(tuple(ClientScript((b"a%d" % i, b"b%d" % i, b"c%d" % i), (b"a%d\n" % i, b"b%d\n" % i, b"c%d\n" % i),
                                       (i * _MS, 3 * _MS, 5 * _MS)) for i in range(4)))


def _hung_up_client_sends_max_line_more() -> Scenario:
    """A line of 2 * max_line bytes (max_line 1000) in two sends 200 ms apart: 1001 bytes, which make it too
    long, then exactly 1000 more (its newline the last); the client does not read for 400 ms, so its error line
    (over the 16-byte window) is still in flight when the 1000 bytes come.  Not more than max_line bytes after
    the line was found too long: no cut-off is due, and a reset loses the error line (hangup-allowance-off-by-one
    cuts it off at exactly max_line)."""
    line = b"x" * 2000
    return Scenario((ClientScript((line,), (line[:1001], line[1001:] + b"\n"), (0, 200 * _MS), pause_at_ns=0,
                                  pause_ns=400 * _MS),), window=16)


def _stop_while_a_half_closed_client_does_not_read() -> Scenario:
    """A client sends 50 lines of 100 bytes and its FIN, reading nothing for 3 s (a 16-byte window: its
    replies wait); a stop at 50 ms: the server must close it (a reset: output is dropped) and stop within the
    checker's 1 s, not wait for it to read (stop-skips-draining leaves it open, WSACleanup finds it)."""
    script = ClientScript.of(*(b"%04d" % i + b"y" * 95 for i in range(50)), pause_at_ns=0, pause_ns=3000 * _MS)
    return Scenario((script,), FaultPlan((ClientFault(0, "leave", len(script.chunks), 1 * _MS),),
                                         stop_at_ns=50 * _MS), window=16)


@pytest.mark.parametrize(("name", "scenario", "limits", "seeds"), [
    ("stop-skips-draining", _stop_while_a_half_closed_client_does_not_read, Limits(), 2),
    ("hangup-allowance-off-by-one", _hung_up_client_sends_max_line_more, Limits(max_line=1000, max_clients=1), 2),
    ("queued-count-leaks", _slow_reader, Limits(), 1),
    ("tail-over-limit-unchecked", _endless_line_after_a_newline, Limits(max_line=1000, max_clients=1), 4),
    ("rotated-index-ignored", _four_talkers, Limits(), 2),
    ("accept-error-stops-accepting", _resets_in_a_full_backlog, Limits(max_clients=1), 12),
    ("full-check-counts-members", _group_full_while_clients_end, Limits(), 2),
])
def test_directed_traffic_reaches_the_mutant(name: str, scenario: Callable[[], Scenario], limits: Limits,
                                             seeds: int) -> None:
    mutant = next(m for m in MUTANTS if m.name == name)
    s = scenario()
    for cls in (EventServer, RoutineServer):
        for seed in range(seeds):
            assert _directed(cls, s, limits, seed) is None, (cls.__name__, seed)
    caught = [seed for seed in range(seeds) if _directed(mutant.server, s, limits, seed) is not None]
    assert caught, f"{name}: not caught by its directed traffic on seeds 0-{seeds - 1}"


def test_a_hung_up_member_gets_nothing_after_its_error_line() -> None:
    """Chat: a member whose line is over the limit gets the error line, then the
    server's FIN, and no line the others send after it (the checker's rule:
    nothing but the FIN follows the error line).  The others talk after it was
    hung up, while it does not read and a 16-byte window holds its error line
    back: hung-up-stays-member routes their lines to it behind its error line."""
    from tests.mutants.properties import OvserverUnderTest

    limits = Limits(max_line=1000)
    leaver = ClientScript.of(b"hi", b"x" * 1001, pause_at_ns=0, pause_ns=150 * _MS)
    talkers = [ClientScript((b"a", b"b", b"c"), (b"a\n", b"b\n", b"c\n"), (20 * _MS, 30 * _MS, 40 * _MS))] * 2
    scenario = Scenario((leaver, *talkers), window=16)
    mutant = next(m for m in MUTANTS if m.name == "hung-up-stays-member").server

    def run(cls: type[Server], seed: int) -> str | None:
        try:
            check_line_server(lambda ws, a: OvserverUnderTest(cls, ws, a, "chat", limits), scenario,
                              ChatModel(max_line=1000), seed=seed)
        except LineServerFailure as e:
            return str(e)
        return None

    for cls in (EventServer, RoutineServer, IocpServer):
        assert run(cls, 0) is None, cls.__name__
    found = run(mutant, 0)
    assert found is not None and "after its error line" in found, found


def test_a_stop_during_a_connect_storm_catches_stop_before_inbox() -> None:
    """stop-before-inbox (an events group reads its stop flag before it takes the clients handed over to
    it) leaves a client handed over at the stop served and open: the storm-stop property, whose stop comes
    while a storm of clients is being accepted, catches it (the recipe does not: RECIPE_LOST; simulate does
    since its stop_arrivals, seed 7); the correct servers pass it (tests/test_ovserver_storm_stop.py)."""
    mutant = next(m for m in MUTANTS if m.name == "stop-before-inbox").server
    with pytest.raises(LineServerFailure) as caught:
        storm_stop_property(mutant, STORM_STOP_SETTINGS)()
    assert "LeakError" in str(caught.value) or "did not stop" in str(caught.value), str(caught.value)[:300]


def _full_group_with_a_closing_client() -> Scenario:
    """63 clients fill the events model's first group: one silent (closed at its 50 ms idle time-out, its
    receive cancelled), 62 talking every 10 ms for 200 ms; from 45 ms a client arrives every 0.5 ms, so that
    one is handed over to the first group in the place the silent one left while its cancelled receive is
    still in flight (the fake's completion delay set to 5 ms): 63 members and a closing client."""
    talk = tuple(b"k%02d" % j for j in range(20))
    talkers = [ClientScript(talk, tuple(x + b"\n" for x in talk), (10 * _MS,) * len(talk)) for _ in range(62)]
    late = [ClientScript.of(b"late%d" % i, arrive_ns=45 * _MS + i * _MS // 2) for i in range(110)]
    return Scenario((ClientScript.of(linger_ns=300 * _MS), *talkers, *late))


@pytest.mark.slow
def test_a_full_group_with_a_closing_client_reaches_zombies_overflow_wait_array() -> None:
    """zombies-overflow-wait-array (the wait array's room for closing clients counted without the group's
    wake event) waits on 65 events only with 63 members and a closing client whose operation is in flight:
    the recipe and simulate do not reach it (the fake's cancellations complete within 50 us); with a 5 ms
    completion delay and arrivals every 0.5 ms across an idle time-out, seed 3 does (WSAWaitForMultipleEvents
    fails with error 87; re-measured on 51bfeae after robust29's accept pacing moved the events model's
    schedules: of seeds 0-20 only 3 and 18 (a leaked event) fail it; redteam10 had seed 1); the correct events
    server passes the four."""
    from fakewinsock import FakeConfig

    mutant = next(m for m in MUTANTS if m.name == "zombies-overflow-wait-array").server
    scenario = _full_group_with_a_closing_client()

    def run(cls: type[Server], seed: int) -> str | None:
        try:
            check_line_server(lambda ws, a: OvserverUnderTest(cls, ws, a, "echo", Limits(), idle_timeout_ms=50),
                              scenario, EchoModel(idle_timeout_ms=50), seed=seed,
                              config=FakeConfig(completion_delay=(5 * _MS, 5 * _MS)))
        except LineServerFailure as e:
            return str(e)
        return None

    for seed in range(4):
        assert run(EventServer, seed) is None, seed
    assert run(mutant, 3) is not None
