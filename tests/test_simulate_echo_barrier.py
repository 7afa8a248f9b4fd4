"""``simulate(barrier=True)`` in echo mode: every client connects before any sends.

Connected is TCP's connected: the server may still hold a few in its backlog
when it serves the first ones (and they may be done before it accepts the
last), so the server's peak is nearly, not exactly, every client."""

from __future__ import annotations

import pytest

from ovserver import simulate
from ovserver._core import MODELS


@pytest.mark.parametrize("model", MODELS)
def test_echo_barrier_has_every_client_connected_at_once(model: str) -> None:
    r = simulate(clients=150, messages=3, model=model, mode="echo", seed=2, barrier=True, arrival_s=0.01)
    assert r.ok, r.errors
    assert r.served == 150 and r.replies == 150 * 3
    assert r.server.peak_connections >= 0.9 * 150


@pytest.mark.parametrize("model", MODELS)
def test_echo_without_barrier_is_not_all_at_once(model: str) -> None:
    """The same run without the barrier: clients leave as they are served, so
    the peak above is the barrier's doing."""
    r = simulate(clients=150, messages=3, model=model, mode="echo", seed=2, plain=True, arrival_s=0.01)
    assert r.ok, r.errors
    assert r.server.peak_connections < 0.5 * 150
