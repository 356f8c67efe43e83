#!/usr/bin/env bash
# container/Dockerfile and container/sidecar.yaml, checked without a
# container engine or a cluster (tests/ship/container.py has the static
# checks). The Dockerfile's build stage is replayed on a copy of what it
# copies (all but apt-get), and what it installs must be what "make install
# PREFIX=/usr/local" installs, with a static agent that runs anywhere. The pod
# template must be valid for the API server, and agree with the agent: its
# ports are the agent's defaults, istio-init's flags are accepted by the
# image's istio-iptables, and istio-proxy's arguments and environment render
# the expected bootstrap and run a sidecar that gets ready, answers its
# probes, passes its postStart hook and drains on SIGTERM.
. "$TOP/tests/lib.sh"

PY=
for p in /usr/bin/python3 python3; do
	"$p" -c 'import yaml' 2>/dev/null && { PY=$p; break; }
done
[ -n "$PY" ] || fail "no python3 with yaml (apt-get install python3-yaml)"
CHECK=$TOP/tests/ship/container.py

note "Dockerfile: its shape"
"$PY" "$CHECK" dockerfile "$TOP/container/Dockerfile" "$T" || fail "container/Dockerfile"
. "$T/build.env"

note "Dockerfile: the build stage, replayed"
mkdir -p "$T/src"
for c in $DF_COPIES; do
	cp -a "$TOP/$c" "$T/src/$c" || fail "the build stage copies $c, which is missing"
done
mapfile -d '' argv <"$T/make.argv"
for i in "${!argv[@]}"; do
	case ${argv[$i]} in
	BUILD=*) argv[$i]=BUILD=$T/build ;;
	DESTDIR=*) argv[$i]=DESTDIR=$T/out ;;
	esac
done
# As in a container build: nothing from this make's environment (SANITIZE,
# MAKEFLAGS) leaks in.
(cd "$T/src" && env -i PATH="$PATH" HOME="$T" "${argv[@]}") >"$T/image-build.log" 2>&1 ||
	fail "the build stage's make: $(tail -n 30 "$T/image-build.log")"
# The final stage copies $DF_DESTDIR/usr/local/ to /usr/local/.
IMG=$T/out
IMGBIN=$IMG$DF_ENTRYPOINT
[ -x "$IMGBIN" ] || fail "the entrypoint $DF_ENTRYPOINT is not in the image"
# Static: no program interpreter, no shared library needed.
! readelf -lW "$IMGBIN" | grep -q 'INTERP' && ! readelf -dW "$IMGBIN" | grep -q 'NEEDED' ||
	fail "the image's agent is not static: $(readelf -dW "$IMGBIN" | grep NEEDED)"
[ "$(readlink "$IMG/usr/local/bin/istio-iptables")" = pilot-agent ] ||
	fail "istio-iptables is not a link to pilot-agent in the image"
mapfile -d '' smoke <"$T/smoke.argv"
[ "${#smoke[@]}" -gt 0 ] || fail "the final stage does not run the agent once"
"$IMG${smoke[0]}" "${smoke[@]:1}" >"$T/smoke.out" 2>&1 ||
	fail "the final stage's ${smoke[*]}: $(cat "$T/smoke.out")"
# Nothing in the agent asks for a glibc name service that is not in libc.a.
env -i "$IMGBIN" version >/dev/null || fail "the static agent does not run without an environment"

note "Dockerfile: the image's tree is make install's"
make -s -C "$TOP" -o "$B/pilot-agent" B="$B" PREFIX=/usr/local DESTDIR="$T/inst" install \
	>"$T/install.log" 2>&1 || fail "make install: $(cat "$T/install.log")"
tree() { (cd "$1" && find . -printf '%y %p %l %m\n' | sort); }
[ "$(tree "$T/inst")" = "$(tree "$IMG")" ] ||
	fail "image tree differs from make install's: $(diff <(tree "$T/inst") <(tree "$IMG"))"
cmp -s "$IMG/usr/local/share/man/man8/pilot-agent.8" "$TOP/man/pilot-agent.8" ||
	fail "the image's man page is not man/pilot-agent.8"

note "the agent's defaults, from the binary"
"$AGENT" proxy --help >"$T/proxy.help" || fail "proxy --help"
(cd "$T" && env -u ENVOY_STATUS_PORT -u ENVOY_PROMETHEUS_PORT "$AGENT" bootstrap sidecar \
	--configPath "$T/bs" >"$T/default-bootstrap.json" 2>"$T/default-bootstrap.err") ||
	fail "bootstrap: $(cat "$T/default-bootstrap.err")"
env -u ENVOY_PORT -u INBOUND_CAPTURE_PORT "$AGENT" istio-iptables --dry-run -i '*' -b '*' \
	>"$T/default-ipt.out" 2>&1 || fail "istio-iptables --dry-run: $(cat "$T/default-ipt.out")"
"$PY" - "$T" >"$T/defaults.json" <<'PY' || fail "reading the defaults"
import json, re, sys
t = sys.argv[1]
help = open(t + "/proxy.help").read()
def dflt(name):
    return re.search(r"--%s \S+ +\(default (\S+)\)" % name, help).group(1)
def secs(d):
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3}
    return sum(float(n) * units[u] for n, u in re.findall(r"([0-9.]+)(ms|h|m|s)", d))
bs = json.load(open(t + "/default-bootstrap.json"))
health = [l["address"]["socket_address"]["port_value"]
          for l in bs["static_resources"]["listeners"]
          if "/healthz/ready" in json.dumps(l)]
ipt = open(t + "/default-ipt.out").read()
print(json.dumps({
    "statusPort": int(dflt("statusPort")),
    "proxyAdminPort": int(dflt("proxyAdminPort")),
    "terminationDrainDuration": secs(dflt("terminationDrainDuration")),
    "health": health[0],
    "prometheus": int(bs["node"]["metadata"]["ENVOY_PROMETHEUS_PORT"]),
    "outbound": int(re.search(r"-A ISTIO_REDIRECT .*--to-ports (\d+)", ipt).group(1)),
    "inbound": int(re.search(r"-A ISTIO_IN_REDIRECT .*--to-ports (\d+)", ipt).group(1)),
}))
PY
note "defaults: $(cat "$T/defaults.json")"

note "sidecar.yaml: valid, and agreeing with the agent"
"$PY" "$CHECK" sidecar "$TOP/container/sidecar.yaml" "$T/defaults.json" "$T" ||
	fail "container/sidecar.yaml"
. "$T/sidecar.env"
mapfile -d '' init_args <"$T/init.argv"
mapfile -d '' proxy_args <"$T/proxy.argv"
mapfile -d '' hook <"$T/poststart.argv"
mapfile -d '' proxy_env <"$T/proxy.env"
mapfile -d '' app_paths <"$T/app.paths"

note "istio-init: the image's entrypoint takes its arguments"
"$IMGBIN" "${init_args[@]}" --dry-run >"$T/init.out" 2>"$T/init.err" ||
	fail "istio-init's arguments: $(cat "$T/init.err")"
! grep -qi 'unknown\|warn' "$T/init.err" || fail "istio-init: $(cat "$T/init.err")"
for want in 'ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001' \
	'ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006' '--uid-owner 1337 -j RETURN' \
	'--dport 15020 -j RETURN' '--dport 15021 -j RETURN' '--dport 15090 -j RETURN'; do
	grep -q -- "$want" "$T/init.out" || fail "istio-init's rules lack '$want'"
done

note "istio-proxy: its arguments and environment render the bootstrap"
(cd "$T" && env -i PATH="$PATH" "${proxy_env[@]}" "$IMGBIN" bootstrap "${proxy_args[@]:1}" \
	>"$T/bootstrap.json" 2>"$T/bootstrap.err") || fail "bootstrap: $(cat "$T/bootstrap.err")"
! grep -q "$(printf '\t')\(warn\|error\)$(printf '\t')" "$T/bootstrap.err" ||
	fail "istio-proxy's arguments: $(cat "$T/bootstrap.err")"
"$PY" - "$T/bootstrap.json" <<PY || fail "the rendered bootstrap"
import json, sys
bs = json.load(open(sys.argv[1]))
node = bs["node"]
want_id = "sidecar~$SC_STATUS_PODIP~$SC_METADATA_NAME.$SC_METADATA_NAMESPACE~$SC_METADATA_NAMESPACE.svc.cluster.local"
bad = []
if node["id"] != want_id: bad.append("node id %s, want %s" % (node["id"], want_id))
if node["cluster"] != "productpage.$SC_METADATA_NAMESPACE": bad.append("cluster %s" % node["cluster"])
md = node["metadata"]
for k, v in (("NAMESPACE", "$SC_METADATA_NAMESPACE"), ("SERVICE_ACCOUNT", "$SC_SPEC_SERVICEACCOUNTNAME"),
             ("CLUSTER_ID", "Kubernetes"), ("INTERCEPTION_MODE", "REDIRECT"),
             ("WORKLOAD_NAME", "productpage-v1")):
    if md.get(k) != v: bad.append("metadata %s=%r, want %r" % (k, md.get(k), v))
if md.get("OWNER") != "kubernetes://apis/apps/v1/namespaces/$SC_METADATA_NAMESPACE/deployments/productpage-v1":
    bad.append("metadata OWNER %r" % md.get("OWNER"))
if bs["admin"]["address"]["socket_address"]["port_value"] != 15000: bad.append("admin port")
text = json.dumps(bs)
for s in ("/etc/istio/proxy/XDS", "zipkin.istio-system", '"port_value": 15021', '"port_value": 15020'):
    if s not in text: bad.append("no %s in the bootstrap" % s)
for b in bad: print("FAIL: " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY

note "istio-proxy: the agent runs with its arguments and environment"
make_proxy_wrapper
ADMIN_PORT=$(free_port) STATUS_PORT=$(free_port) HEALTH_PORT=$(free_port) PROM_PORT=$(free_port)
# Probes of the application go to the pod's address: loopback here.
run_env=()
for e in "${proxy_env[@]}"; do
	case $e in INSTANCE_IP=*|HOST_IP=*) e=${e%%=*}=127.0.0.1 ;; esac
	run_env+=("$e")
done
spawn env -i PATH="$PATH" ASAN_OPTIONS="$ASAN_OPTIONS" UBSAN_OPTIONS="$UBSAN_OPTIONS" \
	"${run_env[@]}" ENVOY_EMU_ASSUME_XDS=1 \
	ENVOY_STATUS_PORT="$HEALTH_PORT" ENVOY_PROMETHEUS_PORT="$PROM_PORT" \
	"$AGENT" "${proxy_args[@]}" --configPath "$T/etc/istio/proxy" --binaryPath "$T/envoy" \
	--proxyAdminPort "$ADMIN_PORT" --statusPort "$STATUS_PORT" \
	--discoveryAddress "127.0.0.1:$(free_port)" >"$T/agent.log" 2>&1
AGENT_PID=$LAST_PID
wait_live 0
! log_has "unknown flag" || fail "istio-proxy's arguments: $(grep 'unknown flag' "$T/agent.log")"
log_has "node sidecar~127.0.0.1~$SC_METADATA_NAME.$SC_METADATA_NAMESPACE~$SC_METADATA_NAMESPACE.svc.cluster.local" ||
	fail "node id: $(head -n 5 "$T/agent.log")"
ready() { [ "$(http_code "http://127.0.0.1:$STATUS_PORT/healthz/ready")" = 200 ]; }
wait_until 20 ready || fail "readiness: $(curl -s "http://127.0.0.1:$STATUS_PORT/healthz/ready")"
[ "$(http_code "http://127.0.0.1:$STATUS_PORT$SC_PROM_PATH")" = 200 ] ||
	fail "the prometheus.io path $SC_PROM_PATH does not answer"
# The probes' port: the proxy routes /healthz/ready to the agent.
[ "$(http_code "http://127.0.0.1:$HEALTH_PORT/healthz/ready")" = 200 ] ||
	fail "the health listener (the probes' port) does not answer"
for p in "${app_paths[@]}"; do
	code=$(http_code "http://127.0.0.1:$STATUS_PORT$p")
	# 400 or 404: the agent does not know the path; the absent
	# application itself makes it 500.
	case $code in 400|404|000) fail "the application's probe $p: HTTP $code" ;; esac
done

note "postStart: ${hook[*]}"
[ -x "$IMG/usr/local/bin/${hook[0]}" ] || fail "postStart's ${hook[0]} is not in the image's /usr/local/bin"
"$AGENT" "${hook[@]:1}" --url "http://127.0.0.1:$STATUS_PORT/healthz/ready" --timeoutSeconds 10 \
	>"$T/hook.log" 2>&1 || fail "postStart: $(cat "$T/hook.log")"

note "SIGTERM, as the kubelet stops the pod: the probes fail while it drains"
kill -TERM "$AGENT_PID"
probe_fails() { [ "$(http_code "http://127.0.0.1:$HEALTH_PORT/healthz/ready")" = 503 ]; }
wait_until 5 probe_fails ||
	fail "the readiness probe did not turn 503: $(curl -s -i "http://127.0.0.1:$HEALTH_PORT/healthz/ready")"
wait_exit "$AGENT_PID" "$SC_GRACE" || fail "not stopped within terminationGracePeriodSeconds"
[ "$EXIT_CODE" = 0 ] || fail "exit code $EXIT_CODE: $(tail -n 20 "$T/agent.log")"
echo PASS
