"""ovserver's events model (``ovserver._events``, thread groups): what the
mutation run (issue 18, ``tools/mutation.sh``) found no test asserting."""

from __future__ import annotations

from fakewinsock import FakeWinsock
from tests.ovserver_session import Session, exact


def test_a_group_thread_that_ends_normally_exits_with_code_0() -> None:
    """A group's thread returns 0 when its clients are gone (1 is kept for a
    thread that died of an exception): what GetExitCodeThread, a debugger or the
    fake's trace shows."""
    ws = FakeWinsock(seed=1, config=exact(0.0))
    s = Session("events", ws=ws)
    clients = [s.client(0.01 * i) for i in range(3)]
    for i, c in enumerate(clients):
        c.send(2, b"%d\n" % i)
        c.close(5)
    stats = s.run(stop_ms=20)
    assert [bytes(c.data) for c in clients] == [b"%d\n" % i for i in range(3)]
    exits = [r.detail for r in ws.trace if r.what == "thread" and r.call == "exit"]
    assert stats.threads_started == 1 and len(exits) == 1
    assert exits[0].endswith(" exit_code=0")
