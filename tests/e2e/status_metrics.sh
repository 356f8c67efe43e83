#!/usr/bin/env bash
# The merged metrics: on the status port the agent's, then the proxy's, then
# the application's (ISTIO_PROMETHEUS_ANNOTATIONS), in text 0.0.4 or the
# application's OpenMetrics; on the Prometheus port the agent's and the
# proxy's. promtool parses both; a large proxy page arrives whole; the
# application or the proxy down is left out and counted; while no epoch is
# live the agent's metrics are still served.
. "$TOP/tests/lib.sh"

APP_PORT=$(free_port)
cat >"$T/app.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path != "/app/metrics":
            self.send_response(404); self.end_headers(); return
        if "application/openmetrics-text" in self.headers.get("Accept", ""):
            body = (b"# HELP app_requests Requests served.\n# TYPE app_requests counter\n"
                    b"app_requests_total 42\n# EOF\n")
            ctype = "application/openmetrics-text; version=1.0.0; charset=utf-8"
        else:
            body = (b"# HELP app_requests_total Requests served.\n"
                    b"# TYPE app_requests_total counter\napp_requests_total 42\n")
            ctype = "text/plain; version=0.0.4; charset=utf-8"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer.request_queue_size = 128
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
spawn python3 "$T/app.py" "$APP_PORT"
APP_PID=$LAST_PID
wait_until 5 curl -sf "http://127.0.0.1:$APP_PORT/app/metrics" || fail "app server did not start"

export ENVOY_EMU_ASSUME_XDS=1 ENVOY_EMU_EXTRA_STATS=20000
export ISTIO_PROMETHEUS_ANNOTATIONS='{"scrape":"true","path":"/app/metrics","port":"'$APP_PORT'"}'
start_agent
wait_until 20 curl -sf "http://127.0.0.1:$STATUS_PORT/healthz/ready" ||
	fail "agent not ready: $(tail "$T/agent.log")"

# promtool: every line parses (exit 1 is a parse error; 3 is only lint,
# which the proxy's own names get), and the status server's own families
# are lint-clean.
promcheck() {	# promcheck FILE
	local rc out
	out=$(promtool check metrics <"$1" 2>&1)
	rc=$?
	[ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "promtool ($rc) on $1: $out"
	if echo "$out" | grep -E '^istio_agent_(scrape|process_|ready_)'; then
		fail "promtool lint on the agent's own metrics"
	fi
	echo "$out" | grep '^istio_agent_' >&2 || true
}

note "status port: agent, proxy, application"
curl -s -D "$T/h1" -o "$T/m1" "http://127.0.0.1:$STATUS_PORT/stats/prometheus" ||
	fail "scrape failed"
grep -qi '^content-type: text/plain; version=0.0.4; charset=utf-8' "$T/h1" ||
	fail "content type: $(cat "$T/h1")"
promcheck "$T/m1"
a=$(grep -n '^istio_agent_scrapes_total' "$T/m1" | head -1 | cut -d: -f1)
e=$(grep -n '^envoy_' "$T/m1" | head -1 | cut -d: -f1)
p=$(grep -n '^app_requests_total 42' "$T/m1" | head -1 | cut -d: -f1)
[ -n "$a" ] && [ -n "$e" ] && [ -n "$p" ] && [ "$a" -lt "$e" ] && [ "$e" -lt "$p" ] ||
	fail "order: agent line $a, envoy line $e, app line $p"
grep -q '^istio_agent_process_resident_memory_bytes [0-9]' "$T/m1" || fail "no RSS"
grep -q '^istio_agent_process_cpu_seconds_total [0-9]' "$T/m1" || fail "no CPU"
grep -q '^istio_agent_process_open_fds [0-9]' "$T/m1" || fail "no fds"
grep -q '^istio_agent_proxy_epoch 0' "$T/m1" || fail "no epoch (supervisor)"
[ "$(tail -c 1 "$T/m1" | od -An -c | tr -d ' ')" = '\n' ] || fail "last line cut"
direct=$(curl -s "http://127.0.0.1:$ADMIN_PORT/stats/prometheus" | grep -c '^envoy_cluster_')
merged=$(grep -c '^envoy_cluster_' "$T/m1")
[ "$direct" -ge 20000 ] && [ "$direct" = "$merged" ] ||
	fail "proxy series: $merged merged, $direct direct"
curl -s -o "$T/m1b" "http://127.0.0.1:$STATUS_PORT/metrics"
grep -q '^app_requests_total 42' "$T/m1b" || fail "/metrics lacks the app"

note "OpenMetrics from the application is passed through"
curl -s -D "$T/h2" -o "$T/m2" -H 'Accept: application/openmetrics-text; version=1.0.0' \
	"http://127.0.0.1:$STATUS_PORT/stats/prometheus"
grep -qi '^content-type: application/openmetrics-text; version=1.0.0' "$T/h2" ||
	fail "content type: $(cat "$T/h2")"
[ "$(tail -n 1 "$T/m2")" = "# EOF" ] || fail "OpenMetrics page does not end in # EOF"

note "Prometheus port: agent and proxy"
curl -s -D "$T/h3" -o "$T/m3" "http://127.0.0.1:$PROM_PORT/stats/prometheus"
promcheck "$T/m3"
grep -q '^istio_agent_scrapes_total' "$T/m3" || fail "15090 lacks the agent"
grep -q '^envoy_' "$T/m3" || fail "15090 lacks the proxy"
! grep -q '^app_requests' "$T/m3" || fail "15090 has the application"
[ "$(http_code "http://127.0.0.1:$PROM_PORT/healthz/ready")" = 404 ] || fail "15090 serves more"

note "the application down"
kill "$APP_PID"
wait_until 5 sh -c "! curl -s http://127.0.0.1:$APP_PORT/ >/dev/null"
curl -s -o "$T/m4" "http://127.0.0.1:$STATUS_PORT/stats/prometheus"
grep -q '^istio_agent_scrape_failures_total{type="application"} 1' "$T/m4" ||
	fail "application failure not counted: $(grep failures "$T/m4")"
grep -q '^envoy_' "$T/m4" || fail "proxy part missing with the app down"
promcheck "$T/m4"
log_has "failed scraping application metrics" || fail "app failure not logged"

note "no live epoch: the agent's metrics still served, the proxy's counted"
ADMIN_PORT= STATUS_PORT= PROM_PORT= HEALTH_PORT=
AGENT_LOG1=$T/agent.log
ENVOY_EMU_EXIT_CODE=1 start_agent --restartInitialInterval 30s
wait_until 10 sh -c "curl -s http://127.0.0.1:$STATUS_PORT/healthz/ready | grep -q 'proxy restart in'" ||
	fail "readiness: $(curl -s "http://127.0.0.1:$STATUS_PORT/healthz/ready")"
# The first scrape's failure shows in the next one.
curl -s -o /dev/null "http://127.0.0.1:$PROM_PORT/stats/prometheus"
curl -s -o "$T/m5" -w '%{http_code}' "http://127.0.0.1:$PROM_PORT/stats/prometheus" >"$T/c5"
[ "$(cat "$T/c5")" = 200 ] || fail "15090 without a proxy: $(cat "$T/c5")"
grep -q '^istio_agent_scrape_failures_total{type="envoy"} [1-9]' "$T/m5" ||
	fail "proxy failure not counted: $(grep failures "$T/m5")"
grep -q '^istio_agent_proxy_epoch -1' "$T/m5" || fail "epoch not -1"
! grep -q '^envoy_' "$T/m5" || fail "proxy lines without a proxy"
promcheck "$T/m5"
echo PASS
