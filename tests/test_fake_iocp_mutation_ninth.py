"""The fake's completion ports (``fakewinsock._iocp``): survivors of the ninth
session's fresh mutation sample (issue 18, ``tools/mutation_sample.sh
'fakewinsock._iocp*' 30 22``), each asserted as what a user of the fake relies
on."""

from __future__ import annotations

from fakewinsock import WSAOVERLAPPED
from fakewinsock.constants import FALSE, INVALID_HANDLE_VALUE, TRUE, WAIT_TIMEOUT
from tests.test_fake_mutation_survivors import fake, harness


def test_a_thread_released_by_a_port_since_closed_can_wait_on_another_port() -> None:
    """A thread that took a packet from one port counts as running for it;
    once that port is closed, the thread's next GetQueuedCompletionStatus, on
    another port, is an ordinary wait (here: it times out)."""
    h = harness()
    ws = fake(h)
    first = ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, 0)
    other = h.port()
    ov = WSAOVERLAPPED()
    assert ws.PostQueuedCompletionStatus(first, 5, 1, ov) == TRUE
    got = ws.GetQueuedCompletionStatus(first, 0)
    assert got[:3] == (TRUE, 5, 1)  # this thread is now released by (counts against) the first port
    assert ws.CloseHandle(first) == TRUE
    got = ws.GetQueuedCompletionStatus(other, 0)
    assert got[0] == FALSE and ws.GetLastError() == WAIT_TIMEOUT
    h.finish()


def test_a_posted_packet_dropped_by_closing_its_port_is_traced_with_no_operation() -> None:
    """A packet PostQueuedCompletionStatus queued belongs to no operation:
    when the port is closed with it queued, the trace's "dropped" record
    says op 0 (and "posted packet")."""
    h = harness()
    ws = fake(h)
    port = ws.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, 0)
    assert ws.PostQueuedCompletionStatus(port, 3, 9, None) == TRUE
    assert ws.CloseHandle(port) == TRUE
    assert [(r.call, r.handle, r.op, r.detail) for r in ws.trace if r.what == "dropped"] == \
        [("packet", port, 0, "port closed: posted packet (key=0x9 bytes=3 status=0x0)")]
    h.finish()
