#!/usr/bin/env bash
# GET /healthz/ready through a proxy's life: 503 while epoch 0 starts (no
# control plane yet: Istio's "config not received" from the admin port, the
# reason logged once however often it is asked), 503
# "config received ... but was rejected" when the first config is NACKed,
# 200 with an empty body once good config arrives, and 503 again as soon as
# SIGTERM starts the drain. "pilot-agent wait" returns when it turns 200.
. "$TOP/tests/lib.sh"

ready() {	# ready -> "<code> <body>"
	curl -s --max-time 5 -w ' %{http_code}' "http://127.0.0.1:$STATUS_PORT/healthz/ready" |
		awk '{code=$NF; $NF=""; sub(/ $/, ""); print code " " $0}'
}
ready_is() {	# ready_is CODE [BODY-SUBSTRING]
	local r
	r=$(ready)
	[ "${r%% *}" = "$1" ] || return 1
	[ -z "${2:-}" ] || case $r in *"$2"*) ;; *) return 1 ;; esac
}

XDS_PORT=$(free_port)
xds_resources reject-c1 -- reject-l1
start_agent --drainDuration 2s --terminationDrainDuration 3s

note "no control plane: Istio's reason from the starting proxy's admin port"
NOXDS="config not received from XDS server (is Istiod running?): cds updates: 0 successful, 0 rejected; lds updates: 0 successful, 0 rejected"
wait_until 10 ready_is 503 "$NOXDS" || fail "want 503 $NOXDS, got: $(ready)"
for i in $(seq 1 10); do ready >/dev/null; done
n=$(grep -cF "readiness: not ready: $NOXDS" "$T/agent.log")
[ "$n" = 1 ] || fail "the reason was logged $n times, want once"

spawn "$B/pilot-agent" wait --url "http://127.0.0.1:$STATUS_PORT/healthz/ready" \
	--timeoutSeconds 30 --periodMillis 100 >"$T/wait.log" 2>&1
WAIT_PID=$LAST_PID

note "the first config is rejected"
spawn "$XDS_SERVER" --listen "127.0.0.1:$XDS_PORT" --config "$T/resources.json" \
	2>"$T/xds-server.log"
XS_PID=$LAST_PID
wait_until 20 ready_is 503 "config received from XDS server, but was rejected: cds updates: 0 successful, 1 rejected; lds updates: 0 successful, 1 rejected" ||
	fail "want 503 config rejected, got: $(ready)"
kill -0 "$WAIT_PID" || fail "wait returned before ready: $(cat "$T/wait.log")"

note "good config: ready"
xds_resources c1 -- l1
kill -HUP "$XS_PID"
wait_until 20 ready_is 200 || fail "want 200, got: $(ready)"
body=$(curl -s "http://127.0.0.1:$STATUS_PORT/healthz/ready")
[ -z "$body" ] || fail "200 with a body: $body"
wait_exit "$WAIT_PID" 5 || fail "wait did not return once ready"
[ "$EXIT_CODE" = 0 ] || fail "wait exited $EXIT_CODE: $(cat "$T/wait.log")"
grep -q "Envoy is ready!" "$T/wait.log" || fail "wait did not say so: $(cat "$T/wait.log")"
grep -q "readiness: ready" "$T/agent.log" || fail "the change to ready was not logged"
curl -s "http://127.0.0.1:$STATUS_PORT/debug/epochs" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["live_epoch"] == 0, d
assert d["epochs"][0]["state"] == "live", d' || fail "/debug/epochs: $(curl -s "http://127.0.0.1:$STATUS_PORT/debug/epochs")"

note "SIGTERM: 503 at once"
kill -TERM "$AGENT_PID"
wait_until 2 ready_is 503 "draining" || fail "want 503 draining, got: $(ready)"
curl -s "http://127.0.0.1:$PROM_PORT/stats/prometheus" | grep -q "^istio_agent_draining 1" ||
	fail "istio_agent_draining is not 1"
wait_exit "$AGENT_PID" 15 || fail "agent did not exit"
[ "$EXIT_CODE" = 0 ] || fail "agent exited $EXIT_CODE"
echo PASS
