"""``FakeWinsock.thread_switches`` counts what the trace shows: each time a
program thread gets the baton after another one."""

from __future__ import annotations

import json
from pathlib import Path

from ovserver import simulate


def test_switches_match_the_trace(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    r = simulate(clients=70, messages=2, model="events", mode="echo", seed=3, plain=True, trace=str(trace))
    assert r.ok, r.errors
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    runs = sum(1 for rec in records if (rec["what"], rec["call"]) == ("thread", "run"))
    assert r.server.threads_started >= 2  # 70 clients: two groups, so threads do switch
    assert runs > 0
    assert r.thread_switches == runs


def test_no_threads_no_switches() -> None:
    r = simulate(clients=20, messages=2, model="routines", mode="echo", seed=3, plain=True)
    assert r.ok, r.errors
    assert r.thread_switches == 0
