"""The checker told a server's idle time-out, with a server slower than its clients
(``Scenario.call_cost_ns``): a client idle for the time-out that then sends a line may be closed by
the server's late look at its expired deadline, after the line arrived and before the server reaped
the receive that completed with it (``_Client.idle_before_a_line``).  That is the correct ovserver's
behaviour, a false alarm of the recipe before (tools/false_alarms.py --idle, events chat, seeded 0,
example 190)."""

from __future__ import annotations

import pytest

from fakewinsock.testing import ClientScript, EchoModel, Scenario, check_line_server
from ovserver._events import EventServer
from tests.mutants.properties import OvserverUnderTest

_MS = 1_000_000
IDLE_MS = 100


def _scenario(gap_ns: int) -> Scenario:
    """A client keeping the slowed server busy (a line every 2 ms for 240 ms) and one that connects and
    sends its two lines ``gap_ns`` later, just past its idle deadline."""
    flood = tuple(b"f%03d" % i for i in range(120))
    late = (b"late one", b"late two")
    return Scenario((ClientScript(flood, tuple(x + b"\n" for x in flood), (0,) + (2 * _MS,) * 119),
                     ClientScript(late, (b"late one\nlate two\n",), (gap_ns,), arrive_ns=1 * _MS)),
                    call_cost_ns=1 * _MS)


@pytest.mark.parametrize(("gap_ms", "seed"), [(110, 0), (110, 3), (108, 3)])
def test_a_slowed_server_may_time_out_a_line_that_came_after_the_deadline(gap_ms: int, seed: int) -> None:
    """The late client's line arrives after its deadline, and the busy events server closes it before it
    reaps that line's receive: its reply never comes, 10-15 ms after the line (under the time-out by the
    client's account of its last line), and that is as due.  (Fails with the checker's account of the last
    line alone: "idle only 13.0 ms by its own account".)"""
    report = check_line_server(
        lambda ws, address: OvserverUnderTest(EventServer, ws, address, "echo", idle_timeout_ms=IDLE_MS),
        _scenario(gap_ms * _MS), EchoModel(idle_timeout_ms=IDLE_MS), seed=seed)
    assert report.timed_out >= 1
