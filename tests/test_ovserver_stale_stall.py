"""A stale stall clock: back-pressure must not cut off a recipient that has drained.

Found by ``test_correct_server_passes[events-recipe_bp_chat]`` (a false alarm it
looked like: "reset by the server while sent all"): a chat line of 70 KB goes to a
member with a 64 KB mark.  The hub's actions for that receive are ``Send`` then
``Stall``; the Send's WSASend takes 64 KB of the queue at once (what is left is
under half the mark: no longer over it), and the Stall performed after it then
started the stall clock anyway.  The reader reads fast (within the 100 ms it has
most of the 64 KB send: less than half the mark is owed and unread), but the
send is still in flight at the deadline, so nothing stopped the clock and the
server cut the member off.  The checker's rule (a reset only while more than half
the mark is owed and unread) was right: a server's queue never counts an
overlapped send's bytes (they leave the queue when the send is posted), so a
queue over half the mark always means more than half the mark unread.

Also here: a member hung up (a line over max_line) while over the mark is no
longer over it, so its stall clock stops too (a suspected bug, not found:
the receive's ``_after_hub`` clears it).  A directed test on the Session, not
the checker: the checker allows a reset while more than half the mark is owed
and unread, hung up or not.
"""

from __future__ import annotations

import pytest

from fakewinsock import FakeWinsock
from fakewinsock.testing import ChatModel, ClientScript, Scenario
from ovserver import Limits, Server, ServerStats
from ovserver._protocol import chat_line, error_line, welcome_line
from tests.mutants.red4_mutants import StallClockNotCleared
from tests.ovserver_session import MODELS, Client, Session, exact
from tests.test_checker_red4 import CORRECT, run
from tests.test_ovserver_backpressure import lines, read_slowly

_MS = 1_000_000
LIMITS = Limits(max_line=100_000, max_queued=256 * 1024, high_water=64 * 1024)
STALL_MS = 100


def _fast_reader_of_a_long_line() -> Scenario:
    """Client 0 sends one 70 000-byte line; client 1 reads 500 bytes a millisecond
    (window 1000 bytes): about 50 KB in the stall time-out, the 64 KB send still pending."""
    talker = ClientScript.of(b"L" * 70_000, linger_ns=300 * _MS)
    reader = ClientScript.of(b"hi", read_bytes=500, read_every_ns=_MS, linger_ns=300 * _MS)
    return Scenario((talker, reader), window=1000)


@pytest.mark.parametrize("cls", CORRECT, ids=lambda c: c.model)
def test_a_recipient_that_drained_before_its_stall_is_not_cut_off(cls: type[Server]) -> None:
    model = ChatModel(max_line=LIMITS.max_line, max_queued=LIMITS.max_queued, high_water=LIMITS.high_water)
    for seed in range(3):
        assert run(cls, _fast_reader_of_a_long_line(), LIMITS, model, seed, "chat", STALL_MS) is None, seed


# ---------------------------------------------------------------- hung up while over the mark

_HUNG_LIMITS = Limits(max_line=1000, max_queued=64 * 1024, high_water=16 * 1024)
_HUNG_STALL_MS = 300


def _hung_up_while_over_the_mark(model: str, cls: type[Server] | None = None) -> tuple[ServerStats, Client, bytes]:
    """Chat: a member that reads nothing until 500 ms goes over the mark (its
    stall clock starts: due at about 310 ms; the talker is held back), then at
    100 ms sends a line over max_line: hung up, it no longer counts as over the
    mark.  It reads from 500 ms on.  The statistics, the member, and all the
    talker's lines as the member hears them (between its welcome and its error
    line it may get only a prefix of these: those routed before its hang-up)."""
    ws = FakeWinsock(seed=0, config=exact(1.0, window=16 * 1024, max_calls=400_000))
    s = Session(model, "chat", ws=ws, workers=2, limits=_HUNG_LIMITS, stall_timeout_ms=_HUNG_STALL_MS)
    if cls is not None:
        s.server = cls(ws, s.config)
    member = s.client(1.0, reads=False)
    talker = s.client(2.0)
    talker.send(10.0, b"".join(lines(b"t", 4000)))
    member.send(100.0, b"x" * (_HUNG_LIMITS.max_line + 1))
    over: list[bool] = []
    s.at(99.0, lambda: over.append(s.server.stats.hub.paused > 0 and not member.peer.was_reset))
    read_slowly(s, member, 500.0, 1500.0, size=1 << 20)
    stats = s.run(stop_ms=1600)
    assert over == [True]  # the premise: it held the talker back (over the mark) before its hang-up
    heard = b"".join(chat_line(talker.name, ln) for ln in lines(b"t", 4000))
    return stats, member, heard


@pytest.mark.parametrize("model", MODELS)
def test_a_member_hung_up_while_over_the_mark_is_not_cut_off_at_its_stall_deadline(model: str) -> None:
    """Hung up (its line over max_line), a member is no longer over the mark
    (:meth:`Hub._too_long`), so its stall clock stops (``Server._after_hub``
    after the receive: its send is still pending, so the ``Hangup``'s
    ``_post_send`` does not get that far): it reads its replies, the error
    line, then the server's FIN, long after its old stall deadline.  Proof:
    without the ``_after_hub`` after the receive in ``Server._completed``, or
    without the clock's clearing in ``_after_hub``, each model reset it at
    about 310 ms (stalled 1, nothing read)."""
    stats, member, heard = _hung_up_while_over_the_mark(model)
    assert stats.stalled == 0 and stats.cut_off == 0 and stats.hung_up == 1
    assert member.closed_by_server and not member.reset_by_server
    data = bytes(member.data)
    welcome, error = welcome_line(member.name), error_line(_HUNG_LIMITS.max_line)
    assert data.startswith(welcome) and data.endswith(error)
    got = data[len(welcome):-len(error)]
    assert len(got) > _HUNG_LIMITS.high_water and heard.startswith(got)  # what was queued, in order


def test_a_server_whose_stall_clock_is_not_cleared_cuts_the_hung_up_member_off() -> None:
    """Proof with the mutant stall-clock-not-cleared (routines)."""
    stats, member, _ = _hung_up_while_over_the_mark("routines", StallClockNotCleared)
    assert stats.stalled == 1 and member.reset_by_server
