#!/usr/bin/env bash
# HTTPS application probes ("scheme": "HTTPS") against a real TLS server the
# test starts with a self-signed certificate, which the agent does not
# verify, as Istio's prober: pass, the app's code and body passed through
# (at most 10 KiB), a relative and an absolute https redirect followed, an
# http probe redirected to https, TLS to a plain HTTP server and a server
# that is down answer 500, and many probes at once.
. "$TOP/tests/lib.sh"

TLS_PORT=$(free_port)
PLAIN_PORT=$(free_port)

openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 \
	-keyout "$T/key.pem" -out "$T/cert.pem" >"$T/openssl.log" 2>&1 ||
	fail "openssl req: $(cat "$T/openssl.log")"

cat >"$T/app.py" <<'PY'
import http.server, ssl, sys, threading
tls_port, plain_port, cert, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
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
        if p == "/ok": self.reply(200, b"ok over tls\n")
        elif p == "/bad": self.reply(503, b"app says no\n")
        elif p == "/redir": self.reply(302, b"", [("Location", "/ok")])
        elif p == "/absolute": self.reply(302, b"", [("Location",
            "https://127.0.0.1:%d/ok" % tls_port)])
        elif p == "/to-https": self.reply(301, b"", [("Location",
            "https://127.0.0.1:%d/ok" % tls_port)])
        elif p == "/loop": self.reply(302, b"", [("Location", "/loop")])
        elif p == "/big": self.reply(500, b"x" * 20000)
        else: self.reply(404, b"no\n")
http.server.ThreadingHTTPServer.request_queue_size = 128
tls = http.server.ThreadingHTTPServer(("127.0.0.1", tls_port), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
plain = http.server.ThreadingHTTPServer(("127.0.0.1", plain_port), H)
threading.Thread(target=plain.serve_forever, daemon=True).start()
tls.serve_forever()
PY
spawn /usr/bin/python3 "$T/app.py" "$TLS_PORT" "$PLAIN_PORT" "$T/cert.pem" "$T/key.pem"
APP_PID=$LAST_PID
wait_until 5 curl -skf "https://127.0.0.1:$TLS_PORT/ok" || fail "TLS app server did not start"
wait_until 5 curl -sf "http://127.0.0.1:$PLAIN_PORT/ok" || fail "plain app server did not start"

probe() {	# probe PATH PORT SCHEME
	echo '"/app-health/'"$1"'": {"httpGet": {"path": "'"$2"'", "port": '"$3"', "scheme": "'"$4"'"}, "timeoutSeconds": 2}'
}
export INSTANCE_IP=127.0.0.1 ENVOY_EMU_ASSUME_XDS=1
export ISTIO_KUBE_APP_PROBERS="{
 $(probe ok/readyz /ok "$TLS_PORT" HTTPS),
 $(probe bad/readyz /bad "$TLS_PORT" HTTPS),
 $(probe redir/readyz /redir "$TLS_PORT" https),
 $(probe absolute/readyz /absolute "$TLS_PORT" HTTPS),
 $(probe loop/readyz /loop "$TLS_PORT" HTTPS),
 $(probe big/readyz /big "$TLS_PORT" HTTPS),
 $(probe upgrade/readyz /to-https "$PLAIN_PORT" HTTP),
 $(probe plain/readyz /ok "$PLAIN_PORT" HTTPS)
}"
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

expect 200 /app-health/ok/readyz "ok over tls"
expect 503 /app-health/bad/readyz "app says no"
expect 200 /app-health/redir/readyz "ok over tls"
expect 200 /app-health/absolute/readyz "ok over tls"
expect 200 /app-health/upgrade/readyz "ok over tls"
expect 500 /app-health/loop/readyz
log_has "stopped after 10 redirects" || fail "the redirect loop was not logged"
size=$(curl -s --max-time 5 -o "$T/big" -w '%{size_download}' \
	"http://127.0.0.1:$STATUS_PORT/app-health/big/readyz")
[ "$size" = 10240 ] || fail "/big: passed $size bytes of the body, want 10240"
expect 500 /app-health/plain/readyz
grep "request to probe app failed" "$T/agent.log" | grep -q "TLS: " ||
	fail "the TLS error to a plain server was not logged with its reason"
log_has "not supported" && fail "the agent still says HTTPS is not supported"

# Many HTTPS probes at once share the one TLS context and do not stall.
pids=()
for i in $(seq 1 20); do
	curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
		"http://127.0.0.1:$STATUS_PORT/app-health/ok/readyz" >"$T/many.$i.code" &
	pids+=($!)
done
wait "${pids[@]}"
for i in $(seq 1 20); do
	[ "$(cat "$T/many.$i.code")" = 200 ] || fail "concurrent probe $i: $(cat "$T/many.$i.code")"
done

# The application goes away: a transport error is 500.
kill -TERM "$APP_PID"
wait_exit "$APP_PID" 5 || fail "the app server did not stop"
expect 500 /app-health/ok/readyz
expect 500 /app-health/upgrade/readyz
wait_until 5 curl -sf "http://127.0.0.1:$STATUS_PORT/healthz/ready" || fail "agent stalled"
echo PASS
