#!/usr/bin/env bash
# A FIFO (or another file that is not regular) where the agent expects a
# file never blocks it: at start, the override file or the mesh config being
# a FIFO exits 2 at once, naming it, with nothing created; at run time, a
# watched mesh config replaced by a FIFO is refused with a log line, the
# proxy is kept and both ports and SIGTERM keep working; a FIFO for the
# relay's root certificate fails the connection, not the agent.
. "$TOP/tests/lib.sh"
export ENVOY_EMU_ASSUME_XDS=1
mkfifo "$T/fifo"

# refused NAME MESSAGE ARGS...: exit 2 within 10 s, with MESSAGE.
refused() {
	local name=$1 want=$2 rc
	shift 2
	rm -rf "$T/etc-bad"
	timeout 10 "$@" >"$T/out" 2>&1
	rc=$?
	[ "$rc" = 124 ] && fail "$name: blocked on the FIFO"
	[ "$rc" = 2 ] || fail "$name: exit $rc, want 2: $(cat "$T/out")"
	grep -qF "$want" "$T/out" || fail "$name: no \"$want\": $(cat "$T/out")"
	[ -e "$T/etc-bad" ] && fail "$name: configPath was created"
	note "$name: $(tail -n 1 "$T/out")"
}
isfifo="$T/fifo: not a regular file (it is a FIFO)"
make_proxy_wrapper
proxy=("$AGENT" proxy sidecar --configPath "$T/etc-bad" --binaryPath "$T/envoy")
ISTIO_BOOTSTRAP_OVERRIDE=$T/fifo refused "proxy, override FIFO" "$isfifo" "${proxy[@]}"
refused "proxy, mesh config FIFO" "$isfifo" "${proxy[@]}" --meshConfig "$T/fifo"
refused "proxy, mesh config /dev/null" \
	"/dev/null: not a regular file (it is a character device)" \
	"${proxy[@]}" --meshConfig /dev/null
refused "proxy, mesh config a directory" "$T: not a regular file (it is a directory)" \
	"${proxy[@]}" --meshConfig "$T"
ISTIO_BOOTSTRAP_OVERRIDE=$T/fifo refused "bootstrap, override FIFO" "$isfifo" "$AGENT" bootstrap
refused "bootstrap, mesh config FIFO" "$isfifo" "$AGENT" bootstrap --meshConfig "$T/fifo"

note "a running agent whose mesh config becomes a FIFO"
mkdir -p "$T/cfg"
printf 'defaultConfig:\n  concurrency: 1\n' >"$T/cfg/mesh.yaml"
start_agent --watchDebounce 200ms --meshConfig "$T/cfg/mesh.yaml" \
	--terminationDrainDuration 0s
wait_live 0
p0=$(epoch_pid 0)
mkfifo "$T/cfg/mesh.yaml.new"
mv "$T/cfg/mesh.yaml.new" "$T/cfg/mesh.yaml"
wait_until 10 log_has "mesh.yaml: not a regular file (it is a FIFO).*keeping the proxy as it is" ||
	fail "the FIFO was not refused: $(grep -v '^\[Envoy' "$T/agent.log" | tail -n 5)"
[ "$(http_code "http://127.0.0.1:$STATUS_PORT/healthz/ready")" = 200 ] ||
	fail "status port stuck"
[ "$(http_code "http://127.0.0.1:$PROM_PORT/stats/prometheus")" = 200 ] ||
	fail "metrics port stuck"
kill -0 "$p0" || fail "the proxy was not kept"
kill -HUP "$AGENT_PID"
wait_until 5 log_has "restart (SIGHUP): .*not a regular file" ||
	fail "SIGHUP did not refuse the FIFO"
kill -TERM "$AGENT_PID"
wait_exit "$AGENT_PID" 20 || fail "SIGTERM did not stop the agent"
[ "$EXIT_CODE" = 0 ] || fail "exit code $EXIT_CODE"

note "the relay's root certificate is a FIFO"
unset ADMIN_PORT STATUS_PORT HEALTH_PORT PROM_PORT
mkdir -p "$T/certs"
mkfifo "$T/certs/root-cert.pem"
unset ENVOY_EMU_ASSUME_XDS	# the stand-in's ADS stream opens the relay's upstream
start_agent --controlPlaneAuthPolicy MUTUAL_TLS --terminationDrainDuration 0s
wait_until 10 log_has "cannot read $T/certs/root-cert.pem: not a regular file (it is a FIFO)" ||
	fail "the relay did not refuse the FIFO: $(grep -v '^\[Envoy' "$T/agent.log" | tail -n 5)"
[ "$(http_code "http://127.0.0.1:$STATUS_PORT/healthz/ready")" = 503 ] ||
	fail "status port stuck"
kill -TERM "$AGENT_PID"
wait_exit "$AGENT_PID" 20 || fail "SIGTERM did not stop the agent"
echo "fifo ok"
