"""SetFileCompletionNotificationModes: a mode once set cannot be removed, and
FILE_SKIP_COMPLETION_PORT_ON_SUCCESS needs a handle opened for overlapped I/O.

Sources (Windows behaviour): Wine's ``dlls/ntdll/tests/file.c``,
``test_file_completion_information`` (plain ``ok()`` checks, run on Windows,
through NtSetInformationFile(FileIoCompletionNotificationInformation), which
SetFileCompletionNotificationModes wraps): Flags 0 after
FILE_SKIP_COMPLETION_PORT_ON_SUCCESS succeeds and the flag stays set, and a
write that then succeeds at once queues no packet; the flag on a file opened
without FILE_FLAG_OVERLAPPED fails with STATUS_INVALID_PARAMETER
(ERROR_INVALID_PARAMETER). Microsoft's SetFileCompletionNotificationModes page:
"after a mode has been set for a file handle, it cannot be removed".
docs/semantics-findings.md section 40.
"""

from __future__ import annotations

import pytest

from fakewinsock import WSABUF
from fakewinsock.constants import (
    AF_INET,
    ERROR_INVALID_HANDLE,
    ERROR_INVALID_PARAMETER,
    FALSE,
    FILE_SKIP_COMPLETION_PORT_ON_SUCCESS,
    FILE_SKIP_SET_EVENT_ON_HANDLE,
    INVALID_SOCKET,
    IPPROTO_TCP,
    SOCK_STREAM,
    TRUE,
    WSA_IO_PENDING,
)

from ._harness import Harness
from .test_iocp import MS, an_immediate_receive_queues_nothing, associate, nothing_queued


@pytest.mark.needs_immediate
@pytest.mark.parametrize("later", [0, FILE_SKIP_SET_EVENT_ON_HANDLE], ids=["zero", "another-flag"])
def test_a_mode_once_set_cannot_be_removed(h: Harness, later: int) -> None:
    """FILE_SKIP_COMPLETION_PORT_ON_SUCCESS, then a call without it: TRUE, and
    the mode stays: a receive that completes inside its call still queues no
    packet."""
    a = h.accept()
    port = h.port()
    associate(h, a.sock, port, 9)
    assert h.ws.SetFileCompletionNotificationModes(a.sock, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS) == TRUE
    assert h.ws.SetFileCompletionNotificationModes(a.sock, later) == TRUE
    an_immediate_receive_queues_nothing(h, a.sock, port, a.peer)


@pytest.mark.parametrize("flags", [FILE_SKIP_COMPLETION_PORT_ON_SUCCESS,
                                   FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE],
                         ids=["skip-port", "both"])
def test_skip_completion_port_needs_an_overlapped_socket(h: Harness, flags: int) -> None:
    """A socket made without WSA_FLAG_OVERLAPPED is a handle for synchronous
    I/O: FALSE, ERROR_INVALID_PARAMETER; the same call on an overlapped socket
    succeeds."""
    s = h.ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, 0)
    assert s != INVALID_SOCKET
    h.sockets.append(s)
    assert h.ws.SetFileCompletionNotificationModes(s, flags) == FALSE
    assert h.ws.WSAGetLastError() == ERROR_INVALID_PARAMETER
    assert h.ws.SetFileCompletionNotificationModes(h.socket(), flags) == TRUE


def test_a_socket_for_synchronous_io_cannot_join_a_port(h: Harness) -> None:
    """CreateIoCompletionPort with a socket made without WSA_FLAG_OVERLAPPED:
    0 (NULL), ERROR_INVALID_PARAMETER, with an existing port or a new one (which
    is not left behind); the socket stays without a port, so a second try fails
    the same way; an overlapped socket joins the same port. The I/O manager
    refuses a completion port for a handle opened for synchronous I/O (Wine's
    ntdll tests/file.c test_file_io_completion, run on Windows:
    NtSetInformationFile(FileCompletionInformation), which CreateIoCompletionPort
    wraps, on a pipe opened without FILE_FLAG_OVERLAPPED gives
    STATUS_INVALID_PARAMETER; docs/semantics-findings.md section 46)."""
    s = h.ws.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, None, 0, 0)
    assert s != INVALID_SOCKET
    h.sockets.append(s)
    port = h.port()
    for existing in (port, 0, port):
        h.ws.SetLastError(0)
        assert h.ws.CreateIoCompletionPort(s, existing, 5, 0) == 0
        assert h.ws.GetLastError() == ERROR_INVALID_PARAMETER
    assert h.ws.CreateIoCompletionPort(h.socket(), port, 6, 0) == port


@pytest.mark.needs_immediate
def test_a_send_that_completes_at_once_queues_nothing(h: Harness) -> None:
    """FILE_SKIP_COMPLETION_PORT_ON_SUCCESS holds for sends as for receives
    (test_file_completion_information: a WriteFile that succeeds at once queues
    nothing, one that pends queues its packet): a small WSASend that completes
    inside its call reports every byte, signals its event and queues no
    packet; one that pends queues its packet with its byte count."""
    a = h.accept()
    port = h.port()
    associate(h, a.sock, port, 9)
    assert h.ws.SetFileCompletionNotificationModes(a.sock, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS) == TRUE
    sent = 0
    for _ in range(20):
        ov = h.overlapped()
        buf = bytearray(b"hello")
        rc, n, _ = h.ws.WSASend(a.sock, [WSABUF(5, buf)], 1, 0, ov, None)
        sent += 5
        if rc == 0:
            assert n == 5 and h.is_signalled(ov.hEvent)
            nothing_queued(h, port, 0)
            assert a.peer.recv_exactly(sent) == b"hello" * (sent // 5)
            return
        assert h.ws.WSAGetLastError() == WSA_IO_PENDING
        assert h.ws.GetQueuedCompletionStatus(port, MS) == (TRUE, 5, 9, ov)
    pytest.fail("no send ever completed at once")


def test_modes_on_a_handle_that_is_no_file_fail_with_invalid_handle(h: Harness) -> None:
    """An event's or a completion port's handle: the information class is a
    file object's, so NtSetInformationFile fails with
    STATUS_OBJECT_TYPE_MISMATCH (the allio library's Windows test "wait
    packets do not support skipping the completion port on synchronous
    completion": that status for FILE_SKIP_COMPLETION_PORT_ON_SUCCESS on a
    wait packet's handle), which kernel32 maps to ERROR_INVALID_HANDLE."""
    for handle in (h.event(), h.port()):
        assert h.ws.SetFileCompletionNotificationModes(handle, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS) == FALSE
        assert h.ws.WSAGetLastError() == ERROR_INVALID_HANDLE
