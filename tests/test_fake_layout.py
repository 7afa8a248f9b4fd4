"""The fake's house, as docs/fake-map.md draws it: the parts of the simulated
kernel never reach up into the API surface, the API surface's mixins reach
only the state they share (``_api_base``), and no class grows back into one
that holds the whole fake."""

from __future__ import annotations

import ast
from pathlib import Path

import fakewinsock
from fakewinsock import FakeWinsock

PACKAGE = Path(fakewinsock.__file__).parent
#: The parts of the simulated kernel and network (docs/fake-map.md): none calls the API surface.
PARTS = ("_kernel", "_ops", "_net", "_sockets", "_peer", "_iocp", "_threads", "_sim", "_trace", "_invariants")
#: The longest class the fake may have, in lines (the API surface was one class of ~1,800).
MAX_CLASS_LINES = 600


def _imports(module: str) -> set[str]:
    """The package-relative modules ``module`` imports (``from ._x import ...``, ``from . import _x``)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                out.add(node.module)
            else:
                out.update(a.name for a in node.names)
    return out


def _api_modules() -> list[str]:
    return sorted(p.stem for p in PACKAGE.glob("_api_*.py"))


def test_no_part_imports_the_api_surface() -> None:
    bad = [f"{part} imports {m}" for part in PARTS for m in sorted(_imports(part))
           if m == "_fake" or m.startswith("_api_")]
    assert not bad, bad


def test_the_mixins_share_only_api_base() -> None:
    mods = _api_modules()
    assert "_api_base" in mods and len(mods) >= 5, mods
    bad = [f"{m} imports {i}" for m in mods for i in sorted(_imports(m))
           if i == "_fake" or (i.startswith("_api_") and i != "_api_base")]
    assert not bad, bad


def test_fakewinsock_is_made_of_every_mixin() -> None:
    """Each ``_api_*`` module (but the base) holds one mixin, and FakeWinsock has them all."""
    from fakewinsock._api_base import FakeBase

    mixins = {cls.__module__ for cls in FakeWinsock.__mro__ if cls is not FakeWinsock and issubclass(cls, FakeBase)}
    expected = {f"fakewinsock.{m}" for m in _api_modules()}
    assert mixins == expected


def test_no_class_holds_the_whole_fake() -> None:
    long: list[str] = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                n = node.end_lineno - node.lineno + 1
                if n > MAX_CLASS_LINES:
                    long.append(f"{path.name}: class {node.name} has {n} lines")
    assert not long, long
