#!/usr/bin/env bash
# Measure one module's mutation score on a random sample, in one process
# (tools/mutation_recheck.py --by-coverage), with the test selection recorded
# here for it, then print its score with the 95% interval of the sample.
#
#   tools/mutation_sample.sh 'fakewinsock._kernel*' 100        # 100 mutants drawn at random (seed 18)
#   tools/mutation_sample.sh 'ovserver._core*' 120 19          # another seed: another sample
#
# Only mutants not checked yet are drawn (a stopped run keeps its verdicts; run
# it again to check more).  MUTATION_EXCLUDE=FILE leaves out the mutants FILE
# names, one a line, before drawing: for a sample of mutants no earlier session
# drew (and wrote tests for), FILE from `tools/mutation_drawn.py names`.  Each mutant runs in a forked process: one that makes
# the tests hang is killed with its process group after 10 times the clean run's
# time of its tests plus 100 s, or as much CPU time likewise (MUTATION_TIMEOUT_MULTIPLIER, _CONSTANT: see
# mutation_recheck.py), counted as detected by timeout, as mutmut does.  mutants/ is made first if missing
# (mutation_recheck.py --generate).  At nice 10 (MUTATION_NICE), one core.
#
# The selections: the fake's modules run the fake's own tests (the conformance
# suite on the fake, tests/test_fake_*.py and the thread, trace and scripted
# tests, the 2^14-port walk too (5 s; it alone kills a port 0 that skips ports);
# not the 40 s NTSTATUS table, which tests the error map); ovserver's run the server tests of the model the module
# serves (the model-free and routines cases for _core; for a model's module also
# every lifecycle and models test, whose names do not all say the model) less
# the Hypothesis properties and the swarm runs; fakewinsock.testing's run the checker's and scenarios' own tests
# (test_testing.py and the checker's verdict tests, the swarm's reach, the iocp mutant servers).  A narrower selection can only leave more
# survivors: the score stays honest.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 2 ]; then
    sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
pattern=$1
size=$2
seed=${3:-18}

case "$pattern" in
    fakewinsock.testing*)
        # the checks and scenarios users test their servers with: the checker's own tests (verdicts on stub and
        # planted-bug servers), the iocp mutant servers it must catch, the scenarios' reach.  Not test_mutants.py's
        # many mutant servers (with them the clean run alone took 10 minutes) nor the tests comparing a mutant
        # server's source (mutants/ holds the trampolined source), nor test_false_alarms.py (it imports tools/)
        tests=(tests/test_mutation_seventeenth.py tests/test_mutation_eighteenth.py tests/test_testing.py
               tests/test_checker_ends.py tests/test_checker_red4.py tests/test_checker_busy.py tests/test_swarm_reach.py
               tests/test_mutants_iocp.py tests/test_scripted.py)
        keyword='not readme and not differs_only'
        ;;
    fakewinsock.*)
        tests=(tests/test_fake_mutation_survivors.py tests/test_fake_mutation_seed20.py tests/test_fake_kernel_mutation.py
               tests/test_fake_net_mutation.py tests/test_fake_net_mutation_more.py tests/test_fake_misuse.py
               tests/test_fake_regressions.py tests/test_fake_iocp.py tests/test_fake_iocp_waiters.py tests/test_fake_mutation_sockets.py tests/test_fake_tick.py
               tests/test_fake_threads.py tests/test_fake_states.py tests/test_fake_close_pending_send.py
               tests/conformance tests/test_fake_properties.py tests/test_fake_stateful.py
               tests/test_thread_switches.py tests/test_scripted.py tests/test_trace_export.py
               tests/test_fake_kernel_mutation_ninth.py tests/test_fake_net_mutation_ninth.py
               tests/test_fake_iocp_mutation_ninth.py tests/test_fake_threads_mutation_ninth.py
               tests/test_fake_threads_mutation_tenth.py tests/test_fake_mutation_eleventh.py
               tests/test_fake_mutation_twelfth.py tests/test_fake_threads_unwind.py tests/test_fake_mutation_fourteenth.py
               tests/test_checker_busy.py tests/test_fake_mutation_fifteenth.py tests/test_mutation_seventeenth.py
               tests/test_mutation_eighteenth.py)
        # (the unwinding example's stop at every draw names the fake's functions: not under mutmut's trampolines;
        # the swarm's draws of busy servers test the checker's scenarios, not the fake: 30 s)
        keyword='not ntstatus and not readme and not stop_at_any_draw and not swarm_draws'
        ;;
    ovserver._core*|ovserver._protocol*)
        tests=(tests/test_ovserver_mutation_survivors.py tests/test_ovserver_mutation_core.py
               tests/test_ovserver_mutation_models.py tests/test_ovserver_mutation_protocol.py
               tests/test_ovserver_config.py tests/test_ovserver_stats.py tests/test_ovserver_lifecycle.py
               tests/test_ovserver_hub.py tests/test_ovserver_protocol.py tests/test_ovserver_server.py
               tests/test_ovserver_hostile.py tests/test_ovserver_mutation_startup.py tests/test_ovserver_idle.py
               tests/test_ovserver_busy.py tests/test_ovserver_mutation_routines.py tests/test_ovserver_backpressure.py
               tests/test_ovserver_mutation_ninth.py tests/test_ovserver_mutation_eleventh.py
               tests/test_ovserver_mutation_twelfth.py tests/test_ovserver_mutation_events_more.py
               tests/test_ovserver_mutation_thirteenth.py tests/test_ovserver_robust.py tests/test_ovserver_accepts.py
               tests/test_ovserver_mutation_fourteenth.py tests/test_ovserver_cli.py
               tests/test_ovserver_close_order.py tests/test_checker_busy.py tests/test_ovserver_mutation_sixteenth.py
               tests/test_ovserver_failure_cleanup.py tests/test_ovserver_max_queued.py
               tests/test_ovserver_mutation_accept_context.py)
        # (test_ovserver_max_queued's cases name no model but run every one: longest_message's bound at the edge)
        keyword='(mutation_thirteenth or max_queued or accept_context or failure_cleanup or mutation_fourteenth or mutation_sixteenth or ovserver_accepts or not (events or iocp)) and not property and not line_by_line and not swarm'
        ;;
    ovserver._iocp*|ovserver._events*|ovserver._routines*)
        model=${pattern#ovserver._}
        model=${model%%[*?[]*}
        tests=(tests/test_ovserver_mutation_survivors.py tests/test_ovserver_mutation_models.py
               tests/test_ovserver_mutation_events.py tests/test_ovserver_mutation_events_more.py
               tests/test_ovserver_mutation_core.py tests/test_ovserver_server.py tests/test_ovserver_lifecycle.py
               tests/test_ovserver_stats.py tests/test_ovserver_hostile.py tests/test_ovserver_groups.py
               tests/test_ovserver_iocp.py tests/test_ovserver_routines.py tests/test_ovserver_mutation_startup.py
               tests/test_ovserver_idle.py tests/test_ovserver_busy.py tests/test_ovserver_mutation_routines.py
               tests/test_ovserver_mutation_iocp.py tests/test_ovserver_backpressure.py
               tests/test_ovserver_mutation_eleventh.py tests/test_ovserver_iocp_accept.py
               tests/test_ovserver_mutation_twelfth.py tests/test_ovserver_mutation_thirteenth.py
               tests/test_ovserver_robust.py tests/test_ovserver_accepts.py tests/test_ovserver_mutation_fourteenth.py
               tests/test_ovserver_close_order.py tests/test_checker_busy.py tests/test_ovserver_mutation_sixteenth.py
               tests/test_ovserver_failure_cleanup.py tests/test_ovserver_stillborn.py tests/test_ovserver_iocp_churn.py
               tests/test_ovserver_mutation_wakeups.py tests/test_ovserver_mutation_iocp_retry.py)
        # (test_checker_busy's cases are named after the classes: EventServer, RoutineServer, IocpServer;
        # test_ovserver_mutation_twelfth's iocp cases and test_ovserver_mutation_wakeups' do not name the model;
        # test_ovserver_stillborn's are the events model's)
        keyword="($model or ${model%s}server or lifecycle or mutation_models or mutation_twelfth or stillborn"
        keyword+=" or mutation_wakeups) and not property and not line_by_line and not swarm"
        ;;
    *)
        echo "no test selection recorded for $pattern" >&2
        exit 2
        ;;
esac

if [ ! -d mutants ]; then
    .venv/bin/python tools/mutation_recheck.py --generate
fi
# A test may run for minutes under the trampolines' first pass on a loaded machine: a generous timeout.
nice -n "${MUTATION_NICE:-10}" .venv/bin/python tools/mutation_recheck.py --unchecked "$pattern" --sample "$size" \
    --seed "$seed" ${MUTATION_EXCLUDE:+--exclude "$MUTATION_EXCLUDE"} --timeout 600 --timeout-multiplier "${MUTATION_TIMEOUT_MULTIPLIER:-10}" \
    --timeout-constant "${MUTATION_TIMEOUT_CONSTANT:-10}" --update --by-coverage -- "${tests[@]}" -k "$keyword"
exec .venv/bin/python tools/mutation_report.py --only "${pattern%%[*?[]*}" --target ovserver=95 --target fakewinsock=90
