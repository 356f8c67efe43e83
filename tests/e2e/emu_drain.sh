#!/usr/bin/env bash
# /drain_listeners on the stand-in: graceful drains answer with
# "connection: close" and close after the response, never mid-request;
# inboundonly limits it to inbound listeners; the drained listeners stop
# after --drain-time-s unless skip_exit; without graceful they stop at once;
# the gradual strategy closes every connection by the end of the drain time.
. "$TOP/tests/lib.sh"
. "$TOP/tests/envoy-emu/e2e.sh"

IN=$(free_port)
OUTP=$(free_port)
IN2=$(free_port)
emu_config "$T/emu.json" "virtualInbound:$IN" "outbound:$OUTP" "inbound2:$IN2:INBOUND"
stop() {
	kill -TERM "$1"
	wait_exit "$1" 5 || fail "pid $1 did not stop"
	[ "$EXIT_CODE" = 0 ] || fail "pid $1 exit code $EXIT_CODE"
}

# A client with keep-alive connections, driven by lines on its stdin:
#   req NAME PORT  one request on connection NAME (opened on first use);
#                  prints "NAME <status> close|keep" and, once the server
#                  closed the connection after a close response, "NAME eof"
#   half NAME PORT send half a request; "rest NAME" sends the rest.
cat >"$T/client.py" <<'PY'
import socket, sys
conns = {}
def response(name, s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            print(name, "eof-before-response", flush=True); return
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    n = int([l for l in lines if l.lower().startswith("content-length:")][0].split(":")[1])
    while len(body) < n:
        body += s.recv(4096)
    close = any(l.lower() == "connection: close" for l in lines)
    print(name, lines[0].split()[1], "close" if close else "keep", body.decode().strip(), flush=True)
    if close:
        s.settimeout(5)
        print(name, "eof" if s.recv(1) == b"" else "data-after-close", flush=True)
        del conns[name]
for line in sys.stdin:
    w = line.split()
    if w[0] in ("req", "half"):
        name, port = w[1], int(w[2])
        if name not in conns:
            conns[name] = socket.create_connection(("127.0.0.1", port), timeout=5)
        s = conns[name]
        if w[0] == "req":
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"); response(name, s)
        else:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab")
    elif w[0] == "rest":
        s = conns[w[1]]; s.sendall(b"cde"); response(w[1], s)
PY
client() {
	python3 "$T/client.py" <"$T/script" >"$T/client.out" 2>&1 || fail "client: $(cat "$T/client.out")"
}
has() {
	grep -q "^$1" "$T/client.out" || fail "no \"$1\" in: $(cat "$T/client.out")"
}

note "graceful, inbound only, immediate strategy"
emu_start 0 --drain-strategy immediate --drain-time-s 2
P=$LAST_PID
wait_emu_epoch 0
mkfifo "$T/script"
python3 "$T/client.py" <"$T/script" >"$T/client.out" 2>&1 &
CLIENT=$!
SPAWNED+=("$CLIENT")
exec 7>"$T/script"
echo "req in $IN" >&7
echo "req out $OUTP" >&7
echo "half slow $IN" >&7
# The first two answered, the half request's connection open: drain now.
wait_until 10 grep -q "^out 200" "$T/client.out" || fail "client: $(cat "$T/client.out")"
wait_until 10 sh -c "[ \"\$(curl -s 'http://127.0.0.1:$ADMIN/stats?filter=^listener\.127\.0\.0\.1_$IN\.downstream_cx_active$')\" = 'listener.127.0.0.1_$IN.downstream_cx_active: 2' ]" ||
	fail "half request not connected"
[ "$(admin_post '/drain_listeners?inboundonly&graceful')" = OK ] || fail "drain_listeners"
echo "rest slow" >&7
echo "req in $IN" >&7
echo "req out $OUTP" >&7
echo "req out $OUTP" >&7
exec 7>&-
wait_exit "$CLIENT" 10 || fail "client hung"
cat "$T/client.out"
[ "$(grep -c '^in 200 keep' "$T/client.out")" = 1 ] || fail "inbound before the drain"
has "slow 200 close"
has "slow eof"
has "in 200 close"
has "in eof"
[ "$(grep -c '^out 200 keep' "$T/client.out")" = 3 ] || fail "outbound drained"
listen_ok "$IN" || fail "inbound stopped before the drain time"
curl -s -i --max-time 5 "http://127.0.0.1:$IN2/" | grep -qi '^connection: close' ||
	fail "traffic_direction INBOUND listener not draining"
wait_until 5 sh -c "! curl -s --max-time 1 http://127.0.0.1:$IN/ >/dev/null" ||
	fail "inbound listener not stopped after the drain time"
[ "$(http_code "http://127.0.0.1:$IN2/")" = 000 ] || fail "INBOUND listener not stopped"
listen_ok "$OUTP" || fail "outbound listener stopped"
emu_live || fail "draining changed /ready"
[ "$(admin_post '/drain_listeners?graceful')" = OK ] || fail "second drain"
stop "$P"

note "skip_exit needs graceful; graceful skip_exit keeps the listeners"
emu_start 0 --drain-strategy immediate --drain-time-s 1
P=$LAST_PID
wait_emu_epoch 0
[ "$(http_code -X POST "http://127.0.0.1:$ADMIN/drain_listeners?skip_exit")" = 400 ] ||
	fail "skip_exit alone not 400"
[ "$(admin_post '/drain_listeners?skip_exit')" = "skip_exit requires graceful" ] || fail "400 body"
[ "$(admin_post '/drain_listeners?inboundonly&graceful&skip_exit')" = OK ] || fail "drain"
# Fixed time: past the 1 s drain time (no event marks it) the listener must stay.
sleep 1.5
curl -s -i --max-time 5 "http://127.0.0.1:$OUTP/" | grep -qi '^connection: close' &&
	fail "outbound listener drained by an inbound-only drain"
listen_ok "$IN" || fail "skip_exit: listener stopped"
curl -s -i --max-time 5 "http://127.0.0.1:$IN/" | grep -qi '^connection: close' ||
	fail "draining listener without connection: close"
stop "$P"

note "not graceful: every listener stops at once"
emu_start 0
P=$LAST_PID
wait_emu_epoch 0
[ "$(admin_post /drain_listeners)" = OK ] || fail "drain"
[ "$(http_code "http://127.0.0.1:$IN/")" = 000 ] || fail "inbound still accepting"
[ "$(http_code "http://127.0.0.1:$OUTP/")" = 000 ] || fail "outbound still accepting"
emu_live || fail "admin gone"
stop "$P"

note "gradual strategy: all connections close by the end of the drain time"
emu_start 0 --drain-time-s 1
P=$LAST_PID
wait_emu_epoch 0
[ "$(admin_post '/drain_listeners?graceful&skip_exit')" = OK ] || fail "drain"
# Fixed time: the 1 s drain time must be over, and no event marks its end.
sleep 1.2
for i in 1 2 3 4 5; do
	curl -s -i --max-time 5 "http://127.0.0.1:$OUTP/" | grep -qi '^connection: close' ||
		fail "gradual drain: response $i kept the connection after the drain time"
done
stop "$P"
echo "drain ok"
