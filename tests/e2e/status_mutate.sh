#!/usr/bin/env bash
# POST /quitquitquit and POST /drain: from another address (a network
# namespace this test makes, joined by a veth pair on a private range) both
# are 403, whatever the method; from loopback another method is 405. POST
# /drain turns readiness to 503 and a later SIGTERM exits at once; POST
# /quitquitquit stops the agent at once, without the drain.
. "$TOP/tests/lib.sh"

NS=pa-st-$$
VA=vsa$$
VB=vsb$$
N=$(( $$ % 250 + 1 ))
HOST_IP=10.234.$N.1
NS_IP=10.234.$N.2
cleanup() {
	local rc=$?
	ip netns del "$NS" 2>/dev/null
	ip link del "$VA" 2>/dev/null
	(exit "$rc")
	lib_cleanup
}
trap cleanup EXIT

ip netns add "$NS" || fail "cannot make a network namespace (root needed)"
ip link add "$VA" type veth peer name "$VB" || fail "cannot make a veth pair"
ip link set "$VB" netns "$NS"
ip addr add "$HOST_IP/30" dev "$VA"
ip link set "$VA" up
ip netns exec "$NS" ip addr add "$NS_IP/30" dev "$VB"
ip netns exec "$NS" ip link set "$VB" up
ip netns exec "$NS" ip link set lo up

export ENVOY_EMU_ASSUME_XDS=1
start_agent --terminationDrainDuration 30s
wait_until 20 curl -sf "http://127.0.0.1:$STATUS_PORT/healthz/ready" ||
	fail "agent not ready: $(tail "$T/agent.log")"
wait_until 5 ip netns exec "$NS" curl -sf --max-time 1 \
	"http://$HOST_IP:$STATUS_PORT/healthz/ready" || fail "status port unreachable from $NS"

from_ns() {	# from_ns METHOD PATH -> code
	ip netns exec "$NS" curl -s -o "$T/ns.body" -w '%{http_code}' --max-time 5 \
		-X "$1" "http://$HOST_IP:$STATUS_PORT$2"
}
for m in POST GET PUT; do
	for p in /quitquitquit /drain; do
		c=$(from_ns "$m" "$p")
		[ "$c" = 403 ] || fail "$m $p from $NS_IP: $c, want 403"
	done
done
grep -q "Only requests from localhost are allowed" "$T/ns.body" || fail "403 body: $(cat "$T/ns.body")"
note "403 from $NS_IP"
for m in GET PUT DELETE; do
	for p in /quitquitquit /drain; do
		c=$(http_code -X "$m" "http://127.0.0.1:$STATUS_PORT$p")
		[ "$c" = 405 ] || fail "$m $p from loopback: $c, want 405"
	done
done
note "405 from loopback"
kill -0 "$AGENT_PID" || fail "the agent died"
[ "$(http_code "http://127.0.0.1:$STATUS_PORT/healthz/ready")" = 200 ] || fail "not ready any more"

note "POST /drain (from ::1 where the host has IPv6), then SIGTERM"
c=$(http_code -X POST "http://[::1]:$STATUS_PORT/drain" 2>/dev/null) || true
if [ "$c" != 200 ]; then
	c=$(http_code -X POST "http://127.0.0.1:$STATUS_PORT/drain")
fi
[ "$c" = 200 ] || fail "POST /drain: $c"
wait_until 2 sh -c "curl -s http://127.0.0.1:$STATUS_PORT/healthz/ready | grep -q draining" ||
	fail "not draining: $(curl -s "http://127.0.0.1:$STATUS_PORT/healthz/ready")"
# The kubelet's probe goes to the proxy's health listener, routed to us.
curl -s "http://127.0.0.1:$HEALTH_PORT/healthz/ready" | grep -q draining ||
	fail "the health port does not say draining: $(curl -s -i "http://127.0.0.1:$HEALTH_PORT/healthz/ready")"
# Fixed time: draining, the agent must not exit of itself; a second shows it.
sleep 1
kill -0 "$AGENT_PID" || fail "POST /drain made the agent exit"
kill -TERM "$AGENT_PID"
wait_exit "$AGENT_PID" 5 || fail "SIGTERM after /drain did not exit at once"

note "POST /quitquitquit"
ADMIN_PORT= STATUS_PORT= PROM_PORT= HEALTH_PORT=
start_agent --terminationDrainDuration 30s
wait_until 20 curl -sf "http://127.0.0.1:$STATUS_PORT/healthz/ready" || fail "second agent not ready"
out=$(curl -s -w ' %{http_code}' -X POST "http://127.0.0.1:$STATUS_PORT/quitquitquit")
[ "$out" = "OK 200" ] || fail "POST /quitquitquit: $out"
wait_exit "$AGENT_PID" 5 || fail "the agent did not stop at once"

note "a second POST /quitquitquit while stopping does not escalate to SIGKILL"
# A proxy that ignores SIGTERM keeps the supervisor in its stopping state
# for its SIGKILL grace; a repeated quit must not cut that short.
cat >"$T/stubborn" <<'SH'
#!/bin/sh
trap '' TERM
exec sleep 60
SH
chmod +x "$T/stubborn"
ADMIN_PORT= STATUS_PORT= PROM_PORT= HEALTH_PORT=
BINARY=$T/stubborn start_agent --terminationDrainDuration 30s
wait_until 10 sh -c "grep -q 'epoch 0: started pid' '$T/agent.log'" || fail "stubborn proxy not started"
pid=$(epoch_pid 0)
wait_until 10 curl -s -o /dev/null "http://127.0.0.1:$STATUS_PORT/healthz/ready" || fail "status port"
out=$(curl -s -w ' %{http_code}' -X POST "http://127.0.0.1:$STATUS_PORT/quitquitquit")
[ "$out" = "OK 200" ] || fail "first POST /quitquitquit: $out"
wait_until 3 log_has "sending SIGTERM to pid $pid" || fail "no SIGTERM: $(tail "$T/agent.log")"
out=$(curl -s -w ' %{http_code}' -X POST "http://127.0.0.1:$STATUS_PORT/quitquitquit")
[ "$out" = "OK 200" ] || fail "second POST /quitquitquit: $out"
# Fixed time: the second quit must not kill the proxy; a second shows it.
sleep 1
kill -0 "$pid" 2>/dev/null || fail "the second quit killed the proxy at once"
! log_has "SIGKILL" || fail "the second quit escalated: $(tail "$T/agent.log")"
log_has "already stopping" || fail "second quit not noted"
wait_exit "$AGENT_PID" 10 || fail "the agent did not stop after the grace"
echo PASS
