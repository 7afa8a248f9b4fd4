"""The max_queued cut-off is required, not only allowed (issue 10, item 2; the tenth red team's
queue-limit-checked-before-adding): a client that does not read, owed more than ``max_queued`` beyond
what is on its way to it (the server's bytes on the wire and in its receive buffer: the window) and what
the server's posted sends still hold, must have been cut off when its read pause ends.

The scenario: one echo client sends ``n`` lines of 100 bytes in sends of 1000 and reads nothing for
300 ms, on a window of 2048 bytes, against max_queued 3000.  From n = 58 on the correct server cuts it off
on some schedules, from 71 on every one; the mutant, which compares the queue before a message with the
limit, cuts off one message late, and where that message never comes it passes the limit unpunished.
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
from tests.mutants.red10_mutants import QueueLimitCheckedBeforeAdding

_MS = 1_000_000
LIMITS = Limits(max_line=1000, max_queued=3000)


def _paused(n: int) -> Scenario:
    lines = tuple(b"%04d" % i + b"q" * 95 for i in range(n))
    return Scenario((ClientScript.of(*lines, chunk=1000, pause_at_ns=0, pause_ns=300 * _MS, linger_ns=10 * _MS),),
                    window=2048)


def run(cls: type[Server], scenario: Scenario, seed: int, limits: Limits = LIMITS) -> str | None:
    try:
        t.check_line_server(lambda ws, a: OvserverUnderTest(cls, ws, a, "echo", limits, 0), scenario,
                            EchoModel(max_line=limits.max_line, max_queued=limits.max_queued), seed=seed)
    except t.LineServerFailure as e:
        return str(e)
    return None


@pytest.mark.parametrize("cls", [EventServer, RoutineServer, IocpServer], ids=lambda c: c.model)
def test_a_correct_server_is_never_found_late(cls: type[Server]) -> None:
    for n in range(55, 66):
        for seed in range(3):
            assert run(cls, _paused(n), seed) is None, (n, seed)


def test_a_cut_off_one_message_late_is_caught() -> None:
    """Proof: the mutant keeps a client whose queue is 3100 bytes (over 3000) when no more lines come."""
    found = run(QueueLimitCheckedBeforeAdding, _paused(61), 0)
    assert found is not None and "not cut off" in found and "a cut-off was due" in found, found
    assert "3100 bytes queued" in found, found
