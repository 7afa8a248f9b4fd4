"""ovserver against clients that never read, on the fake, with Windows' and Wine's
closesocket (``FakeConfig.close_keeps_sends``): stopping is bounded, and a
client cut off by a limit is reset and frees its place at once."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ovserver._core
from fakewinsock import FakeConfig, FakeWinsock
from ovserver import Limits, Server
from tests.test_ovserver_server import MS, Client, run, stop_at

MODELS = list(ovserver._core.MODELS)  # every model, iocp included
S = 1000 * MS


def hostile_fake(keep: bool) -> FakeConfig:
    return FakeConfig(window=8192, close_keeps_sends=keep)


def deaf_flood(ws: FakeWinsock, n: int, at_ns: int, lines: int, line: bytes) -> list[Client]:
    """``n`` clients that each send ``lines`` lines and never read."""
    out = []
    for i in range(n):
        t = at_ns + i * 20_000
        c = Client(ws, at_ns=t, reads=False)
        for k in range(lines):
            c.send_at(t + MS + k * 50_000, line)
        out.append(c)
    return out


@pytest.mark.parametrize("keep", [False, True], ids=["windows", "wine"])
@pytest.mark.parametrize("model", MODELS)
def test_stop_is_bounded_while_non_readers_hold_sends(model: str, keep: bool) -> None:
    """Stop while clients that never read hold sends in flight: the server
    returns within 2 s of virtual time, having cancelled those sends.  Failed
    with Wine's closesocket before sends were cancelled before closing (the
    graceful close left each send pending: DeadlockError)."""
    stop_ns = 50 * MS
    deaf: list[Client] = []

    def script(ws: FakeWinsock, server: Server) -> None:
        deaf.extend(deaf_flood(ws, 10, 0, 40, b"w" * 1000 + b"\n"))  # 40 KB each: more than the window
        stop_at(ws, server, stop_ns)

    ws, stats = run(script, model=model, fake=hostile_fake(keep), limits=Limits(max_queued=1 << 20))
    assert ws.now_ns - stop_ns < 2 * S
    assert stats.closed_at_stop == 10
    assert stats.cancelled == 10  # every one had a send in flight, cancelled before its close
    assert stats.abandoned == 0
    ws.run_for(0.01)  # the resets on the wire arrive
    assert all(c.peer.was_reset for c in deaf)  # the data was lost, and they are told so


@pytest.mark.parametrize("keep", [False, True], ids=["windows", "wine"])
@pytest.mark.parametrize("model", MODELS)
def test_non_readers_cut_off_free_their_places(model: str, keep: bool) -> None:
    """70 clients that send and never read are cut off by max_queued; each sees a
    reset, and a fresh client that comes after them is served within 5 s.
    With the events model and Wine's closesocket, this failed while a cut-off
    connection kept its place until its send completed (never): the fresh
    client waited in the backlog until the stop."""
    fresh_at = 200 * MS
    deaf: list[Client] = []
    fresh: list[Client] = []
    echoed_at: list[int] = []

    def script(ws: FakeWinsock, server: Server) -> None:
        deaf.extend(deaf_flood(ws, 70, 0, 60, b"v" * 500 + b"\n"))

        def got(c: Client) -> None:
            if c.data.endswith(b"\n") and not echoed_at:
                echoed_at.append(ws.now_ns)
        f = Client(ws, at_ns=fresh_at, on_data=got)
        f.send_at(fresh_at + MS, b"hello\n")
        fresh.append(f)
        stop_at(ws, server, fresh_at + 10 * S)

    ws, stats = run(script, model=model, fake=hostile_fake(keep), limits=Limits(max_queued=4096))
    assert stats.cut_off == 70
    ws.run_for(0.01)
    assert all(c.peer.was_reset for c in deaf)
    assert bytes(fresh[0].data) == b"hello\n"
    assert echoed_at and echoed_at[0] - fresh_at < 5 * S


def test_closing_groups_beyond_the_wait_array_are_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Events model, on a stack where cancelling does not take (CancelIoEx finds
    nothing) and closing keeps sends (Wine): 63 cut-off connections stay
    *closing* while 63 new clients fill the array, so most closing groups do
    not fit in the wait; when their clients finally reset, every send is reaped
    (no leak at WSACleanup) and every new client was served meanwhile."""
    fresh: list[Client] = []
    deaf: list[Client] = []

    def prepare(ws: FakeWinsock) -> None:
        monkeypatch.setattr(ws, "CancelIoEx", lambda hFile, lpOverlapped: 0)

    def script(ws: FakeWinsock, server: Server) -> None:
        deaf.extend(deaf_flood(ws, 63, 0, 60, b"u" * 500 + b"\n"))
        for i in range(63):
            c = Client(ws, at_ns=300 * MS + i * 10_000)
            c.send_at(400 * MS, b"late %d\n" % i)
            fresh.append(c)
        def reset_all(_: object) -> None:
            for d in deaf:
                d.peer.reset()
        ws.call_at(2 * S, reset_all)
        stop_at(ws, server, 3 * S)

    ws, stats = run(script, model="events", fake=hostile_fake(True), limits=Limits(max_queued=4096),
                    prepare=prepare)
    assert stats.cut_off == 63
    assert [bytes(c.data) for c in fresh] == [b"late %d\n" % i for i in range(63)]
    assert stats.abandoned == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), model=st.sampled_from(MODELS), keep=st.booleans(),
       deaf=st.integers(1, 70), readers=st.integers(0, 3), lines=st.integers(1, 40),
       max_queued=st.sampled_from([2048, 65536, 1 << 20]), stop_ms=st.integers(1, 300))
def test_property_stop_is_bounded_and_reaps_everything(seed: int, model: str, keep: bool, deaf: int,
                                                       readers: int, lines: int, max_queued: int,
                                                       stop_ms: int) -> None:
    """Any mix of non-readers (cut off or not), readers, limits and stop time,
    with Windows' or Wine's closesocket: the stop ends within 2 s of virtual
    time, gives up on nothing, and WSACleanup finds no leak (run() checks)."""
    stop_ns = stop_ms * MS

    def script(ws: FakeWinsock, server: Server) -> None:
        deaf_flood(ws, deaf, 0, lines, b"q" * 700 + b"\n")
        for i in range(readers):
            r = Client(ws, at_ns=i * 30_000)
            r.send_at(MS + i * 30_000, b"reader %d\n" % i)
        stop_at(ws, server, stop_ns)

    ws, stats = run(script, model=model, fake=hostile_fake(keep), limits=Limits(max_queued=max_queued),
                    seed=seed)
    assert ws.now_ns - stop_ns < 2 * S
    assert stats.abandoned == 0
