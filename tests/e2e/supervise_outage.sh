#!/usr/bin/env bash
# A LIVE epoch is never given up for one that does not go LIVE. A hot
# restart during a control-plane outage: the new epoch cannot be configured,
# is stopped after 20 s, and epoch 0 keeps serving with readiness 200 all
# along; once the control plane is back a retry goes LIVE. The same without an
# outage, with a proxy that hangs at start and SIGHUP once a second (triggers
# coalesce: a few tries, not one per signal); and with a proxy that exits
# before LIVE (retried with a growing backoff, never given up).
. "$TOP/tests/lib.sh"

# ready_sampler SECONDS: readiness codes, one per line, into $T/ready.codes
# until $T/stop-sampler appears.
ready_sampler() {
	local end=$((SECONDS + $1))
	while [ "$SECONDS" -lt "$end" ] && [ ! -e "$T/stop-sampler" ]; do
		http_code "http://127.0.0.1:$STATUS_PORT/healthz/ready" >>"$T/ready.codes"
		echo >>"$T/ready.codes"
		sleep 0.25	# fixed time: the sampling period
	done
}
start_sampler() {
	rm -f "$T/stop-sampler" "$T/ready.codes"
	spawn ready_sampler "$1"
	SAMPLER=$LAST_PID
}
# check_sampler MIN: stop it; every sample was 200, and there were MIN.
check_sampler() {
	touch "$T/stop-sampler"
	wait_exit "$SAMPLER" 10 || fail "sampler did not stop"
	local n bad
	n=$(grep -c . "$T/ready.codes")
	bad=$(grep -v '^200$' "$T/ready.codes" | sort | uniq -c | tr '\n' ' ')
	[ -z "$bad" ] || fail "readiness left 200 while epoch 0 served: $bad(of $n)"
	[ "$n" -ge "$1" ] || fail "only $n readiness samples"
}
alive() {
	[ -e "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}
ready_200() {
	[ "$(http_code "http://127.0.0.1:$STATUS_PORT/healthz/ready")" = 200 ]
}
stop_agent() {
	kill -TERM "$AGENT_PID"
	wait_exit "$AGENT_PID" 30 || fail "agent did not exit"
	[ "$EXIT_CODE" = 0 ] || fail "agent exit code $EXIT_CODE"
}

note "1. control plane down, then SIGHUP twice"
XDS_PORT=$(free_port)
xds_resources c1 -- l1
start_cp
start_agent --xdsReconnectMaxInterval 500ms --parentShutdownDuration 2s \
	--terminationDrainDuration 0s
wait_live 0
wait_until 20 ready_200 || fail "not ready"
p0=$(epoch_pid 0)
start_sampler 120
kill -KILL "$XS_PID"
wait "$XS_PID" 2>/dev/null
kill -HUP "$AGENT_PID"
# The second SIGHUP comes once the first has started epoch 1.
wait_until 10 log_has "epoch 1: started pid" || fail "no epoch 1: $(tail -n 5 "$T/agent.log")"
kill -HUP "$AGENT_PID"
wait_until 35 log_has "hot restart failed: epoch 1 (pid [0-9]*) not LIVE after 20s; epoch 0 keeps serving" ||
	fail "the unconfigurable epoch was not given up alone: $(grep -v '^\[Envoy' "$T/agent.log" | tail -n 8)"
alive "$p0" || fail "epoch 0 (pid $p0) was killed"
[ "$(agent_live_epoch)" = 0 ] || fail "the agent's live epoch is $(agent_live_epoch)"
log_has "restarting anyway" && fail "restarted onto an epoch that is not LIVE"
log_has "cold start in" && fail "an epoch that never went LIVE started the backoff"
note "the control plane returns: a retry goes LIVE"
start_cp
wait_live 1 40
wait_until 20 log_has "epoch 0: draining → exited (pid $p0, exit code 0)" ||
	fail "epoch 0 did not hand over: $(grep -v '^\[Envoy' "$T/agent.log" | tail -n 8)"
check_sampler 40
log_has "epoch 0: .*killing" && fail "epoch 0 was killed"
stop_agent

note "2. no outage: epoch 1 hangs at start, SIGHUP once a second"
unset ADMIN_PORT STATUS_PORT HEALTH_PORT PROM_PORT
rm -rf "$T/etc"
export ENVOY_EMU_ASSUME_XDS=1
ENVOY_EMU_NEVER_LIVE=1 ENVOY_EMU_FAULT_EPOCH=1 \
	start_agent --terminationDrainDuration 0s
wait_live 0
wait_until 20 ready_200 || fail "not ready"
p0=$(epoch_pid 0)
start_sampler 60
maxprocs=0
for i in $(seq 1 25); do
	kill -HUP "$AGENT_PID"
	n=$(children_of "$AGENT_PID" | wc -l)
	[ "$n" -gt "$maxprocs" ] && maxprocs=$n
	sleep 1	# fixed time: the scenario is a SIGHUP once a second
done
wait_until 10 log_has "hot restart failed: epoch 1 (pid [0-9]*) not LIVE after 20s; epoch 0 keeps serving; trying again in 200ms (attempt 1)" ||
	fail "the hung epoch was not given up alone: $(grep -v '^\[Envoy' "$T/agent.log" | tail -n 8)"
check_sampler 60
alive "$p0" || fail "epoch 0 (pid $p0) was killed"
[ "$maxprocs" -le 3 ] || fail "$maxprocs proxy processes at once"
starts=$(grep -c 'epoch 1: started pid' "$T/agent.log")
[ "$starts" -ge 2 ] && [ "$starts" -le 3 ] ||
	fail "epoch 1 started $starts times for 25 SIGHUPs (want the triggers coalesced)"
log_has "still alive when epoch" && fail "an epoch was killed to make room"
log_has "restart (SIGHUP) pending: " || fail "SIGHUPs were not coalesced"
stop_agent

note "3. epoch 1 exits before LIVE: retried with a growing backoff, never given up"
unset ADMIN_PORT STATUS_PORT HEALTH_PORT PROM_PORT
rm -rf "$T/etc"
: >"$T/agent.log"
ENVOY_EMU_EXIT_CODE=1 ENVOY_EMU_EXIT_AFTER=0s ENVOY_EMU_FAULT_EPOCH=1 \
	start_agent --terminationDrainDuration 0s --restartInitialInterval 100ms \
	--restartMaxRetries 2
wait_live 0
# Readiness passes once per LIVE epoch (as the kubelet's first probes would
# have it) and is not asked again: epoch 1 takes the admin port away.
wait_until 20 ready_200 || fail "not ready"
p0=$(epoch_pid 0)
kill -HUP "$AGENT_PID"
for step in "100ms (attempt 1)" "200ms (attempt 2)" "400ms (attempt 3)" "800ms (attempt 4)"; do
	wait_until 10 log_has "hot restart failed: epoch 1 (pid [0-9]*) exit code 1 before it went LIVE; epoch 0 keeps serving; trying again in $step" ||
		fail "no retry $step: $(grep -v '^\[Envoy' "$T/agent.log" | tail -n 6)"
done
kill -0 "$AGENT_PID" || fail "the agent gave up"
alive "$p0" || fail "epoch 0 was killed"
ready_200 || fail "readiness not 200 while epoch 0 serves"
log_has "giving up" && fail "gave up while an epoch served"
curl -s "http://127.0.0.1:$STATUS_PORT/stats/prometheus" |
	grep -q '^istio_agent_proxy_hot_restart_failures_total [4-9]' ||
	fail "hot restart failures not counted"
stop_agent
echo "outage ok"
