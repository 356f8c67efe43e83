#!/usr/bin/env bash
# Bad input to "pilot-agent bootstrap": exit 2, a message naming the
# variable or file and where in it, and nothing written. Unknown ProxyConfig
# fields are warned about, not fatal.
. "$TOP/tests/lib.sh"
base=(PATH="$PATH" POD_NAME=p POD_NAMESPACE=ns INSTANCE_IP=10.0.0.1)
out=$T/out/bootstrap.json
mkdir -p "$T/out"

# bad NAME EXPECTED-TEXT... -- ENV... -- ARGS...: must exit 2, say each text.
bad() {
	local name=$1 rc; shift
	local -a want=() env=() args=()
	while [ "$1" != -- ]; do want+=("$1"); shift; done; shift
	while [ "$1" != -- ]; do env+=("$1"); shift; done; shift
	args=("$@")
	env -i "${base[@]}" "${env[@]}" "$AGENT" bootstrap --certDir "$T/none" \
		--output "$out" "${args[@]}" >"$T/stdout" 2>"$T/stderr"
	rc=$?
	[ "$rc" = 2 ] || fail "$name: exit $rc, not 2: $(cat "$T/stderr")"
	for w in "${want[@]}"; do
		grep -qF -- "$w" "$T/stderr" ||
			fail "$name: message lacks \"$w\": $(cat "$T/stderr")"
	done
	[ -z "$(ls -A "$T/out")" ] || fail "$name: something was written: $(ls -A "$T/out")"
	[ -s "$T/stdout" ] && fail "$name: printed a bootstrap"
	note "$name: $(tail -n1 "$T/stderr")"
}

printf 'defaultConfig:\n  drainDuration: [10s\n' >"$T/mesh-syntax.yaml"
printf 'defaultConfig:\n  drainDuration: 10x\n' >"$T/mesh-duration.yaml"
printf 'defaultConfig:\n  proxyAdminPort: {a: 1}\n' >"$T/mesh-type.yaml"
printf '{"defaultConfig": {"concurrency": 2,}}\n' >"$T/mesh-json.json"
printf 'admin:\n  address: [\n' >"$T/override-syntax.yaml"
printf '{"admin": {"address": }}\n' >"$T/override-syntax.json"
printf -- '- 1\n- 2\n' >"$T/override-list.yaml"
printf 'defaultConfig:\n  discoveryAddress: ""\n' >"$T/mesh-discovery.yaml"
printf 'a: 1\na: 2\n' >"$T/override-dup.yaml"

bad proxy-config-syntax PROXY_CONFIG "line 1 column" -- \
	'PROXY_CONFIG={"drainDuration": ' --
bad proxy-config-yaml PROXY_CONFIG "line" -- 'PROXY_CONFIG=a: [' --
bad proxy-config-not-object PROXY_CONFIG "object" -- 'PROXY_CONFIG=[1,2]' --
bad proxy-config-duration "PROXY_CONFIG.drainDuration" "abc" -- \
	'PROXY_CONFIG={"drainDuration":"abc"}' --
bad proxy-config-negative "PROXY_CONFIG.terminationDrainDuration" -- \
	'PROXY_CONFIG={"terminationDrainDuration":"-5s"}' --
bad proxy-config-port "PROXY_CONFIG.proxyAdminPort" -- \
	'PROXY_CONFIG={"proxyAdminPort":70000}' --
bad proxy-config-type "PROXY_CONFIG.drainDuration" "wrong type" -- \
	'PROXY_CONFIG={"drainDuration":45}' --
bad proxy-config-metadata "PROXY_CONFIG.proxyMetadata.X" -- \
	'PROXY_CONFIG={"proxyMetadata":{"X":1}}' --
bad mesh-syntax "$T/mesh-syntax.yaml" "line 3 column 1" -- -- --meshConfig "$T/mesh-syntax.yaml"
bad mesh-duration "$T/mesh-duration.yaml: defaultConfig.drainDuration" "10x" -- -- \
	--meshConfig "$T/mesh-duration.yaml"
bad mesh-type "mesh-type.yaml: defaultConfig.proxyAdminPort" -- -- \
	--meshConfig "$T/mesh-type.yaml"
bad mesh-json "$T/mesh-json.json" "line 1" -- -- --meshConfig "$T/mesh-json.json"
bad mesh-missing "$T/missing.yaml" "No such file" -- -- --meshConfig "$T/missing.yaml"
bad override-syntax-yaml "$T/override-syntax.yaml" "line" -- \
	ISTIO_BOOTSTRAP_OVERRIDE="$T/override-syntax.yaml" --
bad override-syntax-json "$T/override-syntax.json" "line 1 column" -- \
	ISTIO_BOOTSTRAP_OVERRIDE="$T/override-syntax.json" --
bad override-not-object "$T/override-list.yaml" "object" -- \
	ISTIO_BOOTSTRAP_OVERRIDE="$T/override-list.yaml" --
bad override-duplicate "$T/override-dup.yaml" "line 2" "duplicate" -- \
	ISTIO_BOOTSTRAP_OVERRIDE="$T/override-dup.yaml" --
bad override-missing ISTIO_BOOTSTRAP_OVERRIDE "$T/nope.yaml" "No such file" -- \
	ISTIO_BOOTSTRAP_OVERRIDE="$T/nope.yaml" --
bad flag-duration '"--drainDuration" flag' "5x" -- -- --drainDuration 5x
bad flag-connect-timeout '"--connectTimeout" flag' -- -- --connectTimeout=1y
bad zipkin-address '"--zipkinAddress" flag' "host:port" -- -- --zipkinAddress zipkin
bad output-missing "--output" -- -- --output
# Values Envoy or Istio's validation refuse, refused here at once rather
# than passed to a proxy that can never start.
bad drain-uint32 '"--drainDuration" flag' "Envoy's limit of 4294967295s" -- -- \
	--drainDuration 4294967296s
bad drain-fraction '"--drainDuration" flag' "whole seconds" -- -- --drainDuration 1500ms
bad drain-zero '"--drainDuration" flag' "at least 1s" -- -- --drainDuration 0s
bad parent-uint32 '"--parentShutdownDuration" flag' "Envoy's limit" -- -- \
	--parentShutdownDuration 5000000000s
bad connect-zero '"--connectTimeout" flag' "from 1ms to 30s" -- -- --connectTimeout 0s
bad connect-long '"--connectTimeout" flag' "from 1ms to 30s" -- -- --connectTimeout 31s
bad proxy-config-drain-uint32 "PROXY_CONFIG.drainDuration" "Envoy's limit" -- \
	'PROXY_CONFIG={"drainDuration":"4294967296s"}' --
bad proxy-config-discovery-empty "PROXY_CONFIG.discoveryAddress" \
	"discovery address must be set" -- 'PROXY_CONFIG={"discoveryAddress":""}' --
bad discovery-no-port '"--discoveryAddress" flag' "not host:port" -- -- \
	--discoveryAddress istiod.istio-system.svc
bad discovery-bad-port '"--discoveryAddress" flag' "1..65535" -- -- \
	--discoveryAddress istiod:0
bad mesh-discovery-empty "mesh-discovery.yaml: defaultConfig.discoveryAddress" \
	"must be set" -- -- --meshConfig "$T/mesh-discovery.yaml"
# The culprit is the one named: PROXY_CONFIG's field, not a flag.
bad proxy-config-auth-policy "PROXY_CONFIG.controlPlaneAuthPolicy" "not NONE or MUTUAL_TLS" -- \
	'PROXY_CONFIG={"controlPlaneAuthPolicy":"SOMETIMES"}' --
grep -q -- '--controlPlaneAuthPolicy' "$T/stderr" && fail "PROXY_CONFIG's value blamed on the flag"
bad utf8-variable "POD_NAME" "UTF-8" -- $'POD_NAME=p\xff' --
bad utf8-metadata "ISTIO_META_A" "UTF-8" -- $'ISTIO_META_A=\xfe' --
bad utf8-flag '"--serviceCluster" flag' "UTF-8" -- -- --serviceCluster $'\xc3'

# Unknown fields are warned about, and the bootstrap is rendered.
env -i "${base[@]}" 'PROXY_CONFIG={"bogusField":1,"drain_duration":"7s"}' \
	"$AGENT" bootstrap --certDir "$T/none" >"$T/ok.json" 2>"$T/stderr" ||
	fail "unknown field: exit $?: $(cat "$T/stderr")"
grep -q 'unknown ProxyConfig field "bogusField"' "$T/stderr" ||
	fail "no warning for an unknown field: $(cat "$T/stderr")"
grep -q '"drainDuration": "7s"' "$T/ok.json" || fail "snake_case field not applied"
grep -q '"bogusField": 1' "$T/ok.json" || fail "unknown field not passed on"

# An ISTIO_METAJSON_ variable that is not a JSON object is ignored with
# Istio's warning naming it (a pod that starts under Istio starts here);
# null adds nothing, silently, as Go's json.Unmarshal into a map does.
for v in 'not json' '[1]' '"text"' '{"app":'; do
	env -i "${base[@]}" "ISTIO_METAJSON_LABELS=$v" 'ISTIO_METAJSON_OK={"GOOD":"yes"}' \
		ISTIO_METAJSON_NULL=null "$AGENT" bootstrap --certDir "$T/none" \
		>"$T/ok.json" 2>"$T/stderr" || fail "METAJSON $v: exit $?: $(cat "$T/stderr")"
	grep -qF "Env variable ISTIO_METAJSON_LABELS [$v] failed json unmarshal" "$T/stderr" ||
		fail "METAJSON $v: no warning naming it: $(cat "$T/stderr")"
	grep -q 'NULL' "$T/stderr" && fail "METAJSON null warned about"
	grep -q '"GOOD": "yes"' "$T/ok.json" || fail "METAJSON $v: the good variable was lost"
done

# --output writes the file atomically with mode 0640 and prints nothing.
env -i "${base[@]}" "$AGENT" bootstrap --certDir "$T/none" --output="$out" \
	>"$T/stdout" 2>"$T/stderr" || fail "--output: exit $?: $(cat "$T/stderr")"
[ -s "$T/stdout" ] && fail "--output also printed"
[ "$(stat -c %a "$out")" = 640 ] || fail "mode $(stat -c %a "$out"), not 640"
[ "$(ls -A "$T/out")" = bootstrap.json ] || fail "left over: $(ls -A "$T/out")"
python3 -m json.tool "$out" >/dev/null || fail "--output is not JSON"
# Unwritable output: exit 1, not 2 (the input was fine).
env -i "${base[@]}" "$AGENT" bootstrap --certDir "$T/none" \
	--output "$T/no/such/dir/b.json" 2>"$T/stderr"
rc=$?
[ "$rc" = 1 ] || fail "unwritable output: exit $rc"
echo PASS
