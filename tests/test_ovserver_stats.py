"""ovserver's statistics, counted exactly: every way a client leaves, every failure.

The statistics are what an operator reads after a run (``ovserver simulate``
prints them, ``serve`` logs them), so each counter must count its event once,
and nothing else.  Every scenario makes each event happen at least twice, so a
counter that is set instead of incremented shows, and uses a fake with no
chance in it (:func:`ovserver_session.exact`) so the counts are exact.
"""

from __future__ import annotations

import pytest

from fakewinsock.constants import WSAECONNABORTED, WSAECONNRESET, WSAENOBUFS
from ovserver import Limits, ServerStats
from ovserver._protocol import error_line
from tests.ovserver_session import MODELS, Session, exact

IMMEDIATE = [0.0, 1.0]  # every operation pends / every one that can completes at once


def assert_posts_match_the_kernel(session: Session, stats: ServerStats) -> None:
    """The server's count of immediate and pending posts is the kernel's."""
    assert stats.posted_immediate == session.ws.stats["immediate"]
    assert stats.posted_pending == session.ws.stats["pending"]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("immediate", IMMEDIATE)
def test_every_way_a_client_leaves_is_counted_once(model: str, immediate: float) -> None:
    """Two clients end gracefully, two reset, two are still there at the stop."""
    s = Session(model, fake=exact(immediate))
    enders = [s.client(0.1 * i) for i in range(2)]
    resetters = [s.client(0.2 + 0.1 * i) for i in range(2)]
    stayers = [s.client(0.4 + 0.1 * i) for i in range(2)]
    sent = 0
    for i, c in enumerate(enders + resetters + stayers):
        line = b"client %d says hello\n" % i
        c.send(1 + 0.1 * i, line)
        sent += len(line)
    for c in enders:
        c.close(3)
    for c in resetters:
        c.reset(3)
    stats = s.run(stop_ms=10)

    assert (stats.accepted, stats.peak_connections) == (6, 6)
    assert (stats.ended, stats.reset, stats.closed_at_stop) == (2, 2, 2)
    assert (stats.io_errors, stats.hung_up, stats.cut_off, stats.accept_failures, stats.posted_failed) == (0,) * 5
    assert stats.bytes_received == sent
    assert stats.bytes_sent == sum(len(c.data) for c in s.clients) == sent  # every line echoed
    assert all(c.closed_by_server for c in enders + stayers)
    assert_posts_match_the_kernel(s, stats)
    assert (stats.hub.joined, stats.hub.lines, stats.hub.bytes_in, stats.hub.bytes_out) == (6, 6, sent, sent)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("immediate", IMMEDIATE)
def test_failed_posts_mid_session_close_only_their_connection(model: str, immediate: float) -> None:
    """Failures injected while clients are connected: a receive that cannot be
    posted is an I/O error, a send refused with 10054 a reset; each closes only
    the connection it happened on, and is counted once.  (With immediate
    completions the echo's send has completed when the next receive fails: the
    connection is released once that send is reaped, and no Winsock call fails
    but the injected ones and a CancelIoEx with nothing left to cancel.)"""
    s = Session(model, fake=exact(immediate))
    victims = [s.client(0.1 * i) for i in range(4)]
    bystander = s.client(0.5)
    s.at(2, lambda: s.ws.inject_error("WSARecv", WSAECONNABORTED, 2))
    for i, c in enumerate(victims[:2]):  # their next receive (posted after this line) fails
        c.send(3 + i, b"receive fails after this\n")
    s.at(6, lambda: s.ws.inject_error("WSASend", WSAECONNRESET, 2))
    for i, c in enumerate(victims[2:]):  # the echo of this line cannot be sent
        c.send(7 + i, b"send fails\n")
    bystander.send(10, b"still served\n")
    stats = s.run(stop_ms=20)

    assert stats.io_errors == 2 and stats.reset == 2 and stats.posted_failed == 4
    assert stats.accepted == 5 and stats.closed_at_stop == 1 and stats.ended == 0
    assert all(c.peer.at_eof or c.peer.was_reset for c in victims)  # closed by the server, not left hanging
    assert bytes(victims[2].data) == bytes(victims[3].data) == b""
    assert bytes(bystander.data) == b"still served\n"
    failed = [line.split()[4] for line in s.ws.trace.to_text().splitlines() if line.split()[3:4] == ["failed"]]
    assert set(failed) <= {"WSARecv", "WSASend", "CancelIoEx"}  # the injected ones (and nothing left to cancel)
    assert_posts_match_the_kernel(s, stats)


@pytest.mark.parametrize("model", MODELS)
def test_accept_failures_are_counted_and_retried(model: str) -> None:
    """AcceptEx failing at once, twice: both counted as accept failures and
    failed posts; the client is served once the retry succeeds, and the server
    then goes back to waiting without a timeout (idle, it makes no call)."""
    s = Session(model, fake=exact(0.0))
    s.ws.inject_error("AcceptEx", WSAENOBUFS, 2)
    c = s.client(1)
    c.send(2, b"hi\n")
    calls: list[int] = []
    s.at(1000, lambda: calls.append(s.ws.stats["calls"]))
    s.at(1999, lambda: calls.append(s.ws.stats["calls"]))
    stats = s.run(stop_ms=2000)
    assert (stats.accept_failures, stats.posted_failed, stats.accepted) == (2, 2, 1)
    assert bytes(c.data) == b"hi\n"
    assert calls[0] == calls[1]
    assert_posts_match_the_kernel(s, stats)


@pytest.mark.parametrize("model", MODELS)
def test_hang_ups_and_cut_offs_are_counted(model: str) -> None:
    """Two clients send a line over the limit and go quiet: each gets the error
    line, a graceful close, and counts as hung up (then as ended when it
    closes).  Two clients that never read are cut off (reset)."""
    limits = Limits(max_line=50, max_queued=2000)
    s = Session(model, limits=limits, fake=exact(0.0, window=1024))
    talkers = [s.client(0.1 * i) for i in range(2)]
    for i, c in enumerate(talkers):
        c.send(1 + i, b"fine\n" + b"x" * 80)  # 80 bytes without a newline: over the limit
        c.close(20)
    deaf = [s.client(0.5 + 0.1 * i, reads=False) for i in range(2)]
    for i, c in enumerate(deaf):
        for k in range(100):
            c.send(2 + i + 0.05 * k, b"y" * 39 + b"\n")
    stats = s.run(stop_ms=40)

    assert (stats.hung_up, stats.cut_off, stats.ended, stats.closed_at_stop) == (2, 2, 2, 0)
    assert (stats.hub.too_long, stats.hub.cut_off) == (2, 2)
    assert all(bytes(c.data) == b"fine\n" + error_line(50) and c.closed_by_server for c in talkers)
    assert all(c.reset_by_server for c in deaf)
    assert stats.hub.discarded >= 2 * 80 - 2 * 50  # the long lines' bytes were dropped, not routed
    assert_posts_match_the_kernel(s, stats)
