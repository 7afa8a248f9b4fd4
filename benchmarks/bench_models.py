"""The lecture notes' table, reproduced: ovserver's I/O models side by side
under the same load, at 1000 and 5000 clients connected at once.

    python3 benchmarks/bench_models.py [--sizes 1000,5000] [--lines 20] [--repeat 3] [--quick]
                                       [--models events,routines] [--no-wine] [--no-simulate]

The lecture notes (/work/shared/seed/000_72df62394ed3225b.txt, "性能"):
"20000个客户端同时请求链接以及发送信息 / 系统cpu使用率上升40%左右 / 完成端口只2%左右"
(20000 clients connecting and sending at once: system CPU use rises about 40%;
completion ports only about 2%).  Every model in ``ovserver._core.MODELS`` is
measured (events with thread groups, routines, iocp with its default workers).

**Under Wine** (``--no-wine`` skips it; needs ``tools/wine/setup.sh``): for
each size, each round and each model, ``ovserver serve --mode echo --model M``
runs in the Windows python (``tools/wine/winpython``, started and stopped as
``bench_wine.py`` does: ready line, a probe connection served, Ctrl+C, exit 0
and its "stopped" line), and this process drives it from Linux:

1. **connect**: all N clients connect (non-blocking, at most 256 connects in
   flight) and stay connected;
2. **warm-up**: each sends one line and reads its echo, so every client has
   been accepted and served, all connected at once (nobody has left);
3. **measured**: each client sends its ``--lines`` lines one at a time, each
   after the echo of the previous one came back and was verified (N messages
   in flight at once); the clock and the CPU counters cover this phase only;
4. every client closes its sending side and reads to the server's EOF.

The driver is one process multiplexing every socket with ``selectors``
(epoll).  It is checked not to be the bottleneck twice per size: its own CPU
time over the measured phase is printed (well under the wall time means it
waited for the server), and the same driver runs against the asyncio echo
server on Linux without Wine (``_asyncio_echo_server.py``): the messages per
second it reaches there is the driver's ceiling, to set beside the Wine rows.

CPU is read from ``/proc/<pid>/stat`` (utime + stime) before and after the
measured phase: the Windows ``python.exe`` process of the server, and
``wineserver`` separately.  The wineserver is shared by every Wine program
of the prefix: a Windows python not started here that runs at the same time
is reported, and its work would be counted in the wineserver's CPU.

**In simulate** (``--no-simulate`` skips it): the same scenario on the fake,
``simulate(barrier=True)`` (every client connected before any sends, each
sends its lines in the fake's planned chunks and reads its echoes): Winsock
calls and thread switches (``FakeWinsock.thread_switches``) per message.
Counts, not time: they do not depend on the machine.

Rounds are interleaved (every model once per round, each on a fresh server);
medians over ``--repeat`` rounds are reported with ratios to the first model
(events), since absolute numbers on a shared machine are noisy.  The soft
open-file limit is raised to the hard one (as bench_scale.py does); the
Wine server and the driver each hold one descriptor per client.  Nothing is
left running: every server is stopped (or killed) before the script exits,
and the Wine session (shared with others) is not stopped.
"""

from __future__ import annotations

import argparse
import errno
import os
import random
import selectors
import socket
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import raise_open_files  # noqa: E402
from bench_wine import (  # noqa: E402
    ASYNCIO_SERVER,
    HOST,
    WINPYTHON,
    Running,
    Server,
    session_pids,
    windows_python_info,
    windows_pythons,
    wine_version,
)

from ovserver import Limits, simulate  # noqa: E402
from ovserver._core import MODELS  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
WINE_PREFIX = Path(os.environ.get("WINSOCK_WINE_HOME", str(Path.home() / ".cache" / "fakewinsock-wine"))) / "prefix"
LECTURE = ("20000个客户端同时请求链接以及发送信息 / 系统cpu使用率上升40%左右 / 完成端口只2%左右 "
           "(20000 clients connecting and sending at once: system CPU use rises about 40%; "
           "completion ports only about 2%)")
CONNECTS_IN_FLIGHT = 256


def row(*cells: object, widths: tuple[int, ...] = (42, 10, 10, 15, 16, 12, 13, 13)) -> None:
    out: list[str] = []
    for cell, w in zip(cells, widths, strict=False):
        text = f"{cell:,.3f}" if isinstance(cell, float) else f"{cell:,}" if isinstance(cell, int) else str(cell)
        out.append(text.ljust(w) if not out else text.rjust(w))
    print("".join(out).rstrip(), flush=True)


# ------------------------------------------------------------ process CPU


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` from /proc/<pid>/stat, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def wineserver_pids() -> list[int]:
    """The wineserver(s) of this project's Wine prefix."""
    found = []
    want = f"WINEPREFIX={WINE_PREFIX}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
            if not comm.startswith("wineserver"):
                continue
            env = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if want in env:
            found.append(int(entry))
    return found


def server_python_pid(running: Running) -> int:
    pids: list[int] = session_pids(running.proc.pid, "python.exe") if running.server.wine else [running.proc.pid]
    if not pids:
        raise RuntimeError(f"{running.server.label}: no server process found")
    return pids[0]


# ---------------------------------------------------------------- the driver


@dataclass
class DriveResult:
    connect_s: float
    warm_s: float
    wall: float  # the measured phase
    driver_cpu: float
    messages: int
    server_cpu: float = 0.0
    wineserver_cpu: float = 0.0
    others: list[int] = field(default_factory=list)  # Windows pythons not ours seen during the phase


def client_lines(n: int, lines: int, seed: int) -> list[list[bytes]]:
    rng = random.Random(f"bench_models:{seed}")
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789 "
    out = []
    for i in range(n):
        mine = []
        for k in range(lines):
            pad = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
            mine.append(b"c%d l%d %s\n" % (i, k, pad))
        out.append(mine)
    return out


class Failure(RuntimeError):
    pass


def _deadline_check(deadline: float, what: str, left: int) -> None:
    if time.monotonic() > deadline:
        raise Failure(f"{what}: {left} clients not done in time")


def drive(port: int, plan: list[list[bytes]], timeout: float,
          sample: tuple[int, ...] = (), wine: bool = True) -> DriveResult:
    """Run the four phases against 127.0.0.1:``port``; ``sample`` are the pids
    whose CPU is read around the measured phase (server python, wineservers)."""
    n = len(plan)
    sel = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    try:
        # 1. connect, at most CONNECTS_IN_FLIGHT at once
        t0 = time.perf_counter()
        deadline = time.monotonic() + timeout
        nxt = 0
        pending = 0
        done = 0
        while done < n:
            while nxt < n and pending < CONNECTS_IN_FLIGHT:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                rc = s.connect_ex((HOST, port))
                if rc not in (0, errno.EINPROGRESS):
                    raise Failure(f"connect {nxt}: {os.strerror(rc)}")
                socks.append(s)
                sel.register(s, selectors.EVENT_WRITE, nxt)
                nxt += 1
                pending += 1
            for key, _ in sel.select(1.0):
                s = key.fileobj  # type: ignore[assignment]
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise Failure(f"connect {key.data}: {os.strerror(err)}")
                sel.unregister(s)
                pending -= 1
                done += 1
            _deadline_check(deadline, "connect", n - done)
        connect_s = time.perf_counter() - t0

        # 2. warm-up: one line each, echoed (every client accepted and served, all at once)
        t0 = time.perf_counter()
        warm = [b"hello %d\n" % i for i in range(n)]
        _ping_pong(sel, socks, [[w] for w in warm], time.monotonic() + timeout, "warm-up")
        warm_s = time.perf_counter() - t0

        # 3. measured
        before = [cpu_seconds(p) for p in sample]
        others0 = set(windows_pythons()) if wine else set()
        c0 = time.process_time()
        t0 = time.perf_counter()
        messages = _ping_pong(sel, socks, plan, time.monotonic() + timeout, "measured phase")
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        after = [cpu_seconds(p) for p in sample]
        others = sorted((others0 | set(windows_pythons())) - set(sample)) if wine else []
        result = DriveResult(connect_s, warm_s, wall, cpu, messages, others=others)
        if sample:
            result.server_cpu = after[0] - before[0]
            result.wineserver_cpu = sum(a - b for a, b in zip(after[1:], before[1:], strict=True))

        # 4. close: FIN, read to the server's EOF
        for i, s in enumerate(socks):
            s.shutdown(socket.SHUT_WR)
            sel.register(s, selectors.EVENT_READ, i)
        left = n
        deadline = time.monotonic() + timeout
        while left:
            for key, _ in sel.select(1.0):
                s = key.fileobj  # type: ignore[assignment]
                data = s.recv(65536)
                if data:
                    raise Failure(f"client {key.data}: {data[:40]!r} after its last echo")
                sel.unregister(s)
                left -= 1
            _deadline_check(deadline, "close", left)
        return result
    finally:
        sel.close()
        for s in socks:
            s.close()


def _ping_pong(sel: selectors.BaseSelector, socks: list[socket.socket], plan: list[list[bytes]],
               deadline: float, what: str) -> int:
    """Each client sends its lines one at a time, each once the previous one's
    echo has come back whole and right.  Returns the messages echoed."""
    n = len(socks)
    pos = [0] * n
    got = [b""] * n
    for i, s in enumerate(socks):
        line = plan[i][0]
        if s.send(line) != len(line):
            raise Failure(f"{what}: client {i}: a short send of a short line")
        sel.register(s, selectors.EVENT_READ, i)
    left = n
    messages = 0
    while left:
        for key, _ in sel.select(1.0):
            i = key.data
            s = socks[i]
            data = s.recv(65536)
            if not data:
                raise Failure(f"{what}: client {i}: the server closed the connection")
            buf = got[i] + data
            want = plan[i][pos[i]]
            if len(buf) < len(want):
                if not want.startswith(buf):
                    raise Failure(f"{what}: client {i}: wrong echo {buf[:40]!r}")
                got[i] = buf
                continue
            if buf != want:
                raise Failure(f"{what}: client {i}: echo {buf[:40]!r}, expected {want[:40]!r}")
            got[i] = b""
            messages += 1
            pos[i] += 1
            if pos[i] == len(plan[i]):
                sel.unregister(s)
                left -= 1
                continue
            line = plan[i][pos[i]]
            if s.send(line) != len(line):
                raise Failure(f"{what}: client {i}: a short send of a short line")
        _deadline_check(deadline, what, left)
    return messages


# ---------------------------------------------------------------- the runs


def wine_servers(models: list[str], clients: int) -> list[Server]:
    wp = str(WINPYTHON)
    return [Server(f"{m}", [wp, "-m", "ovserver", "serve", "--host", HOST, "--port", "0", "--model", m,
                            "--mode", "echo", "--max-clients", str(max(clients, Limits().max_clients))], True)
            for m in models]


def linux_reference() -> Server:
    return Server("asyncio, Linux, no Wine", [sys.executable, str(ASYNCIO_SERVER), "--port", "0"], False)


def server_gone(running: Running) -> str:
    """Why the clients lost the server, when its process has ended: the
    clients of a server that dies see every connection closed (the first one
    the driver looks at is reported), which reads like a server bug.  Under
    Wine the usual cause is the shared Wine session being stopped meanwhile
    (``tools/wine/stop.sh``, ``wineserver -k``: .ci/run does it on exit,
    conformance.sh on a time-out), which ends every Windows process of the
    prefix; a server that raised prints its traceback above."""
    status = running.proc.poll()
    if status is None:
        return ""
    why = " (the Wine session stopped, or the process killed?)" if running.server.wine else ""
    return f"; the server process had ended, exit status {status}{why}, without its 'stopped' line"


def measure(server: Server, plan: list[list[bytes]], timeout: float) -> DriveResult:
    running = Running(server, max(timeout, 120.0))
    try:
        pid = server_python_pid(running)
        sample = (pid, *wineserver_pids()) if server.wine else (pid,)
        try:
            result = drive(running.port, plan, timeout, sample, wine=server.wine)
        except (RuntimeError, OSError, TimeoutError) as e:
            time.sleep(1.0)  # the server's last words
            tail = "\n".join(running.text().splitlines()[-8:])
            raise RuntimeError(f"{e}{server_gone(running)}; the server's output (last lines):\n{tail}") from None
        running.stop(timeout)
        return result
    finally:
        running.kill()


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def run_wine(models: list[str], sizes: list[int], lines: int, repeat: int, timeout: float, seed: int) -> bool:
    info = windows_python_info()
    if info is None:
        print("bench_models: Wine and its Windows python are not installed (tools/wine/winpython -c pass "
              "fails); install them with tools/wine/setup.sh; the Wine part is skipped")
        return True
    print(f"{wine_version()}, Windows python {info.split()[0]}, Linux python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs")
    ok = True
    for n in sizes:
        plan = client_lines(n, lines, seed)
        servers = [*wine_servers(models, n), linux_reference()]
        results: dict[str, list[DriveResult]] = {s.label: [] for s in servers}
        print(f"\n## serve under Wine: {n} clients connected at once, each {lines} lines ping-pong "
              f"({n * lines:,} messages, every echo verified); rounds: {repeat}", flush=True)
        for rnd in range(1, repeat + 1):
            for server in servers:
                try:
                    r = measure(server, plan, timeout)
                except (RuntimeError, OSError, TimeoutError) as e:
                    print(f"  round {rnd}: {server.label}: FAILED: {e}", flush=True)
                    ok = False
                    continue
                results[server.label].append(r)
                note = f"; other Windows pythons ran meanwhile: {r.others}" if r.others else ""
                print(f"  round {rnd}: {server.label}: connect {r.connect_s:.1f} s, warm-up {r.warm_s:.1f} s, "
                      f"measured {r.wall:.2f} s, {r.messages / r.wall:,.0f} msg/s, python CPU {r.server_cpu:.2f} s, "
                      f"wineserver CPU {r.wineserver_cpu:.2f} s, driver CPU {r.driver_cpu:.2f} s{note}", flush=True)
        print(f"\n### {n} clients x {lines} lines: medians of {repeat} rounds (CPU s per 1000 messages; "
              "ratios to the first model)")
        row("server", "msg/s", "vs first", "python CPU/1k", "winesrv CPU/1k", "CPU vs 1st", "CPU % 1core",
            "driver CPU%")
        first: tuple[float, float] | None = None
        for server in servers:
            rs = results[server.label]
            if not rs:
                row(server.label, "failed")
                continue
            rate = median([r.messages / r.wall for r in rs])
            py = median([r.server_cpu / r.messages * 1000 for r in rs])
            wsrv = median([r.wineserver_cpu / r.messages * 1000 for r in rs])
            pct = median([r.server_cpu / r.wall * 100 for r in rs])
            drv = median([r.driver_cpu / r.wall * 100 for r in rs])
            if server.wine and first is None:
                first = (rate, py + wsrv)
            if server.wine and first is not None:
                row(server.label, rate, rate / first[0], py, wsrv, (py + wsrv) / first[1], pct, drv)
            else:
                row(server.label + " (ceiling)", rate, "-", py, "-", "-", pct, drv)
    return ok


def run_simulate(models: list[str], sizes: list[int], lines: int, seed: int) -> None:
    print(f"\n## the same scenario in simulate (fake backend, barrier: all connected before anyone sends; "
          f"{lines} lines each, echo, seed {seed})")
    row("model", "clients", "calls/msg", "switches/msg", "peak conns", "threads", "wall s",
        widths=(12, 9, 11, 14, 12, 9, 9))
    for n in sizes:
        for m in models:
            r = simulate(clients=n, messages=lines, model=m, mode="echo", seed=seed, barrier=True,
                         limits=Limits(max_clients=max(n, Limits().max_clients)))
            if not r.ok:
                print(f"simulate {m} {n}: FAILED: {r.errors[:3]}")
                continue
            row(m, n, r.calls_per_message, r.thread_switches / max(1, r.lines_sent), r.server.peak_connections,
                r.server.peak_threads, r.wall_s, widths=(12, 9, 11, 14, 12, 9, 9))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,5000", help="clients connected at once, comma-separated")
    ap.add_argument("--lines", type=int, default=20, help="lines each client sends in the measured phase")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; medians are reported")
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {MODELS}")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds one phase may take")
    ap.add_argument("--quick", action="store_true", help="200 clients x 5 lines, one round")
    ap.add_argument("--no-wine", action="store_true", help="skip serve under Wine")
    ap.add_argument("--no-simulate", action="store_true", help="skip the simulate counts")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.lines, args.repeat = "200", 5, 1
    try:
        sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    except ValueError:
        ap.error(f"--sizes must be comma-separated whole numbers, not {args.sizes!r}")
    models = [m for m in args.models.split(",") if m]
    if not sizes or min(sizes) < 1 or args.lines < 1 or args.repeat < 1:
        ap.error("--sizes, --lines and --repeat must be >= 1")
    if bad := [m for m in models if m not in MODELS]:
        ap.error(f"unknown models {bad}; ovserver has {MODELS}")
    open_files, note = raise_open_files()
    need = max(sizes) + 256
    print(f"bench_models: models {models}, open files limit {open_files}" + (f" ({note})" if note else ""))
    if open_files < need:
        print(f"bench_models: the open-file limit {open_files} is below the {need} the largest size needs "
              "(raise the hard limit: ulimit -Hn)")
        return 2
    print(f"the lecture notes: {LECTURE}")
    ok = True
    if not args.no_wine:
        ok = run_wine(models, sizes, args.lines, args.repeat, args.timeout, args.seed)
    if not args.no_simulate:
        run_simulate(models, sizes, args.lines, args.seed)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
