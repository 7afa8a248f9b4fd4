"""A slowloris that first sends a whole line (red12): the idle time-out must close it all the same.

The swarm's idle_clients dribbles a client's *first* line, so the receive buffer holds no newline of that
connection yet; red12's idle-newline-in-stale-bytes looks for a receive's newline in the whole buffer, not in
the bytes it received, and a newline an earlier receive left there restarts the idle clock at every byte of the
dribble.  The derandomized recipe_idle and bench_search miss it (no example has a line, then a dribble, from one
client); this directed scenario is the traffic that shows it.
"""

from __future__ import annotations

import pytest

from fakewinsock.testing import (
    ClientScript,
    EchoModel,
    LineServerFailure,
    LineServerReport,
    Scenario,
    check_line_server,
)
from ovserver import Server
from ovserver._events import EventServer
from ovserver._iocp import IocpServer
from ovserver._routines import RoutineServer
from tests.mutants.properties import OvserverUnderTest
from tests.mutants.red12_mutants import IdleNewlineInStaleBytes

_MS = 1_000_000
IDLE_MS = 100


def _run(cls: type[Server], scenario: Scenario, seed: int) -> LineServerReport:
    return check_line_server(lambda ws, address: OvserverUnderTest(cls, ws, address, "echo", idle_timeout_ms=IDLE_MS),
                             scenario, EchoModel(idle_timeout_ms=IDLE_MS), seed=seed)


def _line_then_dribble() -> Scenario:
    """One client: ``hello world`` whole in one send (its echo read), then 50 ms later the slowloris'
    ``slowlory`` a byte each 50 ms and its newline: 400 ms without a complete line, four times the time-out."""
    dribble = b"slowlory"
    chunks = (b"hello world\n", *(dribble[k:k + 1] for k in range(len(dribble))), b"\n")
    return Scenario((ClientScript((b"hello world", dribble), chunks, (0,) + (50 * _MS,) * (len(dribble) + 1)),))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("cls", [RoutineServer, EventServer, IocpServer], ids=["routines", "events", "iocp"])
def test_a_line_then_a_dribble_is_timed_out(cls: type[Server], seed: int) -> None:
    assert _run(cls, _line_then_dribble(), seed).timed_out == 1


@pytest.mark.parametrize("seed", [0, 2])
def test_a_newline_left_in_the_receive_buffer_is_not_activity(seed: int) -> None:
    """Proof of the scenario's power: the mutant keeps the dribbler for as long as it dribbles.  (Seeds 0 and
    2-5 show it; seed 1 does not: there the newline comes in a receive of its own, at the buffer's start, where
    the dribble's first byte overwrites it.)"""
    with pytest.raises(LineServerFailure, match="not closed by the server's idle time-out"):
        _run(IdleNewlineInStaleBytes, _line_then_dribble(), seed)
