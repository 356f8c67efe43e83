#!/usr/bin/env bash
# The stand-in's static listeners as Envoy serves them: nothing accepted
# before the server is LIVE (connections refused while it waits for xDS;
# a hot restart child leaves every connection to its parent until it is
# LIVE), then the http_connection_manager's routes: virtual hosts by Host,
# prefix/path/path_separated_prefix/safe_regex matches, a request proxied
# to a static cluster (method, path, headers, body forwarded; status,
# headers and body relayed, chunked or not; pipelined requests in order),
# direct_response, 404 when no route matches, 503 with Envoy's text when
# the upstream refuses, 504 on the route timeout, 426 for HTTP/1.0, the
# stats, and routes that Envoy would reject at start-up. A listener without
# a connection manager keeps the stand-in's "epoch=... listener=..." answer.
. "$TOP/tests/lib.sh"
. "$TOP/tests/envoy-emu/e2e.sh"

LP=$(free_port)		# listener with routes
PP=$(free_port)		# plain test listener
UP=$(free_port)		# the upstream (a test server)
DOWN=$(free_port)	# nothing listens here
XDS_PORT=$(free_port)
stop() {
	kill -TERM "$1"
	wait_exit "$1" 5 || fail "pid $1 did not stop"
	[ "$EXIT_CODE" = 0 ] || fail "pid $1 exit code $EXIT_CODE"
}

# The upstream: /echo answers with what it got as JSON, /chunked in chunks,
# /hang... holds the request for 20s, anything else "<code> <path>" with the
# code in ?code= (200 by default).
cat >"$T/upstream.py" <<'PY'
import http.server, json, sys, time, urllib.parse
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def reply(self, code, body, ctype="text/plain", extra=()):
        self.send_response(code)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.send_header("x-upstream", "yes")
        for k, v in extra: self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD": self.wfile.write(body)
    def any(self):
        n = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(n) if n else b""
        u = urllib.parse.urlsplit(self.path)
        if u.path == "/echo":
            d = {"method": self.command, "path": self.path,
                 "headers": {k.lower(): v for k, v in self.headers.items()},
                 "body": body.decode()}
            self.reply(200, json.dumps(d).encode(), "application/json")
        elif u.path == "/chunked":
            self.send_response(200)
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for part in (b"first ", b"second\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif u.path.startswith("/hang"):
            time.sleep(20)
        else:
            code = int(urllib.parse.parse_qs(u.query).get("code", ["200"])[0])
            self.reply(code, ("%d %s\n" % (code, u.path)).encode())
    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = any
http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
spawn python3 "$T/upstream.py" "$UP"
wait_until 10 curl -sf "http://127.0.0.1:$UP/x" || fail "test upstream did not start"

cluster() {	# cluster NAME TYPE ADDRESS PORT [EXTRA]
	echo "{\"name\":\"$1\",\"type\":\"$2\",\"connect_timeout\":\"1s\"${5:-},
	 \"load_assignment\":{\"cluster_name\":\"$1\",\"endpoints\":[{\"lb_endpoints\":[
	 {\"endpoint\":{\"address\":{\"socket_address\":{\"address\":\"$3\",\"port_value\":$4}}}}]}]}}"
}
# routes_config FILE ROUTES: a bootstrap with ADS, the clusters, the plain
# listener and the routed one with a "special.example" virtual host and a
# "*" one holding ROUTES.
routes_config() {
	cat >"$1" <<EOF
{"node":{"id":"sidecar~127.0.0.1~emu.test~test.svc.cluster.local","cluster":"emu.test"},
 "admin":{"address":{"socket_address":{"address":"127.0.0.1","port_value":$ADMIN}}},
 "dynamic_resources":{"ads_config":{"api_type":"GRPC","grpc_services":[{"envoy_grpc":{"cluster_name":"xds-grpc"}}]},
  "cds_config":{"ads":{},"initial_fetch_timeout":"0s","resource_api_version":"V3"},
  "lds_config":{"ads":{},"initial_fetch_timeout":"0s","resource_api_version":"V3"}},
 "static_resources":{
  "clusters":[$(cluster xds-grpc STATIC 127.0.0.1 "$XDS_PORT"),
   $(cluster up STATIC 127.0.0.1 "$UP"), $(cluster down STATIC 127.0.0.1 "$DOWN"),
   $(cluster named LOGICAL_DNS localhost "$UP" ',"dns_lookup_family":"V4_ONLY"')],
  "listeners":[
   {"name":"plain","address":{"socket_address":{"address":"127.0.0.1","port_value":$PP}}},
   {"address":{"socket_address":{"address":"127.0.0.1","port_value":$LP}},
    "filter_chains":[{"filters":[{"name":"envoy.filters.network.http_connection_manager",
     "typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
      "stat_prefix":"test","codec_type":"AUTO",
      "route_config":{"virtual_hosts":[
       {"name":"special","domains":["special.example","*.wild.example"],"routes":[
        {"match":{"prefix":"/"},"direct_response":{"status":200,"body":{"inline_string":"special\n"}}}]},
       {"name":"backend","domains":["*"],"routes":[$2]}]},
      "http_filters":[{"name":"envoy.filters.http.router",
       "typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}]}}
EOF
}
ROUTES='{"match":{"prefix":"/healthz/ready"},"route":{"cluster":"up"}},
 {"match":{"path":"/echo"},"route":{"cluster":"up"}},
 {"match":{"path":"/chunked"},"route":{"cluster":"up"}},
 {"match":{"path_separated_prefix":"/sep"},"route":{"cluster":"up"}},
 {"match":{"safe_regex":{"regex":"/re/[0-9]+"}},"route":{"cluster":"up"}},
 {"match":{"prefix":"/CaSe","case_sensitive":false},"route":{"cluster":"up"}},
 {"match":{"path":"/hang"},"route":{"cluster":"up","timeout":"0.5s"}},
 {"match":{"path":"/hang-long"},"route":{"cluster":"up","timeout":"30s"}},
 {"match":{"prefix":"/down"},"route":{"cluster":"down"}},
 {"match":{"prefix":"/named"},"route":{"cluster":"named"}},
 {"match":{"prefix":"/direct"},"direct_response":{"status":418,"body":{"inline_string":"short and stout\n"}}},
 {"match":{"prefix":"/empty"},"direct_response":{"status":503}}'
routes_config "$T/emu.json" "$ROUTES"

# get PATH [CURL ARGS]: "<code> <body>" from the routed listener, the
# body's lines joined with spaces.
get() {
	local path=$1 code
	shift
	: >"$T/body"
	code=$(curl -s --max-time 10 -o "$T/body" -w '%{http_code}' "$@" "http://127.0.0.1:$LP$path")
	printf '%s %s' "$code" "$(tr '\n' ' ' <"$T/body" | sed 's/ $//')"
}
expect() {	# expect "<code> <body>" PATH [CURL ARGS]
	local want=$1 got
	shift
	got=$(get "$@")
	[ "$got" = "$want" ] || fail "$*: got '$got', want '$want'"
}

note "before LIVE: nothing accepted (no control plane yet)"
emu_start 0
P0=$LAST_PID
wait_until 5 ready_is PRE_INITIALIZING || fail "/ready: $(admin_get /ready)"
[ "$(http_code "http://127.0.0.1:$LP/healthz/ready")" = 000 ] || fail "routed listener served before LIVE"
[ "$(http_code "http://127.0.0.1:$PP/")" = 000 ] || fail "plain listener served before LIVE"
python3 - "$LP" <<'PY' || fail "the listener's address is not bound before LIVE"
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)
PY
[ "$(stat_of listener_manager.workers_started)" != 1 ] || fail "workers started"

note "the control plane comes: LIVE, listeners served"
xds_resources c1 -- l1
start_cp
wait_until 20 emu_live || fail "not LIVE: $(admin_get /ready); $(tail -n 5 "$T/emu0.log")"
[ "$(curl -s --max-time 5 "http://127.0.0.1:$PP/any")" = "epoch=0 pid=$P0 listener=plain" ] ||
	fail "plain listener: $(curl -s --max-time 5 "http://127.0.0.1:$PP/any")"

note "route to a cluster: status and body relayed"
expect "200 200 /healthz/ready" /healthz/ready
expect "503 503 /healthz/ready" "/healthz/ready?code=503"
expect "200 200 /healthz/ready/sub" /healthz/ready/sub
curl -s -i --max-time 10 "http://127.0.0.1:$LP/healthz/ready" | tr -d '\r' >"$T/resp"
grep -qx "server: envoy" "$T/resp" || fail "server header: $(cat "$T/resp")"
grep -qx "x-upstream: yes" "$T/resp" || fail "upstream header not relayed: $(cat "$T/resp")"
grep -q "^x-envoy-upstream-service-time: [0-9]*$" "$T/resp" || fail "no service time: $(cat "$T/resp")"
[ "$(grep -ci '^server:' "$T/resp")" = 1 ] || fail "two server headers: $(cat "$T/resp")"

note "method, path, headers and body forwarded"
curl -s --max-time 10 -X PUT -H 'x-test: one' -H 'Connection: keep-alive' -d 'the body' \
	"http://127.0.0.1:$LP/echo?q=1" >"$T/echo.json" || fail "echo"
python3 - "$T/echo.json" "$LP" <<'PY' || fail "echo: $(cat "$T/echo.json")"
import json, sys
d = json.load(open(sys.argv[1]))
h = d["headers"]
assert d["method"] == "PUT" and d["path"] == "/echo?q=1" and d["body"] == "the body", d
assert h["x-test"] == "one" and h["host"] == "127.0.0.1:" + sys.argv[2], h
assert h["content-length"] == "8" and h["x-forwarded-proto"] == "http", h
assert len(h["x-request-id"]) == 36 and h["x-envoy-expected-rq-timeout-ms"] == "15000", h
assert "connection" not in h and "keep-alive" not in h, h
PY
expect "200 first second" /chunked
curl -s -I --max-time 10 "http://127.0.0.1:$LP/healthz/ready" | tr -d '\r' | grep -qx "content-length: 19" ||
	fail "HEAD: $(curl -s -I "http://127.0.0.1:$LP/healthz/ready")"

note "matches: path is exact, separated prefix, regex, case"
expect "404 " /echo/more
expect "200 200 /sep" /sep
expect "200 200 /sep/x" /sep/x
expect "404 " /separate
expect "200 200 /re/42" /re/42
expect "404 " /re/4x
expect "200 200 /case/x" /case/x

note "virtual hosts by Host"
expect "200 special" /echo -H "Host: special.example"
expect "200 special" /x -H "Host: a.wild.example"
expect "404 " /nothing -H "Host: wild.example"

note "direct_response, no route, HTTP/1.0"
expect "418 short and stout" /direct
curl -s -i --max-time 5 "http://127.0.0.1:$LP/direct" | tr -d '\r' | grep -qx "content-type: text/plain" ||
	fail "direct_response content-type"
expect "503 " /empty
expect "404 " /nothing
curl -s -i --max-time 5 "http://127.0.0.1:$LP/nothing" | tr -d '\r' | grep -qx "content-length: 0" ||
	fail "404 with a body"
expect "426 " /direct -0

note "keep-alive: two requests on one connection, in order"
curl -s --max-time 10 "http://127.0.0.1:$LP/healthz/ready?code=201" "http://127.0.0.1:$LP/direct" \
	-w '%{http_code} %{num_connects}\n' >"$T/two"
[ "$(sed -n 2p "$T/two")" = "201 1" ] && grep -q "^short and stout$" "$T/two" &&
	[ "$(tail -n 1 "$T/two")" = "418 0" ] || fail "two requests: $(cat "$T/two")"

note "a LOGICAL_DNS cluster"
expect "200 200 /named" /named

note "upstream down: 503 with Envoy's text"
expect "503 upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: delayed connect error: 111" /down

note "route timeout: 504"
expect "504 upstream request timeout" /hang

note "stats"
[ "$(stat_of http.test.downstream_rq_total)" -ge 25 ] || fail "downstream_rq_total $(stat_of http.test.downstream_rq_total)"
[ "$(stat_of http.test.no_route)" -ge 5 ] || fail "no_route $(stat_of http.test.no_route)"
[ "$(stat_of http.test.rq_direct_response)" -ge 5 ] || fail "rq_direct_response"
[ "$(stat_of cluster.up.upstream_rq_total)" -ge 10 ] || fail "up upstream_rq_total $(stat_of cluster.up.upstream_rq_total)"
[ "$(stat_of cluster.down.upstream_cx_connect_fail)" = 1 ] || fail "down upstream_cx_connect_fail"
[ "$(stat_of cluster.down.upstream_rq_total)" = 0 ] || fail "a request counted on a failed connection"
[ "$(stat_of cluster.up.upstream_rq_timeout)" = 1 ] || fail "upstream_rq_timeout"
admin_get '/stats?usedonly&filter=^cluster\.xds-grpc\.' | grep -q . && fail "xds-grpc cluster stats used"
admin_get /stats/prometheus | grep -q '^envoy_cluster_upstream_rq_total{envoy_cluster_name="up"} [0-9]' ||
	fail "prometheus: $(admin_get /stats/prometheus | grep upstream_rq_total)"
admin_get /stats/prometheus | grep -q '^envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix="test"} [0-9]' ||
	fail "prometheus: $(admin_get /stats/prometheus | grep downstream_rq_total)"

note "a hot restart child leaves every connection to its parent until LIVE"
ENVOY_EMU_FAULT_EPOCH=1 ENVOY_EMU_NEVER_LIVE=1 emu_start 1
P1=$LAST_PID
wait_until 10 grep -q "took over listen socket 127.0.0.1:$PP" "$T/emu1.log" || fail "no takeover: $(cat "$T/emu1.log")"
wait_until 5 ready_is INITIALIZING || fail "epoch 1: $(admin_get /ready)"
for i in $(seq 1 30); do
	curl -s --max-time 5 "http://127.0.0.1:$PP/"
done >"$T/bodies"
[ "$(grep -c "^epoch=0 pid=$P0 listener=plain$" "$T/bodies")" = 30 ] ||
	fail "answers while epoch 1 initializes: $(sort "$T/bodies" | uniq -c)"
expect "418 short and stout" /direct
kill -KILL "$P1"
wait_exit "$P1" 5 || fail "epoch 1 did not die"
stop "$P0"

note "a client that leaves while its request is proxied; a stop with one in flight"
emu_start 0
P0=$LAST_PID
wait_emu_epoch 0
curl -s --max-time 0.2 -o /dev/null "http://127.0.0.1:$LP/hang"
wait_until 5 sh -c "[ \"\$(curl -s 'http://127.0.0.1:$ADMIN/stats?filter=^cluster\.up\.upstream_rq_timeout$')\" = 'cluster.up.upstream_rq_timeout: 1' ]" ||
	fail "the abandoned request did not time out"
expect "418 short and stout" /direct
curl -s --max-time 10 -o /dev/null "http://127.0.0.1:$LP/hang-long" &
SPAWNED+=("$!")
in_flight() { [ "$(stat_of cluster.up.upstream_rq_total)" = 2 ]; }
wait_until 5 in_flight || fail "no request in flight: $(stat_of cluster.up.upstream_rq_total)"
stop "$P0"

note "routes Envoy rejects at start-up"
routes_config "$T/bad.json" '{"match":{"prefix":"/"},"route":{"cluster":"nope"}}'
emu_run 10 -c "$T/bad.json" --base-id "$BASE_ID"
[ "$RC" = 1 ] && [[ $OUT == *"error initializing configuration '$T/bad.json': route: unknown cluster 'nope'"* ]] ||
	fail "unknown cluster: $RC $OUT"
routes_config "$T/bad.json" '{"match":{"prefix":"/","headers":[{"name":"x"}]},"route":{"cluster":"up"}}'
emu_run 10 -c "$T/bad.json" --base-id "$BASE_ID"
[ "$RC" = 1 ] && [[ $OUT == *"route match 'headers' is not supported by envoy-emu"* ]] ||
	fail "header matcher: $RC $OUT"
echo "routes ok"
