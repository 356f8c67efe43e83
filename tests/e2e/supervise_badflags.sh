#!/usr/bin/env bash
# Every flag (and variable) with a malformed value exits 2 with a message
# naming it, before anything is forked or written.
. "$TOP/tests/lib.sh"
cat >"$T/proxy" <<EOF2
#!/bin/sh
touch "$T/ran"
exec sleep 5
EOF2
chmod +x "$T/proxy"

n=0
check() { # what-the-message-names, then the arguments (env via env VAR=)
	local want=$1
	shift
	n=$((n + 1))
	rm -rf "$T/etc$n"
	"$@" >"$T/out$n" 2>&1
	local rc=$?
	[ "$rc" = 2 ] || fail "case $n ($*): exit $rc, want 2: $(cat "$T/out$n")"
	grep -q -- "$want" "$T/out$n" || fail "case $n: message lacks '$want': $(cat "$T/out$n")"
	[ -e "$T/etc$n" ] && fail "case $n: configPath was created"
	[ -e "$T/ran" ] && fail "case $n: the proxy was started"
	return 0
}
run() { # the agent with good defaults and some bad flags
	echo "$AGENT proxy sidecar --configPath $T/etc$((n + 1)) --binaryPath $T/proxy"
}
base="--configPath"
for spec in \
	"--drainDuration|forty" "--parentShutdownDuration|60" \
	"--terminationDrainDuration|1x" "--connectTimeout|-" "--dnsRefreshRate|5 m" \
	"--restartInitialInterval|0s" "--restartStableDuration|later" \
	"--restartMaxRetries|many" "--proxyAdminPort|0" "--statusPort|65536" \
	"--concurrency|two" "--controlPlaneBootstrap|maybe" "--log_as_json|yes please" \
	"--proxyLogLevel|loud" "--controlPlaneAuthPolicy|SOMETIMES" \
	"--drainStrategy|slowly" "--log_output_level|default:chatty" \
	"--watchDebounce|1y"; do
	flag=${spec%%|*} value=${spec#*|}
	case $flag in
	--controlPlaneBootstrap|--log_as_json) args=("$flag=$value") ;;
	*) args=("$flag" "$value") ;;
	esac
	check "${flag}\"" $(run) "${args[@]}"
done
check "flag needs an argument: --statusPort" $(run) --statusPort
check "invalid proxy type" "$AGENT" proxy gateway --configPath "$T/etc$((n + 1))" --binaryPath "$T/proxy"
check "\"--binaryPath\" flag" "$AGENT" proxy --configPath "$T/etc$((n + 1))" --binaryPath "$T/missing"
check "\"--binaryPath\" flag" "$AGENT" proxy --configPath "$T/etc$((n + 1))" --binaryPath "$T"
chmod -x "$T/proxy"
check "\"--binaryPath\" flag" $(run)
chmod +x "$T/proxy"
for spec in "EXIT_ON_ZERO_ACTIVE_CONNECTIONS=perhaps" "MINIMUM_DRAIN_DURATION=soon" \
	"ENVOY_STATUS_PORT=99999" "ENVOY_PROMETHEUS_PORT=x" "INSTANCE_IP=10.0.0" \
	"ISTIO_META_INSTANCE_IPS=::g"; do
	check "${spec%%=*}" env "$spec" $(run)
done
check "unknown command" "$AGENT" launch
echo "$n bad inputs rejected"
