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

from fakewinsock.testing import ClientScript as ClientScriptT
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


@pytest.mark.parametrize("faults", [False, True])
def test_a_busy_server_is_not_stopped_when_stops_are_ruled_out(faults: bool) -> None:
    """``faults=False`` or ``early_stop=False`` rules busy_server's stop out as well: the busy server still
    comes (it is traffic, not a fault), never a stop, and early_stop is not named among the features."""
    strategy = scenarios(clients=(1, 4), lines=(0, 1), max_line=1000, recv_size=16 * 1024, max_queued=16 * 1024,
                         max_clients=1, features=("busy_server",), faults=faults, early_stop=not faults)
    assert _find(strategy, lambda s: s.call_cost_ns is not None)
    with pytest.raises(NoSuchExample):
        _find(strategy, lambda s: s.faults.stop_at_ns is not None or "early_stop" in s.features)


def test_a_busy_server_that_serves_fewer_than_come_has_no_small_listen_backlog() -> None:
    """A listen backlog of 1 to 3 at a server slowed to a ms a call that serves one client at a time refused
    the others for longer than a client's retries (10 s): a false alarm on the correct servers.  Where the
    server serves every client at once, the backlog feature stays."""
    def busy(max_clients: int) -> st.SearchStrategy[Scenario]:
        return scenarios(clients=(1, 4), lines=(0, 1), max_clients=max_clients, features=("busy_server", "backlog"))

    with pytest.raises(NoSuchExample):
        _find(busy(1), lambda s: s.call_cost_ns is not None and len(s.clients) > 1 and s.faults.backlog is not None)
    assert _find(busy(4), lambda s: s.call_cost_ns is not None and len(s.clients) > 1 and s.faults.backlog is not None)


# search16 (issue 10): features that defeated each other no longer come together, and boundary sends come where
# a server's receive meets them whole.  Each was measured on the mutant it is for (the measurement log's
# sixteenth round); these tests say that the swarm draws them so.


def test_a_crowds_fillers_end_with_no_unterminated_tail() -> None:
    """A crowd's first max_clients clients fill the server and stay: none ends by an unterminated last line,
    whose FIN comes right behind it (with tails half a crowd left at once, and the server never filled: 0
    failures in 62 crowds of group-room-ignores-inbox, 7 without).  Those past the limit may still."""
    strategy = scenarios(clients=(1, 4), lines=(0, 2), max_line=1000, max_clients=8,
                         features=("crowd", "unterminated"))
    s = _find(strategy, lambda s: len(s.clients) > 8 and any(c.tail for c in s.clients[8:]))
    assert not any(c.tail for c in s.clients[:8]), [i for i, c in enumerate(s.clients) if c.tail]
    # (without a crowd, clients still end by their tails)
    assert _find(strategy, lambda s: "crowd" not in s.features and any(c.tail for c in s.clients))


def test_no_accept_failure_is_injected_into_a_crowd_that_fills_a_server_serving_tens() -> None:
    """A crowd at a server that serves tens at once is a burst of accepts across its limit; an AcceptEx post
    failing meanwhile held the crowd back for a 50 ms retry (1 failure in 66 crowds of group-room-ignores-inbox,
    against 1 in 8 without), as a small listen backlog would.  Where the server serves at most 3 at once, a
    crowd still meets injections (a full server and a failed accept)."""
    def crowd(max_clients: int) -> st.SearchStrategy[Scenario]:
        return scenarios(clients=(1, 4), lines=(0, 1), max_clients=max_clients, features=("crowd", "injections"))

    with pytest.raises(NoSuchExample):
        _find(crowd(8), lambda s: len(s.clients) > 8 and bool(s.faults.injections))
    assert _find(crowd(8), lambda s: len(s.clients) <= 4 and bool(s.faults.injections))
    assert _find(crowd(1), lambda s: len(s.clients) > 1 and "crowd" in s.features and bool(s.faults.injections))


def _boundary_first(c: ClientScriptT, size: int) -> bool:
    return bool(c.chunks) and len(c.chunks[0]) == size and (len(c.chunks) == 1 or c.gaps_ns[1] >= sc._EXACT_PAUSE)


def test_a_boundary_send_comes_first_and_alone() -> None:
    """boundary_sends: the send of a limit's size is a client's first, a pause before its next send, so that the
    server's first receive of the client, of exactly its receive buffer, meets it whole even when the client
    waited in the listen backlog while its later sends piled up behind it (a server serving one client at a
    time: the send last, after a pause, came misaligned in a receive of what had piled up)."""
    strategy = scenarios(clients=(1, 4), lines=(1, 3), max_line=1000, recv_size=16 * 1024, max_queued=16 * 1024,
                         max_clients=1, features=("boundary_sends",))
    s = _find(strategy, lambda s: "boundary_sends" in s.features and any(len(c.chunks) > 1 for c in s.clients))
    assert any(_boundary_first(c, n) for c in s.clients for n in (16383, 16384, 16385)), s


def test_a_chat_member_that_talks_sends_boundary_sends_too() -> None:
    """departures gives every client a role (a leaver, talkers): a talker, an ordinary member otherwise, sends a
    boundary send too, as does the client that must be served after accept_faults' resets."""
    strategy = scenarios(clients=(2, 4), lines=(1, 2), max_line=1000, recv_size=16 * 1024, max_queued=16 * 1024,
                         features=("boundary_sends", "departures"))
    s = _find(strategy, lambda s: "departures" in s.features and any(_boundary_first(c, 16384) for c in s.clients[1:]))
    assert s.faults.fault_of(0) is not None or s.clients[0].pause_at_ns is not None  # (client 0: the leaver)
    late = scenarios(clients=(3, 4), lines=(1, 2), recv_size=16 * 1024, features=("boundary_sends", "accept_faults"))
    s = _find(late, lambda s: "accept_faults" in s.features and _boundary_first(s.clients[-1], 16384))
    assert s.clients[-1].arrive_ns > s.clients[1].arrive_ns


def test_the_swarm_injects_failures_into_receives_and_sends_by_default() -> None:
    """WSAENOBUFS (or any of ``errors``) on WSARecv and WSASend as well as on AcceptEx, by default: a server posts
    all three and may see each fail at once (redteam6: with AcceptEx alone the README recipe never reached a server
    that leaves a connection idle when a post fails).  The plain traffic keeps AcceptEx alone."""
    strategy = scenarios(clients=(1, 4), lines=(0, 1), features=("injections",))
    def injects(call: str) -> Callable[[Scenario], bool]:
        return lambda s: any(i.call == call for i in s.faults.injections)

    for call in ("WSARecv", "WSASend", "AcceptEx"):
        assert _find(strategy, injects(call))
    with pytest.raises(NoSuchExample):
        _find(scenarios(clients=(1, 2), lines=(0, 1), swarm=False),
              lambda s: any(i.call != "AcceptEx" for i in s.faults.injections))


# search17 (issue 10): a keep-alive connection that the others come and go around (the measurement log's
# fourteenth round).


def test_spread_arrivals_brings_a_keep_alive_connection_first() -> None:
    """spread_arrivals, 2 times in 3 without a crowd: the first client, an ordinary one, comes first, sends
    nothing, takes no fault and stays 1.5 s, while the others come and go: a server that misses the others'
    completions while one quiet connection is all it watches keeps an ended client's socket past the checker's
    second (an events server that put a new client into a group's wait array while the group's thread waited
    on it: 9 failures in 200 examples with it, none without)."""
    strategy = scenarios(clients=(2, 4), lines=(1, 2), features=("spread_arrivals", "resets"))
    s = _find(strategy, lambda s: s.clients[0].linger_ns >= sc._KEEP_ALIVE
              and any(c.arrive_ns > 0 for c in s.clients[1:]))
    first = s.clients[0]
    assert first.arrive_ns == 0 and not first.chunks and not first.tail, first
    assert s.faults.fault_of(0) is None and first.pause_at_ns is None
    assert "spread_arrivals" in s.features
    # (the others still send and may reset; without spread_arrivals, or in a crowd, no client stays so)
    assert _find(strategy, lambda s: s.clients[0].linger_ns >= sc._KEEP_ALIVE and any(
        s.faults.fault_of(i) is not None for i in range(1, len(s.clients))))
    with pytest.raises(NoSuchExample):
        _find(scenarios(clients=(2, 4), lines=(1, 2), features=("resets",)),
              lambda s: s.clients[0].linger_ns >= sc._KEEP_ALIVE)
    with pytest.raises(NoSuchExample):
        _find(scenarios(clients=(2, 4), lines=(1, 2), max_clients=2, features=("spread_arrivals", "crowd")),
              lambda s: "crowd" in s.features and s.clients[0].linger_ns >= sc._KEEP_ALIVE)


def _newline_splits(s: ClientScriptT, max_line: int) -> list[int]:
    """The sends of ``s`` that begin with a newline whose line, run into the next, is over ``max_line``, after a
    send that ends with that line's bytes and holds another newline."""
    return [i for i in range(1, len(s.chunks)) if s.chunks[i].startswith(b"\n") and b"\n" in s.chunks[i - 1]
            and not s.chunks[i - 1].endswith(b"\n") and len(s.chunks[i - 1].rsplit(b"\n", 1)[1]) + 1
            + len(s.chunks[i][1:].split(b"\n", 1)[0]) > max_line]


def test_long_lines_sends_a_newline_with_the_long_line_after_it() -> None:
    """long_lines' newline split (bpidle33, for scanned-counts-newline): with a known line limit, a line before a
    longer one (run into it: over the limit) ends a send, after another line, and its newline begins the next
    send, with the long line, 1 ms later (a gap not drawn): the traffic in which echo's fast path, told one
    byte too many holds no newline, skips that newline and refuses the two lines as one too long."""
    strategy = scenarios(clients=(1, 1), lines=(3, 4), max_line=1000, max_clients=1, features=("long_lines",))
    s = _find(strategy, lambda s: bool(_newline_splits(s.clients[0], 1000)))
    c = s.clients[0]
    at = _newline_splits(c, 1000)[0]
    assert c.gaps_ns[at] == sc._NEWLINE_SPLIT_NS
    assert "long_lines" in s.features


@pytest.mark.parametrize(("chunks", "split"), [
    ([b"a\nbc\n" + b"x" * 999 + b"\n"], [b"a\nbc", b"\n" + b"x" * 999 + b"\n"]),  # a line before a long one
    ([b"a\n\n" + b"x" * 1000 + b"\nz\n"], [b"a\n", b"\n" + b"x" * 1000 + b"\nz\n"]),  # an empty line before one
    ([b"ab", b"c\nd\n" + b"x" * 999 + b"\n"], [b"ab", b"c\nd", b"\n" + b"x" * 999 + b"\n"]),  # in a later send
    ([b"bc\n" + b"x" * 999 + b"\n"], None),  # no newline before the line in its send
    ([b"a\nbc\n" + b"x" * 997 + b"\n"], None),  # run together, within the limit
    ([b"a\n" + b"x" * 999 + b"\nbc\n"], None),  # the line after is shorter
    # more than max_line bytes of lines before the line in its send (from the start of the line the send began in)
    ([b"a" * 600, b"a\n" + b"c" * 500 + b"\nb\n" + b"x" * 999 + b"\n"], None),
])
def test_the_newline_split(chunks: list[bytes], split: list[bytes] | None) -> None:
    swarm = sc._Swarm((1, 1), (0, 4), None, st.just(0), st.just(0), st.just(0), ("long_lines",), (), (), 1000,
                      None, 1)
    out = list(chunks)
    at = swarm._newline_split(out)
    assert (out, at) == ((split, len(split) - 1) if split is not None else (chunks, -1))
    unknown = sc._Swarm((1, 1), (0, 4), None, st.just(0), st.just(0), st.just(0), ("long_lines",), (), (), None,
                        None, 1)
    assert unknown._newline_split(list(chunks)) == -1  # (no line limit known: no split)
