"""pytest plugin (registered through the ``pytest11`` entry point as ``fakewinsock``).

Fixtures:

``winsock_seed``
    This test's seed: stable per test (derived from its node id and the
    session's base seed), or the value of ``--winsock-seed`` to replay one.
``fake_winsock``
    A fresh :class:`~fakewinsock.FakeWinsock` seeded with ``winsock_seed``.
    Configure it per test with ``@pytest.mark.winsock_config(immediate=0.0, ...)``
    (keyword arguments of :class:`~fakewinsock.FakeConfig`).
``winsock_backend``
    A fresh backend, parametrized over the backends this machine has: always
    ``fake``; ``real`` on Windows.  Tests using it run once per backend.

Marker ``@pytest.mark.requires_real_winsock``: the test needs ws2_32; it is
skipped, with that reason, where no real backend exists.

On failure, the report shows the seed, the command line that replays it, and
the tail of each fake's trace (``--winsock-trace-tail N`` records, default 40).

Options: ``--winsock-seed N`` (replay), ``--winsock-seed-base N`` (vary every
test's seed at once; ``random`` draws one and prints it).
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from ._backends import available_backends, get_backend
from ._fake import FakeWinsock
from ._interface import Winsock
from ._sim import FakeConfig

__all__: list[str] = []

_FAKES_KEY = pytest.StashKey[list[FakeWinsock]]()
_SEED_KEY = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fakewinsock")
    group.addoption("--winsock-seed", type=int, default=None,
                    help="run every fake_winsock with this seed (replay a failure)")
    group.addoption("--winsock-seed-base", default="0",
                    help="base mixed into every test's seed; 'random' draws one (printed in the header)")
    group.addoption("--winsock-trace-tail", type=int, default=40,
                    help="trace records shown for a failing test (default 40)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "winsock_config(**kwargs): FakeConfig fields for the fake_winsock fixture")
    config.addinivalue_line("markers", "requires_real_winsock: needs the real ws2_32 backend (Windows)")
    base = config.getoption("--winsock-seed-base")
    if base == "random":
        base = str(random.SystemRandom().randrange(2**32))
    config.stash[_SEED_KEY] = int(base)


def pytest_report_header(config: pytest.Config) -> str:
    return (f"fakewinsock: backends {', '.join(available_backends())}; "
            f"seed base {config.stash[_SEED_KEY]}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "winsock_backend" in metafunc.fixturenames:
        metafunc.parametrize("winsock_backend", available_backends(), indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "real" in available_backends():
        return
    skip = pytest.mark.skip(reason="needs the real Winsock backend (Windows or Windows Python under Wine)")
    for item in items:
        if item.get_closest_marker("requires_real_winsock"):
            item.add_marker(skip)


@pytest.fixture
def winsock_seed(request: pytest.FixtureRequest) -> int:
    fixed = request.config.getoption("--winsock-seed")
    if fixed is not None:
        return int(fixed)
    base = request.config.stash[_SEED_KEY]
    return (zlib.crc32(request.node.nodeid.encode()) ^ base) & 0xFFFFFFFF


def _new_fake(request: pytest.FixtureRequest, seed: int) -> FakeWinsock:
    marker = request.node.get_closest_marker("winsock_config")
    config = FakeConfig(**marker.kwargs) if marker is not None else FakeConfig()
    fake = FakeWinsock(seed=seed, config=config)
    request.node.stash.setdefault(_FAKES_KEY, []).append(fake)
    return fake


@pytest.fixture
def fake_winsock(request: pytest.FixtureRequest, winsock_seed: int) -> FakeWinsock:
    return _new_fake(request, winsock_seed)


@pytest.fixture
def winsock_backend(request: pytest.FixtureRequest, winsock_seed: int) -> Iterator[Winsock]:
    name = getattr(request, "param", "fake")
    if name == "fake":
        yield _new_fake(request, winsock_seed)
    else:
        yield get_backend(name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    fakes = item.stash.get(_FAKES_KEY, [])
    if report.failed and fakes:
        tail = item.config.getoption("--winsock-trace-tail")
        for i, fake in enumerate(fakes):
            name = "fakewinsock" if len(fakes) == 1 else f"fakewinsock #{i + 1}"
            text = (
                f"seed: {fake.seed}\n"
                f"replay: pytest '{item.nodeid}' --winsock-seed={fake.seed}\n"
                f"virtual time: {fake.now_ns / 1e9:.6f} s\n"
                f"last {min(tail, len(fake.trace))} of {fake.trace.count} trace records:\n"
                + fake.trace.to_text(fake.trace.tail(tail))
            )
            report.sections.append((name, text))
    return report
