"""A pytest plugin that runs the whole test suite on a mutant instead of ovserver.

``OVSERVER_MUTANT=<name> pytest -p tests.mutants.swap`` replaces, before any
test module is imported, ovserver's server class of the mutant's model (and,
for a mutant whose bug is in the protocol, ovserver's ``Hub``) by the
mutant's, wherever ovserver's modules refer to them, also in their dicts
(``ovserver.SERVERS``, which ``create_server`` reads: until 2026-12-04 it was
missed, so every test that built its server with ``create_server``, e.g.
through ``tests/ovserver_session.py``, tested the correct server): every test
that builds an ovserver server (``create_server``, ``simulate``, the classes
imported from ``ovserver``) then tests the broken one.  ``tests/mutants/gap.py`` uses it to
show which mutants the suite misses.
"""

from __future__ import annotations

import os
import sys

import pytest

from ovserver._protocol import Hub


def _swap(name: str) -> None:
    import ovserver  # noqa: F401  (every ovserver module imported before the swap)
    import ovserver.__main__  # noqa: F401
    from tests.mutants import MUTANTS

    found = [m for m in MUTANTS if m.name == name]
    if not found:
        raise pytest.UsageError(f"OVSERVER_MUTANT={name}: no such mutant")
    cls = found[0].server
    base = cls.__mro__[1]
    hub = getattr(cls, "HUB", None)
    for mod_name, mod in list(sys.modules.items()):
        if not (mod_name == "ovserver" or mod_name.startswith("ovserver.")):
            continue
        for attr, value in list(vars(mod).items()):
            if value is base:
                setattr(mod, attr, cls)
            elif hub is not None and value is Hub:
                setattr(mod, attr, hub)
            elif isinstance(value, dict):  # a registry (ovserver.SERVERS, which create_server reads)
                for key, item in list(value.items()):
                    if item is base:
                        value[key] = cls


def pytest_configure(config: pytest.Config) -> None:
    name = os.environ.get("OVSERVER_MUTANT")
    if name:
        _swap(name)
