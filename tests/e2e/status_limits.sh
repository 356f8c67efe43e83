#!/usr/bin/env bash
# The status port's limits: an oversized header, a malformed request line,
# garbage and an oversized body are answered (400/413/431) and closed; an
# idle or stalled connection is closed after STATUS_IDLE_TIMEOUT; at
# STATUS_MAX_CONNECTIONS the oldest idle connection is closed to admit a
# new client; a client that trickles its headers is cut off the idle time
# after it opened. None of it crashes or stalls the agent.
. "$TOP/tests/lib.sh"

export ENVOY_EMU_ASSUME_XDS=1 STATUS_IDLE_TIMEOUT=3s STATUS_MAX_CONNECTIONS=8 \
	STATUS_MAX_CONNECTIONS_PER_PEER=8
start_agent
wait_until 20 curl -sf "http://127.0.0.1:$STATUS_PORT/healthz/ready" ||
	fail "agent not ready: $(tail "$T/agent.log")"

cat >"$T/limits.py" <<'PY'
import os, random, socket, sys, time
port = int(sys.argv[1])
what = sys.argv[2]

def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s

def answer(s):
    """Everything until the server closes; the time it took."""
    t0 = time.time(); data = b""
    while True:
        try:
            d = s.recv(65536)
        except socket.timeout:
            print("FAIL: not closed within 10s, got %r" % data[:200]); sys.exit(1)
        except ConnectionResetError:
            break
        if not d: break
        data += d
    return data, time.time() - t0

def expect(req, codes):
    s = conn(); s.sendall(req)
    data, _ = answer(s)
    status = data.split(b"\r\n", 1)[0]
    if not any((" %d " % c).encode() in status + b" " for c in codes):
        print("FAIL: %r... -> %r, want one of %s" % (req[:40], status, codes)); sys.exit(1)

if what == "bad":
    expect(b"GET /healthz/ready HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", [400, 413, 431])
    expect(b"HELLO\r\n\r\n", [400])
    expect(b"GET /healthz/ready HTTP/9.9\r\n\r\n", [400, 505])
    expect(b"POST /drain HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 100000, [413])
    expect(b"GET /healthz/ready HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", [400])
    expect(b"GET /healthz/ready HTTP/1.1\r\nBad Header Line\r\n\r\n", [400])
    rnd = random.Random(7)
    for i in range(200):
        s = conn()
        s.sendall(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 2000))) + b"\r\n\r\n")
        s.close()
elif what == "idle":
    s = conn()
    _, took = answer(s)
    if not 2.0 <= took <= 6.0:
        print("FAIL: idle connection closed after %.1fs" % took); sys.exit(1)
    s = conn(); s.sendall(b"GET /healthz/ready HTTP/1.1\r\nHo")
    _, took = answer(s)
    if not 2.0 <= took <= 6.0:
        print("FAIL: stalled request closed after %.1fs" % took); sys.exit(1)
elif what == "trickle":
    # Every connection the port allows, each sending one header byte every
    # half second: all must be cut off about the idle time after opening.
    socks = [conn() for _ in range(int(sys.argv[3]))]
    for s in socks:
        s.sendall(b"GET /healthz/ready HTTP/1.1\r\n")
    open(sys.argv[4], "w").write("trickling\n")
    t0 = time.time(); alive = set(range(len(socks)))
    while alive and time.time() - t0 < 10:
        for i in list(alive):
            try:
                socks[i].sendall(b"X")
            except OSError:
                alive.discard(i)
        time.sleep(0.5)
    if alive:
        print("FAIL: %d trickling connections still open after %.1fs" %
              (len(alive), time.time() - t0)); sys.exit(1)
elif what == "hold":
    socks = [conn() for _ in range(int(sys.argv[3]))]
    open(sys.argv[4], "w").write("held\n")
    time.sleep(float(sys.argv[5]))
    # The first, the oldest, was closed to admit the test's 9th.
    socks[0].settimeout(0.5)
    try:
        gone = socks[0].recv(1) == b""
    except ConnectionResetError:
        gone = True
    except socket.timeout:
        gone = False
    if not gone:
        print("FAIL: the oldest idle connection is still open"); sys.exit(1)
print("ok")
PY

note "malformed and oversized requests"
python3 "$T/limits.py" "$STATUS_PORT" bad || fail "malformed requests"
[ "$(http_code "http://127.0.0.1:$STATUS_PORT/healthz/ready")" = 200 ] || fail "agent hurt"
kill -0 "$AGENT_PID" || fail "agent died"
! log_has "POST /drain" || fail "an oversized POST /drain was acted on"

note "connection limit"
spawn python3 "$T/limits.py" "$STATUS_PORT" hold 8 "$T/held" 2
HOLD_PID=$LAST_PID
wait_until 5 test -f "$T/held" || fail "could not open 8 connections"
# The 9th connection comes after the agent took the 8.
wait_until 10 accepted_all "$STATUS_PORT" || fail "the agent did not take the 8 connections"
c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$STATUS_PORT/healthz/ready")
[ "$c" = 200 ] || fail "a 9th connection was not served ($c)"
log_has "connection limits reached" || fail "the limit was not logged"
wait_exit "$HOLD_PID" 10 || fail "holder did not end"
[ "$EXIT_CODE" = 0 ] || fail "the oldest idle connection was not closed"

note "clients trickling their headers"
spawn python3 "$T/limits.py" "$STATUS_PORT" trickle 8 "$T/trickling"
TRICKLE_PID=$LAST_PID
wait_until 5 test -f "$T/trickling" || fail "could not open 8 connections"
wait_exit "$TRICKLE_PID" 15 || fail "trickler did not end"
[ "$EXIT_CODE" = 0 ] || fail "trickling clients were not cut off"
[ "$(http_code "http://127.0.0.1:$STATUS_PORT/healthz/ready")" = 200 ] ||
	fail "port not served after the trickling clients"

note "idle and stalled connections"
python3 "$T/limits.py" "$STATUS_PORT" idle || fail "idle limits"
[ "$(http_code "http://127.0.0.1:$STATUS_PORT/healthz/ready")" = 200 ] || fail "agent hurt"
echo PASS
