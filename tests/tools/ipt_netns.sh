# Network namespaces for the istio-iptables end-to-end tests. Source it
# after lib.sh:
#   . "$TOP/tests/tools/ipt_netns.sh"
#   ipt_netns_setup [6]
# It makes a "pod" and a "peer" namespace, private to this test, joined by
# a veth pair (eth0 in each), with addresses from a test range that exists
# only inside them: pod 10.250.0.1/24, peer 10.250.0.2/24 and 10.250.9.2/24
# (reached from the pod through eth0), and with "6" also fd00:250::1/64,
# fd00:250::2/64 and fd00:250:9::2/64. No packet ever leaves them, and the
# host's own rules and interfaces are never touched. The namespaces are
# deleted on exit, before lib.sh's own clean-up.
PROBE=$B/tools/ipt_probe
POD=pa-ipt-pod-$$
PEER=pa-ipt-peer-$$
POD_IP=10.250.0.1
PEER_IP=10.250.0.2
PEER_IP9=10.250.9.2
POD_IP6=fd00:250::1
PEER_IP6=fd00:250::2
PEER_IP96=fd00:250:9::2

ipt_cleanup() {
	local rc=$?
	ip netns del "$POD" 2>/dev/null
	ip netns del "$PEER" 2>/dev/null
	(exit "$rc")
	lib_cleanup
}
trap ipt_cleanup EXIT

in_pod() { ip netns exec "$POD" "$@"; }
in_peer() { ip netns exec "$PEER" "$@"; }

skip() {
	note "skipped: $*"
	exit 0
}

ipt_netns_setup() {
	local six=${1:-}
	[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
	[ -x "$PROBE" ] || fail "$PROBE is missing"
	ip netns add "$POD" 2>/dev/null || skip "cannot create network namespaces"
	ip netns add "$PEER" || fail "ip netns add $PEER"
	in_pod iptables -t nat -S >/dev/null 2>&1 || skip "no iptables nat table"
	ip -n "$POD" link add eth0 type veth peer name eth0 netns "$PEER" ||
		fail "cannot create the veth pair"
	ip -n "$POD" link set lo up
	ip -n "$PEER" link set lo up
	ip -n "$POD" addr add "$POD_IP/24" dev eth0
	ip -n "$PEER" addr add "$PEER_IP/24" dev eth0
	ip -n "$PEER" addr add "$PEER_IP9/24" dev eth0
	if [ -n "$six" ]; then
		ip -n "$POD" addr add "$POD_IP6/64" dev eth0 nodad 2>/dev/null ||
			skip "no IPv6 in network namespaces"
		ip -n "$PEER" addr add "$PEER_IP6/64" dev eth0 nodad
		ip -n "$PEER" addr add "$PEER_IP96/64" dev eth0 nodad
		in_pod ip6tables -t nat -S >/dev/null 2>&1 ||
			skip "no ip6tables nat table"
	fi
	ip -n "$POD" link set eth0 up
	ip -n "$PEER" link set eth0 up
	ip -n "$POD" route add 10.250.9.0/24 dev eth0
	[ -n "$six" ] && ip -n "$POD" -6 route add fd00:250:9::/64 dev eth0
	wait_until 5 ipt_link_up || fail "the veth pair does not come up"
	return 0
}

ipt_link_up() {
	ip -n "$POD" link show eth0 | grep -q LOWER_UP &&
		ip -n "$PEER" link show eth0 | grep -q LOWER_UP
}

# listen NS NAME PORT [ipt_probe listen flags]: a listener answering NAME.
listen() {
	local ns=$1 name=$2 port=$3
	shift 3
	spawn ip netns exec "$ns" "$PROBE" listen -r "$T/ready.$name" "$@" \
		"$name" "$port"
	wait_until 5 test -f "$T/ready.$name" || fail "listener $name did not start"
}

# expect NS UID GID WANT [ipt_probe connect args]: a connection made as
# UID:GID in NS is answered by a line starting with WANT.
expect() {
	local ns=$1 uid=$2 gid=$3 want=$4 out
	shift 4
	out=$(ip netns exec "$ns" setpriv --reuid="$uid" --regid="$gid" \
		--clear-groups "$PROBE" connect "$@" 2>&1)
	case $out in
	"$want"*) note "ok: $uid:$gid → $* answered by $want" ;;
	*) fail "$uid:$gid → $*: got '$out', want '$want…'" ;;
	esac
}

# The rules of NS as iptables-save (ip6tables-save with 6) prints them,
# without comments, counters and tables that hold nothing (whether an empty
# table is listed depends on the backend and on what loaded it).
saved() {
	local cmd=iptables-save
	[ "${2:-}" = 6 ] && cmd=ip6tables-save
	ip netns exec "$1" "$cmd" | grep -v '^#' | sed 's/ \[[0-9]*:[0-9]*\]$//' |
		awk '/^\*/ { buf = $0 "\n"; used = 0; next }
		/^COMMIT$/ { if (used) printf "%s%s\n", buf, $0; next }
		{ buf = buf $0 "\n" }
		!/^:[A-Z]+ ACCEPT$/ { used = 1 }'
}
