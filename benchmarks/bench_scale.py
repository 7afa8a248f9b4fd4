"""Scale and speed of the fake, measured against references in the same run.

    python benchmarks/bench_scale.py            # every table below
    python benchmarks/bench_scale.py vs-asyncio [--clients 20000 --messages 10]
    python benchmarks/bench_scale.py scaling | wait-cost | memory

vs-asyncio
    N clients x M lines, line echo: ``ovserver simulate`` (completion-routine
    model, on the fake) against an asyncio echo server with asyncio clients on
    real Linux loopback, run one after the other in this process.  The asyncio
    clients replay the simulated clients' scripts: the same lines, sent in the
    same chunks.  Wall time, messages per second, ratio.
scaling
    The same simulation at 1000, 5000 and 20000 clients: time per message
    (flat means nothing grows quadratically).
wait-cost
    One WSAWaitForMultipleEvents over 64 events, with 0, 1000 and 20000 idle
    connections elsewhere in the simulated world: the cost must not grow.
memory
    Peak traced bytes per simulated connection at 20000 connections (an
    accepted socket with a pending WSARecv, its peer, its event and OVERLAPPED),
    beyond the receive buffer itself.

Speed is measured here, never in tests.  Numbers depend on the machine and its
load: compare the ratios, which are taken within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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
from ovserver import simulate  # noqa: E402
from ovserver._simulate import client_scripts  # noqa: E402


def row(*cells: object, widths: tuple[int, ...] = (34, 14, 16, 16, 10)) -> None:
    out = []
    for cell, w in zip(cells, widths, strict=False):
        text = f"{cell:,.2f}" if isinstance(cell, float) else f"{cell:,}" if isinstance(cell, int) else str(cell)
        out.append(text.ljust(w) if not out else text.rjust(w))
    print("".join(out), flush=True)


# --------------------------------------------------------------- vs asyncio


def run_simulation(clients: int, messages: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    report = simulate(clients=clients, messages=messages, model="routines", mode="echo", seed=1)
    wall = time.perf_counter() - t0
    if not report.ok:
        raise SystemExit(f"simulation failed: {report.errors[:3]}")
    return wall, clients * messages


async def _asyncio_echo(clients: int, messages: int, concurrency: int) -> int:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write(line)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096, limit=1 << 20)
    port = server.sockets[0].getsockname()[1]
    gate = asyncio.Semaphore(concurrency)
    verified = 0
    scripts = client_scripts(1, clients, messages)  # the simulation's, with seed=1

    async def client(i: int) -> None:
        nonlocal verified
        # The same lines and the same chunking as the simulated client i
        # (without its think time between chunks, which would cost real time).
        lines, chunks = scripts[i]
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)

            async def send() -> None:
                for chunk in chunks:
                    writer.write(chunk)
                    await writer.drain()

            sending = asyncio.ensure_future(send())
            for line in lines:
                if await reader.readline() != line + b"\n":
                    raise SystemExit(f"asyncio client {i}: wrong reply")
                verified += 1
            await sending
            writer.close()
            await writer.wait_closed()

    await asyncio.gather(*(client(i) for i in range(clients)))
    server.close()
    await server.wait_closed()
    return verified


def run_asyncio(clients: int, messages: int, concurrency: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    verified = asyncio.run(_asyncio_echo(clients, messages, concurrency))
    return time.perf_counter() - t0, verified


def vs_asyncio(clients: int, messages: int, concurrency: int) -> None:
    print(f"\n## {clients} clients x {messages} lines, line echo "
          f"(asyncio: at most {concurrency} clients connected at once)")
    row("run", "wall s", "messages/s", "ratio")
    sim_wall, sim_msgs = run_simulation(clients, messages)
    aio_wall, aio_msgs = run_asyncio(clients, messages, concurrency)
    row("ovserver simulate (routines, fake)", sim_wall, sim_msgs / sim_wall, aio_wall / sim_wall)
    row("asyncio server + clients, loopback", aio_wall, aio_msgs / aio_wall, 1.0)
    print(f"the simulation is {aio_wall / sim_wall:.2f}x as fast as the real loopback run")


# ------------------------------------------------------------------ scaling


def scaling(sizes: list[int], messages: int) -> None:
    print(f"\n## scaling: ovserver simulate, routines, echo, {messages} lines per client")
    row("clients", "wall s", "us per message", "vs smallest")
    first = None
    for n in sizes:
        wall, msgs = run_simulation(n, messages)
        per = wall / msgs * 1e6
        first = first or per
        row(str(n), wall, per, per / first)


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
    row("peak while connecting", per_peak, per_peak - buffer, "<= 8192")
    row("settled", per_now, per_now - buffer, "<= 8192")
    del ws, keep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", nargs="?", default="all", choices=["all", "vs-asyncio", "scaling", "wait-cost", "memory"])
    ap.add_argument("--clients", type=int, default=20000)
    ap.add_argument("--messages", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=1000)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"python {sys.version.split()[0]}, open files limit {hard}")
    jobs: dict[str, Callable[[], None]] = {
        "vs-asyncio": lambda: vs_asyncio(args.clients, args.messages, args.concurrency),
        "scaling": lambda: scaling([1000, 5000, 20000], args.messages),
        "wait-cost": lambda: wait_cost([0, 1000, 20000], 20000),
        "memory": lambda: memory(20000, 4096),
    }
    for name, job in jobs.items():
        if args.what in ("all", name):
            job()


if __name__ == "__main__":
    main()
