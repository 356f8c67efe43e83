#!/usr/bin/env bash
# The stand-in's states: LIVE without dynamic_resources (emu_admin.sh); with
# ADS it waits in PRE_INITIALIZING for CDS; ENVOY_EMU_ASSUME_XDS=1 makes CDS
# and LDS count as received; ENVOY_EMU_INIT_DELAY holds INITIALIZING; an
# initial_fetch_timeout lets it go LIVE without updates, as Envoy does.
. "$TOP/tests/lib.sh"
. "$TOP/tests/envoy-emu/e2e.sh"

ads() {
	local timeout=$1
	EMU_CONFIG_EXTRA=',"dynamic_resources":{"ads_config":{"api_type":"GRPC","grpc_services":[{"envoy_grpc":{"cluster_name":"xds-grpc"}}]},"cds_config":{"ads":{},"initial_fetch_timeout":"'$timeout'","resource_api_version":"V3"},"lds_config":{"ads":{},"initial_fetch_timeout":"'$timeout'","resource_api_version":"V3"}}'
	EMU_CONFIG_EXTRA=$EMU_CONFIG_EXTRA emu_config "$T/emu.json" "health:$PORT"
}
stop() {
	kill -TERM "$1"
	wait_exit "$1" 5 || fail "did not stop"
	[ "$EXIT_CODE" = 0 ] || fail "exit code $EXIT_CODE"
}
READY_FILTER='/stats?usedonly&filter=^(cluster_manager\.cds|listener_manager\.lds)\.(update_success|update_rejected)$'

PORT=$(free_port)
note "ADS without a control plane: PRE_INITIALIZING for ever"
ads 0s
emu_start 0
PID=$LAST_PID
wait_until 5 ready_is PRE_INITIALIZING || fail "/ready: $(admin_get /ready)"
# Fixed time: "for ever" is checked over a second and a half.
sleep 1.5
[ "$(http_code "http://127.0.0.1:$ADMIN/ready")" = 503 ] || fail "/ready not 503"
[ "$(admin_get /ready)" = PRE_INITIALIZING ] || fail "left PRE_INITIALIZING: $(admin_get /ready)"
[ "$(stat_of server.state)" = 2 ] || fail "server.state $(stat_of server.state)"
[ -z "$(admin_get "$READY_FILTER")" ] || fail "update stats without updates"
admin_get '/stats?usedonly&filter=^(server\.state|listener_manager\.workers_started)' >"$T/s"
[ "$(cat "$T/s")" = "server.state: 2" ] || fail "readiness stats: $(cat "$T/s")"
admin_get /server_info | grep -q '"state": "PRE_INITIALIZING"' || fail "server_info state"
[ "$(http_code "http://127.0.0.1:$PORT/")" = 000 ] || fail "listener served before LIVE"
grep -q "no xDS client" "$T/emu0.log" || [ -n "$(grep -l xds_start "$TOP"/tests/envoy-emu/*.c 2>/dev/null | grep -v emu.c)" ] ||
	fail "no warning about the missing xDS client"
stop "$PID"

note "ENVOY_EMU_ASSUME_XDS=1: LIVE, CDS and LDS counted"
ENVOY_EMU_ASSUME_XDS=1 emu_start 0
PID=$LAST_PID
wait_until 5 emu_live || fail "not LIVE: $(admin_get /ready)"
out=$(admin_get "$READY_FILTER")
[ "$out" = "$(printf 'cluster_manager.cds.update_success: 1\nlistener_manager.lds.update_success: 1')" ] ||
	fail "update stats: $out"
[ "$(stat_of listener_manager.workers_started)" = 1 ] || fail "workers_started"
stop "$PID"

note "ENVOY_EMU_INIT_DELAY: INITIALIZING, then LIVE"
ENVOY_EMU_ASSUME_XDS=1 ENVOY_EMU_INIT_DELAY=1500ms emu_start 0
PID=$LAST_PID
wait_until 5 ready_is INITIALIZING || fail "/ready: $(admin_get /ready)"
[ "$(stat_of server.state)" = 3 ] || fail "server.state $(stat_of server.state)"
[ -z "$(stat_of listener_manager.workers_started | grep 1)" ] || fail "workers started early"
wait_until 5 emu_live || fail "never LIVE"
[ "$(stat_of server.state)" = 0 ] || fail "server.state after delay"
stop "$PID"

note "initial_fetch_timeout 1s: LIVE without any update, as Envoy"
ads 1s
emu_start 0
PID=$LAST_PID
wait_until 5 ready_is PRE_INITIALIZING || fail "/ready: $(admin_get /ready)"
wait_until 5 ready_is INITIALIZING || fail "CDS fetch timeout did not move on"
wait_until 5 emu_live || fail "LDS fetch timeout did not make it LIVE"
[ "$(stat_of cluster_manager.cds.init_fetch_timeout)" = 1 ] || fail "cds init_fetch_timeout"
[ "$(stat_of listener_manager.lds.init_fetch_timeout)" = 1 ] || fail "lds init_fetch_timeout"
[ -z "$(admin_get "$READY_FILTER")" ] || fail "update stats without updates"
stop "$PID"
echo "states ok"
