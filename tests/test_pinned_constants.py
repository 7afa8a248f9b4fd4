"""The session's pin of Hypothesis's local constants (tests/conftest.py) holds.

A derandomized test draws the same examples whatever local modules are loaded
and whatever literals they hold; without the pin, importing one more local
module moves the sequence (the hazard the pin removes, shown on this
Hypothesis so the test can fail).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import UNPINNED_LOCAL_CONSTANTS, local_constants_pinnable

pytestmark = pytest.mark.skipif(not local_constants_pinnable(),
                                reason="this Hypothesis draws no local constants: nothing to pin")

_PROBE = "fakewinsock_pin_probe"


def _drawn() -> list[int]:
    seen: list[int] = []

    @settings(derandomize=True, database=None, max_examples=200, phases=[Phase.generate], deadline=None)
    @given(st.integers(0, 10**6))
    def collect(n: int) -> None:
        seen.append(n)

    collect()
    return seen


@pytest.fixture
def probe_module(tmp_path: Path) -> Iterator[Callable[[], None]]:
    """A function that imports a new local module full of integer constants."""
    (tmp_path / f"{_PROBE}.py").write_text(
        "VALUES = (\n" + "".join(f"    {777_000 + 3 * i},\n" for i in range(300)) + ")\n")
    sys.path.insert(0, str(tmp_path))

    def load() -> None:
        importlib.import_module(_PROBE)

    try:
        yield load
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(_PROBE, None)


def test_a_new_local_module_does_not_move_a_derandomized_sequence(probe_module: Callable[[], None]) -> None:
    from hypothesis.internal.conjecture import providers

    assert not providers._get_local_constants().integers
    before = _drawn()
    probe_module()
    assert _drawn() == before


def test_without_the_pin_a_new_local_module_moves_it(probe_module: Callable[[], None],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from hypothesis.internal.conjecture import providers

    pinned = _drawn()
    probe_module()
    monkeypatch.setattr(providers, "_get_local_constants", UNPINNED_LOCAL_CONSTANTS)
    providers.CONSTANTS_CACHE.cache.clear()
    try:
        assert 777_000 in providers._get_local_constants().integers
        unpinned = _drawn()
    finally:
        providers.CONSTANTS_CACHE.cache.clear()
    assert unpinned != pinned
    assert any(777_000 <= n < 777_900 and (n - 777_000) % 3 == 0 for n in unpinned)

