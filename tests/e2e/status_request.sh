#!/usr/bin/env bash
# "pilot-agent request" and "pilot-agent wait": request prints the admin
# API's answer and exits 0 for 2xx, 1 otherwise, 2 for a usage error;
# --debug-port reaches the status port. wait exits 1 on timeout, saying
# why, and 0 at once against a ready agent.
. "$TOP/tests/lib.sh"

export ENVOY_EMU_ASSUME_XDS=1
start_agent
wait_until 20 curl -sf "http://127.0.0.1:$STATUS_PORT/healthz/ready" ||
	fail "agent not ready: $(tail "$T/agent.log")"

note "request"
"$AGENT" request GET server_info --debug-port "$ADMIN_PORT" >"$T/out" 2>"$T/err" ||
	fail "request GET server_info: $(cat "$T/err")"
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["state"] == "LIVE"' "$T/out" ||
	fail "server_info output: $(head -c 300 "$T/out")"
"$AGENT" request GET "/stats?filter=server.state" --debug-port="$ADMIN_PORT" >"$T/out" ||
	fail "request with a leading slash and a query"
grep -q "server.state: 0" "$T/out" || fail "stats output: $(cat "$T/out")"
"$AGENT" request GET no/such/path --debug-port "$ADMIN_PORT" >"$T/out" 2>"$T/err"
[ $? = 1 ] || fail "404 did not exit 1"
grep -q "unsuccessful status code 404" "$T/err" || fail "404 not reported: $(cat "$T/err")"
"$AGENT" request GET healthz/ready --debug-port "$STATUS_PORT" || fail "request to the status port"
"$AGENT" request GET debug/epochs --debug-port "$STATUS_PORT" | grep -q '"live_epoch": 0' ||
	fail "request debug/epochs"
"$AGENT" request POST healthcheck/fail --debug-port "$ADMIN_PORT" >/dev/null ||
	fail "request POST"
"$AGENT" request POST healthcheck/ok "" --debug-port "$ADMIN_PORT" >/dev/null ||
	fail "request POST with a body"
"$AGENT" request GET server_info --debug-port "$(free_port)" 2>"$T/err"
[ $? = 1 ] || fail "no server did not exit 1"
"$AGENT" request FROB x 2>/dev/null
[ $? = 2 ] || fail "a bad method is not a usage error"
"$AGENT" request GET 2>/dev/null
[ $? = 2 ] || fail "a missing path is not a usage error"

note "wait"
"$AGENT" wait --url "http://127.0.0.1:$STATUS_PORT/healthz/ready" --periodMillis 50 \
	2>"$T/err" || fail "wait on a ready agent: $(cat "$T/err")"
# An IPv6 literal in the URL (the status port listens on :: where the host
# has IPv6).
if curl -sf --max-time 2 "http://[::1]:$STATUS_PORT/healthz/ready" >/dev/null 2>&1; then
	"$AGENT" wait --url "http://[::1]:$STATUS_PORT/healthz/ready" --periodMillis 50 \
		--timeoutSeconds 3 2>"$T/err" || fail "wait on [::1]: $(cat "$T/err")"
	note "wait on [::1]"
fi
start=$(date +%s%N)
"$AGENT" wait --url "http://127.0.0.1:$ADMIN_PORT/nope" --timeoutSeconds 1 \
	--periodMillis 100 2>"$T/err"
rc=$?
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$rc" = 1 ] || fail "wait on a 404 exited $rc"
[ "$elapsed" -lt 3000 ] || fail "wait --timeoutSeconds 1 took ${elapsed}ms"
grep -q "timeout waiting for Envoy proxy to become ready. Last error: HTTP status code 404" "$T/err" ||
	fail "wait did not say why: $(cat "$T/err")"
"$AGENT" wait --url "http://127.0.0.1:$(free_port)/healthz/ready" --timeoutSeconds 1 \
	--periodMillis 100 --requestTimeoutMillis 100 2>"$T/err"
[ $? = 1 ] || fail "wait on nothing did not exit 1"
"$AGENT" wait --timeoutSeconds x 2>/dev/null
[ $? = 2 ] || fail "a bad flag value is not a usage error"
echo PASS
