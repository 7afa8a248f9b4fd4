"""Deliberately broken ovserver servers, and which property test must catch each.

See :mod:`tests.mutants.ovserver_mutants` (the servers) and
:mod:`tests.mutants.properties` (the property test bodies).
"""

from __future__ import annotations

from dataclasses import dataclass

from ovserver import Server

from . import ovserver_mutants as m

__all__ = ["Mutant", "MUTANTS"]


@dataclass(frozen=True)
class Mutant:
    name: str
    server: type[Server]
    bug: str  # what is wrong, in a few words
    source: str  # where the bug is described: the seed's problem list or the semantics doc
    caught_by: str  # the property (tests.mutants.properties.PROPERTIES) that must catch it


MUTANTS = [
    Mutant("one-receive-one-message", m.OneReceiveOneMessage, "a receive is taken to be one whole message",
           "seed 问题 (first receive gets every send)", "echo"),
    Mutant("forgets-WSAResetEvent", m.ForgetsWSAResetEvent, "the group's event is never reset",
           "seed 问题总结 4 (信号置空)", "echo"),
    Mutant("reset-is-not-an-exit", m.ResetIsNotAnExit, "10054 skipped: only 0 bytes closes the group",
           "seed 问题总结 3 (强制退出 10054)", "echo"),
    Mutant("zero-bytes-is-not-an-exit", m.ZeroBytesIsNotAnExit, "0 bytes is not an exit: receive again",
           "seed 问题总结 3 (优雅退出 0)", "echo"),
    Mutant("immediate-handled-twice", m.ImmediateHandledTwice, "WSARecv returned 0: handled inline and on its event",
           "semantics: immediate success still notifies", "echo"),
    Mutant("acceptex-after-first-receive", m.AcceptExAfterFirstReceive, "next AcceptEx posted when a receive completes",
           "seed 问题总结 1 (accept 位置有误)", "chat"),
    Mutant("shared-overlapped", m.SharedOverlapped, "one OVERLAPPED for a client's send and receive",
           "seed g_allOlp[i]; semantics: OVERLAPPED in use", "echo"),
    Mutant("reply-in-receive-buffer", m.ReplyInReceiveBuffer, "reply built in the buffer a WSARecv writes into",
           "semantics: buffers valid until completion", "chat"),
    Mutant("acceptex-true-is-failure", m.AcceptExTrueIsFailure, "AcceptEx TRUE (immediate) taken as an error",
           "semantics: AcceptEx must handle TRUE", "echo"),
    Mutant("ignores-aborted-completions", m.IgnoresAbortedCompletions, "10053/995 completions ignored at shutdown",
           "semantics: closesocket with operations pending", "echo"),
    Mutant("exits-without-reaping", m.ExitsWithoutReaping, "WSACleanup before cancelled operations complete",
           "semantics: OVERLAPPED valid until completion", "echo"),
    Mutant("more-than-64-events", m.MoreThan64Events, "a 64th client: 65 events in one wait",
           "seed 优化 (group 64 events per wait)", "flood"),
    Mutant("acceptex-receives-data", m.AcceptExReceivesData, "AcceptEx with dwReceiveDataLength > 0, data ignored",
           "seed 问题总结 1 (accept 参数有误)", "echo"),
]
