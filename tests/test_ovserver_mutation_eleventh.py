"""ovserver: survivors of the eleventh session's fresh mutation samples
(issue 18, seed 23: ``tools/mutation_sample.sh 'ovserver._core*' 40 23``, and
``_events``, ``_iocp`` 30 each, ``_routines`` all 45), each asserted as what a
client of the server sees."""

from __future__ import annotations

import pytest

from fakewinsock import FakeWinsock
from fakewinsock.constants import WSAECONNRESET
from ovserver import Limits, Server
from ovserver._protocol import error_line
from tests.ovserver_session import Session, exact
from tests.test_ovserver_backpressure import WINDOW, lines
from tests.test_ovserver_server import MODELS, MS, Client, run, stop_at


@pytest.mark.parametrize("model", MODELS)
def test_a_hung_up_client_that_sends_on_is_cut_off_with_a_reset(model: str) -> None:
    """A line over the limit: the error line, then shutdown(SD_SEND) (the
    client reads EOF).  The client sends on, more than a line's worth, and
    stops: the server, which read all of it (nothing unread) and has no send
    in flight, cuts it off with an abortive close: the client sees a reset
    after the EOF, not a graceful close."""
    hostile: list[Client] = []

    def script(ws: FakeWinsock, server: Server) -> None:
        h = Client(ws)
        h.send_at(MS, b"y" * 150 + b"\n")
        h.send_at(5 * MS, b"z" * 120)
        hostile.append(h)
        stop_at(ws, server, 20 * MS)

    _, stats = run(script, model=model, limits=Limits(max_line=100))
    h = hostile[0]
    assert bytes(h.data) == error_line(100)
    assert h.peer.was_reset
    assert (stats.hung_up, stats.cut_off) == (1, 1)



@pytest.mark.parametrize("model", MODELS)
def test_an_idle_check_that_closes_a_later_client_still_times_out_the_ones_after_it(model: str) -> None:
    """Chat with back-pressure and an idle time-out: a deaf member holds the
    talker back until its stall time-out; the idle check that cuts it off lets
    the talker read on, and that receive fails at once (10054, injected), so
    the talker is closed too, inside the same check.  A silent reader who
    joined after them is still timed out at its own deadline (400 ms after it
    connected), not kept until the stop."""
    ws = FakeWinsock(seed=0, config=exact(1.0, window=WINDOW, max_calls=400_000))
    s = Session(model, "chat", ws=ws, workers=2, limits=Limits(max_queued=64 * 1024, high_water=16 * 1024),
                stall_timeout_ms=300, idle_timeout_ms=400)
    deaf = s.client(1.0, reads=False)
    talker = s.client(2.0)
    silent = s.client(3.0)
    talker.send(10.0, b"".join(lines(b"t", 4000)))
    s.at(250.0, lambda: ws.inject_error("WSARecv", WSAECONNRESET))  # the talker's next receive: its resume
    at_500: list[tuple[bool, bool, bool]] = []
    s.at(500.0, lambda: at_500.append((deaf.reset_by_server, talker.peer.was_reset, silent.closed_by_server)))
    stats = s.run(stop_ms=1500)
    assert at_500 == [(True, True, True)]
    assert (stats.stalled, stats.cut_off, stats.reset, stats.posted_failed) == (1, 1, 1, 1)
    assert (stats.timed_out, stats.closed_at_stop) == (1, 0)
