#!/bin/sh
# Installs the Debian packages the build, the tests, the fuzzers, the
# benchmarks and `make local` need, when they are missing. As root it runs
# apt-get; otherwise it prints the exact command to run and fails.
#
# Each package is here for a file the Makefile or the tests use; a fresh
# Debian root proves the list (tests/fresh-check.sh). Packages are installed
# without their recommendations, so anything only recommended is named too.
set -eu

pkgs="
build-essential
pkg-config
libevent-dev
libjansson-dev
libssl-dev
libprotobuf-c-dev
protobuf-c-compiler
libgrpc-dev
libyaml-dev
clang
libclang-rt-dev
protobuf-compiler
libprotobuf-dev
python3
python3-protobuf
python3-yaml
curl
ca-certificates
iproute2
iptables
util-linux
procps
wrk
prometheus
mandoc
openssl
"
# Why each one:
#   build-essential     cc, make, ar, readelf (tests/e2e/ship_install.sh), libc.a
#                       and libstdc++ for the static agent
#   pkg-config          every library's flags (Makefile)
#   lib*-dev            the headers and static archives of libevent (with its
#                       pthreads and OpenSSL parts), jansson, OpenSSL,
#                       protobuf-c, gRPC core (which brings abseil, re2, c-ares
#                       and zlib) and libyaml
#   protobuf-c-compiler protoc-c, for the xDS messages (Makefile)
#   clang               the fuzz harnesses (make fuzz); clang only recommends
#   libclang-rt-dev     libFuzzer's runtime and the sanitizers' for clang
#   protobuf-compiler   protoc, for Envoy's descriptor set (tests/tools/envoy-api.sh)
#   libprotobuf-dev     google/protobuf/*.proto, which Envoy's .proto files import
#   python3, python3-protobuf, python3-yaml
#                       test helpers; Envoy API validation (json_format);
#                       the container template checks (tests/ship/container.py)
#   curl                HTTP from the tests and benchmarks
#   ca-certificates     TLS to the npm registry (the interop tests' packages)
#   iproute2, iptables  network namespaces and interception tests; ss (tests/lib.sh)
#   util-linux          unshare, setpriv, setsid, flock
#   procps              ps (tests/unit/test_spawn.c)
#   wrk                 the readiness benchmark
#   prometheus          promtool, to lint both metrics pages
#   mandoc              the man page's lint
#   openssl             certificates for the TLS tests
# Node.js may come from elsewhere than Debian (with its own npm, which
# Debian's npm package conflicts with): only install it when it is missing.
command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages; run as root:" >&2
	echo "  apt-get update && $cmd" >&2
	exit 1
fi
echo "deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
