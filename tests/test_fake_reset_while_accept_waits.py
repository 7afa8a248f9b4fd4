"""A client resets while an AcceptEx with a receive length waits on its first
data (docs/semantics-findings.md section 54).

Windows accepted that connection at the handshake, so the fake must never drop
it back out of the accept (the third outcome a reset in the backlog may have):
over many seeds the AcceptEx always ends, with the reset or with success and
0 bytes, and both outcomes occur.  A connection no AcceptEx has taken keeps
all three (tests/conformance/test_connect.py, test_reset_before_accept); an
AcceptEx that takes it and fails never returns TRUE from its call, even when
the fake completes everything it can at once (section 55).
"""

from __future__ import annotations

from collections import Counter

from fakewinsock import FakeConfig, FakeWinsock
from fakewinsock.constants import FALSE, TRUE, WSA_IO_PENDING, WSA_WAIT_EVENT_0, WSA_WAIT_TIMEOUT
from tests.conformance._harness import ADDR_SLOT, Harness


def listening(seed: int, config: FakeConfig) -> tuple[FakeWinsock, Harness, int, int]:
    """A started fake with a listener: (fake, harness, listener, port)."""
    ws = FakeWinsock(seed=seed, config=config)
    h = Harness(ws)
    h.start()
    return (ws, h, *h.listener())


def outcome(seed: int, waits: bool) -> str:
    ws, h, lst, port = listening(seed, FakeConfig(immediate=0.5))
    p = h.peer()
    if waits:
        posted = h.post_accept(rdl=16, on=(lst, port))
        p.connect("127.0.0.1", port)
        assert h.wait(posted.ov.hEvent, 300) == WSA_WAIT_TIMEOUT
        p.reset()
    else:
        p.connect("127.0.0.1", port)
        p.reset()
        h.settle()
        posted = h.post_accept(rdl=16, on=(lst, port))
    if h.wait(posted.ov.hEvent, 500) != WSA_WAIT_EVENT_0:
        got = "waits"
    else:
        ok, n, _ = ws.WSAGetOverlappedResult(lst, posted.ov, FALSE)
        got = f"ok {n}" if ok else f"failed {ws.WSAGetLastError()}"
    h.finish()
    return got


def test_a_connection_the_accept_waits_on_is_never_dropped() -> None:
    seen = Counter(outcome(seed, waits=True) for seed in range(24))
    assert set(seen) == {"ok 0", "failed 10054"}, seen


def test_a_connection_no_accept_has_taken_can_still_be_dropped() -> None:
    seen = Counter(outcome(seed, waits=False) for seed in range(24))
    assert "waits" in seen and "failed 10054" in seen, seen


def immediate_accept_of_a_reset_connection(seed: int) -> str:
    ws, h, lst, port = listening(seed, FakeConfig(immediate=1.0, background=0.0))
    p = h.peer()
    p.connect("127.0.0.1", port)
    p.reset()
    h.settle()
    acc, ov = h.socket(), h.overlapped()
    ok, _ = ws.AcceptEx(lst, acc, bytearray(2 * ADDR_SLOT), 0, ADDR_SLOT, ADDR_SLOT, ov)
    if ok:
        assert ws.WSAGetOverlappedResult(lst, ov, FALSE)[0] == TRUE, "AcceptEx returned TRUE for a failure"
        got = "at once"
    else:
        assert ws.WSAGetLastError() == WSA_IO_PENDING
        got = "pends"
        if h.wait(ov.hEvent, 500) == WSA_WAIT_EVENT_0:
            ok2 = ws.WSAGetOverlappedResult(lst, ov, FALSE)[0]
            got += ", then " + ("succeeds" if ok2 else f"fails {ws.WSAGetLastError()}")
    h.finish()
    return got


def test_an_accept_that_fails_with_the_reset_does_not_return_true() -> None:
    seen = Counter(immediate_accept_of_a_reset_connection(seed) for seed in range(30))
    assert {"at once", "pends", "pends, then fails 10054"} <= set(seen), seen
