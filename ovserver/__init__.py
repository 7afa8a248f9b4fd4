"""ovserver: the lecture notes' overlapped-IO server, on the Winsock interface.

Three I/O models (``"events"``: event notification over at most 64 events per
thread; ``"routines"``: completion routines and alertable waits; ``"iocp"``: a
completion port and a pool of worker threads) drive one socket-free
line protocol (echo or chat, see :mod:`ovserver._protocol`).  The server gets
its Winsock backend passed in, so the same code runs on the fake backend and on
real Windows::

    from fakewinsock import get_backend
    from ovserver import ServerConfig, run_server

    run_server(get_backend("real"), ServerConfig(port=12345, model="routines", mode="chat"))

:func:`simulate` runs it on the fake with scripted clients and checks every reply.
"""

# isort: off
# First (no `from __future__` before it either): before the imports that take
# the first second or two of a start under Wine, when this process is the
# ovserver program, a Ctrl+C from here on is recorded (and stops the server
# once it runs), not a traceback (see _ctrl_c).
from . import _ctrl_c  # noqa: F401
# isort: on
from collections.abc import Callable

from fakewinsock import Winsock

from ._core import Server, ServerConfig, ServerError, ServerStats
from ._events import EventServer
from ._iocp import IocpServer
from ._protocol import Limits, Mode
from ._routines import RoutineServer
from ._simulate import SimulationReport, simulate

__all__ = [
    "ServerConfig",
    "Limits",
    "Mode",
    "Server",
    "ServerStats",
    "ServerError",
    "create_server",
    "run_server",
    "simulate",
    "SimulationReport",
]


#: The server class of each model.
SERVERS: dict[str, type[Server]] = {"events": EventServer, "routines": RoutineServer, "iocp": IocpServer}


def create_server(ws: Winsock, config: ServerConfig | None = None) -> Server:
    """A server for ``config.model`` on backend ``ws`` (not started: call ``run``)."""
    config = config if config is not None else ServerConfig()
    return SERVERS[config.model](ws, config)


def run_server(ws: Winsock, config: ServerConfig | None = None,
               ready: Callable[[Server], None] | None = None) -> ServerStats:
    """Run a server on ``ws`` until it is stopped (``server.request_stop()``, which
    ``ready(server)`` can arrange); returns its statistics."""
    return create_server(ws, config).run(ready)
