#!/usr/bin/env bash
# Signals to the stand-in, as Envoy handles them: SIGHUP is eaten (logged),
# SIGUSR1 logged, SIGTERM and SIGINT end it with status 0.
. "$TOP/tests/lib.sh"
. "$TOP/tests/envoy-emu/e2e.sh"

PORT=$(free_port)
emu_config "$T/emu.json" "health:$PORT"

emu_start 0
P=$LAST_PID
wait_emu_epoch 0
kill -HUP "$P"
wait_until 5 grep -q "\[warning\]\[main\] caught and eating SIGHUP. See documentation for how to hot restart.$" \
	"$T/emu0.log" || fail "SIGHUP not logged: $(cat "$T/emu0.log")"
kill -USR1 "$P"
wait_until 5 grep -q "\[info\]\[main\] caught SIGUSR1. Reopening access logs.$" "$T/emu0.log" ||
	fail "SIGUSR1 not logged"
# Fixed time: a moment after the signals were handled, nothing may have changed.
sleep 0.2
alive "$P" && emu_live && listen_ok "$PORT" || fail "SIGHUP or SIGUSR1 disturbed it"
kill -TERM "$P"
wait_exit "$P" 5 || fail "SIGTERM: still running"
[ "$EXIT_CODE" = 0 ] || fail "SIGTERM: status $EXIT_CODE"
grep -q "\[warning\]\[main\] caught ENVOY_SIGTERM$" "$T/emu0.log" || fail "SIGTERM not logged"
grep -q "\]\[info\]\[main\] exiting$" "$T/emu0.log" || fail "no exiting line"

: >"$T/emu0.log"
emu_start 0
P=$LAST_PID
wait_emu_epoch 0
kill -INT "$P"
wait_exit "$P" 5 || fail "SIGINT: still running"
[ "$EXIT_CODE" = 0 ] || fail "SIGINT: status $EXIT_CODE"
grep -q "\[warning\]\[main\] caught SIGINT$" "$T/emu0.log" || fail "SIGINT not logged"

note "SIGTERM while initializing (listeners not accepting yet, as Envoy's)"
: >"$T/emu0.log"
ENVOY_EMU_NEVER_LIVE=1 emu_start 0
P=$LAST_PID
wait_until 5 ready_is INITIALIZING || fail "not initializing"
[ "$(http_code "http://127.0.0.1:$PORT/")" = 000 ] || fail "listener served while initializing"
kill -TERM "$P"
wait_exit "$P" 5 || fail "SIGTERM while initializing: still running"
[ "$EXIT_CODE" = 0 ] || fail "status $EXIT_CODE"

note "SIGTERM with a connection open"
: >"$T/emu0.log"
emu_start 0
P=$LAST_PID
wait_emu_epoch 0
python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"); s.recv(4096)
time.sleep(30)' "$PORT" &
HOLD=$!
SPAWNED+=("$HOLD")
wait_until 5 sh -c "[ \"\$(curl -s 'http://127.0.0.1:$ADMIN/stats?filter=^server.total_connections$')\" = 'server.total_connections: 1' ]" ||
	fail "connection not counted"
kill -TERM "$P"
wait_exit "$P" 5 || fail "SIGTERM with a connection open: still running"
[ "$EXIT_CODE" = 0 ] || fail "status $EXIT_CODE"
echo "signals ok"
