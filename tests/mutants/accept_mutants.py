"""Single-bug variants of ovserver's accepting with several AcceptEx
outstanding (``ServerConfig.accepts``, ``serve --accepts``, default 16).

Conventions as in :mod:`tests.mutants.fresh_mutants`: each class is one of
ovserver's server classes with one thing changed, the changed lines marked
``BUG``, each copied method named in ``COPIED``.  :data:`tests.mutants.MUTANTS`
lists them with the traffic each one needs.

These are test code: they are not shipped with ovserver.
"""

from __future__ import annotations

from fakewinsock.constants import INVALID_SOCKET
from ovserver._events import EventServer

__all__ = ["NoAcceptResignal"]


class NoAcceptResignal(EventServer):
    """Events model, accepting with several AcceptEx outstanding: the accept
    slots share the acceptor's wake event, and every AcceptEx post resets it
    (an overlapped call resets its event).  A slot that completes while the
    acceptor handles another one's accept (after its scan of the slots, before
    the post that follows) signals the event, and that post erases the signal:
    the server does not signal again, so the accept waits for the next
    completion of another slot (the next arrival): late, or never when no one
    else arrives.  (The routines model survives it: its routines look at the
    slots after every routine; the iocp model's accepts complete through the
    port, not an event.)  Needs ``accepts`` > 1 and a client arriving
    microseconds after another, while that one's accept is being handled,
    with no later arrival for a while."""

    COPIED = ("_post_accept",)

    def _post_accept(self) -> None:
        """Post AcceptEx until ``accepts`` are outstanding (no more than the
        places free), unless stopping; a post that fails at once stops it
        (accepting is retried after ``accept_retry_ms``)."""
        # BUG: the last post is not remembered: a slot that completed meanwhile is not signalled again
        while True:
            busy = self._accepting()
            if (self._stopping or busy >= self.config.accepts or self._listener == INVALID_SOCKET
                    or not self._room_to_accept(busy)):
                break
            io = self._accept_slot()
            if not self._post_one_accept(io):
                break
        # BUG: a slot that completed meanwhile had its signal erased by the posts: not signalled again
