#!/usr/bin/env bash
# The control plane killed and restarted five times under a connected
# stand-in: the proxy's stream is never reset (the relay keeps it and
# replays the subscriptions), and the stand-in is resynchronised within a
# second of each return of the control plane.
. "$TOP/tests/lib.sh"

XDS_PORT=$(free_port)
xds_resources c1 -- l1

cds_above() {
	[ "$(proxy_stat '^cluster_manager.cds.update_success$')" -gt "$1" ]
}

start_cp
start_agent --xdsReconnectMaxInterval 500ms
wait_live 0
# The control plane is back when it logs that it listens; under the
# sanitizers everything is slower, so the limit doubles there.
limit=1000
[ "${SANITIZE:-}" = 1 ] && limit=2000
listening() {
	[ "$(grep -c 'listening on' "$T/xds-server.log")" -ge "$1" ]
}
for round in 1 2 3 4 5; do
	before=$(proxy_stat '^cluster_manager.cds.update_success$')
	kill -KILL "$XS_PID"
	wait "$XS_PID" 2>/dev/null
	# Fixed time: an outage of a set length, through failed reconnects.
	sleep 1.5
	start_cp
	wait_until 5 listening $((round + 1)) || fail "round $round: control plane not up"
	back=$(date -d "$(grep 'listening on' "$T/xds-server.log" | tail -n 1 | cut -f1)" +%s%N)
	wait_until 5 cds_above "$before" || fail "round $round: no resync; $(tail -n 5 "$T/agent.log")"
	ms=$(( ($(date +%s%N) - back) / 1000000 ))
	note "round $round: resynchronised ${ms}ms after the control plane's return"
	[ "$ms" -le "$limit" ] || fail "round $round: resync took ${ms}ms (limit ${limit}ms)"
done
resets=$(proxy_stat '^control_plane.stream_resets$')
[ "$resets" = 0 ] || fail "the proxy's stream was reset $resets times"
log_has "replaying 2 requests on the new upstream" || fail "no replay logged"
[ "$(live_epoch)" = 0 ] || fail "the proxy is no longer LIVE"
echo PASS
