"""Behaviours asserted by dotnet/runtime's socket tests, which run on Windows in CI (fidelity15).

Sources: dotnet/runtime, ``src/libraries/System.Net.Sockets/tests/FunctionalTests`` (see
docs/semantics-findings.md section 36 for what .NET's own layer does on each path):

* ``SendReceive/SendReceiveMisc.cs`` @ ``106de714c782``, ``SendRecvIovMaxTcp_Success`` (no platform
  skip): a blocking ``Send`` of 2400 one-byte segments sends all 2400 in one call, and ``Receive`` into
  the remaining one-byte segments gets every byte, in order, until all 2400 are in.  On Windows .NET's
  ``Send(IList<ArraySegment<byte>>)`` and ``Receive(IList<...>)`` are one WSASend / WSARecv each with
  all the segments as WSABUFs (``SocketPal.Windows.cs`` @ ``036db3992bd6``), so this is Winsock's gather and scatter
  with a buffer count past any IOV_MAX.
* ``SocketAsyncEventArgsTest.cs`` @ ``1223e8d2f218``, ``AcceptAsync_WithReceiveBuffer_Success``
  (Windows only): AcceptEx posted with a receive buffer, then the client connects, sends 256 bytes,
  shuts down both ways and closes before the accept has been looked at: the accept succeeds with
  the 256 bytes.  .NET's ``AcceptAsync`` with a buffer is one AcceptEx whose dwReceiveDataLength is
  the buffer less the two address slots.
* ``SendReceive/SendReceive.cs`` @ ``0b566aa670c0``, ``SendRecv_Stream_TCP`` (its buffer-list case, all
  platforms): the send list is 23 bytes, 100 bytes, an empty segment, 9 bytes; the receive list 123, 100,
  empty, 33; 123456 bytes go through and their checksums agree.  .NET turns each list into WSABUFs one
  for one, the empty segment included (``SocketPal.Windows.cs`` @ ``036db3992bd6``, ``Send`` and
  ``Receive`` of an ``IList``: one WSABUF per segment, ``Length = buffer.Count``; the test also runs
  with the synchronous helpers, which take that path).
* The same file, ``SendRecv_NoBuffering_Success`` (skipped only on macOS and FreeBSD, where a buffer
  size of 0 is refused: ``SocketSendReceiveBufferSize_SetZero_ThrowsSocketException``): on a connected
  pair, SO_SNDBUF 0 on the sender and SO_RCVBUF 0 on the receiver; a 10000-byte send completes and the
  receiver's receives of 4096 get all 10000.  (.NET's SendBufferSize and ReceiveBufferSize setters are
  plain setsockopt calls.)
"""

from __future__ import annotations

import pytest

from fakewinsock import WSABUF
from fakewinsock.constants import (
    SO_RCVBUF,
    SO_SNDBUF,
    SO_UPDATE_ACCEPT_CONTEXT,
    SOL_SOCKET,
    TRUE,
    WSA_IO_PENDING,
)

from ._harness import ADDR_SLOT, Harness

SEGMENTS = 2400  # SendRecvIovMaxTcp_Success's SegmentCount: more than IOV_MAX (1024) on Linux and macOS


@pytest.mark.wine_divergence(
    "Wine 8.0 hands the WSABUFs to the host's sendmsg/recvmsg as one iovec each (ntdll's unix/socket.c: "
    "msg_iovlen = the buffer count); Linux refuses more than UIO_MAXIOV (1024) with EMSGSIZE, so the WSASend "
    "fails with WSAEMSGSIZE (10040); on Windows all 2400 go (.NET's SendRecvIovMaxTcp_Success)")
def test_a_send_and_receives_of_2400_one_byte_buffers(h: Harness) -> None:
    """WSASend of 2400 one-byte WSABUFs completes with 2400 and the peer reads
    the bytes in buffer order; WSARecv into the one-byte WSABUFs still empty
    takes at least one byte each time, filling them in order, until the
    peer's 2400 bytes are in; then EOF."""
    a = h.accept()
    data = bytes(i & 0xFF for i in range(SEGMENTS))
    sbufs = [WSABUF(1, bytearray(data[i:i + 1])) for i in range(SEGMENTS)]
    ov = h.overlapped()
    rc, _, _ = h.ws.WSASend(a.sock, sbufs, SEGMENTS, 0, ov, None)
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert h.complete(a.sock, ov) == (TRUE, SEGMENTS, 0)
    assert a.peer.recv_exactly(SEGMENTS) == data

    a.peer.send(data)
    a.peer.shutdown()
    rbufs = [WSABUF(1, bytearray(1)) for _ in range(SEGMENTS)]
    got = 0
    while got < SEGMENTS:
        left = rbufs[got:]
        ov = h.overlapped()
        rc, _, _ = h.ws.WSARecv(a.sock, left, len(left), 0, ov, None)
        assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING
        ok, n, err = h.complete(a.sock, ov)
        assert (ok, err) == (TRUE, 0) and 1 <= n <= len(left), (ok, n, err)
        got += n
    assert b"".join(bytes(b.buf) for b in rbufs) == data
    ok, rest, err = h.recv_once(a.sock)
    assert (ok, rest, err) == (TRUE, b"", 0)


def test_accept_with_receive_takes_bytes_sent_before_the_client_shut_down_and_closed(h: Harness) -> None:
    """AcceptEx with a 480-byte receive (AcceptAsync_WithReceiveBuffer_Success's
    buffer of 288 + 256 bytes less two 32-byte address slots) posted first;
    the client connects, sends 256 bytes, shuts down both ways and closes: the
    accept succeeds with the bytes (all 256 on the real backend; the fake may
    split the stream on the wire, and the accept takes what has arrived), the
    rest of them and then EOF reach a receive."""
    posted = h.post_accept(rdl=480)
    assert h.ws.WSAGetLastError() == WSA_IO_PENDING
    data = bytes((7 * i + 3) & 0xFF for i in range(256))
    p = h.peer()
    p.connect("127.0.0.1", posted.port)
    client = p.address
    p.send(data)
    p.shutdown()
    p.close()
    ok, n, err = h.complete(posted.listener, posted.ov)
    assert (ok, err) == (TRUE, 0) and 1 <= n <= len(data), (ok, n, err)
    if not h.is_fake:
        assert n == len(data)  # one loopback segment: .NET's test asserts all 256
    assert bytes(posted.out[:n]) == data[:n]
    assert h.ws.setsockopt(posted.sock, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, posted.listener, 8) == 0
    assert h.recv_all(posted.sock, len(data) - n + 1) == data[n:]
    addrs = h.ws.GetAcceptExSockaddrs(posted.out, 480, ADDR_SLOT, ADDR_SLOT)
    assert (addrs.RemoteSockaddr.host, addrs.RemoteSockaddr.port) == client


SEND_SHAPE = (23, 100, 0, 9)  # SendRecv_Stream_TCP's send list: 23 bytes, 100 of 256 at offset 2, 0 of 1, 9 of 64
RECV_SHAPE = (123, 100, 0, 33)  # its receive list: 123, 100 of 256, 0 of 1, 33 of 64


def test_an_empty_wsabuf_between_others_is_skipped_by_gather_and_scatter(h: Harness) -> None:
    """A WSASend whose third WSABUF is empty sends the other three, in order,
    and counts 132; a WSARecv whose third WSABUF is empty fills the first two
    and goes on in the fourth (all 256 bytes on the real backend once they
    have arrived; the fake may cut a receive short), and the rest comes next."""
    a = h.accept()
    data = bytes((5 * i + 1) & 0xFF for i in range(sum(SEND_SHAPE)))
    sbufs, at = [], 0
    for size in SEND_SHAPE:
        block = bytearray(b"\xee" * (size + 3))
        block[2:2 + size] = data[at:at + size]
        sbufs.append(WSABUF(size, memoryview(block)[2:2 + size]))
        at += size
    ov = h.overlapped()
    rc, _, _ = h.ws.WSASend(a.sock, sbufs, len(sbufs), 0, ov, None)
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert h.complete(a.sock, ov) == (TRUE, len(data), 0)
    assert a.peer.recv_exactly(len(data)) == data

    incoming = bytes((3 * i + 7) & 0xFF for i in range(300))
    a.peer.send(incoming)
    h.settle()  # the bytes have arrived before the receive is posted
    rbufs = [WSABUF(size, bytearray(size)) for size in RECV_SHAPE]
    ov = h.overlapped()
    rc, _, _ = h.ws.WSARecv(a.sock, rbufs, len(rbufs), 0, ov, None)
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING
    ok, n, err = h.complete(a.sock, ov)
    assert (ok, err) == (TRUE, 0) and 1 <= n <= sum(RECV_SHAPE), (ok, n, err)
    if not h.is_fake:
        assert n == sum(RECV_SHAPE)
    filled = b"".join(bytes(b.buf) for b in rbufs)[:n]
    assert filled == incoming[:n]
    assert h.recv_all(a.sock, len(incoming) - n) == incoming[n:]


def test_with_no_send_or_receive_buffering_every_byte_still_goes_through(h: Harness) -> None:
    """SO_SNDBUF 0 and SO_RCVBUF 0 set on a connected socket both succeed; a
    10000-byte WSASend then completes with 10000 while the peer reads, and the
    peer's 10000 bytes reach the socket's receives."""
    a = h.accept()
    assert h.ws.setsockopt(a.sock, SOL_SOCKET, SO_SNDBUF, 0, 4) == 0
    assert h.ws.setsockopt(a.sock, SOL_SOCKET, SO_RCVBUF, 0, 4) == 0
    data = bytes((11 * i + 5) & 0xFF for i in range(10000))
    ov = h.overlapped()
    buf = bytearray(data)
    rc, _, _ = h.ws.WSASend(a.sock, [WSABUF(len(buf), buf)], 1, 0, ov, None)
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert a.peer.recv_exactly(len(data)) == data
    assert h.complete(a.sock, ov) == (TRUE, len(data), 0)
    a.peer.send(data)
    assert h.recv_all(a.sock, len(data)) == data
