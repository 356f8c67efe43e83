#!/usr/bin/env bash
# Requests evhttp 2.1 gets wrong, answered properly by the status port:
# CONNECT is refused with a length and the connection closed (not held for
# the idle time); a request in absolute form ("GET http://host/path") heeds
# "Connection: close", and keeps the connection otherwise; a request whose
# length is ambiguous (two different Content-Length headers, or one with
# Transfer-Encoding) is refused with 400 and not acted on.
. "$TOP/tests/lib.sh"

# A long idle time, so that "closed at once" cannot be the idle timeout.
export ENVOY_EMU_ASSUME_XDS=1 STATUS_IDLE_TIMEOUT=30s
start_agent
wait_until 20 curl -sf "http://127.0.0.1:$STATUS_PORT/healthz/ready" ||
	fail "agent not ready: $(tail "$T/agent.log")"

cat >"$T/hostile.py" <<'PY'
import socket, sys, time
port = int(sys.argv[1])

def exchange(req, wait_close=True):
    """Sends req; returns (head, body, closed within 3s)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    s.sendall(req)
    data = b""
    closed = False
    t0 = time.time()
    while time.time() - t0 < 3:
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = True
            break
        if not d:
            closed = True
            break
        data += d
        if not wait_close and b"\r\n\r\n" in data:
            break
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode("latin-1"), body, closed

def header(head, name):
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == name.lower():
            return v.strip()
    return None

failures = []
class Failed(Exception):
    pass
def check(what, cond, head):
    if not cond:
        failures.append("%s: %r" % (what, head))
        raise Failed()

def connect():
    """CONNECT: an answer with a length, then the end of the connection."""
    head, body, closed = exchange(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    check("CONNECT status", head.startswith("HTTP/1.1 501 "), head)
    check("CONNECT Content-Length", header(head, "Content-Length") == str(len(body)), head)
    check("CONNECT Connection: close", header(head, "Connection") == "close", head)
    check("CONNECT connection closed at once", closed, head)

def absolute_close():
    """Absolute form with Connection: close."""
    head, body, closed = exchange(b"GET http://example.com/healthz/ready HTTP/1.1\r\n"
                                  b"Host: example.com\r\nConnection: close\r\n\r\n")
    check("absolute form status", head.startswith("HTTP/1.1 200 "), head)
    check("absolute form Connection: close", header(head, "Connection") == "close", head)
    check("absolute form connection closed", closed, head)

def absolute_keep():
    """Absolute form, kept alive: two requests on one connection."""
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    for i in range(2):
        s.sendall(b"GET http://example.com/healthz/ready HTTP/1.1\r\nHost: example.com\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            try:
                d = s.recv(65536)
            except OSError:
                d = b""
            check("absolute form kept alive (request %d)" % (i + 1), d, data)
            data += d
        check("absolute form kept alive status", data.startswith(b"HTTP/1.1 200 "), data)
        check("absolute form kept alive, no close", b"Connection: close" not in data, data)
    s.close()

def ambiguous():
    """Ambiguous lengths: refused, the connection closed, nothing done."""
    for req in (b"POST /drain HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello",
            b"POST /drain HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 0\r\n\r\nhello",
            b"POST /drain HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"):
        head, body, closed = exchange(req)
        check("ambiguous length status (%r)" % req[:80], head.startswith("HTTP/1.1 400 "), head)
        check("ambiguous length connection closed", closed, head)
    # The same length twice is no ambiguity.
    head, body, closed = exchange(b"GET /healthz/ready HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                  b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    check("repeated equal length", head.startswith("HTTP/1.1 200 "), head)

for part in (connect, absolute_close, absolute_keep, ambiguous):
    try:
        part()
    except Failed:
        pass
for f in failures:
    print("FAIL: " + f)
if failures:
    sys.exit(1)
print("ok")
PY

python3 "$T/hostile.py" "$STATUS_PORT" || fail "hostile requests"
! log_has "POST /drain" || fail "a POST /drain with an ambiguous length was acted on"
kill -0 "$AGENT_PID" || fail "agent died"
[ "$(http_code "http://127.0.0.1:$STATUS_PORT/healthz/ready")" = 200 ] || fail "agent hurt"
echo PASS
