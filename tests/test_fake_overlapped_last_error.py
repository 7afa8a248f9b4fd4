"""The fake gives both outcomes Windows versions give for the last error after
a successful WSAGetOverlappedResult: 0 (Windows 7 and later) and the last error
left as it was (before Windows 7), chosen by the seed, the modern one in the
simplest schedule (what Hypothesis shrinks to).  The conformance suite checks
that every backend gives one of the two
(tests/conformance/test_overlapped_result_last_error.py).
"""

from __future__ import annotations

from fake_server import Server, quiet

from fakewinsock import FakeWinsock, ScriptedChooser
from fakewinsock.constants import FALSE, TRUE, WSA_WAIT_EVENT_0

SENTINEL = 12345


def last_error_after_success(ws: FakeWinsock) -> int:
    """Receive a client's bytes and read the last error after the TRUE of
    WSAGetOverlappedResult (SENTINEL set just before it)."""
    srv = Server(ws)
    s, peer = srv.accept()
    ov, buf = srv.post_recv(s)
    peer.send(b"data")
    assert srv.wait(ov) == WSA_WAIT_EVENT_0
    ws.WSASetLastError(SENTINEL)
    ok, n, _ = ws.WSAGetOverlappedResult(s, ov, FALSE)
    assert ok == TRUE and bytes(buf[:n]) == b"data"[:n]
    err = ws.WSAGetLastError()
    srv.finish()
    return err


def test_the_seed_chooses_between_0_and_the_last_error_left_alone() -> None:
    outcomes = {last_error_after_success(FakeWinsock(seed=seed)) for seed in range(16)}
    assert outcomes == {0, SENTINEL}


def test_the_simplest_schedule_gives_the_modern_outcome() -> None:
    assert last_error_after_success(FakeWinsock(chooser=ScriptedChooser([]), config=quiet())) == 0


def test_a_failure_always_sets_the_error() -> None:
    """Only a TRUE may leave the last error alone: a FALSE always sets it."""
    for seed in range(8):
        srv = Server(FakeWinsock(seed=seed))
        s, peer = srv.accept()
        ov, _ = srv.post_recv(s)
        peer.reset()
        srv.wait(ov)
        srv.ws.WSASetLastError(SENTINEL)
        ok, _, _ = srv.ws.WSAGetOverlappedResult(s, ov, FALSE)
        assert ok == FALSE and srv.ws.WSAGetLastError() == 10054
        srv.finish()
