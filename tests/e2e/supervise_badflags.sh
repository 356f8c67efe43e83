#!/usr/bin/env bash
# Every flag (and variable) with a malformed value exits 2 with a message
# naming it, before anything is forked or written; ISTIO_METAJSON_ is the
# one variable that is warned about instead, as in Istio.
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
# check_kept: the same, with the configPath there beforehand: nothing may
# be made in it (no XDS socket, no bootstrap).
check_kept() {
	local want=$1
	shift
	n=$((n + 1))
	rm -rf "$T/etc$n"
	mkdir -p "$T/etc$n"
	"$@" >"$T/out$n" 2>&1
	local rc=$?
	[ "$rc" = 2 ] || fail "case $n ($*): exit $rc, want 2: $(cat "$T/out$n")"
	grep -q -- "$want" "$T/out$n" || fail "case $n: message lacks '$want': $(cat "$T/out$n")"
	[ -n "$(ls -A "$T/etc$n")" ] && fail "case $n: made in the configPath: $(ls -A "$T/etc$n")"
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
# The status servers' variables, checked before anything is made.
for spec in "STATUS_IDLE_TIMEOUT=0s" "STATUS_IDLE_TIMEOUT=soon" \
	"STATUS_MAX_CONNECTIONS=0" "STATUS_MAX_CONNECTIONS=lots" \
	"STATUS_MAX_CONNECTIONS_PER_PEER=-1" \
	"REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION=maybe" \
	'ISTIO_KUBE_APP_PROBERS={"/bad":{}}' 'ISTIO_KUBE_APP_PROBERS=not json' \
	'ISTIO_KUBE_APP_PROBERS={"/app-health/a/livez":{"httpGet":{"port":"x"}}}' \
	'ISTIO_PROMETHEUS_ANNOTATIONS={"scrape":"true","port":0}' \
	'ISTIO_PROMETHEUS_ANNOTATIONS=[1'; do
	check "${spec%%=*}" env "$spec" $(run)
	check_kept "${spec%%=*}" env "$spec" $(run)
done
# Inputs only the bootstrap uses: the agent renders it before it makes
# anything, so these are usage errors now, not a proxy that can never start.
for spec in $'POD_NAME=p\xff' $'ISTIO_META_X=\xff' $'POD_NAMESPACE=\xfe'; do
	check "${spec%%=*}" env "$spec" $(run)
	check_kept "${spec%%=*}" env "$spec" $(run)
done
# Values Envoy or Istio's validation refuse.
for spec in "--drainDuration|4294967296s" "--parentShutdownDuration|1500ms" \
	"--connectTimeout|0s" "--discoveryAddress|istiod"; do
	flag=${spec%%|*} value=${spec#*|}
	check "${flag}\"" $(run) "$flag" "$value"
	check_kept "${flag}\"" $(run) "$flag" "$value"
done
check "PROXY_CONFIG.discoveryAddress" env 'PROXY_CONFIG={"discoveryAddress":""}' $(run)
check "unknown command" "$AGENT" launch
echo "$n bad inputs rejected"

# An ISTIO_METAJSON_ variable that is not a JSON object is ignored with a
# warning, as Istio's agent does: the pod starts.
ENVOY_EMU_ASSUME_XDS=1 ISTIO_METAJSON_LABELS='not json' start_agent
wait_live 0
log_has "Env variable ISTIO_METAJSON_LABELS \[not json\] failed json unmarshal" ||
	fail "no warning for ISTIO_METAJSON_LABELS"
kill -TERM "$AGENT_PID"
wait_exit "$AGENT_PID" 20 || fail "agent did not exit"
echo "ISTIO_METAJSON_ ignored with a warning"
