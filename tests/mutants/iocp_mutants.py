"""Deliberately broken variants of the iocp model: the classic bugs of servers
on a completion port with a pool of worker threads (issue 15, item 3), and the
property tests that must catch them.

As in :mod:`tests.mutants.ovserver_mutants`: each class is
:class:`ovserver._iocp.IocpServer` with one thing changed, the changed lines
marked ``BUG``, a copied method named in ``COPIED``.  The fake's scheduler
draws which worker runs when (from Hypothesis in the properties), so a bug
that needs two workers interleaved shrinks to the clients and switches it
needs.

These are test code: they are not shipped with ovserver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from fakewinsock import FakeConfig, FakeWinsock, Winsock
from fakewinsock.constants import INFINITE
from fakewinsock.testing import ChatModel, ClientScript, EchoModel, Scenario, check_line_server, scenarios
from ovserver import Limits, Mode, Server, ServerConfig
from ovserver._core import ServerError, _Conn, _Io
from ovserver._iocp import STOP_KEY, IocpServer

from .properties import SETTINGS

__all__ = ["IOCP_MUTANTS", "IOCP_PROPERTIES", "IocpMutant", "IocpUnderTest"]


# ---------------------------------------------------------------- the mutants


class ImmediateHandledInline(IocpServer):
    """WSARecv returned 0 (it completed at once): the data is handled inline,
    as if the socket were in FILE_SKIP_COMPLETION_PORT_ON_SUCCESS mode, which
    it is not; its packet is queued all the same and handled again when a
    worker dequeues it.  Needs a receive that completes at once."""

    COPIED = ("_post_recv",)

    def _post_recv(self, conn: _Conn) -> None:
        io = conn.recv
        rc, nbytes, _ = self.ws.WSARecv(conn.sock, io.wsabufs, 1, 0, io, self._routine)  # BUG: nbytes kept
        self._after_post(conn, io, rc)
        if rc == 0 and io.busy:  # BUG: handled inline, and its packet is still queued
            self._completed(io, 0, nbytes)  # BUG


class FreedAtClose(IocpServer):
    """Closing a connection releases its context at once ("closesocket
    cancelled its operations: nothing will touch them"); but each cancelled
    operation still queues a packet, which a worker then handles with the
    freed context.  Needs a connection closed with a receive pending (a
    cut-off, a stop) or with a send in flight."""

    def _close(self, conn: _Conn, abort: bool = False) -> None:
        super()._close(conn, abort)
        if self._closing.pop(conn.cid, None) is not None:  # BUG: freed with operations in flight
            self._release(conn)  # BUG


class TwoReceivesOutstanding(IocpServer):
    """Two receives outstanding per connection, to keep the pipe full: each
    completion is handed to the protocol by the worker that dequeued it, so
    when two workers dequeue a connection's two receives, the one that gets
    the lock first delivers its bytes first, whatever their order on the
    wire.  Needs two receives of one connection completed close together and
    the second one's worker first to the lock."""

    def __init__(self, ws: Winsock, config: ServerConfig | None = None) -> None:
        super().__init__(ws, config)
        self._second: dict[int, _Io] = {}

    def _post_recv(self, conn: _Conn) -> None:
        io2 = self._second.setdefault(conn.cid, _Io("recv", conn, bytearray(self.config.recv_size)))  # BUG
        for io in (conn.recv, io2):  # BUG: both kept posted
            if not io.busy and not conn.closed:
                rc, _, _ = self.ws.WSARecv(conn.sock, io.wsabufs, 1, 0, io, self._routine)
                self._after_post(conn, io, rc)

    def _drained(self) -> bool:
        """(Its stop waits for the second receives too: the bug is the order, not a leak.)"""
        return super()._drained() and not any(io.busy for io in self._second.values())


class StopWithoutDraining(IocpServer):
    """The stop posts the stop packets as soon as everything is closed ("the
    port is FIFO: the workers see the cancelled operations' packets first"),
    but the cancelled operations complete a little later, so their packets
    queue behind the stop packets: the workers end first and those packets
    are never handled (their contexts never released).  Needs a stop with a
    connection open."""

    def _drained(self) -> bool:
        return True  # BUG: not waiting for the cancelled operations' packets


class OneStopPacket(IocpServer):
    """One stop packet for the whole pool ("every worker will see it"): a
    packet is dequeued by one thread only, so one worker ends and the others
    wait on the port for ever; the controller waits for them for ever too."""

    COPIED = ("_stop_workers",)

    def _stop_workers(self) -> None:
        """One stop packet per worker, behind every packet already queued; then
        wait for each worker and close its handle."""
        ws = self.ws
        for _ in self._workers[:1]:  # BUG: one stop packet for the pool
            if not ws.PostQueuedCompletionStatus(self._port, 0, STOP_KEY, None):
                raise ServerError(f"PostQueuedCompletionStatus failed (error {ws.GetLastError()})")
        for h in list(self._workers):
            ws.WaitForSingleObject(h, INFINITE)
            ws.CloseHandle(h)
            self._workers.remove(h)


class FailedPacketEndsWorker(IocpServer):
    """GetQueuedCompletionStatus returning FALSE taken as the port failing
    (the tutorials' ``if (!ok) break;``): but FALSE with an OVERLAPPED is a
    failed operation's packet (a reset client, a cancelled receive), so each
    one ends a worker, and with the last worker gone nothing is handled any
    more.  Needs as many failed operations as workers."""

    COPIED = ("_work",)

    def _work(self, index: int) -> None:
        ws = self.ws
        while True:
            ok, nbytes, key, ov = ws.GetQueuedCompletionStatus(self._port, INFINITE)
            if not ok:  # BUG
                return  # BUG: a failed operation's packet ends the worker
            if ov is None:
                if ok and key == STOP_KEY:
                    return
                raise ServerError(f"GetQueuedCompletionStatus failed (error {ws.GetLastError()}, key {key:#x})")
            self._enter(index)
            try:
                self._dispatch(bool(ok), nbytes, key, ov)
            finally:
                self._leave_if_held(index)


# ---------------------------------------------------------------- the properties


class IocpUnderTest:
    """An iocp server class with ``workers`` workers, as :func:`check_line_server` drives a server."""

    def __init__(self, cls: type[Server], ws: FakeWinsock, address: tuple[str, int], mode: str, limits: Limits,
                 workers: int) -> None:
        self.ws = ws
        self.server = cls(ws, ServerConfig(host=address[0], port=address[1], model=cls.model, mode=Mode(mode),
                                           limits=limits, workers=workers))

    def serve(self) -> None:
        stats = self.server.run()
        # The fake completes every operation a stop cancels: a stop that gave up
        # on some (or left their packets unhandled) failed to reap them.
        assert stats.abandoned == 0, f"the stop gave up on {stats.abandoned} operations it never reaped"

    def stop(self) -> None:
        self.server.request_stop(signal=self.ws.signal_event)


#: Worker pools the properties draw from (shrinking towards the first: two workers race).
WORKERS = [2, 3, 4, 1]


def iocp_echo_property(cls: type[Server]) -> Callable[[], None]:
    """Echo on 1-4 workers: up to 4 clients, any chunking, resets, early
    leaves, WSAENOBUFS on any post, a stop mid-session, at most 1, 2 or any
    number of clients at once; every interleaving of the workers drawn."""

    @SETTINGS
    @given(scenario=scenarios(clients=(1, 4), inject=("AcceptEx", "WSARecv", "WSASend"), swarm=False),
           max_clients=st.sampled_from([10_000, 1, 2]), workers=st.sampled_from(WORKERS), data=st.data())
    def iocp_echo(scenario: Scenario, max_clients: int, workers: int, data: st.DataObject) -> None:
        limits = Limits(max_clients=max_clients)
        check_line_server(lambda ws, address: IocpUnderTest(cls, ws, address, "echo", limits, workers), scenario,
                          EchoModel(), data=data)

    return iocp_echo


def iocp_chat_property(cls: type[Server]) -> Callable[[], None]:
    """Chat on 1-4 workers: a line handled by one worker is routed to members
    whose sends other workers complete; each line reaches every other member
    exactly (a prefix, for clients that reset or leave)."""

    @SETTINGS
    @given(scenario=scenarios(clients=(1, 4), inject=("AcceptEx",), swarm=False), workers=st.sampled_from(WORKERS),
           data=st.data())
    def iocp_chat(scenario: Scenario, workers: int, data: st.DataObject) -> None:
        check_line_server(lambda ws, address: IocpUnderTest(cls, ws, address, "chat", Limits(), workers), scenario,
                          ChatModel(), data=data)

    return iocp_chat


#: The pipeline's fake: every yes/no question 50/50 (background progress included), as the chooser answered
#: them all before it weighted them by their p (2026-12-04): receives completing close together, on several
#: workers, are then as likely as not.
PIPELINE_FAKE = FakeConfig(immediate=0.5, split=0.5, partial_recv=0.5, background=0.5)


def iocp_pipeline_property(cls: type[Server]) -> Callable[[], None]:
    """Echo of a stream sent back to back in small pieces, by one or two
    clients, on 2-4 workers: several receives' worth of a connection's data
    arrive close together, and whichever worker handles each, the replies
    must come back in the order the bytes were sent."""

    @SETTINGS
    @given(clients=st.integers(1, 2), lines=st.integers(2, 6), chunk=st.integers(1, 8),
           workers=st.sampled_from(WORKERS[:3]), data=st.data())
    def iocp_pipeline(clients: int, lines: int, chunk: int, workers: int, data: st.DataObject) -> None:
        script = ClientScript.of(*[b"%d-%d" % (k, lines) for k in range(lines)], chunk=chunk)
        scenario = Scenario((script,) * clients)
        check_line_server(lambda ws, address: IocpUnderTest(cls, ws, address, "echo", Limits(), workers), scenario,
                          EchoModel(), data=data, config=PIPELINE_FAKE)

    return iocp_pipeline


IOCP_PROPERTIES: dict[str, Callable[[type[Server]], Callable[[], None]]] = {
    "iocp_echo": iocp_echo_property,
    "iocp_chat": iocp_chat_property,
    "iocp_pipeline": iocp_pipeline_property,
}


@dataclass(frozen=True)
class IocpMutant:
    name: str
    server: type[IocpServer]
    bug: str  # what is wrong, in a few words
    caught_by: str  # the property of IOCP_PROPERTIES that must catch it


IOCP_MUTANTS = [
    IocpMutant("iocp-immediate-handled-twice", ImmediateHandledInline,
               "an immediate success handled inline and again from the port", "iocp_echo"),
    IocpMutant("iocp-freed-at-close", FreedAtClose,
               "a connection's context freed at close, its cancelled operations' packets still to come", "iocp_echo"),
    IocpMutant("iocp-two-receives-outstanding", TwoReceivesOutstanding,
               "two receives outstanding per connection, their data handled in the order workers get the lock",
               "iocp_pipeline"),
    IocpMutant("iocp-stop-without-draining", StopWithoutDraining,
               "stop packets posted before the cancelled operations' packets were handled", "iocp_echo"),
    IocpMutant("iocp-one-stop-packet", OneStopPacket, "one stop packet for a pool of workers", "iocp_echo"),
    IocpMutant("iocp-failed-packet-ends-worker", FailedPacketEndsWorker,
               "GetQueuedCompletionStatus FALSE with an OVERLAPPED (a failed operation) ends the worker", "iocp_echo"),
]
