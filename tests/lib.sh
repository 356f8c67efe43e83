# Helpers for the end-to-end tests. Source it first thing:
#   . "$TOP/tests/lib.sh"
# It makes a private temporary directory $T, records every process a test
# starts (spawn) and, on exit, stops exactly those by pid, checks that no
# sanitizer report was written, and removes $T.
set -u
TOP=${TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
B=${B:-$TOP/build}
AGENT=$B/pilot-agent
EMU=$B/envoy-emu
XDS_SERVER=$B/xds-server
T=$(mktemp -d /tmp/pa-test.XXXXXX)
SPAWNED=()
mkdir -p "$T/san"
export ASAN_OPTIONS="log_path=$T/san/asan:detect_leaks=1"
export UBSAN_OPTIONS="log_path=$T/san/ubsan:print_stacktrace=1:halt_on_error=1"

lib_cleanup() {
	local rc=$? pid i
	for pid in "${SPAWNED[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${SPAWNED[@]}"; do
		for i in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if ls "$T"/san/* >/dev/null 2>&1; then
		echo "sanitizer reports:" >&2
		cat "$T"/san/* >&2
		rc=1
	fi
	if [ "$rc" != 0 ] && [ -n "${KEEP:-}" ]; then
		echo "keeping $T" >&2
	else
		rm -rf "$T"
	fi
	exit "$rc"
}
trap lib_cleanup EXIT
# A test stopped by the runner's timeout still stops what it started.
trap 'exit 143' TERM
trap 'exit 130' INT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

note() {
	echo "--- $*" >&2
}

# A TCP port nothing listens on now (a race is possible, but unlikely).
free_port() {
	python3 "$TOP/tests/tools/free_port.py"
}

# A base id for the stand-in's hot restart sockets, private to this test.
BASE_ID=$(( (RANDOM << 8 | RANDOM) % 400000 + 1000 ))

# spawn CMD...: run in the background, remember its pid in $LAST_PID.
spawn() {
	"$@" &
	LAST_PID=$!
	SPAWNED+=("$LAST_PID")
}

# wait_until SECONDS CMD...: poll every 50 ms until CMD succeeds.
wait_until() {
	local limit=$1 i
	shift
	for i in $(seq 1 $((limit * 20))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	return 1
}

# wait_exit PID SECONDS: wait for a spawned process to end; its status in $EXIT_CODE.
wait_exit() {
	local pid=$1 limit=$2 i
	for i in $(seq 1 $((limit * 20))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		return 1
	fi
	wait "$pid"
	EXIT_CODE=$?
	return 0
}

# The stand-in proxy with this test's base id: use $T/envoy as --binaryPath.
make_proxy_wrapper() {
	cat >"$T/envoy" <<WRAP
#!/bin/sh
exec "$EMU" --base-id $BASE_ID "\$@"
WRAP
	chmod +x "$T/envoy"
}

# Children of a pid (direct), one per line.
children_of() {
	cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep -v '^$'
}

# Zombie children of a pid.
zombies_of() {
	local c
	for c in $(children_of "$1"); do
		[ "$(awk '{print $3}' /proc/"$c"/stat 2>/dev/null)" = Z ] && echo "$c"
	done
}

# is_zombie PID: the process has ended and waits to be reaped.
is_zombie() {
	[ "$(awk '{print $3}' /proc/"$1"/stat 2>/dev/null)" = Z ]
}

# one_child_reaped PID: PID has exactly one child (its proxy) and no zombie:
# whatever else it had, orphans re-parented to it included, it has reaped.
one_child_reaped() {
	[ -z "$(zombies_of "$1")" ] && [ "$(children_of "$1" | wc -l)" = 1 ]
}

# accepted_all PORT: every connection made to PORT so far has been accepted
# by the process listening there: none is still being made, none waits in
# the listening socket's accept queue (which ss shows as its Recv-Q).
accepted_all() {
	[ "$(ss -Hltn "sport = :$1" | awk '{q += $2; n++} END {if (n) print q}')" = 0 ] &&
		[ -z "$(ss -Htn state syn-sent "dport = :$1")" ]
}

http_code() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"
}

# start_agent FLAGS...: a private agent supervising the stand-in (made with
# make_proxy_wrapper if $T/envoy is missing) on free ports; its output goes to
# $T/agent.log and its pid is $AGENT_PID. Extra environment is inherited.
start_agent() {
	[ -x "$T/envoy" ] || make_proxy_wrapper
	ADMIN_PORT=${ADMIN_PORT:-$(free_port)}
	STATUS_PORT=${STATUS_PORT:-$(free_port)}
	HEALTH_PORT=${HEALTH_PORT:-$(free_port)}
	PROM_PORT=${PROM_PORT:-$(free_port)}
	XDS_PORT=${XDS_PORT:-$(free_port)}
	export ENVOY_STATUS_PORT=$HEALTH_PORT ENVOY_PROMETHEUS_PORT=$PROM_PORT
	spawn "$AGENT" proxy sidecar --configPath "$T/etc" \
		--binaryPath "${BINARY:-$T/envoy}" --proxyAdminPort "$ADMIN_PORT" \
		--statusPort "$STATUS_PORT" \
		--discoveryAddress "127.0.0.1:$XDS_PORT" \
		--controlPlaneAuthPolicy NONE --certDir "$T/certs" "$@" \
		>"$T/agent.log" 2>&1
	AGENT_PID=$LAST_PID
}

# The proxy epoch that holds the admin port and is LIVE, or nothing.
live_epoch() {
	curl -s --max-time 2 "http://127.0.0.1:$ADMIN_PORT/server_info" |
		python3 -c 'import json,sys
d=json.load(sys.stdin)
if d.get("state")=="LIVE": print(d["command_line_options"]["restart_epoch"])' 2>/dev/null
}

is_live() {
	[ "$(live_epoch)" = "$1" ]
}

# The epoch the agent sees as the LIVE one, from its /debug/epochs.
agent_live_epoch() {
	curl -s --max-time 2 "http://127.0.0.1:$STATUS_PORT/debug/epochs" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["live_epoch"])' 2>/dev/null
}

# wait_live EPOCH [SECONDS]: until the proxy says the epoch is LIVE and, with
# an agent running, the agent has seen it too (the proxy is LIVE a poll
# before the agent knows, and the older epoch only drains from then on).
wait_live() {
	wait_until "${2:-20}" is_live "$1" ||
		fail "epoch $1 did not become LIVE; log: $(tail -n 20 "$T/agent.log")"
	[ -n "${STATUS_PORT:-}" ] && [ -n "${AGENT_PID:-}" ] || return 0
	wait_until "${2:-20}" agent_sees_live "$1" ||
		fail "the proxy's epoch $1 is LIVE, the agent's live epoch is '$(agent_live_epoch)'"
}
agent_sees_live() {
	[ "$(agent_live_epoch)" = "$1" ]
}

# The pid the agent logged for an epoch's latest start.
epoch_pid() {
	grep -o "epoch $1: started pid [0-9]*" "$T/agent.log" | tail -n 1 | awk '{print $5}'
}

log_has() {
	grep -q -- "$1" "$T/agent.log"
}

# proxy_stat NAME-REGEX: the value of a stat of the proxy on $ADMIN_PORT.
proxy_stat() {
	curl -s --max-time 2 "http://127.0.0.1:$ADMIN_PORT/stats?filter=$1" |
		awk -F': ' '{print $2}'
}
proxy_stat_ge() { [ "$(proxy_stat "$1")" -ge "$2" ] 2>/dev/null; }
proxy_stat_gt() { [ "$(proxy_stat "$1")" -gt "$2" ] 2>/dev/null; }

# xds_resources CLUSTERS... -- LISTENERS...: $T/resources.json for the test
# control plane, replaced whole (it re-reads the file on SIGHUP).
xds_resources() {
	python3 - "$@" >"$T/resources.json.tmp" <<'PY'
import json, sys
args = sys.argv[1:]
i = args.index("--")
print(json.dumps({"resources": {
    "type.googleapis.com/envoy.config.cluster.v3.Cluster": [{"name": n} for n in args[:i]],
    "type.googleapis.com/envoy.config.listener.v3.Listener": [{"name": n} for n in args[i+1:]]}}))
PY
	mv "$T/resources.json.tmp" "$T/resources.json"
}

# start_cp [FLAGS...]: the test control plane on $XDS_PORT serving
# $T/resources.json, with FLAGS added to its command line (--cert, --key,
# --client-ca, --log-level, --hostile-type-flood...). Extra environment
# goes before the call (VAR=value start_cp ...): bash passes it on to the
# server. Its log is appended to $T/xds-server.log, its pid is $XS_PID.
start_cp() {
	spawn "$XDS_SERVER" --listen "127.0.0.1:$XDS_PORT" --config "$T/resources.json" \
		"$@" 2>>"$T/xds-server.log"
	XS_PID=$LAST_PID
}
