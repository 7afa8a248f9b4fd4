"""The fake's trace: the life of every operation, in order, in virtual time.

A record is written when an operation is posted (and whether it completed at
once or pends), when it completes (status, bytes), when an event is signalled,
when a completion routine is queued and run, when a result is fetched, and for
the network events the peers cause.  Records carry no wall-clock time, object
address or Python id, so the same seed and the same calls give the same trace
byte for byte.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import NamedTuple

__all__ = ["Trace", "TraceRecord"]


class TraceRecord(NamedTuple):
    """One line of the trace.

    ``seq`` counts records from 1; ``time`` is virtual nanoseconds; ``thread``
    numbers the program's threads in order of first appearance (1 is the
    first); ``what`` is the kind of record (``posted``, ``immediate``,
    ``pending``, ``failed``, ``completed``, ``signalled``, ``queued``,
    ``routine``, ``fetched``, ``net``...); ``call`` the Winsock call or network
    actor; ``handle`` the socket or event (0 if none); ``op`` the operation
    number (0 if none); ``detail`` the rest, as ``key=value`` text.
    """

    seq: int
    time: int
    thread: int
    what: str
    call: str
    handle: int
    op: int
    detail: str

    def to_text(self) -> str:
        handle = f"{self.handle:#x}" if self.handle else "-"
        op = f"op{self.op}" if self.op else "-"
        detail = f" {self.detail}" if self.detail else ""
        return (
            f"{self.seq:07d} t={self.time / 1e9:.9f} T{self.thread} "
            f"{self.what:<9} {self.call:<22} {handle:>7} {op:>6}{detail}"
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "time_ns": self.time,
            "thread": self.thread,
            "what": self.what,
            "call": self.call,
            "handle": self.handle,
            "op": self.op,
            "detail": self.detail,
        }


class Trace:
    """An append-only list of :class:`TraceRecord`, optionally bounded.

    ``limit`` keeps only the newest records (the sequence numbers keep
    counting, so a bounded trace shows how much was dropped).
    """

    def __init__(self, limit: int | None = None, enabled: bool = True) -> None:
        # Plain tuples, made into TraceRecords when read: a tuple is several
        # times cheaper to make, and most records are never read.
        self._records: deque[tuple[int, int, int, str, str, int, int, str]] = deque(maxlen=limit)
        self.enabled = enabled
        self.count = 0

    def add(self, time: int, thread: int, what: str, call: str, handle: int = 0, op: int = 0,
            detail: str = "") -> None:
        if not self.enabled:
            return
        self.count += 1
        self._records.append((self.count, time, thread, what, call, handle, op, detail))

    def __iter__(self) -> Iterator[TraceRecord]:
        return map(TraceRecord._make, self._records)

    def __len__(self) -> int:
        return len(self._records)

    def records(self) -> list[TraceRecord]:
        return list(self)

    def tail(self, n: int = 40) -> list[TraceRecord]:
        """The last ``n`` records."""
        recs = self._records
        return [TraceRecord._make(r) for r in islice(recs, max(0, len(recs) - n), None)]

    def to_text(self, records: Iterable[TraceRecord] | None = None) -> str:
        """The trace as text, one record a line."""
        return "".join(r.to_text() + "\n" for r in (self if records is None else records))

    def to_json(self) -> str:
        """The trace as a JSON array of objects (stable key order)."""
        return json.dumps([r.to_dict() for r in self], indent=None, separators=(",", ":"))

    def write(self, path: str) -> None:
        """Write the trace to ``path``: JSON if it ends with ``.json``, else text."""
        data = self.to_json() if path.endswith(".json") else self.to_text()
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(data)
