"""The fake's own states are checked: an operation or a socket changes state only
as its transition table allows, and a broken rule is an InternalError naming the
object, its state and the refused transition (never swallowed)."""

from __future__ import annotations

import pytest

from fakewinsock import FakeConfig, FakeWinsock, InternalError
from fakewinsock._ops import (
    ARMED,
    COMPLETED,
    IN_FLIGHT,
    OP_TRANSITIONS,
    PENDING,
    POSTED,
    REAPED,
    OpState,
)
from fakewinsock._sockets import CLOSED, CONNECTED, FRESH, LISTENING, SOCKET_TRANSITIONS, Socket, SocketState
from tests.conformance._harness import Harness


@pytest.fixture
def h() -> Harness:
    ws = FakeWinsock(seed=3, config=FakeConfig(immediate=0.0, background=0.0))
    harness = Harness(ws)
    harness.start()
    return harness


def _fake(h: Harness) -> FakeWinsock:
    assert isinstance(h.ws, FakeWinsock)
    return h.ws


def test_a_refused_operation_transition_names_the_op_its_state_and_the_transition(h: Harness) -> None:
    a = h.accept()
    ov = h.overlapped()
    h.recv(a.sock, ov)
    op = _fake(h)._ops.by_ov[next(iter(_fake(h)._ops.by_ov))]
    assert op.state is PENDING
    with pytest.raises(InternalError, match=r"WSARecv op\d+ on socket 0x[0-9a-f]+: state pending cannot "
                                            r"become reaped \(not in the operation transition table\)"):
        op.check_to(REAPED)
    assert op.state is PENDING  # a refused change changes nothing
    h.ws.CancelIoEx(a.sock, ov)
    h.complete(a.sock, ov)
    assert op.state is REAPED
    h.finish()


def test_while_invariants_are_checked_every_change_a_part_makes_is_checked(h: Harness) -> None:
    """The parts assign ``op.state`` directly (free in the fake users run); in
    the project's tests (invariants on: ``Operations.checked``) each part checks
    its change against the table first, so a change the table refuses is an
    InternalError wherever it is made, and it happens before anything is
    written: the op is as it was."""
    a = h.accept()
    ov = h.overlapped()
    h.recv(a.sock, ov)
    ops = _fake(h)._ops
    assert ops.checked
    op = next(iter(ops.by_ov.values()))
    assert op.state is PENDING
    with pytest.raises(InternalError, match=r"WSARecv op\d+ on socket 0x[0-9a-f]+: state pending cannot "
                                            r"become completed \(not in the operation transition table\)"):
        ops.finish(op, 0, 0, "completed")  # completing an op that was never armed
    assert op.state is PENDING and op.nbytes == 0 and op.snapshot is not None
    h.ws.CancelIoEx(a.sock, ov)
    h.complete(a.sock, ov)
    assert op.state is REAPED
    with pytest.raises(InternalError, match=r"state reaped cannot become armed"):
        ops.arm(op)  # arming a reaped op
    assert op.state is REAPED
    h.finish()


def test_a_refused_socket_transition_names_the_socket_its_state_and_the_transition(h: Harness) -> None:
    s = h.socket()
    sock = _fake(h)._kernel.objects[s]
    assert isinstance(sock, Socket) and sock.state is FRESH
    with pytest.raises(InternalError, match=r"socket 0x[0-9a-f]+ \(fresh\): state fresh cannot become listening"):
        sock.to(LISTENING)
    h.close(s)
    assert sock.state is CLOSED
    with pytest.raises(InternalError, match=r"state closed cannot become connected"):
        sock.to(CONNECTED)
    h.finish()


def test_an_operation_missing_from_its_queue_is_an_internal_error_not_ignored(h: Harness) -> None:
    a = h.accept()
    ov = h.overlapped()
    h.recv(a.sock, ov)
    fake = _fake(h)
    op = next(iter(fake._ops.by_ov.values()))
    a.peer.send(b"x")
    while op.state is PENDING:  # until the data arrives and arms the receive
        fake._kernel.step(None)
    assert op.state is ARMED
    op.sock.recv_ops.remove(op)  # what a bug in the fake would do
    with pytest.raises(InternalError, match=r"WSARecv op\d+ on socket 0x[0-9a-f]+ completes but is not in its "
                                            r"socket's WSARecv queue"):
        fake.run_for(1.0)


def test_the_tables_cover_every_state_and_leave_final_states_final() -> None:
    assert {s for pair in OP_TRANSITIONS for s in pair} == set(OpState)
    assert {s for pair in SOCKET_TRANSITIONS for s in pair} == set(SocketState)
    assert not any(old is REAPED for old, _ in OP_TRANSITIONS)
    assert not any(old is CLOSED for old, _ in SOCKET_TRANSITIONS)
    assert IN_FLIGHT == (POSTED, PENDING, ARMED) and [s for s in OpState if s.in_flight] == list(IN_FLIGHT)
    assert not COMPLETED.in_flight and not REAPED.in_flight


def test_states_read_as_the_strings_they_were() -> None:
    # Messages, leaks() and fakewinsock.testing read them as text.
    assert f"({CONNECTED})" == "(connected)" and CONNECTED == "connected" and str(ARMED) == "armed"


# ---------------------------------------------------------------- invariants


def _busy(check: bool) -> tuple[FakeWinsock, Harness]:
    ws = FakeWinsock(seed=11, config=FakeConfig(split=0.5, check_invariants=check))
    h = Harness(ws)
    h.start()
    return ws, h


def test_the_invariants_hold_through_a_busy_exchange_and_change_no_schedule() -> None:
    traces = []
    for check in (False, True):
        ws, h = _busy(check)
        a = h.accept()
        a.peer.send(b"x" * 5000)
        assert h.recv_all(a.sock, 5000) == b"x" * 5000
        h.send(a.sock, b"y" * 3000)
        assert a.peer.recv_exactly(3000) == b"y" * 3000
        ws.invariants()
        h.finish()
        traces.append(ws.trace.to_text())
    assert traces[0] == traces[1]


def _broken_after_next_call(h: Harness, match: str) -> None:
    with pytest.raises(InternalError, match=match):
        h.ws.WSAGetLastError()


def test_a_miscounted_byte_in_flight_is_caught_after_the_next_call() -> None:
    ws, h = _busy(True)
    a = h.accept()
    h.send(a.sock, b"z" * 100)
    sock = ws._kernel.objects[a.sock]
    assert isinstance(sock, Socket) and sock.ep is not None
    sock.ep.in_flight += 1
    _broken_after_next_call(h, r"invariants are broken: <Endpoint c\d+ .*> counts \d+ bytes in flight but")


def test_a_pending_operation_in_no_queue_is_caught() -> None:
    ws, h = _busy(True)
    a = h.accept()
    ov = h.overlapped()
    h.recv(a.sock, ov)
    op = ws._ops.by_ov[next(k for k, o in ws._ops.by_ov.items() if o.kind == "WSARecv")]
    op.sock.recv_ops.clear()
    _broken_after_next_call(h, r"WSARecv op\d+ on socket 0x[0-9a-f]+ is pending and in 0 queues, not 1")


def test_a_reaped_operation_still_queued_is_caught() -> None:
    ws, h = _busy(True)
    a = h.accept()
    ov = h.overlapped()
    h.recv(a.sock, ov)
    op = ws._ops.by_ov[next(k for k, o in ws._ops.by_ov.items() if o.kind == "WSARecv")]
    op.state = REAPED  # as a bug that skips the table would
    _broken_after_next_call(h, r"is reaped but still registered.*is reaped but still queued")


def test_a_closed_socket_left_in_the_handle_table_is_caught() -> None:
    ws, h = _busy(True)
    s = h.socket()
    sock = ws._kernel.objects[s]
    assert isinstance(sock, Socket)
    sock.state = CLOSED
    _broken_after_next_call(h, r"handle 0x[0-9a-f]+ names socket 0x[0-9a-f]+ \(closed\)")


def test_a_wrong_snapshot_budget_is_caught() -> None:
    ws, h = _busy(True)
    a = h.accept()
    h.recv(a.sock, h.overlapped())
    ws._ops._copied += 7
    _broken_after_next_call(h, r"snapshot copies hold \d+ bytes but the budget counts")


def test_without_the_option_nothing_is_checked_after_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fakewinsock._fake._invariants_by_default", False)  # the project's ini turns it on
    ws, h = _busy(False)
    h.socket()
    ws._ops._copied += 7
    h.ws.WSAGetLastError()  # no check
    with pytest.raises(InternalError):
        ws.invariants()
