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
