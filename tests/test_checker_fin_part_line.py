"""A FIN right after part of a line is a failure (the eleventh red team's cancelled-send-closes-gracefully).

A server that closes a connection with a send in flight (a stop, an idle time-out) must reset it: the
client must know that the line it was reading was cut short, where a FIN says that what came before it
was all there is.  The client sees it when it reads the FIN (during the run), or, when it did not read
(a pause) and serve() returned first, the checker looks at what waits unread in front of the FIN: the
bytes of a line with no newline after them.  (ovserver's ``Server._close``: a send that CancelIoEx found
makes the close abortive.)  ``ovserver simulate`` has the same checks (``_Client._fin_after_part_of_a_line``).
"""

from __future__ import annotations

import pytest

from fakewinsock import testing as t
from fakewinsock.testing import ClientScript, EchoModel, Scenario
from ovserver import Limits, Server
from ovserver._events import EventServer
from ovserver._iocp import IocpServer
from ovserver._routines import RoutineServer
from tests.mutants.properties import OvserverUnderTest
from tests.mutants.red11_mutants import CancelledSendClosesGracefully

_MS = 1_000_000


def _stopped_while_paused() -> Scenario:
    """One echo client sends a line of 9000 bytes and reads nothing for 100 ms, in a window of 4 KiB: its
    reply is one send, 4 KiB of it in the window, the rest pending, nothing queued behind it, when the stop
    comes at 60 ms; serve() returns before the client reads again."""
    return Scenario((ClientScript.of(b"x" * 9000, chunk=16384, pause_at_ns=0, pause_ns=100 * _MS),),
                    t.FaultPlan((), stop_at_ns=60 * _MS), 4096)


def run(cls: type[Server], scenario: Scenario, seed: int) -> str | None:
    try:
        t.check_line_server(lambda ws, a: OvserverUnderTest(cls, ws, a, "echo", Limits(), 0), scenario,
                            EchoModel(), seed=seed)
    except t.LineServerFailure as e:
        return str(e)
    return None


@pytest.mark.parametrize("cls", [EventServer, RoutineServer, IocpServer], ids=lambda c: c.model)
def test_a_correct_server_resets_a_client_whose_send_it_cancels_at_a_stop(cls: type[Server]) -> None:
    for seed in range(3):
        assert run(cls, _stopped_while_paused(), seed) is None, seed


def test_a_fin_after_part_of_a_line_at_a_stop_is_caught() -> None:
    """Proof: the mutant cancels the send and closes gracefully; the FIN waits unread behind 4 KiB of the
    9001-byte line when serve() returns."""
    for seed in range(3):
        found = run(CancelledSendClosesGracefully, _stopped_while_paused(), seed)
        assert found is not None and "right after part of a line" in found, (seed, found)



def test_simulate_catches_it_on_a_seed_of_its_default_traffic() -> None:
    """``ovserver simulate``'s check at its stop: on seed 15 of the default traffic a client that had not
    read its last replies when the server returned has the FIN behind part of a line (seeds 0-7: the sends
    cancelled at their stops had moved nothing into windows full of whole replies); the correct server
    resets it."""
    from ovserver import simulate

    r = simulate(100, 10, mode="echo", seed=15, server_class=CancelledSendClosesGracefully)
    assert not r.ok and any("right after part of a line" in e for e in r.errors), r.errors[:2]
    assert simulate(100, 10, mode="echo", seed=15, model="iocp").ok
