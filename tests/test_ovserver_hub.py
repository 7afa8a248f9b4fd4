"""The line protocol's hub: its statistics counted exactly, and the driver's calls in any order.

``HubStats`` is what ``ovserver simulate`` reports about the protocol, so each
count must be exact (each event below happens twice: a count that is set
instead of incremented shows).  The driver may call ``end`` for a client that
has already ended, been hung up or been forgotten, and ask what is queued for
a client that is gone: none of that may fail or count twice.
"""

from __future__ import annotations

from ovserver._protocol import Disconnect, Hangup, Hub, Limits, Mode, Send, error_line


def joined(mode: Mode, limits: Limits, *cids: int) -> Hub:
    hub = Hub(mode, limits)
    for cid in cids:
        hub.join(cid, b"c%d" % cid)
        hub.take_output(cid, 1 << 20)  # chat's welcome
    return hub


def test_too_long_lines_are_counted_and_their_bytes_discarded() -> None:
    hub = joined(Mode.ECHO, Limits(max_line=4), 1, 2)
    assert hub.receive(1, b"ab") == []  # 2 bytes buffered...
    assert hub.receive(1, b"cdefg") == [Send(1), Hangup(1, "line too long")]  # ...then 7 without a newline
    assert hub.receive(2, b"toolong\n") == [Send(2), Hangup(2, "line too long")]
    assert (hub.stats.too_long, hub.stats.lines) == (2, 0)
    assert hub.stats.discarded == 7 + 8
    assert hub.take_output(1, 100) == hub.take_output(2, 100) == error_line(4)


def test_slow_readers_are_counted_once_each() -> None:
    hub = joined(Mode.CHAT, Limits(max_queued=30), 1, 2, 3)
    for _ in range(3):  # 15 bytes to 2 and 3 each ("c1: " + line): the third is over 30
        hub.receive(1, b"x" * 10 + b"\n")
    assert hub.stats.cut_off == 2
    assert 2 not in hub and 3 not in hub and 1 in hub
    assert hub.queued(2) == hub.queued(3) == 0


def test_hung_up_clients_sending_on_are_cut_off_and_counted() -> None:
    hub = joined(Mode.ECHO, Limits(max_line=3), 1, 2)
    for cid in (1, 2):
        hub.receive(cid, b"long!\n")
        assert hub.receive(cid, b"abc") == []  # discarded, up to max_line
        assert hub.receive(cid, b"d") == [Disconnect(cid, "kept sending after being hung up")]
    assert (hub.stats.too_long, hub.stats.cut_off) == (2, 2)
    assert hub.stats.discarded == 2 * (6 + 4)


def test_partial_lines_at_eof_are_discarded_and_counted() -> None:
    hub = joined(Mode.ECHO, Limits(), 1, 2)
    hub.receive(1, b"whole\npart")
    hub.receive(2, b"abc")
    hub.end(1)
    hub.end(2)
    assert hub.stats.discarded == 4 + 3
    assert hub.take_output(1, 100) == b"whole\n"  # what was queued before the end is still sent


def test_end_is_idempotent_and_ignores_unknown_clients() -> None:
    hub = joined(Mode.CHAT, Limits(), 1, 2)
    hub.receive(1, b"partial")
    hub.end(1)
    hub.end(1)
    hub.end(99)
    assert hub.stats.discarded == 7
    assert not hub.is_member(1) and 1 in hub
    assert hub.receive(2, b"hi\n") == []  # 1 no longer hears the chat


def test_end_after_a_hang_up() -> None:
    """A hung-up client then ends its input: no error, and no longer counted
    as a member either way."""
    hub = joined(Mode.CHAT, Limits(max_line=2), 1, 2)
    hub.receive(1, b"abcd\n")
    hub.end(1)
    assert not hub.is_member(1) and 1 in hub
    assert hub.take_output(1, 100) == error_line(2)
    assert hub.receive(1, b"more") == []  # discarded, not an error


def test_nothing_is_queued_for_an_unknown_or_forgotten_client() -> None:
    hub = joined(Mode.ECHO, Limits(), 1)
    hub.receive(1, b"x\n")
    assert hub.queued(1) == 2
    hub.leave(1)
    assert hub.queued(1) == 0 and hub.queued(42) == 0
    assert hub.take_output(1, 10) == b""


def test_a_take_that_splits_a_message_after_whole_ones_counts_every_byte_taken() -> None:
    # Two queued blocks (each receive's whole lines go back as one), then a take that gets the first
    # whole and 2 bytes of the second: what is left queued is exactly the second's other 3 bytes.
    hub = joined(Mode.ECHO, Limits(), 1)
    hub.receive(1, b"ab\ncd\nefgh\n")
    hub.receive(1, b"ijkl\n")
    queued = hub.queued(1)
    taken = hub.take_output(1, queued - 3)
    assert len(taken) == queued - 3 and hub.queued(1) == 3
    assert taken + hub.take_output(1, 100) == b"ab\ncd\nefgh\nijkl\n" and hub.queued(1) == 0


def test_a_queue_of_exactly_max_queued_is_kept() -> None:
    """The output limit's boundary: a client is cut off when what waits for it
    would *exceed* ``max_queued``; exactly ``max_queued`` bytes are kept (echo's
    fast path and chat's routing alike), one more byte cuts it off."""
    for mode, line, target in ((Mode.ECHO, b"x" * 29 + b"\n", 1), (Mode.CHAT, b"x" * 25 + b"\n", 2)):
        hub = joined(mode, Limits(max_queued=30), 1, 2)
        assert hub.receive(1, line) == [Send(target)]  # 30 bytes queued (chat: "c1: " + 26)
        assert hub.queued(target) == 30 and target in hub and hub.stats.cut_off == 0
        assert hub.receive(1, b"\n") == [Disconnect(target, "slow reader: output queue over the limit")]
        assert target not in hub and hub.stats.cut_off == 1
