"""Under mutation testing (tools/mutation.sh), a fake without a Winsock-call budget gets one.

A mutant that makes the server spin (a wait that is always satisfied, an event
never reset) never lets virtual time advance, so a test without a budget would
run until mutmut's wall-clock timeout, minutes on a loaded machine.  With a
budget of 500,000 calls (the largest test here makes well under 100,000) the
spin fails within seconds as BusyLoopError.  Outside mutmut (no mutant under
test) nothing changes.

The project's own tests run without Hypothesis's wall-clock deadline (200 ms
per example by default): what they assert never depends on the wall clock (the
fake's time is virtual), and on a loaded machine the deadline failed tests that
were right (``test_echo_framing_ignores_chunking`` took 429 ms under load 20).
The active profile is kept otherwise (Hypothesis's ``ci`` where it loaded it,
``--hypothesis-profile`` still chooses).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings

from fakewinsock import FakeWinsock

settings.register_profile("fakewinsock-own-tests", settings(), deadline=None)
settings.load_profile("fakewinsock-own-tests")

MUTATION_CALL_BUDGET = 500_000


@pytest.fixture(autouse=True)
def _call_budget_under_mutation(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if "__mutmut_" not in os.environ.get("MUTANT_UNDER_TEST", ""):
        yield
        return
    original = FakeWinsock.__init__

    def with_budget(self: FakeWinsock, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if self.config.max_calls is None:
            config = dataclasses.replace(self.config, max_calls=MUTATION_CALL_BUDGET)
            self.config = self._kernel.config = config

    monkeypatch.setattr(FakeWinsock, "__init__", with_budget)
    yield
