"""Testing my_server.ShoutServer on the fake: the fixtures, a scenario, a property.

Run: ``pytest examples/test_my_server.py`` (the fakewinsock plugin comes with
the package).  A failure shows the scenario's size, the schedule (a seed, or
the choices Hypothesis drew), the tail of the fake's trace, and how to replay.
"""

from __future__ import annotations

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from my_server import ShoutServer

from fakewinsock import FakeWinsock, sockaddr_in
from fakewinsock.constants import AF_INET, IPPROTO_TCP, MAKEWORD, SOCK_STREAM, WSA_FLAG_OVERLAPPED
from fakewinsock.testing import ClientScript, Scenario, check_line_server, scenarios


class ShoutModel:
    """What a correct ShoutServer sends: each line back to its sender, in capitals."""

    broadcasts = False

    def greeting(self, name: bytes) -> bytes:
        return b""

    def reply(self, name: bytes, line: bytes) -> tuple[bytes, bytes]:
        return line.upper() + b"\n", b""  # (to the sender, to every other client)


class UnderTest:
    """How check_line_server runs the server: serve() until stop()."""

    def __init__(self, ws: FakeWinsock, address: tuple[str, int]) -> None:
        self.ws, self.server = ws, ShoutServer(ws, address)

    def serve(self) -> None:
        self.server.serve()

    def stop(self) -> None:  # called inside the fake's scheduler: no Winsock call, just a signal
        self.server.request_stop(signal=self.ws.signal_event)


def test_two_clients(winsock_seed: int) -> None:
    """A fixed scenario on a seeded schedule: a failure prints the seed, and
    ``--winsock-seed=N`` replays it."""
    scenario = Scenario((ClientScript.of(b"hello", b"world", chunk=3),  # sends of 3 bytes: lines split
                         ClientScript.of(b"x" * 5000, b"bye", arrive_ns=100_000)))
    report = check_line_server(UnderTest, scenario, ShoutModel(), seed=winsock_seed)
    assert report.replies == 4


@settings(max_examples=200, deadline=None, report_multiple_bugs=False,
          phases=[p for p in Phase if p is not Phase.explain])
@given(scenario=scenarios(clients=(1, 4), lines=(0, 4)), data=st.data())
def test_any_schedule(scenario: Scenario, data: st.DataObject) -> None:
    """Any clients (resets, early leaves, refusals, WSAENOBUFS on AcceptEx, a
    stop mid-session) on any schedule Hypothesis draws: every reply right, no
    client dropped or starved, no busy loop, nothing leaked."""
    check_line_server(UnderTest, scenario, ShoutModel(), data=data)


def test_port_taken(fake_winsock: FakeWinsock) -> None:
    """The fake_winsock fixture: a fresh seeded fake for a direct test."""
    ws = fake_winsock
    ws.WSAStartup(MAKEWORD(2, 2))
    s = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
    addr = sockaddr_in("127.0.0.1", 7000)
    assert ws.bind(s, addr, 16) == 0
    with pytest.raises(OSError, match="error 10048"):  # WSAEADDRINUSE
        ShoutServer(ws, ("127.0.0.1", 7000)).serve()
    ws.closesocket(s)
    assert ws.WSACleanup() == 0  # the fake's leak check: the server closed what it opened
