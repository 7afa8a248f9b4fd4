"""Scale and speed of the fake, measured against references in the same run.

    python benchmarks/bench_scale.py            # every table below
    python benchmarks/bench_scale.py vs-asyncio [--clients 20000 --messages 10]
    python benchmarks/bench_scale.py scaling | events-scaling [--sizes 1000,5000,20000] | wait-cost | memory

vs-asyncio
    N clients x M lines, line echo: ``ovserver simulate`` (completion-routine
    model, on the fake) against an asyncio echo server with asyncio clients on
    real Linux loopback, run one after the other in this process.  The asyncio
    clients follow the simulated clients' plans (``scenario_plan``): the same
    lines, sent in the same chunks.  Two asyncio runs: the same scenario in
    real time (each client arrives when its plan says, a quarter of them in a
    1 ms flood, and pauses between chunks as planned), and the same clients
    with no pauses, at most 1000 at once (the raw speed of asyncio's server and
    clients: the strictest reference for the fake's own speed).  Wall time,
    messages per second, ratios; and the process's CPU time of each run with
    the same ratios by CPU (what a loaded machine's waits do not inflate).
scaling
    The same simulation at 1000, 5000 and 20000 clients: time per message
    (flat means nothing grows quadratically).
events-scaling
    The events model (a thread per group of 63 clients) at 1000, 5000 and
    20000 clients (``--sizes``), every client connected at once
    (``simulate(barrier=True)``): Winsock calls and thread switches per
    message, time per message and per thread switch, each relative to the
    smallest size (flat within 15% is the target: nothing grows with the
    number of clients or threads); CPU time per message (the process's, every
    thread: unlike wall time, not inflated by waits for the OS to run the
    thread handed the baton, which dominate on a loaded machine); the garbage
    collector's CPU time per message and its full collections.  ``--count-calls`` adds Python function
    calls per message (cProfile in every thread): a count, unblurred by the
    machine's load.
wait-cost
    One WSAWaitForMultipleEvents over 64 events, with 0, 1000 and 20000 idle
    connections elsewhere in the simulated world: the cost must not grow.
memory
    Peak traced bytes per simulated connection at 20000 connections (an
    accepted socket with a pending WSARecv, its peer, its event and OVERLAPPED),
    beyond the receive buffer itself (issue 17: at most 4.4 KiB, 4,506 bytes;
    the README's first measure).

Open files: each asyncio connection costs two descriptors (client and server
side).  The script raises the soft RLIMIT_NOFILE to the hard limit; when even
that is too low for the clients the asyncio runs would hold at once, it caps
them at what fits and says so (raise the hard limit, ``ulimit -Hn``, to lift
the cap).  Failures of the asyncio runs are summarised in one line each.

Speed is measured here, never in tests.  Numbers depend on the machine and its
load: compare the ratios, which are taken within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import random
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable

from _checkout import build_name, use_checkout  # (this folder is on sys.path)

use_checkout()

# The reference server, the same as bench_wine.py's (lines back to their sender; closes at EOF).
from _asyncio_echo_server import handle as echo_handle  # noqa: E402  (this folder is on sys.path)

from fakewinsock import WSABUF, WSAOVERLAPPED, FakeConfig, FakeWinsock, sockaddr_in  # noqa: E402
from fakewinsock.constants import (  # noqa: E402
    AF_INET,
    FALSE,
    IPPROTO_TCP,
    MAKEWORD,
    SO_UPDATE_ACCEPT_CONTEXT,
    SOCK_STREAM,
    SOL_SOCKET,
    SOMAXCONN,
    WSA_FLAG_OVERLAPPED,
    WSA_WAIT_EVENT_0,
    WSA_WAIT_TIMEOUT,
)
from ovserver import Limits, SimulationReport, simulate  # noqa: E402
from ovserver._simulate import MAX_ATTEMPTS, ClientPlan, backoff_ns, scenario_plan  # noqa: E402

SEED = 1
#: Descriptors kept back from the asyncio runs (the interpreter, the listener, pipes...).
FD_RESERVE = 256


def raise_open_files() -> tuple[int, str]:
    """Raise the soft open-file limit to the hard one where allowed:
    (the soft limit now, a note when it could not be raised).  Windows has no
    such limit (asyncio's default loop there, the proactor, has no select() cap)."""
    if sys.platform == "win32":
        return 1 << 20, "Windows: no open-file limit"
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as e:
            return soft, f"could not raise the open-file limit from {soft} to {target}: {e}"
    return soft, ""


def connections_at_once(open_files: int) -> int:
    """The asyncio connections (two descriptors each) that fit in ``open_files``."""
    return max(1, (open_files - FD_RESERVE) // 2)


def row(*cells: object, widths: tuple[int, ...] = (34, 14, 16, 16, 10)) -> None:
    out: list[str] = []
    for cell, w in zip(cells, widths, strict=False):
        text = f"{cell:,.2f}" if isinstance(cell, float) else f"{cell:,}" if isinstance(cell, int) else str(cell)
        out.append(text.ljust(w) if not out else text.rjust(w))
    print("".join(out), flush=True)


# --------------------------------------------------------------- vs asyncio


def run_simulation(clients: int, messages: int) -> tuple[float, int, int, float]:
    """Wall time, messages, virtual nanoseconds and CPU time (the process's) of ``ovserver simulate``."""
    c0, t0 = time.process_time(), time.perf_counter()
    report = simulate(clients=clients, messages=messages, model="routines", mode="echo", seed=SEED, plain=True)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if not report.ok:
        raise SystemExit(f"simulation failed: {report.errors[:3]}")
    return wall, clients * messages, report.virtual_ns, cpu


async def _asyncio_echo(plans: list[ClientPlan], concurrency: int | None, cap: int) -> int:
    """Run every client's plan against an asyncio echo server on loopback.

    ``concurrency=None`` replays the scenario in real time: each client
    arrives at its planned moment and pauses between chunks as planned (a
    refused connection retries after the simulation's backoff).  With a number,
    timing is ignored: clients run back to back, at most that many at once,
    without pauses (the fastest this server and these clients go).  At most
    ``cap`` clients are connected at once either way (the open-file limit)."""
    loop = asyncio.get_running_loop()
    loop_errors: dict[str, int] = {}

    def count_error(_: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        e = context.get("exception")
        key = type(e).__name__ if e is not None else str(context.get("message", "?"))
        loop_errors[key] = loop_errors.get(key, 0) + 1

    loop.set_exception_handler(count_error)  # a summary below, not one traceback per client
    server = await asyncio.start_server(echo_handle, "127.0.0.1", 0, backlog=4096, limit=1 << 20)
    port = server.sockets[0].getsockname()[1]
    gate = asyncio.Semaphore(min(concurrency or len(plans) or 1, cap))
    start = loop.time()
    paced = concurrency is None
    verified = 0

    async def connect(i: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        rng = random.Random(f"bench:{i}")
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
            except ConnectionRefusedError:
                if attempt == MAX_ATTEMPTS:
                    raise
                await asyncio.sleep(backoff_ns(attempt, rng) / 1e9)
        raise AssertionError("unreachable")

    async def client(i: int, plan: ClientPlan) -> None:
        nonlocal verified
        if paced:
            await asyncio.sleep(max(0.0, start + plan.arrival_ns / 1e9 - loop.time()))
        async with gate:
            reader, writer = await connect(i)

            async def send() -> None:
                for chunk, pause_ns in zip(plan.chunks, plan.pauses_ns, strict=True):
                    writer.write(chunk)
                    await writer.drain()
                    if paced and pause_ns:
                        await asyncio.sleep(pause_ns / 1e9)
                writer.write_eof()  # as the simulated client: FIN, then read to the server's FIN

            sending = asyncio.ensure_future(send())
            for line in plan.lines:
                if await reader.readline() != line + b"\n":
                    raise SystemExit(f"asyncio client {i}: wrong reply")
                verified += 1
            await sending
            if await reader.read() != b"":
                raise SystemExit(f"asyncio client {i}: bytes after the last reply")
            writer.close()
            await writer.wait_closed()

    results = await asyncio.gather(*(client(i, p) for i, p in enumerate(plans)), return_exceptions=True)
    server.close()
    await server.wait_closed()
    failed: dict[str, int] = {}
    first: dict[str, str] = {}
    for r in results:
        if isinstance(r, BaseException):
            key = type(r).__name__
            failed[key] = failed.get(key, 0) + 1
            first.setdefault(key, str(r))
    if failed or loop_errors:
        what = "; ".join(f"{n} x {k} (first: {first[k]})" for k, n in failed.items())
        raise SystemExit(f"asyncio run failed: {sum(failed.values())} of {len(plans)} clients: {what or 'none'}; "
                         f"event loop errors: {loop_errors or 'none'}")
    return verified


def run_asyncio(plans: list[ClientPlan], concurrency: int | None, cap: int) -> tuple[float, int, float]:
    """Wall time, replies verified and CPU time (the process's: server, clients and their system calls)."""
    c0, t0 = time.process_time(), time.perf_counter()
    verified = asyncio.run(_asyncio_echo(plans, concurrency, cap))
    return time.perf_counter() - t0, verified, time.process_time() - c0


def vs_asyncio(clients: int, messages: int, concurrency: int, open_files: int) -> None:
    print(f"\n## {clients} clients x {messages} lines, line echo: the simulation against asyncio on loopback")
    cap = connections_at_once(open_files)
    if cap < clients:
        print(f"note: the open-file limit ({open_files}) allows {cap} asyncio connections at once (two\n"
              f"descriptors each): both asyncio runs admit at most {min(cap, clients)} clients at once, so in\n"
              "the same-scenario run late clients queue and it takes longer than the scenario would\n"
              "with a higher limit (raise the hard limit, ulimit -Hn, to lift this cap).")
    w = (44, 10, 14, 20, 10, 22)
    row("run", "wall s", "messages/s", "sim is x as fast", "cpu s", "by cpu: x as fast", widths=w)
    sim_wall, sim_msgs, virtual_ns, sim_cpu = run_simulation(clients, messages)
    row("ovserver simulate (routines, fake)", sim_wall, sim_msgs / sim_wall, "", sim_cpu, "", widths=w)
    plans = scenario_plan(clients, messages, SEED)
    for label, limit in (("asyncio: the same scenario, real time", None),
                         (f"asyncio: no pauses, <= {min(concurrency, cap)} at once", concurrency)):
        wall, msgs, cpu = run_asyncio(plans, limit, cap)
        if msgs != sim_msgs:
            raise SystemExit(f"{label}: {msgs} replies verified, expected {sim_msgs}")
        row(label, wall, msgs / wall, wall / sim_wall, cpu, cpu / sim_cpu, widths=w)
    print(f"the scenario spans {virtual_ns / 1e9:.2f} s of virtual time (clients arrive over "
          f"{clients / 1000:g} s, a quarter of them in a 1 ms flood, and pause between chunks);\n"
          "the same scenario on real loopback takes at least that long.  The no-pause run drops the\n"
          "scenario's timing and its flood: the raw speed of asyncio's server and clients, the strictest\n"
          "reference for the fake's own speed.  By CPU: the same ratio of the process's CPU time (every\n"
          "thread, user and system: asyncio's loopback system calls are the process's), which waiting for\n"
          "a CPU on a loaded machine does not inflate as it does the wall time.")


# ------------------------------------------------------------------ scaling


def scaling(sizes: list[int], messages: int) -> None:
    print(f"\n## scaling: ovserver simulate, routines, echo, {messages} lines per client")
    row("clients", "wall s", "us per message", "vs smallest")
    first = None
    for n in sizes:
        wall, msgs, _, _ = run_simulation(n, messages)
        per = wall / msgs * 1e6
        first = first or per
        row(str(n), wall, per, per / first)


# ------------------------------------------------------- events, all at once


class GcTime:
    """CPU time spent in CPython's cyclic garbage collector while installed
    (``gc.callbacks``; a collection runs in the thread that triggered it, so
    that thread's CPU time), how many of its collections were full ones, and
    the CPU time of the process (every thread) meanwhile."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0
        self._start = 0.0
        self.cpu_s = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.thread_time()
            return
        self.seconds += time.thread_time() - self._start
        self.full += info["generation"] == 2

    def __enter__(self) -> GcTime:
        gc.callbacks.append(self)
        self.cpu_s = -time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.cpu_s += time.process_time()
        gc.callbacks.remove(self)


def _events_run(n: int, messages: int, count_calls: bool) -> tuple[SimulationReport, int, GcTime]:
    """The events run at ``n`` clients, all connected at once, (``count_calls``)
    the Python function calls it made in every thread (cProfile), else 0, and
    the time it spent in the garbage collector."""
    gc_time = GcTime()

    def run() -> SimulationReport:
        gc.collect()
        with gc_time:
            return simulate(clients=n, messages=messages, model="events", mode="echo", seed=SEED, barrier=True,
                            limits=Limits(max_clients=max(n, Limits().max_clients)))

    if not count_calls:
        return run(), 0, gc_time
    profiles: list[cProfile.Profile] = []
    original = threading.Thread.run

    def profiled(self: threading.Thread) -> None:  # the fake's program threads are threading.Threads
        p = cProfile.Profile()
        profiles.append(p)
        p.enable()
        try:
            original(self)
        finally:
            p.disable()

    threading.Thread.run = profiled  # type: ignore[method-assign]
    main = cProfile.Profile()
    profiles.append(main)
    try:
        main.enable()
        report = run()
        main.disable()
    finally:
        threading.Thread.run = original  # type: ignore[method-assign]
    calls = 0
    for p in profiles:
        p.create_stats()
        calls += sum(v[1] for v in p.stats.values())
    return report, calls, gc_time


def events_scaling(sizes: list[int], messages: int, count_calls: bool) -> None:
    """The events model (thread groups of 63 clients) with every client
    connected at once (simulate's barrier): time per message and per thread
    switch, flat (within 15%) when nothing grows with the number of clients.
    ``count_calls``: Python function calls per message too (cProfile, in every
    thread: slower, but a count, which the machine's load does not blur)."""
    print(f"\n## events model, every client connected at once (barrier), echo, {messages} lines per client"
          + (" (under cProfile: times are inflated, the calls are the measure)" if count_calls else ""))
    w = (9, 9, 9, 11, 14, 12, 11, 16, 15, 12, 12, 15, 10, 14, 11)
    row("clients", "threads", "wall s", "calls/msg", "switches/msg", "us/message", "us/switch", "message vs 1st",
        "switch vs 1st", "cpu us/msg", "cpu vs 1st", "gc cpu us/msg", "full gcs",
        *(("py calls/msg", "vs 1st") if count_calls else ()), widths=w)
    first: tuple[float, float, float, float] | None = None
    for n in sizes:
        report, calls, gc_time = _events_run(n, messages, count_calls)
        if not report.ok:
            raise SystemExit(f"simulation failed: {report.errors[:3]}")
        msgs = report.lines_sent
        per_msg = report.wall_s / msgs * 1e6
        per_switch = report.wall_s / max(1, report.thread_switches) * 1e6
        py = calls / msgs
        cpu = gc_time.cpu_s / msgs * 1e6
        first = first or (per_msg, per_switch, py, cpu)
        row(str(n), report.server.peak_threads, report.wall_s, report.calls_per_message,
            report.thread_switches / msgs, per_msg, per_switch, per_msg / first[0], per_switch / first[1],
            cpu, cpu / first[3], gc_time.seconds / msgs * 1e6, gc_time.full,
            *((py, py / first[2]) if count_calls else ()), widths=w)
    print("flat: each 'vs 1st' within 1.15 (us/switch is the whole run's wall time over its switches, not the\n"
          "cost of a switch alone; calls/msg are Winsock calls, py calls/msg Python function calls; cpu: the\n"
          "process's CPU time (every thread), which waits for the OS to run a thread do not inflate;\n"
          "gc: the CPU time in CPython's garbage collector per message, and its full collections)")


# ---------------------------------------------------------- a world of idle


def idle_world(n: int, buffer: int) -> tuple[FakeWinsock, list[object]]:
    """A fake with ``n`` accepted connections, each with a pending WSARecv."""
    config = FakeConfig(immediate=0.0, latency=(0, 0), completion_delay=(0, 0), background=0.0)
    ws = FakeWinsock(seed=1, config=config)
    ws.trace.enabled = False
    ws.WSAStartup(MAKEWORD(2, 2))
    lst = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
    ws.bind(lst, sockaddr_in("127.0.0.1", 5000), 16)
    ws.listen(lst, SOMAXCONN)
    keep: list[object] = []
    for _ in range(n):
        acc = ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, WSA_FLAG_OVERLAPPED)
        ov = WSAOVERLAPPED()
        ov.hEvent = ws.WSACreateEvent()
        ws.AcceptEx(lst, acc, bytearray(64), 0, 32, 32, ov)
        peer = ws.peer()
        peer.connect("127.0.0.1", 5000)
        ws.WSAWaitForMultipleEvents(1, [ov.hEvent], FALSE, 1000, FALSE)
        ws.WSAGetOverlappedResult(lst, ov, FALSE)
        ws.setsockopt(acc, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, lst, 8)
        ws.WSAResetEvent(ov.hEvent)
        buf = bytearray(buffer)
        ws.WSARecv(acc, [WSABUF(buffer, buf)], 1, 0, ov, None)
        keep.append((acc, ov, buf, peer))
    return ws, keep


def wait_cost(sizes: list[int], waits: int) -> None:
    print(f"\n## wait cost: WSAWaitForMultipleEvents over 64 events, timeout 0, {waits} waits")
    row("idle connections elsewhere", "us per wait", "vs none")
    first = None
    for n in sizes:
        ws, keep = idle_world(n, 64)
        events = [ws.WSACreateEvent() for _ in range(64)]
        ws.WSASetEvent(events[63])
        t0 = time.perf_counter()
        for _ in range(waits):
            assert ws.WSAWaitForMultipleEvents(64, events, FALSE, 0, FALSE) == WSA_WAIT_EVENT_0 + 63
        signalled = time.perf_counter() - t0
        ws.WSAResetEvent(events[63])
        t0 = time.perf_counter()
        for _ in range(waits):
            assert ws.WSAWaitForMultipleEvents(64, events, FALSE, 0, FALSE) == WSA_WAIT_TIMEOUT
        timeout = time.perf_counter() - t0
        per = (signalled + timeout) / (2 * waits) * 1e6
        first = first or per
        row(str(n), per, per / first)
        del keep


def memory(n: int, buffer: int) -> None:
    print(f"\n## memory: {n} simulated connections, each with a pending WSARecv into {buffer} bytes")
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    ws, keep = idle_world(n, buffer)
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    per_peak = (peak - before) / n
    per_now = (current - before) / n
    row("", "bytes/conn", "beyond buffer", "target")
    row("peak while connecting", per_peak, per_peak - buffer, "<= 4506")
    row("settled", per_now, per_now - buffer, "<= 4506")
    del ws, keep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", nargs="?", default="all",
                    choices=["all", "vs-asyncio", "scaling", "events-scaling", "wait-cost", "memory"])
    ap.add_argument("--sizes", default="1000,5000,20000", help="events-scaling: clients, comma-separated")
    ap.add_argument("--count-calls", action="store_true",
                    help="events-scaling: count Python function calls per message too (cProfile; slower)")
    ap.add_argument("--clients", type=int, default=20000)
    ap.add_argument("--messages", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=1000)
    args = ap.parse_args()
    if args.clients < 1 or args.messages < 1 or args.concurrency < 1:
        ap.error("--clients, --messages and --concurrency must be at least 1")
    try:
        sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    except ValueError:
        ap.error(f"--sizes must be comma-separated whole numbers, not {args.sizes!r}")
    if not sizes or min(sizes) < 1:
        ap.error("--sizes must be at least 1")
    open_files, note = raise_open_files()
    print(f"python {sys.version.split()[0]}, open files limit {open_files}" + (f" ({note})" if note else ""))
    print(f"fakewinsock: {build_name()}")
    jobs: dict[str, Callable[[], None]] = {
        "vs-asyncio": lambda: vs_asyncio(args.clients, args.messages, args.concurrency, open_files),
        "scaling": lambda: scaling([1000, 5000, 20000], args.messages),
        "events-scaling": lambda: events_scaling(sizes, args.messages, args.count_calls),
        "wait-cost": lambda: wait_cost([0, 1000, 20000], 20000),
        "memory": lambda: memory(20000, 4096),
    }
    for name, job in jobs.items():
        if args.what in ("all", name):
            job()


if __name__ == "__main__":
    main()
