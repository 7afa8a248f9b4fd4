"""A FIN right after part of a line (the eleventh red team's cancelled-send-closes-gracefully).

ovserver closes a connection with a send in flight abortively (``Server._close``: a send that CancelIoEx
found makes the close abortive), so that a FIN always follows whole replies.  It is ovserver's policy, not
every server's (a line server's client can tell a line cut short by its missing newline, and the README's
example server closes gracefully at its stop with a send in flight), so fakewinsock.testing's checker holds
a server to it only when its model says so, ``resets_cut_sends=True``: at the stop and at an idle time-out,
where the client reads the FIN, and, when serve() returned before the client read it (a pause), in what
waits unread in front of it (``FakePeer.peek``).  ``ovserver simulate`` always does.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from fakewinsock import FakeWinsock
from fakewinsock import testing as t
from fakewinsock.testing import ClientScript, EchoModel, Scenario
from ovserver import Limits, Server
from ovserver._events import EventServer
from ovserver._iocp import IocpServer
from ovserver._routines import RoutineServer
from tests.mutants.properties import OvserverUnderTest
from tests.mutants.red11_mutants import CancelledSendClosesGracefully

_MS = 1_000_000


def _stopped_while_paused() -> Scenario:
    """One echo client sends a line of 9000 bytes and reads nothing for 100 ms, in a window of 4 KiB: its
    reply is one send, 4 KiB of it in the window, the rest pending, nothing queued behind it, when the stop
    comes at 60 ms; serve() returns before the client reads again.  (Digits: the README example shouts its
    replies, and a digit is its own capital.)"""
    return Scenario((ClientScript.of(b"7" * 9000, chunk=16384, pause_at_ns=0, pause_ns=100 * _MS),),
                    t.FaultPlan((), stop_at_ns=60 * _MS), 4096)


def run(cls: type[Server], scenario: Scenario, seed: int, resets_cut_sends: bool = True) -> str | None:
    try:
        t.check_line_server(lambda ws, a: OvserverUnderTest(cls, ws, a, "echo", Limits(), 0), scenario,
                            EchoModel(resets_cut_sends=resets_cut_sends), seed=seed)
    except t.LineServerFailure as e:
        return str(e)
    return None


@pytest.mark.parametrize("cls", [EventServer, RoutineServer, IocpServer], ids=lambda c: c.model)
def test_a_correct_server_resets_a_client_whose_send_it_cancels_at_a_stop(cls: type[Server]) -> None:
    for seed in range(3):
        assert run(cls, _stopped_while_paused(), seed) is None, seed


def test_a_fin_after_part_of_a_line_at_a_stop_is_caught_with_the_flag() -> None:
    """Proof: the mutant cancels the send and closes gracefully; the FIN waits unread behind 4 KiB of the
    9001-byte line when serve() returns.  Without the flag it passes."""
    for seed in range(3):
        found = run(CancelledSendClosesGracefully, _stopped_while_paused(), seed)
        assert found is not None and "right after part of a line" in found, (seed, found)
        assert run(CancelledSendClosesGracefully, _stopped_while_paused(), seed, resets_cut_sends=False) is None


def _example_server() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "examples" / "my_server.py"
    spec = importlib.util.spec_from_file_location("_flag32_my_server", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_the_readme_example_closes_gracefully_mid_line_so_passes_only_without_the_flag() -> None:
    """The README's example server (examples/my_server.py) closes gracefully at its stop with a send in
    flight: it passes by default, and fails with ``resets_cut_sends=True``."""
    shout = _example_server().ShoutServer

    class UnderTest:
        def __init__(self, ws: FakeWinsock, address: tuple[str, int]) -> None:
            self.ws, self.server = ws, shout(ws, address)

        def serve(self) -> None:
            self.server.serve()

        def stop(self) -> None:
            self.server.request_stop(signal=self.ws.signal_event)

    for seed in range(3):
        t.check_line_server(UnderTest, _stopped_while_paused(), EchoModel(), seed=seed)
        with pytest.raises(t.LineServerFailure, match="right after part of a line"):
            t.check_line_server(UnderTest, _stopped_while_paused(), EchoModel(resets_cut_sends=True), seed=seed)


@pytest.mark.parametrize("bad", [1, "yes", None])
def test_resets_cut_sends_takes_a_bool(bad: object) -> None:
    with pytest.raises(ValueError, match="resets_cut_sends"):
        EchoModel(resets_cut_sends=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="resets_cut_sends"):
        t.ChatModel(resets_cut_sends=bad)  # type: ignore[arg-type]


def test_simulate_catches_it_on_a_seed_of_its_default_traffic() -> None:
    """On seed 15 of the default traffic a client that had not read its last replies when the server
    returned has the FIN behind part of a line (seeds 0-7: the sends cancelled at their stops had moved
    nothing into windows full of whole replies); the correct server resets it."""
    from ovserver import simulate

    r = simulate(100, 10, mode="echo", seed=15, server_class=CancelledSendClosesGracefully)
    assert not r.ok and any("right after part of a line" in e for e in r.errors), r.errors[:2]
    assert simulate(100, 10, mode="echo", seed=15, model="iocp").ok
