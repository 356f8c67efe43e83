#!/usr/bin/env bash
# Interop with a third-party xDS client: @grpc/grpc-js-xds, bootstrapped
# against the agent's XDS socket, gets real Listener, RouteConfiguration,
# Cluster and ClusterLoadAssignment resources from the test control plane
# through the relay, resolves xds:///echo-service and completes an RPC to a
# @grpc/grpc-js backend. The npm packages are installed under the build tree
# by tests/interop/npm-setup.sh (build/npm, or $XDS_NPM_DIR).
. "$TOP/tests/lib.sh"

command -v node >/dev/null || fail "node is not installed (make deps)"
NPM_DIR=$("$TOP/tests/interop/npm-setup.sh") || fail "npm install failed"
export NODE_PATH=$NPM_DIR/node_modules
TYPES="Listener RouteConfiguration Cluster ClusterLoadAssignment"

BACKEND_PORT=$(free_port)
XDS_PORT=$(free_port)
spawn node "$TOP/tests/interop/backend.js" "$BACKEND_PORT" >"$T/backend.log" 2>&1
node "$TOP/tests/interop/xds_resources.js" "$T/resources.json" echo-service "$BACKEND_PORT" ||
	fail "cannot encode the resources"
start_cp
# The stand-in is not the xDS client here.
export ENVOY_EMU_ASSUME_XDS=1
start_agent
wait_until 10 test -S "$T/etc/XDS" || fail "no XDS socket: $(tail -n 5 "$T/agent.log")"
wait_until 10 grep -q "backend listening" "$T/backend.log" || fail "backend not up"

cat >"$T/grpc-bootstrap.json" <<JSON
{"xds_servers": [{"server_uri": "unix:$T/etc/XDS",
  "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
 "node": {"id": "sidecar~127.0.0.1~interop.default~default.svc.cluster.local",
  "cluster": "interop", "locality": {"region": "r", "zone": "z"}}}
JSON
GRPC_XDS_BOOTSTRAP=$T/grpc-bootstrap.json timeout 60 \
	node "$TOP/tests/interop/client.js" echo-service >"$T/client.log" 2>&1 ||
	fail "the xDS client failed: $(cat "$T/client.log"); control plane: $(tail -n 8 "$T/xds-server.log")"
grep -q "reply: hello through the relay from 127.0.0.1:$BACKEND_PORT" "$T/client.log" ||
	fail "unexpected reply: $(cat "$T/client.log")"
note "$(cat "$T/client.log")"
for t in $TYPES; do
	grep -q "ACK type.googleapis.com/envoy.config.[a-z]*.v3.$t " "$T/xds-server.log" ||
		fail "no ACK of $t at the control plane"
done
log_has "xds stream 1 (sotw): node sidecar~127.0.0.1~interop" || fail "the relay did not see the client"
echo PASS
