#!/usr/bin/env bash
# The stand-in's admin API and stats: /ready, /server_info, /stats (sorted,
# usedonly, filter, json), /stats/prometheus with Envoy's tags, listener
# connection stats, 405 and 404, health check fail/ok, the log format, and
# /quitquitquit.
. "$TOP/tests/lib.sh"
. "$TOP/tests/envoy-emu/e2e.sh"

P1=$(free_port)
P2=$(free_port)
emu_config "$T/emu.json" "health:$P1" "virtualInbound:$P2:INBOUND"
emu_start 0 --concurrency 2 --service-cluster istio-proxy
PID=$LAST_PID
wait_until 5 emu_live || fail "not live: $(cat "$T/emu0.log")"

note "/ready and /server_info"
[ "$(admin_get /ready)" = LIVE ] || fail "/ready: $(admin_get /ready)"
admin_get /server_info >"$T/info.json"
python3 - "$T/info.json" "$BASE_ID" <<'PY' || fail "server_info: $(cat "$T/info.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["state"] == "LIVE"
assert d["version"].endswith("/1.30.1/Clean/RELEASE/BoringSSL")
assert d["hot_restart_version"] == "11.104"
o = d["command_line_options"]
assert o["restart_epoch"] == 0 and o["base_id"] == sys.argv[2]
assert o["concurrency"] == 2 and o["drain_time"] == "600s"
assert o["parent_shutdown_time"] == "900s" and o["drain_strategy"] == "Gradual"
assert o["service_cluster"] == "istio-proxy" and o["service_node"] == ""
for k in ("uptime_current_epoch", "uptime_all_epochs"):
    assert d[k].endswith("s") and int(d[k][:-1]) >= 0, d[k]
assert d["node"]["id"].startswith("sidecar~") and d["node"]["cluster"] == "istio-proxy"
PY

note "listeners answer with epoch, pid and name"
body=$(curl -s --max-time 5 "http://127.0.0.1:$P1/any/path")
[ "$body" = "epoch=0 pid=$PID listener=health" ] || fail "listener body: $body"
curl -s -i --max-time 5 "http://127.0.0.1:$P2/" >"$T/resp"
want="epoch=0 pid=$PID listener=virtualInbound"
grep -qi "^content-length: $(( ${#want} + 1 ))" "$T/resp" && grep -q "^$want\$" "$T/resp" ||
	fail "listener response: $(cat "$T/resp")"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d 'x=1' "http://127.0.0.1:$P1/")" = 200 ] ||
	fail "POST with a body"

note "/stats: sorted, required names"
admin_get /stats >"$T/stats"
LC_ALL=C sort -c "$T/stats" || fail "/stats not sorted"
for s in server.state server.live server.uptime server.hot_restart_epoch \
	server.total_connections listener_manager.workers_started \
	listener_manager.total_listeners_active cluster_manager.cds.update_success \
	cluster_manager.cds.update_rejected listener_manager.lds.update_success \
	listener_manager.lds.update_rejected "listener.127.0.0.1_$P1.downstream_cx_active" \
	"listener.127.0.0.1_$P1.downstream_cx_total" listener.admin.downstream_cx_active; do
	grep -q "^$s: [0-9][0-9]*\$" "$T/stats" || fail "no $s in /stats"
done
[ "$(stat_of server.state)" = 0 ] || fail "server.state $(stat_of server.state)"
[ "$(stat_of listener_manager.workers_started)" = 1 ] || fail "workers_started"
[ "$(stat_of listener_manager.total_listeners_active)" = 2 ] || fail "total_listeners_active"
[ "$(stat_of "listener.127.0.0.1_$P1.downstream_cx_total")" -ge 2 ] || fail "cx_total"

note "usedonly and filter"
admin_get '/stats?usedonly' >"$T/used"
grep -q '^cluster_manager.cds.update_success' "$T/used" && fail "usedonly shows an unused counter"
grep -q '^server.state: 0$' "$T/used" || fail "usedonly lost server.state"
out=$(admin_get '/stats?usedonly&filter=^(server\.state|listener_manager\.workers_started)')
[ "$out" = "$(printf 'listener_manager.workers_started: 1\nserver.state: 0')" ] ||
	fail "Istio's readiness filter: $out"
out=$(admin_get '/stats?usedonly&filter=^(cluster_manager\.cds|listener_manager\.lds)\.(update_success|update_rejected)$')
[ -z "$out" ] || fail "CDS/LDS stats without xDS: $out"
out=$(admin_get '/stats?filter=%5Eserver%5C.live%24')
[ "$out" = "server.live: 1" ] || fail "url-encoded filter: $out"
[ "$(http_code "http://127.0.0.1:$ADMIN/stats?filter=(")" = 400 ] || fail "bad regex not 400"
admin_get '/stats?format=json' | python3 -c '
import json, sys
d = json.load(sys.stdin)
names = [s["name"] for s in d["stats"]]
assert names == sorted(names) and "server.state" in names, names
' || fail "/stats?format=json"

note "prometheus"
admin_get /stats/prometheus >"$T/prom"
grep -q '^# TYPE envoy_listener_downstream_cx_active gauge$' "$T/prom" || fail "no TYPE line"
grep -q "^envoy_listener_downstream_cx_active{envoy_listener_address=\"127.0.0.1_$P1\"} [0-9]" "$T/prom" ||
	fail "no tagged listener series: $(grep downstream_cx_active "$T/prom")"
grep -q "^envoy_listener_downstream_cx_total{envoy_listener_address=\"127.0.0.1_$P1\",envoy_worker_id=\"0\"} " "$T/prom" ||
	fail "no worker series"
grep -q '^envoy_server_state{} 0$' "$T/prom" || fail "no envoy_server_state{} 0"
grep -q '^# TYPE envoy_cluster_manager_cds_update_success counter$' "$T/prom" || fail "counter TYPE"
grep -q '^envoy_listener_admin_downstream_cx_active{} ' "$T/prom" || fail "admin listener series"
python3 - "$T/prom" <<'PY' || fail "prometheus format"
import re, sys
seen, kind, types = set(), None, []
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("# TYPE "):
        _, _, name, t = line.split(" ")
        assert name not in seen, "family twice: " + name
        seen.add(name); kind = name; types.append(t)
        continue
    m = re.match(r'^([a-zA-Z_][a-zA-Z0-9_]*)\{(.*)\} ([0-9]+)$', line)
    assert m, "bad line: " + line
    assert m.group(1) == kind, "series outside its family: " + line
# counters, then gauges, each sorted
assert types == sorted(types), types
PY
[ "$(grep -c '^envoy_server_state' <(admin_get '/stats/prometheus?filter=^server\.state$'))" = 1 ] ||
	fail "prometheus filter"

note "connection stats"
python3 - "$P1" "$ADMIN" <<'PY' || fail "keep-alive connection stats"
import socket, sys, time, urllib.request
port, admin = int(sys.argv[1]), int(sys.argv[2])
def stat(name):
    with urllib.request.urlopen("http://127.0.0.1:%d/stats?filter=^%s$" % (admin, name.replace(".", "\\."))) as r:
        return int(r.read().decode().split(": ")[1])
name = "listener.127.0.0.1_%d.downstream_cx_active" % port
before = stat("listener.127.0.0.1_%d.downstream_cx_total" % port)
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
for s in socks:
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"200 OK" in s.recv(4096)
assert stat(name) == 3, stat(name)
assert stat("server.total_connections") == 3
assert stat("listener.127.0.0.1_%d.downstream_cx_total" % port) == before + 3
for s in socks:
    s.close()
for _ in range(100):
    if stat(name) == 0:
        break
    time.sleep(0.05)
assert stat(name) == 0, stat(name)
PY

note "405, 404"
for p in /quitquitquit /healthcheck/fail /healthcheck/ok /drain_listeners; do
	[ "$(http_code "http://127.0.0.1:$ADMIN$p")" = 405 ] || fail "GET $p not 405"
done
[ "$(admin_get /healthcheck/fail)" = "Method GET not allowed, POST required." ] || fail "405 body"
curl -s -i --max-time 5 "http://127.0.0.1:$ADMIN/quitquitquit" | head -1 | grep -q "405 Method Not Allowed" ||
	fail "405 status line"
[ "$(http_code "http://127.0.0.1:$ADMIN/no/such/thing")" = 404 ] || fail "unknown path not 404"
admin_get /no/such/thing | grep -q "^invalid path" || fail "404 body"
alive "$PID" || fail "a GET stopped the stand-in"

note "health check fail / ok"
[ "$(admin_post /healthcheck/fail)" = OK ] || fail "POST /healthcheck/fail"
[ "$(admin_get /ready)" = DRAINING ] || fail "/ready after fail: $(admin_get /ready)"
[ "$(http_code "http://127.0.0.1:$ADMIN/ready")" = 503 ] || fail "/ready not 503"
[ "$(stat_of server.live)" = 0 ] && [ "$(stat_of server.state)" = 1 ] || fail "stats after fail"
admin_get /server_info | grep -q '"state": "DRAINING"' || fail "server_info after fail"
[ "$(admin_post /healthcheck/ok)" = OK ] || fail "POST /healthcheck/ok"
[ "$(admin_get /ready)" = LIVE ] && [ "$(stat_of server.live)" = 1 ] || fail "not LIVE after ok"

note "other pages"
admin_get /listeners | grep -q "^health::127.0.0.1:$P1\$" || fail "/listeners: $(admin_get /listeners)"
admin_get /config_dump | grep -q BootstrapConfigDump || fail "/config_dump"
[ "$(admin_get /hot_restart_version)" = 11.104 ] || fail "/hot_restart_version"

note "log format"
grep -Eq '^\[Envoy \(Epoch 0\)\] \[[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}\]\[[0-9]+\]\[info\]\[main\] starting main dispatch loop$' \
	"$T/emu0.log" || fail "log format: $(head -3 "$T/emu0.log")"
bad=$(grep -v '^\[Envoy (Epoch 0)\] \[' "$T/emu0.log" | head -3)
[ -z "$bad" ] || fail "lines not in the log format: $bad"

note "quitquitquit"
[ "$(admin_post /quitquitquit)" = OK ] || fail "POST /quitquitquit"
wait_exit "$PID" 5 || fail "did not exit after quitquitquit"
[ "$EXIT_CODE" = 0 ] || fail "exit code $EXIT_CODE"
grep -q "exiting" "$T/emu0.log" || fail "no exiting line"
echo "admin ok"
