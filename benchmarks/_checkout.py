"""Put the checkout's packages on ``sys.path`` for a benchmark, behind PYTHONPATH.

So ``PYTHONPATH=build/compiled python benchmarks/bench_scale.py`` measures the
compiled build (``tools/build_compiled.py``) and a plain run the pure-Python
package; :func:`use_checkout` says which one the benchmark imported.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def use_checkout() -> None:
    """Insert the checkout after sys.path[0] (the script's folder) and the PYTHONPATH entries."""
    entries = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path.insert(1 + len(entries), str(ROOT))


def build_name() -> str:
    """Which fakewinsock was imported: the compiled build (and where) or pure Python."""
    import fakewinsock._kernel as kernel

    path = Path(kernel.__file__ or "")
    if path.suffix == ".py":
        return f"pure Python ({path.parent})"
    return f"compiled with mypyc ({path.parent})"
