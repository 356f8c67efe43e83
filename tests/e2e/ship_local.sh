#!/usr/bin/env bash
# The README's first command, "make local" (tests/local.sh): it starts the
# test control plane with the sample resources and the agent supervising the
# stand-in, prints URLs that answer, the printed hot restart and resource
# push work, and Ctrl-C (SIGINT to the foreground process group, as timeout
# -s INT sends it) stops every process it started and removes its directory.
. "$TOP/tests/lib.sh"

[ -x "$XDS_SERVER" ] || fail "no $XDS_SERVER"
[ -f "$TOP/tests/xds-server/sample.json" ] || fail "no tests/xds-server/sample.json"

# The README's command, on the build under test. timeout is the foreground
# job a terminal would signal: it passes SIGINT on to its process group, as
# Ctrl-C does. Should a source have changed since the runner built all,
# "make local" would rebuild the binaries other tests are running; then the
# script it runs is run directly.
if make -q -C "$TOP" all B="$B" >/dev/null 2>&1; then
	cmd=(make -s -C "$TOP" --no-print-directory local B="$B")
else
	note "sources changed since the build: running tests/local.sh without make"
	cmd=(env B="$B" "$TOP/tests/local.sh")
fi
spawn timeout -s INT 300 "${cmd[@]}" >"$T/local.out" 2>&1
TIMEOUT_PID=$LAST_PID

printed() { grep -q "hot restart   kill -HUP" "$T/local.out"; }
wait_until 60 printed || fail "nothing printed: $(cat "$T/local.out")"
AGENT_PID=$(sed -n 's/.*hot restart   kill -HUP \([0-9]*\).*/\1/p' "$T/local.out")
XS_PID=$(sed -n 's/.*then kill -HUP \([0-9]*\) to push it.*/\1/p' "$T/local.out")
DIR=$(grep -o '/tmp/pilot-agent-local\.[A-Za-z0-9]*' "$T/local.out" | head -n 1)
[ -n "$AGENT_PID" ] && [ -n "$XS_PID" ] && [ -d "$DIR" ] ||
	fail "agent pid, control plane pid or directory not printed: $(cat "$T/local.out")"
url() { grep "^  $1 " "$T/local.out" | grep -o 'http://[^ ]*'; }
for what in readiness metrics merged epochs "xDS state" "proxy admin" "health port"; do
	[ -n "$(url "$what")" ] || fail "no URL printed for $what"
done
ADMIN=$(url "proxy admin")
ADMIN_PORT=$(echo "$ADMIN" | sed 's|http://127.0.0.1:\([0-9]*\)/.*|\1|')

note "every printed URL answers"
ready() { [ "$(http_code "$(url readiness)")" = 200 ]; }
wait_until 20 ready || fail "readiness: $(http_code "$(url readiness)"); $(tail -n 20 "$T/local.out")"
for what in metrics merged epochs "xDS state" "proxy admin" "health port"; do
	code=$(http_code "$(url "$what")")
	[ "$code" = 200 ] || fail "$what $(url "$what"): HTTP $code"
done
curl -s "$(url metrics)" | grep -q '^istio_agent_' || fail "no agent metrics on the metrics URL"
curl -s "$(url "xDS state")" | grep -q 'envoy.config.cluster.v3.Cluster' ||
	fail "/debug/syncz shows no CDS"

note "the stand-in got the sample resources from the test control plane"
[ "$(proxy_stat '^cluster_manager.cds.update_success$')" -ge 1 ] 2>/dev/null || fail "no CDS update"
[ "$(proxy_stat '^listener_manager.lds.update_success$')" -ge 1 ] 2>/dev/null || fail "no LDS update"

note "the printed push: edit resources.json, SIGHUP the control plane"
python3 - "$DIR/resources.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["resources"]["type.googleapis.com/envoy.config.cluster.v3.Cluster"].append({"name": "pushed"})
json.dump(d, open(sys.argv[1], "w"))
PY
kill -HUP "$XS_PID"
cds_grew() { [ "$(proxy_stat '^cluster_manager.cds.update_success$')" -ge 2 ] 2>/dev/null; }
wait_until 10 cds_grew || fail "the pushed CDS did not arrive"

note "the printed hot restart: SIGHUP the agent"
wait_until 20 is_live 0 || fail "epoch 0 not LIVE"
kill -HUP "$AGENT_PID"
wait_until 20 is_live 1 || fail "epoch 1 not LIVE after SIGHUP: $(tail -n 20 "$T/local.out")"

# Everything that runs now must be gone after Ctrl-C.
procs=("$AGENT_PID" "$XS_PID" $(children_of "$AGENT_PID"))
note "Ctrl-C"
kill -INT "$TIMEOUT_PID"
wait_exit "$TIMEOUT_PID" 30 || fail "make local did not stop: $(tail -n 20 "$T/local.out")"
[ "$EXIT_CODE" != 124 ] || fail "make local ran until the timeout"
grep -q "^stopped; removed $DIR" "$T/local.out" || fail "no 'stopped' line: $(tail -n 5 "$T/local.out")"
[ ! -e "$DIR" ] || fail "$DIR left behind"
for p in "${procs[@]}"; do
	if kill -0 "$p" 2>/dev/null; then
		fail "pid $p ($(tr '\0' ' ' </proc/"$p"/cmdline)) still running"
	fi
done
grep -q "pilot-agent exiting with code 0" "$T/local.out" || fail "the agent did not exit 0"
grep -q "drain: " "$T/local.out" || fail "the agent did not drain"
echo PASS
