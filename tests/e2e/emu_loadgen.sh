#!/usr/bin/env bash
# tests/tools/loadgen: usage errors exit 2; --count with and without
# keep-alive and threads; non-200 and refused connections count as failed;
# the idempotent retry on a reused connection closed by the server; the
# stop file and SIGTERM end a run with a report.
. "$TOP/tests/lib.sh"
. "$TOP/tests/envoy-emu/e2e.sh"

LG=$B/tools/loadgen
PORT=$(free_port)
emu_config "$T/emu.json" "health:$PORT"
emu_start 0
wait_emu_epoch 0
URL=http://127.0.0.1:$PORT/

# field FILE EXPR: a python expression over the report d.
field() {
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

note "usage"
for args in "" "--count 5" "--url ftp://x/ --count 1" "--url http://127.0.0.1:1/ --bogus" \
	"--url http://127.0.0.1:1/ --count x" "--url http://127.0.0.1:1/ --duration 5" \
	"--url http://127.0.0.1:1/ --count 1 --concurrency 0" "--url http://127.0.0.1:1/"; do
	# shellcheck disable=SC2086
	timeout 10 "$LG" $args >/dev/null 2>&1
	rc=$?
	[ "$rc" = 2 ] || fail "loadgen $args: exit $rc, not 2"
done

note "--count"
timeout 30 "$LG" --url "$URL" --count 200 >"$T/a.json" || fail "loadgen failed"
[ "$(field "$T/a.json" '(d["sent"], d["ok"], d["failed"], d["epochs"])')" = "(200, 200, 0, {'0': 200})" ] ||
	fail "count: $(cat "$T/a.json")"
cx0=$(stat_of "listener.127.0.0.1_$PORT.downstream_cx_total")
timeout 30 "$LG" --url "$URL" --count 1000 --keepalive --concurrency 4 >"$T/b.json" || fail "loadgen failed"
[ "$(field "$T/b.json" '(d["sent"], d["ok"], d["failed"])')" = "(1000, 1000, 0)" ] ||
	fail "keepalive: $(cat "$T/b.json")"
cx1=$(stat_of "listener.127.0.0.1_$PORT.downstream_cx_total")
[ $((cx1 - cx0)) = 4 ] || fail "keep-alive used $((cx1 - cx0)) connections, not 4"
field "$T/b.json" 'd["p50_us"] <= d["p90_us"] <= d["p99_us"] <= d["max_us"] and d["max_us"] > 0' |
	grep -q True || fail "percentiles: $(cat "$T/b.json")"

note "failures: status, refused"
timeout 30 "$LG" --url "http://127.0.0.1:$ADMIN/no/such/page" --count 5 >"$T/c.json"
[ "$(field "$T/c.json" '(d["sent"], d["ok"], d["failed"], d["errors"])')" = "(5, 0, 5, ['status 404'])" ] ||
	fail "404: $(cat "$T/c.json")"
timeout 30 "$LG" --url "http://127.0.0.1:$(free_port)/" --count 3 >"$T/d.json"
[ "$(field "$T/d.json" '(d["failed"], d["errors"])')" = "(3, ['connect: Connection refused'])" ] ||
	fail "refused: $(cat "$T/d.json")"

note "retry once on a reused connection closed before the response"
# A server that closes every connection after one response, without saying so.
SPORT=$(free_port)
python3 - "$SPORT" <<'PY' &
import socket, sys
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1]))); l.listen(64); l.settimeout(30)
while True:
    c, _ = l.accept()
    data = b""
    while b"\r\n\r\n" not in data:
        data += c.recv(4096)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nepoch=7\n")
    c.close()
PY
SERVER=$!
SPAWNED+=("$SERVER")
wait_until 5 sh -c "curl -s http://127.0.0.1:$SPORT/ | grep -q epoch=7" || fail "test server"
timeout 30 "$LG" --url "http://127.0.0.1:$SPORT/" --count 20 --keepalive >"$T/e.json"
[ "$(field "$T/e.json" '(d["sent"], d["ok"], d["failed"], d["retried"], d["epochs"])')" = "(20, 20, 0, 19, {'7': 20})" ] ||
	fail "retry: $(cat "$T/e.json")"

note "stop file and SIGTERM"
# served_more N: the stand-in accepted more than N connections since $cx,
# so without keep-alive the load sent more than N requests.
served_more() {
	[ $(($(stat_of "listener.127.0.0.1_$PORT.downstream_cx_total") - cx)) -gt "$1" ] 2>/dev/null
}
cx=$(stat_of "listener.127.0.0.1_$PORT.downstream_cx_total")
spawn "$LG" --url "$URL" --stop-file "$T/stop" >"$T/f.json"
L=$LAST_PID
wait_until 10 served_more 10 || fail "stop file: the load did not start"
touch "$T/stop"
wait_exit "$L" 5 || fail "stop file ignored"
[ "$EXIT_CODE" = 0 ] && [ "$(field "$T/f.json" 'd["failed"] == 0 and d["sent"] > 10')" = True ] ||
	fail "stop file: $EXIT_CODE $(cat "$T/f.json")"
cx=$(stat_of "listener.127.0.0.1_$PORT.downstream_cx_total")
spawn "$LG" --url "$URL" --duration 60s --concurrency 2 >"$T/g.json"
L=$LAST_PID
wait_until 10 served_more 10 || fail "SIGTERM: the load did not start"
kill -TERM "$L"
wait_exit "$L" 5 || fail "SIGTERM ignored"
[ "$EXIT_CODE" = 0 ] && [ "$(field "$T/g.json" 'd["sent"] > 10')" = True ] ||
	fail "SIGTERM: $EXIT_CODE $(cat "$T/g.json")"
t0=$SECONDS
timeout 30 "$LG" --url "$URL" --duration 1s >"$T/h.json"
[ $((SECONDS - t0)) -le 3 ] || fail "--duration 1s took $((SECONDS - t0))s"
echo "loadgen ok"
