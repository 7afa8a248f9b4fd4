"""Back-pressure and the clients that stop being chat members (red13), in every model, on the fake.

A chat member that ends its input (FIN) or is hung up (a line too long) gets
no more lines, so it holds no sender back and no sender holds it back: an
ended one over the mark keeps what it is owed, without a stall clock, until it
has read it; a hung-up one is read on while another member is over the mark,
so that its end is seen and its connection closed.  The README recipe's
checker allows a reset of a client owed more than half the mark, and its
"still holds the socket" check needs the client gone a second before the run
ends: these behaviours are checked here.

The fake's window is 16 KB, so a member that does not read makes the server's
send pend at once; a reader drains 2 KB every 2 ms.
"""

from __future__ import annotations

import pytest

from fakewinsock import FakeWinsock
from ovserver import Limits
from ovserver._protocol import chat_line, error_line, welcome_line
from tests.ovserver_session import MODELS, Session, exact
from tests.test_ovserver_backpressure import lines, read_slowly

WINDOW = 16 * 1024
MARK = 16 * 1024


def session(model: str, stall_ms: int, max_line: int = 64 * 1024) -> Session:
    ws = FakeWinsock(seed=0, config=exact(1.0, window=WINDOW, max_calls=400_000))
    return Session(model, "chat", ws=ws, workers=2,
                   limits=Limits(max_line=max_line, max_queued=64 * 1024, high_water=MARK), stall_timeout_ms=stall_ms)


@pytest.mark.parametrize("model", MODELS)
def test_chat_a_member_that_ends_over_the_mark_is_not_cut_off_by_the_stall_timeout(model: str) -> None:
    """A member goes over the mark (a talker's 100 KB, read by no one), half-closes 10 ms later and reads
    nothing for 300 ms, three times the stall time-out: it gets no more lines and holds no one back, so its
    stall clock stops; it then reads every line routed to it before its FIN, and the server's FIN.
    (end-keeps-over-mark kept it over the mark: cut off, reset, at the stall time-out.)"""
    s = session(model, stall_ms=100)
    ender = s.client(1.0, reads=False)
    talker = s.client(2.0)
    sent = lines(b"t", 1500)
    talker.send(10.0, b"".join(sent))
    s.at(20.0, ender.peer.shutdown)
    read_slowly(s, ender, 300.0, 1400.0)
    stats = s.run(stop_ms=1500)
    assert not ender.reset_by_server and ender.closed_by_server and stats.stalled == 0 and stats.ended == 1
    got = bytes(ender.data)
    routed = b"".join(chat_line(talker.name, ln) for ln in sent)
    head = welcome_line(ender.name)
    assert got.startswith(head) and routed.startswith(got[len(head):]) and got.endswith(b"\n")
    assert len(got) > len(head) + MARK  # it was over the mark when it ended


@pytest.mark.parametrize("model", MODELS)
def test_chat_a_hung_up_member_is_read_on_while_another_is_over_the_mark(model: str) -> None:
    """A member that reads nothing is over the mark (a talker's 100 KB; a stall time-out of 2 s keeps it);
    meanwhile a third member sends a line over max_line, gets the error line and the server's FIN, and
    closes: the server must read on from it (it is no member: no one's queue holds it back), see its end and
    close its socket.  (hold-ignores-membership held it back: never read again, its socket held until the
    stop.)"""
    s = session(model, stall_ms=2000, max_line=1000)
    deaf = s.client(1.0, reads=False)
    talker = s.client(2.0)
    rude = s.client(3.0)
    talker.send(10.0, b"".join(lines(b"t", 1500)))
    rude.send(50.0, b"x" * 1500 + b"\n")
    rude.close(100.0)
    held: list[int | None] = []
    s.at(300.0, lambda: held.append(s.ws.held_socket(rude.peer)))
    s.at(300.0, lambda: held.append(s.ws.held_socket(deaf.peer) and 1))
    stats = s.run(stop_ms=400)
    assert held == [None, 1]  # the rude one's socket closed; the deaf one's still open (over the mark)
    assert bytes(rude.data).endswith(error_line(1000)) and rude.closed_by_server
    assert stats.hung_up == 1 and stats.ended == 1 and stats.stalled == 0
