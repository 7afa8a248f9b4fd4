"""The fake's trace: the life of every operation, in order, in virtual time.

A record is written when an operation is posted (and whether it completed at
once or pends), when it completes (status, bytes), when an event is signalled,
when a completion routine is queued and run, when a result is fetched, and for
the network events the peers cause.  Records carry no wall-clock time, object
address or Python id, so the same seed and the same calls give the same trace
byte for byte.

Formats (:meth:`Trace.write`, :meth:`Trace.stream`, ``ovserver simulate
--trace FILE --trace-format F``):

``text``
    One record a line (:meth:`TraceRecord.to_text`), for people and grep.
``json``
    One JSON array of record objects (:meth:`Trace.to_json`).
``jsonl``
    JSON lines: one record object a line, so a trace can be read (and
    written) one record at a time.
``perfetto``
    Chrome's Trace Event Format (JSON object form), which ui.perfetto.dev and
    chrome://tracing load: see :mod:`fakewinsock._perfetto`.

With ``format=None`` the file name decides: ``*.perfetto.json`` perfetto,
``*.jsonl`` jsonl, ``*.json`` json, anything else text.

The record object (``json`` and ``jsonl``; schema version 1).  Every key is
always present, in this order:

=========== ======= ===========================================================
key         type    meaning
=========== ======= ===========================================================
``seq``     int     the record's number, from 1 (a bounded or streamed trace
                    keeps counting, so gaps show what was dropped)
``time_ns`` int     virtual time in nanoseconds, never decreasing
``thread``  int     the program thread, numbered by first appearance from 1;
                    0 for the simulated network and actors
``what``    str     the kind of record (below)
``call``    str     the Winsock call, the notification (``event``), or for
                    ``net`` records the network event
``handle``  int     the socket or event handle (0 if none)
``op``      int     the operation's number (0 if none)
``detail``  str     the rest, as space-separated ``key=value`` words (and a
                    few plain words)
=========== ======= ===========================================================

``what`` is one of: ``call`` (a call that starts no operation), ``posted``
(an operation was posted; ``detail``: ``len=`` or ``accept= rdl=``),
``pending`` (it pends), ``immediate`` (it completed at once; ``status=
bytes=``), ``completed`` (it completed later; ``status= bytes=``),
``failed`` (a call failed; ``error=``), ``signalled`` (an event was set by a
completion, or by an actor: call ``external``), ``queued`` (a completion
routine was queued), ``routine`` (it ran; ``dwError= cb=``), ``fetched``
(WSAGetOverlappedResult; ``status= bytes=``, ``incomplete``, and ``waited=``
when fWait blocked), ``return`` (a wait returned; ``waited=`` the virtual
nanoseconds it slept), ``net`` (the network: ``backlog``, ``accept``,
``connected``, ``refused``, ``arrive`` (``conn= to= bytes= sent=``: a
segment reached the end whose local port is ``to``, ``sent`` is when it left
the other end), ``fin``, ``rst``, ``dropped``, ``accept-reset``,
``data-after-close``, and a simulated peer's ``peer-fin``, ``peer-close``,
``peer-rst``).  Connections are named ``c1``, ``c2``... in ``conn=``.
New keys may be added to ``detail``; the record's own keys change only with
a new schema version.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import ClassVar, NamedTuple, Protocol, TextIO

__all__ = ["Trace", "TraceRecord"]

#: The formats :meth:`Trace.write` and :meth:`Trace.stream` know.
TRACE_FORMATS = ("text", "json", "jsonl", "perfetto")

#: A record as stored: (seq, time, thread, what, call, handle, op, detail).
RawRecord = tuple[int, int, int, str, str, int, int, str]


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


_encode = json.JSONEncoder(separators=(",", ":")).encode  # one encoder, not one per record


def _json_record(rec: RawRecord) -> str:
    return _encode(TraceRecord._make(rec).to_dict())


class TraceWriter(Protocol):
    """Writes records to a file as they come; ``close`` ends the file (and
    closes it)."""

    def write(self, rec: RawRecord) -> None: ...

    def close(self) -> None: ...


class _TextWriter:
    def __init__(self, out: TextIO) -> None:
        self._out = out

    def write(self, rec: RawRecord) -> None:
        self._out.write(TraceRecord._make(rec).to_text() + "\n")

    def close(self) -> None:
        self._out.close()


class _JsonLinesWriter(_TextWriter):
    def write(self, rec: RawRecord) -> None:
        self._out.write(_json_record(rec) + "\n")


class _JsonArrayWriter(_TextWriter):
    """The same bytes as :meth:`Trace.to_json`, written as records come."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(out)
        self._sep = "["

    def write(self, rec: RawRecord) -> None:
        self._out.write(self._sep + _json_record(rec))
        self._sep = ","

    def close(self) -> None:
        self._out.write("[]" if self._sep == "[" else "]")
        self._out.close()


def trace_format(path: str, format: str | None = None) -> str:  # noqa: A002 - the option's name
    """The format to write ``path`` in: ``format``, or (None or ``auto``) the
    one its name implies.  ValueError for an unknown format."""
    if format is None or format == "auto":
        if path.endswith(".perfetto.json"):
            return "perfetto"
        if path.endswith(".jsonl"):
            return "jsonl"
        return "json" if path.endswith(".json") else "text"
    if format not in TRACE_FORMATS:
        raise ValueError(f"unknown trace format {format!r}: expected one of {', '.join(TRACE_FORMATS)}")
    return format


def open_writer(path: str, format: str | None = None) -> TraceWriter:  # noqa: A002
    """A writer for ``path`` in ``format`` (see :func:`trace_format`)."""
    fmt = trace_format(path, format)
    out = open(path, "w", encoding="utf-8", newline="\n", buffering=1 << 16)  # the writer closes it
    if fmt == "text":
        return _TextWriter(out)
    if fmt == "jsonl":
        return _JsonLinesWriter(out)
    if fmt == "json":
        return _JsonArrayWriter(out)
    from ._perfetto import PerfettoWriter

    return PerfettoWriter(out)


class Trace:
    """An append-only list of :class:`TraceRecord`, optionally bounded, and
    optionally streamed to a file as records come (:meth:`stream`).

    ``limit`` keeps only the newest records (the sequence numbers keep
    counting, so a bounded trace shows how much was dropped).
    """

    #: The file formats of :meth:`write` and :meth:`stream`.
    FORMATS: ClassVar[tuple[str, ...]] = TRACE_FORMATS  # (ClassVar: a class attribute in the compiled build too)

    def __init__(self, limit: int | None = None, enabled: bool = True) -> None:
        # Plain tuples, made into TraceRecords when read: a tuple is several
        # times cheaper to make, and most records are never read.
        self._records: deque[RawRecord] = deque(maxlen=limit)
        self.enabled = enabled
        self.count = 0
        self._writer: TraceWriter | None = None
        self._sink: Callable[[RawRecord], None] | None = None

    def add(self, time: int, thread: int, what: str, call: str, handle: int = 0, op: int = 0,
            detail: str = "") -> None:
        if not self.enabled:
            return
        self.count += 1
        rec = (self.count, time, thread, what, call, handle, op, detail)
        self._records.append(rec)
        if self._sink is not None:
            self._sink(rec)

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

    def write(self, path: str, format: str | None = None) -> None:  # noqa: A002 - the option's name
        """Write the records kept to ``path`` in ``format`` (``text``, ``json``,
        ``jsonl`` or ``perfetto``; None: by the file name, see the module)."""
        writer = open_writer(path, format)
        try:
            for rec in self._records:
                writer.write(rec)
        finally:
            writer.close()

    def stream(self, path: str, format: str | None = None, *, keep: int | None = 1000) -> None:  # noqa: A002
        """From now on write every record to ``path`` as it is added (the records
        kept so far first), and keep only the newest ``keep`` in memory (None:
        all), so a long run's trace costs disk, not memory.  :meth:`close`
        ends the file; until then it may be incomplete."""
        if self._writer is not None:
            raise RuntimeError("this trace is already streamed to a file; close() it first")
        writer = open_writer(path, format)
        for rec in self._records:
            writer.write(rec)
        self._records = deque(self._records, maxlen=keep)
        self._writer = writer
        self._sink = writer.write

    def close(self) -> None:
        """End the file :meth:`stream` writes (no-op when not streaming)."""
        writer, self._writer, self._sink = self._writer, None, None
        if writer is not None:
            writer.close()
