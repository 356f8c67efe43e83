#!/usr/bin/env bash
# Restart on change: the agent watches the certificate directory, the
# override file and the mesh config (inotify, debounced). A touch or a
# rewrite with the same bytes re-renders an identical bootstrap and restarts
# nothing; new content restarts exactly once, after the debounce, however
# many writes the change took.
. "$TOP/tests/lib.sh"
export ENVOY_EMU_ASSUME_XDS=1
mkdir -p "$T/certs" "$T/cfg"
printf 'CERT-1\n' >"$T/certs/cert-chain.pem"
printf 'KEY-1\n' >"$T/certs/key.pem"
printf 'admin:\n  profile_path: /tmp/envoy.prof\n' >"$T/cfg/override.yaml"
printf 'defaultConfig:\n  concurrency: 1\n' >"$T/cfg/mesh.yaml"
export ISTIO_BOOTSTRAP_OVERRIDE=$T/cfg/override.yaml
start_agent --watchDebounce 1s --meshConfig "$T/cfg/mesh.yaml" \
	--drainDuration 1s --parentShutdownDuration 2s --terminationDrainDuration 1s
wait_live 0

starts() { grep -c "restart (watched input changed.*hot restart to epoch" "$T/agent.log"; }
unchanged() { grep -c "bootstrap unchanged; no restart" "$T/agent.log"; }
# settle N: the debounce has passed and N "unchanged" verdicts were logged.
at_least_unchanged() { [ "$(unchanged)" -ge "$1" ]; }
settle_unchanged() {
	wait_until 10 at_least_unchanged "$1" ||
		fail "no re-render after the change; log: $(tail -n 20 "$T/agent.log")"
}

# 1. A touch: re-rendered, identical, no restart.
touch "$T/certs/cert-chain.pem"
settle_unchanged 1
[ "$(starts)" = 0 ] || fail "a touch restarted the proxy"
note "touch: no restart"

# 2. The same bytes written again (as a rotation to the same cert would).
printf 'CERT-1\n' >"$T/certs/cert-chain.pem.new"
mv "$T/certs/cert-chain.pem.new" "$T/certs/cert-chain.pem"
settle_unchanged 2
[ "$(starts)" = 0 ] || fail "identical content restarted the proxy"
is_live 0 || fail "epoch 0 is no longer the live one"
note "identical content: no restart"

# 3. A rotation: certificate and key rewritten a moment apart. One restart,
#    not before the debounce.
printf 'CERT-2\n' >"$T/certs/cert-chain.pem"
# Fixed time: a rotation writes its two files a moment apart, within one debounce.
sleep 0.3
printf 'KEY-2\n' >"$T/certs/key.pem"
# Fixed time: 0.8 s after the first write, the 1 s debounce must not have fired.
sleep 0.5
[ "$(starts)" = 0 ] || fail "restarted before the debounce"
wait_live 1
# Fixed time: no second restart may follow (one would come within a debounce).
sleep 2.5
[ "$(starts)" = 1 ] || fail "$(starts) restarts for one rotation"
live=$(live_epoch)
[ "$live" = 1 ] || fail "live epoch is $live, not 1"
note "rotation: exactly one restart"

# 4. The override file: its new content is merged into the next epoch.
printf 'admin:\n  profile_path: /tmp/envoy2.prof\n' >"$T/cfg/override.yaml"
wait_live 2
grep -q envoy2.prof "$T/etc/envoy-rev2.json" || fail "override not in epoch 2"
note "override change: restart"

# 5. The mesh config, replaced by a rename as a ConfigMap update does.
printf 'defaultConfig:\n  concurrency: 2\n' >"$T/cfg/mesh.yaml.tmp"
mv "$T/cfg/mesh.yaml.tmp" "$T/cfg/mesh.yaml"
wait_live 3
# The new defaultConfig reaches the new epoch: its argv and its bootstrap.
conc=$(curl -s --max-time 2 "http://127.0.0.1:$ADMIN_PORT/server_info" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["command_line_options"]["concurrency"])')
[ "$conc" = 2 ] || fail "epoch 3 runs with concurrency $conc, not the mesh config's 2"
python3 - "$T/etc/envoy-rev3.json" <<'PY' || fail "epoch 3's bootstrap lacks the new ProxyConfig"
import json, sys
pc = json.load(open(sys.argv[1]))["node"]["metadata"]["PROXY_CONFIG"]
assert pc.get("concurrency") == 2, pc
PY
note "mesh config change: restart"

# 6. Certificates removed altogether, then a directory back.
rm -rf "$T/certs"
wait_live 4
# Fixed time: no further restart may follow (one would come within a debounce).
sleep 1.5
[ "$(starts)" = 4 ] || fail "$(starts) restarts after 5 changes"

kill -TERM "$AGENT_PID"
wait_exit "$AGENT_PID" 20 || fail "agent did not exit"
[ "$EXIT_CODE" = 0 ] || fail "agent exit code $EXIT_CODE"
echo PASS
