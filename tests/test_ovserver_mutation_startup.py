"""ovserver's core (``ovserver._core``): survivors of the mutation run (issue
18) in ``Server.run``'s start-up and in a stop cut short by a failed wait,
each asserted as what a user of the server relies on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from fakewinsock import FakeWinsock
from fakewinsock._types import StartupResult
from fakewinsock.constants import (
    MAKEWORD,
    SOCKET_ERROR,
    WSA_INVALID_HANDLE,
    WSA_WAIT_FAILED,
    WSANOTINITIALISED,
    WSASYSNOTREADY,
)
from ovserver import Limits, ServerConfig, ServerError, create_server
from tests.ovserver_session import MODELS, MS, Session, exact


class OlderWinsock(FakeWinsock):
    """A Winsock whose highest version is ``version`` (a Winsock 2.0 such as
    Windows 95's update, or a 1.1 stack): WSAStartup(2.2) succeeds with
    wVersion set to it, as WSAStartup does when the DLL's highest version is
    lower than the one asked for."""

    version = MAKEWORD(2, 0)

    def WSAStartup(self, wVersionRequired: int) -> StartupResult:
        err, data = super().WSAStartup(wVersionRequired)
        assert err == 0 and data is not None
        return StartupResult(0, replace(data, wVersion=self.version, wHighVersion=self.version))


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(("major", "minor"), [(2, 0), (1, 1), (3, 2)])
def test_a_winsock_that_is_not_2_2_is_refused_and_cleaned_up(model: str, major: int, minor: int) -> None:
    """The lecture notes' version check: the server needs 2.2 exactly; any
    other version WSAStartup grants (2.0: only the minor differs; 1.1: both;
    3.2: only the major) is a ServerError saying what was granted, and the
    server balances its WSAStartup with WSACleanup before raising (a second
    WSACleanup then finds Winsock not initialised)."""
    ws = OlderWinsock(seed=0, config=exact())
    ws.version = MAKEWORD(major, minor)
    server = create_server(ws, ServerConfig(port=0, model=model))
    with pytest.raises(ServerError) as info:
        server.run()
    assert str(info.value) == f"Winsock 2.2 is not available (got {major}.{minor})"
    assert ws.WSACleanup() == SOCKET_ERROR and ws.WSAGetLastError() == WSANOTINITIALISED
    assert ws.open_handles() == []


class NotReady(FakeWinsock):
    """WSAStartup fails with WSASYSNOTREADY (the network subsystem is not
    ready) and, as Windows does for its failures, still fills in the WSADATA
    it was given (2.2 here)."""

    def WSAStartup(self, wVersionRequired: int) -> StartupResult:
        _, data = super().WSAStartup(MAKEWORD(0, 0))  # fails, counts no start-up, fills in WSADATA (2.2)
        assert data is not None
        return StartupResult(WSASYSNOTREADY, data)


@pytest.mark.parametrize("model", MODELS)
def test_a_failed_wsastartup_with_its_wsadata_filled_in_is_a_server_error(model: str) -> None:
    """A WSAStartup that fails is a ServerError with its error code, even
    though its WSADATA says 2.2: the code decides, not the data; no socket is
    made and nothing is balanced (WSACleanup would fail)."""
    ws = NotReady(seed=0, config=exact())
    server = create_server(ws, ServerConfig(port=0, model=model))
    with pytest.raises(ServerError) as info:
        server.run()
    assert str(info.value) == f"WSAStartup failed (error {WSASYSNOTREADY})"
    assert server.address is None
    assert ws.WSACleanup() == SOCKET_ERROR and ws.WSAGetLastError() == WSANOTINITIALISED


class WaitFailsWhileStopping(FakeWinsock):
    """The routines model's one wait fails (WSA_WAIT_FAILED, last error
    WSA_INVALID_HANDLE) the first time it is called from ``after_ms`` on."""

    after_ms = 5
    failed = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closed: list[object] = []  # every handle closesocket was given, in order

    def closesocket(self, s: int) -> int:
        self.closed.append(s)
        return super().closesocket(s)

    def WSAWaitForMultipleEvents(self, cEvents: int, lphEvents: Sequence[int], fWaitAll: int, dwTimeout: int,
                                 fAlertable: int) -> int:
        if self.now_ns >= self.after_ms * MS and not self.failed:
            self.failed = True
            self.WSASetLastError(WSA_INVALID_HANDLE)
            return WSA_WAIT_FAILED
        return super().WSAWaitForMultipleEvents(cEvents, lphEvents, fWaitAll, dwTimeout, fAlertable)


def test_a_wait_failing_during_a_stop_raises_its_own_error_and_closes_each_socket_once() -> None:
    """The stop has begun (listener, pending AcceptEx's socket and the
    client's socket closed) and the wait for their cancelled operations
    fails: run() re-raises that wait's ServerError, closing nothing a second
    time (the AcceptEx socket it closed is forgotten, not a handle to close
    again on the way out)."""
    ws = WaitFailsWhileStopping(seed=0, config=exact())
    s = Session("routines", ws=ws)
    c = s.client(0)
    c.send(1, b"hello\n")
    s.stop(5)  # the wait that is blocked then wakes; the next one (after the stop began) fails
    with pytest.raises(ServerError) as info:
        s.run()
    assert ws.failed
    assert str(info.value) == f"WSAWaitForMultipleEvents failed: {WSA_WAIT_FAILED:#x} (error {WSA_INVALID_HANDLE})"
    assert len(ws.closed) == 3 and len(set(ws.closed)) == 3  # listener, AcceptEx's socket, the client's
    assert all(isinstance(h, int) for h in ws.closed)
    ws.run_for(0.001)
    assert bytes(c.data) == b"hello\n" and c.closed_by_server


@pytest.mark.parametrize("model", MODELS)
def test_a_hang_up_sends_fin_after_the_error_line_and_waits_for_the_client(model: str) -> None:
    """A line over the limit: the server sends its error line, then a FIN
    (shutdown SD_SEND) while it keeps reading; the client sees the error line
    and then the end of the stream, long before it closes itself at 8 ms; the
    connection ends as one hang-up once the client has gone."""
    s = Session(model, limits=Limits(max_line=64))
    rude = s.client(0)
    rude.send(1, b"x" * 100 + b"\n")
    seen: list[tuple[bytes, bool]] = []
    s.at(5, lambda: seen.append((bytes(rude.data), rude.peer.at_eof)))
    rude.close(8)
    stats = s.run(stop_ms=20)
    assert seen == [(b"* error: line longer than 64 bytes\n", True)], "no FIN within 4 ms of the error line"
    assert (stats.hung_up, stats.ended, stats.reset, stats.closed_at_stop) == (1, 1, 0, 0)


@pytest.mark.parametrize("model", MODELS)
def test_a_hung_up_client_that_sends_its_fin_at_once_still_gets_its_error_line(model: str) -> None:
    """A line over the limit and the client's FIN right behind it, while it
    does not read and the window (16 bytes) cannot take the 36-byte error line
    at once: the error line is still queued or in flight when the server reads
    the FIN.  The server still owes it: the client, reading at 10 ms, gets the
    whole error line and then the end of the stream, not a reset (the sixth red
    team's hangup-fin-resets-error-line closed such a client at once)."""
    s = Session(model, limits=Limits(max_line=64), fake=exact(window=16))
    rude = s.client(0, reads=False)
    rude.send(1, b"x" * 100 + b"\n")
    s.at(1.001, rude.peer.shutdown)
    data = bytearray()
    got: list[tuple[bytes, bool, bool]] = []
    for ms in (10, 11, 12, 13, 14, 15):  # reading from 10 ms on: the window opens, the rest comes
        s.at(ms, lambda: data.extend(rude.peer.recv_nowait(1 << 20)) if not rude.peer.was_reset else None)
    s.at(20, lambda: got.append((bytes(data), rude.peer.at_eof, rude.peer.was_reset)))
    rude.close(30)
    stats = s.run(stop_ms=40)
    assert got == [(b"* error: line longer than 64 bytes\n", True, False)]
    assert (stats.hung_up, stats.reset) == (1, 0)
