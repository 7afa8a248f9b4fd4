"""A client resets while an AcceptEx with a receive length waits on its first
data (docs/semantics-findings.md section 54).

Windows accepted that connection at the handshake, so the fake must never drop
it back out of the accept (the third outcome a reset in the backlog may have):
over many seeds the AcceptEx always ends, with the reset or with success and
0 bytes, and both outcomes occur.  A connection no AcceptEx has taken keeps
all three (tests/conformance/test_connect.py, test_reset_before_accept).
"""

from __future__ import annotations

from collections import Counter

from fakewinsock import FakeConfig, FakeWinsock
from fakewinsock.constants import FALSE, WSA_WAIT_EVENT_0, WSA_WAIT_TIMEOUT
from tests.conformance._harness import Harness


def outcome(seed: int, waits: bool) -> str:
    ws = FakeWinsock(seed=seed, config=FakeConfig(immediate=0.5))
    h = Harness(ws)
    h.start()
    lst, port = h.listener()
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
