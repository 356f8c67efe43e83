#!/usr/bin/env bash
# istio-iptables in REDIRECT mode, with real rules and real connections in
# a pod namespace joined to a peer namespace: outbound connections of an
# application uid land on 15001 with their original destination intact,
# inbound connections on 15006; the proxy's uid and gid, excluded ports and
# excluded ranges go straight through, and so does the 127.0.0.6 inbound
# passthrough. Running it twice leaves the same rules, istio-clean-iptables
# leaves the tables as they were, and bad input or a failed transaction
# leaves nothing behind.
. "$TOP/tests/lib.sh"
. "$TOP/tests/tools/ipt_netns.sh"
ipt_netns_setup

APP=1000 PROXY=1337
FLAGS=(-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x 10.250.9.0/24
	-b '*' -d 15090,15020 -o 9090)

listen "$POD" proxy-out 15001
listen "$POD" proxy-in 15006
listen "$POD" app 8080
listen "$POD" app-admin 15090
listen "$PEER" peer80 80
listen "$PEER" peer9090 9090

# Somebody else's rules, which must survive everything below.
in_pod iptables -t nat -A OUTPUT -p udp --dport 5353 -j RETURN
in_pod iptables -t nat -A PREROUTING -p udp --dport 5353 -j RETURN
saved "$POD" >"$T/before"

note "bad input applies nothing"
for bad in "-p 70000" "-i 10.0.0.0/33" "-m FOO" "-b 80,http"; do
	# shellcheck disable=SC2086
	in_pod "$AGENT" istio-iptables $bad >"$T/bad.out" 2>&1
	rc=$?
	[ "$rc" = 2 ] || fail "istio-iptables $bad: exit $rc, want 2"
	saved "$POD" | diff -u "$T/before" - || fail "istio-iptables $bad changed the rules"
done

note "no traffic is captured before"
expect "$POD" $APP $APP "peer80 orig=$PEER_IP:80" "$PEER_IP" 80

in_pod "$AGENT" istio-iptables "${FLAGS[@]}" || fail "istio-iptables failed"

note "outbound"
expect "$POD" $APP $APP "proxy-out orig=$PEER_IP:80" "$PEER_IP" 80
expect "$POD" $PROXY $PROXY "peer80 orig=$PEER_IP:80" "$PEER_IP" 80
expect "$POD" $APP $PROXY "peer80 orig=$PEER_IP:80" "$PEER_IP" 80
expect "$POD" $APP $APP "peer9090 orig=$PEER_IP:9090" "$PEER_IP" 9090
expect "$POD" $APP $APP "peer80 orig=$PEER_IP9:80" "$PEER_IP9" 80
expect "$POD" $APP $APP "app orig=127.0.0.1:8080" 127.0.0.1 8080

note "inbound"
expect "$PEER" 0 0 "proxy-in orig=$POD_IP:8080" "$POD_IP" 8080
expect "$PEER" 0 0 "app-admin orig=$POD_IP:15090" "$POD_IP" 15090

note "inside the pod"
expect "$POD" $PROXY $PROXY "app orig=$POD_IP:8080" -s 127.0.0.6 "$POD_IP" 8080
expect "$POD" $PROXY $PROXY "proxy-in orig=$POD_IP:8080" "$POD_IP" 8080
expect "$POD" $APP $APP "app orig=$POD_IP:8080" "$POD_IP" 8080

note "the rules are the --dry-run ones, with Istio's nine ISTIO_OUTPUT rules"
saved "$POD" >"$T/after1"
in_pod "$AGENT" istio-iptables --dry-run "${FLAGS[@]}" >"$T/dry" ||
	fail "--dry-run failed"
grep '^-A ISTIO_' "$T/dry" >"$T/dry.istio"
grep '^-A ISTIO_' "$T/after1" | diff -u "$T/dry.istio" - ||
	fail "iptables-save differs from --dry-run"
cat >"$T/output9" <<EOF
-A ISTIO_OUTPUT -p tcp -m tcp --dport 9090 -j RETURN
-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-A ISTIO_OUTPUT -d 10.250.9.0/24 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
EOF
grep '^-A ISTIO_OUTPUT' "$T/after1" | diff -u "$T/output9" - ||
	fail "ISTIO_OUTPUT is not in Istio's order"

note "idempotence"
in_pod "$AGENT" istio-iptables "${FLAGS[@]}" || fail "second istio-iptables failed"
saved "$POD" | diff -u "$T/after1" - || fail "a second run changed the rules"
[ "$(grep -c -- '-A OUTPUT -p tcp -j ISTIO_OUTPUT' "$T/after1")" = 1 ] ||
	fail "the OUTPUT jump is not there exactly once"
expect "$POD" $APP $APP "proxy-out orig=$PEER_IP:80" "$PEER_IP" 80

note "clean-up"
in_pod "$AGENT" istio-clean-iptables || fail "istio-clean-iptables failed"
saved "$POD" | diff -u "$T/before" - || fail "istio-clean-iptables left something"
expect "$POD" $APP $APP "peer80 orig=$PEER_IP:80" "$PEER_IP" 80
expect "$PEER" 0 0 "app orig=$POD_IP:8080" "$POD_IP" 8080
in_pod "$AGENT" istio-clean-iptables || fail "a second clean-up failed"

note "included ranges and ports only"
in_pod "$AGENT" istio-iptables -i 10.250.9.0/24 -b 8080 -q 9090 ||
	fail "istio-iptables with ranges failed"
expect "$POD" $APP $APP "peer80 orig=$PEER_IP:80" "$PEER_IP" 80
expect "$POD" $APP $APP "proxy-out orig=$PEER_IP9:80" "$PEER_IP9" 80
expect "$POD" $APP $APP "proxy-out orig=$PEER_IP:9090" "$PEER_IP" 9090
expect "$PEER" 0 0 "proxy-in orig=$POD_IP:8080" "$POD_IP" 8080
expect "$PEER" 0 0 "app-admin orig=$POD_IP:15090" "$POD_IP" 15090
in_pod "$AGENT" istio-clean-iptables || fail "istio-clean-iptables failed"
saved "$POD" | diff -u "$T/before" - || fail "clean-up after ranges left something"

note "a transaction that fails is undone"
mkdir -p "$T/fakebin"
real=$(command -v iptables-restore)
cat >"$T/fakebin/iptables-restore" <<EOF
#!/bin/sh
# Applies the rules, then fails: as a later table failing after an earlier
# one was committed.
if [ "\$1" = --noflush ]; then "$real" "\$@"; exit 1; fi
exec "$real" "\$@"
EOF
chmod +x "$T/fakebin/iptables-restore"
PATH=$T/fakebin:$PATH in_pod "$AGENT" istio-iptables "${FLAGS[@]}" >"$T/fail.out" 2>&1
rc=$?
[ "$rc" = 1 ] || fail "a failed transaction exits $rc, want 1: $(cat "$T/fail.out")"
saved "$POD" | diff -u "$T/before" - || fail "a failed transaction left rules"
expect "$POD" $APP $APP "peer80 orig=$PEER_IP:80" "$PEER_IP" 80
exit 0
