"""tools/mutation_report.py: the list of equivalent mutants (tools/mutation-equivalent.txt)
names each by its changed lines and the unchanged lines around them."""

from __future__ import annotations

from pathlib import Path

from tools.mutation_report import Mutant, describe, load_equivalents, matches

ROOT = Path(__file__).resolve().parent.parent

ORIG = """\
    total = 0
    for x in xs:
        if x.a:
            continue
        total += x.n
        log("counted", x)
        seen.add(x)
        last = x
        if x.b:
            continue
        total -= 1
    return total, last"""


def mutant(old_line: int) -> Mutant:
    """``continue`` made ``break`` at line ``old_line`` (0-based) of ORIG."""
    lines = ORIG.splitlines()
    lines[old_line] = lines[old_line].replace("continue", "break")
    m = Mutant("ovserver._events.xǁEventServerǁ_handle_group__mutmut_1", "ovserver._events",
               "EventServer._handle_group", "survived")
    describe(m, {"xǁEventServerǁ_handle_group__mutmut_orig": ORIG,
                 "xǁEventServerǁ_handle_group__mutmut_1": "\n".join(lines)})
    return m


def test_an_entry_with_context_names_one_place_of_a_line_that_occurs_twice(tmp_path: Path) -> None:
    """The same change (``continue`` to ``break``) at two places of a function:
    the entry's context lines pick the second; without context it would match
    both, hiding the first (a real gap) behind the second's reason."""
    listed = tmp_path / "equivalent.txt"
    listed.write_text("""# a comment
ovserver._events.EventServer._handle_group
| log("counted", x)
| if x.b:
-     continue
+     break
| total -= 1
why: x.b is only ever true of the last,
where break and continue are the same.
""", encoding="utf-8")
    [entry] = load_equivalents(listed)
    assert entry.context == ('log("counted", x)', "if x.b:", "total -= 1")
    assert entry.reason == "x.b is only ever true of the last, where break and continue are the same."
    first, second = mutant(3), mutant(9)
    assert (first.removed, first.added) == (second.removed, second.added) == (("continue",), ("break",))
    assert matches(entry, second) and not matches(entry, first)
    entry.context = ()
    assert matches(entry, first) and matches(entry, second)


def test_every_entry_of_the_list_parses_and_names_its_context() -> None:
    """Every entry has its reason and, unless its function is one line, the
    lines around its change (so a reader can judge it without the source)."""
    entries = load_equivalents(ROOT / "tools" / "mutation-equivalent.txt")
    assert len(entries) > 100
    one_line = {"fakewinsock._kernel._no_world", "fakewinsock._iocp.Port.describe"}
    assert [e.function for e in entries if not e.context and e.function not in one_line] == []
    assert all(e.reason for e in entries)
    keys = [(e.function, e.removed, e.added, e.context) for e in entries]
    assert len(set(keys)) == len(keys)  # a mutant listed twice: the second entry could never match
