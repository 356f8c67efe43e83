#!/usr/bin/env bash
# The proxy's argv for each epoch, exactly as DESIGN §4 gives it, recorded by
# a wrapper used as --binaryPath; v6 only when every instance IP is IPv6.
. "$TOP/tests/lib.sh"
make_proxy_wrapper
cat >"$T/record" <<EOF2
#!/bin/sh
for a in "\$0" "\$@"; do printf '%s\n' "\$a"; done >"$T/argv.\$\$"
exec "$T/envoy" "\$@"
EOF2
chmod +x "$T/record"

export POD_NAME=pod-a POD_NAMESPACE=ns-b INSTANCE_IP=10.9.8.7 ENVOY_EMU_ASSUME_XDS=1
BINARY=$T/record start_agent --drainDuration 7s --parentShutdownDuration 9s \
	--serviceCluster test.cluster --proxyComponentLogLevel misc:error \
	--concurrency 2 --proxyLogLevel info --terminationDrainDuration 1s
wait_live 0

expect() { # epoch
	cat <<EOF2
$T/record
-c
$T/etc/envoy-rev$1.json
--restart-epoch
$1
--drain-time-s
7
--parent-shutdown-time-s
9
--service-cluster
test.cluster
--service-node
sidecar~10.9.8.7~pod-a.ns-b~ns-b.svc.cluster.local
--local-address-ip-version
v4
--file-flush-interval-msec
1000
--log-format
[Envoy (Epoch $1)] [%Y-%m-%d %T.%e][%t][%l][%n] %v
-l
info
--component-log-level
misc:error
--concurrency
2
EOF2
}
p0=$(epoch_pid 0)
[ -f "$T/argv.$p0" ] || fail "no argv recorded for epoch 0 (pid $p0)"
diff <(expect 0) "$T/argv.$p0" || fail "epoch 0 argv differs"

kill -HUP "$AGENT_PID"
wait_live 1
p1=$(epoch_pid 1)
diff <(expect 1) "$T/argv.$p1" || fail "epoch 1 argv differs"

kill -TERM "$AGENT_PID"
wait_exit "$AGENT_PID" 20 || fail "agent did not exit"
[ "$EXIT_CODE" = 0 ] || fail "agent exit code $EXIT_CODE"

# IPv6 only: v6. Defaults: no optional flags.
unset ADMIN_PORT STATUS_PORT HEALTH_PORT PROM_PORT
export INSTANCE_IP=fd00::5
BINARY=$T/record start_agent --terminationDrainDuration 0s
wait_live 0
p=$(epoch_pid 0)
grep -qx v6 "$T/argv.$p" || fail "IPv6 instance IP must give v6"
grep -qx -- --concurrency "$T/argv.$p" && fail "--concurrency passed without the flag"
grep -qx -- --component-log-level "$T/argv.$p" && fail "--component-log-level passed without the flag"
sed -n '7p;9p;13p;21p' "$T/argv.$p" | tr '\n' ' ' | grep -q '^45 60 sidecar~fd00::5~pod-a.ns-b~ns-b.svc.cluster.local warning $' ||
	fail "defaults wrong: $(sed -n '7p;9p;13p;21p' "$T/argv.$p" | tr '\n' ' ')"
kill -TERM "$AGENT_PID"
wait_exit "$AGENT_PID" 20 || fail "agent did not exit"
echo "argv ok"
