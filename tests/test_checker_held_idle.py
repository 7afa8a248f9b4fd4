"""A client held back by back-pressure is not idle (held36): the checker's idle watch sees the hold.

red12's idle-times-out-held-back closes a client as idle while the server holds it back (it stopped reading
it: its queue is over the high-water mark): in echo that close drops the client's queued replies, a reset that
the model allowed as back-pressure's slow-consumer cut-off (a reset of a client owed more than half the mark).
The idle watch now looks whether the server has a receive posted on the connection
(``FakeWinsock.server_end(peer).recvs``): two looks 10 ms apart that find none, and none of the client's bytes
taken in between, mean it is held back, and a close less than the idle time-out later that no limit explains
(neither the stall time-out, a second here, nor ``max_queued``) fails (``_Client.held_at_close``).
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
from ovserver import Limits, Server
from ovserver._events import EventServer
from ovserver._iocp import IocpServer
from ovserver._routines import RoutineServer
from tests.mutants.properties import OvserverUnderTest
from tests.mutants.red12_mutants import IdleTimesOutHeldBack

_MS = 1_000_000
IDLE_MS = 100
STALL_MS = 1000
LIMITS = Limits(max_line=1000, max_queued=16 * 1024, max_clients=1, high_water=4 * 1024)


def _run(cls: type[Server], seed: int, pause_ms: int = 300) -> LineServerReport:
    """One echo client sends 60 lines of 199 bytes at once and reads nothing for ``pause_ms``: with a 2 KiB
    window (both ways) the server's sends to it soon pend, and the replies queued behind them go over the 4 KiB
    mark, so the server stops reading it until it reads them (or cuts it off at the stall time-out)."""
    lines = tuple(b"%03d" % i + b"x" * 196 for i in range(60))
    client = ClientScript.of(*lines, pause_at_ns=0, pause_ns=pause_ms * _MS)
    model = EchoModel(max_line=LIMITS.max_line, max_queued=LIMITS.max_queued, high_water=LIMITS.high_water,
                      idle_timeout_ms=IDLE_MS, max_clients=LIMITS.max_clients, resets_cut_sends=True,
                      stall_timeout_ms=STALL_MS)
    return check_line_server(lambda ws, address: OvserverUnderTest(cls, ws, address, "echo", LIMITS, STALL_MS,
                                                                   IDLE_MS),
                             Scenario((client,), window=2048), model, seed=seed)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("cls", [RoutineServer, EventServer, IocpServer], ids=["routines", "events", "iocp"])
def test_a_client_held_back_past_the_idle_time_out_is_served(cls: type[Server], seed: int) -> None:
    report = _run(cls, seed)
    assert report.timed_out == 0 and report.cut_off == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_a_held_back_client_closed_as_idle_is_caught(seed: int) -> None:
    """The mutant resets it at its idle time-out while it is held back; without the watch's look at the posted
    receive the reset passed as a cut-off (more than half the mark owed to it)."""
    with pytest.raises(LineServerFailure, match="it was held back"):
        _run(IdleTimesOutHeldBack, seed)


@pytest.mark.parametrize("cls", [RoutineServer, EventServer, IocpServer], ids=["routines", "events", "iocp"])
def test_a_client_held_back_past_the_stall_time_out_may_be_cut_off(cls: type[Server]) -> None:
    """Held back (and looked at) until the stall time-out, the reset is the slow-consumer cut-off: allowed."""
    assert _run(cls, 0, pause_ms=1500).cut_off == 1


def test_stall_timeout_arguments_are_checked() -> None:
    """The model's ``stall_timeout_ms``: milliseconds >= 1 with a high-water mark; 0 is off, as ovserver's
    ``ServerConfig.stall_timeout_ms`` (so ``stall_timeout_ms=config.stall_timeout_ms`` works for every config)."""
    assert EchoModel(high_water=4096, stall_timeout_ms=0).stall_timeout_ms is None
    assert EchoModel(high_water=4096, stall_timeout_ms=STALL_MS).stall_timeout_ms == STALL_MS
    for bad in (-1, True, 1.5):
        with pytest.raises(ValueError, match="stall_timeout_ms"):
            EchoModel(high_water=4096, stall_timeout_ms=bad)  # type: ignore[arg-type]
    for off in (None, 0):  # (high_water 0 is off too)
        with pytest.raises(ValueError, match="stall_timeout_ms"):
            EchoModel(high_water=off, stall_timeout_ms=STALL_MS)
