#!/usr/bin/env bash
# Hot restart edge cases of the stand-in: a child started while its parent
# is still initializing fails with Envoy's message and leaves the parent
# alone; a child without a parent exits 1 (or starts cold with
# --skip-hot-restart-on-no-parent); a parent that vanishes after the child
# took its sockets is logged and the child carries on; two epochs 0 with one
# base id collide; --disable-hot-restart uses no sockets.
. "$TOP/tests/lib.sh"
. "$TOP/tests/envoy-emu/e2e.sh"

PORT=$(free_port)
emu_config "$T/emu.json" "health:$PORT"
stop() {
	kill -TERM "$1"
	wait_exit "$1" 5 || fail "pid $1 did not stop"
	[ "$EXIT_CODE" = 0 ] || fail "pid $1 exit code $EXIT_CODE"
}

note "child while the parent is still initializing"
ENVOY_EMU_FAULT_EPOCH=0 ENVOY_EMU_INIT_DELAY=30s emu_start 0
P0=$LAST_PID
wait_until 5 ready_is INITIALIZING || fail "epoch 0: $(admin_get /ready)"
emu_start 1
P1=$LAST_PID
wait_exit "$P1" 10 || fail "epoch 1 did not give up"
[ "$EXIT_CODE" = 1 ] || fail "epoch 1 exit code $EXIT_CODE"
grep -qx "previous envoy process is still initializing" "$T/emu1.log" ||
	fail "no Envoy message: $(cat "$T/emu1.log")"
alive "$P0" || fail "the parent died"
[ "$(admin_get /ready)" = INITIALIZING ] || fail "parent admin gone: $(admin_get /ready)"
# Not accepting before LIVE, as Envoy, but its socket still bound.
python3 -c '
import socket, sys
try:
    socket.socket().bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)' "$PORT" || fail "parent listener gone"
stop "$P0"

note "the same with ENVOY_EMU_NEVER_LIVE"
ENVOY_EMU_FAULT_EPOCH=0 ENVOY_EMU_NEVER_LIVE=1 emu_start 0
P0=$LAST_PID
wait_until 5 ready_is INITIALIZING || fail "epoch 0: $(admin_get /ready)"
emu_run 10 -c "$T/emu.json" --base-id "$BASE_ID" --restart-epoch 1
[ "$RC" = 1 ] && [[ $OUT == *"previous envoy process is still initializing"* ]] ||
	fail "epoch 1: $RC $OUT"
stop "$P0"

note "no parent: exit 1"
emu_run 10 -c "$T/emu.json" --base-id "$BASE_ID" --restart-epoch 1
[ "$RC" = 1 ] || fail "orphan epoch 1 exit code $RC: $OUT"
[[ $OUT == *"unable to connect to parent: hot restart failed"* ]] || fail "message: $OUT"
[[ $OUT == *"hot restart sendmsg() connection refused, retrying"* ]] || fail "no retries: $OUT"
[ "$(http_code "http://127.0.0.1:$ADMIN/ready")" = 000 ] || fail "admin bound by a failed child"

note "no parent, --skip-hot-restart-on-no-parent: cold start"
: >"$T/emu5.log"
emu_start 5 --skip-hot-restart-on-no-parent
P5=$LAST_PID
wait_emu_epoch 5
grep -q "falling back to regular restart" "$T/emu5.log" || fail "no fallback warning"
[ "$(curl -s --max-time 5 "http://127.0.0.1:$PORT/")" = "epoch=5 pid=$P5 listener=health" ] ||
	fail "cold child not serving"
stop "$P5"

note "a parent that does not answer (stopped): the child gives up after 5s"
emu_start 0
P0=$LAST_PID
wait_emu_epoch 0
kill -STOP "$P0"
t0=$SECONDS
closed0=$(grep -c "shutting down admin due to child startup" "$T/emu0.log")
emu_run 20 -c "$T/emu.json" --base-id "$BASE_ID" --restart-epoch 1
kill -CONT "$P0"
[ "$RC" = 1 ] && [[ $OUT == *"hot restart failed: parent envoy (epoch 0) did not answer"* ]] ||
	fail "stopped parent: $RC $OUT"
[ $((SECONDS - t0)) -le 8 ] || fail "gave up after $((SECONDS - t0))s"
# Resumed, the parent acts on the request that waited for it (it closes its
# admin, not knowing that the child gave up); after that it must still serve.
admin_closed() {
	[ "$(grep -c "shutting down admin due to child startup" "$T/emu0.log")" -gt "$closed0" ]
}
wait_until 5 admin_closed || fail "the resumed parent did not act on the child's request"
alive "$P0" && listen_ok "$PORT" || fail "the stopped parent did not resume serving"
stop "$P0"

note "the parent vanishes after the child took its sockets"
emu_start 0
P0=$LAST_PID
wait_emu_epoch 0
ENVOY_EMU_FAULT_EPOCH=1 ENVOY_EMU_INIT_DELAY=1s emu_start 1 --parent-shutdown-time-s 1
P1=$LAST_PID
wait_until 5 grep -q "took over listen socket" "$T/emu1.log" || fail "no takeover"
kill -KILL "$P0"
wait_exit "$P0" 5 || fail "parent did not die"
wait_emu_epoch 1
grep -q "parent (epoch 0) has vanished" "$T/emu1.log" ||
	fail "vanished parent not logged: $(cat "$T/emu1.log")"
[ "$(curl -s --max-time 5 "http://127.0.0.1:$PORT/")" = "epoch=1 pid=$P1 listener=health" ] ||
	fail "child not serving"
# Fixed time: the child must outlive its 1 s parent shutdown time.
sleep 1.5
alive "$P1" && epoch_live 1 || fail "child gone after its parent shutdown time"
listen_ok "$PORT" || fail "child stopped serving"

note "a listener the parent does not have: the child binds it"
PORT2=$(free_port)
emu_config "$T/emu2.json" "health:$PORT" "extra:$PORT2"
EMU_JSON=$T/emu2.json emu_start 2 --parent-shutdown-time-s 1
P2=$LAST_PID
wait_emu_epoch 2
grep -q "took over listen socket 127.0.0.1:$PORT\$" "$T/emu2.log" || fail "no takeover of $PORT"
grep -q "took over listen socket 127.0.0.1:$PORT2" "$T/emu2.log" && fail "took over a socket nobody had"
listen_ok "$PORT2" || fail "new listener not bound"
wait_exit "$P1" 5 || fail "epoch 1 not terminated"
[ "$EXIT_CODE" = 0 ] || fail "epoch 1 exit code $EXIT_CODE"
stop "$P2"

note "two epochs 0 with one base id"
emu_start 0
P0=$LAST_PID
wait_emu_epoch 0
emu_run 10 -c "$T/emu.json" --base-id "$BASE_ID"
[ "$RC" = 1 ] && [[ $OUT == *"unable to bind domain socket with base_id=$((BASE_ID * 10)), id=0, errno=98 (see --base-id option)"* ]] ||
	fail "collision: $RC $OUT"
stop "$P0"

note "--disable-hot-restart: no sockets, no parent"
emu_start 0 --disable-hot-restart
P0=$LAST_PID
wait_emu_epoch 0
admin_get /server_info | grep -q '"hot_restart_version": "disabled"' || fail "hot_restart_version"
grep -q "@envoy_domain_socket_parent_$((BASE_ID * 10))" /proc/net/unix && fail "socket bound"
emu_run 5 -c "$T/emu.json" --base-id "$BASE_ID"
[ "$RC" = 1 ] && [[ $OUT == *"cannot bind"* ]] || fail "second epoch 0: $RC $OUT"
stop "$P0"
echo "hot restart edge cases ok"
