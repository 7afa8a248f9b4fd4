"""ovserver: survivors of the ninth session's fresh mutation samples (issue 18,
``tools/mutation_sample.sh`` seed 22), each asserted as what a user of the
server relies on."""

from __future__ import annotations

import pytest

from fakewinsock import FakeWinsock
from fakewinsock._types import SOCKADDR_IN
from fakewinsock.constants import SOCKET_ERROR, TRUE, WSAENOBUFS
from ovserver import Limits, Server, ServerConfig, ServerError, create_server
from ovserver._protocol import Hub, Resume, Stall
from tests.ovserver_session import MODELS, MS, exact
from tests.test_ovserver_mutation_iocp import KeepsOverlapped


class BindFails(FakeWinsock):
    """bind fails with ``error`` (WSAENOBUFS is one of bind's documented
    errors: "not enough buffers are available, too many connections")."""

    error = WSAENOBUFS

    def bind(self, s: int, name: SOCKADDR_IN, namelen: int) -> int:
        self.WSASetLastError(self.error)
        return SOCKET_ERROR


@pytest.mark.parametrize("model", MODELS)
def test_a_bind_error_without_an_explanation_is_reported_with_its_code_alone(model: str) -> None:
    """The messages explain the bind errors a user can act on (in use,
    reserved, not an address here); any other is reported by its code, with
    nothing after it."""
    ws = BindFails(seed=0, config=exact())
    with pytest.raises(ServerError) as info:
        create_server(ws, ServerConfig(port=7125, model=model)).run()
    assert str(info.value) == f"bind to 127.0.0.1:7125 failed (error {WSAENOBUFS})"
    assert ws.open_handles() == []


def test_the_bind_errors_a_user_can_act_on_are_explained() -> None:
    ws = FakeWinsock(seed=0, config=exact())
    first = create_server(ws, ServerConfig(port=7126))
    messages: list[str] = []

    def second_on_the_same_port(srv: object) -> None:
        with pytest.raises(ServerError) as info:
            create_server(ws, ServerConfig(port=7126)).run()
        messages.append(str(info.value))
        first.request_stop()

    first.run(second_on_the_same_port)
    with pytest.raises(ServerError) as info:
        create_server(ws, ServerConfig(host="10.1.2.3", port=0)).run()
    messages.append(str(info.value))
    assert messages == [
        "bind to 127.0.0.1:7126 failed (error 10048: WSAEADDRINUSE, the port is in use)",
        "bind to 10.1.2.3:0 failed (error 10049: WSAEADDRNOTAVAIL, not an address of this machine)",
    ]
    assert ws.leaks() == [] and ws.open_handles() == []


def run_with_a_packet_of_another_key() -> tuple[KeepsOverlapped, ServerError]:
    """An iocp server with two workers and one client; at 2 ms a packet with
    that client's receive OVERLAPPED (in flight) but key 7 (a stop is asked
    for at 10 ms): the fake and the ServerError run() raises."""
    ws = KeepsOverlapped(seed=0, config=exact(0.0))
    server = create_server(ws, ServerConfig(port=0, model="iocp", workers=2))
    c = ws.peer()

    def wrong_key(_: object) -> None:
        assert ws.first_recv is not None
        assert ws.PostQueuedCompletionStatus(ws.port, 0, 7, ws.first_recv) == TRUE

    def ready(srv: Server) -> None:
        assert srv.address is not None
        c.connect_nowait(*srv.address)
        ws.call_at(2 * MS, wrong_key)
        ws.call_at(10 * MS, lambda _: srv.request_stop(signal=ws.signal_event))

    with pytest.raises(ServerError) as info:
        server.run(ready)
    return ws, info.value


def test_a_packet_with_another_key_for_a_receive_in_flight_names_the_operation_and_connection_1() -> None:
    """iocp model: the first client is connection 1, and its completion key
    is 1.  A packet arrives with its receive's OVERLAPPED (in flight: every
    operation pends on this fake) but key 7, as a component sharing the port
    might post: the worker does not take it as that receive's completion;
    run() raises a ServerError naming the operation, the key and the
    connection."""
    ws, error = run_with_a_packet_of_another_key()
    assert str(error) == "a recv packet (key 0x7) for connection 1 that is not in flight (busy=True)"
    keys = [r.detail.rsplit(" ", 1)[-1] for r in ws.trace if r.call == "CreateIoCompletionPort"]
    assert keys == ["concurrency=2", "key=0x0", "key=0x1"]  # the port, the listener, the client


def test_hub_chat_a_member_over_the_mark_is_held_back_by_another_member_over_it() -> None:
    """Back-pressure in chat: a member is not held back by its own queue,
    but it is by any other member's.  Both b and a are over the mark (each
    sent the other a long line, neither read): b's next receive holds b back
    because a is over the mark, though b is too."""
    h = Hub("chat", Limits(max_line=500, max_queued=1000, high_water=100))
    h.join(1, b"a")
    h.join(2, b"b")
    h.join(3, b"c")
    for cid in (1, 2, 3):
        h.take_output(cid, 1000)
    assert Stall(2) in h.receive(1, b"x" * 149 + b"\n")  # to b (and c): b and c over the mark
    h.take_output(3, 1000)
    h.settle(3)
    assert h.hold(1)  # b is over the mark
    assert Stall(1) in h.receive(2, b"y" * 149 + b"\n")  # to a (and c): a over the mark too
    h.take_output(3, 1000)
    h.settle(3)
    assert h.over(1) and h.over(2) and not h.over(3)
    assert h.hold(2) and h.paused(2)  # a is over the mark: b waits, its own queue aside
    assert h.hold(3)  # c, under the mark itself, by a and b


def test_hub_chat_a_member_held_back_by_another_reads_on_when_that_one_drains_though_over_itself() -> None:
    """a and b each sent the other a long line and neither read: both are
    over the mark and both held back.  a drains to half the mark: b reads
    on (only a held it back; its own queue never does), a stays held back
    (b is still over the mark)."""
    h = Hub("chat", Limits(max_line=500, max_queued=1000, high_water=100))
    h.join(1, b"a")
    h.join(2, b"b")
    h.take_output(1, 1000)
    h.take_output(2, 1000)
    h.receive(1, b"x" * 149 + b"\n")
    assert h.hold(1) and h.stats.paused == 1  # stats.paused: each time a sender is held back
    h.receive(2, b"y" * 149 + b"\n")
    assert h.hold(2) and h.over(1) and h.over(2) and h.stats.paused == 2
    h.take_output(1, 1000)
    h.settle(1)
    assert h.pop_resumes() == [Resume(2)] and h.paused(1) and not h.paused(2)


def test_hub_chat_a_hung_up_client_is_never_held_back() -> None:
    """A client hung up for a line too long is no longer a member: while
    another member is over the mark, it is still read from (so that it is
    cut off if it keeps sending), never held back."""
    h = Hub("chat", Limits(max_line=500, max_queued=1000, high_water=100))
    for cid, name in ((1, b"a"), (2, b"b"), (3, b"c")):
        h.join(cid, name)
    for cid in (1, 2, 3):
        h.take_output(cid, 1000)
    h.receive(1, b"x" * 149 + b"\n")  # b (and c) over the mark
    h.take_output(3, 1000)
    h.settle(3)
    assert h.over(2) and not h.over(3)
    h.receive(3, b"z" * 501)  # c hung up: no longer a member
    assert not h.is_member(3) and not h.hold(3) and not h.paused(3)
