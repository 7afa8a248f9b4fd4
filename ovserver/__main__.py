"""The ``ovserver`` command: ``serve`` on real Winsock, ``simulate`` on the fake."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

from fakewinsock import get_backend

from . import ServerConfig, create_server
from ._console import console_stop
from ._core import MODELS, ServerError
from ._protocol import Limits, Mode
from ._simulate import format_report, simulate

__all__ = ["main"]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ovserver", description="The seed's overlapped-IO server (echo or chat).")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--model", choices=MODELS, default="events",
                        help="events: event notification (64 events); routines: completion routines")
        sp.add_argument("--mode", choices=[m.value for m in Mode], default="echo")
        d = Limits()
        sp.add_argument("--max-line", type=_positive, default=d.max_line, help="longest line, bytes")
        sp.add_argument("--max-clients", type=_positive, default=d.max_clients)
        sp.add_argument("--max-queued", type=_positive, default=d.max_queued,
                        help="most bytes queued for one client before it is cut off")

    fmt = argparse.ArgumentDefaultsHelpFormatter
    s = sub.add_parser("serve", help="serve on the real Winsock backend (Windows)", formatter_class=fmt)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=12345)
    common(s)

    m = sub.add_parser("simulate", help="run the server on the fake backend with scripted clients",
                       formatter_class=fmt)
    m.add_argument("--clients", type=int, default=100, help="simulated clients")
    m.add_argument("--messages", type=int, default=10, help="lines each client sends")
    m.add_argument("--seed", type=int, default=0, help="same seed, same run and report")
    m.add_argument("--resets", type=_fraction, default=0.0, help="fraction of clients that reset at a random point")
    m.add_argument("--arrival", type=float, default=None, metavar="SECONDS",
                   help="virtual seconds over which clients arrive (None: 1 ms per client)")
    m.add_argument("--barrier", action="store_true",
                   help="chat: all clients join before anyone sends, for an exact check (they must fit at once)")
    m.add_argument("--trace", metavar="FILE", help="write the fake's trace (JSON if FILE ends in .json)")
    m.add_argument("--plain", action="store_true",
                   help="plain traffic (short lines, wide window, clients leave when served) instead of the "
                        "feature swarm drawn from the seed")
    m.add_argument("--progress", action="store_true", help="show progress on stderr even when it is not a terminal")
    common(m)
    return p


def _limits(args: argparse.Namespace) -> Limits:
    return Limits(max_line=args.max_line, max_clients=args.max_clients, max_queued=args.max_queued)


def _serve(args: argparse.Namespace) -> int:
    try:
        ws = get_backend("real")
    except (RuntimeError, ImportError) as e:
        reason = f"it needs Windows, this is {sys.platform}" if sys.platform != "win32" else str(e)
        print(f"ovserver serve: no real Winsock backend here ({reason}); "
              "use 'ovserver simulate' to run the server on the fake backend", file=sys.stderr)
        return 2
    config = ServerConfig(host=args.host, port=args.port, model=args.model, mode=Mode(args.mode),
                          limits=_limits(args))
    server = create_server(ws, config)

    def ready(_: object) -> None:
        assert server.address is not None
        host, port = server.address
        print(f"ovserver: {config.mode.value} server ({config.model} model) on {host}:{port}; Ctrl+C stops",
              flush=True)

    try:
        with console_stop(server.request_stop):
            stats = server.run(ready)
    except ServerError as e:
        print(f"ovserver: {e}", file=sys.stderr)
        return 1
    print(f"ovserver: stopped; {stats.accepted} connections served, {stats.hub.lines} lines, "
          f"{stats.bytes_received} bytes in, {stats.bytes_sent} bytes out")
    return 0


def _progress_printer(enabled: bool) -> Callable[[int, int], None] | None:
    if not enabled:
        return None
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= 0.25:
            last[0] = now
            end = "\n" if done == total else ""
            print(f"\rovserver simulate: {done}/{total} clients done", end=end, file=sys.stderr, flush=True)

    return show


def _simulate(args: argparse.Namespace) -> int:
    if args.clients < 0 or args.messages < 0:
        print("ovserver simulate: --clients and --messages must be >= 0", file=sys.stderr)
        return 2
    try:
        report = simulate(args.clients, args.messages, model=args.model, mode=args.mode, seed=args.seed,
                          resets=args.resets, limits=None if _limits(args) == Limits() else _limits(args),
                          arrival_s=args.arrival, barrier=args.barrier, plain=args.plain,
                          trace=args.trace, progress=_progress_printer(args.progress or sys.stderr.isatty()))
    except ValueError as e:
        print(f"ovserver simulate: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(format_report(report))
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ovserver`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return _simulate(args)


if __name__ == "__main__":
    sys.exit(main())
