"""The fake's own states are checked: an operation or a socket changes state only
as its transition table allows, and a broken rule is an InternalError naming the
object, its state and the refused transition (never swallowed)."""

from __future__ import annotations

import pytest

from fakewinsock import FakeConfig, FakeWinsock, InternalError
from fakewinsock._ops import ARMED, COMPLETED, IN_FLIGHT, OP_TRANSITIONS, PENDING, POSTED, REAPED, OpState
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
        op.to(REAPED)
    assert op.state is PENDING  # a refused change changes nothing
    h.ws.CancelIoEx(a.sock, ov)
    h.complete(a.sock, ov)
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
    assert IN_FLIGHT == {POSTED, PENDING, ARMED} and COMPLETED not in IN_FLIGHT


def test_states_read_as_the_strings_they_were() -> None:
    # Messages, leaks() and fakewinsock.testing read them as text.
    assert f"({CONNECTED})" == "(connected)" and CONNECTED == "connected" and str(ARMED) == "armed"
