#!/usr/bin/env bash
# The conformance suite on the real backend (ctypes over Wine's ws2_32), in one
# command:
#
#   tools/wine/conformance.sh [PYTEST_ARGS...]
#
# Runs tools/wine/setup.sh (installs Wine, the Windows embeddable CPython and
# the Windows test wheels once; a no-op after that), then
#   pytest tests/conformance -k real -rxX
# under the Windows python, with the project's pytest plugin loaded: through
# its pytest11 entry point where the Windows python sees one (the
# fakewinsock.egg-info that `pip install -e .` leaves in the checkout, found on
# sys.path's first entry, the checkout), else named with -p (a checkout never
# installed: without the plugin, pyproject.toml's --strict-config fails on its
# ini option winsock_check_invariants before any test runs, exit status 4;
# naming it where the entry point is seen fails too: "Plugin already
# registered under a different name", exit status 3).
# The summary lists every expected failure with its
# reason (the Wine divergences, see tests/conformance/conftest.py). Exit status:
# pytest's (non-zero on any failure, unexpected pass of a strict xfail, or no
# test run); 1 when pytest never printed its summary (see below); 124 when it
# ran out of time (CONFORMANCE_TIMEOUT seconds, default 900), in which case
# this prefix's Wine processes are stopped.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"

"$HERE/setup.sh" || { echo "conformance.sh: tools/wine/setup.sh failed" >&2; exit 1; }

cd "$REPO_ROOT"
plugin=(-p fakewinsock.pytest_plugin)
if "$HERE/winpython" -c "import importlib.metadata as m, sys
sys.exit(0 if any(e.module == 'fakewinsock.pytest_plugin' for e in m.entry_points(group='pytest11')) else 1)"; then
    plugin=()  # the entry point loads it
fi
# Under load (other Wine programs in the same prefix) python.exe now and then
# never starts and Wine still exits 0, in about 0.1 s: a run whose output has
# no pytest summary line is retried (twice, 20 s apart), then fails (exit 1)
# rather than passing with no test run.
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
start=$(date +%s.%N)
for attempt in 1 2 3; do
    timeout --kill-after=10 "${CONFORMANCE_TIMEOUT:-900}" \
        "$HERE/winpython" -m pytest tests/conformance -k real "${plugin[@]}" -p no:cacheprovider -rxX -q "$@" \
        | tee "$out"
    rc=${PIPESTATUS[0]}
    if grep -Eq '(^|[ =])[0-9]+ (passed|failed|errors?|xfailed|xpassed|skipped|deselected)\b.* in [0-9.]+s' "$out"; then
        break
    fi
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then break; fi
    echo "conformance.sh: no pytest summary (exit status $rc; python.exe did not start?), attempt $attempt of 3" >&2
    rc=1
    [ "$attempt" = 3 ] || sleep 20
done
elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "conformance.sh: timed out after ${CONFORMANCE_TIMEOUT:-900} s; stopping Wine" >&2
    "$HERE/stop.sh"
    rc=124
fi
echo "conformance.sh: real backend under Wine: pytest exit status $rc, ${elapsed} s" \
     "(the deselected tests are the same bodies on the fake backends: plain pytest runs those)"
exit "$rc"
