"""Fuzzing past one machine: the ci and fuzz profiles, choosing them, leaving a
user's own profiles alone, and a shared example database that replays on one
machine what another found."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase, MultiplexedDatabase

from fakewinsock import fuzzing

pytest_plugins = ["pytester"]


@pytest.fixture
def profiles() -> Iterator[None]:
    """Restore Hypothesis's profiles (global state) after the test."""
    saved = dict(settings._profiles)
    current = settings.get_current_profile_name()
    yield
    settings._profiles.clear()
    settings._profiles.update(saved)
    settings.load_profile(current)


def test_ci_is_derandomized_and_short_and_fuzz_is_long_with_every_phase_but_explain() -> None:
    ci, fuzz = settings.get_profile("ci"), settings.get_profile("fuzz")
    assert ci.derandomize and ci.database is None and ci.max_examples == fuzzing.CI_EXAMPLES < 100
    assert not fuzz.derandomize and fuzz.max_examples == fuzzing.FUZZ_EXAMPLES > 1000 and fuzz.deadline is None
    assert set(fuzz.phases) == set(Phase) - {Phase.explain}


def test_examples_scale_with_the_profile(profiles: None) -> None:
    settings.load_profile("default")
    assert fuzzing.examples(200) == 200
    settings.load_profile("ci")
    assert fuzzing.examples(200) == 50 and fuzzing.examples(1) == 1
    settings.load_profile("fuzz")
    assert fuzzing.examples(200) == 10_000


def test_a_profile_someone_registered_is_left_alone(profiles: None) -> None:
    settings.register_profile("fuzz", max_examples=7)
    settings.register_profile("ci", max_examples=3)
    fuzzing.register_profiles()
    assert settings.get_profile("fuzz").max_examples == 7 and settings.get_profile("ci").max_examples == 3


def test_the_fuzz_profile_pools_in_the_shared_database(profiles: None, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(fuzzing.DATABASE_ENV, str(tmp_path))
    del settings._profiles["fuzz"]
    fuzzing.register_profiles()
    db = settings.get_profile("fuzz").database
    assert isinstance(db, MultiplexedDatabase)
    assert DirectoryBasedExampleDatabase(str(tmp_path)) in db._wrapped
    assert fuzzing.shared_database("") is None


def test_a_redis_url_makes_a_redis_database() -> None:
    pytest.importorskip("redis")
    from hypothesis.extra.redis import RedisExampleDatabase

    assert isinstance(fuzzing.shared_database("redis://127.0.0.1:1/0"), RedisExampleDatabase)  # no connection yet


@pytest.mark.skipif(not os.environ.get("FAKEWINSOCK_TEST_REDIS"), reason="set FAKEWINSOCK_TEST_REDIS=redis://... "
                    "to a Redis server to try it (CI has none)")
def test_a_redis_database_keeps_examples() -> None:
    db = fuzzing.shared_database(os.environ["FAKEWINSOCK_TEST_REDIS"])
    assert db is not None
    db.save(b"fakewinsock-test-key", b"an example")
    assert b"an example" in set(db.fetch(b"fakewinsock-test-key"))
    db.delete(b"fakewinsock-test-key", b"an example")


TEST_FILE = """
import os
from hypothesis import Phase, given, settings, strategies as st
from fakewinsock.fuzzing import examples

PHASES = [Phase.reuse] if os.environ.get("REPLAY_ONLY") else list(Phase)[:-1]

@settings(phases=PHASES, max_examples=examples(100))
@given(st.integers(0, 2**32))
def test_rare(x):
    assert x < 2**31 or x % 7 != 3, x

def test_profile():
    print("PROFILE", settings.get_current_profile_name(), settings().max_examples)
"""


def _machine(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, name: str, shared: Path | None,
             *args: str, replay_only: bool = False) -> pytest.RunResult:
    """A run on another machine: its own directory (and local database)."""
    home = pytester.mkdir(name)
    (home / "test_rare.py").write_text(TEST_FILE)
    monkeypatch.chdir(home)
    if shared is None:
        monkeypatch.delenv(fuzzing.DATABASE_ENV, raising=False)
    else:
        monkeypatch.setenv(fuzzing.DATABASE_ENV, str(shared))
    if replay_only:
        monkeypatch.setenv("REPLAY_ONLY", "1")
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_rare.py::test_rare", *args)


def test_what_one_machine_finds_another_replays(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = pytester.mkdir("shared-db")
    found = _machine(pytester, monkeypatch, "fuzzer", shared, "--hypothesis-profile=fuzz")
    found.assert_outcomes(failed=1)
    assert any(p.is_file() for p in shared.rglob("*"))  # what it found is in the shared database
    # Another machine, with nothing in its own database, only replaying: it fails
    # with the shared database, and without it has nothing to run.
    _machine(pytester, monkeypatch, "laptop", shared, "--hypothesis-profile=fuzz",
             replay_only=True).assert_outcomes(failed=1)
    _machine(pytester, monkeypatch, "other", None, "--hypothesis-profile=fuzz",
             replay_only=True).assert_outcomes(skipped=1)


def test_the_profile_is_chosen_by_option_or_environment(pytester: pytest.Pytester,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_p=TEST_FILE)
    monkeypatch.delenv("CI", raising=False)
    out = pytester.runpytest_subprocess("-s", "-k", "profile", "--hypothesis-profile=ci")
    out.stdout.fnmatch_lines(["*PROFILE ci 25*"])
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "fuzz")
    pytester.runpytest_subprocess("-s", "-k", "profile").stdout.fnmatch_lines(["*PROFILE fuzz 5000*"])
    # A user's conftest.py registering its own fuzz wins over the plugin's.
    pytester.makeconftest("from hypothesis import settings\nsettings.register_profile('fuzz', max_examples=9)\n")
    pytester.runpytest_subprocess("-s", "-k", "profile").stdout.fnmatch_lines(["*PROFILE fuzz 9*"])
