#!/usr/bin/env bash
# --xdsEndStreamOnUpstreamFailure restores Istio's behaviour: when the
# control plane goes away the relay ends the proxy's stream, and the proxy's
# own reconnect brings it back.
. "$TOP/tests/lib.sh"

XDS_PORT=$(free_port)
xds_resources c1 -- l1

start_cp
start_agent --xdsEndStreamOnUpstreamFailure
wait_live 0
kill -KILL "$XS_PID"
wait_until 10 proxy_stat_ge '^control_plane.stream_resets$' 1 ||
	fail "the proxy's stream was not ended"
before=$(proxy_stat '^cluster_manager.cds.update_success$')
note "before=$before"
start_cp
wait_until 10 proxy_stat_gt '^cluster_manager.cds.update_success$' "$before" ||
	fail "no resync after the proxy's reconnect: $(proxy_stat '^cluster_manager.cds.update_success$') vs $before"
echo PASS
