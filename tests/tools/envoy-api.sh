#!/bin/sh
# Prints the path of a descriptor set of Envoy's Bootstrap message, making it
# when it is missing: installs the npm package @grpc/grpc-js-xds (which ships
# Envoy's .proto files) into $ENVOY_API_DIR (default build/npm, not
# committed) and builds the set with protoc (tests/tools/envoy_api.py).
# Idempotent; needs no network once installed. Safe to run concurrently.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
dir=${ENVOY_API_DIR:-$top/build/npm}
version=1.14.1
pkg=$dir/node_modules/@grpc/grpc-js-xds
pb=$dir/envoy-bootstrap-$version.pb
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if [ ! -f "$pkg/deps/envoy-api/envoy/config/bootstrap/v3/bootstrap.proto" ]; then
	echo "envoy-api: installing @grpc/grpc-js-xds@$version into $dir" >&2
	npm install --prefix "$dir" --no-audit --no-fund --ignore-scripts \
		--no-save "@grpc/grpc-js-xds@$version" >&2 ||
		{ echo "envoy-api: npm install failed (offline?)" >&2; exit 1; }
fi
if [ ! -s "$pb" ] || [ "$top/tests/tools/envoy_api.py" -nt "$pb" ]; then
	/usr/bin/python3 "$top/tests/tools/envoy_api.py" build "$pkg/deps" "$pb" >&2
fi
echo "$pb"
