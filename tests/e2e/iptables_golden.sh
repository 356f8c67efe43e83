#!/usr/bin/env bash
# istio-iptables --dry-run prints exactly the golden iptables-restore input
# of tests/golden/iptables/ for several flag sets, and the same from Istio's
# long flags and environment variables; bad input exits 2 naming the flag or
# variable and the value, and prints nothing. Every run is in a network
# namespace of its own (unshare -n), so not even a broken --dry-run could
# touch the host's rules. UPDATE_GOLDEN=1 rewrites the golden files.
. "$TOP/tests/lib.sh"
G=$TOP/tests/golden/iptables
unshare -n true 2>/dev/null || { note "skipped: needs unshare -n (root)"; exit 0; }

# Runs the agent with a clean environment: only what the caller passes.
agent() {
	unshare -n env -i PATH="$PATH" ASAN_OPTIONS="$ASAN_OPTIONS" \
		UBSAN_OPTIONS="$UBSAN_OPTIONS" ENVOY_USER=pa-no-such-user \
		"$@"
}

n=0
golden() { # NAME [VAR=value...] -- flags...
	local name=$1 envs=()
	shift
	while [ "$1" != -- ]; do
		envs+=("$1")
		shift
	done
	shift
	n=$((n + 1))
	agent "${envs[@]}" "$AGENT" istio-iptables --dry-run "$@" \
		>"$T/out$n" 2>"$T/err$n" || fail "$name: exit $?: $(cat "$T/err$n")"
	if [ -n "${UPDATE_GOLDEN:-}" ] && [ ! -e "$T/updated.$name" ]; then
		cp "$T/out$n" "$G/$name.golden"
		touch "$T/updated.$name"
	fi
	diff -u "$G/$name.golden" "$T/out$n" || fail "$name ($*) differs from its golden file"
	note "ok: $name: ${envs[*]} $*"
}

# The flags Istio's sidecar injector passes.
golden deployment -- -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x "" \
	-b '*' -d 15090,15020
golden deployment -- --envoy-port=15001 --inbound-capture-port 15006 \
	--proxy-uid 1337 --proxy-gid=1337 --istio-inbound-interception-mode \
	REDIRECT --istio-service-cidr '*' --istio-service-exclude-cidr= \
	--istio-inbound-ports='*' --istio-local-exclude-ports 15090,15020
golden deployment ENVOY_PORT=15001 INBOUND_CAPTURE_PORT=15006 PROXY_UID=1337 \
	ISTIO_INBOUND_INTERCEPTION_MODE=REDIRECT 'ISTIO_SERVICE_CIDR=*' \
	'ISTIO_INBOUND_PORTS=*' ISTIO_LOCAL_EXCLUDE_PORTS=15090,15020 --
# Flags win over variables, even empty ones.
golden deployment ISTIO_INBOUND_PORTS=9999 ISTIO_SERVICE_EXCLUDE_CIDR=10.0.0.0/8 \
	ENVOY_PORT=1 -- -p 15001 -i '*' -x "" -b '*' -d 15090,15020
golden tproxy -- -p 15001 -z 15006 -u 1337 -m TPROXY -i '*' -x "" -b '*' \
	-d 15090,15020
golden tproxy ISTIO_INBOUND_INTERCEPTION_MODE=TPROXY ISTIO_INBOUND_TPROXY_MARK=1337 \
	INBOUND_TPROXY_ROUTE_TABLE=133 -- -i '*' -b '*' -d 15090,15020
golden ranges -- -u 1337,1500 -g 1337 -i 10.0.0.0/8,172.16.0.0/12 \
	-x '10.96.0.10/32, 192.168.1.7/16' -b 8080,9090 -o 3306,5432 -q 443 -k eth1,net1
golden ranges KUBE_VIRT_INTERFACES=eth1,net1 ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE=3306,5432 \
	ISTIO_OUTBOUND_PORTS=443 PROXY_UID=1337,1500 PROXY_GID=1337 \
	ISTIO_SERVICE_CIDR=10.0.0.0/8,172.16.0.0/12 \
	'ISTIO_SERVICE_EXCLUDE_CIDR=10.96.0.10/32,192.168.1.7/16' ISTIO_INBOUND_PORTS=8080,9090 --
golden ipv6 -- -i '*' -x 'fd00::/8,10.1.2.3/16,2001:db8::1' -b 80,443
golden tproxy-ipv6 -- -m tproxy -t 0x400 -r 100 -b 8080 \
	-i 'fd00:1::/48,10.0.0.0/8' -u 2000
golden loopback -- -i 127.0.0.1/32,10.0.0.0/8 -b ''
golden defaults --
golden defaults ENVOY_PORT= ISTIO_INBOUND_PORTS= -- -u ''

note "argv[0] istio-iptables"
ln -s "$AGENT" "$T/istio-iptables"
agent "$T/istio-iptables" --dry-run -p 15001 -z 15006 -u 1337 -m REDIRECT \
	-i '*' -x "" -b '*' -d 15090,15020 >"$T/link.out" 2>"$T/link.err" ||
	fail "istio-iptables as argv[0]: $(cat "$T/link.err")"
diff -u "$G/deployment.golden" "$T/link.out" || fail "istio-iptables as argv[0] differs"

note "help"
agent "$AGENT" istio-iptables --help >"$T/help" 2>&1 || fail "--help exits $?"
grep -q -- '--envoy-port' "$T/help" || fail "--help lacks --envoy-port"
agent "$AGENT" istio-clean-iptables -h >"$T/help" 2>&1 || fail "clean -h exits $?"

bad() { # WANT-IN-MESSAGE [VAR=value...] -- flags...
	local want=$1 envs=()
	shift
	while [ "$1" != -- ]; do
		envs+=("$1")
		shift
	done
	shift
	n=$((n + 1))
	agent "${envs[@]}" "$AGENT" istio-iptables --dry-run "$@" \
		>"$T/out$n" 2>"$T/err$n"
	local rc=$?
	[ "$rc" = 2 ] || fail "${envs[*]} $*: exit $rc, want 2"
	[ -s "$T/out$n" ] && fail "${envs[*]} $*: printed rules: $(cat "$T/out$n")"
	grep -q -F -- "$want" "$T/err$n" ||
		fail "${envs[*]} $*: message lacks '$want': $(cat "$T/err$n")"
	note "ok: refused ${envs[*]} $*"
}
bad '-p/--envoy-port: "70000"' -- -p 70000
bad '-z/--inbound-capture-port: "0"' -- -z 0
bad '--envoy-port: "15001x"' -- --envoy-port=15001x
bad '"10.0.0.0/33"' -- -i 10.0.0.0/33
bad '"10.0.0.0/8x"' -- -i 10.0.0.0/8x
bad '"not-a-cidr"' -- -x 10.0.0.0/8,not-a-cidr
bad '"256.1.1.1/32"' -- -i 256.1.1.1/32
bad '"fd00::/129"' -- -i fd00::/129
bad '-x/--istio-service-exclude-cidr: "*"' -- -x '*'
bad '"*"' -- -i '10.0.0.0/8,*'
bad '-m/--istio-inbound-interception-mode: "FOO"' -- -m FOO
bad '"http"' -- -b 80,http
bad '"99999"' -- -d 99999
bad '"-1"' -- -o -1
bad '"abc"' -- -q abc
bad '"-5"' -- -u -5
bad '"root"' -- -g root
bad '"bad/if"' -- -k bad/if
bad '"0"' -- -t 0
bad '"254"' -- -r 254
bad '"maybe"' -- --dry-run=maybe
bad 'unknown flag "--nope"' -- --nope
bad 'unknown flag "-Z"' -- -Z 1
bad 'unexpected argument "extra"' -- extra
bad '"-p" needs a value' -- -p
bad 'ISTIO_INBOUND_PORTS: "http"' ISTIO_INBOUND_PORTS=http --
bad 'ISTIO_INBOUND_INTERCEPTION_MODE: "MAGIC"' ISTIO_INBOUND_INTERCEPTION_MODE=MAGIC --
bad 'ISTIO_SERVICE_CIDR: "10.0.0.300/8"' ISTIO_SERVICE_CIDR=10.0.0.300/8 --
bad 'ENVOY_PORT: "65536"' ENVOY_PORT=65536 --
bad 'INBOUND_CAPTURE_PORT: "x"' INBOUND_CAPTURE_PORT=x --
bad 'PROXY_UID: "istio"' PROXY_UID=istio --
exit 0
