#!/usr/bin/env bash
# The xDS relay end to end: the stand-in gets its CDS and LDS from the test
# control plane through the agent's relay and becomes LIVE; a SIGHUP to the
# control plane delivers a new version that the stand-in ACKs; a rejected
# resource is NACKed and the relay records the NACK with its message.
# XDS_HEADER_* reaches the control plane as metadata.
. "$TOP/tests/lib.sh"

CDS=type.googleapis.com/envoy.config.cluster.v3.Cluster
LDS=type.googleapis.com/envoy.config.listener.v3.Listener
XDS_PORT=$(free_port)

xs_has() {
	grep -q -- "$1" "$T/xds-server.log"
}

xds_resources c1 c2 -- l1
start_cp
export XDS_HEADER_X_TEST_TOKEN=t0ken
start_agent
wait_live 0
note "LIVE through the relay"
xs_has "ACK $CDS version \"v1\"" || fail "no CDS ACK: $(cat "$T/xds-server.log")"
wait_until 5 xs_has "ACK $LDS version \"v1\"" || fail "no LDS ACK"
[ "$(proxy_stat '^cluster_manager.cds.update_success$')" -ge 1 ] || fail "cds update_success"
[ "$(proxy_stat '^listener_manager.lds.update_success$')" -ge 1 ] || fail "lds update_success"
log_has "xds stream 1 (sotw): proxy connected" || fail "relay did not log the stream"
xs_has "header x_test_token=t0ken" || fail "XDS_HEADER_X_TEST_TOKEN not sent upstream"

note "SIGHUP: a new version of CDS"
xds_resources c1 c2 c3 -- l1
kill -HUP "$XS_PID"
wait_until 10 xs_has "ACK $CDS version \"v2\"" || fail "v2 not ACKed: $(tail "$T/xds-server.log")"
wait_until 5 proxy_stat_ge '^cluster_manager.cds.update_success$' 2 ||
	fail "cds update_success did not grow"

note "a rejected listener is NACKed"
xds_resources c1 c2 c3 -- l1 reject-l2
kill -HUP "$XS_PID"
wait_until 10 xs_has "NACK $LDS version \"v1\" nonce \"[0-9]*\": rejected resource reject-l2" ||
	fail "no NACK at the control plane: $(tail "$T/xds-server.log")"
wait_until 5 log_has "NACK $LDS version \"v1\" nonce \"[0-9]*\": rejected resource reject-l2" ||
	fail "the relay did not record the NACK"
[ "$(proxy_stat '^listener_manager.lds.update_rejected$')" -ge 1 ] || fail "lds update_rejected"
# When the status server serves the relay's page, the NACK is there too.
if [ "$(http_code "http://127.0.0.1:$STATUS_PORT/debug/syncz")" = 200 ]; then
	curl -s "http://127.0.0.1:$STATUS_PORT/debug/syncz" | grep -q "rejected resource reject-l2" ||
		fail "/debug/syncz lacks the NACK"
fi

note "a name chosen by the control plane cannot forge a log line"
forged=$'reject-x\n2000-01-01T00:00:00.000000Z\tinfo\tforged'
xds_resources c1 c2 c3 -- l1 "$forged"
kill -HUP "$XS_PID"
wait_until 10 log_has "NACK $LDS version \"v1\" nonce \"[0-9]*\": rejected resource reject-x" ||
	fail "the relay did not record the second NACK: $(grep NACK "$T/agent.log")"
# The proxy's own log shares the stream and is not the agent's to escape
# (Envoy writes names as they are): a forged line may only follow one of
# the proxy's lines.
awk '/^2000-01-01T00:00:00/ && prev !~ /^\[Envoy/ { bad = 1 } { prev = $0 } END { exit !bad }' \
	"$T/agent.log" && fail "a forged line reached the agent's log"
grep "rejected resource reject-x" "$T/agent.log" | grep -q 'forged' ||
	fail "the name was lost instead of escaped"
[ "$(proxy_stat '^control_plane.stream_resets$')" = 0 ] || fail "the proxy's stream was reset"
echo PASS
