"""ovserver's line protocol (``ovserver._protocol``): what the mutation run
(issue 18, ``tools/mutation.sh``) found no test asserting."""

from __future__ import annotations

import pytest

from ovserver.__main__ import stopped_line
from ovserver._protocol import Disconnect, Hangup, Hub, Limits, Mode, Send, chat_line, error_line
from tests.ovserver_session import MODELS, Session


def test_deliveries_and_bytes_out_count_every_message_queued() -> None:
    """What ``ovserver simulate`` reports as queued by the server: chat's
    welcomes, then each line once per other member; echo's lines, several in
    one receive (queued as one block) counted one by one."""
    chat = Hub(Mode.CHAT, Limits())
    welcomes = b""
    for cid in (1, 2, 3):
        chat.join(cid, b"c%d" % cid)
        welcomes += chat.take_output(cid, 1 << 20)
    assert (chat.stats.deliveries, chat.stats.bytes_out) == (3, len(welcomes))
    assert chat.receive(1, b"hi\n") == [Send(2), Send(3)]
    assert chat.receive(2, b"yo\n") == [Send(1)]  # 3 has not taken "hi" yet: its Send is still due
    sent = 2 * len(chat_line(b"c1", b"hi\n")) + 2 * len(chat_line(b"c2", b"yo\n"))
    assert (chat.stats.deliveries, chat.stats.bytes_out) == (3 + 4, len(welcomes) + sent)

    echo = Hub(Mode.ECHO, Limits())
    echo.join(7, b"c7")
    assert echo.receive(7, b"one\ntwo\nthr") == [Send(7)]
    assert echo.receive(7, b"ee\n") == []
    assert (echo.stats.deliveries, echo.stats.bytes_out, echo.stats.lines, echo.stats.bytes_in) == (3, 14, 3, 14)
    assert echo.take_output(7, 100) == b"one\ntwo\nthree\n"


def test_joining_twice_or_past_max_clients_is_an_error_naming_it() -> None:
    """The driver's misuse of join: a clear error, and nothing counted."""
    hub = Hub(Mode.ECHO, Limits(max_clients=2))
    hub.join(1, b"a")
    with pytest.raises(ValueError) as twice:
        hub.join(1, b"a again")
    assert str(twice.value) == "client 1 has already joined"
    hub.join(2, b"b")
    with pytest.raises(RuntimeError) as full:
        hub.join(3, b"c")
    assert str(full.value) == "the hub is full (2 clients)"
    assert hub.stats.joined == 2 and len(hub) == 2 and 3 not in hub


def test_a_client_that_left_gets_no_more_chat_lines() -> None:
    """Chat: once the driver says a client is gone (saying it again, or of a
    client never seen, is no error), lines are routed to the others only, and
    nothing is queued or counted for it."""
    hub = Hub(Mode.CHAT, Limits())
    for cid in (1, 2, 3):
        hub.join(cid, b"c%d" % cid)
        hub.take_output(cid, 1 << 20)
    hub.leave(2)
    hub.leave(2)  # the driver may say it twice (a connection closed after its cut-off)
    hub.leave(9)  # or of a client that never joined
    before = hub.stats.deliveries
    assert hub.receive(1, b"hi\n") == [Send(3)]
    assert hub.stats.deliveries == before + 1
    assert hub.queued(2) == 0 and hub.take_output(2, 100) == b"" and 2 not in hub
    assert hub.take_output(3, 100) == chat_line(b"c1", b"hi\n")


def test_a_partial_line_one_byte_over_the_limit_after_whole_lines_hangs_up_at_once() -> None:
    """Echo, max_line 4: one receive holds a whole line and then 5 bytes of the
    next with no newline yet.  The whole line is echoed and the client is hung
    up at once (the partial line can only grow), as when it comes alone; 4
    bytes are still fine."""
    hub = Hub(Mode.ECHO, Limits(max_line=4))
    hub.join(1, b"a")
    hub.join(2, b"b")
    assert hub.receive(1, b"ok\n12345") == [Send(1), Hangup(1, "line too long")]
    assert hub.receive(2, b"ok\n1234") == [Send(2)]
    assert (hub.stats.lines, hub.stats.too_long, hub.stats.discarded) == (2, 1, 5)
    assert hub.take_output(1, 100) == b"ok\n" + error_line(4)
    assert hub.receive(2, b"\n") == [] and hub.take_output(2, 100) == b"ok\n1234\n"


def test_a_line_of_exactly_max_line_bytes_is_routed_on_the_general_path_too() -> None:
    """max_line counts the bytes before the newline: 4 of them pass, 5 hang
    up, also for input that is not ``bytes`` (a bytearray takes the general
    path, not echo's fast one)."""
    hub = Hub(Mode.ECHO, Limits(max_line=4))
    hub.join(1, b"a")
    hub.join(2, b"b")
    assert hub.receive(1, bytearray(b"abcd\n")) == [Send(1)]
    assert hub.receive(2, bytearray(b"abcde\n")) == [Send(2), Hangup(2, "line too long")]
    assert hub.take_output(1, 100) == b"abcd\n"


def test_every_hung_up_client_cut_off_for_sending_on_is_counted() -> None:
    """``hung_up_cut_off`` counts each client hung up for a long line and then
    cut off for sending more than ``max_line`` further bytes: two such clients
    count 2 (a counter that only said "it happened", 1, made serve's stopped
    line report one of them as still "hung up for a line over --max-line").
    Proven by the 39th session's ``_discard``'s ``hung_up_cut_off = 1``."""
    hub = Hub(Mode.ECHO, Limits(max_line=4))
    for cid in (1, 2, 3):
        hub.join(cid, b"c%d" % cid)
        assert hub.receive(cid, b"toolong\n") == [Send(cid), Hangup(cid, "line too long")]
    assert hub.receive(1, b"12345") == [Disconnect(1, "kept sending after being hung up")]
    assert hub.receive(2, b"1234") == []  # max_line further bytes: still only hung up
    assert hub.receive(3, b"12345") == [Disconnect(3, "kept sending after being hung up")]
    assert (hub.stats.too_long, hub.stats.cut_off, hub.stats.hung_up_cut_off) == (3, 2, 2)


@pytest.mark.parametrize("model", MODELS)
def test_two_hung_up_clients_cut_off_count_once_each_in_the_stopped_line(model: str) -> None:
    """What a user sees of it: two clients hung up for a long line that send on
    past ``max_line`` are both reported as cut off, and none as merely hung up."""
    s = Session(model, limits=Limits(max_line=100))
    clients = [s.client(1), s.client(1)]
    for c in clients:
        c.send(2, b"y" * 150 + b"\n")
        c.send(4, b"z" * 200)
    stats = s.run(stop_ms=50)
    assert all(c.reset_by_server for c in clients)
    assert (stats.hung_up, stats.cut_off, stats.hub.hung_up_cut_off) == (2, 2, 2)
    assert stopped_line(stats).endswith(
        "bytes out; 2 cut off (over --max-queued, or sending on after the error line)"), stopped_line(stats)
