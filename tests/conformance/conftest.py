"""The conformance suite: one set of test bodies, run on every backend.

Each test takes the ``h`` fixture (a :class:`Harness` over one backend) and uses
only the Winsock interface and backend-neutral peers.  Backends:

* ``fake-pending``: the fake with every operation pending (FakeConfig(immediate=0));
* ``fake-immediate``: the fake completing at once whenever it can (immediate=1);
* ``fake-random``: the fake with seeded mixed choices, splits and partial receives;
* ``real``: ws2_32 through ctypes, where Windows (or Windows Python under Wine) runs.

A behaviour where Wine is known to differ from Windows carries
``@pytest.mark.wine_divergence("reason")``: under Wine it is an expected failure
(strict) with that reason; on Windows and the fake it must pass.  A divergence
that is a race in Wine (Wine sometimes gives Windows' outcome, sometimes not)
carries ``strict=False``: under Wine either outcome is accepted and reported
(xfail or xpass), never a silent skip; on Windows and the fake it must pass.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from fakewinsock import FakeConfig, FakeWinsock, get_backend
from fakewinsock._backends import available_backends

from ._harness import Harness

FAKE_CONFIGS = {
    "fake-pending": FakeConfig(immediate=0.0),
    "fake-immediate": FakeConfig(immediate=1.0, background=0.0),
    "fake-random": FakeConfig(immediate=0.5, split=0.5, partial_recv=0.3, background=0.2),
}


def _backend_ids() -> list[str]:
    ids = list(FAKE_CONFIGS)
    if "real" in available_backends():
        ids.append("real")
    return ids


def running_under_wine() -> bool:
    if sys.platform != "win32":
        return False
    import ctypes

    try:
        ntdll = ctypes.WinDLL("ntdll")  # type: ignore[attr-defined, unused-ignore]
    except OSError:
        return False
    return hasattr(ntdll, "wine_get_version")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "wine_divergence(reason): Wine differs from Windows here; expected to fail under Wine"
    )
    config.addinivalue_line(
        "markers",
        "needs_immediate: shows immediate completion; not collected for fake-pending, which never completes at once",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        bid = callspec.params.get("backend_id") if callspec is not None else None
        if bid == "fake-pending" and item.get_closest_marker("needs_immediate"):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(params=_backend_ids())
def backend_id(request: pytest.FixtureRequest) -> str:
    """The backend's id; a test marked wine_divergence becomes a strict xfail
    on the real backend under Wine (for tests with or without ``h``)."""
    marker = request.node.get_closest_marker("wine_divergence")
    if request.param == "real" and marker is not None and running_under_wine():
        strict = bool(marker.kwargs.get("strict", True))
        request.applymarker(pytest.mark.xfail(reason=f"Wine divergence: {marker.args[0]}", strict=strict))
    return str(request.param)


@pytest.fixture
def h(backend_id: str, request: pytest.FixtureRequest) -> Iterator[Harness]:
    if backend_id == "real":
        ws = get_backend("real")
    else:
        seed = _stable_seed(request.node.nodeid)
        ws = FakeWinsock(seed=seed, config=FAKE_CONFIGS[backend_id])
    harness = Harness(ws)
    harness.start()
    try:
        yield harness
        harness.finish()
    finally:
        if isinstance(ws, FakeWinsock):
            ws.end_threads()  # no program thread outlives its test


def _stable_seed(text: str) -> int:
    import zlib

    return zlib.crc32(text.encode())
