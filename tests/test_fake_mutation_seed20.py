"""The fake's network, sockets and threads (``fakewinsock._net``, ``_sockets``,
``_threads``): survivors of the seed-20 samples of the mutation run (issue 18,
``tools/mutation_sample.sh``), and of fresh seed-21 samples of ``_net`` and
``_ops``, that a behaviour tells apart.

* A simulated peer connecting to 0.0.0.0 (the address a server bound to every
  interface reports, as ovserver does) reaches the wildcard listener over the
  loopback, and the accepted socket's local address is 127.0.0.1, never the
  wildcard: on Windows a connected socket always has a specific local address
  (Microsoft's getsockname page: the address is known once connected), as the
  conformance test of a client bound to 0.0.0.0 shows for the other end.
* Simulated peers take their source addresses from 127.0.0.1 to 127.0.0.254,
  16384 ports each, in order, and wrap to 127.0.0.1 after the last one.
* An AcceptEx with no local address slot (length 0: legal, Wine's
  test_AcceptEx on Windows) is as good as one with both: with a client queued
  it may complete inside its call, as any AcceptEx that will succeed may.
* An AcceptEx that fails because its connection was reset in the backlog
  reports 0 bytes, as the fake's other failed operations do (a failed send:
  test_fake_mutation_sockets).
* A critical section nobody owns is described as free: in the usage error
  of a thread leaving it, and in the leak of one never deleted.
* A refused connection's trace record is the network's (thread 0).
"""

from __future__ import annotations

import ctypes
import re

import pytest

from fakewinsock import CRITICAL_SECTION, WSABUF, FakeWinsock, WinsockUsageError, sockaddr_in
from fakewinsock.constants import (
    FALSE,
    SO_UPDATE_ACCEPT_CONTEXT,
    SOCKET_ERROR,
    SOL_SOCKET,
    STATUS_CONNECTION_RESET,
    TRUE,
    WSA_IO_PENDING,
    WSAECONNRESET,
)
from tests.conformance._harness import ADDR_SLOT, Harness
from tests.fake_server import Server, quiet
from tests.test_fake_net_mutation import reset_in_backlog
from tests.test_fake_net_mutation_more import ByLabel


def test_a_peer_connecting_to_the_wildcard_reaches_it_on_127_0_0_1() -> None:
    ws = FakeWinsock(config=quiet())
    h = Harness(ws)
    h.start()
    lst = h.socket()
    assert ws.bind(lst, sockaddr_in("0.0.0.0", 0), 16) == 0
    assert ws.listen(lst, 5) == 0
    rc, name = ws.getsockname(lst)
    assert rc == 0 and name is not None and name.host == "0.0.0.0"
    port = name.port
    acc, ov, out = h.socket(), h.overlapped(), bytearray(2 * ADDR_SLOT)
    ws.AcceptEx(lst, acc, out, 0, ADDR_SLOT, ADDR_SLOT, ov)
    peer = ws.peer()
    peer.connect("0.0.0.0", port)
    assert h.complete(lst, ov) == (TRUE, 0, 0)
    assert ws.setsockopt(acc, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, lst, 8) == 0
    rc, mine = ws.getsockname(acc)
    assert rc == 0 and mine is not None and (mine.host, mine.port) == ("127.0.0.1", port)
    local = ws.GetAcceptExSockaddrs(out, 0, ADDR_SLOT, ADDR_SLOT).LocalSockaddr
    assert (local.host, local.port) == ("127.0.0.1", port)
    rc, theirs = ws.getpeername(acc)
    assert rc == 0 and theirs is not None and (theirs.host, theirs.port) == peer.address
    peer.close()
    h.close(acc)
    h.finish()


def test_peer_addresses_walk_127_0_0_1_to_254_and_wrap() -> None:
    """The first peers come from 127.0.0.1:49152 up; after 127.0.0.254:65535
    (the state set there: walking 4 million addresses takes too long) the next
    is 127.0.0.1's first port not used yet, never 127.0.0.255 or 127.0.0.0."""
    ws = FakeWinsock(config=quiet())
    net = ws._net
    assert [net.peer_address() for _ in range(3)] == [("127.0.0.1", p) for p in (49152, 49153, 49154)]
    net._peer_host, net._peer_next_port = 253, 65535
    assert [net.peer_address() for _ in range(3)] == [("127.0.0.253", 65535), ("127.0.0.254", 49152),
                                                      ("127.0.0.254", 49153)]
    net._peer_next_port = 65535
    assert [net.peer_address() for _ in range(2)] == [("127.0.0.254", 65535), ("127.0.0.1", 49155)]


def test_an_acceptex_with_no_local_slot_completes_at_once_with_a_client_queued() -> None:
    """FakeConfig.immediate 1.0 (whatever can complete in its call does), a
    client queued: AcceptEx with dwLocalAddressLength 0 returns TRUE, and the
    remote slot names the client (the counterpart of
    test_fake_mutation_sockets' remote slot one byte short, which pends)."""
    h = Harness(FakeWinsock(seed=0, config=quiet(immediate=1.0)))
    h.start()
    lst, port = h.listener()
    p = h.peer()
    p.connect("127.0.0.1", port)
    h.settle()
    acc, ov, out = h.socket(), h.overlapped(), bytearray(ADDR_SLOT)
    assert h.ws.AcceptEx(lst, acc, out, 0, 0, ADDR_SLOT, ov) == (TRUE, 0)
    remote = h.ws.GetAcceptExSockaddrs(out, 0, 0, ADDR_SLOT).RemoteSockaddr
    assert (remote.host, remote.port) == p.address
    h.close(acc)
    h.finish()


def test_an_acceptex_failing_on_a_connection_reset_in_the_backlog_reports_no_bytes() -> None:
    """The chooser picks Windows' third outcome of a reset in the backlog
    ("reset-before-accept" 2: the AcceptEx taking it fails with
    WSAECONNRESET): WSAGetOverlappedResult and the OVERLAPPED both say 0 bytes."""
    ws = FakeWinsock(chooser=ByLabel({"reset-before-accept": 2}), config=quiet())
    srv = reset_in_backlog(ws)
    _, ov = srv.post_accept()
    assert srv.h.complete(srv.lst, ov) == (FALSE, 0, WSAECONNRESET)
    assert (ov.Internal, ov.InternalHigh) == (STATUS_CONNECTION_RESET, 0)
    srv.finish()


def test_a_free_critical_section_is_described_as_free() -> None:
    ws = FakeWinsock(config=quiet())
    cs = CRITICAL_SECTION()
    ws.InitializeCriticalSection(cs)
    name = f"critical section cs1 at {ctypes.addressof(cs):#x} (free)"
    with pytest.raises(WinsockUsageError, match=re.escape(
            f"LeaveCriticalSection: {name} is owned by no thread, not by the calling T1; leaving a critical "
            "section the thread does not own is undefined behaviour (it can corrupt the section)") + "$"):
        ws.LeaveCriticalSection(cs)
    assert ws.leaks() == [f"{name} never deleted (DeleteCriticalSection)"]
    ws.DeleteCriticalSection(cs)
    assert ws.leaks() == []


def test_a_refused_connection_s_trace_record_is_the_network_s() -> None:
    """A peer connecting where nothing listens, and one finding the backlog
    full: each "refused" record is the network's (thread 0, no operation),
    names the address and why, and the listener's handle when there is one."""
    ws = FakeWinsock(config=quiet())
    srv = Server(ws, backlog=1)
    nowhere = ws.peer()
    with pytest.raises(ConnectionRefusedError):
        nowhere.connect("127.0.0.1", srv.port + 1)
    ws.peer().connect("127.0.0.1", srv.port)  # queued: the backlog is full
    late = ws.peer()
    with pytest.raises(ConnectionRefusedError):
        late.connect("127.0.0.1", srv.port)
    refused = [(r.thread, r.handle, r.op, r.detail.split(" ", 1)[1]) for r in ws.trace
               if r.what == "net" and r.call == "refused" and r.detail.startswith("conn=")]  # not the peer's own
    assert refused == [(0, 0, 0, f"127.0.0.1:{srv.port + 1} (no listener)"),
                       (0, srv.lst, 0, f"127.0.0.1:{srv.port} (backlog full)")]
    srv.finish()


def test_port_0_wraps_from_65535_to_49152() -> None:
    """The quick form of test_fake_net_mutation's walk of all 16384 dynamic
    ports (left out of tools/mutation_sample.sh's selection for its time): the
    system's next choice set to 65535, binding port 0 gives 65535, then 49152,
    never 65536."""
    ws = FakeWinsock(config=quiet())
    h = Harness(ws)
    h.start()
    ws._net._next_port = 65535
    got = []
    for _ in range(2):
        s = h.socket()
        assert ws.bind(s, sockaddr_in("127.0.0.1", 0), 16) == 0
        rc, name = ws.getsockname(s)
        assert rc == 0 and name is not None
        got.append(name.port)
    assert got == [65535, 49152]
    h.finish()


def test_an_overlapped_modified_in_flight_is_a_usage_error_saying_so_in_full() -> None:
    """A program that gives a pending WSARecv's OVERLAPPED another event: when
    the data comes, the usage error names the operation and the fields as
    they are now, and says why it matters (seed-21 sample of ``_ops``)."""
    h = Harness(FakeWinsock(config=quiet()))
    h.start()
    lst, port = h.listener()
    a = h.accept(on=(lst, port))
    ov = h.overlapped()
    h.recv(a.sock, ov)
    ev = ov.hEvent = h.event()
    a.peer.send(b"x")
    with pytest.raises(WinsockUsageError) as info:
        h.ws.SleepEx(1000, FALSE)
    assert re.fullmatch(r"WSARecv op\d+ on socket 0x[0-9a-f]+: its WSAOVERLAPPED was modified while the operation "
                        rf"was in flight \(Internal=0x103, hEvent={ev:#x}\); Windows would write into it later",
                        str(info.value)), str(info.value)


@pytest.mark.parametrize("first_size", [8, 16])
def test_the_second_of_two_receive_buffers_touched_in_flight_is_caught(first_size: int) -> None:
    """A pending WSARecv into two buffers, the first a whole bytearray (its
    snapshot a copy up to its zero tail) or one the WSABUF covers in part (a
    plain copy): the program writes into the second while it pends; when data
    comes, the usage error names lpBuffers[1] (seed-21 sample of ``_ops``: the
    snapshot once stopped after the first buffer of the second kind)."""
    h = Harness(FakeWinsock(config=quiet()))
    h.start()
    lst, port = h.listener()
    a = h.accept(on=(lst, port))
    ov = h.overlapped()
    first, second = bytearray(b"ab" + bytes(first_size - 2)), bytearray(b"cd" + bytes(6))
    rc, _, _ = h.ws.WSARecv(a.sock, [WSABUF(8, first), WSABUF(8, second)], 2, 0, ov, None)
    assert rc == SOCKET_ERROR and h.ws.WSAGetLastError() == WSA_IO_PENDING
    second[5] = 0x41
    a.peer.send(b"x")
    with pytest.raises(WinsockUsageError, match=r": lpBuffers\[1\] was modified while the operation was in flight"):
        h.wait(ov.hEvent)
