"""Property tests with many groups: 150-300 clients, so the events model runs
three to five group threads at once, and groups end and are created again as
clients come and go.  Every choice of the fake, the interleaving of the
program threads included, is drawn by Hypothesis (up to ``max_draws`` of
them; the rest of a run gets the simplest answers), so a race shrinks to the
clients and switches it needs.

The scenario is drawn as a handful of numbers (clients, their arrival
spread, how long each stays, lines per client, chunking) and a seed for the
per-client details: this property is about numbers and interleavings, and
300 individually drawn clients would leave Hypothesis no room for the
schedule.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from fakewinsock.testing import ChatModel, ClientFault, ClientScript, EchoModel, FaultPlan, Scenario, check_line_server
from ovserver import Limits, Server

from .properties import SETTINGS, OvserverUnderTest, with_accepts

__all__ = ["GROUP_PROPERTIES", "GROUP_SETTINGS", "groups_scenario", "groups_property", "groups_chat_property",
           "groups_few_property", "groups_burst_property"]

_MS = 1_000_000

#: Fewer examples than the small properties (each runs hundreds of clients), same derandomized settings.
GROUP_SETTINGS = settings(SETTINGS, max_examples=12)

#: Draws of the fake's choices per example: room for the interleavings that matter.
MAX_DRAWS = 1500


def groups_scenario(clients: int, spread_ms: int, linger_ms: int, lines: int, chunk: int, seed: int,
                    reset_every: int = 0) -> Scenario:
    """``clients`` clients arriving over ``spread_ms`` (0: all within 1 ms),
    each sending ``lines`` lines in ``chunk``-byte sends (0: whole lines) and
    staying ``linger_ms`` after its replies; with ``reset_every`` n, every
    n-th client (the 2nd, the n+2nd...) resets up to 3 ms after its last send
    instead.  ``seed`` picks each client's arrival, reset delay and line
    lengths (so that a failure shrinks by the numbers).

    The lingering and the resets are what shows a group that misses a signal:
    the server must see a reset at once (it holds no socket of a client gone
    for a second), but a group thread that missed a hand-over or waits on an
    outdated array notices the reset only when one of its other (quiet)
    clients acts."""
    rng = random.Random(seed)
    out = []
    faults = []
    for i in range(clients):
        text = [b"c%d-%d " % (i, k) + b"x" * rng.randrange(0, 40) for k in range(lines)]
        arrive = rng.randrange(0, max(1, spread_ms) * _MS)
        resets = bool(reset_every) and i % reset_every == 1
        script = ClientScript.of(*text, chunk=chunk, arrive_ns=arrive, linger_ns=0 if resets else linger_ms * _MS)
        out.append(script)
        if resets:
            faults.append(ClientFault(i, "reset", len(script.chunks), rng.randrange(0, 3 * _MS)))
    return Scenario(tuple(out), FaultPlan(clients=tuple(faults)))


def _scenario_args(clients: tuple[int, int], lines: tuple[int, int]) -> dict[str, st.SearchStrategy[int]]:
    return dict(clients=st.integers(*clients), spread_ms=st.sampled_from([0, 30, 100, 300]),
                linger_ms=st.sampled_from([0, 5, 50, 2000]), lines=st.integers(*lines), chunk=st.sampled_from([0, 3]),
                seed=st.integers(0, 2**32 - 1), reset_every=st.sampled_from([0, 2, 5]))


def groups_property(cls: type[Server], clients: tuple[int, int] = (150, 300),
                    settings_: settings = GROUP_SETTINGS, lines: tuple[int, int] = (1, 3)) -> Callable[[], None]:
    """Echo with many groups: every client gets its lines back, exactly."""

    @settings_
    @given(data=st.data(), **_scenario_args(clients, lines))
    def groups(data: st.DataObject, clients: int, spread_ms: int, linger_ms: int, lines: int, chunk: int,
               seed: int, reset_every: int) -> None:
        scenario = groups_scenario(clients, spread_ms, linger_ms, lines, chunk, seed, reset_every)
        check_line_server(lambda ws, address: OvserverUnderTest(cls, ws, address, "echo", Limits()), scenario,
                          EchoModel(), data=data, max_draws=MAX_DRAWS)

    return groups


def groups_chat_property(cls: type[Server], clients: tuple[int, int] = (150, 200),
                         settings_: settings = GROUP_SETTINGS) -> Callable[[], None]:
    """Chat with many groups: each line reaches every other member, whichever
    group (thread) the sender and each receiver are in."""

    @settings_
    @given(data=st.data(), **_scenario_args(clients, (0, 1)))
    def groups_chat(data: st.DataObject, clients: int, spread_ms: int, linger_ms: int, lines: int, chunk: int,
                    seed: int, reset_every: int) -> None:
        scenario = groups_scenario(clients, spread_ms, linger_ms, lines, chunk, seed, reset_every)
        check_line_server(lambda ws, address: OvserverUnderTest(cls, ws, address, "chat", Limits()), scenario,
                          ChatModel(), data=data, max_draws=MAX_DRAWS)

    return groups_chat


def groups_few_property(cls: type[Server]) -> Callable[[], None]:
    """Echo with 2-70 clients (one or two groups), the default example budget:
    what a race needs is usually two or three clients of one group and the
    right interleaving, and a failure shrinks fast from here.  Clients may
    send nothing (0 lines): quiet members keep a group's events still."""
    return groups_property(cls, clients=(2, 70), settings_=SETTINGS, lines=(0, 3))


def groups_burst_property(cls: type[Server], settings_: settings = SETTINGS) -> Callable[[], None]:
    """A burst into a quiet group: client 0 connects and stays 2 s without a
    word; 2-7 more arrive at the same moment 5 ms later, all quiet but the
    last, which resets at once.  The server must close the reset one within
    a second, so each of the burst must have been taken into its group's
    wait array, though the acceptor may hand them all over before the
    group's thread runs once (the interleaving is drawn).

    The server runs with 4 AcceptEx outstanding (``serve --accepts 4``): the
    events model hands at most ``accepts`` connections to its groups ahead of
    their taking them (robust29), so with one the acceptor waits for each
    hand-over to be taken and a group is never handed two at once (a group
    that takes one per wake-up, lost-wake-up, passes: measured on 81ef786,
    the mutant passes with 1 and is caught with 4)."""

    accepting = with_accepts(cls, 4)

    @settings_
    @given(data=st.data(), burst=st.integers(2, 7))
    def groups_burst(data: st.DataObject, burst: int) -> None:
        quiet = ClientScript.of(linger_ns=2000 * _MS)
        late = ClientScript.of(arrive_ns=5 * _MS, linger_ns=2000 * _MS)
        scenario = Scenario((quiet,) + (late,) * burst, FaultPlan(clients=(ClientFault(burst, "reset", 0),)))
        check_line_server(lambda ws, address: OvserverUnderTest(accepting, ws, address, "echo", Limits()), scenario,
                          EchoModel(), data=data, max_draws=MAX_DRAWS)

    return groups_burst


GROUP_PROPERTIES: dict[str, Callable[[type[Server]], Callable[[], None]]] = {
    "groups_burst": groups_burst_property,
    "groups": groups_property,
    "groups_chat": groups_chat_property,
    "groups_few": groups_few_property,
}
