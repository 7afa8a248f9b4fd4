"""The fake's loopback network (``fakewinsock._net``): more of what the mutation
run (issue 18, ``tools/mutation.sh``) found no test asserting.

The window is exact for the fake's own sockets too (a WSASend never puts one
byte more on the wire than the reader has room for); the question a reset in
the backlog asks of the chooser is named and has three answers, each with its
documented outcome, equally likely; a segment or RST that reaches an end that
has already reset itself is simply lost (no second RST, nothing delivered,
nothing in the trace); the network's trace records carry no socket handle,
no operation and the network's thread.
"""

from __future__ import annotations

import pytest

from fakewinsock import LINGER, WSABUF, Chooser, FakeWinsock, sockaddr_in
from fakewinsock.constants import (
    FALSE,
    SD_SEND,
    SO_LINGER,
    SOCKET_ERROR,
    SOL_SOCKET,
    TRUE,
    WSA_IO_PENDING,
    WSA_WAIT_TIMEOUT,
)
from tests.fake_server import Server, quiet
from tests.test_fake_net_mutation import reset_before_accept_outcome, reset_in_backlog


class ByLabel(Chooser):
    """The simplest answer to every question but those named in ``answers``;
    remembers every question asked (label, lowest, highest)."""

    def __init__(self, answers: dict[str, int] | None = None) -> None:
        self.answers = answers or {}
        self.asked: list[tuple[str, int, int]] = []

    def integer(self, lo: int, hi: int, label: str) -> int:
        self.asked.append((label, lo, hi))
        return self.answers.get(label, lo)


# ---------------------------------------------------------------- the window, from a socket


def test_a_wsasend_one_byte_over_the_window_keeps_that_byte_until_the_peer_reads() -> None:
    """Window 1000, a WSASend of 1001 bytes to a peer that reads nothing: 1000
    arrive, the last byte waits (and the send stays pending) until the peer reads."""
    ws = FakeWinsock(config=quiet(window=1000))
    srv = Server(ws)
    s, peer = srv.accept()
    ov = srv.overlapped()
    data = bytes(range(256)) * 3 + bytes(range(233))  # 1001 bytes
    rc, _, _ = ws.WSASend(s, [WSABUF(len(data), data)], 1, 0, ov, None)
    assert rc == SOCKET_ERROR and ws.WSAGetLastError() == WSA_IO_PENDING
    assert srv.wait(ov, 50) == WSA_WAIT_TIMEOUT
    assert peer.available() == 1000
    got = peer.recv_nowait(300)
    assert srv.wait(ov, 50) == 0  # the last byte went: the send is complete
    ws.run_for(0.01)
    assert peer.available() == 701  # and it arrived
    got += peer.recv_nowait(4096)
    assert got == data
    assert srv.result(s, ov) == (TRUE, len(data), 0)
    srv.finish()


def test_a_wsasend_of_one_byte_into_a_full_window_pends() -> None:
    """Window 1000: a first WSASend of 1000 bytes fills it (and completes: all
    of it is on the wire); a second one of a single byte pends, the peer holds
    1000, and the byte follows when the peer reads."""
    ws = FakeWinsock(config=quiet(window=1000))
    srv = Server(ws)
    s, peer = srv.accept()
    first, last = srv.overlapped(), srv.overlapped()
    data = bytes(i % 253 for i in range(1000))
    ws.WSASend(s, [WSABUF(len(data), data)], 1, 0, first, None)
    assert srv.result(s, first) == (TRUE, 1000, 0)
    rc, _, _ = ws.WSASend(s, [WSABUF(1, b"!")], 1, 0, last, None)
    assert rc == SOCKET_ERROR and ws.WSAGetLastError() == WSA_IO_PENDING
    assert srv.wait(last, 50) == WSA_WAIT_TIMEOUT
    assert peer.available() == 1000
    got = peer.recv_nowait(4096)
    assert srv.result(s, last) == (TRUE, 1, 0)
    got += peer.recv_exactly(1)
    assert got == data + b"!"
    srv.finish()


@pytest.mark.parametrize("reads", [[(600, 1000)], [(400, 600), (100, 1000)]])
def test_a_reader_that_reads_part_lets_exactly_that_much_more_in(reads: list[tuple[int, int]]) -> None:
    """Window 1000, 3000 bytes sent: the peer holds 1000 unread; after it reads
    600 (worth a wake-up: at least half the window), 600 more come, never more.
    After it reads 400 (less than half the window) nothing comes: the sender
    waits for a worthwhile window (silly-window avoidance); once it has read
    100 more (500 free, half the window), 500 come at once."""
    ws = FakeWinsock(config=quiet(window=1000))
    srv = Server(ws)
    s, peer = srv.accept()
    ov = srv.overlapped()
    data = bytes(i % 251 for i in range(3000))
    rc, _, _ = ws.WSASend(s, [WSABUF(len(data), data)], 1, 0, ov, None)
    assert rc == SOCKET_ERROR and ws.WSAGetLastError() == WSA_IO_PENDING
    ws.run_for(0.01)
    assert peer.available() == 1000
    got = b""
    for n, held in reads:
        got += peer.recv_nowait(n)
        ws.run_for(0.01)
        assert peer.available() == held
    while len(got) < len(data):
        got += peer.recv(4096)
    assert got == data
    assert srv.result(s, ov) == (TRUE, len(data), 0)
    srv.finish()


# ---------------------------------------------------------------- splits


def test_a_two_byte_segment_can_be_split_and_the_chooser_is_asked_by_name() -> None:
    """With a split chance between 0 and 1 the chooser is asked "split" (a
    boolean: an integer below the chance in millionths) and then "split_at",
    1 to n-1; two bytes are the shortest segment that can be split.  Each
    piece's latency is asked as "latency", in the configured range."""
    chooser = ByLabel()  # lowest answers: split, after the first byte
    ws = FakeWinsock(chooser=chooser, config=quiet(split=0.5, latency=(10_000, 20_000)))
    srv = Server(ws)
    s, peer = srv.accept()
    chooser.asked.clear()
    peer.send_nowait(b"ab")
    assert srv.recv(s) == (TRUE, b"a", 0)
    assert srv.recv(s) == (TRUE, b"b", 0)
    asked = [q for q in chooser.asked if str(q[0]).startswith("split")]
    assert asked == [("split", 0, 999_999), ("split_at", 1, 1)]
    assert [q for q in chooser.asked if q[0] not in ("split", "split_at", "delay")] == [("latency", 10_000, 20_000)] * 2
    srv.finish()


def test_a_sender_waiting_for_room_is_woken_once_not_on_every_read() -> None:
    """A peer whose bytes wait for the window is woken (its ``on_change``, what
    scripted clients run on) when the reader makes room; once it is no longer
    waiting, the reader's further reads do not wake it."""
    ws = FakeWinsock(config=quiet(window=1000))
    srv = Server(ws)
    s, peer = srv.accept()
    wakes: list[int] = []
    peer.on_change = lambda p: wakes.append(ws.now_ns)
    peer.send_nowait(bytes(100))  # fits: the peer never waits for room
    assert srv.recv(s, 100) == (TRUE, bytes(100), 0)
    ws.run_for(0.01)
    assert wakes == []
    peer.send_nowait(bytes(1500))
    ws.run_for(0.01)
    assert peer.unsent == 500 and wakes == []
    ok, data, _ = srv.recv(s, 1000)  # room for the rest: the peer is woken and sends it
    assert ok == TRUE and len(data) == 1000
    ws.run_for(0.01)
    assert peer.unsent == 0 and len(wakes) == 1
    ok, data, _ = srv.recv(s, 4096)
    assert ok == TRUE and len(data) == 500
    ws.run_for(0.01)
    assert len(wakes) == 1  # it was not waiting for room: no wake-up
    srv.finish()


# ---------------------------------------------------------------- a reset in the backlog


def test_a_reset_in_the_backlog_asks_the_chooser_one_named_question_of_three_answers() -> None:
    """A chooser that scripts schedules by label (as the Chooser docstring
    invites) sees the question "reset-before-accept" with the answers 0-2, and
    each answer has its outcome: 0 (the simplest, where Hypothesis shrinks to)
    drops the connection, 1 accepts it and fails its first receive, 2 fails
    the AcceptEx."""
    def outcome(chooser: ByLabel) -> str:
        return reset_before_accept_outcome(FakeWinsock(chooser=chooser, config=quiet()))

    plain = ByLabel()
    assert outcome(plain) == "dropped"
    assert [q for q in plain.asked if q[0] == "reset-before-accept"] == [("reset-before-accept", 0, 2)]
    assert outcome(ByLabel({"reset-before-accept": 1})) == "first receive fails"
    assert outcome(ByLabel({"reset-before-accept": 2})) == "AcceptEx fails"


def test_the_three_outcomes_of_a_reset_in_the_backlog_are_equally_likely() -> None:
    """Over 240 seeds each outcome comes about a third of the time (the seed
    picks among the outcomes Windows servers meet, none favoured)."""
    counts: dict[str, int] = {}
    for seed in range(240):
        ws = FakeWinsock(seed=seed, config=quiet())
        srv = reset_in_backlog(ws)
        _, ov = srv.post_accept()
        ws.run_for(0.01)
        if srv.wait(ov, 0) == WSA_WAIT_TIMEOUT:
            outcome = "dropped"
        else:
            ok, _, _ = ws.WSAGetOverlappedResult(srv.lst, ov, FALSE)
            outcome = "accepted" if ok else "AcceptEx fails"
        counts[outcome] = counts.get(outcome, 0) + 1
        srv.finish()
    assert set(counts) == {"dropped", "accepted", "AcceptEx fails"}
    assert all(55 <= n <= 105 for n in counts.values()), counts


# ---------------------------------------------------------------- what reaches an end already reset


def _abort(ws: FakeWinsock, srv: Server, s: int) -> None:
    """closesocket with SO_LINGER (1, 0): an abortive close, RST at once."""
    lg = LINGER(1, 0)
    assert ws.setsockopt(s, SOL_SOCKET, SO_LINGER, lg, 4) == 0
    assert srv.close(s) == 0


def test_data_that_reaches_a_socket_after_its_abortive_close_is_lost_quietly() -> None:
    """The peer's bytes are on the wire when the server aborts: they meet an end
    that already sent its RST; no second RST, and the trace shows no data-after-close."""
    ws = FakeWinsock(config=quiet())
    srv = Server(ws)
    s, peer = srv.accept()
    peer.send_nowait(b"in flight")
    _abort(ws, srv, s)  # before the segment has arrived
    ws.run_for(0.01)
    assert peer.was_reset
    assert ws.stats["resets"] == 1
    assert [r.call for r in ws.trace if r.what == "net" and r.call == "data-after-close"] == []
    srv.finish()


def test_a_fin_that_reaches_a_socket_after_its_abortive_close_is_lost_quietly() -> None:
    """The peer's FIN is on the wire when the server aborts: the server's end,
    already reset, takes no FIN (no fin record at the server's port)."""
    ws = FakeWinsock(config=quiet())
    srv = Server(ws)
    s, peer = srv.accept()
    peer.shutdown()
    _abort(ws, srv, s)  # before the FIN has arrived
    ws.run_for(0.01)
    assert peer.was_reset
    assert [r.detail for r in ws.trace if r.what == "net" and r.call == "fin"] == []
    srv.finish()


def test_a_shutdown_then_a_close_sends_one_fin() -> None:
    """shutdown(SD_SEND) sends the FIN; the closesocket after it sends no second one."""
    ws = FakeWinsock(config=quiet())
    srv = Server(ws)
    s, peer = srv.accept()
    assert ws.shutdown(s, SD_SEND) == 0
    ws.run_for(0.01)
    assert peer.at_eof
    assert srv.close(s) == 0
    ws.run_for(0.01)
    assert [r.detail for r in ws.trace if r.what == "net" and r.call == "fin"] == [f"conn=c1 to={peer.address[1]}"]
    srv.finish()


def test_when_both_ends_abort_at_once_neither_rst_is_delivered() -> None:
    """Each end's RST reaches an end that has already reset itself: the network
    delivers neither (no rst record), and two resets are counted."""
    ws = FakeWinsock(config=quiet())
    srv = Server(ws)
    s, peer = srv.accept()
    start = len(ws.trace.records())
    peer.reset()
    _abort(ws, srv, s)
    ws.run_for(0.01)
    assert ws.stats["resets"] == 2
    assert [r.call for r in ws.trace.records()[start:] if r.what == "net" and r.call == "rst"] == []
    srv.finish()


# ---------------------------------------------------------------- the network's trace records


def test_the_network_s_trace_records_name_no_socket_operation_or_program_thread() -> None:
    """The backlog, arrive, fin, rst, data-after-close and dropped records are the
    network's: no operation (op 0), thread 0, and no handle but the listener's
    (the one a connection queued at, or was dropped from)."""
    ws = FakeWinsock(chooser=ByLabel(), config=quiet())  # the simplest schedule: a reset in the backlog is dropped
    srv = Server(ws)
    s, peer = srv.accept()
    peer.send_nowait(b"hi")
    assert srv.recv(s) == (TRUE, b"hi", 0)  # an arrive record
    assert srv.close(s) == 0  # a fin record (at the peer)
    ws.run_for(0.001)
    peer.send_nowait(b"x")  # to a closed socket: data-after-close, then the fake's end resets
    ws.run_for(0.001)
    early = ws.peer()
    early.connect("127.0.0.1", srv.port)
    early.reset()
    ws.run_for(0.01)
    kinds = ("backlog", "arrive", "fin", "rst", "data-after-close", "dropped")
    records = {r.call: r for r in ws.trace if r.what == "net" and r.call in kinds}
    assert set(records) == set(kinds)
    for kind in ("arrive", "fin", "rst"):
        assert (records[kind].handle, records[kind].op, records[kind].thread) == (0, 0, 0), kind
    assert (records["data-after-close"].handle, records["data-after-close"].op) == (0, 0)
    for kind in ("backlog", "dropped"):  # the listener's
        assert (records[kind].handle, records[kind].op, records[kind].thread) == (srv.lst, 0, 0), kind
    srv.finish()


# ---------------------------------------------------------------- a peer's state


def test_a_peer_s_state_reads_as_booleans_before_and_after_the_end() -> None:
    """FakePeer's connected, refused, was_reset, at_eof and closed are bools (as typed), not
    merely truthy: scripts compare and print them."""
    ws = FakeWinsock(config=quiet())
    srv = Server(ws)
    s, peer = srv.accept()
    assert (peer.connected, peer.refused, peer.was_reset, peer.at_eof, peer.closed) == (True, False, False, False,
                                                                                       False)
    assert all(type(v) is bool for v in (peer.connected, peer.refused, peer.was_reset, peer.at_eof, peer.closed))
    assert srv.close(s) == 0
    ws.run_for(0.01)
    assert (peer.at_eof, peer.was_reset) == (True, False)
    assert type(peer.at_eof) is bool
    srv.finish()


def test_with_no_latency_and_free_calls_a_segment_arrives_the_instant_it_is_sent() -> None:
    """latency (0, 0) and syscall_cost 0: virtual time never moves, and the
    first segment arrives at time 0, when it was sent."""
    ws = FakeWinsock(config=quiet(latency=(0, 0), syscall_cost=0))
    srv = Server(ws)
    s, peer = srv.accept()
    peer.send_nowait(b"now")
    assert srv.recv(s) == (TRUE, b"now", 0)
    arrive = next(r for r in ws.trace if r.call == "arrive")
    assert (arrive.time, ws.now_ns) == (0, 0)
    srv.finish()


def test_peers_move_to_the_next_loopback_address_when_one_has_used_its_ports() -> None:
    """Simulated peers stand for other hosts: after the 16384 dynamic ports of
    127.0.0.1 (less those the server holds) they come from 127.0.0.2, port 49152 up."""
    ws = FakeWinsock(config=quiet(syscall_cost=0))
    srv = Server(ws)  # holds one port of 127.0.0.1's range
    addresses = []
    for _ in range(16384):
        p = ws.peer()
        p.connect_nowait("127.0.0.1", 1)  # nobody listens there: only the source address matters
        addresses.append(p.address)
    assert {h for h, _ in addresses[:16383]} == {"127.0.0.1"} and srv.port not in {p for _, p in addresses[:16383]}
    assert addresses[16383] == ("127.0.0.2", 49152)
    ws.run_for(0.01)
    srv.finish()


def test_a_connection_to_another_loopback_address_is_accepted_on_that_address() -> None:
    """A listener bound to 127.0.0.2: the accepted socket's local address is
    127.0.0.2 (getsockname), the address the client connected to."""
    ws = FakeWinsock(config=quiet())
    srv = Server(ws)
    other = srv.socket()
    assert ws.bind(other, sockaddr_in("127.0.0.2", 0), 16) == 0 and ws.listen(other, 5) == 0
    port = ws.getsockname(other)[1].port  # type: ignore[union-attr]
    srv.lst, srv.port = other, port
    peer = ws.peer()
    peer.connect_nowait("127.0.0.2", port)
    s, _ = srv.accept(peer=peer)
    rc, name = ws.getsockname(s)
    assert rc == 0 and name is not None and (name.host, name.port) == ("127.0.0.2", port)
    srv.finish()
