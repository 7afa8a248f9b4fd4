"""The "stopped" line's bytes out counts every byte the clients got.

A send that completed (its bytes on their way to the client, which may have
read them and gone) but whose completion the server had not yet handled when
a stop closed its connection was reaped as the closed connection's operation
and not counted: under Wine, 40 echo clients each got their line back (150
bytes) and the routines model's "stopped" line said 134 bytes out.

On the fake: a stop is requested right after each WSASend the server posts
(before it can see the send complete); the client still gets its echo, and
the bytes the server counts as sent are the bytes the client received.
"""

from __future__ import annotations

from typing import Any

import pytest

from fakewinsock._types import IoResult
from tests.ovserver_session import MODELS, Session, exact


@pytest.mark.parametrize("immediate", [1.0, 0.0])
@pytest.mark.parametrize("model", MODELS)
def test_bytes_out_are_the_bytes_the_client_got(model: str, immediate: float) -> None:
    s = Session(model, "echo", fake=exact(immediate))
    c = s.client(0.5)
    c.send(1.0, b"hello\n" * 3)
    send = s.ws.WSASend

    def send_then_stop(*args: Any, **kwargs: Any) -> IoResult:
        rc = send(*args, **kwargs)
        s.server.request_stop(signal=s.ws.signal_event)
        return rc

    s.ws.WSASend = send_then_stop  # type: ignore[method-assign]
    stats = s.run(stop_ms=50)
    assert bytes(c.data) == b"hello\n" * 3
    assert stats.bytes_sent == len(c.data)
