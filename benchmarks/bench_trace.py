"""What does tracing a simulation cost?  Peak memory and wall time of ``ovserver
simulate`` traced (streamed to a file, in each format) beside the same run
untraced, in the same script.

    python benchmarks/bench_trace.py [--clients 5000] [--messages 10] [--formats perfetto,jsonl]

Each run is a fresh process (so one run's memory does not hide in another's):
peak memory is tracemalloc's peak of Python allocations and the process's
maximum resident set (ru_maxrss); the ratio is against the untraced run.  Also
the size of each trace file.  Speed and memory are measured here, never in
tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = """
import json, resource, sys, time, tracemalloc
sys.path.insert(0, {root!r})
from ovserver._simulate import simulate
clients, messages, trace, fmt = {clients}, {messages}, {trace!r}, {fmt!r}
tracemalloc.start()
t0 = time.perf_counter()
report = simulate(clients, messages, seed=1, trace=trace, trace_format=fmt)
wall = time.perf_counter() - t0
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(json.dumps({{"ok": report.ok, "wall": wall, "peak": peak,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""


def run(clients: int, messages: int, trace: str | None, fmt: str | None) -> dict[str, float]:
    code = _CHILD.format(root=str(ROOT), clients=clients, messages=messages, trace=trace, fmt=fmt)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(out.splitlines()[-1])
    if not result["ok"]:
        raise SystemExit("the simulation failed")
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=5000)
    p.add_argument("--messages", type=int, default=10)
    p.add_argument("--formats", default="perfetto,jsonl,json,text")
    args = p.parse_args()
    base = run(args.clients, args.messages, None, None)
    print(f"simulate --clients {args.clients} --messages {args.messages}: untraced peak {base['peak'] / 1e6:.1f} MB "
          f"(tracemalloc), maxrss {base['maxrss_kb'] / 1e3:.1f} MB, {base['wall']:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.formats.split(","):
            path = os.path.join(tmp, f"run.{fmt}")
            r = run(args.clients, args.messages, path, fmt)
            size = os.path.getsize(path)
            print(f"  --trace-format {fmt:<9} peak {r['peak'] / 1e6:6.1f} MB ({r['peak'] / base['peak']:.2f}x), "
                  f"maxrss {r['maxrss_kb'] / 1e3:6.1f} MB ({r['maxrss_kb'] / base['maxrss_kb']:.2f}x), "
                  f"wall {r['wall'] / base['wall']:.2f}x, file {size / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
