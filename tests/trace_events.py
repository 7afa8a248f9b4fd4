"""A checker for Chrome's Trace Event Format (the JSON that ui.perfetto.dev and
chrome://tracing load), as far as fakewinsock's export uses it.

From the format's document: the JSON object form holds ``traceEvents``; every
event has ``ph`` (its phase), ``pid`` and ``tid``; all but metadata (``M``)
have ``ts`` (microseconds); duration events (``B``/``E``) nest on their
thread and come in increasing time order there; complete events (``X``) have
``dur``; instants (``i``) a scope ``s`` of ``g``, ``p`` or ``t``; flow events
(``s``, ``t``, ``f``) an ``id`` and ``cat``, bind to the slice enclosing them
(``f`` with ``"bp": "e"``) or to the next slice on their thread (``f``
without it), one start and one end per flow.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

_PHASES = set("BEXisftMC")
_META = {"process_name": "name", "thread_name": "name", "process_sort_index": "sort_index",
         "thread_sort_index": "sort_index"}


@dataclass
class Flow:
    phases: list[str] = field(default_factory=list)
    ts: list[float] = field(default_factory=list)
    tracks: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class Checked:
    """What the checker found, for tests to look into."""

    events: list[dict[str, object]]
    flows: dict[tuple[str, object], Flow]
    track_names: dict[tuple[int, int], str]
    #: (track, name, begin ts, end ts, args of B and E merged) of each B/E slice.
    slices: list[tuple[tuple[int, int], str, float, float, dict[str, object]]]


def _fail(i: int, ev: object, why: str) -> AssertionError:
    return AssertionError(f"trace event #{i} {ev!r}: {why}")


def check_trace_events(doc: object) -> Checked:
    """Check ``doc`` (parsed JSON); AssertionError says what is wrong."""
    if not isinstance(doc, dict) or not isinstance(doc.get("traceEvents"), list):
        raise AssertionError("not the JSON object form: no traceEvents list")
    if doc.get("displayTimeUnit", "ms") not in ("ms", "ns"):
        raise AssertionError(f"displayTimeUnit must be ms or ns, not {doc['displayTimeUnit']!r}")
    events: list[dict[str, object]] = doc["traceEvents"]
    last_ts: dict[tuple[int, int], float] = {}
    stacks: dict[tuple[int, int], list[tuple[str, float, dict[str, object]]]] = defaultdict(list)
    flows: dict[tuple[str, object], Flow] = {}
    awaiting_slice: dict[tuple[int, int], list[tuple[int, tuple[str, object]]]] = defaultdict(list)
    names: dict[tuple[int, int], str] = {}
    used: set[tuple[int, int]] = set()
    slices: list[tuple[tuple[int, int], str, float, float, dict[str, object]]] = []
    for i, ev in enumerate(events):
        if not isinstance(ev, dict):
            raise _fail(i, ev, "not an object")
        ph = ev.get("ph")
        if not isinstance(ph, str) or ph not in _PHASES:
            raise _fail(i, ev, f"unknown phase {ph!r}")
        pid, tid = ev.get("pid"), ev.get("tid")
        if not isinstance(pid, int) or not isinstance(tid, int):
            raise _fail(i, ev, "pid and tid must be integers")
        track = (pid, tid)
        name = ev.get("name")
        if ph != "E" and not isinstance(name, str):
            raise _fail(i, ev, "name must be a string")
        if "args" in ev and not isinstance(ev["args"], dict):
            raise _fail(i, ev, "args must be an object")
        if ph == "M":
            arg_key = _META.get(str(name))
            args = ev.get("args")
            if arg_key is None or not isinstance(args, dict) or arg_key not in args:
                raise _fail(i, ev, f"metadata {name!r} needs args.{arg_key}")
            if name == "thread_name":
                names[track] = str(args["name"])
            continue
        ts = ev.get("ts")
        if not isinstance(ts, (int, float)) or isinstance(ts, bool) or ts < 0:
            raise _fail(i, ev, "ts must be a number >= 0 (microseconds)")
        if ts < last_ts.get(track, 0.0):
            raise _fail(i, ev, f"ts goes back on track {track}: {ts} after {last_ts[track]}")
        last_ts[track] = float(ts)
        used.add(track)
        stack = stacks[track]
        if ph in ("B", "X", "i"):
            for fi, waiting in awaiting_slice.pop(track, []):  # an "f" without bp binds to the next slice
                flows[waiting].ts[fi] = float(ts)
        if ph == "B":
            stack.append((str(name), float(ts), dict(ev.get("args", {}))))  # type: ignore[call-overload]
        elif ph == "E":
            if not stack:
                raise _fail(i, ev, f"E with no open B on track {track}")
            bname, bts, bargs = stack.pop()
            if name is not None and name != bname:
                raise _fail(i, ev, f"E named {name!r} closes B named {bname!r}")
            bargs.update(ev.get("args", {}))  # type: ignore[call-overload]
            slices.append((track, bname, bts, float(ts), bargs))
        elif ph == "X":
            dur = ev.get("dur")
            if not isinstance(dur, (int, float)) or dur < 0:
                raise _fail(i, ev, "X needs dur >= 0")
        elif ph == "i":
            if ev.get("s", "t") not in ("g", "p", "t"):
                raise _fail(i, ev, "instant scope s must be g, p or t")
        elif ph in ("s", "t", "f"):
            cat, fid = ev.get("cat"), ev.get("id")
            if not isinstance(cat, str) or not isinstance(fid, (int, str)):
                raise _fail(i, ev, "flow events need cat and id")
            key: tuple[str, object] = (cat, fid)
            flow = flows.setdefault(key, Flow())
            if (ph == "s") != (not flow.phases):
                raise _fail(i, ev, f"flow {key}: {ph!r} after {flow.phases}")
            if flow.phases and flow.phases[-1] == "f":
                raise _fail(i, ev, f"flow {key} goes on after its end")
            enclosing = ph != "f" or ev.get("bp") == "e"
            if ph == "f" and "bp" in ev and ev["bp"] != "e":
                raise _fail(i, ev, "bp must be 'e' when given")
            if enclosing and not stack:
                raise _fail(i, ev, f"flow {key}: {ph!r} binds to an enclosing slice, but none is open on {track}")
            if not enclosing:
                awaiting_slice[track].append((len(flow.ts), key))
            flow.phases.append(ph)
            flow.ts.append(float(ts))
            flow.tracks.append(track)
    for track, stack in stacks.items():
        if stack:
            raise AssertionError(f"track {track} ends with open slices: {[s[0] for s in stack]}")
    if awaiting_slice:
        raise AssertionError(f"flow ends with no slice after them: {dict(awaiting_slice)}")
    for fkey, flow in flows.items():
        if flow.phases[-1] != "f":
            raise AssertionError(f"flow {fkey} never ends: {flow.phases}")
        if flow.ts != sorted(flow.ts):
            raise AssertionError(f"flow {fkey} goes back in time: {flow.ts}")
    unnamed = used - names.keys()
    if unnamed:
        raise AssertionError(f"tracks with no thread_name: {sorted(unnamed)[:5]}")
    return Checked(events, flows, names, slices)
