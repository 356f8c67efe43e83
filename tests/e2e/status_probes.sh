#!/usr/bin/env bash
# The application probes of ISTIO_KUBE_APP_PROBERS through the status port,
# against real servers the test starts: HTTP (pass, fail with the app's code
# and body, a redirect followed, custom headers, a timeout), TCP (open and
# closed port) and gRPC health (SERVING, NOT_SERVING, unknown service, no
# server); an unknown probe path is 400 with Istio's message.
. "$TOP/tests/lib.sh"

APP_PORT=$(free_port)
GRPC_PORT=$(free_port)
CLOSED_PORT=$(free_port)

cat >"$T/app.py" <<'PY'
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def reply(self, code, body, headers=()):
        self.send_response(code)
        for k, v in headers: self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        p = self.path
        if p == "/ok": self.reply(200, b"ok\n")
        elif p == "/fail": self.reply(503, b"app says no\n")
        elif p == "/big": self.reply(503, b"HEAD" + b"x" * 60000 + b"TAIL")
        elif p == "/redirect": self.reply(302, b"", [("Location", "/ok")])
        elif p == "/echo": self.reply(200, ("custom=%s agent=%s host=%s\n" % (
            self.headers.get("X-Custom"), self.headers.get("User-Agent"),
            self.headers.get("Host"))).encode())
        elif p == "/slow":
            time.sleep(3)
            try: self.reply(200, b"late\n")
            except OSError: pass
        else: self.reply(404, b"no\n")
http.server.ThreadingHTTPServer.request_queue_size = 128
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
spawn python3 "$T/app.py" "$APP_PORT"
spawn "$B/tools/grpc_health" "$GRPC_PORT" "=1" "bad=2" 2>"$T/grpc.log"
wait_until 5 curl -sf "http://127.0.0.1:$APP_PORT/ok" || fail "app server did not start"

export INSTANCE_IP=127.0.0.1 ENVOY_EMU_ASSUME_XDS=1
export ISTIO_KUBE_APP_PROBERS='{
 "/app-health/web/livez": {"httpGet": {"path": "/ok", "port": '$APP_PORT'}, "timeoutSeconds": 1},
 "/app-health/web/readyz": {"httpGet": {"path": "/fail", "port": '$APP_PORT'}, "timeoutSeconds": 1},
 "/app-health/big/readyz": {"httpGet": {"path": "/big", "port": '$APP_PORT'}, "timeoutSeconds": 1},
 "/app-health/web/startupz": {"httpGet": {"path": "redirect", "port": '$APP_PORT', "scheme": "HTTP"}},
 "/app-health/echo/livez": {"httpGet": {"path": "/echo", "port": '$APP_PORT',
     "httpHeaders": [{"name": "X-Custom", "value": "v1"}]}},
 "/app-health/slow/livez": {"httpGet": {"path": "/slow", "port": '$APP_PORT'}, "timeoutSeconds": 1},
 "/app-health/db/livez": {"tcpSocket": {"port": '$APP_PORT'}},
 "/app-health/db/readyz": {"tcpSocket": {"port": '$CLOSED_PORT'}},
 "/app-health/grpc/livez": {"grpc": {"port": '$GRPC_PORT'}, "timeoutSeconds": 2},
 "/app-health/grpc/readyz": {"grpc": {"port": '$GRPC_PORT', "service": "bad"}, "timeoutSeconds": 2},
 "/app-health/grpc/startupz": {"grpc": {"port": '$GRPC_PORT', "service": "nope"}, "timeoutSeconds": 2},
 "/app-health/nogrpc/livez": {"grpc": {"port": '$CLOSED_PORT'}, "timeoutSeconds": 1},
 "/app-lifecycle/web/prestopz": {"httpGet": {"path": "/ok", "port": '$APP_PORT'}}
}'
start_agent
wait_until 20 curl -sf "http://127.0.0.1:$STATUS_PORT/healthz/ready" ||
	fail "agent not ready: $(tail "$T/agent.log")"

expect() {	# expect CODE PATH [BODY-SUBSTRING]
	local out code
	out=$(curl -s --max-time 5 -A kube-probe/1.29 -w '\n%{http_code}' \
		"http://127.0.0.1:$STATUS_PORT$2")
	code=${out##*$'\n'}
	[ "$code" = "$1" ] || fail "$2: got $code, want $1 (body: ${out%$'\n'*})"
	if [ -n "${3:-}" ]; then
		case $out in *"$3"*) ;; *) fail "$2: body lacks \"$3\": $out" ;; esac
	fi
	note "$2 -> $code"
}

expect 200 /app-health/web/livez "ok"
expect 503 /app-health/web/readyz "app says no"
expect 200 /app-health/web/startupz "ok"
# A body past 10 KiB: the first 10 KiB are passed through, not the last.
code=$(curl -s -o "$T/big" -w '%{http_code}' --max-time 5 "http://127.0.0.1:$STATUS_PORT/app-health/big/readyz")
[ "$code" = 503 ] || fail "big body probe: $code"
[ "$(head -c 4 "$T/big")" = HEAD ] || fail "big body does not start with the app's first bytes: $(head -c 20 "$T/big")"
[ "$(stat -c %s "$T/big")" = 10240 ] || fail "big body is $(stat -c %s "$T/big") bytes, want 10240"
! grep -q TAIL "$T/big" || fail "big body kept the app's last bytes"
note "/app-health/big/readyz -> first 10 KiB"
expect 200 /app-health/echo/livez "custom=v1 agent=kube-probe/1.29 host=127.0.0.1:$APP_PORT"
start=$(date +%s%N)
expect 500 /app-health/slow/livez
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$elapsed" -lt 2500 ] || fail "the 1s probe timeout took ${elapsed}ms"
expect 200 /app-health/db/livez
expect 500 /app-health/db/readyz
expect 200 /app-health/grpc/livez
expect 500 /app-health/grpc/readyz
expect 500 /app-health/grpc/startupz
expect 500 /app-health/nogrpc/livez
expect 200 /app-lifecycle/web/prestopz
expect 400 /app-health/other/livez "app prober config does not exists for /app-health/other/livez"
grep -q "service unhealthy (responded with \"NOT_SERVING\")" "$T/agent.log" ||
	fail "NOT_SERVING not logged"

# Many probes at once do not stall each other or the agent.
pids=()
for i in $(seq 1 20); do
	curl -s -o "$T/many.$i" -w '%{http_code}' --max-time 5 \
		"http://127.0.0.1:$STATUS_PORT/app-health/web/livez" >"$T/many.$i.code" &
	pids+=($!)
done
wait_until 5 curl -sf "http://127.0.0.1:$STATUS_PORT/healthz/ready" || fail "agent stalled"
wait "${pids[@]}"
for i in $(seq 1 20); do
	[ "$(cat "$T/many.$i.code")" = 200 ] || fail "concurrent probe $i: $(cat "$T/many.$i.code")"
done
echo PASS
