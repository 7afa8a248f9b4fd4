"""The README's "Testing your own server" example runs as written, and catches a bug.

``examples/my_server.py`` is a user's server (not ovserver) and
``examples/test_my_server.py`` its tests: the fixtures, a fixed scenario on a
seeded schedule, and a property over any scenario and schedule.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: The bug: the start of a line that one receive left over is forgotten (each
#: receive framed on its own), so a line split over two receives loses its head.
GOOD = "(c.partial + bytes(c.buf[:nbytes]))"
BAD = "(bytes(c.buf[:nbytes]))"


def run_example(tests: str, cwd: Path) -> str:
    """pytest on examples/TESTS in a subprocess (its .hypothesis/ goes to ``cwd``); its output, once it passed."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLES / tests)],
                            cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_example_passes(tmp_path: Path) -> None:
    assert "3 passed" in run_example("test_my_server.py", tmp_path)


def broken_example(pytester: pytest.Pytester, name: str = "my_server", good: str = GOOD, bad: str = BAD) -> None:
    """examples/NAME.py with ``good`` replaced by ``bad``, and its tests, in ``pytester``'s folder."""
    server = (EXAMPLES / f"{name}.py").read_text(encoding="utf-8")
    assert server.count(good) == 1
    pytester.makepyfile(**{name: server.replace(good, bad),
                           f"test_{name}": (EXAMPLES / f"test_{name}.py").read_text(encoding="utf-8")})


def trace_of(out: str) -> list[str]:
    return re.findall(r"\d{7} t=\S+ T\d .*", out)


def test_the_example_catches_a_framing_bug_and_replays_it(pytester: pytest.Pytester) -> None:
    broken_example(pytester)
    result = pytester.runpytest("-p", "no:cacheprovider", "test_my_server.py::test_two_clients")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert re.search(r"client \d \(127.0.0.1:\d+\): unexpected line b'", out), out
    m = re.search(r"replay: pytest 'test_my_server.py::test_two_clients' --winsock-seed=(\d+)", out)
    assert m, out
    assert trace_of(out)

    replay = pytester.runpytest("-p", "no:cacheprovider", "test_my_server.py::test_two_clients",
                                f"--winsock-seed={m.group(1)}")
    assert trace_of(replay.stdout.str()) == trace_of(out)


@pytest.mark.parametrize(("profile", "max_lines"), [("default", 3), ("ci", 3)])
def test_the_property_shrinks_the_bug_to_one_split_line(pytester: pytest.Pytester, profile: str,
                                                        max_lines: int) -> None:
    """The recipe's settings (report_multiple_bugs=False: one bug at a time, so Hypothesis shrinks from
    the first failing example; with its default it generated on for a while measured by the wall clock
    and the example it shrank from varied run to run) and a fixed seed: the same shrunk example every
    run.  Every size the swarm draws shrinks (a slow reader's megabytes too), so it is a short line or
    two that a send boundary or the fake split.

    Both of Hypothesis's own profiles: "default" (a developer's machine, seed 0) and "ci", which
    Hypothesis loads by itself wherever a CI variable such as ``CI`` is set: derandomized, so the seed
    is ignored and the example comes from the test's source.  There it shrinks to three one-byte lines
    of one client through a one-byte window, beside a client that leaves at once (the clean-clone CI
    of fba817e ran under ``CI`` and met the default profile's bound of two lines only in the other).
    Since the swarm's decoys (search12) the default profile's first failure is a departures scenario,
    which shrinks to 2 clients, 3 one-byte lines in 3 sends: a talker sends at least three lines, one
    a send (a departures talker draws no cut of its stream, so the shrinker cannot switch departures
    off without moving the draws after it); its bound went from two lines to three.  Since search13's
    features (boundary_sends, busy_server: new draws in every example) it is an early-stop scenario that
    shrinks to 1 line of 2 bytes beside two clients that send nothing (a shrinker may stop at three
    clients, as test_testing's shrink test says): the client bound went from two to three.  Since
    busy_server is in the default swarm (search14: one more switch drawn in every example) the "ci"
    profile's shrink ends at one client whose third line is the shortest long line the swarm draws
    without a line limit (1000 bytes, after two empty ones), split by a receive: the same bug, at a
    local minimum of the shrinker.  Since search15's draws (a reset storm and a busy stop: two more draws
    in every example) the "default" profile's ends likewise at one client, a 4096-byte long line (the
    next the swarm draws without a line limit: 4095, 4096, 4097) and an empty one, 4097 bytes: the
    bound for a long line went from 1003 bytes to 4100.  search21's reset_after_fin (new draws in every
    example) moved "default" into busy_server's flood, whose length was computed, not drawn: 6148 lines,
    375000 bytes, and the feature was reverted; since the flood's length is a ladder draw that shrinks to
    none (search23) "default" ends at 1 client, 1 line of 1 byte (backpressure), and "ci" at 2 clients that
    each flood one one-byte line (busy_server).  (Run from a worktree, these subprocesses import the
    installed fakewinsock unless PYTHONPATH names the worktree.)  Since the shapes joined the default swarm
    (shapes29, shrink29: new draws in every example) "default" ends at 1 client, 2 lines, 19 bytes in 2 sends
    (slow_readers: a 16-byte line and an empty one, a local minimum): a slow reader's short lines are allowed
    up to 32 bytes."""
    broken_example(pytester)
    # A subprocess: --hypothesis-seed sets Hypothesis's global seed, which would outlive an in-process run.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--hypothesis-seed=0",
                                           f"--hypothesis-profile={profile}",
                                           "test_my_server.py::test_any_schedule")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert re.search(r"(Falsifying example|Failing test case): test_any_schedule\(", out)  # (Hypothesis < / >= 6.16x)
    m = re.search(r"run: (\d+) clients, (\d+) lines, (\d+) bytes in (\d+) sends", out)
    assert m, out
    clients, lines, nbytes, sends = map(int, m.groups())
    long_line = "(features: long_lines)" in out and clients == 1 and nbytes <= 4100  # (see above)
    slow_reader = "(features: slow_readers)" in out and clients == 1 and nbytes <= 32  # (see above)
    assert clients <= 3 and lines <= max_lines and (nbytes <= 8 or long_line or slow_reader), m.group(0)  # short ...
    assert "schedule drawn from Hypothesis:" in out  # ... split by a send boundary or by the fake


#: A server steered by more than the fake's draws: a module-level counter carried from one example to the
#: next sizes each client's receive buffer (4096 bytes, or 1 every other client), so the same draws do not
#: give the same calls (a receive of 1 byte is never partial: the fake asks no "partial" question).
BUFFER = "        self.buf = bytearray(4096)\n"
BUFFER_CARRIED = "        self.buf = bytearray(4096 if RUNS[0] % 2 else 1)\n"
COUNTER = "\nRUNS = [0]  # carried from one example to the next\n"
#: ... counted per example (per server made): each run's receive buffers differ from the last run's, so
#: a replay right after its example makes other calls whatever the example (counted per client, it did
#: only when the clients before had the right parity, which the swarm's sequence decided: search12's
#: decoys moved the ci profile's to one that replayed consistently).
SERVER_INIT = "    def __init__(self, ws: Winsock, address: tuple[str, int]) -> None:\n"
SERVER_COUNTED = SERVER_INIT + "        RUNS[0] += 1\n"
HINT = "fakewinsock: the program under test did not make the same Winsock calls for the same draws"


@pytest.mark.parametrize("profile", ["default", "ci"])
def test_a_server_not_steered_by_the_draws_alone_gets_the_hint(pytester: pytest.Pytester, profile: str) -> None:
    """The framing bug, and state carried across examples: Hypothesis finds the
    bug, then cannot replay the example (the replay's calls differ) and raises
    FlakyStrategyDefinition, its bare "Inconsistent data generation".  The
    fakewinsock plugin adds what it means for a program on the fake (the same
    draws must give the same Winsock calls), the usual causes (a set of
    objects, id(), the wall clock, real threads, state carried across
    examples), and the draw and Winsock call where Hypothesis noticed it."""
    server = (EXAMPLES / "my_server.py").read_text(encoding="utf-8")
    assert server.count(GOOD) == server.count(BUFFER) == 1
    assert server.count(SERVER_INIT) == 1
    server = server.replace(GOOD, BAD).replace(BUFFER, BUFFER_CARRIED).replace(SERVER_INIT, SERVER_COUNTED) + COUNTER
    pytester.makepyfile(my_server=server,
                        test_my_server=(EXAMPLES / "test_my_server.py").read_text(encoding="utf-8"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--hypothesis-seed=0",
                                           f"--hypothesis-profile={profile}",
                                           "test_my_server.py::test_any_schedule")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "FlakyStrategyDefinition: Inconsistent data generation" in out, out
    # on the test's error (the last one: Hypothesis raises another while handling the first)
    assert HINT in out and out.rindex(HINT) > out.rindex("Inconsistent data generation"), out
    assert "state carried across examples" in out and "iterating a set of objects" in out
    assert re.search(r"Hypothesis found it at the fake's draw \d+ \(question '[\w:]+', [^)]*, "
                     r"in \w+, Winsock call \d+\)", out), out  # (W...: WSARecv, WaitFor...; or AcceptEx)


# ---------------------------------------------------------------- the completion-port example

#: The bug: one stop packet fewer than workers, so one worker never leaves
#: GetQueuedCompletionStatus and serve() waits for it for ever.
STOPS = "for _ in threads:\n            ws.PostQueuedCompletionStatus"
STOPS_BAD = "for _ in threads[1:]:\n            ws.PostQueuedCompletionStatus"


def test_the_pool_example_passes(tmp_path: Path) -> None:
    """Its property draws thread interleavings too; no thread may be left behind (the plugin's check)."""
    assert "3 passed" in run_example("test_pool_server.py", tmp_path)


def test_the_pool_example_reports_a_worker_never_stopped_naming_each_thread(pytester: pytest.Pytester) -> None:
    broken_example(pytester, "pool_server", STOPS, STOPS_BAD)
    result = pytester.runpytest("-p", "no:cacheprovider", "test_pool_server.py::test_three_clients")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "the server raised DeadlockError: every program thread is blocked" in out, out
    assert re.search(r"T1 \(main thread, id 0x[0-9a-f]+\): waits in WaitForMultipleObjects", out), out
    assert re.search(r"T\d \(thread 0x[0-9a-f]+, id 0x[0-9a-f]+, start routine PoolServer\.worker\): "
                     r"waits in GetQueuedCompletionStatus", out), out
    assert "replay: pytest 'test_pool_server.py::test_three_clients' --winsock-seed=" in out


def test_the_pool_example_takes_a_stop_that_comes_while_it_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy server (1 ms a call) asked to stop 3 ms in, while serve() is still making its events: the stop is
    kept and served (the example's request_stop once signalled an event serve() had not made yet: an
    AttributeError, which the property's swarm drew in CI on 2026-12-07)."""
    from fakewinsock.testing import ClientFault, ClientScript, EchoModel, FaultPlan, Scenario, check_line_server

    monkeypatch.syspath_prepend(str(EXAMPLES))
    from test_pool_server import UnderTest  # type: ignore[import-not-found]

    early = Scenario((ClientScript((), (), (), pause_at_ns=0, pause_ns=3_000_000_000),
                      ClientScript((b"0",), (b"0\n",), (0,))),
                     FaultPlan((ClientFault(0, "leave", 0, 0),), stop_at_ns=3_000_000), window=1,
                     call_cost_ns=1_000_000)
    for seed in range(3):
        check_line_server(UnderTest, early, EchoModel(), seed=seed)
