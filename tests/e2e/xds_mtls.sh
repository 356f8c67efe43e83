#!/usr/bin/env bash
# The relay's upstream over mutual TLS, with certificates made here by
# openssl: the control plane requires a client certificate from our CA, the
# agent presents cert-chain.pem/key.pem from --certDir and checks the
# server against root-cert.pem, with ISTIOD_SAN naming the server (the
# address is an IP). With a wrong CA the connection fails with a clear log
# line and is retried; once the right root is in place the retry succeeds.
. "$TOP/tests/lib.sh"

XDS_PORT=$(free_port)
cat >"$T/resources.json" <<'JSON'
{"resources": {
 "type.googleapis.com/envoy.config.cluster.v3.Cluster": [{"name": "c1"}],
 "type.googleapis.com/envoy.config.listener.v3.Listener": [{"name": "l1"}]}}
JSON

pki="$T/pki"
mkdir -p "$pki" "$T/certs"
mkcert() {	# mkcert NAME CA SUBJECT EXT
	openssl req -new -newkey rsa:2048 -nodes -keyout "$pki/$1-key.pem" \
		-subj "$3" -out "$pki/$1.csr" 2>/dev/null || fail "openssl req $1"
	printf '%s\n' "$4" >"$pki/$1.ext"
	openssl x509 -req -in "$pki/$1.csr" -CA "$pki/$2.pem" -CAkey "$pki/$2-key.pem" \
		-CAcreateserial -days 1 -extfile "$pki/$1.ext" -out "$pki/$1.pem" 2>/dev/null ||
		fail "openssl x509 $1"
}
for ca in ca other-ca; do
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/O=test/CN=$ca" \
		-keyout "$pki/$ca-key.pem" -out "$pki/$ca.pem" 2>/dev/null || fail "openssl $ca"
done
mkcert server ca "/O=test/CN=istiod" "subjectAltName=DNS:istiod.istio-system.svc
extendedKeyUsage=serverAuth"
mkcert client ca "/O=test/CN=workload" "subjectAltName=URI:spiffe://cluster.local/ns/default/sa/default
extendedKeyUsage=clientAuth"
cp "$pki/client.pem" "$T/certs/cert-chain.pem"
cp "$pki/client-key.pem" "$T/certs/key.pem"
cp "$pki/other-ca.pem" "$T/certs/root-cert.pem"	# wrong, for now

start_cp --cert "$pki/server.pem" --key "$pki/server-key.pem" --client-ca "$pki/ca.pem"
export ISTIOD_SAN=istiod.istio-system.svc
# start_agent's NONE is overridden by the later flag.
start_agent --controlPlaneAuthPolicy MUTUAL_TLS

note "wrong CA: fails clearly, and is retried"
failures() { grep -c "upstream 127.0.0.1:$XDS_PORT failed: .*\(CERTIFICATE_VERIFY_FAILED\|certificate verify failed\|Handshake failed\|handshake\)" "$T/agent.log"; }
twice() { [ "$(failures)" -ge 2 ]; }
wait_until 15 twice || fail "no clear TLS failure, retried: $(grep -i xds "$T/agent.log" | tail -n 5)"
grep "upstream 127.0.0.1:$XDS_PORT failed" "$T/agent.log" | head -n 1 >&2
[ -z "$(live_epoch)" ] || fail "LIVE with the wrong CA"

note "the right CA: the next retry connects"
cp "$pki/ca.pem" "$T/certs/root-cert.pem"
live() { [ -n "$(live_epoch)" ]; }
wait_until 20 live || fail "not LIVE over mTLS: $(tail -n 5 "$T/agent.log")"
grep -q "new sotw stream" "$T/xds-server.log" || fail "no stream at the control plane"
grep -q "ACK type.googleapis.com/envoy.config.listener.v3.Listener" "$T/xds-server.log" ||
	fail "no LDS ACK over mTLS"
echo PASS
