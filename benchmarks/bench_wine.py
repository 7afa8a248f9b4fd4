"""ovserver serve under Wine against an asyncio ProactorEventLoop echo server
under the same Wine, driven by the same Linux-side load, measured in one run.

    python3 benchmarks/bench_wine.py [--clients 2000] [--lines 20] [--concurrency 50] [--repeat 3]

Needs Wine and the Windows python of ``tools/wine/setup.sh`` (checked with
``tools/wine/winpython -c pass``; without them it prints how to install them
and exits 0).  Standard library only; runs on Linux.

What runs, all in echo mode on 127.0.0.1, each in a Windows python under the
same Wine (``tools/wine/winpython``):

* ``python -m ovserver serve --port 0 --model events``  (WSAWaitForMultipleEvents)
* ``python -m ovserver serve --port 0 --model routines``  (completion routines)
* ``benchmarks/_asyncio_echo_server.py`` (asyncio streams on the Windows
  default loop, ProactorEventLoop, i.e. IOCP): the reference of the ratios
* and, for scale, the same asyncio script run by this Linux python without
  Wine: a rough floor of what the load client itself costs (no ratio).

The load, identical for every server, is ``tools/wine/loadclient.py``'s echo
load (imported, run in this process): N clients, at most C connected at once
(default 50; the events model is no longer limited to 63, since its thread
groups), each sends M unique lines in random
chunks, closes its sending side and must read back exactly what it sent; every
reply is verified.  The lines are generated before the clock starts (the
load client's own generator, memoised with its random state, so the bytes
sent are the same), so the measured interval is connections and echo only.

Each measurement: start the server, read its port from its ready line, wait
until a probe connection is served (echo of nothing, then EOF: so one more
connection in the server's count), then time the load; then stop the server
the way Ctrl+C does (SIGINT to the Wine process, which Wine delivers as
CTRL_C_EVENT) and require exit status 0 and its "stopped" line.  Server
start-up and shutdown are outside the measured interval.  Rounds are
interleaved (every server once per round, each on a fresh process) and the
best of ``--repeat`` rounds is reported, with every round's time.

Reported: wall time of the load, messages (lines echoed and verified) per
second, each server's messages per second relative to the asyncio Proactor
server's, and the CPU time the load client itself used in that interval (near
the wall time means the client, not the server, was the bottleneck).  At the
end the Wine session is stopped (tools/wine/stop.sh), unless a Windows python
not started here is still running (another user of the same Wine prefix).

Speed is measured here, never in tests.  Numbers depend on the machine, its
load and the Wine version; the Linux client and the Wine processes share the
CPUs.  Compare the ratios, taken within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.platform == "win32":  # (mypy --platform win32 skips the rest)
    raise SystemExit("bench_wine.py runs on Linux: it drives Windows programs under Wine")

ROOT = Path(__file__).resolve().parent.parent
WINE_DIR = ROOT / "tools" / "wine"
WINPYTHON = WINE_DIR / "winpython"
ASYNCIO_SERVER = Path(__file__).resolve().parent / "_asyncio_echo_server.py"
HOST = "127.0.0.1"
READY = re.compile(r" on [^ ]+:(\d+); Ctrl\+C stops")

sys.path.insert(0, str(WINE_DIR))

import loadclient  # noqa: E402


def row(*cells: object, widths: tuple[int, ...] = (44, 9, 13, 12, 14, 22)) -> None:
    out: list[str] = []
    for cell, w in zip(cells, widths, strict=False):
        text = f"{cell:,.2f}" if isinstance(cell, float) else f"{cell:,}" if isinstance(cell, int) else str(cell)
        out.append(text.ljust(w) if not out else text.rjust(w))
    print("".join(out).rstrip(), flush=True)


# ------------------------------------------------------------ the servers


@dataclass
class Server:
    label: str
    cmd: list[str]
    wine: bool
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)


def session_pids(sid: int, needle: str) -> list[int]:
    """Processes of session ``sid`` whose command line contains ``needle``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # Fields after the command name (which may hold spaces): state ppid pgrp session ...
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 3 and int(fields[3]) == sid and needle in cmdline:
            found.append(int(entry))
    return found


def windows_pythons() -> list[int]:
    """Every running Windows python (any session)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"python.exe" in cmdline.lower():
                found.append(int(entry))
    return found


class Running:
    """A server process in its own session, its output collected by a thread."""

    def __init__(self, server: Server, timeout: float) -> None:
        self.server = server
        self.output: list[str] = []
        self.proc = subprocess.Popen(server.cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        try:
            self.port = self._wait_ready(timeout)
        except BaseException:
            self.kill()
            raise

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line.rstrip("\n"))

    def text(self) -> str:
        return "\n".join(f"  | {line}" for line in self.output)

    def _wait_ready(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.output):
                m = READY.search(line)
                if m:
                    port = int(m.group(1))
                    self._probe(port, deadline)
                    return port
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{self.server.label}: the server did not start within {timeout:.0f} s:\n{self.text()}")

    def _probe(self, port: int, deadline: float) -> None:
        """One connection that sends nothing: served once the server echoes EOF."""
        while True:
            try:
                with socket.create_connection((HOST, port), timeout=max(0.1, deadline - time.monotonic())) as s:
                    s.shutdown(socket.SHUT_WR)
                    if s.recv(1) == b"":
                        return
                    raise RuntimeError(f"{self.server.label}: the probe connection got data")
            except OSError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def stop(self, timeout: float) -> str:
        """Ctrl+C, then wait; the server's "stopped" line.  Kills it if it does not stop."""
        targets = session_pids(self.proc.pid, "python.exe") if self.server.wine else [self.proc.pid]
        for pid in targets:
            try:
                os.kill(pid, signal.SIGINT)
            except ProcessLookupError:
                pass
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"{self.server.label}: did not stop within {timeout:.0f} s of Ctrl+C; killed it:\n"
                               f"{self.text()}") from None
        self.reader.join(5)
        stopped = [line for line in self.output if ": stopped;" in line]
        if status != 0 or not stopped:
            raise RuntimeError(f"{self.server.label}: did not stop cleanly (exit {status}):\n{self.text()}")
        return stopped[-1]

    def kill(self) -> None:
        if self.proc.poll() is not None:
            return
        for pid in session_pids(self.proc.pid, "python.exe") if self.server.wine else []:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            print(f"bench_wine: {self.server.label}: process {self.proc.pid} survived SIGKILL", file=sys.stderr)


# ---------------------------------------------------------------- the load


class LineCache:
    """loadclient.make_lines, memoised with the random state it leaves behind."""

    def __init__(self) -> None:
        self.original = loadclient.make_lines
        self.saved: dict[tuple[int, int, tuple[Any, ...]], tuple[list[bytes], tuple[Any, ...]]] = {}
        self.misses = 0

    def __call__(self, client: int, count: int, rng: random.Random) -> list[bytes]:
        key = (client, count, rng.getstate())
        hit = self.saved.get(key)
        if hit is None:
            self.misses += 1
            lines = self.original(client, count, rng)
            self.saved[key] = (lines, rng.getstate())
            return lines
        lines, after = hit
        rng.setstate(after)
        return lines

    def warm(self, clients: int, lines: int, seed: int) -> None:
        # As loadclient.echo_client seeds each client's generator.
        for i in range(clients):
            self(i, lines, random.Random(seed * 100_003 + i))


def load_args(args: argparse.Namespace, port: int) -> argparse.Namespace:
    return argparse.Namespace(host=HOST, port=port, mode="echo", clients=args.clients, lines=args.lines,
                              concurrency=args.concurrency, wave=50, seed=args.seed, timeout=args.timeout)


def run_load(args: argparse.Namespace, port: int, cache: LineCache) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of the whole load; raises unless every reply was right."""
    misses = cache.misses
    c0 = time.process_time()
    t0 = time.perf_counter()
    passed, verified, failures = asyncio.run(asyncio.wait_for(loadclient.run(load_args(args, port)), args.deadline))
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    if failures or passed != args.clients or verified != args.clients * args.lines:
        raise RuntimeError(f"{passed}/{args.clients} clients, {verified} lines verified; first failures: "
                           + "; ".join(failures[:3]))
    if cache.misses != misses:
        print(f"  (note: {cache.misses - misses} clients generated their lines inside the measured interval)")
    return wall, cpu


# ------------------------------------------------------------------ checks


def windows_python_info() -> str | None:
    """'3.13.2 ProactorEventLoop' from the Windows python under Wine, or None if it does not run."""
    code = "import sys, asyncio; print(sys.version.split()[0], type(asyncio.new_event_loop()).__name__)"
    try:
        r = subprocess.run([str(WINPYTHON), "-c", code], cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=180)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else None


def wine_version() -> str:
    for name in ("wine64", "wine", "/usr/lib/wine/wine64"):
        exe = shutil.which(name)
        if exe:
            try:
                r = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
                return r.stdout.strip() or "wine (unknown version)"
            except (OSError, subprocess.TimeoutExpired):
                break
    return "wine (unknown version)"


# -------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=2000)
    ap.add_argument("--lines", type=int, default=20, help="lines each client sends")
    ap.add_argument("--concurrency", type=int, default=50, help="clients connected at once")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the best of each server is reported")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds one client step, start-up or stop may take")
    ap.add_argument("--deadline", type=float, default=300.0, help="seconds one load may take")
    ap.add_argument("--no-linux", action="store_true", help="skip the Linux (no Wine) asyncio row")
    args = ap.parse_args()
    if args.clients < 1 or args.lines < 1 or args.concurrency < 1 or args.repeat < 1:
        ap.error("--clients, --lines, --concurrency and --repeat must be >= 1")

    info = windows_python_info()
    if info is None:
        print("bench_wine: Wine and its Windows python are not installed (tools/wine/winpython -c pass fails); "
              "install them with tools/wine/setup.sh, then run this again")
        return 0
    win_version, win_loop = (info.split() + ["?"])[:2]
    wp = str(WINPYTHON)
    servers = [
        Server(f"asyncio {win_loop}, Windows py {win_version}", [wp, str(ASYNCIO_SERVER), "--port", "0"], True),
        Server("ovserver serve, events model", [wp, "-m", "ovserver", "serve", "--host", HOST, "--port", "0",
                                                "--model", "events", "--mode", "echo"], True),
        Server("ovserver serve, routines model", [wp, "-m", "ovserver", "serve", "--host", HOST, "--port", "0",
                                                  "--model", "routines", "--mode", "echo"], True),
    ]
    if not args.no_linux:
        servers.append(Server(f"asyncio, Linux py {sys.version.split()[0]}, no Wine",
                              [sys.executable, str(ASYNCIO_SERVER), "--port", "0"], False))

    print(f"{wine_version()}, Windows python {win_version}, Linux python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs")
    messages = args.clients * args.lines
    cache = LineCache()
    loadclient.make_lines = cache
    cache.warm(args.clients, args.lines, args.seed)
    t_start = time.monotonic()
    failed = False
    try:
        for rnd in range(1, args.repeat + 1):
            for server in servers:
                running = Running(server, args.timeout)
                try:
                    wall, cpu = run_load(args, running.port, cache)
                finally:
                    try:
                        stopped = running.stop(args.timeout)
                    finally:
                        running.kill()
                server.walls.append(wall)
                server.cpus.append(cpu)
                print(f"  round {rnd}: {server.label}: {wall:.2f} s (client CPU {cpu:.2f} s); "
                      f"{stopped.split(': ', 1)[1]}", flush=True)
    except (RuntimeError, OSError, TimeoutError) as e:
        print(f"bench_wine: FAILED: {e}", flush=True)
        failed = True
    finally:
        loadclient.make_lines = cache.original
        # Every server started here has exited (or was killed): any Windows
        # python still running belongs to someone else, who needs the session.
        others = windows_pythons()
        if others:
            print(f"bench_wine: other Windows pythons run under Wine (pids {others}); Wine is left running for them")
        else:
            subprocess.run([str(WINE_DIR / "stop.sh")], cwd=ROOT, stdin=subprocess.DEVNULL, timeout=60,
                           check=False)
    if failed:
        return 1

    print(f"\n## echo, {args.clients} clients x {args.lines} lines ({messages:,} messages), at most "
          f"{args.concurrency} connected at once; best of {args.repeat}; every reply verified")
    row("server (under Wine unless noted)", "wall s", "messages/s", "vs asyncio", "client CPU s", "every round, s")
    ref = min(servers[0].walls)
    for server in servers:
        best = min(server.walls)
        ratio: object = ref / best if server.wine else "-"
        cpu = server.cpus[server.walls.index(best)]
        row(server.label, best, messages / best, ratio, cpu, " ".join(f"{w:.2f}" for w in server.walls))
    for server in servers[1:3]:
        print(f"{server.label}: {ref / min(server.walls):.2f}x the messages/s of the asyncio Proactor server")
    print(f"(total {time.monotonic() - t_start:.0f} s including server start-up and shutdown)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
