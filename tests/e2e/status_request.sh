#!/usr/bin/env bash
# "pilot-agent request" and "pilot-agent wait": request prints the admin
# API's answer and exits 0 for 2xx, 1 otherwise, 2 for a usage error;
# --debug-port reaches the status port; an answer whose body is cut off is
# reported as such, with its status. wait exits 1 on timeout, saying what
# the last try got (a try under way at the deadline included), and 0 at
# once against a ready agent; its flags take Go's int range.
. "$TOP/tests/lib.sh"

export ENVOY_EMU_ASSUME_XDS=1
start_agent
wait_until 20 curl -sf "http://127.0.0.1:$STATUS_PORT/healthz/ready" ||
	fail "agent not ready: $(tail "$T/agent.log")"

note "request"
"$AGENT" request GET server_info --debug-port "$ADMIN_PORT" >"$T/out" 2>"$T/err" ||
	fail "request GET server_info: $(cat "$T/err")"
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["state"] == "LIVE"' "$T/out" ||
	fail "server_info output: $(head -c 300 "$T/out")"
"$AGENT" request GET "/stats?filter=server.state" --debug-port="$ADMIN_PORT" >"$T/out" ||
	fail "request with a leading slash and a query"
grep -q "server.state: 0" "$T/out" || fail "stats output: $(cat "$T/out")"
"$AGENT" request GET no/such/path --debug-port "$ADMIN_PORT" >"$T/out" 2>"$T/err"
[ $? = 1 ] || fail "404 did not exit 1"
grep -q "unsuccessful status code 404" "$T/err" || fail "404 not reported: $(cat "$T/err")"
"$AGENT" request GET healthz/ready --debug-port "$STATUS_PORT" || fail "request to the status port"
"$AGENT" request GET debug/epochs --debug-port "$STATUS_PORT" | grep -q '"live_epoch": 0' ||
	fail "request debug/epochs"
"$AGENT" request POST healthcheck/fail --debug-port "$ADMIN_PORT" >/dev/null ||
	fail "request POST"
"$AGENT" request POST healthcheck/ok "" --debug-port "$ADMIN_PORT" >/dev/null ||
	fail "request POST with a body"
"$AGENT" request GET server_info --debug-port "$(free_port)" 2>"$T/err"
[ $? = 1 ] || fail "no server did not exit 1"
"$AGENT" request FROB x 2>/dev/null
[ $? = 2 ] || fail "a bad method is not a usage error"
"$AGENT" request GET 2>/dev/null
[ $? = 2 ] || fail "a missing path is not a usage error"

# A server that answers 200 with a 20 MB length, sends 1 MB, and closes;
# and one that accepts connections and never answers.
CUT_PORT=$(free_port)
SILENT_PORT=$(free_port)
cat >"$T/servers.py" <<'PY'
import socket, sys, threading, time
def cut(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port)); s.listen(16)
    while True:
        c, _ = s.accept()
        c.recv(65536)
        try:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 20971520\r\n\r\n" + b"x" * 1048576)
        except OSError:
            pass
        c.close()
def silent(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port)); s.listen(16)
    held = []
    while True:
        c, _ = s.accept()
        held.append(c)
threading.Thread(target=cut, args=(int(sys.argv[1]),), daemon=True).start()
threading.Thread(target=silent, args=(int(sys.argv[2]),), daemon=True).start()
open(sys.argv[3], "w").write("up\n")
time.sleep(120)
PY
spawn python3 "$T/servers.py" "$CUT_PORT" "$SILENT_PORT" "$T/servers.up"
wait_until 5 test -f "$T/servers.up" || fail "test servers did not start"
"$AGENT" request GET big --debug-port "$CUT_PORT" >"$T/out" 2>"$T/err"
[ $? = 1 ] || fail "a cut-off body did not exit 1"
grep -q "status code 200, but the body was cut off after [0-9]* of 20971520 bytes" "$T/err" ||
	fail "a cut-off body is not reported as such: $(cat "$T/err")"

note "wait"
"$AGENT" wait --url "http://127.0.0.1:$STATUS_PORT/healthz/ready" --periodMillis 50 \
	2>"$T/err" || fail "wait on a ready agent: $(cat "$T/err")"
# An IPv6 literal in the URL (the status port listens on :: where the host
# has IPv6).
if curl -sf --max-time 2 "http://[::1]:$STATUS_PORT/healthz/ready" >/dev/null 2>&1; then
	"$AGENT" wait --url "http://[::1]:$STATUS_PORT/healthz/ready" --periodMillis 50 \
		--timeoutSeconds 3 2>"$T/err" || fail "wait on [::1]: $(cat "$T/err")"
	note "wait on [::1]"
fi
start=$(date +%s%N)
"$AGENT" wait --url "http://127.0.0.1:$ADMIN_PORT/nope" --timeoutSeconds 1 \
	--periodMillis 100 2>"$T/err"
rc=$?
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$rc" = 1 ] || fail "wait on a 404 exited $rc"
[ "$elapsed" -lt 3000 ] || fail "wait --timeoutSeconds 1 took ${elapsed}ms"
grep -q "timeout waiting for Envoy proxy to become ready. Last error: HTTP status code 404" "$T/err" ||
	fail "wait did not say why: $(cat "$T/err")"
"$AGENT" wait --url "http://127.0.0.1:$(free_port)/healthz/ready" --timeoutSeconds 1 \
	--periodMillis 100 --requestTimeoutMillis 100 2>"$T/err"
[ $? = 1 ] || fail "wait on nothing did not exit 1"
grep -q "Last error: Get \"http://127.0.0.1:[0-9]*/healthz/ready\": cannot connect" "$T/err" ||
	fail "wait on nothing did not say why: $(cat "$T/err")"

note "wait: a try under way at the deadline"
# The one try starts at 500ms and times out at 1300ms, after the deadline:
# its timeout is the last error, not "no attempt made".
"$AGENT" wait --url "http://127.0.0.1:$SILENT_PORT/healthz/ready" --timeoutSeconds 1 \
	--periodMillis 500 --requestTimeoutMillis 800 2>"$T/err"
[ $? = 1 ] || fail "wait on a silent server did not exit 1"
grep -q "Last error: Get \"http://127.0.0.1:$SILENT_PORT/healthz/ready\": no answer within 800 ms" "$T/err" ||
	fail "wait did not name the last try's timeout: $(cat "$T/err")"

note "wait: Go's int range"
"$AGENT" wait --timeoutSeconds x 2>/dev/null
[ $? = 2 ] || fail "a bad flag value is not a usage error"
for v in 2147483648 9223372036854775807; do
	"$AGENT" wait --url "http://127.0.0.1:$STATUS_PORT/healthz/ready" --periodMillis 50 \
		--timeoutSeconds "$v" 2>"$T/err" || fail "--timeoutSeconds $v refused: $(cat "$T/err")"
	grep -q "timeout: $v seconds" "$T/err" || fail "--timeoutSeconds $v: $(cat "$T/err")"
done
"$AGENT" wait --timeoutSeconds 9223372036854775808 2>"$T/err"
[ $? = 2 ] || fail "--timeoutSeconds past Go's int is not a usage error"
grep -q 'invalid argument "9223372036854775808" for "--timeoutSeconds" flag: not an integer from -9223372036854775808 to 9223372036854775807' "$T/err" ||
	fail "--timeoutSeconds out of range: $(cat "$T/err")"
# Huge periods and request limits do not overflow into "at once".
start=$(date +%s%N)
"$AGENT" wait --url "http://127.0.0.1:$STATUS_PORT/healthz/ready" --timeoutSeconds 1 \
	--periodMillis 9223372036854775807 --requestTimeoutMillis 9223372036854775807 2>"$T/err"
rc=$?
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$rc" = 1 ] && [ "$elapsed" -ge 900 ] ||
	fail "--periodMillis 9223372036854775807: exit $rc after ${elapsed}ms: $(cat "$T/err")"
grep -q "Last error: no attempt made" "$T/err" || fail "huge period: $(cat "$T/err")"
echo PASS
