#!/usr/bin/env bash
# End to end under Wine: `ovserver serve` on the real backend (Windows python,
# Wine's ws2_32), driven by Linux-side clients over 127.0.0.1.
#
#   tools/wine/e2e.sh [CLIENTS [LINES]]        (default 100 clients x 10 lines)
#   E2E_MODELS="iocp" tools/wine/e2e.sh        (only these models; default: events routines iocp)
#
# For each model (events, routines, iocp with the CPU count of workers) and
# mode (echo, chat): start
#   winpython -m ovserver serve --host 127.0.0.1 --port 0 --model M --mode D
# wait for its "... on 127.0.0.1:PORT; Ctrl+C stops" line, run
# tools/wine/loadclient.py against it (every reply verified), then stop it the
# way Ctrl+C does: SIGINT to the Wine process, which Wine turns into a
# CTRL_C_EVENT for the console control handler ovserver installs. The server
# must then close everything and exit 0 with its "stopped" line.
#
# Then the hostile cases (tools/wine/hostile.py; about 50 s in all):
#   flood   (each model) 64 clients that send and never read are cut off
#           by --max-queued, each sees a reset, and a fresh client is then
#           served within 5 s;
#   hold    (each model) Ctrl+C while 8 such clients hold sends in flight
#           stops the server within 2 s, exit 0, with its "stopped" line;
#   cutoff  (each model) a chat member that never reads, cut off by --max-queued, sees a
#           reset (not a clean end of a truncated stream);
#   --host localhost is served (or refused with one line and status 2);
#   --port 99999 exits 2 with one line;
#   examples/my_server.py says where it listens, shouts, and stops on Ctrl+C.
# Runs tools/wine/setup.sh first. Exit status 0 when every run passed.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
CLIENTS="${1:-100}"
LINES="${2:-10}"
HOST_PY="${PYTHON:-python3}"
MODELS="${E2E_MODELS:-events routines iocp}"
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

start_server() {  # LOG SERVE-ARGS...: start it, set $server_pid and $port (empty if it did not start)
    local log="$1" i
    shift
    setsid "$HERE/winpython" -m ovserver serve "$@" >"$log" 2>&1 </dev/null &
    server_pid=$!
    port=""
    for i in $(seq 1 600); do  # 60 s: a loaded machine starts Wine slowly
        port="$(sed -n 's/^ovserver: .* on 127\.0\.0\.1:\([0-9][0-9]*\)\( (.*)\)\{0,1\}; Ctrl+C stops$/\1/p' "$log")"
        [ -n "$port" ] && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
}

timed_stop() {  # LOG: Ctrl+C; sets $stop_s (until python.exe is gone) and $stop_status; 1 if not clean
    local log="$1" wpid t0 i
    wpid="$(server_wine_pid)"
    t0=$(date +%s.%N)
    [ -n "$wpid" ] && kill -INT "$wpid" 2>/dev/null
    for i in $(seq 1 400); do
        [ -n "$wpid" ] && kill -0 "$wpid" 2>/dev/null || break
        sleep 0.02
    done
    stop_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
    if [ -n "$wpid" ] && kill -0 "$wpid" 2>/dev/null; then
        kill -KILL "$wpid" 2>/dev/null
    fi
    wait "$server_pid"
    stop_status=$?
    [ "$stop_status" = 0 ] && grep -q '^ovserver: stopped;' "$log"
}

run_one() {  # MODEL MODE
    local model="$1" mode="$2" log="$LOGDIR/serve-$1-$2.log" rc start
    start=$(date +%s.%N)
    start_server "$log" --host 127.0.0.1 --port 0 --model "$model" --mode "$mode"
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

fail_with_log() {  # WHAT LOG
    echo "FAIL $1; the server's output:"; sed 's/^/  | /' "$2"
}

hostile_flood() {  # MODEL: non-readers cut off, each reset; then a fresh client served within 5 s
    local model="$1" log="$LOGDIR/flood-$1.log" rc
    start_server "$log" --port 0 --model "$model" --max-queued 65536
    [ -n "$port" ] || { fail_with_log "flood/$model: the server did not start" "$log"; stop_server; return 1; }
    timeout 180 "$HOST_PY" "$HERE/hostile.py" flood --port "$port" --clients 64 --timeout 60 | sed 's/^/  /'
    rc=${PIPESTATUS[0]}
    if ! timed_stop "$log"; then fail_with_log "flood/$model: no clean stop (exit $stop_status)" "$log"; return 1; fi
    [ "$rc" = 0 ] || { echo "FAIL flood/$model"; return 1; }
    echo "ok   flood/$model: 64 non-readers cut off with a reset, a fresh client served after them"
}

hostile_hold() {  # MODEL: Ctrl+C while non-readers hold sends in flight: stopped within 2 s, exit 0
    local model="$1" log="$LOGDIR/hold-$1.log" fifo="$LOGDIR/hold-$1.fifo" out="$LOGDIR/hold-$1.out" hpid i
    start_server "$log" --port 0 --model "$model" --max-queued 16000000
    [ -n "$port" ] || { fail_with_log "hold/$model: the server did not start" "$log"; stop_server; return 1; }
    mkfifo "$fifo"
    timeout 120 "$HOST_PY" "$HERE/hostile.py" hold --port "$port" --clients 8 --bytes 6000000 <"$fifo" >"$out" 2>&1 &
    hpid=$!
    exec 7>"$fifo"  # the holders keep their connections until this closes
    for i in $(seq 1 600); do
        grep -q '^hostile hold: holding' "$out" && break
        kill -0 "$hpid" 2>/dev/null || break
        sleep 0.1
    done
    sed 's/^/  /' "$out"
    if ! grep -q '^hostile hold: holding 8/8' "$out"; then
        exec 7>&-; wait "$hpid"; stop_server
        echo "FAIL hold/$model: the clients could not all send"; return 1
    fi
    local clean=0
    timed_stop "$log" || clean=1
    exec 7>&-
    wait "$hpid"
    if [ "$clean" != 0 ]; then fail_with_log "hold/$model: no clean stop (exit $stop_status)" "$log"; return 1; fi
    sed -n 's/^ovserver: stopped; /  server: /p' "$log"
    if awk -v s="$stop_s" 'BEGIN { exit !(s > 2.0) }'; then
        echo "FAIL hold/$model: Ctrl+C took $stop_s s to stop the server (limit 2 s)"; return 1
    fi
    echo "ok   hold/$model: Ctrl+C with 8 non-readers holding sends stopped the server in $stop_s s, exit 0"
}

hostile_cutoff() {  # MODEL: a chat member that never reads is cut off with a reset
    local model="$1" log="$LOGDIR/cutoff-$1.log" rc
    start_server "$log" --port 0 --model "$model" --mode chat --max-queued 65536
    [ -n "$port" ] || { fail_with_log "cutoff/$model: the server did not start" "$log"; stop_server; return 1; }
    timeout 120 "$HOST_PY" "$HERE/hostile.py" cutoff --port "$port" --bytes 12000000 | sed 's/^/  /'
    rc=${PIPESTATUS[0]}
    if ! timed_stop "$log"; then fail_with_log "cutoff/$model: no clean stop (exit $stop_status)" "$log"; return 1; fi
    [ "$rc" = 0 ] || { echo "FAIL cutoff/$model: the silent member did not see a reset"; return 1; }
    echo "ok   cutoff/$model: a member cut off by --max-queued saw a reset"
}

bad_input() {  # --host localhost works or is refused in one line; --port 99999 is one line, status 2
    local log="$LOGDIR/localhost.log" status lines
    start_server "$log" --host localhost --port 0
    if [ -n "$port" ]; then
        timeout 60 "$HOST_PY" "$HERE/loadclient.py" --port "$port" --mode echo --clients 2 --lines 3 | sed 's/^/  /'
        status=${PIPESTATUS[0]}
        timed_stop "$log" || status=1
        [ "$status" = 0 ] || { fail_with_log "--host localhost: listening, but not serving" "$log"; return 1; }
        echo "ok   --host localhost: $(sed -n 's/^ovserver: .* on \([^;]*\); Ctrl+C stops$/listens on \1/p' "$log"), served"
    else
        wait "$server_pid"; status=$?
        lines=$(wc -l <"$log")
        if [ "$status" != 2 ] || [ "$lines" != 1 ]; then
            fail_with_log "--host localhost: neither served nor refused in one line (exit $status)" "$log"; return 1
        fi
        echo "ok   --host localhost: refused: $(cat "$log")"
    fi
    log="$LOGDIR/port.log"
    "$HERE/winpython" -m ovserver serve --port 99999 >"$log" 2>&1 </dev/null
    status=$?
    lines=$(wc -l <"$log")
    if [ "$status" != 2 ] || [ "$lines" != 1 ] || ! grep -q -- '--port' "$log"; then
        fail_with_log "--port 99999: not one line and status 2 (exit $status)" "$log"; return 1
    fi
    echo "ok   --port 99999: exit 2: $(cat "$log")"
}

example_server() {  # examples/my_server.py: its listening line, a reply, Ctrl+C
    local log="$LOGDIR/example.log" i wpid t0 reply
    setsid "$HERE/winpython" examples/my_server.py 0 >"$log" 2>&1 </dev/null &
    server_pid=$!
    port=""
    for i in $(seq 1 600); do
        port="$(sed -n 's/^my_server: shouting on 127\.0\.0\.1:\([0-9][0-9]*\); Ctrl+C stops$/\1/p' "$log")"
        [ -n "$port" ] && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$port" ] || { fail_with_log "example: no listening line" "$log"; stop_server; return 1; }
    reply="$("$HOST_PY" -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"quiet please\n"); s.shutdown(socket.SHUT_WR)
got = b""
while (d := s.recv(100)): got += d
print(got.decode().strip())' "$port" 2>&1)"
    timed_stop "$log"
    if [ "$stop_status" != 0 ] || ! grep -q '^my_server: stopped' "$log" || [ "$reply" != "QUIET PLEASE" ]; then
        echo "  reply: $reply"; fail_with_log "example: exit $stop_status" "$log"; return 1
    fi
    echo "ok   example: examples/my_server.py listened on port $port, shouted back, stopped by Ctrl+C in $stop_s s"
}

runs=0
for model in $MODELS; do
    for mode in echo chat; do
        runs=$((runs + 1)); run_one "$model" "$mode" || failures=$((failures + 1))
    done
done
for model in $MODELS; do
    runs=$((runs + 1)); hostile_flood "$model" || failures=$((failures + 1))
    runs=$((runs + 1)); hostile_hold "$model" || failures=$((failures + 1))
    runs=$((runs + 1)); hostile_cutoff "$model" || failures=$((failures + 1))
done
runs=$((runs + 1)); bad_input || failures=$((failures + 1))
runs=$((runs + 1)); example_server || failures=$((failures + 1))

if [ "$failures" = 0 ]; then
    echo "e2e.sh: ovserver serve under Wine: all $runs runs passed"
    rm -rf "$LOGDIR"
    exit 0
fi
echo "e2e.sh: ovserver serve under Wine: $failures of $runs runs FAILED (logs in $LOGDIR)"
exit 1
