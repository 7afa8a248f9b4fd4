"""The simulated loopback network: TCP endpoints, segments in flight, listeners.

A connection is a pair of :class:`Endpoint` objects.  Bytes sent from one end
travel as segments, each delivered to the other end after a latency drawn by
the chooser; a segment may be split in two on the wire.  Delivery times from
one end never decrease, so a connection never reorders, loses or duplicates
data.  FIN and RST travel behind the data already sent.

Flow control is one number per direction: the bytes in flight plus the bytes
delivered but not yet read may not exceed the window.  A sender that finds no
room waits (an overlapped WSASend pends, a peer's ``send`` blocks in virtual
time) until the reader makes room.

Divergence from real Windows: there is no IP layer, no retransmission, no
Nagle or delayed ACK, no TIME_WAIT; a listener's backlog is a plain count;
only IPv4 loopback addresses exist; the window is a single fixed size per
direction (Windows autotunes its receive window and the send buffer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    pass

__all__ = ["Endpoint", "EndpointOwner"]


class EndpointOwner(Protocol):
    """Whoever reads an endpoint: a fake socket or a simulated peer."""

    def _endpoint_changed(self, ep: Endpoint) -> None: ...


class Endpoint:
    """One end of a simulated TCP connection.

    ``rbuf`` holds the bytes delivered here and not yet read; ``eof`` is set
    when the other end's FIN has arrived (after all its data); ``reset`` when
    its RST has arrived (unread data is then discarded, as Windows does).
    ``in_flight`` counts the bytes this end has sent that have not arrived yet.
    """

    __slots__ = (
        "conn_id",
        "local",
        "remote",
        "other",
        "owner",
        "rbuf",
        "in_flight",
        "last_arrival",
        "established",
        "refused",
        "eof",
        "reset",
        "fin_sent",
        "blocked",
        "closed",
        "fail_accept",
        "reset_status",
    )

    def __init__(self, conn_id: int, local: tuple[str, int], remote: tuple[str, int]) -> None:
        self.conn_id = conn_id
        self.local = local
        self.remote = remote
        self.other: Endpoint | None = None
        self.owner: EndpointOwner | None = None
        self.rbuf = bytearray()
        self.in_flight = 0
        self.last_arrival = 0
        self.established = False
        self.refused = False
        self.eof = False
        self.reset = False
        self.fin_sent = False
        self.blocked = False  # a sender here waits for the other end to make room
        self.closed = False
        self.fail_accept = False  # reset in the backlog: the AcceptEx taking it fails
        # What a reset reads as here: connection reset, or connection aborted
        # when the RST came after the other end's FIN (Wine's test_shutdown,
        # "send data to a peer which is closed", on Windows).
        self.reset_status = 0xC000020D  # STATUS_CONNECTION_RESET

    def room(self, window: int) -> int:
        """How many more bytes this end may send now."""
        other = self.other
        used = self.in_flight + (len(other.rbuf) if other is not None else 0)
        return max(0, window - used)

    def notify(self) -> None:
        if self.owner is not None:
            self.owner._endpoint_changed(self)

    def __repr__(self) -> str:
        return f"<Endpoint c{self.conn_id} {self.local}->{self.remote}>"
