"""``ended`` counts a client's FIN when the server reads it, however the connection ends after it
(issue 10, item 2; the tenth red team's ended-counted-when-drained, which no outside check can see:
a client that half-closes and then resets, or is stopped, before its replies are out reads the same
bytes whether its end was counted or not).

Each client sends lines whose replies fill the window (it does not read), then its FIN: the server
reads the FIN while the replies are still owed.  One then resets, one stays until the stop.  A server
that counts the end only once the replies are out and it closes (the mutant) counts neither.

A send that fails after the FIN was read does not count the client again, as a reset or an I/O error:
each connection counts in one way of ending, the first seen (under Wine a client's reset reads as 0
bytes first, then the send to it fails with WSAECONNRESET: a churn of 6000 connections counted ended
4594 and reset 4595).
"""

from __future__ import annotations

import pytest

from fakewinsock.constants import WSAECONNRESET
from tests.mutants.red10_mutants import EndedCountedWhenDrained
from tests.ovserver_session import MODELS, Session, exact

LINES = b"".join(b"%04d" % i + b"e" * 95 + b"\n" for i in range(40))  # 4000 bytes of replies: over the window


def _session(model: str) -> tuple[Session, list[bool]]:
    s = Session(model, fake=exact(0.0, window=1024))
    resetter, stopped = s.client(0.1, reads=False), s.client(0.2, reads=False)
    for c in (resetter, stopped):
        c.send(1, LINES)
        s.at(3, c.peer.shutdown)  # FIN: the server reads it with replies still owed
    resetter.reset(6)
    saw_fin: list[bool] = []
    s.at(5, lambda: saw_fin.append(all(c.peer.fin_read for c in (resetter, stopped))))
    return s, saw_fin


@pytest.mark.parametrize("model", MODELS)
def test_a_fin_read_counts_as_ended_whatever_ends_the_connection_then(model: str) -> None:
    s, saw_fin = _session(model)
    stats = s.run(stop_ms=10)
    assert saw_fin == [True]  # both FINs read (taken) before the reset and the stop
    assert stats.ended == 2
    # The reset after the FIN fails the pending send with WSAECONNABORTED (the RST came after the client's
    # FIN): counted in ended only (the first end seen), as ended then failed; the other, closed at the stop,
    # in ended only too.
    assert (stats.reset, stats.io_errors, stats.ended_then_failed, stats.closed_at_stop) == (0, 0, 1, 0)


def test_an_end_counted_only_once_the_replies_are_out_is_caught() -> None:
    """Proof: the mutant (an events server) counts neither end."""
    s, saw_fin = _session("events")
    s.server = EndedCountedWhenDrained(s.ws, s.config)
    stats = s.run(stop_ms=10)
    assert saw_fin == [True]
    assert stats.ended == 0


@pytest.mark.parametrize("model", MODELS)
def test_a_send_failing_after_the_fin_does_not_count_the_client_again(model: str) -> None:
    """Two clients half-close with replies owed (the server reads both FINs: ended), then a send to each
    fails: the first resets, which fails the pending send with WSAECONNABORTED (the fake: the RST came
    after the FIN); the second reads, and the send posted next fails with WSAECONNRESET (injected: Wine's
    way).  Each counts once, as ended (then failed), not as a reset or an I/O error too."""
    s = Session(model, fake=exact(0.0, window=1024))
    resetter, failed = s.client(0.1, reads=False), s.client(0.2, reads=False)
    for c in (resetter, failed):
        c.send(1, LINES)
        s.at(3, c.peer.shutdown)
    saw_fin: list[bool] = []
    s.at(4, lambda: saw_fin.append(all(c.peer.fin_read for c in (resetter, failed))))
    s.at(4, lambda: s.ws.inject_error("WSASend", WSAECONNRESET))
    s.at(5, lambda: failed.data.extend(failed.peer.recv_nowait(1 << 30)))  # room: its send completes, the next fails
    resetter.reset(6)
    stats = s.run(stop_ms=10)
    assert saw_fin == [True]
    ways = (stats.ended, stats.reset, stats.io_errors, stats.hung_up, stats.cut_off, stats.timed_out,
            stats.closed_at_stop, stats.refused)
    assert (stats.accepted, sum(ways)) == (2, 2), ways  # each connection counted in one way of ending
    assert (stats.ended, stats.ended_then_failed) == (2, 2)
