"""Unit tests of ovserver's line protocol (ovserver._protocol): no sockets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakewinsock.fuzzing import examples
from ovserver._protocol import (
    Disconnect,
    Hangup,
    Hub,
    HubStats,
    Limits,
    Mode,
    Send,
    chat_line,
    error_line,
    welcome_line,
)


def drain(hub: Hub, cid: int, size: int = 1 << 20) -> bytes:
    out = b""
    while True:
        chunk = hub.take_output(cid, size)
        if not chunk:
            return out
        out += chunk


lines_st = st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=12)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, prev = [], 0
    for p in points + [len(data)]:
        out.append(data[prev:p])
        prev = p
    return out


# ---------------------------------------------------------------- echo


def test_echo_line_comes_back() -> None:
    hub = Hub(Mode.ECHO)
    assert hub.join(1, b"a") == []
    assert hub.receive(1, b"hello\n") == [Send(1)]
    assert drain(hub, 1) == b"hello\n"


def test_echo_waits_for_the_newline() -> None:
    hub = Hub(Mode.ECHO)
    hub.join(1, b"a")
    assert hub.receive(1, b"hel") == []
    assert hub.take_output(1, 100) == b""
    assert hub.receive(1, b"lo\nwor") == [Send(1)]
    assert drain(hub, 1) == b"hello\n"
    hub.receive(1, b"ld\n")
    assert drain(hub, 1) == b"world\n"


def test_coalesced_lines_each_come_back_once() -> None:
    hub = Hub(Mode.ECHO)
    hub.join(1, b"a")
    actions = hub.receive(1, b"a\nbb\n\nccc\n")
    assert actions == [Send(1)]  # one wake-up for a queue that was empty
    assert drain(hub, 1) == b"a\nbb\n\nccc\n"
    assert hub.stats.lines == 4


def test_garbage_bytes_pass_through_unchanged() -> None:
    hub = Hub(Mode.ECHO)
    hub.join(1, b"a")
    garbage = bytes(b for b in range(256) if b != 10)
    hub.receive(1, garbage + b"\n\r\n\x00\n")
    assert drain(hub, 1) == garbage + b"\n\r\n\x00\n"


def test_trailing_partial_line_is_dropped_at_eof() -> None:
    hub = Hub(Mode.ECHO)
    hub.join(1, b"a")
    hub.receive(1, b"done\nhalf")
    hub.end(1)
    assert drain(hub, 1) == b"done\n"  # queued output survives the end
    assert hub.receive(1, b"more\n") == []  # input after EOF is ignored
    assert drain(hub, 1) == b""
    assert hub.stats.discarded == len(b"half") + len(b"more\n")


@given(lines_st, st.lists(st.integers(min_value=0), max_size=20), st.integers(min_value=1, max_value=50))
def test_echo_framing_ignores_chunking(lines: list[bytes], cuts: list[int], take: int) -> None:
    hub = Hub(Mode.ECHO)
    hub.join(7, b"x")
    stream = b"".join(line + b"\n" for line in lines)
    out = b""
    for chunk in chunked(stream, cuts):
        hub.receive(7, chunk)
        out += hub.take_output(7, take)  # a partial take between chunks
    out += drain(hub, 7, take)
    assert out == stream
    assert hub.stats.lines == len(lines)


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.text("ab\n\x00", max_size=14).map(str.encode), max_size=12),
       st.lists(st.integers(0, 20), max_size=12),
       st.integers(1, 8), st.integers(1, 40))
def test_echo_fast_framing_matches_the_line_loop(chunks: list[bytes], takes: list[int], max_line: int,
                                                 max_queued: int) -> None:
    """Bytes take echo's block path, a memoryview the line-by-line loop: the
    same actions, output, stats and limits either way."""
    def run(as_view: bool) -> tuple[list[object], HubStats, bool]:
        hub = Hub(Mode.ECHO, Limits(max_line=max_line, max_queued=max_queued))
        hub.join(1, b"a")
        log: list[object] = []
        for i, chunk in enumerate(chunks):
            log.append(hub.receive(1, memoryview(chunk) if as_view else chunk))
            log.append(hub.take_output(1, takes[i] if i < len(takes) else 1))
        log.append(drain(hub, 1))
        return log, hub.stats, 1 in hub

    assert run(False) == run(True)


# ---------------------------------------------------------------- chat


def test_chat_welcome_then_lines_to_the_others_only() -> None:
    hub = Hub(Mode.CHAT)
    assert hub.join(1, b"alice") == [Send(1)]
    assert hub.join(2, b"bob") == [Send(2)]
    assert drain(hub, 1) == welcome_line(b"alice") == b"* welcome alice\n"
    assert drain(hub, 2) == welcome_line(b"bob")
    hub.join(3, b"carol")
    drain(hub, 3)
    actions = hub.receive(1, b"hi all\n")
    assert actions == [Send(2), Send(3)]
    assert drain(hub, 1) == b""
    assert drain(hub, 2) == drain(hub, 3) == chat_line(b"alice", b"hi all\n") == b"alice: hi all\n"


def test_chat_members_only_while_joined() -> None:
    hub = Hub(Mode.CHAT)
    hub.join(1, b"a")
    hub.receive(1, b"before b\n")
    hub.join(2, b"b")
    hub.receive(1, b"with b\n")
    hub.leave(2)
    hub.receive(1, b"after b\n")
    assert hub.take_output(2, 100) == b""  # gone: nothing queued, nothing kept
    hub.join(3, b"c")
    hub.receive(1, b"x")  # a partial line is not routed ...
    hub.end(3)  # ... and an ended client is no longer a member
    hub.receive(1, b"y\n")
    assert drain(hub, 3) == welcome_line(b"c")
    assert not hub.is_member(3) and 3 in hub


def test_chat_orders_each_senders_lines() -> None:
    hub = Hub(Mode.CHAT)
    for cid in (1, 2, 3):
        hub.join(cid, b"c%d" % cid)
        drain(hub, cid)
    hub.receive(1, b"1a\n1")
    hub.receive(2, b"2a\n")
    hub.receive(1, b"b\n")
    hub.receive(2, b"2b\n")
    assert drain(hub, 3) == b"c1: 1a\nc2: 2a\nc1: 1b\nc2: 2b\n"


# ---------------------------------------------------------------- limits


def test_line_of_exactly_max_line_is_fine() -> None:
    hub = Hub(Mode.ECHO, Limits(max_line=5))
    hub.join(1, b"a")
    assert hub.receive(1, b"12345\n") == [Send(1)]
    assert drain(hub, 1) == b"12345\n"


def test_too_long_line_gets_error_line_and_hangup() -> None:
    hub = Hub(Mode.ECHO, Limits(max_line=5))
    hub.join(1, b"a")
    actions = hub.receive(1, b"ok\n123456\nnever\n")
    assert actions == [Send(1), Hangup(1, "line too long")]
    assert drain(hub, 1) == b"ok\n" + error_line(5)
    assert error_line(5) == b"* error: line longer than 5 bytes\n"
    assert hub.stats.too_long == 1 and hub.stats.lines == 1


def test_endless_line_is_caught_without_a_newline() -> None:
    hub = Hub(Mode.ECHO, Limits(max_line=100))
    hub.join(1, b"a")
    for _ in range(10):
        assert hub.receive(1, b"x" * 10) == []
    actions = hub.receive(1, b"x")  # 101 bytes, no newline
    assert Hangup(1, "line too long") in actions
    # Hung up: input is discarded, up to max_line more bytes, then it is cut off.
    assert hub.receive(1, b"y" * 100) == []
    assert hub.receive(1, b"y") == [Disconnect(1, "kept sending after being hung up")]
    assert 1 not in hub


def test_too_long_chat_line_reaches_nobody() -> None:
    hub = Hub(Mode.CHAT, Limits(max_line=4))
    hub.join(1, b"a")
    hub.join(2, b"b")
    drain(hub, 1)
    drain(hub, 2)
    hub.receive(1, b"toolong\n")
    assert drain(hub, 2) == b""
    assert drain(hub, 1) == error_line(4)
    hub.receive(2, b"hey\n")
    assert drain(hub, 1) == b""  # hung up: no longer a member


def test_slow_reader_is_cut_off_others_unaffected() -> None:
    hub = Hub(Mode.CHAT, Limits(max_queued=100))
    for cid in (1, 2, 3):
        hub.join(cid, b"n%d" % cid)
        drain(hub, cid)
    line = b"x" * 20 + b"\n"  # 25 bytes as "n1: " + line
    for _ in range(4):
        hub.receive(1, line)
        drain(hub, 3)  # 3 reads, 2 never does
    assert hub.queued(2) == 100
    actions = hub.receive(1, line)
    assert Disconnect(2, "slow reader: output queue over the limit") in actions
    assert 2 not in hub
    assert drain(hub, 3) == chat_line(b"n1", line)
    assert 1 in hub and hub.stats.cut_off == 1


def test_echo_client_that_never_reads_is_cut_off() -> None:
    hub = Hub(Mode.ECHO, Limits(max_queued=10))
    hub.join(1, b"a")
    assert hub.receive(1, b"12345\n") == [Send(1)]
    assert hub.receive(1, b"abcde\n") == [Disconnect(1, "slow reader: output queue over the limit")]
    assert hub.receive(1, b"more\n") == []  # forgotten


def test_max_clients() -> None:
    hub = Hub(Mode.ECHO, Limits(max_clients=2))
    hub.join(1, b"a")
    assert not hub.full
    hub.join(2, b"b")
    assert hub.full
    with pytest.raises(RuntimeError):
        hub.join(3, b"c")
    with pytest.raises(ValueError):
        hub.join(2, b"b")
    hub.leave(1)
    assert not hub.full and len(hub) == 1


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Limits(max_line=0)


def test_take_output_splits_and_joins_in_order() -> None:
    hub = Hub(Mode.ECHO)
    hub.join(1, b"a")
    hub.receive(1, b"abc\nde\nfghij\n")
    assert hub.queued(1) == 13
    assert hub.take_output(1, 2) == b"ab"
    assert hub.take_output(1, 5) == b"c\nde\n"
    assert hub.take_output(1, 100) == b"fghij\n"
    assert hub.queued(1) == 0


# ---------------------------------------------------------------- the chat model, against a reference


@settings(max_examples=examples(150), deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["join", "leave", "end", "send", "take"]),
                          st.integers(0, 3), st.binary(max_size=12)), max_size=60))
def test_chat_matches_reference_model(ops: list[tuple[str, int, bytes]]) -> None:
    """Every complete line goes to exactly the members at that moment, in order."""
    hub = Hub(Mode.CHAT, Limits(max_line=8, max_queued=10_000))
    members: list[int] = []
    alive: set[int] = set()
    partial: dict[int, bytes] = {}
    expected: dict[int, bytes] = {}
    got: dict[int, bytes] = {}
    for op, cid, data in ops:
        if op == "join" and cid not in alive and cid not in expected:
            hub.join(cid, b"c%d" % cid)
            alive.add(cid)
            members.append(cid)
            partial[cid] = b""
            expected[cid] = welcome_line(b"c%d" % cid)
            got[cid] = b""
        elif op in ("leave", "end") and cid in alive:
            (hub.leave if op == "leave" else hub.end)(cid)
            if cid in members:
                members.remove(cid)
            if op == "leave":
                alive.discard(cid)
                expected[cid] = got[cid]  # what was queued but not taken is gone
        elif op == "send" and cid in members:
            hub.receive(cid, data)
            buf = partial[cid] + data
            *complete, rest = buf.split(b"\n")
            for line in complete:
                if len(line) > 8:
                    members.remove(cid)
                    expected[cid] += error_line(8)
                    rest = b""
                    break
                for r in members:
                    if r != cid:
                        expected[r] += chat_line(b"c%d" % cid, line + b"\n")
            if len(rest) > 8 and cid in members:
                members.remove(cid)
                expected[cid] += error_line(8)
            partial[cid] = rest
        elif op == "take" and cid in alive:
            got[cid] += hub.take_output(cid, 1 + len(data))
    for cid in alive:
        got[cid] += drain(hub, cid)
    assert got == expected
