# Helpers for the stand-in's own end-to-end tests (tests/e2e/emu_*.sh). Source
# it after tests/lib.sh:
#   . "$TOP/tests/lib.sh"
#   . "$TOP/tests/envoy-emu/e2e.sh"
# Every process goes through spawn (lib.sh), so the test's exit stops it.

ADMIN=$(free_port)

# emu_config FILE [LISTENER...]: a bootstrap with the admin on $ADMIN and one
# listener per "name:port[:INBOUND]". EMU_CONFIG_EXTRA (JSON members, with a
# leading comma) is added at the top level.
emu_config() {
	local file=$1 spec name port dir sep="" ls=""
	shift
	for spec in "$@"; do
		IFS=: read -r name port dir <<<"$spec"
		ls="$ls$sep{\"name\":\"$name\",\"address\":{\"socket_address\":"
		ls="$ls{\"address\":\"127.0.0.1\",\"port_value\":$port}}"
		[ -n "$dir" ] && ls="$ls,\"traffic_direction\":\"$dir\""
		ls="$ls}"
		sep=","
	done
	cat >"$file" <<EOF
{"node":{"id":"sidecar~127.0.0.1~emu.test~test.svc.cluster.local","cluster":"emu.test"},
 "admin":{"address":{"socket_address":{"address":"127.0.0.1","port_value":$ADMIN}}},
 "static_resources":{"listeners":[$ls]}${EMU_CONFIG_EXTRA:-}}
EOF
}

# emu_start EPOCH ARGS...: the stand-in at that epoch with this test's base
# id and the agent's log format; its stderr in $T/emu<EPOCH>.log, its pid in
# $LAST_PID and EMU_PIDS[EPOCH].
declare -A EMU_PIDS=()
emu_start() {
	local epoch=$1
	shift
	spawn "$EMU" -c "${EMU_JSON:-$T/emu.json}" --base-id "$BASE_ID" \
		--restart-epoch "$epoch" \
		--log-format "[Envoy (Epoch $epoch)] [%Y-%m-%d %T.%e][%t][%l][%n] %v" \
		"$@" 2>>"$T/emu$epoch.log"
	EMU_PIDS[$epoch]=$LAST_PID
}

# emu_run SECONDS ARGS...: runs the stand-in in the foreground, bounded;
# stdout+stderr in $OUT, status in $RC.
emu_run() {
	local limit=$1
	shift
	OUT=$(timeout "$limit" "$EMU" "$@" 2>&1)
	RC=$?
}

admin_get() {
	curl -s --max-time 5 "http://127.0.0.1:$ADMIN$1"
}

admin_post() {
	curl -s --max-time 5 -X POST "http://127.0.0.1:$ADMIN$1"
}

# The value of one stat (exact name), or nothing.
stat_of() {
	admin_get "/stats?filter=^$(printf '%s' "$1" | sed 's/\./\\./g')\$" |
		awk -F': ' -v n="$1" '$1 == n { print $2 }'
}

ready_is() {
	[ "$(admin_get /ready)" = "$1" ]
}

server_state_is() {
	[ "$(stat_of server.state)" = "$1" ]
}

emu_live() {
	[ "$(http_code "http://127.0.0.1:$ADMIN/ready")" = 200 ]
}

# wait_emu_epoch EPOCH: until that epoch holds the admin port and is LIVE.
epoch_live() {
	admin_get /server_info | python3 -c 'import json,sys
d=json.load(sys.stdin)
sys.exit(0 if d["state"]=="LIVE" and d["command_line_options"]["restart_epoch"]=='"$1"' else 1)' 2>/dev/null
}
wait_emu_epoch() {
	wait_until "${2:-10}" epoch_live "$1" ||
		fail "epoch $1 not LIVE: $(tail -n 5 "$T/emu$1.log")"
}

# listen_ok PORT: a request to the listener answers 200.
listen_ok() {
	[ "$(http_code "http://127.0.0.1:$1/")" = 200 ]
}

# alive PID
alive() {
	kill -0 "$1" 2>/dev/null
}

# The stand-in processes of this test: children of this shell running $EMU
# with its --base-id. (Under AddressSanitizer an exiting process briefly has
# a child with the same command line, the leak checker's tracer: not ours.)
emu_procs_list() {
	local f pid
	grep -laP "^\\Q$EMU\\E\\x00.*--base-id\\x00$BASE_ID\\x00" /proc/[0-9]*/cmdline \
		2>/dev/null | while read -r f; do
		pid=${f#/proc/}
		pid=${pid%/cmdline}
		[ "$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" = $$ ] || continue
		echo "$pid: $(tr '\0' ' ' <"$f" 2>/dev/null | cut -c1-120)"
	done
}
emu_procs() {
	emu_procs_list | wc -l
}

# monitor_procs FILE: in the background, the highest emu_procs seen goes to
# FILE, until $T/stop exists (60 s at most).
monitor_procs() {
	(
		max=0
		end=$((SECONDS + 60))
		while [ ! -f "$T/stop" ] && [ "$SECONDS" -lt "$end" ]; do
			emu_procs_list >"$T/procs.now"
			n=$(wc -l <"$T/procs.now")
			if [ "$n" -gt "$max" ]; then
				max=$n
				echo "$max" >"$1"
				cp "$T/procs.now" "$1.pids"
			fi
			sleep 0.02	# fixed time: the sampling period
		done
	) &
	SPAWNED+=("$!")
	MONITOR_PID=$!
}

# check_load FILE EPOCHS...: no failed request, each epoch answered.
check_load() {
	local file=$1
	shift
	python3 - "$file" "$@" <<'PY' || fail "load $file: $(cat "$file")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["failed"] == 0, "failed %d: %s" % (d["failed"], d["errors"])
assert d["sent"] == d["ok"] and d["sent"] > 100, d
missing = [e for e in sys.argv[2:] if d["epochs"].get(e, 0) == 0]
assert not missing, "epochs not seen: %s" % missing
print(sys.argv[1], "sent", d["sent"], "retried", d["retried"], "epochs", d["epochs"])
PY
}
