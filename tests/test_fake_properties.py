"""Properties of the fake: the stream is exact under any schedule; the same seed
gives the same trace, different seeds different schedules; time is virtual."""

from __future__ import annotations

import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from fakewinsock import WSABUF, FakeConfig, FakePeer, FakeWinsock
from fakewinsock.constants import FALSE, WSA_IO_PENDING, WSA_WAIT_TIMEOUT
from fakewinsock.fuzzing import examples
from fakewinsock.testing import HypothesisChooser, fake_configs
from tests.conformance._harness import Harness

chunks = st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=12)


def exchange(ws: FakeWinsock, to_server: list[bytes], to_peer: list[bytes]) -> tuple[bytes, bytes]:
    """Peer sends ``to_server`` chunk by chunk, server sends ``to_peer`` send by
    send; return what each side received."""
    h = Harness(ws)
    h.start()
    a = h.accept()
    for c in to_server:
        a.peer.send(c)
    got_server = h.recv_all(a.sock, sum(map(len, to_server)))
    for c in to_peer:
        h.send(a.sock, c)
    got_peer = a.peer.recv_exactly(sum(map(len, to_peer)))
    h.finish()
    return got_server, got_peer


@settings(max_examples=examples(60), deadline=None)
@given(seed=st.integers(0, 2**32 - 1), config=fake_configs(), a=chunks, b=chunks)
def test_every_byte_once_in_order_seeded(seed: int, config: FakeConfig, a: list[bytes], b: list[bytes]) -> None:
    got_server, got_peer = exchange(FakeWinsock(seed=seed, config=config), a, b)
    assert got_server == b"".join(a)
    assert got_peer == b"".join(b)


@settings(max_examples=examples(60), deadline=None)
@given(data=st.data(), a=chunks, b=chunks)
def test_every_byte_once_in_order_hypothesis_schedule(data: st.DataObject, a: list[bytes], b: list[bytes]) -> None:
    config = FakeConfig(immediate=0.5, split=0.5, partial_recv=0.5, background=0.5)
    ws = FakeWinsock(config=config, chooser=HypothesisChooser(data))
    got_server, got_peer = exchange(ws, a, b)
    assert got_server == b"".join(a)
    assert got_peer == b"".join(b)


def run_scenario(seed: int) -> FakeWinsock:
    ws = FakeWinsock(seed=seed, config=FakeConfig(split=0.5, partial_recv=0.5, background=0.3))
    exchange(ws, [b"alpha\n", b"beta", b"\ngamma\n"] * 3, [b"one", b"two", b"three"])
    return ws


def test_same_seed_same_trace_byte_for_byte() -> None:
    one, two = run_scenario(42), run_scenario(42)
    assert one.trace.to_text() == two.trace.to_text()
    assert one.trace.to_json() == two.trace.to_json()
    assert len(one.trace) > 50


def test_different_seeds_different_schedules() -> None:
    traces = {run_scenario(seed).trace.to_text() for seed in range(8)}
    assert len(traces) == 8


def test_trace_records_the_life_of_an_operation() -> None:
    ws = run_scenario(3)
    whats = {r.what for r in ws.trace}
    assert {"posted", "completed", "signalled", "fetched", "net"} <= whats
    assert {"pending", "immediate"} & whats
    import json

    records = json.loads(ws.trace.to_json())
    assert records[0]["seq"] == 1 and records[0]["call"] == "WSAStartup"


def test_trace_can_be_written(tmp_path: Path) -> None:
    ws = run_scenario(5)
    ws.trace.write(str(tmp_path / "t.json"))
    ws.trace.write(str(tmp_path / "t.txt"))
    assert (tmp_path / "t.txt").read_text().splitlines()[0].startswith("0000001 t=")
    assert (tmp_path / "t.json").read_text().startswith("[{")


def test_bounded_trace_keeps_the_tail() -> None:
    ws = FakeWinsock(seed=1, config=FakeConfig(trace_limit=10))
    exchange(ws, [b"x" * 10], [b"y"])
    assert len(ws.trace) == 10
    assert ws.trace.count > 10
    assert ws.trace.records()[-1].seq == ws.trace.count


def test_ten_second_timeout_costs_no_real_time() -> None:
    ws = FakeWinsock(seed=1)
    h = Harness(ws)
    h.start()
    ev = h.event()
    t0, v0 = time.perf_counter(), ws.now_ns
    for _ in range(100):
        assert ws.WSAWaitForMultipleEvents(1, [ev], FALSE, 10_000, FALSE) == WSA_WAIT_TIMEOUT
    assert ws.now_ns - v0 >= 100 * 10 * 10**9
    assert time.perf_counter() - t0 < 5.0  # 1000 virtual seconds, a fraction of a real one
    assert ws.SleepEx(10_000, FALSE) == 0
    h.finish()


@settings(max_examples=examples(80), deadline=None)
@given(data=st.data(), window=st.integers(1, 300), up=chunks, down=chunks, size=st.integers(1, 64))
def test_small_windows_both_ways_at_once(data: st.DataObject, window: int, up: list[bytes], down: list[bytes],
                                         size: int) -> None:
    """A window far smaller than the data, both directions busy at once: the
    peer queues everything it sends and reads what arrives in small pieces;
    the server keeps one receive and one send in flight.  Every byte arrives,
    in order, with no deadlock: each sender waiting for window is woken by the
    reader that makes room."""
    config = FakeConfig(window=window, immediate=0.5, split=0.5, partial_recv=0.5, background=0.3)
    ws = FakeWinsock(config=config, chooser=HypothesisChooser(data))
    h = Harness(ws)
    h.start()
    a = h.accept()
    peer = a.peer
    assert isinstance(peer, FakePeer)
    got_peer = bytearray()

    def peer_reads(p: object) -> None:
        while piece := peer.recv_nowait(size):
            got_peer.extend(piece)

    peer.on_change = peer_reads
    for c in up:
        peer.send_nowait(c)
    want_up, want_down = b"".join(up), b"".join(down)
    got_server = bytearray()
    ov_r, ov_s = h.overlapped(), h.overlapped()
    rbuf = bytearray(size)
    sending = list(down)
    recv_busy = send_busy = False
    for _ in range(10_000):
        if not recv_busy and len(got_server) < len(want_up):
            rc, _, _ = ws.WSARecv(a.sock, [WSABUF(size, rbuf)], 1, 0, ov_r, None)
            assert rc == 0 or ws.WSAGetLastError() == WSA_IO_PENDING
            recv_busy = True
        if not send_busy and sending:
            chunk = sending.pop(0)
            rc, _, _ = ws.WSASend(a.sock, [WSABUF(len(chunk), chunk)], 1, 0, ov_s, None)
            assert rc == 0 or ws.WSAGetLastError() == WSA_IO_PENDING
            send_busy = True
        if not recv_busy and not send_busy:
            break
        events = [ov.hEvent for ov, busy in ((ov_r, recv_busy), (ov_s, send_busy)) if busy]
        rc = ws.WSAWaitForMultipleEvents(len(events), events, FALSE, 10_000, FALSE)
        assert rc != WSA_WAIT_TIMEOUT, "deadlock: nothing completed in 10 s"
        for ov in (ov_r, ov_s):
            if (ov is ov_r and recv_busy) or (ov is ov_s and send_busy):
                ok, n, _ = ws.WSAGetOverlappedResult(a.sock, ov, FALSE)
                if ok:
                    ws.WSAResetEvent(ov.hEvent)
                    if ov is ov_r:
                        got_server += rbuf[:n]
                        recv_busy = False
                    else:
                        send_busy = False
    for _ in range(1000):  # the rest of the server's bytes, read by peer_reads as they arrive
        if len(got_peer) >= len(want_down):
            break
        ws.run_for(0.01)
    assert bytes(got_server) == want_up
    assert bytes(got_peer) == want_down
