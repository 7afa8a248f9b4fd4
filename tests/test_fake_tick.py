"""GetTickCount64 on the fake: virtual milliseconds in steps of Windows'
default timer interrupt (15.625 ms), at no cost in virtual time and without a
scheduling point (the conformance suite checks what every backend shares:
tests/conformance/test_threads.py)."""

from __future__ import annotations

from fakewinsock import FakeWinsock


def test_the_tick_count_steps_as_windows_default_timer_does() -> None:
    ws = FakeWinsock(seed=0)
    seen = []
    for _ in range(9):
        seen.append(ws.GetTickCount64())
        ws.Sleep(10)
    # 0, 10, 20, ... ms of virtual time (plus each call's cost) read at 15.625 ms steps.
    assert seen == [0, 0, 15, 15, 31, 46, 46, 62, 78]
    before = ws.now_ns
    ws.GetTickCount64()
    assert ws.now_ns == before  # no virtual time, no Winsock call
