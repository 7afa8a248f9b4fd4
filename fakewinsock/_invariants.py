"""The fake's invariants: what must hold between any two Winsock calls.

:func:`broken` reads every part of one fake (kernel, operations, network,
sockets) and lists what does not hold; it changes nothing and asks the chooser
nothing, so checking never changes a schedule.  ``FakeWinsock.invariants()``
raises :class:`InternalError` with the list; with
``FakeConfig(check_invariants=True)`` (or the pytest option
``winsock_check_invariants``) it runs after every Winsock call.

What is checked:

* every handle is in one table: an open handle names an object with that
  handle that is not closed, and is not among the closed events;
* every operation in flight is registered under its OVERLAPPED and is in
  exactly one queue: its socket's queue of its kind; no operation is still
  ``posted`` between calls; an armed one is in exactly one place of the
  scheduler (the ready queue or a completion-delay timer);
* no reaped operation is referenced (by the OVERLAPPED table, a socket's
  queue, an accept socket, the ready queue or a timer; an APC queue may hold
  one whose result the program read with WSAGetOverlappedResult before its
  routine ran); a completed one with a completion routine is in its thread's
  APC queue once;
* byte counts add up: each endpoint's bytes in flight are the bytes of its
  segments still on the wire; a send has moved between 0 and all of its bytes;
  the snapshot budget is the size of the snapshot copies held;
* tables agree: a bound address names an open socket bound there; a listener
  in the table belongs to an open listening socket, and each connection in a
  backlog points back to its listener;
* completion ports: an open port is not closed; each packet of an operation is
  that operation's only packet, queued on its socket's port, and the
  operation is completed, not reaped (a packet's operation is reaped once,
  when it is taken); an operation marked as waiting in a port is in exactly
  one packet and still registered under its OVERLAPPED.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ._iocp import Port
from ._kernel import Event, Kernel
from ._net import Endpoint, Network
from ._ops import ARMED, COMPLETED, PENDING, POSTED, REAPED, Operation, Operations
from ._sockets import CLOSED, LISTENING, Socket, SocketOp
from ._threads import ProgramThread, threads_broken

__all__ = ["broken"]


def broken(kernel: Kernel, ops: Operations[Socket], net: Network) -> list[str]:
    """What does not hold now (empty when all is well)."""
    out: list[str] = []
    sockets: list[Socket] = []
    for h, obj in kernel.objects.items():
        if isinstance(obj, Socket):
            sockets.append(obj)
            if obj.state is CLOSED:
                out.append(f"handle {h:#x} names {obj.describe()}")
        elif isinstance(obj, Event):
            if obj.closed:
                out.append(f"handle {h:#x} names a closed event")
        elif isinstance(obj, Port):  # --- completion ports
            if obj.closed:
                out.append(f"handle {h:#x} names a closed completion port")
        elif isinstance(obj, ProgramThread):  # --- threads
            if obj.closed:
                out.append(f"handle {h:#x} names a thread whose handle was closed")
        else:
            out.append(f"handle {h:#x} names {obj!r}, neither a socket, an event, a completion port nor a thread")
        if getattr(obj, "handle", None) != h:
            out.append(f"handle {h:#x} names an object whose handle is {getattr(obj, 'handle', None)!r}")
        if h in kernel.closed_events:
            out.append(f"handle {h:#x} is both open and a closed event")

    # Sockets that still matter: the open ones and those of operations in flight.
    in_table = list(ops.by_ov.values())
    seen = {id(s) for s in sockets}
    for op in in_table:
        if id(op.sock) not in seen:
            seen.add(id(op.sock))
            sockets.append(op.sock)

    # Operations: the OVERLAPPED table and the queues.
    for key, op in ops.by_ov.items():
        if op.key != key:
            out.append(f"{op.describe()} is registered under {key:#x}, not its OVERLAPPED's {op.key:#x}")
        if op.state is REAPED:
            out.append(f"{op.describe()} is reaped but still registered")
        if op.state is POSTED:
            out.append(f"{op.describe()} is still posted between calls (neither queued nor completed)")
    queued: Counter[int] = Counter()
    for sock in sockets:
        for kind, queue in (("WSARecv", sock.recv_ops), ("WSASend", sock.send_ops), ("AcceptEx", sock.accept_ops)):
            for op in queue:
                queued[id(op)] += 1
                if op.kind != kind or op.sock is not sock:
                    out.append(f"{op.describe()} is in the {kind} queue of {sock.describe()}")
                if op.state not in (PENDING, ARMED):
                    out.append(f"{op.describe()} is {op.state} but still queued on {sock.describe()}")
                if ops.by_ov.get(op.key) is not op:
                    out.append(f"{op.describe()} is queued but not registered under its OVERLAPPED")
                _check_send(op, out)
        acc_op = sock.accept_pending_on
        if acc_op is not None and (not acc_op.state.in_flight or acc_op.accept_sock is not sock):
            out.append(f"{sock.describe()} is the accept socket of {acc_op.describe()} ({acc_op.state})")
    for op in in_table:
        if op.state in (PENDING, ARMED) and queued[id(op)] != 1:
            out.append(f"{op.describe()} is {op.state} and in {queued[id(op)]} queues, not 1")

    # The scheduler: armed operations, and nothing reaped.
    scheduled: Counter[int] = Counter()
    where: dict[int, SocketOp] = {}
    for _fn, arg in kernel.ready:
        _note_entry(arg, scheduled, where)
    in_flight: Counter[int] = Counter()
    deliver = net._deliver
    delay_over = kernel._delay_over
    endpoints: dict[int, Endpoint] = {}
    for _t, _seq, fn, arg in kernel.timers:
        if fn == delay_over:
            _note_entry(arg[1], scheduled, where)
        elif fn == deliver:
            src, data, _sent = arg
            in_flight[id(src)] += len(data)
            endpoints[id(src)] = src
    for ident, op in where.items():
        if op.state is not ARMED:
            out.append(f"{op.describe()} is {op.state} but scheduled to complete")
        if scheduled[ident] != 1:
            out.append(f"{op.describe()} is scheduled {scheduled[ident]} times")
    for op in in_table:
        if op.state is ARMED and id(op) not in where:
            out.append(f"{op.describe()} is armed but neither ready nor waiting for its delay")
    for ts in kernel.threads.values():
        apcs: Counter[int] = Counter(id(apc) for apc in ts.apcs)
        for apc in ts.apcs:
            if not isinstance(apc, Operation):
                continue  # a user APC (QueueUserAPC): no operation behind it
            # Completed; or reaped already, when the program read its result with
            # WSAGetOverlappedResult before the routine ran (the routine still runs).
            state = getattr(apc, "state", None)
            if state is not COMPLETED and state is not REAPED:
                out.append(f"{apc.describe()} is {state} but queued as a completion routine of T{ts.index}")
        for op in in_table:
            if op.state is COMPLETED and op.routine is not None and op.thread is ts and apcs[id(op)] != 1:
                out.append(f"{op.describe()} completed with a routine but is {apcs[id(op)]} times "
                           f"in T{ts.index}'s APC queue")

    # Bytes.
    copied = 0
    for op in in_table:
        for snap in op.snapshot or ():
            if type(snap) is bytes:
                copied += len(snap)
    if copied != ops._copied:
        out.append(f"snapshot copies hold {copied} bytes but the budget counts {ops._copied}")
    for sock in sockets:
        ep = sock.ep
        if ep is not None:
            endpoints[id(ep)] = ep
            if ep.other is not None:
                endpoints[id(ep.other)] = ep.other
        if sock.listener is not None:
            for queued_ep in sock.listener.backlog:
                endpoints[id(queued_ep)] = queued_ep
                if queued_ep.other is not None:
                    endpoints[id(queued_ep.other)] = queued_ep.other
    for ident, ep in endpoints.items():
        if ep.in_flight != in_flight[ident]:
            out.append(f"{ep!r} counts {ep.in_flight} bytes in flight but {in_flight[ident]} are on the wire")

    _check_ports(kernel, ops, out)

    # Tables of the network.
    for addr, holder in net.bound.items():
        if not isinstance(holder, Socket) or holder.state is CLOSED or holder.local != addr:
            out.append(f"bound address {addr} is held by {_describe(holder)}")
    for addr, listeners in net.listeners.items():  # an address's listeners, the one served first first
        for lst in listeners:
            owner = lst.owner
            if not isinstance(owner, Socket) or owner.state is not LISTENING or owner.listener is not lst \
                    or kernel.objects.get(owner.handle) is not owner:
                out.append(f"listener of {addr} belongs to {_describe(owner)}")
            for queued_ep in lst.backlog:
                if queued_ep.listener is not lst or queued_ep.owner is not owner:
                    out.append(f"{queued_ep!r} is in the backlog of {addr} but points elsewhere")
    out += threads_broken(kernel)  # --- threads
    return out


def _check_ports(kernel: Kernel, ops: Operations[Socket], out: list[str]) -> None:
    """Completion ports: see the module docstring."""
    packets: Counter[int] = Counter()
    for obj in kernel.objects.values():
        if not isinstance(obj, Port):
            continue
        for pkt in obj.packets:
            op = pkt.op
            if op is None:
                continue
            packets[id(op)] += 1
            if op.state is not COMPLETED or not op.in_port:
                out.append(f"{op.describe()} is {op.state} (in_port={op.in_port}) but has a packet on "
                           f"{obj.describe()}")
            b = op.sock.iocp
            if b is None or b.port is not obj:
                out.append(f"{op.describe()} has a packet on {obj.describe()}, not on its socket's port")
            if ops.by_ov.get(op.key) is not op:
                out.append(f"{op.describe()} has a packet but is not registered under its OVERLAPPED")
    for op in ops.by_ov.values():
        if op.in_port and packets[id(op)] != 1:
            out.append(f"{op.describe()} waits in a completion port but has {packets[id(op)]} packets")


def _check_send(op: SocketOp, out: list[str]) -> None:
    if op.kind == "WSASend" and not 0 <= op.moved <= op.total:
        out.append(f"{op.describe()} has moved {op.moved} of its {op.total} bytes")
    if op.total != sum(len(b) for b in op.bufs) and op.kind != "AcceptEx":
        out.append(f"{op.describe()} counts {op.total} bytes but its buffers hold {sum(len(b) for b in op.bufs)}")


def _note_entry(arg: Any, counts: Counter[int], where: dict[int, SocketOp]) -> None:
    counts[id(arg)] += 1
    where[id(arg)] = arg


def _describe(obj: object) -> str:
    describe = getattr(obj, "describe", None)
    return str(describe()) if callable(describe) else repr(obj)
