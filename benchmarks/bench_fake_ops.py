"""How fast is the fake?  Operations per second for a post / complete / wait /
get-result cycle, beside a plain Python function call measured in the same run.

    python benchmarks/bench_fake_ops.py [--cycles N]

One cycle: the peer sends 64 bytes; the server posts WSARecv (pending), waits
on its event with WSAWaitForMultipleEvents (the fake completes it), fetches the
result with WSAGetOverlappedResult and resets the event: 4 Winsock calls.  The
ratio shows how many plain function calls one cycle costs.  Speed is measured
here, never in tests.
"""

from __future__ import annotations

import argparse
import time

from _checkout import build_name, use_checkout  # (this folder is on sys.path)

use_checkout()

from fakewinsock import WSABUF, FakeConfig, FakeWinsock  # noqa: E402
from fakewinsock.constants import FALSE, WSA_INFINITE, WSA_WAIT_EVENT_0  # noqa: E402
from tests.conformance._harness import Harness  # noqa: E402


def baseline(n: int) -> float:
    def f(a: int, b: int) -> int:
        return a + b

    t0 = time.perf_counter()
    x = 0
    for i in range(n):
        x = f(x, i)
    return time.perf_counter() - t0


def fake_cycles(n: int, check_buffers: bool, trace: bool) -> float:
    config = FakeConfig(immediate=0.0, latency=(0, 0), completion_delay=(0, 0), split=0.0,
                        partial_recv=0.0, background=0.0, check_buffers=check_buffers)
    ws = FakeWinsock(seed=1, config=config)
    ws.trace.enabled = trace
    h = Harness(ws)
    h.start()
    a = h.accept()
    peer = a.peer
    ov = h.overlapped()
    buf = bytearray(64)
    bufs = [WSABUF(64, buf)]
    payload = bytes(64)
    ev = ov.hEvent
    t0 = time.perf_counter()
    for _ in range(n):
        peer.send_nowait(payload)  # type: ignore[attr-defined]
        ws.WSARecv(a.sock, bufs, 1, 0, ov, None)
        assert ws.WSAWaitForMultipleEvents(1, [ev], FALSE, WSA_INFINITE, FALSE) == WSA_WAIT_EVENT_0
        ok, nbytes, _ = ws.WSAGetOverlappedResult(a.sock, ov, FALSE)
        assert ok and nbytes == 64
        ws.WSAResetEvent(ev)
    elapsed = time.perf_counter() - t0
    h.finish()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=20_000)
    args = ap.parse_args()
    n = args.cycles
    base = baseline(n * 4)
    base_rate = n * 4 / base
    print(f"fakewinsock: {build_name()}")
    print(f"{'what':<46} {'per second':>14} {'ratio to a call':>16}")
    print(f"{'plain Python function call':<46} {base_rate:>14,.0f} {1.0:>16.1f}")
    for label, check, trace in (
        ("fake cycle (4 calls), trace + buffer checks", True, True),
        ("fake cycle (4 calls), no trace, no checks", False, False),
    ):
        t = fake_cycles(n, check, trace)
        rate = n / t
        print(f"{label:<46} {rate:>14,.0f} {base_rate / rate:>16.1f}")
        print(f"{'  ... per Winsock call':<46} {4 * rate:>14,.0f} {base_rate / (4 * rate):>16.1f}")


if __name__ == "__main__":
    main()
