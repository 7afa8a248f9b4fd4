"""The fake's network (``fakewinsock._net``): survivors of the ninth session's
fresh mutation sample (issue 18, ``tools/mutation_sample.sh
'fakewinsock._net*' 30 22``), each asserted as what a user of the fake relies
on."""

from __future__ import annotations

from fakewinsock import sockaddr_in
from tests.test_fake_mutation_survivors import harness


def test_a_port_bound_on_127_0_0_1_is_never_chosen_for_port_0() -> None:
    """bind to port 0 takes a free dynamic port: one bound explicitly on
    127.0.0.1 (not the wildcard) is not free, so the next one is taken."""
    h = harness()
    ws = h.ws
    _, first = h.listener()  # port 0: the first dynamic port
    taken = h.socket()
    assert ws.bind(taken, sockaddr_in("127.0.0.1", first + 1), 16) == 0
    s = h.socket()
    assert ws.bind(s, sockaddr_in("127.0.0.1", 0), 16) == 0
    rc, name = ws.getsockname(s)
    assert rc == 0 and name is not None
    assert name.port == first + 2, (first, name.port)
    h.finish()
