"""The ``ovserver`` command: ``serve`` on real Winsock, ``simulate`` on the fake."""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import NoReturn

from fakewinsock import Trace, __version__, get_backend

from . import ServerConfig, ServerStats, create_server
from ._console import console_stop
from ._core import (
    DEFAULT_ACCEPTS,
    DEFAULT_HIGH_WATER,
    DEFAULT_STALL_TIMEOUT_MS,
    DEFAULT_WORKERS,
    MAX_ACCEPTS,
    MAX_IDLE_TIMEOUT_MS,
    MAX_WORKERS,
    MODELS,
    ServerError,
    default_high_water,
)
from ._ctrl_c import end_deferral, exit_at_once
from ._protocol import Limits, Mode, longest_message
from ._simulate import format_report, simulate

__all__ = ["main"]


#: Upper bounds of the numeric options: beyond them a run cannot be meant
#: (and the server's buffers are allocated from some of them).
_MAX_INT = 2**31 - 1


def _integer(lo: int, hi: int = _MAX_INT) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be {lo}-{hi}, not {value}")
        return value
    parse.__name__ = "integer"  # argparse names the type in its messages
    return parse


_positive = _integer(1)
_port = _integer(0, 65535)


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


def _fraction(text: str) -> float:
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {value}")
    return value


def _seconds(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def resolve_host(host: str) -> str:
    """The IPv4 address ``serve`` binds for ``host`` (a dotted address or a
    name); ValueError saying why when there is none.  The server is IPv4 only
    (AF_INET), so an IPv6 address is refused rather than misread."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        if ip.version != 4:
            raise ValueError(f"{host} is an IPv6 address; the server listens on IPv4 only (try 127.0.0.1)")
        return str(ip)
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"{host!r} is not a host name")
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ValueError(f"cannot resolve {host!r} to an IPv4 address: {reason}") from None
    if not infos:
        raise ValueError(f"{host!r} has no IPv4 address")
    return str(infos[0][4][0])


class _Parser(argparse.ArgumentParser):
    """Bad input: one line on stderr and status 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    """The ``ovserver`` parser (``main`` parses with :func:`_parse`, which blames
    an unknown option on the subcommand it follows)."""
    return _parsers()[0]


def _parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``ovserver`` parser and its subcommands' parsers, by name."""
    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = _Parser(prog="ovserver", description="The lecture notes' overlapped-IO server (echo or chat).",
                formatter_class=fmt)
    p.add_argument("--version", action="version", version=f"ovserver {__version__} (fakewinsock {__version__})")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--model", choices=MODELS, default="events",
                        help="events: event notification, a thread per group of 63 clients (64 events); "
                             "routines: completion routines, one thread; "
                             "iocp: one I/O completion port, a pool of --workers threads")
        sp.add_argument("--mode", choices=[m.value for m in Mode], default="echo",
                        help="echo: each line back to its sender; chat: each line to every other client, named")
        d = Limits()
        sp.add_argument("--max-line", type=_positive, default=d.max_line,
                        help="longest line, bytes; a longer one gets an error line and the connection is closed")
        sp.add_argument("--max-clients", type=_positive, default=d.max_clients,
                        help="clients served at once (every model); more wait to be accepted")
        sp.add_argument("--max-queued", type=_positive, default=d.max_queued,
                        help="most bytes queued for one client before it is cut off (reset); serve: at least "
                             "one line of --max-line bytes (chat: with its sender's name)")

    def back_pressure(sp: argparse.ArgumentParser, default: str, stall_default: int | None) -> None:
        sp.add_argument("--high-water", type=_integer(0), default=None, metavar="BYTES",
                        help="back-pressure: stop reading from a client while one of its recipients (echo: itself; "
                             "chat: any other member) has more than this queued, until it has drained to half; "
                             "under --max-queued (0: off: a client that lets --max-queued pile up is cut off; "
                             f"None: {default})")
        sp.add_argument("--stall-timeout-ms", type=_integer(1, MAX_IDLE_TIMEOUT_MS), default=stall_default,
                        help="with back-pressure: cut off (reset) a client that stays over the mark this long"
                             + ("" if stall_default else f" (None: {DEFAULT_STALL_TIMEOUT_MS}, or the swarm's draw)"))

    s = sub.add_parser("serve", help="serve on the real Winsock backend (Windows)", formatter_class=fmt,
                       description="Serve on the real Winsock backend (Windows, or Windows Python under Wine). "
                                   "Ctrl+C (or Ctrl+Break) stops it within about a second; a second Ctrl+C "
                                   "exits at once.")
    s.add_argument("--host", default="127.0.0.1", help="IPv4 address or host name to listen on")
    s.add_argument("--port", type=_port, default=12345, help="TCP port, 0-65535 (0: the system picks one)")
    common(s)
    s.add_argument("--workers", type=_integer(1, MAX_WORKERS), default=None,
                   help="iocp model: worker threads on the completion port (None: the CPU count)")
    s.add_argument("--accepts", type=_integer(1, MAX_ACCEPTS), default=DEFAULT_ACCEPTS,
                   help="AcceptEx calls kept outstanding at once, so that a burst of connects is accepted "
                        "without waiting for each accept to be re-posted (never more than the places free "
                        "under --max-clients; 1: the lecture notes' server)")
    s.add_argument("--idle-timeout-ms", type=_integer(0, MAX_IDLE_TIMEOUT_MS), default=0,
                   help="close a client that has sent no complete line and read nothing for this long "
                        "(0: never, as in the lecture notes: then --max-clients silent clients lock others out)")
    back_pressure(s, f"on in echo, {DEFAULT_HIGH_WATER} or half of --max-queued if less, off in chat, where it "
                     "would pause every sender for a member that stops reading", DEFAULT_STALL_TIMEOUT_MS)

    m = sub.add_parser("simulate", help="run the server on the fake backend with scripted clients",
                       formatter_class=fmt)
    m.add_argument("--clients", type=_integer(0), default=100, help="simulated clients")
    m.add_argument("--messages", type=_integer(0), default=10, help="lines each client sends")
    m.add_argument("--seed", type=_integer(0, 2**63 - 1), default=0, help="same seed, same run and report")
    m.add_argument("--resets", type=_fraction, default=0.0, help="fraction of clients that reset at a random point")
    m.add_argument("--arrival", type=_seconds, default=None, metavar="SECONDS",
                   help="virtual seconds over which clients arrive (None: 1 ms per client)")
    m.add_argument("--barrier", action="store_true",
                   help="all clients connect (chat: join) before anyone sends, so all are connected at once "
                        "(chat: an exact check); they must fit at once (--max-clients)")
    m.add_argument("--trace", metavar="FILE", help="write the fake's trace to FILE as the run goes "
                   "(opened before the run)")
    m.add_argument("--trace-format", choices=("auto", *Trace.FORMATS), default="auto",
                   help="perfetto: Chrome Trace Event JSON for ui.perfetto.dev; jsonl: a record a line; json: one "
                        "array; text. auto: by FILE's name (.perfetto.json, .jsonl, .json, else text)")
    m.add_argument("--plain", action="store_true",
                   help="plain traffic (short lines, wide window, clients leave when served) instead of the "
                        "feature swarm drawn from the seed")
    m.add_argument("--stop-at", type=_seconds, default=None, metavar="SECONDS",
                   help="ask the server to stop at this moment of virtual time, while clients talk and arrive "
                        "(the clients it then cuts off are expected; it must stop within 1 s)")
    m.add_argument("--progress", action="store_true", help="show progress on stderr even when it is not a terminal")
    common(m)
    back_pressure(m, "the swarm's back_pressure feature decides: on the seeds that draw it as serve runs "
                     f"(echo: {DEFAULT_HIGH_WATER} or half of --max-queued if less; chat: a mark of 4 to 64 KiB), "
                     "otherwise and with --plain or --barrier off", None)
    m.add_argument("--accepts", type=_integer(1, MAX_ACCEPTS), default=None,
                   help="AcceptEx calls kept outstanding at once, as serve's --accepts (None: the swarm's accepts "
                        f"feature decides: on the seeds that draw it {DEFAULT_ACCEPTS} as serve runs, or 2 or 4; "
                        "otherwise and with --plain or --barrier 1, the lecture notes' server)")
    m.add_argument("--idle-timeout-ms", type=_integer(0, MAX_IDLE_TIMEOUT_MS), default=None,
                   help="the server's idle time-out, as serve's --idle-timeout-ms (None: the swarm's idle_timeout "
                        "feature decides: on the seeds that draw it 100, 250 or 1000 ms, unless back-pressure is "
                        "on; otherwise and with --plain or --barrier 0, off)")
    m.add_argument("--workers", type=_integer(1, MAX_WORKERS), default=DEFAULT_WORKERS,
                   help="iocp model: worker threads on the completion port (a fixed default, not the CPU count, "
                        "so that a seed gives the same run on every machine)")
    m.add_argument("--preempt", action="store_true",
                   help="thread switches favour the server's synchronization calls (after a LeaveCriticalSection, "
                        "a WSASetEvent, a wait that returned, another thread runs its step): races of the "
                        "threaded models come more often; off: the seed's run as before")
    return p, {"serve": s, "simulate": m}


def _limits(args: argparse.Namespace) -> Limits:
    return Limits(max_line=args.max_line, max_clients=args.max_clients, max_queued=args.max_queued)


def high_water(args: argparse.Namespace) -> int:
    """The back-pressure mark ``serve`` runs with: ``--high-water`` if given
    (0: off), else on in echo mode (:data:`DEFAULT_HIGH_WATER`, or half of
    ``--max-queued`` if that is less) and off in chat mode.

    Why on in echo: without it an echo client that sends more than it has
    read yet by over ``--max-queued`` (plus the socket buffers) is cut off
    however steadily it reads (under Wine: a client sending 20 MB while
    reading 2 MB/s was reset after 0.44-0.88 MB; with it, it got all 20 MB), and
    it holds back only the client itself, so one that stops reading stops
    only itself (then is cut off after ``--stall-timeout-ms``).  Why off in
    chat: there a member over the mark pauses every other sender, so one
    member that stops reading froze the whole chat for the stall time-out
    (under Wine: a reader got nothing for 10.0 s), where the cut-off at
    ``--max-queued`` costs the others nothing (the longest gap 0.1 s); chat
    servers drop such a member (IRC's "SendQ exceeded")."""
    if args.high_water is not None:
        return int(args.high_water)
    return default_high_water(args.mode, int(args.max_queued))


def serve_config(args: argparse.Namespace, address: str) -> ServerConfig:
    """The configuration ``serve`` runs with (``address``: ``--host`` resolved).

    Each WSASend carries everything queued for its client (``send_size`` is
    ``--max-queued``, not ServerConfig's 64 KiB): in chat, every receive of
    up to 16 KB is queued for every member, so with sends of 64 KiB, five
    members talking at once queued more for each member than one send per
    turn takes away, and members that read as fast as the server sent were
    cut off as slow readers (under Wine: a reader in a dedicated thread,
    reset while 20 members flooded; on the fake,
    ``tests/test_ovserver_fanin.py``).  So a client is cut off only when it
    does not take what the server sends.  (``simulate`` keeps 64 KiB: its
    traffic checks replies longer than one send.)"""
    workers = args.workers if args.workers is not None else min(MAX_WORKERS, os.cpu_count() or 1)
    limits = replace(_limits(args), high_water=high_water(args))
    return ServerConfig(host=address, port=args.port, model=args.model, mode=Mode(args.mode), limits=limits,
                        workers=workers, idle_timeout_ms=args.idle_timeout_ms, accepts=args.accepts,
                        stall_timeout_ms=args.stall_timeout_ms if limits.high_water else 0,
                        send_size=max(ServerConfig.send_size, limits.max_queued))


def _serve(args: argparse.Namespace) -> int:
    try:
        ws = get_backend("real")
    except (RuntimeError, ImportError) as e:
        reason = f"it needs Windows, this is {sys.platform}" if sys.platform != "win32" else str(e)
        print(f"ovserver serve: no real Winsock backend here ({reason}); "
              "use 'ovserver simulate' to run the server on the fake backend", file=sys.stderr)
        return 2
    try:
        address = resolve_host(args.host)
    except ValueError as e:
        print(f"ovserver serve: --host: {e}", file=sys.stderr)
        return 2
    config = serve_config(args, address)
    server = create_server(ws, config)
    named = "" if address == args.host else f" ({args.host})"

    def ready(_: object) -> None:
        assert server.address is not None
        host, port = server.address
        pool = f", {config.workers} workers" if config.model == "iocp" else ""
        print(f"ovserver: {config.mode.value} server ({config.model} model{pool}) on {host}:{port}{named}; "
              "Ctrl+C stops", flush=True)

    try:
        with console_stop(server.request_stop, on_second=exit_at_once):
            stats = server.run(ready)
    except ServerError as e:
        print(f"ovserver: {e}", file=sys.stderr)
        return 1
    print(stopped_line(stats), flush=True)
    return 0


def stopped_line(stats: ServerStats) -> str:
    """``serve``'s last line: what it served, then each way it ended clients
    that broke a limit, when any did."""
    extra = f"; gave up waiting for {stats.abandoned} cancelled operations" if stats.abandoned else ""
    if stats.timed_out:
        extra = f"; {stats.timed_out} closed when idle" + extra
    if over := stats.cut_off - stats.stalled:  # a reset: --max-queued, or sending on after the error line
        extra = f"; {over} cut off (over --max-queued, or sending on after the error line)" + extra
    if stats.stalled:
        extra = f"; {stats.stalled} cut off as slow consumers" + extra
    # A client hung up, then cut off for sending on after the error line or closed when idle (it
    # never went), counts there only: each client once.
    if hung := stats.hung_up - stats.hub.hung_up_cut_off - stats.hung_up_timed_out:
        extra = f"; {hung} hung up for a line over --max-line" + extra
    if stats.threads_stillborn:
        extra = f"; {stats.threads_stillborn} group threads ended before they ran, replaced" + extra
    if stats.refused:  # the client saw its connection made, then closed: it must be in the counts
        extra = f"; {stats.refused} connections refused (accepted, but no room to serve them)" + extra
    if stats.gone_unaccepted:
        extra = f"; {stats.gone_unaccepted} connections gone before they were accepted" + extra
    return (f"ovserver: stopped; {stats.accepted} connections served, {stats.hub.lines} lines, "
            f"{stats.bytes_received} bytes in, {stats.bytes_sent} bytes out{extra}")


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
    if args.trace is not None:
        try:  # fail now, not after the whole run: the report would be lost
            with open(args.trace, "w", encoding="utf-8"):
                pass
        except OSError as e:
            print(f"ovserver simulate: --trace: cannot write {args.trace!r}: {e.strerror or e}", file=sys.stderr)
            return 2
    try:
        report = simulate(args.clients, args.messages, model=args.model, mode=args.mode, seed=args.seed,
                          resets=args.resets, limits=None if _limits(args) == Limits() else _limits(args),
                          arrival_s=args.arrival, barrier=args.barrier, plain=args.plain, stop_at_s=args.stop_at,
                          high_water=args.high_water, stall_timeout_ms=args.stall_timeout_ms,
                          accepts=args.accepts, idle_timeout_ms=args.idle_timeout_ms,
                          trace=args.trace, trace_format=args.trace_format, workers=args.workers,
                          preempt=args.preempt,
                          progress=_progress_printer(args.progress or sys.stderr.isatty()))
    except ValueError as e:
        print(f"ovserver simulate: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return _simulate_interrupted()
    sys.stdout.write(format_report(report))
    return 0 if report.ok else 1


def _simulate_interrupted() -> int:
    print("\novserver simulate: interrupted (Ctrl+C); no report", file=sys.stderr, flush=True)
    return 130


def _parse(words: list[str]) -> argparse.Namespace:
    """The options of ``ovserver WORDS``; bad input: one line on stderr, SystemExit(2)."""
    parser, commands = _parsers()
    args, unknown = parser.parse_known_args(words)
    if unknown:  # parse_args would blame ovserver, whose --help does not list the subcommand's options
        before_command = unknown[0] in words and words.index(unknown[0]) < words.index(args.command)
        (parser if before_command else commands[args.command]).error(
            f"unrecognized arguments: {' '.join(unknown)}")
    if args.high_water is not None and args.high_water >= args.max_queued:
        commands[args.command].error(f"--high-water: must be under --max-queued ({args.max_queued}), "
                                f"not {args.high_water}")
    if args.command == "serve" and args.max_queued < (least := longest_message(args.mode, args.max_line)):
        # A message is queued whole: under this, a line of --max-line bytes cuts off a client
        # that reads everything (echo: its sender; chat: every other member).
        commands["serve"].error(f"--max-queued: must be at least {least}, room for one line of --max-line "
                                f"({args.max_line}) bytes and its newline"
                                + (" with its sender's name" if args.mode == "chat" else "")
                                + f", not {args.max_queued}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ovserver`` command; returns the exit status."""
    args = _parse(list(sys.argv[1:] if argv is None else argv))
    try:
        if args.command == "serve":
            return _serve(args)  # a Ctrl+C during the start (see _ctrl_c) stops the server once it runs
        if end_deferral():  # simulate: Python's Ctrl+C again; one during the start is simulate's
            return _simulate_interrupted()
        return _simulate(args)
    except KeyboardInterrupt:  # serve: before the console handler is in place (not as `ovserver`)
        print(f"\novserver {args.command}: interrupted (Ctrl+C)", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
