"""A stop during a connect storm, on every model (tests.mutants.properties.storm_stop_property): the
clients connect at one instant and the stop comes while the server still accepts them.  The correct
servers pass; tests/test_mutants.py checks that the property catches stop-before-inbox (an events group
that reads its stop flag before it takes the clients handed over to it), which the README recipe and
``ovserver simulate`` miss."""

from __future__ import annotations

import pytest

from ovserver._core import Server
from ovserver._events import EventServer
from ovserver._iocp import IocpServer
from ovserver._routines import RoutineServer
from tests.mutants.properties import STORM_STOP_SETTINGS, storm_stop_property

MODELS: dict[str, type[Server]] = {"events": EventServer, "routines": RoutineServer, "iocp": IocpServer}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_a_stop_during_a_connect_storm(model: str) -> None:
    storm_stop_property(MODELS[model], STORM_STOP_SETTINGS)()
