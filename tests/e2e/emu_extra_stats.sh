#!/usr/bin/env bash
# ENVOY_EMU_EXTRA_STATS=100000: the synthetic series show in /stats and
# /stats/prometheus (one family per metric, Envoy's cluster tag), honour
# filter=, come in a chunked reply, and the stand-in does not balloon.
. "$TOP/tests/lib.sh"
. "$TOP/tests/envoy-emu/e2e.sh"

emu_config "$T/emu.json"
ENVOY_EMU_EXTRA_STATS=100000 emu_start 0
P=$LAST_PID
wait_emu_epoch 0

curl -s -D "$T/headers" --max-time 30 "http://127.0.0.1:$ADMIN/stats/prometheus" >"$T/prom"
grep -qi '^transfer-encoding: chunked' "$T/headers" || fail "not chunked: $(cat "$T/headers")"
n=$(grep -c '^envoy_cluster_[a-z_]*{envoy_cluster_name="emu_[0-9]\{6\}"} [0-9]*$' "$T/prom")
[ "$n" = 100000 ] || fail "$n synthetic series"
[ "$(grep -c '^# TYPE envoy_cluster_upstream_' "$T/prom")" = 10 ] || fail "families: $(grep '^# TYPE envoy_cluster_' "$T/prom")"
grep -q '^envoy_server_state{} 0$' "$T/prom" || fail "real stats lost"
python3 - "$T/prom" <<'PY' || fail "family order"
import sys
names = [l.split()[2] for l in open(sys.argv[1]) if l.startswith("# TYPE ")]
kinds = [l.split()[3] for l in open(sys.argv[1]) if l.startswith("# TYPE ")]
c = [n for n, k in zip(names, kinds) if k == "counter"]
assert c == sorted(c) and len(set(names)) == len(names), names
PY

admin_get /stats >"$T/stats"
[ "$(grep -c '^cluster\.emu_' "$T/stats")" = 100000 ] || fail "/stats synthetic count"
LC_ALL=C sort -c "$T/stats" || fail "/stats not sorted"
[ "$(admin_get '/stats?filter=^cluster\.emu_004242\.' | wc -l)" = 10 ] || fail "filter"
# The synthetic values grow with the uptime (seconds), so the Prometheus
# value is bracketed by /stats reads taken just before and just after.
before=$(stat_of cluster.emu_000001.upstream_rq_total)
admin_get '/stats/prometheus?filter=emu_000001\.upstream_rq_total$' >"$T/one"
after=$(stat_of cluster.emu_000001.upstream_rq_total)
[ "$(sed -n 1p "$T/one")" = "# TYPE envoy_cluster_upstream_rq_total counter" ] &&
	[ "$(wc -l <"$T/one")" -le 2 ] || fail "prometheus filter: $(cat "$T/one")"
v=$(sed -n 's/^envoy_cluster_upstream_rq_total{envoy_cluster_name="emu_000001"} \([0-9]*\)$/\1/p' "$T/one")
[ -n "$v" ] && [ "$before" -le "$v" ] && [ "$v" -le "$after" ] ||
	fail "prometheus filter: $v not within $before..$after: $(cat "$T/one")"

# Three more full scrapes, one abandoned half-way: memory stays flat.
for i in 1 2 3; do
	curl -s --max-time 30 "http://127.0.0.1:$ADMIN/stats/prometheus" >/dev/null
done
python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /stats/prometheus HTTP/1.1\r\nHost: x\r\n\r\n"); s.recv(65536); s.close()' "$ADMIN"
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$P/status")
limit=$([ "${SANITIZE:-}" = 1 ] && echo 400000 || echo 40000)
[ "$hwm" -le "$limit" ] || fail "peak RSS $hwm kB (limit $limit kB)"
emu_live || fail "not live after the scrapes"
kill -TERM "$P"
wait_exit "$P" 5 || fail "did not stop"
[ "$EXIT_CODE" = 0 ] || fail "exit code $EXIT_CODE"
echo "extra stats ok (peak RSS $hwm kB)"
