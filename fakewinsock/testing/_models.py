"""Models: what a correct line server sends (:class:`LineModel`,
:class:`EchoModel`, :class:`ChatModel`), with its limits and policies.

Owns the models and the defaults of a model that names no limits
(:class:`_Policy`); pure data and functions, no fake, no Hypothesis.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol

__all__ = ["LineModel", "EchoModel", "ChatModel", "PartialPolicy"]


# ====================================================================== models


class LineModel(Protocol):
    """What a correct line server sends.  ``name`` is a client's address as the
    server sees it, ``b"host:port"``; ``line`` is a message without its newline.

    :meth:`reply` is called for each client's lines in order, so a model may
    keep per-client state.  Replies are whole lines (each ends with a newline),
    several or none.  A model that ``broadcasts`` (sends to the other clients)
    needs a greeting, so that a client knows when it has joined: every client
    then waits until all have been greeted before it sends anything, which
    makes the expected output exact.  Lines from different senders must differ
    (name the sender in them), so that the checker can tell them apart.

    Limits and policies (optional attributes; a model without them has no
    limits and drops an unterminated last line, see :class:`EchoModel`):

    * ``max_line``: a line longer than this many bytes (without its newline)
      makes the server send ``too_long(name)``, stop treating the client's
      input as messages and close the connection gracefully (FIN) once that
      line is out; nothing of the line is routed.
    * ``max_queued``: the server may cut a client off (reset it) once more than
      this many bytes owed to it have not reached it; and must have, by the
      time a client that paused its reading (or stopped for good) reads again
      or resets, if more than this many of the bytes owed to it for the lines
      the server took are still queued in the server (not read, not on their
      way: neither in flight nor in its receive buffer, nor in a posted send).
    * ``partial_at_eof``: what becomes of a last line without its newline when
      the client ends its input: ``"drop"`` (it was never a message) or
      ``"line"`` (it is handled as a line).
    * ``high_water``: back-pressure with a slow-consumer time-out (ovserver's
      ``Limits.high_water`` with ``stall_timeout_ms``): the server may also cut
      a client off (reset it) while more than ``high_water // 2`` bytes owed
      to it have not reached it (a queue over the mark stays over it until it
      has drained to half of it); never with less, nor once the server has
      taken the client's FIN (a receive of 0 bytes reaped, 20 ms before the
      reset at least): a client that ended its input gets no more lines,
      holds no sender back and is no longer over the mark, so it keeps what
      it is owed until it has read it.  Such a server does not
      read from a sender held back, so in chat a member's FIN may be seen
      late: lines routed to it meanwhile are not reported.  With
      ``stall_timeout_ms`` too (the slow-consumer time-out, ovserver's ``serve
      --stall-timeout-ms``) and ``idle_timeout_ms``: the server holds a
      client back (it stops reading it) only for back-pressure, and a client
      held back is not idle (its idle clock starts again when the server
      reads on), so a client the checker saw held back (no receive posted on
      its connection, none of its bytes taken) is reported if the server
      closes it less than the idle time-out later, unless a limit explains
      the close: a reset while more than ``max_queued`` is owed to it, or of
      a connection as old as the stall time-out (both less two clock steps).
    * ``idle_timeout_ms``: an idle time-out (ovserver's ``serve
      --idle-timeout-ms``): the server may close a client (gracefully, or with
      a reset when a send to it is in flight; what it had not read may be
      lost) once it has been idle that long: no line of it completed (bytes
      without a newline do not count) and none of the server's sends to it
      completed since it was accepted.  A client closed so is reported only
      if, by its own account, it had been idle for less than that (less two
      of Windows' 15.6 ms clock steps): it completed a line since; or (a model
      that does not broadcast) if it was reset though it had read all it was
      owed and the checker's last look found nothing on its way either way,
      with nothing sent or read since (no send in flight: a FIN is due).  A client
      that stays connected, reading, with nothing owed to it, must be closed
      within the time-out and a little more (two clock steps and 50 ms) of
      the last byte it read.
    * ``max_clients``: the server serves at most this many clients at once;
      the others wait (in the listen backlog, or refused and retrying) until
      a place is free.  A client holds its place from its accept to its close,
      which the checker bounds by what the clients saw: from the first byte
      the server sent it (read) to the last line of it, or routed to it,
      that the server took (the line's reply or its broadcast arrived): more
      clients than this holding a place at one moment are reported.  And a
      server that holds fewer connections than this has room: a client next
      to be accepted must not wait in its listen backlog for more than 100 ms
      (the checker's backlog watch; not with a slowed server, nor after an
      injected AcceptEx failure or the stop request).
    * ``resets_at_stop``: the server resets its connections when it stops (a
      hard close, SO_LINGER {1, 0}) on purpose.  By default (False) a client
      that is quiet at the stop (it has read all it is owed, nothing is on
      its way either way, and it has read nothing for 1 ms) must read a FIN:
      Windows resets a close only with a send or a receive outstanding or
      bytes unread, and a server that stops cancels and reaps those first.
    * ``resets_cut_sends``: the server resets a connection it closes while a
      send to it is in flight (ovserver: a close whose CancelIoEx found a
      send is abortive), so a FIN never follows part of a line.  With True,
      a client closed gracefully at the stop or at its idle time-out right
      after part of a line fails, and so does one that had not read when
      serve() returned whose unread bytes, before the server's FIN, end in
      part of a line (not with injected WSARecv/WSASend failures).  Such a
      server also resets a close that drops output queued (ovserver does),
      so a FIN at the scenario's stop must follow every reply to the lines
      the server had taken 1 ms before it (the greeting and its own
      replies; also for a client that had not read the FIN when serve()
      returned, by what the server sent before it, on the wire too, for a
      model that does not broadcast; not with injected
      WSARecv/WSASend failures, a slowed server or an idle time-out).  By
      default (False) such a close passes: a line server's client can tell a
      line cut short by its missing newline.
    """

    broadcasts: bool

    def greeting(self, name: bytes) -> bytes:
        """What the server sends a new client before anything else (b"" for nothing)."""
        ...

    def reply(self, name: bytes, line: bytes) -> tuple[bytes, bytes]:
        """For a line from ``name``: (what goes back to it, what goes to every other client)."""
        ...


PartialPolicy = Literal["drop", "line"]


def _too_long_line(max_line: int) -> bytes:
    """ovserver's error line for a line over the limit."""
    return b"* error: line longer than %d bytes\n" % max_line


class _Limited:
    """The limits and policies a model shares with the checker (see :class:`LineModel`)."""

    def __init__(self, max_line: int | None, max_queued: int | None, partial_at_eof: PartialPolicy,
                 too_long: Callable[[bytes], bytes] | bytes | None, high_water: int | None = None,
                 idle_timeout_ms: int | None = None, max_clients: int | None = None,
                 resets_at_stop: bool = False, resets_cut_sends: bool = False,
                 stall_timeout_ms: int | None = None) -> None:
        if not isinstance(resets_at_stop, bool):
            raise ValueError(f"resets_at_stop: expected True or False, not {resets_at_stop!r}")
        self.resets_at_stop = resets_at_stop
        if not isinstance(resets_cut_sends, bool):
            raise ValueError(f"resets_cut_sends: expected True or False, not {resets_cut_sends!r}")
        self.resets_cut_sends = resets_cut_sends
        if max_clients is not None and (isinstance(max_clients, bool) or not isinstance(max_clients, int)
                                        or max_clients < 1):
            raise ValueError(f"max_clients: expected a number of clients >= 1 (or None for no limit), "
                             f"not {max_clients!r}")
        self.max_clients = max_clients
        if idle_timeout_ms == 0 and type(idle_timeout_ms) is int:
            idle_timeout_ms = None  # (ovserver's ServerConfig.idle_timeout_ms: 0 is off)
        if idle_timeout_ms is not None and (isinstance(idle_timeout_ms, bool) or not isinstance(idle_timeout_ms, int)
                                            or idle_timeout_ms < 1):
            raise ValueError(f"idle_timeout_ms: expected a number of milliseconds >= 1 (or None for no time-out), "
                             f"not {idle_timeout_ms!r}")
        self.idle_timeout_ms = idle_timeout_ms
        if high_water == 0 and type(high_water) is int:
            high_water = None  # (ovserver's Limits.high_water: 0 is off)
        for name, value in (("max_line", max_line), ("max_queued", max_queued), ("high_water", high_water)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}: expected a number of bytes >= 1 (or None for no limit), not {value!r}")
        if partial_at_eof not in ("drop", "line"):
            raise ValueError(f"partial_at_eof: expected 'drop' or 'line', not {partial_at_eof!r}")
        if stall_timeout_ms == 0 and type(stall_timeout_ms) is int:
            stall_timeout_ms = None  # (ovserver's ServerConfig.stall_timeout_ms: 0 is off)
        if stall_timeout_ms is not None and (isinstance(stall_timeout_ms, bool) or not isinstance(stall_timeout_ms, int)
                                             or stall_timeout_ms < 1 or high_water is None):
            raise ValueError(f"stall_timeout_ms: expected a number of milliseconds >= 1 with high_water (or None), "
                             f"not {stall_timeout_ms!r}")
        self.stall_timeout_ms = stall_timeout_ms
        self.max_line = max_line
        self.max_queued = max_queued
        self.high_water = high_water
        self.partial_at_eof: PartialPolicy = partial_at_eof
        if too_long is None:
            error = _too_long_line(max_line) if max_line is not None else b""
            self._too_long: Callable[[bytes], bytes] = lambda name: error
        elif isinstance(too_long, bytes):
            self._too_long = lambda name: too_long
        else:
            self._too_long = too_long

    def too_long(self, name: bytes) -> bytes:
        """What a client whose line is over ``max_line`` gets last (ovserver's error line by default)."""
        return self._too_long(name)


class EchoModel(_Limited):
    """Each line goes back to its sender, byte for byte.

    The limits default to none; to model ovserver, pass its
    :class:`~ovserver.Limits`: ``EchoModel(max_line=limits.max_line,
    max_queued=limits.max_queued)`` (its error line is the default
    ``too_long``; it drops an unterminated last line), and with back-pressure
    ``high_water=limits.high_water`` (and ``stall_timeout_ms=config.stall_timeout_ms``); with an idle time-out,
    ``idle_timeout_ms=config.idle_timeout_ms``; its client limit,
    ``max_clients=limits.max_clients``; a server that resets its
    clients when it stops, on purpose, ``resets_at_stop=True``; ovserver
    resets a connection it closes with a send in flight,
    ``resets_cut_sends=True``."""

    broadcasts = False

    def __init__(self, *, max_line: int | None = None, max_queued: int | None = None,
                 partial_at_eof: PartialPolicy = "drop", too_long: Callable[[bytes], bytes] | bytes | None = None,
                 high_water: int | None = None, idle_timeout_ms: int | None = None,
                 max_clients: int | None = None, resets_at_stop: bool = False,
                 resets_cut_sends: bool = False, stall_timeout_ms: int | None = None) -> None:
        super().__init__(max_line, max_queued, partial_at_eof, too_long, high_water, idle_timeout_ms, max_clients,
                         resets_at_stop, resets_cut_sends, stall_timeout_ms)

    def greeting(self, name: bytes) -> bytes:
        return b""

    def reply(self, name: bytes, line: bytes) -> tuple[bytes, bytes]:
        return line + b"\n", b""


class ChatModel(_Limited):
    """Each line goes to every other client, prefixed with the sender's name; a
    new client is greeted first.  The formats default to ovserver's
    (``* welcome <name>`` and ``<name>: <line>``); limits as :class:`EchoModel`."""

    broadcasts = True

    def __init__(self, welcome: Callable[[bytes], bytes] = lambda name: b"* welcome " + name + b"\n",
                 relay: Callable[[bytes, bytes], bytes] = lambda name, line: name + b": " + line + b"\n", *,
                 max_line: int | None = None, max_queued: int | None = None, partial_at_eof: PartialPolicy = "drop",
                 too_long: Callable[[bytes], bytes] | bytes | None = None, high_water: int | None = None,
                 idle_timeout_ms: int | None = None, max_clients: int | None = None,
                 resets_at_stop: bool = False, resets_cut_sends: bool = False,
                 stall_timeout_ms: int | None = None) -> None:
        super().__init__(max_line, max_queued, partial_at_eof, too_long, high_water, idle_timeout_ms, max_clients,
                         resets_at_stop, resets_cut_sends, stall_timeout_ms)
        self._welcome = welcome
        self._relay = relay

    def greeting(self, name: bytes) -> bytes:
        return self._welcome(name)

    def reply(self, name: bytes, line: bytes) -> tuple[bytes, bytes]:
        return b"", self._relay(name, line)


class _Policy:
    """A model's limits and policies, with the defaults of a model that names none."""

    def __init__(self, model: LineModel) -> None:
        self.max_line: int | None = getattr(model, "max_line", None)
        self.max_queued: int | None = getattr(model, "max_queued", None)
        self.high_water: int | None = getattr(model, "high_water", None)
        self.idle_timeout_ms: int | None = getattr(model, "idle_timeout_ms", None)
        self.stall_timeout_ms: int | None = getattr(model, "stall_timeout_ms", None)
        self.max_clients: int | None = getattr(model, "max_clients", None)
        self.resets_at_stop: bool = bool(getattr(model, "resets_at_stop", False))
        self.resets_cut_sends: bool = bool(getattr(model, "resets_cut_sends", False))
        self.partial_at_eof: str = getattr(model, "partial_at_eof", "drop")
        too_long = getattr(model, "too_long", None)
        self.too_long: Callable[[bytes], bytes] = too_long if callable(too_long) else (
            lambda name: _too_long_line(self.max_line or 0) if self.max_line is not None else b"")
