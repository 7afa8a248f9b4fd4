"""The fake's sockets (``fakewinsock._sockets``): survivors of the mutation
run's sample (issue 18, ``tools/mutation_sample.sh``) that a program or a
test author can tell apart, each asserted as what they rely on: the chooser's
questions are named (so a schedule can be scripted by label), a failed send
reports no bytes, an AcceptEx with one address slot too small never
completes inside its call; and of ``_threads``: the trace records a thread's
exit."""

from __future__ import annotations

from typing import Any

import pytest

from fakewinsock import WSABUF, FakeConfig, FakeWinsock
from fakewinsock.constants import (
    FALSE,
    INFINITE,
    SOCKET_ERROR,
    STATUS_BUFFER_TOO_SMALL,
    STATUS_CANCELLED,
    STATUS_CONNECTION_ABORTED,
    STATUS_CONNECTION_RESET,
    STILL_ACTIVE,
    TRUE,
    WAIT_OBJECT_0,
    WSA_IO_PENDING,
    WSA_OPERATION_ABORTED,
    WSAECONNABORTED,
    WSAECONNRESET,
    WSAEFAULT,
)
from tests.conformance._harness import ADDR_SLOT, Harness
from tests.fake_server import quiet
from tests.test_fake_net_mutation_more import ByLabel

NO = 999_999  # a boolean question answered "no" (integer(0, 999_999) >= p * 1e6)


def started(chooser: ByLabel | None = None, **config: Any) -> Harness:
    h = Harness(FakeWinsock(seed=0, chooser=chooser, config=quiet(**config)))
    h.start()
    return h


def test_a_chooser_scripts_an_acceptex_by_the_label_of_its_question() -> None:
    """With a client already queued and FakeConfig.immediate 0.5, AcceptEx
    asks "immediate:AcceptEx" whether to complete inside the call: answered
    "no" by that label, it pends (and completes on the next pass)."""
    chooser = ByLabel({"immediate:AcceptEx": NO})
    h = started(chooser, immediate=0.5)
    lst, port = h.listener()
    p = h.peer()
    p.connect("127.0.0.1", port)
    h.settle()
    acc, ov, out = h.socket(), h.overlapped(), bytearray(2 * ADDR_SLOT)
    ok, _ = h.ws.AcceptEx(lst, acc, out, 0, ADDR_SLOT, ADDR_SLOT, ov)
    assert (ok, h.ws.WSAGetLastError()) == (FALSE, WSA_IO_PENDING)
    assert "immediate:AcceptEx" in {label for label, _, _ in chooser.asked}
    assert h.complete(lst, ov) == (TRUE, 0, 0)
    h.close(acc)
    h.finish()


def test_a_chooser_scripts_the_outcome_of_closing_an_accept_socket_by_its_label() -> None:
    """An AcceptEx waiting for a connected client's first data, its accept
    socket closed: Windows versions give 995 or connection aborted, and the
    fake asks "close-accept-socket" which; answered 1 (the second outcome)
    by that label, the accept fails with STATUS_CONNECTION_ABORTED
    (WSAECONNABORTED)."""
    chooser = ByLabel({"close-accept-socket": 1})
    h = started(chooser)
    lst, port = h.listener()
    acc, ov, out = h.socket(), h.overlapped(), bytearray(64 + 2 * ADDR_SLOT)
    ok, _ = h.ws.AcceptEx(lst, acc, out, 64, ADDR_SLOT, ADDR_SLOT, ov)
    assert (ok, h.ws.WSAGetLastError()) == (FALSE, WSA_IO_PENDING)
    p = h.peer()
    p.connect("127.0.0.1", port)
    h.settle()  # connected, no data yet: the accept still waits
    assert h.close(acc) == 0
    res, _, err = h.complete(lst, ov)
    assert (res, err, ov.Internal) == (FALSE, WSAECONNABORTED, STATUS_CONNECTION_ABORTED)
    assert ("close-accept-socket", 0, 1) in chooser.asked
    h.finish()


def test_closing_the_accept_socket_of_an_accept_that_takes_no_data_always_cancels_it() -> None:
    """An AcceptEx that receives no data (dwReceiveDataLength 0), pending with
    a client queued (its remote slot one byte short: it pends, see below), its
    accept socket closed: STATUS_CANCELLED (995), and the chooser is never
    asked "close-accept-socket" (Windows' 995-or-connection-aborted choice is
    only for an accept waiting for a connected client's first data), even by
    a chooser that would answer it with connection aborted."""
    chooser = ByLabel({"close-accept-socket": 1})
    h = started(chooser, immediate=1.0)
    lst, port = h.listener()
    p = h.peer()
    p.connect("127.0.0.1", port)
    h.settle()  # the client is queued
    acc, ov = h.socket(), h.overlapped()
    ok, _ = h.ws.AcceptEx(lst, acc, bytearray(2 * ADDR_SLOT), 0, ADDR_SLOT, ADDR_SLOT - 1, ov)
    assert (ok, h.ws.WSAGetLastError()) == (FALSE, WSA_IO_PENDING)
    assert h.close(acc) == 0
    res, _, err = h.complete(lst, ov)
    assert (res, err, ov.Internal) == (FALSE, WSA_OPERATION_ABORTED, STATUS_CANCELLED)
    assert "close-accept-socket" not in {label for label, _, _ in chooser.asked}
    h.finish()


def test_a_send_that_fails_reports_no_bytes() -> None:
    """Window 1000: a first WSASend fills it (the peer reads nothing), a
    second pends with none of its bytes moved; the peer resets: the second
    send fails with WSAECONNRESET and 0 bytes (InternalHigh 0), not its
    length or any other count."""
    h = started(window=1000)
    a = h.accept()
    first = bytes(1000)
    ok1, _ = h.send(a.sock, first)
    assert ok1 == TRUE
    ov = h.overlapped()
    data = b"y" * 300
    rc, _, _ = h.ws.WSASend(a.sock, [WSABUF(len(data), data)], 1, 0, ov, None)
    assert (rc, h.ws.WSAGetLastError()) == (SOCKET_ERROR, WSA_IO_PENDING)
    a.peer.reset()
    res, n, err = h.complete(a.sock, ov)
    assert (res, n, err) == (FALSE, 0, WSAECONNRESET)
    assert (ov.Internal, ov.InternalHigh) == (STATUS_CONNECTION_RESET, 0)
    h.close(a.sock)
    h.finish()


def test_an_acceptex_with_only_its_remote_slot_too_small_pends_even_with_a_client_queued() -> None:
    """FakeConfig.immediate 1.0 (whatever can complete in its call does), a
    client queued: an AcceptEx whose local slot is right but whose remote slot
    is one byte short does not complete inside its call (Wine's test_AcceptEx
    on Windows: a too-small slot pends and fails when the client is taken); it
    fails with STATUS_BUFFER_TOO_SMALL (WSAEFAULT) and the client stays queued
    for a right-sized AcceptEx, which completes at once."""
    h = started(immediate=1.0)
    lst, port = h.listener()
    p = h.peer()
    p.connect("127.0.0.1", port)
    h.settle()
    acc, ov, out = h.socket(), h.overlapped(), bytearray(2 * ADDR_SLOT)
    ok, _ = h.ws.AcceptEx(lst, acc, out, 0, ADDR_SLOT, ADDR_SLOT - 1, ov)
    assert (ok, h.ws.WSAGetLastError()) == (FALSE, WSA_IO_PENDING)
    res, _, err = h.complete(lst, ov)
    assert (res, err, ov.Internal) == (FALSE, WSAEFAULT, STATUS_BUFFER_TOO_SMALL)
    acc2, ov2 = h.socket(), h.overlapped()
    ok2, n2 = h.ws.AcceptEx(lst, acc2, bytearray(2 * ADDR_SLOT), 0, ADDR_SLOT, ADDR_SLOT, ov2)
    assert (ok2, n2) == (TRUE, 0)
    h.close(acc)
    h.close(acc2)
    h.finish()


def test_the_trace_records_a_thread_s_exit_with_its_exit_code() -> None:
    """A program thread returning 7: the trace has one "thread" record for
    its exit ("exit", on the thread's handle, no operation, naming the thread
    and its exit code), so a reader of the trace sees when and how each thread ended."""
    ws = FakeWinsock(seed=0, config=FakeConfig())
    err, _ = ws.WSAStartup(0x0202)
    assert err == 0
    h = ws.CreateThread(None, 0, lambda p: 7, None, 0).hThread
    assert ws.WaitForSingleObject(h, INFINITE) == WAIT_OBJECT_0
    exits = [r for r in ws.trace.records() if r.call == "exit" or "exit_code" in r.detail]
    assert [(r.what, r.call, r.handle, r.op, r.detail) for r in exits] == [("thread", "exit", h, 0, "T2 exit_code=7")]
    assert ws.CloseHandle(h) == TRUE
    assert ws.WSACleanup() == 0


def test_a_thread_ended_by_end_threads_still_reports_a_dword_exit_code() -> None:
    """ws.end_threads() (test teardown) unwinds a thread parked in a wait that
    nothing will end: its handle is signalled, and GetExitCodeThread still
    answers with a DWORD (STILL_ACTIVE: it never returned a code), not with
    a value outside the interface."""
    ws = FakeWinsock(seed=0, config=FakeConfig())
    err, _ = ws.WSAStartup(0x0202)
    assert err == 0
    ev = ws.WSACreateEvent()
    h = ws.CreateThread(None, 0, lambda p: ws.WaitForSingleObject(ev, INFINITE), None, 0).hThread
    ws.Sleep(1)  # the thread runs and parks in its wait
    assert len(ws.end_threads()) == 1
    assert ws.WaitForSingleObject(h, 0) == WAIT_OBJECT_0
    assert tuple(ws.GetExitCodeThread(h)) == (TRUE, STILL_ACTIVE)
    assert ws.CloseHandle(h) == TRUE
    assert ws.WSACloseEvent(ev) == TRUE


def test_a_thread_that_raised_has_ended_with_a_dword_exit_code() -> None:
    """A start routine raising: the exception comes out in the main thread (as
    a crash would end the test) and the thread has ended: its handle is
    signalled and GetExitCodeThread gives a DWORD that is not STILL_ACTIVE,
    so a test that catches the exception can still look at the thread."""
    ws = FakeWinsock(seed=0, config=FakeConfig())

    def bad(p: object) -> int:
        raise ValueError("boom")

    h = ws.CreateThread(None, 0, bad, None, 0).hThread
    with pytest.raises(ValueError, match="boom"):
        ws.WaitForSingleObject(h, INFINITE)
    assert ws.WaitForSingleObject(h, 0) == WAIT_OBJECT_0
    ok, code = ws.GetExitCodeThread(h)
    assert ok == TRUE and isinstance(code, int) and 0 <= code <= 0xFFFFFFFF and code != STILL_ACTIVE
    assert ws.CloseHandle(h) == TRUE


def test_a_send_buffer_reused_after_its_completion_does_not_change_what_the_peer_reads() -> None:
    """WSASend of one whole bytearray: once it has completed, the program may
    reuse the buffer (Windows has copied the bytes into the stack); the peer,
    reading only afterwards, gets the bytes as they were when sent."""
    h = started()
    a = h.accept()
    buf = bytearray(b"hello")
    ov = h.overlapped()
    rc, _, _ = h.ws.WSASend(a.sock, [WSABUF(len(buf), buf)], 1, 0, ov, None)
    assert rc == 0 or h.ws.WSAGetLastError() == WSA_IO_PENDING
    assert h.complete(a.sock, ov) == (TRUE, 5, 0)
    buf[:] = b"XXXXX"
    assert a.peer.recv(5) == b"hello"
    h.close(a.sock)
    h.finish()
