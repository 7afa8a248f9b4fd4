#!/usr/bin/env python3
"""Load client for ``ovserver serve``: N clients x M lines, every reply verified.

Runs on Linux (driving a server under Wine, see tools/wine/e2e.sh) or anywhere
else; standard library only (asyncio), loopback only, bounded in time.

    python3 tools/wine/loadclient.py --port P --mode echo|chat [--clients 100] [--lines 10]

* **echo**: clients concurrently.  Each connects, sends its lines (unique
  content, in random chunks: several lines per send, lines split across sends),
  closes its sending side, and must read back exactly the bytes it sent, then
  EOF.  At most ``--concurrency`` (default 200) run at a time; the events
  model no longer stops at 63 (a thread per group of 63 clients).
  With ``--together``, every client first sends one line and has it echoed,
  and none goes on until all have: the server serves all ``--clients`` at once
  (``--concurrency`` is then ignored).
* **chat**: clients in waves of at most ``--wave`` (default 50).  Each client
  of a wave connects and must first get ``* welcome <its host:port>``; once
  every client of the wave has been welcomed (so all are members), each sends
  its lines, and each must receive
  from every other member of the wave exactly that member's lines, in order,
  as ``<sender host:port>: <line>``, and nothing else.  Then all leave.

With ``--spawn --model events|routines|iocp`` it first starts the server itself
(``sys.executable -m ovserver serve --port 0``, so natively on Windows: the
GitHub Actions workflow uses it), reads the port from its ready line, and
stops it afterwards the way Ctrl+C does: CTRL_BREAK_EVENT to its process group
on Windows (SIGINT elsewhere); the server must then exit 0 with its "stopped"
line.  Under Wine, tools/wine/e2e.sh starts and stops the server instead.

Prints one line of counts; exit status 0 when every reply was right, 1 when
any was wrong (the first problems are printed), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict

HOST_DEFAULT = "127.0.0.1"


class Failure(Exception):
    """A client got something other than the right reply."""


def make_lines(client: int, count: int, rng: random.Random) -> list[bytes]:
    """``count`` unique lines of varying length (never containing a newline)."""
    out = []
    for j in range(count):
        pad = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789 ") for _ in range(rng.randint(0, 200)))
        out.append(b"client %d line %d %s\n" % (client, j, pad))
    return out


def chunked(data: bytes, rng: random.Random) -> list[bytes]:
    """``data`` cut at random places (lines coalesced and split)."""
    chunks, i = [], 0
    while i < len(data):
        n = rng.randint(1, 300)
        chunks.append(data[i:i + n])
        i += n
    return chunks


async def send_chunked(writer: asyncio.StreamWriter, data: bytes, rng: random.Random) -> None:
    for chunk in chunked(data, rng):
        writer.write(chunk)
        await writer.drain()
        if rng.random() < 0.2:
            await asyncio.sleep(0.001)


async def echo_client(host: str, port: int, idx: int, lines: int, seed: int, timeout: float,
                      together: Together | None = None) -> int:
    rng = random.Random(seed * 100_003 + idx)
    payload = b"".join(make_lines(idx, lines, rng))
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        if together is not None:  # first line echoed (so this client is served), then wait for all
            first = payload[:payload.index(b"\n") + 1]
            writer.write(first)
            await writer.drain()
            got_first = await asyncio.wait_for(reader.readexactly(len(first)), timeout)
            if got_first != first:
                raise Failure(f"echo client {idx}: first line echoed as {got_first[:60]!r}")
            await together.arrive(timeout)
            payload = payload[len(first):]
        await send_chunked(writer, payload, rng)
        writer.write_eof()  # graceful: the server sends what is queued, then closes
        got = await asyncio.wait_for(reader.read(), timeout)  # up to EOF
    finally:
        writer.close()
    if together is not None:
        got = got_first + got
        payload = got_first + payload
    if got != payload:
        where = next((i for i, (a, b) in enumerate(zip(got, payload, strict=False)) if a != b),
                     min(len(got), len(payload)))
        raise Failure(f"echo client {idx}: got {len(got)} bytes, expected {len(payload)}; first difference at "
                      f"byte {where}: {got[where:where + 40]!r} vs {payload[where:where + 40]!r}")
    return lines


class Together:
    """A barrier for ``--together``: every echo client has been served its first
    line, so the server holds all of them at once, before any goes on."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.arrived = 0
        self.all_in = asyncio.Event()
        self.peak = 0

    async def arrive(self, timeout: float) -> None:
        self.arrived += 1
        self.peak = max(self.peak, self.arrived)
        if self.arrived == self.parties:
            self.all_in.set()
        await asyncio.wait_for(self.all_in.wait(), timeout)


async def chat_wave(host: str, port: int, first: int, size: int, lines: int, seed: int, timeout: float) -> int:
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]] = []
    try:
        for _ in range(size):
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            h, p = writer.get_extra_info("sockname")[:2]
            conns.append((reader, writer, f"{h}:{p}".encode()))

        async def welcomed(k: int) -> None:
            reader, _, name = conns[k]
            line = await asyncio.wait_for(reader.readline(), timeout)
            if line != b"* welcome " + name + b"\n":
                raise Failure(f"chat client {first + k}: expected a welcome for {name!r}, got {line!r}")

        await asyncio.gather(*(welcomed(k) for k in range(size)))
        sent = {}
        for k in range(size):
            rng = random.Random(seed * 100_003 + first + k)
            sent[conns[k][2]] = make_lines(first + k, lines, rng)

        async def talk(k: int) -> None:
            rng = random.Random(seed * 7919 + first + k)
            await send_chunked(conns[k][1], b"".join(sent[conns[k][2]]), rng)

        async def listen(k: int) -> int:
            reader, _, name = conns[k]
            expected = {n: list(ls) for n, ls in sent.items() if n != name}
            total = sum(len(ls) for ls in expected.values())
            pos: dict[bytes, int] = defaultdict(int)
            for _ in range(total):
                line = await asyncio.wait_for(reader.readline(), timeout)
                sender, sep, rest = line.partition(b": ")
                want = expected.get(sender)
                if not sep or want is None or pos[sender] >= len(want) or rest != want[pos[sender]]:
                    nxt = want[pos[sender]] if want is not None and pos[sender] < len(want) else None
                    raise Failure(f"chat client {first + k} ({name.decode()}): unexpected {line[:80]!r}; "
                                  f"next expected from that sender: {nxt and nxt[:60]!r}")
                pos[sender] += 1
            return total

        results = await asyncio.gather(*(talk(k) for k in range(size)), *(listen(k) for k in range(size)))
        # Everyone has everything: leave, and nothing more may arrive before EOF.
        for _, writer, _ in conns:
            writer.write_eof()
        for k, (reader, _, name) in enumerate(conns):
            extra = await asyncio.wait_for(reader.read(), timeout)
            if extra:
                raise Failure(f"chat client {first + k} ({name.decode()}): unexpected extra bytes {extra[:80]!r}")
        return sum(r for r in results if r is not None)
    finally:
        for _, writer, _ in conns:
            writer.close()


async def run(args: argparse.Namespace) -> tuple[int, int, list[str]]:
    """(clients that passed, lines verified, failures)."""
    failures: list[str] = []
    verified = 0
    passed = 0
    if args.mode == "echo":
        limit = asyncio.Semaphore(args.clients if args.together else args.concurrency)
        together = Together(args.clients) if args.together else None

        async def one(i: int) -> int:
            async with limit:
                return await echo_client(args.host, args.port, i, args.lines, args.seed, args.timeout, together)

        results = await asyncio.gather(*(one(i) for i in range(args.clients)), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                failures.append(f"{type(r).__name__}: {r}")
            else:
                passed += 1
                verified += r
    else:
        for first in range(0, args.clients, args.wave):
            size = min(args.wave, args.clients - first)
            try:
                verified += await chat_wave(args.host, args.port, first, size, args.lines, args.seed, args.timeout)
                passed += size
            except Exception as e:  # noqa: BLE001 - reported, the other waves still run
                failures.append(f"wave of clients {first}..{first + size - 1}: {type(e).__name__}: {e}")
    return passed, verified, failures


def spawn_server(args: argparse.Namespace) -> tuple[subprocess.Popen[str], int]:
    """Start ``ovserver serve`` on an ephemeral port; (process, port)."""
    cmd = [sys.executable, "-m", "ovserver", "serve", "--host", args.host, "--port", "0",
           "--model", args.model, "--mode", args.mode]
    windows = sys.platform == "win32"
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=not windows,
                            creationflags=subprocess.CREATE_NEW_PROCESS_GROUP if windows else 0)  # type: ignore[attr-defined, unused-ignore]
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline() if proc.stdout else ""), daemon=True)
    reader.start()
    reader.join(args.timeout)
    m = re.search(r" on [^ ]+:(\d+); Ctrl\+C stops", first[0] if first else "")
    if m is None:
        proc.kill()
        out = proc.communicate()[0]
        raise SystemExit(f"loadclient: the server did not start: {''.join(first)}{out}")
    print(first[0].rstrip())
    return proc, int(m.group(1))


def stop_server(proc: subprocess.Popen[str], timeout: float) -> bool:
    """Ctrl+C for the spawned server; True if it stopped cleanly."""
    try:
        if sys.platform == "win32":
            os.kill(proc.pid, signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined, unused-ignore]
        else:
            proc.send_signal(signal.SIGINT)
    except OSError as e:  # e.g. no console to deliver the event (Windows python under Wine)
        proc.kill()
        proc.communicate()
        print(f"loadclient: could not deliver Ctrl+C to the server ({e}); killed it", flush=True)
        return False
    try:
        out = proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        print("loadclient: the server did not stop after Ctrl+C", flush=True)
        return False
    print(out.rstrip())
    return proc.returncode == 0 and "ovserver: stopped;" in out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default=HOST_DEFAULT)
    p.add_argument("--port", type=int, help="the server's port (not with --spawn)")
    p.add_argument("--spawn", action="store_true", help="start (and stop) `ovserver serve` here")
    p.add_argument("--model", choices=("events", "routines", "iocp"), default="events", help="with --spawn")
    p.add_argument("--mode", choices=("echo", "chat"), required=True)
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--lines", type=int, default=10)
    p.add_argument("--wave", type=int, default=50, help="chat: clients connected at once (default 50)")
    p.add_argument("--concurrency", type=int, default=200, help="echo: clients running at once")
    p.add_argument("--together", action="store_true",
                   help="echo: every client connects and has its first line echoed before any sends the rest "
                        "(the server serves all of them at once)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=30.0, help="seconds any one step may take")
    p.add_argument("--deadline", type=float, default=300.0, help="seconds the whole run may take")
    args = p.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        p.error("loopback only")
    if args.clients < 1 or args.lines < 1 or args.wave < 2 or args.concurrency < 1:
        p.error("--clients, --lines, --concurrency must be >= 1 and --wave >= 2")
    if (args.port is None) == (not args.spawn):
        p.error("give --port, or --spawn")
    proc = None
    if args.spawn:
        proc, args.port = spawn_server(args)
    t0 = time.monotonic()
    try:
        passed, verified, failures = asyncio.run(asyncio.wait_for(run(args), args.deadline))
    except TimeoutError:
        passed, verified, failures = 0, 0, [f"the whole run took longer than {args.deadline} s"]
    except BaseException:
        if proc is not None:
            proc.kill()
        raise
    wall = time.monotonic() - t0
    at_once = f", all {args.clients} served at once" if args.together and not failures else ""
    print(f"loadclient: {args.mode}: {passed}/{args.clients} clients verified, {verified} lines verified, "
          f"{len(failures)} failures, {wall:.2f} s{at_once}")
    for f in failures[:10]:
        print(f"  {f}")
    ok = not failures and passed == args.clients
    if proc is not None and not stop_server(proc, args.timeout):
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
