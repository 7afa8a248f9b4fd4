#!/usr/bin/env bash
# End to end under Wine: `ovserver serve` on the real backend (Windows python,
# Wine's ws2_32), driven by Linux-side clients over 127.0.0.1.
#
#   tools/wine/e2e.sh [CLIENTS [LINES]]        (default 100 clients x 10 lines)
#   E2E_MODELS="iocp" tools/wine/e2e.sh        (only these models; default: events routines iocp)
#   E2E_CASES="misbehave busy" tools/wine/e2e.sh  (only these parts; default: all, see the end)
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
# Then AT_ONCE clients (environment, default 1000; 0 skips it) connected to the
# events model at once (its thread groups: 16 threads of 63 clients for 1000):
# loadclient.py --together has each client's first line echoed and holds every
# client until all have been, then each sends 4 more lines (about 25 s).
#
# Then the hostile cases (tools/wine/hostile.py; about 50 s in all):
#   flood   (each model; --high-water 0, as flood, hold and misbehave: they
#           check the --max-queued cut-off, which back-pressure, on by default
#           in echo, would defer to the stall time-out) 64 clients that send and
#           never read are cut off by --max-queued, each sees a reset, and a fresh client is then
#           served within 5 s;
#   hold    (each model) Ctrl+C while 8 such clients hold sends in flight
#           stops the server within 2 s, exit 0, with its "stopped" line;
#   cutoff  (each model) a chat member that never reads, cut off by --max-queued, sees a
#           reset (not a clean end of a truncated stream);
#   misbehave (each model; tools/wine/misbehave.py, about 15 s a model) one
#           server with --max-line 4096 --max-queued 262144 --max-clients 6
#           meets, in turn, binary/NUL/CRLF lines, a last line without newline
#           at EOF, a half-close with 200 KB of replies owed, a 1-byte
#           dribble, a slow reader, a silent client, a client that never
#           reads, an oversized line (and one that goes on sending), resets
#           mid-line and mid-reply (more than --max-clients of them: every
#           place freed), more clients than --max-clients, 200 connections
#           reset in the listen backlog, lines exactly at --max-line (LF,
#           CRLF), empty, a lone CR, one byte over (error line, EOF), 100 each
#           of connect-and-close / connect-and-reset / line-then-close, 200
#           clients at once (each its line, then EOF), an urgent (MSG_OOB) byte mid-line
#           (left out), a FIN before any byte (EOF), each beside a well-behaved witness
#           that must stay served; then Ctrl+C stops it within 2 s, exit 0,
#           nothing abandoned;
#   chat-misbehave (each model; misbehave.py chat, about 5 s) an oversized
#           line, a partial line at EOF, a late joiner and a member that half-closes
#           in chat mode, as the protocol's rules say;
#   chat-busy (each model; misbehave.py chat-busy, about 10 s) 20 members send
#           1000 lines each at once while 150 others leave mid-broadcast (FIN or
#           reset) and 4 new members join: 3 readers get every line whole and in
#           order, each new member its welcome within 2 s (the iocp model took
#           2-4 s while its AcceptEx packet waited in the port's FIFO), or
#           later only while the server used under 0.4 s of CPU (a loaded
#           machine, not a busy server) and within 10 s; then
#           Ctrl+C stops the server within 2 s, nothing abandoned;
#   chat-flood (each model; misbehave.py chat-flood, about 2 s) 10 members send
#           400 KB of 1000-byte lines at full speed while reading everything, and
#           one more only reads: none is cut off, the reader gets every line whole
#           and in order (with 64 KiB sends, members that read everything were
#           cut off as slow readers); then Ctrl+C stops the server within 2 s;
#   backpressure (each model, echo and chat; misbehave.py backpressure, about
#           6 s each) --max-queued 262144 --high-water 65536 --stall-timeout-ms
#           1500: a client that reads slowly gets 24 x --max-queued whole (without
#           --high-water it was cut off), a client that never reads is reset once
#           stalled for 1.5 s, not before; then Ctrl+C stops the server;
#   defaults (each model; about 20 s each) serve's back-pressure defaults:
#           with only --max-queued 262144 given, in echo it is on (--high-water
#           65536, --stall-timeout-ms 10000): misbehave.py backpressure's slow
#           reader gets 24 x --max-queued whole and its deaf client is reset
#           once stalled 10 s; in chat (every default) it is off:
#           misbehave.py deaf-chat's deaf member is reset (--max-queued) while
#           the reader's lines (10 MB at 4 MB/s) never pause over 5 s (with
#           back-pressure the chat stopped for 10 s);
#   busy    (each model) while 200 clients send and read without a pause, a
#           new client is served within 5 s, and Ctrl+C stops the server
#           within 2 s, exit 0, with its "stopped" line;
#   idle    (each model; misbehave.py idle, about 8 s) --max-clients 3
#           --idle-timeout-ms 1000: three silent clients (one dribbling bytes
#           that never make a line) are closed once idle for 1 s, and a new
#           client, locked out by them until then, is served; then a client
#           sending 6 MB while reading 32 KB/s, held back by echo's default
#           back-pressure, is not closed as idle for 6 s (it was, after 82 KB);
#   storm   (each model, echo and chat; tools/wine/storm.py, about 20 s each)
#           every default; for 15 s all at once: 30 slowloris clients (a byte
#           a second, no newline), 30 silent ones, 2 endless lines, 5 clients
#           that never read (chat: beside a talker flooding), 2 threads of
#           connect-then-reset (thousands), 2 of half-closers (200 KB, FIN,
#           every reply checked in echo): a witness served every 0.5 s within
#           5 s, the server's memory under 400 MB; then Ctrl+C while it goes
#           on stops the server within 2 s, nothing abandoned, and every
#           connection the storm held sees its end;
#   lines   (each model, echo and chat; misbehave.py lines, every default, about 5 s each)
#           echo: a line of exactly --max-line (65536: several receives) echoed, one
#           over: the error line, then EOF; 3 MB, a partial line and FIN sent before
#           reading: every line echoed, then EOF; chat: lines sent right before a FIN
#           reach the others, a line cut by a reset no one, --max-line routed and one
#           over refused, 200 members at once each get every other's line; then
#           (chat) two Ctrl+C 1 ms apart: stopped (0) or exited at once (130) within 2 s;
#   --host localhost is served (or refused with one line and status 2);
#   --port 99999 exits 2 with one line, and so does --max-queued 65536 (under one
#           line of the default --max-line 65536: such a line reset a client that read everything);
#   fd-limit (each model; misbehave.py fd-limit, about 10 s, and 15 s once to create a Wine
#           prefix of its own) 300 file descriptors for the server's wineserver: clients that send a
#           line and stay until one is not served (its AcceptEx calls fail), and 3
#           more wait 3 s (the server must use under 1 s of CPU meanwhile), then
#           all leave: a fresh client is served within 10 s, and Ctrl+C stops it
#           within 2 s (every AcceptEx failed at once again and again: the
#           routines and iocp models neither served nor stopped);
#   handles (events chat, routines echo, iocp chat; misbehave.py churn, about 25 s each) the server run by
#           tools/wine/handles.py, which prints its count of Windows handles every second, with --max-line 4096
#           --idle-timeout-ms 500: 3 rounds of 280 clients of every kind that ends (a line; resets mid-line and
#           mid-reply; a line over --max-line; a half-close with replies owed; connect-close and -reset; silent,
#           closed when idle): every client right, a fresh one served after each round, and the handle count
#           once they have gone no higher after the later rounds than after the first (+8); a leak of every
#           other connection's event (events model) added about 110 a round;
#   early-stop: Ctrl+C 0.05-0.8 s into a start (one model after another) stops the
#           server as a late one (exit 0, "stopped"), unless it came in Python's own
#           start-up (nothing of the program's code in its output but the package's first import);
#   examples/my_server.py says where it listens, shouts, and stops on Ctrl+C;
#   wrapper-term: SIGTERM to the winpython wrapper of a listening server (as `timeout` sends)
#           ends its python.exe within 5 s (it went on listening, orphaned, before winpython forwarded it);
#   stillborn: tools/wine/stillborn.py, the events model in-process with a group
#           thread that never runs (as Wine's CreateThread gives nearly out of
#           descriptors): the client handed to that group is served all the same.
#   zombies (each model; misbehave.py zombies, about 15 s) chat with --max-clients 120: 3 rounds of 50
#           members that flood 1000-byte lines, never read and close (a reset) beside 50 that half-close and
#           read to the end; then 120 fresh members must each be welcomed within 5 s (under Wine 8.0, 2-4
#           places a round were held for good in every model: Wine read the reset as 0 bytes and the WSASend
#           pending to that client never completed; the server now asks getpeername at such an EOF);
# Runs tools/wine/setup.sh first. Exit status 0 when every run passed.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
CLIENTS="${1:-100}"
LINES="${2:-10}"
HOST_PY="${PYTHON:-python3}"
MODELS="${E2E_MODELS:-events routines iocp}"
LOGDIR="$(mktemp -d "${TMPDIR:-/tmp}/ovserver-e2e.XXXXXX")"

# Each client is a socket on both sides (the Linux clients, Wine's server):
# the soft limit on open files up to the hard one (AT_ONCE needs over 1000).
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true

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

SERVE_WRAP=()  # a command that start_server runs the server through (fd-limit: env, prlimit)
SERVE=(-m ovserver serve)  # what winpython runs (handles: tools/wine/handles.py, serve that counts its handles)
start_server() {  # LOG SERVE-ARGS...: start it, set $server_pid and $port (empty if it did not start)
    local log="$1" i
    shift
    setsid "${SERVE_WRAP[@]}" "$HERE/winpython" "${SERVE[@]}" "$@" >"$log" 2>&1 </dev/null &
    server_pid=$!
    port=""
    for i in $(seq 1 600); do  # 60 s: a loaded machine starts Wine slowly
        port="$(sed -n 's/^ovserver: .* on 127\.0\.0\.1:\([0-9][0-9]*\)\( (.*)\)\{0,1\}; Ctrl+C stops$/\1/p' "$log" 2>/dev/null)"  # the log may not exist yet
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

at_once() {  # MODEL N: N clients served at once (each has had a line echoed before any goes on)
    local model="$1" n="$2" log="$LOGDIR/at-once-$1.log" rc start elapsed
    start=$(date +%s.%N)
    start_server "$log" --host 127.0.0.1 --port 0 --model "$model" --mode echo
    [ -n "$port" ] || { fail_with_log "at-once/$model: the server did not start" "$log"; stop_server; return 1; }
    timeout 600 "$HOST_PY" "$HERE/loadclient.py" --port "$port" --mode echo --clients "$n" --lines 5 --together \
        --timeout 240 --deadline 540 | sed 's/^/  /'
    rc=${PIPESTATUS[0]}
    if ! timed_stop "$log"; then fail_with_log "at-once/$model: no clean stop (exit $stop_status)" "$log"; return 1; fi
    sed -n 's/^ovserver: stopped; /  server: /p' "$log"
    elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    [ "$rc" = 0 ] || { echo "FAIL at-once/$model: $n clients at once (${elapsed} s)"; return 1; }
    echo "ok   at-once/$model: $n clients connected and served at once, every reply verified (${elapsed} s)"
}

fail_with_log() {  # WHAT LOG
    echo "FAIL $1; the server's output:"; sed 's/^/  | /' "$2"
}

hostile_flood() {  # MODEL: non-readers cut off, each reset; then a fresh client served within 5 s
    local model="$1" log="$LOGDIR/flood-$1.log" rc
    start_server "$log" --port 0 --model "$model" --max-line 16384 --max-queued 65536 --high-water 0
    [ -n "$port" ] || { fail_with_log "flood/$model: the server did not start" "$log"; stop_server; return 1; }
    timeout 180 "$HOST_PY" "$HERE/hostile.py" flood --port "$port" --clients 64 --timeout 60 | sed 's/^/  /'
    rc=${PIPESTATUS[0]}
    if ! timed_stop "$log"; then fail_with_log "flood/$model: no clean stop (exit $stop_status)" "$log"; return 1; fi
    [ "$rc" = 0 ] || { echo "FAIL flood/$model"; return 1; }
    echo "ok   flood/$model: 64 non-readers cut off with a reset, a fresh client served after them"
}

wait_for_line() {  # FILE REGEX PID: until FILE has a line matching REGEX, or PID has ended (60 s at most)
    local i
    for i in $(seq 1 600); do
        grep -qs "$2" "$1" && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

hostile_hold() {  # MODEL: Ctrl+C while non-readers hold sends in flight: stopped within 2 s, exit 0
    local model="$1" log="$LOGDIR/hold-$1.log" fifo="$LOGDIR/hold-$1.fifo" out="$LOGDIR/hold-$1.out" hpid
    start_server "$log" --port 0 --model "$model" --max-queued 16000000 --high-water 0
    [ -n "$port" ] || { fail_with_log "hold/$model: the server did not start" "$log"; stop_server; return 1; }
    mkfifo "$fifo"
    timeout 120 "$HOST_PY" "$HERE/hostile.py" hold --port "$port" --clients 8 --bytes 6000000 <"$fifo" >"$out" 2>&1 &
    hpid=$!
    exec 7>"$fifo"  # the holders keep their connections until this closes
    wait_for_line "$out" '^hostile hold: holding' "$hpid"
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
    start_server "$log" --port 0 --model "$model" --mode chat --max-line 16384 --max-queued 65536
    [ -n "$port" ] || { fail_with_log "cutoff/$model: the server did not start" "$log"; stop_server; return 1; }
    timeout 120 "$HOST_PY" "$HERE/hostile.py" cutoff --port "$port" --bytes 12000000 | sed 's/^/  /'
    rc=${PIPESTATUS[0]}
    if ! timed_stop "$log"; then fail_with_log "cutoff/$model: no clean stop (exit $stop_status)" "$log"; return 1; fi
    [ "$rc" = 0 ] || { echo "FAIL cutoff/$model: the silent member did not see a reset"; return 1; }
    echo "ok   cutoff/$model: a member cut off by --max-queued saw a reset"
}

prompt_clean_stop() {  # WHAT LOG: Ctrl+C; exit 0, its "stopped" line, nothing abandoned, within 2 s (sets $stop_s)
    if ! timed_stop "$2"; then fail_with_log "$1: no clean stop (exit $stop_status)" "$2"; return 1; fi
    sed -n 's/^ovserver: stopped; /  server: /p' "$2"
    if grep -q 'gave up waiting' "$2"; then fail_with_log "$1: operations abandoned at the stop" "$2"; return 1; fi
    if awk -v s="$stop_s" 'BEGIN { exit !(s > 2.0) }'; then
        echo "FAIL $1: Ctrl+C took $stop_s s to stop the server (limit 2 s)"; return 1
    fi
}

hostile_misbehave() {  # MODEL: misbehave.py's cases beside a witness, then a clean, prompt stop
    local model="$1" log="$LOGDIR/misbehave-$1.log" rc
    local limits=(--max-line 4096 --max-queued 262144 --max-clients 6)
    start_server "$log" --port 0 --model "$model" "${limits[@]}" --high-water 0
    [ -n "$port" ] || { fail_with_log "misbehave/$model: the server did not start" "$log"; stop_server; return 1; }
    timeout 300 "$HOST_PY" "$HERE/misbehave.py" --port "$port" "${limits[@]}" --label "$model/" | sed 's/^/  /'
    rc=${PIPESTATUS[0]}
    prompt_clean_stop "misbehave/$model" "$log" || return 1
    [ "$rc" = 0 ] || { echo "FAIL misbehave/$model"; return 1; }
    echo "ok   misbehave/$model: every misbehaving client handled as documented, the witness served; stopped in $stop_s s"
}

hostile_chat() {  # MODEL: chat-mode misbehaviour (misbehave.py chat), then a clean stop
    local model="$1" log="$LOGDIR/chat-$1.log" rc
    start_server "$log" --port 0 --model "$model" --mode chat --max-line 4096
    [ -n "$port" ] || { fail_with_log "chat/$model: the server did not start" "$log"; stop_server; return 1; }
    timeout 120 "$HOST_PY" "$HERE/misbehave.py" chat --port "$port" --max-line 4096 | sed 's/^/  /'
    rc=${PIPESTATUS[0]}
    if ! timed_stop "$log"; then fail_with_log "chat/$model: no clean stop (exit $stop_status)" "$log"; return 1; fi
    [ "$rc" = 0 ] || { echo "FAIL chat/$model"; return 1; }
    echo "ok   chat/$model: oversized line, partial line at EOF, late joiner, half-closed member: as documented"
}

hostile_chat_busy() {  # MODEL: a busy chat with members leaving mid-broadcast and new ones joining, then Ctrl+C
    local model="$1" log="$LOGDIR/chat-busy-$1.log" rc
    start_server "$log" --port 0 --model "$model" --mode chat
    [ -n "$port" ] || { fail_with_log "chat-busy/$model: the server did not start" "$log"; stop_server; return 1; }
    timeout 240 "$HOST_PY" "$HERE/misbehave.py" chat-busy --port "$port" --senders 20 --fresh-max-s 2.0 --server-pid "$(server_wine_pid)" | sed 's/^/  /'
    rc=${PIPESTATUS[0]}
    prompt_clean_stop "chat-busy/$model" "$log" || return 1
    [ "$rc" = 0 ] || { echo "FAIL chat-busy/$model"; return 1; }
    echo "ok   chat-busy/$model: every line whole and in order to the readers while members left and joined; stopped in $stop_s s"
}

hostile_zombies() {  # MODEL: chat: clients that flood, never read and close leave no place held
    local model="$1" log="$LOGDIR/zombies-$1.log" rc
    start_server "$log" --port 0 --model "$model" --mode chat --max-clients 120
    [ -n "$port" ] || { fail_with_log "zombies/$model: the server did not start" "$log"; stop_server; return 1; }
    timeout 240 "$HOST_PY" "$HERE/misbehave.py" zombies --port "$port" --max-clients 120 --rounds 3 | sed 's/^/  /'
    rc=${PIPESTATUS[0]}
    prompt_clean_stop "zombies/$model" "$log" || return 1
    [ "$rc" = 0 ] || { echo "FAIL zombies/$model"; return 1; }
    echo "ok   zombies/$model: every place free again after deaf flooders closed; stopped in $stop_s s"
}

hostile_chat_flood() {  # MODEL: members that read everything are not cut off while many send at full speed
    local model="$1" log="$LOGDIR/chat-flood-$1.log" rc
    start_server "$log" --port 0 --model "$model" --mode chat
    [ -n "$port" ] || { fail_with_log "chat-flood/$model: the server did not start" "$log"; stop_server; return 1; }
    timeout 240 "$HOST_PY" "$HERE/misbehave.py" chat-flood --port "$port" | sed 's/^/  /'
    rc=${PIPESTATUS[0]}
    prompt_clean_stop "chat-flood/$model" "$log" || return 1
    [ "$rc" = 0 ] || { echo "FAIL chat-flood/$model"; return 1; }
    echo "ok   chat-flood/$model: members that read everything kept while 10 flooded; stopped in $stop_s s"
}

hostile_backpressure() {  # MODEL: --high-water: a slow reader gets 24 x --max-queued; a deaf client is reset once stalled
    local model="$1" mode log rc
    for mode in echo chat; do
        log="$LOGDIR/backpressure-$model-$mode.log"
        start_server "$log" --port 0 --model "$model" --mode "$mode" --max-queued 262144 --high-water 65536 \
            --stall-timeout-ms 1500
        [ -n "$port" ] || { fail_with_log "backpressure/$model: the server did not start" "$log"; stop_server; return 1; }
        timeout 120 "$HOST_PY" "$HERE/misbehave.py" backpressure --port "$port" --mode "$mode" --max-queued 262144 \
            --stall-timeout-ms 1500 | sed 's/^/  /'
        rc=${PIPESTATUS[0]}
        prompt_clean_stop "backpressure/$model/$mode" "$log" || return 1
        [ "$rc" = 0 ] || { echo "FAIL backpressure/$model/$mode"; return 1; }
        grep -q '1 cut off as slow consumers' "$log" || { fail_with_log "backpressure/$model/$mode: no stall counted" "$log"; return 1; }
        echo "ok   backpressure/$model/$mode: the slow reader got everything, the deaf client was cut off once stalled; stopped in $stop_s s"
    done
}

hostile_defaults() {  # MODEL: serve's back-pressure defaults: on in echo, off in chat
    local model="$1" log rc
    log="$LOGDIR/defaults-$model-echo.log"
    start_server "$log" --port 0 --model "$model" --max-queued 262144  # echo: --high-water 65536, 10 s stall
    [ -n "$port" ] || { fail_with_log "defaults/$model: the server did not start" "$log"; stop_server; return 1; }
    timeout 120 "$HOST_PY" "$HERE/misbehave.py" backpressure --port "$port" --mode echo --max-queued 262144 \
        --stall-timeout-ms 10000 | sed 's/^/  /'
    rc=${PIPESTATUS[0]}
    prompt_clean_stop "defaults/$model/echo" "$log" || return 1
    [ "$rc" = 0 ] || { echo "FAIL defaults/$model/echo"; return 1; }
    grep -q '1 cut off as slow consumers' "$log" || { fail_with_log "defaults/$model/echo: no stall counted" "$log"; return 1; }
    log="$LOGDIR/defaults-$model-chat.log"
    start_server "$log" --port 0 --model "$model" --mode chat  # every default: --max-queued 1048576
    [ -n "$port" ] || { fail_with_log "defaults/$model: the server did not start" "$log"; stop_server; return 1; }
    timeout 120 "$HOST_PY" "$HERE/misbehave.py" deaf-chat --port "$port" | sed 's/^/  /'
    rc=${PIPESTATUS[0]}
    prompt_clean_stop "defaults/$model/chat" "$log" || return 1
    [ "$rc" = 0 ] || { echo "FAIL defaults/$model/chat"; return 1; }
    echo "ok   defaults/$model: echo: a slow reader got everything, a deaf client was cut off after the 10 s stall;" \
        "chat: a deaf member was cut off without pausing the chat; stopped in $stop_s s"
}

hostile_busy() {  # MODEL: Ctrl+C while clients are busy sending and reading: stopped within 2 s, exit 0
    local model="$1" log="$LOGDIR/busy-$1.log" out="$LOGDIR/busy-$1.out" lpid
    start_server "$log" --port 0 --model "$model"
    [ -n "$port" ] || { fail_with_log "busy/$model: the server did not start" "$log"; stop_server; return 1; }
    timeout 120 "$HOST_PY" "$HERE/misbehave.py" busy --port "$port" --clients 200 --seconds 60 >"$out" 2>&1 &
    lpid=$!
    wait_for_line "$out" '^busy: ' "$lpid"  # every client connected and served, all mid-stream
    sed 's/^/  /' "$out"
    if ! grep -q '^busy: 200 clients served' "$out"; then
        kill "$lpid" 2>/dev/null; wait "$lpid" 2>/dev/null; stop_server
        echo "FAIL busy/$model: the clients did not all get going"; return 1
    fi
    local fresh=0
    grep -q '^busy: .*; a fresh client served' "$out" || fresh=1
    sleep 1
    local clean=0
    timed_stop "$log" || clean=1
    kill "$lpid" 2>/dev/null; wait "$lpid" 2>/dev/null
    if [ "$clean" != 0 ]; then fail_with_log "busy/$model: no clean stop (exit $stop_status)" "$log"; return 1; fi
    sed -n 's/^ovserver: stopped; /  server: /p' "$log"
    if awk -v s="$stop_s" 'BEGIN { exit !(s > 2.0) }'; then
        echo "FAIL busy/$model: Ctrl+C took $stop_s s to stop the server (limit 2 s)"; return 1
    fi
    [ "$fresh" = 0 ] || { echo "FAIL busy/$model: a new client was not served while 200 were busy"; return 1; }
    echo "ok   busy/$model: a new client served beside 200 busy ones; Ctrl+C then stopped the server in $stop_s s, exit 0"
}

hostile_idle() {  # MODEL: --max-clients 3 --idle-timeout-ms 1000: silent clients closed, a locked-out one then served
    local model="$1" log="$LOGDIR/idle-$1.log" out="$LOGDIR/idle-$1.out" status
    start_server "$log" --port 0 --model "$model" --max-clients 3 --idle-timeout-ms 1000
    [ -n "$port" ] || { fail_with_log "idle/$model: the server did not start" "$log"; stop_server; return 1; }
    timeout 60 "$HOST_PY" "$HERE/misbehave.py" idle --port "$port" --clients 3 --timeout-ms 1000 >"$out" 2>&1
    status=$?
    sed 's/^/  /' "$out"
    timed_stop "$log" || { fail_with_log "idle/$model: no clean stop (exit $stop_status)" "$log"; return 1; }
    sed -n 's/^ovserver: stopped; /  server: /p' "$log"
    if [ "$status" != 0 ] || ! grep -q '^ovserver: stopped; .*; 3 closed when idle' "$log"; then
        fail_with_log "idle/$model: silent clients not closed when idle, or the locked-out client not served" "$log"
        return 1
    fi
    echo "ok   idle/$model: 3 silent clients (one a slowloris) closed after --idle-timeout-ms 1000, a locked-out client then served, a held-back reader not closed"
}

hostile_lines() {  # MODEL: every default at --max-line and a half-close (misbehave.py lines), echo and chat; a double Ctrl+C
    local model="$1" mode log rc wpid t0 i
    for mode in echo chat; do
        log="$LOGDIR/lines-$model-$mode.log"
        start_server "$log" --port 0 --model "$model" --mode "$mode"
        [ -n "$port" ] || { fail_with_log "lines/$model/$mode: the server did not start" "$log"; stop_server; return 1; }
        timeout 180 "$HOST_PY" "$HERE/misbehave.py" lines --port "$port" --mode "$mode" --members 200 | sed 's/^/  /'
        rc=${PIPESTATUS[0]}
        if [ "$mode" = echo ]; then
            prompt_clean_stop "lines/$model/$mode" "$log" || return 1
        else  # two Ctrl+C 1 ms apart: stopped (exit 0), or the second one's exit at once (130); within 2 s
            wpid="$(server_wine_pid)"
            t0=$(date +%s.%N)
            [ -n "$wpid" ] && { kill -INT "$wpid"; sleep 0.001; kill -INT "$wpid"; } 2>/dev/null
            for i in $(seq 1 400); do
                [ -n "$wpid" ] && kill -0 "$wpid" 2>/dev/null || break
                sleep 0.02
            done
            stop_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
            [ -n "$wpid" ] && kill -0 "$wpid" 2>/dev/null && kill -KILL "$wpid" 2>/dev/null
            wait "$server_pid"
            stop_status=$?
            if ! { [ "$stop_status" = 0 ] && grep -q '^ovserver: stopped;' "$log"; } &&
                ! { [ "$stop_status" = 130 ] && grep -q '^ovserver: second Ctrl+C: exiting at once$' "$log"; }; then
                fail_with_log "lines/$model/$mode: a double Ctrl+C: neither stopped (0) nor exited at once (130): exit $stop_status" "$log"
                return 1
            fi
            if awk -v s="$stop_s" 'BEGIN { exit !(s > 2.0) }'; then
                echo "FAIL lines/$model/$mode: a double Ctrl+C took $stop_s s (limit 2 s)"; return 1
            fi
            echo "  a double Ctrl+C: exit $stop_status in $stop_s s"
        fi
        [ "$rc" = 0 ] || { echo "FAIL lines/$model/$mode"; return 1; }
        echo "ok   lines/$model/$mode: lines at the default --max-line, half-closes, resets mid-line as documented; stopped in $stop_s s"
    done
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
    log="$LOGDIR/max-queued.log"  # a line of --max-line bytes would cut off a client that reads (it did)
    start_server "$log" --port 0 --max-queued 65536
    if [ -n "$port" ]; then stop_server; fail_with_log "--max-queued 65536: it listened" "$log"; return 1; fi
    wait "$server_pid"
    status=$?
    lines=$(wc -l <"$log")
    if [ "$status" != 2 ] || [ "$lines" != 1 ] || ! grep -q -- '--max-queued: must be at least 65537' "$log"; then
        fail_with_log "--max-queued 65536 (under one line of --max-line 65536): not one line and status 2 (exit $status)" "$log"
        return 1
    fi
    echo "ok   --max-queued 65536: exit 2: $(cat "$log")"
}

hostile_storm() {  # MODEL: tools/wine/storm.py's storm beside a witness (echo, chat), then Ctrl+C during it
    local model="$1" mode log fifo out hpid clean
    for mode in echo chat; do
        log="$LOGDIR/storm-$model-$mode.log" fifo="$LOGDIR/storm-$model-$mode.fifo" out="$LOGDIR/storm-$model-$mode.out"
        start_server "$log" --port 0 --model "$model" --mode "$mode"
        [ -n "$port" ] || { fail_with_log "storm/$model/$mode: the server did not start" "$log"; stop_server; return 1; }
        mkfifo "$fifo"
        timeout 240 "$HOST_PY" "$HERE/storm.py" --port "$port" --mode "$mode" --pid "$(server_wine_pid)" \
            --seconds 15 <"$fifo" >"$out" 2>&1 &
        hpid=$!
        exec 7>"$fifo"  # the storm goes on until this closes
        wait_for_line "$out" '^ready for the stop' "$hpid"
        clean=0
        prompt_clean_stop "storm/$model/$mode" "$log" || clean=1
        exec 7>&-
        wait "$hpid"
        local rc=$?
        sed 's/^/  /' "$out"
        [ "$clean" = 0 ] || return 1
        [ "$rc" = 0 ] || { echo "FAIL storm/$model/$mode"; return 1; }
        echo "ok   storm/$model/$mode: the witness served throughout, memory bounded; Ctrl+C during the storm stopped it in $stop_s s"
    done
}

example_server() {  # examples/my_server.py: its listening line, a reply, Ctrl+C
    local log="$LOGDIR/example.log" i wpid t0 reply
    setsid "$HERE/winpython" examples/my_server.py 0 >"$log" 2>&1 </dev/null &
    server_pid=$!
    port=""
    for i in $(seq 1 600); do
        port="$(sed -n 's/^my_server: shouting on 127\.0\.0\.1:\([0-9][0-9]*\); Ctrl+C stops$/\1/p' "$log" 2>/dev/null)"  # the log may not exist yet
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

stillborn() {  # the events model when a group's thread never runs (Wine out of descriptors; here on purpose)
    local log="$LOGDIR/stillborn.log"
    if timeout 120 "$HERE/winpython" "$HERE/stillborn.py" >"$log" 2>&1 && grep -q '^ok   stillborn' "$log"; then
        grep '^ok   stillborn' "$log"
    else
        fail_with_log "stillborn: exit status or output (see the log)" "$log"; return 1
    fi
}

wrapper_term() {  # SIGTERM to winpython (not python.exe): python.exe must end too, not listen on orphaned
    local log="$LOGDIR/wrapper-term.log" wpid i status
    start_server "$log" --port 0 --model events
    [ -n "$port" ] || { fail_with_log "wrapper-term: the server did not start" "$log"; stop_server; return 1; }
    wpid="$(server_wine_pid)"
    kill -TERM "$server_pid"
    for i in $(seq 1 250); do
        [ -n "$wpid" ] && kill -0 "$wpid" 2>/dev/null || break
        sleep 0.02
    done
    if [ -n "$wpid" ] && kill -0 "$wpid" 2>/dev/null; then
        kill -KILL "$wpid" 2>/dev/null; wait "$server_pid"
        fail_with_log "wrapper-term: python.exe still ran 5 s after SIGTERM to its winpython" "$log"; return 1
    fi
    wait "$server_pid"
    status=$?
    [ "$status" = 143 ] || { fail_with_log "wrapper-term: winpython exited $status, not 143 (SIGTERM)" "$log"; return 1; }
    echo "ok   wrapper-term: SIGTERM to winpython ended the listening server's python.exe (exit 143)"
}

before_the_program() {  # LOG: nothing of the program's in it but, in a traceback, its first lines
    # (Python's own start-up: site, runpy, ovserver/__init__.py up to its import of _ctrl_c, which defers Ctrl+C,
    # and _ctrl_c until it has)
    local first
    first=$(grep -n '^from \. import _ctrl_c' ovserver/__init__.py | cut -d: -f1)
    ! grep 'ovserver' "$1" | awk -v first="$first" '
        /[\\]ovserver[\\]__init__\.py", line [0-9]+,/ { split($0, a, "line "); if (a[2] + 0 <= first) next }
        /[\\]ovserver[\\]_ctrl_c\.py", line [0-9]+,/ { next }  # the module that installs it
        { bad = 1 } END { exit !bad }'
}

hostile_fd_limit() {  # MODEL: out of file descriptors (300): accepting resumes once clients leave; Ctrl+C
    local model="$1" log="$LOGDIR/fd-limit-$1.log" rc home="$LOGDIR/fd-home" ww
    # Wine keeps every socket's descriptor in its wineserver, started with the limit of the
    # first Wine process of its prefix: a prefix of our own (about 15 s and 700 MB to create,
    # in $LOGDIR), whose wineserver starts under `ulimit -n 300`; the shared one keeps its own.
    ww="${WINSOCK_WINE_HOME:-${HOME:-/tmp}/.cache/fakewinsock-wine}"
    if [ ! -f "$home/prefix/system.reg" ]; then
        mkdir -p "$home" && ln -sfn "$ww/python" "$home/python" && ln -sfn "$ww/site" "$home/site"
        WINEPREFIX="$home/prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" \
            wine wineboot --init </dev/null >/dev/null 2>&1
        WINSOCK_WINE_HOME="$home" "$HERE/winpython" --wineserver -w
    fi
    SERVE_WRAP=(env WINSOCK_WINE_HOME="$home" prlimit --nofile=300:300 --)
    start_server "$log" --port 0 --model "$model"
    SERVE_WRAP=()
    [ -n "$port" ] || { fail_with_log "fd-limit/$model: the server did not start" "$log"; stop_server; return 1; }
    timeout 120 "$HOST_PY" "$HERE/misbehave.py" fd-limit --port "$port" --server-pid "$(server_wine_pid)" | sed 's/^/  /'
    rc=${PIPESTATUS[0]}
    prompt_clean_stop "fd-limit/$model" "$log" || return 1
    [ "$rc" = 0 ] || { echo "FAIL fd-limit/$model"; return 1; }
    echo "ok   fd-limit/$model: out of file descriptors, accepting resumed once the clients left; stopped in $stop_s s"
}

hostile_handles() {  # MODEL MODE: misbehave.py churn: the server's Windows handles do not grow round after round
    local model="$1" mode="$2" log="$LOGDIR/handles-$1-$2.log" rc
    SERVE=("$HERE/handles.py")
    start_server "$log" --port 0 --model "$model" --mode "$mode" --max-line 4096 --idle-timeout-ms 500
    SERVE=(-m ovserver serve)
    [ -n "$port" ] || { fail_with_log "handles/$model/$mode: the server did not start" "$log"; stop_server; return 1; }
    timeout 300 "$HOST_PY" "$HERE/misbehave.py" churn --port "$port" --mode "$mode" --log "$log" --max-line 4096 \
        --idle-timeout-ms 500 | sed 's/^/  /'
    rc=${PIPESTATUS[0]}
    prompt_clean_stop "handles/$model/$mode" "$log" || return 1
    [ "$rc" = 0 ] || { echo "FAIL handles/$model/$mode"; return 1; }
    echo "ok   handles/$model/$mode: 3 rounds of 280 clients of every kind that ends, no handle leaked; stopped in $stop_s s"
}

early_stop() {  # Ctrl+C during the start (imports: 0.1-2 s under Wine): as a late one, or Python's own start
    local delay model log i wpid status stopped=0 n=0
    for delay in 0.05 0.1 0.15 0.2 0.3 0.5 0.8; do
        n=$((n + 1))
        model=$(echo $MODELS | tr ' ' '\n' | sed -n "$(( (n - 1) % $(echo $MODELS | wc -w) + 1 ))p")
        log="$LOGDIR/early-$delay.log"
        setsid "$HERE/winpython" -m ovserver serve --port 0 --model "$model" >"$log" 2>&1 </dev/null &
        server_pid=$!
        wpid=""
        for i in $(seq 1 1000); do
            wpid="$(server_wine_pid)"
            [ -n "$wpid" ] && break
            sleep 0.01
        done
        sleep "$delay"
        [ -n "$wpid" ] && kill -INT "$wpid" 2>/dev/null
        for i in $(seq 1 1000); do  # 20 s: under load the start itself takes seconds
            [ -n "$wpid" ] && kill -0 "$wpid" 2>/dev/null || break
            sleep 0.02
        done
        [ -n "$wpid" ] && kill -0 "$wpid" 2>/dev/null && kill -KILL "$wpid" 2>/dev/null
        wait "$server_pid"
        status=$?
        if [ "$status" = 0 ] && grep -q '^ovserver: stopped; 0 connections served' "$log"; then
            stopped=$((stopped + 1))
            echo "  Ctrl+C ${delay} s into the start ($model): $(grep -c 'Ctrl+C stops$' "$log") listening line, stopped, exit 0"
        elif before_the_program "$log"; then
            echo "  Ctrl+C ${delay} s into the start ($model): during Python's own start-up (exit $status$(grep -q Traceback "$log" && echo ', a traceback'))"
        else
            fail_with_log "early-stop: Ctrl+C ${delay} s into the start ($model): exit $status" "$log"; return 1
        fi
    done
    [ "$stopped" -gt 0 ] || { echo "FAIL early-stop: no Ctrl+C reached the program"; return 1; }
    echo "ok   early-stop: a Ctrl+C during the start stopped the server as a late one ($stopped of $n; the rest in Python's own start-up)"
}

# E2E_CASES="misbehave busy" runs only those parts (of: serve at-once flood hold
# cutoff misbehave chat-misbehave chat-busy chat-flood backpressure defaults busy idle storm lines fd-limit handles bad-input
# early-stop example wrapper-term stillborn zombies); default: all.
want() { [ -z "${E2E_CASES:-}" ] || [[ " $E2E_CASES " == *" $1 "* ]]; }
run() {  # PART FUNCTION ARGS...: count it, run it if wanted
    want "$1" || return 0
    runs=$((runs + 1)); shift; "$@" || failures=$((failures + 1))
}

runs=0
for model in $MODELS; do
    for mode in echo chat; do
        run serve run_one "$model" "$mode"
    done
done
AT_ONCE="${AT_ONCE:-1000}"
if [ "$AT_ONCE" -gt 0 ]; then
    run at-once at_once events "$AT_ONCE"
fi
for model in $MODELS; do
    run flood hostile_flood "$model"
    run hold hostile_hold "$model"
    run cutoff hostile_cutoff "$model"
    run misbehave hostile_misbehave "$model"
    run chat-misbehave hostile_chat "$model"
    run chat-busy hostile_chat_busy "$model"
    run chat-flood hostile_chat_flood "$model"
    run backpressure hostile_backpressure "$model"
    run defaults hostile_defaults "$model"
    run busy hostile_busy "$model"
    run idle hostile_idle "$model"
    run storm hostile_storm "$model"
    run lines hostile_lines "$model"
    run fd-limit hostile_fd_limit "$model"
    run zombies hostile_zombies "$model"
done
run handles hostile_handles events chat
run handles hostile_handles routines echo
run handles hostile_handles iocp chat
run bad-input bad_input
run early-stop early_stop
run example example_server
run wrapper-term wrapper_term
run stillborn stillborn

if [ -d "$LOGDIR/fd-home" ]; then  # part fd-limit's own prefix (700 MB): its wineserver gone, then it
    WINSOCK_WINE_HOME="$LOGDIR/fd-home" timeout 60 "$HERE/winpython" --wineserver -w
    rm -rf "$LOGDIR/fd-home"
fi
if [ "$failures" = 0 ]; then
    echo "e2e.sh: ovserver serve under Wine: all $runs runs passed"
    rm -rf "$LOGDIR"
    exit 0
fi
echo "e2e.sh: ovserver serve under Wine: $failures of $runs runs FAILED (logs in $LOGDIR)"
exit 1
