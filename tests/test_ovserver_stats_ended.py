"""``ended`` counts a client's FIN when the server reads it, however the connection ends after it
(issue 10, item 2; the tenth red team's ended-counted-when-drained, which no outside check can see:
a client that half-closes and then resets, or is stopped, before its replies are out reads the same
bytes whether its end was counted or not).

Each client sends lines whose replies fill the window (it does not read), then its FIN: the server
reads the FIN while the replies are still owed.  One then resets, one stays until the stop.  A server
that counts the end only once the replies are out and it closes (the mutant) counts neither.
"""

from __future__ import annotations

import pytest

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
    # FIN), which ovserver counts as an I/O error; the other is closed at the stop.
    assert (stats.reset + stats.io_errors, stats.closed_at_stop) == (1, 1)


def test_an_end_counted_only_once_the_replies_are_out_is_caught() -> None:
    """Proof: the mutant (an events server) counts neither end."""
    s, saw_fin = _session("events")
    s.server = EndedCountedWhenDrained(s.ws, s.config)
    stats = s.run(stop_ms=10)
    assert saw_fin == [True]
    assert stats.ended == 0
