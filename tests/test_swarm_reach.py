"""What three of the swarm's features bring since search15 (issue 10): a crowd's
late wave that also brings the server's last places, accept_faults' storm of
clients that reset in the listen backlog, and a busy server asked to stop
without early_stop.  Each was added for a mutant the recipe found on 2 of 5
seeds (``benchmarks/bench_search.py``; the measurement log's fifteenth round):
these tests say that the swarm draws them, the bench says how often they find
the bugs."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import Phase, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from fakewinsock.testing import Scenario, scenarios
from fakewinsock.testing import _scenarios as sc

_MS = 1_000_000
#: The first example found, not shrunk (shrinking a scenario of 66 clients takes minutes).
_FIND = settings(database=None, max_examples=1000, phases=[Phase.generate], deadline=None, derandomize=True)


def _find(strategy: st.SearchStrategy[Scenario], condition: Callable[[Scenario], bool]) -> Scenario:
    return find(strategy, condition, settings=_FIND)


def test_a_crowds_late_wave_brings_the_last_places_too() -> None:
    """With a client limit of 63 (the events model's groups), the clients that
    come with a late wave are the last two places and those past the limit,
    together: a nearly full server and a burst of accepts across its limit."""
    strategy = scenarios(clients=(1, 4), lines=(0, 1), max_clients=63, features=("crowd",))
    s = _find(strategy, lambda s: len(s.clients) > 63 and max(c.arrive_ns for c in s.clients) > 0)
    late = [i for i, c in enumerate(s.clients) if c.arrive_ns > 0]
    assert late == list(range(61, len(s.clients))), late  # (the last two places: 61 and 62)
    assert len({s.clients[i].arrive_ns for i in late}) == 1
    # A server of one place keeps its one (there is no place before it to bring).
    one = _find(scenarios(clients=(1, 4), lines=(0, 1), max_clients=1, features=("crowd",)),
                lambda s: "crowd" in s.features and len(s.clients) > 1 and max(c.arrive_ns for c in s.clients) > 0)
    assert one.clients[0].arrive_ns == 0 and all(c.arrive_ns > 0 for c in one.clients[1:])


def test_accept_faults_brings_a_storm_of_resets_where_the_client_limit_is_given() -> None:
    """accept_faults, 1 time in 2 where the server's client limit is given: 20
    more clients that arrive together and reset at once, and no AcceptEx
    injection (a failed post left the storm in the backlog, unaccepted)."""
    # (with stopped_readers: a storm's clients reset at once, none stops reading for good and stays 3 s: 20 of
    # them at a server that serves one at a time kept the last client refused for 10 s, a false alarm)
    strategy = scenarios(clients=(1, 4), lines=(0, 1), max_clients=1, features=("accept_faults", "stopped_readers"))
    storm = _find(strategy, lambda s: len(s.clients) > 4 and "stopped_readers" in s.features)
    middle = range(1, len(storm.clients) - 1)
    assert len(middle) >= 20
    assert {f.client for f in storm.faults.clients if f.kind == "reset" and f.before_chunk == -1} == set(middle)
    assert len({storm.clients[i].arrive_ns for i in middle}) == 1
    assert storm.clients[-1].arrive_ns == storm.clients[1].arrive_ns + 20 * _MS
    assert not storm.faults.injections
    # Without a storm the accept still fails meanwhile.
    plain = _find(strategy, lambda s: 3 <= len(s.clients) <= 4 and "accept_faults" in s.features)
    assert [i.call for i in plain.faults.injections] == ["AcceptEx"]
    # (Without a client limit the clients range holds: test_testing's test_swarm_scenarios_are_valid.)


def test_a_busy_server_is_asked_to_stop_without_early_stop_too() -> None:
    """busy_server without early_stop: a stop while the flooders flood, 2 times
    in 3 (it shrinks to none), no sooner than 50 calls and 100 ms after the
    first flooder arrives."""
    strategy = scenarios(clients=(1, 4), lines=(0, 1), max_line=1000, recv_size=16 * 1024, max_queued=16 * 1024,
                         max_clients=1, features=("busy_server",))
    s = _find(strategy, lambda s: s.call_cost_ns is not None and s.faults.stop_at_ns is not None)
    assert s.call_cost_ns is not None and s.faults.stop_at_ns is not None
    first = min(c.arrive_ns for c in s.clients)
    assert s.faults.stop_at_ns >= first + sc._BUSY_START * s.call_cost_ns + sc._BUSY_CONNECTED
    assert "early_stop" in s.features  # (a stop made a difference: named, as a drawn early stop is)
    assert _find(strategy, lambda s: s.call_cost_ns is not None and s.faults.stop_at_ns is None)


def test_a_busy_server_that_serves_fewer_than_come_has_no_small_listen_backlog() -> None:
    """A listen backlog of 1 to 3 at a server slowed to a ms a call that serves one client at a time refused
    the others for longer than a client's retries (10 s): a false alarm on the correct servers.  Where the
    server serves every client at once, the backlog feature stays."""
    def busy(max_clients: int) -> st.SearchStrategy[Scenario]:
        return scenarios(clients=(1, 4), lines=(0, 1), max_clients=max_clients, features=("busy_server", "backlog"))

    with pytest.raises(NoSuchExample):
        _find(busy(1), lambda s: s.call_cost_ns is not None and len(s.clients) > 1 and s.faults.backlog is not None)
    assert _find(busy(4), lambda s: s.call_cost_ns is not None and len(s.clients) > 1 and s.faults.backlog is not None)
