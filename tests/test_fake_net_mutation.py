"""The fake's loopback network (``fakewinsock._net``) as a program sees it: what
the mutation run (issue 18, ``tools/mutation.sh``) found no test asserting.

A segment arrives exactly one latency after it was sent, and a connection never
reorders (a split segment arrives as two pieces, in order, neither empty); the
window holds back a sender whose reader does not read, and releases it when the
reader reads; FIN comes behind the data; a reset discards what was not read,
and one that comes after the peer's FIN reads as connection aborted; a
listener refuses connections past its backlog and resets those it never
accepted when it closes; a connection reset before it is accepted meets one of
three outcomes, chosen by the seed.
"""

from __future__ import annotations

import pytest

from fakewinsock import WSABUF, FakeWinsock, ScriptedChooser, sockaddr_in
from fakewinsock.constants import (
    FALSE,
    SO_UPDATE_ACCEPT_CONTEXT,
    SOCKET_ERROR,
    SOL_SOCKET,
    TRUE,
    WSA_IO_PENDING,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_TIMEOUT,
    WSAECONNABORTED,
    WSAECONNRESET,
)
from tests.fake_server import LATENCY, Server, quiet

# ---------------------------------------------------------------- segments


def test_a_segment_arrives_exactly_one_latency_after_it_was_sent() -> None:
    srv = Server(FakeWinsock(config=quiet(syscall_cost=0)))
    s, peer = srv.accept()
    ov, buf = srv.post_recv(s)
    sent_at = srv.ws.now_ns
    peer.send_nowait(b"ping")
    assert srv.wait(ov) == WSA_WAIT_EVENT_0
    assert srv.ws.now_ns == sent_at + LATENCY
    assert srv.ws.WSAGetOverlappedResult(s, ov, FALSE)[:2] == (TRUE, 4) and buf[:4] == b"ping"
    srv.finish()


def test_a_segment_sent_later_never_overtakes_one_sent_earlier() -> None:
    """Latency drawn per segment (here 10-200 us): a later short one still
    arrives after an earlier long one, so the stream is never reordered."""
    ws = FakeWinsock(seed=3, config=quiet(latency=(10_000, 200_000)))
    srv = Server(ws)
    s, peer = srv.accept()
    expected = b"".join(b"%03d," % i for i in range(60))
    for i in range(60):
        peer.send_nowait(b"%03d," % i)
        ws.run_for(0.000005)  # 5 us apart: much less than the latency's spread
    got = b""
    while len(got) < len(expected):
        ok, data, _ = srv.recv(s, 4096)
        assert ok == TRUE and data
        got += data
    assert got == expected
    srv.finish()


@pytest.mark.parametrize("seed", range(6))
def test_a_split_segment_arrives_as_two_nonempty_pieces_in_order(seed: int) -> None:
    ws = FakeWinsock(seed=seed, config=quiet(split=1.0))
    srv = Server(ws)
    s, peer = srv.accept()
    ov, buf = srv.post_recv(s)
    peer.send_nowait(b"0123456789")
    ok, n, _ = srv.result(s, ov)
    assert ok == TRUE and 1 <= n <= 9 and bytes(buf[:n]) == b"0123456789"[:n]
    rest = b""
    while n + len(rest) < 10:
        ok2, data, _ = srv.recv(s)
        assert ok2 == TRUE and data
        rest += data
    assert rest == b"0123456789"[n:]
    srv.finish()


def test_the_simplest_split_sends_one_byte_first() -> None:
    """ScriptedChooser answers every choice with its lowest value: the split is after the first byte."""
    ws = FakeWinsock(chooser=ScriptedChooser([]), config=quiet(split=1.0))
    srv = Server(ws)
    s, peer = srv.accept()
    peer.send_nowait(b"abc")
    assert srv.recv(s) == (TRUE, b"a", 0)
    assert srv.recv(s) == (TRUE, b"bc", 0)
    srv.finish()


def test_a_single_byte_is_never_split() -> None:
    ws = FakeWinsock(seed=1, config=quiet(split=1.0))
    srv = Server(ws)
    s, peer = srv.accept()
    for ch in b"xyz":
        peer.send_nowait(bytes([ch]))
        assert srv.recv(s) == (TRUE, bytes([ch]), 0)
    srv.finish()


# ---------------------------------------------------------------- the window


def test_the_window_holds_back_a_sender_until_the_reader_reads() -> None:
    ws = FakeWinsock(config=quiet(window=1000))
    srv = Server(ws)
    s, peer = srv.accept()
    peer.send_nowait(bytes(2500))
    ws.run_for(0.01)
    assert peer.unsent == 1500  # the window's worth is on its way or delivered, the rest waits
    ok, data, _ = srv.recv(s, 4096)
    assert ok == TRUE and len(data) == 1000
    ws.run_for(0.01)
    assert peer.unsent == 500
    total = len(data)
    while total < 2500:
        ok, data, _ = srv.recv(s, 4096)
        assert ok == TRUE
        total += len(data)
    assert total == 2500 and peer.unsent == 0
    srv.finish()


def test_a_send_larger_than_the_window_pends_until_the_peer_reads() -> None:
    ws = FakeWinsock(config=quiet(window=1000))
    srv = Server(ws)
    s, peer = srv.accept()
    ov = srv.overlapped()
    data = bytes(range(256)) * 6  # 1536 bytes
    rc, _, _ = ws.WSASend(s, [WSABUF(len(data), data)], 1, 0, ov, None)
    assert rc == SOCKET_ERROR and ws.WSAGetLastError() == WSA_IO_PENDING
    assert srv.wait(ov, 100) == WSA_WAIT_TIMEOUT  # the peer reads nothing: it stays pending
    got = peer.recv(4096)
    got += peer.recv_exactly(len(data) - len(got))
    assert got == data
    assert srv.result(s, ov) == (TRUE, len(data), 0)
    srv.finish()


# ---------------------------------------------------------------- FIN and RST


def test_fin_comes_behind_the_data() -> None:
    srv = Server(FakeWinsock(config=quiet()))
    s, peer = srv.accept()
    peer.send_nowait(b"last words")
    peer.close()
    srv.ws.run_for(0.01)
    assert srv.recv(s) == (TRUE, b"last words", 0)
    assert srv.recv(s) == (TRUE, b"", 0)
    srv.finish()


def test_the_end_is_taken_when_the_program_reaps_its_receive_of_0_bytes() -> None:
    """FakeWinsock.end_taken (simulate's chat check): not when the FIN has
    arrived behind data read (fin_read), nor when a receive has completed with
    0 bytes, but once the program has reaped that receive; a zero-length
    receive at the end tells nothing."""
    srv = Server(FakeWinsock(config=quiet()))
    ws = srv.ws
    s, peer = srv.accept()
    peer.send_nowait(b"last words")
    peer.shutdown()
    ws.run_for(0.01)
    assert srv.recv(s) == (TRUE, b"last words", 0)
    assert peer.fin_read and not ws.end_taken(peer)  # no receive has returned the end yet
    ov0, _ = srv.post_recv(s, 0)
    srv.wait(ov0)
    assert srv.result(s, ov0) == (TRUE, 0, 0) and not ws.end_taken(peer)
    ov, _ = srv.post_recv(s)
    srv.wait(ov)
    assert not ws.end_taken(peer)  # completed, not reaped: the program does not know yet
    assert srv.result(s, ov) == (TRUE, 0, 0)
    assert ws.end_taken(peer)
    srv.finish()
    assert ws.end_taken(peer)  # (closed since: it still took the end)


def test_send_completed_ns_is_when_a_send_with_bytes_last_completed() -> None:
    """FakeWinsock.send_completed_ns (the recipe checker's idle account: a
    completed send is the client's activity): 0 until a send moves bytes and
    completes; the time it completed, not when the program reaps it; a send
    that fails (the peer reset the connection) leaves it as it was."""
    ws = FakeWinsock(config=quiet(window=1000))
    srv = Server(ws)
    s, peer = srv.accept()
    assert ws.send_completed_ns(peer) == 0
    ov = srv.overlapped()
    data = b"x" * 1500
    rc, _, _ = ws.WSASend(s, [WSABUF(len(data), data)], 1, 0, ov, None)
    assert rc == SOCKET_ERROR and ws.WSAGetLastError() == WSA_IO_PENDING
    ws.run_for(0.01)
    assert ws.send_completed_ns(peer) == 0  # pending: the peer reads nothing, the window is full
    assert peer.recv(4096)
    ws.run_for(0.01)
    done = ws.send_completed_ns(peer)
    assert 0 < done < ws.now_ns  # completed (the rest went out), not reaped yet
    ws.run_for(0.01)
    assert srv.result(s, ov) == (TRUE, len(data), 0) and ws.send_completed_ns(peer) == done
    ov2 = srv.overlapped()
    rc, _, _ = ws.WSASend(s, [WSABUF(len(data), data)], 1, 0, ov2, None)
    assert rc == SOCKET_ERROR and ws.WSAGetLastError() == WSA_IO_PENDING
    peer.reset()
    srv.wait(ov2)
    assert srv.result(s, ov2)[0] == FALSE and ws.send_completed_ns(peer) == done
    srv.finish()


def test_a_reset_discards_the_data_not_yet_read() -> None:
    srv = Server(FakeWinsock(config=quiet()))
    s, peer = srv.accept()
    peer.send_nowait(b"never read")
    srv.ws.run_for(0.01)
    peer.reset()
    srv.ws.run_for(0.01)
    assert srv.recv(s) == (FALSE, b"", WSAECONNRESET)
    srv.finish()


def test_a_reset_after_the_peers_fin_reads_as_connection_aborted() -> None:
    """Wine's test_shutdown ("send data to a peer which is closed", on Windows):
    a reset that comes after the FIN fails the next receive with WSAECONNABORTED."""
    srv = Server(FakeWinsock(config=quiet()))
    s, peer = srv.accept()
    peer.shutdown()
    srv.ws.run_for(0.01)
    peer.reset()
    srv.ws.run_for(0.01)
    assert srv.recv(s) == (FALSE, b"", WSAECONNABORTED)
    srv.finish()


def test_a_reset_before_the_fin_reads_as_connection_reset() -> None:
    srv = Server(FakeWinsock(config=quiet()))
    s, peer = srv.accept()
    ov, _ = srv.post_recv(s)
    peer.reset()
    assert srv.result(s, ov) == (FALSE, 0, WSAECONNRESET)
    srv.finish()


def test_data_sent_to_a_closed_socket_resets_the_sender() -> None:
    srv = Server(FakeWinsock(config=quiet()))
    s, peer = srv.accept()
    assert srv.close(s) == 0  # graceful: nothing unread
    srv.ws.run_for(0.01)
    assert peer.at_eof and not peer.was_reset
    peer.send_nowait(b"anyone there?")
    srv.ws.run_for(0.01)
    assert peer.was_reset
    srv.finish()


# ---------------------------------------------------------------- listeners


def test_connections_past_the_backlog_are_refused() -> None:
    ws = FakeWinsock(config=quiet(backlog=2))
    srv = Server(ws)
    peers = [ws.peer() for _ in range(3)]
    for p in peers:
        p.connect_nowait("127.0.0.1", srv.port)
    ws.run_for(0.01)
    assert [p.connected for p in peers] == [True, True, False]
    assert [p.refused for p in peers] == [False, False, True]
    accepted = [srv.accept(peer=p)[1] for p in peers[:2]]  # the two queued ones are served
    assert accepted == peers[:2]
    srv.finish()


def test_closing_a_listener_resets_the_connections_it_never_accepted() -> None:
    ws = FakeWinsock(config=quiet())
    srv = Server(ws)
    s, served = srv.accept()
    waiting = [ws.peer() for _ in range(2)]
    for p in waiting:
        p.connect("127.0.0.1", srv.port)
    assert all(p.connected for p in waiting)
    srv.close(srv.lst)
    ws.run_for(0.01)
    assert all(p.was_reset for p in waiting)
    assert not served.was_reset  # an accepted connection is not the listener's any more
    srv.finish()


def reset_in_backlog(ws: FakeWinsock) -> Server:
    """A listening server on ``ws`` and a client that connected and reset
    before the server posted AcceptEx."""
    srv = Server(ws)
    early = ws.peer()
    early.connect("127.0.0.1", srv.port)
    early.reset()
    ws.run_for(0.01)
    return srv


def reset_before_accept_outcome(ws: FakeWinsock) -> str:
    """A client connects and resets before the server posts AcceptEx; then a
    second, well-behaved client connects.  Which outcome did the server meet?"""
    srv = reset_in_backlog(ws)
    acc, ov = srv.post_accept()
    late = ws.peer()
    late.connect("127.0.0.1", srv.port)
    ok, _, err = srv.result(srv.lst, ov)
    if not ok:
        assert err == WSAECONNRESET
        outcome = "AcceptEx fails"
    else:
        assert ws.setsockopt(acc, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, srv.lst, 8) == 0
        late.send(b"hi")
        rok, data, rerr = srv.recv(acc)
        if rok:
            assert data == b"hi"  # the reset one was dropped: this is the late client
            outcome = "dropped"
        else:
            assert rerr == WSAECONNRESET
            outcome = "first receive fails"
    srv.finish()
    return outcome


def test_a_connection_reset_before_it_is_accepted_meets_each_outcome_by_seed() -> None:
    outcomes = {reset_before_accept_outcome(FakeWinsock(seed=seed, config=quiet())) for seed in range(24)}
    assert outcomes == {"dropped", "first receive fails", "AcceptEx fails"}


def test_data_in_flight_when_its_sender_resets_is_lost() -> None:
    """An abortive close discards what has not arrived yet: the receiver sees the reset, never the data."""
    srv = Server(FakeWinsock(config=quiet()))
    s, peer = srv.accept()
    ov, _ = srv.post_recv(s)
    peer.send_nowait(b"lost")
    peer.reset()  # before the segment has arrived
    assert srv.result(s, ov) == (FALSE, 0, WSAECONNRESET)
    srv.finish()


def test_resets_are_counted_once_each() -> None:
    ws = FakeWinsock(config=quiet())
    srv = Server(ws)
    s, peer = srv.accept()
    t, other = srv.accept()
    peer.reset()
    peer_reset_again = ws.stats["resets"]
    srv.ws.run_for(0.001)
    assert peer_reset_again == 1
    srv.close(t)  # graceful: no reset
    assert ws.stats["resets"] == 1
    ws.run_for(0.001)
    other.send_nowait(b"late")  # to a closed socket: the fake's end resets
    ws.run_for(0.001)
    assert ws.stats["resets"] == 2 and other.was_reset
    srv.finish()


# ---------------------------------------------------------------- what the trace says


def _net_records(ws: FakeWinsock) -> list[tuple[str, str]]:
    return [(r.call, r.detail) for r in ws.trace if r.what == "net"]


def test_the_trace_tells_a_connection_s_life_on_the_wire() -> None:
    """Backlog, handshake, each arrival (bytes, when sent), FIN and RST, with
    the ports they went to: what a user reads to follow a schedule."""
    ws = FakeWinsock(config=quiet(syscall_cost=0))
    srv = Server(ws)
    s, peer = srv.accept()
    cport = peer.address[1]
    start = len(_net_records(ws))
    sent_at = ws.now_ns
    peer.send_nowait(b"ping")
    assert srv.recv(s) == (TRUE, b"ping", 0)
    peer.shutdown()
    ws.run_for(0.001)
    peer.reset()
    ws.run_for(0.001)
    assert _net_records(ws)[:start] == [
        ("backlog", f"conn=c1 from={cport} queued=1"),
        ("accept", f"conn=c1 remote=127.0.0.1:{cport}"),
        ("connected", f"peer {cport} conn=c1"),
    ]
    assert _net_records(ws)[start:] == [
        ("arrive", f"conn=c1 to={srv.port} bytes=4 sent={sent_at}"),
        ("peer-fin", f"peer {cport} conn=c1"),
        ("fin", f"conn=c1 to={srv.port}"),
        ("peer-rst", f"peer {cport} conn=c1"),
        ("rst", f"conn=c1 to={srv.port}"),
    ]
    arrive = next(r for r in ws.trace if r.call == "arrive")
    assert arrive.time == sent_at + LATENCY and arrive.thread == 0  # the network, not a program thread
    srv.finish()


def test_the_trace_says_why_a_connection_was_refused_or_reset() -> None:
    ws = FakeWinsock(config=quiet(backlog=1))
    srv = Server(ws)
    first, second = ws.peer(), ws.peer()
    first.connect_nowait("127.0.0.1", srv.port)
    second.connect_nowait("127.0.0.1", srv.port)
    nobody = ws.peer()
    nobody.connect_nowait("127.0.0.1", 1)  # no listener there
    ws.run_for(0.001)
    records = _net_records(ws)
    assert ("refused", f"conn=c2 127.0.0.1:{srv.port} (backlog full)") in records
    assert ("refused", "conn=c3 127.0.0.1:1 (no listener)") in records
    refusals = [r for r in ws.trace if r.call == "refused" and r.detail.startswith("conn=")]  # the network's
    assert [r.handle for r in refusals] == [srv.lst, 0]  # the listener that refused, if any
    assert [r.op for r in refusals] == [0, 0]  # no operation of the program's
    assert ("refused", f"peer {second.address[1]} conn=c2") in records  # and each peer's own record
    s, _ = srv.accept(peer=first)
    assert srv.close(s) == 0
    ws.run_for(0.001)
    first.send_nowait(b"x")
    ws.run_for(0.001)
    assert ("data-after-close", "conn=c1 -> RST") in _net_records(ws)
    srv.finish()


def test_the_trace_records_a_connection_dropped_before_it_was_accepted() -> None:
    """Of the three outcomes of a reset in the backlog, the drop is the one the
    server cannot see: only the trace shows it."""
    for seed in range(24):
        ws = FakeWinsock(seed=seed, config=quiet())
        srv = Server(ws)
        early = ws.peer()
        early.connect("127.0.0.1", srv.port)
        early.reset()
        ws.run_for(0.01)
        dropped = [r for r in ws.trace if r.call == "dropped"]
        if dropped:
            assert dropped[0].handle == srv.lst and dropped[0].detail == "conn=c1 reset before accept"
            srv.finish()
            return
        srv.finish()
    raise AssertionError("no seed of 24 dropped the connection")


# ---------------------------------------------------------------- ephemeral ports


def test_ephemeral_ports_stay_in_the_dynamic_range_and_all_are_used_before_any_twice() -> None:
    """Binding port 0 gives a free port of Windows' dynamic range, 49152-65535:
    never one a socket holds or a connection uses, and the free ones are all
    handed out before one comes round again (sockets closed at once here)."""
    ws = FakeWinsock(config=quiet(syscall_cost=0))
    srv = Server(ws)  # its listener holds a port of the range
    _, peer = srv.accept()  # a connection from 127.0.0.1: its port is taken too
    held = srv.socket()
    assert ws.bind(held, sockaddr_in("127.0.0.1", 0), 16) == 0
    taken = {srv.port, peer.address[1], ws.getsockname(held)[1].port}  # type: ignore[union-attr]
    assert len(taken) == 3
    ports = []
    for _ in range(16384 + 10):
        s = srv.socket()
        assert ws.bind(s, sockaddr_in("127.0.0.1", 0), 16) == 0
        rc, name = ws.getsockname(s)
        assert rc == 0 and name is not None
        ports.append(name.port)
        srv.close(s)
    free = 16384 - len(taken)
    assert all(49152 <= p <= 65535 for p in ports) and not taken & set(ports)
    assert len(set(ports[:free])) == free
    assert ports[free:free + 10] == ports[:10]  # round again, in the same order
    srv.finish()
