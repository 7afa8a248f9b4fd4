#!/usr/bin/env bash
# Mutation score: mutmut 3 plants bugs in the modules [tool.mutmut] in pyproject.toml
# names, runs the tests that cover each one, and this prints the score per module
# and every surviving mutant (less those tools/mutation-equivalent.txt lists, with
# the reason no test can kill them).
#
#   tools/mutation.sh                  # a fresh run of everything (mutants/ is remade)
#   tools/mutation.sh 'ovserver.*'     # a fresh run of ovserver's mutants only (or 'fakewinsock.*')
#   tools/mutation.sh --keep           # keep mutants/: rerun only what is not done (or changed)
#   tools/mutation.sh --keep 'ovserver._events*'   # rerun the mutants of one module (or function)
#   tools/mutation.sh --report ['ovserver.*']      # print the score of the last run again
#
# Two workers (the project's machines have two cores), at nice 10; on a shared
# machine set MUTATION_WORKERS=1 and MUTATION_NICE=15.  Exit status as
# tools/mutation_report.py: 1 when a module is under its target, 2 when incomplete.
#
# mutmut first runs every selected test once (to learn which tests reach which
# function), which takes long; for one module, narrow the selection to the
# tests that can reach it with pytest's own PYTEST_ADDOPTS, e.g.
#   PYTEST_ADDOPTS='-k "not ovserver and not ntstatus"' tools/mutation.sh 'fakewinsock._net*'
#   PYTEST_ADDOPTS='-k "ovserver"' tools/mutation.sh 'ovserver._events*'
# (a narrower selection can only leave more survivors: the score stays honest).
set -euo pipefail
cd "$(dirname "$0")/.."

keep=0
report_only=0
patterns=()
for arg in "$@"; do
    case "$arg" in
        --keep) keep=1 ;;
        --report) report_only=1 ;;
        -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown option $arg (see --help)" >&2; exit 2 ;;
        *) patterns+=("$arg") ;;
    esac
done

if [ ! -x .venv/bin/mutmut ]; then
    python3 -m venv .venv
    .venv/bin/pip install -q -e '.[dev]'
fi

targets=(--target ovserver=95 --target fakewinsock=90)
if [ "${#patterns[@]}" -gt 0 ]; then
    first="${patterns[0]}"
    targets+=(--only "${first%%[*?[]*}")  # report the modules the first pattern names
fi

if [ "$report_only" = 0 ]; then
    if [ "$keep" = 0 ]; then
        rm -rf mutants
    fi
    mkdir -p mutants
    start=$(date +%s)
    # mutmut's progress line is redrawn in place; its log keeps the last state.
    if ! nice -n "${MUTATION_NICE:-10}" .venv/bin/mutmut run --max-children "${MUTATION_WORKERS:-2}" \
            "${patterns[@]}" > mutants/run.log 2>&1; then
        tail -c 3000 mutants/run.log >&2
        echo "mutmut run failed (log: mutants/run.log)" >&2
        exit 2
    fi
    end=$(date +%s)
    echo "mutmut run: $((end - start)) s"
fi
exec .venv/bin/python tools/mutation_report.py "${targets[@]}"
