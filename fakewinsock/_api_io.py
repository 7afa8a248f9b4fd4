"""The fake's API surface for overlapped receive and send: post, result, cancel:
the calls of :class:`IoCalls`, a mixin of :class:`fakewinsock.FakeWinsock`
(see :mod:`fakewinsock._api_base`).
"""

from __future__ import annotations

from collections.abc import Sequence

from . import _constants as C
from ._api_base import FakeBase, _addressof
from ._errors import DeadlockError, NotEmulatedError, WinsockUsageError
from ._kernel import Event, Kernel, ThreadState
from ._ops import COMPLETED
from ._sockets import CONNECTED, Socket, SocketOp
from ._types import WSABUF, WSAOVERLAPPED, CompletionRoutine, IoResult, OverlappedResult

# Results returned often, made once (named tuples are slow to make).
_PENDING = IoResult(C.SOCKET_ERROR, 0, 0)
_INCOMPLETE = OverlappedResult(C.FALSE, 0, 0)


# WSAGetOverlappedResult's waits (fWait=TRUE), apart so that the call itself
# makes no closure cells (it is called once per completion in the events model).

def _block_on(kernel: Kernel, ev: Event, what: str) -> None:
    """Block until ``ev`` is signalled."""
    kernel.block(lambda: ev.signaled, None, what)


def _block_on_handle(kernel: Kernel, sock: Socket, what: str) -> None:
    """Block until the socket's handle is signalled."""
    kernel.block(lambda: sock.handle_signaled, None, what)


class IoCalls(FakeBase):
    """FakeWinsock's calls for overlapped receive and send: post, result, cancel."""

    # -- WSARecv / WSASend

    def _prepare_bufs(self, call: str, s: int, lpBuffers: Sequence[WSABUF], dwBufferCount: int,
                      writable: bool) -> tuple[list[memoryview], int]:
        """A view of each buffer, ``len`` bytes long, held until the operation
        completes (so the program cannot resize it meanwhile), and their total length."""
        if not isinstance(dwBufferCount, int):
            raise TypeError(f"{call}: dwBufferCount must be an int, not {type(dwBufferCount).__name__}")
        if isinstance(lpBuffers, WSABUF):
            lpBuffers = [lpBuffers]
        if dwBufferCount > len(lpBuffers) or dwBufferCount < 0:  # (a negative DWORD is a huge count)
            raise WinsockUsageError(
                f"{call} on socket {s:#x}: dwBufferCount is {dwBufferCount} but lpBuffers has "
                f"{len(lpBuffers)} entries; Windows would read past the array"
            )
        views: list[memoryview] = []
        total = 0
        for i in range(dwBufferCount):
            wb = lpBuffers[i]
            if not isinstance(wb, WSABUF):
                raise TypeError(f"{call}: lpBuffers[{i}] must be a WSABUF, not {type(wb).__name__}")
            buf = wb.buf
            # bytes and bytearray views are bytes already; cast the others.
            mv = memoryview(buf) if type(buf) is bytearray or type(buf) is bytes else memoryview(buf).cast("B")
            size = len(mv)
            n = wb.len
            if n == size and (not writable or not mv.readonly):
                views.append(mv)
                total += n
                continue
            if not isinstance(n, int) or n < 0 or n > size:
                mv.release()
                raise WinsockUsageError(
                    f"{call} on socket {s:#x}: lpBuffers[{i}].len is {n} but its buffer has "
                    f"{size} bytes; Windows would {'write' if writable else 'read'} past its end"
                )
            if writable and mv.readonly:
                mv.release()
                raise TypeError(f"{call}: lpBuffers[{i}].buf must be writable (a bytearray)")
            views.append(mv[:n])
            total += n
            mv.release()
        return views, total

    def _begin_io(self, call: str, s: int, lpBuffers: Sequence[WSABUF], dwBufferCount: int, flags: int,
                  lpOverlapped: WSAOVERLAPPED, routine: CompletionRoutine | None,
                  ) -> IoResult | tuple[ThreadState, Socket, SocketOp]:
        """What WSARecv and WSASend share: checks, immediate failures, and the
        new operation (registered, not yet queued).  An IoResult is a failure
        to return as it is."""
        ts = self._enter(call)
        receiving = call == "WSARecv"
        if not isinstance(flags, int):
            name = "lpFlags" if receiving else "dwFlags"
            raise TypeError(f"{call}: {name} must be an int, not {type(flags).__name__}")
        handle = s if isinstance(s, int) else 0
        ops = self._ops
        if isinstance(lpOverlapped, WSAOVERLAPPED):  # ops.check_ov, inline: the usual case, an OVERLAPPED free
            key = _addressof(lpOverlapped)
            prev = ops.by_ov.get(key)
            if prev is not None and (prev.state.in_flight or prev.in_port):
                key = ops.check_ov(call, handle, lpOverlapped)  # (it raises)
        else:
            key = ops.check_ov(call, handle, lpOverlapped)
        if routine is not None and not callable(routine):
            raise TypeError(f"{call}: lpCompletionRoutine must be callable or None")
        bufs, total = self._prepare_bufs(call, handle, lpBuffers, dwBufferCount, receiving)
        if self._startups <= 0 and not self._initialised(ts, call):
            return IoResult(C.SOCKET_ERROR, 0, flags)
        obj = self._kernel.objects.get(s) if type(s) is int else self._socket(s, call)  # _socket, inline
        sock = obj if type(obj) is Socket else None
        if sock is None:
            return IoResult(self._fail(ts, call, C.WSAENOTSOCK, s), 0, flags)
        if flags and (not receiving or flags != C.MSG_PEEK):
            raise NotEmulatedError(f"{call}: flags {flags:#x} are not emulated (only 0"
                                   + (" and MSG_PEEK)" if receiving else ")"))
        if routine is not None and sock.iocp is not None and sock.iocp.port is not None:
            # A completion routine on a socket with a completion port: WSAEINVAL,
            # the routine never runs (Wine's sock.c test_WSARecv).
            return IoResult(self._fail(ts, call, C.WSAEINVAL, s), 0, flags)
        if not bufs:
            err = C.WSAEINVAL
        elif (sock.state is CONNECTED and sock.overlapped and sock.ep is not None and not self._forced_errors
              and self.config.enobufs <= 0.0):  # what _io_precheck passes, inline: the usual case
            err = 0
        else:
            err = self._io_precheck(sock, call)
        ep = sock.ep
        if not err and (sock.rd_shut if receiving else sock.wr_shut):
            err = C.WSAESHUTDOWN
        if not err and ep is not None and ep.reset and not (receiving and sock.recv_ops):
            # After a reset, new calls fail at once (test_tcp_reset).
            err = C.NTSTATUS_TO_WSA[ep.reset_status]
        if err:
            return IoResult(self._fail(ts, call, err, s), 0, flags)
        op = ops.post(call, sock, lpOverlapped, routine, ts, key, bufs, total)
        if isinstance(op, int):
            return IoResult(self._fail(ts, call, op, s), 0, flags)
        if flags:
            op.peek = True  # (MSG_PEEK: the only flag that gets here)
        if self.trace.enabled:
            self._kernel.record("posted", call, s, op.id, f"len={op.total}" + (" routine" if routine else "")
                                + (" MSG_PEEK" if flags else ""))
        return ts, sock, op

    def _queue_io(self, ts: ThreadState, op: SocketOp, queue: list[SocketOp], flags: int) -> IoResult:
        """The operation pends: SOCKET_ERROR with WSA_IO_PENDING."""
        self._sockets.pend(op, queue)
        ts.last_error = C.WSA_IO_PENDING
        return _PENDING if flags == 0 else IoResult(C.SOCKET_ERROR, 0, flags)

    def WSARecv(self, s: int, lpBuffers: Sequence[WSABUF], dwBufferCount: int, lpFlags: int,
                lpOverlapped: WSAOVERLAPPED, lpCompletionRoutine: CompletionRoutine | None) -> IoResult:
        """Post an overlapped receive.  0 = completed at once (still notifies; the
        last error is then 0), SOCKET_ERROR with WSA_IO_PENDING = pending, any
        other error = failed.  A socket that is not connected, a listening one
        too, fails with WSAENOTCONN (afd.c test_recv: STATUS_INVALID_CONNECTION
        on a listener; Wine 8.0 pends it).

        ``lpFlags`` 0 or MSG_PEEK: a peek copies what has arrived (waiting, as any
        receive, while nothing has) and leaves it queued for the next receive
        (Microsoft's WSARecv page; Wine's sock.c test_fionread_siocatmark peeks
        on Windows; the conformance suite's peek tests pass under Wine).  Other
        flags raise NotEmulatedError.

        Divergence from real Windows: Microsoft's page says MSG_PEEK is valid
        only for non-overlapped sockets, yet no source shows what an overlapped
        peek does on Windows; the fake does what Wine does (and ReactOS's
        msafd: the peek flag goes to the driver whatever the socket's mode).
        FakeConfig.partial_recv applies to a peek as to any receive."""
        begun = self._begin_io("WSARecv", s, lpBuffers, dwBufferCount, lpFlags, lpOverlapped, lpCompletionRoutine)
        if isinstance(begun, IoResult):
            return begun
        ts, sock, op = begun
        if self._sockets.recv_at_once(sock, op) == 0:
            ts.last_error = 0  # (test_WSARecv: a receive completing at once leaves ERROR_SUCCESS)
            return IoResult(0, op.nbytes, 0)
        return self._queue_io(ts, op, sock.recv_ops, lpFlags)

    def _io_precheck(self, sock: Socket, call: str) -> int:
        if not sock.overlapped:
            raise NotEmulatedError(
                f"{call} on socket {sock.handle:#x}: the socket was created without "
                "WSA_FLAG_OVERLAPPED; blocking I/O is not emulated"
            )
        if sock.state is not CONNECTED or sock.ep is None:
            return C.WSAENOTCONN
        if self._forced_errors:
            forced = self._forced(call)
            if forced:
                self._forced_on.append(sock.ep)
                return forced
        p = self.config.enobufs
        if p > 0.0 and self._kernel.chooser.boolean(p, "enobufs"):  # (p=0 never asks: skip the call)
            return C.WSAENOBUFS
        return 0

    def WSASend(self, s: int, lpBuffers: Sequence[WSABUF], dwBufferCount: int, dwFlags: int,
                lpOverlapped: WSAOVERLAPPED, lpCompletionRoutine: CompletionRoutine | None) -> IoResult:
        """Post an overlapped send.  It completes with the full length or fails;
        completed at once (0), it leaves the last error 0.

        Divergence from real Windows (unverified): ``dwBufferCount`` 0 fails
        with WSAEINVAL, as WSARecv's does on Windows (sock.c test_empty_recv);
        no Windows test or page says what WSASend does with no buffers, and
        Wine 8.0 sends nothing and completes it at once with 0 bytes (the
        difference is listed in docs/semantics-findings.md section 22).
        Searched again (fidelity8, section 25): Microsoft's WSASend page names
        no buffer-count error, and sock.c's test_WSASendMsg and test_WSASendTo
        pass one or two buffers, never none."""
        begun = self._begin_io("WSASend", s, lpBuffers, dwBufferCount, dwFlags, lpOverlapped, lpCompletionRoutine)
        if isinstance(begun, IoResult):
            return begun
        ts, sock, op = begun
        if self._sockets.send_at_once(sock, op):
            ts.last_error = 0  # (test_WSASendTo: a send completing at once leaves 0)
            return IoResult(0, op.total, dwFlags)
        return self._queue_io(ts, op, sock.send_ops, dwFlags)

    # -- results

    def WSAGetOverlappedResult(self, s: int, lpOverlapped: WSAOVERLAPPED, fWait: int) -> OverlappedResult:
        """The result of an overlapped operation, read from its WSAOVERLAPPED.

        fWait=TRUE on an operation still pending waits on its hEvent, or, with
        none, on the socket handle: the I/O manager unsignals a handle when an
        operation starts on it and signals it when one with no event completes
        (Wine's ntdll read_file_test, run on Windows; measured the same for
        sockets under Wine 8.0).  So another operation with no event that
        completes first ends the wait, and the call returns TRUE with this one
        still pending, as with an event signalled by someone else.

        Divergence from real Windows (unverified): a call that fails at once
        (WSAENOTCONN, WSAECONNRESET after a reset, ...) leaves the handle as
        it was; on Windows some of those failures come from AFD, after the
        request started, and would unsignal it.

        Divergence from real Windows: after TRUE the last error is always 0, as
        on Windows 7 and later (and on 1809 and later for STATUS_SUCCESS); before
        Windows 7 it was left as it was (Wine's test_WSAGetOverlappedResult).
        """
        call = "WSAGetOverlappedResult"
        ts = self._enter(call)
        if not isinstance(lpOverlapped, WSAOVERLAPPED):
            raise TypeError(f"{call}: lpOverlapped must be a WSAOVERLAPPED, not {type(lpOverlapped).__name__}")
        if not isinstance(fWait, int):  # as the real backend's ctypes prototype (None is no BOOL)
            raise TypeError(f"{call}: fWait must be an int, not {type(fWait).__name__}")
        if fWait and ts.delivered:  # it waits again: it has handled what it got (a record for observers)
            ts.handled_delivered()
        if self._startups <= 0 and not self._initialised(ts, call):
            return OverlappedResult(C.FALSE, 0, 0)
        obj = self._kernel.objects.get(s) if type(s) is int else self._socket(s, call)  # _socket, inline
        sock = obj if type(obj) is Socket else None
        if sock is None:
            self._fail(ts, call, C.WSAENOTSOCK, s)
            return OverlappedResult(C.FALSE, 0, 0)
        op = self._ops.by_ov.get(_addressof(lpOverlapped))
        status = lpOverlapped.Internal
        waited = ""  # for the trace: how long fWait=TRUE blocked
        if status == C.STATUS_PENDING:
            if not fWait:
                ts.last_error = C.WSA_IO_INCOMPLETE
                if self.trace.enabled:
                    self._kernel.record("fetched", call, s, op.id if op else 0, "incomplete")
                return _INCOMPLETE
            if op is not None and op.routine is not None:
                raise WinsockUsageError(
                    f"{call}(fWait=TRUE) on {op.describe()}: it notifies through a completion "
                    "routine, not an event; fWait=TRUE is only meaningful with event notification"
                )
            # Windows waits (non-alertably) on hEvent, or on the socket when
            # there is none, then reads Internal again.
            hev = lpOverlapped.hEvent & ~1
            ev = self._kernel.objects.get(hev) if hev else None
            what = f"{call}(fWait=TRUE) on " + (op.describe() if op else f"socket {s:#x}")
            if hev and not isinstance(ev, Event):
                # Windows waits on hEvent, and that wait fails on a handle that
                # names no event (Microsoft's page: WSA_INVALID_HANDLE).  One
                # closed by WSACloseEvent may name another object by now.
                if hev in self._kernel.closed_events:
                    raise WinsockUsageError(f"{what}: the OVERLAPPED's hEvent {hev:#x} was closed with "
                                            "WSACloseEvent; its handle value may already name another object")
                self._fail(ts, call, C.WSA_INVALID_HANDLE, s)
                return OverlappedResult(C.FALSE, 0, 0)
            start = self._kernel.now_ns
            if isinstance(ev, Event):
                _block_on(self._kernel, ev, what)
            elif sock.iocp is not None and sock.iocp.modes & C.FILE_SKIP_SET_EVENT_ON_HANDLE:
                # --- completion ports: Windows would wait on the socket handle,
                # which this mode keeps from being signalled (Microsoft's
                # SetFileCompletionNotificationModes).
                raise WinsockUsageError(
                    f"{what}: the OVERLAPPED has no event and the socket has "
                    "FILE_SKIP_SET_EVENT_ON_HANDLE, so Windows would wait on a handle that is never signalled"
                )
            elif op is None and not (sock.handle_signaled or sock.recv_ops or sock.send_ops or sock.accept_ops):
                raise DeadlockError(f"{what}: the WSAOVERLAPPED says STATUS_PENDING, no operation "
                                    "uses it and it has no event; Windows would wait forever")
            else:
                # No event: Windows waits on the socket handle, which any
                # operation started on it unsignals and any completing with no
                # event signals (Wine's ntdll read_file_test on Windows: "with no
                # event, the pipe handle itself gets signaled"; Microsoft's
                # GetOverlappedResult page warns of "the confusion that can occur
                # when multiple simultaneous overlapped operations are performed
                # on the same file").  Another such operation completing first
                # ends the wait with this one still pending: TRUE, below.
                _block_on_handle(self._kernel, sock, what)
            waited = f" waited={self._kernel.now_ns - start}"
            if lpOverlapped.Internal == C.STATUS_PENDING:
                # The event was signalled by something else (a shared event, a
                # WSASetEvent), or the socket handle by another operation's
                # completion, while the operation is still in flight: Windows
                # returns TRUE anyway (Wine's test_WSAGetOverlappedResult).
                ts.last_error = self._kernel.chooser.pick_one((C.WSA_IO_PENDING, 0), "getoverlapped-lasterror")
                if self.trace.enabled:
                    self._kernel.record("fetched", call, s, op.id if op else 0,
                                        ("event" if ev is not None else "socket handle")
                                        + " signalled, still pending: TRUE" + waited)
                return OverlappedResult(C.TRUE, lpOverlapped.InternalHigh, 0)
            status = lpOverlapped.Internal
        n = lpOverlapped.InternalHigh
        flags = op.flags if op is not None else 0
        if op is not None:
            if op.done_ns and op.state is COMPLETED and not op.in_port:  # this call reaps it: delivered
                ts.delivered.append(op)  # (a record for observers: see ThreadState.handled_delivered)
            self._ops.reap(op)
        if self.trace.enabled:
            self._kernel.record("fetched", call, s, op.id if op else 0, f"status={status:#x} bytes={n}{waited}")
        # Any NTSTATUS maps (ws2_32's map_status, Wine's test_WSAGetOverlappedResult):
        # a success status other than STATUS_PENDING is TRUE, any error FALSE.
        err = 0 if status == 0 else C.wsa_error_of_ntstatus(status)  # (0, the usual status: no lookup)
        ts.last_error = err
        if status < 0x80000000:
            return OverlappedResult(C.TRUE, n, flags)
        return OverlappedResult(C.FALSE, n, flags)

    def CancelIoEx(self, hFile: int, lpOverlapped: WSAOVERLAPPED | None) -> int:
        """Cancel the operation using ``lpOverlapped`` on ``hFile`` (all of them
        when None); they complete with STATUS_CANCELLED (995).

        A handle that is no socket (an event, a completion port, a thread):
        FALSE, ERROR_INVALID_HANDLE.  NtCancelIoFile references the handle as a
        file object, so another object type gives STATUS_OBJECT_TYPE_MISMATCH
        (ReactOS's NtCancelIoFile, rebuilt after Windows' design: supporting
        evidence; no Windows-run test was found).  Wine 8.0 returns TRUE there
        (a strict xfail in tests/conformance/test_mined_close_backlog.py)."""
        call = "CancelIoEx"
        ts = self._enter(call)
        if lpOverlapped is not None and not isinstance(lpOverlapped, WSAOVERLAPPED):
            raise TypeError(f"{call}: lpOverlapped must be a WSAOVERLAPPED or None")
        sock = self._socket(hFile, call)
        if sock is None:
            return self._fail(ts, call, C.ERROR_INVALID_HANDLE, hFile, rc=C.FALSE)
        found = self._sockets.cancel(sock, lpOverlapped)
        if not found:
            return self._fail(ts, call, C.ERROR_NOT_FOUND, hFile, rc=C.FALSE)
        if self.trace.enabled:
            self._kernel.record("call", call, hFile, 0, f"cancelled={found}")
        self._sockets.changed(sock)
        return C.TRUE

    def CancelIo(self, hFile: int) -> int:
        """Cancel every operation the calling thread posted on ``hFile`` (they
        complete with STATUS_CANCELLED); TRUE even when there was none.  An
        AcceptEx belongs to its listening socket, not to its accept socket.
        A handle that is no socket: FALSE, ERROR_INVALID_HANDLE, as CancelIoEx."""
        call = "CancelIo"
        ts = self._enter(call)
        sock = self._socket(hFile, call)
        if sock is None:
            return self._fail(ts, call, C.ERROR_INVALID_HANDLE, hFile, rc=C.FALSE)
        found = self._sockets.cancel(sock, None, ts)
        if self.trace.enabled:
            self._kernel.record("call", call, hFile, 0, f"cancelled={found}")
        self._sockets.changed(sock)
        return C.TRUE
