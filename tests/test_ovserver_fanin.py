"""Chat with many members talking at once: a member that reads everything is
never cut off as a slow reader.

Every receive (up to ``recv_size``, 16 KB) of a chat line is queued for every
other member, and one WSASend per member takes at most ``send_size`` from its
queue per turn.  With ServerConfig's 64 KiB sends, a handful of members
talking at once queue more for each member than its send takes away, so every
queue grows past ``max_queued`` and members are cut off however fast they read.
Found under Wine (robust4's audit): a chat member reading in a dedicated thread
was reset while 20 members sent at full speed, in every model.  ``ovserver
serve`` therefore sends everything queued for a client in one WSASend (up to
``--max-queued``, :func:`ovserver.__main__.serve_config`).

On the fake: every operation completes at once, the window is wide (so every
member takes everything sent to it at once), and 12 members each send 150 KB
of lines at the same moment while one more member only reads.
"""

from __future__ import annotations

import pytest

from fakewinsock import FakeWinsock
from ovserver.__main__ import _parser, serve_config
from tests.ovserver_session import MODELS, Session, exact

SENDERS = 12
LINES = 3000  # 52 bytes each: 156 KB a sender


def talk(model: str, send_size: int) -> tuple[Session, int]:
    """The session (run), and how many bytes the reader should have received."""
    ws = FakeWinsock(seed=0, config=exact(1.0, window=1 << 22, background=1.0, max_calls=2_000_000))
    s = Session(model, "chat", ws=ws, workers=2, send_size=send_size)
    reader = s.client(0.1)
    senders = [s.client(0.2 + i / 100) for i in range(SENDERS)]
    expected = 0
    for i, c in enumerate(senders):
        lines = [b"%02d %06d %s\n" % (i, k, b"x" * 40) for k in range(LINES)]
        c.send(1.0, b"".join(lines))
        expected += sum(len(c_line) for c_line in lines)
    s.run(stop_ms=400)
    names = sum(len(c.name) + 2 for c in senders) * LINES  # "<name>: " before each line
    welcome = len(b"* welcome " + reader.name + b"\n")
    return s, expected + names + welcome


@pytest.mark.parametrize("model", MODELS)
def test_a_reading_member_is_not_cut_off_while_many_talk(model: str) -> None:
    config = serve_config(_parser().parse_args(["serve", "--mode", "chat"]), "127.0.0.1")
    s, expected = talk(model, config.send_size)
    reader = s.clients[0]
    assert s.server.stats.cut_off == 0 and not reader.reset_by_server
    assert len(reader.data) == expected


@pytest.mark.parametrize("model", MODELS)
def test_with_64_kib_sends_they_were_cut_off(model: str) -> None:
    """The premise: with ServerConfig's default sends the same chat cuts off
    members that read everything (the reader among them)."""
    s, _ = talk(model, 64 * 1024)
    assert s.server.stats.cut_off > 0 and s.clients[0].reset_by_server
