#!/usr/bin/env python3
"""Hostile clients for ``ovserver serve`` (run by tools/wine/e2e.sh): clients
that send and never read.  Standard library only, loopback only, bounded in time.

    hostile.py flood  --port P [--clients 70] [--bytes 8000000]
        ``--clients`` echo clients that each send up to ``--bytes`` of lines and
        never read (receive buffer 4 KiB).  The server must cut each one off
        (its queue for it exceeds --max-queued; start the server with a small
        one) with a reset.  Then a fresh client must get its echo within 5 s.
    hostile.py hold   --port P [--clients 8] [--bytes 10000000]
        Echo clients that each send ``--bytes`` and never read, so that the
        server's sends to them pend (start the server with --max-queued above
        --bytes, so it does not cut them off).  Prints "holding ..." once all
        have sent, then keeps them connected until stdin closes or --hold-s.
    hostile.py cutoff --port P [--bytes 16000000]
        Chat: a member that never reads, and a talker that sends ``--bytes`` of
        lines.  The server must cut the silent member off (start it with a
        small --max-queued) abortively: reading what it was sent must end in a
        reset, not in a clean end of stream (which would hide the lost data).

Prints one line per check; exit status 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time

HOST = "127.0.0.1"
LINE = b"h" * 16383 + b"\n"  # long lines: the server's work is per line as much as per byte
FRESH_WITHIN_S = 5.0


def deaf_socket(port: int, timeout: float) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    s.settimeout(timeout)
    s.connect((HOST, port))
    return s


def send_up_to(s: socket.socket, nbytes: int) -> str:
    """Send lines until ``nbytes`` are out: "sent", "reset" or the error's name."""
    chunk = LINE * 4
    sent = 0
    try:
        while sent < nbytes:
            s.sendall(chunk)
            sent += len(chunk)
    except (ConnectionResetError, BrokenPipeError):
        return "reset"
    except OSError as e:
        return type(e).__name__
    return "sent"


def read_to_end(s: socket.socket) -> str:
    """Read until the stream ends: "eof" (clean FIN), "reset", or the error's name."""
    try:
        while s.recv(1 << 16):
            pass
    except ConnectionResetError:
        return "reset"
    except OSError as e:
        return type(e).__name__
    return "eof"


def fresh_client(port: int) -> tuple[bool, float, str]:
    """Connect, send a line, wait for its echo: (ok, seconds, what happened)."""
    t0 = time.monotonic()
    try:
        with socket.create_connection((HOST, port), timeout=FRESH_WITHIN_S) as s:
            s.settimeout(max(0.1, FRESH_WITHIN_S - (time.monotonic() - t0)))
            s.sendall(b"hello, are you there?\n")
            got = b""
            while not got.endswith(b"\n"):
                d = s.recv(4096)
                if not d:
                    break
                got += d
        dt = time.monotonic() - t0
        return got == b"hello, are you there?\n", dt, repr(got)
    except OSError as e:
        return False, time.monotonic() - t0, f"{type(e).__name__}: {e}"


def in_threads(n: int, fn: object) -> list[str]:
    results = [""] * n

    def run(i: int) -> None:
        try:
            results[i] = fn(i)  # type: ignore[operator]
        except OSError as e:
            results[i] = f"{type(e).__name__}: {e}"

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def deaf_clients(args: argparse.Namespace, then_read: bool) -> tuple[list[str], list[socket.socket]]:
    """``--clients`` clients that each send ``--bytes`` and never read (with
    ``then_read``, one that was not cut off while sending reads to the end):
    each one's outcome, and the sockets, still open."""
    socks: list[socket.socket] = []
    lock = threading.Lock()

    def one(i: int) -> str:
        s = deaf_socket(args.port, args.timeout)
        with lock:
            socks.append(s)
        how = send_up_to(s, args.bytes)
        if how == "sent" and then_read:  # not cut off while sending: the reset must come anyway
            how = read_to_end(s)
        return how

    return in_threads(args.clients, one), socks


def flood(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    outcomes, socks = deaf_clients(args, then_read=True)
    resets = outcomes.count("reset")
    ok_fresh, dt, what = fresh_client(args.port)
    for s in socks:
        s.close()
    print(f"hostile flood: {args.clients} clients sent up to {args.bytes} bytes and never read: "
          f"{resets} reset ({time.monotonic() - t0:.1f} s); others: "
          f"{sorted(set(o for o in outcomes if o != 'reset')) or 'none'}")
    print(f"hostile flood: a fresh client {'was served' if ok_fresh else 'was NOT served'} in {dt:.2f} s"
          f"{'' if ok_fresh else ': ' + what}")
    return 0 if ok_fresh and dt <= FRESH_WITHIN_S and resets == args.clients else 1


def hold(args: argparse.Namespace) -> int:
    outcomes, socks = deaf_clients(args, then_read=False)
    sent = outcomes.count("sent")
    print(f"hostile hold: holding {sent}/{args.clients} clients that sent {args.bytes} bytes each "
          "and never read", flush=True)
    done = threading.Event()

    def until_stdin_closes() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=until_stdin_closes, daemon=True).start()
    done.wait(args.hold_s)
    for s in socks:
        s.close()
    return 0 if sent == args.clients else 1


def cutoff(args: argparse.Namespace) -> int:
    silent = deaf_socket(args.port, args.timeout)
    talker = socket.create_connection((HOST, args.port), timeout=args.timeout)
    time.sleep(0.3)  # both are members before the talk starts
    sent = send_up_to(talker, args.bytes)
    silent.settimeout(args.timeout)
    end = read_to_end(silent)
    talker.close()
    silent.close()
    print(f"hostile cutoff: the talker {sent} {args.bytes} bytes; the silent member's stream ended in: {end}")
    return 0 if end == "reset" else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("check", choices=("flood", "hold", "cutoff"))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--clients", type=int, default=None)
    p.add_argument("--bytes", type=int, default=None)
    p.add_argument("--timeout", type=float, default=20.0, help="seconds any one socket step may take")
    p.add_argument("--hold-s", type=float, default=60.0, help="hold: the longest it holds (default 60)")
    args = p.parse_args(argv)
    defaults = {"flood": (70, 8_000_000), "hold": (8, 10_000_000), "cutoff": (2, 16_000_000)}[args.check]
    args.clients = args.clients if args.clients is not None else defaults[0]
    args.bytes = args.bytes if args.bytes is not None else defaults[1]
    return {"flood": flood, "hold": hold, "cutoff": cutoff}[args.check](args)


if __name__ == "__main__":
    sys.exit(main())
