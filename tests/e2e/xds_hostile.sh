#!/usr/bin/env bash
# A hostile control plane cannot exhaust the agent: for ten seconds it
# answers the proxy's stream with responses each of a type URL never seen
# before, with a version and a nonce of a kilobyte. The relay forwards them
# all, but observes at most a bounded number of type URLs and counts the
# rest under type_url="other", logged once: the agent's anonymous memory,
# its metrics and its /debug/syncz stay small, and its status port keeps
# answering. When a good control plane takes the same port, the relay
# reconnects and the proxy is configured and ready within 20 s.
. "$TOP/tests/lib.sh"

FLOOD_S=10
# The agent's RssAnon may grow this much above its value before the flood.
# A busy gRPC stream alone holds a few MiB (the transport's read buffers
# grow with the rate, up to 4 MiB a read): measured over a 30 s flood, the
# growth stays between 4 and 7 MiB with short peaks near 11 MiB, and does
# not grow with time. Without the bounds on what the relay observes, it
# grew by 280 MiB in 10 s; a leak of 100 bytes per message would pass
# 16 MiB too.
RSS_GROWTH_KB=16384
PAGE_BOUND=262144		# bytes of /stats/prometheus and /debug/syncz
LDS=type.googleapis.com/envoy.config.listener.v3.Listener

status_url() {
	echo "http://127.0.0.1:$STATUS_PORT$1"
}

# fetch PATH FILE: the page in FILE, its size in $SIZE. A status port that
# does not answer within 30 s fails the test.
fetch() {
	SIZE=$(curl -s --max-time 30 -o "$2" -w '%{size_download}' "$(status_url "$1")") ||
		fail "no answer to $1 within 30 s; log: $(tail -n 5 "$T/agent.log")"
}

streams() {
	curl -s --max-time 5 "$(status_url /debug/syncz)" |
		python3 -c 'import json,sys; print(len(json.load(sys.stdin)["streams"]))'
}
has_stream() {
	[ "$(streams)" -ge 1 ] 2>/dev/null
}

metric() {
	awk -v k="$1" '$1 == k {print $2}' "$2"
}

ready() {
	[ "$(http_code "$(status_url /healthz/ready)")" = 200 ]
}

# The proxy's stream is open and waits for a control plane (none listens
# yet): the agent's memory before the flood.
XDS_PORT=$(free_port)
xds_resources c1 -- l1
# The stand-in warns of every response of a type it did not ask for, as
# Envoy does: its "config" logger is quieted, or the log would take a
# line per response.
start_agent --xdsReconnectMaxInterval 500ms --proxyComponentLogLevel config:error
wait_until 20 has_stream || fail "no xDS stream from the proxy; log: $(tail -n 10 "$T/agent.log")"
# Fixed time: the baseline is the agent at rest, a second into the idle stream.
sleep 1
# The agent's RssAnon from now until the flood ends, every 10 ms.
spawn "$B/tools/rss_peak" "$AGENT_PID" "$T/flood-over" 10 >"$T/rss"
RSS_PID=$LAST_PID

start_cp --hostile-type-flood
HOSTILE_PID=$XS_PID
wait_until 10 grep -q 'hostile: flooding' "$T/xds-server.log" ||
	fail "the hostile control plane got no stream; log: $(tail -n 10 "$T/agent.log")"

# Every second of the flood, the size of the agent's metrics and
# /debug/syncz, whose largest are kept.
max_prom=0 max_syncz=0 first=
for i in $(seq 1 "$FLOOD_S"); do
	sleep 1	# fixed time: one sample a second of the flood
	kill -0 "$AGENT_PID" || fail "the agent is gone"
	fetch /stats/prometheus "$T/prom"
	[ "$SIZE" -gt "$max_prom" ] && max_prom=$SIZE
	fetch /debug/syncz "$T/syncz"
	[ "$SIZE" -gt "$max_syncz" ] && max_syncz=$SIZE
	relayed=$(metric istio_agent_xds_proxy_responses_total "$T/prom")
	[ -n "$first" ] || first=${relayed:-0}
done
touch "$T/flood-over"
wait_exit "$RSS_PID" 10 || fail "rss_peak did not stop"
read -r base peak <"$T/rss"
kill -TERM "$HOSTILE_PID"
wait_exit "$HOSTILE_PID" 10 || fail "the hostile control plane did not stop"
sent=$(grep -o '[0-9]* hostile responses sent' "$T/xds-server.log" | awk '{s += $1} END {print s + 0}')
note "flood: $sent responses sent, $relayed relayed; RssAnon ${base} kB before, peak ${peak} kB; metrics up to $max_prom bytes, syncz up to $max_syncz bytes"

# The relay went on relaying while it was flooded, many more responses
# than the caps allow types (the machine's speed matters little: the relay
# does thousands a second).
[ "${relayed:-0}" -ge 1000 ] && [ "$relayed" -gt "$first" ] ||
	fail "the relay relayed only ${relayed:-0} responses (${first} after a second)"
if [ "${SANITIZE:-}" = 1 ]; then
	# ASan's quarantine keeps freed memory for a while: no bound holds there.
	note "sanitizer build: the RSS bound is not checked"
else
	[ "$peak" -le $((base + RSS_GROWTH_KB)) ] ||
		fail "RssAnon grew from ${base} kB to ${peak} kB (bound +${RSS_GROWTH_KB} kB)"
fi
[ "$max_prom" -lt "$PAGE_BOUND" ] || fail "the metrics grew to $max_prom bytes"
[ "$max_syncz" -lt "$PAGE_BOUND" ] || fail "/debug/syncz grew to $max_syncz bytes"

# The overflow is counted under one label and logged once.
other=$(metric 'istio_agent_xds_responses_total{type_url="other"}' "$T/prom")
[ "${other:-0}" -gt 0 ] || fail "no response counted as type_url=\"other\""
labels=$(grep -c '^istio_agent_xds_responses_total{' "$T/prom")
note "$labels type URL labels, $other responses counted as other"
logged=$(grep -c 'xds stream 1: [0-9]* type URLs tracked; further types are counted as "other"' "$T/agent.log")
[ "$logged" = 1 ] || fail "the stream's overflow was logged $logged times, not once"
logged=$(grep -c 'xds relay: [0-9]* type URLs tracked in all' "$T/agent.log")
[ "$logged" -le 1 ] || fail "the totals' overflow was logged $logged times"
note "$(grep 'type URLs tracked' "$T/agent.log" | cut -f3-)"

# A good control plane on the same port: the proxy is configured, the agent
# is ready within 20 s, and the proxy's listener type is tracked again.
start_cp
back=$(date +%s%N)
wait_until 20 ready || fail "not ready 20 s after a good control plane returned; log: $(tail -n 10 "$T/agent.log")"
note "ready $(( ($(date +%s%N) - back) / 1000000 )) ms after the good control plane returned"
fetch /debug/syncz "$T/syncz"
python3 - "$T/syncz" "$LDS" <<'PY' || fail "the listener type is not SYNCED in /debug/syncz"
import json, sys
d = json.load(open(sys.argv[1]))
types = d["streams"][0]["types"]
sys.exit(0 if any(t["type_url"] == sys.argv[2] and t["status"] == "SYNCED" for t in types) else 1)
PY
fetch /stats/prometheus "$T/prom"
[ "$SIZE" -lt "$PAGE_BOUND" ] || fail "the metrics grew to $SIZE bytes"
echo PASS
