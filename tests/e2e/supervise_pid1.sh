#!/usr/bin/env bash
# The agent as PID 1 of a new PID namespace: it supervises the proxy, reaps an
# orphaned grandchild, and drains and exits 0 on SIGTERM.
. "$TOP/tests/lib.sh"
make_proxy_wrapper
# The proxy leaves an orphan behind: a subshell's child outlives it.
cat >"$T/orphaner" <<EOF2
#!/bin/sh
( sleep 0.5 & )
exec "$T/envoy" "\$@"
EOF2
chmod +x "$T/orphaner"
export ENVOY_EMU_ASSUME_XDS=1
ADMIN_PORT=$(free_port)
export ENVOY_STATUS_PORT=$(free_port) ENVOY_PROMETHEUS_PORT=$(free_port)
spawn unshare --pid --fork --mount-proc "$AGENT" proxy sidecar \
	--configPath "$T/etc" --binaryPath "$T/orphaner" --proxyAdminPort "$ADMIN_PORT" \
	--statusPort "$(free_port)" --controlPlaneAuthPolicy NONE \
	--discoveryAddress "127.0.0.1:$(free_port)" --terminationDrainDuration 1s \
	>"$T/agent.log" 2>&1
UNSHARE_PID=$LAST_PID
find_agent() { AGENT_PID=$(children_of "$UNSHARE_PID" | head -n 1); [ -n "$AGENT_PID" ]; }
wait_until 5 find_agent || fail "no agent under unshare"
grep -q '^NSpid:.*[[:space:]]1$' /proc/"$AGENT_PID"/status || fail "agent is not PID 1 in its namespace"
wait_live 0

# The orphan is re-parented to the agent and must be reaped, not left a
# zombie, once it ends half a second after the proxy's start.
wait_until 10 one_child_reaped "$AGENT_PID" ||
	fail "want only the proxy as child and no zombie, have: $(children_of "$AGENT_PID" | tr '\n' ' ')(zombies: $(zombies_of "$AGENT_PID" | tr '\n' ' '))"

kill -TERM "$AGENT_PID"
wait_exit "$UNSHARE_PID" 20 || fail "agent did not exit"
[ "$EXIT_CODE" = 0 ] || fail "exit code $EXIT_CODE"
log_has "drain: terminationDrainDuration elapsed" || fail "no drain as PID 1"
echo "pid 1 ok"
