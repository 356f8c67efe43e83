#!/usr/bin/env bash
# "make install" into a temporary root, and the installed tree run as a
# container runs it: the installed pilot-agent is PID 1 of a new PID
# namespace (unshare --pid --fork --mount-proc), the stand-in is installed as
# the proxy binary beside it, and the agent becomes ready, hot-restarts on
# SIGHUP, reaps what its children leave behind, and drains and exits 0 on
# SIGTERM. Then "make uninstall" leaves nothing but empty directories.
. "$TOP/tests/lib.sh"

ROOT=$T/root
PREFIX=/usr/local
BIN=$ROOT$PREFIX/bin
# The runner's B names the build under test; -o keeps make from rebuilding
# the agent (into another directory, or at all) on account of a newer source.
mk() {
	make -s -C "$TOP" -o "$B/pilot-agent" B="$B" PREFIX="$PREFIX" DESTDIR="$ROOT" "$@"
}

note "make install"
mk install >"$T/install.log" 2>&1 || fail "make install: $(cat "$T/install.log")"
[ -f "$BIN/pilot-agent" ] && [ -x "$BIN/pilot-agent" ] || fail "no $BIN/pilot-agent"
[ "$(stat -c %a "$BIN/pilot-agent")" = 755 ] || fail "pilot-agent mode $(stat -c %a "$BIN/pilot-agent")"
[ -L "$BIN/istio-iptables" ] || fail "istio-iptables is not a symbolic link"
[ "$(readlink "$BIN/istio-iptables")" = pilot-agent ] ||
	fail "istio-iptables -> $(readlink "$BIN/istio-iptables"), want the relative pilot-agent"
MAN=$ROOT$PREFIX/share/man/man8/pilot-agent.8
cmp -s "$MAN" "$TOP/man/pilot-agent.8" || fail "man page not installed as $MAN"
[ "$(stat -c %a "$MAN")" = 644 ] || fail "man page mode $(stat -c %a "$MAN")"
want=$(printf '%s\n' "$PREFIX/bin/istio-iptables" "$PREFIX/bin/pilot-agent" \
	"$PREFIX/share/man/man8/pilot-agent.8")
have=$(cd "$ROOT" && find . ! -type d | sed 's|^\.||' | sort)
[ "$have" = "$want" ] || fail "installed: $have"
readelf -SW "$BIN/pilot-agent" | grep -q '\.symtab' && fail "pilot-agent is not stripped"
"$BIN/pilot-agent" version | grep -q '^pilot-agent version ' || fail "installed binary does not run"
# The link dispatches on its name.
"$BIN/istio-iptables" --dry-run -i '*' -b '*' >"$T/ipt.out" 2>&1 ||
	fail "istio-iptables through the link: $(cat "$T/ipt.out")"
grep -q -- '-j ISTIO_REDIRECT' "$T/ipt.out" || fail "istio-iptables printed no rules"
if command -v mandoc >/dev/null; then
	mandoc -T lint "$MAN" >"$T/lint" 2>&1 && [ ! -s "$T/lint" ] ||
		fail "installed man page: $(cat "$T/lint")"
fi

note "the installed agent as PID 1, with the stand-in installed as the proxy"
# The stand-in leaves an orphan behind at every start, which PID 1 must reap.
cat >"$BIN/envoy" <<EOF2
#!/bin/sh
( sleep 0.5 & )
exec "$EMU" --base-id $BASE_ID "\$@"
EOF2
chmod 755 "$BIN/envoy"
export ENVOY_EMU_ASSUME_XDS=1
ADMIN_PORT=$(free_port) STATUS_PORT=$(free_port)
export ENVOY_STATUS_PORT=$(free_port) ENVOY_PROMETHEUS_PORT=$(free_port)
export POD_NAME=productpage-v1-0 POD_NAMESPACE=shop INSTANCE_IP=127.0.0.1
spawn unshare --pid --fork --mount-proc "$BIN/pilot-agent" proxy sidecar \
	--configPath "$ROOT/etc/istio/proxy" --binaryPath "$BIN/envoy" \
	--proxyAdminPort "$ADMIN_PORT" --statusPort "$STATUS_PORT" \
	--controlPlaneAuthPolicy NONE --discoveryAddress "127.0.0.1:$(free_port)" \
	--certDir "$ROOT/etc/certs" --parentShutdownDuration 1s \
	--terminationDrainDuration 1s >"$T/agent.log" 2>&1
UNSHARE_PID=$LAST_PID
find_agent() { AGENT_PID=$(children_of "$UNSHARE_PID" | head -n 1); [ -n "$AGENT_PID" ]; }
wait_until 5 find_agent || fail "no agent under unshare"
# The same file, by device and inode: the path the kernel shows for another
# mount namespace's executable depends on where this tree sits (a chroot, a
# container), not on which file it is.
[ "$(stat -L -c %d:%i /proc/"$AGENT_PID"/exe)" = "$(stat -L -c %d:%i "$BIN/pilot-agent")" ] ||
	fail "PID 1 is $(readlink /proc/"$AGENT_PID"/exe), not the installed agent"
grep -q '^NSpid:.*[[:space:]]1$' /proc/"$AGENT_PID"/status || fail "agent is not PID 1 in its namespace"

ready() { [ "$(http_code "http://127.0.0.1:$STATUS_PORT/healthz/ready")" = 200 ]; }
wait_until 20 ready ||
	fail "not ready: $(curl -s "http://127.0.0.1:$STATUS_PORT/healthz/ready"); $(tail -n 20 "$T/agent.log")"
wait_live 0
log_has "node sidecar~127.0.0.1~productpage-v1-0.shop~shop.svc.cluster.local" ||
	fail "node id not from the pod's variables"
[ "$(http_code "http://127.0.0.1:$ENVOY_PROMETHEUS_PORT/stats/prometheus")" = 200 ] ||
	fail "no metrics on ENVOY_PROMETHEUS_PORT"

note "SIGHUP: hot restart"
kill -HUP "$AGENT_PID"
wait_live 1
[ "$(http_code "http://127.0.0.1:$STATUS_PORT/healthz/ready")" = 200 ] || fail "not ready after the restart"
# Epoch 0 drains, is told to exit after --parentShutdownDuration, and is
# reaped. (The pids in the log are the namespace's.)
wait_until 15 log_has "epoch 0: .* → exited (pid [0-9]*, exit code 0)" ||
	fail "epoch 0 did not exit 0: $(tail -n 20 "$T/agent.log")"
[ ! -e "$ROOT/etc/istio/proxy/envoy-rev0.json" ] || fail "epoch 0's bootstrap left behind"

note "reaping: no zombies, only the proxy left as a child"
# The orphans end half a second after their start, and are reaped.
wait_until 10 one_child_reaped "$AGENT_PID" ||
	fail "want only epoch 1 as a child and no zombie, have: $(children_of "$AGENT_PID" | tr '\n' ' ')(zombies: $(zombies_of "$AGENT_PID" | tr '\n' ' '))"

note "SIGTERM: drain, exit 0"
kill -TERM "$AGENT_PID"
wait_exit "$UNSHARE_PID" 20 || fail "agent did not exit"
[ "$EXIT_CODE" = 0 ] || fail "exit code $EXIT_CODE: $(tail -n 20 "$T/agent.log")"
log_has "drain: terminationDrainDuration elapsed" || fail "no drain"
log_has "pilot-agent exiting with code 0" || fail "no exit line"

note "make uninstall"
rm -f "$BIN/envoy"
rm -rf "$ROOT/etc"
mk uninstall >"$T/uninstall.log" 2>&1 || fail "make uninstall: $(cat "$T/uninstall.log")"
left=$(find "$ROOT" ! -type d)
[ -z "$left" ] || fail "left after uninstall: $left"
echo PASS
