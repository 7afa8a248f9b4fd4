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
"""

from __future__ import annotations

import pytest

from fakewinsock.testing import ChatModel, ClientScript, Scenario
from ovserver import Limits, Server
from tests.test_checker_red4 import CORRECT, run

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
