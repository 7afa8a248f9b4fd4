#!/usr/bin/env python3
"""Misbehaving real clients against a running ``ovserver serve`` (run by
tools/wine/e2e.sh for each model), each case beside a well-behaved *witness*
client that must stay served.  Standard library only, loopback only, every
socket step bounded in time.

    misbehave.py --port P --max-line L --max-queued Q --max-clients C [--cases a,b,...]
    misbehave.py busy --port P [--clients 200] [--seconds 60]
    misbehave.py chat --port P --max-line L
    misbehave.py chat-busy --port P [--senders 10] [--leavers 150] [--lines 1000] [--fresh-max-s 5]
    misbehave.py idle --port P --clients C --timeout-ms T
    misbehave.py deaf-chat --port P [--megabytes 10] [--max-gap-s 5]
    misbehave.py lines --port P --mode echo|chat [--max-line 65536] [--members 200]
    misbehave.py fd-limit --port P [--most 400] [--wait-s 2]
    misbehave.py churn --port P --mode echo|chat --log LOG --max-line L --idle-timeout-ms T [--rounds 3]
    misbehave.py zombies --port P --max-clients C [--flooders 50] [--leavers 50] [--rounds 2]

Start the server in echo mode with those limits (e2e.sh: ``--max-line 4096
--max-queued 262144 --max-clients 6``).  The cases, as README "ovserver" and
the protocol's rules (ovserver/_protocol.py) say the server behaves:

* ``binary``: lines holding every byte value but the newline (NUL, CR, CRLF,
  0xFF) come back byte for byte; then EOF after the client's FIN.
* ``partial-eof``: ``b"abc\\nxyz"`` then FIN: only ``b"abc\\n"`` comes back
  (a partial line at EOF is no message), then EOF.
* ``half-close``: 200 KB of lines sent at once, then FIN before reading
  anything: every reply still owed arrives, then the server's EOF.
* ``dribble``: lines sent one byte per send: echoed whole.
* ``slow-reader``: 200 KB sent at once, read 4 KB at a time every 10 ms: all
  of it arrives, right.
* ``silent``: a client that connects and says nothing does not hold up the others.
* ``flood``: a client that sends 8 MB and never reads (4 KB receive buffer)
  is cut off by --max-queued: it sees a reset, not an endless wait.
* ``oversized``: a line then one longer than --max-line: the line's echo,
  ``* error: line longer than L bytes``, then EOF (the server's FIN).
* ``oversized-goes-on``: the same client keeps sending after the error
  line: cut off (a reset) after L more bytes (it sends for up to 20 s: a
  loaded server reads late, and the socket buffers take the bytes meanwhile).
* ``at-limit``: lines of exactly --max-line bytes (one ending in CRLF: the
  CR is one of them), an empty line, a lone CR: echoed; then a line one byte
  over, with its newline and a line after it: the error line, then EOF
  (nothing of either line comes back).
* ``rst-mid-line`` / ``rst-mid-reply``: C+2 clients in turn each reset
  (SO_LINGER 0) with a partial line buffered, or with 200 KB of replies
  owed: every place is freed (a fresh client is then served).
* ``connect-close``: 100 clients each that connect and close at once (FIN),
  connect and reset at once, connect, send a line and close without reading:
  then a fresh client is served (within 5 s: the backlog is served in order).
* ``storm``: 200 clients (far more than --max-clients) connect at once, each
  sends a line, half-closes and reads to the end: each gets exactly its line,
  then EOF.
* ``max-clients``: C clients connected and silent (the witness stopped): one
  more is not served until one of them leaves, then it is, within 5 s.
* ``backlog``: 200 more connections than --max-clients arrive and reset
  while they wait in the listen backlog: then a fresh client is served.
* ``urgent``: ``b"abc"``, then ``b"!"`` as TCP urgent data (MSG_OOB), then
  ``b"def\n"``: the urgent byte is not part of the stream (Winsock's
  default, SO_OOBINLINE off), so ``b"abcdef\n"`` comes back, then the next
  line as usual.
* ``fin-first``: a client that half-closes before sending anything gets
  EOF at once.

The witness sends a line every 20 ms through every case (except
``max-clients``) and checks each echo; a case fails if the witness got a
wrong echo, lost its connection, or waited more than ``--witness-max-s``.
Prints one line per case; exit status 0 when every case passed.

``chat`` (a chat-mode server with that --max-line): a line reaches the other
members; an oversized line gets its sender the error line and EOF and
reaches no one; a partial line at EOF is routed to no one and its sender gets
EOF; a member that joins later gets only later lines; a member that
half-closes while lines flow gets those routed before, whole and in order,
then EOF.

``chat-busy`` (a chat-mode server): 10 members each send 1000 lines at once
while 150 others leave mid-broadcast (after reading some of it; half with a
FIN, half with a reset) and 4 new members join one after another: 3 members
that read everything get every sender's lines whole and in order, and each
new member its welcome within ``--fresh-max-s``.  With ``--server-pid`` (the
server's Linux pid: e2e.sh passes it), a later welcome fails only if the
server used a fifth of that limit in CPU time meanwhile (it was busy, not
welcoming) or took over 5 times the limit (whatever the load): wall time
alone flaked on a loaded machine (see :func:`welcome_verdict`).

``deaf-chat`` (a chat-mode server with ``serve``'s defaults): a talker
sends 10 MB of lines at 4 MB/s to a reader; a member that never reads
joins: it is reset (--max-queued), and the reader waits no longer than
``--max-gap-s`` (5) for a line meanwhile: the chat does not pause for it.

``chat-flood`` (a chat-mode server): ``--senders`` members each send
``--kilobytes`` KB of 1000-byte lines as fast as the server takes them, while
reading everything the others send; one more member only reads.  Every one of
them reads as fast as the server sends, so none may be cut off (a reset), and
the reader must get every sender's lines whole and in order.  (With 64 KiB
sends, each member's queue grew by every sender's receive and shrank by one
send per turn, and members that read everything were cut off.)

``backpressure`` (a server with ``--max-queued Q --high-water H
--stall-timeout-ms T``, echo or chat): a client that reads slowly (a small
window, 4 KB a millisecond, from 0.5 s on) gets every byte of 24 x Q (echo:
it sends them while its replies pile up; chat: a talker sends them), while a client that never reads is
reset once stalled for T, not before.  (Without ``--high-water`` the slow
reader is cut off once Q bytes wait for it.)

``lines`` (a server with ``serve``'s defaults, echo or chat; ``--max-line``
65536, more than one 16 KiB receive): echo: a line of exactly --max-line
bytes is echoed and one a byte over gets the error line, then EOF; 3 MB of
lines, a partial line and a FIN sent before reading anything (back-pressure
holds the client back meanwhile): every line echoed, then EOF.  Chat: lines
sent right before a FIN reach the others (the partial line after them no
one), a line cut by a reset reaches no one, a line of --max-line bytes is
routed and one over gets its sender the error line and EOF, and
``--members`` members that join at once each get every other one's line.

``fd-limit`` is for a server left with few file descriptors (e2e.sh lowers
its limit to 300 with prlimit: Wine holds some for each socket): clients
each send a line and stay, until one is not served within ``--wait-s``
(the server is out of descriptors: its AcceptEx calls fail); then all of
them leave, and a fresh client must be served within 10 s.  Meanwhile, with
three more clients waiting, the server (``--server-pid``) must use under a
third of the 3 s they wait in CPU time: it must not spin.  (Each AcceptEx
then completed at once with WSAEINVAL, and the server posted it again at
once, 5000 times a second: the routines and iocp models never handled the
clients' closes, so never accepted again, and Ctrl+C did not stop them.)

``churn`` is for a server started by ``tools/wine/handles.py`` (``serve`` in a
process that prints its count of Windows handles every second to ``--log``),
with ``--max-line L --idle-timeout-ms T``: ``--rounds`` rounds of
``--clients`` clients of every kind that ends (a line, then close; a reset
mid-line and mid-reply; a line over L: the error line, EOF; a half-close with
100 KB owed, every reply read (in chat: 20 KB to the others, then the lines
routed to it read to the end, whole lines before an EOF); connect-close;
connect-reset; a silent client closed once idle), 50 at a time (``--rounds``:
at least 2).  After each round a fresh client must be
served, and the server's handle count, once every client has gone, must not
grow after the first round (by more than ``--slack``): a leak of one handle
per connection (a socket, an event) adds hundreds a round.

``busy`` is for a stop under load: ``--clients`` echo clients that send 200
lines, read their echoes and go again, without a pause; it prints "busy: N
clients served, sending and reading" once every one has had its first echoes,
and ends after ``--seconds`` or when the server goes.

``idle`` is for a server with ``--max-clients C --idle-timeout-ms T``: C silent
clients (one dribbling bytes that never make a line) hold every place; each
must be closed once idle for T, and a new client, locked out until then,
served.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable

HOST = "127.0.0.1"
CASES = ("binary", "partial-eof", "half-close", "dribble", "slow-reader", "silent", "flood", "oversized",
         "oversized-goes-on", "at-limit", "rst-mid-line", "rst-mid-reply", "connect-close", "storm", "max-clients",
         "backlog", "urgent", "fin-first")
STEP_S = 20.0  # the longest any one socket step may take
BACKPRESSURE_TIMES = 24  # backpressure: the slow reader gets this many times --max-queued
STALL_FACTOR = 5  # a welcome later than this many times its limit fails whatever the load
BUSY_DIVISOR = 5  # a late welcome fails if the server used its limit / BUSY_DIVISOR of CPU meanwhile


class CaseFailed(Exception):
    pass


def connect(port: int, rcvbuf: int | None = None, nodelay: bool = False) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: a small window
    if nodelay:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(STEP_S)
    s.connect((HOST, port))
    return s


def reset(s: socket.socket) -> None:
    """Close abortively: SO_LINGER {1, 0}, the server sees a reset."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def read_exactly(s: socket.socket, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        d = s.recv(min(65536, n - len(got)))
        if not d:
            break
        got += d
    return bytes(got)


def read_to_end(s: socket.socket) -> tuple[bytes, str]:
    """Everything until the stream ends, and how: "eof", "reset" or the error's name."""
    got = bytearray()
    try:
        while d := s.recv(65536):
            got += d
    except ConnectionResetError:
        return bytes(got), "reset"
    except OSError as e:
        return bytes(got), type(e).__name__
    return bytes(got), "eof"


def lines_of(total: int, tag: bytes) -> bytes:
    """About ``total`` bytes of numbered lines."""
    out = bytearray()
    i = 0
    while len(out) < total:
        out += b"%s %06d %s\n" % (tag, i, b"x" * (i % 97))
        i += 1
    return bytes(out)


class Witness:
    """A well-behaved echo client in a thread: a line every 20 ms, each echo checked."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stop = threading.Event()
        self.sent = 0
        self.worst = 0.0
        self.problem = ""
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Witness:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(STEP_S + 5)

    def _run(self) -> None:
        try:
            with connect(self.port, nodelay=True) as s:
                while not self.stop.is_set():
                    line = b"witness %d\n" % self.sent
                    t0 = time.monotonic()
                    s.sendall(line)
                    got = read_exactly(s, len(line))
                    self.worst = max(self.worst, time.monotonic() - t0)
                    if got != line:
                        self.problem = f"sent {line!r}, got {got!r}"
                        return
                    self.sent += 1
                    self.stop.wait(0.02)
                s.shutdown(socket.SHUT_WR)
                rest, how = read_to_end(s)
                if rest or how != "eof":
                    self.problem = f"after its FIN: {rest[:40]!r} then {how}"
        except OSError as e:
            self.problem = f"{type(e).__name__}: {e}"

    def verdict(self, max_s: float) -> str:
        if self.thread.is_alive():
            return "the witness is stuck"
        if self.problem:
            return f"the witness: {self.problem}"
        if self.sent == 0:
            return "the witness got no echo"
        if self.worst > max_s:
            return f"the witness waited {self.worst:.2f} s for an echo (limit {max_s} s)"
        return ""


def fresh_served(port: int, within: float = 5.0, late: float = 0.0) -> float:
    """A new client gets its line echoed within ``within`` seconds: the time it took.

    Otherwise the failure says what the client saw, for a diagnosis: how long
    its connect took (a connect only needs the listen backlog, not the
    server's accept), what arrived, and, waiting up to ``late`` seconds more,
    whether the echo came late, and how the wait ended (time-out, EOF, reset)."""
    t0 = time.monotonic()
    try:
        s = connect(port)
    except OSError as e:
        raise CaseFailed(f"a fresh client could not connect ({e!r}, after {time.monotonic() - t0:.2f} s)") from None
    connected = time.monotonic() - t0
    got = bytearray()
    how = ""
    with s:
        s.sendall(b"fresh\n")
        deadline = t0 + within + late
        while len(got) < 6 and not how:
            left = deadline - time.monotonic()
            if left <= 0:
                how = "a time-out"
                break
            s.settimeout(left)
            try:
                d = s.recv(6 - len(got))
            except TimeoutError:
                how = "a time-out"
            except OSError as e:
                how = f"an error: {e!r}"
            else:
                if not d:
                    how = "EOF from the server"
                got += d
    took = time.monotonic() - t0
    if got and not b"fresh\n".startswith(bytes(got)):
        raise CaseFailed(f"a fresh client got {bytes(got)!r}")
    if got == b"fresh\n" and took <= within:
        return took
    seen = (f"its echo came after {took:.2f} s" if got == b"fresh\n"
            else f"{bytes(got)!r} arrived, then {how} after {took:.2f} s" if got
            else f"nothing arrived, then {how} after {took:.2f} s")
    raise CaseFailed(f"a fresh client was not served within {within} s (connected in {connected:.2f} s; {seen})")


# ------------------------------------------------------------ the cases


def case_binary(a: argparse.Namespace) -> str:
    every = bytes(b for b in range(256) if b != 10)
    data = (b"\x00\x00\r\n" + every + b"\n" + b"\r\n" + b"a\rb\x00c\xff\n" + b"\n" * 3
            + every[::-1] * 8 + b"\r\n")
    with connect(a.port) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got, how = read_to_end(s)
    if got != data or how != "eof":
        raise CaseFailed(f"sent {len(data)} bytes, got {len(got)} back (equal: {got == data}), then {how}")
    return f"{len(data)} bytes of NUL/CR/CRLF/0x00-0xFF lines echoed byte for byte, then EOF"


def case_partial_eof(a: argparse.Namespace) -> str:
    with connect(a.port) as s:
        s.sendall(b"abc\nxyz")
        s.shutdown(socket.SHUT_WR)
        got, how = read_to_end(s)
    if got != b"abc\n" or how != "eof":
        raise CaseFailed(f"got {got!r} then {how}")
    return "a last line without newline at EOF dropped: got b'abc\\n', then EOF"


def case_half_close(a: argparse.Namespace) -> str:
    data = lines_of(min(200_000, a.max_queued * 3 // 4), b"half")
    with connect(a.port) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        time.sleep(0.5)  # the replies pile up in the server while the client does not read
        got, how = read_to_end(s)
    if got != data or how != "eof":
        raise CaseFailed(f"sent {len(data)} bytes then FIN, got {len(got)} back (prefix right: "
                         f"{data.startswith(got)}), then {how}")
    return f"{len(data)} bytes then FIN before reading: all {len(got)} came back, then EOF"


def case_dribble(a: argparse.Namespace) -> str:
    data = b"dribble one\n\x00two\r\n" + b"three " * 10 + b"\n"
    with connect(a.port, nodelay=True) as s:
        for i in range(len(data)):
            s.send(data[i:i + 1])
            time.sleep(0.002)
        got = read_exactly(s, len(data))
        s.shutdown(socket.SHUT_WR)
        rest, how = read_to_end(s)
    if got != data or rest or how != "eof":
        raise CaseFailed(f"got {got!r} + {rest!r}, then {how}")
    return f"{len(data)} bytes sent one byte per send: echoed whole, then EOF"


def case_slow_reader(a: argparse.Namespace) -> str:
    data = lines_of(min(200_000, a.max_queued * 3 // 4), b"slow")
    got = bytearray()
    with connect(a.port, rcvbuf=4096) as s:
        sender = threading.Thread(target=s.sendall, args=(data,), daemon=True)
        sender.start()
        t0 = time.monotonic()
        while len(got) < len(data) and time.monotonic() - t0 < 60:
            d = s.recv(4096)
            if not d:
                break
            got += d
            time.sleep(0.01)
        sender.join(STEP_S)
        s.shutdown(socket.SHUT_WR)
        rest, how = read_to_end(s)
    if bytes(got) != data or rest or how != "eof":
        raise CaseFailed(f"got {len(got)} of {len(data)} bytes (right so far: {data.startswith(bytes(got))}), "
                         f"then {len(rest)} more and {how}")
    return f"{len(data)} bytes read 4 KB per 10 ms: all right, then EOF"


def case_silent(a: argparse.Namespace) -> str:
    with connect(a.port) as s:
        time.sleep(1.0)
        t = fresh_served(a.port)
        s.shutdown(socket.SHUT_WR)
        rest, how = read_to_end(s)
    if rest or how != "eof":
        raise CaseFailed(f"the silent client got {rest!r} then {how}")
    return f"a silent client held for 1 s; another served beside it in {t:.2f} s; its FIN answered by EOF"


def case_flood(a: argparse.Namespace) -> str:
    line = b"f" * 1023 + b"\n"
    sent = 0
    how = "sent"
    t0 = time.monotonic()
    with connect(a.port, rcvbuf=4096) as s:
        try:
            while sent < 8_000_000:
                s.sendall(line * 64)
                sent += len(line) * 64
        except (ConnectionResetError, BrokenPipeError):
            how = "reset"
        if how == "sent":
            _, how = read_to_end(s)
    if how != "reset":
        raise CaseFailed(f"sent {sent} bytes and never read: ended in {how}, not a reset")
    return (f"a client that never reads was reset after sending {sent} bytes ({time.monotonic() - t0:.1f} s; "
            f"--max-queued {a.max_queued})")


def _oversized(a: argparse.Namespace, goes_on: bool) -> str:
    err = b"* error: line longer than %d bytes\n" % a.max_line
    with connect(a.port) as s:
        s.sendall(b"before\n")
        if read_exactly(s, 7) != b"before\n":
            raise CaseFailed("no echo of the line before")
        s.sendall(b"y" * (a.max_line + 1))  # no newline: too long as soon as it is buffered
        got = read_exactly(s, len(err))
        if got != err:
            raise CaseFailed(f"expected {err!r}, got {got!r}")
        if not goes_on:
            rest, how = read_to_end(s)
            if rest or how != "eof":
                raise CaseFailed(f"after the error line: {rest[:40]!r} then {how}, not EOF")
            return f"a line over {a.max_line} bytes: {err.strip()!r}, then EOF"
        # Until the reset, for up to STEP_S: the loopback's socket buffers take a few hundred KB
        # before the server has read any of it, and a loaded server reads late (under load, 117 KB
        # sent in 0.3 s all went into them: then EOF, the FIN after the error line, and no reset yet).
        sent = 0
        how = "sent"
        t0 = time.monotonic()
        try:
            while sent < 4 * a.max_line + 100_000 or time.monotonic() - t0 < STEP_S:
                s.sendall(b"z" * 1000)
                sent += 1000
                time.sleep(0.001)
        except (ConnectionResetError, BrokenPipeError):
            how = "reset"
        took = time.monotonic() - t0
        if how == "sent":
            rest, how = read_to_end(s)
            if rest:
                raise CaseFailed(f"{rest[:40]!r} after the error line")
        if how != "reset":
            raise CaseFailed(f"kept sending {sent} bytes after the error line for {took:.1f} s: {how}, not a reset")
        return f"kept sending after the error line: reset after {sent} bytes, {took:.2f} s (--max-line {a.max_line})"


def case_oversized(a: argparse.Namespace) -> str:
    return _oversized(a, goes_on=False)


def case_oversized_goes_on(a: argparse.Namespace) -> str:
    return _oversized(a, goes_on=True)


def case_rst_mid_line(a: argparse.Namespace) -> str:
    n = a.max_clients + 2
    for i in range(n):
        s = connect(a.port)
        s.sendall(b"line %d\npartial without its newline" % i)
        if read_exactly(s, len(b"line %d\n" % i)) != b"line %d\n" % i:
            raise CaseFailed(f"client {i}: no echo before its reset")
        reset(s)
    t = fresh_served(a.port)
    return f"{n} clients reset with a partial line buffered; a fresh client then served in {t:.2f} s"


def case_rst_mid_reply(a: argparse.Namespace) -> str:
    n = a.max_clients + 2
    data = lines_of(min(200_000, a.max_queued * 3 // 4), b"rst")
    for _ in range(n):
        s = connect(a.port, rcvbuf=4096)
        s.sendall(data)
        if not read_exactly(s, 1024):
            raise CaseFailed("no reply before the reset")
        reset(s)
    t = fresh_served(a.port)
    return f"{n} clients reset with {len(data)} bytes of replies owed; a fresh client then served in {t:.2f} s"


def case_at_limit(a: argparse.Namespace) -> str:
    err = b"* error: line longer than %d bytes\n" % a.max_line
    ok = b"a" * a.max_line + b"\n" + b"b" * (a.max_line - 1) + b"\r\n" + b"\n" + b"\r\n" + b"lone\rcr\n"
    with connect(a.port) as s:
        s.sendall(ok)
        got = read_exactly(s, len(ok))
        if got != ok:
            raise CaseFailed(f"lines at --max-line: sent {len(ok)} bytes, got {len(got)} (equal: {got == ok})")
        s.sendall(b"c" * (a.max_line + 1) + b"\nafter\n")
        rest, how = read_to_end(s)
    if rest != err or how != "eof":
        raise CaseFailed(f"a line one byte over: expected {err!r} then EOF, got {rest[:60]!r} then {how}")
    return f"lines of exactly {a.max_line} bytes (LF, CRLF), empty, lone CR echoed; one byte over: error line, EOF"


def case_connect_close(a: argparse.Namespace) -> str:
    n = 100
    for i in range(n):
        connect(a.port).close()
        reset(connect(a.port))
        with connect(a.port) as s:
            s.sendall(b"unread %d\n" % i)
    t = fresh_served(a.port)
    return f"{n} each of connect-close, connect-reset, line-then-close; a fresh client then served in {t:.2f} s"


def case_storm(a: argparse.Namespace) -> str:
    n = 200
    results: list[str] = []
    go = threading.Event()

    def one(i: int) -> None:
        line = b"storm %d\n" % i
        try:
            go.wait(STEP_S)
            with connect(a.port) as s:
                s.sendall(line)
                s.shutdown(socket.SHUT_WR)
                got, how = read_to_end(s)
            results.append("" if got == line and how == "eof" else f"client {i}: {got[:40]!r} then {how}")
        except OSError as e:
            results.append(f"client {i}: {type(e).__name__}: {e}")

    t0 = time.monotonic()
    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(STEP_S * 3)
    bad = [r for r in results if r]
    if bad or len(results) != n:
        raise CaseFailed(f"{n - len(results)} clients unfinished, {len(bad)} wrong: {bad[:3]}")
    took = time.monotonic() - t0
    return f"{n} clients at once ({a.max_clients} places): each got exactly its line, then EOF, in {took:.1f} s"


def case_max_clients(a: argparse.Namespace) -> str:
    holders = [connect(a.port) for _ in range(a.max_clients)]
    try:
        for i, h in enumerate(holders):  # every one is served (so each holds a place)
            h.sendall(b"hold %d\n" % i)
            if read_exactly(h, len(b"hold %d\n" % i)) != b"hold %d\n" % i:
                raise CaseFailed(f"holder {i} not served")
        with connect(a.port) as extra:
            extra.sendall(b"extra\n")
            extra.settimeout(1.0)
            try:
                early = extra.recv(100)
            except TimeoutError:
                early = None
            if early is not None:
                raise CaseFailed(f"client {a.max_clients + 1} was served ({early!r}) past --max-clients")
            holders.pop().close()
            extra.settimeout(5.0)
            t0 = time.monotonic()
            try:
                got = read_exactly(extra, 6)
            except TimeoutError:
                raise CaseFailed("the waiting client was not served within 5 s of a place freeing") from None
            if got != b"extra\n":
                raise CaseFailed(f"the waiting client got {got!r}")
            return (f"{a.max_clients} served, 1 more not served for 1 s, served {time.monotonic() - t0:.2f} s "
                    "after one left")
    finally:
        for h in holders:
            h.close()


def case_backlog(a: argparse.Namespace) -> str:
    n = a.max_clients + 200
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex((HOST, a.port))
            socks.append(s)
        time.sleep(0.5)
        for s in socks:
            try:
                s.send(b"never answered, the client resets\n")
            except OSError:
                pass
    finally:
        for s in socks:
            try:
                reset(s)
            except OSError:
                s.close()
    t = fresh_served(a.port, within=30.0)
    return f"{n} connections, most waiting in the backlog, reset there; a fresh client then served in {t:.2f} s"


def case_urgent(a: argparse.Namespace) -> str:
    with connect(a.port, nodelay=True) as s:
        s.sendall(b"abc")
        time.sleep(0.05)
        s.send(b"!", socket.MSG_OOB)
        time.sleep(0.05)
        s.sendall(b"def\n")
        got = read_exactly(s, 7)
        s.sendall(b"after\n")
        after = read_exactly(s, 6)
        s.shutdown(socket.SHUT_WR)
        rest, how = read_to_end(s)
    if (got, after, rest, how) != (b"abcdef\n", b"after\n", b"", "eof"):
        raise CaseFailed(f"got {got!r}, then {after!r}, then {rest!r} and {how}")
    return "an urgent byte (MSG_OOB) mid-line left out of the stream: b'abcdef\\n' echoed, then the next line"


def case_fin_first(a: argparse.Namespace) -> str:
    t0 = time.monotonic()
    with connect(a.port) as s:
        s.shutdown(socket.SHUT_WR)
        got, how = read_to_end(s)
    if got or how != "eof":
        raise CaseFailed(f"a FIN before any byte: got {got!r} then {how}")
    return f"a FIN before any byte: EOF back in {time.monotonic() - t0:.2f} s"


RUNNERS: dict[str, Callable[[argparse.Namespace], str]] = {
    name: globals()["case_" + name.replace("-", "_")] for name in CASES}


def busy(port: int, clients: int, seconds: float) -> int:
    """``clients`` echo clients that send and read without a pause for up to
    ``seconds`` (the server is stopped meanwhile); prints "busy: N clients
    served" once each has had an echo.  Exit status 0 when all got going."""
    going = threading.Barrier(clients + 1)
    block = b"".join(b"busy %05d %s\n" % (i, b"b" * (i % 50)) for i in range(200))
    echoed = [0]  # blocks echoed to the busy clients (a rough count: += from many threads)

    def one() -> None:
        try:
            s = connect(port, nodelay=True)
        except OSError:
            going.abort()
            return
        with s:
            try:
                s.sendall(block)
                read_exactly(s, len(block))
                going.wait(STEP_S)
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    s.sendall(block)
                    if read_exactly(s, len(block)) != block:
                        return
                    echoed[0] += 1
            except (OSError, threading.BrokenBarrierError):
                return

    threads = [threading.Thread(target=one, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    try:
        going.wait(STEP_S * 2)
    except threading.BrokenBarrierError:
        print(f"busy: not all {clients} clients got going", flush=True)
        return 1
    before, t0 = echoed[0], time.monotonic()
    try:
        dt = fresh_served(port, late=15.0)
        fresh = f"a fresh client served beside them in {dt:.2f} s"
    except (CaseFailed, OSError) as e:
        # Whether the server went on serving the busy clients meanwhile: a
        # starved client, or a stalled server.
        fresh = (f"FAIL: {e}; meanwhile the busy clients had {echoed[0] - before} blocks of 200 lines "
                 f"echoed in {time.monotonic() - t0:.1f} s")
    print(f"busy: {clients} clients served, sending and reading; {fresh}", flush=True)
    for t in threads:
        t.join(seconds + STEP_S)
    return 0


# ------------------------------------------------------------ chat mode


def chat_member(port: int) -> tuple[socket.socket, bytes]:
    """A chat client, once it has its welcome line: the socket and its name."""
    s = connect(port)
    host, local_port = s.getsockname()[:2]
    name = f"{host}:{local_port}".encode()
    want = b"* welcome " + name + b"\n"
    got = read_exactly(s, len(want))
    if got != want:
        raise CaseFailed(f"welcome: expected {want!r}, got {got!r}")
    return s, name


def nothing_within(s: socket.socket, seconds: float) -> bytes | None:
    """None if nothing arrives within ``seconds``, else what did."""
    s.settimeout(seconds)
    try:
        return s.recv(4096)
    except TimeoutError:
        return None
    finally:
        s.settimeout(STEP_S)


def chat(port: int, max_line: int) -> int:
    """Chat-mode misbehaviour: prints one line per check; 0 when all passed."""
    failed = 0

    def check(what: str, problem: str) -> None:
        nonlocal failed
        failed += bool(problem)
        print(f"{'FAIL' if problem else 'ok  '} chat {what}{': ' + problem if problem else ''}", flush=True)

    try:
        x, xn = chat_member(port)
        y, yn = chat_member(port)
        z, zn = chat_member(port)
        time.sleep(0.2)
        x.sendall(b"hi from x\n")
        want = xn + b": hi from x\n"
        got = [read_exactly(y, len(want)), read_exactly(z, len(want))]
        check("line routed to the others", "" if got == [want, want] else f"got {got!r}")
        # an oversized line: the error line and EOF for its sender, nothing of it for the others
        x.sendall(b"q" * (max_line + 10) + b"\n")
        err = b"* error: line longer than %d bytes\n" % max_line
        got_err = read_exactly(x, len(err))
        rest, how = read_to_end(x)
        check("oversized line: its sender gets the error line, then EOF",
              "" if got_err == err and not rest and how == "eof" else f"got {got_err!r}, then {rest[:40]!r} {how}")
        x.close()
        z.sendall(b"z after\n")
        want = zn + b": z after\n"
        got1 = read_exactly(y, len(want))
        check("oversized line: nothing of it reaches the others", "" if got1 == want else f"got {got1!r}")
        # a partial line at EOF is no message; a member that joins later gets only later lines
        z.sendall(b"partial, no newline")
        z.shutdown(socket.SHUT_WR)
        rest, how = read_to_end(z)
        check("partial line at EOF: its sender gets EOF", "" if not rest and how == "eof" else f"{rest!r} {how}")
        z.close()
        v, _ = chat_member(port)
        y.sendall(b"y before\n")
        want = yn + b": y before\n"
        got1 = read_exactly(v, len(want))  # routed (the order of y's send and w's connect means nothing)
        w, _ = chat_member(port)
        time.sleep(0.2)
        y.sendall(b"y after\n")
        want = yn + b": y after\n"
        got1 += read_exactly(w, len(want))
        check("a new member gets only the lines sent after it joined",
              "" if got1 == yn + b": y before\n" + want else f"got {got1!r}")
        v.close()
        early = nothing_within(y, 1.0)
        check("the partial line was never routed", "" if early is None else f"y got {early!r}")
        # a member that half-closes while lines flow to it: it is no longer a
        # member from then on, gets what was routed to it before (whole lines,
        # in order: a prefix of y's), then EOF
        talk = [yn + b": y %d\n" % i for i in range(2000)]
        y.sendall(b"".join(b"y %d\n" % i for i in range(1000)))
        w.shutdown(socket.SHUT_WR)
        y.sendall(b"".join(b"y %d\n" % i for i in range(1000, 2000)))
        rest, how = read_to_end(w)
        got_lines = rest.splitlines(keepends=True)
        check("a half-closed member gets the lines routed before, whole and in order, then EOF",
              "" if got_lines == talk[:len(got_lines)] and how == "eof"
              else f"{len(got_lines)} lines, not a prefix of y's ({rest[:40]!r}...), then {how}")
        w.close()
        y.close()
    except (CaseFailed, OSError) as e:
        check("session", f"{type(e).__name__}: {e}")
    return 1 if failed else 0


def idle(port: int, clients: int, timeout_s: float) -> int:
    """Against a server with ``--max-clients CLIENTS --idle-timeout-ms``: as
    many silent clients as it serves (one of them dribbling a byte that never
    ends a line every 0.2 s, a slowloris) hold every place; a new client must
    wait for them to time out, then be served, and each silent one must be
    closed (EOF, or a reset once the dribbler's next byte meets the closed
    socket); then a client held back by back-pressure while it reads must not
    be closed as idle (:func:`held_reader`).  Prints one line; exit status 0
    when it held."""
    t0 = time.monotonic()
    try:
        silent = [connect(port) for _ in range(clients)]
    except OSError as e:
        print(f"idle: FAIL: the silent clients could not connect: {e!r}", flush=True)
        return 1
    ended: list[float | None] = [None] * clients
    stop = threading.Event()

    def watch(i: int, s: socket.socket) -> None:
        s.settimeout(0.05)
        while not stop.is_set():
            try:
                if i == 0:
                    s.sendall(b"x")
                if s.recv(1) == b"":
                    break
            except TimeoutError:
                if i == 0:
                    stop.wait(0.15)
                continue
            except OSError:
                break
        else:
            return
        ended[i] = time.monotonic() - t0

    watchers = [threading.Thread(target=watch, args=(i, s), daemon=True) for i, s in enumerate(silent)]
    for w in watchers:
        w.start()
    time.sleep(0.2)  # every silent client accepted (the server serves the first CLIENTS to connect)
    problem = ""
    fresh_at = time.monotonic() - t0
    try:
        served = fresh_served(port, within=timeout_s + 5.0)
    except (CaseFailed, OSError) as e:
        problem, served = str(e), -1.0
    for w in watchers:
        w.join(timeout_s + 5.0)
    stop.set()
    for s in silent:
        s.close()
    closed = [t for t in ended if t is not None]
    if not problem and len(closed) < clients:
        problem = f"only {len(closed)} of the {clients} silent clients were closed"
    elif not problem and fresh_at + served < timeout_s - 0.1:
        problem = (f"the new client was served {fresh_at + served:.2f} s after the silent ones connected, "
                   "before any place could have been freed")
    if problem:
        print(f"idle: FAIL: {problem}", flush=True)
        return 1
    held = held_reader(port, timeout_s)
    if held.startswith("FAIL"):
        print(f"idle: {held}", flush=True)
        return 1
    print(f"idle: {clients} silent clients (one dribbling) closed after {min(closed):.2f}-{max(closed):.2f} s "
          f"(time-out {timeout_s:.1f} s); the new client, locked out until then, served "
          f"{fresh_at + served:.2f} s after they connected; {held}",
          flush=True)
    return 0


def held_reader(port: int, timeout_s: float, rate: int = 32 * 1024) -> str:
    """An echo client that sends 6 MB at full speed while reading ``rate``
    bytes a second (8 KB receive buffer), for 6 idle time-outs: the server
    holds it back (echo's default back-pressure), and each send to it takes
    longer than the time-out to drain; it reads all the time, so it must not
    be closed as idle (it was, after 82 KB: "1 closed when idle").  Then it
    resets.  A "FAIL: ..." line, or what it got."""
    s = connect(port, rcvbuf=8192)
    data = lines_of(6_000_000, b"held")

    stop = threading.Event()

    def send() -> None:  # never blocked in send(): the reset below must not wait for it
        off = 0
        while off < len(data) and not stop.is_set():
            if select.select([], [s], [], 0.1)[1]:
                try:
                    off += s.send(data[off:off + 65536])
                except OSError:
                    return

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    got = bytearray()
    end = ""
    t0 = time.monotonic()
    s.settimeout(STEP_S)
    try:
        while not end and time.monotonic() - t0 < 6 * timeout_s:
            chunk = s.recv(rate // 50)
            got += chunk
            end = "" if chunk else "EOF"
            time.sleep(0.02)
    except OSError as e:
        end = type(e).__name__
    stop.set()
    sender.join(STEP_S)
    reset(s)
    if end or not data.startswith(got):
        return (f"FAIL: a client reading {rate // 1024} KB/s while held back got "
                f"{len(got)} bytes{', not a prefix of its own' if not data.startswith(got) else ''}, then {end}")
    return f"a client reading {rate // 1024} KB/s while held back got {len(got)} bytes in order, not closed"


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system, every thread) process ``pid`` has used, from
    /proc; None where that cannot be read (no /proc, the process has gone)."""
    if sys.platform == "win32":
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def welcome_verdict(wall: float, cpu: float | None, limit: float) -> str:
    """Whether a new member's welcome after ``wall`` seconds, while the
    server used ``cpu`` seconds of CPU (None: not measured), was too late:
    "" if not, else why.

    Wall time alone flakes on a loaded machine (other processes take the CPU
    from the server and from these clients alike), so a welcome later than
    ``limit`` fails only when the server had the CPU to send it: it used at
    least ``limit / BUSY_DIVISOR`` seconds of CPU meanwhile and still had not
    welcomed the member (an accept left waiting behind other work), or when
    the welcome took over ``STALL_FACTOR`` times ``limit`` whatever the load
    (a server that waits instead of accepting: a lost wake-up uses no CPU).
    Without the CPU time, wall time alone decides.

    Measured under Wine at a load of 7-16 on 2 cores (20 senders, 150
    leavers): the server used 0.00-0.08 s of CPU before a welcome (0.01-0.40 s
    wall); with the iocp model's early accept removed (its AcceptEx packet
    waits in the port's FIFO behind every receive routed to every member),
    0.72-0.88 s (2.6-4.0 s wall)."""
    if wall <= limit:
        return ""
    if cpu is None:
        return f"waited {wall:.2f} s for its welcome (limit {limit} s)"
    if cpu >= limit / BUSY_DIVISOR:
        return (f"waited {wall:.2f} s for its welcome while the server used {cpu:.2f} s of CPU "
                f"(limit {limit} s; the server was busy, not starved of CPU)")
    if wall > STALL_FACTOR * limit:
        return f"waited {wall:.2f} s for its welcome (over {STALL_FACTOR} x {limit} s, whatever the load)"
    return ""


def cpu_note(welcomes: list[tuple[float, float | None]]) -> str:
    """The server's CPU seconds during each welcome, for the report ("" if not measured)."""
    if not welcomes:
        return ""
    if any(c is None for _, c in welcomes):
        return "(the server's CPU time not measured: wall time decided) "
    return f"(server CPU meanwhile {', '.join(f'{c:.2f}' for _, c in welcomes)} s) "


def chat_busy(port: int, senders: int, leavers: int, lines: int, fresh_max_s: float,
              server_pid: int | None = None) -> int:
    """A busy chat: ``senders`` members each send ``lines`` lines at once (and
    drain what they are sent), while ``leavers`` members leave mid-broadcast
    (after reading some of it; half close, half reset) and new members join.
    Three members that read everything must get every sender's lines, whole
    and in order; each new member its welcome within ``fresh_max_s`` (with
    ``server_pid``, the server's process, as :func:`welcome_verdict` says).
    Prints one line; 0 when it passed."""
    problems: list[str] = []
    keepers = [chat_member(port) for _ in range(3)]
    talkers = [chat_member(port) for _ in range(senders)]
    goers = [chat_member(port) for _ in range(leavers)]
    time.sleep(0.2)

    def text(i: int, k: int) -> bytes:
        return b"s%d line %d %s\n" % (i, k, b"p" * (k % 50))

    want = b"".join(b"".join(talkers[i][1] + b": " + text(i, k) for k in range(lines)) for i in range(senders))

    def send(i: int) -> None:
        talkers[i][0].sendall(b"".join(text(i, k) for k in range(lines)))

    def drain(s: socket.socket) -> None:  # a sender reads what the others send it, or is cut off
        s.settimeout(2.0)
        try:
            while s.recv(65536):
                pass
        except OSError:
            pass

    def leave(j: int) -> None:
        s = goers[j][0]
        time.sleep(0.3 * j / max(1, leavers))
        try:
            s.recv(1 + 37 * j)
        except OSError:
            pass
        if j % 2:
            reset(s)
        else:
            s.close()

    heard: dict[int, bytes] = {}

    def keep(k: int) -> None:
        s = keepers[k][0]
        got = bytearray()
        try:
            while len(got) < len(want):
                d = s.recv(65536)
                if not d:
                    break
                got += d
        except OSError as e:
            problems.append(f"keeper {k}: {type(e).__name__} after {len(got)} of {len(want)} bytes")
        heard[k] = bytes(got)

    threads = ([threading.Thread(target=keep, args=(k,), daemon=True) for k in range(len(keepers))]
               + [threading.Thread(target=leave, args=(j,), daemon=True) for j in range(leavers)]
               + [threading.Thread(target=send, args=(i,), daemon=True) for i in range(senders)]
               + [threading.Thread(target=drain, args=(t[0],), daemon=True) for t in talkers])
    t0 = time.monotonic()
    for t in threads:
        t.start()
    welcomes: list[tuple[float, float | None]] = []  # (wall, the server's CPU meanwhile)
    for _ in range(4):  # new members join mid-broadcast
        time.sleep(0.25)
        c1 = cpu_seconds(server_pid) if server_pid else None
        t1 = time.monotonic()
        try:
            f, _ = chat_member(port)
            wall = time.monotonic() - t1
            c2 = cpu_seconds(server_pid) if server_pid else None
            f.close()
            welcomes.append((wall, None if c1 is None or c2 is None else c2 - c1))
        except (OSError, CaseFailed) as e:
            problems.append(f"a new member: {e}")
    for t in threads:
        t.join(STEP_S * 3)
    for k in range(len(keepers)):
        per: dict[bytes, list[bytes]] = {}
        for ln in heard.get(k, b"").splitlines(keepends=True):
            who, _, rest = ln.partition(b": ")
            per.setdefault(who, []).append(rest)
        for i in range(senders):
            if per.get(talkers[i][1]) != [text(i, n) for n in range(lines)]:
                problems.append(f"keeper {k}: sender {i}'s lines wrong or missing "
                                f"({len(per.get(talkers[i][1], []))} of {lines})")
    problems += [f"a new member {why}" for wall, cpu in welcomes if (why := welcome_verdict(wall, cpu, fresh_max_s))]
    for s, _ in keepers + talkers:
        s.close()
    took = time.monotonic() - t0
    if problems:
        print(f"FAIL chat-busy: {'; '.join(problems[:4])} ({took:.1f} s)", flush=True)
        return 1
    print(f"ok   chat-busy: {senders} senders x {lines} lines reached 3 readers whole and in order while {leavers} "
          f"members left mid-broadcast; new members welcomed in {', '.join(f'{w:.2f}' for w, _ in welcomes)} s "
          f"{cpu_note(welcomes) if server_pid else ''}"
          f"({took:.1f} s)", flush=True)
    return 0


def backpressure(port: int, mode: str, max_queued: int, stall_s: float) -> int:
    """Back-pressure (a server with ``--high-water`` and ``--stall-timeout-ms``):
    a client that reads slowly gets every byte of ``BACKPRESSURE_TIMES`` times ``max_queued``, and
    one that never reads is cut off (a reset) once stalled, not before.  In
    echo the slow reader sends it all before reading; in chat a talker sends
    it to the slow reader and to the deaf member.  Prints one line; 0 when it
    passed."""
    problems: list[str] = []
    total = BACKPRESSURE_TIMES * max_queued  # far more than loopback's socket buffers hold, too
    body = b"".join(b"%07d %s\n" % (k, b"q" * 92) for k in range(total // 100))
    t0 = time.monotonic()
    deaf = connect(port, rcvbuf=4096)
    slow = connect(port, rcvbuf=8192)
    if mode == "chat":
        read_exactly(deaf, len(b"* welcome \n") + len(b"%s:%d" % (HOST.encode(), deaf.getsockname()[1])))
        slow_welcome = b"* welcome %s:%d\n" % (HOST.encode(), slow.getsockname()[1])
        if read_exactly(slow, len(slow_welcome)) != slow_welcome:
            raise CaseFailed("the slow reader's welcome is wrong")
        talker, name = chat_member(port)
        want = b"".join(name + b": " + ln for ln in body.splitlines(keepends=True))
        sender = talker
        threading.Thread(target=read_to_end, args=(talker,), daemon=True).start()
    else:
        want = body
        sender = slow
    deaf_end: list[tuple[str, float]] = []

    def watch_deaf() -> None:
        """When the deaf client's stream ends, without reading a byte (its window stays shut):
        poll for a hang-up or an error only (a reset: SO_ERROR is ECONNRESET)."""
        if sys.platform == "win32":  # no poll(): the clients run on Linux (e2e.sh)
            deaf_end.append(("not watched (Windows)", 0.0))
            return
        poller = select.poll()
        poller.register(deaf, select.POLLRDHUP)  # POLLERR and POLLHUP are always reported
        while time.monotonic() - t0 < 4 * STEP_S:
            events = poller.poll(50)
            if events:
                # A reset closes both directions (POLLHUP); a FIN only ours to read (POLLRDHUP).  SO_ERROR
                # may already be taken by the echo case's sending thread, whose send the reset failed.
                error = deaf.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error == errno.ECONNRESET or (not error and events[0][1] & select.POLLHUP):
                    how = "reset"
                else:
                    how = errno.errorcode[error] if error else "eof"
                deaf_end.append((how, time.monotonic() - t0))
                return

    watcher = threading.Thread(target=watch_deaf, daemon=True)
    watcher.start()
    # The deaf client sends too in echo (its own replies pile up); in chat it only listens.
    if mode == "echo":
        threading.Thread(target=lambda: _send_quietly(deaf, body), daemon=True).start()
    threading.Thread(target=lambda: _send_quietly(sender, body), daemon=True).start()
    got = bytearray()
    slow.settimeout(STEP_S)
    time.sleep(0.5)  # echo: the replies pile up before it reads
    try:
        while len(got) < len(want):
            d = slow.recv(4096)
            if not d:
                problems.append(f"the slow reader got EOF after {len(got)} of {len(want)} bytes")
                break
            got += d
            time.sleep(0.001)  # about 4 MB/s at most: slower than the server sends
    except OSError as e:
        problems.append(f"the slow reader: {type(e).__name__} after {len(got)} of {len(want)} bytes")
    if not problems and bytes(got) != want:
        problems.append("the slow reader's bytes are wrong")
    took = time.monotonic() - t0
    watcher.join(STEP_S)
    how, deaf_at = deaf_end[0] if deaf_end else ("no end", time.monotonic() - t0)
    if how != "reset":
        problems.append(f"the deaf client's stream ended with {how}, not a reset")
    elif deaf_at < stall_s:
        problems.append(f"the deaf client was cut off after {deaf_at:.2f} s, before its {stall_s} s stall time-out")
    for sk in (deaf, slow, sender):
        sk.close()
    if problems:
        print(f"FAIL backpressure-{mode}: {'; '.join(problems)}", flush=True)
        return 1
    print(f"ok   backpressure-{mode}: the slow reader got all {len(want)} bytes ({len(want) // max_queued} x "
          f"--max-queued) in {took:.1f} s; the deaf client was reset after {deaf_at:.1f} s "
          f"(stall time-out {stall_s} s)", flush=True)
    return 0


def deaf_chat(port: int, megabytes: int, max_gap_s: float) -> int:
    """A chat-mode server with ``serve``'s defaults (back-pressure off in chat):
    a talker sends ``megabytes`` MB of numbered 1000-byte lines at 4 MB/s
    (at full speed, on a loaded machine, the reader in the same process
    sometimes fell behind by --max-queued and was cut off as a slow reader,
    as it is meant to be without back-pressure), a reader reads everything,
    and once the reader has 1 MB a member joins that never reads.  That
    member is cut off (a reset) once --max-queued waits for it, and the chat
    does not wait for it: the reader gets every line whole
    and in order, with no pause longer than ``max_gap_s`` after the deaf member
    joined (with back-pressure in chat, the whole chat stopped for the deaf
    member's stall time-out: 10.0 s under Wine).  Prints one line; 0 when it
    passed."""
    problems: list[str] = []
    t0 = time.monotonic()
    reader, _ = chat_member(port)
    talker, name = chat_member(port)
    threading.Thread(target=read_to_end, args=(talker,), daemon=True).start()
    body = b"".join(b"%07d %s\n" % (k, b"d" * 992) for k in range(megabytes * 1000))
    want = b"".join(name + b": " + ln for ln in body.splitlines(keepends=True))
    threading.Thread(target=_send_paced, args=(talker, body, 4_000_000), daemon=True).start()
    got = bytearray()
    deaf: socket.socket | None = None
    gap = 0.0
    last = time.monotonic()
    try:
        while len(got) < len(want):
            d = reader.recv(65536)
            now = time.monotonic()
            if not d:
                problems.append(f"the reader got EOF after {len(got)} of {len(want)} bytes")
                break
            got += d
            if deaf is not None:
                gap = max(gap, now - last)
            elif len(got) >= 1_000_000:
                deaf = connect(port, rcvbuf=4096)
                now = time.monotonic()  # its gaps count from the join
            last = now
    except OSError as e:
        problems.append(f"the reader: {type(e).__name__} after {len(got)} of {len(want)} bytes")
    took = time.monotonic() - t0
    if not problems and bytes(got) != want:
        problems.append("the reader's lines are wrong")
    if deaf is None:
        problems.append("the deaf member never joined")
    else:
        if gap > max_gap_s:
            problems.append(f"the reader waited {gap:.1f} s for lines after the deaf member joined "
                            f"(limit {max_gap_s} s): the chat waited for it")
        deaf.settimeout(5.0)  # what reached its buffers before the reset is read first
        _, how = read_to_end(deaf)
        if how != "reset":
            problems.append(f"the deaf member's stream ended with {how}, not a reset")
        deaf.close()
    reader.close()
    talker.close()
    return _verdict("deaf-chat", problems, f"the reader got all {len(want)} bytes in order in {took:.1f} s, its "
                    f"longest wait after a deaf member joined {gap:.2f} s; the deaf member was reset")


def _send_paced(s: socket.socket, data: bytes, rate: int) -> None:
    """Send ``data`` at ``rate`` bytes a second at most, in 64 KB pieces; a reset
    or a time-out ends it."""
    t0 = time.monotonic()
    try:
        for at in range(0, len(data), 65536):
            ahead = at / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
            s.sendall(data[at:at + 65536])
    except OSError:
        pass


def _verdict(case: str, problems: list[str], ok: str) -> int:
    """Print the case's one line (``FAIL case: problems`` or ``ok   case: ok``); 0 when it passed."""
    print(f"FAIL {case}: {'; '.join(problems)}" if problems else f"ok   {case}: {ok}", flush=True)
    return 1 if problems else 0


def _send_quietly(s: socket.socket, data: bytes) -> None:
    """Send ``data``; a reset or a time-out (the server cut this client off) ends it."""
    try:
        s.sendall(data)
    except OSError:
        pass


def chat_flood(port: int, senders: int, kilobytes: int) -> int:
    """Chat members that read everything must not be cut off while many send
    at full speed (see the module docstring); 0 when none was."""
    problems: list[str] = []
    reader, _ = chat_member(port)
    talkers = [chat_member(port) for _ in range(senders)]
    heard = bytearray()
    ends: list[str] = []

    def read_all(s: socket.socket, into: bytearray | None) -> None:
        s.settimeout(None)
        how = "eof"
        try:
            while d := s.recv(1 << 20):
                if into is not None:
                    into += d
        except OSError as e:
            how = "reset" if isinstance(e, ConnectionResetError) else type(e).__name__
        ends.append(how)

    def text(i: int) -> bytes:
        return b"".join(b"%02d %06d %s\n" % (i, k, b"f" * 989) for k in range(kilobytes))

    def send(i: int) -> None:
        try:
            talkers[i][0].sendall(text(i))
        except OSError as e:
            problems.append(f"sender {i}: {type(e).__name__} while sending")

    readers = [threading.Thread(target=read_all, args=(reader, heard), daemon=True)]
    readers += [threading.Thread(target=read_all, args=(t[0], None), daemon=True) for t in talkers]
    sending = [threading.Thread(target=send, args=(i,), daemon=True) for i in range(senders)]
    t0 = time.monotonic()
    for t in readers + sending:
        t.start()
    for t in sending:
        t.join(STEP_S * 3)
    want = sum(len(t[1]) + 2 for t in talkers) * kilobytes + senders * kilobytes * 1000
    deadline = time.monotonic() + STEP_S * 3
    while len(heard) < want and time.monotonic() < deadline and not ends:
        time.sleep(0.05)
    took = time.monotonic() - t0
    if ends:
        problems.append(f"{ends.count('reset')} members that read everything were cut off (reset)")
    per: dict[bytes, list[bytes]] = {}
    for ln in bytes(heard).splitlines(keepends=True):
        who, _, rest = ln.partition(b": ")
        per.setdefault(who, []).append(rest)
    for i in range(senders):
        got = b"".join(per.get(talkers[i][1], []))
        if got != text(i):
            problems.append(f"the reader got {len(got)} of sender {i}'s {kilobytes * 1000} bytes"
                            + ("" if text(i).startswith(got) else ", not in order"))
            break
    for s in [reader] + [t[0] for t in talkers]:
        s.close()
    if problems:
        print(f"FAIL chat-flood: {'; '.join(problems[:4])} ({took:.1f} s)", flush=True)
        return 1
    print(f"ok   chat-flood: {senders} senders x {kilobytes} KB of lines at full speed, every member reading: none "
          f"cut off, the reader got every line whole and in order ({took:.1f} s)", flush=True)
    return 0


def lines(port: int, mode: str, max_line: int, members: int) -> int:
    """``serve``'s defaults at the line limit and at a half-close (see the module
    docstring); prints one line per check, 0 when all passed."""
    failed = 0

    def check(what: str, problem: str) -> None:
        nonlocal failed
        failed += bool(problem)
        print(f"{'FAIL' if problem else 'ok  '} lines-{mode} {what}{': ' + problem if problem else ''}", flush=True)

    def send_in_thread(s: socket.socket, data: bytes, fin: bool) -> threading.Thread:
        def run() -> None:
            _send_quietly(s, data)
            if fin:
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    err = b"* error: line longer than %d bytes\n" % max_line
    at_limit, over = b"a" * max_line + b"\n", b"b" * (max_line + 1) + b"\n" + b"after\n"
    try:
        if mode == "echo":
            s = connect(port)  # several receives make up each line (the server's are 16 KiB)
            t = send_in_thread(s, at_limit + over, False)
            got, how = read_to_end(s)
            t.join(STEP_S)
            check("a line of --max-line bytes echoed, one over: the error line, then EOF",
                  "" if got == at_limit + err and how == "eof" else f"{len(got)} bytes ({got[-50:]!r}), {how}")
            s.close()
            s = connect(port)  # more than the socket buffers hold, so back-pressure holds it back meanwhile
            data = lines_of(3_000_000, b"hc")
            t = send_in_thread(s, data + b"tail without a newline", True)
            time.sleep(1.0)
            got, how = read_to_end(s)
            t.join(STEP_S)
            check("3 MB, a partial line and FIN sent before reading: every line echoed, then EOF",
                  "" if got == data and how == "eof" else f"{len(got)} of {len(data)} bytes, {how}")
            s.close()
            return 1 if failed else 0
        x, _ = chat_member(port)
        y, yn = chat_member(port)
        z, zn = chat_member(port)
        time.sleep(0.2)
        z.sendall(b"one\ntwo\nthree\npartial")  # lines owed to the others, then FIN at once
        z.shutdown(socket.SHUT_WR)
        rest, how = read_to_end(z)
        z.close()
        want = b"".join(zn + b": " + w + b"\n" for w in (b"one", b"two", b"three"))
        got = read_exactly(x, len(want))
        check("lines sent just before FIN reach the others, the partial one no one; its sender gets EOF",
              "" if got == want and not rest and how == "eof" else f"{got!r}; sender: {rest[:40]!r} {how}")
        r, _ = chat_member(port)
        time.sleep(0.2)
        r.sendall(b"half a li")
        time.sleep(0.2)
        reset(r)
        o, on = chat_member(port)
        time.sleep(0.2)
        t = send_in_thread(o, at_limit + over, False)
        want = on + b": " + at_limit
        got = read_exactly(x, len(want))
        rest, how = read_to_end(o)
        t.join(STEP_S)
        o.close()
        check("a line of --max-line bytes routed; one over: the error line and EOF for its sender",
              "" if got == want and rest == err and how == "eof" else f"{len(got)} of {len(want)}; {rest[:60]!r} {how}")
        y.sendall(b"still here\n")
        want = yn + b": still here\n"
        got = read_exactly(x, len(want))
        check("nothing of a line cut by a reset, nor of the line over --max-line, reaches anyone",
              "" if got == want else f"got {got[:80]!r}")
        x.close()
        y.close()
        t0 = time.monotonic()
        ms = [chat_member(port) for _ in range(members)]
        time.sleep(0.5)
        for s, _ in ms:
            s.sendall(b"hello\n")
        bad = []
        for s, n in ms:
            want_set = sorted(m + b": hello\n" for _, m in ms if m != n)
            got = read_exactly(s, sum(map(len, want_set)))
            if sorted(got.splitlines(keepends=True)) != want_set:
                bad.append(n.decode())
        for s, _ in ms:
            s.close()
        check(f"{members} members at once, each line to every other member ({time.monotonic() - t0:.1f} s)",
              "" if not bad else f"{len(bad)} members got something else, e.g. {bad[:3]}")
    except (CaseFailed, OSError) as e:
        check("session", f"{type(e).__name__}: {e}")
    return 1 if failed else 0


def fd_limit(port: int, most: int, wait_s: float, server_pid: int | None, hold_s: float = 3.0) -> int:
    """See the module docstring: 0 when the server, out of file descriptors
    with clients waiting, does not spin (under a third of ``hold_s`` in CPU
    time while they wait ``hold_s``), and serves a fresh client once the held
    ones left."""
    held: list[socket.socket] = []
    stuck = ""
    spin = ""
    try:
        for i in range(most):
            line = b"held %d\n" % i
            try:
                s = connect(port)
                held.append(s)
                s.sendall(line)
                s.settimeout(wait_s)
                got = read_exactly(s, len(line))
            except TimeoutError:
                got = b"nothing"
            except OSError as e:
                got = repr(e).encode()
            if got != line:
                stuck = f"client {i + 1} not served within {wait_s} s (got {got[:40]!r})"
                break
        if stuck:
            for _ in range(3):  # more clients waiting while the accepts fail
                with contextlib.suppress(OSError):
                    held.append(connect(port))
            before = cpu_seconds(server_pid) if server_pid else None
            time.sleep(hold_s)
            after = cpu_seconds(server_pid) if server_pid else None
            if before is not None and after is not None:
                used = after - before
                spin = f"; it used {used:.2f} s of CPU in {hold_s} s meanwhile"
                if used > hold_s / 3:
                    print(f"FAIL fd-limit: {len(held) - 4} clients served, then {stuck}{spin}: it spins")
                    return 1
    finally:
        for s in held:
            s.close()
    if not stuck:
        print(f"FAIL fd-limit: all {most} clients served: the server's file descriptors were not used up")
        return 1
    try:
        took = fresh_served(port, within=10.0)
    except CaseFailed as e:
        print(f"FAIL fd-limit: {len(held) - 4} clients served, then {stuck}{spin}; once they left: {e}")
        return 1
    print(f"ok   fd-limit: {len(held) - 4} clients served, then {stuck} (out of file descriptors){spin}; "
          f"once they left a fresh client was served in {took:.2f} s")
    return 0


def handle_counts(log: str) -> list[int]:
    """The handle counts tools/wine/handles.py printed so far."""
    with open(log, errors="replace") as f:
        return [int(line.split()[1]) for line in f if line.startswith("handles: ")]


def handles_now(log: str, wait_s: float = 30.0) -> int:
    """A handle count taken wholly after this call: the second one printed after it."""
    seen = len(handle_counts(log))
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if len(counts := handle_counts(log)) >= seen + 2:
            return counts[seen + 1]
        time.sleep(0.1)
    raise CaseFailed(f"no handle count in {log} within {wait_s} s")


def churn_clients(port: int, mode: str, max_line: int, idle_s: float) -> list[Callable[[], str]]:
    """One client of each kind that ends (see ``churn``): each returns "" or what was wrong."""
    chat_mode = mode == "chat"

    def joined(s: socket.socket) -> None:
        if chat_mode and not read_line(s).startswith(b"* welcome "):
            raise CaseFailed("no welcome")

    def line() -> str:
        with connect(port) as s:
            joined(s)
            s.sendall(b"churn\n")
            if not chat_mode and read_exactly(s, 6) != b"churn\n":
                return "a line not echoed"
        return ""

    def rst_mid_line() -> str:
        s = connect(port)
        s.sendall(b"partial")
        reset(s)
        return ""

    def rst_mid_reply() -> str:
        s = connect(port, rcvbuf=4096)
        joined(s)
        s.sendall(lines_of(50_000, b"r"))
        time.sleep(0.02)
        reset(s)
        return ""

    def oversized() -> str:
        with connect(port) as s:
            joined(s)
            _send_quietly(s, b"o" * (max_line + 1) + b"\n")
            got, how = read_to_end(s)
        return "" if got.endswith(b"* error: line longer than %d bytes\n" % max_line) else f"{got[-60:]!r}, {how}"

    def half_close() -> str:
        data = lines_of(20_000 if chat_mode else 100_000, b"h")  # chat: to every member
        with connect(port) as s:
            joined(s)
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got, how = read_to_end(s)
        if not chat_mode:
            return "" if got == data and how == "eof" else f"{len(got)} of {len(data)} bytes, {how}"
        # chat: its lines go to the others; it gets theirs routed while it was a member, each whole, then EOF
        # (or a reset: cut off as a slow consumer of the other clients' floods, max_queued)
        if how == "eof" and not all(m.endswith(b"\n") and b": " in m for m in got.splitlines(keepends=True)):
            return f"not whole chat lines before EOF: ...{got[-60:]!r}"
        return ""

    def connect_close() -> str:
        connect(port).close()
        return ""

    def connect_reset() -> str:
        reset(connect(port))
        return ""

    def silent() -> str:
        with connect(port) as s:
            s.settimeout(idle_s + STEP_S)
            _, how = read_to_end(s)  # closed once idle (chat: after its welcome)
        return "" if how == "eof" else f"not closed when idle: {how}"

    return [line, rst_mid_line, rst_mid_reply, oversized, half_close, connect_close, connect_reset, silent]


def read_line(s: socket.socket) -> bytes:
    got = bytearray()
    while not got.endswith(b"\n") and (d := s.recv(1)):
        got += d
    return bytes(got)


def churn(port: int, mode: str, log: str, max_line: int, idle_s: float, rounds: int, clients: int,
          slack: int) -> int:
    """See the module docstring: 0 when every client was right, a fresh one
    served after each round, and the handle count did not grow after the first."""
    kinds = churn_clients(port, mode, max_line, idle_s)
    before = handles_now(log)
    counts: list[int] = []
    def run(kind: Callable[[], str], problems: list[str]) -> None:
        try:
            if problem := kind():
                problems.append(f"{kind.__name__}: {problem}")
        except (OSError, CaseFailed) as e:
            problems.append(f"{kind.__name__}: {e!r}")

    try:
        for r in range(rounds):
            problems: list[str] = []
            for first in range(0, clients, 50):
                threads = [threading.Thread(target=run, args=(kinds[i % len(kinds)], problems))
                           for i in range(first, min(clients, first + 50))]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
            if problems:
                raise CaseFailed(f"round {r + 1}: {len(problems)} clients wrong, e.g. {problems[:3]}")
            if mode == "echo":
                fresh_served(port)
            else:
                with connect(port) as s:
                    s.settimeout(5.0)
                    if not read_line(s).startswith(b"* welcome "):
                        raise CaseFailed(f"round {r + 1}: a fresh member got no welcome")
            time.sleep(0.5)
            counts.append(handles_now(log))
    except CaseFailed as e:
        print(f"FAIL churn: {e} (handles: {before} before, {counts} after each round)")
        return 1
    grown = max(counts[1:], default=counts[0]) - counts[0]
    verdict = "ok  " if grown <= slack else "FAIL"
    print(f"{verdict} churn: {rounds} rounds of {clients} clients ({', '.join(k.__name__ for k in kinds)}), each "
          f"right, a fresh one served after each; the server's handles: {before} before, {counts} after each round"
          + (f" (grew by {grown} after the first, over {slack}: a leak)" if grown > slack else ""))
    return 0 if grown <= slack else 1


def zombies(port: int, max_clients: int, flooders: int, leavers: int, rounds: int) -> int:
    """Chat (the server run with ``--mode chat --max-clients C``): in each round,
    ``flooders`` members that never read (4 KB receive buffer) send 1000-byte
    lines until a send blocks for 1 s (or 20 MB), then close (a reset: their
    chat lines are unread), while ``leavers`` members send 12 KB of CRLF and LF
    lines, half-close and read to the end; once every one of them has gone,
    ``max_clients`` fresh members connect at once and each must get its
    welcome within 5 s: a place still held means the server kept a
    connection whose client is gone.

    Found so under Wine 8.0 (every model, every default but --max-clients):
    2-4 flooders a round of 50 stayed in the server's table for good, each
    read as EOF (Wine renders the reset as 0 bytes) with a WSASend to it
    pending that never completes (getpeername: WSAENOTCONN), its queue (up
    to --max-queued) and its place kept until the stop; the server now asks
    getpeername at an EOF with a send in flight."""
    def flooder() -> str:
        s = connect(port, rcvbuf=4096)
        try:
            if not read_line(s).startswith(b"* welcome "):
                return "no welcome"
            s.settimeout(1.0)
            line = b"f" * 999 + b"\n"
            try:
                for _ in range(20_000):
                    s.sendall(line)
            except TimeoutError:
                pass  # the server stopped reading for a second: a loaded server, or busy routing
            except OSError:
                pass  # cut off (--max-queued): a reset is a right end too
        finally:
            s.close()
        return ""

    def leaver() -> str:
        with connect(port) as s:
            if not read_line(s).startswith(b"* welcome "):
                return "no welcome"
            s.sendall(b"a\r\n\n\r\r\nb\nc\r\n" * 1000)
            s.shutdown(socket.SHUT_WR)
            read_to_end(s)
        return ""

    def run(kind: Callable[[], str], problems: list[str]) -> None:
        try:
            if problem := kind():
                problems.append(f"{kind.__name__}: {problem}")
        except OSError as e:
            problems.append(f"{kind.__name__}: {e!r}")

    interleaved = [k for i in range(max(flooders, leavers))  # flooder, leaver, flooder...: as found
                   for k, n in ((flooder, flooders), (leaver, leavers)) if i < n]
    for r in range(rounds):
        problems: list[str] = []
        threads = [threading.Thread(target=run, args=(k, problems))
                   for k in interleaved]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if problems:
            print(f"FAIL zombies: round {r + 1}: {len(problems)} clients wrong, e.g. {problems[:3]}")
            return 1
        time.sleep(1.0)  # every end read by the server
        members = []
        try:
            for _ in range(max_clients):
                members.append(connect(port))
            deadline = time.monotonic() + 5.0
            welcomed = 0
            for m in members:
                m.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    if read_line(m).startswith(b"* welcome "):
                        welcomed += 1
                except OSError:
                    pass
        finally:
            for m in members:
                m.close()
        if welcomed < max_clients:
            print(f"FAIL zombies: round {r + 1}: {max_clients - welcomed} of --max-clients {max_clients} places "
                  f"still held once {flooders + leavers} clients had gone ({welcomed} fresh members welcomed "
                  f"within 5 s)")
            return 1
        time.sleep(0.5)  # the fresh members' ends read before the next round
    print(f"ok   zombies: {rounds} rounds of {flooders} deaf flooders that close and {leavers} half-closers: "
          f"every place free again ({max_clients} fresh members welcomed after each)")
    return 0


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["idle"]:
        i = argparse.ArgumentParser(prog="misbehave.py idle")
        i.add_argument("--port", type=int, required=True)
        i.add_argument("--clients", type=int, required=True, help="the server's --max-clients")
        i.add_argument("--timeout-ms", type=int, required=True, help="the server's --idle-timeout-ms")
        ia = i.parse_args(argv[1:])
        return idle(ia.port, ia.clients, ia.timeout_ms / 1000)
    if argv[:1] == ["busy"]:
        b = argparse.ArgumentParser(prog="misbehave.py busy")
        b.add_argument("--port", type=int, required=True)
        b.add_argument("--clients", type=int, default=200)
        b.add_argument("--seconds", type=float, default=60.0)
        ba = b.parse_args(argv[1:])
        return busy(ba.port, ba.clients, ba.seconds)
    if argv[:1] == ["chat-busy"]:
        cb = argparse.ArgumentParser(prog="misbehave.py chat-busy")
        cb.add_argument("--port", type=int, required=True)
        cb.add_argument("--senders", type=int, default=10)
        cb.add_argument("--leavers", type=int, default=150)
        cb.add_argument("--lines", type=int, default=1000)
        cb.add_argument("--fresh-max-s", type=float, default=5.0)
        cb.add_argument("--server-pid", type=int, default=None,
                        help="the server's process (Linux pid, /proc): a late welcome fails only if the server "
                             "had the CPU to send it (see welcome_verdict)")
        cba = cb.parse_args(argv[1:])
        return chat_busy(cba.port, cba.senders, cba.leavers, cba.lines, cba.fresh_max_s, cba.server_pid)
    if argv[:1] == ["backpressure"]:
        bp = argparse.ArgumentParser(prog="misbehave.py backpressure")
        bp.add_argument("--port", type=int, required=True)
        bp.add_argument("--mode", choices=("echo", "chat"), required=True)
        bp.add_argument("--max-queued", type=int, required=True, help="the server's --max-queued")
        bp.add_argument("--stall-timeout-ms", type=int, required=True, help="the server's --stall-timeout-ms")
        bpa = bp.parse_args(argv[1:])
        return backpressure(bpa.port, bpa.mode, bpa.max_queued, bpa.stall_timeout_ms / 1000)
    if argv[:1] == ["deaf-chat"]:
        dc = argparse.ArgumentParser(prog="misbehave.py deaf-chat")
        dc.add_argument("--port", type=int, required=True)
        dc.add_argument("--megabytes", type=int, default=10, help="the talker's lines, MB")
        dc.add_argument("--max-gap-s", type=float, default=5.0, help="the reader's longest wait once the deaf "
                        "member joined")
        dca = dc.parse_args(argv[1:])
        return deaf_chat(dca.port, dca.megabytes, dca.max_gap_s)
    if argv[:1] == ["chat-flood"]:
        cf = argparse.ArgumentParser(prog="misbehave.py chat-flood")
        cf.add_argument("--port", type=int, required=True)
        cf.add_argument("--senders", type=int, default=10)
        cf.add_argument("--kilobytes", type=int, default=400, help="each sender's lines (1000 bytes each)")
        cfa = cf.parse_args(argv[1:])
        return chat_flood(cfa.port, cfa.senders, cfa.kilobytes)
    if argv[:1] == ["lines"]:
        ln = argparse.ArgumentParser(prog="misbehave.py lines")
        ln.add_argument("--port", type=int, required=True)
        ln.add_argument("--mode", choices=("echo", "chat"), required=True)
        ln.add_argument("--max-line", type=int, default=65536, help="the server's --max-line")
        ln.add_argument("--members", type=int, default=200, help="chat: members that join at once")
        lna = ln.parse_args(argv[1:])
        return lines(lna.port, lna.mode, lna.max_line, lna.members)
    if argv[:1] == ["fd-limit"]:
        fl = argparse.ArgumentParser(prog="misbehave.py fd-limit")
        fl.add_argument("--port", type=int, required=True)
        fl.add_argument("--most", type=int, default=400, help="clients at the most")
        fl.add_argument("--wait-s", type=float, default=2.0, help="how long a client waits for its echo")
        fl.add_argument("--server-pid", type=int, default=None,
                        help="the server's process (Linux pid, /proc): it must not spin while out of descriptors")
        fla = fl.parse_args(argv[1:])
        return fd_limit(fla.port, fla.most, fla.wait_s, fla.server_pid)
    if argv[:1] == ["churn"]:
        ch = argparse.ArgumentParser(prog="misbehave.py churn")
        ch.add_argument("--port", type=int, required=True)
        ch.add_argument("--mode", choices=("echo", "chat"), required=True)
        ch.add_argument("--log", required=True, help="the output of tools/wine/handles.py: its handle counts")
        ch.add_argument("--max-line", type=int, required=True, help="the server's --max-line")
        ch.add_argument("--idle-timeout-ms", type=int, required=True, help="the server's --idle-timeout-ms")
        ch.add_argument("--rounds", type=int, default=3, help="at least 2: the first round sets the baseline")
        ch.add_argument("--clients", type=int, default=280)
        ch.add_argument("--slack", type=int, default=8, help="handles the count may grow by after the first round")
        cha = ch.parse_args(argv[1:])
        if cha.rounds < 2 or cha.clients < 1:
            ch.error("--rounds must be at least 2 (the count after the first is the baseline), --clients at least 1")
        return churn(cha.port, cha.mode, cha.log, cha.max_line, cha.idle_timeout_ms / 1000, cha.rounds, cha.clients,
                     cha.slack)
    if argv[:1] == ["zombies"]:
        z = argparse.ArgumentParser(prog="misbehave.py zombies")
        z.add_argument("--port", type=int, required=True)
        z.add_argument("--max-clients", type=int, required=True, help="the server's --max-clients")
        z.add_argument("--flooders", type=int, default=50)
        z.add_argument("--leavers", type=int, default=50)
        z.add_argument("--rounds", type=int, default=2)
        za = z.parse_args(argv[1:])
        if za.flooders + za.leavers > za.max_clients:
            z.error("--flooders + --leavers must be at most --max-clients (each round's clients at once)")
        return zombies(za.port, za.max_clients, za.flooders, za.leavers, za.rounds)
    if argv[:1] == ["chat"]:
        c = argparse.ArgumentParser(prog="misbehave.py chat")
        c.add_argument("--port", type=int, required=True)
        c.add_argument("--max-line", type=int, required=True)
        ca = c.parse_args(argv[1:])
        return chat(ca.port, ca.max_line)
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--max-line", type=int, required=True)
    p.add_argument("--max-queued", type=int, required=True)
    p.add_argument("--max-clients", type=int, required=True)
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {CASES}")
    p.add_argument("--witness-max-s", type=float, default=5.0, help="longest the witness may wait for an echo")
    p.add_argument("--label", default="", help="printed before each line")
    args = p.parse_args(argv)
    cases = [c for c in args.cases.split(",") if c]
    if bad := [c for c in cases if c not in CASES]:
        p.error(f"unknown cases {bad}")
    failed = 0
    for name in cases:
        t0 = time.monotonic()
        witness = None if name in ("max-clients", "backlog") else Witness(args.port)
        try:
            if witness is None:
                detail = RUNNERS[name](args)
            else:
                with witness:
                    time.sleep(0.1)
                    detail = RUNNERS[name](args)
            problem = witness.verdict(args.witness_max_s) if witness is not None else ""
            if witness is not None and not problem:
                detail += f"; witness: {witness.sent} echoes, worst {witness.worst:.2f} s"
        except CaseFailed as e:
            problem = str(e)
        except OSError as e:
            problem = f"{type(e).__name__}: {e}"
        dt = time.monotonic() - t0
        if problem:
            failed += 1
            print(f"FAIL {args.label}{name}: {problem} ({dt:.1f} s)", flush=True)
        else:
            print(f"ok   {args.label}{name}: {detail} ({dt:.1f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
