#!/usr/bin/env python3
"""Every kind of misbehaving client at once against ``ovserver serve``, beside
a well-behaved witness (run by tools/wine/e2e.sh, part ``storm``).  Standard
library only, loopback only, bounded in time.

    storm.py --port P --mode echo|chat [--seconds 15] [--pid WINPID]

For ``--seconds``, all at once: slowloris clients (one byte a second, never a
newline), silent clients (connect, never send), clients that send a line
without a newline at full speed (the server must hang them up), clients that
send and never read (echo: their own echoes; chat: members that never read
while a talker sends 200 KB/s), a connect-then-reset flood, and half-closers (200 KB of
lines, then a FIN, then read every reply, checked whole).  Meanwhile a witness
connects every 0.5 s, sends a line and must get its echo (chat: its welcome,
then another member's line) within ``--witness-s`` (default 5).  ``--pid``:
the Linux pid of the server's python.exe, whose resident memory is sampled
(printed as the peak; ``--max-rss-mb`` bounds it).  Then it prints its
checks and "ready for the stop", and the storm goes on until stdin closes
(the caller stops the server meanwhile, with Ctrl+C), then checks that every
connection it held saw its end (EOF or reset) within ``--end-s``.

Prints one line per check; exit status 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable

HOST = "127.0.0.1"


class Storm:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stop = threading.Event()  # the storm's traffic ends (its sockets stay open)
        self.lock = threading.Lock()
        self.held: list[socket.socket] = []  # sockets kept until the server is stopped
        self.failures: list[str] = []
        self.notes: dict[str, int] = {}
        self.witness_s: list[float] = []
        self.peak_rss_kb = 0
        self.judged = False

    def note(self, what: str) -> None:
        with self.lock:
            self.notes[what] = self.notes.get(what, 0) + 1

    def fail(self, what: str) -> None:
        with self.lock:
            if not self.judged:  # after the checks the server is being stopped: errors are due
                self.failures.append(what)

    def connect(self, rcvbuf: int = 0) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(30)
        s.connect((HOST, self.args.port))
        return s

    def hold(self, s: socket.socket) -> None:
        with self.lock:
            self.held.append(s)

    # ------------------------------------------------------------ the misbehaving

    def slowloris(self) -> None:
        s = self.connect()
        self.hold(s)
        while not self.stop.wait(1.0):
            try:
                s.send(b"x")
            except OSError:
                self.note("slowloris cut")
                return

    def silent(self) -> None:
        self.hold(self.connect())

    def endless_line(self) -> None:
        s = self.connect()
        chunk = b"y" * 65536
        try:
            while not self.stop.is_set():
                s.sendall(chunk)
        except OSError:
            self.note("endless line cut")  # hung up (error line, FIN), then reset as it went on
        s.close()

    def deaf(self) -> None:
        """Echo: sends and never reads.  Chat: a member that never reads."""
        s = self.connect(rcvbuf=4096)
        self.hold(s)
        if self.args.mode == "chat":
            return
        s.settimeout(1.0)
        line = b"d" * 1023 + b"\n"
        try:
            while not self.stop.is_set():
                try:
                    s.send(line)
                except TimeoutError:
                    continue  # blocked: back-pressure (echo's default) or full buffers
        except OSError:
            self.note("deaf cut")

    def talker(self) -> None:
        """Chat: talks at 200 KB/s, a line every 5 ms (and reads what it gets).
        At full speed (20 MB/s through the iocp model) it cut off the members
        that read all the time as well: chat has no back-pressure by default,
        so a member slower than the flood is cut off, as documented; at this
        pace only those that do not read fall behind."""
        s = self.connect()
        self.hold(s)
        s.settimeout(0.0)
        line = b"t" * 999 + b"\n"
        while not self.stop.wait(0.005):
            try:
                s.send(line)
            except BlockingIOError:
                pass
            except OSError:
                self.fail("the chat talker was cut off")
                return
            try:
                while s.recv(65536):
                    pass
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self.fail("the chat talker was reset")
                return

    def resets(self) -> None:
        linger = struct.pack("ii", 1, 0)
        while not self.stop.is_set():
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                s.connect((HOST, self.args.port))
                s.close()
                self.note("connect-reset")
                time.sleep(0.004)  # about 200 a second a thread: thousands in the run
            except OSError:
                self.note("connect-reset refused")
                time.sleep(0.01)

    @staticmethod
    def drain(s: socket.socket, got: bytearray) -> threading.Thread:
        """Read ``s`` into ``got`` until EOF (or an error) in a thread of its
        own: in chat a member that stops reading for long during the flood is
        cut off (a reset, as documented: --max-queued, no back-pressure)."""
        def run() -> None:
            try:
                while d := s.recv(65536):
                    got.extend(d)
            except OSError:
                got[:0] = b"!reset!"
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def half_closer(self) -> None:
        while not self.stop.is_set():
            s = self.connect()
            lines = b"".join(b"half %06d " % i + b"h" * 180 + b"\n" for i in range(1000))  # 200 KB
            got = bytearray()
            reader = self.drain(s, got)
            try:
                s.sendall(lines)
                s.shutdown(socket.SHUT_WR)
                reader.join(30)
            except OSError as e:
                self.fail(f"a half-closer: {e!r}")
                return
            finally:
                s.close()
            if got.startswith(b"!reset!"):
                self.fail(f"a half-closer was reset after {len(got) - 7} bytes")
                return
            if self.args.mode == "echo" and bytes(got) != lines:
                self.fail(f"a half-closer got {len(got)} of {len(lines)} bytes back")
                return
            self.note("half-closer served")

    # ------------------------------------------------------------ the witness

    def witness(self) -> None:
        while not self.stop.wait(0.5):
            t0 = time.monotonic()
            try:
                if self.args.mode == "echo":
                    s = self.connect()
                    s.settimeout(self.args.witness_s)
                    s.sendall(b"witness\n")
                    self.read_until(s, b"witness\n")
                else:
                    a, b = self.connect(), self.connect()
                    for m in (a, b):
                        m.settimeout(self.args.witness_s)
                        self.read_until(m, b"\n")  # its welcome
                    self.drain(a, bytearray())
                    a.sendall(b"witness\n")
                    self.read_until(b, b": witness\n")
                    a.close()
                    s = b
                s.close()
            except OSError as e:
                self.fail(f"the witness was not served: {e!r} after {time.monotonic() - t0:.1f} s")
                return
            self.witness_s.append(time.monotonic() - t0)

    @staticmethod
    def read_until(s: socket.socket, end: bytes) -> None:
        got = b""
        while end not in got:
            d = s.recv(65536)
            if not d:
                raise ConnectionError(f"EOF after {got[-60:]!r}")
            got = got[-len(end):] + d

    def sample_rss(self) -> None:
        while not self.stop.wait(0.5):
            try:
                with open(f"/proc/{self.args.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            self.peak_rss_kb = max(self.peak_rss_kb, int(line.split()[1]))
            except OSError:
                return

    # ------------------------------------------------------------ the run

    def run(self) -> int:
        a = self.args
        jobs: list[tuple[Callable[[], None], int]] = [
            (self.slowloris, 30), (self.silent, 30), (self.endless_line, 2), (self.deaf, 5),
            (self.resets, 2), (self.half_closer, 2), (self.witness, 1)]
        if a.mode == "chat":
            jobs.append((self.talker, 1))
        if a.pid:
            jobs.append((self.sample_rss, 1))
        threads = [threading.Thread(target=self.guard(job), daemon=True) for job, n in jobs for _ in range(n)]
        for t in threads:
            t.start()
        time.sleep(a.seconds)
        with self.lock:
            self.judged = True
            failures = list(self.failures)
        ok = not failures
        for f in failures[:5]:
            print(f"FAIL {f}")
        slowest = max(self.witness_s, default=float("nan"))
        print(f"{'ok' if self.witness_s and slowest <= a.witness_s else 'FAIL'}: the witness was served "
              f"{len(self.witness_s)} times, the slowest in {slowest:.2f} s ({dict(sorted(self.notes.items()))})")
        ok = ok and bool(self.witness_s) and slowest <= a.witness_s
        if a.pid:
            mb = self.peak_rss_kb / 1024
            print(f"{'ok' if mb <= a.max_rss_mb else 'FAIL'}: the server's peak memory {mb:.0f} MB "
                  f"(at most {a.max_rss_mb})")
            ok = ok and mb <= a.max_rss_mb
        print(f"ready for the stop ({len(self.held)} connections held, the storm goes on)", flush=True)
        sys.stdin.read()  # the caller stops the server (Ctrl+C) meanwhile, then closes our stdin
        self.stop.set()
        ok = self.check_ended() and ok
        for t in threads:
            t.join(timeout=10)
        return 0 if ok else 1

    def check_ended(self) -> bool:
        """Every held connection sees its end (EOF or reset) once the server has stopped."""
        deadline = time.monotonic() + self.args.end_s
        open_ = 0
        for s in self.held:
            try:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                while s.recv(65536):
                    pass
            except (ConnectionError, OSError) as e:
                if isinstance(e, TimeoutError):
                    open_ += 1
            s.close()
        print(f"{'ok' if not open_ else 'FAIL'}: {len(self.held) - open_} of {len(self.held)} held "
              "connections ended after the stop")
        return not open_

    def guard(self, job: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                job()
            except OSError as e:
                self.fail(f"{job.__name__}: {e!r}")
        return run


def main() -> int:
    p = argparse.ArgumentParser(description="Every kind of misbehaving client at once beside a witness.")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", choices=("echo", "chat"), default="echo")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--witness-s", type=float, default=5.0)
    p.add_argument("--end-s", type=float, default=5.0)
    p.add_argument("--pid", type=int, default=0)
    p.add_argument("--max-rss-mb", type=float, default=400.0)
    return Storm(p.parse_args()).run()


if __name__ == "__main__":
    sys.exit(main())
