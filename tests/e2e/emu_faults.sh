#!/usr/bin/env bash
# The stand-in's fault knobs: ENVOY_EMU_EXIT_CODE/_EXIT_AFTER,
# ENVOY_EMU_CRASH_SIGNAL/_CRASH_AFTER, ENVOY_EMU_INIT_DELAY,
# ENVOY_EMU_NEVER_LIVE, ENVOY_EMU_FAULT_EPOCH, and bad values.
. "$TOP/tests/lib.sh"
. "$TOP/tests/envoy-emu/e2e.sh"

PORT=$(free_port)
emu_config "$T/emu.json" "health:$PORT"
ms() { date +%s%3N; }
stop() {
	kill -TERM "$1"
	wait_exit "$1" 5 || fail "pid $1 did not stop"
	[ "$EXIT_CODE" = 0 ] || fail "pid $1 exit code $EXIT_CODE"
}

note "exit code after a delay"
t0=$(ms)
ENVOY_EMU_EXIT_CODE=3 ENVOY_EMU_EXIT_AFTER=700ms emu_start 0
P=$LAST_PID
wait_until 5 emu_live || fail "not live before the exit"
wait_exit "$P" 10 || fail "did not exit"
[ "$EXIT_CODE" = 3 ] || fail "exit code $EXIT_CODE, not 3"
el=$(($(ms) - t0))
[ "$el" -ge 650 ] || fail "exited after $el ms, before 700ms"
grep -q "exiting with code 3 (ENVOY_EMU_EXIT_CODE)" "$T/emu0.log" || fail "not logged"

note "exit code, default delay 0s"
ENVOY_EMU_EXIT_CODE=0 emu_run 10 -c "$T/emu.json" --base-id "$BASE_ID"
[ "$RC" = 0 ] || fail "EXIT_CODE=0: $RC $OUT"
ENVOY_EMU_EXIT_CODE=255 emu_run 10 -c "$T/emu.json" --base-id "$BASE_ID"
[ "$RC" = 255 ] || fail "EXIT_CODE=255: $RC"

note "crash by signal"
ENVOY_EMU_CRASH_SIGNAL=9 ENVOY_EMU_CRASH_AFTER=300ms emu_start 0
P=$LAST_PID
wait_until 5 emu_live || fail "not live before the crash"
wait_exit "$P" 10 || fail "did not crash"
[ "$EXIT_CODE" = 137 ] || fail "SIGKILL: status $EXIT_CODE"
for sig in 6 11 15; do
	ENVOY_EMU_CRASH_SIGNAL=$sig emu_start 0
	P=$LAST_PID
	wait_exit "$P" 10 || fail "signal $sig: did not crash"
	[ "$EXIT_CODE" = $((128 + sig)) ] || fail "signal $sig: status $EXIT_CODE"
done
ls "$T"/core* >/dev/null 2>&1 && fail "core file left"

note "init delay"
ENVOY_EMU_INIT_DELAY=1s emu_start 0
P=$LAST_PID
wait_until 5 ready_is INITIALIZING || fail "not INITIALIZING: $(admin_get /ready)"
[ "$(stat_of server.state)" = 3 ] || fail "server.state $(stat_of server.state)"
# As Envoy's: no listener accepts before the workers start.
[ "$(http_code "http://127.0.0.1:$PORT/")" = 000 ] || fail "listener served while initializing"
wait_until 5 emu_live || fail "not LIVE after the delay"
listen_ok "$PORT" || fail "listener not serving once LIVE"
stop "$P"

note "never live"
ENVOY_EMU_NEVER_LIVE=1 emu_start 0
P=$LAST_PID
wait_until 5 ready_is INITIALIZING || fail "not INITIALIZING: $(admin_get /ready)"
# Fixed time: nothing may change for two seconds.
sleep 2
[ "$(admin_get /ready)" = INITIALIZING ] || fail "left INITIALIZING"
[ "$(http_code "http://127.0.0.1:$ADMIN/ready")" = 503 ] || fail "/ready not 503"
stop "$P"

note "fault epoch: the knobs hit epoch 1 only"
export ENVOY_EMU_FAULT_EPOCH=1 ENVOY_EMU_EXIT_CODE=4 ENVOY_EMU_EXIT_AFTER=1s
export ENVOY_EMU_NEVER_LIVE=1
emu_start 0
P0=$LAST_PID
wait_emu_epoch 0
# Fixed time: epoch 0 must outlive the 1 s ENVOY_EMU_EXIT_AFTER meant for epoch 1.
sleep 1.2
alive "$P0" || fail "epoch 0 hit by epoch 1's faults"
emu_start 1
P1=$LAST_PID
wait_until 5 ready_is INITIALIZING || fail "epoch 1 not held INITIALIZING"
wait_exit "$P1" 10 || fail "epoch 1 did not exit"
[ "$EXIT_CODE" = 4 ] || fail "epoch 1 exit code $EXIT_CODE"
alive "$P0" || fail "epoch 0 died with its child"
listen_ok "$PORT" || fail "epoch 0 stopped serving"
stop "$P0"
unset ENVOY_EMU_FAULT_EPOCH ENVOY_EMU_EXIT_CODE ENVOY_EMU_EXIT_AFTER ENVOY_EMU_NEVER_LIVE

note "bad values exit 1"
for kv in ENVOY_EMU_EXIT_AFTER=banana ENVOY_EMU_EXIT_CODE=256 ENVOY_EMU_EXIT_CODE=-1 \
	ENVOY_EMU_CRASH_SIGNAL=0 ENVOY_EMU_CRASH_SIGNAL=x ENVOY_EMU_INIT_DELAY=-1s \
	ENVOY_EMU_FAULT_EPOCH=one ENVOY_EMU_EXTRA_STATS=lots; do
	env "$kv" timeout 10 "$EMU" -c "$T/emu.json" --base-id "$BASE_ID" >"$T/out" 2>&1
	rc=$?
	[ "$rc" = 1 ] || fail "$kv: exit $rc: $(cat "$T/out")"
	grep -q "^envoy-emu: ${kv%%=*}" "$T/out" || fail "$kv: $(cat "$T/out")"
done
echo "faults ok"
