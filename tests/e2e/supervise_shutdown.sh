#!/usr/bin/env bash
# SIGTERM: the drain request reaches the proxy and the agent exits 0 after the
# drain; with EXIT_ON_ZERO_ACTIVE_CONNECTIONS it waits for a held connection
# to close; a second SIGTERM ends the drain at once. SIGUSR1 is forwarded.
. "$TOP/tests/lib.sh"
export ENVOY_EMU_ASSUME_XDS=1
APP_PORT=$(free_port)
cat >"$T/override.json" <<EOF2
{"static_resources":{"listeners":[{"name":"inbound-app","traffic_direction":"INBOUND",
 "address":{"socket_address":{"address":"127.0.0.1","port_value":$APP_PORT}}}]}}
EOF2
export ISTIO_BOOTSTRAP_OVERRIDE=$T/override.json

# 1. Plain drain: terminationDrainDuration 1s, then exit 0.
start_agent --terminationDrainDuration 1s --proxyLogLevel info
wait_live 0
kill -USR1 "$AGENT_PID"
wait_until 5 log_has "caught SIGUSR1" || fail "SIGUSR1 not forwarded"
t0=$(date +%s%N)
kill -TERM "$AGENT_PID"
wait_until 5 log_has "drain: proxy is draining its listeners" ||
	fail "drain request did not reach the proxy"
wait_exit "$AGENT_PID" 20 || fail "agent did not exit"
t1=$(date +%s%N)
[ "$EXIT_CODE" = 0 ] || fail "exit code $EXIT_CODE"
[ $(( (t1 - t0) / 1000000 )) -ge 1000 ] || fail "exited before the drain ended"
log_has "drain: terminationDrainDuration elapsed" || fail "no drain end"

# 2. EXIT_ON_ZERO_ACTIVE_CONNECTIONS waits for a held connection.
unset ADMIN_PORT STATUS_PORT HEALTH_PORT PROM_PORT
EXIT_ON_ZERO_ACTIVE_CONNECTIONS=true MINIMUM_DRAIN_DURATION=1s start_agent
wait_live 0
python3 - "$APP_PORT" "$T/release" >"$T/holder.out" 2>&1 <<'PY' &
import socket, sys, time, os
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
print(s.recv(4096).split(b"\r\n")[0].decode(), flush=True)
for i in range(600):
    if os.path.exists(sys.argv[2]):
        break
    time.sleep(0.05)
s.close()
PY
HOLD_PID=$!
SPAWNED+=("$HOLD_PID")
wait_until 5 grep -q "200" "$T/holder.out" || fail "holder got no answer"
kill -TERM "$AGENT_PID"
wait_until 10 log_has "drain: 1 active connections remain" ||
	fail "agent did not see the held connection: $(tail -n 5 "$T/agent.log")"
# Fixed time: with the connection held, the agent must not exit; a second shows it.
sleep 1
kill -0 "$AGENT_PID" || fail "agent exited with a connection still open"
touch "$T/release"
wait_exit "$AGENT_PID" 10 || fail "agent did not exit after the connection closed"
[ "$EXIT_CODE" = 0 ] || fail "exit code $EXIT_CODE"
log_has "no more active connections" || fail "no zero-connections line"

# 3. A second SIGTERM cuts a long drain short.
unset ADMIN_PORT STATUS_PORT HEALTH_PORT PROM_PORT
start_agent --terminationDrainDuration 60s
wait_live 0
kill -TERM "$AGENT_PID"
wait_until 5 log_has "drain: waiting 1m0s" || fail "no drain"
kill -TERM "$AGENT_PID"
wait_exit "$AGENT_PID" 5 || fail "second SIGTERM did not end the drain"
[ "$EXIT_CODE" = 0 ] || fail "exit code $EXIT_CODE"
log_has "drain cut short" || fail "no cut-short line"
echo "shutdown ok"

# 4. The proxy ending by itself during the drain: its own code. Its exit
# timer must fire after the SIGTERM, so the test checks the order.
unset ADMIN_PORT STATUS_PORT HEALTH_PORT PROM_PORT
ENVOY_EMU_EXIT_CODE=3 ENVOY_EMU_EXIT_AFTER=4s start_agent --terminationDrainDuration 60s
wait_live 0
kill -TERM "$AGENT_PID"
wait_until 5 log_has "drain: waiting 1m0s" || fail "no drain"
wait_exit "$AGENT_PID" 15 || fail "agent did not exit with its proxy"
log_has "cold start in" && fail "the proxy exited before the SIGTERM; test too slow"
[ "$EXIT_CODE" = 3 ] || fail "exit code $EXIT_CODE, want the proxy's 3"
echo "shutdown codes ok"
