"""The scripted clients that fakewinsock.testing and ovserver simulate share:
one implementation, free of Hypothesis, on the fake's public calls only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import fakewinsock.testing
from fakewinsock._scripted import ScriptedClient
from fakewinsock.testing import _checker
from ovserver import _simulate

ROOT = Path(__file__).resolve().parent.parent


def test_both_clients_are_the_shared_scripted_client() -> None:
    assert issubclass(_checker._Client, ScriptedClient)
    assert issubclass(_simulate._Client, ScriptedClient)


def test_simulate_runs_without_hypothesis() -> None:
    """``ovserver simulate`` needs the standard library only: with Hypothesis
    made unimportable, a run (swarm traffic, chat) still imports and passes."""
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "from ovserver import simulate\n"
            "r = simulate(20, 3, mode='chat', seed=1)\n"
            "assert r.ok, r.errors\n"
            "print('ok', sorted(m for m in sys.modules if m.startswith('fakewinsock.testing')))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok []"


def _defined_names(tree: ast.AST) -> set[str]:
    """Every name a module defines: functions, classes, attributes it assigns, parameters."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def test_testing_reaches_into_no_private_object_of_the_fake() -> None:
    """fakewinsock.testing uses the fake's public names only: it imports no
    private name from outside its package, and reads no private attribute it
    does not define itself (``peer._ep``, ``ws._net``...)."""
    package = Path(fakewinsock.testing.__file__).parent
    trees = {p.name: ast.parse(p.read_text()) for p in sorted(package.glob("*.py"))}
    own: set[str] = set().union(*(_defined_names(t) for t in trees.values()))
    own |= set(vars(ScriptedClient)) | {"_data"}
    bad: list[str] = []
    for name, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 2:  # from ..x import y: the fake's
                bad += [f"{name}: imports {a.name} from {node.module}" for a in node.names
                        if a.name.startswith("_")]
            elif (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                  and not node.attr.startswith("__") and node.attr not in own):
                bad.append(f"{name}:{node.lineno}: .{node.attr}")
    assert not bad, bad
