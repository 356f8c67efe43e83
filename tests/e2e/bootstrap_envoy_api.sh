#!/usr/bin/env bash
# Every rendered bootstrap variant parses as envoy.config.bootstrap.v3.Bootstrap
# with protobuf's strict JSON parser, against Envoy's own .proto files (see
# tests/tools/envoy_api.py), and has what Envoy needs from this agent.
. "$TOP/tests/lib.sh"
. "$TOP/tests/golden/bootstrap/variants.sh"
pb=$("$TOP/tests/tools/envoy-api.sh") || fail "cannot build Envoy's descriptor set"
variant_inputs
files=()
for v in $VARIANTS; do
	render_variant "$v" "$T/$v.json" 2>"$T/$v.err" ||
		fail "$v: exit $?: $(cat "$T/$v.err")"
	files+=("$T/$v.json")
done
/usr/bin/python3 "$TOP/tests/tools/envoy_api.py" check "$pb" "${files[@]}" >&2 ||
	fail "a variant is not a valid Envoy bootstrap"

# The parts of the issue, checked on the parsed documents.
/usr/bin/python3 - "$T" <<'PY' || fail "content checks"
import json, sys
t = sys.argv[1]
def load(v): return json.load(open("%s/%s.json" % (t, v)))
for v in ["sidecar", "router", "sidecar-tracing", "override-listener",
          "ipv6", "metadata", "proxyconfig", "flags-over-proxyconfig",
          "mesh-config", "istio-flags", "router-tracing"]:
    d = load(v)
    ads = d["dynamic_resources"]["ads_config"]
    assert ads["set_node_on_first_message_only"] is True, v
    assert ads["transport_api_version"] == "V3", v
    assert ads["grpc_services"][0]["envoy_grpc"]["cluster_name"] == "xds-grpc"
    for k in ("lds_config", "cds_config"):
        assert d["dynamic_resources"][k]["initial_fetch_timeout"] == "0s", v
        assert d["dynamic_resources"][k]["resource_api_version"] == "V3", v
    x = [c for c in d["static_resources"]["clusters"] if c["name"] == "xds-grpc"][0]
    ep = x["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert ep["address"]["pipe"]["path"] == "/etc/istio/proxy/XDS", v
    assert "tcp_keepalive" in x["upstream_connection_options"], v
    assert d["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    assert d["admin"]["access_log"][0]["typed_config"]["path"] == "/dev/null"
    ports = [l["address"]["socket_address"]["port_value"]
             for l in d["static_resources"]["listeners"]]
    assert 15021 in ports and 15090 not in ports, (v, ports)
    tracing = "tracing" in d
    assert tracing == (v in ("sidecar-tracing", "router-tracing", "proxyconfig",
                             "mesh-config", "istio-flags")), v
    md = d["node"]["metadata"]
    assert md["NAME"] == "productpage-v1-1" and md["NAMESPACE"] == "shop", v
    assert md["CLUSTER_ID"] == "east", v
assert load("router")["node"]["id"].startswith("router~10.1.2.3~"), "router id"
assert load("sidecar")["node"]["id"] == \
    "sidecar~10.1.2.3~productpage-v1-1.shop~shop.svc.cluster.local"
assert load("ipv6")["node"]["metadata"]["INSTANCE_IPS"] == "fd00::1,fd00::2"
assert load("ipv6")["node"]["id"].startswith("sidecar~fd00::1~")
md = load("metadata")["node"]["metadata"]
assert md["APP_CONTAINERS"] == "web,sidecar"
assert md["WORKLOAD_NAME"] == "productpage-v1"        # env over proxyMetadata
assert md["DNS_CAPTURE"] == "true"                     # proxyMetadata
assert md["LABELS"] == {"app": "productpage", "version": "v1"}
assert md["MESH_ID"] == "m1" and md["ANNOTATIONS"] == {"a/b": "c"}
d = load("proxyconfig")
assert d["admin"]["address"]["socket_address"]["port_value"] == 15100
assert d["node"]["cluster"] == "pc-cluster"
assert d["node"]["metadata"]["PROXY_CONFIG"]["drainDuration"] == "20s"
d = load("flags-over-proxyconfig")
assert d["admin"]["address"]["socket_address"]["port_value"] == 15200
pc = d["node"]["metadata"]["PROXY_CONFIG"]
assert pc["drainDuration"] == "25s" and pc["statusPort"] == 15120
agent = [c for c in d["static_resources"]["clusters"] if c["name"] == "agent"][0]
assert agent["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"][
    "address"]["socket_address"]["port_value"] == 15120
d = load("override-listener")
extra = [l for l in d["static_resources"]["listeners"] if l.get("name") == "extra"][0]
assert extra["address"]["socket_address"]["address"] == "192.168.7.7"
pc = load("mesh-config")["node"]["metadata"]["PROXY_CONFIG"]
assert pc["concurrency"] == 5 and pc["drainDuration"] == "30s", pc
assert pc["discoveryAddress"] == "istiod.mesh.svc:15012"
print("content checks ok")
PY
echo PASS
