"""reset_after_fin (search21, issue 10): a client that half-closes, reads nothing more, then resets.

A client that sends its last request, half-closes (FIN) and then gives up on the answer, closing with it
unread (an abortive close: the server sees WSAECONNRESET, also on a send of its reply still pending), as
an HTTP client that stops reading does.  No scenario client reset after its FIN before: the checker's
resets replace a chunk or the FIN.  A server that leaves a failed send to its receive, when none is
posted any more after the FIN (tests/mutants/red7_mutants.py, iocp-send-error-left-to-receive), holds
the connection for good; the checker's release second sees it.
"""

from __future__ import annotations

import pytest
from hypothesis import Phase, find, settings

from fakewinsock.testing import (
    ClientFault,
    ClientScript,
    EchoModel,
    FaultPlan,
    LineServerFailure,
    Scenario,
    check_line_server,
    scenarios,
)
from fakewinsock.testing import _scenarios as sc
from ovserver import Limits, Server
from ovserver._events import EventServer
from ovserver._iocp import IocpServer
from ovserver._routines import RoutineServer
from tests.mutants import MUTANTS
from tests.mutants.properties import OvserverUnderTest

_MS = 1_000_000
_FIND = settings(database=None, max_examples=1000, phases=[Phase.generate], deadline=None, derandomize=True)


def _giving_up(after_ns: int) -> Scenario:
    """One client: a 300-byte line and a short one, FIN, then nothing read, and a reset ``after_ns`` later,
    in a window of 16 bytes: the echo of the long line pends."""
    return Scenario((ClientScript.of(b"x" * 300, b"y" * 10),),
                    FaultPlan((ClientFault(0, "leave", 1, 0, reset_after_ns=after_ns),)), window=16)


def _run(cls: type[Server], scenario: Scenario, seed: int) -> str | None:
    try:
        check_line_server(lambda ws, a: OvserverUnderTest(cls, ws, a, "echo", Limits()), scenario, EchoModel(),
                          seed=seed)
    except LineServerFailure as e:
        return e.report.errors[0]
    return None


def test_a_send_failing_after_the_fin_must_close_the_connection() -> None:
    """iocp-send-error-left-to-receive fails (its socket held a second after the reset); the correct servers
    pass, also when the reset comes right behind the FIN.  Proven: with _Client._close scheduling no reset
    (the client reads on), the mutant passes."""
    mutant = next(m for m in MUTANTS if m.name == "iocp-send-error-left-to-receive").server
    for seed in range(3):
        found = _run(mutant, _giving_up(50 * _MS), seed)
        assert found is not None and "is gone (it reset), but 1 s later the server still holds its socket" in found
    for cls in (IocpServer, EventServer, RoutineServer):
        for after in (0, 3 * _MS, 50 * _MS):
            for seed in range(3):
                assert _run(cls, _giving_up(after), seed) is None, (cls.model, after, seed)


def test_reset_after_fin_draws_a_client_that_gives_up_on_a_big_answer() -> None:
    """The feature's client leaves (FIN) after a line of 300 bytes (a _ladder draw) in a send of its own, reads
    nothing more and resets 0 to 100 ms later, in a window smaller than that line's echo."""
    s = find(scenarios(clients=(1, 2), lines=(0, 2), features=("reset_after_fin",)),
             lambda s: any(f.reset_after_ns for f in s.faults.clients), settings=_FIND)
    f = next(f for f in s.faults.clients if f.reset_after_ns)
    script = s.clients[f.client]
    assert f.kind == "leave" and f.reset_after_ns in (3 * _MS, 20 * _MS, 100 * _MS)
    assert script.chunks[f.before_chunk - 1] == sc._pattern(sc._STOPPED_LINE, f.client) + b"\n"
    assert s.window is not None and s.window < sc._STOPPED_LINE
    assert "reset_after_fin" in s.features
    # (without the feature, no leave resets)
    assert find(scenarios(clients=(1, 2), lines=(0, 2), features=("half_close",)),
                lambda s: bool(s.faults.clients), settings=_FIND).faults.clients[0].reset_after_ns is None


def test_reset_after_fin_is_on_a_leave_only() -> None:
    script = ClientScript.of(b"a")
    with pytest.raises(ValueError, match="reset_after_ns"):
        Scenario((script,), FaultPlan((ClientFault(0, "reset", 1, reset_after_ns=0),)))
    with pytest.raises(ValueError, match="reset_after_ns"):
        Scenario((script,), FaultPlan((ClientFault(0, "leave", 1, reset_after_ns=-1),)))
    assert ClientFault(0, "leave", 1, reset_after_ns=0).resets and not ClientFault(0, "leave", 1).resets


@pytest.mark.parametrize("off", ["faults", "resets", "leaves"])
def test_reset_after_fin_is_a_leave_and_a_reset(off: str) -> None:
    """Ruled out with faults, resets or leaves (it is a leave, then a reset): asked for by name, a ValueError."""
    with pytest.raises(ValueError, match="features: \\['reset_after_fin'\\] cannot be drawn"):
        scenarios(features=("reset_after_fin",), faults=off != "faults", resets=off != "resets",
                  leaves=off != "leaves")


def test_a_client_that_gives_up_is_owed_more_than_a_wide_window_holds() -> None:
    """Where the rest of the traffic makes the window wider than its 300-byte line's echo (big sends here), the
    client that gives up sends more such lines before its FIN, until the replies it is owed are more than the
    window holds: the server's send to it pends at its reset.  Proven: with _Swarm._given_up_past returning its
    input, the owed bytes stayed under the window."""
    s = find(scenarios(clients=(1, 2), lines=(0, 2), features=("reset_after_fin", "big_sends")),
             lambda s: s.window is not None and s.window > 2 * sc._STOPPED_LINE
             and any(f.reset_after_ns is not None and f.before_chunk > 1 for f in s.faults.clients), settings=_FIND)
    f = next(f for f in s.faults.clients if f.reset_after_ns is not None)
    script = s.clients[f.client]
    assert s.window is not None
    assert sum(len(m) + 1 for m in script.lines[:script.lines_before(f.before_chunk)]) > s.window
