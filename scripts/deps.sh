#!/bin/sh
# Installs the Debian packages the build and the tests need, when they are missing.
# As root it runs apt-get; otherwise it prints the exact command to run and fails.
set -eu

pkgs="build-essential pkg-config clang libevent-dev libjansson-dev libprotobuf-c-dev
protobuf-c-compiler libgrpc-dev libyaml-dev protobuf-compiler python3 python3-protobuf
python3-yaml curl iproute2 iptables util-linux procps psmisc wrk prometheus mandoc
openssl valgrind"
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
