#!/usr/bin/env bash
# Failures: kill -9 of the live proxy gives a cold start at epoch 0 after the
# first backoff step; a draining epoch dying abnormally keeps the newest; a
# proxy that always exits 1 makes the backoff grow until the budget is spent,
# and the agent exits 1 naming the failure.
. "$TOP/tests/lib.sh"
export ENVOY_EMU_ASSUME_XDS=1
start_agent --parentShutdownDuration 30s --terminationDrainDuration 0s
wait_live 0
p0=$(epoch_pid 0)

kill -KILL "$p0"
wait_until 10 log_has "cold start in 200ms (attempt 1 of 10)" ||
	fail "no backoff after kill -9: $(tail -n 5 "$T/agent.log")"
log_has "epoch 0 (pid $p0) signal 9" || fail "failure not named"
wait_live 0
p0b=$(epoch_pid 0)
[ -n "$p0b" ] && [ "$p0b" != "$p0" ] || fail "epoch 0 not restarted ($p0 → $p0b)"
kill -0 "$p0" 2>/dev/null && fail "old pid alive"

# A hot restart, then the draining epoch 0 is killed: epoch 1 stays.
kill -HUP "$AGENT_PID"
wait_live 1
p1=$(epoch_pid 1)
# The proxy says LIVE before the agent's poll sees it: epoch 0 only drains
# once the agent has seen epoch 1 go LIVE.
wait_until 10 log_has "epoch 0: live → draining" ||
	fail "epoch 0 not draining: $(tail -n 5 "$T/agent.log")"
kill -KILL "$p0b"
wait_until 10 log_has "epoch 0: draining → exited (pid $p0b, signal 9" ||
	fail "draining epoch's death not logged"
# Fixed time: after the death, nothing else may happen to epoch 1.
sleep 0.5
kill -0 "$p1" || fail "newest epoch was killed"
is_live 1 || fail "epoch 1 no longer LIVE"
log_has "cold start in" && [ "$(grep -c 'cold start in' "$T/agent.log")" = 1 ] ||
	fail "a draining epoch's death must not restart"
kill -TERM "$AGENT_PID"
wait_exit "$AGENT_PID" 20 || fail "agent did not exit"
[ "$EXIT_CODE" = 0 ] || fail "agent exit code $EXIT_CODE"

# A proxy that always exits 1: 20ms, 40ms, 80ms, 160ms, then give up.
unset ADMIN_PORT STATUS_PORT HEALTH_PORT PROM_PORT
ENVOY_EMU_EXIT_CODE=1 ENVOY_EMU_EXIT_AFTER=0s \
	start_agent --restartInitialInterval 20ms --restartMaxRetries 4
wait_exit "$AGENT_PID" 30 || fail "agent did not give up"
[ "$EXIT_CODE" = 1 ] || fail "agent exit code $EXIT_CODE, want 1"
for step in "20ms (attempt 1 of 4)" "40ms (attempt 2 of 4)" \
	"80ms (attempt 3 of 4)" "160ms (attempt 4 of 4)"; do
	log_has "cold start in $step" || fail "no backoff step $step"
done
[ "$(grep -c 'epoch 0: started pid' "$T/agent.log")" = 5 ] || fail "want 5 starts"
last=$(grep -v '^\[Envoy' "$T/agent.log" | tail -n 1)
case $last in
*"exiting with code 1"*"epoch 0 (pid "*") exit code 1"*) ;;
*) fail "last line does not name the failure: $last" ;;
esac
echo "failures ok"
