#!/usr/bin/env bash
# A flood of connections cannot lock the kubelet out of /healthz/ready.
# Flooders keep hundreds of connections open to the status port, opening a
# new one each time one is closed: idle ones from one address (127.0.0.2),
# idle ones from ten addresses (more than the port's cap), and requests to
# a slow application probe from eight addresses, which keep connections
# busy (more than the port's cap: room is kept for readiness). Meanwhile
# every readiness probe from another address is answered 200 within 3
# seconds, and a client that is slow to send its request, or keeps its
# connection between requests, keeps it. A flood that only holds its connections (opens 300 and keeps
# what is left open) does not keep out probes from its own address either:
# they take the place of its oldest idle connections.
. "$TOP/tests/lib.sh"

APP_PORT=$(free_port)
cat >"$T/app.py" <<'PY'
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        time.sleep(5)
        try:
            self.send_response(200)
            self.send_header("Content-Length", "3")
            self.end_headers()
            self.wfile.write(b"ok\n")
        except OSError:
            pass
http.server.ThreadingHTTPServer.request_queue_size = 1024
http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
spawn python3 "$T/app.py" "$APP_PORT"

cat >"$T/flood.py" <<'PY'
# flood.py PORT idle|busy|hold PER-ADDRESS SECONDS FLAG ADDRESS...: keeps
# PER-ADDRESS connections open from each address for SECONDS, opening a new
# one whenever one closes ("hold": not); "busy" ones ask for the slow
# probe. FLAG is written once every connection has been opened once.
import selectors, socket, sys, time
port, mode, per, secs, flag = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
srcs = sys.argv[6:]
REQ = b"GET /app-health/slow/livez HTTP/1.1\r\nHost: x\r\n\r\n"
sel = selectors.DefaultSelector()
opened = closed = 0
def open_one(src):
    global opened
    s = socket.socket()
    s.setblocking(False)
    s.bind((src, 0))
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    ev = selectors.EVENT_READ | (selectors.EVENT_WRITE if mode == "busy" else 0)
    sel.register(s, ev, src)
    opened += 1
for src in srcs:
    for _ in range(per):
        open_one(src)
open(flag, "w").write("flooding\n")
end = time.time() + secs
while time.time() < end:
    reopen = []
    for key, ev in sel.select(timeout=0.05):
        s = key.fileobj
        if ev & selectors.EVENT_WRITE:
            try:
                s.send(REQ)
            except OSError:
                pass
            sel.modify(s, selectors.EVENT_READ, key.data)
            continue
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        # An answer, or the end: a new connection takes its place.
        if data and mode != "busy":
            continue
        sel.unregister(s)
        s.close()
        closed += 1
        reopen.append(key.data)
    if mode != "hold":
        for src in reopen:
            open_one(src)
    time.sleep(0.002)
print("opened %d, closed %d" % (opened, closed))
PY

cat >"$T/slow.py" <<'PY'
# slow.py PORT: from 127.0.0.1, a client that sends its request 0.5s after
# connecting, then another on the same connection 1s later (kept alive, as
# Prometheus does between scrapes). Both must be answered 200.
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.settimeout(3)
s.connect(("127.0.0.1", int(sys.argv[1])))
for pause in (0.5, 1.0):
    time.sleep(pause)
    try:
        s.sendall(b"GET /healthz/ready HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            d = s.recv(4096)
            if not d:
                break
            data += d
    except OSError as e:
        data = repr(e).encode()
    if not data.startswith(b"HTTP/1.1 200 "):
        print("FAIL: request after %.1fs idle: %r" % (pause, data[:100])); sys.exit(1)
print("ok")
PY

export INSTANCE_IP=127.0.0.1 ENVOY_EMU_ASSUME_XDS=1
export ISTIO_KUBE_APP_PROBERS='{"/app-health/slow/livez": {"httpGet": {"path": "/slow", "port": '$APP_PORT'}, "timeoutSeconds": 30}}'
start_agent
wait_until 20 curl -sf "http://127.0.0.1:$STATUS_PORT/healthz/ready" ||
	fail "agent not ready: $(tail "$T/agent.log")"

# probes FROM N: N readiness probes from address FROM, each answered 200
# within 3s.
probes() {
	local from=$1 n=$2 i code t0 t1
	for i in $(seq 1 "$n"); do
		t0=$(date +%s%N)
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 \
			--interface "$from" "http://127.0.0.1:$STATUS_PORT/healthz/ready")
		t1=$(date +%s%N)
		[ "$code" = 200 ] ||
			fail "probe $i from $from: '$code' after $(( (t1 - t0) / 1000000 ))ms; log: $(tail -n 5 "$T/agent.log")"
		# Fixed time, pacing: probes spread over the flood, as the kubelet's.
		sleep 0.1
	done
	note "$n probes from $from answered"
}

# flood NAME MODE PER SECONDS ADDRESS...: starts a flooder, waits until it
# has opened its connections.
flood() {
	local name=$1 mode=$2 per=$3 secs=$4
	shift 4
	spawn python3 "$T/flood.py" "$STATUS_PORT" "$mode" "$per" "$secs" "$T/$name.flag" "$@" \
		>"$T/$name.out" 2>&1
	FLOOD_PID=$LAST_PID
	wait_until 10 test -f "$T/$name.flag" || fail "$name: flooder did not start"
	# Fixed time, pacing: the flood runs a second before the probes meet it.
	sleep 1
}
flood_end() {
	wait_exit "$FLOOD_PID" 30 || fail "flooder did not end"
	note "flooder: $(cat "$T/$1.out")"
	kill -0 "$AGENT_PID" || fail "agent died"
}

note "300 idle connections from 127.0.0.2"
flood one idle 300 7 127.0.0.2
probes 127.0.0.1 20
flood_end one
log_has "connection limits reached" || fail "the limits were not logged"

note "300 idle connections held from 127.0.0.4, probes from there too"
flood held hold 300 5 127.0.0.4
probes 127.0.0.4 20
flood_end held

note "40 idle connections from each of 10 addresses"
addrs=$(seq -f '127.0.0.%g' 10 19)
flood many idle 40 7 $addrs
probes 127.0.0.1 20
python3 "$T/slow.py" "$STATUS_PORT" ||
	fail "a slow or kept-alive client lost its connection to the flood"
flood_end many

note "busy: 40 requests to a slow probe from each of 8 addresses"
addrs=$(seq -f '127.0.1.%g' 1 8)
flood busy busy 40 7 $addrs
probes 127.0.0.1 20
python3 "$T/slow.py" "$STATUS_PORT" ||
	fail "a slow or kept-alive client lost its connection to the busy flood"
flood_end busy

[ "$(http_code "http://127.0.0.1:$STATUS_PORT/healthz/ready")" = 200 ] ||
	fail "not served after the floods"
echo PASS
