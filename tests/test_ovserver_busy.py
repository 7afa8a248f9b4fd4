"""A server under load keeps accepting and serving new clients.

Under Wine, with 200 clients sending and reading without a pause, the events
model once left a new client unserved for over 5 s (CI of fc9363a, tools/wine/e2e.sh
"busy"): a client whose receives and sends all completed at once was handled
again and again by its group without the group ever waiting, so the group kept
the server lock, and with it the acceptor and every other group, to itself for
as long as that client kept up (up to 1.9 s at a time, measured there).

On the fake: every operation that can complete at once does (``exact(1.0)``,
as on Wine's loopback), the window is larger than the stream (every receive of
it finds data), and the world moves on while the server works (``background=1.0``:
at each Winsock call, whatever is due happens, such as a new client's
connection).  One client sends a long stream of lines and reads its echoes;
just after the stream started, a new client connects and sends one line, and
a client connected before (in the stream's group, in the events model) sends
one.  Each must be echoed within a bound of Winsock calls (each takes 1 us of
virtual time), long before the stream has been echoed.
"""

from __future__ import annotations

import pytest

from fakewinsock import FakeWinsock
from ovserver._events import EventServer
from tests.ovserver_session import MODELS, MS, Client, Session, exact

#: The stream: about 2.3 MB of lines, 150 receives of 16 KB.
STREAM = b"".join(b"line %06d %s\n" % (i, b"x" * (i % 80)) for i in range(40_000))
#: The fake's window: larger than the stream.
WINDOW = 8 << 20
#: When the stream is sent, and when the new client connects and sends its line (ms).
STREAM_AT, FRESH_AT = 1.0, 1.05
#: How long the new client may wait for its echo (ns): 200 Winsock calls.  The
#: models take 40-60 us; serving the stream takes 300 us (routines) to 1.2 ms.
FRESH_LIMIT_NS = MS // 5


def _served_at(s: Session, c: Client, want: int) -> list[int]:
    """The virtual time at which ``c`` has received ``want`` bytes, once it has."""
    at: list[int] = []
    changed = c.peer.on_change
    assert changed is not None

    def on_change(peer: object) -> None:
        changed(c.peer)
        if not at and len(c.data) >= want:
            at.append(s.ws.now_ns)

    c.peer.on_change = on_change
    return at


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("model", MODELS)
def test_a_new_client_is_served_while_another_keeps_every_operation_completing_at_once(model: str, seed: int) -> None:
    ws = FakeWinsock(seed=seed, config=exact(1.0, window=WINDOW, background=1.0))
    s = Session(model, ws=ws, workers=2)
    hose = s.client(0)
    hose.send(STREAM_AT, STREAM)
    fresh = s.client(FRESH_AT)
    fresh.send(FRESH_AT, b"fresh\n")
    hose_done = _served_at(s, hose, len(STREAM))
    fresh_done = _served_at(s, fresh, 6)
    neighbour = s.client(0.5)
    neighbour.send(FRESH_AT, b"neighbour\n")
    neighbour_done = _served_at(s, neighbour, 10)
    s.run(stop_ms=500)
    assert bytes(hose.data) == STREAM and bytes(fresh.data) == b"fresh\n" and bytes(neighbour.data) == b"neighbour\n"
    for who, done in (("neighbour", neighbour_done[0]), ("new client", fresh_done[0])):
        waited = done - int(FRESH_AT * MS)
        assert waited < FRESH_LIMIT_NS and done < hose_done[0], (
            f"the {who} waited {waited / 1000:.0f} us for its echo (limit {FRESH_LIMIT_NS / 1000:.0f} us); "
            f"the stream's last echo came at {hose_done[0] / 1000:.0f} us, the {who}'s at {done / 1000:.0f} us")


#: The wake event signalled every 2 us from 1 ms to 3 ms (a group's wait cycle takes longer).
WAKE_EVERY_NS, WAKE_FROM, WAKE_UNTIL = 2_000, 1.0, 3.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_group_serves_its_clients_while_its_wake_event_keeps_being_signalled(seed: int) -> None:
    """Events model: a group's wake event is signalled for every connection the
    acceptor hands over and every chat line another group routes to one of
    its clients.  Under Wine, a connect storm delayed a client already
    connected by up to 2.4 s: WSAWaitForMultipleEvents reports the lowest
    signalled index, the wake event was index 0, and the acceptor signalled it
    again before every wait of the group, so the group handled only its inbox.
    Here an actor signals a group's wake event faster than the group waits
    (as the acceptor in a storm does); a client of the group sends a line at
    1 ms and must get its echo long before the signals stop, at 3 ms.  Before
    the wake event took its turn among the clients, the echo came at 3.01 ms."""
    ws = FakeWinsock(seed=seed, config=exact(1.0, background=1.0))
    s = Session("events", ws=ws)
    server = s.server
    assert isinstance(server, EventServer)
    client = s.client(0.5)
    client.send(WAKE_FROM, b"hello\n")
    served = _served_at(s, client, 6)

    def signal(_: object) -> None:
        if server._groups:
            ws.signal_event(server._groups[0].wake)
        if ws.now_ns + WAKE_EVERY_NS < WAKE_UNTIL * MS:
            ws.call_at(ws.now_ns + WAKE_EVERY_NS, signal)

    s.at(WAKE_FROM, lambda: signal(None))
    s.run(stop_ms=10)
    assert bytes(client.data) == b"hello\n"
    waited = served[0] - int(WAKE_FROM * MS)
    assert waited < FRESH_LIMIT_NS, f"the client waited {waited / 1000:.0f} us for its echo (wake event signalled)"
