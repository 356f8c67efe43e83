#!/usr/bin/env bash
# Out of file descriptors (ulimit -n 64) with 100 connections to the status
# port: accept() failing with EMFILE pauses the listener instead of spinning
# (the log stays small, the CPU idle), and once the connections close the
# port serves again. With the default limits, sized from the open file
# limit, the same 100 connections leave readiness answered throughout.
. "$TOP/tests/lib.sh"

export ENVOY_EMU_ASSUME_XDS=1
cat >"$T/agent64" <<EOF
#!/bin/bash
ulimit -n 64
exec "$AGENT" "\$@"
EOF
chmod +x "$T/agent64"
AGENT=$T/agent64

cat >"$T/hold.py" <<'PY'
# hold.py PORT N SECONDS FLAG: opens N connections from 127.0.0.2, holds
# them for SECONDS, closes them.
import socket, sys, time
port, n, secs, flag = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
socks = []
for _ in range(n):
    s = socket.socket()
    s.bind(("127.0.0.2", 0))
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    socks.append(s)
open(flag, "w").write("holding\n")
time.sleep(secs)
for s in socks:
    s.close()
PY

# The agent's CPU time so far, in clock ticks (utime + stime).
cpu_ticks() {
	awk '{print $14 + $15}' "/proc/$AGENT_PID/stat"
}

# A run: the agent under ulimit -n 64 with the given environment, 100
# connections held for 4s; the log and CPU are measured over 3s of it.
run() {
	local name=$1 ticks0 ticks1 lines0 lines1 bytes0 bytes1
	shift
	STATUS_PORT=$(free_port)
	export "$@"
	start_agent
	wait_until 20 curl -sf "http://127.0.0.1:$STATUS_PORT/healthz/ready" ||
		fail "$name: agent not ready: $(tail "$T/agent.log")"
	spawn python3 "$T/hold.py" "$STATUS_PORT" 100 4 "$T/$name.flag"
	HOLD_PID=$LAST_PID
	wait_until 5 test -f "$T/$name.flag" || fail "$name: could not connect"
	# The connections met the limit: accept() failed and the listener paused.
	wait_until 10 log_has "port $STATUS_PORT: cannot accept connections" ||
		fail "$name: EMFILE was not met or not logged: $(tail -n 5 "$T/agent.log")"
	ticks0=$(cpu_ticks)
	lines0=$(grep -c accept "$T/agent.log")
	bytes0=$(stat -c %s "$T/agent.log")
	# Fixed time: the window over which the log and the CPU must stay still.
	sleep 3
	ticks1=$(cpu_ticks)
	lines1=$(grep -c accept "$T/agent.log")
	bytes1=$(stat -c %s "$T/agent.log")
	note "$name: $((ticks1 - ticks0)) ticks of CPU, $((lines1 - lines0)) lines about accept, $((bytes1 - bytes0)) bytes of log in 3s"
	[ $((lines1 - lines0)) -lt 100 ] ||
		fail "$name: $((lines1 - lines0)) lines about accept in 3s: $(grep accept "$T/agent.log" | tail -n 3)"
	[ $((bytes1 - bytes0)) -lt 100000 ] || fail "$name: the log grew by $((bytes1 - bytes0)) bytes in 3s"
	# 0.5s of CPU at 100 ticks a second.
	[ $((ticks1 - ticks0)) -lt "$(( $(getconf CLK_TCK) / 2 ))" ] ||
		fail "$name: the agent used $((ticks1 - ticks0)) ticks of CPU in 3s"
	wait_exit "$HOLD_PID" 10 || fail "$name: holder did not end"
	wait_until 10 curl -sf --max-time 2 "http://127.0.0.1:$STATUS_PORT/healthz/ready" ||
		fail "$name: not served after the connections closed: $(tail -n 5 "$T/agent.log")"
	kill -0 "$AGENT_PID" || fail "$name: agent died"
	kill -TERM "$AGENT_PID"
	wait_exit "$AGENT_PID" 10 || fail "$name: agent did not stop"
	cp "$T/agent.log" "$T/$name.log"
}

note "limits above what 64 descriptors allow: accept() runs out"
run emfile STATUS_MAX_CONNECTIONS=1000 STATUS_MAX_CONNECTIONS_PER_PEER=1000
grep -q "cannot accept connections: Too many open files" "$T/emfile.log" ||
	fail "EMFILE was not met or not logged: $(tail -n 5 "$T/emfile.log")"
grep -q "STATUS_MAX_CONNECTIONS=1000: more than the open file limit" "$T/emfile.log" ||
	fail "the limit above the open file limit was not warned about"

note "default limits, from the open file limit"
unset STATUS_MAX_CONNECTIONS STATUS_MAX_CONNECTIONS_PER_PEER
STATUS_PORT=$(free_port)
start_agent
wait_until 20 curl -sf "http://127.0.0.1:$STATUS_PORT/healthz/ready" ||
	fail "agent not ready: $(tail "$T/agent.log")"
grep -q "at most 8 connections each, 2 per client address" "$T/agent.log" ||
	fail "limits not sized from ulimit -n 64: $(grep 'status server' "$T/agent.log")"
spawn python3 "$T/hold.py" "$STATUS_PORT" 100 4 "$T/default.flag"
wait_until 5 test -f "$T/default.flag" || fail "could not connect"
wait_until 10 accepted_all "$STATUS_PORT" || fail "the agent did not take the connections"
for i in 1 2 3 4 5; do
	[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
		"http://127.0.0.1:$STATUS_PORT/healthz/ready")" = 200 ] ||
		fail "probe $i not answered while 100 connections are held: $(tail -n 5 "$T/agent.log")"
done
! grep -q "cannot accept connections" "$T/agent.log" ||
	fail "accept() ran out of descriptors with the default limits"
echo PASS
