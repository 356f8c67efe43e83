#!/usr/bin/env bash
# The status server's figures, against a private agent supervising the
# stand-in (build/envoy-emu, LIVE without a control plane):
#   readiness: GET /healthz/ready requests per second under wrk, and the
#            agent's CPU (share of one core) meanwhile;
#   merge:   GET /stats/prometheus on the status port with a proxy page of
#            SERIES series (default 100000), against fetching that page
#            directly from the stand-in's admin port; goal time ratio <= 1.5;
#            and the agent's peak RssAnon growth during the merge
#            (build/tools/rss_peak); goal <= 2 MiB.
# Each merge figure is the median of RUNS runs (default 5); the growth is
# the largest seen, the first merge included.
set -u
cd "$(dirname "$0")/../.."
B=${B:-build}
RUNS=${RUNS:-5}
SERIES=${SERIES:-100000}
DURATION=${DURATION:-5}
T=$(mktemp -d /tmp/status-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

port() {
	python3 "$(dirname "$0")/../tools/free_port.py"
}
median() {
	sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'
}
cpu_ticks() {
	awk '{print $14 + $15}' "/proc/$1/stat"
}

for tool in wrk curl; do
	command -v "$tool" >/dev/null || { echo "status bench: $tool missing" >&2; exit 1; }
done
BASE_ID=$(( (RANDOM << 8 | RANDOM) % 400000 + 1000 ))
cat >"$T/envoy" <<WRAP
#!/bin/sh
exec "$PWD/$B/envoy-emu" --base-id $BASE_ID "\$@"
WRAP
chmod +x "$T/envoy"
ADMIN=$(port) STATUS=$(port) PROM=$(port) HEALTH=$(port) XDS=$(port)
ENVOY_EMU_ASSUME_XDS=1 ENVOY_EMU_EXTRA_STATS=$SERIES ENVOY_STATUS_PORT=$HEALTH \
ENVOY_PROMETHEUS_PORT=$PROM "$B/pilot-agent" proxy sidecar --configPath "$T/etc" \
	--binaryPath "$T/envoy" --proxyAdminPort "$ADMIN" --statusPort "$STATUS" \
	--discoveryAddress "127.0.0.1:$XDS" --controlPlaneAuthPolicy NONE \
	--log_output_level default:warn >"$T/agent.log" 2>&1 &
AGENT=$!
pids+=("$AGENT")
for i in $(seq 1 200); do
	curl -sf -o /dev/null "http://127.0.0.1:$STATUS/healthz/ready" && break
	sleep 0.05
done
curl -sf -o /dev/null "http://127.0.0.1:$STATUS/healthz/ready" ||
	{ echo "status bench: agent not ready: $(tail -5 "$T/agent.log")" >&2; exit 1; }

hz=$(getconf CLK_TCK)
c0=$(cpu_ticks "$AGENT")
wrk -t2 -c32 -d"${DURATION}s" "http://127.0.0.1:$STATUS/healthz/ready" >"$T/wrk" 2>&1
c1=$(cpu_ticks "$AGENT")
rps=$(awk '/^Requests\/sec/ {print $2}' "$T/wrk")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$T/wrk")
cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$hz" -v d="$DURATION" \
	'BEGIN {printf "%.0f", (b - a) / hz / d * 100}')
printf 'status: /healthz/ready %.0f requests/s (wrk, 2 threads, 32 connections, %ss%s); agent CPU %s%% of one core\n' \
	"$rps" "$DURATION" "${non2xx:+, $non2xx not 2xx}" "$cpu"

# A first scrape of each warms up both sides; the agent's growth is
# measured from before its first merge, too.
curl -s -o "$T/direct" "http://127.0.0.1:$ADMIN/stats/prometheus"
rm -f "$T/stop"
"$B/tools/rss_peak" "$AGENT" "$T/stop" 1 >"$T/rss" &
rp=$!
sleep 0.05
curl -s -o "$T/merged" "http://127.0.0.1:$STATUS/stats/prometheus"
touch "$T/stop"
wait "$rp"
awk '{print $2 - $1}' "$T/rss" >"$T/growth"
size=$(stat -c %s "$T/direct")
lines=$(grep -c '^envoy_cluster_' "$T/direct")
mlines=$(grep -c '^envoy_cluster_' "$T/merged")
[ "$lines" = "$mlines" ] ||
	echo "status bench: merged page has $mlines proxy series, direct $lines" >&2
: >"$T/direct.times"; : >"$T/merged.times"
for r in $(seq 1 "$RUNS"); do
	curl -s -o /dev/null -w '%{time_total}\n' \
		"http://127.0.0.1:$ADMIN/stats/prometheus" >>"$T/direct.times"
	rm -f "$T/stop"
	"$B/tools/rss_peak" "$AGENT" "$T/stop" 1 >"$T/rss" &
	rp=$!
	sleep 0.05
	curl -s -o /dev/null -w '%{time_total}\n' \
		"http://127.0.0.1:$STATUS/stats/prometheus" >>"$T/merged.times"
	touch "$T/stop"
	wait "$rp"
	awk '{print $2 - $1}' "$T/rss" >>"$T/growth"
done
d=$(median <"$T/direct.times")
m=$(median <"$T/merged.times")
g=$(sort -g "$T/growth" | tail -n 1)
awk -v d="$d" -v m="$m" -v n="$lines" -v s="$size" 'BEGIN {
	printf "status: merge of %d proxy series (%.1f MB): direct %.3fs, through the status port %.3fs, ratio %.2f (goal <= 1.5)\n",
	    n, s / 1e6, d, m, m / d }'
awk -v g="$g" 'BEGIN {
	printf "status: agent RssAnon growth while merging: %.2f MiB peak (goal <= 2 MiB)\n", g / 1024 }'
