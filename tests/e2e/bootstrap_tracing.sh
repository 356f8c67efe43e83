#!/usr/bin/env bash
# ProxyConfig's tracer is a oneof across the layers: PROXY_CONFIG picking
# datadog replaces the mesh config's zipkin (no zipkin cluster, one tracer in
# the node's PROXY_CONFIG, which istiod must be able to parse); the
# --zipkinAddress flag, highest of all, brings zipkin back alone. And an enum
# given by number.
. "$TOP/tests/lib.sh"
printf 'defaultConfig:\n  tracing:\n    zipkin:\n      address: zipkin.mesh:9411\n' >"$T/mesh.yaml"
render() { "$AGENT" bootstrap --meshConfig "$T/mesh.yaml" --certDir "$T/none" "$@" 2>/dev/null; }
check() { # what, then a python expression over d (the bootstrap)
	python3 -c "import json,sys; d=json.load(sys.stdin); t=d['node']['metadata']['PROXY_CONFIG'].get('tracing'); assert $2, t" ||
		fail "$1"
}
render | check "mesh zipkin" "t == {'zipkin': {'address': 'zipkin.mesh:9411'}} and 'tracing' in d"
PROXY_CONFIG='{"tracing":{"datadog":{"address":"dd:8126"}}}' render |
	check "PROXY_CONFIG's datadog replaces zipkin" \
	"t == {'datadog': {'address': 'dd:8126'}} and 'tracing' not in d and all(c['name'] != 'zipkin' for c in d['static_resources']['clusters'])"
PROXY_CONFIG='{"tracing":{"datadog":{"address":"dd:8126"}}}' render --zipkinAddress z2:9411 |
	check "the flag's zipkin replaces datadog" "t == {'zipkin': {'address': 'z2:9411'}} and 'tracing' in d"
# The enum field also takes its number, as protobuf's JSON does.
PROXY_CONFIG='{"controlPlaneAuthPolicy":0}' render |
	python3 -c "import json,sys; d=json.load(sys.stdin); assert d['node']['metadata']['PROXY_CONFIG']['controlPlaneAuthPolicy'] == 'NONE'" ||
	fail "controlPlaneAuthPolicy 0 is not NONE"
PROXY_CONFIG='{"controlPlaneAuthPolicy":7}' render && fail "enum 7 accepted"
echo "tracing layers ok"
