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

Hypothesis 6.1xx mixes into its draws constants it collects from the source of
every local module loaded so far (``hypothesis/internal/constants_ast.py``:
fakewinsock's and ovserver's modules, not tests), so a derandomized run (the
``ci`` profile, the proof of power in ``tests/test_mutants.py``) drew other
examples after any edit of a literal anywhere in the code and in another order
of imports: a docs string could turn a strict expected failure into an XPASS.
Here the local constants are pinned to none for the whole session
(``_no_local_constants``): a derandomized test's examples depend only on its
own source, its strategies and the Hypothesis version.  Hypothesis's global
constants (its own fixed list) are still drawn.  ``tests/test_pinned_constants.py``
shows the pin holds and that without it a new local module moves the sequence.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings

from fakewinsock import FakeWinsock

_providers: Any  # a module, or None
try:  # Hypothesis 6.1xx; older versions draw no local constants (nothing to pin)
    from hypothesis.internal.conjecture import providers as _providers
    from hypothesis.internal.constants_ast import Constants as _Constants
except ImportError:  # pragma: no cover
    _providers = None

settings.register_profile("fakewinsock-own-tests", settings(), deadline=None)
settings.load_profile("fakewinsock-own-tests")

MUTATION_CALL_BUDGET = 500_000


#: Hypothesis's own collector of local constants (the pin replaces it for the session).
UNPINNED_LOCAL_CONSTANTS: Any = getattr(_providers, "_get_local_constants", None)


def local_constants_pinnable() -> bool:
    """Whether this Hypothesis draws local constants where the pin can reach them."""
    return _providers is not None and hasattr(_providers, "_get_local_constants") \
        and hasattr(_providers, "CONSTANTS_CACHE")


@pytest.fixture(autouse=True, scope="session")
def _no_local_constants() -> Iterator[None]:
    """For the session: Hypothesis's local constants are none (see the module's docstring)."""
    if not local_constants_pinnable():  # pragma: no cover
        yield
        return
    assert _providers is not None
    original = UNPINNED_LOCAL_CONSTANTS
    empty = _Constants()
    _providers._get_local_constants = lambda: empty
    _providers.CONSTANTS_CACHE.cache.clear()
    try:
        yield
    finally:
        _providers._get_local_constants = original
        _providers.CONSTANTS_CACHE.cache.clear()


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
