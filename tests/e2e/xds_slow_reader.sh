#!/usr/bin/env bash
# Flow control: the control plane pushes 200 responses of 1 MiB to a
# stand-in that reads one every 20 ms. The relay stops reading from the
# control plane while its queue towards the proxy is full, so the agent's
# anonymous memory (RssAnon) stays under a fixed bound, far below the
# 200 MiB pushed, and every response still arrives.
. "$TOP/tests/lib.sh"

BOUND_KB=${XDS_RSS_BOUND_KB:-65536}	# 64 MiB
N=200
XDS_PORT=$(free_port)
cat >"$T/resources.json" <<JSON
{"resources": {
 "type.googleapis.com/envoy.config.cluster.v3.Cluster": [{"name": "big", "size": 1048576}],
 "type.googleapis.com/envoy.config.listener.v3.Listener": [{"name": "l1"}]},
 "knobs": {"repeat": $N}}
JSON

start_cp --log-level warn
export ENVOY_EMU_XDS_READ_DELAY_MS=20
start_agent
(
	end=$((SECONDS + 120))
	while kill -0 "$AGENT_PID" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do
		awk '/^RssAnon:/ {print $2}' /proc/"$AGENT_PID"/status 2>/dev/null
		sleep 0.05	# fixed time: the sampling period
	done
) >"$T/rss" &
SPAWNED+=($!)
wait_until 90 proxy_stat_ge '^cluster_manager.cds.update_success$' $N ||
	fail "only $(proxy_stat '^cluster_manager.cds.update_success$') of $N responses arrived; agent log: $(tail -n 15 "$T/agent.log")"
max=$(sort -n "$T/rss" | tail -n 1)
note "$N responses of 1 MiB relayed to a slow reader; agent RssAnon peak ${max} kB (bound ${BOUND_KB} kB, $(wc -l <"$T/rss") samples)"
# ASan's quarantine keeps freed memory for a while: no bound holds there.
if [ "${SANITIZE:-}" = 1 ]; then
	note "sanitizer build: the RSS bound is not checked"
else
	[ -n "$max" ] && [ "$max" -le "$BOUND_KB" ] || fail "RssAnon ${max} kB above ${BOUND_KB} kB"
fi
echo PASS
