"""Testing toolkit: Hypothesis strategies and a model checker for line-based servers.

Three pieces, usable on their own:

* **Every choice from Hypothesis.**  ``HypothesisChooser(data)`` answers each
  question the fake asks (complete at once or pend, which ready operation
  completes next, where a segment is split, how many bytes a receive takes,
  latencies, faults) with a draw from Hypothesis's ``data`` object.  A failing
  test then shrinks to a minimal schedule: Hypothesis shrinks towards the low
  end, and the fake's "simplest" answer to every question is the low end
  (pend, oldest first, no split, take everything, no latency, no fault).  The
  example database replays the exact schedule.

* **Strategies.**  :func:`fake_configs` (simulation policies),
  :func:`scenarios` (clients: the lines each sends, how the stream is cut into
  sends, when; plus a fault plan) and :func:`fault_plans` (which clients reset
  or leave early and at which point, WSAENOBUFS injected into AcceptEx, WSARecv
  or WSASend at a moment, a tiny listen backlog so connections are refused and
  retried).

* **A model checker.**  :func:`check_line_server` runs *your* server on a fake
  with the scripted clients of a :class:`Scenario` and checks every byte each
  client receives against a :class:`LineModel` (:class:`EchoModel`,
  :class:`ChatModel`, or your own), and more: no client is closed or reset
  unasked, every client is served in time, the server does not spin (a Winsock
  call budget, and an idle period in which it must stay quiet), it stops on
  request and leaks nothing.  Any failure raises :class:`LineServerFailure`
  with a report (size of the scenario, the schedule's seed or number of
  Hypothesis draws) and the tail of the fake's trace.

The server is yours: anything with ``serve()`` (run until stopped) and
``stop()`` (called by a simulated actor, from inside the fake's scheduler: set
a flag and ``ws.signal_event(your_wake_event)``; no Winsock calls), built by a
factory from the fake and the address to listen on::

    from hypothesis import given, strategies as st
    from fakewinsock.testing import EchoModel, check_line_server, scenarios

    @given(scenario=scenarios(), data=st.data())
    def test_echo(scenario, data):
        check_line_server(lambda ws, address: MyServer(ws, address), scenario, EchoModel(), data=data)

Speed: a run takes a millisecond or so, and the schedule's draws bypass
``data.draw`` (several times cheaper).  Hypothesis's *explain* phase, though,
re-runs a failing example under a line tracer that follows the whole fake,
which costs seconds per failure; leave it out in fake-driven tests::

    @settings(phases=[p for p in Phase if p is not Phase.explain])

Hypothesis is a test dependency; importing this package without it fails with
a clear ImportError.

The parts, one module each: :mod:`._chooser` (the chooser and :func:`fake_configs`),
:mod:`._scenarios` (the scenario data, the swarm's features and the strategies),
:mod:`._models` (what a correct server sends) and :mod:`._checker`
(:func:`check_line_server`).  Import from ``fakewinsock.testing`` itself: the
parts are private.
"""

from __future__ import annotations

try:
    import hypothesis  # noqa: F401 (checked first: a clear message without it)
except ImportError as e:  # pragma: no cover
    raise ImportError("fakewinsock.testing needs Hypothesis: pip install hypothesis") from e

from .._preempt import PreemptingChooser
from ._checker import CountingServer, LineServerFailure, LineServerReport, ServerUnderTest, check_line_server
from ._chooser import HypothesisChooser, fake_configs
from ._models import ChatModel, EchoModel, LineModel
from ._scenarios import FEATURES, ClientFault, ClientScript, FaultPlan, Injection, Scenario, fault_plans, scenarios

__all__ = [
    "HypothesisChooser",
    "PreemptingChooser",
    "fake_configs",
    "ClientScript",
    "ClientFault",
    "Injection",
    "FaultPlan",
    "FEATURES",
    "Scenario",
    "scenarios",
    "fault_plans",
    "LineModel",
    "EchoModel",
    "ChatModel",
    "ServerUnderTest",
    "CountingServer",
    "check_line_server",
    "LineServerReport",
    "LineServerFailure",
]
