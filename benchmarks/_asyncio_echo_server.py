"""Line echo server on asyncio's default loop: on Windows, ProactorEventLoop (IOCP).

The reference server of ``benchmarks/bench_wine.py``, run by the Windows python
under Wine (``tools/wine/winpython benchmarks/_asyncio_echo_server.py``):

    python benchmarks/_asyncio_echo_server.py [--host 127.0.0.1] [--port 0]

Same protocol as ``ovserver serve --mode echo``: every line a client sends comes
back to it; when the client closes its sending side, the server sends what is
queued and closes.  Once listening it prints
``asyncio-echo: echo server (<loop class>) on HOST:PORT; Ctrl+C stops``.
Ctrl+C (under Wine: SIGINT to the process, delivered as CTRL_C_EVENT) stops it:
``asyncio.run`` turns it into a cancellation of the server, which closes every
connection; it then prints ``asyncio-echo: stopped; ...`` and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import sys


class Stats:
    connections = 0
    lines = 0
    bytes = 0


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    Stats.connections += 1
    try:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
            Stats.lines += 1
            Stats.bytes += len(line)
    except (ConnectionError, asyncio.LimitOverrunError, ValueError):
        pass
    finally:
        writer.close()


async def serve(host: str, port: int) -> None:
    server = await asyncio.start_server(handle, host, port, backlog=1024)
    bound = server.sockets[0].getsockname()
    loop = type(asyncio.get_running_loop()).__name__
    print(f"asyncio-echo: echo server ({loop}) on {bound[0]}:{bound[1]}; Ctrl+C stops", flush=True)
    async with server:
        await server.serve_forever()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    try:
        asyncio.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        pass
    print(f"asyncio-echo: stopped; {Stats.connections} connections served, {Stats.lines} lines, "
          f"{Stats.bytes} bytes echoed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
