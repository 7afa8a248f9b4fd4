"""``simulate`` keeps the cyclic garbage collector off the run's long-lived
objects (``_FrozenHeap``: ``gc.freeze`` once the plans are made and again as
each client joins, ``gc.unfreeze`` at the end), and leaves a caller
that froze objects itself alone.  (What it saves is measured in
``benchmarks/bench_scale.py events-scaling``, never here.)"""

from __future__ import annotations

import gc

from ovserver import simulate


def _frozen_while_clients_finish() -> tuple[list[int], bool]:
    """The freeze count each time a client finishes, and whether the run was good."""
    seen: list[int] = []
    r = simulate(12, 2, mode="chat", seed=1, plain=True, barrier=True,
                 progress=lambda done, total: seen.append(gc.get_freeze_count()))
    return seen, r.ok


def test_the_run_is_frozen_while_it_goes_and_released_after() -> None:
    assert gc.get_freeze_count() == 0
    seen, ok = _frozen_while_clients_finish()
    assert ok
    assert len(seen) == 12 and min(seen) > 0  # frozen: the plans, then the world as clients joined
    assert gc.get_freeze_count() == 0  # and put back at the end


def test_a_callers_own_freeze_is_left_alone() -> None:
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        seen, ok = _frozen_while_clients_finish()
        assert ok
        assert set(seen) == {before}  # nothing more frozen by the run
        assert gc.get_freeze_count() == before  # and nothing of the caller's unfrozen
    finally:
        gc.unfreeze()
