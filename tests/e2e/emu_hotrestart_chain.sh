#!/usr/bin/env bash
# Hot restart 0 -> 1 -> 2 -> 3 with a long parent shutdown time: starting
# epoch N makes N-1 terminate N-2, so never more than 3 processes, each
# terminated epoch exits 0, and the load sees no failure. Drain strategy
# immediate: the draining parent closes each kept-alive connection after
# its next response.
. "$TOP/tests/lib.sh"
. "$TOP/tests/envoy-emu/e2e.sh"

PORT=$(free_port)
emu_config "$T/emu.json" "health:$PORT"
FLAGS=(--drain-time-s 30 --parent-shutdown-time-s 60 --drain-strategy immediate)

emu_start 0 "${FLAGS[@]}"
wait_emu_epoch 0
monitor_procs "$T/maxprocs"
spawn "$B/tools/loadgen" --url "http://127.0.0.1:$PORT/" --keepalive --concurrency 4 \
	--stop-file "$T/stop" --duration 60s >"$T/keep.json"
LOAD1=$LAST_PID
spawn "$B/tools/loadgen" --url "http://127.0.0.1:$PORT/" --concurrency 2 \
	--stop-file "$T/stop" --duration 60s >"$T/new.json"
LOAD2=$LAST_PID
# Fixed time, pacing the load: epoch 0 serves it a while before the restart.
sleep 0.5

for e in 1 2 3; do
	emu_start "$e" "${FLAGS[@]}"
	wait_emu_epoch "$e"
	if [ "$e" -ge 2 ]; then
		old=$((e - 2))
		wait_exit "${EMU_PIDS[$old]}" 5 || fail "epoch $old not terminated when $e started"
		[ "$EXIT_CODE" = 0 ] || fail "epoch $old exit code $EXIT_CODE"
		grep -q "terminating parent process" "$T/emu$((e - 1)).log" ||
			fail "epoch $((e - 1)) did not terminate its parent"
	fi
	alive "${EMU_PIDS[$((e - 1))]}" || fail "epoch $((e - 1)) exited early"
	[ "$(emu_procs)" -le 3 ] || fail "$(emu_procs) processes"
	# Fixed time, pacing: each epoch serves the load a while before the next.
	sleep 0.7
done
touch "$T/stop"
wait_exit "$LOAD1" 20 || fail "loadgen did not stop"
wait_exit "$LOAD2" 20 || fail "loadgen did not stop"
check_load "$T/keep.json" 0 1 2 3
check_load "$T/new.json" 0 1 2 3
max=$(cat "$T/maxprocs" 2>/dev/null || echo 0)
[ "$max" -le 3 ] && [ "$max" -ge 2 ] || fail "process count peaked at $max: $(cat "$T/maxprocs.pids")"

# The draining epoch 2 ends by SIGTERM as well as by its child.
for e in 2 3; do
	kill -TERM "${EMU_PIDS[$e]}"
	wait_exit "${EMU_PIDS[$e]}" 5 || fail "epoch $e did not stop"
	[ "$EXIT_CODE" = 0 ] || fail "epoch $e exit code $EXIT_CODE"
done
echo "hot restart chain ok (max $max processes)"
