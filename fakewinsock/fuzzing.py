"""Hypothesis profiles and a shared example database, for fuzzing servers on the
fake for hours, on every core and on several machines.

Profiles (registered when the fakewinsock pytest plugin loads, so the
project's tests and yours get them alike; :func:`register_profiles` does it
outside pytest):

``ci``
    Hypothesis's own ``ci`` profile (derandomized: the same examples every
    run; no example database; no deadline; a reproduction blob printed with a
    failure), made short: 25 examples a test.  Hypothesis loads its own ``ci``
    by itself where the ``CI`` variable is set; that one (100 examples) stays
    in force until ``ci`` is chosen explicitly.
``fuzz``
    Long: 5000 examples a test, every phase but explain (which re-runs a
    failing example many times to word its explanation), no deadline, the
    reproduction blob printed, and the example database below.

A profile you register yourself under the same name wins: ``fuzz`` is not
registered if one exists, ``ci`` only replaces Hypothesis's built-in ``ci``,
and your ``conftest.py`` runs after the plugin anyway.

Pick one as Hypothesis does (``pytest --hypothesis-profile=fuzz``) or with
the environment variable ``HYPOTHESIS_PROFILE=fuzz`` (the plugin loads it
when no ``--hypothesis-profile`` is given).

A test that sets ``max_examples`` itself overrides the profile; write
``@settings(max_examples=examples(200))`` instead to keep your count under
the default profile and let ``ci`` shorten it and ``fuzz`` lengthen it.

The example database: set ``FAKEWINSOCK_EXAMPLE_DB`` to a directory (shared
by several processes, or synced between machines) or to a Redis URL
(``redis://host:6379/0``, needs ``pip install redis``; through
:class:`hypothesis.extra.redis.RedisExampleDatabase`), and the ``fuzz``
profile saves what it finds there as well as in the local
``.hypothesis/examples``, and replays from both: any machine that runs the
test with the same database (and the same code) replays every failure found
anywhere.  HypoFuzz (``hypothesis fuzz``) uses the active profile's database.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase, MultiplexedDatabase
from hypothesis.errors import InvalidArgument

__all__ = ["examples", "load_env_profile", "register_profiles", "shared_database"]

#: The environment variable naming the shared example database.
DATABASE_ENV = "FAKEWINSOCK_EXAMPLE_DB"
#: The environment variable naming the profile to load (when pytest's option does not).
PROFILE_ENV = "HYPOTHESIS_PROFILE"
CI_EXAMPLES = 25
FUZZ_EXAMPLES = 5000
_BASE_EXAMPLES = 100  # Hypothesis's default max_examples


def shared_database(spec: str | None = None) -> ExampleDatabase | None:
    """The database ``spec`` (default: ``$FAKEWINSOCK_EXAMPLE_DB``) names: a
    Redis URL or a directory; None when there is none."""
    spec = os.environ.get(DATABASE_ENV, "") if spec is None else spec
    if not spec:
        return None
    if spec.startswith(("redis://", "rediss://", "unix://")):
        try:
            import redis  # type: ignore[import-not-found,unused-ignore]
        except ImportError as e:
            raise RuntimeError(f"{DATABASE_ENV}={spec}: a Redis database needs the redis package "
                               "(pip install redis)") from e
        from hypothesis.extra.redis import RedisExampleDatabase

        return RedisExampleDatabase(redis.Redis.from_url(spec))
    return DirectoryBasedExampleDatabase(spec)


def _fuzz_database() -> ExampleDatabase | None:
    shared = shared_database()
    if shared is None:
        return None  # Hypothesis's default: the local .hypothesis/examples
    # Hypothesis's own local directory (without asking Hypothesis for it, which
    # warns when done while plugins load).
    local = os.path.join(os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY", ".hypothesis"), "examples")
    return MultiplexedDatabase(DirectoryBasedExampleDatabase(local), shared)


def _is_builtin_ci(profile: settings) -> bool:
    # (From the default profile: the active one may be this very ci.)
    builtin = settings(settings.get_profile("default"), derandomize=True, deadline=None, database=None,
                       print_blob=True, suppress_health_check=[HealthCheck.too_slow])
    return repr(profile) == repr(builtin)


def register_profiles() -> None:
    """Register ``ci`` and ``fuzz`` (see the module), leaving alone profiles
    of those names that someone else registered."""
    try:
        ci = settings.get_profile("ci")
    except InvalidArgument:  # (a Hypothesis without a built-in ci profile)
        ci = None
    if ci is None or _is_builtin_ci(ci):
        # Where Hypothesis loaded its own ci profile by itself (the CI variable is
        # set), that stays active: only choosing ci makes a run short.
        settings.register_profile("ci", ci, max_examples=CI_EXAMPLES, derandomize=True, database=None,
                                  deadline=None, print_blob=True)
    try:
        settings.get_profile("fuzz")
    except InvalidArgument:
        database = _fuzz_database()
        # From Hypothesis's default profile, not from whatever is active (on CI,
        # Hypothesis's derandomized ci profile, without a database).
        fuzz = settings(settings.get_profile("default"), max_examples=FUZZ_EXAMPLES, derandomize=False,
                        phases=[p for p in Phase if p is not Phase.explain], deadline=None, print_blob=True,
                        suppress_health_check=[HealthCheck.too_slow])
        if database is not None:
            fuzz = settings(fuzz, database=database)
        settings.register_profile("fuzz", fuzz)


def load_env_profile(given: str | None = None) -> str | None:
    """Load the profile ``$HYPOTHESIS_PROFILE`` names, unless ``given`` (a
    profile chosen otherwise, e.g. ``--hypothesis-profile``); the name loaded."""
    name = os.environ.get(PROFILE_ENV)
    if not name or given:
        return None
    settings.load_profile(name)
    return name


def examples(n: int) -> int:
    """``n`` examples scaled by the active profile: ``n`` under a profile of
    Hypothesis's default 100 examples, a quarter of it under ``ci``, 50 times
    it under ``fuzz`` (at least 1)."""
    return max(1, round(n * settings().max_examples / _BASE_EXAMPLES))
