#!/usr/bin/env bash
# Delta xDS through the relay: the stand-in (ENVOY_EMU_XDS_DELTA=1) becomes
# LIVE over DeltaAggregatedResources and gets a pushed change; when the
# control plane goes away the relay ends the proxy's delta stream with
# UNAVAILABLE (its per-resource state cannot be replayed), and the proxy's
# own reconnect works once the control plane is back.
. "$TOP/tests/lib.sh"

CDS=type.googleapis.com/envoy.config.cluster.v3.Cluster
XDS_PORT=$(free_port)
xds_resources c1 -- l1

xs_has() { grep -q -- "$1" "$T/xds-server.log"; }

export ENVOY_EMU_XDS_DELTA=1
start_cp
start_agent
wait_live 0
xs_has "new delta stream" || fail "no delta stream at the control plane"
wait_until 5 xs_has "ACK $CDS nonce" || fail "no delta ACK"

note "a pushed change"
cat >"$T/resources.json" <<'JSON'
{"resources": {
 "type.googleapis.com/envoy.config.cluster.v3.Cluster": [{"name": "c1"}, {"name": "c2"}],
 "type.googleapis.com/envoy.config.listener.v3.Listener": [{"name": "l1"}]}}
JSON
kill -HUP "$XS_PID"
wait_until 10 proxy_stat_ge '^cluster_manager.cds.update_success$' 2 ||
	fail "the change did not arrive"

note "control plane gone: the delta stream ends with UNAVAILABLE"
kill -KILL "$XS_PID"
wait_until 10 proxy_stat_ge '^control_plane.stream_resets$' 1 ||
	fail "the proxy's delta stream was not ended"
grep -q "closed: 14," "$T/agent.log" || fail "not UNAVAILABLE: $(grep closed: "$T/agent.log")"
before=$(proxy_stat '^cluster_manager.cds.update_success$')
start_cp
wait_until 10 proxy_stat_gt '^cluster_manager.cds.update_success$' "$before" ||
	fail "no resync after the proxy's reconnect"
echo PASS
