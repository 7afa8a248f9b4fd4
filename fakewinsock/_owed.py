"""What a simulated line client is owed and where it is, for the checks of a server.

Shared by the recipe checker (:mod:`fakewinsock.testing._checker`) and ovserver's
simulation (``ovserver._simulate``): both have their clients note when the
server took their bytes while they did not read, and both judge, from the
fake's state, whether anything is on its way between a client and the server
(quiet at a stop) and how many bytes owed to a client the server has queued
(a cut-off over ``max_queued``).  Queries of the fake's state only: no call,
no draw, so a run's schedule is the same whether they look or not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._fake import FakeWinsock
    from ._peer import FakePeer

__all__ = ["note_taken", "log_taken", "taken_before", "outbound", "nothing_on_the_way", "reset_by_server",
           "unread_before_fin", "sends_posted", "send_ending"]


def note_taken(log: list[tuple[int, int]], now_ns: int, peer: FakePeer, sent_bytes: int) -> None:
    """While a client does not read: note in ``log`` ((virtual time, bytes of its
    stream taken), rising) that the server has taken (received) more of the
    ``sent_bytes`` it sent, and have ``peer`` wake it when the server takes more.
    The wake is armed only while bytes of it are on their way (the server has
    more to take): a caller notes again after each send, or a line sent after
    the server took all the others is not seen taken."""
    log_taken(log, now_ns, sent_bytes - peer.unread)
    if peer.unread and not peer.was_reset:
        peer.wake_at_next_read()  # looked at again when the server takes more


def log_taken(log: list[tuple[int, int]], now_ns: int, taken: int) -> None:
    """Note in ``log`` ((virtual time, bytes of a client's stream taken), rising) that the server had
    taken ``taken`` bytes at ``now_ns``, if that is more than the log's last entry."""
    if not log or taken > log[-1][1]:
        log.append((now_ns, taken))


def taken_before(log: list[tuple[int, int]], before_ns: int) -> int:
    """The most of its stream the server had taken at ``before_ns``, by ``log`` (:func:`note_taken`)."""
    return max((n for t, n in log if t <= before_ns), default=0)


def outbound(ws: FakeWinsock, peer: FakePeer) -> tuple[int, int] | None:
    """Of the server's bytes for ``peer``: how many are on their way (on the
    wire and in ``peer``'s receive buffer: the window), and how many its posted
    sends have not moved into the network yet.  None before the handshake.
    What else the server owes ``peer`` and it has not read is queued in the server."""
    end = ws.server_end(peer)
    if end is None:
        return None
    return peer.available() + end.endpoint.in_flight, sum(op.total - op.moved for op in end.sends)


def nothing_on_the_way(ws: FakeWinsock, peer: FakePeer) -> bool:
    """Nothing is on its way between ``peer`` and the server, either way: its
    bytes all taken by the server, no byte of the server's on the wire, in its
    receive buffer or in a send posted on the server's socket."""
    if peer.unread or peer.available():
        return False
    end = ws.server_end(peer)
    return end is not None and not end.sends and not end.endpoint.in_flight


def sends_posted(ws: FakeWinsock, peer: FakePeer | None) -> bool:
    """The server has a send to ``peer`` posted and not completed yet (on the
    socket that holds its end of the connection)."""
    end = ws.server_end(peer) if peer is not None else None
    return end is not None and bool(end.sends)


def send_ending(ws: FakeWinsock, peer: FakePeer | None) -> bool:
    """A send the server posted to ``peer`` has ended (every byte of it moved
    into the network, not cancelled) and its completion is still due: a
    CancelIoEx no longer finds it, while the server has not been told yet (no
    packet, event or routine of it so far).  ``peer``'s reads make room for
    a send that waits for it, so this begins at one of them."""
    end = ws.server_end(peer) if peer is not None else None
    return end is not None and any(op.moved >= op.total and not op.abort_status for op in end.sends)


def reset_by_server(peer: FakePeer | None) -> bool:
    """The server has reset ``peer``'s connection: its end is reset and ``peer``
    has not closed (a reset of ``peer``'s own closes it).  The reset may not
    have reached ``peer`` yet."""
    end = peer.other_end() if peer is not None else None
    return end is not None and end.reset and peer is not None and not peer.closed


def unread_before_fin(peer: FakePeer | None) -> bytes | None:
    """What waits unread in front of the server's FIN to a client that did not
    read (the FIN on its way or here, every byte before it here), read with
    FakePeer.peek() (nothing of the fake moves); None when there is no FIN yet,
    a reset, or bytes still on the wire (what they hold is not known here)."""
    end = peer.other_end() if peer is not None else None
    if peer is None or end is None or not end.fin_sent or end.reset or end.in_flight or peer.was_reset:
        return None
    return peer.peek()
