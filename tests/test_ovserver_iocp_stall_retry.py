"""The iocp model's controller: an AcceptEx post that fails inside its idle check
(a stalled client cut off frees the one place, and the post made at once fails)
is retried after ``accept_retry_ms``, not left for ever (found by the recipe with
back-pressure, search12: the wait's time-out was chosen before the check failed
the post, so it was INFINITE)."""

from __future__ import annotations

import pytest

from fakewinsock.testing import ClientScript, EchoModel, FaultPlan, Injection, Scenario, check_line_server
from ovserver import Limits
from ovserver._iocp import IocpServer
from tests.mutants.properties import OvserverUnderTest

_MS = 1_000_000
LIMITS = Limits(max_line=1000, max_queued=16 * 1024, max_clients=1, high_water=4 * 1024)


@pytest.mark.parametrize("seed", range(4))
def test_an_accept_post_failing_in_the_idle_check_is_retried(seed: int) -> None:
    lines = tuple(b"%04d" % i + b"x" * 900 for i in range(12))  # ~11 KiB of replies: over the 4 KiB mark
    stalled = ClientScript.of(*lines, pause_at_ns=0, pause_ns=400 * _MS)  # reads nothing for 400 ms: cut off
    waiting = ClientScript.of(b"hi", arrive_ns=20 * _MS)  # waits in the listen backlog for the one place
    # The re-post when the stalled client is cut off (after the 100 ms stall time-out) fails at once.
    plan = FaultPlan(injections=(Injection(60 * _MS, "AcceptEx"),))
    scenario = Scenario((stalled, waiting), plan, window=1000)
    model = EchoModel(max_line=LIMITS.max_line, max_queued=LIMITS.max_queued, high_water=LIMITS.high_water)
    check_line_server(lambda ws, address: OvserverUnderTest(IocpServer, ws, address, "echo", LIMITS, 100),
                      scenario, model, seed=seed)
