#!/usr/bin/env bash
# The xDS relay's figures, side by side in one run with the same client
# (build/tools/xds_client) and control plane (build/xds-server): directly
# over TCP, and through the relay (build/tools/relay_run, the agent's relay
# code alone, on its Unix socket).
#   latency: p50 and p99 of an ACK-to-next-response round trip with 1 KiB
#            responses (the server answers every request: --echo); goal
#            relay/direct <= 1.3
#   throughput: 200 responses of 1 MiB pushed back to back (--repeat);
#            goal relay/direct >= 0.8
#   cost: the relay's CPU seconds (user + system) per GiB relayed.
# Each figure is the median of RUNS runs (default 5): the machine is shared.
set -u
cd "$(dirname "$0")/../.."
B=${B:-build}
RUNS=${RUNS:-5}
ROUNDS=${ROUNDS:-2000}
N=${N:-200}
T=$(mktemp -d /tmp/xds-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

port() {
	python3 "$(dirname "$0")/../tools/free_port.py"
}
CDS=type.googleapis.com/envoy.config.cluster.v3.Cluster

cat >"$T/small.json" <<'JSON'
{"resources": {"type.googleapis.com/envoy.config.cluster.v3.Cluster":
 [{"name": "c", "size": 1024}]}, "knobs": {"echo": true}}
JSON
cat >"$T/big.json" <<JSON
{"resources": {"type.googleapis.com/envoy.config.cluster.v3.Cluster":
 [{"name": "c", "size": 1048576}]}, "knobs": {"repeat": $N}}
JSON

# start_pair CONFIG: a control plane and a relay in front of it.
start_pair() {
	XP=$(port)
	"$B/xds-server" --listen "127.0.0.1:$XP" --config "$1" --log-level warn \
		2>>"$T/xds-server.log" &
	XS=$!
	pids+=("$XS")
	rm -rf "$T/etc"
	"$B/tools/relay_run" sidecar --configPath "$T/etc" \
		--discoveryAddress "127.0.0.1:$XP" --controlPlaneAuthPolicy NONE \
		--log_output_level warn >/dev/null 2>>"$T/relay.log" &
	RL=$!
	pids+=("$RL")
	for _ in $(seq 1 100); do
		[ -S "$T/etc/XDS" ] && break
		sleep 0.05
	done
}
stop_pair() {
	kill "$XS" "$RL" 2>/dev/null
	wait "$XS" "$RL" 2>/dev/null
}
cpu_ticks() {
	awk '{print $14 + $15}' /proc/"$1"/stat
}
median() {
	sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
val() {	# val KEY < output
	awk -F= -v k="$1" '$1 == k {print $2}'
}

: >"$T/lat"
: >"$T/tput"
for run in $(seq 1 "$RUNS"); do
	start_pair "$T/small.json"
	d=$("$B/tools/xds_client" --target "127.0.0.1:$XP" --type "$CDS" --latency "$ROUNDS")
	r=$("$B/tools/xds_client" --target "unix:$T/etc/XDS" --type "$CDS" --latency "$ROUNDS")
	echo "$(echo "$d" | val p50_us) $(echo "$d" | val p99_us) $(echo "$r" | val p50_us) $(echo "$r" | val p99_us)" >>"$T/lat"
	stop_pair

	start_pair "$T/big.json"
	d=$("$B/tools/xds_client" --target "127.0.0.1:$XP" --type "$CDS" --responses "$N" --quiet)
	c0=$(cpu_ticks "$RL")
	r=$("$B/tools/xds_client" --target "unix:$T/etc/XDS" --type "$CDS" --responses "$N" --quiet)
	c1=$(cpu_ticks "$RL")
	bytes=$(echo "$r" | val bytes)
	echo "$(echo "$d" | val mib_per_s) $(echo "$r" | val mib_per_s) $c0 $c1 $bytes" >>"$T/tput"
	stop_pair
done

hz=$(getconf CLK_TCK)
d50=$(awk '{print $1}' "$T/lat" | median)
d99=$(awk '{print $2}' "$T/lat" | median)
r50=$(awk '{print $3}' "$T/lat" | median)
r99=$(awk '{print $4}' "$T/lat" | median)
dt=$(awk '{print $1}' "$T/tput" | median)
rt=$(awk '{print $2}' "$T/tput" | median)
cpu=$(awk -v hz="$hz" '{print ($4 - $3) / hz / ($5 / 1073741824)}' "$T/tput" | median)
echo "xds relay ($RUNS runs, medians; $ROUNDS round trips of 1 KiB, $N responses of 1 MiB)"
printf '  latency p50   direct %6d us   relay %6d us   ratio %.2f (goal <= 1.3)\n' \
	"$d50" "$r50" "$(echo "$r50 $d50" | awk '{print $1 / $2}')"
printf '  latency p99   direct %6d us   relay %6d us   ratio %.2f (goal <= 1.3)\n' \
	"$d99" "$r99" "$(echo "$r99 $d99" | awk '{print $1 / $2}')"
printf '  throughput    direct %6.0f MiB/s relay %6.0f MiB/s ratio %.2f (goal >= 0.8)\n' \
	"$dt" "$rt" "$(echo "$rt $dt" | awk '{print $1 / $2}')"
printf '  relay CPU     %.2f s per GiB relayed\n' "$cpu"
