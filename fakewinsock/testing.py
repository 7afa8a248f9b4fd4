"""Hypothesis support: drive every choice of the fake from Hypothesis.

``HypothesisChooser(data)`` answers each question the fake asks (complete at
once or pend, which ready operation completes next, where a segment is split,
how many bytes a receive takes, latencies, faults) with a draw from
Hypothesis's ``data`` object.  A failing test then shrinks to a minimal
schedule: Hypothesis shrinks integers towards the low end, and the fake's
"simplest" answer to every question is the low end (pend, oldest first, no
split, take everything, no latency, no fault).  The example database replays
the exact schedule.

Hypothesis is a test dependency; importing this module without it fails with
a clear ImportError.
"""

from __future__ import annotations

from typing import Any

try:
    from hypothesis import strategies as st
except ImportError as e:  # pragma: no cover
    raise ImportError("fakewinsock.testing needs Hypothesis: pip install hypothesis") from e

from ._sim import Chooser, FakeConfig

__all__ = ["HypothesisChooser", "fake_configs"]


class HypothesisChooser(Chooser):
    """A :class:`~fakewinsock.Chooser` whose answers are Hypothesis draws.

    Probabilities in the fake's config still decide *whether* a question is
    asked with a non-trivial answer (p=0 and p=1 never draw); with
    ``FakeConfig(immediate=0.5, ...)`` every open choice is drawn.  Latencies
    are drawn from a small set of values so that shrinking stays fast.
    """

    def __init__(self, data: Any, max_draws: int = 20_000) -> None:
        self._data = data
        self.draws = 0
        self.max_draws = max_draws

    def integer(self, lo: int, hi: int, label: str) -> int:
        self.draws += 1
        if self.draws > self.max_draws:
            return lo  # bound the size of an example; the rest of the run is the simplest schedule
        return int(self._data.draw(st.integers(lo, hi), label=label))

    def boolean(self, p: float, label: str) -> bool:
        if p <= 0.0:
            return False
        if p >= 1.0:
            return True
        self.draws += 1
        if self.draws > self.max_draws:
            return False
        return bool(self._data.draw(st.booleans(), label=label))

    def span(self, lo_hi: tuple[int, int], label: str) -> int:
        lo, hi = lo_hi
        if lo == hi:
            return lo
        # Three landmarks are enough to reorder events; draws stay cheap to shrink.
        return self.pick_one((lo, (lo + hi) // 2, hi), label)


def fake_configs(**overrides: Any) -> st.SearchStrategy[FakeConfig]:
    """Fake configurations that vary what matters for scheduling bugs:
    immediate vs pending, splitting, partial receives, background progress,
    latency and completion-delay ranges.  Keyword arguments fix fields."""
    return st.builds(
        FakeConfig,
        immediate=st.sampled_from([0.0, 0.5, 1.0]),
        split=st.sampled_from([0.0, 0.3, 0.9]),
        partial_recv=st.sampled_from([0.0, 0.3, 0.9]),
        background=st.sampled_from([0.0, 0.2]),
        latency=st.sampled_from([(0, 0), (20_000, 200_000), (0, 2_000_000)]),
        completion_delay=st.sampled_from([(0, 0), (0, 50_000), (0, 1_000_000)]),
    ).map(lambda c: _override(c, overrides))


def _override(config: FakeConfig, overrides: dict[str, Any]) -> FakeConfig:
    if not overrides:
        return config
    from dataclasses import replace

    return replace(config, **overrides)
