#!/usr/bin/env bash
# End to end under Wine: `ovserver serve` on the real backend (Windows python,
# Wine's ws2_32), driven by Linux-side clients over 127.0.0.1.
#
#   tools/wine/e2e.sh [CLIENTS [LINES]]        (default 100 clients x 10 lines)
#
# For each model (events, routines) and mode (echo, chat): start
#   winpython -m ovserver serve --host 127.0.0.1 --port 0 --model M --mode D
# wait for its "... on 127.0.0.1:PORT; Ctrl+C stops" line, run
# tools/wine/loadclient.py against it (every reply verified), then stop it the
# way Ctrl+C does: SIGINT to the Wine process, which Wine turns into a
# CTRL_C_EVENT for the console control handler ovserver installs. The server
# must then close everything and exit 0 with its "stopped" line.
# Runs tools/wine/setup.sh first. Exit status 0 when every run passed.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
CLIENTS="${1:-100}"
LINES="${2:-10}"
HOST_PY="${PYTHON:-python3}"
LOGDIR="$(mktemp -d "${TMPDIR:-/tmp}/ovserver-e2e.XXXXXX")"

"$HERE/setup.sh" || { echo "e2e.sh: tools/wine/setup.sh failed" >&2; exit 1; }
cd "$REPO_ROOT"

failures=0
server_pid=""

# The Windows python.exe of the server: the Wine process in the server's own
# session (setsid below) whose command line runs python.exe.
server_wine_pid() { pgrep -s "$server_pid" -f 'python\.exe' | head -n 1; }

stop_server() {  # SIGINT (Ctrl+C) to the server, then wait for it; 1 if it did not stop
    local wpid i
    wpid="$(server_wine_pid)"
    [ -n "$wpid" ] && kill -INT "$wpid" 2>/dev/null
    for i in $(seq 1 100); do
        kill -0 "$server_pid" 2>/dev/null || return 0
        sleep 0.2
    done
    echo "e2e.sh: the server did not stop within 20 s of Ctrl+C; killing it" >&2
    wpid="$(server_wine_pid)"
    [ -n "$wpid" ] && kill -KILL "$wpid" 2>/dev/null
    kill -TERM "$server_pid" 2>/dev/null
    return 1
}

run_one() {  # MODEL MODE
    local model="$1" mode="$2" log="$LOGDIR/serve-$1-$2.log" port="" i rc start
    start=$(date +%s.%N)
    setsid "$HERE/winpython" -m ovserver serve --host 127.0.0.1 --port 0 --model "$model" --mode "$mode" \
        >"$log" 2>&1 </dev/null &
    server_pid=$!
    for i in $(seq 1 300); do
        port="$(sed -n 's/^ovserver: .* on 127\.0\.0\.1:\([0-9][0-9]*\); Ctrl+C stops$/\1/p' "$log")"
        [ -n "$port" ] && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "FAIL $model/$mode: the server did not start; its output:"; sed 's/^/  | /' "$log"
        stop_server >/dev/null 2>&1
        return 1
    fi
    "$HOST_PY" "$HERE/loadclient.py" --port "$port" --mode "$mode" --clients "$CLIENTS" --lines "$LINES"
    rc=$?
    if ! stop_server; then rc=1; fi
    wait "$server_pid"
    local status=$?
    local elapsed
    elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    if [ "$status" != 0 ] || ! grep -q '^ovserver: stopped;' "$log"; then
        echo "FAIL $model/$mode: the server did not stop cleanly (exit $status); its output:"
        sed 's/^/  | /' "$log"
        return 1
    fi
    sed -n 's/^ovserver: stopped; /  server: /p' "$log"
    if [ "$rc" != 0 ]; then
        echo "FAIL $model/$mode (${elapsed} s)"; return 1
    fi
    echo "ok   $model/$mode: $CLIENTS clients x $LINES lines, every reply verified, stopped by Ctrl+C (${elapsed} s)"
}

for model in events routines; do
    for mode in echo chat; do
        run_one "$model" "$mode" || failures=$((failures + 1))
    done
done

if [ "$failures" = 0 ]; then
    echo "e2e.sh: ovserver serve under Wine: all 4 runs passed"
    rm -rf "$LOGDIR"
    exit 0
fi
echo "e2e.sh: ovserver serve under Wine: $failures of 4 runs FAILED (logs in $LOGDIR)"
exit 1
