"""The differential tester (tools/difftest) itself: its programs, its normalisation, its power.

The tester's real use compares the fake with ws2_32 under Wine (``.ci/run``);
these tests need no Wine: they compare the fake with itself.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

import pytest

from fakewinsock import FakeConfig, FakeWinsock
from fakewinsock._ops import Operations

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools", "difftest"))

import difftest  # noqa: E402
from program import generate  # noqa: E402
from runner import run_program  # noqa: E402

SEEDS = range(60)
WIDE_SEEDS = range(30000, 30060)  # programs that also draw the calls added in fidelity session 6


def test_a_seed_gives_one_program_and_one_run() -> None:
    for seed in range(10):
        assert generate(seed) == generate(seed)
        assert difftest.run_fake(seed) == difftest.run_fake(seed)


def test_programs_cover_the_world() -> None:
    """Across a seed range every kind of step occurs, including scatter lists with an
    empty WSABUF before a non-empty one."""
    kinds: set[str] = set()
    empty_first = False
    for seed in range(200):
        for step in generate(seed):
            kinds.add(step[0])
            if step[0] == "recv" and 0 in step[2] and any(step[2][step[2].index(0):]):
                empty_first = True
    assert {"conn", "recv", "send", "peer_send", "peer_reset", "peer_close", "peer_shutdown", "shutdown",
            "close", "wait", "reset_event", "poll", "cancel", "alertable_wait", "wait_known", "gor_wait",
            "names", "opt", "bad", "event_cycle", "sleep_alertable"} <= kinds
    assert empty_first


def test_wide_programs_draw_the_added_calls() -> None:
    """Seeds from WIDE_FROM on also draw MSG_PEEK, SO_CONNECT_TIME, option values,
    CancelIo, completion ports, threads, CancelIo on handles that are no file, and
    posts with both an event and a routine; seeds below draw none of them (their
    programs, and so the earlier runs' results, stay as they were)."""
    added = {"peek", "connect_time", "opt_value", "cancel_all", "port", "thread", "not_a_file"}
    wide: set[str] = set()
    both = False
    for seed in range(30000, 30300):
        for step in generate(seed):
            wide.add(step[0])
            both = both or (step[0] in ("recv", "send") and step[3] == "routine+event")
    assert added <= wide and both
    old = {step[0] for seed in range(300) for step in generate(seed)}
    assert not (added & old)
    assert not any(step[0] in ("recv", "send") and step[3] == "routine+event"
                   for seed in range(300) for step in generate(seed))


@pytest.mark.parametrize("seeds", [SEEDS, WIDE_SEEDS], ids=["first", "wide"])
def test_schedules_of_the_fake_never_count(seeds: range) -> None:
    """The same program on the fake always pending, always immediate, and seeded-mixed
    (splits, partial receives, background completions): the normalised observations
    agree, so a difference the tester reports is never one of schedule."""
    report = difftest.Report()
    for seed in seeds:
        steps = generate(seed)
        runs = [run_program(FakeWinsock(seed=seed * 3 + k, config=FakeConfig(**cfg)), steps)
                for k, cfg in enumerate(difftest.FAKE_CONFIGS)]
        difftest.compare(seed, runs[0], runs[1], report)
        difftest.compare(seed, runs[1], runs[2], report)
    assert report.compared > 2000
    assert report.classes == {}


def _plant_empty_wsabuf_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake as it was: received bytes copied only up to the first empty WSABUF."""
    original = Operations.finish

    def finish(self: Operations[Any], op: Any, status: int, n: int, what: str, data: bytes = b"") -> None:
        copied = 0  # the bytes that fit before the first empty buffer; the count stays n
        for b in op.bufs:
            if len(b) == 0:
                break
            copied += len(b)
        original(self, op, status, n, what, data[:copied])

    monkeypatch.setattr(Operations, "finish", finish)


def test_the_tester_finds_the_empty_wsabuf_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    """The finding that started issue 13, planted back: the tester reports a class on
    the received stream, and its shortest example posts a scatter list with an empty
    WSABUF before a non-empty one."""
    good = {seed: difftest.run_fake(seed) for seed in SEEDS}
    _plant_empty_wsabuf_bug(monkeypatch)
    report = difftest.Report()
    for seed in SEEDS:
        difftest.compare(seed, difftest.run_fake(seed), good[seed], report)
    streams = [k for k in report.classes.values() if k.call == "conn.in"]
    assert streams, report.classes
    _, seed, _ = min(k.example for k in streams)
    assert any(st[0] == "recv" and 0 in st[2] and any(st[2][st[2].index(0):]) for st in generate(seed))


def test_explained_classes_are_well_formed() -> None:
    with open(os.path.join(ROOT, "docs", "difftest-explained.json"), encoding="utf-8") as f:
        entries = json.load(f)["explained"]
    ids = [e["id"] for e in entries]
    assert len(ids) == len(set(ids))
    for e in entries:
        assert e["verdict"] in ("wine-divergence", "unverified"), e
        assert e["why"] and e["evidence"], e
        for key in ("call", "fake", "real"):
            re.compile(e[key])
    kl = difftest.Klass("op.recv.final", "done or close", "status=0x8000000a")
    assert difftest.explain(kl, entries) is not None
    assert difftest.explain(difftest.Klass("conn.in", "all sent", "bytes that were not sent"), entries) is None
