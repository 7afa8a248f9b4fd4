"""Deliberately broken ovserver servers, and which property test must catch each.

See :mod:`tests.mutants.ovserver_mutants` (the servers) and
:mod:`tests.mutants.properties` (the property test bodies).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from ovserver import Server

from . import accept_mutants as a
from . import fresh2_mutants as f2
from . import fresh_mutants as f
from . import group_mutants as g
from . import idle_mutants as i
from . import ovserver_mutants as m
from . import race_mutants as rc
from . import red4_mutants as r4
from . import red5_mutants as r5
from . import red6_mutants as r6
from . import red7_mutants as r7
from . import red8_mutants as r8
from . import red9_mutants as r9
from . import red10_mutants as r10
from . import red11_mutants as r11
from . import red12_mutants as r12
from . import red13_mutants as r13
from .group_properties import GROUP_PROPERTIES
from .properties import PROPERTIES

__all__ = ["Mutant", "MUTANTS", "check_copy"]


def check_copy(name: str, theirs: list[str], mine: list[str], most: int) -> None:
    """A mutant's copy ``mine`` of the method ``name`` (``theirs``: the original's lines, dedented) differs by
    at most ``most`` lines removed or added, each added one marked BUG, and every change (a hunk of the diff)
    has a marked added line: a line removed on purpose is marked by a BUG comment at its place, so a copy that
    silently lacks lines its original gained later (a stale copy: a second, unintended difference) fails."""
    changed = [d for d in difflib.unified_diff(theirs, mine, lineterm="", n=0)
               if d[:1] in "+-" and not d.startswith(("+++", "---"))]
    assert 0 < len(changed) <= most, "\n".join(changed)
    assert all("BUG" in d for d in changed if d.startswith("+")), "\n".join(changed)
    for group in difflib.SequenceMatcher(None, theirs, mine).get_grouped_opcodes(0):  # unified_diff's hunks
        assert any(j1 < j2 for _, _, _, j1, j2 in group), (
            f"{name}: lines removed with no BUG comment at their place (a stale copy?): "
            + "; ".join(t.strip() for _, i1, i2, _, _ in group for t in theirs[i1:i2]))


@dataclass(frozen=True)
class Mutant:
    name: str
    server: type[Server]
    bug: str  # what is wrong, in a few words
    source: str  # where the bug is described: the seed's problem list or the semantics doc
    caught_by: str  # the property (tests.mutants.properties.PROPERTIES) that must catch it
    group: str = ""  # issue 10's traffic feature group the bug needs ("" for the classic ones)
    needs: str = ""  # the traffic that reaches the bug


MUTANTS = [
    Mutant("one-receive-one-message", m.OneReceiveOneMessage, "a receive is taken to be one whole message",
           "seed 问题 (first receive gets every send)", "echo"),
    Mutant("forgets-WSAResetEvent", m.ForgetsWSAResetEvent, "the group's event is never reset",
           "seed 问题总结 4 (信号置空)", "echo"),
    Mutant("reset-is-not-an-exit", m.ResetIsNotAnExit, "10054 skipped: only 0 bytes closes the group",
           "seed 问题总结 3 (强制退出 10054)", "echo"),
    Mutant("zero-bytes-is-not-an-exit", m.ZeroBytesIsNotAnExit, "0 bytes is not an exit: receive again",
           "seed 问题总结 3 (优雅退出 0)", "echo"),
    Mutant("immediate-handled-twice", m.ImmediateHandledTwice, "WSARecv returned 0: handled inline and on its event",
           "semantics: immediate success still notifies", "echo"),
    Mutant("acceptex-after-first-receive", m.AcceptExAfterFirstReceive, "next AcceptEx posted when a receive completes",
           "seed 问题总结 1 (accept 位置有误)", "chat"),
    Mutant("shared-overlapped", m.SharedOverlapped, "one OVERLAPPED for a client's send and receive",
           "seed g_allOlp[i]; semantics: OVERLAPPED in use", "echo"),
    Mutant("reply-in-receive-buffer", m.ReplyInReceiveBuffer, "reply built in the buffer a WSARecv writes into",
           "semantics: buffers valid until completion", "chat"),
    Mutant("acceptex-true-is-failure", m.AcceptExTrueIsFailure, "AcceptEx TRUE (immediate) taken as an error",
           "semantics: AcceptEx must handle TRUE", "echo"),
    Mutant("ignores-aborted-completions", m.IgnoresAbortedCompletions, "10053/995 completions ignored at shutdown",
           "semantics: closesocket with operations pending", "echo"),
    Mutant("exits-without-reaping", m.ExitsWithoutReaping, "WSACleanup before cancelled operations complete",
           "semantics: OVERLAPPED valid until completion", "echo"),
    Mutant("more-than-64-events", m.MoreThan64Events, "a group of 64 clients: with its wake event, 65 in one wait",
           "seed 优化 (group 64 events per wait)", "flood"),
    Mutant("acceptex-receives-data", m.AcceptExReceivesData, "AcceptEx with dwReceiveDataLength > 0, data ignored",
           "seed 问题总结 1 (accept 参数有误)", "echo"),
    # Issue 10: bugs that only some kinds of traffic reach.
    Mutant("line-limit-ignores-buffered", m.LineLimitIgnoresBuffered,
           "line limit checked per receive, not counting the buffered part of the line",
           "issue 10 (sizes)", "recipe", "sizes",
           "a line longer than max_line arriving in several receives, the last one short"),
    Mutant("line-limit-off-by-one", m.LineLimitOffByOne, "a line of exactly max_line bytes refused",
           "issue 10 (sizes)", "recipe_chat", "sizes", "a line of exactly max_line bytes (chat)"),
    Mutant("big-reply-truncated", m.BigReplyTruncated, "a message longer than one send (64 KiB) cut to one send",
           "issue 10 (sizes)", "recipe", "sizes",
           "a reply over send_size (64 KiB): a line near max_line echoed with the lines behind it"),
    Mutant("coalesced-send-drops-split-head", m.CoalescedSendDropsSplitHead,
           "output coalesced into one send loses the first part of a message split over two sends",
           "issue 10 (flow control)", "recipe", "flow control",
           "more than send_size (64 KiB) queued behind a send in flight: a slow reader or small window"),
    Mutant("queued-count-leaks", m.QueuedCountLeaks,
           "bytes taken by a coalesced send of a split message stay counted as queued",
           "issue 10 (flow control)", "recipe", "flow control",
           "output backed up behind a slow reader, often, until the count passes max_queued"),
    Mutant("half-close-forgets-queued-replies", m.HalfCloseForgetsQueuedReplies,
           "at the client's FIN the replies queued behind the send in flight are dropped",
           "issue 10 (endings)", "recipe", "endings",
           "a FIN while replies are queued: burst then half-close, with a slow reader or small window"),
    Mutant("partial-last-line-delivered", m.PartialLastLineDelivered,
           "an unterminated last line at EOF delivered as a line (the protocol drops it)",
           "issue 10 (endings)", "recipe", "endings", "a stream ending without its newline, then FIN"),
    Mutant("chat-to-ended-client", m.ChatToEndedClient, "a client that sent its FIN stays a chat member",
           "issue 10 (endings)", "recipe_chat", "endings",
           "chat: a client half-closes while the others keep talking"),
    Mutant("accept-error-stops-accepting", m.AcceptErrorStopsAccepting,
           "an AcceptEx completing with an error (reset in the backlog) ends accepting",
           "issue 10 (load, endings)", "recipe", "load",
           "a client that resets while it waits in the listen backlog, then another client"),
    Mutant("full-check-counts-members", m.FullCheckCountsMembers,
           "accepting resumes by protocol members, not connections still holding a wait slot",
           "issue 10 (load)", "recipe", "load",
           "the events model's 63 slots filled while clients leave and others wait"),
    Mutant("closed-send-never-reaped", m.ClosedSendNeverReaped,
           "a closed connection's send completing later is never reaped",
           "issue 10 (faults)", "recipe", "faults",
           "a close (reset, cut-off, stop) while a send is in flight: a slow reader"),
    Mutant("stop-skips-busy-sends", m.StopSkipsBusySends, "a stop leaves connections with a send in flight open",
           "issue 10 (faults)", "recipe", "faults", "a stop while a reader that stopped reading holds a send"),
    Mutant("lost-signal-not-requeued", m.LostSignalNotRequeued,
           "a post resets the group's event and the other slot's completion is not re-queued",
           "semantics: posting resets the event", "recipe", "flow control",
           "a send and a receive of one client completing close together (send pending, client talking)"),
    # Issue 10, red team: fresh bugs planted by someone other than the tools' authors, in every part of
    # the server (tests/mutants/fresh_mutants.py).
    Mutant("chat-broadcast-live-dict", f.ChatBroadcastLiveDict,
           "a broadcast iterates over the live member dict, which a recipient cut off changes",
           "red team (protocol, chat)", "recipe_chat", "flow control",
           "chat: a member that does not read while others talk past max_queued"),
    Mutant("chat-crlf-normalised", f.ChatCrlfNormalised, "a chat line ending in CR LF is passed on ending in LF",
           "red team (protocol, chat)", "recipe_chat", "sizes", "chat: a line whose last byte is a carriage return"),
    Mutant("hung-up-stays-member", f.HungUpStaysMember,
           "a client hung up for a line too long stays a chat member",
           "red team (protocol, chat)", "recipe_chat", "sizes", "chat: a line over max_line while others talk"),
    Mutant("partial-at-limit-refused", f.PartialAtLimitRefused,
           "a partial line (no newline yet) of exactly max_line bytes is refused",
           "red team (protocol)", "recipe", "sizes",
           "a line of exactly max_line bytes whose newline comes in a later receive"),
    Mutant("limit-counts-routed-lines", f.LimitCountsRoutedLines,
           "the partial-line check counts the lines already routed from the same receive",
           "red team (protocol, chat)", "recipe_chat", "sizes",
           "chat: a receive longer than max_line of short lines ending mid-line"),
    Mutant("hangup-stops-reading", f.HangupStopsReading, "a hung-up client is not read any more: its end is never seen",
           "red team (core)", "recipe", "endings", "a line over max_line, then the client's end"),
    Mutant("hangup-closes-at-once", f.HangupClosesAtOnce,
           "a hang-up closes at once, the error line perhaps still in flight",
           "red team (core)", "recipe", "endings", "a line over max_line with the error line's send pending"),
    Mutant("recv-reposted-first", f.RecvRepostedFirst,
           "the next WSARecv is posted into the buffer before its bytes are handed on",
           "red team (core)", "recipe", "flow control", "data waiting when a receive completes"),
    Mutant("name-from-local-address", f.NameFromLocalAddress, "chat names every client by the server's address",
           "red team (core, iocp)", "recipe_chat", "load", "chat with two clients"),
    Mutant("serve-forgets-closing", f.ServeForgetsClosing,
           "a stop returns once no connection is live, closed ones still in flight",
           "red team (core, routines)", "recipe", "faults", "a stop with a connection open"),
    Mutant("slot-not-updated", f.SlotNotUpdated, "the client moved into a leaving one's wait slot keeps its old index",
           "red team (events)", "recipe", "endings", "three clients in a group leaving out of order"),
    Mutant("stop-closes-while-iterating", f.StopClosesWhileIterating,
           "a group's stop closes its clients iterating over the list each close changes",
           "red team (events)", "recipe", "faults", "a stop while a group serves two clients or more"),
    Mutant("stop-wait-not-alertable", f.StopWaitNotAlertable,
           "the stop's wait is not alertable: the cancelled operations' routines never run",
           "red team (routines)", "recipe", "faults", "a stop with a connection open"),
    Mutant("iocp-full-server-never-resumes", f.IocpFullServerNeverResumes,
           "a worker closing a connection of a full server neither posts AcceptEx nor wakes the controller",
           "red team (iocp)", "recipe", "load", "the client limit reached, a client leaving, another waiting"),
    Mutant("iocp-receive-without-lock", f.IocpReceiveWithoutLock,
           "a receive's packet is handled without the server lock",
           "red team (iocp)", "recipe_chat", "load", "two workers: a receive handled while another packet is"),
    Mutant("iocp-drain-not-signalled", f.IocpDrainNotSignalled,
           "the worker handling a stop's last packet does not wake the controller (a 1 s stop)",
           "red team (iocp)", "recipe", "faults", "a stop with a connection open"),
    # Issue 10, second red team: kinds of bug the mutants above do not cover (tests/mutants/fresh2_mutants.py).
    Mutant("scanned-by-receive", f2.ScannedByReceive,
           "after a receive's lines are routed, the bytes known to hold no newline counted as the receive's length",
           "red team 2 (protocol, framing)", "recipe_chat", "sizes",
           "chat: a receive ending mid-line after a newline, then a short line and more in the next receive"),
    Mutant("tail-over-limit-unchecked", f2.TailOverLimitUnchecked,
           "echo's fast path does not check the partial line after a receive's last newline against max_line",
           "red team 2 (protocol, limits)", "recipe", "endings",
           "a receive with a newline then more than max_line bytes of a last line that never ends, then FIN"),
    Mutant("other-groups-not-woken", f2.OtherGroupsNotWoken,
           "a chat line for clients of other groups is queued for their threads, which are not woken",
           "red team 2 (events, chat)", "recipe_chat", "load",
           "chat with more than 63 clients: one group's clients listen while another's talk"),
    Mutant("acceptor-not-woken-by-group", f2.AcceptorNotWokenByGroup,
           "a group thread that frees a place of a full server does not wake the acceptor",
           "red team 2 (events, limits)", "recipe", "load",
           "the client limit reached, a client leaving, another waiting"),
    Mutant("rotated-index-ignored", f2.RotatedIndexIgnored,
           "the signalled index of the rotated wait array taken into the unrotated client list",
           "red team 2 (events)", "recipe", "load", "a group of two clients or more, its rotation moved on"),
    Mutant("accept-retry-not-armed", f2.AcceptRetryNotArmed,
           "a post of AcceptEx that fails at once is not retried after accept_retry_ms",
           "red team 2 (core, faults)", "recipe", "faults", "an AcceptEx injection, then clients arriving"),
    Mutant("client-limit-off-by-one", f2.ClientLimitOffByOne,
           "accepting stops above max_clients connections, not at it (and the hub is not asked)",
           "red team 2 (core, limits)", "recipe", "load", "the client limit reached and one more client"),
    Mutant("wake-event-not-reset", f2.WakeEventNotReset,
           "the wake event is not reset: with no AcceptEx posted after it, every wait returns at once",
           "red team 2 (core, stop)", "recipe", "faults", "a full server, or a stop"),
    Mutant("resume-before-freeing", f2.ResumeBeforeFreeing,
           "a close resumes accepting before the connection leaves the table: a full server stays full",
           "red team 2 (core, closing)", "recipe", "load",
           "the client limit reached, a client leaving, another waiting"),
    Mutant("iocp-closed-packet-dropped", f2.IocpClosedPacketDropped,
           "a packet of a closed connection is dropped, not reaped: it stays closing until a stop gives up",
           "red team 2 (iocp, closing)", "recipe", "faults",
           "a connection closed with an operation in flight (reset, cut-off, stop)"),
    # Issue 14: the races of a thread per group of 64 events.
    Mutant("arrays-changed-while-waiting", g.ArraysChangedWhileWaiting,
           "the acceptor adds a client to a group's wait array while the group's thread waits on it",
           "issue 14 (thread groups)", "groups_few"),
    Mutant("lost-wake-up", g.LostWakeUp, "a group takes one handed-over client per wake-up: two hand-overs, one signal",
           "issue 14 (thread groups)", "groups_burst"),
    Mutant("unlocked-acceptor", g.UnlockedAcceptor,
           "the acceptor writes the shared tables (connections, groups, inboxes) without the lock",
           "issue 14 (thread groups)", "echo"),
    Mutant("group-ended-while-handed-over", g.GroupEndedWhileHandedOver,
           "an ended group stays listed until its thread is reaped: a client is handed to it",
           "issue 14 (thread groups)", "echo"),
]

# Issue 10, fourth red team: back-pressure, the iocp pool's shutdown, accepting, handles, wake-ups, stopping,
# byte counts and the output limit's boundary (tests/mutants/red4_mutants.py).  The back-pressure ones are
# caught_by "recipe_bp": the recipe aimed at ovserver configured with back-pressure (its model told).
MUTANTS += [
    Mutant("stall-clock-not-cleared", r4.StallClockNotCleared,
           "the stall clock is not stopped when the client drains under the high-water mark",
           "red team 4 (core, back-pressure)", "recipe_bp", "flow control",
           "back-pressure on; a client's queue over the mark, then drained, the client alive past the stall time-out"),
    Mutant("stall-unwatched-without-idle-timeout", r4.StallUnwatchedWithoutIdleTimeout,
           "a group checks deadlines only with an idle time-out: stalled readers are never cut off",
           "red team 4 (events, back-pressure)", "recipe_bp_chat", "flow control",
           "back-pressure on, no idle time-out; chat: a member that stops reading for good and stays"),
    Mutant("close-keeps-senders-paused", r4.CloseKeepsSendersPaused,
           "a close does not perform the resumes of the senders the closed recipient held back",
           "red team 4 (iocp, back-pressure)", "recipe_bp_chat", "flow control",
           "back-pressure on; chat: a recipient over the mark closed while the senders it held back wait"),
    Mutant("iocp-workers-not-joined", r4.IocpWorkersNotJoined,
           "the stop closes the worker threads' handles without waiting for the threads",
           "red team 4 (iocp, pool shutdown)", "recipe", "faults", "a stop (every run ends with one)"),
    Mutant("no-update-accept-context", r4.NoUpdateAcceptContext,
           "SO_UPDATE_ACCEPT_CONTEXT never set: shutdown() fails, a hung-up client never gets the FIN",
           "red team 4 (events, accepting)", "recipe", "sizes", "a line over max_line"),
    Mutant("accept-error-leaks-socket", r4.AcceptErrorLeaksSocket,
           "the socket of an AcceptEx that completed with an error is not closed",
           "red team 4 (routines, accepting)", "recipe", "load",
           "a client that resets while the server accepts it (in the listen backlog)"),
    Mutant("event-closed-with-socket", r4.EventClosedWithSocket,
           "a client's event is closed with its socket while its cancelled operations are in flight",
           "red team 4 (events, handles)", "recipe", "endings",
           "a connection closed with an operation in flight: hang-up, cut-off, reset, stop"),
    Mutant("one-slot-per-wakeup", r4.OneSlotPerWakeup,
           "a wake-up handles one completed operation: a send completed beside the client's FIN is lost",
           "red team 4 (events, wake-ups)", "recipe", "endings",
           "a FIN arriving while a send is in flight that completes before the group handles the FIN"),
    Mutant("stop-unseen-in-routine-burst", r4.StopUnseenInRoutineBurst,
           "a routine does not begin a requested stop: a burst of routines hides it",
           "red team 4 (routines, stop)", "recipe", "faults",
           "a stop while clients keep data flowing without a pause for over a second"),
    Mutant("stop-leaves-accept-socket", r4.StopLeavesAcceptSocket,
           "the stop closes the listener but not the socket the pending AcceptEx was given",
           "red team 4 (iocp, stop)", "recipe", "faults", "a stop with an AcceptEx posted"),
    Mutant("failed-empty-receive-is-eof", r4.FailedEmptyReceiveIsEof,
           "a failed receive of 0 bytes (a reset) is taken for the client's FIN: counted as ended",
           "red team 4 (iocp, byte counts, statistics)", "recipe", "endings",
           "a client that resets while a receive is posted; only the statistics differ"),
    Mutant("queue-limit-off-by-one", r4.QueueLimitOffByOne,
           "a client is cut off when its queue would reach max_queued, not exceed it",
           "red team 4 (protocol, limits)", "recipe", "flow control",
           "exactly max_queued bytes owed to a client that does not read"),
]

# Accepting with several AcceptEx outstanding (ServerConfig.accepts, serve's --accepts; 2026-12-05, accepts9:
# tests/mutants/accept_mutants.py).
MUTANTS += [
    Mutant("no-accept-resignal", a.NoAcceptResignal,
           "a post of AcceptEx erases the wake event's signal of another slot that completed meanwhile: "
           "not signalled again",
           "semantics: posting resets the event (accept slots)", "recipe_accepts", "load",
           "several AcceptEx outstanding; a client arriving microseconds after another, while that one's "
           "accept is handled, and no arrival after it"),
]

# Issue 10, fifth red team: the iocp model's in-flight count and send slot, GetQueuedCompletionStatus's error,
# the events model's hand-over, group ending and stop ordering, chat fan-out, the line limit's hang-up, and
# AcceptEx's address buffer (tests/mutants/red5_mutants.py).
MUTANTS += [
    Mutant("iocp-busy-cleared-at-dequeue", r5.IocpBusyClearedAtDequeue,
           "an operation leaves its connection's in-flight count when its packet is dequeued, not handled",
           "red team 5 (iocp, reference counting)", "recipe_chat", "faults",
           "two workers: a connection closed or sent to while a packet of it waits for the lock"),
    Mutant("iocp-send-free-at-completion", r5.IocpSendFreeAtCompletion,
           "the send slot is taken for free once its send completed, its packet still queued",
           "red team 5 (iocp, two operations in flight)", "recipe", "flow control",
           "a reply ready while the previous send has completed and its packet waits"),
    Mutant("iocp-win32-error-as-winsock", r5.IocpWin32ErrorAsWinsock,
           "a failed packet's GetLastError (Win32: 64 for a reset) taken for the Winsock error: resets "
           "counted as I/O errors",
           "red team 5 (iocp, GetQueuedCompletionStatus FALSE, statistics)", "recipe", "endings",
           "a client that resets while a receive is posted; only the statistics differ"),
    Mutant("group-room-ignores-inbox", r5.GroupRoomIgnoresInbox,
           "a group's room counts its wait array only, not the clients handed over and not yet taken",
           "red team 5 (events, hand-over)", "recipe", "load",
           "more than 63 clients (or a nearly full group's last places) accepted before the group runs"),
    Mutant("group-ends-with-zombies", r5.GroupEndsWithZombies,
           "a group's thread ends with no client left, its closed clients' operations still in flight",
           "red team 5 (events, group ending)", "recipe", "endings",
           "a group's last client closed with an operation in flight"),
    Mutant("stop-before-inbox", r5.StopBeforeInbox,
           "a group reads its stop flag before it takes the clients handed over: one handed over at the "
           "stop is served and never closed",
           "red team 5 (events, shutdown ordering)", "recipe", "faults",
           "a client accepted just before a stop, its group not yet woken"),
    Mutant("fanout-stops-at-cut-off", r5.FanoutStopsAtCutOff,
           "a chat line's fan-out ends at a recipient cut off for its output limit",
           "red team 5 (protocol, chat fan-out)", "recipe_chat", "flow control",
           "chat: a member that does not read cut off while others talk, members after it"),
    Mutant("hangup-drops-queued-replies", r5.HangupDropsQueuedReplies,
           "a hang-up drops the replies still queued for the client before its error line",
           "red team 5 (protocol, line limit)", "recipe", "sizes",
           "a line over max_line while replies wait behind a send"),
    Mutant("hangup-fin-before-queue-drained", r5.HangupFinBeforeQueueDrained,
           "a hang-up calls shutdown(SD_SEND) at once: output queued behind the send in flight then fails",
           "red team 5 (core, line limit, shutdown ordering)", "recipe", "sizes",
           "a line over max_line while a send is in flight with output behind it"),
    Mutant("accept-reposted-before-addresses", r5.AcceptRepostedBeforeAddresses,
           "the next AcceptEx is posted before the last one's addresses are read and its connection counted",
           "red team 5 (accepting, AcceptEx buffers)", "recipe", "load",
           "two clients arriving close together, or a full server"),
]

# Issue 10, sixth red team: WSAENOBUFS on a post, the hung-up client's allowance, the events model's stop flag
# and hand-over, the iocp model's early accepts, deadlines and cut-offs, back-pressure's stall cut-off, a
# hung-up client's FIN, and a leaked accept socket (tests/mutants/red6_mutants.py).
MUTANTS += [
    Mutant("enobufs-post-left-idle", r6.EnobufsPostLeftIdle,
           "a WSARecv or WSASend failing at once with WSAENOBUFS is left for a later post to retry (none does)",
           "red team 6 (core, error paths)", "recipe", "faults",
           "WSAENOBUFS injected into a WSARecv or a WSASend"),
    Mutant("hangup-allowance-counts-long-line", r6.HangupAllowanceCountsLongLine,
           "the too-long line's bytes count towards what a hung-up client may still send: its next byte cuts it off",
           "red team 6 (protocol, line limit)", "recipe", "sizes",
           "a line over max_line whose end, or another line, comes in a later receive"),
    Mutant("stop-flag-not-signalled", r6.StopFlagNotSignalled,
           "the stop sets every group's flag without signalling its wake event: a quiet group never stops",
           "red team 6 (events, stop ordering)", "recipe", "faults",
           "a stop while a group's clients are connected and quiet"),
    Mutant("first-receive-before-slot", r6.FirstReceiveBeforeSlot,
           "a handed-over client's first WSARecv is posted before it has its wait slot: its failure at once "
           "removes another client's slot",
           "red team 6 (events, hand-over, reset mid-accept)", "recipe", "endings",
           "a client whose first WSARecv fails at once: reset as soon as connected, or WSAENOBUFS"),
    Mutant("hangup-fin-resets-error-line", r6.HangupFinResetsErrorLine,
           "a hung-up client's FIN closes it at once: its error line still queued or in flight is dropped (reset)",
           "red team 6 (events, half-close, line limit)", "recipe", "endings",
           "a line over max_line then FIN, the error line not yet out (a small window, a paused reader)"),
    Mutant("iocp-early-accept-not-owed", r6.IocpEarlyAcceptNotOwed,
           "an AcceptEx completed early by a worker is not recorded as owed its packet: the stale packet "
           "is taken for the next post's",
           "red team 6 (iocp, packets, accepting)", "recipe", "load",
           "a client connecting while a worker handles another packet"),
    Mutant("iocp-deadline-not-woken", r6.IocpDeadlineNotWoken,
           "a worker that sets a deadline (stall, idle) does not wake the controller waiting with no time-out",
           "red team 6 (iocp, back-pressure, idle time-out)", "recipe_bp_chat", "flow control",
           "back-pressure on; chat: a member over the mark for the stall time-out while the server is quiet"),
    Mutant("cut-off-closes-gracefully", r6.CutOffClosesGracefully,
           "a client cut off for its output limit is closed gracefully unless a send is found in flight: a FIN "
           "after part of its replies",
           "red team 6 (iocp, slow readers, output limit)", "recipe_chat", "flow control",
           "a client owed more than max_queued, no send in flight when it overflows (one receive over the limit: "
           "in chat, another member's receive of short lines, each routed with its sender's name)"),
    Mutant("stall-cut-off-stays-in-hub", r6.StallCutOffStaysInHub,
           "an abortive close does not leave the hub: a client cut off by the stall time-out stays a client "
           "(echo, one place: full for good)",
           "red team 6 (routines, back-pressure)", "recipe_bp", "flow control",
           "back-pressure on; a client over the mark for the stall time-out, then another client"),
    Mutant("acceptex-post-failure-leaks-socket", r6.AcceptExPostFailureLeaksSocket,
           "the accept socket of an AcceptEx that fails at once (WSAENOBUFS) is not closed",
           "red team 6 (routines, accepting, leaks)", "recipe", "faults",
           "WSAENOBUFS injected into an AcceptEx post"),
]

# Issue 10, seventh red team: the events model's send event, event reset, wake reset and rotation index; the iocp
# model's send OVERLAPPED reused in flight and its failed send dropped; the hub's leave that keeps the chat member;
# the routines model's idle clock, accept retry and room to accept (tests/mutants/red7_mutants.py).
MUTANTS += [
    Mutant("send-event-not-set", r7.SendEventNotSet,
           "the client's event is given to its receive OVERLAPPED only: a send's completion signals nothing",
           "red team 7 (events, notification)", "recipe_chat", "flow control",
           "a client owed more than one send while it sends nothing: a chat member that gets two lines or more "
           "without talking, or echo output over one send"),
    Mutant("reset-after-handling", r7.ResetAfterHandling,
           "a signalled client's event is reset after its completions are handled: a post completing at once "
           "meanwhile is not noticed",
           "red team 7 (events, event reset; seed 问题总结 4)", "recipe", "flow control",
           "a client whose reposted WSARecv completes at once (data waiting) while its send completed at once"),
    Mutant("group-wake-reset-outside-lock", r7.GroupWakeResetOutsideLock,
           "a group resets its wake event just before it waits, outside the lock: a hand-over signalled "
           "meanwhile is lost",
           "red team 7 (events, hand-over race)", "recipe", "load",
           "a client handed to an existing group (or a chat line from another group, a stop) between the "
           "group leaving the lock and its wait"),
    Mutant("rotation-from-rotated-index", r7.RotationFromRotatedIndex,
           "the fairness rotation's next start is taken from the rotated array's index: a busy client is served "
           "again and again ahead of the rest of its group",
           "red team 7 (events, wait index, fairness)", "recipe", "load",
           "a group with a client that keeps its event signalled (a flood, a slow server) and others, a "
           "hand-over or a stop"),
    Mutant("iocp-send-overlapped-reused", r7.IocpSendOverlappedReused,
           "output is sent without looking at the send slot: its OVERLAPPED posted again while in flight",
           "red team 7 (iocp, OVERLAPPED in use)", "recipe", "flow control",
           "output ready for a client while its previous send is in flight"),
    Mutant("iocp-send-error-left-to-receive", r7.IocpSendErrorLeftToReceive,
           "a send completing with an error is dropped, left to the receive: with no receive posted the "
           "connection is never closed",
           "red team 7 (iocp, error paths)", "recipe", "endings",
           "a send failing while no receive is posted: a client that does not read, half-closes, then resets"),
    Mutant("leave-keeps-member", r7.LeaveKeepsMember,
           "the hub's leave forgets the client but not the chat member: lines are still routed to it",
           "red team 7 (protocol, chat fan-out)", "recipe_bp_chat", "endings",
           "chat with back-pressure: a member that resets or is cut off while the others keep talking"),
    Mutant("idle-newline-off-by-one", r7.IdleNewlineOffByOne,
           "a receive's newline looked for in its first nbytes - 1 bytes: a line ending the receive does "
           "not restart the idle clock",
           "red team 7 (routines, idle time-out, buffer arithmetic)", "recipe_idle_chat", "endings",
           "an idle time-out and a client that sends lines while none of its sends completes"),
    Mutant("retry-only-between-waits", r7.RetryOnlyBetweenWaits,
           "a failed AcceptEx is retried only by the loop around the alertable wait, which a burst of "
           "routines keeps from returning",
           "red team 7 (routines, accept retry)", "recipe", "faults",
           "an AcceptEx post failing while clients keep data flowing without a pause, then a new client"),
    Mutant("room-counts-closing", r7.RoomCountsClosing,
           "the room to accept counts closing connections: a full server whose clients left with an "
           "operation in flight stays full",
           "red team 7 (routines, limits)", "recipe", "load",
           "the client limit reached, a client closed with an operation in flight, then another client"),
]

# Issue 10, eighth red team: the iocp model's immediate send handled inline, GetQueuedCompletionStatus' FALSE with and
# without an OVERLAPPED, the pool's stop packets, a context released at its first reaped completion, a receive buffer
# shared by every connection, a graceful close with its receive pending; the hub's coalesced output taken newest first
# (tests/mutants/red8_mutants.py).
MUTANTS += [
    Mutant("iocp-skip-on-success-assumed", r8.IocpSkipOnSuccessAssumed,
           "a WSASend returning 0 is handled at once, as if the port skipped its packet: the packet comes later "
           "for a free slot or another send",
           "red team 8 (iocp, immediate completions)", "recipe", "flow control",
           "a send completing at once (room in the window), then more output or its packet"),
    Mutant("iocp-failed-packet-ends-worker", r8.IocpFailedPacketEndsWorker,
           "GetQueuedCompletionStatus FALSE with an OVERLAPPED (a failed operation) taken for the port failing: "
           "the worker ends, the packet unhandled",
           "red team 8 (iocp, GetQueuedCompletionStatus FALSE)", "recipe", "endings",
           "an operation that fails: a client that resets, or a close that cancels a pending operation"),
    Mutant("iocp-worker-timeout-is-failure", r8.IocpWorkerTimeoutIsFailure,
           "a worker's finite GetQueuedCompletionStatus wait: its time-out (FALSE, no OVERLAPPED) taken for "
           "the port failing",
           "red team 8 (iocp, GetQueuedCompletionStatus FALSE without OVERLAPPED)", "recipe", "faults",
           "a worker that dequeues nothing for a second while the server runs"),
    Mutant("iocp-one-stop-packet", r8.IocpOneStopPacket,
           "one stop packet posted for the whole worker pool: the other workers and the controller wait for good",
           "red team 8 (iocp, pool shutdown)", "recipe", "faults", "a stop with two workers or more"),
    Mutant("iocp-release-on-first-reap", r8.IocpReleaseOnFirstReap,
           "a closing connection is released (socket closed, context forgotten) at the first of its cancelled "
           "completions: the second finds a released context",
           "red team 8 (iocp, closesocket racing completions)", "recipe", "flow control",
           "a close with a receive and a send in flight: a cut-off or a stop with a slow reader"),
    Mutant("iocp-shared-receive-buffer", r8.IocpSharedReceiveBuffer,
           "every connection's WSARecv posted into one buffer of the server",
           "red team 8 (iocp, buffers in use; seed's global buffer)", "recipe", "load",
           "two clients with receives posted at once"),
    Mutant("coalesce-newest-first", r8.CoalesceNewestFirst,
           "messages queued behind a send in flight are gathered into the next send newest first",
           "red team 8 (protocol, output order)", "recipe_chat", "flow control",
           "two messages or more queued for a client while its send is in flight"),
    Mutant("iocp-close-with-receive-pending", r8.IocpCloseWithReceivePending,
           "a graceful close calls closesocket at once, its cancelled receive not yet reaped: Windows resets",
           "red team 8 (iocp, closesocket with a receive outstanding)", "recipe", "faults",
           "a graceful close with a receive posted: a stop while a client is connected and owed nothing"),
    Mutant("iocp-receive-buffer-pooled-at-close", r8.IocpReceiveBufferPooledAtClose,
           "a closed connection's receive buffer goes back to the pool at the close, its cancelled receive maybe "
           "pending: the next connection receives into it",
           "red team 8 (iocp, buffer freed while pending)", "recipe", "load",
           "a close with a receive in flight, then a client accepted before that receive's packet is handled"),
    Mutant("iocp-key-reused-while-closing", r8.IocpKeyReusedWhileClosing,
           "a connection's id (its completion key) is the lowest free among live ones: reused while a closed "
           "connection with that id still awaits its packets",
           "red team 8 (iocp, completion key)", "recipe", "load",
           "a graceful close waiting for its cancelled receive (idle time-out), then a client given the same id "
           "closed with an operation in flight before that receive's packet"),
    Mutant("idle-clock-on-send-only", i.IdleClockOnSendOnly,
           "only a completed send restarts the idle clock, a receive (a line completed) never does",
           "idle time-out (search24: the clock restarted on the wrong side)", "recipe_idle_chat", "endings",
           "an idle time-out and lines from a client that gets no send completed (a chat member alone)"),
    Mutant("idle-clock-on-partial-data", i.IdleClockOnPartialData,
           "any byte received restarts the idle clock: a slowloris' dribble without a newline keeps its place",
           "idle time-out (search24: a slowloris let in)", "recipe_idle", "endings",
           "an idle time-out and a client that dribbles a line for longer than the time-out"),
    Mutant("idle-newline-from-index-one", i.IdleNewlineFromIndexOne,
           "a receive's newline looked for from index 1: a receive that begins with its newline does not "
           "restart the idle clock",
           "idle time-out (search24: an off-by-one at the start of the buffer)", "recipe_idle_chat", "endings",
           "an idle time-out and a client, sent nothing back, whose newlines arrive at the start of receives"),
    Mutant("idle-deadline-not-armed", i.IdleDeadlineNotArmed,
           "events model: a new member's idle deadline is not folded into its group's next check",
           "idle time-out (search24: the deadline never armed)", "recipe_idle", "endings",
           "an idle time-out and a client that stays connected, silent, in a group of its own"),
]

# Issues 10 and 14, races at synchronization calls (sched1, tests/mutants/race_mutants.py): a wake event reset
# outside the lock after the flags were read, in the iocp model's controller; a group's inbox looked at without the
# lock before the reset (a double check that does not hold).
MUTANTS += [
    Mutant("iocp-controller-reset-before-wait", rc.IocpControllerResetBeforeWait,
           "the iocp controller resets its wake event just before its wait, outside the lock: a worker's signal "
           "meanwhile (every operation reaped at a stop, an idle time-out armed) is lost",
           "race mutants (iocp, lost wake-up)", "recipe", "faults",
           "a worker handling the stop's last cancelled operation while the controller goes back to its wait"),
    Mutant("group-inbox-checked-outside-lock", rc.GroupInboxCheckedOutsideLock,
           "a group resets its wake event before its wait only if its inbox looks empty, looked at without the "
           "lock: a hand-over signalled between the look and the reset is lost",
           "race mutants (events, hand-over race)", "recipe", "load",
           "a client handed to an existing group between the group's look at its inbox and its wait"),
]

# Issue 10, ninth red team: the simple, classic bugs an outside grader plants (tests/mutants/red9_mutants.py): chat
# fan-out including the sender, blank chat lines skipped, the error line's number, the welcome's newline, the hung-up
# client's allowance off by one, a completion routine's arguments swapped, the hang-up's shutdown direction, a group
# that looks at the receive slot only, resets counted as I/O errors, any bytes restarting the idle clock, the
# summary's peak taken before the new connection is in, a stop that forgets draining connections, the hub full
# only above max_clients, an idle connection reset.
MUTANTS += [
    Mutant("chat-echoes-to-sender", r9.ChatEchoesToSender, "a chat line goes to every member, its sender included",
           "red team 9 (protocol, chat fan-out)", "recipe_chat", "load", "chat: a line"),
    Mutant("chat-skips-blank-lines", r9.ChatSkipsBlankLines,
           "a chat line that is empty or all whitespace is not passed on",
           "red team 9 (protocol, chat framing)", "recipe_chat", "sizes", "chat: an empty or all-whitespace line"),
    Mutant("error-line-off-by-one", r9.ErrorLineOffByOne,
           "the error line names max_line + 1 (the first length refused), not max_line",
           "red team 9 (protocol, error line)", "recipe", "sizes", "a line over max_line"),
    Mutant("welcome-without-newline", r9.WelcomeWithoutNewline, "chat's welcome line is sent without its newline",
           "red team 9 (protocol, welcome line)", "recipe_chat", "load", "chat: a client, and a line routed to it"),
    Mutant("hangup-allowance-off-by-one", r9.HangupAllowanceOffByOne,
           "a hung-up client is cut off once it has sent max_line further bytes, not more than max_line",
           "red team 9 (protocol, limits)", "recipe", "endings",
           "a hung-up client that sends exactly max_line further bytes, then its FIN"),
    Mutant("routine-arguments-swapped", r9.RoutineArgumentsSwapped,
           "the completion routine passes dwError as the byte count and cbTransferred as the error",
           "red team 9 (routines, swapped arguments)", "recipe", "load", "any client"),
    Mutant("hangup-shuts-receive-side", r9.HangupShutsReceiveSide,
           "a hang-up ends with shutdown(SD_RECEIVE), not SD_SEND: no FIN after the error line",
           "red team 9 (core, hang-up)", "recipe", "endings", "a line over max_line"),
    Mutant("group-handles-receive-only", r9.GroupHandlesReceiveOnly,
           "a signalled client's send slot is never looked at: its send's completion is never handled",
           "red team 9 (events, completions)", "recipe", "flow control",
           "a reply whose send does not complete at once"),
    Mutant("reset-counted-as-error", r9.ResetCountedAsError,
           "a receive failing with 10054 (the client reset) counted as an I/O error, 10053 as a reset",
           "red team 9 (core, summary counts)", "recipe", "faults", "a client that resets"),
    Mutant("idle-clock-any-bytes", r9.IdleClockAnyBytes,
           "any bytes received restart the idle clock, not a complete line: a slowloris is never timed out",
           "red team 9 (core, idle time-out)", "recipe_idle", "endings",
           "an idle time-out and a client dribbling bytes without a newline for longer"),
    Mutant("peak-counted-before-open", r9.PeakCountedBeforeOpen,
           "the summary's peak of connections open at once is taken before the new one is in the table",
           "red team 9 (core, summary counts)", "recipe", "load", "any client, and a look at the summary"),
    Mutant("stop-skips-draining", r9.StopSkipsDraining,
           "a stop closes only connections open for input: a half-closed or hung-up one draining its output stays",
           "red team 9 (core, stop)", "recipe", "faults",
           "a stop while a half-closed or hung-up client that does not read has output pending"),
    Mutant("hub-full-off-by-one", r9.HubFullOffByOne,
           "the hub is full only above max_clients (> for >=): max_clients + 1 clients served at once",
           "red team 9 (protocol, limits)", "recipe", "load", "the client limit reached and one more client"),
    Mutant("idle-close-abortive", r9.IdleCloseAbortive, "an idle connection is closed abortively (a reset)",
           "red team 9 (core, idle time-out)", "recipe_idle", "endings",
           "an idle time-out and a client idle while owed nothing"),
]

# Issue 10, tenth red team: bugs a developer of such a server plausibly ships (tests/mutants/red10_mutants.py): a
# split line's head lost by echo's fast path, a long line that comes with its newline routed, the queue limit checked
# without the new message, chat lines named after their recipient, a handed-over client's wait index, the wait array's
# room for closing clients, a routines wait that ran routines taken for a time-out, the room for one more AcceptEx
# without the outstanding ones, iocp's owed accept packets never cleared, a stop that resets every connection, and
# the summary's ended and hung-up counts taken late.
MUTANTS += [
    Mutant("echo-drops-buffered-head", r10.EchoDropsBufferedHead,
           "echo's fast path clears the buffered head of a line split over receives without sending it back",
           "red team 10 (protocol, framing)", "recipe", "sizes", "a line split over two receives (echo)"),
    Mutant("long-line-with-newline-routed", r10.LongLineWithNewlineRouted,
           "the line limit is checked only on bytes buffered without a newline: a long line that comes with its "
           "newline is routed",
           "red team 10 (protocol, limits)", "recipe", "sizes",
           "a line over max_line whose bytes past the limit come in one receive with its newline"),
    Mutant("queue-limit-checked-before-adding", r10.QueueLimitCheckedBeforeAdding,
           "max_queued compared with the queue before the new message, not with it: a cut-off one message late",
           "red team 10 (protocol, limits)", "recipe", "flow control",
           "output backed up to max_queued for a client that does not read"),
    Mutant("chat-line-names-recipient", r10.ChatLineNamesRecipient,
           "each copy of a chat line is prefixed with its recipient's name, not its sender's",
           "red team 10 (protocol, chat fan-out)", "recipe_chat", "load", "chat: a line and another member"),
    Mutant("inbox-slot-off-by-one", r10.InboxSlotOffByOne,
           "a client taken from a group's inbox gets its wait-array index (wake event at 0), not its members' index",
           "red team 10 (events, hand-over)", "recipe", "load",
           "a client leaving while a member handed over after it is still served"),
    Mutant("zombies-overflow-wait-array", r10.ZombiesOverflowWaitArray,
           "the wait array's room for closing clients counted without the wake event: 65 events in one wait",
           "red team 10 (events, 64-handle arrays)", "recipe", "load",
           "a full group (63 members) with a closing client whose operation is in flight"),
    Mutant("routine-completion-counts-as-timeout", r10.RoutineCompletionCountsAsTimeout,
           "a routines wait that ran completion routines is handled as one that timed out: a stop gives up early",
           "red team 10 (routines, the wait)", "recipe", "faults",
           "a stop whose cancelled operations complete over more than one wait"),
    Mutant("accept-room-ignores-outstanding", r10.AcceptRoomIgnoresOutstanding,
           "the room for one more AcceptEx counts live connections, not the AcceptEx calls outstanding",
           "red team 10 (accept path, backlog refill)", "recipe_accepts", "load",
           "accepts > 1 with the client limit reached by a burst"),
    Mutant("iocp-owed-never-cleared", r10.IocpOwedNeverCleared,
           "an early-completed accept's packet leaves its slot in the owed table: the slot's next accept is lost",
           "red team 10 (iocp, early accepts)", "recipe", "load",
           "an accept completed early (its packet behind a receive's or a send's), then more clients"),
    Mutant("stop-closes-abortively", r10.StopClosesAbortively,
           "a stop resets every connection, also those owed nothing (a graceful close is due)",
           "red team 10 (core, stop)", "recipe", "faults",
           "a stop while a client has been sent all it is owed, unread"),
    Mutant("ended-counted-when-drained", r10.EndedCountedWhenDrained,
           "a graceful end is counted when the replies are out and the server closes, not at the FIN",
           "red team 10 (core, summary counts)", "recipe", "endings",
           "a FIN while replies are owed, then a reset, cut-off or stop before they are out"),
    Mutant("hung-up-counted-at-fin", r10.HungUpCountedAtFin,
           "a hang-up is counted when its error line is out and the FIN sent, not when the line is found too long",
           "red team 10 (core, summary counts)", "recipe", "endings",
           "a long line whose error line is held back, then a reset, cut-off or stop"),
]


# Issue 10, eleventh red team: bugs a developer of such a server plausibly ships (tests/mutants/red11_mutants.py):
# echo's line splitting across receives (a one-byte tail after the last newline, the bytes known to hold no
# newline), a FIN with nothing owed never closed, iocp's early-accept slots and its accept retry, the routines
# model's marker APCs, and back-pressure's resume with an idle time-out.
MUTANTS += [
    Mutant("echo-one-byte-tail-dropped", r11.EchoOneByteTailDropped,
           "echo's fast path keeps the partial line after a receive's last newline only when it is over one byte",
           "red team 11 (protocol, framing)", "recipe", "sizes",
           "a receive ending one byte after a newline (echo)"),
    Mutant("scanned-counts-newline", r11.ScannedCountsNewline,
           "echo's fast path counts one byte too many as known to hold no newline: a newline beginning the next "
           "receive is skipped when that receive takes the slow path",
           "red team 11 (protocol, framing)", "recipe", "sizes",
           "echo: a receive ending just before a newline, the next beginning with it and holding a long line"),
    Mutant("eof-marked-after-send", r11.EofMarkedAfterSend,
           "at the client's FIN the send path runs before the connection is marked ended: owed nothing, it is "
           "never closed",
           "red team 11 (core, endings)", "recipe", "endings", "a client that half-closes once it has read all"),
    Mutant("iocp-owed-slot-pooled", r11.IocpOwedSlotPooled,
           "an accept slot completed early goes back to the free slots at once, its packet still queued",
           "red team 11 (iocp, early accepts)", "recipe", "load",
           "an accept completed early behind another packet, then more clients"),
    Mutant("iocp-retry-not-woken", r11.IocpRetryNotWoken,
           "a worker's failed AcceptEx post sets the retry flag without waking the controller, which waits forever",
           "red team 11 (iocp, accept retry)", "recipe", "faults",
           "an AcceptEx post failing at once in a worker, then another client"),
    Mutant("marker-does-not-accept", r11.MarkerDoesNotAccept,
           "a marker APC frees a place ahead of the routines without completing the accepts done meanwhile",
           "red team 11 (routines, marker APCs)", "recipe", "load",
           "a connect while an accept's marker is queued"),
    Mutant("marker-never-counted", r11.MarkerNeverCounted,
           "a marker APC never takes its accept off the count ahead of the routines: accepting ends",
           "red team 11 (routines, marker APCs)", "recipe", "load", "two clients, one after the other"),
    Mutant("resume-keeps-idle-clock", r11.ResumeKeepsIdleClock,
           "a client read on at its Resume keeps the idle clock of before it was held back: closed at once",
           "red team 11 (core, back-pressure with idle time-out)", "recipe_bp_idle", "flow control",
           "an idle time-out with back-pressure, a client held back for longer than the time-out"),
    Mutant("cancelled-send-closes-gracefully", r11.CancelledSendClosesGracefully,
           "a close that cancels a send in flight stays graceful: the client reads a FIN after part of a reply",
           "red team 11 (core, closing)", "recipe", "faults",
           "a graceful close (a stop) while a send to a client that does not read is in flight"),
    Mutant("abortive-close-waits-for-receive", r11.AbortiveCloseWaitsForReceive,
           "an abortive close leaves closesocket until its operations are reaped: the receive is never cancelled",
           "red team 11 (core, closing)", "recipe", "flow control",
           "an abortive close (a cut-off) of a client that then sends nothing"),
]


# Issue 10, twelfth red team: bugs a developer of such a server plausibly ships (tests/mutants/red12_mutants.py):
# AcceptEx's address slots without their 16 bytes, an immediate success taken for a failure, the idle time-out (a
# client held back by back-pressure, a newline left in the receive buffer, the wait not shortened to the next
# deadline), the events model's parallel wait arrays, wait index and acceptor pacing, the deferred closesocket of a
# graceful close, and the hung-up client's allowance counted per receive.
MUTANTS += [
    Mutant("acceptex-address-slot-too-small", r12.AcceptExAddressSlotTooSmall,
           "AcceptEx's address lengths are sizeof(sockaddr_in), without the 16 bytes more AcceptEx requires",
           "red team 12 (accepting, AcceptEx buffer sizes)", "recipe", "load", "any client"),
    Mutant("immediate-success-is-failure", r12.ImmediateSuccessIsFailure,
           "a WSARecv or WSASend returning 0 (done at once) taken for a failure: closed, its routine still runs",
           "red team 12 (core, immediate completions)", "recipe", "flow control",
           "a receive with data waiting or a send with room in the window"),
    Mutant("idle-times-out-held-back", r12.IdleTimesOutHeldBack,
           "the idle check does not skip a connection held back by back-pressure: closed as idle while not read",
           "red team 12 (core, idle time-out with back-pressure)", "recipe_bp_idle", "flow control",
           "an idle time-out with back-pressure, a client held back for longer than the time-out"),
    Mutant("moved-event-not-updated", r12.MovedEventNotUpdated,
           "a leaving client's place goes to the last member, but its event stays in the event list's place",
           "red team 12 (events, parallel wait arrays)", "recipe", "endings",
           "a group of two clients or more, one leaving that is not the last taken in"),
    Mutant("last-wait-index-taken-for-closing", r12.LastWaitIndexTakenForClosing,
           "the wait index n (the last of the wake event and members) taken for a closing client's: never served",
           "red team 12 (events, WSAWaitForMultipleEvents index)", "recipe", "load", "any client"),
    Mutant("inbox-taken-acceptor-not-woken", r12.InboxTakenAcceptorNotWoken,
           "a group taking its inbox does not wake the acceptor: the next AcceptEx waits until a client leaves",
           "red team 12 (events, acceptor pacing)", "recipe", "load",
           "a client arriving while another is served"),
    Mutant("idle-newline-in-stale-bytes", r12.IdleNewlineInStaleBytes,
           "a receive's newline looked for in the whole buffer: one left by an earlier receive restarts the idle "
           "clock",
           "red team 12 (core, idle time-out, byte counts)", "recipe_idle", "endings",
           "an idle time-out and a client that sends a line, then dribbles bytes without a newline"),
    Mutant("reaped-socket-never-closed", r12.ReapedSocketNeverClosed,
           "a graceful close waiting for its cancelled receive releases the connection without closing its socket",
           "red team 12 (core, closesocket with pending I/O)", "recipe", "faults",
           "a graceful close with a receive posted: a stop with a client connected"),
    Mutant("idle-wait-not-shortened", r12.IdleWaitNotShortened,
           "the wait after an idle check keeps its time-out (infinite) instead of ending at the next deadline",
           "red team 12 (core, idle time-out)", "recipe_idle", "endings",
           "an idle time-out and a client that goes idle after the check that armed its deadline"),
    Mutant("hangup-allowance-per-receive", r12.HangupAllowancePerReceive,
           "a hung-up client is cut off only when one receive brings more than max_line bytes, not all it sent",
           "red team 12 (protocol, limits)", "recipe", "endings",
           "a hung-up client that sends more than max_line further bytes over several receives"),
]


# Issue 10, thirteenth red team: bugs a developer of such a server plausibly ships, in code paths no earlier mutant
# touches (tests/mutants/red13_mutants.py): back-pressure's hold of a hung-up chat client and the mark of a client
# that ends, the events model's sweep of its closing clients, the idle deadline of the single-table models, the
# back-off after an AcceptEx whose client reset in the backlog, and the "output dropped" test of a close.
MUTANTS += [
    Mutant("hold-ignores-membership", r13.HoldIgnoresMembership,
           "back-pressure holds a hung-up chat client back like a talker: its Resume is not performed for a "
           "connection not open, so it is never read again (its end never seen)",
           "red team 13 (protocol, back-pressure)", "recipe_bp_chat", "flow control",
           "chat with back-pressure: a line over max_line while another member is over the mark"),
    Mutant("end-keeps-over-mark", r13.EndKeepsOverMark,
           "a client that ends (FIN) over the back-pressure mark stays over it: it holds senders back and is "
           "cut off at the stall time-out, where it is owed its replies",
           "red team 13 (protocol, back-pressure, endings)", "recipe_bp_chat", "flow control",
           "chat with back-pressure: a member over the mark half-closes, then reads little or nothing for "
           "longer than the stall time-out"),
    Mutant("zombie-reset-after-reap", r13.ZombieResetAfterReap,
           "a closing client's event is reset after the sweep's looks, not first: a completion between them "
           "is never reaped",
           "red team 13 (events, closing clients)", "recipe", "faults",
           "a close with both operations in flight (a cut-off, a stop with a slow reader), the second "
           "completing between the sweep's look and its reset"),
    Mutant("deadline-replaces-earlier", r13.DeadlineReplacesEarlier,
           "a new idle (or stall) deadline replaces the earliest one waited for, also a later one: an idle "
           "client is closed late",
           "red team 13 (core, idle time-out)", "recipe_idle", "endings",
           "an idle time-out, a client going idle and another connecting shortly before its deadline"),
    Mutant("accept-error-backs-off", r13.AcceptErrorBacksOff,
           "an AcceptEx failing for its client (a reset in the backlog) backs off accept_retry_ms: each reset "
           "delays the clients behind it",
           "red team 13 (accepting, error handling)", "recipe", "load",
           "clients that reset in the listen backlog, then others waiting to be accepted"),
    Mutant("dropped-asked-after-leave", r13.DroppedAskedAfterLeave,
           "whether a close drops queued output is asked after the hub forgot the queue: a FIN after part of "
           "the replies",
           "red team 13 (core, closing)", "recipe", "faults",
           "a stop while a client is owed more than one send, its last send completed and its packet queued"),
]

PROPERTIES.update(GROUP_PROPERTIES)
