#!/usr/bin/env bash
# The conformance suite on the real backend (ctypes over Wine's ws2_32), in one
# command:
#
#   tools/wine/conformance.sh [PYTEST_ARGS...]
#
# Runs tools/wine/setup.sh (installs Wine, the Windows embeddable CPython and
# the Windows test wheels once; a no-op after that), then
#   pytest tests/conformance -k real -rxX
# with the project's pytest plugin named (-p): the Windows python has no
# installed fakewinsock, so its pytest11 entry point is not seen, and
# pyproject.toml's --strict-config fails on the plugin's ini option
# (winsock_check_invariants) before any test runs (exit status 4).
# under the Windows python. The summary lists every expected failure with its
# reason (the Wine divergences, see tests/conformance/conftest.py). Exit status:
# pytest's (non-zero on any failure, unexpected pass of a strict xfail, or no
# test run); 124 when it ran out of time (CONFORMANCE_TIMEOUT seconds, default
# 900), in which case this prefix's Wine processes are stopped.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"

"$HERE/setup.sh" || { echo "conformance.sh: tools/wine/setup.sh failed" >&2; exit 1; }

cd "$REPO_ROOT"
start=$(date +%s.%N)
timeout --kill-after=10 "${CONFORMANCE_TIMEOUT:-900}" \
    "$HERE/winpython" -m pytest tests/conformance -k real -p fakewinsock.pytest_plugin -p no:cacheprovider -rxX -q "$@"
rc=$?
elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "conformance.sh: timed out after ${CONFORMANCE_TIMEOUT:-900} s; stopping Wine" >&2
    "$HERE/stop.sh"
    rc=124
fi
echo "conformance.sh: real backend under Wine: pytest exit status $rc, ${elapsed} s" \
     "(the deselected tests are the same bodies on the fake backends: plain pytest runs those)"
exit "$rc"
