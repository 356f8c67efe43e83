#!/usr/bin/env bash
# The watcher keeps up with directories that come and go: a certificate
# directory replaced by a rename is watched at its path again (a later edit
# still restarts), and a --certDir whose parent did not exist at start is
# found once it is created.
. "$TOP/tests/lib.sh"
export ENVOY_EMU_ASSUME_XDS=1
mkdir -p "$T/certs"
printf 'CERT-1\n' >"$T/certs/cert-chain.pem"
start_agent --watchDebounce 500ms --drainDuration 1s --parentShutdownDuration 2s \
	--terminationDrainDuration 0s
wait_live 0

# 1. The directory swapped by renames: one restart, then an edit in the new
# directory restarts again.
mkdir "$T/certs.new"
printf 'CERT-2\n' >"$T/certs.new/cert-chain.pem"
mv "$T/certs" "$T/certs.old"
mv "$T/certs.new" "$T/certs"
wait_live 1
printf 'CERT-3\n' >"$T/certs/cert-chain.pem"
wait_live 2 ||
	fail "an edit in the renamed-in directory was not seen"
kill -TERM "$AGENT_PID"
wait_exit "$AGENT_PID" 20 || fail "agent did not exit"

# 2. A certificate directory whose parent appears after the start.
unset ADMIN_PORT STATUS_PORT HEALTH_PORT PROM_PORT
: >"$T/agent.log"
ADMIN_PORT=$(free_port) STATUS_PORT=$(free_port) HEALTH_PORT=$(free_port) PROM_PORT=$(free_port)
export ENVOY_STATUS_PORT=$HEALTH_PORT ENVOY_PROMETHEUS_PORT=$PROM_PORT
spawn "$AGENT" proxy sidecar --configPath "$T/etc2" --binaryPath "$T/envoy" \
	--proxyAdminPort "$ADMIN_PORT" --statusPort "$STATUS_PORT" \
	--discoveryAddress "127.0.0.1:$(free_port)" --controlPlaneAuthPolicy NONE \
	--certDir "$T/later/certs" --watchDebounce 500ms --terminationDrainDuration 0s \
	>"$T/agent.log" 2>&1
AGENT_PID=$LAST_PID
wait_live 0
mkdir -p "$T/later/certs"
printf 'CERT-A\n' >"$T/later/certs/cert-chain.pem"
wait_live 1 || fail "a certificate directory created later was not seen"
kill -TERM "$AGENT_PID"
wait_exit "$AGENT_PID" 20 || fail "agent did not exit"
echo "watched directories ok"
