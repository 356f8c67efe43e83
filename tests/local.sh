#!/usr/bin/env bash
# A local sidecar for debugging: the test control plane with sample
# resources, and the agent supervising the Envoy stand-in, on free ports in a
# temporary directory. Prints what to try; Ctrl-C stops everything cleanly.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-build}
case $B in /*) ;; *) B=$top/$B ;; esac
for p in pilot-agent envoy-emu; do
	[ -x "$B/$p" ] || { echo "local: $B/$p is missing; run: make local" >&2; exit 1; }
done
dir=$(mktemp -d /tmp/pilot-agent-local.XXXXXX)
port() { python3 "$top/tests/tools/free_port.py"; }

admin=$(port) status=$(port) health=$(port) prom=$(port) xds=$(port)
# The agent and the control plane run in sessions of their own, so that
# Ctrl-C reaches this script only and each of them gets exactly one SIGTERM:
# a second signal would cut the agent's drain short.
pids=()
cleanup() {
	trap - INT TERM EXIT
	echo
	echo "stopping..."
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$dir"
	echo "stopped; removed $dir"
}
trap cleanup INT TERM EXIT

env_extra=()
if [ -x "$B/xds-server" ] && [ -f "$top/tests/xds-server/sample.json" ]; then
	cp "$top/tests/xds-server/sample.json" "$dir/resources.json"
	setsid "$B/xds-server" --listen "127.0.0.1:$xds" --config "$dir/resources.json" \
		>"$dir/xds-server.log" 2>&1 &
	pids+=($!)
	cp_note="test control plane on 127.0.0.1:$xds (pid $!, log $dir/xds-server.log);
  edit $dir/resources.json, then kill -HUP $! to push it"
else
	env_extra=(ENVOY_EMU_ASSUME_XDS=1)
	cp_note="no test control plane built: the stand-in fakes its first config"
fi

printf '#!/bin/sh\nexec "%s" --base-id %d "$@"\n' "$B/envoy-emu" $(( $$ % 100000 + 100 )) >"$dir/envoy"
chmod +x "$dir/envoy"

setsid env "${env_extra[@]}" ENVOY_STATUS_PORT="$health" ENVOY_PROMETHEUS_PORT="$prom" \
	"$B/pilot-agent" proxy sidecar --configPath "$dir/etc" --binaryPath "$dir/envoy" \
	--proxyAdminPort "$admin" --statusPort "$status" \
	--discoveryAddress "127.0.0.1:$xds" --controlPlaneAuthPolicy NONE \
	--certDir "$dir/certs" --terminationDrainDuration 2s --proxyLogLevel info &
agent=$!
pids=("$agent" "${pids[@]}")

cat <<INFO

pilot-agent is running (pid $agent), supervising the Envoy stand-in.
  $cp_note
  readiness     curl -i http://127.0.0.1:$status/healthz/ready
  metrics       curl http://127.0.0.1:$prom/stats/prometheus
  merged        curl http://127.0.0.1:$status/stats/prometheus
  epochs        curl http://127.0.0.1:$status/debug/epochs
  xDS state     curl http://127.0.0.1:$status/debug/syncz
  proxy admin   curl http://127.0.0.1:$admin/server_info
  health port   curl -i http://127.0.0.1:$health/healthz/ready
  hot restart   kill -HUP $agent
Ctrl-C stops it (drain, then exit).

INFO
wait "$agent"
