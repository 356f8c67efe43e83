#!/usr/bin/env bash
# 20 SIGHUPs under load: zero failed requests, epochs 0..20 each seen, never
# more than three proxy processes, every old epoch exited 0, no zombies, and
# only the live epoch's bootstrap file left. Two loads: one on a listener of
# the test's own (added with ISTIO_BOOTSTRAP_OVERRIDE; without a connection
# manager, the stand-in answers it with its epoch, so every epoch is seen to
# serve), and the kubelet's probe, /healthz/ready on the health listener
# (ENVOY_STATUS_PORT), which the proxy routes to the agent: readiness stays
# 200 through every hot restart.
. "$TOP/tests/lib.sh"
export ENVOY_EMU_ASSUME_XDS=1
LOAD_PORT=$(free_port)
cat >"$T/override.json" <<EOF
{"static_resources":{"listeners":[{"name":"load",
 "address":{"socket_address":{"address":"127.0.0.1","port_value":$LOAD_PORT}}}]}}
EOF
export ISTIO_BOOTSTRAP_OVERRIDE=$T/override.json
start_agent --drainDuration 2s --parentShutdownDuration 3s --terminationDrainDuration 1s
wait_live 0
health_ready() { [ "$(http_code "http://127.0.0.1:$HEALTH_PORT/healthz/ready")" = 200 ]; }
wait_until 10 health_ready ||
	fail "not ready on the health port: $(curl -s -i "http://127.0.0.1:$HEALTH_PORT/healthz/ready")"

spawn "$B/tools/loadgen" --url "http://127.0.0.1:$LOAD_PORT/" --stop-file "$T/stop" \
	--duration 120s >"$T/load.json"
LOAD_PID=$LAST_PID
spawn "$B/tools/loadgen" --url "http://127.0.0.1:$HEALTH_PORT/healthz/ready" --stop-file "$T/stop" \
	--duration 120s >"$T/ready.json"
READY_PID=$LAST_PID
# Count the agent's proxy children every 10 ms until told to stop.
(
	max=0
	for i in $(seq 1 12000); do
		[ -f "$T/stop" ] && break
		n=$(children_of "$AGENT_PID" | wc -l)
		[ "$n" -gt "$max" ] && max=$n && echo "$max" >"$T/maxprocs"
		sleep 0.01	# fixed time: the sampling period
	done
) &
MON_PID=$!
SPAWNED+=("$MON_PID")

# Fixed time, pacing the load: epoch 0 serves it a while before the first SIGHUP.
sleep 0.3
for i in $(seq 1 20); do
	kill -HUP "$AGENT_PID"
	wait_live "$i"
	# Fixed time, pacing: each epoch serves the load a while before the next.
	sleep 0.25
done
touch "$T/stop"
wait_exit "$LOAD_PID" 30 || fail "loadgen did not stop"
wait_exit "$READY_PID" 30 || fail "readiness loadgen did not stop"
wait "$MON_PID" 2>/dev/null

python3 - "$T/load.json" <<'PY' || fail "load: $(cat "$T/load.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["failed"] == 0, "failed requests: %d %s" % (d["failed"], d.get("errors"))
assert d["sent"] >= 2000, "only %d requests" % d["sent"]
missing = [e for e in range(21) if d["epochs"].get(str(e), 0) == 0]
assert not missing, "epochs never seen: %s" % missing
print("requests", d["sent"], "failed", d["failed"], "p99_us", d["p99_us"])
PY
python3 - "$T/ready.json" <<'PY' || fail "readiness load: $(cat "$T/ready.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["failed"] == 0, "failed probes: %d %s" % (d["failed"], d.get("errors"))
assert d["sent"] >= 200, "only %d probes" % d["sent"]
print("readiness probes", d["sent"], "failed", d["failed"], "p99_us", d["p99_us"])
PY
max=$(cat "$T/maxprocs" 2>/dev/null || echo 0)
[ "$max" -le 3 ] || fail "saw $max proxy processes at once"
[ "$max" -ge 2 ] || fail "monitor never saw a hot restart ($max)"

# Old epochs end by the hot restart protocol or the parent shutdown time.
only_one() { [ "$(children_of "$AGENT_PID" | wc -l)" = 1 ]; }
wait_until 15 only_one || fail "old epochs still alive: $(children_of "$AGENT_PID")"
for e in $(seq 0 19); do
	log_has "epoch $e: draining → exited (pid [0-9]*, exit code 0)" ||
		fail "epoch $e did not exit 0: $(grep "epoch $e:" "$T/agent.log")"
done
[ -z "$(zombies_of "$AGENT_PID")" ] || fail "zombies: $(zombies_of "$AGENT_PID")"
files=$(cd "$T/etc" && ls envoy-rev*.json)
[ "$files" = envoy-rev20.json ] || fail "bootstrap files left: $files"

kill -TERM "$AGENT_PID"
wait_exit "$AGENT_PID" 20 || fail "agent did not exit"
[ "$EXIT_CODE" = 0 ] || fail "agent exit code $EXIT_CODE"
[ -z "$(ls "$T/etc"/envoy-rev*.json 2>/dev/null)" ] || fail "bootstrap left after exit"
echo "hot restarts ok (max $max processes)"
