#!/usr/bin/env bash
# Hot restart of the stand-in, epoch 0 -> 1 -> 2, under load with and
# without keep-alive: no failed request, every epoch answers, the old epochs
# exit 0 when their parent shutdown time is up, never more than 3 processes.
. "$TOP/tests/lib.sh"
. "$TOP/tests/envoy-emu/e2e.sh"

PORT=$(free_port)
emu_config "$T/emu.json" "health:$PORT"
FLAGS=(--drain-time-s 1 --parent-shutdown-time-s 2 --concurrency 2)

# Each epoch's start lies between the two clock readings around it
# (whole seconds, as the stand-in counts its uptimes).
declare -a before after
before[0]=$(date +%s)
emu_start 0 "${FLAGS[@]}"
wait_emu_epoch 0
after[0]=$(date +%s)
monitor_procs "$T/maxprocs"
spawn "$B/tools/loadgen" --url "http://127.0.0.1:$PORT/" --keepalive --concurrency 4 \
	--stop-file "$T/stop" --duration 60s >"$T/keep.json"
LOAD1=$LAST_PID
spawn "$B/tools/loadgen" --url "http://127.0.0.1:$PORT/" --concurrency 2 \
	--stop-file "$T/stop" --duration 60s >"$T/new.json"
LOAD2=$LAST_PID
# Fixed time, pacing the load: epoch 0 serves it a while before the restart.
sleep 0.5

for e in 1 2; do
	before[e]=$(date +%s)
	emu_start "$e" "${FLAGS[@]}"
	wait_emu_epoch "$e"
	after[e]=$(date +%s)
	grep -q "took over listen socket 127.0.0.1:$PORT" "$T/emu$e.log" ||
		fail "epoch $e bound its own socket: $(cat "$T/emu$e.log")"
	grep -q "shutting down admin due to child startup" "$T/emu$((e - 1)).log" ||
		fail "epoch $((e - 1)) kept its admin"
	# Fixed time, pacing: epoch e serves and e-1 drains under load a while.
	sleep 1
done
for e in 0 1; do
	wait_exit "${EMU_PIDS[$e]}" 10 || fail "epoch $e still running"
	[ "$EXIT_CODE" = 0 ] || fail "epoch $e exit code $EXIT_CODE"
	grep -q "shutting down due to child request" "$T/emu$e.log" ||
		fail "epoch $e not terminated by its child: $(tail -5 "$T/emu$e.log")"
done
# Fixed time, pacing: the load runs on epoch 2 alone a while before it stops.
sleep 0.5
touch "$T/stop"
wait_exit "$LOAD1" 20 || fail "loadgen did not stop"
wait_exit "$LOAD2" 20 || fail "loadgen did not stop"
check_load "$T/keep.json" 0 1 2
check_load "$T/new.json" 0 1 2
max=$(cat "$T/maxprocs" 2>/dev/null || echo 0)
[ "$max" -le 3 ] && [ "$max" -ge 2 ] || fail "process count peaked at $max: $(cat "$T/maxprocs.pids")"

# Both uptimes are read at one moment between q0 and q1: the current one
# counts from epoch 2's start, the total from epoch 0's, carried over through
# the hot restarts, so they differ by the time between those two starts.
q0=$(date +%s)
info=$(admin_get /server_info)
q1=$(date +%s)
python3 -c '
import json, sys
q0, q1, b0, a0, b2, a2 = map(int, sys.argv[1:7])
d = json.loads(sys.argv[7])
cur, all_ = int(d["uptime_current_epoch"][:-1]), int(d["uptime_all_epochs"][:-1])
assert d["command_line_options"]["restart_epoch"] == 2
assert q0 - a2 <= cur <= q1 - b2, ("current", cur, q0 - a2, q1 - b2)
assert b2 - a0 <= all_ - cur <= a2 - b0, ("all - current", all_ - cur, b2 - a0, a2 - b0)
' "$q0" "$q1" "${before[0]}" "${after[0]}" "${before[2]}" "${after[2]}" "$info" ||
	fail "uptime_all_epochs not carried over: $(grep -o '"uptime[^,]*' <<<"$info")"
[ "$(stat_of server.hot_restart_epoch)" = 2 ] || fail "server.hot_restart_epoch"
kill -TERM "${EMU_PIDS[2]}"
wait_exit "${EMU_PIDS[2]}" 5 || fail "epoch 2 did not stop"
[ "$EXIT_CODE" = 0 ] || fail "epoch 2 exit code $EXIT_CODE"
echo "hot restart ok (max $max processes)"
