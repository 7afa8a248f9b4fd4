"""An accepted connection whose accept context cannot be set (the 39th
session's mutation sample of ``ovserver._core``).

AcceptEx worked but setsockopt(SO_UPDATE_ACCEPT_CONTEXT) failed: the server
closes that socket (counted as refused: the client saw its connection made)
and posts AcceptEx again *at once* (``_accept_again(0)``): the listener is
fine and the next connection in the backlog is not the one that failed.
``_accept_done``'s ``error = 1 if ok`` (for ``0``) made it wait
``accept_retry_ms`` first, as after a failure that would repeat: the next
client waited 50 ms for its accept.
"""

from __future__ import annotations

import pytest

from fakewinsock import FakeWinsock
from fakewinsock.constants import SO_UPDATE_ACCEPT_CONTEXT, SOCKET_ERROR, WSAENOBUFS
from tests.ovserver_session import MODELS, Session, exact


class ContextFailsOnce(FakeWinsock):
    """The first setsockopt(SO_UPDATE_ACCEPT_CONTEXT) fails with WSAENOBUFS."""

    failed = False

    def setsockopt(self, s: int, level: int, optname: int, optval: object, optlen: int) -> int:
        if optname == SO_UPDATE_ACCEPT_CONTEXT and not self.failed:
            self.failed = True
            self.WSASetLastError(WSAENOBUFS)
            return SOCKET_ERROR
        return super().setsockopt(s, level, optname, optval, optlen)


@pytest.mark.parametrize("model", MODELS)
def test_after_an_accept_context_that_failed_the_next_client_is_accepted_at_once(model: str) -> None:
    ws = ContextFailsOnce(seed=0, config=exact(0.0))
    s = Session(model, ws=ws, accepts=1)
    unlucky, second = s.client(0), s.client(0.5)
    second.send(1, b"served\n")
    got: list[bytes] = []
    s.at(10, lambda: got.append(bytes(second.data)))  # well before accept_retry_ms (50)
    stats = s.run(stop_ms=200)
    assert ws.failed
    assert (stats.accepted, stats.accept_failures, stats.refused) == (1, 1, 1)
    assert bytes(unlucky.data) == b"" and (unlucky.peer.at_eof or unlucky.reset_by_server)
    assert got == [b"served\n"]
