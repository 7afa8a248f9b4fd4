"""The idle time-out's deadlines (red13), in every model, on the fake.

The server waits for the earliest deadline of its connections: a client that
connects later (its deadline later) must not push back the time-out of one
already idle.  The README recipe's checker allows a close up to two clock steps
and 50 ms late, so a deadline moved by less than that passes it; here the
second client connects 90 ms into the first one's 100 ms.
"""

from __future__ import annotations

import pytest

from tests.ovserver_session import MODELS, Session

IDLE_MS = 100


@pytest.mark.parametrize("model", MODELS)
def test_a_later_client_does_not_push_back_an_idle_clients_time_out(model: str) -> None:
    """Client ``idle`` connects and says nothing; ``talker`` connects 90 ms later and sends a line every
    20 ms.  The idle one is closed at its own deadline (100 ms, give or take a step of GetTickCount64's
    15.6 ms), long before the talker's would be (190 ms); the talker is served throughout.
    (deadline-replaces-earlier let the talker's deadline replace the earlier one: closed at 190 ms.)"""
    s = Session(model, "echo", idle_timeout_ms=IDLE_MS)
    idle = s.client(0.0)
    talker = s.client(90.0)
    sent = [b"line %d\n" % k for k in range(15)]
    for k, line in enumerate(sent):
        talker.send(95.0 + 20 * k, line)
    closed: list[bool] = []
    s.at(150.0, lambda: closed.append(idle.closed_by_server))
    stats = s.run(stop_ms=450)
    assert closed == [True], "the idle client was not closed by 150 ms (its time-out: 100 ms)"
    assert bytes(talker.data) == b"".join(sent) and stats.timed_out == 1
