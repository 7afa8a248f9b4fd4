"""ovserver's property tests on the testing toolkit, as bodies to run on any server class.

Each ``*_property(server_class)`` returns a Hypothesis test (call it to run
it) that checks that server class with :func:`fakewinsock.testing.check_line_server`
and every choice of the fake drawn from Hypothesis.  ``tests/test_mutants.py``
runs the same bodies on the correct servers (they must pass) and on the
mutants of :mod:`tests.mutants.ovserver_mutants` (each must fail).

The settings are Hypothesis's default example budget (100 examples),
derandomized and without the example database, so that the results are the
same on every machine and every run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException

from fakewinsock import FakeConfig, FakeWinsock
from fakewinsock.testing import (
    ChatModel,
    ClientScript,
    EchoModel,
    FaultPlan,
    Scenario,
    check_line_server,
    scenarios,
)
from ovserver import Limits, Mode, Server, ServerConfig

__all__ = ["OvserverUnderTest", "PROPERTIES", "SETTINGS", "RECIPE_SETTINGS", "recipe_property", "echo_property",
           "chat_property", "flood_property", "recipe_bp_property", "storm_stop_property",
           "STORM_STOP_SETTINGS"]

SETTINGS = settings(max_examples=100, derandomize=True, database=None, deadline=None,
                    report_multiple_bugs=False, print_blob=False,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_MS = 1_000_000
#: The fake's policy of the plain echo and chat properties: every yes/no question of the fake (an
#: immediate completion, a split, a partial receive, a background step) answered yes 1 time in 2, the
#: rate every such Hypothesis draw had before the chooser honoured the configured one (check_line_server's
#: default config has splits and partial receives 3 times in 10, background steps 2 in 10): these
#: properties are about schedules, and a receive that completes at once needs its data there first.
EVEN = FakeConfig(immediate=0.5, split=0.5, partial_recv=0.5, background=0.5)


class OvserverUnderTest:
    """An ovserver server class, as :func:`check_line_server` drives a server."""

    def __init__(self, cls: type[Server], ws: FakeWinsock, address: tuple[str, int], mode: str = "echo",
                 limits: Limits | None = None, stall_timeout_ms: int = 0, idle_timeout_ms: int = 0) -> None:
        self.ws = ws
        self.server = cls(ws, ServerConfig(host=address[0], port=address[1], model=cls.model, mode=Mode(mode),
                                           limits=limits if limits is not None else Limits(),
                                           stall_timeout_ms=stall_timeout_ms, idle_timeout_ms=idle_timeout_ms))

    def serve(self) -> None:
        stats = self.server.run()
        # The fake completes every operation a stop cancels, so a stop that
        # gives up waiting (bounded, as on a real stack it must be) means the
        # server failed to reap them.
        assert stats.abandoned == 0, f"the stop gave up on {stats.abandoned} operations it never reaped"

    def stop(self) -> None:
        self.server.request_stop(signal=self.ws.signal_event)

    def counts(self) -> dict[str, int]:
        """How the server counted its clients' ends (check_line_server checks them against what the clients
        did: ServerStats is what ``ovserver serve`` reports)."""
        s = self.server.stats
        # "closed": the connections it closed for a cause of its own (stalled ones are in cut_off).
        return {"ended": s.ended, "reset": s.reset, "closed": s.cut_off + s.hung_up + s.timed_out + s.closed_at_stop,
                "peak": s.peak_connections, "accepted": s.accepted}


def echo_property(cls: type[Server], settings_: settings = SETTINGS) -> Callable[[], None]:
    """Echo (the plain traffic: swarm=False; the README recipe, recipe_property,
    is the swarm): up to 4 clients, any chunking and schedule, resets, early leaves,
    WSAENOBUFS on any post, a tiny backlog, a stop mid-session, and at most 1,
    2 or any number of clients served at once."""

    @settings_
    @given(scenario=scenarios(clients=(1, 4), inject=("AcceptEx", "WSARecv", "WSASend"), swarm=False),
           max_clients=st.sampled_from([10_000, 1, 2]), data=st.data())
    def echo(scenario: Scenario, max_clients: int, data: st.DataObject) -> None:
        limits = Limits(max_clients=max_clients)
        check_line_server(lambda ws, address: OvserverUnderTest(cls, ws, address, "echo", limits), scenario,
                          EchoModel(), data=data, config=EVEN)

    return echo


def chat_property(cls: type[Server]) -> Callable[[], None]:
    """Chat: up to 4 clients greeted before anyone talks; every line reaches
    every other client exactly (a prefix, for clients that reset or leave)."""

    @SETTINGS
    @given(scenario=scenarios(clients=(1, 4), inject=("AcceptEx",), swarm=False), data=st.data())
    def chat(scenario: Scenario, data: st.DataObject) -> None:
        check_line_server(lambda ws, address: OvserverUnderTest(cls, ws, address, "chat"), scenario, ChatModel(),
                          data=data, config=EVEN)

    return chat


def flood_property(cls: type[Server]) -> Callable[[], None]:
    """A flood: 48 to 80 clients at once, each sends a line and stays 5 ms
    after its echo; all are served (with the events model, the ones past 63
    wait in the listen backlog).  The clients are alike, so the scenario is
    drawn as their number (it shrinks by bisection) and the schedule comes
    from a seed: this property is about numbers."""

    @SETTINGS
    @given(clients=st.integers(48, 80), seed=st.integers(0, 2**32 - 1))
    def flood(clients: int, seed: int) -> None:
        scenario = Scenario((ClientScript.of(b"hello", linger_ns=5 * _MS),) * clients)
        check_line_server(lambda ws, address: OvserverUnderTest(cls, ws, address, "echo"), scenario, EchoModel(),
                          seed=seed)

    return flood


#: The storm-stop property's budget in the default suite (the mutant it is for is caught at its 9th example).
STORM_STOP_SETTINGS = settings(SETTINGS, max_examples=40)


def storm_stop_property(cls: type[Server], settings_: settings = SETTINGS) -> Callable[[], None]:
    """A stop during a connect storm (a Ctrl+C while connections pour in): 20 to 40 clients connect at
    the same instant, each sends a line and stays connected (3 s), and the server is asked to stop 20 us
    to 1.5 ms later, while it is still accepting them: the stop comes between an accept and what the
    server does with the new connection (the events model's hand-over to a group, an iocp accept packet
    still queued, the routines model's accept).  Every client must be served or closed by the stop, and
    the stop must leave nothing open.  The swarm's stops come at fixed moments (300 us and more after a
    crowd's last arrival) and simulate's after the clients are served, where an accept's handling is rarely
    under way: a few microseconds in every accept (tests/mutants/red5_mutants.py, stop-before-inbox)."""

    @settings_
    @given(clients=st.integers(20, 40), stop_us=st.integers(20, 1500), data=st.data())
    def storm_stop(clients: int, stop_us: int, data: st.DataObject) -> None:
        scenario = Scenario((ClientScript.of(b"hi", linger_ns=3000 * _MS),) * clients,
                            FaultPlan(stop_at_ns=stop_us * 1000))
        check_line_server(lambda ws, address: OvserverUnderTest(cls, ws, address, "echo"), scenario, EchoModel(),
                          data=data)

    return storm_stop


PROPERTIES: dict[str, Callable[[type[Server]], Callable[[], None]]] = {
    "echo": echo_property,
    "chat": chat_property,
    "flood": flood_property,
}


#: The README's "Testing your own server" recipe, as written: 200 examples, no
#: explain phase.  Derandomized and without the database here, so that the
#: result is the same on every run (benchmarks/bench_search.py varies the seed).
RECIPE_SETTINGS = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                           report_multiple_bugs=False, print_blob=False,
                           phases=[p for p in Phase if p is not Phase.explain],
                           suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


#: ovserver's configurations the recipe is aimed at: tight limits (lines over
#: 1000 bytes refused, 16 KiB queued at most per client; in echo, one client
#: served at a time, the others wait in the listen backlog: a full server) and
#: the defaults (64 KiB lines, 1 MiB queued, 10000 clients).  Chat keeps the
#: default client limit with tight limits too: its clients wait for every
#: other to be greeted before they talk.
RECIPE_LIMITS = (Limits(max_line=1000, max_queued=16 * 1024, max_clients=1), Limits())


def recipe_property(cls: type[Server], mode: str = "echo", settings_: settings = RECIPE_SETTINGS,
                    limits: Sequence[Limits] = RECIPE_LIMITS, observe: Callable[[bool], None] | None = None,
                    features: Sequence[str] | None = None,
                    on_failure: Callable[[Exception], None] | None = None,
                    stall_timeout_ms: int = 0, client_deadline_s: float = 30.0,
                    idle_timeout_ms: int = 0, preempt: bool = False) -> Callable[[], None]:
    """The README recipe aimed at ovserver: ``scenarios(clients=(1, 4),
    lines=(0, 4))`` told the server's limits and receive buffer (so that the
    swarm's long lines, big sends and crowds aim at them) and whether it chats
    (``chat``: with back-pressure, a member that ends over the mark), and the model of
    ``mode`` with the same limits (and ``resets_cut_sends``: ovserver resets a
    connection it closes with a send in flight); the server runs with one of ``limits``
    (drawn first, shrinking towards the first).  ``observe(failed)`` is called
    after each example that ran to its end or failed (benchmarks count the
    examples until the first failure); not for one that Hypothesis stopped
    because it ran out of data (it was counted as a failure until 2026-12-04,
    which made the examples-to-find counts too low).  With ``on_failure``, a
    failing example is passed to it and not raised, so that Hypothesis goes on
    and every failing example of the budget is seen (``tools/false_alarms.py``
    counts them on the correct servers); Hypothesis's own exceptions are
    raised as ever.  ``stall_timeout_ms``: back-pressure's slow-consumer
    time-out, for ``limits`` with a ``high_water`` (the model is told it);
    ``client_deadline_s``: every client that reads is served within it (check_line_server's);
    ``idle_timeout_ms``: the server's idle time-out (``serve --idle-timeout-ms``; 0: off), told to the model
    and to ``scenarios()`` (whose idle_clients go idle across it); ``preempt``: thread switches favour
    synchronization calls (check_line_server's, drawn on or off per example)."""
    recv_size = ServerConfig().recv_size
    setups = []
    for lim in limits:
        if mode == "chat" and lim.max_clients < Limits().max_clients:
            lim = replace(lim, max_clients=Limits().max_clients)
        served_at_once = min(63, lim.max_clients) if cls.model == "events" else lim.max_clients
        model = (EchoModel if mode == "echo" else ChatModel)(max_line=lim.max_line, max_queued=lim.max_queued,
                                                             high_water=lim.high_water,
                                                             idle_timeout_ms=idle_timeout_ms or None,
                                                             max_clients=lim.max_clients,
                                                             resets_cut_sends=True,
                                                             stall_timeout_ms=(stall_timeout_ms or None
                                                                               if lim.high_water else None))
        strategy = scenarios(clients=(1, 4), lines=(0, 4), max_line=lim.max_line, recv_size=recv_size,
                             max_clients=served_at_once, max_queued=lim.max_queued, features=features,
                             idle_timeout_ms=idle_timeout_ms or None, high_water=lim.high_water or None,
                             chat=mode == "chat")
        setups.append((lim, model, strategy))

    @settings_
    @given(setup=st.sampled_from(range(len(setups))), data=st.data())
    def recipe(setup: int, data: st.DataObject) -> None:
        lim, model, strategy = setups[setup]
        scenario = data.draw(strategy, label="scenario")
        try:
            check_line_server(lambda ws, address: OvserverUnderTest(cls, ws, address, mode, lim, stall_timeout_ms,
                                                                    idle_timeout_ms),
                              scenario, model, data=data, client_deadline_s=client_deadline_s,
                              preempt=preempt)
        except Exception as e:  # a failure (not Hypothesis ending an example that ran out of data: a BaseException)
            if observe is not None:
                observe(True)
            if on_failure is None or isinstance(e, HypothesisException):
                raise
            on_failure(e)
            return
        if observe is not None:
            observe(False)

    return recipe


def recipe_chat_property(cls: type[Server]) -> Callable[[], None]:
    """The README recipe, chat mode."""
    return recipe_property(cls, "chat")


#: The recipe aimed at ovserver configured with back-pressure (``serve --high-water --stall-timeout-ms``),
#: the model told (``high_water``: a client may be reset while more than half the mark is owed to it):
#: tight limits with a 4 KiB mark, and the default limits with a 64 KiB mark; a 100 ms stall time-out
#: (the swarm's readers pause for 20 or 150 ms).  The plain recipe's configurations have no back-pressure,
#: so its code is reached only here.
RECIPE_BP_LIMITS = (Limits(max_line=1000, max_queued=16 * 1024, max_clients=1, high_water=4 * 1024),
                    Limits(high_water=64 * 1024))
RECIPE_BP_STALL_MS = 100
#: ... and what the slow-consumer time-out promises in chat: no member that reads waits long for a stalled
#: one (a member that stops reading for good holds the others back for its 100 ms at most, not until it
#: leaves, which the swarm's stuck readers do 3 s after their last send), so every chat client that reads is
#: served within 2 s (the plain recipe: 30 s; the swarm's slowest correct chat runs take under a second).
#: Not in echo: there the tight configuration serves one client at a time, and a client that stays (a stuck
#: reader under the mark, an idle one before a stop) rightly keeps the next one waiting for seconds.
RECIPE_BP_DEADLINE_S = 2.0


def recipe_bp_property(cls: type[Server], mode: str = "echo", settings_: settings = RECIPE_SETTINGS,
                       observe: Callable[[bool], None] | None = None,
                       on_failure: Callable[[Exception], None] | None = None,
                       features: Sequence[str] | None = None) -> Callable[[], None]:
    """The README recipe, ovserver with back-pressure (:data:`RECIPE_BP_LIMITS`)."""
    return recipe_property(cls, mode, settings_, RECIPE_BP_LIMITS, observe, features, on_failure=on_failure,
                           stall_timeout_ms=RECIPE_BP_STALL_MS,
                           client_deadline_s=RECIPE_BP_DEADLINE_S if mode == "chat" else 30.0)


PROPERTIES["recipe"] = recipe_property
PROPERTIES["recipe_chat"] = recipe_chat_property
PROPERTIES["recipe_bp"] = recipe_bp_property
PROPERTIES["recipe_bp_chat"] = lambda cls: recipe_bp_property(cls, "chat")

#: The recipe aimed at ovserver with an idle time-out (``serve --idle-timeout-ms``; ServerConfig's default, 0,
#: has none, so the plain recipe never reaches that code): 100 ms, the shortest of simulate's, so that the
#: swarm's idle_clients (just under, at and just over it) cost tenths of a second of virtual time.
RECIPE_IDLE_MS = 100


def recipe_idle_property(cls: type[Server], mode: str = "echo", settings_: settings = RECIPE_SETTINGS,
                         observe: Callable[[bool], None] | None = None,
                         on_failure: Callable[[Exception], None] | None = None,
                         features: Sequence[str] | None = None) -> Callable[[], None]:
    """The README recipe, ovserver with an idle time-out of :data:`RECIPE_IDLE_MS` (in chat, a member alone
    gets nothing back for its lines, so only its lines keep it from being idle)."""
    return recipe_property(cls, mode, settings_, observe=observe, features=features, on_failure=on_failure,
                           idle_timeout_ms=RECIPE_IDLE_MS)


PROPERTIES["recipe_idle"] = recipe_idle_property
PROPERTIES["recipe_idle_chat"] = lambda cls: recipe_idle_property(cls, "chat")

#: The recipe aimed at ovserver with back-pressure and an idle time-out both (``serve --high-water
#: --stall-timeout-ms --idle-timeout-ms``; red11): :data:`RECIPE_BP_LIMITS`, an idle time-out of
#: :data:`RECIPE_IDLE_MS`, and a slow-consumer time-out of a second, so that the swarm's backpressure reader's
#: 150 ms pause holds it back across an idle check rather than having it cut off (with the 100 ms of
#: recipe_bp it is cut off first): the server's idle clock of a client held back stops and must start again
#: when it is read on (``Server._read_on``), which only this configuration reaches.  Echo only: the
#: checker's idle watch follows a client held back only in echo (there it is held back by its own queue,
#: whose bytes a look sees on their way; in chat by another member's).  The model is told the stall time-out
#: too (``stall_timeout_ms``): the watch's looks see whether the server holds a client back (no receive
#: posted on its connection), and a close of a held-back client that neither the idle time-out nor a limit
#: explains fails (``_Client.held_at_close``; red12's idle-times-out-held-back, held36).
RECIPE_BP_IDLE_STALL_MS = 1000


def recipe_bp_idle_property(cls: type[Server], mode: str = "echo", settings_: settings = RECIPE_SETTINGS,
                            observe: Callable[[bool], None] | None = None,
                            on_failure: Callable[[Exception], None] | None = None,
                            features: Sequence[str] | None = None) -> Callable[[], None]:
    """The README recipe, ovserver with back-pressure (:data:`RECIPE_BP_LIMITS`,
    :data:`RECIPE_BP_IDLE_STALL_MS`) and an idle time-out of :data:`RECIPE_IDLE_MS`."""
    if mode != "echo":
        raise ValueError("recipe_bp_idle is echo's only")
    return recipe_property(cls, mode, settings_, RECIPE_BP_LIMITS, observe, features, on_failure=on_failure,
                           stall_timeout_ms=RECIPE_BP_IDLE_STALL_MS, idle_timeout_ms=RECIPE_IDLE_MS)


PROPERTIES["recipe_bp_idle"] = recipe_bp_idle_property

#: The recipe aimed at ovserver as configured: (back-pressure, idle time-out) -> the property's name and the
#: property (the false-alarm tools' ``--backpressure`` / ``--idle``: ``tools/false_alarms.py`` and
#: ``benchmarks/bench_search.py --false-alarms``).  Only the plain recipe takes ``preempt``; recipe_bp_idle
#: refuses chat.
CONFIGURED_RECIPES: dict[tuple[bool, bool], tuple[str, Callable[..., Callable[[], None]]]] = {
    (False, False): ("recipe", recipe_property), (True, False): ("recipe_bp", recipe_bp_property),
    (False, True): ("recipe_idle", recipe_idle_property), (True, True): ("recipe_bp_idle", recipe_bp_idle_property)}


def with_accepts(cls: type[Server], n: int) -> type[Server]:
    """``cls`` with ``n`` AcceptEx outstanding (the properties build their own configuration)."""

    class Accepting(cls):  # type: ignore[valid-type,misc]
        def __init__(self, ws: Any, config: ServerConfig | None = None) -> None:
            super().__init__(ws, replace(config if config is not None else ServerConfig(), accepts=n))

    Accepting.__name__ = f"{cls.__name__}Accepts{n}"
    return Accepting


#: (recipe_shapes, the recipe naming the swarm's then opt-in shapes hangup_edges and deaf_drains, search28, went
#: with shapes29: the default swarm draws them, so the plain recipe is that recipe.)


#: The recipe aimed at ovserver keeping four AcceptEx outstanding (``serve --accepts``; ServerConfig and
#: OvserverUnderTest keep the lecture notes' one, with which no other accept slot can complete meanwhile).
PROPERTIES["recipe_accepts"] = lambda cls: recipe_property(with_accepts(cls, 4))
