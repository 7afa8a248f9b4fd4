"""A FIN at a stop before every reply to the lines the server had taken (red13's dropped-asked-after-leave,
fin36).

With the model's ``resets_cut_sends`` (ovserver's policy: a close that drops output, a send in flight or
output queued, is abortive) the checker holds a FIN read at the stop to every reply of the lines the
server had taken 1 ms before the stop request (time to handle them), as the client's looks saw: before,
only a FIN right after part of a line was reported, so a close that dropped whole replies queued behind a
completed send passed.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from fakewinsock import WSABUF, WSAOVERLAPPED, CompletionRoutine, FakeWinsock
from fakewinsock import testing as t
from fakewinsock._types import IoResult
from fakewinsock.testing import ClientScript, EchoModel, FaultPlan, Scenario, _checker
from ovserver import Limits, Mode, Server, ServerConfig
from ovserver._iocp import IocpServer
from tests.mutants.red13_mutants import DroppedAskedAfterLeave
from tests.ovserver_session import exact

_MS = 1_000_000
SEND_SIZE = 21  # half a line: the stop comes after a send that ends one


class StopAfterAnImmediateSend:
    """An ovserver iocp server (one worker, sends of 21 bytes: half a line) whose stop, asked for at the
    scenario's moment, is requested right after its next WSASend that completes at once: the close then finds that
    send completed, its packet not yet handled (the cancel finds nothing), with more output queued behind
    it (tests/test_ovserver_close_order.py's race, at the checker's stop)."""

    def __init__(self, cls: type[Server], ws: FakeWinsock, address: tuple[str, int], linger: bool) -> None:
        self.ws, self.asked, self.linger = ws, False, linger
        self.server = cls(ws, ServerConfig(host=address[0], port=address[1], model=cls.model, mode=Mode.ECHO,
                                           limits=Limits(), workers=1, send_size=SEND_SIZE))
        send = ws.WSASend

        def sending(s: int, lpBuffers: Sequence[WSABUF], dwBufferCount: int, dwFlags: int,
                    lpOverlapped: WSAOVERLAPPED, lpCompletionRoutine: CompletionRoutine | None) -> IoResult:
            result = send(s, lpBuffers, dwBufferCount, dwFlags, lpOverlapped, lpCompletionRoutine)
            if result[0] == 0 and self.asked:
                self.asked = False
                self.server.request_stop(signal=ws.signal_event)
            return result

        ws.WSASend = sending  # type: ignore[method-assign]

    def serve(self) -> None:
        self.server.run()
        if self.linger:  # 20 ms of virtual time before serve() returns: the client reads the server's FIN
            self.ws.run_for(0.02)

    def stop(self) -> None:
        self.asked = True


def _lines_then_stop() -> Scenario:
    """One echo client sends 8 lines of 42 bytes at once and reads 50 bytes a millisecond, in a window of
    64 bytes; the stop comes 3 ms later, while the server still sends their echo."""
    lines = [b"line %d, padded to forty-two bytes ......." % i for i in range(8)]
    return Scenario((ClientScript.of(*lines, read_bytes=50, read_every_ns=_MS),), FaultPlan((), stop_at_ns=3 * _MS),
                    64)


def run(cls: type[Server], seed: int, linger: bool = False) -> str | None:
    try:
        t.check_line_server(lambda ws, a: StopAfterAnImmediateSend(cls, ws, a, linger), _lines_then_stop(),
                            EchoModel(resets_cut_sends=True), seed=seed, config=exact(1.0))
    except t.LineServerFailure as e:
        return str(e)
    return None


@pytest.mark.parametrize("linger", [False, True], ids=["unread", "read"])
def test_a_correct_server_resets_a_client_whose_queued_output_it_drops_at_a_stop(linger: bool) -> None:
    for seed in range(3):
        assert run(IocpServer, seed, linger) is None, seed


@pytest.mark.parametrize("linger", [False, True], ids=["unread", "read"])
def test_a_fin_at_a_stop_before_whole_replies_is_caught(monkeypatch: pytest.MonkeyPatch, linger: bool) -> None:
    """Proof: the mutant asks the hub whether output is dropped after the hub forgot it, so its close is
    graceful: the server's FIN follows only some of the 8 replies, on the wire when serve() returns (red11's
    check does not look at bytes on the wire), or, with 20 ms more before serve() returns, read by the
    client right after a whole line (seeds 0 and 2: the stop comes after a send that ends a line).  With the
    rule before (only a FIN right after part of a line) it passes."""
    where = "at the stop after" if linger else "at the stop (not read yet when serve() returned) after"
    seeds = (0, 2) if linger else (0, 1, 2)  # (read on seed 1, the FIN follows part of a line: red11's check)
    for seed in seeds:
        found = run(DroppedAskedAfterLeave, seed, linger)
        assert found is not None and where in found and "of the 8 own lines owed for the 8 lines" in found, (
            seed, found)
    monkeypatch.setattr(_checker._Client, "fin_before_replies_at_stop", lambda self, got=None, where="": False)
    for seed in seeds:
        assert run(DroppedAskedAfterLeave, seed, linger) is None, seed
