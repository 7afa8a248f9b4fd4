"""A client that arrives while another is served and stays is served at once, not when the other leaves (red12).

With room under ``max_clients``, accepting goes on while clients are connected: the events model's acceptor, which
posts AcceptEx no further ahead of its groups than ``accepts`` connections, is woken by the group that takes the
handed-over connection.  red12's inbox-taken-acceptor-not-woken forgets that signal, and clients are then taken in
one at a time, each next one waiting in the listen backlog until the one served leaves; the derandomized recipe
misses it (its clients all end within the checker's deadline, and its quiet check counts accepted connections
only), so this directed session shows it.
"""

from __future__ import annotations

import pytest

from tests.mutants.red12_mutants import InboxTakenAcceptorNotWoken
from tests.ovserver_session import MODELS, Session


def _session(model: str) -> tuple[Session, list[bytes]]:
    """The first client sends a line at 1 ms and stays until the stop at 200 ms; the second connects at 10 ms and
    sends a line at 11 ms: what the second has read at 100 ms is recorded."""
    s = Session(model)
    first, second = s.client(0), s.client(10)
    first.send(1, b"first\n")
    second.send(11, b"second\n")
    seen: list[bytes] = []
    s.at(100, lambda: seen.append(bytes(second.data)))
    s.stop(200)
    return s, seen


@pytest.mark.parametrize("model", MODELS)
def test_a_client_is_served_while_another_stays(model: str) -> None:
    s, seen = _session(model)
    stats = s.run()
    assert seen == [b"second\n"]
    assert stats.accepted == 2 and stats.peak_connections == 2


def test_a_group_that_takes_its_inbox_wakes_the_acceptor() -> None:
    """Proof: the mutant leaves the second client in the backlog while the first stays."""
    s, seen = _session("events")
    s.server = InboxTakenAcceptorNotWoken(s.ws, s.config)
    stats = s.run()
    assert seen == [b""]
    assert stats.accepted == 1
