"""``ovserver simulate``'s accepts swarm feature and ``--accepts`` (issue 10):
the served server keeps several AcceptEx calls outstanding (``serve
--accepts``, default 16), so simulate's swarm runs it so on the seeds that draw
the feature, and takes serve's option."""

from __future__ import annotations

import pytest

from ovserver import simulate
from ovserver.__main__ import main
from ovserver._events import EventServer
from ovserver._iocp import IocpServer
from ovserver._routines import RoutineServer
from ovserver._simulate import ACCEPTS_DRAWN
from tests.test_simulate_idle_slow import _seeds_with

_CLASSES = {"events": EventServer, "routines": RoutineServer, "iocp": IocpServer}


def _peak_accepts(model: str, mode: str, seed: int, **kw: object) -> tuple[int, int]:
    """The run's (report.accepts, the most AcceptEx calls the server had outstanding at once)."""
    peak = [0]

    class Counting(_CLASSES[model]):  # type: ignore[misc,valid-type]
        def _post_accept(self) -> None:
            super()._post_accept()
            peak[0] = max(peak[0], self._accepting())

    r = simulate(20, 2, mode=mode, seed=seed, server_class=Counting, **kw)  # type: ignore[arg-type]
    assert r.ok, r.errors
    return r.accepts, peak[0]


@pytest.mark.parametrize("model", ["events", "routines", "iocp"])
@pytest.mark.parametrize("mode", ["echo", "chat"])
def test_a_seed_with_the_feature_keeps_several_accepts_outstanding(model: str, mode: str) -> None:
    """Proven by drawing 1 with the feature too: every run here fails (accepts 1, peak 1)."""
    seed = _seeds_with("accepts", without=("tight_limits", "few_clients"))[0]
    accepts, peak = _peak_accepts(model, mode, seed)
    assert accepts in ACCEPTS_DRAWN and accepts > 1
    assert peak == accepts


def test_a_seed_without_the_feature_or_plain_traffic_keeps_one() -> None:
    seed = _seeds_with(without=("accepts",))[0]
    assert _peak_accepts("events", "echo", seed) == (1, 1)
    with_it = _seeds_with("accepts")[0]
    assert _peak_accepts("events", "echo", with_it, plain=True) == (1, 1)
    assert _peak_accepts("events", "echo", with_it, barrier=True) == (1, 1)
    r = simulate(5, 1, seed=seed)
    assert "AcceptEx outstanding" not in str(r)


def test_the_draw_is_named_in_the_report() -> None:
    seed = _seeds_with("accepts")[0]
    r = simulate(5, 1, seed=seed)
    assert r.accepts > 1 and f", {r.accepts} AcceptEx outstanding\n" in str(r)


@pytest.mark.parametrize("model", ["events", "iocp"])
def test_given_accepts_reach_the_server(model: str) -> None:
    """``accepts`` (``--accepts``) overrides the draw both ways, plain traffic too.  Proven by not passing
    it on to ServerConfig: the peaks stay what the seed draws."""
    without, with_it = _seeds_with(without=("accepts", "tight_limits", "few_clients"))[0], _seeds_with("accepts")[0]
    assert _peak_accepts(model, "echo", without, accepts=3) == (3, 3)
    assert _peak_accepts(model, "chat", with_it, accepts=1) == (1, 1)
    assert _peak_accepts(model, "echo", with_it, plain=True, accepts=5) == (5, 5)
    with pytest.raises(ValueError, match="accepts must be 1-1024"):
        simulate(5, 1, seed=without, accepts=0)


def test_the_cli_option_reaches_the_server(capsys: pytest.CaptureFixture[str]) -> None:
    """Proven by dropping ``accepts=args.accepts`` from the CLI's call: the line names no accepts."""
    seed = _seeds_with(without=("accepts",))[0]
    assert main(["simulate", "--clients", "8", "--messages", "1", "--seed", str(seed), "--accepts", "3"]) == 0
    out = capsys.readouterr().out
    assert ", 3 AcceptEx outstanding\n" in out
    assert main(["simulate", "--clients", "8", "--messages", "1", "--seed", str(seed)]) == 0
    assert "AcceptEx outstanding" not in capsys.readouterr().out
