#!/usr/bin/env bash
# The stand-in's command line and bootstrap checks: unknown flags and bad
# values exit 1 with Envoy's messages; both flag forms work; a bad bootstrap
# exits 1 with "error initializing configuration".
. "$TOP/tests/lib.sh"
. "$TOP/tests/envoy-emu/e2e.sh"

emu_config "$T/emu.json"

# expect_fail TEXT ARGS...: exit 1, output has TEXT.
expect_fail() {
	local text=$1
	shift
	emu_run 10 "$@"
	[ "$RC" = 1 ] || fail "$* exited $RC, not 1: $OUT"
	case $OUT in
	*"$text"*) ;;
	*) fail "$*: no \"$text\" in: $OUT" ;;
	esac
}

note "unknown flags, TCLAP style"
expect_fail "PARSE ERROR: Argument: --bogus" -c "$T/emu.json" --bogus 1
expect_fail "Couldn't find match for argument" -c "$T/emu.json" --bogus
expect_fail "PARSE ERROR: Argument: --max-obj-name-len" --max-obj-name-len 189
expect_fail "PARSE ERROR: Argument: --v2-config-only" --v2-config-only
expect_fail "Brief USAGE" stray-positional
expect_fail "PARSE ERROR: Argument: --disable-hot-restart=yes" --disable-hot-restart=yes

note "bad values"
expect_fail "Couldn't read argument value from string 'abc'" --restart-epoch abc
expect_fail "Couldn't read argument value from string '-1'" --restart-epoch=-1
expect_fail "Couldn't read argument value from string 'x'" --base-id x
expect_fail "Couldn't read argument value from string '1.5'" --drain-time-s 1.5
expect_fail "Missing a value for this argument!" --restart-epoch
expect_fail "error: unknown IP address version 'v5'" --local-address-ip-version v5
expect_fail "error: unknown drain-strategy 'sometimes'" --drain-strategy sometimes
expect_fail "error: invalid log level specified 'loud'" -l loud
expect_fail "component log level not correctly specified 'misc'" --component-log-level misc
expect_fail "invalid log level specified 'loud'" --component-log-level misc:loud

note "bad bootstraps"
expect_fail "At least one of --config-path" --base-id "$BASE_ID"
expect_fail "error initializing configuration '$T/missing.json': Invalid path" \
	-c "$T/missing.json" --base-id "$BASE_ID"
echo '{"node": {"id": "x"},' >"$T/bad.json"
expect_fail "Unable to parse JSON as proto" -c "$T/bad.json" --base-id "$BASE_ID"
echo '[1, 2]' >"$T/array.json"
expect_fail "Unable to parse JSON as proto" -c "$T/array.json" --base-id "$BASE_ID"
cat >"$T/noadmin.json" <<J
{"node":{"id":"n1"},"static_resources":{}}
J
expect_fail "admin.address.socket_address" -c "$T/noadmin.json" --base-id "$BASE_ID"
cat >"$T/nonode.json" <<J
{"admin":{"address":{"socket_address":{"address":"127.0.0.1","port_value":$ADMIN}}}}
J
expect_fail "node 'id' is required" -c "$T/nonode.json" --base-id "$BASE_ID"
EMU_CONFIG_EXTRA=',"bogus_field":{}' emu_config "$T/unknown.json"
expect_fail "bogus_field: Cannot find field" -c "$T/unknown.json" --base-id "$BASE_ID"
grep -q '\[critical\]\[main\] error initializing configuration' <<<"$OUT" ||
	fail "not logged as critical: $OUT"

note "--version, --help, --hot-restart-version exit 0"
emu_run 5 --version
[ "$RC" = 0 ] && [[ $OUT == *"version: "*"/1.30.1/Clean/RELEASE/BoringSSL"* ]] || fail "--version: $RC $OUT"
emu_run 5 --hot-restart-version
[ "$RC" = 0 ] && [ "$OUT" = 11.104 ] || fail "--hot-restart-version: $RC $OUT"
emu_run 5 --help
[ "$RC" = 0 ] && [[ $OUT == *"--drain-strategy"* ]] || fail "--help: $RC $OUT"

note "node id from --service-node; unknown fields allowed by flag; = forms"
spawn "$EMU" -c "$T/nonode.json" --base-id="$BASE_ID" --service-node=node-from-flag \
	--service-cluster cluster-from-flag --restart-epoch=0 --drain-time-s=7 \
	--parent-shutdown-time-s 9 --concurrency=3 -l=debug --drain-strategy=immediate \
	--local-address-ip-version=v6 --file-flush-interval-msec 1000 \
	--component-log-level=upstream:trace,misc:error --socket-path "@emu-cli-$BASE_ID" \
	2>"$T/emu0.log"
PID=$LAST_PID
wait_until 5 emu_live || fail "not live: $(cat "$T/emu0.log")"
admin_get /server_info >"$T/info.json"
python3 - "$T/info.json" "$BASE_ID" <<'PY' || fail "server_info: $(cat "$T/info.json")"
import json, sys
d = json.load(open(sys.argv[1]))
o = d["command_line_options"]
assert d["node"]["id"] == "node-from-flag", d["node"]
assert d["node"]["cluster"] == "cluster-from-flag", d["node"]
assert o["service_node"] == "node-from-flag" and o["service_cluster"] == "cluster-from-flag"
assert o["base_id"] == sys.argv[2], o["base_id"]
assert o["restart_epoch"] == 0 and o["concurrency"] == 3
assert o["drain_time"] == "7s" and o["parent_shutdown_time"] == "9s", o
assert o["drain_strategy"] == "Immediate" and o["local_address_ip_version"] == "v6"
assert o["log_level"] == "debug" and o["component_log_level"] == "upstream:trace,misc:error"
assert o["file_flush_interval"] == "1s", o["file_flush_interval"]
assert o["socket_path"].startswith("@emu-cli-")
PY
grep -q '\[debug\]\[main\]' "$T/emu0.log" || fail "-l=debug: no debug lines"
kill -TERM "$PID"
wait_exit "$PID" 5 || fail "did not exit on SIGTERM"
[ "$EXIT_CODE" = 0 ] || fail "exit $EXIT_CODE"

note "-l warning hides info; unknown fields allowed with the flag"
spawn "$EMU" -c "$T/unknown.json" --base-id "$BASE_ID" -l warning \
	--allow-unknown-static-fields 2>"$T/emu1.log"
PID=$LAST_PID
wait_until 5 emu_live || fail "not live: $(cat "$T/emu1.log")"
grep -q '\[info\]' "$T/emu1.log" && fail "-l warning logged info: $(cat "$T/emu1.log")"
grep -q '\[warning\]\[misc\] Unknown field "bogus_field"' "$T/emu1.log" ||
	fail "no warning about the unknown field: $(cat "$T/emu1.log")"

note "admin port in use, socket in use"
expect_fail "cannot bind '127.0.0.1:$ADMIN'" -c "$T/unknown.json" --allow-unknown-static-fields \
	--base-id "$((BASE_ID + 1))"
expect_fail "unable to bind domain socket with base_id=$((BASE_ID * 10)), id=0" \
	-c "$T/unknown.json" --allow-unknown-static-fields --base-id "$BASE_ID"
admin_post /quitquitquit >/dev/null
wait_exit "$PID" 5 || fail "did not quit"
[ "$EXIT_CODE" = 0 ] || fail "quitquitquit exit $EXIT_CODE"
echo "command line ok"
