#!/usr/bin/env bash
# Edges of the supervisor found in review: a restart whose bootstrap cannot be
# rendered keeps the LIVE epoch; a death not yet reaped when SIGHUP arrives
# leads to a cold start, not a hot restart onto a dead parent; SIGHUP during
# the backoff cold-starts at once; SIGTERM during the backoff exits with the
# proxy's own code.
. "$TOP/tests/lib.sh"
export ENVOY_EMU_ASSUME_XDS=1
echo '{}' >"$T/override.json"
export ISTIO_BOOTSTRAP_OVERRIDE=$T/override.json

# 1. A bad input on SIGHUP: the healthy epoch keeps serving.
start_agent --terminationDrainDuration 0s
wait_live 0
p0=$(epoch_pid 0)
echo '{ not json' >"$T/override.json"
kill -HUP "$AGENT_PID"
wait_until 5 log_has "restart (SIGHUP): rendering the bootstrap: .*override.json.*keeping the proxy as it is" ||
	fail "no refusal logged: $(tail -n 5 "$T/agent.log")"
# Fixed time: a moment after the refusal, nothing may have been stopped.
sleep 0.3
kill -0 "$p0" || fail "the LIVE epoch was killed over a bad input"
is_live 0 || fail "epoch 0 no longer LIVE"
log_has "cold start in" && fail "a bad input started the backoff"
echo '{}' >"$T/override.json"
kill -HUP "$AGENT_PID"
wait_live 1

# 2. SIGHUP before the SIGCHLD of a dead newest epoch: a cold start at 0.
p1=$(epoch_pid 1)
kill -STOP "$AGENT_PID"
kill -KILL "$p1"
wait_until 5 is_zombie "$p1" || fail "epoch 1 (pid $p1) did not die"
kill -HUP "$AGENT_PID"
kill -CONT "$AGENT_PID"
wait_until 10 log_has "epoch 1 (pid $p1) signal 9" ||
	fail "the dead epoch's failure was not handled: $(tail -n 8 "$T/agent.log")"
log_has "hot restart to epoch 2" && fail "hot restart onto a dead parent"
wait_live 0 20
kill -TERM "$AGENT_PID"
wait_exit "$AGENT_PID" 20 || fail "agent did not exit"
[ "$EXIT_CODE" = 0 ] || fail "exit code $EXIT_CODE"

# 3. SIGHUP in the backoff starts at once; SIGTERM then exits with the
# proxy's own code.
unset ADMIN_PORT STATUS_PORT HEALTH_PORT PROM_PORT
ENVOY_EMU_EXIT_CODE=3 ENVOY_EMU_EXIT_AFTER=0s \
	start_agent --restartInitialInterval 30s --restartMaxRetries 5
wait_until 10 log_has "cold start in 30s (attempt 1 of 5)" || fail "no backoff"
kill -HUP "$AGENT_PID"
wait_until 5 log_has "cold start now instead of after the backoff" ||
	fail "SIGHUP in the backoff ignored: $(tail -n 5 "$T/agent.log")"
wait_until 5 log_has "cold start in 1m0s (attempt 2 of 5)" ||
	fail "no second start: $(tail -n 5 "$T/agent.log")"
kill -TERM "$AGENT_PID"
wait_exit "$AGENT_PID" 10 || fail "agent did not exit from the backoff"
[ "$EXIT_CODE" = 3 ] || fail "exit code $EXIT_CODE, want the proxy's 3"
echo "edges ok"
