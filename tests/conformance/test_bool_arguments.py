"""BOOL parameters are ints on every backend: None is not FALSE.

The real backend's ctypes prototypes refuse None for a BOOL, so a program
passing None for fWaitAll, fAlertable or fWait fails on Windows before the
call is made; the fake refuses it the same way (TypeError), or a program that
passes every test on the fake would fail on Windows.  Found by mutation
testing: ovserver with FALSE replaced by None passed all its tests on the fake.
"""

from __future__ import annotations

import pytest

from fakewinsock.constants import FALSE, WSA_WAIT_TIMEOUT

from ._harness import Harness


@pytest.mark.parametrize("argument", ["fWaitAll", "fAlertable"])
def test_wait_refuses_none_for_a_bool(h: Harness, argument: str) -> None:
    ev = h.event()
    flags: dict[str, int | None] = {"fWaitAll": FALSE, "fAlertable": FALSE}
    flags[argument] = None
    with pytest.raises(TypeError, match=argument):
        h.ws.WSAWaitForMultipleEvents(1, [ev], flags["fWaitAll"], 0, flags["fAlertable"])  # type: ignore[arg-type]
    assert h.ws.WSAWaitForMultipleEvents(1, [ev], FALSE, 0, FALSE) == WSA_WAIT_TIMEOUT  # ints are fine


def test_get_overlapped_result_refuses_none_for_fwait(h: Harness) -> None:
    s = h.socket()
    with pytest.raises(TypeError, match="fWait"):
        h.ws.WSAGetOverlappedResult(s, h.overlapped(), None)  # type: ignore[arg-type]
