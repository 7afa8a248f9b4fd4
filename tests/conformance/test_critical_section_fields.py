"""The fields InitializeCriticalSection and EnterCriticalSection write into a
CRITICAL_SECTION (fidelity session 20).

Source: ReactOS's API test ``modules/rostests/apitests/ntdll/RtlCriticalSection.c``
(Test_Init, Test_Acquire; 2023).  ReactOS's API tests are written against
Windows and run there; this one's expectations branch on the Windows version
(debug info up to Vista, the flags accepted from Windows 7 on) and on the
number of processors, so they are Windows' values, not ReactOS's: supporting
evidence, as the project reads ReactOS's tests (docs/semantics-findings.md
sections 23 and 50).  kernel32's InitializeCriticalSection is ntdll's
RtlInitializeCriticalSection (a forwarded export).  The bodies are the
project's own.
"""

from __future__ import annotations

import os

import pytest

from fakewinsock import CRITICAL_SECTION
from fakewinsock.constants import TRUE

from ._harness import Harness

#: RtlInitializeCriticalSection's spin count on Windows Vista and later with more
#: than one processor: 2000 spins (0x7D0) and RTL_CRITICAL_SECTION_FLAG_DYNAMIC_SPIN
#: (0x02000000); 0 with one processor.
DEFAULT_SPIN_COUNT_MP = 0x020007D0
#: The fake's machine: FakeWinsock's documented processor count (fakewinsock._iocp.PROCESSORS).
FAKE_PROCESSORS = 4


def _processors(h: Harness) -> int:
    return FAKE_PROCESSORS if h.is_fake else (os.cpu_count() or 1)


@pytest.mark.wine_divergence("Wine 8.0's RtlInitializeCriticalSectionEx stores the spin count it is given, 0 "
                             "for InitializeCriticalSection; Windows (Vista on, several processors) gives the "
                             "dynamic default 0x020007D0 (ReactOS's RtlCriticalSection API test, Test_Init)")
def test_a_new_section_has_the_default_spin_count(h: Harness) -> None:
    """InitializeCriticalSection: LockCount -1, RecursionCount 0, OwningThread
    and LockSemaphore NULL, and SpinCount the default: 0x020007D0 (2000 spins,
    dynamic) on a machine with several processors, 0 on one.  Entering it (also
    recursively) without contention leaves LockSemaphore and SpinCount alone."""
    cs = CRITICAL_SECTION()
    h.ws.InitializeCriticalSection(cs)
    spin = DEFAULT_SPIN_COUNT_MP if _processors(h) > 1 else 0
    assert (cs.LockCount, cs.RecursionCount, cs.OwningThread, cs.LockSemaphore) == (-1, 0, 0, 0)
    assert cs.SpinCount == spin
    h.ws.EnterCriticalSection(cs)
    assert h.ws.TryEnterCriticalSection(cs) == TRUE
    assert (cs.RecursionCount, cs.OwningThread, cs.LockSemaphore, cs.SpinCount) == (
        2, h.ws.GetCurrentThreadId(), 0, spin)
    h.ws.LeaveCriticalSection(cs)
    h.ws.LeaveCriticalSection(cs)
    assert cs.SpinCount == spin
    h.ws.DeleteCriticalSection(cs)


@pytest.mark.wine_divergence("Wine 8.0's RtlDeleteCriticalSection leaves LockCount -1 (probed); Windows zeroes "
                             "the whole structure (measured on Windows 11 by an emulator's kernel32 module; "
                             "ReactOS's RtlDeleteCriticalSection likewise)")
def test_deleting_a_section_zeroes_every_field(h: Harness) -> None:
    """DeleteCriticalSection of a section that was entered and left: every
    field 0 (DebugInfo, LockCount, RecursionCount, OwningThread, LockSemaphore,
    SpinCount); docs/semantics-findings.md section 53."""
    cs = CRITICAL_SECTION()
    h.ws.InitializeCriticalSection(cs)
    h.ws.EnterCriticalSection(cs)
    h.ws.LeaveCriticalSection(cs)
    h.ws.DeleteCriticalSection(cs)
    assert (cs.DebugInfo, cs.LockCount, cs.RecursionCount, cs.OwningThread, cs.LockSemaphore,
            cs.SpinCount) == (0, 0, 0, 0, 0, 0)
