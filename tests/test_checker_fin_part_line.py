"""``ovserver simulate``: a FIN right after part of a line fails (the eleventh red team's
cancelled-send-closes-gracefully).

ovserver closes a connection with a send in flight abortively (``Server._close``: a send that CancelIoEx
found makes the close abortive), so that a FIN always follows whole replies.  simulate's clients hold it to
that at the stop and at an idle time-out: where the client reads the FIN, and, when the server returned
before the client read it (a pause), in what waits unread in front of it (``FakePeer.peek``).  (Not in
fakewinsock.testing's generic checker: a line server's client can tell a line cut short by its missing
newline, and the README's example server closes gracefully at its stop with a send in flight.)
"""

from __future__ import annotations

from tests.mutants.red11_mutants import CancelledSendClosesGracefully


def test_simulate_catches_it_on_a_seed_of_its_default_traffic() -> None:
    """On seed 15 of the default traffic a client that had not read its last replies when the server
    returned has the FIN behind part of a line (seeds 0-7: the sends cancelled at their stops had moved
    nothing into windows full of whole replies); the correct server resets it."""
    from ovserver import simulate

    r = simulate(100, 10, mode="echo", seed=15, server_class=CancelledSendClosesGracefully)
    assert not r.ok and any("right after part of a line" in e for e in r.errors), r.errors[:2]
    assert simulate(100, 10, mode="echo", seed=15, model="iocp").ok
