#!/usr/bin/env bash
# GET /healthz/ready through a proxy's life, as the kubelet asks it: on the
# proxy's health listener (ENVOY_STATUS_PORT, 15021), which routes it to the
# agent's status port. While epoch 0 waits for its first config (no control
# plane yet) the proxy accepts nothing on 15021, as Envoy before its
# workers start, so the probe fails; the agent's own port says why (Istio's
# "config not received" from the admin port, the reason logged once however
# often it is asked). Once the proxy is LIVE the agent's answers come
# through 15021: 503 "config received ... but was rejected" when the first
# config is NACKed (a rejected update completes initialization too), 200
# with an empty body once good config arrives, and 503 again as soon as
# SIGTERM starts the drain. "pilot-agent wait" returns when it turns 200.
. "$TOP/tests/lib.sh"

ready() {	# ready [PORT] -> "<code> <body>"; the health port by default
	curl -s --max-time 5 -w ' %{http_code}' "http://127.0.0.1:${1:-$HEALTH_PORT}/healthz/ready" |
		awk '{code=$NF; $NF=""; sub(/ $/, ""); print code " " $0}'
}
ready_at() {	# ready_at PORT CODE [BODY-SUBSTRING]
	local r
	r=$(ready "$1")
	[ "${r%% *}" = "$2" ] || return 1
	[ -z "${3:-}" ] || case $r in *"$3"*) ;; *) return 1 ;; esac
}
ready_is() {	# ready_is CODE [BODY-SUBSTRING]: on the health port
	ready_at "$HEALTH_PORT" "$@"
}

XDS_PORT=$(free_port)
xds_resources reject-c1 -- reject-l1
start_agent --drainDuration 2s --terminationDrainDuration 3s

note "no control plane: 15021 not served; Istio's reason on the agent's port"
NOXDS="config not received from XDS server (is Istiod running?): cds updates: 0 successful, 0 rejected; lds updates: 0 successful, 0 rejected"
wait_until 10 ready_at "$STATUS_PORT" 503 "$NOXDS" ||
	fail "want 503 $NOXDS, got: $(ready "$STATUS_PORT")"
[ "$(ready)" = "000 " ] || fail "the health port answered before the proxy is LIVE: $(ready)"
for i in $(seq 1 10); do ready "$STATUS_PORT" >/dev/null; done
n=$(grep -cF "readiness: not ready: $NOXDS" "$T/agent.log")
[ "$n" = 1 ] || fail "the reason was logged $n times, want once"

spawn "$B/pilot-agent" wait --url "http://127.0.0.1:$STATUS_PORT/healthz/ready" \
	--timeoutSeconds 30 --periodMillis 100 >"$T/wait.log" 2>&1
WAIT_PID=$LAST_PID

note "the first config is rejected: the proxy is LIVE, the agent's 503 comes through 15021"
start_cp
REJECTED="config received from XDS server, but was rejected: cds updates: 0 successful, 1 rejected; lds updates: 0 successful, 1 rejected"
wait_until 20 ready_is 503 "$REJECTED" || fail "want 503 config rejected, got: $(ready)"
[ "$(ready)" = "503 $(ready "$STATUS_PORT" | cut -d' ' -f2-)" ] ||
	fail "15021 and 15020 differ: $(ready) / $(ready "$STATUS_PORT")"
proxy_stat_gt '^cluster\.agent\.upstream_rq_total$' 0 ||
	fail "the proxy did not route the probe to the agent cluster: $(proxy_stat '^cluster\.agent\.')"
proxy_stat_gt '^http\.agent\.downstream_rq_total$' 0 || fail "http.agent.downstream_rq_total"
kill -0 "$WAIT_PID" || fail "wait returned before ready: $(cat "$T/wait.log")"

note "good config: ready"
xds_resources c1 -- l1
kill -HUP "$XS_PID"
wait_until 20 ready_is 200 || fail "want 200, got: $(ready)"
body=$(curl -s "http://127.0.0.1:$HEALTH_PORT/healthz/ready")
[ -z "$body" ] || fail "200 with a body: $body"
ready_at "$STATUS_PORT" 200 || fail "the agent's own port: $(ready "$STATUS_PORT")"
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
