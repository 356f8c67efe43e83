#!/usr/bin/env bash
# Nothing of an epoch outlives it: a proxy wrapper that leaves a background
# child in the epoch's process group. The child of a drained epoch dies with
# it, the newest epoch's dies at shutdown, and a crash-looping wrapper leaves
# no orphan behind when the agent gives up.
. "$TOP/tests/lib.sh"
export ENVOY_EMU_ASSUME_XDS=1

cat >"$T/envoy-bg" <<EOF
#!/bin/sh
sleep 300 &
echo \$! >>"$T/bg.pids"
exec "$EMU" --base-id $BASE_ID "\$@"
EOF
chmod +x "$T/envoy-bg"

# alive PID: running, not a zombie waiting to be reaped.
alive() {
	[ -e "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}
# all_dead: every background child recorded so far is gone.
all_dead() {
	local p
	for p in $(cat "$T/bg.pids" 2>/dev/null); do
		alive "$p" && return 1
	done
	return 0
}
nbg() { grep -c . "$T/bg.pids" 2>/dev/null || echo 0; }

note "a drained epoch's background child dies with it; the newest's at shutdown"
BINARY=$T/envoy-bg start_agent --parentShutdownDuration 1s --terminationDrainDuration 0s
wait_live 0
wait_until 5 [ -s "$T/bg.pids" ] || fail "the wrapper did not start"
bg0=$(head -n 1 "$T/bg.pids")
alive "$bg0" || fail "background child $bg0 not running"
kill -HUP "$AGENT_PID"
wait_live 1
wait_until 20 log_has "epoch 0: draining → exited" || fail "epoch 0 did not exit"
wait_until 5 eval '! alive '"$bg0" || fail "epoch 0's background child $bg0 outlived it"
bg1=$(sed -n 2p "$T/bg.pids")
alive "$bg1" || fail "epoch 1's background child $bg1 not running"
kill -TERM "$AGENT_PID"
wait_exit "$AGENT_PID" 20 || fail "agent did not exit"
[ "$EXIT_CODE" = 0 ] || fail "agent exit code $EXIT_CODE"
wait_until 5 all_dead || fail "background children outlived the agent: $(cat "$T/bg.pids")"

note "a crash-looping wrapper leaves no orphans"
unset ADMIN_PORT STATUS_PORT HEALTH_PORT PROM_PORT
rm -f "$T/bg.pids"
ENVOY_EMU_EXIT_CODE=1 ENVOY_EMU_EXIT_AFTER=0s BINARY=$T/envoy-bg \
	start_agent --restartInitialInterval 20ms --restartMaxRetries 4
wait_exit "$AGENT_PID" 30 || fail "agent did not give up"
[ "$EXIT_CODE" = 1 ] || fail "agent exit code $EXIT_CODE, want 1"
[ "$(nbg)" = 5 ] || fail "want 5 starts, have $(nbg)"
wait_until 5 all_dead || fail "orphans left: $(for p in $(cat "$T/bg.pids"); do alive "$p" && echo "$p"; done)"
echo "process groups ok"
