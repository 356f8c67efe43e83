#!/bin/sh
# Installs the npm packages of the interop tests (a third-party xDS client,
# @grpc/grpc-js-xds, with @grpc/grpc-js and @grpc/proto-loader) into one
# directory under the build tree, not committed: $XDS_NPM_DIR, by default
# build/npm. Prints that directory. Does nothing when they are there.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
dir=${XDS_NPM_DIR:-$top/build/npm}
if [ -f "$dir/node_modules/@grpc/grpc-js-xds/package.json" ] &&
	[ -f "$dir/node_modules/@grpc/proto-loader/package.json" ]; then
	echo "$dir"
	exit 0
fi
mkdir -p "$dir"
cd "$dir"
[ -f package.json ] || echo '{"name": "pilot-agent-interop", "private": true}' >package.json
npm install --no-audit --no-fund --loglevel=error \
	@grpc/grpc-js@1.14.7 @grpc/grpc-js-xds@1.14.1 @grpc/proto-loader@0.8.1 >&2
echo "$dir"
