"""The README stands alone: its links (and the docs' links) point inside the
repository, and what its commands write is ignored by git."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_links_point_inside_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target) or target.startswith("#"):
            continue
        path = (doc.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT) and path.exists(), f"{doc.name}: link to {target} leads nowhere"
    # A path that leaves the repository, written as code rather than as a link.
    assert not re.search(r"`\.\./", text), f"{doc.name} points outside the repository"


def test_files_the_readme_writes_are_ignored() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    written = re.findall(r"--trace (\S+)", text)
    assert written, "the README shows no command writing a trace"
    rc = subprocess.run(["git", "check-ignore", "-q", *written], cwd=ROOT).returncode
    assert rc == 0, f"git does not ignore {written}"
