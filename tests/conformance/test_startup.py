"""WSAStartup / WSACleanup (winsock-semantics.md "WSAStartup / WSACleanup").

Sources: the seed's version rules; Microsoft's WSAStartup page (the return value
is the error code); Wine's sock.c test_WithoutWSAStartup / test_WithWSAStartup
(reference counting, the last WSACleanup destroys every socket).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fakewinsock import FakeConfig, FakeWinsock, Winsock, get_backend
from fakewinsock.constants import (
    MAKEWORD,
    WSAVERNOTSUPPORTED,
)

from ._harness import Harness
from ._startup_checks import CHECKS


def fresh(backend_id: str) -> Winsock:
    """A backend with no WSAStartup of its own.

    On the real backend the process's own ``socket`` module already holds one
    WSAStartup reference: the tests that need the count to reach zero use
    :func:`run_fresh` instead."""
    if backend_id == "real":
        return get_backend("real")
    return FakeWinsock(seed=1, config=FakeConfig(strict_cleanup=False))


@pytest.mark.parametrize(
    ("requested", "expected"),
    [((2, 2), (2, 2)), ((1, 3), (1, 1)), ((2, 3), (2, 2)), ((3, 1), (2, 2)), ((3, 3), (2, 2)), ((1, 1), (1, 1))],
)
def test_version_negotiation(backend_id: str, requested: tuple[int, int], expected: tuple[int, int]) -> None:
    """The seed: 1.3 gives 1.1, 2.3 gives 2.2, 3.x gives 2.2; wHighVersion is 2.2."""
    ws = fresh(backend_id)
    err, data = ws.WSAStartup(MAKEWORD(*requested))
    assert err == 0 and data is not None
    assert data.wVersion == MAKEWORD(*expected)
    assert data.wHighVersion == MAKEWORD(2, 2)
    assert ws.WSACleanup() == 0


@pytest.mark.parametrize("minor", [0, 1, 3])
def test_major_version_zero_is_not_supported(backend_id: str, minor: int) -> None:
    """The seed: requesting 0.x fails with WSAVERNOTSUPPORTED, returned (not last error)."""
    ws = fresh(backend_id)
    err, _ = ws.WSAStartup(MAKEWORD(0, minor))
    assert err == WSAVERNOTSUPPORTED


def run_fresh(backend_id: str, check: str) -> None:
    """Run ``_startup_checks.<check>`` on a backend whose Winsock was never started.

    On the fake, a new FakeWinsock.  On the real backend, this process's
    ``socket`` module already holds a WSAStartup reference, so the check runs in
    a fresh interpreter that imports only fakewinsock (which does not import
    ``socket``) and fails if anything there imported it."""
    if backend_id != "real":
        CHECKS[check](fresh(backend_id))
        return
    import fakewinsock

    paths = [str(Path(fakewinsock.__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1])]
    code = (
        "import sys\n"
        f"sys.path[:0] = {paths!r}\n"
        "from fakewinsock._real import RealWinsock\n"
        "from conformance._startup_checks import CHECKS\n"
        "assert '_socket' not in sys.modules, 'socket is imported, so WSAStartup has been called'\n"
        f"CHECKS[{check!r}](RealWinsock())\n"
        "assert '_socket' not in sys.modules, 'socket is imported, so WSAStartup has been called'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"fresh process failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"


def test_calls_before_startup_fail(backend_id: str) -> None:
    run_fresh(backend_id, "calls_before_startup_fail")


def test_reference_counting(backend_id: str) -> None:
    run_fresh(backend_id, "reference_counting")


def test_last_error_is_settable(h: Harness) -> None:
    h.ws.WSASetLastError(12345)
    assert h.ws.WSAGetLastError() == 12345


@pytest.mark.wine_divergence(
    "Wine 8.0 looks the handle up first: WSAENOTSOCK after the last WSACleanup, where Windows checks the "
    "start-up count first (WSANOTINITIALISED, each function's Microsoft page; ReactOS's ws2_32 prolog)"
)
def test_socket_calls_after_the_last_cleanup_fail(backend_id: str) -> None:
    run_fresh(backend_id, "socket_calls_after_the_last_cleanup_fail")
