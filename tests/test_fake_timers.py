"""The kernel's timers fire in (time, order of call_at) order, whatever the
mix of near and far times: the windows the kernel keeps them in
(``Kernel.call_at``: a heap for the next ones, unsorted lists for later
windows of time once the heap holds ``_HEAP_ENOUGH``) are an implementation
detail that must give exactly the order of one heap of every timer, which
every schedule depends on.  The tests lower the heap's limits
(``_HEAP_ENOUGH``, ``_HEAP_SPAN``, ``_HEAP_SPLIT``) so that a few dozen
timers take every path."""

from __future__ import annotations

import heapq

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fakewinsock._kernel as kernel_module
from fakewinsock import FakeWinsock

#: Delays from now: past (clamped to now), within a window, across a few, far ahead.
_DELAYS = st.one_of(
    st.integers(-100_000, 0),
    st.integers(0, 70_000),
    st.integers(0, 1_000_000),
    st.integers(0, 10_000_000_000),
    st.sampled_from([0, 65_535, 65_536, 65_537, 131_072]),
    st.builds(lambda k, r: (k << 16) + r, st.integers(0, 12), st.integers(0, 65_535)),  # the next few windows
)
#: A step: add timers (with delays from now), or fire the next one.
_STEPS = st.lists(st.one_of(st.lists(_DELAYS, min_size=1, max_size=6), st.just("fire")), max_size=80)


@settings(max_examples=400, deadline=None)
@given(_STEPS, st.integers(1, 12), st.integers(0, 40), st.integers(1, 30))
def test_timers_fire_as_one_heap_would_fire_them(steps: list[list[int] | str], enough: int, span: int,
                                                 split: int) -> None:
    saved = kernel_module._HEAP_ENOUGH, kernel_module._HEAP_SPAN, kernel_module._HEAP_SPLIT
    kernel_module._HEAP_ENOUGH, kernel_module._HEAP_SPAN, kernel_module._HEAP_SPLIT = enough, span, split
    try:
        _fire_as_one_heap(steps)
    finally:
        kernel_module._HEAP_ENOUGH, kernel_module._HEAP_SPAN, kernel_module._HEAP_SPLIT = saved


def _fire_as_one_heap(steps: list[list[int] | str]) -> None:
    ws = FakeWinsock(seed=0)
    kernel = ws._kernel
    fired: list[int] = []
    model: list[tuple[int, int]] = []  # one heap of (time, number) of every pending timer
    expected: list[int] = []
    number = 0
    for step in steps:
        if isinstance(step, str):  # "fire"
            if not model:
                assert kernel.step(None) is False
                continue
            t, k = heapq.heappop(model)
            expected.append(k)
            assert kernel.step(None) is True
            assert kernel.now_ns >= t and fired == expected
            continue
        for delay in step:
            number += 1
            when = kernel.now_ns + delay
            kernel.call_at(when, fired.append, number)
            heapq.heappush(model, (max(when, kernel.now_ns), number))
        assert sorted(t for t, *_ in kernel.pending_timers()) == sorted(t for t, _ in model)
        assert kernel.timers[0][0] == model[0][0]  # the heap's first is the next timer of all
    while model:
        expected.append(heapq.heappop(model)[1])
        assert kernel.step(None) is True
    assert fired == expected
    assert kernel.step(None) is False and not kernel.pending_timers()


def test_timers_of_later_windows_wait_outside_the_heap_and_fire_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel_module, "_HEAP_SPLIT", 3)
    ws = FakeWinsock(seed=0)
    kernel = ws._kernel
    fired: list[str] = []
    kernel.call_at(kernel.now_ns + 5_000_000_000, fired.append, "far")
    kernel.call_at(kernel.now_ns + 1_000, fired.append, "near")
    assert len(kernel.timers) == 2  # one heap while it is small
    kernel.call_at(kernel.now_ns + 1_000_000_000, fired.append, "middle")  # three: split
    assert [name for *_, name in kernel.timers] == ["near"]
    kernel.call_at(kernel.now_ns + 6_000_000_000, fired.append, "farther")
    kernel.call_at(kernel.now_ns + 6_000_000_000, fired.append, "farther, second")
    assert len(kernel.timers) == 1 and len(kernel.pending_timers()) == 5
    while kernel.step(None):
        pass
    assert fired == ["near", "middle", "far", "farther", "farther, second"]


def test_a_timer_of_the_first_later_window_joins_that_window_not_the_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel_module, "_HEAP_SPLIT", 3)
    monkeypatch.setattr(kernel_module, "_HEAP_ENOUGH", 2)
    ws = FakeWinsock(seed=0)
    kernel = ws._kernel
    w = 1 << 16  # a window of time
    t0 = ((kernel.now_ns >> 16) + 1) << 16
    kernel.call_at(t0, lambda _: None)
    assert kernel.step(None) and kernel.now_ns == t0  # the clock at the start of a window
    fired: list[str] = []
    for when, name in ((t0 + 100, "a"), (t0 + w + 10, "x1"), (t0 + 2 * w + 50_000, "c"),  # three: split
                       (t0 + 3 * w, "c2"), (t0 + 200, "b"), (t0 + w + 20, "x2")):
        kernel.call_at(when, fired.append, name)
    assert sorted(name for *_, name in kernel.timers) == ["a", "b", "x1", "x2"]  # this window and the next
    for _ in range(3):
        assert kernel.step(None)
    assert fired == ["a", "b", "x1"] and len(kernel.timers) == 1  # the clock in the heap's last window
    kernel.call_at(t0 + 2 * w + 60_000, fired.append, "d")  # c's window: after c, not into the heap
    while kernel.step(None):
        pass
    assert fired == ["a", "b", "x1", "x2", "c", "d", "c2"]


def test_a_big_heap_with_far_windows_is_split_and_fires_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel_module, "_HEAP_SPLIT", 4)
    ws = FakeWinsock(seed=0)
    kernel = ws._kernel
    fired: list[int] = []
    kernel.call_at(kernel.now_ns + 1_000_000_000, fired.append, 4)  # alone: the heap takes it, a second ahead
    kernel.call_at(kernel.now_ns + 2_000, fired.append, 1)
    kernel.call_at(kernel.now_ns + 1_000, fired.append, 0)
    assert len(kernel.timers) == 3
    kernel.call_at(kernel.now_ns + 3_000, fired.append, 2)  # four, one a second ahead: split
    assert len(kernel.timers) == 3 and len(kernel.pending_timers()) == 4
    kernel.call_at(kernel.now_ns + 999_000_000, fired.append, 3)
    while kernel.step(None):
        pass
    assert fired == [0, 1, 2, 3, 4]


def test_a_split_keeps_the_windows_up_to_its_span_in_the_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel_module, "_HEAP_SPLIT", 5)
    monkeypatch.setattr(kernel_module, "_HEAP_SPAN", 1)
    ws = FakeWinsock(seed=0)
    kernel = ws._kernel
    w = 1 << 16  # a window of time
    t0 = ((kernel.now_ns >> 16) + 1) << 16
    kernel.call_at(t0, lambda _: None)
    assert kernel.step(None) and kernel.now_ns == t0  # the clock at the start of a window
    fired: list[str] = []
    for when, name in ((t0 + 1_000_000_000, "far"), (t0 + 100, "a"), (t0 + w + 100, "b"), (t0 + 2 * w + 100, "g"),
                       (t0 + 200, "c")):  # the first alone (the heap takes it), then the heap holds 5: split
        kernel.call_at(when, fired.append, name)
    assert sorted(name for *_, name in kernel.timers) == ["a", "b", "c"]  # this window and the next (span 1)
    assert kernel._top == (t0 >> 16) + 1  # (else each push would split again: the same order, more work)
    kernel.call_at(t0 + w + 500, fired.append, "d")  # in the heap's windows
    kernel.call_at(t0 + 3 * w, fired.append, "e")  # beyond the span: a later window
    assert sorted(name for *_, name in kernel.timers) == ["a", "b", "c", "d"]
    while kernel.step(None):
        pass
    assert fired == ["a", "c", "b", "d", "g", "e", "far"]
