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
``winsock_summary``
    ``winsock_summary(line)`` adds a line to the "fakewinsock summary" section
    at the end of the session (it travels with the test's report, so it works
    under pytest-xdist); e.g. the size of a shrunk counterexample.

Program threads: after each test (and its fixtures' teardown), every program
thread still alive that the test made, on any fake (``fake_winsock``'s, or a
:class:`~fakewinsock.FakeWinsock` the test body made itself), is ended
(unwound where it is parked), so that no Python thread outlives its test; if
the test had passed, it then fails at teardown with a message naming each such
thread and what it was doing.  A test that means to leave threads behind ends
them itself with ``ws.end_threads()``.  Not covered: threads that a fixture of
wider scope than the function starts while it is set up (they may serve later
tests).

Marker ``@pytest.mark.requires_real_winsock``: the test needs ws2_32; it is
skipped, with that reason, where no real backend exists.

On failure, the report shows the seed, the command line that replays it, and
the tail of each fake's trace (``--winsock-trace-tail N`` records, default 40).
Fakes that :func:`fakewinsock.testing.check_line_server` creates inside the
test (for instance in each Hypothesis example) are shown too, the last one (the
failing example's, which Hypothesis replays last): its schedule (the seed, or
the number of choices drawn from Hypothesis, which replays from the example
database when the test runs again), the run's size and (unless the failure
message shows it already) its trace tail.

State lives only in each test item (``item.stash``, ``user_properties``), so
tests share nothing, also under pytest-xdist.

Options: ``--winsock-seed N`` (replay), ``--winsock-seed-base N`` (vary every
test's seed at once; ``random`` draws one and prints it).

Hypothesis profiles ``ci`` and ``fuzz`` and the shared example database
(``FAKEWINSOCK_EXAMPLE_DB``) are registered when this plugin loads, and
``HYPOTHESIS_PROFILE=NAME`` loads a profile when ``--hypothesis-profile`` is
not given: see :mod:`fakewinsock.fuzzing`.
"""

from __future__ import annotations

import contextvars
import importlib
import random
import sys
import zlib
from collections.abc import Callable, Generator, Iterator
from types import ModuleType
from typing import Any

import pytest

from ._backends import available_backends, get_backend
from ._fake import FakeWinsock, check_invariants_by_default
from ._interface import Winsock
from ._sim import FakeConfig
from ._threads import ProgramThread, Scheduler, thread_serial, threads_made_since

__all__: list[str] = []



def _fuzzing() -> ModuleType | None:
    try:  # Hypothesis is a test dependency, not a run-time one
        return importlib.import_module("fakewinsock.fuzzing")
    except ImportError:  # pragma: no cover - the tests run with Hypothesis
        return None


_FUZZING = _fuzzing()
if _FUZZING is not None:
    _FUZZING.register_profiles()  # before conftest.py files (which may replace them) and --hypothesis-profile

_INVARIANTS_KEY = pytest.StashKey[bool]()
_FAKES_KEY = pytest.StashKey[list[FakeWinsock]]()
_TRACKED_KEY = pytest.StashKey[list[tuple[FakeWinsock, Callable[[], str]]]]()
_SEED_KEY = pytest.StashKey[int]()
_THREAD_MARK_KEY = pytest.StashKey[int]()  # thread_serial() when the test's call began
_PASSED_KEY = pytest.StashKey[bool]()  # the call phase passed
_SUMMARY = "fakewinsock-summary"
#: Fakes made during the running test by fakewinsock.testing (the current item's list).
_tracked: contextvars.ContextVar[list[tuple[FakeWinsock, Callable[[], str]]] | None] = contextvars.ContextVar(
    "fakewinsock_tracked", default=None)


def track_fake(fake: FakeWinsock, describe: Callable[[], str]) -> None:
    """Show ``fake`` in the running test's failure report (no-op outside a test).
    ``describe()`` gives one line about the run.  Only the newest two are kept:
    in a Hypothesis test, the failing example is replayed last."""
    tracked = _tracked.get()
    if tracked is not None:
        tracked.append((fake, describe))
        del tracked[:-2]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fakewinsock")
    group.addoption("--winsock-seed", type=int, default=None,
                    help="run every fake_winsock with this seed (replay a failure)")
    group.addoption("--winsock-seed-base", default="0",
                    help="base mixed into every test's seed; 'random' draws one (printed in the header)")
    group.addoption("--winsock-trace-tail", type=int, default=40,
                    help="trace records shown for a failing test (default 40)")
    parser.addini("winsock_check_invariants", type="bool", default=False,
                  help="every FakeWinsock checks its own invariants after every Winsock call (slow; "
                       "for tests of the fake itself)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "winsock_config(**kwargs): FakeConfig fields for the fake_winsock fixture")
    config.addinivalue_line("markers", "requires_real_winsock: needs the real ws2_32 backend (Windows)")
    base = config.getoption("--winsock-seed-base")
    if base == "random":
        base = str(random.SystemRandom().randrange(2**32))
    config.stash[_SEED_KEY] = int(base)
    if _FUZZING is not None:
        _FUZZING.load_env_profile(config.getoption("--hypothesis-profile", None))
    if config.getini("winsock_check_invariants"):
        check_invariants_by_default(True)
        config.stash[_INVARIANTS_KEY] = True


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.stash.get(_INVARIANTS_KEY, False):
        check_invariants_by_default(False)


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
    return fake  # its threads are ended (and reported) after the test: pytest_runtest_teardown


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


@pytest.fixture
def winsock_summary(request: pytest.FixtureRequest) -> Callable[[str], None]:
    def add(line: str) -> None:
        request.node.user_properties.append((_SUMMARY, str(line)))
    return add


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    tracked: list[tuple[FakeWinsock, Callable[[], str]]] = []
    item.stash[_TRACKED_KEY] = tracked
    item.stash[_THREAD_MARK_KEY] = thread_serial()
    token = _tracked.set(tracked)
    try:
        return (yield)
    except BaseException as e:
        _explain_flaky(e, tracked)
        raise
    finally:
        _tracked.reset(token)


def _explain_flaky(e: BaseException, tracked: list[tuple[FakeWinsock, Callable[[], str]]]) -> None:
    """A FlakyStrategyDefinition from Hypothesis in a test whose fake draws its
    choices from Hypothesis: add the hint that says what usually causes it (the
    program under test is not steered by the draws alone), and at which of the
    fake's draws it was found if known.  Hypothesis often raises a second one
    while handling the first (that run then stopped drawing early): the test's
    error is the second, the draw is known to the first."""
    errors = sys.modules.get("hypothesis.errors")
    if errors is None or not isinstance(e, errors.FlakyStrategyDefinition):
        return
    from .testing._chooser import DIVERGENCE_ATTR, add_flaky_hint

    chain: list[BaseException] = []
    cur: BaseException | None = e
    while cur is not None and cur not in chain:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    drawn = any(getattr(fake.chooser, "draws", None) is not None for fake, _ in tracked)
    if drawn or any(getattr(x, DIVERGENCE_ATTR, None) is not None for x in chain):
        add_flaky_hint(e)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """After the fixtures' teardown: end the program threads the test left alive,
    and fail a test that had passed, naming them."""
    try:
        result = yield
    except BaseException:
        _end_left_threads(item)
        raise
    left = _end_left_threads(item)
    passed: bool = item.stash.get(_PASSED_KEY, False)
    if left and passed:
        pytest.fail(
            f"fakewinsock: the test left {len(left)} program thread{'s' if len(left) > 1 else ''} alive "
            "(ended now, unwound where each was parked):\n"
            + "".join(f"  {line}\n" for line in left)
            + "A test ends the threads it starts (stop the server, wait for its threads, close their "
              "handles), as the final WSACleanup's leak check asks; to leave them on purpose, call "
              "ws.end_threads() at the end of the test.",
            pytrace=False)
    return result


def _end_left_threads(item: pytest.Item) -> list[str]:
    """End the program threads alive after ``item``: those made since its call
    began (on any fake) and those of the fakes its ``fake_winsock`` or
    ``winsock_backend`` made; say what each was doing."""
    found: dict[int, tuple[Scheduler, list[ProgramThread]]] = {}  # by id(scheduler), in order of discovery
    mark = item.stash.get(_THREAD_MARK_KEY, None)
    entries = threads_made_since(mark) if mark is not None else []
    for fake in item.stash.get(_FAKES_KEY, []):
        sched = fake._kernel.sched
        if sched is not None:
            entries += [(sched, t) for t in sched.alive()]
    for sched, t in entries:
        threads = found.setdefault(id(sched), (sched, []))[1]
        if t not in threads and t in sched.alive():
            threads.append(t)
    left: list[str] = []
    several = sum(1 for _, threads in found.values() if threads) > 1
    for n, (sched, threads) in enumerate((v for v in found.values() if v[1]), 1):
        threads.sort(key=lambda t: t.ts.index)
        left += [f"{f'fake {n}: ' if several else ''}{t.describe_state()}" for t in threads]
        sched.unwind(threads)
    return left


def _trace_text(fake: FakeWinsock, tail: int) -> str:
    return (f"virtual time: {fake.now_ns / 1e9:.6f} s\n"
            f"last {min(tail, len(fake.trace))} of {fake.trace.count} trace records:\n"
            + fake.trace.to_text(fake.trace.tail(tail)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    """Once the test's reports are made, forget its fakes: pytest keeps every
    item until the session ends, and a fake holds its whole world (a
    Hypothesis-drawn one, the engine's data of every example: hundreds of MB
    for a long property), so a session of many such tests would keep them all."""
    try:
        return (yield)
    finally:
        item.stash.setdefault(_FAKES_KEY, []).clear()
        item.stash.setdefault(_TRACKED_KEY, []).clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    if call.when == "call":
        item.stash[_PASSED_KEY] = report.passed
    if not report.failed:
        return report
    tail = item.config.getoption("--winsock-trace-tail")
    fakes = item.stash.get(_FAKES_KEY, [])
    for i, fake in enumerate(fakes):
        name = "fakewinsock" if len(fakes) == 1 else f"fakewinsock #{i + 1}"
        text = (
            f"seed: {fake.seed}\n"
            f"replay: pytest '{item.nodeid}' --winsock-seed={fake.seed}\n"
            + _trace_text(fake, tail)
        )
        report.sections.append((name, text))
    tracked = item.stash.get(_TRACKED_KEY, [])
    if tracked and call.when == "call":
        fake, describe = tracked[-1]
        chooser = fake.chooser
        draws = getattr(chooser, "draws", None)
        if draws is not None:
            schedule = (f"schedule: {draws} choices drawn from Hypothesis; running the test again replays "
                        "the failing example from Hypothesis's example database")
        elif fake.seed == getattr(item, "funcargs", {}).get("winsock_seed"):
            schedule = (f"schedule: seed {fake.seed} (winsock_seed)\n"
                        f"replay: pytest '{item.nodeid}' --winsock-seed={fake.seed}")
        else:
            schedule = f"schedule: seed {fake.seed} (the same seed and scenario replay it)"
        text = f"{schedule}\nrun: {describe()}\n"
        if not (call.excinfo is not None and call.excinfo.errisinstance(AssertionError)
                and "last trace records:" in str(call.excinfo.value)):
            text += _trace_text(fake, tail)  # unless the failure message has it already
        report.sections.append(("fakewinsock (last fake the test made)", text))
    return report


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    found: list[tuple[str, int, str]] = []
    for key in ("passed", "failed", "xfailed", "xpassed"):
        for rep in terminalreporter.stats.get(key, []):
            if getattr(rep, "when", "call") != "call":
                continue
            for i, (name, value) in enumerate(getattr(rep, "user_properties", [])):
                if name == _SUMMARY:
                    found.append((rep.nodeid, i, str(value)))
    if found:
        terminalreporter.write_sep("=", "fakewinsock summary")
        for _, _, line in sorted(found):
            terminalreporter.write_line(line)
