#!/usr/bin/env bash
# istio-iptables in TPROXY mode, with real rules and real connections:
# inbound connections from the peer reach the proxy's transparent socket on
# 15006 with their destination (the pod's address and port) intact; excluded
# ports, the 127.0.0.6 passthrough and the application's own loopback
# connections are not captured; the mark's routing rule and table are set
# up, and istio-clean-iptables takes rules, routing rule and route away.
. "$TOP/tests/lib.sh"
. "$TOP/tests/tools/ipt_netns.sh"
ipt_netns_setup
in_pod iptables -t mangle -A PREROUTING -p tcp -j TPROXY --on-port 1 \
	--tproxy-mark 1 2>/dev/null || skip "no TPROXY target"
in_pod iptables -t mangle -F PREROUTING

APP=1000 PROXY=1337
FLAGS=(-p 15001 -z 15006 -u 1337 -m TPROXY -i '*' -x "" -b '*' -d 15090,15020)

listen "$POD" proxy-out 15001
listen "$POD" proxy-in 15006 -t
listen "$POD" app 8080
listen "$POD" app-admin 15090
listen "$PEER" peer80 80
saved "$POD" >"$T/before"

in_pod "$AGENT" istio-iptables "${FLAGS[@]}" || fail "istio-iptables failed"
in_pod ip rule show | grep -q 'fwmark 0x539 lookup 133' ||
	fail "no routing rule for the mark: $(in_pod ip rule show)"
in_pod ip route show table 133 | grep -q 'local default dev lo' ||
	fail "no local route in table 133"

note "inbound"
expect "$PEER" 0 0 "proxy-in orig=$POD_IP:8080 peer=$PEER_IP:" "$POD_IP" 8080
expect "$PEER" 0 0 "proxy-in orig=$POD_IP:9999 peer=$PEER_IP:" "$POD_IP" 9999
expect "$PEER" 0 0 "app-admin orig=$POD_IP:15090" "$POD_IP" 15090

note "inside the pod"
expect "$POD" $PROXY $PROXY "app orig=$POD_IP:8080" -s 127.0.0.6 "$POD_IP" 8080
expect "$POD" $PROXY $PROXY "proxy-in orig=$POD_IP:8080" "$POD_IP" 8080
expect "$POD" $APP $APP "app orig=$POD_IP:8080" "$POD_IP" 8080

note "outbound"
expect "$POD" $APP $APP "proxy-out orig=$PEER_IP:80" "$PEER_IP" 80
expect "$POD" $PROXY $PROXY "peer80 orig=$PEER_IP:80" "$PEER_IP" 80

note "the mangle table"
saved "$POD" >"$T/after1"
for rule in '-A PREROUTING -p tcp -j ISTIO_INBOUND' \
	'-A ISTIO_INBOUND -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_DIVERT' \
	'-A ISTIO_INBOUND -p tcp -j ISTIO_TPROXY' \
	'-A ISTIO_DIVERT -j ACCEPT'; do
	grep -q -x -- "$rule" "$T/after1" || fail "missing: $rule"
done
grep -q -- '-A ISTIO_TPROXY ! -d 127.0.0.1/32 -p tcp -j TPROXY --on-port 15006' \
	"$T/after1" || fail "no TPROXY rule"

note "idempotence"
in_pod "$AGENT" istio-iptables "${FLAGS[@]}" || fail "second istio-iptables failed"
saved "$POD" | diff -u "$T/after1" - || fail "a second run changed the rules"
[ "$(in_pod ip rule show | grep -c 'fwmark 0x539 lookup 133')" = 1 ] ||
	fail "the routing rule is not there exactly once"
expect "$PEER" 0 0 "proxy-in orig=$POD_IP:8080" "$POD_IP" 8080

note "clean-up"
in_pod "$AGENT" istio-clean-iptables || fail "istio-clean-iptables failed"
saved "$POD" | diff -u "$T/before" - || fail "istio-clean-iptables left rules"
in_pod ip rule show | grep -q 'fwmark 0x539' && fail "the routing rule is left"
[ -z "$(in_pod ip route show table 133 2>/dev/null)" ] || fail "table 133 is left"
expect "$PEER" 0 0 "app orig=$POD_IP:8080" "$POD_IP" 8080
exit 0
