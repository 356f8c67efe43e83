#!/usr/bin/env bash
# istio-iptables with IPv6 ranges also writes the rules through
# ip6tables-restore: IPv6 connections are intercepted like IPv4 ones (the
# original destination intact), the ::6 inbound passthrough works, a second
# run changes nothing, istio-clean-iptables removes both families' rules and
# ::6, and a failing ip6tables-restore undoes the IPv4 rules too.
. "$TOP/tests/lib.sh"
. "$TOP/tests/tools/ipt_netns.sh"
ipt_netns_setup 6

APP=1000 PROXY=1337
FLAGS=(-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*'
	-x fd00:250:9::/64,10.250.9.0/24 -b '*' -d 15090,15020)

listen "$POD" proxy-out6 15001 -6
listen "$POD" proxy-in6 15006 -6
listen "$POD" app6 8080 -6
listen "$POD" proxy-out 15001
listen "$POD" proxy-in 15006
listen "$PEER" peer6 80 -6
listen "$PEER" peer80 80
saved "$POD" >"$T/before"
saved "$POD" 6 >"$T/before6"

in_pod "$AGENT" istio-iptables "${FLAGS[@]}" || fail "istio-iptables failed"

note "IPv6"
expect "$POD" $APP $APP "proxy-out6 orig=[$PEER_IP6]:80" "$PEER_IP6" 80
expect "$POD" $PROXY $PROXY "peer6 orig=[$PEER_IP6]:80" "$PEER_IP6" 80
expect "$POD" $APP $APP "peer6 orig=[$PEER_IP96]:80" "$PEER_IP96" 80
expect "$PEER" 0 0 "proxy-in6 orig=[$POD_IP6]:8080" "$POD_IP6" 8080
expect "$POD" $PROXY $PROXY "app6 orig=[$POD_IP6]:8080" -s ::6 "$POD_IP6" 8080
expect "$POD" $PROXY $PROXY "proxy-in6 orig=[$POD_IP6]:8080" "$POD_IP6" 8080

note "IPv4 alongside"
expect "$POD" $APP $APP "proxy-out orig=$PEER_IP:80" "$PEER_IP" 80
expect "$POD" $APP $APP "peer80 orig=$PEER_IP9:80" "$PEER_IP9" 80
expect "$PEER" 0 0 "proxy-in orig=$POD_IP:8080" "$POD_IP" 8080

note "ip6tables-save reads as --dry-run's IPv6 part"
in_pod "$AGENT" istio-iptables --dry-run "${FLAGS[@]}" >"$T/dry" || fail "--dry-run"
sed -n '/^# ip6tables-restore/,$p' "$T/dry" | grep '^-A ISTIO_' >"$T/dry6"
saved "$POD" 6 >"$T/after6"
grep '^-A ISTIO_' "$T/after6" | diff -u "$T/dry6" - ||
	fail "ip6tables-save differs from --dry-run"
saved "$POD" >"$T/after4"

note "idempotence"
in_pod "$AGENT" istio-iptables "${FLAGS[@]}" || fail "second istio-iptables failed"
saved "$POD" 6 | diff -u "$T/after6" - || fail "a second run changed the IPv6 rules"
saved "$POD" | diff -u "$T/after4" - || fail "a second run changed the IPv4 rules"

note "clean-up"
in_pod "$AGENT" istio-clean-iptables || fail "istio-clean-iptables failed"
saved "$POD" | diff -u "$T/before" - || fail "IPv4 rules left"
saved "$POD" 6 | diff -u "$T/before6" - || fail "IPv6 rules left"
in_pod ip -6 addr show dev lo | grep -q ' ::6/128 ' && fail "::6 left on lo"
expect "$POD" $APP $APP "peer6 orig=[$PEER_IP6]:80" "$PEER_IP6" 80

note "a failing ip6tables-restore undoes the IPv4 rules"
mkdir -p "$T/fakebin"
printf '#!/bin/sh\ncat >/dev/null\nexit 1\n' >"$T/fakebin/ip6tables-restore"
chmod +x "$T/fakebin/ip6tables-restore"
PATH=$T/fakebin:$PATH in_pod "$AGENT" istio-iptables "${FLAGS[@]}" >"$T/fail.out" 2>&1
rc=$?
[ "$rc" = 1 ] || fail "exit $rc, want 1: $(cat "$T/fail.out")"
saved "$POD" | diff -u "$T/before" - || fail "IPv4 rules left after the failure"
saved "$POD" 6 | diff -u "$T/before6" - || fail "IPv6 rules left after the failure"
in_pod ip -6 addr show dev lo | grep -q ' ::6/128 ' && fail "::6 left on lo"
exit 0
