#!/usr/bin/env bash
# The merged metrics against misbehaving peers: an application that never
# answers is left out in time for the proxy's page to arrive whole; a
# scraper that stops reading for longer than the scrape timeout still gets
# the whole page (our own flow control does not time out the proxy); an
# HTTP/1.0 scrape asking for keep-alive gets a page ended by the close, not
# "Content-Length: 0"; scrapes the client aborts leak nothing (run with
# SANITIZE=1: LeakSanitizer reports at the agent's exit fail the test).
. "$TOP/tests/lib.sh"

APP_PORT=$(free_port)
cat >"$T/hang.py" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
conns = []
while True:
    c, _ = s.accept()
    conns.append(c)
PY
spawn python3 "$T/hang.py" "$APP_PORT"
wait_until 5 python3 -c "import socket; socket.create_connection(('127.0.0.1', $APP_PORT))" ||
	fail "hanging app did not start"

export ENVOY_EMU_ASSUME_XDS=1 ENVOY_EMU_EXTRA_STATS=20000
export ISTIO_PROMETHEUS_ANNOTATIONS='{"scrape":"true","path":"/metrics","port":"'$APP_PORT'"}'
start_agent
wait_until 20 curl -sf "http://127.0.0.1:$STATUS_PORT/healthz/ready" ||
	fail "agent not ready: $(tail "$T/agent.log")"
direct=$(curl -s "http://127.0.0.1:$ADMIN_PORT/stats/prometheus" | grep -c '^envoy_cluster_')
[ "$direct" -ge 20000 ] || fail "the proxy has $direct series"

note "a hung application: left out after half the scrape timeout, the proxy's page whole"
start=$(date +%s%N)
curl -s -o "$T/m1" --max-time 10 -H 'X-Prometheus-Scrape-Timeout-Seconds: 3' \
	"http://127.0.0.1:$STATUS_PORT/stats/prometheus" || fail "scrape with a hung app failed"
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
merged=$(grep -c '^envoy_cluster_' "$T/m1")
[ "$merged" = "$direct" ] || fail "proxy series: $merged merged, $direct direct (${elapsed}ms)"
[ "$elapsed" -lt 2900 ] || fail "the scrape took ${elapsed}ms with a 3s timeout"
grep -q '^istio_agent_scrape_failures_total{type="envoy"} 0' "$T/m1" ||
	fail "proxy counted as failed: $(grep failures "$T/m1")"
grep -q '^istio_agent_scrape_failures_total{type="application"} 1' "$T/m1" ||
	fail "hung app not counted: $(grep failures "$T/m1")"

note "a scraper that pauses longer than the scrape timeout gets the whole page"
cat >"$T/pause.py" <<'PY'
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /stats/prometheus HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
          b"X-Prometheus-Scrape-Timeout-Seconds: 1\r\n\r\n")
buf = bytearray(s.recv(65536))
time.sleep(float(sys.argv[2]))
while True:
    d = s.recv(1 << 20)
    if not d:
        break
    buf += d
sys.stdout.buffer.write(bytes(buf))
PY
python3 "$T/pause.py" "$PROM_PORT" 2.5 >"$T/raw2" || fail "pausing scraper failed"
python3 - "$T/raw2" "$direct" <<'PY' || fail "pausing scraper: page cut"
import sys
raw = open(sys.argv[1], "rb").read()
head, _, body = raw.partition(b"\r\n\r\n")
assert b"chunked" in head.lower(), head
out = bytearray()
while True:
    line, _, body = body.partition(b"\r\n")
    n = int(line, 16)
    if n == 0:
        break
    out += body[:n]
    body = body[n + 2:]
else:
    sys.exit("no final chunk")
got = sum(1 for l in out.split(b"\n") if l.startswith(b"envoy_cluster_"))
if got != int(sys.argv[2]):
    sys.exit("%d of %s series" % (got, sys.argv[2]))
PY

note "HTTP/1.0 with keep-alive: ended by the close, no Content-Length"
python3 - "$PROM_PORT" >"$T/raw3" <<'PY' || fail "HTTP/1.0 scrape failed"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(10)
s.sendall(b"GET /stats/prometheus HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
buf = b""
while True:
    d = s.recv(1 << 20)
    if not d:
        break
    buf += d
sys.stdout.buffer.write(buf)
PY
python3 - "$T/raw3" "$direct" <<'PY' || fail "HTTP/1.0 keep-alive scrape"
import sys
raw = open(sys.argv[1], "rb").read()
head, _, body = raw.partition(b"\r\n\r\n")
assert head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200"), head[:100]
assert b"content-length" not in head.lower(), head
assert b"chunked" not in head.lower(), head
got = sum(1 for l in body.split(b"\n") if l.startswith(b"envoy_cluster_"))
assert got == int(sys.argv[2]), "%d series" % got
assert body.endswith(b"\n")
PY

note "scrapes aborted by the client"
python3 - "$STATUS_PORT" "$PROM_PORT" <<'PY' || fail "aborting scraper failed"
import socket, sys
for port in sys.argv[1:]:
    for i in range(20):
        s = socket.create_connection(("127.0.0.1", int(port)))
        s.sendall(b"GET /stats/prometheus HTTP/1.1\r\nHost: x\r\n"
                  b"X-Prometheus-Scrape-Timeout-Seconds: 0.5\r\n\r\n")
        got = 0
        while got < 300000:
            d = s.recv(65536)
            if not d:
                break
            got += len(d)
        s.close()
PY
# Fixed time: past the aborted scrapes' 0.5 s timeout, their clean-up is over.
sleep 1
curl -sf -o /dev/null "http://127.0.0.1:$STATUS_PORT/healthz/ready" || fail "agent unwell after aborts"
kill -TERM "$AGENT_PID"
wait_exit "$AGENT_PID" 10 || fail "agent did not exit"
echo PASS
